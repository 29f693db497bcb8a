/*
 * ebp_pool.c - max and average pooling over windows, and global average pooling (one window of the whole
 * length), per channel: the forward pass and the raw deltas handed to the layer below. No parameters; the
 * output keeps the input's format. Input x (ch, in_len), output (ch, len), len = (in_len - kernel) / stride + 1.
 */
#include "ebp_internal.h"

/* the first index of window t of channel c in the flat input */
static inline uint32_t window_start(const ebp_layer_t *L, uint32_t c, uint32_t t) {
    return c * L->in_len + t * L->stride;
}

/* Forward: max pooling takes the window's maximum; average pooling its mean, rounded half away from zero
 * (round(|s| / K) = floor((2 |s| + K) / 2K), the sign applied after). Neither leaves int16. */
EBP_INTERNAL void ebp_pool_fwd_s16(ebp_layer_t *L, const int16_t *in) {
    const uint32_t K = L->kernel;
    uint32_t c, t, j;
    for (c = 0; c < L->ch; c++)
        for (t = 0; t < L->len; t++) {
            const int16_t *x = in + window_start(L, c, t);
            int16_t *y = &L->y[c * L->len + t];
            if (L->kind == EBP_KIND_MAXPOOL1D) {
                int16_t m = x[0];
                for (j = 1; j < K; j++)
                    if (x[j] > m) m = x[j];
                *y = m;
            } else {
                int32_t s = 0; /* |s| <= 1024 * 2^15 */
                uint32_t mag, q;
                for (j = 0; j < K; j++) s += x[j];
                mag = s < 0 ? 0u - (uint32_t)s : (uint32_t)s;
                q = (2u * mag + K) / (2u * K);
                *y = (int16_t)(s < 0 ? -(int32_t)q : (int32_t)q);
            }
        }
}

/*
 * dL/dx_i for input i = (c, p) of pooling layer N (whose input values are x), before the activation
 * derivative of the layer below: over the windows t of channel c that contain p, max pooling passes
 * delta[c][t] to the window's first maximum only, average pooling delta[c][t] / K to every input. In
 * Q EBP_POOL_FRAC: the share is 2^23 (max) or round(2^23 / K) (average); exponent N->delta_exp - 23.
 */
EBP_INTERNAL int64_t ebp_pool_back(const ebp_layer_t *N, const int16_t *x, uint32_t i) {
    const uint32_t c = i / N->in_len, p = i % N->in_len, K = N->kernel, S = N->stride;
    const uint32_t t_lo = p + 1u > K ? (p + 1u - K + S - 1u) / S : 0u; /* first window with t S + K > p */
    const int64_t share = N->kind == EBP_KIND_MAXPOOL1D ? (int64_t)1 << EBP_POOL_FRAC
                                                        : (int64_t)((((uint32_t)1 << (EBP_POOL_FRAC + 1)) / K + 1u) >> 1);
    uint32_t t_hi = p / S, t, j;
    int32_t sum = 0; /* of the deltas passed to p: at most 255 windows of 2^15 */
    if (t_hi > N->len - 1u) t_hi = N->len - 1u;
    for (t = t_lo; t <= t_hi; t++) {
        const int16_t d = N->delta[c * N->len + t];
        if (N->kind == EBP_KIND_MAXPOOL1D) {
            const int16_t *w = x + window_start(N, c, t);
            uint32_t first = 0;
            for (j = 1; j < K; j++)
                if (w[j] > w[first]) first = j;
            if (t * S + first != p) continue;
        }
        sum += d;
    }
    return (int64_t)sum * share; /* one multiply (a shift for max pooling) */
}
