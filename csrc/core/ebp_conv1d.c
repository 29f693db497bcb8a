/*
 * ebp_conv1d.c - the 1-D convolution layer: forward pass, the raw deltas it hands the layer below, its
 * gradient accumulation and its fused online update. Plain loops: each one is the rule it implements.
 * Layers with int8 weights (dense ones too, as the convolution of an (n_in, 1) input with kernel 1) run
 * here: weights are read through ebp_w / ebp_b and stored saturated to their type.
 *
 * Shapes (channel-major, as in edgebp.h): input x (in_ch, in_len), weights w (ch, in_ch, kernel), biases
 * b (ch), outputs y and deltas (ch, len), len = (in_len - kernel) / stride + 1 ('valid' padding).
 *   z[o][t] = b[o] + sum_{c, j} w[o][c][j] x[c][t stride + j]
 */
#include "ebp_internal.h"

/* index of x[c][t stride + j] in the flat input */
static inline uint32_t in_index(const ebp_layer_t *L, uint32_t c, uint32_t t, uint32_t j) {
    return c * L->in_len + t * L->stride + j;
}

/* Forward: the exact int64 pre-activation (bias at the product's format), then ebp_act_out; a softmax
 * (dense output layers only, len 1) takes the Q12 pre-activations through scratch to ebp_softmax_out. */
EBP_INTERNAL void ebp_conv1d_fwd(ebp_layer_t *L, const int16_t *in, int64_t *scratch) {
    const int zf = L->w_frac + L->in_frac;
    const uint32_t K = L->kernel;
    uint32_t o, t, c, j, sat = 0;
    for (o = 0; o < L->ch; o++) {
        const uint32_t wo = o * L->in_ch * K;
        for (t = 0; t < L->len; t++) {
            int64_t acc = ebp_b(L, o) * ((int32_t)1 << L->in_frac); /* |product| <= 2^30 each */
            for (c = 0; c < L->in_ch; c++) {
                const int16_t *x = in + in_index(L, c, t, 0);
                if (L->w8 != NULL) { /* the same sum over int8 or int16 weights */
                    const int8_t *w = L->w8 + wo + c * K;
                    for (j = 0; j < K; j++) acc += (int32_t)w[j] * x[j];
                } else {
                    const int16_t *w = L->w + wo + c * K;
                    for (j = 0; j < K; j++) acc += (int32_t)w[j] * x[j];
                }
            }
            if (L->act == EBP_ACT_SOFTMAX)
                scratch[o] = requant(acc, zf, EBP_Z_FRAC);
            else
                L->y[o * L->len + t] = ebp_act_out(L->act, acc, zf, L->a_frac, &sat);
        }
    }
    if (L->act == EBP_ACT_SOFTMAX) ebp_softmax_out(L, scratch, &sat);
    L->stats.sat_out += sat;
}

/*
 * dL/dx_i for input i = (c, p) of conv layer N, before the activation derivative of the layer below:
 * sum over o and the windows t that contain p (p = t stride + j, 0 <= j < kernel) of w[o][c][j] delta[o][t].
 * Its exponent is N->delta_exp - N->w_frac; at most ch kernel <= 2^16 products of 2^30 (ebp_cfg_check).
 */
EBP_INTERNAL int64_t ebp_conv1d_back(const ebp_layer_t *N, uint32_t i) {
    const uint32_t c = i / N->in_len, p = i % N->in_len, K = N->kernel, S = N->stride;
    const uint32_t t_lo = p + 1u > K ? (p + 1u - K + S - 1u) / S : 0u; /* first t with t S + K > p */
    uint32_t t_hi = p / S, o, t;                                       /* last t with t S <= p */
    int64_t acc = 0;
    if (t_hi > N->len - 1u) t_hi = N->len - 1u;
    for (o = 0; o < N->ch; o++) {
        const uint32_t w = (o * N->in_ch + c) * K + p;
        const int16_t *d = N->delta + (size_t)o * N->len;
        if (N->w8 != NULL)
            for (t = t_lo; t <= t_hi; t++) acc += (int32_t)N->w8[w - t * S] * d[t];
        else
            for (t = t_lo; t <= t_hi; t++) acc += (int32_t)N->w[w - t * S] * d[t];
    }
    return acc;
}

