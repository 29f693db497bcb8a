/*
 * ckpt.c - two-slot checkpoints in non-volatile storage (see ckpt.h for the layout).
 */
#include "ckpt.h"

#include "port.h"
#include "protocol.h"

uint32_t ebp_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    static const uint32_t t[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    uint32_t c = crc ^ 0xFFFFFFFFu;
    uint32_t i;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ t[c & 15u];
        c = (c >> 4) ^ t[c & 15u];
    }
    return c ^ 0xFFFFFFFFu;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, v & 0xFFFFu);
    wr16(p + 2, v >> 16);
}

static uint32_t slot_bytes(void)
{
    uint32_t page = 0, size = ebp_port_nv_size(&page);
    if (size == 0 || page == 0 || page % 4u != 0)
        return 0;
    return (size / 2u) / page * page;
}

/* ---- the payload as a list of memory blocks, in order ----------------------------------------------------- */
/* Block k of a network's payload (k = 0: cfg, 1: hparams, 2: rng + steps, then four per layer); returns 0 when
 * k is past the end. Blocks that a network does not have (velocities without momentum) have n = 0. */
typedef struct {
    uint8_t *p;
    uint32_t n;
} block_t;

static int payload_block(const ebp_net_t *net, uint32_t k, block_t *b, uint8_t *state8)
{
    if (k == 0) {
        b->p = (uint8_t *)(void *)&((ebp_net_t *)(uintptr_t)net)->cfg;
        b->n = (uint32_t)sizeof(ebp_cfg_t);
    } else if (k == 1) {
        b->p = (uint8_t *)(void *)&((ebp_net_t *)(uintptr_t)net)->hp;
        b->n = (uint32_t)sizeof(ebp_hparams_t);
    } else if (k == 2) {
        b->p = state8;
        b->n = 8;
    } else {
        uint32_t l = (k - 3u) / 4u, part = (k - 3u) % 4u, nw;
        const ebp_layer_t *L;
        if (l >= net->cfg.n_layers)
            return 0;
        L = &net->layers[l];
        nw = (uint32_t)L->n_out * L->n_in;
        switch (part) {
        case 0: b->p = (uint8_t *)(void *)L->w; b->n = 2u * nw; break;
        case 1: b->p = (uint8_t *)(void *)L->b; b->n = 2u * L->n_out; break;
        case 2: b->p = (uint8_t *)(void *)L->vw; b->n = L->vw ? 4u * nw : 0u; break;
        default: b->p = (uint8_t *)(void *)L->vb; b->n = L->vb ? 4u * L->n_out : 0u; break;
        }
    }
    return 1;
}

/* ---- streaming writer: whole words into erased storage, CRC on the way --------------------------------- */
typedef struct {
    uint32_t off, crc, len;
    uint32_t fill;
    uint8_t buf[32];
    int err;
} writer_t;

static void w_flush(writer_t *w)
{
    if (w->fill == 0)
        return;
    while (w->fill % 4u)
        w->buf[w->fill++] = 0xFFu;
    if (ebp_port_nv_write(w->off, w->buf, w->fill) != 0)
        w->err = 1;
    w->off += w->fill;
    w->fill = 0;
}

static void w_put(writer_t *w, const uint8_t *p, uint32_t n)
{
    uint32_t i;
    w->crc = ebp_crc32(w->crc, p, n);
    w->len += n;
    for (i = 0; i < n; i++) {
        w->buf[w->fill++] = p[i];
        if (w->fill == sizeof w->buf)
            w_flush(w);
    }
}

/* CRC-32 of n bytes of storage from off. */
static int nv_crc(uint32_t off, uint32_t n, uint32_t *crc)
{
    uint8_t buf[32];
    uint32_t c = 0;
    while (n > 0) {
        uint32_t k = n < sizeof buf ? n : (uint32_t)sizeof buf;
        if (ebp_port_nv_read(off, buf, k) != 0)
            return -1;
        c = ebp_crc32(c, buf, k);
        off += k;
        n -= k;
    }
    *crc = c;
    return 0;
}

