/*
 * Instructions per online training step on an emulated Cortex-M (QEMU mps2-an385 = Cortex-M3 at 25 MHz,
 * microbit = Cortex-M0 at 16 MHz), counted with QEMU -icount shift=6: SysTick then advances 64 ns of virtual
 * time per instruction, so instructions = ticks * 1e9 / (CLOCK_HZ * 64). Driven by tools/bench/run.py
 * (edgebp.bench); it prints "key=value" lines over semihosting, raw ticks, and the host converts.
 *
 * Build variants (one per binary, so a float network and a fixed one never share the micro:bit's 16 KiB):
 *   (default)      the C core: ebp_train(batch 1) steps and ebp_forward passes (-DBENCH_ONLINE_ONLY:
 *                  an EBP_FLAG_ONLINE network)
 *   -DBENCH_FLOAT  the same 2-layer sigmoid / squared-error online SGD step in float32 (soft float on M0/M3)
 *   -DBENCH_MAC    plain loops: int16 x int16 multiply-accumulates into int32 and into int64, a stochastically
 *                  rounded weight update, and xorshift32 draws alone (the floors of the step's phases)
 *   -DBENCH_PROFILE  the core's steps with a SysTick interrupt every PROFILE_PERIOD ticks recording the
 *                  interrupted PC, LR and first return address on the stack, printed as
 *                  "pc=ADDR lr=ADDR ret=ADDR n=COUNT" lines
 * -DN_IN/-DN_HID/-DN_OUT set the network (default 8-16-2).
 *
 * Every measured call is timed alone (two SysTick reads around it, the cost of the empty pair subtracted),
 * so the 24-bit counter never wraps inside a measurement.
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
#endif
#ifndef N_HID
#define N_HID 16
#endif
#ifndef N_OUT
#define N_OUT 2
#endif
#ifndef STEPS
#define STEPS 32
#endif
#ifndef CLOCK_HZ
#define CLOCK_HZ 25000000u
#endif
#define NDATA 8 /* distinct samples, cycled */
#ifndef BENCH_ROUNDING /* the default configuration's weight-update rounding (TrainConfig: stochastic) */
#define BENCH_ROUNDING EBP_ROUND_STOCHASTIC
#endif
#define N_MAC 1024

static char *put_u32(char *p, uint32_t v) {
    char tmp[12];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10u);
    while ((v /= 10u) != 0);
    while (n) *p++ = tmp[--n];
    return p;
}

static char *put_hex(char *p, uint32_t v) {
    int k;
    *p++ = '0';
    *p++ = 'x';
    for (k = 28; k >= 0; k -= 4) *p++ = "0123456789abcdef"[(v >> k) & 15u];
    return p;
}

