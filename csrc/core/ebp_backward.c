/*
 * ebp_backward.c - the backward pass: deltas in block floating point, layer by layer from the output,
 * and ebp_backward / ebp_zero_grad.
 */
#include "ebp_internal.h"

/* ---- backward --------------------------------------------------------------------------------------- */


/* dL/dz of output neuron i before normalisation: (y - t) with cross-entropy, (y - t) f'(y) with squared
 * error; |result| < 2^31 */
static inline int32_t raw_out(const ebp_layer_t *L, const int16_t *t, uint32_t i, int ce, int32_t one, int sd) {
    int32_t d = (int32_t)L->y[i] - t[i];
    return ce ? d : d * act_deriv_q15(L->act, L->y[i], one, sd);
}

/* dL/dz of hidden neuron i before normalisation: f'(y_i) sum_k w_ki delta_k over the next layer N */

/* ebp_rshift_rn(x, s) for 1 <= s <= 62 when the result is known to lie below 2^31 in magnitude */
EBP_FIXED_BEGIN
EBP_FIXED_FN static inline int32_t rshift_rn_small(int64_t x, int s) {
    uint64_t v = (x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x) + ((uint64_t)1 << (s - 1));
    uint32_t m = s < 32 ? ((uint32_t)v >> s) | ((uint32_t)(v >> 32) << (32 - s)) : (uint32_t)(v >> 32) >> (s - 32);
    return x < 0 ? -(int32_t)m : (int32_t)m;
}
EBP_FIXED_END

/* one sign word's mantissas of unpack_delta, d to end (at most 32): floor((packed + half) / 2^sh), or (left, s <= 0)
 * packed 2^l; negated where the word's bit is set (bit 0 for d[0]) */
EBP_INLINE void unpack_word(int16_t *d, const int16_t *end, uint32_t sw, uint32_t half, int sh, int l, int left) {
    for (; d != end; d++, sw >>= 1) {
        const uint32_t p = (uint16_t)*d; /* the packed magnitude: the same object's bits */
        const int32_t m = (int32_t)(left ? p << l : (p + half) >> sh);
        *d = (int16_t)(sw & 1u ? -m : m);
    }
}

/* the mantissas at shift s from hidden_pass's packed magnitudes (mode 2) and signs; s0 as there */
static void unpack_delta(int16_t *delta, uint32_t n, const uint32_t *signs, int s, int s0) {
    const int sh = s > 0 ? s - (s0 > 0 ? s0 - 1 : 0) : 0; /* s - a >= 1; for s <= 0, a = 0 */
    const uint32_t half = sh > 0 ? (uint32_t)1 << (sh - 1) : 0u;
    int16_t *d = delta, *end = delta + n;
#if defined(EBP_HAVE_ARCH_UNPACK) /* x86-64: 8 neurons a step (csrc/arch/ebp_arch_x86.h), the last n % 8 below */
    if (s > 0) {
        const uint32_t k = n & ~7u;
        ebp_x86_unpack(delta, k, signs, sh);
        if (k != n) unpack_word(delta + k, end, signs[k >> 5] >> (k & 31u), half, sh, 0, 0);
        return;
    }
#endif
#if defined(EBP_HAVE_ARCH_UNPACK_WORD) /* Arm: unpack_word's s > 0 rule in assembly (csrc/arch/ebp_arch_arm.h) */
    if (s > 0) {
        for (; d != end; signs++) {
            int16_t *wend = end - d > 32 ? d + 32 : end;
            ebp_arm_unpack_word(d, (uint32_t)(wend - d), *signs, half, (uint32_t)sh);
            d = wend;
        }
        return;
    }
#endif
    for (; d != end; signs++) { /* 32 neurons per sign word */
        int16_t *wend = end - d > 32 ? d + 32 : end;
        if (s > 0)
            unpack_word(d, wend, *signs, half, sh, 0, 0);
        else
            unpack_word(d, wend, *signs, 0u, 0, -s, 1);
        d = wend;
    }
}

