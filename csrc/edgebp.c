/*
 * edgebp.c - fixed-point forward pass, backward pass and update. The API and the number formats are
 * documented in edgebp.h; the rounding helpers in ebp_fixed.h.
 */
#include "edgebp.h"
#include "ebp_fixed.h"
#include "ebp_tables.h"

/* keep a hot function out of its caller (register pressure), or a kernel specialised for constant arguments
 * in it, where the compiler allows saying so (like CMSIS's __STATIC_FORCEINLINE) */
#if defined(__GNUC__) && !defined(__OPTIMIZE_SIZE__) /* -Os: the compiler weighs the copies' size */
#define EBP_NOINLINE __attribute__((noinline))
#define EBP_INLINE static inline __attribute__((always_inline))
#elif defined(__GNUC__)
#define EBP_NOINLINE __attribute__((noinline))
#define EBP_INLINE static inline
#else
#define EBP_NOINLINE
#define EBP_INLINE static inline
#endif

/* dot products unrolled by 4, except on ARMv6-M (Cortex-M0/M0+), whose 8 low registers cannot hold the
 * unrolled 64-bit sums (measured: tools/bench) */
#ifndef EBP_UNROLL_DOT
#if defined(__ARM_ARCH_6M__)
#define EBP_UNROLL_DOT 0
#else
#define EBP_UNROLL_DOT 1
#endif
#endif

#define EBP_ONE_Q16 65536
#define EBP_LN2_Q16 45426 /* ln(2) * 2^16 */

const char *ebp_status_str(int status) {
    switch (status) {
    case EBP_OK: return "ok";
    case EBP_ERR_ARG: return "invalid argument (NULL pointer or value out of range)";
    case EBP_ERR_CONFIG: return "invalid network configuration";
    case EBP_ERR_SIZE: return "buffer too small for this network";
    case EBP_ERR_ALIGN: return "buffer not 8-byte aligned";
    case EBP_ERR_STATE: return "call out of order (backward without forward, or training an inference network)";
    case EBP_ERR_FORMAT: return "fractional bits outside 0..15";
    default: return "unknown status";
    }
}

/* x at from_frac fractional bits, re-expressed with to_frac (rounded to nearest, or saturated upwards). */
static inline int64_t requant(int64_t x, int from_frac, int to_frac) {
    int s = from_frac - to_frac;
    if (s <= 0) return ebp_lshift_sat(x, -s);
    if (s <= 31 && x > INT32_MIN && x < ((int64_t)1 << 30)) return ebp_rshift_rn32((int32_t)x, s); /* cheaper */
    return ebp_rshift_rn(x, s > 62 ? 62 : s);
}

/* an int16 from its 16 bits (two's complement), without an out-of-range conversion */
static inline int16_t s16_of_bits(uint32_t bits) {
    bits &= 0xFFFFu;
    return (int16_t)((int32_t)bits - (int32_t)((bits & 0x8000u) << 1));
}

static int16_t sat16_count(int64_t x, uint32_t *count) {
    int16_t y = ebp_sat16(x);
    if (y != x) (*count)++;
    return y;
}

/* ---- configuration and memory ----------------------------------------------------------------------- */

static int frac_ok(int f) { return f >= 0 && f <= 15; }

int ebp_cfg_check(const ebp_cfg_t *cfg) {
    unsigned l;
    if (cfg == NULL) return EBP_ERR_ARG;
    if (cfg->n_in < 1 || cfg->n_in > EBP_MAX_WIDTH || cfg->n_layers < 1 || cfg->n_layers > EBP_MAX_LAYERS ||
        cfg->loss > EBP_LOSS_CE || cfg->optimizer > EBP_OPT_MOMENTUM || cfg->rounding > EBP_ROUND_STOCHASTIC ||
        (cfg->flags & ~(EBP_FLAG_FIXED_DELTA | EBP_FLAG_ONLINE)) != 0 ||
        ((cfg->flags & EBP_FLAG_ONLINE) && cfg->optimizer != EBP_OPT_SGD))
        return EBP_ERR_CONFIG;
    if (!frac_ok(cfg->in_frac)) return EBP_ERR_FORMAT;
    for (l = 0; l < cfg->n_layers; l++) {
        const ebp_layer_cfg_t *lc = &cfg->layers[l];
        int last = l + 1u == cfg->n_layers;
        if (lc->n_out < 1 || lc->n_out > EBP_MAX_WIDTH || lc->act > EBP_ACT_SOFTMAX) return EBP_ERR_CONFIG;
        if (lc->act == EBP_ACT_SOFTMAX && (!last || cfg->loss != EBP_LOSS_CE)) return EBP_ERR_CONFIG;
        if (!frac_ok(lc->w_frac) || !frac_ok(lc->a_frac)) return EBP_ERR_FORMAT;
        if (last && cfg->loss == EBP_LOSS_CE && lc->act != EBP_ACT_SOFTMAX && lc->act != EBP_ACT_SIGMOID)
            return EBP_ERR_CONFIG;
    }
    return EBP_OK;
}

