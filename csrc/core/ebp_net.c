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
    case EBP_ERR_FEATURE:
        return "the configuration needs a feature this build compiled out (one of conv1d/pooling, int8 weights, "
               "batches or momentum, fixed deltas, Xavier/He init, softmax: edgebp.h's feature switches): "
               "use a board or build that has it";
    default: return "unknown status";
    }
}

/* ---- configuration and memory ----------------------------------------------------------------------- */

static int frac_ok(int f) { return f >= 0 && f <= 15; }

/* kinds the core implements so far */
#define EBP_KIND_LAST EBP_KIND_GAP1D

/*
 * Layer l's geometry from its input (the network input for l = 0, else prev, layer l - 1's): shapes, the
 * number of weights and biases. Returns EBP_OK, or EBP_ERR_CONFIG / EBP_ERR_FORMAT for a layer that is
 * invalid or does not fit its input.
 */
EBP_INTERNAL int ebp_geometry(const ebp_cfg_t *cfg, unsigned l, const ebp_geom_t *prev, ebp_geom_t *g) {
    const ebp_layer_cfg_t *lc = &cfg->layers[l];
    const int last = l + 1u == cfg->n_layers, pool = lc->kind == EBP_KIND_MAXPOOL1D || lc->kind == EBP_KIND_AVGPOOL1D;
    uint32_t k = lc->kernel, s = lc->stride;
    if (prev == NULL) {
        g->in_ch = cfg->in_ch ? cfg->in_ch : 1u;
        g->in_len = cfg->n_in / g->in_ch;
        g->in_frac = cfg->in_frac;
    } else {
        g->in_ch = prev->ch;
        g->in_len = prev->len;
        g->in_frac = prev->a_frac;
    }
    g->a_frac = lc->a_frac;
    if (lc->kind > EBP_KIND_LAST || lc->frozen > 1 || (lc->w_bits != 0 && lc->w_bits != 16 && lc->w_bits != 8) ||
        lc->act > EBP_ACT_SOFTMAX)
        return EBP_ERR_CONFIG;
    if ((!EBP_CONV && lc->kind != EBP_KIND_DENSE) || (!EBP_INT8 && lc->w_bits == 8) ||
        (!EBP_SOFTMAX && lc->act == EBP_ACT_SOFTMAX))
        return EBP_ERR_FEATURE;
    if (lc->act == EBP_ACT_SOFTMAX && (!last || cfg->loss != EBP_LOSS_CE || lc->kind != EBP_KIND_DENSE))
        return EBP_ERR_CONFIG;
    if (!frac_ok(lc->w_frac) || !frac_ok(lc->a_frac)) return EBP_ERR_FORMAT;
    if (last && cfg->loss == EBP_LOSS_CE && lc->act != EBP_ACT_SOFTMAX && lc->act != EBP_ACT_SIGMOID)
        return EBP_ERR_CONFIG;
    switch (lc->kind) {
    case EBP_KIND_DENSE:
        if (lc->n_out < 1 || lc->kernel != 0 || lc->stride != 0) return EBP_ERR_CONFIG;
        g->ch = lc->n_out;
        g->len = 1;
        g->n_w = (uint32_t)lc->n_out * g->in_ch * g->in_len;
        g->n_b = lc->n_out;
        break;
    case EBP_KIND_CONV1D:
        if (s == 0) s = 1;
        /* n_out kernel <= 2^16 bounds the deltas handed to the layer below: at most 2^16 products of 2^30 */
        if (lc->n_out < 1 || k < 1 || k > g->in_len || (uint32_t)lc->n_out * k > 65536u) return EBP_ERR_CONFIG;
        g->ch = lc->n_out;
        g->len = (g->in_len - k) / s + 1u;
        g->n_w = (uint32_t)lc->n_out * g->in_ch * k;
        g->n_b = lc->n_out;
        break;
    default: /* pooling keeps the channels and the format */
        if (s == 0) s = k;
        if (lc->n_out != 0 || lc->act != EBP_ACT_LINEAR || lc->a_frac != g->in_frac || lc->w_bits != 0)
            return EBP_ERR_CONFIG;
        if (pool ? k < 1 || k > g->in_len : k != 0 || s != 0) return EBP_ERR_CONFIG;
        g->ch = g->in_ch;
        g->len = pool ? (g->in_len - k) / s + 1u : 1u;
        g->n_w = 0;
        g->n_b = 0;
        break;
    }
    g->stride = s;
    if (g->ch * g->len > EBP_MAX_WIDTH) return EBP_ERR_CONFIG;
    return EBP_OK;
}

