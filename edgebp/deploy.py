"""Deploying a model onto a device: weight upload, and (with checkpoint support) the device's own
non-volatile checkpoints. Functions take a ``Device`` (edgebp.device) and speak through ``dev.request``.

    from edgebp.deploy import write_weights
    dev.load_model(fixed_net)                      # configuration, hyperparameters, rounding seed
    write_weights(dev, fixed_net.get_int_weights())  # then exactly these integers

An upload is a run of WRITE_WEIGHTS chunks (at most 508 int16 elements each, in order) and one
COMMIT_WEIGHTS carrying the CRC-32 of every element; see docs/protocol.md.
"""
from __future__ import annotations

import struct
from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import protocol as P
from .errors import ConfigError, DataError, DeviceError


def _request_of_varying_length(dev, type_: int, body: bytes):
    """A request whose time on the device varies with what it does rather than with its bytes (a checkpoint
    save erases and programs flash, a status only reads; a commit checks every weight): the round-trip time a
    Device learned for the message type says nothing about this one, so it is forgotten first and the
    request waits as long as a first one would."""
    link = getattr(dev, "link", None)
    rtt = getattr(link, "rtt", None)
    if isinstance(rtt, dict):
        rtt.pop(type_, None)
    return dev.request(type_, body)


def _device_shapes(dev) -> List[Tuple[int, int]]:
    """(n_out, n_in) per layer of the model on the device, as the device reports them."""
    return [(f["n_out"], f["n_in"]) for f in dev.read_formats()]


def _check_int_weights(int_weights, shapes) -> List[np.ndarray]:
    if len(int_weights) != len(shapes):
        raise ConfigError(f"{len(int_weights)} layers of weights given, but the model on the device has "
                          f"{len(shapes)} layers; load the matching network first (Device.load_model)")
    out = []
    for i, ((W, b), (n_out, n_in)) in enumerate(zip(int_weights, shapes)):
        W, b = np.asarray(W), np.asarray(b)
        # a dense layer's shape is checked here; a conv1d (ch, in_ch, kernel) or pooling layer's (the device's
        # header gives its activation sizes) by the device: each chunk's answer carries the layer's element
        # count (compared in write_weights), and the commit needs every layer complete and the CRC
        if W.ndim == 2 and (W.shape != (n_out, n_in) or b.shape != (n_out,)):
            raise ConfigError(f"layer {i}: the device's layer is ({n_out}, {n_in}) with {n_out} biases, the "
                              f"weights given are {W.shape} and {b.shape}")
        if W.dtype.kind not in "iu" or b.dtype.kind not in "iu":
            raise DataError(f"layer {i}: integer weights expected, got {W.dtype}/{b.dtype}; quantize them first "
                            f"(edgebp.weights.apply_weights does)")
        flat = np.concatenate([W.ravel(), b.ravel()]).astype(np.int64)
        if flat.size and (flat.min() < -32768 or flat.max() > 32767):
            k = int(np.argmax(np.abs(flat)))
            raise DataError(f"layer {i}: element {k} is {flat[k]}, outside int16")
        out.append(flat.astype(np.int16))
    return out


def write_weights(dev, int_weights: Sequence[Tuple[np.ndarray, np.ndarray]], rng: Optional[int] = None,
                  steps: Optional[int] = None) -> None:
    """Writes [(W int16 (n_out, n_in), b int16 (n_out,)), ...] into the model on the device, then commits.

    Each chunk is one request with its own sequence number: a retransmitted chunk is answered from the
    device's cache, and writing a chunk again writes the same values, so every chunk takes effect exactly
    once. The device stages the upload past its model when its arena has room (the old weights keep working
    until the commit, and an interrupted upload changes nothing), else it writes in place and refuses to
    train or predict until a complete upload is committed. The commit carries the CRC-32 of all elements;
    on a mismatch the device refuses it (DeviceStatusError) and keeps the old weights when staged.
    ``rng`` and ``steps`` (both or neither) also set the rounding generator and the step counter, to resume."""
    if (rng is None) != (steps is None):
        raise ConfigError("give both rng and steps, or neither")
    info = getattr(dev, "board_info", None)
    if info is not None and not info.has("UPLOAD"):      # HELLO's features: decided before anything is sent
        raise DeviceError(f"the device at {getattr(dev, 'url', '?')} takes no weight upload: its firmware "
                          f"compiles WRITE_WEIGHTS out to fit its flash (EBP_APP_UPLOAD=0); it trains "
                          f"from the weights its LOAD initialises. "
                          f"To start it from other weights, use a board with more flash, or build the "
                          f"weights into your own firmware (edgebp export)")
    flats = _check_int_weights(int_weights, _device_shapes(dev))
    per = min(P.MAX_WRITE_COUNT, (getattr(dev, "max_body", P.MAX_BODY) - P.WRITE_HDR.size) // 2)
    for layer, flat in enumerate(flats):
        for off in range(0, len(flat), per):
            chunk = flat[off:off + per]
            f = dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(layer, off, chunk))
            r = P.unpack_write_weights(f.body)
            if r.written < off + len(chunk) or r.total != len(flat):
                raise DeviceError(f"layer {layer}: the device reports {r.written} of {r.total} elements written "
                                  f"after a chunk ending at {off + len(chunk)} of {len(flat)}")
    crc = P.weights_crc(int_weights)
    f = _request_of_varying_length(dev, P.COMMIT_WEIGHTS, P.pack_commit_weights(crc, rng, steps))
    if rng is not None and hasattr(dev, "_state"):
        dev._state = None           # Device's record of the step counter: read it again before training
    (theirs,) = struct.unpack_from("<I", f.body)
    if theirs != crc:
        raise DeviceError(f"the device committed weights with CRC {theirs:#010x}, expected {crc:#010x}")


