/*
 * C-level tests of the core, built by tests/test_c.py with -fsanitize=address,undefined (every finding is
 * fatal) and the core's strict warnings. They train XOR, check every status code path, and drive the
 * arithmetic to its limits (extreme inputs, weights, learning rates and formats) so that any signed
 * overflow or bad shift would be reported. Prints "N passed, N failed".
 */
#include <stdio.h>
#include <string.h>

#include "edgebp.h"

static int passed, failed;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
        }                                                                            \
    } while (0)

static int64_t arena[4096];

/* XOR in Q12: four samples of two inputs, one target each */
static const int16_t xor_x[8] = {0, 0, 0, 4096, 4096, 0, 4096, 4096};
static const int16_t xor_t[4] = {0, 4096, 4096, 0};

static ebp_cfg_t xor_cfg(void) {
    ebp_cfg_t c;
    memset(&c, 0, sizeof c);
    c.n_in = 2;
    c.in_frac = 12;
    c.n_layers = 2;
    c.loss = EBP_LOSS_MSE;
    c.layers[0].n_out = 4;
    c.layers[0].act = EBP_ACT_SIGMOID;
    c.layers[0].w_frac = 12;
    c.layers[0].a_frac = 12;
    c.layers[1] = c.layers[0];
    c.layers[1].n_out = 1;
    return c;
}

/* Online SGD epochs on XOR until all four samples are classified (at most max_epochs); returns how many are. */
static uint32_t train_xor(ebp_net_t *net, int max_epochs) {
    uint32_t correct = 0;
    int epoch;
    for (epoch = 0; epoch < max_epochs && correct < 4; epoch++) {
        CHECK(ebp_train(net, xor_x, xor_t, 4, 1, NULL) == EBP_OK);
        CHECK(ebp_evaluate(net, xor_x, xor_t, 4, NULL, &correct) == EBP_OK);
    }
    return correct;
}

static void test_xor(void) {
    ebp_cfg_t c = xor_cfg();
    ebp_net_t net;
    ebp_hparams_t hp = {32768, -16, 0}; /* lr 0.5 */
    CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) == EBP_OK);
    CHECK(ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 4096, 1) == EBP_OK);
    CHECK(ebp_net_set_hparams(&net, &hp) == EBP_OK);
    CHECK(train_xor(&net, 5000) == 4);
}

static void test_status_paths(void) {
    ebp_cfg_t c = xor_cfg();
    ebp_net_t net;
    ebp_memory_t mem;
    int16_t t[1] = {0};
    ebp_hparams_t bad = {1, 1, 0};
    CHECK(ebp_cfg_check(NULL) == EBP_ERR_ARG);
    CHECK(ebp_net_memory(&c, EBP_MODE_TRAIN, &mem) == EBP_OK && mem.total > 0);
    CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, mem.total - 1) == EBP_ERR_SIZE);
    CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, (char *)arena + 4, mem.total) == EBP_ERR_ALIGN);
    CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, mem.total) == EBP_OK);
    CHECK(ebp_backward(&net, t, NULL) == EBP_ERR_STATE);
    CHECK(ebp_net_set_hparams(&net, &bad) == EBP_ERR_ARG);
    CHECK(ebp_net_init_weights(&net, 7, 1, 1) == EBP_ERR_ARG);
    c.layers[0].act = EBP_ACT_SOFTMAX;
    CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
    c = xor_cfg();
    c.layers[1].w_frac = 16;
    CHECK(ebp_cfg_check(&c) == EBP_ERR_FORMAT);
    c = xor_cfg();
    c.n_layers = EBP_MAX_LAYERS + 1;
    CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
    CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) == EBP_ERR_CONFIG);
    c = xor_cfg();
    CHECK(ebp_net_init(&net, &c, EBP_MODE_INFER, arena, sizeof arena) == EBP_OK);
    CHECK(ebp_step(&net) == EBP_ERR_STATE);
    CHECK(ebp_status_str(EBP_ERR_SIZE)[0] != '\0' && ebp_status_str(12345)[0] != '\0');
}

