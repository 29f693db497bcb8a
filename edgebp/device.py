"""Talking to a board that runs the edgebp firmware (or the host port), over any pyserial URL.

    with Device("socket://127.0.0.1:5555") as dev:
        print(dev.info())
        dev.load_model(fixed_net)                  # or fixed_net.core_params()
        r = dev.train(Xq, Tq, batch=1)             # int16 rows, sent in frames of at most ~1 KiB
        W = dev.read_weights()

Every request carries a sequence number. On a timeout, a corrupt response or a frame-level error report
the request is sent again with the same number; the device answers a request it already ran from its cache,
so a training chunk is never applied twice. Timeouts use the monotonic clock.
"""
from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import numpy as np

from . import protocol as P
from ._core import lib
from .errors import ConfigError, DeviceError, MemoryBudgetError, ProtocolError
from .fixed import LOSS_SCALE, FixedNet, IntegerEngine

ONLINE_FLAG = lib.EBP_FLAG_ONLINE


class DeviceStatusError(DeviceError):
    """The device answered with an error status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class DeviceMemoryError(MemoryBudgetError, DeviceStatusError):
    """The model does not fit the device's arena; ``needed`` and ``arena`` are in bytes."""

    def __init__(self, status: int, message: str, needed: int, arena: int):
        DeviceStatusError.__init__(self, status, message)
        self.needed, self.arena = needed, arena


@dataclass
class TrainSummary:
    """What the device reported for one ``Device.train`` call (possibly many frames)."""
    loss_sum: int = 0          # Q16 sum of the per-sample losses
    n: int = 0                 # samples
    steps: int = 0             # net.steps on the device after the call
    steps_taken: int = 0       # weight updates during this call
    ticks: int = 0             # device counter ticks spent training (excludes the link)
    requests: int = 0
    seconds: float = 0.0       # host wall time, including the link
    instructions: Optional[float] = None   # ticks converted, when the counter counts instructions

    @property
    def mean_loss(self) -> float:
        return self.loss_sum * LOSS_SCALE / max(self.n, 1)


def _hello_stack_high_water(body: bytes) -> Optional[int]:
    """The optional u32 after HELLO's three strings: bytes of stack the firmware used since reset (painted
    stack, Cortex-M ports); None when the firmware does not report it (host port, older firmware)."""
    k = 28
    for _ in range(3):
        if k >= len(body):
            return None
        k += 1 + body[k]
    return struct.unpack_from("<I", body, k)[0] if len(body) >= k + 4 else None


