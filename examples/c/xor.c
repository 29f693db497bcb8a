/* XOR learned online in a static arena: the whole use of the edgebp core (csrc/edgebp.h is the manual). */
#include <stdint.h>
#include <stdio.h>
#include "edgebp.h"

static uint64_t arena[64];   /* the network's memory: 8-byte aligned, no malloc */

int main(void) {
    static const int16_t x[4][2] = {{0, 0}, {0, 4096}, {4096, 0}, {4096, 4096}};   /* inputs, Q12 */
    static const int16_t t[4][1] = {{0}, {4096}, {4096}, {0}};                    /* targets, Q12 */
    ebp_cfg_t cfg = {.n_in = 2, .in_frac = 12, .n_layers = 2, .loss = EBP_LOSS_MSE, .optimizer = EBP_OPT_SGD,
                     .rounding = EBP_ROUND_NEAREST, .flags = EBP_FLAG_ONLINE,      /* no gradient memory */
                     .layers = {{4, EBP_ACT_TANH, 12, 12}, {1, EBP_ACT_SIGMOID, 12, 12}}};
    ebp_hparams_t hp = {.lr_m = 32768, .lr_e = -15, .momentum_q15 = 0};           /* lr = 32768 * 2^-15 = 1 */
    ebp_memory_t mem;
    ebp_net_t net;
    int16_t y[4];
    int st = ebp_net_memory(&cfg, EBP_MODE_TRAIN, &mem);
    if (st == EBP_OK && mem.total > sizeof arena) st = EBP_ERR_SIZE;
    if (st == EBP_OK) st = ebp_net_init(&net, &cfg, EBP_MODE_TRAIN, arena, sizeof arena);
    if (st == EBP_OK) st = ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 4096, 1);  /* weights in [-1, 1] */
    if (st == EBP_OK) st = ebp_net_seed(&net, 1);
    if (st == EBP_OK) st = ebp_net_set_hparams(&net, &hp);
    for (int epoch = 0; st == EBP_OK && epoch < 2000; epoch++)
        st = ebp_train(&net, &x[0][0], &t[0][0], 4, 1, NULL);                       /* batch 1: online SGD */
    if (st == EBP_OK) st = ebp_predict(&net, &x[0][0], 4, y);
    if (st != EBP_OK) {
        printf("edgebp: %s\n", ebp_status_str(st));
        return 1;
    }
    for (int i = 0; i < 4; i++)
        printf("%d xor %d -> %d / 4096\n", x[i][0] / 4096, x[i][1] / 4096, y[i]);
    printf("arena: %lu of %lu bytes\n", (unsigned long)mem.total, (unsigned long)sizeof arena);
    return 0;
}
