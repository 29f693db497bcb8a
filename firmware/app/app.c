/*
 * app.c - the edgebp device application: reads COBS frames, runs the request on the core, answers.
 *
 * Memory: everything is static. rx holds one decoded request (the int16 sample arrays are used in
 * place, so the buffer is 8-byte aligned and bodies put arrays at even offsets); tx holds one raw
 * response, COBS-encoded while it is sent. The training arena's size comes from the board (EBP_ARENA_BYTES).
 * The device is little-endian, like the wire format, so int16 arrays are used as they arrive.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../csrc/edgebp.h"
#include "ckpt.h"
#include "port.h"
#include "protocol.h"

#ifndef EBP_ARENA_BYTES
#error "the board must define EBP_ARENA_BYTES (bytes of the training arena)"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the edgebp application assumes a little-endian target (the wire format is little-endian)"
#endif

#define STR_(x) #x
#define STR(x) STR_(x)

/* The largest frame body this build takes and sends: the protocol's EBP_PROTO_MAX_BODY, or less on a board
 * with little RAM (its board.mk sets EBP_APP_MAX_BODY; HELLO reports it and the host sizes every frame by it).
 * 128 bytes hold HELLO and READ_STATS of a 3-layer model; larger answers are refused or cut (see there). */
#ifndef EBP_APP_MAX_BODY
#define EBP_APP_MAX_BODY EBP_PROTO_MAX_BODY
#endif
#if EBP_APP_MAX_BODY < 128 || EBP_APP_MAX_BODY > EBP_PROTO_MAX_BODY
#error "EBP_APP_MAX_BODY must be 128..EBP_PROTO_MAX_BODY"
#endif
#define APP_MAX_RAW (EBP_PROTO_HEADER + EBP_APP_MAX_BODY + EBP_PROTO_CRC)
#define APP_MAX_ENCODED (APP_MAX_RAW + APP_MAX_RAW / 254 + 2)   /* COBS: a code byte per 254, as protocol.h */
#define APP_CACHE_BODY (EBP_PROTO_CACHE_BODY < EBP_APP_MAX_BODY ? EBP_PROTO_CACHE_BODY : EBP_APP_MAX_BODY)

/* Protocol features a board short of flash may compile out (board.mk; each 1 by default). A request for a
 * feature compiled out is answered EBP_PERR_UNKNOWN (an unknown message type), which the host reports.
 *   EBP_APP_STAGE   STAGE, CHUNK and the EBP_TRAIN_STAGED / EBP_TRAIN_BLOCKS flags (samples larger than a frame,
 *                   streamed samples)
 *   EBP_APP_UPLOAD  WRITE_WEIGHTS and COMMIT_WEIGHTS (uploading weights; LOAD's initialisation is unaffected)
 *   EBP_APP_STATE   STATE (reading and writing the generator's state, the step counter and velocities)
 *   EBP_APP_CKPT_DAMAGE  CHECKPOINT's test hook EBP_CKPT_OP_DAMAGE (off: EBP_PERR_RANGE, like an unknown op)
 * The core's feature switches (edgebp.h: EBP_GRAD_MEMORY, ...) reach the application as the core's refusals
 * (EBP_ERR_FEATURE); TRAIN with EBP_TRAIN_ACCUMULATE needs EBP_GRAD_MEMORY. */
#ifndef EBP_APP_STAGE
#define EBP_APP_STAGE 1
#endif
#ifndef EBP_APP_UPLOAD
#define EBP_APP_UPLOAD 1
#endif
#ifndef EBP_APP_STATE
#define EBP_APP_STATE 1
#endif
#ifndef EBP_APP_CKPT_DAMAGE
#define EBP_APP_CKPT_DAMAGE 1
#endif

/* ebp_net_init wants 8-byte alignment, which uint64_t does not have everywhere (AVR: 1) */
#if defined(__GNUC__)
#define EBP_APP_ALIGN8 __attribute__((aligned(8)))
#else
#define EBP_APP_ALIGN8
#endif
static uint64_t arena[EBP_ARENA_BYTES / 8] EBP_APP_ALIGN8;
static ebp_net_t net;
static uint8_t have_model;
static uint32_t model_bytes;   /* ebp_net_memory total of the loaded model: the arena past it is free */

/* A weight upload (WRITE_WEIGHTS ... COMMIT_WEIGHTS). Staged in the free arena past the model when it fits
 * there, so the model keeps working and an interrupted upload loses nothing; else written in place, and the
 * model is refused (EBP_PERR_INCOMPLETE) until a commit whose CRC matches. Chunks of a layer come in order
 * (no gaps), so "every element written" is one counter per layer. */
static struct {
    uint8_t active, staged;
    uint32_t written[EBP_MAX_LAYERS];
} up;
static uint32_t staged;   /* elements of a sample staged by STAGE so far, contiguously from 0 (see there) */
#if EBP_APP_STAGE
/* Streamed samples (CHUNK): the tag (the chunks' seq) and block size of the blocks in the staging area, and
 * which of blocks 0..63 arrived (two words: int is 16 bits on AVR). */
static struct {
    uint8_t valid;
    uint16_t tag, b;
    uint32_t got[2];
} chunks;
#endif

/* The staging area's contents are gone (a load, an upload, a sample or chunks consumed or overwritten). */
static void stage_drop(void)
{
    staged = 0;
#if EBP_APP_STAGE
    chunks.valid = 0;
#endif
}

/* Checkpoints: what the boot restored, the autosave interval, the last save. */
static ebp_ckpt_t ck;
static struct {
    uint8_t boot_status, restored_slot;
    int16_t last_status;            /* of the last save: 0 ok, 1 none since boot, else an EBP_PERR_* */
    uint32_t restored_steps, autosave_every, last_steps, saves;
} cks;

/* Boot identity for HELLO: boots counted by the port, and a session id drawn at the first request. */
static uint32_t boot_count, session_id, init_ticks;

static union {
    uint64_t align;
    uint8_t b[APP_MAX_ENCODED + 2];
} rx;
static uint32_t rx_len;
static uint8_t rx_overflow;

static union {
    uint64_t align;
    uint8_t b[APP_MAX_RAW];
} tx;

/* The answers of the last EBP_APP_CACHE_ENTRIES requests run, to answer a retransmission without running it
 * again. Several entries let the host keep that many TRAIN frames in flight (EBP_TRAIN_IN_ORDER): any of them
 * whose answer was lost is answered again from here. Each entry costs about 70 bytes of RAM; a board short of
 * RAM sets 1 (stop-and-wait; HELLO reports the number, and the host's window follows it). */
#ifndef EBP_APP_CACHE_ENTRIES
#if EBP_APP_MAX_BODY < 512
#define EBP_APP_CACHE_ENTRIES 1
#else
#define EBP_APP_CACHE_ENTRIES 4
#endif
#endif
#if EBP_APP_CACHE_ENTRIES < 1 || EBP_APP_CACHE_ENTRIES > 16
#error "EBP_APP_CACHE_ENTRIES must be 1..16"
#endif
static struct {
    uint8_t valid, type;
    uint16_t seq;
    uint32_t crc;
    uint16_t len;
    uint8_t raw[EBP_PROTO_HEADER + APP_CACHE_BODY + EBP_PROTO_CRC];
} cache[EBP_APP_CACHE_ENTRIES];
static uint8_t cache_next;          /* the entry the next request run takes (round robin: the oldest) */