class Device:
    """One board. ``url``: anything ``serial.serial_for_url`` opens (``socket://host:port``, ``/dev/ttyACM0``,
    ``loop://``). ``timeout``: seconds to wait for each response; ``retries``: retransmissions per request."""

    def __init__(self, url: str, timeout: float = 5.0, retries: int = 3, connect_timeout: float = 10.0,
                 baudrate: int = 115200, transport=None):
        self.url, self.timeout, self.retries = url, float(timeout), int(retries)
        self._splitter = P.FrameSplitter()
        self._seq = random.randrange(1, 0xFFFF)
        self._info: Optional[P.Info] = None
        self._params: Optional[dict] = None
        self.memory: Optional[dict] = None
        self.stats_retransmissions = 0
        self.ser = transport if transport is not None else self._open(url, baudrate, connect_timeout)
        self.ser.write(b"\x00")   # ends any partial frame the device may hold

    @staticmethod
    def _open(url, baudrate, connect_timeout):
        import serial
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=10)
            except (serial.SerialException, OSError, ValueError) as e:
                if time.monotonic() >= deadline:
                    raise DeviceError(f"cannot open {url}: {e}") from None
                time.sleep(0.05)

    # --- context manager -------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.ser is not None:
            try:
                self.ser.close()
            finally:
                self.ser = None

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- frames ----------------------------------------------------------------------------------------------
    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are (tests use it to send garbage)."""
        self.ser.write(data)
        self.ser.flush()

    def read_frame(self, timeout: float) -> Optional[bytes]:
        """The next encoded frame (no delimiter) within timeout seconds, or None."""
        deadline = time.monotonic() + timeout
        while True:
            pending = getattr(self, "_pending", None)
            if pending:
                return pending.pop(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.ser.timeout = min(remaining, 0.05)
            try:
                waiting = self.ser.in_waiting
            except Exception:
                waiting = 0
            data = self.ser.read(max(1, waiting))
            if data:
                self._pending = list(self._splitter.feed(data))

    def request(self, type_: int, body: bytes = b"", timeout: Optional[float] = None, seq: Optional[int] = None,
                check: bool = True) -> P.Frame:
        """Sends one request and returns its response frame, retransmitting (same seq) on a timeout, a corrupt
        response or a frame-level error. Raises DeviceError if no valid response arrives, DeviceStatusError
        (or MemoryBudgetError) on an error status when ``check``."""
        if self.ser is None:
            raise DeviceError("device is closed")
        timeout = self.timeout if timeout is None else timeout
        seq = self.next_seq() if seq is None else seq
        frame = P.encode_frame(P.Frame(type_, seq, 0, body))
        problems, failures, resends = [], 0, 0
        self.send_raw(frame)
        while True:
            resp, lost = self._await(type_, seq, timeout, problems)
            if resp is not None:
                if check:
                    self._check(resp)
                return resp
            # A timeout or a corrupt response counts against ``retries``. A frame-level error report may be
            # about garbage that preceded our request, so it triggers a resend without counting, up to a bound.
            if lost:
                resends += 1
            else:
                failures += 1
            if failures > self.retries or resends > 16:
                raise DeviceError(f"{P.MESSAGE_NAMES.get(type_, type_)} request to {self.url}: no valid response "
                                  f"after {failures + resends + 1} attempts "
                                  f"({'; '.join(problems[-3:]) or 'timeout'})")
            self.stats_retransmissions += 1
            self.send_raw(b"\x00" + frame)

    def _await(self, type_, seq, timeout, problems) -> Optional[P.Frame]:
        deadline = time.monotonic() + timeout
        while True:
            chunk = self.read_frame(max(0.0, deadline - time.monotonic()))
            if chunk is None:
                problems.append(f"timeout after {timeout:g} s")
                return None, False
            try:
                f = P.decode_frame(chunk)
            except ProtocolError as e:
                problems.append(f"corrupt response: {e}")
                return None, False
            if f.type == P.MSG_ERROR:
                if f.status in P.FRAME_ERRORS:
                    problems.append(f"device could not read a request: {P.status_message(f.status)}")
                    return None, True
                continue
            if f.seq != seq or f.type != (type_ | P.RESPONSE):
                continue    # a late answer to an earlier attempt or request
            return f, False

    def _check(self, f: P.Frame) -> None:
        if f.status == 0:
            return
        what = P.MESSAGE_NAMES.get(f.type & ~P.RESPONSE, str(f.type))
        msg = f"device refused {what}: {P.status_message(f.status)} (status {f.status})"
        if f.status == P.C["EBP_PERR_NO_MEMORY"] and len(f.body) >= 8:
            needed, arena = struct.unpack_from("<II", f.body)
            raise DeviceMemoryError(f.status, f"the model needs {needed} bytes but the device arena has {arena}; "
                                              f"use fewer or narrower layers, or a board with more RAM",
                                    needed, arena)
        if f.status == P.C["EBP_PERR_VERSION"] and f.body:
            msg += f": device speaks protocol {f.body[0]}, host {P.PROTO_VERSION}"
        raise DeviceStatusError(f.status, msg)

    # --- requests --------------------------------------------------------------------------------------------
    def info(self) -> P.Info:
        f = self.request(P.HELLO)
        info = P.unpack_hello(f.body)
        info.stack_high_water = _hello_stack_high_water(f.body)
        if info.protocol != P.PROTO_VERSION:
            raise ProtocolError(f"device speaks protocol {info.protocol}, this host {P.PROTO_VERSION}; "
                                f"rebuild the firmware or update edgebp")
        self._info = info
        return info

    @property
    def board_info(self) -> P.Info:
        return self._info if self._info is not None else self.info()

    def load_model(self, net_or_params: Union[dict, "object"]) -> dict:
        """Builds a model on the device from ``FixedNet`` (or its ``core_params()``); returns its memory report.
        Raises MemoryBudgetError (with .needed and .arena) if it does not fit; the previous model then stays."""
        params = net_or_params if isinstance(net_or_params, dict) else net_or_params.core_params()
        f = self.request(P.LOAD, P.pack_load(params))
        self._params = dict(params)
        self.memory = P.unpack_memory(f.body)
        return self.memory

    def _shape(self) -> Tuple[int, int]:
        if self._params is None:
            raise DeviceError("no model loaded by this host: call load_model() first")
        return self._params["n_in"], self._params["layers"][-1][0]

    def _rows(self, A, width: int, what: str) -> np.ndarray:
        A = np.ascontiguousarray(A)
        if A.dtype != np.int16 or A.ndim != 2 or A.shape[1] != width:
            raise ProtocolError(f"{what} must be int16 of shape (n, {width}), got {A.dtype} {A.shape}")
        return A

    def samples_per_frame(self, with_targets: bool = True) -> int:
        n_in, n_out = self._shape()
        per = 2 * (n_in + (n_out if with_targets else 0))
        return max(1, min(0xFFFF, (P.MAX_BODY - 8) // per))

    def train(self, Xq, Tq, batch: int, timeout: Optional[float] = None) -> TrainSummary:
        """Trains on the rows in order, exactly like ``FixedNet.train_q(Xq, Tq, batch)``: a step after every
        ``batch`` rows and after the last. Sent in chunks of whole batches (or, when one batch does not fit in a
        frame, accumulated over several frames and stepped once)."""
        n_in, n_out = self._shape()
        Xq, Tq = self._rows(Xq, n_in, "inputs"), self._rows(Tq, n_out, "targets")
        if len(Xq) != len(Tq):
            raise ProtocolError(f"{len(Xq)} input rows but {len(Tq)} target rows")
        n = len(Xq)
        batch = n if batch <= 0 else int(batch)
        if self._params["flags"] & ONLINE_FLAG and batch != 1:
            raise ConfigError(f"the model on the device was built for online SGD without gradient memory "
                              f"(TrainConfig online_only, the default for sgd with batch_size 1), so it trains with "
                              f"batch 1 only, not {batch}; load it from a TrainConfig(batch_size={batch}) or "
                              f"online_only=False network to train in batches")
        cap = self.samples_per_frame()
        out = TrainSummary()
        t0 = time.monotonic()
        steps0 = None

        def send(lo, hi, flags, b):
            f = self.request(P.TRAIN, P.pack_train(Xq[lo:hi], Tq[lo:hi], b, flags), timeout=timeout)
            r = P.unpack_train(f.body)
            if r.n != hi - lo:
                raise ProtocolError(f"device trained {r.n} samples, {hi - lo} sent")
            out.loss_sum += r.loss_sum
            out.ticks += r.ticks
            out.requests += 1
            out.steps = r.steps
            return r

        if batch <= cap:
            chunk = (cap // batch) * batch
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                r = send(lo, hi, 0, batch)  # chunks at batch multiples: the same integers as one call
                if steps0 is None:
                    steps0 = r.steps - (-(-(hi - lo) // batch))
        else:
            acc = P.C["EBP_TRAIN_ACCUMULATE"]
            for blo in range(0, n, batch):
                bhi = min(n, blo + batch)
                for lo in range(blo, bhi, cap):
                    hi = min(bhi, lo + cap)
                    last = hi == bhi
                    r = send(lo, hi, acc | (P.C["EBP_TRAIN_STEP"] if last else 0), batch)
                    if steps0 is None:
                        steps0 = r.steps - (1 if last else 0)
        out.n = n
        out.steps_taken = out.steps - (steps0 if steps0 is not None else out.steps)
        out.seconds = time.monotonic() - t0
        info = self.board_info
        if info.tick_unit == P.C["EBP_TICK_INSTRUCTIONS"]:
            out.instructions = info.ticks_to(out.ticks)
        return out

    def predict(self, Xq, timeout: Optional[float] = None) -> np.ndarray:
        n_in, n_out = self._shape()
        Xq = self._rows(Xq, n_in, "inputs")
        cap = max(1, min((P.MAX_BODY - 4) // (2 * n_in), (P.MAX_BODY - 8) // (2 * n_out)))
        parts = [np.zeros((0, n_out), np.int16)]
        for lo in range(0, len(Xq), cap):
            y, _ = P.unpack_predict(self.request(P.PREDICT, P.pack_predict(Xq[lo:lo + cap]), timeout=timeout).body)
            parts.append(y)
        return np.concatenate(parts)

    def evaluate(self, Xq, Tq, timeout: Optional[float] = None) -> Tuple[int, int]:
        """(Q16 loss sum, correctly classified count), like ``FixedNet.evaluate_q``."""
        n_in, n_out = self._shape()
        Xq, Tq = self._rows(Xq, n_in, "inputs"), self._rows(Tq, n_out, "targets")
        cap = self.samples_per_frame()
        loss, correct = 0, 0
        for lo in range(0, len(Xq), cap):
            l, c, _ = P.unpack_evaluate(self.request(P.EVALUATE, P.pack_evaluate(Xq[lo:lo + cap], Tq[lo:lo + cap]),
                                                     timeout=timeout).body)
            loss, correct = loss + l, correct + c
        return loss, correct

    def read_layer(self, layer: int) -> P.WeightChunk:
        """Weights (n_out, n_in) and biases of one layer in ``.data`` = concatenation, plus its formats."""
        chunks, off, total, first = [], 0, None, None
        while total is None or off < total:
            c = P.unpack_read_weights(self.request(P.READ_WEIGHTS, P.pack_read_weights(layer, off, 0xFFFF)).body)
            first = first or c
            total = c.n_out * c.n_in + c.n_out
            if len(c.data) == 0 and off < total:
                raise ProtocolError("device returned no weight data")
            chunks.append(c.data)
            off += len(c.data)
        first.data = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return first

    def read_weights(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """[(W int16 (n_out, n_in), b int16 (n_out,)), ...] like ``FixedNet.get_int_weights()``."""
        out, l, nl = [], 0, 1
        while l < nl:
            c = self.read_layer(l)
            nl = c.n_layers
            nw = c.n_out * c.n_in
            out.append((c.data[:nw].reshape(c.n_out, c.n_in).copy(), c.data[nw:].copy()))
            l += 1
        return out

    def read_formats(self) -> List[dict]:
        """Per layer: n_in, n_out, act, w_frac, a_frac as the device holds them."""
        out, l, nl = [], 0, 1
        while l < nl:
            c = P.unpack_read_weights(self.request(P.READ_WEIGHTS, P.pack_read_weights(l, 0, 0)).body)
            nl = c.n_layers
            out.append(dict(n_in=c.n_in, n_out=c.n_out, act=c.act, w_frac=c.w_frac, a_frac=c.a_frac))
            l += 1
        return out

    def read_stats(self, clear: bool = False) -> dict:
        """{steps, grad_count, layers: [{sat_out, ..., updates, zero_updates, delta_exp, g_exp}, ...]}"""
        return P.unpack_stats(self.request(P.READ_STATS, bytes([1 if clear else 0])).body)

    def set_hparams(self, lr: Optional[float] = None, momentum: float = 0.0, *, lr_m: Optional[int] = None,
                    lr_e: Optional[int] = None, momentum_q15: Optional[int] = None) -> None:
        """Learning rate and momentum, as floats (quantized like TrainConfig) or as the core's integers."""
        if lr is not None:
            from .config import TrainConfig
            c = TrainConfig(lr=lr, momentum=momentum)
            c.validate()
            lr_m, lr_e = c.quantized_lr()
            momentum_q15 = c.quantized_momentum()
        if lr_m is None or lr_e is None:
            raise ProtocolError("set_hparams needs lr, or lr_m and lr_e")
        self.request(P.SET_HPARAMS, P.pack_hparams(lr_m, lr_e, momentum_q15 or 0))
        if self._params is not None:
            self._params.update(lr_m=lr_m, lr_e=lr_e, momentum_q15=momentum_q15 or 0)

    def reset(self, hard: bool = False) -> None:
        """Drops the model (``hard``: also resets the MCU)."""
        self.request(P.RESET, bytes([1 if hard else 0]))
        self._params = None
        self.memory = None
        if hard:
            self._info = None