int ebp_net_memory(const ebp_cfg_t *cfg, int mode, ebp_memory_t *mem) {
    uint32_t n_in, params = 0, neurons = 0, width = 0;
    unsigned l;
    int st = ebp_cfg_check(cfg);
    if (st != EBP_OK) return st;
    if (mem == NULL || (mode != EBP_MODE_INFER && mode != EBP_MODE_TRAIN)) return EBP_ERR_ARG;
    mem->weights = 0;
    n_in = cfg->n_in;
    for (l = 0; l < cfg->n_layers; l++) {
        uint32_t n_out = cfg->layers[l].n_out;
        mem->weights += 2u * n_out * n_in;
        params += n_out * n_in + n_out;
        neurons += n_out;
        if (n_out > width) width = n_out;
        n_in = n_out;
    }
    mem->biases = 2u * neurons;
    mem->activations = 2u * (cfg->n_in + neurons);
    mem->gradients = 0;
    mem->optimizer = 0;
    if (mode == EBP_MODE_TRAIN) {
        mem->activations += 2u * neurons;                     /* deltas */
        mem->gradients = (cfg->flags & EBP_FLAG_ONLINE) ? 0u : 4u * params;
        if (cfg->optimizer == EBP_OPT_MOMENTUM) mem->optimizer = 4u * params;
    }
    /* scratch: raw deltas of the widest layer when training with gradient memory (EBP_FLAG_ONLINE
       packs them into the delta arrays instead), else only a softmax output layer's z and exp(z - max) */
    if (mode == EBP_MODE_TRAIN && !(cfg->flags & EBP_FLAG_ONLINE))
        mem->scratch = 8u * width;
    else
        mem->scratch = cfg->layers[cfg->n_layers - 1].act == EBP_ACT_SOFTMAX ? 8u * n_in : 0u;
    mem->total = mem->weights + mem->biases + mem->gradients + mem->optimizer + mem->activations + mem->scratch;
    return EBP_OK;
}

int ebp_net_init(ebp_net_t *net, const ebp_cfg_t *cfg, int mode, void *buf, size_t size) {
    ebp_memory_t mem;
    uint8_t *p = (uint8_t *)buf;
    size_t i;
    unsigned l;
    int st;
    if (net == NULL || buf == NULL) return EBP_ERR_ARG;
    st = ebp_net_memory(cfg, mode, &mem);
    if (st != EBP_OK) return st;
    if (size < mem.total) return EBP_ERR_SIZE;
    if (((uintptr_t)buf & 7u) != 0) return EBP_ERR_ALIGN;
    for (i = 0; i < mem.total; i++) p[i] = 0;
    {
        uint8_t *q = (uint8_t *)net;
        for (i = 0; i < sizeof *net; i++) q[i] = 0;
    }
    net->cfg = *cfg;
    net->mode = (uint8_t)mode;
    net->rng = 1;
    /* widest alignment first: int64 scratch, then int32 gradients and velocities, then int16 tensors */
    net->scratch = mem.scratch ? (int64_t *)(void *)p : NULL;
    p += mem.scratch;
    for (l = 0; l < cfg->n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        const ebp_layer_cfg_t *lc = &cfg->layers[l];
        L->n_in = l == 0 ? cfg->n_in : cfg->layers[l - 1].n_out;
        L->n_out = lc->n_out;
        L->act = lc->act;
        L->in_frac = l == 0 ? cfg->in_frac : cfg->layers[l - 1].a_frac;
        L->w_frac = lc->w_frac;
        L->a_frac = lc->a_frac;
        if (mode == EBP_MODE_TRAIN && !(cfg->flags & EBP_FLAG_ONLINE)) {
            L->gw = (int32_t *)(void *)p;
            p += 4u * L->n_out * L->n_in;
            L->gb = (int32_t *)(void *)p;
            p += 4u * L->n_out;
            if (cfg->optimizer == EBP_OPT_MOMENTUM) {
                L->vw = (int32_t *)(void *)p;
                p += 4u * L->n_out * L->n_in;
                L->vb = (int32_t *)(void *)p;
                p += 4u * L->n_out;
            }
        }
    }
    for (l = 0; l < cfg->n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        L->w = (int16_t *)(void *)p;
        p += 2u * L->n_out * L->n_in;
        L->b = (int16_t *)(void *)p;
        p += 2u * L->n_out;
        L->y = (int16_t *)(void *)p;
        p += 2u * L->n_out;
        if (mode == EBP_MODE_TRAIN) {
            L->delta = (int16_t *)(void *)p;
            p += 2u * L->n_out;
        }
    }
    net->x = (int16_t *)(void *)p;
    return mode == EBP_MODE_TRAIN ? ebp_zero_grad(net) : EBP_OK;
}

/* ---- initialisation and settings -------------------------------------------------------------------- */

static uint32_t isqrt64(uint64_t v) {
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > v) bit >>= 2;
    while (bit != 0) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