/*
 * Layer l's deltas from their raw values (at exponent e): int16 mantissas with one shared exponent, largest
 * magnitude in [2^14, 2^15) (block floating point), or plain Q15 with EBP_FLAG_FIXED_DELTA. t is the target
 * for the output layer, NULL for a hidden one. The block exponent needs every raw value before the first
 * mantissa: they are kept in scratch memory when the network has gradient memory anyway; an EBP_FLAG_ONLINE
 * network, which so needs no scratch at all, packs a hidden layer's into its delta array (hidden_pass) and
 * recomputes an output layer's, a subtraction and a multiply each. Returns 0 when every delta is zero.
 */
/*
 * dL/dz of hidden neuron i of layer L before normalisation, whatever the kind of the layer above, N:
 * f'(y_i) times what N hands back for its input i (dense: sum_k w_ki delta_k; conv1d: ebp_conv1d_back;
 * pooling: ebp_pool_back, at EBP_POOL_FRAC more fractional bits).
 */
static int64_t raw_hidden(const ebp_layer_t *L, const ebp_layer_t *N, uint32_t i, int32_t one, int sd) {
    if (N->kind == EBP_KIND_DENSE && N->w != NULL) return ebp_dense_raw_hidden(L, N, i, one, sd);
    if (!EBP_CONV && !EBP_INT8) return 0; /* refused by ebp_cfg_check: every layer is a dense int16 one */
    return (ebp_plain(N) ? ebp_conv1d_back(N, i) : ebp_pool_back(N, L->y, i)) *
           act_deriv_q15(L->act, L->y[i], one, sd);
}

#if EBP_X86_SSE2 || EBP_ARMV6M
/* normalize_delta of an output layer of at most 16 neurons without a cache (x86-64, ARMv6-M): its raw values (int32,
 * raw_out) kept on the stack instead of computed twice, and then the same rule, round(r / 2^s) by 32-bit magnitudes
 * (|r| < 2^31, 1 <= s <= 17: no wrap), or r 2^-s. (On the Cortex-M3/M4 it gains as much for the online networks but
 * costs GCC's normalize_delta 5-9 instructions with gradient memory: left to the portable loop there.) */
static int normalize_out_kept(ebp_layer_t *L, const int16_t *t, int ce, int e) {
    const int sd = 2 * L->a_frac - 15;
    const int32_t one = (int32_t)1 << L->a_frac;
    const uint32_t n = L->n_out;
    int32_t r[16];
    uint32_t i, max32 = 0;
    int s;
    for (i = 0; i < n; i++) {
        const uint32_t a = (r[i] = raw_out(L, t, i, ce, one, sd)) < 0 ? 0u - (uint32_t)r[i] : (uint32_t)r[i];
        if (a > max32) max32 = a;
    }
    if (max32 == 0) {
        for (i = 0; i < n; i++) L->delta[i] = 0;
        L->delta_exp = 0;
        return 0;
    }
    s = bit_length(max32) - 15;
    if (s > 0 && ((max32 + ((uint32_t)1 << (s - 1))) >> s) >> 15 != 0) s++; /* rounding reached 2^15 */
    if (s > 0) {
        const uint32_t half = (uint32_t)1 << (s - 1);
        for (i = 0; i < n; i++) {
            const uint32_t m = ((r[i] < 0 ? 0u - (uint32_t)r[i] : (uint32_t)r[i]) + half) >> s;
            L->delta[i] = (int16_t)(r[i] < 0 ? -(int32_t)m : (int32_t)m);
        }
    } else {
        for (i = 0; i < n; i++) L->delta[i] = (int16_t)(r[i] * ((int32_t)1 << -s));
    }
    L->delta_exp = (int16_t)(e + s);
    return 1;
}
#endif