# --- the training state: rounding generator, step counter, velocities ----------------------------------------
def read_state(dev) -> np.ndarray:
    """The device's training state as uint32 words: the stochastic-rounding generator, the step counter, then
    every layer's weight and bias velocities (momentum; int32 bit patterns). Between steps only (a batch half
    accumulated is refused with EBP_ERR_STATE). With the weights it is everything a resume needs."""
    words: List[np.ndarray] = []
    off, total = 0, None
    while total is None or off < total:
        total, got, w = P.unpack_state(dev.request(P.STATE, P.pack_state_read(off, 0xFFFF)).body)
        if got != off or (len(w) == 0 and off < total):
            raise DeviceError(f"the device returned state words from {got} ({len(w)} of them), asked from {off}")
        words.append(w)
        off += len(w)
    return np.concatenate(words) if words else np.zeros(0, np.uint32)


def write_state(dev, words) -> None:
    """Writes what ``read_state`` returned back into the model on the device (the same network loaded, its
    weights uploaded). Each chunk rewrites the same words at the same place: exactly once by construction."""
    words = np.asarray(words, dtype=np.uint32).ravel()
    per = (getattr(dev, "max_body", P.MAX_BODY) - 8) // 4
    for off in range(0, len(words), per):
        total, _, _ = P.unpack_state(dev.request(P.STATE, P.pack_state_write(off, words[off:off + per])).body)
        if total != len(words):
            raise ConfigError(f"the device's model has {total} state words, {len(words)} given: load the network "
                              f"the state was read from")
    if hasattr(dev, "_state"):
        dev._state = None           # the step counter changed: read it again before training


# --- checkpoints in the device's non-volatile storage --------------------------------------------------------
def _checkpoint(dev, op: str, arg: int = 0) -> dict:
    return P.unpack_checkpoint(_request_of_varying_length(dev, P.CHECKPOINT, P.pack_checkpoint(op, arg)).body)


def checkpoint_status(dev) -> dict:
    """The device's checkpoint state: storage (bool), slot_bytes, newest_slot/seq/steps, autosave_every,
    saves since boot, last_save ("ok", "none since boot" or the error), what the boot restored (boot,
    restored_slot, restored_steps) and corrupt_slots."""
    return _checkpoint(dev, "status")


def save_checkpoint(dev) -> dict:
    """Saves the model on the device into its non-volatile storage now (the slot after the newest); returns
    checkpoint_status afterwards. DeviceStatusError if the board has no storage, the model is too large for a
    slot, or half a batch is accumulated."""
    return _checkpoint(dev, "save")


def set_autosave(dev, every_steps: int) -> None:
    """The device saves a checkpoint after each TRAIN request that ends ``every_steps`` or more steps after the
    last save (0: never). Its outcome shows in checkpoint_status()["last_save"]."""
    if int(every_steps) < 0:
        raise ConfigError(f"every_steps must be >= 0 (0 turns autosave off), got {every_steps}")
    _checkpoint(dev, "autosave", int(every_steps))


def erase_checkpoints(dev) -> dict:
    """Erases both checkpoint slots on the device."""
    return _checkpoint(dev, "erase")


def damage_checkpoint(dev, slot: int) -> dict:
    """Test hook: corrupts the payload of one slot (its CRC no longer matches), to check recovery."""
    return _checkpoint(dev, "damage", slot)
