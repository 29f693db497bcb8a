/*
 * ebp_net.c - status messages, configuration check, memory report, layout, weight init and settings.
 */
#include "ebp_internal.h"

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