static int normalize_delta(ebp_net_t *net, int l, const int16_t *t, int e) {
    ebp_layer_t *L = &net->layers[l];
    const ebp_layer_t *N = t == NULL ? &net->layers[l + 1] : NULL;
    const int ce = EBP_CE && net->cfg.loss == EBP_LOSS_CE, sd = 2 * L->a_frac - 15;
    const int32_t one = (int32_t)1 << L->a_frac;
    const uint32_t n = L->n_out;
    int64_t *cache = !EBP_GRAD_MEMORY || (net->cfg.flags & EBP_FLAG_ONLINE) ? NULL : net->scratch;
    uint32_t signs[EBP_PACK_WIDTH / 32], *pack = NULL;
    uint64_t maxabs = 0;
    uint32_t i;
    int s, s0;
    if (EBP_FIXED_DELTA && (net->cfg.flags & EBP_FLAG_FIXED_DELTA)) {
        int nz = 0;
        for (i = 0; i < n; i++) {
            int64_t r = N != NULL ? raw_hidden(L, N, i, one, sd) : raw_out(L, t, i, ce, one, sd);
            L->delta[i] = sat16_count(requant(r, -e, 15), &L->stats.sat_delta);
            nz |= L->delta[i] != 0;
        }
        L->delta_exp = -15;
        return nz;
    }
#if EBP_X86_SSE2 || EBP_ARMV6M
    if (N == NULL && cache == NULL && n <= 16u) return normalize_out_kept(L, t, ce, e);
#endif
    if (N == NULL) {
        uint32_t max32 = 0;
        for (i = 0; i < n; i++) {
            int32_t r = raw_out(L, t, i, ce, one, sd);
            uint32_t a = r < 0 ? 0u - (uint32_t)r : (uint32_t)r;
            if (a > max32) max32 = a;
            if (cache != NULL) cache[i] = r;
        }
        maxabs = max32;
    } else if (N->kind == EBP_KIND_DENSE && N->w != NULL) {
        if (cache == NULL && n <= EBP_PACK_WIDTH) pack = signs;
        maxabs = ebp_dense_hidden_raw(L, N, cache, pack);
    } else if (EBP_CONV || EBP_INT8) { /* below a conv1d or pooling layer: the plain loop (cached, or again below) */
        for (i = 0; i < n; i++) {
            int64_t r = raw_hidden(L, N, i, one, sd);
            uint64_t a = r < 0 ? (uint64_t)0 - (uint64_t)r : (uint64_t)r;
            if (a > maxabs) maxabs = a;
            if (cache != NULL) cache[i] = r;
        }
    }
    if (maxabs == 0) {
        for (i = 0; i < n; i++) L->delta[i] = 0;
        L->delta_exp = 0;
        return 0;
    }
    s = s0 = bit_length(maxabs) - 15;
    if (s > 0 && ((maxabs + ((uint64_t)1 << (s - 1))) >> s) >> 15 != 0) s++; /* rounding reached 2^15 */
    if (pack != NULL) {
        unpack_delta(L->delta, n, signs, s, s0);
        L->delta_exp = (int16_t)(e + s);
        return 1;
    }
    if (cache != NULL && s > 0 && s < 32) { /* the common case: rshift_rn_small on 32-bit halves */
        const uint64_t half = (uint64_t)1 << (s - 1);
        const int64_t *c = cache, *c_end = cache + n;
        int16_t *d = L->delta;
        for (; c != c_end; c++, d++) {
            uint64_t v = (*c < 0 ? (uint64_t)0 - (uint64_t)*c : (uint64_t)*c) + half;
            uint32_t m = ((uint32_t)v >> s) | ((uint32_t)(v >> 32) << (32 - s));
            *d = (int16_t)(*c < 0 ? -(int32_t)m : (int32_t)m);
        }
        L->delta_exp = (int16_t)(e + s);
        return 1;
    }
    /* the rest: cached with s outside 1..31, or computed again (an output layer, or one wider than packs) */
    for (i = 0; i < n; i++) {
        int64_t r = cache != NULL ? cache[i] : N != NULL ? raw_hidden(L, N, i, one, sd) : raw_out(L, t, i, ce, one, sd);
        /* |r| <= maxabs, so the mantissa fits: below 2^15 when shifted left, at most 2^15 - 1 after rounding */
        L->delta[i] = (int16_t)(s > 0 ? rshift_rn_small(r, s) : (int32_t)r * ((int32_t)1 << -s));
    }
    L->delta_exp = (int16_t)(e + s);
    return 1;
}