/* A frozen first layer: never updated, no deltas, no gradient memory; the memory report says so exactly. */
static void test_frozen(void) {
    ebp_cfg_t c = xor_cfg();
    ebp_net_t net;
    ebp_memory_t full, part;
    ebp_hparams_t hp = {32768, -16, 0};
    int16_t w0[8];
    unsigned i;
    CHECK(ebp_net_memory(&c, EBP_MODE_TRAIN, &full) == EBP_OK);
    c.layers[0].frozen = 1;
    CHECK(ebp_net_memory(&c, EBP_MODE_TRAIN, &part) == EBP_OK);
    CHECK(full.gradients - part.gradients == 4u * (4 * 2 + 4)); /* layer 0's 12 int32 accumulators */
    CHECK(full.activations - part.activations == 2u * 4);        /* and its 4 deltas */
    CHECK(part.scratch == 8u * 1 && full.scratch == 8u * 4);
    CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) == EBP_OK);
    CHECK(net.first_train == 1 && net.layers[0].delta == NULL && net.layers[0].gw == NULL);
    CHECK(ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 4096, 1) == EBP_OK);
    CHECK(ebp_net_set_hparams(&net, &hp) == EBP_OK);
    for (i = 0; i < 8; i++) w0[i] = net.layers[0].w[i];
    CHECK(ebp_train(&net, xor_x, xor_t, 4, 1, NULL) == EBP_OK);
    CHECK(ebp_train(&net, xor_x, xor_t, 4, 2, NULL) == EBP_OK);
    for (i = 0; i < 8; i++) CHECK(net.layers[0].w[i] == w0[i]);
    CHECK(net.layers[0].stats.updates == 0 && net.layers[1].stats.updates > 0);
    c.layers[0].frozen = 2;
    CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
}

/* int8 weights: half the parameter bytes, updates rounded stochastically even with cfg.rounding nearest */
static void test_int8(void) {
    ebp_cfg_t c = xor_cfg();
    ebp_net_t net;
    ebp_memory_t m16, m8;
    ebp_hparams_t hp = {32768, -15, 0}; /* lr 1 */
    uint32_t rng0;
    CHECK(ebp_net_memory(&c, EBP_MODE_TRAIN, &m16) == EBP_OK);
    c.layers[0].w_bits = c.layers[1].w_bits = 8;
    c.layers[0].w_frac = c.layers[1].w_frac = 5;
    CHECK(ebp_net_memory(&c, EBP_MODE_TRAIN, &m8) == EBP_OK);
    CHECK(m8.weights * 2 == m16.weights && m8.biases * 2 == m16.biases && m8.activations == m16.activations);
    CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) == EBP_OK);
    CHECK(net.layers[0].w == NULL && net.layers[0].w8 != NULL && net.layers[1].b8 != NULL);
    CHECK(((uintptr_t)net.x & 1u) == 0 && ((uintptr_t)net.layers[1].delta & 1u) == 0);
    CHECK(ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 8192, 3) == EBP_OK);
    CHECK(ebp_net_set_hparams(&net, &hp) == EBP_OK);
    rng0 = net.rng;
    CHECK(train_xor(&net, 4000) == 4);
    CHECK(net.rng != rng0); /* stochastic rounding drew numbers */
    c.layers[0].w_bits = 4;
    CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
}

/* xorshift32 for test data, independent of the core's */
static uint32_t rnd_state = 2463534242u;
static uint32_t rnd(void) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static const int16_t edge[] = {INT16_MIN, INT16_MIN + 1, -1, 0, 1, INT16_MAX - 1, INT16_MAX};
static const int8_t edge8[] = {INT8_MIN, INT8_MIN + 1, -1, 0, 1, INT8_MAX - 1, INT8_MAX};

/* Each layer, with probability 1/2, gets all its weights from the edges of their storage type. */
static void extreme_weights(ebp_net_t *net) {
    unsigned l, i;
    for (l = 0; l < net->cfg.n_layers; l++)
        if (rnd() % 2)
            for (i = 0; i < net->layers[l].n_w; i++) {
                if (net->layers[l].w8 != NULL)
                    net->layers[l].w8[i] = edge8[rnd() % 7];
                else
                    net->layers[l].w[i] = edge[rnd() % 7];
            }
}

/* A random learning rate (any mantissa, shifts down to 2^-80) and momentum. */
static void random_hparams(ebp_net_t *net) {
    ebp_hparams_t hp;
    hp.lr_m = (uint16_t)rnd();
    hp.lr_e = (int8_t)(-(int)(rnd() % 81));
    hp.momentum_q15 = (uint16_t)(rnd() % 32768);
    CHECK(ebp_net_set_hparams(net, &hp) == EBP_OK);
}

