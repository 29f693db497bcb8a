/*
 * Cycles per online training step on an ATmega328P at 16 MHz in simavr (cycle-accurate), driven by
 * tools/step_bench/avr.py. Timer1 counts CPU cycles (no prescaler) and its overflow interrupt extends it to
 * 32 bits; every measured call is timed alone and the cost of an empty measurement is subtracted. Prints
 * "key=value" lines on UART0 (simavr-run --stdio), then sleeps with interrupts off, which ends the simulation.
 *
 * Variants (one per binary):
 *   (default)       the C core: ebp_train(batch 1) steps of an 8-16-2 sigmoid / squared-error EBP_FLAG_ONLINE
 *                   network (what the firmware trains), stochastic rounding (the default; -DBENCH_NEAREST:
 *                   round to nearest); ebp_forward passes
 *   -DBENCH_GENANN  genann's algorithm, written here (genann's source is not copied): float weights (avr-gcc's
 *                   double is this 32-bit float), sigmoid 1 / (1 + exp(-a)) from avr-libc's exp() (genann's
 *                   uncached sigmoid: its 4096-entry cache would not fit 2 KiB of RAM), bias weight first with
 *                   input -1, online backprop in genann_train's order: output deltas, hidden deltas, then the
 *                   output layer's weights, then the hidden layer's
 *   -DBENCH_MAC     plain multiply-accumulate loops over 256 int16 pairs: into int32 (the floor) and into int64
 *   -DBENCH_PHASES  the core's step in its phases (built from csrc/core/*.c as separate files, whose internal
 *                   functions are then external): forward, deltas (ebp_backward_deltas), the online update of
 *                   each layer (ebp_update_online), in ebp_train's order
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <stdint.h>

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
#define STEPS 16
#endif
#define NDATA 8

/* simavr reads the MCU and its clock from this section (simavr/avr/avr_mcu_section.h: tag, length, value) */
__attribute__((section(".mmcu"), used)) const uint8_t bench_mmcu[] = {
    2, 4, 0x00, 0x24, 0xF4, 0x00, /* frequency 16000000, little-endian */
    1, 11, 'a', 't', 'm', 'e', 'g', 'a', '3', '2', '8', 'p', 0, 0, 0};

static void putc_(char c) {
    while (!(UCSR0A & (1u << UDRE0))) {
    }
    UDR0 = (uint8_t)c;
}

static void put_kv(const char *key, uint32_t v) {
    char tmp[12];
    int n = 0;
    while (*key) putc_(*key++);
    putc_('=');
    do tmp[n++] = (char)('0' + v % 10u);
    while ((v /= 10u) != 0);
    while (n) putc_(tmp[--n]);
    putc_('\n');
}

static void finish(void) {
    while (!(UCSR0A & (1u << TXC0))) { /* the last byte left the shift register */
    }
    cli();
    sleep_enable();
    sleep_cpu();
}

static volatile uint16_t ovf;
ISR(TIMER1_OVF_vect) { ovf++; }

static uint32_t cycles(void) {
    uint16_t hi, lo;
    uint8_t s = SREG;
    cli();
    lo = TCNT1;
    hi = ovf;
    if (TIFR1 & (1u << TOV1)) {
        lo = TCNT1;
        hi++;
    }
    SREG = s;
    return ((uint32_t)hi << 16) | lo;
}

static uint32_t calib;
#define MEASURE(total, stmt)                                                                                  \
    do {                                                                                                      \
        uint32_t t0_ = cycles(), t1_;                                                                         \
        stmt;                                                                                                 \
        t1_ = cycles();                                                                                       \
        (total) += t1_ - t0_ - calib;                                                                         \
    } while (0)

static void start(void) {
    uint8_t k;
    UBRR0H = 0;
    UBRR0L = 16; /* 117647 baud with U2X */
    UCSR0A = (1u << U2X0);
    UCSR0C = (1u << UCSZ01) | (1u << UCSZ00);
    UCSR0B = (1u << TXEN0);
    TCCR1A = 0;
    TCNT1 = 0;
    TIFR1 = (1u << TOV1);
    TIMSK1 = (1u << TOIE1);
    TCCR1B = (1u << CS10);
    sei();
    calib = 0xFFFFFFFFu;
    for (k = 0; k < 8; k++) {
        uint32_t c = 0, save = calib;
        calib = 0;
        MEASURE(c, (void)0);
        calib = c < save ? c : save;
    }
    put_kv("calib_cycles", calib);
    put_kv("f_cpu", 16000000u);
}

