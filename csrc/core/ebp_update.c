/*
 * ebp_update.c - weight updates: the fused online SGD update of a dense layer, and ebp_step (SGD or momentum
 * from the gradient accumulators).
 */
#include "ebp_internal.h"

/* ---- update ----------------------------------------------------------------------------------------- */

/*
 * Applies the update of n parameters w from their gradient sums g (clearing them) and velocities v
 * (momentum; NULL for SGD). One weight LSB of update is m_eff * g * 2^-sh (SGD), or 2^EBP_VEL_EXTRA_FRAC
 * velocity units (momentum). The stochastic-rounding generator advances once per parameter rounded.
 * The parameters are int16 (w), or int8 (w8, w NULL; always rounded stochastically, clipped to int8).
 */
static void update_params(ebp_net_t *net, ebp_layer_t *L, int16_t *w, int8_t *w8, int32_t *g, int32_t *v,
                          uint32_t n, int32_t m_eff, int sh) {
    const int32_t mu = net->hp.momentum_q15;
    const int stochastic = net->cfg.rounding == EBP_ROUND_STOCHASTIC || w8 != NULL;
    uint32_t k, updates = 0, zeros = 0, sat = 0, sat_vel = 0;
    if (sh > 62) sh = 62;
    for (k = 0; k < n; k++) {
        int32_t gk = g[k];
        int64_t d, nw;
        g[k] = 0;
        if (v == NULL) {
            if (gk == 0) continue;
            d = (int64_t)m_eff * gk;
            if (sh <= 0)
                d = ebp_lshift_sat(d, -sh);
            else
                d = stochastic ? ebp_rshift_sr(d, sh, ebp_xorshift32(&net->rng)) : ebp_rshift_rn(d, sh);
        } else {
            /* v = mu v + lr g, kept with EBP_VEL_EXTRA_FRAC more fractional bits than w */
            int64_t nv = ebp_rshift_rn((int64_t)mu * v[k], 15) + requant((int64_t)m_eff * gk, sh, 0);
            v[k] = ebp_sat32(nv);
            sat_vel += v[k] != nv;
            d = stochastic ? ebp_rshift_sr(v[k], EBP_VEL_EXTRA_FRAC, ebp_xorshift32(&net->rng))
                           : ebp_rshift_rn(v[k], EBP_VEL_EXTRA_FRAC);
        }
        updates += gk != 0;
        zeros += d == 0 && gk != 0;
        if (w8 != NULL) {
            nw = (int64_t)w8[k] - d;
            w8[k] = (int8_t)(nw > INT8_MAX ? INT8_MAX : nw < INT8_MIN ? INT8_MIN : nw);
            sat += w8[k] != nw;
            continue;
        }
        nw = (int64_t)w[k] - d;
        w[k] = ebp_sat16(nw);
        sat += w[k] != nw;
    }
    L->stats.updates += updates;
    L->stats.zero_updates += zeros;
    L->stats.sat_param += sat;
    L->stats.sat_vel += sat_vel;
}

/* one weight of row_nonneg: the update's magnitude is (u >> S) - k; returns the new weight + 2^15 */
static inline uint32_t row_step(int16_t *w, uint32_t u, int S, int32_t k, int add) {
    int32_t q = (int32_t)(u >> S) - k, nw = add ? *w + q : *w - q;
    *(uint16_t *)w = (uint16_t)nw; /* the same object: its two's complement bits */
    return (uint32_t)(nw + 32768);
}

/*
 * The fast row of ebp_update_online, for non-negative inputs a[] and round to nearest (1 <= S <= 30):
 * w[i] -= sign(dl) * floor((m a[i] + 2^(S-1)) / 2^S), m = |dl| <= 2^15, which is round(dl a[i] / 2^S)
 * with ties away from zero (m a[i] <= 2^30: no 32-bit wrap); `add` when dl < 0. It computes
 * u = m a[i] + c, c = 2^31 - 2^(S-1): the magnitude is (u >> S) - k, k = 2^(31-S) - 1, non-zero exactly
 * when bit 31 of u is set, so counting the non-zero updates (into *nz) costs one instruction. Each new
 * weight is stored as its low 16 bits, and (new + 2^15) is OR-ed into the result, which so exceeds 16 bits
 * iff some new weight left int16 (fix_row then repairs the row). w[] and a[] never overlap (restrict: the
 * x86 vectoriser then needs no run-time overlap test).
 */