/* The seq that an EBP_TRAIN_IN_ORDER request must carry: the one after the last request run. */
static uint16_t expect_seq;
static uint8_t expect_valid;

/* ---- little-endian helpers --------------------------------------------------------------------------- */
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
}
static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, v & 0xFFFFu);
    put_u16(p + 2, v >> 16);
}
static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v & 0xFFFFFFFFu));
    put_u32(p + 4, (uint32_t)(v >> 32));
}

/* ---- CRC-32 ------------------------------------------------------------------------------------------- */
/* CRC-32 (zlib), nibble table (ckpt.c): 64 bytes of flash, about 20 instructions per byte */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n) { return ebp_crc32(crc, p, n); }
static uint32_t crc32(const uint8_t *p, uint32_t n) { return crc32_update(0, p, n); }

/* ---- the answer cache ----------------------------------------------------------------------------------- */
static void cache_clear(void)
{
    uint32_t i;
    for (i = 0; i < EBP_APP_CACHE_ENTRIES; i++)
        cache[i].valid = 0;
}

/* The cached answer to this very request (same seq, type and CRC), or -1. */
static int cache_find(uint16_t seq, uint8_t type, uint32_t crc)
{
    int i;
    for (i = 0; i < EBP_APP_CACHE_ENTRIES; i++)
        if (cache[i].valid && cache[i].seq == seq && cache[i].type == type && cache[i].crc == crc)
            return i;
    return -1;
}

/* Files the answer in tx (body blen) of the request just run in the oldest entry; a larger answer than an entry
 * holds leaves the entry empty (such requests change nothing and are run again), so an entry never outlives
 * EBP_APP_CACHE_ENTRIES requests run. */
static void cache_put(uint16_t seq, uint8_t type, uint32_t crc, uint32_t blen)
{
    uint32_t k, total = EBP_PROTO_HEADER + blen + EBP_PROTO_CRC;
    uint8_t i = cache_next;
    cache_next = (uint8_t)((cache_next + 1u) % EBP_APP_CACHE_ENTRIES);
    cache[i].valid = 0;
    if (blen > APP_CACHE_BODY)
        return;
    for (k = 0; k < total; k++)
        cache[i].raw[k] = tx.b[k];
    cache[i].len = (uint16_t)total;
    cache[i].seq = seq;
    cache[i].type = type;
    cache[i].crc = crc;
    cache[i].valid = 1;
}

/* ---- COBS --------------------------------------------------------------------------------------------- */
/* Decodes in place (the output never overtakes the input). Returns the decoded length or -1. */
static int32_t cobs_decode(uint8_t *buf, uint32_t n)
{
    uint32_t r = 0, w = 0;
    while (r < n) {
        uint32_t code = buf[r++], k;
        if (code == 0 || r + code - 1 > n)
            return -1;
        for (k = 1; k < code; k++)
            buf[w++] = buf[r++];
        if (code != 0xFF && r < n)
            buf[w++] = 0;
    }
    return (int32_t)w;
}

/* Encodes while sending, then the 0x00 delimiter. */
static void cobs_send(const uint8_t *p, uint32_t n)
{
    uint32_t i = 0;
    for (;;) {
        uint32_t run = 0, k;
        while (i + run < n && run < 254u && p[i + run] != 0)
            run++;
        ebp_port_putc((uint8_t)(run + 1u));
        for (k = 0; k < run; k++)
            ebp_port_putc(p[i + k]);
        i += run;
        if (run == 254u) {
            if (i >= n)
                break;
            continue;        /* a full block carries no implied zero */
        }
        if (i >= n)
            break;
        i++;                 /* the zero this block stands for */
        if (i == n) {        /* a trailing zero: one more (empty) block */
            ebp_port_putc(1);
            break;
        }
    }
    ebp_port_putc(0);
    ebp_port_flush();
}

/* ---- responses ---------------------------------------------------------------------------------------- */
static uint8_t *const body_out = tx.b + EBP_PROTO_HEADER;

static void send_raw(uint8_t type, uint16_t seq, int status, uint32_t len)
{
    uint32_t crc;
    tx.b[0] = EBP_PROTO_VERSION;
    tx.b[1] = type;
    put_u16(tx.b + 2, seq);
    put_u16(tx.b + 4, (uint32_t)(uint16_t)(int16_t)status);
    put_u16(tx.b + 6, len);
    crc = crc32(tx.b, EBP_PROTO_HEADER + len);
    put_u32(tx.b + EBP_PROTO_HEADER + len, crc);
    cobs_send(tx.b, EBP_PROTO_HEADER + len + EBP_PROTO_CRC);
}

/* A length-prefixed string of at most room - 1 (and 255) characters: longer ones are cut. */
static uint32_t put_str(uint8_t *p, const char *s, uint32_t room)
{
    uint32_t n = 0;
    while (s[n] != 0 && n < 255u && n + 1u < room) {
        p[1 + n] = (uint8_t)s[n];
        n++;
    }
    p[0] = (uint8_t)n;
    return n + 1u;
}

/* ---- checkpoints ------------------------------------------------------------------------------------------ */
/* HELLO's checkpoint fields: u8 restored slot (0xFF: none), u8 boot status (EBP_CKPT_BOOT_*), u16 0,
 * u32 restored steps */
static uint32_t ckpt_hello(uint8_t *o)
{
    o[0] = cks.restored_slot;
    o[1] = cks.boot_status;
    put_u16(o + 2, 0);
    put_u32(o + 4, cks.restored_steps);
    return 8;
}

static int ckpt_save_now(void)
{
    int st = ebp_ckpt_save(&ck, &net);
    cks.last_status = (int16_t)st;
    if (st == 0) {
        cks.saves++;
        cks.last_steps = net.steps;
    }
    return st;
}

/* body: u8 op, 3 x 0, u32 arg -> u32 slot_bytes, i16 last_save_status, u8 newest_slot, u8 boot_status,
 * u32 newest_seq, u32 newest_steps, u32 autosave_every, u32 saves, u8 restored_slot, u8 corrupt_mask, u16 0,
 * u32 restored_steps */
static int model_status(void);