/* n samples for c: any int16 inputs, a third of them edge values; for CE targets 0 or the output format's 1.0
 * (INT16_MAX in Q15) at random, for MSE any int16. */
static void extreme_data(const ebp_cfg_t *c, int16_t *x, int16_t *t, unsigned n) {
    const ebp_layer_cfg_t *out = &c->layers[c->n_layers - 1];
    int16_t one = (int16_t)(out->a_frac == 15 ? INT16_MAX : 1 << out->a_frac);
    unsigned i;
    for (i = 0; i < n * c->n_in; i++) x[i] = rnd() % 3 ? (int16_t)rnd() : edge[rnd() % 7];
    for (i = 0; i < n * out->n_out; i++)
        t[i] = c->loss == EBP_LOSS_CE ? (int16_t)(rnd() % 2 ? one : 0) : (int16_t)rnd();
}

/* Random configurations at the edges of every format, with extreme data: must never overflow. */
static void test_extremes(void) {
    static int16_t x[64 * 32], t[64 * 8];
    int trial;
    for (trial = 0; trial < 300; trial++) {
        ebp_cfg_t c;
        ebp_net_t net;
        ebp_memory_t mem;
        unsigned l;
        int64_t loss = 0;
        uint32_t correct;
        memset(&c, 0, sizeof c);
        c.n_in = (uint16_t)(1 + rnd() % 32);
        c.in_frac = (int8_t)(rnd() % 16);
        c.n_layers = (uint8_t)(1 + rnd() % 4);
        c.loss = (uint8_t)(rnd() % 2);
        c.optimizer = (uint8_t)(rnd() % 2);
        c.rounding = (uint8_t)(rnd() % 2);
        c.flags = (uint8_t)(rnd() % 2);
        for (l = 0; l < c.n_layers; l++) {
            c.layers[l].n_out = (uint16_t)(1 + rnd() % 8);
            c.layers[l].act = (uint8_t)(rnd() % 4);
            c.layers[l].w_frac = (int8_t)(rnd() % 16);
            c.layers[l].a_frac = (int8_t)(rnd() % 16);
            c.layers[l].frozen = (uint8_t)(rnd() % 4 == 0);
            c.layers[l].w_bits = (uint8_t)(rnd() % 3 == 0 ? 8 : 0);
        }
        if (c.loss == EBP_LOSS_CE) c.layers[c.n_layers - 1].act = (uint8_t)(rnd() % 2 ? EBP_ACT_SOFTMAX : EBP_ACT_SIGMOID);
        CHECK(ebp_net_memory(&c, EBP_MODE_TRAIN, &mem) == EBP_OK);
        CHECK(mem.total <= sizeof arena);
        CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) == EBP_OK);
        CHECK(ebp_net_init_weights(&net, (int)(rnd() % 3), (uint16_t)rnd(), rnd()) == EBP_OK);
        extreme_weights(&net);
        random_hparams(&net);
        CHECK(ebp_net_seed(&net, rnd()) == EBP_OK);
        extreme_data(&c, x, t, 64);
        CHECK(ebp_train(&net, x, t, 64, 1 + rnd() % 8, &loss) == EBP_OK);
        CHECK(ebp_evaluate(&net, x, t, 64, &loss, &correct) == EBP_OK && correct <= 64);
    }
}

/* Random conv1d / pooling / global pooling stacks with a dense output, at the edges of every format, with
 * extreme data and weights, through both update paths: must never overflow (ASan + UBSan). */