static void put_kv(const char *key, uint32_t v) {
    char msg[48], *p = msg;
    while (*key) *p++ = *key++;
    *p++ = '=';
    p = put_u32(p, v);
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

static void systick_start(uint32_t reload, uint32_t csr) {
    SYST_RVR = reload;
    SYST_CVR = 0;
    SYST_CSR = csr;
    while (SYST_CVR == 0) { /* reads 0 until the first reload */
    }
}

/* ticks of an empty measurement (two reads), subtracted from every measurement */
static uint32_t calib;
#define MEASURE(total, stmt)                                                                                  \
    do {                                                                                                      \
        uint32_t t0_ = SYST_CVR, t1_;                                                                         \
        stmt;                                                                                                 \
        t1_ = SYST_CVR;                                                                                       \
        (total) += ((t0_ - t1_) & 0xFFFFFFu) - calib;                                                         \
    } while (0)

static void calibrate(void) {
    uint32_t k, best = 0xFFFFFFFFu;
    for (k = 0; k < 8; k++) {
        uint32_t c = 0;
        calib = 0;
        MEASURE(c, (void)0);
        if (c < best) best = c;
    }
    calib = best;
}

/* instructions = ticks * 1e9 / (CLOCK_HZ * 64), rounded down */
static uint32_t instructions(uint32_t ticks) { return (uint32_t)((uint64_t)ticks * 15625000u / CLOCK_HZ); }

static void put_header(void) {
    put_kv("n_in", N_IN);
    put_kv("n_hid", N_HID);
    put_kv("n_out", N_OUT);
    put_kv("clock_hz", CLOCK_HZ);
    put_kv("calib_ticks", calib);
}

#if defined(BENCH_MAC)
/* ------------------------------------------------------------------------------------------------------ */
static int16_t a[N_MAC], b[N_MAC];
static volatile int32_t sink32;
static volatile int64_t sink64;

__attribute__((noipa)) static int32_t mac32(const int16_t *p, const int16_t *q, uint32_t n) {
    int32_t acc = 0;
    uint32_t i;
    for (i = 0; i < n; i++) acc += (int32_t)p[i] * q[i];
    return acc;
}

__attribute__((noipa)) static int64_t mac64(const int16_t *p, const int16_t *q, uint32_t n) {
    int64_t acc = 0;
    uint32_t i;
    for (i = 0; i < n; i++) acc += (int64_t)p[i] * q[i];
    return acc;
}

/* the plain loop of a stochastically rounded weight update (the rule of the core's online rows, without its
 * counters): the row's value r of its Weyl sequence, w -= floor((dl a + (r >> (32 - S))) / 2^S), saturated to int16
 * (GCC's >> of a negative int is arithmetic), r += 0x9E3779B9 (EBP_WEYL); the row's one draw is not counted */
__attribute__((noipa)) static uint32_t sr_update(int16_t *w, const int16_t *x, uint32_t n, int32_t dl, int S,
                                                 uint32_t r) {
    uint32_t i;
    for (i = 0; i < n; i++, r += 0x9E3779B9u) {
        const int32_t nw = w[i] - ((dl * x[i] + (int32_t)(r >> (32 - S))) >> S);
        w[i] = (int16_t)(nw > 32767 ? 32767 : nw < -32768 ? -32768 : nw);
    }
    return r;
}

/* the generator alone: n xorshift32 draws */
__attribute__((noipa)) static uint32_t draws(uint32_t n, uint32_t r) {
    uint32_t i;
    for (i = 0; i < n; i++) {
        r ^= r << 13;
        r ^= r >> 17;
        r ^= r << 5;
    }
    return r;
}

int main(void) {
    uint32_t i, t32 = 0, t64 = 0, tsr = 0, trng = 0;
    for (i = 0; i < N_MAC; i++) {
        a[i] = (int16_t)next_rand();
        b[i] = (int16_t)(next_rand() & 0x0FFFu); /* non-negative, like sigmoid outputs */
    }
    systick_start(0xFFFFFFu, 5u);
    calibrate();
    put_kv("clock_hz", CLOCK_HZ);
    put_kv("calib_ticks", calib);
    MEASURE(t32, sink32 = mac32(a, b, N_MAC));
    MEASURE(t64, sink64 = mac64(a, b, N_MAC));
    MEASURE(tsr, sink32 = (int32_t)sr_update(a, b, N_MAC, 9000, 22, 12345u));
    MEASURE(trng, sink32 = (int32_t)draws(N_MAC, 12345u));
    put_kv("macs", N_MAC);
    put_kv("mac32_ticks", t32);
    put_kv("mac64_ticks", t64);
    put_kv("sr_update_ticks", tsr);
    put_kv("draw_ticks", trng);
    bench_exit(0);
    return 0;
}

#elif defined(BENCH_FLOAT)
/* ------------------------------------------------------------------------------------------------------ */
/* The same algorithm as the core's online SGD in float32, written like genann: 2 sigmoid layers, squared
 * error, w -= lr * delta * input after each sample. Sigmoid as in the core: a 257-entry table on [0, 16]
 * (step 1/16) with linear interpolation and symmetry for z < 0, here in float. */
static float w1[N_HID][N_IN], b1[N_HID], w2[N_OUT][N_HID], b2[N_OUT];
static float h[N_HID], y[N_OUT], dh[N_HID], dy[N_OUT];
static float xf[NDATA][N_IN], tf[NDATA][N_OUT];
static float sig_table[257];
static const float lr = 0.2f;

static float sigmoid_f(float z) {
    float az = z < 0.0f ? -z : z, u, s;
    int k;
    if (az >= 16.0f) {
        s = sig_table[256];
    } else {
        u = az * 16.0f;
        k = (int)u;
        u -= (float)k;
        s = sig_table[k] + u * (sig_table[k + 1] - sig_table[k]);
    }
    return z < 0.0f ? 1.0f - s : s;
}

__attribute__((noipa)) static void forward_f(const float *x) {
    int o, i;
    for (o = 0; o < N_HID; o++) {
        float acc = b1[o];
        for (i = 0; i < N_IN; i++) acc += w1[o][i] * x[i];
        h[o] = sigmoid_f(acc);
    }
    for (o = 0; o < N_OUT; o++) {
        float acc = b2[o];
        for (i = 0; i < N_HID; i++) acc += w2[o][i] * h[i];
        y[o] = sigmoid_f(acc);
    }
}

__attribute__((noipa)) static void train_f(const float *x, const float *t) {
    int o, i;
    forward_f(x);
    for (o = 0; o < N_OUT; o++) dy[o] = (y[o] - t[o]) * y[o] * (1.0f - y[o]);
    for (i = 0; i < N_HID; i++) {
        float s = 0.0f;
        for (o = 0; o < N_OUT; o++) s += w2[o][i] * dy[o];
        dh[i] = s * h[i] * (1.0f - h[i]);
    }
    for (o = 0; o < N_OUT; o++) {
        float d = lr * dy[o];
        for (i = 0; i < N_HID; i++) w2[o][i] -= d * h[i];
        b2[o] -= d;
    }
    for (o = 0; o < N_HID; o++) {
        float d = lr * dh[o];
        for (i = 0; i < N_IN; i++) w1[o][i] -= d * x[i];
        b1[o] -= d;
    }
}

static float rand_pm_half(void) { return (float)(int32_t)(next_rand() % 4097u - 2048u) / 4096.0f; }

int main(void) {
    uint32_t i, j, tstep = 0, tfwd = 0;
    double e = 1.0, term = 1.0, cur = 1.0; /* exp(1/16) by its series, then sigmoid(k/16) = 1/(1+exp(-k/16)) */
    for (i = 1; i < 12; i++) {
        term *= 1.0 / 16.0 / (double)i;
        e += term;
    }
    for (i = 0; i < 257; i++, cur /= e) sig_table[i] = (float)(1.0 / (1.0 + cur));
    for (i = 0; i < N_HID; i++) {
        for (j = 0; j < N_IN; j++) w1[i][j] = rand_pm_half();
        b1[i] = rand_pm_half();
    }
    for (i = 0; i < N_OUT; i++) {
        for (j = 0; j < N_HID; j++) w2[i][j] = rand_pm_half();
        b2[i] = rand_pm_half();
    }
    for (i = 0; i < NDATA; i++) {
        for (j = 0; j < N_IN; j++) xf[i][j] = (float)(next_rand() % 4096u) / 4096.0f;
        for (j = 0; j < N_OUT; j++) tf[i][j] = j == i % N_OUT ? 1.0f : 0.0f;
    }
    for (i = 0; i < STEPS; i++) train_f(xf[i % NDATA], tf[i % NDATA]); /* warm up */
    systick_start(0xFFFFFFu, 5u);
    calibrate();
    put_header();
    for (i = 0; i < STEPS; i++) MEASURE(tstep, train_f(xf[i % NDATA], tf[i % NDATA]));
    for (i = 0; i < STEPS; i++) MEASURE(tfwd, forward_f(xf[i % NDATA]));
    put_kv("steps", STEPS);
    put_kv("step_ticks", tstep);
    put_kv("fwd_ticks", tfwd);
    put_kv("instr_per_step", instructions(tstep) / STEPS);
    put_kv("check", (uint32_t)(int32_t)(w1[0][0] * 4096.0f));
    bench_exit(0);
    return 0;
}

#else
/* ------------------------------------------------------------------------------------------------------ */
#define PARAMS (N_IN * N_HID + N_HID * N_OUT + N_HID + N_OUT)
#ifdef BENCH_ONLINE_ONLY /* EBP_FLAG_ONLINE: no gradient memory, no scratch (raw deltas recomputed) */
static int64_t arena[(2 * PARAMS + 2 * (N_IN + 2 * N_HID + 2 * N_OUT) + 64) / 8 + 1];
#else /* the default configuration: int32 gradient sums and int64 raw-delta scratch */
static int64_t arena[(2 * PARAMS + 4 * PARAMS + 2 * (N_IN + 2 * N_HID + 2 * N_OUT) +
                      8 * (N_HID > N_OUT ? N_HID : N_OUT) + 64) / 8 + 1];
#endif
static int16_t x[NDATA][N_IN], t[NDATA][N_OUT];

#ifdef BENCH_PROFILE
#ifndef PROFILE_PERIOD
#define PROFILE_PERIOD 1999u /* ticks between samples: prime, and well above the handler's cost (else it tail-chains forever) */
#endif
#define HBITS 9
/* one entry per (PC, stacked LR, first return address found on the stack) */
static uint32_t hpc[1u << HBITS], hlr[1u << HBITS], hret[1u << HBITS], hn[1u << HBITS], lost;
static volatile int profiling;
extern const uint16_t __text_start[], __text_end[];

/* a Thumb return address: odd, inside .text, just after a 32-bit BL */
static int is_return_address(uint32_t w) {
    const uint16_t *p = (const uint16_t *)(w - 1u);
    if (!(w & 1u) || p < __text_start + 2 || p >= __text_end) return 0;
    return (p[-2] & 0xF800u) == 0xF000u && (p[-1] & 0xD000u) == 0xD000u;
}

void profile_sample(uint32_t *frame, uint32_t lr_unused) {
    uint32_t pc = frame[6], lr = frame[5], ret = 0, k, probe, j;
    (void)lr_unused;
    if (!profiling) return;
    if (!is_return_address(lr)) lr = 0; /* lr as a scratch register: not a caller, and it would spread the keys */
    /* the caller of a libgcc helper that pushed LR: the first return address above the exception frame */
    for (j = 8; j < 24 && ret == 0; j++)
        if (is_return_address(frame[j]) && frame[j] != lr) ret = frame[j];
    k = ((pc ^ (lr * 31u) ^ (ret * 17u)) * 2654435761u) >> (32 - HBITS);
    for (probe = 0; probe < 32u; probe++, k = (k + 1u) & ((1u << HBITS) - 1u)) { /* bounded handler time */
        if (hn[k] == 0) {
            hpc[k] = pc;
            hlr[k] = lr;
            hret[k] = ret;
        }
        if (hpc[k] == pc && hlr[k] == lr && hret[k] == ret) {
            hn[k]++;
            return;
        }
    }
    lost++;
}

/* tail-branch with the exception frame's address in r0 (EXC_RETURN stays in lr) */
__attribute__((naked)) void systick_handler(void) {
    __asm__ volatile("mrs r0, msp\n"
                     "ldr r3, =profile_sample\n"
                     "bx r3\n");
}
#endif

int main(void) {
    ebp_cfg_t c;
    ebp_net_t net;
    ebp_hparams_t hp = {52429, -18, 0}; /* lr 0.2 */
    uint32_t i, j, tstep = 0, tfwd = 0;
    for (i = 0; i < sizeof c; i++) ((uint8_t *)&c)[i] = 0;
    c.n_in = N_IN;
    c.in_frac = 12;
    c.n_layers = 2;
    c.rounding = BENCH_ROUNDING;
#ifdef BENCH_ONLINE_ONLY
    c.flags = EBP_FLAG_ONLINE; /* the same integers as the default configuration, least RAM, slower deltas */
#endif
    c.layers[0].n_out = N_HID;
    c.layers[0].act = EBP_ACT_SIGMOID;
    c.layers[0].w_frac = c.layers[0].a_frac = 12;
    c.layers[1] = c.layers[0];
    c.layers[1].n_out = N_OUT;
    if (ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) != EBP_OK) bench_exit(1);
    ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 2048, 1);
    ebp_net_set_hparams(&net, &hp);
    for (i = 0; i < NDATA; i++) {
        for (j = 0; j < N_IN; j++) x[i][j] = (int16_t)(next_rand() % 4096u);
        for (j = 0; j < N_OUT; j++) t[i][j] = (int16_t)(j == i % N_OUT ? 4096 : 0);
    }
    for (i = 0; i < STEPS; i++) ebp_train(&net, x[i % NDATA], t[i % NDATA], 1, 1, 0); /* warm up */