/* uniform integer in [-r, r] */
static int16_t uniform_q(uint32_t *rng, int32_t r) {
    uint32_t span = (uint32_t)(2 * r + 1);
    uint32_t k = (uint32_t)(((uint64_t)ebp_xorshift32(rng) * span) >> 32);
    return (int16_t)((int32_t)k - r);
}

int ebp_net_init_weights(ebp_net_t *net, int kind, uint16_t range_q12, uint32_t seed) {
    uint32_t rng = seed ? seed : 1u;
    unsigned l;
    uint32_t i;
    if (net == NULL || kind < EBP_INIT_UNIFORM || kind > EBP_INIT_HE) return EBP_ERR_ARG;
    for (l = 0; l < net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        uint32_t nw = (uint32_t)L->n_out * L->n_in;
        int64_t r;
        if (kind == EBP_INIT_UNIFORM) {
            r = requant(range_q12, 12, L->w_frac);
        } else {
            uint32_t fan = kind == EBP_INIT_XAVIER ? (uint32_t)L->n_in + L->n_out : L->n_in;
            r = isqrt64(((uint64_t)6 << (2 * L->w_frac)) / fan);
        }
        if (r > INT16_MAX) r = INT16_MAX;
        for (i = 0; i < nw; i++) L->w[i] = uniform_q(&rng, (int32_t)r);
        for (i = 0; i < L->n_out; i++) L->b[i] = kind == EBP_INIT_UNIFORM ? uniform_q(&rng, (int32_t)r) : 0;
    }
    return EBP_OK;
}

int ebp_net_seed(ebp_net_t *net, uint32_t seed) {
    if (net == NULL) return EBP_ERR_ARG;
    net->rng = seed ? seed : 1u;
    return EBP_OK;
}

int ebp_net_set_hparams(ebp_net_t *net, const ebp_hparams_t *hp) {
    if (net == NULL || hp == NULL || hp->lr_e > 0 || hp->lr_e < -80 || hp->momentum_q15 > 32767)
        return EBP_ERR_ARG;
    net->hp = *hp;
    return EBP_OK;
}

int ebp_net_clear_stats(ebp_net_t *net) {
    unsigned l;
    if (net == NULL) return EBP_ERR_ARG;
    for (l = 0; l < EBP_MAX_LAYERS; l++) {
        ebp_layer_stats_t zero = {0, 0, 0, 0, 0, 0, 0};
        net->layers[l].stats = zero;
    }
    net->steps = 0;
    return EBP_OK;
}

/* ---- activations ------------------------------------------------------------------------------------ */

/* exp(-x) of a Q12 argument x >= 0, Q16 */
static int32_t exp_neg_q16(int64_t x) {
    uint32_t idx, frac;
    int32_t y0, y1;
    if (x >= (16 << 12)) return 0;
    idx = (uint32_t)x >> 8;
    frac = (uint32_t)x & 255u;
    y0 = ebp_exp_neg_q16[idx];
    y1 = ebp_exp_neg_q16[idx + 1];
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
    y0 = ebp_ln1p_q16[idx];
    y1 = ebp_ln1p_q16[idx + 1];
    return y0 + (int32_t)(((uint32_t)(y1 - y0) * rem + 512u) >> 10) + (n - frac) * EBP_LN2_Q16;
}

/*
 * f'(y) from the output y (Q a_frac), Q15 in [0, 32768]; sd = 2 a_frac - 15. The forward pass leaves sigmoid
 * outputs in [0, 1] and tanh outputs in [-1, 1], so the products below lie in [0, 2^30].
 */
static inline int32_t act_deriv_q15(int act, int32_t y, int32_t one, int sd) {
    int32_t v;
    switch (act) {
    case EBP_ACT_SIGMOID: v = y * (one - y); break;
    case EBP_ACT_TANH: v = one * one - y * y; break;
    case EBP_ACT_RELU: return y > 0 ? 32768 : 0;
    default: return 32768;
    }
    return sd > 0 ? (int32_t)(((uint32_t)v + ((uint32_t)1 << (sd - 1))) >> sd) : v * ((int32_t)1 << -sd);
}

/* ---- forward ---------------------------------------------------------------------------------------- */

/* init + sum_i w[i] x[i], exact (|product| <= 2^30): int32 products into an int64 sum (unrolled by 4 where
 * EBP_UNROLL_DOT) */