static inline uint32_t row_nonneg(int16_t *restrict w, const uint16_t *restrict a, const uint16_t *end, uint32_t m,
                                  uint32_t c, int S, int32_t k, int add, uint32_t *nz) {
    uint32_t n = *nz, acc = 0;
    do { /* a row has at least one input */
        uint32_t u = m * *a + c;
        n += u >> 31;
        acc |= row_step(w, u, S, k, add);
    } while (++w, ++a != end);
    *nz = n;
    return acc;
}

/* Rare: a row_nonneg row with a weight that left int16. Its stored bits are w - q modulo 2^16, so the
 * weights before the update are recovered exactly; applies the update again, saturated. Returns clips. */
static uint32_t fix_row(int16_t *w, const uint16_t *a, uint32_t n, uint32_t m, int S, int add) {
    uint32_t i, sat = 0;
    for (i = 0; i < n; i++) {
        int32_t r = (int32_t)((m * a[i] + ((uint32_t)1 << (S - 1))) >> S), q = add ? -r : r;
        w[i] = s16_of_bits((uint32_t)w[i] + (uint32_t)q); /* the weight before the update */
        sat += sub_sat16(&w[i], q);
    }
    return sat;
}

/*
 * The stochastic twin of row_nonneg (1 <= S <= 30). It reproduces the portable loop's rule exactly:
 * q = ebp_rshift_sr32(dl * a[i], S, r) = floor((dl a[i] + u) / 2^S), u = r >> (32 - S), r the row's Weyl
 * sequence from *rng on (*rng + EBP_WEYL after each parameter) in the same order. With m = |dl|: for dl > 0 the
 * magnitude is floor((m a[i] + u) / 2^S); for dl < 0 it is ceil((m a[i] - u) / 2^S) = floor((m a[i] + (2^S - 1 - u)) / 2^S),
 * and 2^S - 1 - u = (~r) >> (32 - S) (`flip` = all ones). So u = m a[i] + c + ((r ^ flip) >> (32 - S)),
 * c = 2^31 - 2^S (< 2^32: m a[i] < 2^30, the draw < 2^S <= 2^30), has the magnitude (u >> S) - k,
 * k = 2^(31-S) - 1, non-zero exactly when bit 31 of u is set, as in row_nonneg.
 */
static inline uint32_t row_nonneg_sr(int16_t *restrict w, const uint16_t *restrict a, const uint16_t *end,
                                     uint32_t m, uint32_t c, int S, int32_t k, int add, uint32_t *nz,
                                     uint32_t *rng) {
    const uint32_t flip = add ? 0xFFFFFFFFu : 0u;
    const int rs = 32 - S;
    uint32_t n = *nz, acc = 0, x = *rng;
    do {
        const uint32_t u = m * *a + c + ((x ^ flip) >> rs);
        x += EBP_WEYL; /* the next parameter's value */
        n += u >> 31;
        acc |= row_step(w, u, S, k, add);
    } while (++w, ++a != end);
    *nz = n;
    *rng = x;
    return acc;
}

#if EBP_WIDE_MUL
/*
 * row_nonneg_sr for hosts with a 64-bit multiply (EBP_WIDE_MUL): the same magnitudes without a variable shift.
 * With m2 = m 2^(32-S) (< 2^32: the caller checks m < 2^S), floor((m a + (r >> (32 - S))) / 2^S) =
 * floor((m2 a + r) / 2^32), since the draw's low 32 - S bits cannot carry into bit 32; for dl < 0 the draw is
 * complemented as in row_nonneg_sr. Adding (2^31 - 1) 2^32 puts the magnitude + 2^31 - 1 in the high word, whose
 * bit 31 is then set exactly when the magnitude is non-zero.
 */