static int req_checkpoint(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint8_t *o = body_out;
    uint32_t arg;
    int st = 0;
    if (n != 8)
        return EBP_PERR_LENGTH;
    arg = get_u32(in + 4);
    switch (in[0]) {
    case EBP_CKPT_OP_STATUS: ebp_ckpt_scan(&ck); break;
    case EBP_CKPT_OP_SAVE:
        st = model_status();
        if (st == 0 && net.grad_count != 0)
            st = EBP_ERR_STATE;          /* half a batch accumulated: save after its step */
        if (st == 0)
            st = ck.slot_bytes ? ckpt_save_now() : EBP_PERR_NV;
        break;
    case EBP_CKPT_OP_AUTOSAVE:
        if (ck.slot_bytes == 0 && arg != 0)
            return EBP_PERR_NV;
        cks.autosave_every = arg;
        cks.last_steps = have_model ? net.steps : 0;
        break;
    case EBP_CKPT_OP_ERASE: st = ebp_ckpt_erase(&ck); break;
#if EBP_APP_CKPT_DAMAGE
    case EBP_CKPT_OP_DAMAGE: st = ebp_ckpt_damage(&ck, arg); break;
#endif
    default: return EBP_PERR_RANGE;
    }
    if (st != 0)
        return st;
    put_u32(o, ck.slot_bytes);
    put_u16(o + 4, (uint32_t)(uint16_t)cks.last_status);
    o[6] = ck.newest;
    o[7] = cks.boot_status;
    put_u32(o + 8, ck.seq);
    put_u32(o + 12, ck.steps);
    put_u32(o + 16, cks.autosave_every);
    put_u32(o + 20, cks.saves);
    o[24] = cks.restored_slot;
    o[25] = ck.corrupt;
    put_u16(o + 26, 0);
    put_u32(o + 28, cks.restored_steps);
    *len = 32;
    return 0;
}

/* At boot: the newest good checkpoint becomes the model. */
static void ckpt_boot(void)
{
    uint8_t slot = 0xFFu;
    uint32_t bytes = 0;
    int r;
    ebp_ckpt_scan(&ck);
    cks.last_status = 1;
    cks.saves = 0;
    cks.autosave_every = 0;
    cks.restored_steps = 0;
    r = ebp_ckpt_restore(&ck, &net, arena, sizeof arena, &slot, &bytes);
    cks.boot_status = (uint8_t)r;
    cks.restored_slot = slot;
    if (r == EBP_CKPT_BOOT_RESTORED || r == EBP_CKPT_BOOT_OLDER) {
        have_model = 1;
        model_bytes = bytes;
        cks.restored_steps = net.steps;
        cks.last_steps = net.steps;
    }
}

/* ---- requests: each returns a status and sets *len to the response body length ---------------------------- */
/* Bytes of stack used since reset (painted stack); provided by ports/common/cortexm.c, absent on the host port. */
extern uint32_t ebp_port_stack_high_water(void) __attribute__((weak));

static int req_hello(uint32_t n, uint32_t *len)
{
    uint8_t *o = body_out;
    uint32_t k = 0;
    (void)n;
    cache_clear();
    put_u16(o + 0, EBP_PROTO_VERSION);
    o[2] = EBP_VERSION_MAJOR;
    o[3] = EBP_VERSION_MINOR;
    o[4] = EBP_FW_VERSION_MAJOR;
    o[5] = EBP_FW_VERSION_MINOR;
    put_u16(o + 6, EBP_APP_MAX_BODY);
    put_u32(o + 8, (uint32_t)sizeof arena);
    put_u32(o + 12, ebp_port_info.tick_num);
    put_u32(o + 16, ebp_port_info.tick_den);
    o[20] = ebp_port_info.tick_unit;
    o[21] = !have_model ? EBP_MODEL_NONE : (up.active && !up.staged) ? EBP_MODEL_UPLOADING : EBP_MODEL_READY;
    o[22] = EBP_MAX_LAYERS;
    o[23] = EBP_APP_CACHE_ENTRIES;
    put_u32(o + 24, (uint32_t)sizeof(ebp_net_t));
    k = 28;
    /* 28 fixed bytes, three strings, 24 more: on a small body the build description is cut to fit */
    k += put_str(o + k, ebp_port_info.board, 40);
    k += put_str(o + k, "edgebp " STR(EBP_VERSION_MAJOR) "." STR(EBP_VERSION_MINOR), 16);
    k += put_str(o + k, ebp_port_info.build, EBP_APP_MAX_BODY - 24 - k);
    put_u32(o + k, ebp_port_stack_high_water != NULL ? ebp_port_stack_high_water() : 0xFFFFFFFFu);
    put_u32(o + k + 4, boot_count);
    put_u32(o + k + 8, session_id);
    k += 12;
    k += ckpt_hello(o + k);
    put_u32(o + k, (EBP_APP_STAGE ? EBP_FEAT_STAGE : 0u) | (EBP_APP_UPLOAD ? EBP_FEAT_UPLOAD : 0u) |
                       (EBP_APP_STATE ? EBP_FEAT_STATE : 0u) | (EBP_GRAD_MEMORY ? EBP_FEAT_GRAD_MEMORY : 0u));
    k += 4;
    *len = k;
    return 0;
}

/* The hyperparameters the device accepts: what ebp_net_set_hparams accepts, and lr_m > 0 (the host's
 * TrainConfig refuses a zero learning rate too; edgebp/protocol.py check_hparams mirrors this). */
static int hparams_ok(const ebp_hparams_t *hp)
{
    return hp->lr_m != 0 && hp->lr_e <= 0 && hp->lr_e >= -80 && hp->momentum_q15 <= 32767;
}

/* A LOAD body, parsed and fully checked. */
typedef struct {
    ebp_cfg_t cfg;
    ebp_hparams_t hp;
    ebp_memory_t mem;
    uint32_t seed;
    uint16_t range;
    uint8_t init_kind;
} load_req_t;

/* Parses and checks everything a LOAD needs, so that nothing can fail once the old model is replaced.
 * body: 20 bytes, 5 per layer (n_out, act, w_frac, a_frac), then optionally the extension: u16 in_ch, u16 0,
 * 5 per layer (kind, frozen, kernel, stride, w_bits). Every ebp_cfg_t field the body does not carry is 0. */
static int parse_load(const uint8_t *in, uint32_t n, load_req_t *r)
{
    uint32_t i, nl, ext;
    uint8_t *z = (uint8_t *)(void *)&r->cfg;
    int st;
    for (i = 0; i < (uint32_t)sizeof r->cfg; i++)
        z[i] = 0;                          /* fields added to the core later default to 0 */
    if (n < 20)
        return EBP_PERR_LENGTH;
    nl = in[3];
    if (nl < 1 || nl > EBP_MAX_LAYERS)
        return EBP_ERR_CONFIG;
    if (n != 20 + 5 * nl && n != 24 + 10 * nl)
        return EBP_PERR_LENGTH;
    ext = n == 24 + 10 * nl ? 20 + 5 * nl : 0;
    r->cfg.n_in = get_u16(in);
    r->cfg.in_frac = (int8_t)in[2];
    r->cfg.n_layers = (uint8_t)nl;
    r->cfg.loss = in[4];
    r->cfg.optimizer = in[5];
    r->cfg.rounding = in[6];
    r->cfg.flags = in[7];
    r->hp.lr_m = get_u16(in + 8);
    r->hp.lr_e = (int8_t)in[10];
    r->hp.momentum_q15 = get_u16(in + 11);
    r->init_kind = in[13];
    r->range = get_u16(in + 14);
    r->seed = get_u32(in + 16);
    for (i = 0; i < nl; i++) {
        const uint8_t *l = in + 20 + 5 * i;
        r->cfg.layers[i].n_out = get_u16(l);
        r->cfg.layers[i].act = l[2];
        r->cfg.layers[i].w_frac = (int8_t)l[3];
        r->cfg.layers[i].a_frac = (int8_t)l[4];
        if (ext) {
            const uint8_t *x = in + ext + 4 + 5 * i;
            r->cfg.layers[i].kind = x[0];
            r->cfg.layers[i].frozen = x[1];
            r->cfg.layers[i].kernel = x[2];
            r->cfg.layers[i].stride = x[3];
            r->cfg.layers[i].w_bits = x[4];
        }
    }
    if (ext)
        r->cfg.in_ch = get_u16(in + ext);
    st = ebp_cfg_check(&r->cfg);
    if (st != EBP_OK)
        return st;
    if (!hparams_ok(&r->hp) || r->init_kind > EBP_INIT_HE)
        return EBP_PERR_RANGE;
    if (!EBP_INIT_FAN && r->init_kind != EBP_INIT_UNIFORM)
        return EBP_ERR_FEATURE;            /* Xavier/He compiled out: refused before the model is replaced */
    return ebp_net_memory(&r->cfg, EBP_MODE_TRAIN, &r->mem);
}