static uint32_t rng = 12345u;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

#if defined(BENCH_MAC)
/* ------------------------------------------------------------------------------------------------------ */
#define N_MAC 256
static int16_t a[N_MAC], b[N_MAC];
static volatile int32_t sink32;
static volatile int64_t sink64;

__attribute__((noinline, noclone)) static int32_t mac32(const int16_t *p, const int16_t *q, uint16_t n) {
    int32_t acc = 0;
    uint16_t i;
    for (i = 0; i < n; i++) acc += (int32_t)p[i] * q[i];
    return acc;
}

__attribute__((noinline, noclone)) static int64_t mac64(const int16_t *p, const int16_t *q, uint16_t n) {
    int64_t acc = 0;
    uint16_t i;
    for (i = 0; i < n; i++) acc += (int32_t)p[i] * q[i];
    return acc;
}

int main(void) {
    uint16_t i;
    uint32_t t32 = 0, t64 = 0;
    for (i = 0; i < N_MAC; i++) {
        a[i] = (int16_t)next_rand();
        b[i] = (int16_t)next_rand();
    }
    start();
    MEASURE(t32, sink32 = mac32(a, b, N_MAC));
    MEASURE(t64, sink64 = mac64(a, b, N_MAC));
    put_kv("macs", N_MAC);
    put_kv("mac32_cycles", t32);
    put_kv("mac64_cycles", t64);
    finish();
    return 0;
}

#elif defined(BENCH_GENANN)
/* ------------------------------------------------------------------------------------------------------ */
#include <math.h>
/* per neuron: bias weight (input -1) first, then one weight per input, as genann lays them out */
static double w1[N_HID][N_IN + 1], w2[N_OUT][N_HID + 1];
static double h[N_HID], y[N_OUT], dh[N_HID], dy[N_OUT];
static double xf[NDATA][N_IN], tf[NDATA][N_OUT];
static const double lr = 0.2;

static double act_sigmoid(double a) {
    if (a < -45.0) return 0;
    if (a > 45.0) return 1;
    return 1.0 / (1 + exp(-a));
}

__attribute__((noinline)) static void run(const double *x) {
    int o, i;
    for (o = 0; o < N_HID; o++) {
        double sum = w1[o][0] * -1.0;
        for (i = 0; i < N_IN; i++) sum += w1[o][i + 1] * x[i];
        h[o] = act_sigmoid(sum);
    }
    for (o = 0; o < N_OUT; o++) {
        double sum = w2[o][0] * -1.0;
        for (i = 0; i < N_HID; i++) sum += w2[o][i + 1] * h[i];
        y[o] = act_sigmoid(sum);
    }
}

__attribute__((noinline)) static void train(const double *x, const double *t) {
    int o, i;
    run(x);
    for (o = 0; o < N_OUT; o++) dy[o] = (t[o] - y[o]) * y[o] * (1.0 - y[o]); /* output deltas */
    for (i = 0; i < N_HID; i++) {                                              /* hidden deltas */
        double delta = 0;
        for (o = 0; o < N_OUT; o++) delta += dy[o] * w2[o][i + 1];
        dh[i] = h[i] * (1.0 - h[i]) * delta;
    }
    for (o = 0; o < N_OUT; o++) { /* train the output layer, then the hidden one */
        w2[o][0] += dy[o] * lr * -1.0;
        for (i = 0; i < N_HID; i++) w2[o][i + 1] += dy[o] * lr * h[i];
    }
    for (o = 0; o < N_HID; o++) {
        w1[o][0] += dh[o] * lr * -1.0;
        for (i = 0; i < N_IN; i++) w1[o][i + 1] += dh[o] * lr * x[i];
    }
}

static double rand_pm_half(void) { return (double)(int32_t)(next_rand() % 4097u - 2048u) / 4096.0; }