static inline uint32_t row_nonneg_sr64(int16_t *restrict w, const uint16_t *restrict a, const uint16_t *end,
                                       uint64_t m2, int add, uint32_t *nz, uint32_t *rng) {
    const uint32_t flip = add ? 0xFFFFFFFFu : 0u;
    const uint64_t bias = (uint64_t)0x7FFFFFFFu << 32;
    uint32_t n = *nz, acc = 0, x = *rng;
    do {
        uint32_t hi;
        int32_t q, nw;
        hi = (uint32_t)((m2 * *a + (x ^ flip) + bias) >> 32); /* < 2^64: m2 a < 2^47 */
        x += EBP_WEYL;
        n += hi >> 31;
        q = (int32_t)(hi - 0x7FFFFFFFu);
        nw = add ? *w + q : *w - q;
        *(uint16_t *)w = (uint16_t)nw; /* the same object: its two's complement bits */
        acc |= (uint32_t)(nw + 32768);
    } while (++w, ++a != end);
    *nz = n;
    *rng = x;
    return acc;
}
#endif

#if defined(EBP_HAVE_ARCH_ROWS_SR_WRAP)
/* fix_row_sr for inputs of any sign and the bias (the Arm rows'): the parameters before the update from their stored
 * bits, then the update again, saturated; the row's Weyl sequence again from its first value `rng` */
static uint32_t fix_row_sr_any(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t rng, int16_t *b,
                               int32_t dlo) {
    uint32_t i, sat = 0;
    int32_t q;
    for (i = 0; i < n; i++) {
        q = ebp_rshift_sr32(dl * a[i], S, rng);
        rng += EBP_WEYL;
        w[i] = s16_of_bits((uint32_t)w[i] + (uint32_t)q); /* the weight before the update */
        sat += sub_sat16(&w[i], q);
    }
    q = ebp_rshift_sr32(dlo, S, rng);
    *b = s16_of_bits((uint32_t)*b + (uint32_t)q);
    return sat + sub_sat16(b, q);
}
#endif

#if !defined(EBP_HAVE_ARCH_ROWS_SR_SSE2) && !defined(EBP_HAVE_ARCH_ROWS_SR_WRAP)
/* fix_row for row_nonneg_sr: the row's Weyl sequence again from its first value `rng` */
static uint32_t fix_row_sr(int16_t *w, const uint16_t *a, uint32_t n, uint32_t m, int S, int add, uint32_t rng) {
    uint32_t i, sat = 0;
    for (i = 0; i < n; i++) {
        const uint32_t r = rng ^ (add ? 0xFFFFFFFFu : 0u);
        int32_t mag = (int32_t)((m * a[i] + (r >> (32 - S))) >> S), q = add ? -mag : mag;
        w[i] = s16_of_bits((uint32_t)w[i] + (uint32_t)q); /* the weight before the update */
        sat += sub_sat16(&w[i], q);
        rng += EBP_WEYL;
    }
    return sat;
}
#endif

/* the weights of a row of ebp_update_online's portable loop in 32-bit arithmetic (1 <= S <= 30): in order,
 * w[i] -= ebp_rshift_sr32(dl in[i], S, *x) (stochastic, then *x += EBP_WEYL) or ebp_rshift_rn32(dl in[i], S),
 * saturated; adds the clips to *sat, returns the updates that rounded to zero. `stochastic` is a constant where the
 * two modes get a loop each. */
EBP_INLINE uint32_t row32(int16_t *w, const int16_t *in, uint32_t n, int32_t dl, int S, uint32_t *x, uint32_t *sat,
                          int stochastic) {
    uint32_t i, zeros = 0, r = *x;
    for (i = 0; i < n; i++, r += EBP_WEYL) {
        const int32_t p = dl * in[i], q = stochastic ? ebp_rshift_sr32(p, S, r) : ebp_rshift_rn32(p, S);
        zeros += q == 0;
        *sat += sub_sat16(&w[i], q);
    }
    *x = r;
    return zeros;
}

/* one parameter of ebp_update_online outside the fast path (S <= 0 or S > 30); r: its value of the row's Weyl
 * sequence, used under stochastic rounding */
EBP_INTERNAL int32_t ebp_online_delta_slow(const ebp_net_t *net, int32_t p, int S, uint32_t r) {
    if (S <= 0) { /* beyond +-65535 any update saturates the weight alike: clamp, so w - q cannot overflow */
        int64_t q = ebp_lshift_sat(p, -S);
        return (int32_t)(q > 65535 ? 65535 : q < -65535 ? -65535 : q);
    }
    if (S > 62) S = 62;
    if (net->cfg.rounding == EBP_ROUND_STOCHASTIC) return (int32_t)ebp_rshift_sr(p, S, r);
    return (int32_t)ebp_rshift_rn(p, S);
}