/* Replaces the model by a checked LOAD (weights initialised as the request says). */
static int apply_load(const load_req_t *r)
{
    int st;
    have_model = 0;
    up.active = 0;
    stage_drop();
    st = ebp_net_init(&net, &r->cfg, EBP_MODE_TRAIN, arena, sizeof arena);
    if (st == EBP_OK)
        st = ebp_net_init_weights(&net, r->init_kind, r->range, r->seed);
    if (st == EBP_OK)
        st = ebp_net_seed(&net, r->seed);
    if (st == EBP_OK)
        st = ebp_net_set_hparams(&net, &r->hp);
    if (st != EBP_OK)
        return st;
    model_bytes = r->mem.total;
    have_model = 1;
    cks.last_steps = 0;
    return EBP_OK;
}

static int req_load(const uint8_t *in, uint32_t n, uint32_t *len)
{
    load_req_t r;
    int st = parse_load(in, n, &r);
    if (st != EBP_OK)
        return st;                   /* refused before anything changed: the loaded model, if any, is kept */
    if (r.mem.total > sizeof arena) {
        put_u32(body_out, r.mem.total);
        put_u32(body_out + 4, (uint32_t)sizeof arena);
        *len = 8;
        return EBP_PERR_NO_MEMORY;
    }
    st = apply_load(&r);
    if (st != EBP_OK)
        return st;
    put_u32(body_out + 0, r.mem.weights);
    put_u32(body_out + 4, r.mem.biases);
    put_u32(body_out + 8, r.mem.gradients);
    put_u32(body_out + 12, r.mem.optimizer);
    put_u32(body_out + 16, r.mem.activations);
    put_u32(body_out + 20, r.mem.scratch);
    put_u32(body_out + 24, r.mem.total);
    put_u32(body_out + 28, (uint32_t)sizeof arena);
    *len = 32;
    return 0;
}

/* A model that may train and predict: loaded, and not half overwritten by an upload in place. */
static int model_status(void)
{
    if (!have_model)
        return EBP_PERR_NO_MODEL;
    if (up.active && !up.staged)
        return EBP_PERR_INCOMPLETE;
    return EBP_OK;
}

/* ---- weight upload -------------------------------------------------------------------------------------- */
/* A layer's elements: its n_w weights (dense (n_out, n_in) row-major, conv1d (ch, in_ch, kernel)), then its n_b
 * biases; pooling layers have none. int8 layers (w_bits 8) store them as int8: they travel as int16. */
static uint32_t layer_elems(uint32_t l) { return net.layers[l].n_w + net.layers[l].n_b; }

static int16_t elem_get(uint32_t l, uint32_t e)
{
    const ebp_layer_t *L = &net.layers[l];
    if (e < L->n_w)
        return L->w != NULL ? L->w[e] : (int16_t)L->w8[e];
    e -= L->n_w;
    return L->b != NULL ? L->b[e] : (int16_t)L->b8[e];
}

#if EBP_APP_UPLOAD
static int layer_is_int8(uint32_t l) { return net.layers[l].w8 != NULL || net.layers[l].b8 != NULL; }

static void elem_set(uint32_t l, uint32_t e, int16_t v)
{
    ebp_layer_t *L = &net.layers[l];
    if (e < L->n_w) {
        if (L->w != NULL)
            L->w[e] = v;
        else
            L->w8[e] = (int8_t)v;          /* checked to fit by the caller */
        return;
    }
    e -= L->n_w;
    if (L->b != NULL)
        L->b[e] = v;
    else
        L->b8[e] = (int8_t)v;
}

static uint32_t all_elems(void)
{
    uint32_t l, t = 0;
    for (l = 0; l < net.cfg.n_layers; l++)
        t += layer_elems(l);
    return t;
}
#endif

#if EBP_APP_UPLOAD || EBP_APP_STAGE
/* The staging area: the arena past the model, 8-byte aligned, one int16 per element, layer after layer. */
static int16_t *stage_base(void) { return (int16_t *)(void *)((uint8_t *)arena + ((model_bytes + 7u) & ~7u)); }
#endif

#if EBP_APP_UPLOAD
static int16_t *stage_ptr(uint32_t l)
{
    uint32_t k, off = 0;
    for (k = 0; k < l; k++)
        off += layer_elems(k);
    return stage_base() + off;
}

/* body: u8 layer, u8 0, u16 count, u32 offset, i16 data[count] -> u32 written, u32 total, u8 staged, 3 x 0 */
static int req_write_weights(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint32_t layer, count, off, total, i;
    if (!have_model)
        return EBP_PERR_NO_MODEL;
    if (n < 8)
        return EBP_PERR_LENGTH;
    layer = in[0];
    count = get_u16(in + 2);
    off = get_u32(in + 4);
    if (n != 8 + 2 * count)
        return EBP_PERR_LENGTH;
    if (layer >= net.cfg.n_layers)
        return EBP_PERR_RANGE;
    total = layer_elems(layer);
    if (layer_is_int8(layer))
        for (i = 0; i < count; i++) {
            int16_t v = (int16_t)get_u16(in + 8 + 2 * i);
            if (v < -128 || v > 127)
                return EBP_PERR_RANGE;     /* an int8 layer's element outside int8 */
        }
    if (!up.active) {                      /* the first chunk of an upload */
        if (off != 0)
            return EBP_PERR_RANGE;
        for (i = 0; i < EBP_MAX_LAYERS; i++)
            up.written[i] = 0;
        up.staged = ((model_bytes + 7u) & ~7u) + 2u * all_elems() <= sizeof arena;
        up.active = 1;
        stage_drop();                      /* a staged sample lived where the upload goes */
    }
    if (off > up.written[layer] || off > total || count > total - off)
        return EBP_PERR_RANGE;             /* a gap, or past the layer's end */
    for (i = 0; i < count; i++) {          /* rewriting a chunk writes the same values: idempotent */
        int16_t v = (int16_t)get_u16(in + 8 + 2 * i);
        if (up.staged)
            stage_ptr(layer)[off + i] = v;
        else
            elem_set(layer, off + i, v);
    }
    if (off + count > up.written[layer])
        up.written[layer] = off + count;
    put_u32(body_out, up.written[layer]);
    put_u32(body_out + 4, total);
    body_out[8] = up.staged;
    body_out[9] = body_out[10] = body_out[11] = 0;
    *len = 12;
    return 0;
}

