/*
 * fuzz_app.c - libFuzzer target for the firmware's byte handler (firmware/app/app.c) with the core
 * (every csrc .c file), built with ASan + UBSan (tests/fuzz/Makefile).
 *
 * The fuzzer's bytes are a script, so that most inputs reach the request handlers instead of dying at the
 * CRC check:
 *   byte 0        bit 0: load an 8-16-2 model first (sgd online; bit 1: momentum with gradient memory and a
 *                 4-16-3 softmax network), bit 2: upload its weights first; bit 3: the first record's bytes
 *                 become the payload of a checkpoint with good CRCs in slot 0 (arbitrary ebp_cfg_t and arrays),
 *                 then the device resets and restores it
 *   then records  u8 kind, u8 type, u16 len, len bytes
 *     kind & 3 == 0: a well-formed request frame (version, type, seq, body, CRC, COBS) with these bytes as body;
 *                    kind bits 5-6: 1 another protocol version, 2 a header length off by one; kind bit 4: the
 *                    frame's seq is FUZZ_TAG (0x7A61), the tag of streamed CHUNK blocks, instead of the next seq
 *     kind & 3 == 1: the same, but for TRAIN/PREDICT/EVALUATE/WRITE_WEIGHTS the count field is set to what the
 *                    body length allows for the preloaded model, and the body cut to match; COMMIT_WEIGHTS
 *                    gets the CRC of what the harness uploaded, so that commits can succeed
 *     kind & 3 == 2: the bytes fed to the handler raw (COBS, delimiters and CRC errors, overflows)
 *     kind & 3 == 3: the last request frame sent again (a retransmission), or a hard RESET if kind & 4
 * Every byte the device sends is parsed as it would be by the host: each frame must be valid COBS with a
 * correct CRC and a sane header, else the target aborts (a finding).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/edgebp.h"
#include "../../firmware/app/port.h"
#include "../../firmware/app/protocol.h"

const ebp_port_info_t ebp_port_info = {"fuzz", "clang fuzz", 1, 1, EBP_TICK_NONE};

/* ---- the port: output captured and checked, a counter, a RAM "flash" for checkpoints ------------------- */
static uint8_t out[4 * EBP_PROTO_MAX_ENCODED];
static uint32_t out_len, ticks, boots = 1;

static uint32_t crc32(const uint8_t *p, uint32_t n)
{
    uint32_t c = 0xFFFFFFFFu, i, k;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void check_response(const uint8_t *enc, uint32_t n)
{
    uint8_t raw[EBP_PROTO_MAX_RAW + 8];
    uint32_t r = 0, w = 0, len, crc;
    while (r < n) {
        uint32_t code = enc[r++], k;
        if (code == 0 || r + code - 1 > n || w + code > sizeof raw) {
            fprintf(stderr, "device sent bad COBS\n");
            abort();
        }
        for (k = 1; k < code; k++)
            raw[w++] = enc[r++];
        if (code != 0xFF && r < n)
            raw[w++] = 0;
    }
    if (w < EBP_PROTO_HEADER + EBP_PROTO_CRC || w > EBP_PROTO_MAX_RAW) {
        fprintf(stderr, "device sent a frame of %u bytes\n", (unsigned)w);
        abort();
    }
    len = (uint32_t)raw[6] | ((uint32_t)raw[7] << 8);
    crc = (uint32_t)raw[w - 4] | ((uint32_t)raw[w - 3] << 8) | ((uint32_t)raw[w - 2] << 16) |
          ((uint32_t)raw[w - 1] << 24);
    if (raw[0] != EBP_PROTO_VERSION || len != w - EBP_PROTO_HEADER - EBP_PROTO_CRC || crc32(raw, w - 4) != crc ||
        !(raw[1] & EBP_MSG_RESPONSE) || (int16_t)(raw[4] | (raw[5] << 8)) > 0) {
        fprintf(stderr, "device sent an invalid frame (type %u, len %u)\n", raw[1], (unsigned)len);
        abort();
    }
}

void ebp_port_putc(uint8_t c)
{
    if (c == 0) {
        check_response(out, out_len);
        out_len = 0;
        return;
    }
    if (out_len == sizeof out) {
        fprintf(stderr, "device sent a frame longer than any valid one\n");
        abort();
    }
    out[out_len++] = c;
}

void ebp_port_flush(void) {}

/* checkpoint storage: 8 KiB of RAM in 1 KiB pages, programmed like flash; kept across resets within an input */
#define NV_SIZE 8192u
#define NV_PAGE 1024u
static uint8_t nv[NV_SIZE];

uint32_t ebp_port_nv_size(uint32_t *page_size)
{
    *page_size = NV_PAGE;
    return NV_SIZE;
}

int ebp_port_nv_erase(uint32_t offset)
{
    if (offset % NV_PAGE != 0u || offset >= NV_SIZE)
        abort(); /* the checkpoint code must never ask for this */
    memset(nv + offset, 0xFF, NV_PAGE);
    return 0;
}

int ebp_port_nv_write(uint32_t offset, const uint8_t *src, uint32_t n)
{
    uint32_t i;
    if (offset % 4u || n % 4u || offset > NV_SIZE || n > NV_SIZE - offset)
        abort();
    for (i = 0; i < n; i++)
        nv[offset + i] &= src[i];
    return 0;
}

int ebp_port_nv_read(uint32_t offset, uint8_t *dst, uint32_t n)
{
    if (offset > NV_SIZE || n > NV_SIZE - offset)
        abort();
    memcpy(dst, nv + offset, n);
    return 0;
}

uint32_t ebp_port_ticks(void) { return ticks += 1000u; }
uint32_t ebp_port_boot_count(void) { return boots; }

void ebp_port_reset(void)
{
    boots++;
    ebp_app_init();
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xFFFFu);
    put16(p + 2, v >> 16);
}