/*
 * ebp_update_online for a layer whose inputs are all non-negative, with round to nearest and 1 <= S <= 30 (the
 * common case: sigmoid or ReLU outputs, or non-negative data, feed the layer). The bias is the row's weight
 * on the input 2^in_frac. Adds the number of non-zero updates to *nz and the clips to *sat; returns the
 * number of rows with a non-zero delta.
 */
EBP_NOINLINE static uint32_t update_rows_nonneg(ebp_layer_t *L, const int16_t *in, int32_t lr_m, int S,
                                                uint32_t *nz, uint32_t *sat) {
    const uint32_t n_in = L->n_in, c = 0x80000000u - ((uint32_t)1 << (S - 1));
    const int32_t k = (int32_t)(0x80000000u >> S) - 1;
    const uint16_t one[1] = {(uint16_t)(1u << L->in_frac)};
    const uint16_t *a = (const uint16_t *)in, *a_end = a + n_in; /* non-negative: the same values */
    const int16_t *d = L->delta, *d_end = d + L->n_out;
    int16_t *w = L->w, *b = L->b;
    uint32_t rows = 0, clips = 0, n = *nz;
    for (; d != d_end; d++, b++, w += n_in) {
        int32_t dl;
        uint32_t m, ovf;
        if (*d == 0) continue;
        rows++;
        dl = ebp_rshift_rn32(*d * lr_m, 16);
        if (dl == 0) continue; /* the whole row's update is below the learning rate's resolution */
        if (dl > 0) {
            m = (uint32_t)dl;
            ovf = row_nonneg(w, a, a_end, m, c, S, k, 0, &n) | row_nonneg(b, one, one + 1, m, c, S, k, 0, &n);
        } else {
            m = 0u - (uint32_t)dl;
            ovf = row_nonneg(w, a, a_end, m, c, S, k, 1, &n) | row_nonneg(b, one, one + 1, m, c, S, k, 1, &n);
        }
        if (ovf > 0xFFFFu) clips += fix_row(w, a, n_in, m, S, dl < 0) + fix_row(b, one, 1, m, S, dl < 0);
    }
    *nz = n;
    *sat += clips;
    return rows;
}

/* update_rows_nonneg with stochastic rounding (row_nonneg_sr; row_nonneg_sr64 on 64-bit hosts; the Arm rows of
 * csrc/arch/ebp_arch_armv7m.h and ebp_arch_armv6m.h, which also take negative inputs): the generator advances once
 * per row with a non-zero dl, its weights then its bias rounded with the draw's Weyl sequence, as in the portable
 * loop. */