#if EBP_UNROLL_DOT
static inline int64_t dot16(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
#else
EBP_NOINLINE static int64_t dot16(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
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

/* sigmoid of a Q12 magnitude a, Q16 in [32768, 65535]: the table on [0, 16] with step 1/16, linear
 * interpolation (sigmoid(-a) is 65536 minus this) */
static inline uint32_t sigmoid_pos_q16(uint32_t a) {
    uint32_t idx, frac, y0, y1;
    if (a >= (16u << 12)) return 65535u;
    idx = a >> 8;
    frac = a & 255u;
    y0 = ebp_sigmoid_q16[idx];
    y1 = ebp_sigmoid_q16[idx + 1];
    return y0 + (((y1 - y0) * frac + 128u) >> 8); /* the table does not decrease */
}

/*
 * A sigmoid (tanh = 2 sigmoid(2z) - 1, when `tanh`, a constant where inlined) layer, the common hidden layer.
 * The rules are requant to Q12, the sigmoid table, and requant to the output format; since rounding is
 * symmetric (ties away from zero) and sigmoid(-z) = 1 - sigmoid(z), it works on magnitudes: |z| from |acc|
 * in 32 bits, the table on |z|, the sign applied to the Q16 value, whose rounding is then of a magnitude too.
 */
EBP_INLINE void fwd_sigmoid_kernel(ebp_layer_t *L, const int16_t *in, int tanh) {
    const uint32_t n_in = L->n_in;
    const int in_frac = L->in_frac, s = L->w_frac + in_frac - EBP_Z_FRAC - tanh, sh = 16 - L->a_frac;
    const int fast = s >= 1 && s <= 31;
    const uint32_t half_z = fast ? (uint32_t)1 << (s - 1) : 0u, half_y = (uint32_t)1 << (sh - 1);
    const uint64_t fast_lim = fast ? (uint64_t)1 << 32 : 0u; /* the 32-bit path iff acc + 2^31 < fast_lim */
    const int16_t *w = L->w, *b = L->b;
#if EBP_UNROLL_DOT
    const int16_t *in4 = in + (n_in & ~3u), *in_end = in + n_in;
#endif
    int16_t *y = L->y, *y_end = y + L->n_out;
    uint32_t sat = 0;
    for (; y != y_end; y++, b++) { /* the rows of w follow each other: w runs on through them */
        const int16_t *x = in;
        int64_t acc = (int32_t)*b * ((int32_t)1 << in_frac); /* dot16, with its bounds set once per layer */
        uint32_t a, v, q;
#if EBP_UNROLL_DOT
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
        int neg = acc < 0;
        if ((uint64_t)acc + 0x80000000u < fast_lim) { /* acc in int32: |z| = floor((|acc| + 2^(s-1)) / 2^s) */
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
                sat++;
                q = 32767u;
            }
            *y = (int16_t)(neg ? -(int32_t)q : (int32_t)q);
        } else { /* sigmoid >= 0: 1 - v for negative z */
            q = ((neg ? 65536u - v : v) + half_y) >> sh;
            if (q == 32768u) {
                sat++;
                q = 32767u;
            }
            *y = (int16_t)q;
        }
    }
    L->stats.sat_out += sat;
}

EBP_NOINLINE static void fwd_sigmoid(ebp_layer_t *L, const int16_t *in) {
    fwd_sigmoid_kernel(L, in, 0);
}

EBP_NOINLINE static void fwd_tanh(ebp_layer_t *L, const int16_t *in) {
    fwd_sigmoid_kernel(L, in, 1);
}

static void dense_fwd_s16(ebp_layer_t *L, const int16_t *in, int64_t *scratch) {
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
    default: { /* softmax: z (Q12), then exp(z - max z) / sum */
        int64_t zmax;
        uint32_t sum = 0;
        for (o = 0; o < n_out; o++, w += n_in)
            scratch[o] = requant(dot16((int32_t)b[o] * ((int32_t)1 << in_frac), w, in, n_in), zf, EBP_Z_FRAC);
        zmax = scratch[0];
        for (o = 1; o < n_out; o++)
            if (scratch[o] > zmax) zmax = scratch[o];
        for (o = 0; o < n_out; o++) {
            scratch[o] = exp_neg_q16(zmax - scratch[o]); /* (0, 65536] */
            sum += (uint32_t)scratch[o];
        }
        for (o = 0; o < n_out; o++) {
            uint32_t e = (uint32_t)scratch[o] << a_frac; /* <= 2^31 */
            y[o] = sat16_count((e + sum / 2u) / sum, &sat);
        }
        break;
    }
    }
    L->stats.sat_out += sat;
}

static void forward_layers(ebp_net_t *net, const int16_t *x) {
    unsigned l;
    for (l = 0; l < net->cfg.n_layers; l++) {
        dense_fwd_s16(&net->layers[l], x, net->scratch);
        x = net->layers[l].y;
    }
}

