/*
 * Instructions per online training step on an emulated Cortex-M, counted with QEMU -icount shift=6:
 * SysTick then advances 64 ns of virtual time per instruction (tools/bench/README and EMULATION notes).
 */
#include <stdint.h>

#include "edgebp.h"

void bench_exit(int code);
void bench_puts(const char *s);

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#ifndef N_IN
#define N_IN 8
#define N_HID 16
#define N_OUT 2
#endif
#define STEPS 64

static int64_t arena[(2 * (N_IN * N_HID + N_HID * N_OUT + N_HID + N_OUT) + 2 * (N_IN + 2 * N_HID + 2 * N_OUT) +
                      8 * N_HID + 64) / 8 + 1];
static int16_t x[STEPS][N_IN], t[STEPS][N_OUT];

static char *put_u32(char *p, uint32_t v) {
    char tmp[12];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10u); while ((v /= 10u) != 0);
    while (n) *p++ = tmp[--n];
    return p;
}

int main(void) {
    ebp_cfg_t c;
    ebp_net_t net;
    ebp_hparams_t hp = {52429, -18, 0};
    uint32_t rng = 12345u, i, j, t0, t1, ticks;
    char msg[64], *p = msg;
    for (i = 0; i < sizeof c; i++) ((uint8_t *)&c)[i] = 0;
    c.n_in = N_IN;
    c.in_frac = 12;
    c.n_layers = 2;
    c.flags = EBP_FLAG_ONLINE;
    c.layers[0].n_out = N_HID;
    c.layers[0].act = EBP_ACT_SIGMOID;
    c.layers[0].w_frac = c.layers[0].a_frac = 12;
    c.layers[1] = c.layers[0];
    c.layers[1].n_out = N_OUT;
    if (ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) != EBP_OK) bench_exit(1);
    ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 2048, 1);
    ebp_net_set_hparams(&net, &hp);
    for (i = 0; i < STEPS; i++) {
        for (j = 0; j < N_IN; j++) {
            rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
            x[i][j] = (int16_t)(rng % 4096u);
        }
        for (j = 0; j < N_OUT; j++) t[i][j] = (int16_t)(j == i % N_OUT ? 4096 : 0);
    }
    ebp_train(&net, x[0], t[0], STEPS, 1, 0); /* warm up: weights away from their start */
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u;
    while ((t0 = SYST_CVR) == 0) {
    }
    t0 = SYST_CVR;
#ifdef FWD_ONLY
    for (i = 0; i < STEPS; i++) ebp_forward(&net, x[i], 0);
#else
    for (i = 0; i < STEPS; i++) ebp_train(&net, x[i], t[i], 1, 1, 0);
#endif
    t1 = SYST_CVR;
    ticks = (t0 - t1) & 0xFFFFFFu;
    /* instructions = ticks * 1e9 / (25e6 * 64) = ticks * 5 / 8 (an385, 25 MHz) */
    p = put_u32(p, (uint32_t)((uint64_t)ticks * 5u / 8u / STEPS));
    *p++ = '\n';
    *p = 0;
    bench_puts(msg);
    bench_exit(0);
    return 0;
}