EBP_NOINLINE static uint32_t update_rows_nonneg_sr(ebp_net_t *net, ebp_layer_t *L, const int16_t *in, int32_t lr_m,
                                                   int S, uint32_t *nz, uint32_t *sat) {
#if defined(EBP_HAVE_ARCH_ROWS_SR_SSE2) /* x86-64: the whole layer, inputs of any sign */
    uint32_t rows = 0;
    *sat += ebp_x86_rows_sr(L->w, L->b, in, L->n_in, L->delta, L->n_out, lr_m, L->in_frac, S, &net->rng, nz, &rows);
    return rows;
#elif defined(EBP_HAVE_ARCH_ROWS_SR_WRAP) /* ARMv7-M, ARMv6-M: the row loop in assembly, a flagged row repaired here */
    const uint32_t n_in = L->n_in;
    uint32_t clips = 0;
    ebp_arm_rows_t p;
    p.w = L->w;
    p.b = L->b;
    p.d = L->delta;
    p.d_end = L->delta + L->n_out;
    p.in = in;
    p.n_in = n_in;
    p.lr_m = lr_m;
    p.S = S;
    p.in_frac = L->in_frac;
    p.x = net->rng;
    p.nz = *nz;
    p.rows = 0;
    do {
        ebp_arm_rows_sr_wrap(&p);
        if (p.flagged) {
            clips += fix_row_sr_any(p.w - n_in, in, n_in, p.dl, S, p.x0, p.b, p.dl * ((int32_t)1 << L->in_frac));
            p.b++;
        }
    } while (p.d != p.d_end);
    *nz = p.nz;
    *sat += clips;
    net->rng = p.x;
    return p.rows;
#else
    const uint32_t n_in = L->n_in, c = 0x80000000u - ((uint32_t)1 << S);
    const int32_t k = (int32_t)(0x80000000u >> S) - 1;
    const uint16_t one[1] = {(uint16_t)(1u << L->in_frac)};
    const uint16_t *a = (const uint16_t *)in, *a_end = a + n_in; /* non-negative: the same values */
    const int16_t *d = L->delta, *d_end = d + L->n_out;
    int16_t *w = L->w, *b = L->b;
    uint32_t rows = 0, clips = 0, n = *nz, st = net->rng;
    for (; d != d_end; d++, b++, w += n_in) {
        int32_t dl;
        uint32_t m, ovf, x, x0;
        int add;
        if (*d == 0) continue;
        rows++;
        dl = ebp_rshift_rn32(*d * lr_m, 16);
        if (dl == 0) continue; /* the whole row's update is below the learning rate's resolution: no draw */
        add = dl < 0;
        x = x0 = ebp_xorshift32(&st); /* the row's draw: its Weyl sequence starts there */
#if EBP_WIDE_MUL
        m = add ? 0u - (uint32_t)dl : (uint32_t)dl;
        if (m < ((uint32_t)1 << S)) {
            const uint64_t m2 = (uint64_t)m << (32 - S);
            if (!add)
                ovf = row_nonneg_sr64(w, a, a_end, m2, 0, &n, &x) | row_nonneg_sr(b, one, one + 1, m, c, S, k, 0, &n, &x);
            else
                ovf = row_nonneg_sr64(w, a, a_end, m2, 1, &n, &x) | row_nonneg_sr(b, one, one + 1, m, c, S, k, 1, &n, &x);
        } else
#endif
        if (!add) {
            m = (uint32_t)dl;
            ovf = row_nonneg_sr(w, a, a_end, m, c, S, k, 0, &n, &x);
            ovf |= row_nonneg_sr(b, one, one + 1, m, c, S, k, 0, &n, &x);
        } else {
            m = 0u - (uint32_t)dl;
            ovf = row_nonneg_sr(w, a, a_end, m, c, S, k, 1, &n, &x);
            ovf |= row_nonneg_sr(b, one, one + 1, m, c, S, k, 1, &n, &x);
        }
        if (ovf > 0xFFFFu) /* the bias's value follows the row's n_in */
            clips += fix_row_sr(w, a, n_in, m, S, add, x0) + fix_row_sr(b, one, 1, m, S, add, x0 + n_in * EBP_WEYL);
    }
    *nz = n;
    *sat += clips;
    net->rng = st;
    return rows;
#endif
}

#if !EBP_STATS
/* one row of weights under stochastic rounding, any signs, 1 <= S <= 30, counters compiled out (EBP_STATS=0):
 * w[i] = ebp_sat16(w[i] - ebp_rshift_sr32(dl * a[i], S, *rng)), *rng += EBP_WEYL, in order; the Arm kernel
 * (csrc/arch/ebp_arch_armv7m.h, ebp_arch_armv6m.h) where there is one */
static inline void row_sr_nostats(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t *rng) {
#if defined(EBP_HAVE_ARCH_ROW_SR)
    ebp_arm_row_sr(w, a, n, dl, S, rng);
#else
    uint32_t i, x = *rng;
    for (i = 0; i < n; i++, x += EBP_WEYL) (void)sub_sat16(&w[i], ebp_rshift_sr32(dl * a[i], S, x));
    *rng = x;
#endif
}

/* ebp_update_online under stochastic rounding with 1 <= S <= 30 and EBP_STATS=0: the portable loop's rule
 * without its counters, for inputs of any sign (no pass over the inputs first) */