/* sum_t v[t] x[c][t stride + j] over the output positions, exact: the gradient's (or lr-scaled update's)
 * sum for weight (o, c, j), v = the row of deltas of output channel o; at most len products of 2^30 */
static int64_t window_dot(const ebp_layer_t *L, const int16_t *v, const int16_t *in, uint32_t c, uint32_t j) {
    int64_t acc = 0;
    uint32_t t;
    for (t = 0; t < L->len; t++) acc += (int32_t)v[t] * in[in_index(L, c, t, j)];
    return acc;
}

/*
 * Adds one sample's gradient to the accumulators at the shared exponent g_exp, like a dense layer's but with
 * sums over the len output positions: each weight's sample gradient sum_t delta[o][t] x[c][t stride + j]
 * (int64, at most 2^(30 + lg), lg = bit_length(len - 1)) sits at exponent e_p = delta_exp - in_frac, and the
 * accumulator keeps EBP_GRAD_HEADROOM bits above that bound: e_new = e_p + lg + EBP_GRAD_HEADROOM. Rescaling,
 * rounding (half away from zero) and saturation (counted in sat_grad) as for dense layers.
 */
EBP_INTERNAL void ebp_conv1d_accumulate_grad(ebp_layer_t *L, const int16_t *in) {
    const int e_p = L->delta_exp - L->in_frac, e_new = e_p + bit_length(L->len - 1u) + EBP_GRAD_HEADROOM;
    const uint32_t K = L->kernel;
    uint32_t o, c, j, k, t, sat = 0;
    int s;
    if (L->g_exp == INT16_MIN) {
        L->g_exp = (int16_t)e_new;
    } else if (e_new > L->g_exp) {
        int r = e_new - L->g_exp > 62 ? 62 : e_new - L->g_exp;
        for (k = 0; k < L->n_w; k++) L->gw[k] = (int32_t)ebp_rshift_rn(L->gw[k], r);
        for (k = 0; k < L->n_b; k++) L->gb[k] = (int32_t)ebp_rshift_rn(L->gb[k], r);
        L->g_exp = (int16_t)e_new;
    }
    s = L->g_exp - e_p;
    if (s > 62) s = 62;
    for (o = 0; o < L->ch; o++) {
        const int16_t *d = L->delta + (size_t)o * L->len;
        int32_t *gw = L->gw + (size_t)o * L->in_ch * K;
        int64_t gb = 0;
        for (c = 0; c < L->in_ch; c++)
            for (j = 0; j < K; j++)
                sat += add_sat32(&gw[c * K + j], (int32_t)ebp_rshift_rn(window_dot(L, d, in, c, j), s));
        for (t = 0; t < L->len; t++) gb += (int32_t)d[t] * ((int32_t)1 << L->in_frac);
        sat += add_sat32(&L->gb[o], (int32_t)ebp_rshift_rn(gb, s));
    }
    L->stats.sat_grad += sat;
}

/* in one pass, window_dot (*g, the exact gradient sum) and the same sum with every delta first scaled by the
 * learning rate's mantissa, dl = round(delta lr_m / 2^16) (|delta lr_m| < 2^31, |dl| <= 2^15), returned;
 * in = NULL: the bias (every input 2^in_frac) */