/* CRC-32 of every element as int16 little-endian, layer after layer: of the staging area or of the model. */
static uint32_t weights_crc(int staged)
{
    uint32_t l, e, c = 0;
    for (l = 0; l < net.cfg.n_layers; l++) {
        if (staged) {
            c = crc32_update(c, (const uint8_t *)(const void *)stage_ptr(l), 2u * layer_elems(l));
            continue;
        }
        for (e = 0; e < layer_elems(l); e++) {
            uint8_t b[2];
            put_u16(b, (uint32_t)(uint16_t)elem_get(l, e));
            c = crc32_update(c, b, 2);
        }
    }
    return c;
}

/* body: u32 crc, u32 flags, u32 rng, u32 steps -> u32 crc (the device's) */
static int req_commit_weights(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint32_t l, i, crc, mine;
    if (!have_model)
        return EBP_PERR_NO_MODEL;
    if (n != 16)
        return EBP_PERR_LENGTH;
    crc = get_u32(in);
    if (up.active) {
        for (l = 0; l < net.cfg.n_layers; l++) {
            if (up.written[l] != layer_elems(l)) {
                body_out[0] = (uint8_t)l;
                body_out[1] = body_out[2] = body_out[3] = 0;
                put_u32(body_out + 4, up.written[l]);
                put_u32(body_out + 8, layer_elems(l));
                *len = 12;
                return EBP_PERR_INCOMPLETE;
            }
        }
    }
    mine = weights_crc(up.active && up.staged);
    put_u32(body_out, mine);
    *len = 4;
    if (mine != crc) {
        if (up.active && up.staged)
            up.active = 0;                 /* the model is as it was; upload again */
        else if (up.active)
            for (l = 0; l < EBP_MAX_LAYERS; l++)
                up.written[l] = 0;         /* in place: still refused until a good upload */
        return EBP_PERR_DATA_CRC;
    }
    if (up.active && up.staged)
        for (l = 0; l < net.cfg.n_layers; l++) {
            const int16_t *src = stage_ptr(l);
            for (i = 0; i < layer_elems(l); i++)
                elem_set(l, i, src[i]);
        }
    up.active = 0;
    if (get_u32(in + 4) & EBP_COMMIT_SET_STATE) {
        uint32_t rng = get_u32(in + 8);
        net.rng = rng ? rng : 1u;
        net.steps = get_u32(in + 12);
    }
    return 0;
}
#endif /* EBP_APP_UPLOAD */

static uint32_t n_in_(void) { return net.cfg.n_in; }
static uint32_t n_out_(void) { return net.cfg.layers[net.cfg.n_layers - 1].n_out; }

/* ---- staged samples ------------------------------------------------------------------------------------- */
/* A sample larger than a frame (6 channels x 100 readings and 4 targets are 1,208 bytes) is written in parts
 * by STAGE into the free arena past the model, where a staged weight upload also goes (so STAGE is refused
 * while an upload is in progress, and an upload drops a staged sample); then one TRAIN, PREDICT or EVALUATE
 * with EBP_TRAIN_STAGED carries the rest of it and consumes it. It costs no RAM beyond the arena; a model that
 * leaves less than a sample free cannot take one this way (EBP_PERR_RANGE). EBP_APP_STAGE 0 compiles it out
 * (STAGE is then an unknown message and the flag is refused). */
#if EBP_APP_STAGE
static uint32_t stage_room(void) { return (uint32_t)(sizeof arena - ((model_bytes + 7u) & ~7u)) / 2u; }

/* body: u32 offset, u16 count, u16 flags (0), i16 data[count] -> u32 staged, u32 room (elements). Chunks come
 * in order (no gap); a chunk rewritten (a retransmission under any seq) writes the same values at the same
 * place: idempotent. */
static int req_stage(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint32_t off, count, room, i;
    int16_t *s = stage_base();
    int st = model_status();
    if (st != EBP_OK)
        return st;
    if (up.active)
        return EBP_PERR_INCOMPLETE;        /* the staging area holds an upload */
    if (n < 8)
        return EBP_PERR_LENGTH;
    off = get_u32(in);
    count = get_u16(in + 4);
    if (n != 8 + 2 * count)
        return EBP_PERR_LENGTH;
    room = stage_room();
    if (get_u16(in + 6) != 0 || off > staged || off > room || count > room - off)
        return EBP_PERR_RANGE;             /* a flag, a gap, or more than the free arena holds */
    chunks.valid = 0;                      /* streamed blocks lived here */
    for (i = 0; i < count; i++)
        s[off + i] = (int16_t)get_u16(in + 8 + 2 * i);
    if (off + count > staged)
        staged = off + count;
    put_u32(body_out, staged);
    put_u32(body_out + 4, room);
    *len = 8;
    return 0;
}

/* CHUNK, streamed samples: header seq = the tag of the samples it belongs to; body: u8 k, u8 0, u16 b,
 * i16 data[count] (1 <= count <= b): elements k b .. k b + count of the staged samples (all inputs, then all
 * targets). Never answered unless refused: a host streams the blocks back to back, then a TRAIN with
 * EBP_TRAIN_BLOCKS names the tag and trains once every block has arrived. A chunk of another tag or block size
 * starts a new set of blocks (what older chunks left is dropped). Rewritten blocks get the same values. */
static int req_chunk(uint16_t tag, const uint8_t *in, uint32_t n)
{
    uint32_t k, b, count, i;
    int16_t *s;
    int st = model_status();
    if (st != EBP_OK)
        return st;
    if (up.active)
        return EBP_PERR_INCOMPLETE;        /* the staging area holds an upload */
    if (n < 6 || n % 2u || in[1] != 0)
        return EBP_PERR_LENGTH;
    k = in[0];
    b = get_u16(in + 2);
    count = (n - 4) / 2u;
    if (k >= 64 || count > b || count > stage_room() || k * b > stage_room() - count)
        return EBP_PERR_RANGE;             /* past block 63, longer than a block, or past the free arena */
    if (!chunks.valid || chunks.tag != tag || chunks.b != b) {
        chunks.valid = 1;
        chunks.tag = tag;
        chunks.b = (uint16_t)b;
        chunks.got[0] = chunks.got[1] = 0;
    }
    staged = 0;                            /* a staged sample lived here */
    s = stage_base() + k * b;
    for (i = 0; i < count; i++)
        s[i] = (int16_t)get_u16(in + 4 + 2 * i);
    chunks.got[k / 32u] |= (uint32_t)1 << (k % 32u);
    return 0;
}

/* EBP_TRAIN_BLOCKS: the need staged elements as CHUNK blocks of b (the last may be shorter) with this tag
 * (body: u16 tag, u16 b; at most 64 blocks). A block missing is EBP_PERR_DATA_CRC with u32, u32: the bit mask of
 * the blocks to send again (nothing is trained or consumed). */