EBP_NOINLINE static void update_rows_sr_nostats(ebp_net_t *net, ebp_layer_t *L, const int16_t *in, int32_t lr_m,
                                                int S) {
#if defined(EBP_HAVE_ARCH_ROWS_SR_SSE2) /* x86-64: the counted rows of csrc/arch/ebp_arch_x86.h, counts dropped */
    uint32_t nz = 0, rows = 0;
    (void)ebp_x86_rows_sr(L->w, L->b, in, L->n_in, L->delta, L->n_out, lr_m, L->in_frac, S, &net->rng, &nz, &rows);
#elif defined(EBP_HAVE_ARCH_ROWS_SR_WRAP) && (EBP_ARMV6M || EBP_ARM_DSP)
    /* Cortex-M0 and M4: the counted rows in assembly, counts dropped (measured faster there than the uncounted row
     * with its loop over the rows in C; on the Cortex-M3 the uncounted row below is faster) */
    uint32_t nz = 0, sat = 0;
    (void)update_rows_nonneg_sr(net, L, in, lr_m, S, &nz, &sat);
#else
    const uint32_t n_in = L->n_in;
    const int32_t one = (int32_t)1 << L->in_frac;
    const int16_t *d = L->delta, *d_end = d + L->n_out;
    int16_t *w = L->w, *b = L->b;
    uint32_t st = net->rng;
    for (; d != d_end; d++, b++, w += n_in) {
        int32_t dl;
        uint32_t x;
        if (*d == 0) continue;
        dl = ebp_rshift_rn32(*d * lr_m, 16);
        if (dl == 0) continue; /* the whole row's update is below the learning rate's resolution: no draw */
        x = ebp_xorshift32(&st); /* the row's draw, then its Weyl sequence */
        row_sr_nostats(w, in, n_in, dl, S, &x);
        (void)sub_sat16(b, ebp_rshift_sr32(dl * one, S, x));
    }
    net->rng = st;
#endif
}
#endif

/*
 * Online SGD, one sample: w_oi -= lr * delta_o * in_i without gradient accumulators. Per row the scaled
 * delta dl = round(delta_o * lr_m / 2^16) (|dl| <= 2^15) is rounded to nearest; the update of each
 * parameter, dl * in_i * 2^-S weight LSBs, is rounded in the configured mode: a 32-bit product and shift
 * in the common case 1 <= S <= 30 (when no input is negative: update_rows_nonneg for round to nearest,
 * update_rows_nonneg_sr for stochastic rounding, whose Arm rows take inputs of any sign; with EBP_STATS=0
 * update_rows_sr_nostats; the loops below are the portable reference of all of them).
 */