int ebp_cfg_check(const ebp_cfg_t *cfg) {
    ebp_geom_t g[2];
    unsigned l;
    if (cfg == NULL) return EBP_ERR_ARG;
    if (cfg->n_in < 1 || cfg->n_in > EBP_MAX_WIDTH || cfg->n_layers < 1 || cfg->n_layers > EBP_MAX_LAYERS ||
        cfg->loss > EBP_LOSS_CE || cfg->optimizer > EBP_OPT_MOMENTUM || cfg->rounding > EBP_ROUND_STOCHASTIC ||
        (cfg->flags & ~(EBP_FLAG_FIXED_DELTA | EBP_FLAG_ONLINE)) != 0 ||
        ((cfg->flags & EBP_FLAG_ONLINE) && cfg->optimizer != EBP_OPT_SGD) ||
        (cfg->in_ch != 0 && cfg->n_in % cfg->in_ch != 0))
        return EBP_ERR_CONFIG;
    if (!frac_ok(cfg->in_frac)) return EBP_ERR_FORMAT;
    if ((!EBP_GRAD_MEMORY && cfg->optimizer == EBP_OPT_MOMENTUM) || (!EBP_CE && cfg->loss == EBP_LOSS_CE) ||
        (!EBP_FIXED_DELTA && (cfg->flags & EBP_FLAG_FIXED_DELTA)))
        return EBP_ERR_FEATURE;
    for (l = 0; l < cfg->n_layers; l++) {
        int st = ebp_geometry(cfg, l, l == 0 ? NULL : &g[(l - 1) & 1], &g[l & 1]);
        if (st != EBP_OK) return st;
    }
    return EBP_OK;
}

/* the lowest layer that gets deltas: the lowest trained layer with parameters (n_layers if none) */
static unsigned first_trained(const ebp_cfg_t *cfg) {
    unsigned l;
    for (l = 0; l < cfg->n_layers; l++)
        if (!cfg->layers[l].frozen && (cfg->layers[l].kind == EBP_KIND_DENSE || cfg->layers[l].kind == EBP_KIND_CONV1D))
            return l;
    return cfg->n_layers;
}

int ebp_net_memory(const ebp_cfg_t *cfg, int mode, ebp_memory_t *mem) {
    uint32_t trained = 0, outs = 0, delta_outs = 0, width = 0, last_out = 0;
    ebp_geom_t g[2];
    unsigned l, first;
    int st = ebp_cfg_check(cfg);
    const int train = mode == EBP_MODE_TRAIN;
    if (st != EBP_OK) return st;
    if (mem == NULL || (mode != EBP_MODE_INFER && mode != EBP_MODE_TRAIN)) return EBP_ERR_ARG;
    if (!EBP_GRAD_MEMORY && train && !(cfg->flags & EBP_FLAG_ONLINE)) return EBP_ERR_FEATURE; /* no gradients */
    first = first_trained(cfg);
    mem->weights = 0;
    mem->biases = 0;
    for (l = 0; l < cfg->n_layers; l++) {
        ebp_geom_t *G = &g[l & 1];
        uint32_t n_out;
        ebp_geometry(cfg, l, l == 0 ? NULL : &g[(l - 1) & 1], G);
        n_out = G->ch * G->len;
        mem->weights += (cfg->layers[l].w_bits == 8 ? 1u : 2u) * G->n_w;
        mem->biases += (cfg->layers[l].w_bits == 8 ? 1u : 2u) * G->n_b;
        if (!cfg->layers[l].frozen) trained += G->n_w + G->n_b;
        outs += n_out;
        if (l >= first) {
            delta_outs += n_out;
            if (n_out > width) width = n_out;
        }
        last_out = n_out;
    }
    mem->activations = 2u * (cfg->n_in + outs);
    mem->gradients = 0;
    mem->optimizer = 0;
    if (train) {
        mem->activations += 2u * delta_outs;                 /* deltas, from first_train up */
        mem->gradients = (cfg->flags & EBP_FLAG_ONLINE) ? 0u : 4u * trained;
        if (cfg->optimizer == EBP_OPT_MOMENTUM) mem->optimizer = 4u * trained;
    }
    /* scratch: raw deltas of the widest layer with deltas when training with gradient memory (EBP_FLAG_ONLINE
       packs them into the delta arrays instead), else only a softmax output layer's z and exp(z - max) */
    if (train && !(cfg->flags & EBP_FLAG_ONLINE) && width > 0)
        mem->scratch = 8u * width;
    else
        mem->scratch = cfg->layers[cfg->n_layers - 1].act == EBP_ACT_SOFTMAX ? 8u * last_out : 0u;
    mem->total = mem->weights + mem->biases + mem->gradients + mem->optimizer + mem->activations + mem->scratch;
    return EBP_OK;
}