/* Reads and checks slot s's header; 1 if the header and the payload CRC are good (seq, steps, len set). */
static int slot_ok(uint32_t sb, uint32_t s, uint32_t *seq, uint32_t *steps, uint32_t *len, int *present)
{
    uint8_t h[EBP_CKPT_HEADER];
    uint32_t crc;
    *present = 0;
    if (ebp_port_nv_read(s * sb, h, EBP_CKPT_HEADER) != 0)
        return 0;
    if (rd32(h) == 0xFFFFFFFFu)
        return 0;                        /* erased: no checkpoint */
    *present = 1;
    if (rd32(h) != EBP_CKPT_MAGIC || ebp_crc32(0, h, 28) != rd32(h + 28) || (h[4] | (h[5] << 8)) != EBP_CKPT_VERSION)
        return 0;
    *seq = rd32(h + 8);
    *len = rd32(h + 12);
    *steps = rd32(h + 16);
    if (*len > sb - EBP_CKPT_HEADER || nv_crc(s * sb + EBP_CKPT_HEADER, *len, &crc) != 0 || crc != rd32(h + 20))
        return 0;
    return 1;
}

void ebp_ckpt_scan(ebp_ckpt_t *c)
{
    uint32_t s, sb = slot_bytes();
    c->slot_bytes = sb;
    c->seq = 0;
    c->steps = 0;
    c->newest = 0xFFu;
    c->corrupt = 0;
    if (sb < 2u * EBP_CKPT_HEADER)
        return;
    for (s = 0; s < 2; s++) {
        uint32_t seq = 0, steps = 0, len = 0;
        int present;
        if (slot_ok(sb, s, &seq, &steps, &len, &present)) {
            if (c->newest == 0xFFu || seq > c->seq) {
                c->seq = seq;
                c->steps = steps;
                c->newest = (uint8_t)s;
            }
        } else if (present) {
            c->corrupt = (uint8_t)(c->corrupt | (1u << s));
        }
    }
}

int ebp_ckpt_save(ebp_ckpt_t *c, const ebp_net_t *net)
{
    uint8_t state8[8], h[EBP_CKPT_HEADER];
    uint32_t sb = c->slot_bytes, s, k, total = 0, base, off, crc, page = 0;
    block_t b;
    writer_t w;
    if (sb == 0)
        return EBP_PERR_NV;
    wr32(state8, net->rng);
    wr32(state8 + 4, net->steps);
    for (k = 0; payload_block(net, k, &b, state8); k++)
        total += b.n;
    if (EBP_CKPT_HEADER + total + 4u > sb)
        return EBP_PERR_NV_FULL;
    s = c->newest == 0u ? 1u : 0u;       /* the slot that does not hold the newest checkpoint */
    base = s * sb;
    (void)ebp_port_nv_size(&page);
    for (off = 0; off < EBP_CKPT_HEADER + total + 4u; off += page)   /* only the pages this checkpoint uses */
        if (ebp_port_nv_erase(base + off) != 0)
            return EBP_PERR_NV;
    w.off = base + EBP_CKPT_HEADER;
    w.crc = 0;
    w.len = 0;
    w.fill = 0;
    w.err = 0;
    for (k = 0; payload_block(net, k, &b, state8); k++)
        w_put(&w, b.p, b.n);
    w_flush(&w);
    if (w.err)
        return EBP_PERR_NV;
    wr32(h, EBP_CKPT_MAGIC);
    wr16(h + 4, EBP_CKPT_VERSION);
    wr16(h + 6, EBP_CKPT_HEADER);
    wr32(h + 8, c->seq + 1u);
    wr32(h + 12, w.len);
    wr32(h + 16, net->steps);
    wr32(h + 20, w.crc);
    wr16(h + 24, (uint32_t)sizeof(ebp_cfg_t));
    h[26] = EBP_VERSION_MAJOR;
    h[27] = EBP_VERSION_MINOR;
    wr32(h + 28, ebp_crc32(0, h, 28));
    if (ebp_port_nv_write(base, h, EBP_CKPT_HEADER) != 0)  /* the header last: the slot is valid only now */
        return EBP_PERR_NV;
    if (nv_crc(base + EBP_CKPT_HEADER, w.len, &crc) != 0 || crc != w.crc)
        return EBP_PERR_NV;              /* read back: the storage did not keep what was written */
    c->seq++;
    c->steps = net->steps;
    c->newest = (uint8_t)s;
    c->corrupt = (uint8_t)(c->corrupt & ~(1u << s));
    return 0;
}