int ebp_forward(ebp_net_t *net, const int16_t *x, int16_t *y) {
    uint16_t i;
    if (net == NULL || x == NULL) return EBP_ERR_ARG;
    for (i = 0; i < net->cfg.n_in; i++) net->x[i] = x[i];
    forward_layers(net, x);
    if (y != NULL) {
        const ebp_layer_t *L = &net->layers[net->cfg.n_layers - 1];
        for (i = 0; i < L->n_out; i++) y[i] = L->y[i];
    }
    net->have_forward = 1;
    return EBP_OK;
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
    if (net->cfg.loss == EBP_LOSS_MSE) {
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

/* ---- backward --------------------------------------------------------------------------------------- */

/* number of significant bits of v (0 for 0): count leading zeros with GCC and clang on targets that have
 * the instruction (not Cortex-M0; -DEBP_NO_CLZ forces the portable code), else binary search on its upper
 * or lower half */
static int bit_length(uint64_t v) {
#if defined(__GNUC__) && (defined(__ARM_FEATURE_CLZ) || defined(__x86_64__)) && !defined(EBP_NO_CLZ)
    uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
    return hi != 0 ? 64 - __builtin_clz(hi) : lo != 0 ? 32 - __builtin_clz(lo) : 0;
#else
    uint32_t x = (uint32_t)(v >> 32);
    int n = 32, step;
    if (x == 0) {
        x = (uint32_t)v;
        n = 0;
    }
    for (step = 16; step > 0; step >>= 1)
        if ((x >> step) != 0) {
            x >>= step;
            n += step;
        }
    return n + (int)x;
#endif
}

/* dL/dz of output neuron i before normalisation: (y - t) with cross-entropy, (y - t) f'(y) with squared
 * error; |result| < 2^31 */
static inline int32_t raw_out(const ebp_layer_t *L, const int16_t *t, uint32_t i, int ce, int32_t one, int sd) {
    int32_t d = (int32_t)L->y[i] - t[i];
    return ce ? d : d * act_deriv_q15(L->act, L->y[i], one, sd);
}

/* dL/dz of hidden neuron i before normalisation: f'(y_i) sum_k w_ki delta_k over the next layer N */
static inline int64_t raw_hidden(const ebp_layer_t *L, const ebp_layer_t *N, uint32_t i, int32_t one, int sd) {
    const int16_t *w = N->w + i; /* column i of the next layer's weights */
    const uint32_t n = N->n_out, stride = N->n_in;
    int64_t acc = 0;
    uint32_t k;
    for (k = 0; k < n; k++, w += stride) acc += (int32_t)*w * N->delta[k];
    return acc * act_deriv_q15(L->act, L->y[i], one, sd);
}

/* ebp_rshift_rn(x, s) for 1 <= s <= 62 when the result is known to lie below 2^31 in magnitude */
static inline int32_t rshift_rn_small(int64_t x, int s) {
    uint64_t v = (x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x) + ((uint64_t)1 << (s - 1));
    uint32_t m = s < 32 ? ((uint32_t)v >> s) | ((uint32_t)(v >> 32) << (32 - s)) : (uint32_t)(v >> 32) >> (s - 32);
    return x < 0 ? -(int32_t)m : (int32_t)m;
}

/* widest hidden layer whose raw deltas an EBP_FLAG_ONLINE network packs instead of computing twice */
#define EBP_PACK_WIDTH 128

/*
 * Every raw_hidden of layer L, for activation act (a constant where inlined); returns their largest magnitude.
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
        acc *= (int64_t)(uint32_t)act_deriv_q15(act, *y, one, sd); /* >= 0: a 64 x 32-bit unsigned multiply */
        m = acc < 0 ? (uint64_t)0 - (uint64_t)acc : (uint64_t)acc;
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
            out[i] = acc;
        }
    }
    if (signs != NULL && (i & 31u) != 0) signs[i >> 5] = sw;
    return maxabs;
}

