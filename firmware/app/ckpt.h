/*
 * ckpt.h - checkpoints of a training network in the board's non-volatile storage (port.h: ebp_port_nv_*).
 *
 * The storage is split into two slots of equal size (whole pages), written alternately: a save erases the
 * slot that does not hold the newest good checkpoint, writes the payload, and writes the header last, so a
 * reset or power loss in the middle of a save leaves the previous checkpoint intact. At boot the newest slot
 * whose header and payload CRCs are good is restored.
 *
 * Slot layout (little-endian, the device's own byte order):
 *   header (32 bytes): u32 magic "EBPC", u16 format version, u16 header bytes, u32 seq (saves so far, the
 *                      newest wins), u32 payload bytes, u32 steps, u32 payload CRC-32, u16 sizeof(ebp_cfg_t),
 *                      u8 core major, u8 core minor, u32 CRC-32 of the 28 bytes before it
 *   payload:           ebp_cfg_t and ebp_hparams_t as stored in memory, u32 rng, u32 steps, then per layer
 *                      int16 w[n_out][n_in], int16 b[n_out], and with momentum int32 vw[n_out][n_in], int32
 *                      vb[n_out]; padded with 0xFF to a multiple of 4.
 * Gradient accumulators and counters are not saved: a checkpoint is taken between steps (the application
 * saves only when no batch is half accumulated).
 */
#ifndef EBP_CKPT_H
#define EBP_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "../../csrc/edgebp.h"

#define EBP_CKPT_MAGIC 0x43504245u /* "EBPC" */
#define EBP_CKPT_VERSION 1
#define EBP_CKPT_HEADER 32

/* What the boot found (HELLO ckpt_status, CHECKPOINT boot_status). */
#define EBP_CKPT_BOOT_NONE 0       /* no checkpoint in either slot (or no storage) */
#define EBP_CKPT_BOOT_RESTORED 1   /* the newest checkpoint restored */
#define EBP_CKPT_BOOT_OLDER 2      /* the newest slot was corrupt: the other one restored */
#define EBP_CKPT_BOOT_CORRUPT 3    /* no slot passed its CRC checks: booted without a model */
#define EBP_CKPT_BOOT_UNUSABLE 4   /* a good checkpoint this firmware cannot use (other core, arena too small) */

typedef struct {
    uint32_t slot_bytes;  /* bytes per slot (0: the port has no storage) */
    uint32_t seq;         /* seq of the newest good checkpoint (0: none) */
    uint32_t steps;       /* its step count */
    uint8_t newest;       /* its slot, 0xFF: none */
    uint8_t corrupt;      /* bit k: slot k holds a header but fails a check */
} ebp_ckpt_t;

/** CRC-32 (zlib): ebp_crc32(0, p, n) is zlib.crc32(p); ebp_crc32(ebp_crc32(0, a, n), b, m) that of a then b. */
uint32_t ebp_crc32(uint32_t crc, const uint8_t *p, uint32_t n);

/** Scans both slots (no side effects on the storage). */
void ebp_ckpt_scan(ebp_ckpt_t *c);

/** Saves net into the slot after the newest; 0 or a negative protocol status (EBP_PERR_NV, EBP_PERR_NV_FULL
 *  if the checkpoint is larger than a slot). Verifies what it wrote. */
int ebp_ckpt_save(ebp_ckpt_t *c, const ebp_net_t *net);

/** Restores the newest good checkpoint into net laid out in arena; returns EBP_CKPT_BOOT_* and sets *slot,
 *  *bytes (ebp_net_memory total). On failure net is left uninitialised (the caller has no model). */
int ebp_ckpt_restore(ebp_ckpt_t *c, ebp_net_t *net, void *arena, size_t size, uint8_t *slot, uint32_t *bytes);

/** Erases both slots. */
int ebp_ckpt_erase(ebp_ckpt_t *c);

/** Test hook: clears the first non-zero payload word of a slot (its CRC then fails). 0 or EBP_PERR_RANGE. */
int ebp_ckpt_damage(ebp_ckpt_t *c, uint32_t slot);

#endif /* EBP_CKPT_H */