/* ---- framing ----------------------------------------------------------------------------------------- */
static uint8_t last[EBP_PROTO_MAX_ENCODED + 2];
static uint32_t last_len;
static uint16_t seq;

static void feed(const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        ebp_app_byte(p[i]);
}

static uint8_t frame_damage; /* bit 0: another protocol version, bit 1: header length off by one */
static uint8_t frame_tagged; /* the frame carries seq FUZZ_TAG (a CHUNK's tag), not the next seq */
#define FUZZ_TAG 0x7A61u

static void send_frame(uint8_t type, const uint8_t *body, uint32_t n)
{
    uint8_t raw[EBP_PROTO_MAX_RAW];
    uint32_t crc, i = 0, w = 0, total;
    if (n > EBP_PROTO_MAX_BODY)
        n = EBP_PROTO_MAX_BODY;
    seq++;
    raw[0] = EBP_PROTO_VERSION;
    raw[1] = type;
    raw[2] = (uint8_t)(frame_tagged ? FUZZ_TAG : seq);
    raw[3] = (uint8_t)((frame_tagged ? FUZZ_TAG : seq) >> 8);
    raw[4] = raw[5] = 0;
    raw[6] = (uint8_t)n;
    raw[7] = (uint8_t)(n >> 8);
    if (frame_damage & 1u)
        raw[0]++;
    if (frame_damage & 2u)
        raw[6]++;
    if (n)
        memcpy(raw + EBP_PROTO_HEADER, body, n);
    crc = crc32(raw, EBP_PROTO_HEADER + n);
    for (i = 0; i < 4; i++)
        raw[EBP_PROTO_HEADER + n + i] = (uint8_t)(crc >> (8 * i));
    total = EBP_PROTO_HEADER + n + EBP_PROTO_CRC;
    /* COBS */
    i = 0;
    for (;;) {
        uint32_t run = 0, k;
        while (i + run < total && run < 254u && raw[i + run] != 0)
            run++;
        last[w++] = (uint8_t)(run + 1u);
        for (k = 0; k < run; k++)
            last[w++] = raw[i + k];
        i += run;
        if (run == 254u) {
            if (i >= total)
                break;
            continue;
        }
        if (i >= total)
            break;
        i++;
        if (i == total) {
            last[w++] = 1;
            break;
        }
    }
    last[w++] = 0;
    last_len = w;
    feed(last, last_len);
}


/* The preloaded model: n_in, n_out, and what the harness uploaded into it (to commit with the right CRC). */
static uint32_t m_in, m_out;
static int16_t shadow[2][16 * 8 + 16];

static uint32_t layer_n(uint32_t l) { return l == 0 ? 16u * m_in + 16u : m_out * 16u + m_out; }

static uint32_t shadow_crc(void)
{
    uint8_t b[2 * (16 * 8 + 16)];
    uint32_t l, i, c = 0xFFFFFFFFu, k, j;
    for (l = 0; l < 2; l++) {
        uint32_t n = layer_n(l);
        for (i = 0; i < n; i++)
            put16(b + 2 * i, (uint32_t)(uint16_t)shadow[l][i]);
        for (j = 0; j < 2 * n; j++) {
            c ^= b[j];
            for (k = 0; k < 8; k++)
                c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        }
    }
    return c ^ 0xFFFFFFFFu;
}

