/*
 * standalone.c - a firmware that learns with no host: the model and its samples come from a header written
 * by `edgebp export WEIGHTS --name model --data DATA` (compiled into flash), training runs online on the
 * core, a checkpoint goes to the board's non-volatile storage every EBP_CKPT_EVERY steps, and the running
 * accuracy is printed over the UART. Nothing is read from the UART.
 *
 * At boot a good checkpoint, if there is one, is restored and training goes on from its step, so the final
 * weights are those of an uninterrupted run: the same samples in the same order as FixedNet.train_q over
 * EBP_EPOCHS passes of the samples with batch 1. EBP_RESET_AT (0: never) resets the MCU once, on the first
 * boot, right after that step: a test of the recovery.
 *
 * Output (one line each): "edgebp standalone ...", "boot N: ...", per epoch "epoch E steps S correct C/N
 * loss_q16 L" (C: samples classified right just before training on them, a running, prequential accuracy),
 * "ckpt S ok" or "ckpt S failed STATUS", then "done steps S", per layer "W l v v ..." and "B l v v ...", "end".
 */
#include <stdint.h>

#include "../../../csrc/edgebp.h"
#include "../../app/ckpt.h"
#include "../../app/port.h"
#include "model.h"

#ifndef MODEL_N_SAMPLES
#error "the model header has no samples: export it with --data"
#endif
#ifndef EBP_EPOCHS
#define EBP_EPOCHS 3
#endif
#ifndef EBP_CKPT_EVERY
#define EBP_CKPT_EVERY 50
#endif
#ifndef EBP_RESET_AT
#define EBP_RESET_AT 0
#endif
#ifndef EBP_BOARD_NAME
#define EBP_BOARD_NAME "board"
#endif

static uint64_t arena[(MODEL_ARENA_BYTES + 7u) / 8u];
static ebp_net_t net;
static ebp_ckpt_t ck;

/* ---- output ------------------------------------------------------------------------------------------- */
static void out_s(const char *s)
{
    while (*s)
        ebp_port_putc((uint8_t)*s++);
}

static void out_u(uint64_t v)
{
    char b[24];
    int n = 0;
    do {
        b[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v && n < 24);
    while (n)
        ebp_port_putc((uint8_t)b[--n]);
}

static void out_i(int64_t v)
{
    if (v < 0) {
        ebp_port_putc('-');
        out_u((uint64_t)(-(v + 1)) + 1u);
    } else {
        out_u((uint64_t)v);
    }
}

static void out_nl(void)
{
    ebp_port_putc('\n');
    ebp_port_flush();
}

/* ---- training ----------------------------------------------------------------------------------------- */
static uint32_t argmax(const int16_t *v, uint32_t n)
{
    uint32_t i, k = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[k])
            k = i;
    return k;
}

/* the core's rule (ebp_evaluate): argmax of output and target agree; one output: the same side of 1/2 */
static int correct(const int16_t *y, const int16_t *t)
{
    if (MODEL_N_OUT == 1) {
        int af = net.layers[net.cfg.n_layers - 1].a_frac;
        int32_t half = af > 0 ? (int32_t)1 << (af - 1) : 1;
        return (y[0] >= half) == (t[0] >= half);
    }
    return argmax(y, MODEL_N_OUT) == argmax(t, MODEL_N_OUT);
}

static void save(void)
{
    int st = ebp_ckpt_save(&ck, &net);
    out_s("ckpt ");
    out_u(net.steps);
    if (st == 0) {
        out_s(" ok");
    } else {
        out_s(" failed ");
        out_i(st);
    }
    out_nl();
}

int main(void);

int main(void)
{
    const uint32_t n = MODEL_N_SAMPLES, total = EBP_EPOCHS * MODEL_N_SAMPLES;
    uint32_t boot = ebp_port_boot_count(), bytes = 0, l;
    uint8_t slot = 0xFFu;
    int r;
    ebp_port_init();
    out_s("edgebp standalone on " EBP_BOARD_NAME ": ");
    out_u(MODEL_N_IN);
    out_s(" inputs, ");
    out_u(MODEL_N_LAYERS);
    out_s(" layers, ");
    out_u(n);
    out_s(" samples, ");
    out_u(EBP_EPOCHS);
    out_s(" epochs, checkpoint every ");
    out_u(EBP_CKPT_EVERY);
    out_s(" steps");
    out_nl();
    r = ebp_ckpt_restore(&ck, &net, arena, sizeof arena, &slot, &bytes);
    out_s("boot ");
    out_u(boot);
    if (r == EBP_CKPT_BOOT_RESTORED || r == EBP_CKPT_BOOT_OLDER) {
        out_s(": restored checkpoint slot ");
        out_u(slot);
        out_s(" at step ");
        out_u(net.steps);
        if (r == EBP_CKPT_BOOT_OLDER)
            out_s(" (the newest slot was corrupt)");
    } else {
        if (model_init(&net, arena, sizeof arena) != EBP_OK) {
            out_s(": the model does not fit");
            out_nl();
            for (;;) {
            }
        }
        out_s(r == EBP_CKPT_BOOT_NONE ? ": no checkpoint" : ": no usable checkpoint");
        out_s(", starting from the exported weights");
    }
    out_nl();
    while (net.steps < total) {
        uint32_t epoch = net.steps / n, right = 0, i;
        int64_t loss = 0;
        for (i = net.steps % n; i < n && net.steps < total; i++) {
            int16_t y[MODEL_N_OUT];
            int64_t l1 = 0;
            if (ebp_forward(&net, model_x[i], y) == EBP_OK && correct(y, model_t[i]))
                right++;
            if (ebp_train(&net, model_x[i], model_t[i], 1, 1, &l1) != EBP_OK) {
                out_s("train failed");
                out_nl();
                for (;;) {
                }
            }
            loss += l1;
            if (EBP_CKPT_EVERY && net.steps % EBP_CKPT_EVERY == 0)
                save();
            if (EBP_RESET_AT && boot == 1 && net.steps == EBP_RESET_AT) {
                out_s("reset at step ");
                out_u(net.steps);
                out_nl();
                ebp_port_reset();
            }
        }
        out_s("epoch ");
        out_u(epoch + 1u);
        out_s(" steps ");
        out_u(net.steps);
        out_s(" correct ");
        out_u(right);
        out_s("/");
        out_u(n);
        out_s(" loss_q16 ");
        out_i(loss);
        out_nl();
    }
    out_s("done steps ");
    out_u(net.steps);
    out_nl();
    for (l = 0; l < net.cfg.n_layers; l++) {
        const ebp_layer_t *L = &net.layers[l];
        uint32_t i, nw = (uint32_t)L->n_out * L->n_in;
        out_s("W ");
        out_u(l);
        for (i = 0; i < nw; i++) {
            ebp_port_putc(' ');
            out_i(L->w[i]);
        }
        out_nl();
        out_s("B ");
        out_u(l);
        for (i = 0; i < L->n_out; i++) {
            ebp_port_putc(' ');
            out_i(L->b[i]);
        }
        out_nl();
    }
    out_s("end");
    out_nl();
    for (;;) {
    }
}