class DeviceNet(IntegerEngine):
    """An Engine whose training and inference run on a device, with the same integers as ``FixedNet``.

    The host keeps a FixedNet only to quantize data and describe the model (``core_params``); it does not
    train it. ``train_ticks`` / ``train_steps`` accumulate what the device measured."""

    name = "device"

    def __init__(self, device: Device, spec, cfg=None):
        from .config import TrainConfig
        self.device, self.spec, self.cfg = device, spec, cfg or TrainConfig()
        self._ref = FixedNet(spec, self.cfg)
        self.memory = device.load_model(self._ref)
        self.train_ticks = 0
        self.train_steps = 0
        self.train_samples_seen = 0
        self.train_requests = 0
        self.train_seconds = 0.0

    def core_params(self) -> dict:
        return self._ref.core_params()

    def quantize_inputs(self, X) -> np.ndarray:
        return self._ref.quantize_inputs(X)

    def quantize_targets(self, T) -> np.ndarray:
        return self._ref.quantize_targets(T)

    def train_q(self, Xq, Tq, batch_size: int) -> int:
        r = self.device.train(Xq, Tq, batch_size)
        self.train_ticks += r.ticks
        self.train_steps += r.steps_taken
        self.train_samples_seen += r.n
        self.train_requests += r.requests
        self.train_seconds += r.seconds
        return r.loss_sum

    def predict_q(self, Xq) -> np.ndarray:
        return self.device.predict(Xq)

    def evaluate_q(self, Xq, Tq) -> Tuple[int, int]:
        return self.device.evaluate(Xq, Tq)

    def get_int_weights(self):
        return self.device.read_weights()

    def stats(self) -> List[dict]:
        return [{k: v for k, v in l.items() if k in P.STAT_FIELDS} for l in self.device.read_stats()["layers"]]

    @property
    def steps(self) -> int:
        return self.device.read_stats()["steps"]

    def ticks_per_step(self) -> Optional[float]:
        return self.train_ticks / self.train_steps if self.train_steps else None

    def instructions_per_step(self) -> Optional[float]:
        info = self.device.board_info
        if info.tick_unit != P.C["EBP_TICK_INSTRUCTIONS"] or not self.train_steps:
            return None
        return info.ticks_to(self.train_ticks) / self.train_steps

    # --- Engine interface beyond IntegerEngine's -----------------------------------------------------------
    def set_weights(self, weights) -> None:
        raise DeviceError("the device protocol has no weight upload; early stopping (patience) cannot restore "
                          "the best weights on a device")

    def memory_report(self) -> dict:
        return {k: v for k, v in self.memory.items() if k != "arena"}
