/*
 * ebp_dense.c - the dense layer: forward pass (one specialised kernel per activation), the raw deltas
 * it hands the layer below (f'(y) W^T delta), and its gradient accumulation.
 */
#include "ebp_internal.h"

/* ---- forward ---------------------------------------------------------------------------------------- */

/* init + sum_i w[i] x[i], exact (|product| <= 2^30): int32 products into an int64 sum (unrolled by 4 where
 * EBP_UNROLL_DOT; SMLALD pairs with EBP_ARM_DSP, csrc/arch/ebp_arch_armv7m.h; PMADDWD with EBP_X86_SSE2,
 * csrc/arch/ebp_arch_x86.h) */
#if !defined(EBP_HAVE_ARCH_DOT16)
#if EBP_UNROLL_DOT
static inline int64_t dot16_c(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
#else
EBP_NOINLINE static int64_t dot16_c(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
#endif
    const int16_t *end = w + n;
#if EBP_UNROLL_DOT
    const int16_t *end4 = w + (n & ~3u);
    for (; w != end4; w += 4, x += 4) {
        acc += (int32_t)w[0] * x[0];
        acc += (int32_t)w[1] * x[1];
        acc += (int32_t)w[2] * x[2];
        acc += (int32_t)w[3] * x[3];
    }
#endif
    for (; w != end; w++, x++) acc += (int32_t)*w * *x;
    return acc;
}
#endif

static inline int64_t dot16(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
#if defined(EBP_HAVE_ARCH_DOT16) && EBP_X86_SSE2
    return ebp_x86_dot16(acc, w, x, n);
#elif defined(EBP_HAVE_ARCH_DOT16)
    return ebp_arm_dot16(acc, w, x, n);
#else
    return dot16_c(acc, w, x, n);
#endif
}

/*
 * A sigmoid (tanh = 2 sigmoid(2z) - 1, when `tanh`, a constant where inlined) neuron, the common hidden layer's,
 * from its exact accumulator. The rules are requant to Q12, the sigmoid table, and requant to the output format;
 * since rounding is symmetric (ties away from zero) and sigmoid(-z) = 1 - sigmoid(z), it works on magnitudes: |z|
 * from |acc| in 32 bits (`fast`: 1 <= s <= 31, half_z = 2^(s-1)), the table on |z|, the sign applied to the Q16
 * value, whose rounding is then of a magnitude too. Counts an output clipped at 32767 into *sat.
 */
EBP_INLINE int16_t sigmoid_neuron(int64_t acc, int tanh, int fast, int s, uint32_t half_z, int sh, uint32_t half_y,
                                  uint32_t *sat) {
    const int neg = acc < 0;
    uint32_t a, v, q;
    if (fast && acc == (int32_t)acc) { /* acc in int32: |z| = floor((|acc| + 2^(s-1)) / 2^s) */
        uint32_t u = (uint32_t)(int32_t)acc;
        a = ((neg ? 0u - u : u) + half_z) >> s; /* |acc| <= 2^31, s >= 1: no wrap */
    } else {
        int32_t z = ebp_sat32(requant(acc, s, 0));
        a = z < 0 ? 0u - (uint32_t)z : (uint32_t)z;
    }
    v = sigmoid_pos_q16(a);
    if (tanh) { /* |2 sigmoid - 1| in Q16, the sign that of z */
        q = ((2u * v - 65536u) + half_y) >> sh;
        if (q == 32768u && !neg) { /* only +1.0 at a_frac 15 */
            (*sat)++;
            q = 32767u;
        }
        return (int16_t)(neg ? -(int32_t)q : (int32_t)q);
    }
    q = ((neg ? 65536u - v : v) + half_y) >> sh; /* sigmoid >= 0: 1 - v for negative z */
    if (q == 32768u) {
        (*sat)++;
        q = 32767u;
    }
    return (int16_t)q;
}

/* a sigmoid or tanh layer: the neurons of sigmoid_neuron on dot16's accumulators */
EBP_INLINE void fwd_sigmoid_kernel(ebp_layer_t *L, const int16_t *in, int tanh, int fast) {
    const uint32_t n_in = L->n_in;
    const int in_frac = L->in_frac, s = L->w_frac + in_frac - EBP_Z_FRAC - tanh, sh = 16 - L->a_frac;
    const uint32_t half_z = fast ? (uint32_t)1 << (s - 1) : 0u, half_y = (uint32_t)1 << (sh - 1);
    const int16_t *w = L->w, *b = L->b;
#if EBP_UNROLL_DOT && !defined(EBP_HAVE_ARCH_DOT16)
    const int16_t *in4 = in + (n_in & ~3u), *in_end = in + n_in;
#endif
    int16_t *y = L->y, *y_end = y + L->n_out;
    uint32_t sat = 0;
#if defined(EBP_HAVE_ARCH_FWD_SIGMOID) /* ARMv7-M, ARMv6-M: the layer in assembly, a neuron outside int32 finished here */
    if (!tanh && fast && n_in >= EBP_ARM_FWD_MIN_IN) {
        ebp_arm_fwd_t p;
        p.w = w;
        p.b = b;
        p.y = y;
        p.y_end = y_end;
        p.in = in;
        p.n_in = n_in;
        p.in_frac = in_frac;
        p.s = s;
        p.sh = sh;
        p.sat = 0;
        p.tab = ebp_sigmoid_q16;
        do {
            ebp_arm_fwd_sigmoid(&p);
            if (p.stopped) {
                const uint64_t u = ((uint64_t)p.hi << 32) | p.lo; /* the accumulator's 64 bits */
                *p.y++ = sigmoid_neuron((int64_t)u, 0, 0, s, half_z, sh, half_y, &p.sat);
            }
        } while (p.y != y_end);
        L->stats.sat_out += p.sat;
        return;
    }
#endif
    for (; y != y_end; y++, b++) { /* the rows of w follow each other: w runs on through them */
        const int16_t *x = in;
        int64_t acc = (int32_t)*b * ((int32_t)1 << in_frac); /* dot16, with its bounds set once per layer */
#if EBP_UNROLL_DOT && !defined(EBP_HAVE_ARCH_DOT16)
        for (; x != in4; x += 4, w += 4) {
            acc += (int32_t)w[0] * x[0];
            acc += (int32_t)w[1] * x[1];
            acc += (int32_t)w[2] * x[2];
            acc += (int32_t)w[3] * x[3];
        }
        for (; x != in_end; x++, w++) acc += (int32_t)*w * *x;
#else
        acc = dot16(acc, w, x, n_in);
        w += n_in;
#endif
        *y = sigmoid_neuron(acc, tanh, fast, s, half_z, sh, half_y, &sat);
    }
    L->stats.sat_out += sat;
}

#if defined(EBP_HAVE_ARCH_SIGMOID4)
/* fwd_sigmoid_kernel's 32-bit path (1 <= s <= 31) on x86-64 when 8 divides n_in != 0: four neurons at a time by
 * ebp_x86_sigmoid4 (the last n_out % 4 together), a block with an accumulator outside int32 by sigmoid_neuron */
EBP_INLINE void fwd_sigmoid_x86(ebp_layer_t *L, const int16_t *in, int tanh, int s) {
    const uint32_t n_in = L->n_in, n_out = L->n_out, n4 = n_out & ~3u;
    const int in_frac = L->in_frac, sh = 16 - L->a_frac;
    const int16_t *w = L->w, *b = L->b;
    int16_t *y = L->y;
    const uint32_t half_z = (uint32_t)1 << (s - 1), half_y = (uint32_t)1 << (sh - 1);
    uint32_t j = 0, i, sat = 0;
    int64_t acc[4];
    for (; j < n4; j += 4, w += 4u * n_in)
        if (!ebp_x86_sigmoid4(w, b + j, 4, in, n_in, in_frac, tanh, s, sh, ebp_sigmoid_q16, y + j, acc, &sat))
            for (i = 0; i < 4u; i++) y[j + i] = sigmoid_neuron(acc[i], tanh, 1, s, half_z, sh, half_y, &sat);
    if (j < n_out &&
        !ebp_x86_sigmoid4(w, b + j, n_out - j, in, n_in, in_frac, tanh, s, sh, ebp_sigmoid_q16, y + j, acc, &sat))
        for (i = 0; j + i < n_out; i++) y[j + i] = sigmoid_neuron(acc[i], tanh, 1, s, half_z, sh, half_y, &sat);
    L->stats.sat_out += sat;
}
#define EBP_X86_FWD4_OK(L, s) ((s) >= 1 && (s) <= 31 && ((L)->n_in & 7u) == 0 && (L)->n_in != 0)
#endif

/* a sigmoid or tanh layer (tanh a constant): the kernel with the 32-bit path (1 <= s <= 31, every common format) or
 * without it, each a tight loop; on x86-64 four neurons at a time where fwd_sigmoid_x86 applies */
EBP_INLINE void fwd_sigmoid_any(ebp_layer_t *L, const int16_t *in, int tanh) {
    const int s = L->w_frac + L->in_frac - EBP_Z_FRAC - tanh;
#if defined(EBP_HAVE_ARCH_SIGMOID4)
    if (EBP_X86_FWD4_OK(L, s)) {
        fwd_sigmoid_x86(L, in, tanh, s);
        return;
    }
#endif
    if (s >= 1 && s <= 31)
        fwd_sigmoid_kernel(L, in, tanh, 1);
    else
        fwd_sigmoid_kernel(L, in, tanh, 0);
}

EBP_NOINLINE static void fwd_sigmoid(ebp_layer_t *L, const int16_t *in) { fwd_sigmoid_any(L, in, 0); }

EBP_NOINLINE static void fwd_tanh(ebp_layer_t *L, const int16_t *in) { fwd_sigmoid_any(L, in, 1); }

EBP_INTERNAL void ebp_dense_fwd_s16(ebp_layer_t *L, const int16_t *in, int64_t *scratch) {
    const int zf = L->w_frac + L->in_frac; /* fractional bits of the accumulator */
    const uint32_t n_in = L->n_in, n_out = L->n_out;
    const int in_frac = L->in_frac, a_frac = L->a_frac;
    const int16_t *w = L->w, *b = L->b;
    int16_t *y = L->y;
    uint32_t o, sat = 0;
    switch (L->act) {
    case EBP_ACT_SIGMOID:
        fwd_sigmoid(L, in);
        break;
    case EBP_ACT_TANH:
        fwd_tanh(L, in);
        break;
    case EBP_ACT_RELU:
    case EBP_ACT_LINEAR:
        for (o = 0; o < n_out; o++, w += n_in) {
            int64_t acc = dot16((int32_t)b[o] * ((int32_t)1 << in_frac), w, in, n_in); /* <= 2^30 */
            if (L->act == EBP_ACT_RELU && acc < 0) acc = 0;
            y[o] = sat16_count(requant(acc, zf, a_frac), &sat);
        }
        break;
    default: /* softmax: z (Q12), then exp(z - max z) / sum (refused by ebp_cfg_check without EBP_SOFTMAX) */
        if (!EBP_SOFTMAX) break;
        for (o = 0; o < n_out; o++, w += n_in)
            scratch[o] = requant(dot16((int32_t)b[o] * ((int32_t)1 << in_frac), w, in, n_in), zf, EBP_Z_FRAC);
        ebp_softmax_out(L, scratch, &sat);
        break;
    }
    L->stats.sat_out += sat;
}

/* dL/dz of hidden neuron i before normalisation: f'(y_i) sum_k w_ki delta_k over the next layer N */
EBP_INTERNAL int64_t ebp_dense_raw_hidden(const ebp_layer_t *L, const ebp_layer_t *N, uint32_t i, int32_t one, int sd) {
    const int16_t *w = N->w + i; /* column i of the next layer's weights */
    const uint32_t n = N->n_out, stride = N->n_in;
    int64_t acc = 0;
    uint32_t k;
    for (k = 0; k < n; k++, w += stride) acc += (int32_t)*w * N->delta[k];
    return acc * act_deriv_q15(L->act, L->y[i], one, sd);
}

/*
 * Every ebp_dense_raw_hidden of layer L, for activation act (a constant where inlined); returns their largest magnitude.
 * Without signs it stores them into out[] unless that is NULL. With signs (an EBP_FLAG_ONLINE network of
 * at most EBP_PACK_WIDTH neurons) it keeps them without scratch memory, in the delta array and the sign
 * bitmask: delta[i] holds the 16 bits of floor(|r_i| / 2^a), a = max(0, bit_length(running max) - 16),
 * the earlier entries shifted on when a grows (a floor of a floor is one floor). At the end a = s0 - 1 for
 * the block exponent's s0 = bit_length(max) - 15 >= 1 (else 0), and the final s >= s0 keeps s - a >= 1, so
 * round(|r_i| / 2^s) = floor((delta[i] + 2^(s-a-1)) / 2^(s-a)) exactly (unpack_delta).
 */
EBP_INLINE uint64_t hidden_pass(const ebp_layer_t *L, const ebp_layer_t *N, int64_t *out, uint32_t *signs,
                                int act) {
    const int16_t *y = L->y, *y_end = y + L->n_out, *col = N->w, *dk = N->delta;
    const uint32_t nk = N->n_out, stride = N->n_in;
    const int32_t one = (int32_t)1 << L->a_frac;
    const int sd = 2 * L->a_frac - 15;
#if EBP_ARMV7M /* f'(y) with its final shift prepared once a layer (elsewhere slower, or larger on AVR) */
    const int sr = sd > 0 ? sd : 0, sl = sd > 0 ? 0 : -sd;
    const uint32_t half = sd > 0 ? (uint32_t)1 << (sd - 1) : 0u;
#define EBP_HIDDEN_DERIV(y) act_deriv_q15_pre(act, y, one, half, sr, sl)
#else
#define EBP_HIDDEN_DERIV(y) (uint32_t)act_deriv_q15(act, y, one, sd)
#endif
    uint16_t *packed = (uint16_t *)L->delta; /* the same object: its bits */
    uint64_t maxabs = 0;
    uint32_t i = 0, sw = 0;
    int a = 0;
    for (; y != y_end; y++, col++, i++) {
        const int16_t *w = col;
        int64_t acc = 0;
        uint64_t m;
        uint32_t k;
        for (k = 0; k < nk; k++, w += stride) acc += (int32_t)*w * dk[k];
#if EBP_ARMV6M /* no 64-bit multiply instruction: |sum| f by mul_u32_q15 when |sum| < 2^32 (two MULS) */
        {
            const uint32_t f = EBP_HIDDEN_DERIV(*y);
            const uint64_t ma = acc < 0 ? (uint64_t)0 - (uint64_t)acc : (uint64_t)acc;
            m = (ma >> 32) == 0 ? mul_u32_q15((uint32_t)ma, f) : ma * f;
            if (f == 0) acc = 0; /* the product's sign is the sum's, unless f = 0 */
        }
#else
        acc *= (int64_t)EBP_HIDDEN_DERIV(*y); /* >= 0: a 64 x 32-bit unsigned multiply */
        m = acc < 0 ? (uint64_t)0 - (uint64_t)acc : (uint64_t)acc;
#endif
        if (m > maxabs) {
            maxabs = m;
            if (signs != NULL && (maxabs >> a) > 0xFFFFu) { /* the new largest needs a larger shift */
                const int na = bit_length(maxabs) - 16;
                uint32_t j;
                for (j = 0; j < i; j++) packed[j] = (uint16_t)(na - a >= 16 ? 0u : (uint32_t)packed[j] >> (na - a));
                a = na;
            }
        }
        if (signs != NULL) {
            packed[i] = (uint16_t)(m >> a);
            sw |= (uint32_t)(acc < 0) << (i & 31u);
            if ((i & 31u) == 31u) { /* a full word of signs */
                signs[i >> 5] = sw;
                sw = 0;
            }
        } else if (out != NULL) {
            out[i] = acc < 0 ? -(int64_t)m : (int64_t)m; /* the product: its magnitude m, the sign of acc */
        }
    }
    if (signs != NULL && (i & 31u) != 0) signs[i >> 5] = sw;
    return maxabs;
#undef EBP_HIDDEN_DERIV
}

#if defined(EBP_HAVE_ARCH_HIDDEN_MAG)
/* hidden_pass with signs, by the x86-64 kernel: every neuron's magnitude first (a stack buffer of at most
 * EBP_PACK_WIDTH), then the final shift a = max(0, bit_length(max) - 16) at once (the bit length from the OR of the
 * magnitudes), which gives hidden_pass's packed values (its running shifts are floors of floors, one floor). It
 * returns not the largest magnitude M but P 2^a, P = floor(M / 2^a) the largest packed value: normalize_delta
 * cannot tell them apart (the same bit length, so the same s0 = a + 1 when a > 0, and its rounding test
 * floor((M + 2^(s0-1)) / 2^s0) >= 2^15 depends on floor(M / 2^a) only; for a = 0, P = M). */
static uint64_t hidden_pack_arch(const ebp_layer_t *L, const ebp_layer_t *N, uint32_t *signs) {
    const uint32_t n = L->n_out;
    const int32_t one = (int32_t)1 << L->a_frac;
    const int sd = 2 * L->a_frac - 15;
    uint16_t f[EBP_PACK_WIDTH], *packed = (uint16_t *)L->delta; /* the same object: its bits */
    uint64_t m[EBP_PACK_WIDTH], all;
    uint32_t i;
    int a;
    i = 0;
#if defined(EBP_HAVE_ARCH_DERIV) /* the sigmoid's and tanh's 8 at a time */
    if (L->act == EBP_ACT_SIGMOID || L->act == EBP_ACT_TANH) {
        i = n & ~7u;
        if (L->act == EBP_ACT_TANH)
            ebp_x86_deriv(f, L->y, i, 1, L->a_frac);
        else
            ebp_x86_deriv(f, L->y, i, 0, L->a_frac);
    }
#endif
    for (; i < n; i++) f[i] = (uint16_t)act_deriv_q15(L->act, L->y[i], one, sd); /* <= 2^15 */
    all = ebp_x86_hidden_mag(N->w, N->delta, N->n_out, N->n_in, f, n, m, signs);
    a = all > 0xFFFFu ? bit_length(all) - 16 : 0;
    return (uint64_t)ebp_x86_pack16(packed, m, n, a) << a;
}
#endif

#if defined(EBP_HAVE_ARCH_HIDDEN_PACK)
/* hidden_pass with signs for a sigmoid or tanh layer by the Arm kernel (ebp_arch_arm.h), f'(y) as act_deriv_q15_pre
 * computes it; returns 0 when the kernel left it to the portable pass (a packing shift of 32 or more) */
static int hidden_pack_arm(const ebp_layer_t *L, const ebp_layer_t *N, uint32_t *signs, uint64_t *maxabs) {
    const int sd = 2 * L->a_frac - 15;
    const uint32_t one = (uint32_t)1 << L->a_frac, half = sd > 0 ? (uint32_t)1 << (sd - 1) : 0u;
    ebp_arm_hidden_t p;
    p.y = L->y;
    p.packed = (uint16_t *)L->delta; /* the same object: its bits */
    p.w = N->w;
    p.dk = N->delta;
    p.signs = signs;
    p.n = L->n_out;
    p.nk = N->n_out;
    p.kc = L->act == EBP_ACT_TANH ? 0u : one;
    p.c = half + (L->act == EBP_ACT_TANH ? one * one : 0u);
    p.sr = sd > 0 ? sd : 0;
    p.sl = sd > 0 ? 0 : -sd;
    ebp_arm_hidden_pack(&p);
    *maxabs = ((uint64_t)p.hi << 32) | p.lo;
    return p.ok != 0;
}
#endif

/* hidden_pass with act and the mode (signs or not) as constants, so that each loop is a tight one; with signs the
 * x86-64 kernel returns a value normalize_delta cannot tell from the largest magnitude (hidden_pack_arch) */
EBP_NOINLINE EBP_INTERNAL uint64_t ebp_dense_hidden_raw(const ebp_layer_t *L, const ebp_layer_t *N, int64_t *out, uint32_t *signs) {
#if defined(EBP_HAVE_ARCH_HIDDEN_MAG)
    if (signs != NULL && L->n_out <= EBP_PACK_WIDTH) return hidden_pack_arch(L, N, signs);
#endif
#if defined(EBP_HAVE_ARCH_HIDDEN_PACK)
    if (signs != NULL && (L->act == EBP_ACT_SIGMOID || L->act == EBP_ACT_TANH) && L->n_out != 0 && N->n_out != 0 &&
        N->n_in == L->n_out) {
        uint64_t maxabs;
        if (hidden_pack_arm(L, N, signs, &maxabs)) return maxabs;
    }
#endif
    if (signs != NULL) {
        switch (L->act) {
        case EBP_ACT_SIGMOID: return hidden_pass(L, N, NULL, signs, EBP_ACT_SIGMOID);
        case EBP_ACT_TANH: return hidden_pass(L, N, NULL, signs, EBP_ACT_TANH);
        case EBP_ACT_RELU: return hidden_pass(L, N, NULL, signs, EBP_ACT_RELU);
        default: return hidden_pass(L, N, NULL, signs, EBP_ACT_LINEAR);
        }
    }
    switch (L->act) {
    case EBP_ACT_SIGMOID: return hidden_pass(L, N, out, NULL, EBP_ACT_SIGMOID);
    case EBP_ACT_TANH: return hidden_pass(L, N, out, NULL, EBP_ACT_TANH);
    case EBP_ACT_RELU: return hidden_pass(L, N, out, NULL, EBP_ACT_RELU);
    default: return hidden_pass(L, N, out, NULL, EBP_ACT_LINEAR);
    }
}

/* Adds delta (x) in to the layer's gradient accumulators, scaled to the shared exponent g_exp. */
EBP_INTERNAL void ebp_dense_accumulate_grad(ebp_layer_t *L, const int16_t *in) {
    const int e_p = L->delta_exp - L->in_frac; /* exponent of delta[o] * in[i], |product| <= 2^30 */
    const int e_new = e_p + EBP_GRAD_HEADROOM;
    const int32_t one = (int32_t)1 << L->in_frac;
    uint32_t n = (uint32_t)L->n_out * L->n_in, k, sat = 0;
    int32_t *gw = L->gw;
    uint16_t o, i;
    int s;
    if (L->g_exp == INT16_MIN) { /* first non-zero sample since ebp_zero_grad() */
        L->g_exp = (int16_t)e_new;
    } else if (e_new > L->g_exp) {
        int r = e_new - L->g_exp > 62 ? 62 : e_new - L->g_exp;
        for (k = 0; k < n; k++) L->gw[k] = (int32_t)ebp_rshift_rn(L->gw[k], r);
        for (o = 0; o < L->n_out; o++) L->gb[o] = (int32_t)ebp_rshift_rn(L->gb[o], r);
        L->g_exp = (int16_t)e_new;
    }
    s = L->g_exp - e_p; /* >= EBP_GRAD_HEADROOM */
    if (s > 31) return;  /* |delta * in| <= 2^30 rounds to zero at this resolution */
    for (o = 0; o < L->n_out; o++, gw += L->n_in) {
        int32_t d = L->delta[o];
        if (d == 0) continue;
        if (s <= 30) {
            for (i = 0; i < L->n_in; i++) sat += add_sat32(&gw[i], ebp_rshift_rn32(d * (int32_t)in[i], s));
            sat += add_sat32(&L->gb[o], ebp_rshift_rn32(d * one, s));
        } else { /* s == 31: only |product| == 2^30 rounds to +-1 */
            for (i = 0; i < L->n_in; i++) sat += add_sat32(&gw[i], (int32_t)ebp_rshift_rn(d * (int32_t)in[i], s));
            sat += add_sat32(&L->gb[o], (int32_t)ebp_rshift_rn(d * one, s));
        }
    }
    L->stats.sat_grad += sat;
}