int main(void) {
    uint16_t i, j;
    uint32_t tstep = 0, tfwd = 0;
    for (i = 0; i < N_HID; i++)
        for (j = 0; j <= N_IN; j++) w1[i][j] = rand_pm_half();
    for (i = 0; i < N_OUT; i++)
        for (j = 0; j <= N_HID; j++) w2[i][j] = rand_pm_half();
    for (i = 0; i < NDATA; i++) {
        for (j = 0; j < N_IN; j++) xf[i][j] = (double)(next_rand() % 4096u) / 4096.0;
        for (j = 0; j < N_OUT; j++) tf[i][j] = j == i % N_OUT ? 1.0 : 0.0;
    }
    start();
    put_kv("double_bytes", (uint32_t)sizeof(double));
    for (i = 0; i < STEPS; i++) train(xf[i % NDATA], tf[i % NDATA]); /* warm up */
    for (i = 0; i < STEPS; i++) MEASURE(tstep, train(xf[i % NDATA], tf[i % NDATA]));
    for (i = 0; i < STEPS; i++) MEASURE(tfwd, run(xf[i % NDATA]));
    put_kv("steps", STEPS);
    put_kv("step_cycles", tstep);
    put_kv("fwd_cycles", tfwd);
    put_kv("check", (uint32_t)(int32_t)(w1[0][1] * 4096.0));
    finish();
    return 0;
}

#else
/* ------------------------------------------------------------------------------------------------------ */
#include "edgebp.h"
#ifdef BENCH_PHASES
void ebp_backward_deltas(ebp_net_t *net, const int16_t *t);
void ebp_update_online(ebp_net_t *net, ebp_layer_t *L, const int16_t *in);
#endif
static int64_t arena[448 / 8] __attribute__((aligned(8))); /* ebp_net_init wants 8; int64_t has 1 on AVR */
static int16_t x[NDATA][N_IN], t[NDATA][N_OUT];
static ebp_net_t net;

int main(void) {
    ebp_cfg_t c;
    ebp_hparams_t hp = {52429, -18, 0}; /* lr 0.2 */
    uint16_t i, j;
    uint32_t tstep = 0, tfwd = 0;
    for (i = 0; i < sizeof c; i++) ((uint8_t *)&c)[i] = 0;
    c.n_in = N_IN;
    c.in_frac = 12;
    c.n_layers = 2;
    c.flags = EBP_FLAG_ONLINE;
#ifdef BENCH_NEAREST
    c.rounding = EBP_ROUND_NEAREST;
#else
    c.rounding = EBP_ROUND_STOCHASTIC;
#endif
    c.layers[0].n_out = N_HID;
    c.layers[0].act = EBP_ACT_SIGMOID;
    c.layers[0].w_frac = c.layers[0].a_frac = 12;
    c.layers[1] = c.layers[0];
    c.layers[1].n_out = N_OUT;
    start();
    if (ebp_net_init(&net, &c, EBP_MODE_TRAIN, arena, sizeof arena) != EBP_OK) {
        put_kv("error", 1);
        finish();
    }
    ebp_net_init_weights(&net, EBP_INIT_UNIFORM, 2048, 1);
    ebp_net_set_hparams(&net, &hp);
    for (i = 0; i < NDATA; i++) {
        for (j = 0; j < N_IN; j++) x[i][j] = (int16_t)(next_rand() % 4096u);
        for (j = 0; j < N_OUT; j++) t[i][j] = (int16_t)(j == i % N_OUT ? 4096 : 0);
    }
    for (i = 0; i < STEPS; i++) ebp_train(&net, x[i % NDATA], t[i % NDATA], 1, 1, 0); /* warm up */
#ifdef BENCH_PHASES
    {
        uint32_t td = 0, tu0 = 0, tu1 = 0;
        for (i = 0; i < STEPS; i++) {
            MEASURE(tfwd, ebp_forward(&net, x[i % NDATA], 0));
            MEASURE(td, ebp_backward_deltas(&net, t[i % NDATA]));
            MEASURE(tu0, ebp_update_online(&net, &net.layers[0], x[i % NDATA]));
            MEASURE(tu1, ebp_update_online(&net, &net.layers[1], net.layers[0].y));
            net.steps++;
        }
        put_kv("delta_cycles", td);
        put_kv("update0_cycles", tu0);
        put_kv("update1_cycles", tu1);
        tstep = tfwd + td + tu0 + tu1;
    }
#else
    for (i = 0; i < STEPS; i++) MEASURE(tstep, ebp_train(&net, x[i % NDATA], t[i % NDATA], 1, 1, 0));
    for (i = 0; i < STEPS; i++) MEASURE(tfwd, ebp_forward(&net, x[i % NDATA], 0));
#endif
    put_kv("steps", STEPS);
    put_kv("step_cycles", tstep);
    put_kv("fwd_cycles", tfwd);
    put_kv("arena_bytes", (uint32_t)sizeof arena);
    put_kv("check", (uint32_t)(int32_t)net.layers[0].w[0]);
    finish();
    return 0;
}
#endif