EBP_INTERNAL void ebp_update_online(ebp_net_t *net, ebp_layer_t *L, const int16_t *in) {
    const int stochastic = net->cfg.rounding == EBP_ROUND_STOCHASTIC;
    const int S = -(L->delta_exp + net->hp.lr_e + 16 - L->in_frac + L->w_frac);
    const int32_t lr_m = net->hp.lr_m, one = (int32_t)1 << L->in_frac;
    const uint32_t n_in = L->n_in, n_out = L->n_out;
    uint32_t zeros = 0, sat = 0, rows = 0, zero_in = 0, neg_in = 0, rng = net->rng, o, i;
    int16_t *w = L->w;
    int any_sign = 0;
#if !EBP_STATS
    if (stochastic && S >= 1 && S <= 30) {
        update_rows_sr_nostats(net, L, in, lr_m, S);
        return;
    }
#endif
#if defined(EBP_HAVE_ARCH_ROWS_SR_WRAP) || defined(EBP_HAVE_ARCH_ROWS_SR_SSE2)
    any_sign = stochastic; /* the Arm and x86 rows take inputs of any sign (signed multiply, arithmetic shift) */
#endif
    if (any_sign) { /* then only the zero inputs are counted, for the statistics */
#if defined(EBP_HAVE_ARCH_COUNT_ZERO16) && EBP_X86_SSE2
        zero_in = ebp_x86_count_zero16(in, n_in);
#elif defined(EBP_HAVE_ARCH_COUNT_ZERO16)
        zero_in = ebp_arm_count_zero16(in, n_in);
#else
        for (i = 0; i < n_in; i++) zero_in += in[i] == 0;
#endif
    } else {
        for (i = 0; i < n_in; i++) {
            zero_in += in[i] == 0;
            neg_in |= (uint32_t)(uint16_t)in[i] >> 15;
        }
    }
    if (EBP_FAST_ROWS && S >= 1 && S <= 30 && !neg_in) {
        uint32_t nz = 0;
        if (stochastic) { /* the generator's state goes through net: rng's address stays untaken */
            net->rng = rng;
            rows = update_rows_nonneg_sr(net, L, in, lr_m, S, &nz, &sat);
            rng = net->rng;
        } else {
            rows = update_rows_nonneg(L, in, lr_m, S, &nz, &sat);
        }
        zeros = rows * (n_in + 1u - zero_in) - nz; /* every parameter with a non-zero gradient, minus the moves */
    } else {
        for (o = 0; o < n_out; o++, w += n_in) {
            int32_t dl = ebp_rshift_rn32(L->delta[o] * lr_m, 16), p, q;
            uint32_t x;
            if (L->delta[o] == 0) continue;
            rows++;
            if (dl == 0) { /* the whole row's update is below the learning rate's resolution: no draw */
                zeros += n_in + 1u - zero_in;
                continue;
            }
            x = stochastic ? ebp_xorshift32(&rng) : 0u; /* the row's draw; parameter i takes x + i EBP_WEYL */
            if (S >= 1 && S <= 30) { /* 32-bit arithmetic throughout */
#if EBP_FAST_ROWS /* one loop per rounding mode (speed) */
                zeros += stochastic ? row32(w, in, n_in, dl, S, &x, &sat, 1) : row32(w, in, n_in, dl, S, &x, &sat, 0);
#else /* one loop for both (size: the Uno's flash) */
                zeros += row32(w, in, n_in, dl, S, &x, &sat, stochastic);
#endif
                p = dl * one;
                q = stochastic ? ebp_rshift_sr32(p, S, x) : ebp_rshift_rn32(p, S);
            } else {
                for (i = 0; i < n_in; i++, x += EBP_WEYL) {
                    q = ebp_online_delta_slow(net, dl * in[i], S, x);
                    zeros += q == 0;
                    sat += sub_sat16(&w[i], q);
                }
                q = ebp_online_delta_slow(net, dl * one, S, x);
            }
            zeros += (uint32_t)(q == 0) - zero_in; /* a zero input has a zero gradient, not a lost update */
            sat += sub_sat16(&L->b[o], q);
        }
    }
    net->rng = rng;
#if EBP_STATS
    L->stats.updates += rows * (n_in + 1u - zero_in); /* parameters with a non-zero gradient */
    L->stats.zero_updates += zeros;
    L->stats.sat_param += sat;
#else
    (void)rows, (void)zeros, (void)sat;
#endif
}

int ebp_step(ebp_net_t *net) {
    int32_t m_eff;
    unsigned l;
    if (net == NULL) return EBP_ERR_ARG;
    if (net->mode != EBP_MODE_TRAIN) return EBP_ERR_STATE;
    if (net->grad_count == 0) return EBP_OK;
    if (!EBP_GRAD_MEMORY) return EBP_ERR_STATE; /* unreachable: nothing accumulates gradients in such a build */
    /* lr / n = m_eff * 2^(lr_e - 15), m_eff < 2^31 */
    m_eff = (int32_t)(((uint32_t)net->hp.lr_m << 15) / net->grad_count);
    for (l = 0; l < net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        int momentum = net->cfg.optimizer == EBP_OPT_MOMENTUM;
        /* the update in units of one weight LSB is m_eff * g * 2^-sh */
        int sh = -(net->hp.lr_e - 15 + L->g_exp + L->w_frac);
        if (L->gw == NULL) continue; /* frozen, or no parameters */
        if (momentum) sh -= EBP_VEL_EXTRA_FRAC; /* velocities carry extra fractional bits */
        if (L->g_exp == INT16_MIN) {
            if (!momentum) continue; /* no gradient reached this layer: its sums are all zero */
            sh = 62;                 /* velocity decays only */
        }
        update_params(net, L, L->w, L->w8, L->gw, momentum ? L->vw : NULL, L->n_w, m_eff, sh);
        update_params(net, L, L->b, L->b8, L->gb, momentum ? L->vb : NULL, L->n_b, m_eff, sh);
        L->g_exp = INT16_MIN;
    }
    net->grad_count = 0;
    net->steps++;
    return EBP_OK;
}