static const int16_t *staged_blocks(const uint8_t *in, uint32_t m, uint32_t need, int *st)
{
    uint32_t b, nb, k, miss[2] = {0, 0}, ours;
    *st = EBP_PERR_RANGE;
    if (up.active) {
        *st = EBP_PERR_INCOMPLETE;
        return NULL;
    }
    if (m != 4)
        return NULL;
    b = get_u16(in + 2);
    if (b == 0 || need > stage_room() || (need + b - 1) / b > 64)
        return NULL;                       /* more than the free arena, or than 64 blocks */
    nb = (need + b - 1) / b;
    ours = chunks.valid && chunks.tag == get_u16(in) && chunks.b == b;    /* else every block is missing */
    for (k = 0; k < nb; k++)
        if (!ours || !(chunks.got[k / 32u] >> (k % 32u) & 1u))
            miss[k / 32u] |= (uint32_t)1 << (k % 32u);
    if (miss[0] | miss[1]) {
        put_u32(body_out, miss[0]);
        put_u32(body_out + 4, miss[1]);
        *st = EBP_PERR_DATA_CRC;
        return NULL;
    }
    stage_drop();           /* once: a retransmitted TRAIN is answered from the cache, never run again */
    return stage_base();
}

/* The sample of an EBP_TRAIN_STAGED request (need elements): the m elements of its body at tail complete the
 * staged ones. NULL (and *st) if they do not. */
static const int16_t *staged_sample(const uint8_t *tail, uint32_t m, uint32_t need, int *st)
{
    int16_t *s = stage_base();
    uint32_t i;
    if (up.active) {
        *st = EBP_PERR_INCOMPLETE;
        return NULL;
    }
    if (m > need || need - m > staged || need > stage_room()) {
        *st = EBP_PERR_RANGE;
        return NULL;
    }
    for (i = 0; i < m; i++)
        s[need - m + i] = (int16_t)get_u16(tail + 2 * i);
    stage_drop();                          /* consumed: the next sample starts again at offset 0 */
    return s;
}
#else
static const int16_t *staged_sample(const uint8_t *tail, uint32_t m, uint32_t need, int *st)
{
    (void)tail;
    (void)m;
    (void)need;
    *st = EBP_PERR_RANGE;
    return NULL;
}
#define staged_blocks staged_sample
#endif

/* The samples of a TRAIN (targets too) or PREDICT/EVALUATE body whose arrays start at in + hdr: in place, or
 * (flags EBP_TRAIN_STAGED: exactly one) the staged sample completed by the body. */
static int sample_args(const uint8_t *in, uint32_t n, uint32_t hdr, uint32_t ns, uint32_t flags, int targets,
                       const int16_t **x, const int16_t **t)
{
    uint32_t per = n_in_() + (targets ? n_out_() : 0);
    int st = EBP_OK;
    if ((flags & EBP_TRAIN_STAGED) && (flags & EBP_TRAIN_BLOCKS) && targets && hdr == 8) {
        if (ns == 0)
            return EBP_PERR_RANGE;
        *x = staged_blocks(in + hdr, n - hdr, ns * per, &st);
        if (*x == NULL)
            return st;
    } else if (flags & EBP_TRAIN_STAGED) {
        if (ns != 1 || (n - hdr) % 2u)
            return EBP_PERR_LENGTH;
        *x = staged_sample(in + hdr, (n - hdr) / 2u, per, &st);
        if (*x == NULL)
            return st;
    } else {
        if (n != hdr + 2 * ns * per)
            return EBP_PERR_LENGTH;
        *x = (const int16_t *)(const void *)(in + hdr);
    }
    *t = *x + ns * n_in_();
    return EBP_OK;
}

/* body: u16 n, u16 flags, u32 batch, int16 x[n][n_in], int16 t[n][n_out] */
static int req_train(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint32_t ns, flags, batch, i;
    const int16_t *x, *t;
    int64_t loss = 0;
    uint32_t t0, t1;
    int st = model_status();
    if (st != EBP_OK)
        return st;
    if (n < 8)
        return EBP_PERR_LENGTH;
    ns = get_u16(in);
    flags = get_u16(in + 2);
    batch = get_u32(in + 4);
    if (batch == 0)
        return EBP_PERR_RANGE;
    st = sample_args(in, n, 8, ns, flags, 1, &x, &t);
    if (st == EBP_PERR_DATA_CRC)
        *len = 8;                          /* the mask of the staged blocks that do not match */
    if (st != EBP_OK)
        return st;
    t0 = ebp_port_ticks();
    if ((flags & EBP_TRAIN_ACCUMULATE) && !EBP_GRAD_MEMORY) {
        st = EBP_ERR_FEATURE;              /* batches: gradient memory is compiled out of this build */
    } else if (flags & EBP_TRAIN_ACCUMULATE) {
        for (i = 0; i < ns && st == EBP_OK; i++) {
            int32_t l = 0;
            st = ebp_forward(&net, x + i * n_in_(), NULL);
            if (st == EBP_OK)
                st = ebp_backward(&net, t + i * n_out_(), &l);
            loss += l;
        }
        if (st == EBP_OK && (flags & EBP_TRAIN_STEP))
            st = ebp_step(&net);
    } else if (ns > 0) {
        st = ebp_train(&net, x, t, ns, batch, &loss);
    }
    t1 = ebp_port_ticks();
    if (st != EBP_OK)
        return st;
    if (cks.autosave_every && net.grad_count == 0 && net.steps - cks.last_steps >= cks.autosave_every)
        (void)ckpt_save_now();           /* its result: CHECKPOINT status */
    put_u64(body_out, (uint64_t)loss);
    put_u32(body_out + 8, net.steps);
    put_u32(body_out + 12, t1 - t0);
    put_u32(body_out + 16, ns);
    put_u32(body_out + 20, net.grad_count);
    *len = 24;
    return 0;
}

/* body: u16 n, u16 0, int16 x[n][n_in] -> u16 n, u16 n_out, u32 ticks, int16 y[n][n_out] */
static int req_predict(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint32_t ns, t0, t1;
    const int16_t *x, *t;
    int st = model_status();
    if (st != EBP_OK)
        return st;
    if (n < 4)
        return EBP_PERR_LENGTH;
    ns = get_u16(in);
    if (8 + 2 * ns * n_out_() > EBP_APP_MAX_BODY)
        return EBP_PERR_RANGE;
    st = sample_args(in, n, 4, ns, get_u16(in + 2), 0, &x, &t);
    if (st != EBP_OK)
        return st;
    t0 = ebp_port_ticks();
    st = ns ? ebp_predict(&net, x, ns, (int16_t *)(void *)(body_out + 8)) : EBP_OK;
    t1 = ebp_port_ticks();
    if (st != EBP_OK)
        return st;
    put_u16(body_out, ns);
    put_u16(body_out + 2, n_out_());
    put_u32(body_out + 4, t1 - t0);
    *len = 8 + 2 * ns * n_out_();
    return 0;
}

