/*
 * Instructions per online training step (ebp_train, batch 1) and per forward pass of any core configuration
 * on an emulated Cortex-M, counted with QEMU -icount shift=6 as in tools/bench/m3/bench_m.c (whose startup.c
 * and link script this harness uses). tools/model_bench.py writes model_cfg.h (the configuration as
 * make_cfg(), N_IN, N_OUT, ARENA_BYTES, IN_FRAC, OUT_FRAC) and reads the "key=value" lines printed over
 * semihosting.
 */
#include <stdint.h>

#include "edgebp.h"
#include "model_cfg.h"

void bench_exit(int code);
void bench_puts(const char *s);

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#ifndef STEPS
#define STEPS 4
#endif
#define NDATA 2 /* distinct samples, cycled */

static int64_t arena[ARENA_BYTES / 8 + 1];
static int16_t x[NDATA][N_IN], t[NDATA][N_OUT];

static void put_kv(const char *key, uint32_t v) {
    char msg[48], tmp[12], *p = msg;
    int n = 0;
    while (*key) *p++ = *key++;
    *p++ = '=';
    do tmp[n++] = (char)('0' + v % 10u);
    while ((v /= 10u) != 0);
    while (n) *p++ = tmp[--n];
    *p++ = '\n';
    *p = 0;
    bench_puts(msg);
}

static uint32_t rng = 12345u;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static uint32_t calib;
/* one measured call: the 24-bit SysTick counts down from its reload; the empty pair's cost subtracted */
static uint32_t ticks_of_train(ebp_net_t *net, uint32_t s) {
    uint32_t t0 = SYST_CVR, t1;
    ebp_train(net, x[s], t[s], 1, 1, 0);
    t1 = SYST_CVR;
    return ((t0 - t1) & 0xFFFFFFu) - calib;
}

static uint32_t ticks_of_forward(ebp_net_t *net, uint32_t s) {
    uint32_t t0 = SYST_CVR, t1;
    ebp_forward(net, x[s], 0);
    t1 = SYST_CVR;
    return ((t0 - t1) & 0xFFFFFFu) - calib;
}

int main(void) {
    ebp_cfg_t c;
    ebp_net_t net;
    ebp_memory_t mem;
    ebp_hparams_t hp = {LR_M, LR_E, 0};
    uint32_t i, j, tstep = 0, tfwd = 0, best = 0xFFFFFFFFu;
    int st;
    make_cfg(&c);
    st = ebp_net_memory(&c, EBP_MODE_TRAIN, &mem);
    if (st == EBP_OK) st = ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena);
    if (st == EBP_OK) st = ebp_net_init_weights(&net, EBP_INIT_HE, 0, 7);
    if (st == EBP_OK) st = ebp_net_set_hparams(&net, &hp);
    if (st != EBP_OK) {
        put_kv("error", (uint32_t)-st);
        bench_exit(1);
    }
    for (i = 0; i < NDATA; i++) { /* inputs uniform in about [-1, 1], one-hot targets */
        for (j = 0; j < N_IN; j++) x[i][j] = (int16_t)((int32_t)(next_rand() % (2u << IN_FRAC)) - (1 << IN_FRAC));
        for (j = 0; j < N_OUT; j++) t[i][j] = (int16_t)(j == i % N_OUT ? (1 << OUT_FRAC) - 1 : 0);
    }
    ebp_train(&net, x[0], t[0], 1, 1, 0); /* warm up */
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u;
    while (SYST_CVR == 0) {
    }
    for (i = 0; i < 8; i++) {
        uint32_t t0 = SYST_CVR, t1 = SYST_CVR, d = (t0 - t1) & 0xFFFFFFu;
        if (d < best) best = d;
    }
    calib = best;
    for (i = 0; i < STEPS; i++) tstep += ticks_of_train(&net, i % NDATA);
    for (i = 0; i < STEPS; i++) tfwd += ticks_of_forward(&net, i % NDATA);
    put_kv("arena_bytes", mem.total);
    put_kv("steps", STEPS);
    put_kv("step_ticks", tstep);
    put_kv("fwd_ticks", tfwd);
    bench_exit(0);
    return 0;
}