/* The two preloaded models, n_in-16-n_out, sent as LOAD bodies (edgebp/protocol.py: LOAD_FIXED, then LAYER per
 * layer): Q12 inputs, weights and activations, init range 0.5 (range_q12 2048), learning rate 52429 * 2^lr_e
 * (0.8 and 0.2). */
typedef struct {
    uint8_t n_in, loss, optimizer, rounding, flags, init_kind, seed, act_hidden, n_out, act_out;
    int8_t lr_e;
    uint16_t momentum_q15;
} model_t;

static const model_t models[2] = {
    /* 8-16-2 sigmoid, MSE, online SGD (EBP_FLAG_ONLINE), round to nearest, uniform init */
    {.n_in = 8, .loss = EBP_LOSS_MSE, .optimizer = EBP_OPT_SGD, .rounding = EBP_ROUND_NEAREST,
     .flags = EBP_FLAG_ONLINE, .init_kind = EBP_INIT_UNIFORM, .seed = 1, .act_hidden = EBP_ACT_SIGMOID, .n_out = 2,
     .act_out = EBP_ACT_SIGMOID, .lr_e = -16, .momentum_q15 = 0},
    /* 4-16-3 tanh/softmax, CE, momentum 0.9 with gradient memory, stochastic rounding, Xavier init */
    {.n_in = 4, .loss = EBP_LOSS_CE, .optimizer = EBP_OPT_MOMENTUM, .rounding = EBP_ROUND_STOCHASTIC, .flags = 0,
     .init_kind = EBP_INIT_XAVIER, .seed = 7, .act_hidden = EBP_ACT_TANH, .n_out = 3, .act_out = EBP_ACT_SOFTMAX,
     .lr_e = -18, .momentum_q15 = 29491},
};

static uint32_t load_body(uint8_t *b, const model_t *m)
{
    memset(b, 0, 30);
    put16(b, m->n_in);
    b[2] = 12;                         /* in_frac */
    b[3] = 2;                          /* layers */
    b[4] = m->loss;
    b[5] = m->optimizer;
    b[6] = m->rounding;
    b[7] = m->flags;
    put16(b + 8, 52429);               /* lr_m */
    b[10] = (uint8_t)m->lr_e;
    put16(b + 11, m->momentum_q15);
    b[13] = m->init_kind;
    put16(b + 14, 2048);               /* init_range_q12: 0.5 */
    b[16] = m->seed;                   /* u32 seed: the upper bytes stay 0 */
    put16(b + 20, 16);                 /* layer 0: n_out, act, w_frac, a_frac */
    b[22] = m->act_hidden;
    b[23] = 12;
    b[24] = 12;
    put16(b + 25, m->n_out);           /* layer 1 */
    b[27] = m->act_out;
    b[28] = 12;
    b[29] = 12;
    return 30;
}

static void preload(uint8_t mode)
{
    uint8_t b[40];
    const model_t *m = &models[(mode >> 1) & 1u];
    m_in = m->n_in;
    m_out = m->n_out;
    send_frame(EBP_MSG_LOAD, b, load_body(b, m));
    if (mode & 4) { /* upload: layer 0 whole, layer 1 whole, commit with a CRC that may or may not match */
        uint8_t w[8 + 2 * 160];
        uint32_t l, n, i;
        for (l = 0; l < 2; l++) {
            n = layer_n(l);
            memset(w, 0, sizeof w);
            w[0] = (uint8_t)l;
            put16(w + 2, n);
            for (i = 0; i < n; i++) {
                shadow[l][i] = (int16_t)((i * 37u + l) & 0x0FFFu);
                put16(w + 8 + 2 * i, (uint32_t)(uint16_t)shadow[l][i]);
            }
            send_frame(EBP_MSG_WRITE_WEIGHTS, w, 8 + 2 * n);
        }
        memset(w, 0, 16);
        put32(w, shadow_crc());
        send_frame(EBP_MSG_COMMIT_WEIGHTS, w, 16);
    }
}