/* Reads n bytes of a payload block into memory, or compares nothing when n == 0. */
static int read_into(uint32_t *off, uint8_t *dst, uint32_t n)
{
    if (n && ebp_port_nv_read(*off, dst, n) != 0)
        return -1;
    *off += n;
    return 0;
}

int ebp_ckpt_restore(ebp_ckpt_t *c, ebp_net_t *net, void *arena, size_t size, uint8_t *slot, uint32_t *bytes)
{
    ebp_cfg_t cfg;
    ebp_hparams_t hp;
    ebp_memory_t mem;
    uint8_t h[EBP_CKPT_HEADER], state8[8];
    uint32_t off, k, sb = c->slot_bytes;
    block_t b;
    ebp_ckpt_scan(c);
    *slot = 0xFFu;
    if (c->newest == 0xFFu)
        return c->corrupt ? EBP_CKPT_BOOT_CORRUPT : EBP_CKPT_BOOT_NONE;
    off = c->newest * sb;
    if (ebp_port_nv_read(off, h, EBP_CKPT_HEADER) != 0)
        return EBP_CKPT_BOOT_CORRUPT;
    if ((uint32_t)(h[24] | (h[25] << 8)) != sizeof(ebp_cfg_t) || h[26] != EBP_VERSION_MAJOR)
        return EBP_CKPT_BOOT_UNUSABLE;
    off += EBP_CKPT_HEADER;
    if (read_into(&off, (uint8_t *)(void *)&cfg, (uint32_t)sizeof cfg) != 0 ||
        read_into(&off, (uint8_t *)(void *)&hp, (uint32_t)sizeof hp) != 0 || read_into(&off, state8, 8) != 0)
        return EBP_CKPT_BOOT_CORRUPT;
    if (ebp_net_memory(&cfg, EBP_MODE_TRAIN, &mem) != EBP_OK || mem.total > size ||
        ebp_net_init(net, &cfg, EBP_MODE_TRAIN, arena, size) != EBP_OK || ebp_net_set_hparams(net, &hp) != EBP_OK)
        return EBP_CKPT_BOOT_UNUSABLE;
    for (k = 3; payload_block(net, k, &b, state8); k++)
        if (read_into(&off, b.p, b.n) != 0)
            return EBP_CKPT_BOOT_CORRUPT;
    net->rng = rd32(state8) ? rd32(state8) : 1u;
    net->steps = rd32(state8 + 4);
    *slot = c->newest;
    *bytes = mem.total;
    return (c->corrupt & (1u << (c->newest ^ 1u))) ? EBP_CKPT_BOOT_OLDER : EBP_CKPT_BOOT_RESTORED;
}

int ebp_ckpt_erase(ebp_ckpt_t *c)
{
    uint32_t page = 0, size = ebp_port_nv_size(&page), off;
    if (c->slot_bytes == 0)
        return EBP_PERR_NV;
    for (off = 0; off + page <= 2u * c->slot_bytes && off + page <= size; off += page)
        if (ebp_port_nv_erase(off) != 0)
            return EBP_PERR_NV;
    ebp_ckpt_scan(c);
    return 0;
}

int ebp_ckpt_damage(ebp_ckpt_t *c, uint32_t slot)
{
    uint8_t word[4], zero[4] = {0, 0, 0, 0};
    uint32_t off, end;
    if (c->slot_bytes == 0 || slot > 1)
        return EBP_PERR_RANGE;
    end = (slot + 1u) * c->slot_bytes;
    for (off = slot * c->slot_bytes + EBP_CKPT_HEADER; off < end; off += 4) {
        if (ebp_port_nv_read(off, word, 4) != 0)
            return EBP_PERR_NV;
        if (rd32(word) != 0 && rd32(word) != 0xFFFFFFFFu)
            return ebp_port_nv_write(off, zero, 4) == 0 ? 0 : EBP_PERR_NV;
    }
    return EBP_PERR_RANGE;
}