/* hidden_pass with act and the mode (signs or not) as constants, so that each loop is a tight one */
EBP_NOINLINE static uint64_t hidden_raw(const ebp_layer_t *L, const ebp_layer_t *N, int64_t *out, uint32_t *signs) {
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

/* the mantissas at shift s from hidden_pass's packed magnitudes (mode 2) and signs; s0 as there */
static void unpack_delta(int16_t *delta, uint32_t n, const uint32_t *signs, int s, int s0) {
    const uint16_t *packed = (const uint16_t *)delta;
    const int sh = s > 0 ? s - (s0 > 0 ? s0 - 1 : 0) : 0; /* s - a >= 1; for s <= 0, a = 0 */
    const uint32_t half = sh > 0 ? (uint32_t)1 << (sh - 1) : 0u;
    uint32_t i = 0;
    for (; i < n; signs++) { /* 32 neurons per sign word */
        const uint32_t end = n - i > 32u ? i + 32u : n;
        uint32_t sw = *signs;
        for (; i < end; i++, sw >>= 1) {
            int32_t m = s > 0 ? (int32_t)(((uint32_t)packed[i] + half) >> sh) : (int32_t)packed[i] * ((int32_t)1 << -s);
            delta[i] = (int16_t)(sw & 1u ? -m : m);
        }
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
static int normalize_delta(ebp_net_t *net, int l, const int16_t *t, int e) {
    ebp_layer_t *L = &net->layers[l];
    const ebp_layer_t *N = t == NULL ? &net->layers[l + 1] : NULL;
    const int ce = net->cfg.loss == EBP_LOSS_CE, sd = 2 * L->a_frac - 15;
    const int32_t one = (int32_t)1 << L->a_frac;
    const uint32_t n = L->n_out;
    int64_t *cache = (net->cfg.flags & EBP_FLAG_ONLINE) ? NULL : net->scratch;
    uint32_t signs[EBP_PACK_WIDTH / 32], *pack = NULL;
    uint64_t maxabs = 0;
    uint32_t i;
    int s, s0;
    if (net->cfg.flags & EBP_FLAG_FIXED_DELTA) {
        int nz = 0;
        for (i = 0; i < n; i++) {
            int64_t r = N != NULL ? raw_hidden(L, N, i, one, sd) : raw_out(L, t, i, ce, one, sd);
            L->delta[i] = sat16_count(requant(r, -e, 15), &L->stats.sat_delta);
            nz |= L->delta[i] != 0;
        }
        L->delta_exp = -15;
        return nz;
    }
    if (N == NULL) {
        uint32_t max32 = 0;
        for (i = 0; i < n; i++) {
            int32_t r = raw_out(L, t, i, ce, one, sd);
            uint32_t a = r < 0 ? 0u - (uint32_t)r : (uint32_t)r;
            if (a > max32) max32 = a;
            if (cache != NULL) cache[i] = r;
        }
        maxabs = max32;
    } else {
        if (cache == NULL && n <= EBP_PACK_WIDTH) pack = signs;
        maxabs = hidden_raw(L, N, cache, pack);
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

/* *a += r, saturated; |r| <= 2^30. Returns 1 if it clipped. */
static uint32_t add_sat32(int32_t *a, int32_t r) {
    if (r > 0 ? *a > INT32_MAX - r : *a < INT32_MIN - r) {
        *a = r > 0 ? INT32_MAX : INT32_MIN;
        return 1u;
    }
    *a += r;
    return 0u;
}

/* Adds delta (x) in to the layer's gradient accumulators, scaled to the shared exponent g_exp. */
static void accumulate_grad(ebp_layer_t *L, const int16_t *in) {
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

/* Deltas of every layer for target t, from the output back (generalised delta rule). */
static void backward_deltas(ebp_net_t *net, const int16_t *t) {
    int l = (int)net->cfg.n_layers - 1, live;
    uint16_t i;
    {   /* output layer: dL/dz = (y - t) with cross-entropy, (y - t) f'(y) with squared error */
        const ebp_layer_t *L = &net->layers[l];
        live = normalize_delta(net, l, t, net->cfg.loss == EBP_LOSS_CE ? -L->a_frac : -(L->a_frac + 15));
    }
    for (l--; l >= 0; l--) { /* hidden layers: delta_j = f'(y_j) * sum_k w_kj delta_k */
        ebp_layer_t *L = &net->layers[l];
        const ebp_layer_t *N = &net->layers[l + 1];
        if (!live) {
            for (i = 0; i < L->n_out; i++) L->delta[i] = 0;
            L->delta_exp = 0;
            continue;
        }
        live = normalize_delta(net, l, NULL, N->delta_exp - N->w_frac - 15);
    }
}

static const int16_t *layer_input(const ebp_net_t *net, int l) {
    return l == 0 ? net->x : net->layers[l - 1].y;
}

int ebp_backward(ebp_net_t *net, const int16_t *t, int32_t *loss_q16) {
    int l;
    if (net == NULL || t == NULL) return EBP_ERR_ARG;
    if (net->mode != EBP_MODE_TRAIN || !net->have_forward || (net->cfg.flags & EBP_FLAG_ONLINE)) return EBP_ERR_STATE;
    if (loss_q16 != NULL) ebp_loss(net, t, loss_q16);
    backward_deltas(net, t);
    /* gradients: dL/dw_oi = delta_o * in_i, dL/db_o = delta_o */
    for (l = 0; l < (int)net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        int nz = 0;
        uint16_t i;
        for (i = 0; i < L->n_out; i++) nz |= L->delta[i] != 0;
        if (nz) accumulate_grad(L, layer_input(net, l));
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
        if (L->gw == NULL) continue; /* EBP_FLAG_ONLINE */
        n = (uint32_t)L->n_out * L->n_in;
        for (k = 0; k < n; k++) L->gw[k] = 0;
        for (k = 0; k < L->n_out; k++) L->gb[k] = 0;
    }
    net->grad_count = 0;
    return EBP_OK;
}

/* ---- update ----------------------------------------------------------------------------------------- */

/*
 * Applies the update of n parameters w from their gradient sums g (clearing them) and velocities v
 * (momentum; NULL for SGD). One weight LSB of update is m_eff * g * 2^-sh (SGD), or 2^EBP_VEL_EXTRA_FRAC
 * velocity units (momentum). The stochastic-rounding generator advances once per parameter rounded.
 */
static void update_params(ebp_net_t *net, ebp_layer_t *L, int16_t *w, int32_t *g, int32_t *v, uint32_t n,
                          int32_t m_eff, int sh) {
    const int32_t mu = net->hp.momentum_q15;
    const int stochastic = net->cfg.rounding == EBP_ROUND_STOCHASTIC;
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
 * The fast row of update_online, for non-negative inputs a[] and round to nearest (1 <= S <= 30):
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

/* w -= q, saturated to int16; returns 1 if it clipped */
static uint32_t sub_sat16(int16_t *w, int32_t q) {
    int32_t nw = *w - q;
    if ((uint32_t)(nw + 32768) > 65535u) {
        *w = nw < 0 ? INT16_MIN : INT16_MAX;
        return 1u;
    }
    *w = (int16_t)nw;
    return 0u;
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

/* one parameter of update_online outside the fast path (S <= 0 or S > 30) */
static int32_t online_delta_slow(ebp_net_t *net, int32_t p, int S) {
    if (S <= 0) { /* beyond +-65535 any update saturates the weight alike: clamp, so w - q cannot overflow */
        int64_t q = ebp_lshift_sat(p, -S);
        return (int32_t)(q > 65535 ? 65535 : q < -65535 ? -65535 : q);
    }
    if (S > 62) S = 62;
    if (net->cfg.rounding == EBP_ROUND_STOCHASTIC) return (int32_t)ebp_rshift_sr(p, S, ebp_xorshift32(&net->rng));
    return (int32_t)ebp_rshift_rn(p, S);
}

/*
 * update_online for a layer whose inputs are all non-negative, with round to nearest and 1 <= S <= 30 (the
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

/*
 * Online SGD, one sample: w_oi -= lr * delta_o * in_i without gradient accumulators. Per row the scaled
 * delta dl = round(delta_o * lr_m / 2^16) (|dl| <= 2^15) is rounded to nearest; the update of each
 * parameter, dl * in_i * 2^-S weight LSBs, is rounded in the configured mode: a 32-bit product and shift
 * in the common case 1 <= S <= 30 (update_rows_nonneg when no input is negative and rounding is to nearest).
 */
static void update_online(ebp_net_t *net, ebp_layer_t *L, const int16_t *in) {
    const int stochastic = net->cfg.rounding == EBP_ROUND_STOCHASTIC;
    const int S = -(L->delta_exp + net->hp.lr_e + 16 - L->in_frac + L->w_frac);
    const int32_t lr_m = net->hp.lr_m, one = (int32_t)1 << L->in_frac;
    const uint32_t n_in = L->n_in, n_out = L->n_out;
    uint32_t zeros = 0, sat = 0, rows = 0, zero_in = 0, neg_in = 0, rng = net->rng, o, i;
    int16_t *w = L->w;
    for (i = 0; i < n_in; i++) {
        zero_in += in[i] == 0;
        neg_in |= (uint32_t)(uint16_t)in[i] >> 15;
    }
    if (S >= 1 && S <= 30 && !stochastic && !neg_in) {
        uint32_t nz = 0;
        rows = update_rows_nonneg(L, in, lr_m, S, &nz, &sat);
        zeros = rows * (n_in + 1u - zero_in) - nz; /* every parameter with a non-zero gradient, minus the moves */
    } else {
        for (o = 0; o < n_out; o++, w += n_in) {
            int32_t dl = ebp_rshift_rn32(L->delta[o] * lr_m, 16), p, q;
            if (L->delta[o] == 0) continue;
            rows++;
            if (dl == 0) { /* the whole row's update is below the learning rate's resolution */
                zeros += n_in + 1u - zero_in;
                continue;
            }
            if (S >= 1 && S <= 30) { /* 32-bit arithmetic throughout */
                if (stochastic) {
                    for (i = 0; i < n_in; i++) {
                        q = ebp_rshift_sr32(dl * in[i], S, ebp_xorshift32(&rng));
                        zeros += q == 0;
                        sat += sub_sat16(&w[i], q);
                    }
                } else {
                    for (i = 0; i < n_in; i++) {
                        q = ebp_rshift_rn32(dl * in[i], S);
                        zeros += q == 0;
                        sat += sub_sat16(&w[i], q);
                    }
                }
                p = dl * one;
                q = stochastic ? ebp_rshift_sr32(p, S, ebp_xorshift32(&rng)) : ebp_rshift_rn32(p, S);
            } else {
                net->rng = rng;
                for (i = 0; i < n_in; i++) {
                    q = online_delta_slow(net, dl * in[i], S);
                    zeros += q == 0;
                    sat += sub_sat16(&w[i], q);
                }
                q = online_delta_slow(net, dl * one, S);
                rng = net->rng;
            }
            zeros += (uint32_t)(q == 0) - zero_in; /* a zero input has a zero gradient, not a lost update */
            sat += sub_sat16(&L->b[o], q);
        }
    }
    net->rng = rng;
    L->stats.updates += rows * (n_in + 1u - zero_in); /* parameters with a non-zero gradient */
    L->stats.zero_updates += zeros;
    L->stats.sat_param += sat;
}

int ebp_step(ebp_net_t *net) {
    int32_t m_eff;
    unsigned l;
    if (net == NULL) return EBP_ERR_ARG;
    if (net->mode != EBP_MODE_TRAIN) return EBP_ERR_STATE;
    if (net->grad_count == 0) return EBP_OK;
    /* lr / n = m_eff * 2^(lr_e - 15), m_eff < 2^31 */
    m_eff = (int32_t)(((uint32_t)net->hp.lr_m << 15) / net->grad_count);
    for (l = 0; l < net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        int momentum = net->cfg.optimizer == EBP_OPT_MOMENTUM;
        /* the update in units of one weight LSB is m_eff * g * 2^-sh */
        int sh = -(net->hp.lr_e - 15 + L->g_exp + L->w_frac);
        if (momentum) sh -= EBP_VEL_EXTRA_FRAC; /* velocities carry extra fractional bits */
        if (L->g_exp == INT16_MIN) {
            if (!momentum) continue; /* no gradient reached this layer: its sums are all zero */
            sh = 62;                 /* velocity decays only */
        }
        update_params(net, L, L->w, L->gw, momentum ? L->vw : NULL, (uint32_t)L->n_out * L->n_in, m_eff, sh);
        update_params(net, L, L->b, L->gb, momentum ? L->vb : NULL, L->n_out, m_eff, sh);
        L->g_exp = INT16_MIN;
    }
    net->grad_count = 0;
    net->steps++;
    return EBP_OK;
}

/* ---- loops ------------------------------------------------------------------------------------------ */

int ebp_train(ebp_net_t *net, const int16_t *x, const int16_t *t, uint32_t n, uint32_t batch,
              int64_t *loss_sum) {
    uint32_t s;
    int st;
    if (net == NULL || x == NULL || t == NULL) return EBP_ERR_ARG;
    if (net->mode != EBP_MODE_TRAIN) return EBP_ERR_STATE;
    if (loss_sum != NULL) *loss_sum = 0;
    if (batch == 1 && net->cfg.optimizer == EBP_OPT_SGD) { /* the caller's batch, so chunks stay equivalent */
        /* online SGD: deltas, then each layer updated directly from them (update_online) */
        const int16_t *ts = t;
        for (s = 0; s < n; s++, ts += net->layers[net->cfg.n_layers - 1].n_out) {
            const int16_t *xs = x + (size_t)s * net->cfg.n_in; /* read in place: no copy to net->x */
            int l;
            forward_layers(net, xs);
            if (loss_sum != NULL) {
                int32_t loss;
                ebp_loss(net, ts, &loss);
                *loss_sum += loss;
            }
            backward_deltas(net, ts);
            for (l = 0; l < (int)net->cfg.n_layers; l++)
                update_online(net, &net->layers[l], l == 0 ? xs : net->layers[l - 1].y);
            net->steps++;
        }
        net->have_forward = 0;
        return EBP_OK;
    }
    if (net->cfg.flags & EBP_FLAG_ONLINE) return EBP_ERR_STATE;
    if (batch == 0 || batch > n) batch = n;
    for (s = 0; s < n; s++) {
        int32_t loss = 0;
        st = ebp_forward(net, x + (size_t)s * net->cfg.n_in, NULL);
        if (st == EBP_OK)
            st = ebp_backward(net, t + (size_t)s * net->layers[net->cfg.n_layers - 1].n_out,
                              loss_sum != NULL ? &loss : NULL);
        if (st != EBP_OK) return st;
        if (loss_sum != NULL) *loss_sum += loss;
        if ((s + 1) % batch == 0 || s + 1 == n) {
            st = ebp_step(net);
            if (st != EBP_OK) return st;
        }
    }
    return EBP_OK;
}

int ebp_predict(ebp_net_t *net, const int16_t *x, uint32_t n, int16_t *y) {
    uint32_t s;
    uint16_t n_out;
    if (net == NULL || x == NULL || y == NULL) return EBP_ERR_ARG;
    n_out = net->layers[net->cfg.n_layers - 1].n_out;
    for (s = 0; s < n; s++) ebp_forward(net, x + (size_t)s * net->cfg.n_in, y + (size_t)s * n_out);
    net->have_forward = 0;
    return EBP_OK;
}

static uint16_t argmax16(const int16_t *v, uint16_t n) {
    uint16_t k, best = 0;
    for (k = 1; k < n; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

int ebp_evaluate(ebp_net_t *net, const int16_t *x, const int16_t *t, uint32_t n, int64_t *loss_sum,
                 uint32_t *correct) {
    const ebp_layer_t *L;
    uint32_t s;
    if (net == NULL || x == NULL || t == NULL) return EBP_ERR_ARG;
    L = &net->layers[net->cfg.n_layers - 1];
    if (loss_sum != NULL) *loss_sum = 0;
    if (correct != NULL) *correct = 0;
    for (s = 0; s < n; s++) {
        const int16_t *ts = t + (size_t)s * L->n_out;
        ebp_forward(net, x + (size_t)s * net->cfg.n_in, NULL);
        if (loss_sum != NULL) {
            int32_t loss;
            ebp_loss(net, ts, &loss);
            *loss_sum += loss;
        }
        if (correct != NULL) {
            int ok;
            if (L->n_out == 1) {
                int32_t half = (int32_t)1 << (L->a_frac - 1 < 0 ? 0 : L->a_frac - 1);
                ok = (L->y[0] >= half) == (ts[0] >= half);
            } else {
                ok = argmax16(L->y, L->n_out) == argmax16(ts, L->n_out);
            }
            *correct += (uint32_t)ok;
        }
    }
    net->have_forward = 0;
    return EBP_OK;
}