/* body: u16 n, u16 0, x, t -> i64 loss_sum, u32 correct, u32 ticks */
static int req_evaluate(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint32_t ns, correct = 0, t0, t1;
    const int16_t *x, *t;
    int64_t loss = 0;
    int st = model_status();
    if (st != EBP_OK)
        return st;
    if (n < 4)
        return EBP_PERR_LENGTH;
    ns = get_u16(in);
    st = sample_args(in, n, 4, ns, get_u16(in + 2), 1, &x, &t);
    if (st != EBP_OK)
        return st;
    t0 = ebp_port_ticks();
    if (ns)
        st = ebp_evaluate(&net, x, t, ns, &loss, &correct);
    t1 = ebp_port_ticks();
    if (st != EBP_OK)
        return st;
    if (cks.autosave_every && net.grad_count == 0 && net.steps - cks.last_steps >= cks.autosave_every)
        (void)ckpt_save_now();           /* its result: CHECKPOINT status */
    put_u64(body_out, (uint64_t)loss);
    put_u32(body_out + 8, correct);
    put_u32(body_out + 12, t1 - t0);
    *len = 16;
    return 0;
}

/* body: u8 layer, u8 0, u16 max count, u32 offset; elements are w (n_out*n_in) then b (n_out) */
static int req_read_weights(const uint8_t *in, uint32_t n, uint32_t *len)
{
    const ebp_layer_t *L;
    uint32_t layer, count, off, total, i;
    uint8_t *o = body_out;
    if (!have_model)
        return EBP_PERR_NO_MODEL;
    if (n != 8)
        return EBP_PERR_LENGTH;
    layer = in[0];
    count = get_u16(in + 2);
    off = get_u32(in + 4);
    if (layer >= net.cfg.n_layers)
        return EBP_PERR_RANGE;
    L = &net.layers[layer];
    total = layer_elems(layer);
    if (off > total)
        return EBP_PERR_RANGE;
    if (count > (EBP_APP_MAX_BODY - 16) / 2)
        count = (EBP_APP_MAX_BODY - 16) / 2;
    if (count > total - off)
        count = total - off;
    o[0] = (uint8_t)layer;
    o[1] = net.cfg.n_layers;
    put_u16(o + 2, L->n_in);
    put_u16(o + 4, L->n_out);
    o[6] = (uint8_t)L->w_frac;
    o[7] = (uint8_t)L->a_frac;
    put_u32(o + 8, off);
    put_u16(o + 12, count);
    put_u16(o + 14, L->act);
    for (i = 0; i < count; i++) {
        put_u16(o + 16 + 2 * i, (uint32_t)(uint16_t)elem_get(layer, off + i));
    }
    *len = 16 + 2 * count;
    return 0;
}

/* body: u8 flags (bit 0: clear after reading) -> u32 steps, u32 grad_count, u8 n_layers, 3 pad,
 * per layer: 7 x u32 counters, i16 delta_exp, i16 g_exp */
static int req_read_stats(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint8_t *o = body_out;
    uint32_t l;
    if (!have_model)
        return EBP_PERR_NO_MODEL;
    if (n != 1)
        return EBP_PERR_LENGTH;
    if (12u + 32u * net.cfg.n_layers > EBP_APP_MAX_BODY)
        return EBP_PERR_RANGE;      /* a small board's frame holds the statistics of fewer layers */
    put_u32(o, net.steps);
    put_u32(o + 4, net.grad_count);
    o[8] = net.cfg.n_layers;
    o[9] = o[10] = o[11] = 0;
    for (l = 0; l < net.cfg.n_layers; l++) {
        const ebp_layer_stats_t *s = &net.layers[l].stats;
        uint8_t *p = o + 12 + 32 * l;
        put_u32(p, s->sat_out);
        put_u32(p + 4, s->sat_delta);
        put_u32(p + 8, s->sat_grad);
        put_u32(p + 12, s->sat_param);
        put_u32(p + 16, s->sat_vel);
        put_u32(p + 20, s->updates);
        put_u32(p + 24, s->zero_updates);
        put_u16(p + 28, (uint32_t)(uint16_t)net.layers[l].delta_exp);
        put_u16(p + 30, (uint32_t)(uint16_t)net.layers[l].g_exp);
    }
    *len = 12 + 32 * l;
    if (in[0] & 1u)
        return ebp_net_clear_stats(&net);
    return 0;
}

static int req_set_hparams(const uint8_t *in, uint32_t n, uint32_t *len)
{
    ebp_hparams_t hp;
    (void)len;
    if (!have_model)
        return EBP_PERR_NO_MODEL;
    if (n != 6)
        return EBP_PERR_LENGTH;
    hp.lr_m = get_u16(in);
    hp.lr_e = (int8_t)in[2];
    hp.momentum_q15 = get_u16(in + 4);
    if (!hparams_ok(&hp))
        return EBP_PERR_RANGE;
    return ebp_net_set_hparams(&net, &hp);
}

/* ---- training state: what a resume needs besides the weights ------------------------------------------ */
#if EBP_APP_STATE
/* The state as 32-bit words: 0 the rounding generator, 1 the step counter, then per layer its weight velocities
 * and bias velocities where laid out (momentum; int32, Q w_frac + EBP_VEL_EXTRA_FRAC). Between steps only
 * (no batch half accumulated): gradient accumulators are not part of it. */
static int32_t *state_words(uint32_t w, uint32_t *total)
{
    uint32_t l, t = 2;
    int32_t *hit = NULL;
    for (l = 0; l < net.cfg.n_layers; l++) {
        const ebp_layer_t *L = &net.layers[l];
        uint32_t nw = L->vw ? L->n_w : 0u, nb = L->vb ? L->n_b : 0u;
        if (hit == NULL && w >= t && w < t + nw)
            hit = L->vw + (w - t);
        else if (hit == NULL && w >= t + nw && w < t + nw + nb)
            hit = L->vb + (w - t - nw);
        t += nw + nb;
    }
    *total = t;
    return hit;
}

/* body: u8 op (0 read, 1 write), u8 0, u16 count, u32 offset [, u32 words[count] to write]
 *   -> u32 total words, u32 offset, u16 count, u16 0 [, u32 words[count] read] */
static int req_state(const uint8_t *in, uint32_t n, uint32_t *len)
{
    uint32_t op, count, off, total, i;
    int st = model_status();
    if (st != EBP_OK)
        return st;
    if (n < 8)
        return EBP_PERR_LENGTH;
    op = in[0];
    count = get_u16(in + 2);
    off = get_u32(in + 4);
    if (op > 1 || (op == 0 && n != 8) || (op == 1 && n != 8 + 4 * count))
        return op > 1 ? EBP_PERR_RANGE : EBP_PERR_LENGTH;
    if (net.grad_count != 0)
        return EBP_ERR_STATE;              /* half a batch accumulated: between steps only */
    (void)state_words(0, &total);
    if (off > total)
        return EBP_PERR_RANGE;
    if (op == 0 && count > (EBP_APP_MAX_BODY - 12) / 4)
        count = (EBP_APP_MAX_BODY - 12) / 4;
    if (op == 0 && count > total - off)
        count = total - off;               /* a read returns what there is */
    if (count > total - off)
        return EBP_PERR_RANGE;
    for (i = 0; i < count; i++) {
        uint32_t w = off + i;
        int32_t *p = state_words(w, &total);
        if (op == 1) {
            uint32_t v = get_u32(in + 8 + 4 * i);
            if (w == 0)
                net.rng = v ? v : 1u;
            else if (w == 1)
                net.steps = v;
            else
                *p = (int32_t)v;           /* a velocity: any int32 (the core saturates as it goes) */
        } else {
            put_u32(body_out + 12 + 4 * i, w == 0 ? net.rng : w == 1 ? net.steps : (uint32_t)*p);
        }
    }
    put_u32(body_out, total);
    put_u32(body_out + 4, off);
    put_u16(body_out + 8, count);
    put_u16(body_out + 10, 0);
    *len = 12 + (op == 0 ? 4 * count : 0);
    return 0;
}
#endif /* EBP_APP_STATE */