/* Deltas of every layer from net->first_train up for target t, from the output back (generalised delta
 * rule); the layers below get none. */
EBP_INTERNAL void ebp_backward_deltas(ebp_net_t *net, const int16_t *t) {
    int l = (int)net->cfg.n_layers - 1, live;
    const int first = net->first_train;
    uint16_t i;
    if (first > l) return; /* every layer with parameters is frozen */
    {   /* output layer: dL/dz = (y - t) with cross-entropy, (y - t) f'(y) with squared error */
        const ebp_layer_t *L = &net->layers[l];
        live = normalize_delta(net, l, t, EBP_CE && net->cfg.loss == EBP_LOSS_CE ? -L->a_frac : -(L->a_frac + 15));
    }
    for (l--; l >= first; l--) { /* hidden layers: delta_j = f'(y_j) * sum_k w_kj delta_k */
        ebp_layer_t *L = &net->layers[l];
        const ebp_layer_t *N = &net->layers[l + 1];
        if (!live) {
            for (i = 0; i < L->n_out; i++) L->delta[i] = 0;
            L->delta_exp = 0;
            continue;
        }
        /* the exponent of raw_hidden: N's deltas, its weights (or pooling share), and f' in Q15 */
        live = normalize_delta(net, l, NULL,
                               N->delta_exp - (N->n_w > 0 ? N->w_frac : EBP_POOL_FRAC) - 15);
    }
}

static const int16_t *layer_input(const ebp_net_t *net, int l) {
    return l == 0 ? net->x : net->layers[l - 1].y;
}

int ebp_backward(ebp_net_t *net, const int16_t *t, int32_t *loss_q16) {
    int l;
    if (net == NULL || t == NULL) return EBP_ERR_ARG;
    if (net->mode != EBP_MODE_TRAIN || !net->have_forward || (net->cfg.flags & EBP_FLAG_ONLINE)) return EBP_ERR_STATE;
    if (!EBP_GRAD_MEMORY) return EBP_ERR_FEATURE; /* unreachable: such a build trains EBP_FLAG_ONLINE networks only */
    if (loss_q16 != NULL) ebp_loss(net, t, loss_q16);
    ebp_backward_deltas(net, t);
    /* gradients: dL/dw_oi = delta_o * in_i, dL/db_o = delta_o */
    for (l = net->first_train; l < (int)net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        int nz = 0;
        uint16_t i;
        if (L->gw == NULL) continue; /* frozen, or no parameters */
        for (i = 0; i < L->n_out; i++) nz |= L->delta[i] != 0;
        if (!nz) continue;
        if (ebp_plain(L))
            ebp_conv1d_accumulate_grad(L, layer_input(net, l));
        else
            ebp_dense_accumulate_grad(L, layer_input(net, l));
    }
    net->grad_count++;
    net->have_forward = 0;
    return EBP_OK;
}

int ebp_zero_grad(ebp_net_t *net) {
    unsigned l;
    uint32_t k, n;
    if (net == NULL) return EBP_ERR_ARG;
    if (net->mode != EBP_MODE_TRAIN) return EBP_ERR_STATE;
    for (l = 0; l < net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        L->g_exp = INT16_MIN;
        if (L->gw == NULL) continue; /* EBP_FLAG_ONLINE, frozen, or no parameters */
        n = L->n_w;
        for (k = 0; k < n; k++) L->gw[k] = 0;
        for (k = 0; k < L->n_b; k++) L->gb[k] = 0;
    }
    net->grad_count = 0;
    return EBP_OK;
}