static int64_t window_dot_lr(const ebp_layer_t *L, const int16_t *d, int32_t lr_m, const int16_t *in, uint32_t c,
                             uint32_t j, int64_t *g) {
    const int16_t *x = in != NULL ? in + in_index(L, c, 0, j) : NULL;
    const int32_t one = (int32_t)1 << L->in_frac;
    int64_t acc = 0, grad = 0;
    uint32_t t;
    for (t = 0; t < L->len; t++) {
        const int32_t v = x != NULL ? x[t * L->stride] : one;
        grad += (int32_t)d[t] * v;
        acc += ebp_rshift_rn32(d[t] * lr_m, 16) * v; /* |dl v| <= 2^30: an int32 product */
    }
    *g = grad;
    return acc;
}

/* one parameter's online update p / 2^S in weight LSBs: S <= 0 exact (saturating, clamped to +-65535, beyond
 * which every update saturates the weight alike), else rounded in the configured mode, always stochastically
 * for an int8 layer (S capped at 62) */
static int32_t conv_update(ebp_net_t *net, const ebp_layer_t *L, int64_t p, int S) {
    int64_t q;
    if (S <= 0) {
        q = ebp_lshift_sat(p, -S);
    } else {
        if (S > 62) S = 62;
        q = net->cfg.rounding == EBP_ROUND_STOCHASTIC || L->w8 != NULL
                ? ebp_rshift_sr(p, S, ebp_xorshift32(&net->rng))
                : ebp_rshift_rn(p, S);
    }
    return (int32_t)(q > 65535 ? 65535 : q < -65535 ? -65535 : q);
}

/* parameter k (weights) or bias k (bias set) of L minus q, saturated to its type; returns 1 if it clipped */
static uint32_t param_sub(ebp_layer_t *L, uint32_t k, int bias, int32_t q) {
    if (L->w8 != NULL) {
        int8_t *v = bias ? &L->b8[k] : &L->w8[k];
        int32_t nv = *v - q;
        *v = (int8_t)(nv > INT8_MAX ? INT8_MAX : nv < INT8_MIN ? INT8_MIN : nv);
        return *v != nv;
    }
    return sub_sat16(bias ? &L->b[k] : &L->w[k], q);
}

/*
 * Online SGD, one sample, without accumulators: w -= lr sum_t delta[o][t] x[c][t stride + j]. As for a dense
 * layer, each delta is first scaled to dl = round(delta lr_m / 2^16); the parameter then moves by
 * sum_t dl[o][t] x[...] / 2^S weight LSBs, S = -(delta_exp + lr_e + 16 - in_frac + w_frac), rounded in the
 * configured mode (conv_update). Parameters whose gradient sum_t delta x is zero are skipped (no draw, not
 * counted); the others count in updates, and in zero_updates when they moved by 0. Weights of channel o in
 * order (c, j), then its bias (input 2^in_frac).
 */
EBP_INTERNAL void ebp_conv1d_update_online(ebp_net_t *net, ebp_layer_t *L, const int16_t *in) {
    const int S = -(L->delta_exp + net->hp.lr_e + 16 - L->in_frac + L->w_frac);
    const int32_t lr_m = net->hp.lr_m;
    const uint32_t K = L->kernel;
    uint32_t o, c, j, updates = 0, zeros = 0, sat = 0;
    for (o = 0; o < L->ch; o++) {
        const int16_t *d = L->delta + (size_t)o * L->len;
        const uint32_t wo = o * L->in_ch * K;
        int64_t g, p;
        int32_t q;
        for (c = 0; c < L->in_ch; c++)
            for (j = 0; j < K; j++) {
                p = window_dot_lr(L, d, lr_m, in, c, j, &g);
                if (g == 0) continue;
                q = conv_update(net, L, p, S);
                updates++;
                zeros += q == 0;
                sat += param_sub(L, wo + c * K + j, 0, q);
            }
        p = window_dot_lr(L, d, lr_m, NULL, 0, 0, &g);
        if (g == 0) continue;
        q = conv_update(net, L, p, S);
        updates++;
        zeros += q == 0;
        sat += param_sub(L, o, 1, q);
    }
    L->stats.updates += updates;
    L->stats.zero_updates += zeros;
    L->stats.sat_param += sat;
}
