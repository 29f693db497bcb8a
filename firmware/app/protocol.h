/*
 * protocol.h - the edgebp wire protocol, shared by the firmware and (parsed by) the Python host.
 *
 * This header is the single definition of the protocol constants: edgebp/protocol.py reads the
 * "#define EBP_PROTO_*", "EBP_MSG_*" and "EBP_PERR_*" lines from it, so keep them one per line, in the form
 * "#define NAME value" with a decimal or hex integer value. docs/protocol.md describes every message.
 *
 * A frame on the wire is COBS(raw) followed by one 0x00 delimiter. raw is
 *   header (8 bytes) | body (len bytes) | CRC-32 of header and body (4 bytes, little-endian)
 * header: u8 version, u8 type, u16 seq, i16 status, u16 len, all little-endian.
 * CRC-32 is the IEEE 802.3 / zlib one (reflected, poly 0xEDB88320, init and xorout 0xFFFFFFFF).
 * A response has type = request type | EBP_MSG_RESPONSE and the request's seq; status 0 is success, a
 * negative status is either an ebp_status_t of the core (-1..-99) or an EBP_PERR_* protocol error.
 */
#ifndef EBP_PROTOCOL_H
#define EBP_PROTOCOL_H

#define EBP_PROTO_VERSION 5
#define EBP_FW_VERSION_MAJOR 0
#define EBP_FW_VERSION_MINOR 5
#define EBP_PROTO_HEADER 8           /* bytes of the header */
#define EBP_PROTO_CRC 4              /* bytes of the trailing CRC-32 */
#define EBP_PROTO_MAX_BODY 1024      /* largest body a device accepts or sends */
#define EBP_PROTO_MAX_RAW 1036       /* header + max body + CRC */
#define EBP_PROTO_MAX_ENCODED 1042   /* COBS of the largest raw frame, without the delimiter */
#define EBP_PROTO_CACHE_BODY 48      /* responses up to this body size are kept for retransmissions */

/* Message types (requests). */
#define EBP_MSG_HELLO 1          /* -> versions, board, arena size, counter units, stack, boot and checkpoint */
#define EBP_MSG_LOAD 2           /* network config + hparams + init -> memory by part */
#define EBP_MSG_TRAIN 3          /* n samples -> loss sum, steps, counter ticks */
#define EBP_MSG_PREDICT 4        /* n inputs -> n outputs */
#define EBP_MSG_EVALUATE 5       /* n samples -> loss sum, correct count */
#define EBP_MSG_READ_WEIGHTS 6   /* layer, offset, count -> weights then biases of that layer */
#define EBP_MSG_READ_STATS 7     /* -> steps and saturation counters per layer */
#define EBP_MSG_SET_HPARAMS 8    /* lr_m, lr_e, momentum_q15 */
#define EBP_MSG_RESET 9          /* drop the model (flags bit 0: also reset the MCU) */
#define EBP_MSG_WRITE_WEIGHTS 10 /* layer, offset, int16 elements -> elements written so far (upload) */
#define EBP_MSG_COMMIT_WEIGHTS 11 /* CRC-32 of every element [, rng and steps] -> the upload becomes the model */
#define EBP_MSG_CHECKPOINT 12    /* op (status, save, autosave, erase, damage), arg -> checkpoint status */
#define EBP_MSG_STAGE 13         /* offset, flags, int16 elements of samples -> elements staged (see docs) */
#define EBP_MSG_STATE 14         /* read or write the training state: rng, steps, velocities (resume) */
#define EBP_MSG_CHUNK 15         /* block k of b elements of streamed samples, tagged by seq; never answered */
#define EBP_MSG_RESPONSE 128     /* or-ed into the type of a response */
#define EBP_MSG_ERROR 255        /* frame-level error: the request could not be read at all */