/* ---- dispatch ----------------------------------------------------------------------------------------- */
static void handle_frame(void)
{
    int32_t m = cobs_decode(rx.b, rx_len);
    uint32_t n, blen = 0, crc;
    uint16_t seq;
    uint8_t type, reset = 0, ordered;
    const uint8_t *in;
    int st;
    if (m < 0 || (uint32_t)m < EBP_PROTO_HEADER + EBP_PROTO_CRC) {
        send_raw(EBP_MSG_ERROR, 0, EBP_PERR_FRAME, 0);
        return;
    }
    n = (uint32_t)m;
    seq = get_u16(rx.b + 2);
    crc = get_u32(rx.b + n - EBP_PROTO_CRC);
    if (crc32(rx.b, n - EBP_PROTO_CRC) != crc) {
        send_raw(EBP_MSG_ERROR, seq, EBP_PERR_CRC, 0);
        return;
    }
    type = rx.b[1];
    if (type & EBP_MSG_RESPONSE)       /* our own echo or a stray response: ignore */
        return;
    if (get_u16(rx.b + 6) != n - EBP_PROTO_HEADER - EBP_PROTO_CRC) {
        send_raw((uint8_t)(type | EBP_MSG_RESPONSE), seq, EBP_PERR_LENGTH, 0);
        return;
    }
    if (rx.b[0] != EBP_PROTO_VERSION) {
        body_out[0] = EBP_PROTO_VERSION;
        send_raw((uint8_t)(type | EBP_MSG_RESPONSE), seq, EBP_PERR_VERSION, 1);
        return;
    }
    {
        int c = cache_find(seq, type, crc);
        if (c >= 0) {                      /* a retransmission: answer again, do not run it twice */
            cobs_send(cache[c].raw, cache[c].len);
            return;
        }
    }
    n -= EBP_PROTO_HEADER + EBP_PROTO_CRC;
    in = rx.b + EBP_PROTO_HEADER;
    ordered = type == EBP_MSG_TRAIN && n >= 4 && (get_u16(in + 2) & EBP_TRAIN_IN_ORDER) != 0;
    if (ordered && have_model && !(expect_valid && seq == expect_seq)) {
        /* a pipelined frame after a gap (an earlier one lost) or a late copy: not run, not cached */
        put_u16(body_out, expect_seq);
        send_raw((uint8_t)(type | EBP_MSG_RESPONSE), seq, EBP_PERR_SEQUENCE, 2);
        return;
    }
    switch (type) {
    case EBP_MSG_HELLO: st = req_hello(n, &blen); break;
    case EBP_MSG_LOAD: st = req_load(in, n, &blen); break;
    case EBP_MSG_TRAIN: st = req_train(in, n, &blen); break;
    case EBP_MSG_PREDICT: st = req_predict(in, n, &blen); break;
    case EBP_MSG_EVALUATE: st = req_evaluate(in, n, &blen); break;
    case EBP_MSG_READ_WEIGHTS: st = req_read_weights(in, n, &blen); break;
    case EBP_MSG_READ_STATS: st = req_read_stats(in, n, &blen); break;
    case EBP_MSG_SET_HPARAMS: st = req_set_hparams(in, n, &blen); break;
#if EBP_APP_UPLOAD
    case EBP_MSG_WRITE_WEIGHTS: st = req_write_weights(in, n, &blen); break;
    case EBP_MSG_COMMIT_WEIGHTS: st = req_commit_weights(in, n, &blen); break;
#endif
    case EBP_MSG_CHECKPOINT: st = req_checkpoint(in, n, &blen); break;
#if EBP_APP_STATE
    case EBP_MSG_STATE: st = req_state(in, n, &blen); break;
#endif
#if EBP_APP_STAGE
    case EBP_MSG_STAGE: st = req_stage(in, n, &blen); break;
    case EBP_MSG_CHUNK:                    /* a streamed block: not cached, moves no seq, answered if refused */
        st = req_chunk(seq, in, n);
        if (st != 0)
            send_raw((uint8_t)(type | EBP_MSG_RESPONSE), seq, st, 0);
        return;
#endif
    case EBP_MSG_RESET:
        if (n != 1) {
            st = EBP_PERR_LENGTH;
            break;
        }
        have_model = 0;
        up.active = 0;
        reset = (uint8_t)(in[0] & 1u);
        st = 0;
        break;
    default: st = EBP_PERR_UNKNOWN; break;
    }
    if (st != 0 && st != EBP_PERR_NO_MEMORY && st != EBP_PERR_INCOMPLETE && st != EBP_PERR_DATA_CRC)
        blen = 0;
    send_raw((uint8_t)(type | EBP_MSG_RESPONSE), seq, st, blen);
    cache_put(seq, type, crc, blen);
    if (st == 0 || !ordered) {
        expect_seq = (uint16_t)(seq + 1u);   /* a refused pipelined frame stops the ones after it */
        expect_valid = 1;
    }
    if (reset) {
        cache_clear();
        ebp_port_reset();
    }
}

void ebp_app_init(void)
{
    have_model = 0;
    up.active = 0;
    boot_count = ebp_port_boot_count();
    init_ticks = ebp_port_ticks();
    session_id = 0;
    ckpt_boot();
    rx_len = 0;
    rx_overflow = 0;
    cache_clear();
    cache_next = 0;
    expect_valid = 0;
}

void ebp_app_byte(uint8_t c)
{
    if (c != 0) {
        if (rx_len < sizeof rx.b)
            rx.b[rx_len++] = c;
        else
            rx_overflow = 1;
        return;
    }
    if (rx_overflow)
        send_raw(EBP_MSG_ERROR, 0, EBP_PERR_OVERFLOW, 0);
    else if (rx_len > 0) {
        if (session_id == 0) {             /* drawn at the first frame: the host's timing varies it */
            uint8_t b[12];
            put_u32(b, boot_count);
            put_u32(b + 4, init_ticks);
            put_u32(b + 8, ebp_port_ticks());
            session_id = crc32(b, sizeof b);
            if (session_id == 0)
                session_id = 1;
        }
        handle_frame();
    }      /* empty frames (0x00 0x00) are ignored: a host may send 0x00 to resync */
    rx_len = 0;
    rx_overflow = 0;
}