static void test_conv_extremes(void) {
    static int16_t x[16 * 96], t[16 * 4];
    int trial;
    for (trial = 0; trial < 300; trial++) {
        ebp_cfg_t c;
        ebp_net_t net;
        uint32_t ch = 1 + rnd() % 3, len = 2 + rnd() % 30, l, n_hidden = 1 + rnd() % 3, frac;
        int64_t loss = 0;
        memset(&c, 0, sizeof c);
        c.in_ch = (uint16_t)ch;
        c.n_in = (uint16_t)(ch * len);
        c.in_frac = (int8_t)(rnd() % 16);
        c.loss = (uint8_t)(rnd() % 2);
        c.optimizer = (uint8_t)(rnd() % 2);
        c.rounding = (uint8_t)(rnd() % 2);
        c.flags = (uint8_t)(rnd() % 2 ? EBP_FLAG_FIXED_DELTA : 0);
        frac = (uint32_t)c.in_frac;
        for (l = 0; l < n_hidden; l++) {
            ebp_layer_cfg_t *L = &c.layers[l];
            uint32_t kind = rnd() % 4 == 0 ? EBP_KIND_MAXPOOL1D + rnd() % 3 : EBP_KIND_CONV1D;
            L->kind = (uint8_t)kind;
            if (kind == EBP_KIND_GAP1D || len == 1) {
                L->kind = EBP_KIND_GAP1D;
                L->a_frac = (int8_t)frac;
                len = 1;
                continue;
            }
            L->kernel = (uint8_t)(1 + rnd() % (len < 5 ? len : 5));
            L->stride = (uint8_t)(rnd() % 4);
            if (kind == EBP_KIND_CONV1D) {
                L->n_out = (uint16_t)(1 + rnd() % 4);
                L->act = (uint8_t)(rnd() % 4);
                L->w_frac = (int8_t)(rnd() % 16);
                L->a_frac = (int8_t)(rnd() % 16);
                L->frozen = (uint8_t)(rnd() % 4 == 0);
                L->w_bits = (uint8_t)(rnd() % 2 ? 8 : 0);
                frac = (uint32_t)L->a_frac;
                ch = L->n_out;
                len = (len - L->kernel) / (L->stride ? L->stride : 1u) + 1u;
            } else {
                L->a_frac = (int8_t)frac;
                len = (len - L->kernel) / (L->stride ? L->stride : L->kernel) + 1u;
            }
        }
        c.n_layers = (uint8_t)(n_hidden + 1);
        c.layers[n_hidden].n_out = (uint16_t)(1 + rnd() % 4);
        c.layers[n_hidden].act = (uint8_t)(c.loss == EBP_LOSS_CE ? (rnd() % 2 ? EBP_ACT_SOFTMAX : EBP_ACT_SIGMOID) : rnd() % 4);
        c.layers[n_hidden].w_frac = (int8_t)(rnd() % 16);
        c.layers[n_hidden].a_frac = (int8_t)(rnd() % 16);
        c.layers[n_hidden].w_bits = (uint8_t)(rnd() % 2 ? 8 : 0);
        if (c.optimizer == EBP_OPT_SGD && rnd() % 2) c.flags |= EBP_FLAG_ONLINE;
        CHECK(ebp_cfg_check(&c) == EBP_OK);
        CHECK(ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) == EBP_OK);
        CHECK(ebp_net_init_weights(&net, (int)(rnd() % 3), (uint16_t)rnd(), rnd()) == EBP_OK);
        extreme_weights(&net);
        random_hparams(&net);
        extreme_data(&c, x, t, 16);
        CHECK(ebp_train(&net, x, t, 16, (c.flags & EBP_FLAG_ONLINE) ? 1u : 1u + rnd() % 4, &loss) == EBP_OK);
        CHECK(ebp_evaluate(&net, x, t, 16, &loss, NULL) == EBP_OK);
    }
    { /* configurations that do not fit are refused */
        ebp_cfg_t c;
        memset(&c, 0, sizeof c);
        c.n_in = 10;
        c.in_ch = 3; /* 10 inputs do not split into 3 channels */
        c.n_layers = 1;
        c.layers[0].n_out = 1;
        CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
        c.in_ch = 2;
        c.layers[0].kind = EBP_KIND_CONV1D;
        c.layers[0].kernel = 6; /* longer than the 5 values per channel */
        CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
        c.layers[0].kernel = 5;
        CHECK(ebp_cfg_check(&c) == EBP_OK);
        c.layers[0].kind = EBP_KIND_MAXPOOL1D; /* pooling has no n_out */
        CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
        c.layers[0].n_out = 0;
        CHECK(ebp_cfg_check(&c) == EBP_OK);
        c.layers[0].a_frac = 3; /* and keeps its input's format */
        CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
        c.layers[0].a_frac = 0;
        c.layers[0].kind = 9;
        CHECK(ebp_cfg_check(&c) == EBP_ERR_CONFIG);
    }
}

int main(void) {
    test_xor();
    test_status_paths();
    test_frozen();
    test_int8();
    test_extremes();
    test_conv_extremes();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
