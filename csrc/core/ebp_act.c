/*
 * ebp_act.c - the activation and loss rules on top of the tables (ebp_tables.h): exp and ln, and ebp_loss.
 * The table lookups the kernels inline (sigmoid_pos_q16, act_deriv_q15) are in ebp_internal.h.
 */
#include "ebp_internal.h"

/* exp(-x) of a Q12 argument x >= 0, Q16 */
EBP_INTERNAL int32_t ebp_exp_neg(int64_t x) {
    uint32_t idx, frac;
    int32_t y0, y1;
    if (x >= ((int32_t)16 << 12)) return 0; /* x >= 16.0 (an int32 constant: int may have 16 bits) */
    idx = (uint32_t)x >> 8;
    frac = (uint32_t)x & 255u;
    y0 = EBP_TAB32(ebp_exp_neg_q16, idx);
    y1 = EBP_TAB32(ebp_exp_neg_q16, idx + 1);
    return y0 - (int32_t)(((uint32_t)(y0 - y1) * frac + 128u) >> 8); /* the table does not increase */
}

/* ln(v * 2^-frac) in Q16 for v >= 1 (v < 2^16) */
static int32_t ln_q16(int32_t v, int frac) {
    int n = 0;
    uint32_t f, idx, rem;
    int32_t y0, y1;
    while ((v >> (n + 1)) != 0) n++; /* v > 0: msb index */
    f = ((uint32_t)v << (16 - n)) - 65536u;
    idx = f >> 10;
    rem = f & 1023u;
    y0 = EBP_TAB32(ebp_ln1p_q16, idx);
    y1 = EBP_TAB32(ebp_ln1p_q16, idx + 1);
    return y0 + (int32_t)(((uint32_t)(y1 - y0) * rem + 512u) >> 10) + (n - frac) * EBP_LN2_Q16;
}

/* ---- loss ------------------------------------------------------------------------------------------- */

int ebp_loss(const ebp_net_t *net, const int16_t *t, int32_t *loss_q16) {
    const ebp_layer_t *L;
    int64_t sum = 0;
    int32_t one;
    uint16_t k;
    if (net == NULL || t == NULL || loss_q16 == NULL) return EBP_ERR_ARG;
    L = &net->layers[net->cfg.n_layers - 1];
    one = (int32_t)1 << L->a_frac;
    if (net->cfg.loss == EBP_LOSS_MSE || !EBP_CE) { /* (EBP_CE 0: ebp_cfg_check refused cross-entropy) */
        for (k = 0; k < L->n_out; k++) {
            int64_t d = (int64_t)L->y[k] - t[k];
            sum += d * d;
        }
        *loss_q16 = ebp_sat32(requant(sum, 2 * L->a_frac + 1, EBP_LOSS_FRAC)); /* 1/2 sum d^2 */
        return EBP_OK;
    }
    for (k = 0; k < L->n_out; k++) {
        int32_t y = L->y[k] < 1 ? 1 : L->y[k];
        sum -= (int64_t)t[k] * ln_q16(y, L->a_frac);
        if (L->act == EBP_ACT_SIGMOID) {
            int32_t ny = one - L->y[k] < 1 ? 1 : one - L->y[k];
            sum -= (int64_t)(one - t[k]) * ln_q16(ny, L->a_frac);
        }
    }
    *loss_q16 = ebp_sat32(requant(sum, L->a_frac + 16, EBP_LOSS_FRAC));
    return EBP_OK;
}

/* softmax of the Q12 pre-activations z (n_out, overwritten) into L->y: exp(z - max z) / sum, one unsigned
 * division per output rounded half up; clips counted in *sat */
EBP_INTERNAL void ebp_softmax_out(ebp_layer_t *L, int64_t *z, uint32_t *sat) {
    const uint32_t n_out = L->n_out;
    int64_t zmax = z[0];
    uint32_t o, sum = 0;
    for (o = 1; o < n_out; o++)
        if (z[o] > zmax) zmax = z[o];
    for (o = 0; o < n_out; o++) {
        z[o] = ebp_exp_neg(zmax - z[o]); /* (0, 65536] */
        sum += (uint32_t)z[o];
    }
    for (o = 0; o < n_out; o++) {
        uint32_t e = (uint32_t)z[o] << L->a_frac; /* <= 2^31 */
        L->y[o] = sat16_count((e + sum / 2u) / sum, sat);
    }
}

/* a Q16 activation value v (|v| <= 2^16) in Q a_frac, rounded half away from zero; only +1.0 at a_frac 15
 * leaves int16, and is clipped and counted */
static int16_t q16_to_out(int32_t v, int a_frac, uint32_t *sat) {
    int32_t y = ebp_rshift_rn32(v, 16 - a_frac);
    if (y > INT16_MAX) {
        (*sat)++;
        return INT16_MAX;
    }
    return (int16_t)y;
}

/* sigmoid of a signed Q12 argument, Q16 (the table on |z|, symmetry for z < 0) */
static int32_t sigmoid_q16(int32_t z) {
    uint32_t a = z < 0 ? 0u - (uint32_t)z : (uint32_t)z;
    int32_t v = (int32_t)sigmoid_pos_q16(a);
    return z < 0 ? EBP_ONE_Q16 - v : v;
}

/*
 * The plain rule of every elementwise activation, on one pre-activation acc with zf fractional bits (exact):
 * linear and ReLU requant acc to a_frac, saturated (counted in *sat); sigmoid requants to Q12 (saturated to
 * int32, not counted), looks the table up and rounds the Q16 value to a_frac; tanh(z) = 2 sigmoid(2z) - 1.
 * The dense kernels (ebp_dense.c) compute exactly this, faster; conv1d layers call it.
 */
EBP_INTERNAL int16_t ebp_act_out(int act, int64_t acc, int zf, int a_frac, uint32_t *sat) {
    switch (act) {
    case EBP_ACT_SIGMOID: return q16_to_out(sigmoid_q16(ebp_sat32(requant(acc, zf, EBP_Z_FRAC))), a_frac, sat);
    case EBP_ACT_TANH:
        return q16_to_out(2 * sigmoid_q16(ebp_sat32(requant(acc, zf, EBP_Z_FRAC + 1))) - EBP_ONE_Q16, a_frac, sat);
    case EBP_ACT_RELU:
        if (acc < 0) acc = 0;
        return sat16_count(requant(acc, zf, a_frac), sat);
    default: return sat16_count(requant(acc, zf, a_frac), sat);
    }
}