#ifdef BENCH_PROFILE
    systick_start(PROFILE_PERIOD, 7u); /* TICKINT: interrupt at every reload */
    profiling = 1;
    for (i = 0; i < STEPS; i++) ebp_train(&net, x[i % NDATA], t[i % NDATA], 1, 1, 0);
    profiling = 0;
    SYST_CSR = 0;
    put_kv("lost", lost);
    for (i = 0; i < (1u << HBITS); i++)
        if (hn[i]) {
            char msg[64], *p = msg;
            *p++ = 'p'; *p++ = 'c'; *p++ = '=';
            p = put_hex(p, hpc[i]);
            *p++ = ' '; *p++ = 'l'; *p++ = 'r'; *p++ = '=';
            p = put_hex(p, hlr[i]);
            *p++ = ' '; *p++ = 'r'; *p++ = 'e'; *p++ = 't'; *p++ = '=';
            p = put_hex(p, hret[i]);
            *p++ = ' '; *p++ = 'n'; *p++ = '=';
            p = put_u32(p, hn[i]);
            *p++ = '\n';
            *p = 0;
            bench_puts(msg);
        }
#else
    systick_start(0xFFFFFFu, 5u);
    calibrate();
    put_header();
    for (i = 0; i < STEPS; i++) MEASURE(tstep, ebp_train(&net, x[i % NDATA], t[i % NDATA], 1, 1, 0));
    for (i = 0; i < STEPS; i++) MEASURE(tfwd, ebp_forward(&net, x[i % NDATA], 0));
    put_kv("steps", STEPS);
    put_kv("step_ticks", tstep);
    put_kv("fwd_ticks", tfwd);
    put_kv("instr_per_step", instructions(tstep) / STEPS); /* for a quick look; the host recomputes from ticks */
    put_kv("arena_bytes", (uint32_t)sizeof arena);
    put_kv("check", (uint32_t)(int32_t)net.layers[0].w[0]);
#endif
    bench_exit(0);
    return 0;
}
#endif
