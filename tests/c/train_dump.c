/*
 * Trains random dense networks online (batch 1, SGD) and prints every weight and bias, so that builds of the
 * core with different kernels (EBP_STATS=0, EBP_PORTABLE=1, EBP_WIDE_MUL=0) can be compared integer by integer
 * (tests/test_c.py). Usage: train_dump SEED N_NETS [edge] [stats]. Configurations: 1-3 layers of 1-24 neurons,
 * every activation, both roundings, both losses, signed or non-negative inputs, learning rates 2^-8..2, Q10-Q13
 * weights, with and without EBP_FLAG_ONLINE. `edge` makes them harsher for the update rows: up to 40 inputs and
 * hidden neurons (several 8-lane steps, tails, partial blocks of biases), inputs over the whole int16 range
 * (-32768 and 32767 included; some samples -32768 only) at Q0-Q15, weights near +-32767 or -32768 exactly
 * (updates that saturate, dot products whose pairs of products reach 2^31), learning rates up to 2^7
 * (shifts S down to 1 and |dl| >= 2^S) and down to 2^-24 (S up to 30 and beyond). `stats` also prints every
 * layer's counters (for builds that count them, EBP_STATS=1).
 */
#include <stdio.h>
#include <stdlib.h>

#include "edgebp.h"

static uint32_t rng;
static uint32_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int64_t arena[1 << 13];
static int16_t x[32 * 40], t[32 * 4];

int main(int argc, char **argv) {
    uint32_t k, n_nets;
    int edge = 0, stats = 0, a;
    if (argc < 3) return 2;
    for (a = 3; a < argc; a++) {
        edge |= argv[a][0] == 'e';
        stats |= argv[a][0] == 's';
    }
    rng = (uint32_t)strtoul(argv[1], NULL, 10) * 2654435761u + 1u;
    n_nets = (uint32_t)strtoul(argv[2], NULL, 10);
    for (k = 0; k < n_nets; k++) {
        ebp_cfg_t c = {0};
        ebp_net_t net;
        ebp_hparams_t hp;
        uint32_t l, i, n_samples = 32, epoch;
        int neg = (int)(next() % 3u == 0u);
        c.n_in = (uint16_t)(1u + next() % (edge ? 40u : 24u));
        c.in_frac = (int8_t)(edge ? next() % 16u : 12u);
        c.n_layers = (uint8_t)(1u + next() % 3u);
        c.rounding = (uint8_t)(next() % 4u != 0u ? EBP_ROUND_STOCHASTIC : EBP_ROUND_NEAREST);
        c.loss = (uint8_t)(next() % 2u);
        c.flags = (uint8_t)(next() % 2u ? EBP_FLAG_ONLINE : 0u);
        for (l = 0; l < c.n_layers; l++) {
            c.layers[l].n_out = (uint16_t)(1u + next() % (l + 1u == c.n_layers ? 4u : edge ? 40u : 24u));
            c.layers[l].act = (uint8_t)(next() % 4u); /* sigmoid, tanh, relu, linear */
            c.layers[l].w_frac = (int8_t)(10 + next() % 4u);
            c.layers[l].a_frac = 12;
        }
        if (c.loss == EBP_LOSS_CE) c.layers[c.n_layers - 1].act = EBP_ACT_SIGMOID;
        if (ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) != EBP_OK) {
            printf("net %u: init refused\n", k);
            continue;
        }
        { /* one draw a statement: the order of a call's arguments is unspecified (GCC and clang differ) */
            const uint16_t range = (uint16_t)(512u + next() % 4096u);
            ebp_net_init_weights(&net, EBP_INIT_UNIFORM, range, next() | 1u);
        }
        hp.lr_m = (uint16_t)(32768u + next() % 32768u);
        hp.lr_e = (int8_t)(edge ? -(int)(8u + next() % 32u) : -(int)(15u + next() % 9u));
        hp.momentum_q15 = 0;
        ebp_net_set_hparams(&net, &hp);
        ebp_net_seed(&net, next() | 1u);
        if (edge && next() % 2u) /* weights near the int16 limits: updates that saturate */
            for (l = 0; l < c.n_layers; l++) {
                ebp_layer_t *L = &net.layers[l];
                for (i = 0; i < (uint32_t)L->n_w; i++) { /* a quarter of them -32768 exactly */
                    const uint32_t v = next();
                    L->w[i] = (int16_t)(v % 4u == 0u ? -32768 : v % 2u ? 32767 - (int32_t)(next() % 64u)
                                                                        : -32768 + (int32_t)(next() % 64u));
                }
                for (i = 0; i < (uint32_t)L->n_b; i++) L->b[i] = (int16_t)(next() % 2u ? 32767 : -32768);
            }
        for (i = 0; i < n_samples * c.n_in; i++) {
            const uint32_t v = next();
            if (edge && v % 4u == 0u) /* the whole int16 range, its ends included */
                x[i] = (int16_t)(v % 3u == 0u ? -32768 : v % 3u == 1u ? 32767 : (int32_t)(next() % 65536u) - 32768);
            else if (edge && !neg)
                x[i] = (int16_t)(next() % 32768u);
            else
                x[i] = (int16_t)(neg ? (int32_t)(next() % 8193u) - 4096 : (int32_t)(next() % 4097u));
        }
        if (edge && next() % 4u == 0u) /* a sample of -32768 only: (-2^15)^2 + (-2^15)^2 = 2^31 in a dot product */
            for (i = 0; i < c.n_in; i++) x[i] = INT16_MIN;
        for (i = 0; i < n_samples * c.layers[c.n_layers - 1].n_out; i++) t[i] = (int16_t)(next() % 2u ? 4096 : 0);
        for (epoch = 0; epoch < 3; epoch++)
            if (ebp_train(&net, x, t, n_samples, 1, NULL) != EBP_OK) printf("net %u: train failed\n", k);
        printf("net %u:", k);
        for (l = 0; l < c.n_layers; l++) {
            const ebp_layer_t *L = &net.layers[l];
            for (i = 0; i < (uint32_t)L->n_w; i++) printf(" %d", L->w[i]);
            printf(" |");
            for (i = 0; i < (uint32_t)L->n_b; i++) printf(" %d", L->b[i]);
            if (stats)
                printf(" | out %u grad %u param %u updates %u zero %u", L->stats.sat_out, L->stats.sat_grad,
                       L->stats.sat_param, L->stats.updates, L->stats.zero_updates);
            printf(" ;");
        }
        printf(" rng %u\n", net.rng);
    }
    return 0;
}
