/*
 * Counts the cost of one online training step (forward, backward, update) of the C core: run under
 * `valgrind --tool=callgrind` with two step counts; the difference divided by the extra steps is the
 * instructions per step, free of start-up costs. Usage: bench_step N_STEPS N_IN N_HIDDEN N_OUT [online|grad] [sr|rn]
 * (online: an EBP_FLAG_ONLINE network, without gradient memory; else core flags 0. sr: stochastic rounding of
 * the updates, else round to nearest)
 */
#include <stdio.h>
#include <stdlib.h>

#include "edgebp.h"

static int64_t arena[1 << 14];
static int16_t x[64 * 1024], t[64 * 64];

int main(int argc, char **argv) {
    ebp_cfg_t c = {0};
    ebp_net_t net;
    ebp_hparams_t hp = {52429, -18, 0}; /* lr 0.2 */
    uint32_t s, rng = 12345u, steps, i, n_in, n_out;
    if (argc < 5) return 2;
    steps = (uint32_t)atoi(argv[1]);
    n_in = (uint32_t)atoi(argv[2]);
    n_out = (uint32_t)atoi(argv[4]);
    c.n_in = (uint16_t)n_in;
    c.in_frac = 12;
    c.n_layers = 2;
    c.layers[0].n_out = (uint16_t)atoi(argv[3]);
    c.layers[0].act = EBP_ACT_SIGMOID;
    c.layers[0].w_frac = c.layers[0].a_frac = 12;
    c.layers[1] = c.layers[0];
    c.layers[1].n_out = (uint16_t)n_out;
    if (argc > 5 && argv[5][0] == 'o') c.flags = EBP_FLAG_ONLINE;
    if (argc > 6 && argv[6][0] == 's') c.rounding = EBP_ROUND_STOCHASTIC;
    if (ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) != EBP_OK) return 1;
    ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 2048, 1);
    ebp_net_set_hparams(&net, &hp);
    for (i = 0; i < 64 * n_in; i++) {
        rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
        x[i] = (int16_t)(rng % 4096);
    }
    for (i = 0; i < 64 * n_out; i++) t[i] = (int16_t)((i % n_out) == (i / n_out) % n_out ? 4096 : 0);
    for (s = 0; s < steps; s++)
        ebp_train(&net, x + (s % 64) * n_in, t + (s % 64) * n_out, 1, 1, NULL);
    printf("%d\n", net.layers[0].w[0]);
    return 0;
}