/* For kind 1: sets the count field so that the body length matches the preloaded model. */
static uint32_t fix_counts(uint8_t type, uint8_t *b, uint32_t n)
{
    uint32_t per, ns;
    switch (type) {
    case EBP_MSG_TRAIN:
        if (n < 8) return n;
        per = 2 * (m_in + m_out);
        ns = (n - 8) / per;
        put16(b, ns);
        b[4] = (uint8_t)(b[4] & 0x0Fu); /* batch: keep it small, non-zero mostly */
        b[5] = b[6] = b[7] = 0;
        return 8 + ns * per;
    case EBP_MSG_PREDICT:
    case EBP_MSG_EVALUATE:
        if (n < 4) return n;
        per = 2 * (m_in + (type == EBP_MSG_EVALUATE ? m_out : 0));
        ns = (n - 4) / per;
        put16(b, ns);
        return 4 + ns * per;
    case EBP_MSG_WRITE_WEIGHTS: {
        uint32_t l, off, i;
        if (n < 8) return n;
        ns = (n - 8) / 2;
        put16(b + 2, ns);
        b[0] &= 1u;
        b[5] = b[6] = b[7] = 0;
        l = b[0];
        off = (uint32_t)b[4] % (layer_n(l) + 1u);
        b[4] = (uint8_t)off;
        for (i = 0; i < ns && off + i < layer_n(l); i++)
            shadow[l][off + i] = (int16_t)(b[8 + 2 * i] | (b[9 + 2 * i] << 8));
        return 8 + 2 * ns;
    }
    case EBP_MSG_COMMIT_WEIGHTS:
        if (n < 16) return n;
        put32(b, shadow_crc());
        b[4] &= 1u;
        return 16;
    default:
        return n;
    }
}

/* A checkpoint in slot 0 whose header and CRCs are right but whose payload is the fuzzer's (ckpt.h layout). */
static void plant_checkpoint(const uint8_t *p, uint32_t n)
{
    uint8_t h[32];
    uint32_t max = NV_SIZE / 2u - 32u - 4u;
    if (n > max)
        n = max;
    memset(nv, 0xFF, NV_SIZE / 2u);
    memcpy(nv + 32, p, n);
    put32(h, 0x43504245u);
    put16(h + 4, 1);
    put16(h + 6, 32);
    put32(h + 8, 1);
    put32(h + 12, n);
    put32(h + 16, 0);
    put32(h + 20, crc32(p, n));
    put16(h + 24, (uint32_t)sizeof(ebp_cfg_t));
    h[26] = EBP_VERSION_MAJOR;
    h[27] = EBP_VERSION_MINOR;
    put32(h + 28, crc32(h, 28));
    memcpy(nv, h, 32);
    ebp_port_reset();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t body[EBP_PROTO_MAX_BODY + 4];
    size_t k = 1;
    uint32_t steps = 0;
    if (size < 1)
        return 0;
    out_len = 0;
    ticks = 0;
    boots = 1;
    seq = 0;
    last_len = 0;
    memset(nv, 0xFF, sizeof nv);
    ebp_app_init();
    ebp_app_byte(0);
    m_in = 8;
    m_out = 2;
    memset(shadow, 0, sizeof shadow);
    memset(nv, 0xFF, sizeof nv);
    frame_damage = 0;
    if ((data[0] & 8u) && size >= 5) {
        uint32_t len = (uint32_t)data[3] | ((uint32_t)data[4] << 8);
        k = 5;
        if (len > size - k)
            len = (uint32_t)(size - k);
        plant_checkpoint(data + k, len);
        k += len;
    }
    if (data[0] & 1u)
        preload(data[0]);
    while (k + 4 <= size && steps < 64) {
        uint8_t kind = data[k], type = data[k + 1];
        uint32_t len = (uint32_t)data[k + 2] | ((uint32_t)data[k + 3] << 8), n;
        k += 4;
        if (len > size - k)
            len = (uint32_t)(size - k);
        steps++;
        switch (kind & 3u) {
        case 0:
        case 1:
            n = len > EBP_PROTO_MAX_BODY ? EBP_PROTO_MAX_BODY : len;
            memcpy(body, data + k, n);
            if (kind & 1u)
                n = fix_counts(type, body, n);
            if (type == EBP_MSG_RESET && n >= 1)
                body[0] &= (uint8_t)(kind >> 2); /* hard resets only when the fuzzer asks twice */
            frame_damage = (uint8_t)((kind >> 5) & 3u);
            if (frame_damage == 3u)
                frame_damage = 0;
            frame_tagged = (uint8_t)((kind >> 4) & 1u);
            send_frame(type, body, n);
            frame_damage = 0;
            frame_tagged = 0;
            break;
        case 2:
            feed(data + k, len);
            break;
        default:
            if (kind & 4u) {
                uint8_t r = 1;
                send_frame(EBP_MSG_RESET, &r, 1);
            } else if (last_len) {
                feed(last, last_len);
            }
            break;
        }
        k += len;
    }
    ebp_app_byte(0); /* end whatever raw bytes left open */
    return 0;
}
