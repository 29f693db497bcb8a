"""The edgebp wire protocol, host side: COBS framing, CRC-32, message bodies (see docs/protocol.md).

The constants (protocol version, message types, status codes) are defined once, in
``firmware/app/protocol.h``, and parsed from it here. A frame on the wire is ``COBS(raw) + b"\\x00"`` with
``raw = header | body | crc32(header | body)``; header ``<BBHhH``: version, type, seq, status, body length.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from .errors import ConfigError, ProtocolError

from .paths import source_dir
HEADER_FILE = source_dir("firmware") / "app" / "protocol.h"   # a checkout's, or the one bundled in the wheel

# Used only when the package runs without the firmware tree next to it (an installed wheel talking to a
# flashed board). tests/test_protocol.py checks that it equals what protocol.h defines.
_FALLBACK = {
    "EBP_PROTO_VERSION": 5, "EBP_FW_VERSION_MAJOR": 0, "EBP_FW_VERSION_MINOR": 5, "EBP_PROTO_HEADER": 8,
    "EBP_PROTO_CRC": 4, "EBP_PROTO_MAX_BODY": 1024, "EBP_PROTO_MAX_RAW": 1036, "EBP_PROTO_MAX_ENCODED": 1042,
    "EBP_PROTO_CACHE_BODY": 48, "EBP_MSG_HELLO": 1, "EBP_MSG_LOAD": 2, "EBP_MSG_TRAIN": 3, "EBP_MSG_PREDICT": 4,
    "EBP_MSG_EVALUATE": 5, "EBP_MSG_READ_WEIGHTS": 6, "EBP_MSG_READ_STATS": 7, "EBP_MSG_SET_HPARAMS": 8,
    "EBP_MSG_RESET": 9, "EBP_MSG_WRITE_WEIGHTS": 10, "EBP_MSG_COMMIT_WEIGHTS": 11, "EBP_MSG_CHECKPOINT": 12,
    "EBP_MSG_STAGE": 13, "EBP_MSG_STATE": 14, "EBP_MSG_CHUNK": 15,
    "EBP_MSG_RESPONSE": 128, "EBP_MSG_ERROR": 255, "EBP_TRAIN_ACCUMULATE": 1, "EBP_TRAIN_STEP": 2,
    "EBP_TRAIN_STAGED": 4, "EBP_TRAIN_IN_ORDER": 8, "EBP_TRAIN_BLOCKS": 16,
    "EBP_COMMIT_SET_STATE": 1, "EBP_CKPT_OP_STATUS": 0, "EBP_CKPT_OP_SAVE": 1, "EBP_CKPT_OP_AUTOSAVE": 2,
    "EBP_CKPT_OP_ERASE": 3, "EBP_CKPT_OP_DAMAGE": 4, "EBP_MODEL_NONE": 0, "EBP_MODEL_READY": 1,
    "EBP_MODEL_UPLOADING": 2, "EBP_PERR_UNKNOWN": -100, "EBP_PERR_LENGTH": -101, "EBP_PERR_CRC": -102,
    "EBP_PERR_FRAME": -103, "EBP_PERR_OVERFLOW": -104, "EBP_PERR_VERSION": -105, "EBP_PERR_NO_MODEL": -106,
    "EBP_PERR_NO_MEMORY": -107, "EBP_PERR_RANGE": -108, "EBP_PERR_INCOMPLETE": -109, "EBP_PERR_DATA_CRC": -110,
    "EBP_PERR_NV": -111, "EBP_PERR_NV_FULL": -112, "EBP_PERR_SEQUENCE": -113, "EBP_FEAT_STAGE": 1, "EBP_FEAT_UPLOAD": 2,
    "EBP_FEAT_STATE": 4, "EBP_FEAT_GRAD_MEMORY": 8, "EBP_TICK_NONE": 0,
    "EBP_TICK_INSTRUCTIONS": 1,
    "EBP_TICK_NANOSECONDS": 2,
}


def parse_header(text: str) -> Dict[str, int]:
    """``#define EBP_NAME <int>`` lines of protocol.h -> {name: value}."""
    out = {}
    for m in re.finditer(r"^#define\s+(EBP_\w+)\s+(-?(?:0x[0-9A-Fa-f]+|\d+))\b", text, re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def _load_constants() -> Dict[str, int]:
    try:
        return parse_header(HEADER_FILE.read_text())
    except OSError:
        return dict(_FALLBACK)


C = _load_constants()
PROTO_VERSION = C["EBP_PROTO_VERSION"]
HEADER = struct.Struct("<BBHhH")
assert HEADER.size == C["EBP_PROTO_HEADER"]
MAX_BODY = C["EBP_PROTO_MAX_BODY"]
MAX_ENCODED = C["EBP_PROTO_MAX_ENCODED"]
RESPONSE = C["EBP_MSG_RESPONSE"]
MSG_ERROR = C["EBP_MSG_ERROR"]
HELLO, LOAD, TRAIN, PREDICT, EVALUATE, READ_WEIGHTS, READ_STATS, SET_HPARAMS, RESET = (
    C[f"EBP_MSG_{n}"] for n in ("HELLO", "LOAD", "TRAIN", "PREDICT", "EVALUATE", "READ_WEIGHTS", "READ_STATS",
                                "SET_HPARAMS", "RESET"))
WRITE_WEIGHTS, COMMIT_WEIGHTS, CHECKPOINT, STAGE, STATE, CHUNK = (
    C["EBP_MSG_WRITE_WEIGHTS"], C["EBP_MSG_COMMIT_WEIGHTS"], C["EBP_MSG_CHECKPOINT"], C["EBP_MSG_STAGE"],
    C["EBP_MSG_STATE"], C["EBP_MSG_CHUNK"])
STAGED, IN_ORDER, BLOCKS = C["EBP_TRAIN_STAGED"], C["EBP_TRAIN_IN_ORDER"], C["EBP_TRAIN_BLOCKS"]
MESSAGE_NAMES = {v: k[len("EBP_MSG_"):].lower() for k, v in C.items()
                 if k.startswith("EBP_MSG_") and k not in ("EBP_MSG_RESPONSE",)}

CORE_STATUS = {0: "ok", -1: "invalid argument (EBP_ERR_ARG)", -2: "invalid network configuration (EBP_ERR_CONFIG)",
               -3: "buffer too small (EBP_ERR_SIZE)", -4: "buffer not 8-byte aligned (EBP_ERR_ALIGN)",
               -5: "call out of order (EBP_ERR_STATE)", -6: "Q format outside 0..15 (EBP_ERR_FORMAT)",
               -7: "the configuration needs a feature this build compiled out (EBP_ERR_FEATURE)"}
PROTO_STATUS = {
    C["EBP_PERR_UNKNOWN"]: "unknown message type (or compiled out of this firmware)", C["EBP_PERR_LENGTH"]: "body length does not match the message",
    C["EBP_PERR_CRC"]: "CRC mismatch", C["EBP_PERR_FRAME"]: "malformed frame (COBS or too short)",
    C["EBP_PERR_OVERFLOW"]: "frame longer than the device buffer",
    C["EBP_PERR_VERSION"]: "protocol version mismatch", C["EBP_PERR_NO_MODEL"]: "no model loaded",
    C["EBP_PERR_NO_MEMORY"]: "model does not fit the device arena", C["EBP_PERR_RANGE"]: "argument out of range",
    C["EBP_PERR_INCOMPLETE"]: "weight upload incomplete (the model is unusable until a complete upload is committed)",
    C["EBP_PERR_DATA_CRC"]: "uploaded weights do not match their CRC (upload them again)",
    C["EBP_PERR_NV"]: "non-volatile storage missing on this board, or it did not keep what was written",
    C["EBP_PERR_NV_FULL"]: "the checkpoint is larger than a storage slot (use a smaller model or a board with more "
                           "flash)",
    C["EBP_PERR_SEQUENCE"]: "pipelined training frame out of order (not run; the host sends the missing one first)",
}
# Frame-level errors: the device could not read the request; the host retransmits.
FRAME_ERRORS = (C["EBP_PERR_CRC"], C["EBP_PERR_FRAME"], C["EBP_PERR_OVERFLOW"])


def status_message(status: int) -> str:
    return CORE_STATUS.get(status) or PROTO_STATUS.get(status) or f"unknown status {status}"


# --- COBS --------------------------------------------------------------------------------------------------
def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result has no 0x00 bytes (delimiter not included)."""
    out = bytearray()
    data = bytes(data)
    i, n = 0, len(data)
    while True:
        j = data.find(b"\x00", i, min(i + 254, n))
        if j < 0:
            run = min(254, n - i)
            out.append(run + 1)
            out += data[i:i + run]
            i += run
            if run == 254:
                if i >= n:
                    break
                continue
            break
        out.append(j - i + 1)
        out += data[i:j]
        i = j + 1
        if i == n:
            out.append(1)
            break
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    data = bytes(data)
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0 or i + code > n:
            raise ProtocolError("malformed COBS block")
        out += data[i + 1:i + code]
        i += code
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# --- frames ------------------------------------------------------------------------------------------------
@dataclass
class Frame:
    type: int
    seq: int
    status: int = 0
    body: bytes = b""
    version: int = PROTO_VERSION

    @property
    def name(self) -> str:
        return MESSAGE_NAMES.get(self.type & ~RESPONSE if self.type != MSG_ERROR else MSG_ERROR, f"type {self.type}")


def encode_raw(f: Frame) -> bytes:
    raw = HEADER.pack(f.version, f.type, f.seq & 0xFFFF, f.status, len(f.body)) + bytes(f.body)
    return raw + struct.pack("<I", zlib.crc32(raw) & 0xFFFFFFFF)


def encode_frame(f: Frame) -> bytes:
    """COBS-encoded frame with its 0x00 delimiter, ready to write."""
    if len(f.body) > MAX_BODY:
        raise ProtocolError(f"body of {len(f.body)} bytes exceeds the {MAX_BODY}-byte limit")
    return cobs_encode(encode_raw(f)) + b"\x00"


def decode_frame(encoded: bytes) -> Frame:
    """One frame (without its delimiter) -> Frame; ProtocolError if it does not decode."""
    raw = cobs_decode(encoded)
    if len(raw) < HEADER.size + 4:
        raise ProtocolError(f"frame of {len(raw)} bytes is shorter than header + CRC")
    (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
    if zlib.crc32(raw[:-4]) & 0xFFFFFFFF != crc:
        raise ProtocolError("CRC mismatch")
    version, type_, seq, status, length = HEADER.unpack_from(raw)
    body = raw[HEADER.size:-4]
    if length != len(body):
        raise ProtocolError(f"header says {length} body bytes, frame has {len(body)}")
    return Frame(type_, seq, status, body, version)


class FrameSplitter:
    """Collects bytes and yields each complete encoded frame (delimiter stripped, empty frames skipped)."""

    def __init__(self, max_len: int = 4 * MAX_ENCODED):
        self.buf = bytearray()
        self.max_len = max_len
        self.overflowed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.buf += data
        while True:
            k = self.buf.find(b"\x00")
            if k < 0:
                if len(self.buf) > self.max_len:   # garbage without a delimiter: drop it
                    self.buf.clear()
                    self.overflowed = True
                return
            chunk = bytes(self.buf[:k])
            del self.buf[:k + 1]
            if chunk:
                yield chunk


# --- bodies ------------------------------------------------------------------------------------------------
LOAD_FIXED = struct.Struct("<HbBBBBBHbHBHI")
LAYER = struct.Struct("<HBbb")
LOAD_EXT = struct.Struct("<HH")          # in_ch, 0; then per layer LAYER_EXT
LAYER_EXT = struct.Struct("<BBBBB")      # kind, frozen, kernel, stride, w_bits (ebp_layer_cfg_t)
MEMORY_FIELDS = ("weights", "biases", "gradients", "optimizer", "activations", "scratch", "total")


def check_hparams(lr_m: int, lr_e: int, momentum_q15: int) -> None:
    """What the firmware accepts for the hyperparameters (app.c hparams_ok): ConfigError before sending."""
    if not 0 < int(lr_m) <= 0xFFFF:
        raise ConfigError(f"learning-rate mantissa lr_m must be 1..65535, got {lr_m} (a zero learning rate is "
                          f"refused by the device and by TrainConfig)")
    if not -80 <= int(lr_e) <= 0:
        raise ConfigError(f"learning-rate exponent lr_e must be -80..0, got {lr_e}")
    if not 0 <= int(momentum_q15) <= 32767:
        raise ConfigError(f"momentum_q15 must be 0..32767, got {momentum_q15}")


def check_load_params(p: dict) -> None:
    """What the firmware refuses in a LOAD besides the core's ebp_cfg_check (which FixedNet runs): the
    hyperparameters, the init kind and the field widths. ConfigError, so that nothing is sent."""
    check_hparams(p["lr_m"], p["lr_e"], p["momentum_q15"])
    if not 0 <= int(p["init_kind"]) <= 2:
        raise ConfigError(f"init_kind must be 0 (uniform), 1 (xavier) or 2 (he), got {p['init_kind']}")
    if not 1 <= len(p["layers"]) <= C.get("EBP_MAX_LAYERS", 8):
        raise ConfigError(f"{len(p['layers'])} layers; the device takes 1..8")
    if not 0 <= int(p["init_range_q12"]) <= 0xFFFF or not 0 < int(p["n_in"]) <= 0xFFFF:
        raise ConfigError("init_range_q12 and n_in must fit in 16 bits")
    ext = p.get("layer_ext")
    if ext is not None:
        if len(ext) != len(p["layers"]):
            raise ConfigError(f"layer_ext has {len(ext)} entries for {len(p['layers'])} layers")
        for i, e in enumerate(ext):
            if len(e) != 5 or not all(0 <= int(v) <= 255 for v in e):
                raise ConfigError(f"layer {i}: (kind, frozen, kernel, stride, w_bits) must be 5 bytes, got {e}")
    if not 0 <= int(p.get("in_ch", 0) or 0) <= 0xFFFF:
        raise ConfigError(f"in_ch must fit in 16 bits, got {p.get('in_ch')}")


def pack_load(p: dict) -> bytes:
    """Body of LOAD from ``FixedNet.core_params()`` (checked as the device checks it). The extension (input
    channels, per layer kind, frozen, kernel, stride, w_bits) is sent when the params carry ``layer_ext`` or
    ``in_ch``, i.e. when the network uses any of them."""
    check_load_params(p)
    layers = list(p["layers"])
    body = LOAD_FIXED.pack(p["n_in"], p["in_frac"], len(layers), p["loss"], p["optimizer"], p["rounding"],
                           p["flags"], p["lr_m"], p["lr_e"], p["momentum_q15"], p["init_kind"],
                           p["init_range_q12"], p["seed"] & 0xFFFFFFFF)
    body += b"".join(LAYER.pack(*l) for l in layers)
    if p.get("layer_ext") is not None or p.get("in_ch"):
        ext = p.get("layer_ext") or [(0, 0, 0, 0, 0)] * len(layers)
        body += LOAD_EXT.pack(int(p.get("in_ch", 0) or 0), 0) + b"".join(LAYER_EXT.pack(*e) for e in ext)
    return body


def unpack_load(body: bytes) -> dict:
    """Inverse of pack_load (used by tests and fakes)."""
    (n_in, in_frac, nl, loss, opt, rnd, flags, lr_m, lr_e, mom, ik, rng, seed) = LOAD_FIXED.unpack_from(body)
    layers = [LAYER.unpack_from(body, LOAD_FIXED.size + LAYER.size * i) for i in range(nl)]
    p = dict(n_in=n_in, in_frac=in_frac, loss=loss, optimizer=opt, rounding=rnd, flags=flags, layers=layers,
             lr_m=lr_m, lr_e=lr_e, momentum_q15=mom, init_kind=ik, init_range_q12=rng, seed=seed)
    k = LOAD_FIXED.size + LAYER.size * nl
    if len(body) >= k + LOAD_EXT.size + LAYER_EXT.size * nl:
        p["in_ch"] = LOAD_EXT.unpack_from(body, k)[0]
        p["layer_ext"] = [LAYER_EXT.unpack_from(body, k + LOAD_EXT.size + LAYER_EXT.size * i) for i in range(nl)]
    return p


def unpack_memory(body: bytes) -> dict:
    vals = struct.unpack_from("<8I", body)
    d = dict(zip(MEMORY_FIELDS, vals[:7]))
    d["arena"] = vals[7]
    return d


def _i16(a) -> bytes:
    return np.ascontiguousarray(a, dtype="<i2").tobytes()


def pack_train(Xq: np.ndarray, Tq: np.ndarray, batch: int, flags: int = 0) -> bytes:
    return struct.pack("<HHI", len(Xq), flags, batch) + _i16(Xq) + _i16(Tq)


@dataclass
class TrainResult:
    loss_sum: int       # Q16 sum of per-sample losses
    steps: int          # net.steps after the request
    ticks: int          # device counter ticks spent in the request
    n: int              # samples trained
    grad_count: int     # samples accumulated but not yet applied


def unpack_train(body: bytes) -> TrainResult:
    return TrainResult(*struct.unpack_from("<qIIII", body))


def pack_stage(offset: int, data) -> bytes:
    """STAGE: elements [offset, offset + len(data)) of the staged samples (inputs, then targets) as int16."""
    data = np.ascontiguousarray(data, dtype="<i2").ravel()
    if not 0 <= offset <= 0xFFFFFFFF or len(data) > 0xFFFF:
        raise ProtocolError(f"stage offset {offset} or count {len(data)} out of range")
    return struct.pack("<IHH", offset, len(data), 0) + data.tobytes()


def pack_chunk(k: int, block: int, data) -> bytes:
    """CHUNK body: block k (0..63) of ``block`` elements of streamed samples (data: at most ``block`` int16); the
    frame's seq is the samples' tag, which the TRAIN with BLOCKS names (``pack_train_blocks``)."""
    data = np.ascontiguousarray(data, dtype="<i2").ravel()
    if not 0 <= k < 64 or not 1 <= len(data) <= block <= 0xFFFF:
        raise ProtocolError(f"chunk {k} of {len(data)} elements in blocks of {block} out of range")
    return struct.pack("<BBH", k, 0, block) + data.tobytes()


STATE_HDR = struct.Struct("<IIHH")      # total words, offset, count, 0


def pack_state_read(offset: int, count: int) -> bytes:
    return struct.pack("<BBHI", 0, 0, count, offset)


def pack_state_write(offset: int, words) -> bytes:
    words = np.ascontiguousarray(words, dtype="<u4").ravel()
    return struct.pack("<BBHI", 1, 0, len(words), offset) + words.tobytes()


def unpack_state(body: bytes) -> Tuple[int, int, np.ndarray]:
    """(total words, offset, words read as uint32)"""
    total, off, count, _ = STATE_HDR.unpack_from(body)
    count = min(count, (len(body) - STATE_HDR.size) // 4)      # a write's answer carries no words
    return total, off, np.frombuffer(body, dtype="<u4", count=count, offset=STATE_HDR.size).astype(np.uint32)


def pack_train_blocks(n: int, batch: int, flags: int, tag: int, block: int) -> bytes:
    """TRAIN of n samples streamed as CHUNK blocks of ``block`` elements with seq ``tag`` (their inputs, then their
    targets, from element 0): trained once every block arrived, else answered with the mask of those missing."""
    return struct.pack("<HHIHH", n, flags | STAGED | BLOCKS, batch, tag, block)


def unpack_stage(body: bytes) -> Tuple[int, int]:
    """(elements staged, room in elements)"""
    return struct.unpack_from("<II", body)


def pack_staged(kind: int, tail, batch: int = 1, flags: int = 0) -> bytes:
    """TRAIN (kind TRAIN: with batch and flags), PREDICT or EVALUATE of one staged sample whose last len(tail)
    elements travel in this body."""
    tail = np.ascontiguousarray(tail, dtype="<i2").ravel().tobytes()
    if kind == TRAIN:
        return struct.pack("<HHI", 1, flags | STAGED, batch) + tail
    return struct.pack("<HH", 1, STAGED) + tail


def pack_predict(Xq: np.ndarray) -> bytes:
    return struct.pack("<HH", len(Xq), 0) + _i16(Xq)


def unpack_predict(body: bytes) -> Tuple[np.ndarray, int]:
    n, n_out, ticks = struct.unpack_from("<HHI", body)
    y = np.frombuffer(body, dtype="<i2", count=n * n_out, offset=8).astype(np.int16).reshape(n, n_out)
    return y, ticks


def pack_evaluate(Xq: np.ndarray, Tq: np.ndarray) -> bytes:
    return struct.pack("<HH", len(Xq), 0) + _i16(Xq) + _i16(Tq)


def unpack_evaluate(body: bytes) -> Tuple[int, int, int]:
    return struct.unpack_from("<qII", body)


WEIGHTS_HDR = struct.Struct("<BBHHbbIHH")


@dataclass
class WeightChunk:
    layer: int
    n_layers: int
    n_in: int
    n_out: int
    w_frac: int
    a_frac: int
    offset: int
    act: int
    data: np.ndarray


def pack_read_weights(layer: int, offset: int, count: int) -> bytes:
    return struct.pack("<BBHI", layer, 0, count, offset)


def unpack_read_weights(body: bytes) -> WeightChunk:
    layer, nl, n_in, n_out, wf, af, off, count, act = WEIGHTS_HDR.unpack_from(body)
    data = np.frombuffer(body, dtype="<i2", count=count, offset=WEIGHTS_HDR.size).astype(np.int16)
    return WeightChunk(layer, nl, n_in, n_out, wf, af, off, act, data)


# --- weight upload -----------------------------------------------------------------------------------------
WRITE_HDR = struct.Struct("<BBHI")
MAX_WRITE_COUNT = (MAX_BODY - WRITE_HDR.size) // 2


def pack_write_weights(layer: int, offset: int, data) -> bytes:
    """Body of WRITE_WEIGHTS: ``data`` are int16 elements of the layer (weights row-major, then biases) from
    ``offset``; at most MAX_WRITE_COUNT of them."""
    data = np.ascontiguousarray(data, dtype="<i2")
    if data.ndim != 1 or len(data) > MAX_WRITE_COUNT:
        raise ProtocolError(f"a WRITE_WEIGHTS chunk holds 1-d int16 data of at most {MAX_WRITE_COUNT} elements")
    return WRITE_HDR.pack(layer, 0, len(data), offset) + data.tobytes()


@dataclass
class WriteResult:
    written: int        # elements of the layer written so far (contiguous from 0)
    total: int          # elements of the layer
    staged: bool        # True: staged past the model (the old weights stay usable until the commit)


def unpack_write_weights(body: bytes) -> WriteResult:
    written, total, staged = struct.unpack_from("<IIB", body)
    return WriteResult(written, total, bool(staged))


def weights_crc(int_weights) -> int:
    """CRC-32 of every layer's weights (row-major) then biases, int16 little-endian: what COMMIT_WEIGHTS
    checks the upload against."""
    c = 0
    for W, b in int_weights:
        c = zlib.crc32(np.ascontiguousarray(W, dtype="<i2").tobytes(), c)
        c = zlib.crc32(np.ascontiguousarray(b, dtype="<i2").tobytes(), c)
    return c & 0xFFFFFFFF


def pack_commit_weights(crc: int, rng: Optional[int] = None, steps: Optional[int] = None) -> bytes:
    """Body of COMMIT_WEIGHTS; with ``rng`` and ``steps`` also sets the rounding generator and step counter."""
    flags = C["EBP_COMMIT_SET_STATE"] if rng is not None else 0
    return struct.pack("<IIII", crc & 0xFFFFFFFF, flags, (rng or 0) & 0xFFFFFFFF, (steps or 0) & 0xFFFFFFFF)


# --- checkpoints ---------------------------------------------------------------------------------------------
CKPT_OPS = {"status": C["EBP_CKPT_OP_STATUS"], "save": C["EBP_CKPT_OP_SAVE"], "autosave": C["EBP_CKPT_OP_AUTOSAVE"],
            "erase": C["EBP_CKPT_OP_ERASE"], "damage": C["EBP_CKPT_OP_DAMAGE"]}
# what the device found at boot (firmware/app/ckpt.h EBP_CKPT_BOOT_*)
CKPT_BOOT = {0: "none", 1: "restored", 2: "restored the older slot (the newest was corrupt)",
             3: "corrupt (no slot passed its CRC checks; booted without a model)",
             4: "unusable (a checkpoint of another core version or larger than the arena)"}


def pack_checkpoint(op: str, arg: int = 0) -> bytes:
    if op not in CKPT_OPS:
        raise ProtocolError(f"unknown checkpoint op {op!r}; one of {', '.join(CKPT_OPS)}")
    if not 0 <= int(arg) <= 0xFFFFFFFF:
        raise ConfigError(f"checkpoint argument must be 0..2^32-1, got {arg}")
    return struct.pack("<B3xI", CKPT_OPS[op], int(arg))


def unpack_checkpoint(body: bytes) -> dict:
    (slot_bytes, last, newest, boot, seq, steps, every, saves, rslot, corrupt, _, rsteps) = struct.unpack_from(
        "<IhBBIIIIBBHI", body)
    return dict(slot_bytes=slot_bytes, storage=slot_bytes > 0,
                last_save_status=None if last == 1 else last,
                last_save=("none since boot" if last == 1 else "ok" if last == 0 else status_message(last)),
                newest_slot=None if newest == 0xFF else newest, newest_seq=seq, newest_steps=steps,
                autosave_every=every, saves=saves, boot=CKPT_BOOT.get(boot, f"status {boot}"), boot_status=boot,
                restored_slot=None if rslot == 0xFF else rslot, restored_steps=rsteps,
                corrupt_slots=[k for k in (0, 1) if corrupt >> k & 1])


STAT_FIELDS = ("sat_out", "sat_delta", "sat_grad", "sat_param", "sat_vel", "updates", "zero_updates")


def unpack_stats(body: bytes) -> dict:
    steps, grad_count, nl = struct.unpack_from("<IIB", body)
    layers = []
    for i in range(nl):
        v = struct.unpack_from("<7Ihh", body, 12 + 32 * i)
        d = dict(zip(STAT_FIELDS, v[:7]))
        d["delta_exp"], d["g_exp"] = v[7], v[8]
        layers.append(d)
    return dict(steps=steps, grad_count=grad_count, layers=layers)


def pack_hparams(lr_m: int, lr_e: int, momentum_q15: int) -> bytes:
    check_hparams(lr_m, lr_e, momentum_q15)
    return struct.pack("<HbBH", lr_m, lr_e, 0, momentum_q15)


@dataclass
class Info:
    protocol: int
    core_version: Tuple[int, int]
    firmware_version: Tuple[int, int]
    max_body: int
    arena: int
    tick_num: int
    tick_den: int
    tick_unit: int
    have_model: bool
    max_layers: int
    net_struct: int
    board: str
    core: str
    build: str
    model_state: str = "none"               # none, ready, uploading (weights written in place, not usable)
    stack_high_water: Optional[int] = None  # bytes of stack used since reset (Cortex-M ports), else None
    boot_count: int = 0                     # boots since power-up (survives system resets), 1 on the first
    session_id: int = 0                     # drawn at every boot's first request: changes when the device resets
    checkpoint: Optional[dict] = None       # {slot, steps} of the checkpoint restored at boot, or None
    checkpoint_status: int = 0              # what the boot found: 0 none, 1 restored, 2 older slot, 3 corrupt, ...
    checkpoint_boot: str = "none"           # the same in words (CKPT_BOOT)
    cache_entries: int = 1                  # answers the device keeps for retransmissions: frames in flight
    features: Optional[int] = None          # EBP_FEAT_* the firmware was built with (None: not reported)

    def has(self, feature: str) -> bool:
        """Whether the firmware has EBP_FEAT_<feature> ("STAGE", "UPLOAD", "STATE", "GRAD_MEMORY"); a device
        that does not report features is taken to have them (the host finds out by asking)."""
        return self.features is None or bool(self.features & C[f"EBP_FEAT_{feature}"])

    def ticks_to(self, ticks: int) -> Optional[float]:
        """Counter ticks in the counter's unit (instructions or ns); None if the board has no counter."""
        if self.tick_unit == C["EBP_TICK_NONE"] or self.tick_den == 0:
            return None
        return ticks * self.tick_num / self.tick_den

    @property
    def tick_unit_name(self) -> str:
        return {C["EBP_TICK_INSTRUCTIONS"]: "instructions", C["EBP_TICK_NANOSECONDS"]: "ns"}.get(self.tick_unit,
                                                                                                 "none")

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["tick_unit"] = self.tick_unit_name
        if self.features is not None:
            d["features"] = [k[len("EBP_FEAT_"):].lower() for k, v in C.items()
                             if k.startswith("EBP_FEAT_") and self.features & v]
        return d


def unpack_hello(body: bytes) -> Info:
    proto, cmaj, cmin, fmaj, fmin, max_body, arena, tn, td, tu, hm, ml, ce, ns = struct.unpack_from(
        "<HBBBBHIIIBBBBI", body)
    k = 28
    strs = []
    for _ in range(3):
        n = body[k]
        strs.append(body[k + 1:k + 1 + n].decode("utf-8", "replace"))
        k += 1 + n
    info = Info(proto, (cmaj, cmin), (fmaj, fmin), max_body, arena, tn, td, tu, hm == C["EBP_MODEL_READY"], ml, ns,
                *strs)
    info.cache_entries = max(1, ce)
    info.model_state = {C["EBP_MODEL_NONE"]: "none", C["EBP_MODEL_READY"]: "ready",
                        C["EBP_MODEL_UPLOADING"]: "uploading"}.get(hm, f"state {hm}")
    if len(body) >= k + 20:
        hw, info.boot_count, info.session_id, slot, status, _, steps = struct.unpack_from("<IIIBBHI", body, k)
        info.stack_high_water = None if hw == 0xFFFFFFFF else hw
        info.checkpoint = None if slot == 0xFF else dict(slot=slot, steps=steps)
        info.checkpoint_status = status
        info.checkpoint_boot = CKPT_BOOT.get(status, f"status {status}")
    if len(body) >= k + 24:
        (info.features,) = struct.unpack_from("<I", body, k + 20)
    return info