/* TRAIN flags. */
#define EBP_TRAIN_ACCUMULATE 1   /* forward + backward per sample, no step (chunks of a large batch) */
#define EBP_TRAIN_STEP 2         /* with ACCUMULATE: one ebp_step() after the last sample */
#define EBP_TRAIN_STAGED 4       /* TRAIN, PREDICT, EVALUATE: one sample, staged by STAGE, its tail in the body */
#define EBP_TRAIN_IN_ORDER 8     /* TRAIN: run only if seq follows the last request run (pipelined frames) */
#define EBP_TRAIN_BLOCKS 16      /* TRAIN with STAGED: n samples streamed as CHUNK blocks of one tag (see docs) */


/* COMMIT_WEIGHTS flags. */
#define EBP_COMMIT_SET_STATE 1   /* also set the rounding generator's state and the step counter */

/* CHECKPOINT ops. */
#define EBP_CKPT_OP_STATUS 0     /* report only */
#define EBP_CKPT_OP_SAVE 1       /* save the model now */
#define EBP_CKPT_OP_AUTOSAVE 2   /* save after each TRAIN ending >= arg steps after the last save (0: off) */
#define EBP_CKPT_OP_ERASE 3      /* erase both slots */
#define EBP_CKPT_OP_DAMAGE 4     /* test hook: corrupt the payload of slot arg (its CRC then fails) */

/* HELLO model state (byte 21). */
#define EBP_MODEL_NONE 0         /* no model */
#define EBP_MODEL_READY 1        /* a model that trains and predicts */
#define EBP_MODEL_UPLOADING 2    /* weights being written in place: refused until COMMIT_WEIGHTS */

/* Protocol status codes; 0 and the core's ebp_status_t (-1..-99) are also used. */
#define EBP_PERR_UNKNOWN -100    /* unknown message type */
#define EBP_PERR_LENGTH -101     /* body length does not match the message */
#define EBP_PERR_CRC -102        /* CRC mismatch (type EBP_MSG_ERROR) */
#define EBP_PERR_FRAME -103      /* bad COBS or shorter than header + CRC (type EBP_MSG_ERROR) */
#define EBP_PERR_OVERFLOW -104   /* frame longer than EBP_PROTO_MAX_ENCODED (type EBP_MSG_ERROR) */
#define EBP_PERR_VERSION -105    /* protocol version mismatch */
#define EBP_PERR_NO_MODEL -106   /* no model loaded */
#define EBP_PERR_NO_MEMORY -107  /* model does not fit the arena; body: u32 needed, u32 arena */
#define EBP_PERR_RANGE -108      /* an argument out of range (layer index, sample count, offset, lr_m 0) */
#define EBP_PERR_INCOMPLETE -109 /* weight upload not complete (COMMIT: u8 layer, 3 x 0, u32 written, u32 total) */
#define EBP_PERR_DATA_CRC -110   /* uploaded weights (or staged blocks) do not match the CRC given */
#define EBP_PERR_NV -111         /* no non-volatile storage, or it did not keep what was written */
#define EBP_PERR_NV_FULL -112    /* the checkpoint is larger than a storage slot */
#define EBP_PERR_SEQUENCE -113   /* IN_ORDER TRAIN not after the last request run (not run); body: u16 seq expected */

/* HELLO features (the u32 after the checkpoint fields): what this firmware was built with (board.mk). */
#define EBP_FEAT_STAGE 1         /* STAGE, CHUNK and the TRAIN flags STAGED and BLOCKS (EBP_APP_STAGE) */
#define EBP_FEAT_UPLOAD 2        /* WRITE_WEIGHTS and COMMIT_WEIGHTS (EBP_APP_UPLOAD) */
#define EBP_FEAT_STATE 4         /* STATE (EBP_APP_STATE) */
#define EBP_FEAT_GRAD_MEMORY 8   /* gradient accumulators: batches, momentum, TRAIN ACCUMULATE (EBP_GRAD_MEMORY) */

/* Counter units reported by HELLO. */
#define EBP_TICK_NONE 0
#define EBP_TICK_INSTRUCTIONS 1  /* instructions = ticks * tick_num / tick_den */
#define EBP_TICK_NANOSECONDS 2   /* nanoseconds = ticks * tick_num / tick_den */

#endif /* EBP_PROTOCOL_H */