int ebp_net_init(ebp_net_t *net, const ebp_cfg_t *cfg, int mode, void *buf, size_t size) {
    ebp_memory_t mem;
    ebp_geom_t g[2];
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
    net->first_train = (uint8_t)first_trained(cfg);
    /* widest alignment first: int64 scratch, then int32 gradients and velocities, then int16 tensors */
    net->scratch = mem.scratch ? (int64_t *)(void *)p : NULL;
    p += mem.scratch;
    for (l = 0; l < cfg->n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        const ebp_layer_cfg_t *lc = &cfg->layers[l];
        ebp_geom_t *G = &g[l & 1];
        ebp_geometry(cfg, l, l == 0 ? NULL : &g[(l - 1) & 1], G);
        L->in_ch = (uint16_t)(lc->kind == EBP_KIND_DENSE ? G->in_ch * G->in_len : G->in_ch); /* dense: (n_in, 1) */
        L->in_len = (uint16_t)(lc->kind == EBP_KIND_DENSE ? 1u : G->in_len);
        L->ch = (uint16_t)G->ch;
        L->len = (uint16_t)G->len;
        L->n_in = (uint16_t)(G->in_ch * G->in_len);
        L->n_out = (uint16_t)(G->ch * G->len);
        L->n_w = G->n_w;
        L->n_b = (uint16_t)G->n_b;
        L->kind = lc->kind;
        L->frozen = lc->frozen;
        L->kernel = (uint16_t)(lc->kind == EBP_KIND_GAP1D ? G->in_len : lc->kind == EBP_KIND_DENSE ? 1u : lc->kernel);
        L->stride = (uint16_t)(lc->kind == EBP_KIND_GAP1D ? G->in_len : lc->kind == EBP_KIND_DENSE ? 1u : G->stride);
        L->act = lc->act;
        L->in_frac = (int8_t)G->in_frac;
        L->w_frac = lc->w_frac;
        L->a_frac = lc->a_frac;
        if (EBP_GRAD_MEMORY && mode == EBP_MODE_TRAIN && !(cfg->flags & EBP_FLAG_ONLINE) && !lc->frozen && L->n_w > 0) {
            L->gw = (int32_t *)(void *)p;
            p += 4u * L->n_w;
            L->gb = (int32_t *)(void *)p;
            p += 4u * L->n_b;
            if (cfg->optimizer == EBP_OPT_MOMENTUM) {
                L->vw = (int32_t *)(void *)p;
                p += 4u * L->n_w;
                L->vb = (int32_t *)(void *)p;
                p += 4u * L->n_b;
            }
        }
    }
    for (l = 0; l < cfg->n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        if (L->n_w > 0 && cfg->layers[l].w_bits != 8) {
            L->w = (int16_t *)(void *)p;
            p += 2u * L->n_w;
            L->b = (int16_t *)(void *)p;
            p += 2u * L->n_b;
        }
        L->y = (int16_t *)(void *)p;
        p += 2u * L->n_out;
        if (mode == EBP_MODE_TRAIN && l >= net->first_train) {
            L->delta = (int16_t *)(void *)p;
            p += 2u * L->n_out;
        }
    }
    net->x = (int16_t *)(void *)p;
    p += 2u * cfg->n_in;
    for (l = 0; l < cfg->n_layers; l++) { /* int8 parameters last: they keep nothing else from alignment */
        ebp_layer_t *L = &net->layers[l];
        if (EBP_INT8 && L->n_w > 0 && cfg->layers[l].w_bits == 8) {
            L->w8 = (int8_t *)(void *)p;
            p += L->n_w;
            L->b8 = (int8_t *)(void *)p;
            p += L->n_b;
        }
    }
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
    if (!EBP_INIT_FAN && kind != EBP_INIT_UNIFORM) return EBP_ERR_FEATURE;
    for (l = 0; l < net->cfg.n_layers; l++) {
        ebp_layer_t *L = &net->layers[l];
        const uint32_t nw = L->n_w, fan_in = L->n_b ? nw / L->n_b : 0u;
        int64_t r;
        if (nw == 0) continue; /* pooling: no parameters, no draws */
        if (kind == EBP_INIT_UNIFORM) {
            r = requant(range_q12, 12, L->w_frac);
        } else { /* fan in: inputs per output (dense n_in, conv1d in_ch kernel); fan out: n_out, or ch kernel */
            uint32_t fan_out = L->kind == EBP_KIND_CONV1D ? (uint32_t)L->ch * L->kernel : L->n_out;
            uint32_t fan = kind == EBP_INIT_XAVIER ? fan_in + fan_out : fan_in;
            r = isqrt64(((uint64_t)6 << (2 * L->w_frac)) / fan);
        }
        if (EBP_INT8 && L->w8 != NULL) { /* int8: the same draws, in [-127, 127] at most */
            if (r > INT8_MAX) r = INT8_MAX;
            for (i = 0; i < nw; i++) L->w8[i] = (int8_t)uniform_q(&rng, (int32_t)r);
            for (i = 0; i < L->n_b; i++) L->b8[i] = (int8_t)(kind == EBP_INIT_UNIFORM ? uniform_q(&rng, (int32_t)r) : 0);
            continue;
        }
        if (r > INT16_MAX) r = INT16_MAX;
        for (i = 0; i < nw; i++) L->w[i] = uniform_q(&rng, (int32_t)r);
        for (i = 0; i < L->n_b; i++) L->b[i] = kind == EBP_INIT_UNIFORM ? uniform_q(&rng, (int32_t)r) : 0;
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
