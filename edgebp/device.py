"""Talking to a board that runs the edgebp firmware (or the host port), over any pyserial URL.

    with Device("socket://127.0.0.1:5555") as dev:
        print(dev.info())
        dev.load_model(fixed_net)                  # or fixed_net.core_params()
        r = dev.train(Xq, Tq, batch=1)             # int16 rows, in frames sized to the link
        W = dev.read_weights()

Every request carries a sequence number. On a timeout, a corrupt response or a frame-level error report the
request is sent again with the same number; the device answers a request it already ran from its cache, so a
training chunk is never applied twice. Timeouts use the monotonic clock.

The link adapts (docs/link.md): each attempt's outcome feeds an estimate of the share of bytes the link
corrupts and of the round-trip time per message type. Bulk requests (TRAIN, PREDICT, EVALUATE, READ_WEIGHTS)
are cut into the chunk size that maximises the expected samples per second under that estimate: full frames on
a clean link, down to one sample on a bad one, growing again as frames get through. A training chunk that keeps
failing is given up only after READ_STATS shows the device never applied it (exactly once). Retransmissions are
bounded by time: a request gives up when no valid response has arrived for ``timeout`` seconds, or after
``retries`` retransmissions when that is set.
"""
from __future__ import annotations

import math
import random
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from . import protocol as P
from ._core import ffi, lib
from .errors import ConfigError, DataError, DeviceError, MemoryBudgetError, ProtocolError
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


class LinkLostError(DeviceError):
    """The link itself failed: the port closed or vanished, nothing listens at the address, or no valid
    response arrived for ``timeout`` seconds. ``reason`` says which."""

    def __init__(self, message: str, url: str = "", reason: str = ""):
        super().__init__(message)
        self.url, self.reason = url, reason


class DeviceResetError(DeviceStatusError):
    """The device no longer holds the model this host loaded: it reset (or was reset) since."""


@dataclass
class TrainSummary:
    """What the device reported for one ``Device.train`` call (possibly many frames)."""
    loss_sum: int = 0          # Q16 sum of the per-sample losses the host received
    n: int = 0                 # samples trained
    steps: int = 0             # net.steps on the device after the call
    steps_taken: int = 0       # weight updates during this call
    ticks: int = 0             # device counter ticks spent training (excludes the link)
    requests: int = 0          # training frames acknowledged
    seconds: float = 0.0       # host wall time, including the link
    instructions: Optional[float] = None   # ticks converted, when the counter counts instructions
    loss_unknown: int = 0      # samples applied whose response (and so loss) was lost for good (see docs/link.md)

    @property
    def mean_loss(self) -> float:
        return self.loss_sum * LOSS_SCALE / max(self.n - self.loss_unknown, 1)

    @property
    def loss_sum_estimate(self) -> int:
        """loss_sum, scaled up to all n samples when some losses are unknown (exact when loss_unknown is 0)."""
        known = self.n - self.loss_unknown
        if self.loss_unknown == 0 or known <= 0:
            return self.loss_sum
        return int(round(self.loss_sum * self.n / known))


def _hello_stack_high_water(body: bytes) -> Optional[int]:
    """The optional u32 after HELLO's three strings: bytes of stack the firmware used since reset (painted
    stack, Cortex-M ports); None when the firmware does not report it (host port, older firmware)."""
    k = 28
    for _ in range(3):
        if k >= len(body):
            return None
        k += 1 + body[k]
    return struct.unpack_from("<I", body, k)[0] if len(body) >= k + 4 else None


def encoded_size(raw_len: int) -> int:
    """Bytes on the wire for a raw frame of raw_len bytes: COBS overhead plus the delimiter."""
    return raw_len + 1 + raw_len // 254 + 1


OVERHEAD = P.HEADER.size + 4        # header + CRC of every frame
PIPE_KEY = 0x100 | P.TRAIN          # LinkModel's round trips of pipelined TRAIN frames (by the bytes queued)
# requests that leave the device's (steps, grad_count) as they are (TRAIN: only those sent by Device.train)
_KEEPS_STATE = (P.HELLO, P.TRAIN, P.PREDICT, P.EVALUATE, P.READ_WEIGHTS, P.READ_STATS, P.SET_HPARAMS)


def check_url(url) -> str:
    """A pyserial URL checked before opening: ``socket://HOST:PORT`` needs both parts and a port in 1..65535
    (pyserial fails on ``socket://nohost`` with a TypeError)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"serial URL must be a non-empty string such as /dev/ttyACM0 or socket://127.0.0.1:5555, "
                          f"got {url!r}")
    if url.startswith("socket://"):
        rest = url[len("socket://"):].split("?", 1)[0].rstrip("/")
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{url!r} is not a socket URL: use socket://HOST:PORT with a port in 1..65535, "
                              f"e.g. socket://127.0.0.1:5555")
    return url


# --- the link model ------------------------------------------------------------------------------------------
class LinkModel:
    """What the host knows about the link, learnt from every attempt.

    ``p``: the share of bytes hit (dropped or corrupted), the maximum-likelihood value over the last attempts
    that were answered or visibly damaged (each a frame of b bytes through and back that arrived intact with
    probability (1-p)^b; the newest weigh most; timeouts are left out, as a loaded host makes them too).
    Round-trip times are fitted per message type as a + c * bytes (exponentially weighted least squares over
    first attempts, Karn's rule), with the mean absolute deviation for the timeout."""

    GRID = np.geomspace(1e-6, 0.3, 80)
    LOGQ = np.log1p(-GRID)[:, None]
    WINDOW = 96

    def __init__(self):
        self.obs: deque = deque(maxlen=self.WINDOW)
        self._p: Optional[float] = 0.0
        self.rtt: Dict[int, list] = {}
        self.attempts = 0
        self.failures = 0
        self.timeout_share = 0.5

    def record(self, nbytes: int, ok: bool, timeout: bool = False) -> None:
        """One attempt of nbytes (out and back): ok, damaged, or (timeout) no answer at all."""
        if not ok:        # the share of failures that cost a timeout (the others are reported at once)
            self.timeout_share = 0.95 * self.timeout_share + 0.05 * (1.0 if timeout else 0.0)
            if timeout:
                return
        self.obs.append((nbytes, 1.0 if ok else 0.0))
        self.attempts += 1
        self.failures += 0 if ok else 1
        self._p = None

    def damage(self) -> None:
        """A damaged frame was seen (a corrupt answer, or the device reporting a request it could not read)."""
        self._last_damage = self.attempts

    def damaged_lately(self, within: int = 200) -> bool:
        last = getattr(self, "_last_damage", None)
        return last is not None and self.attempts - last <= within

    def spurious_timeout(self, type_: int, seconds: float, pred: float) -> None:
        """A timeout that was not a loss (its answer came late): let the deviation cover ``seconds``."""
        r = self.rtt.get(type_)
        if r:
            r[5] = max(r[5], (seconds - pred) / 3)
        self.spurious = getattr(self, "spurious", 0) + 1

    @property
    def p(self) -> float:
        if self._p is None:
            if not self.obs or all(s for _, s in self.obs):
                self._p = float(self.GRID[0])
            else:
                b = np.array([o[0] for o in self.obs], dtype=np.float64)[None, :]
                s = np.array([o[1] for o in self.obs])[None, :]
                w = 0.97 ** np.arange(len(self.obs) - 1, -1, -1, dtype=np.float64)[None, :]
                lb = self.LOGQ * b
                ll = (w * (s * lb + (1 - s) * np.log(-np.expm1(np.minimum(lb, -1e-12))))).sum(1)
                self._p = float(self.GRID[int(np.argmax(ll))])
        return self._p

    def rtt_record(self, type_: int, nbytes: int, seconds: float) -> None:
        r = self.rtt.setdefault(type_, [0.0] * 6 + [0, 0, 0.0])   # sw, sx, sy, sxx, sxy, mad, count, big, t_big
        pred = self.rtt_predict(type_, nbytes)
        if nbytes >= r[7]:                     # the largest frame seen, and its time (the newest such)
            r[7], r[8] = nbytes, seconds
        elif nbytes >= 0.8 * r[7]:
            r[8] = max(r[8] * 0.9, seconds * r[7] / nbytes)
        d = 0.9
        r[0] = r[0] * d + 1
        r[1] = r[1] * d + nbytes
        r[2] = r[2] * d + seconds
        r[3] = r[3] * d + nbytes * nbytes
        r[4] = r[4] * d + nbytes * seconds
        if pred is not None:
            r[5] = 0.8 * r[5] + 0.2 * abs(seconds - pred)
        else:
            r[5] = seconds / 2
        r[6] += 1

    def rtt_predict(self, type_: int, nbytes: int) -> Optional[float]:
        r = self.rtt.get(type_)
        if not r or r[6] == 0:
            return None
        sw, sx, sy, sxx, sxy = r[:5]
        mx, my = sx / sw, sy / sw
        var = sxx / sw - mx * mx
        if r[6] >= 3 and var > 1.0:
            c = max(0.0, (sxy / sw - mx * my) / var)
            a = my - c * mx
        else:
            c = my / mx if mx > 0 else 0.0
            a = 0.0
        pred = max(a + c * nbytes, 0.3 * my, 1e-4)
        if nbytes > r[7] > 0:                  # beyond what was measured: scale the largest frame's time
            pred = max(pred, r[8] * nbytes / r[7])
        return pred

    def rto(self, type_: int, nbytes: int, cap: float, first: float = 1.0) -> float:
        """Seconds to wait for one attempt before sending it again: 1.5 round trips and three mean deviations. The
        deviation counts at most 4 round trips + 50 ms: one stall of a loaded host (a late answer widens the
        deviation, and on a bad link few clean first attempts narrow it again) must not stretch every later
        attempt to seconds, leaving a few attempts per --timeout where a resend costs one cached answer."""
        pred = self.rtt_predict(type_, nbytes)
        if pred is None:
            return min(cap, first)
        dev = min(3.0 * self.rtt[type_][5], 4.0 * pred + 0.05)
        return min(cap, max(0.004, 1.5 * pred + dev + 0.002))

    def best_count(self, type_: int, cap: int, req_bytes: Callable, resp_bytes: Callable, cap_s: float) -> int:
        """The count (1..cap) of samples or elements per request with the most expected throughput."""
        if cap <= 1:
            return 1
        p = self.p
        ns = np.arange(1, cap + 1)
        B = req_bytes(ns) + resp_bytes(ns)
        ok = np.exp(B * math.log1p(-p))
        r = self.rtt.get(type_)
        if r and r[6]:
            t = np.array([self.rtt_predict(type_, int(b)) for b in (B[0], B[-1])])
            t = t[0] + (t[1] - t[0]) * (B - B[0]) / max(B[-1] - B[0], 1)
            rto = np.minimum(cap_s, np.maximum(0.004, 1.5 * t + np.minimum(3 * r[5], 4 * t + 0.05) + 0.002))
        else:                               # no timing yet: assume the time goes with the bytes
            t = 1.0 + B / 32.0
            rto = 2 * t
        cost = t + (1 - ok) * self.timeout_share * (rto - t)
        return int(ns[int(np.argmax(ns * ok / cost))])


# --- the device --------------------------------------------------------------------------------------------------
class Device:
    """One board. ``url``: anything ``serial.serial_for_url`` opens (``socket://host:port``, ``/dev/ttyACM0``,
    ``loop://``).

    ``timeout``: the longest a request waits for a valid response, over all its retransmissions, before the link
    counts as lost (LinkLostError); each single attempt waits an adaptive time (a few round trips), at most this.
    ``retries``: None (the default) resends as often as ``timeout`` allows; a number caps the retransmissions of
    any one request (after the last one the request still waits out ``timeout`` for a late answer, then raises
    DeviceError). ``reopen``: called on ``reconnect()`` to get the URL again (for
    example after restarting an emulator). ``adaptive``: size bulk requests to the link (False: full frames).
    ``window``: at most this many training frames in flight (default: as many as the device caches answers for,
    at most ``MAX_WINDOW``; 1: stop-and-wait). ``bulk``: send training samples as streamed STAGE chunks checked
    by block CRCs (True: always, None: once the link damages frames, the default; False: never: frames sized to
    the link, stop-and-wait)."""

    MAX_WINDOW = 1     # stop-and-wait unless asked: see docs/link.md, Measurements
    BULK_MAX_P = 0.05   # bulk=None streams blocks while the share of bytes hit is at most this (0.5%, 1%: 2-3x frames)

    def __init__(self, url: str, timeout: float = 10.0, retries: Optional[int] = None,
                 connect_timeout: float = 10.0, baudrate: int = 115200, transport=None,
                 reopen: Optional[Callable[[], str]] = None, adaptive: bool = True, window: Optional[int] = None,
                 bulk: Optional[bool] = None):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
            raise ConfigError(f"retries must be a whole number >= 0 (or None: as many as the timeout allows), "
                              f"got {retries!r}")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ConfigError(f"window must be a whole number >= 1 (training frames in flight), got {window!r}")
        self.window_limit = window
        self.bulk: Optional[bool] = bulk      # streamed training chunks (None: when the link damages frames)
        self._bulk_room: Optional[int] = None
        self.url, self.timeout, self.retries = url, float(timeout), retries
        self.connect_timeout, self.baudrate, self.reopen, self.adaptive = connect_timeout, baudrate, reopen, adaptive
        self._splitter = P.FrameSplitter()
        self._pending: List[bytes] = []
        self._seq = random.randrange(1, 0xFFFF)
        self._info: Optional[P.Info] = None
        self._params: Optional[dict] = None
        self._state: Optional[Tuple[int, int]] = None    # (steps, grad_count) the device is known to be at
        self._training = False
        self.memory: Optional[dict] = None
        self.link = LinkModel()
        self.stats_retransmissions = 0
        self.stats_abandoned = 0
        self.pipe_events: Dict[str, int] = {}    # what made pipelined frames go again (docs/link.md)
        self.reconnects = 0
        if transport is not None:
            self.ser = transport
        else:
            check_url(url)
            self.ser = self._open(url, baudrate, connect_timeout)
        self._quickack = self._quickack_for(self.ser)
        self._write(b"\x00")   # ends any partial frame the device may hold

    @staticmethod
    def _open(url, baudrate, connect_timeout):
        import serial
        deadline = time.monotonic() + connect_timeout
        if url.startswith("socket://"):
            host, _, port = url[len("socket://"):].split("?", 1)[0].rstrip("/").rpartition(":")
            try:
                socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
            except socket.gaierror as e:
                raise LinkLostError(f"cannot open {url}: unknown host {host!r} ({e.strerror}); check the address",
                                    url, "unknown host") from None
        while True:
            try:
                ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=10)
                sock = getattr(ser, "_socket", None)
                if sock is not None:       # one TCP segment per frame, sent at once
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return ser
            except (serial.SerialException, OSError, ValueError, TypeError) as e:
                if time.monotonic() >= deadline:
                    hint = ("nothing accepts connections there: is the board or emulator running (edgebp flash "
                            "--board NAME prints its URL)?" if url.startswith("socket://") else
                            "is the board plugged in and the port name right (ls /dev/tty*)?")
                    raise LinkLostError(f"cannot open {url} within {connect_timeout:g} s: {e}; {hint}", url,
                                        "cannot open") from None
                time.sleep(0.05)

    @staticmethod
    def _quickack_for(ser):
        """On a Linux TCP link, a function that ACKs at once: a board that sends its answer a byte at a time
        with Nagle's algorithm on (QEMU's serial socket without nodelay=on) otherwise waits for the host's
        delayed ACK (40 ms) after every byte. Linux clears the flag after each read, so it is set again."""
        sock = getattr(ser, "_socket", None)
        if sock is None or not hasattr(socket, "TCP_QUICKACK"):
            return None

        def quickack():
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass
        quickack()
        return quickack

    def reconnect(self, timeout: Optional[float] = None) -> None:
        """Closes the link and opens it again (``reopen()`` first gives the URL, e.g. a restarted emulator's).
        The device's state is not assumed: the caller checks it (``info()``, ``read_stats()``)."""
        try:
            self.close()
        except Exception:
            pass
        if self.reopen is not None:
            self.url = self.reopen()
        self._splitter = P.FrameSplitter()
        self._pending = []
        self._info = None
        self._state = None
        self.ser = self._open(check_url(self.url), self.baudrate, self.connect_timeout if timeout is None
                              else timeout)
        self._quickack = self._quickack_for(self.ser)
        self.reconnects += 1
        self._write(b"\x00")

    # --- context manager -------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.ser is not None:
            try:
                self.ser.close()
            except Exception:
                pass
            finally:
                self.ser = None

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- bytes -----------------------------------------------------------------------------------------------
    def _lost(self, e: Exception, doing: str) -> LinkLostError:
        self.close()
        return LinkLostError(f"lost the link to {self.url} while {doing}: {e}", self.url, str(e))

    def _write(self, data: bytes) -> None:
        if self.ser is None:
            raise LinkLostError(f"the link to {self.url} is closed", self.url, "closed")
        try:
            self.ser.write(data)
            self.ser.flush()
        except Exception as e:        # pyserial SerialException, OSError (port gone), write timeout
            raise self._lost(e, "sending") from None

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are (tests use it to send garbage)."""
        self._write(data)

    def read_frame(self, timeout: float) -> Optional[bytes]:
        """The next encoded frame (no delimiter) within timeout seconds, or None."""
        deadline = time.monotonic() + timeout
        while True:
            if self._pending:
                return self._pending.pop(0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self.ser is None:
                raise LinkLostError(f"the link to {self.url} is closed", self.url, "closed")
            try:
                self.ser.timeout = min(remaining, 0.05)
                data = self.ser.read(1)
                if data:
                    self.ser.timeout = 0
                    data += self.ser.read(4096)
                    if self._quickack is not None:
                        self._quickack()
            except Exception as e:
                raise self._lost(e, "reading") from None
            if data:
                self._pending = list(self._splitter.feed(data))

    # --- requests --------------------------------------------------------------------------------------------
    def request(self, type_: int, body: bytes = b"", timeout: Optional[float] = None, seq: Optional[int] = None,
                check: bool = True, resp_size: int = 24, give_up: Optional[Callable[[int], bool]] = None,
                queued: int = 0) -> Optional[P.Frame]:
        """Sends one request and returns its response frame, retransmitting (same seq) on a timeout, a corrupt
        response or a frame-level error. ``timeout`` (default: the device's) bounds the whole exchange.
        ``give_up(attempts, not_run)``, asked after each failed attempt (``not_run`` of them reported unread by
        the device), may end it early: request then returns None (the caller finds out what the device did).
        Raises LinkLostError when no valid response arrives in time, DeviceError when ``retries`` is exceeded,
        DeviceStatusError (or MemoryBudgetError) on an error status when ``check``."""
        if self.ser is None:
            raise LinkLostError(f"the link to {self.url} is closed", self.url, "closed")
        limit = self.timeout if timeout is None else float(timeout)
        seq = self.next_seq() if seq is None else seq
        frame = P.encode_frame(P.Frame(type_, seq, 0, body))
        at_risk = len(frame) + encoded_size(OVERHEAD + resp_size)
        timed = at_risk + queued       # the first attempt's answer also waits for the ``queued`` bytes sent before
        problems: List[str] = []
        t_start = time.monotonic()
        attempt = 0
        not_run = 0          # attempts the device reported it could not read (a CRC error with our seq)
        backoff = 1.0
        self.send_raw(frame)
        t_sent = t_start
        outstanding = 1      # attempts whose answer (or error report) has not come back yet
        last_kind, t_first_of_last = "", t_start
        while True:
            rto = self.link.rto(type_, timed if attempt == 0 else at_risk, limit) * backoff
            wait = max(0.0, min(t_sent + rto, t_start + limit) - time.monotonic())
            # the device reads frames in order: while the first attempt waits behind ``queued`` frames sent before
            # it, a framing error report without our seq is nearly always one of theirs, not this request's
            resp, kind = self._await(type_, seq, wait, problems, foreign=queued > 0 and attempt == 0)
            if resp is not None:
                if type_ not in _KEEPS_STATE or (type_ == P.TRAIN and not self._training):
                    self._state = None       # steps may have changed behind train()'s back: read them again
                now = time.monotonic()
                pred = self.link.rtt_predict(type_, timed if attempt == 0 else at_risk)
                if attempt > 0 and last_kind == "timeout" and pred is not None and now - t_sent < 0.5 * pred:
                    # too soon to answer the resend: the answer to the attempt before, which only came late
                    # (a loaded host or a slow board, not the link): widen the timeout
                    self.link.spurious_timeout(type_, now - t_first_of_last, pred)
                self.link.record(at_risk, True)
                if attempt == 0:
                    self.link.rtt_record(type_, timed, now - t_sent)
                if check:
                    self._check(resp)
                return resp
            last_kind = kind
            t_first_of_last = t_sent
            if kind == "timeout":
                backoff = min(backoff * 1.25, 4.0)
                outstanding = 0
            else:
                not_run += kind == "corrupt request"
                outstanding -= 1
                if outstanding > 0 and time.monotonic() < t_start + limit:
                    continue     # an answer to an earlier attempt may still come: no resend storm
            if kind != "timeout":
                self.link.damage()
            if self.link.attempts:
                # not before the first answer (a board may be booting). Only damaged frames (a corrupt answer,
                # the device's report of a request it could not read) enter the byte-error estimate: a timeout
                # may be a slow answer on a loaded host, and byte errors nearly always show up as damage
                self.link.record(at_risk, False, kind == "timeout")
            elapsed = time.monotonic() - t_start
            name = P.MESSAGE_NAMES.get(type_, type_)
            if elapsed >= limit:
                raise LinkLostError(f"no valid response from {self.url} to a {name} request for {limit:g} s "
                                    f"({attempt + 1} attempts; {'; '.join(problems[-2:]) or 'timeout'})",
                                    self.url, "no response")
            if self.retries is not None and attempt >= self.retries:
                # the last retransmission is out: wait what is left of the timeout for a late answer
                while time.monotonic() < t_start + limit:
                    resp, kind = self._await(type_, seq, max(0.0, t_start + limit - time.monotonic()), problems)
                    if resp is not None:
                        if check:
                            self._check(resp)
                        return resp
                raise DeviceError(f"{name} request to {self.url}: no valid response after {attempt} "
                                  f"retransmissions (retries={self.retries}; {'; '.join(problems[-2:])})")
            if give_up is not None and give_up(attempt + 1, not_run):
                return None
            attempt += 1
            outstanding += 1
            self.stats_retransmissions += 1
            self.send_raw(b"\x00" + frame)
            t_sent = time.monotonic()

    def _await(self, type_, seq, timeout, problems, foreign: bool = False) -> Tuple[Optional[P.Frame], str]:
        """The answer to request ``seq`` within timeout, or None and why. ``foreign``: frame error reports that do
        not name ``seq`` belong to frames sent before it (ignored)."""
        deadline = time.monotonic() + timeout
        while True:
            chunk = self.read_frame(max(0.0, deadline - time.monotonic()))
            if chunk is None:
                problems.append(f"timeout after {timeout:.3g} s")
                return None, "timeout"
            try:
                f = P.decode_frame(chunk)
            except ProtocolError as e:
                problems.append(f"corrupt response: {e}")
                return None, "corrupt"
            if f.type == P.MSG_ERROR:
                if f.status in P.FRAME_ERRORS and (f.seq == seq or (f.status != P.C["EBP_PERR_CRC"] and not foreign)):
                    problems.append(f"device could not read a request: {P.status_message(f.status)}")
                    return None, "corrupt request" if f.seq == seq else "frame"
                continue
            if f.seq != seq or f.type != (type_ | P.RESPONSE):
                continue    # a late answer to an earlier attempt or request
            return f, "ok"

    def _check(self, f: P.Frame) -> None:
        if f.status == 0:
            return
        what = P.MESSAGE_NAMES.get(f.type & ~P.RESPONSE, str(f.type))
        msg = f"device refused {what}: {P.status_message(f.status)} (status {f.status})"
        if f.status not in P.CORE_STATUS and -100 < f.status < 0:   # issue 14: a core status newer than the table
            msg = f"device refused {what}: {ffi.string(lib.ebp_status_str(f.status)).decode()} (status {f.status})"
        if f.status == P.C["EBP_PERR_NO_MEMORY"] and len(f.body) >= 8:
            needed, arena = struct.unpack_from("<II", f.body)
            raise DeviceMemoryError(f.status, f"the model needs {needed} bytes but the device arena has {arena}; "
                                              f"use fewer or narrower layers, or a board with more RAM",
                                    needed, arena)
        if f.status == P.C["EBP_PERR_VERSION"] and f.body:
            msg += f": device speaks protocol {f.body[0]}, host {P.PROTO_VERSION}"
        if f.status == P.C["EBP_PERR_NO_MODEL"] and self._params is not None:
            self._params = None
            self._state = None
            raise DeviceResetError(f.status, f"the device at {self.url} no longer holds the model this host "
                                             f"loaded: it reset (power, watchdog, reset button or a RESET "
                                             f"request) since; its weights are lost")
        raise DeviceStatusError(f.status, msg)

    # --- requests --------------------------------------------------------------------------------------------
    def info(self) -> P.Info:
        f = self.request(P.HELLO, resp_size=120)
        info = P.unpack_hello(f.body)
        if not hasattr(info, "session_id"):           # protocol 1: the optional u32 after the strings
            info.stack_high_water = _hello_stack_high_water(f.body)
        if info.protocol != P.PROTO_VERSION:
            raise ProtocolError(f"device speaks protocol {info.protocol}, this host {P.PROTO_VERSION}; "
                                f"rebuild the firmware or update edgebp")
        self._info = info
        return info

    @property
    def board_info(self) -> P.Info:
        return self._info if self._info is not None else self.info()

    @property
    def max_body(self) -> int:
        """The largest frame body both sides take: the protocol's, or less where the device's buffers are
        smaller (HELLO reports it; an 8-bit board with 2 KiB of RAM takes a few hundred bytes)."""
        return min(P.MAX_BODY, self.board_info.max_body)

    def load_model(self, net_or_params: Union[dict, "object"]) -> dict:
        """Builds a model on the device from ``FixedNet`` (or its ``core_params()``); returns its memory report.
        Raises MemoryBudgetError (with .needed and .arena) if it does not fit; the previous model then stays."""
        params = net_or_params if isinstance(net_or_params, dict) else net_or_params.core_params()
        f = self.request(P.LOAD, P.pack_load(params), resp_size=32)
        self._params = dict(params)
        self._state = (0, 0)
        self._bulk_room = None
        self.memory = P.unpack_memory(f.body)
        return self.memory

    @property
    def model_params(self) -> Optional[dict]:
        """The core_params of the model this host loaded (None if none, or if the device reset since)."""
        return None if self._params is None else dict(self._params)

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
        """Samples one TRAIN (or EVALUATE) frame carries; 1 when a sample is larger than a frame (it is then
        staged in parts, see ``staged``)."""
        n_in, n_out = self._shape()
        per = 2 * (n_in + (n_out if with_targets else 0))
        return max(1, min(0xFFFF, (self.max_body - 8) // per))

    def staged(self, with_targets: bool = True) -> bool:
        """True when one sample (inputs, and targets) is larger than a frame body: each sample then travels as
        STAGE requests and one TRAIN/PREDICT/EVALUATE that carries its tail (docs/protocol.md, STAGE)."""
        n_in, n_out = self._shape()
        if 2 * (n_in + (n_out if with_targets else 0)) <= self.max_body - 8:
            return False
        self._stage_room(n_in + n_out)
        return True

    def _stage_room(self, elements: int) -> None:
        """ConfigError unless the arena past the model holds a staged sample of ``elements`` int16 values."""
        if self.memory is None or "total" not in self.memory:
            return
        arena = self.memory.get("arena") or self.board_info.arena
        room = (arena - ((self.memory["total"] + 7) & ~7)) // 2
        if elements > room:
            n_in, n_out = self._shape()
            raise ConfigError(f"one sample ({n_in} inputs and {n_out} targets, {2 * elements} bytes) does not fit a "
                              f"frame of this device ({self.max_body - 8} bytes of samples), and the model leaves "
                              f"only {max(room, 0) * 2} bytes of the {arena}-byte arena free to stage it in parts: "
                              f"use a smaller model, shorter windows or fewer channels, or a board with more RAM")

    def _send_staged(self, kind: int, sample, batch: int = 1, flags: int = 0, timeout: Optional[float] = None,
                     resp_size: int = 24) -> P.Frame:
        """One sample larger than a frame: STAGE requests for its head (idempotent: a chunk written twice is
        written once), then ``kind`` (TRAIN, PREDICT, EVALUATE) with EBP_TRAIN_STAGED carrying its tail; that
        request runs once (its answer is cached like any other)."""
        sample = np.ascontiguousarray(sample, dtype=np.int16).ravel()
        e = len(sample)
        hdr = 8 if kind == P.TRAIN else 4
        req = lambda k: encoded_size(OVERHEAD + 8 + 2 * k)        # noqa: E731
        resp = lambda k: encoded_size(OVERHEAD + 8) + 0 * k       # noqa: E731
        cap = (self.max_body - 8) // 2         # full chunks until frames get damaged (not on timing alone)
        chunk = self._count(P.STAGE, cap, req, resp) if self.link.damaged_lately() else cap
        tail = min(e, (self.max_body - hdr) // 2, chunk)
        off = 0
        while off < e - tail:
            k = min(e - tail - off, chunk)
            self.request(P.STAGE, P.pack_stage(off, sample[off:off + k]), timeout=timeout, resp_size=8)
            off += k
        return self.request(kind, P.pack_staged(kind, sample[e - tail:], batch, flags), timeout=timeout,
                            resp_size=resp_size)

    def _count(self, type_: int, cap: int, req_bytes: Callable, resp_bytes: Callable) -> int:
        if not self.adaptive:
            return cap
        return self.link.best_count(type_, cap, req_bytes, resp_bytes, self.timeout)

    def _shrink(self, type_: int, n: int, req_bytes: Callable, resp_bytes: Callable, side_effects: bool = False
                ) -> Callable[[int, int], bool]:
        """give_up for a request of n samples: true once the link model wants at most half as many. A request
        with side effects (TRAIN) is given up only while it most likely never ran: each attempt the device did
        not report unread may have run with its answer lost, which has probability about
        qr (1 - qs) / (1 - qr qs) under the link model (qr, qs: request and answer arrive intact); given up
        when the sum is below 1/1000 (the caller then asks the device, so a frame still never runs twice). Not
        before the second failure, unless the device reported every attempt unread (a CRC error report names the
        request: the link damages frames this size)."""
        def give_up(failed: int, not_run: int) -> bool:
            if not self.adaptive or n <= 1 or failed < (1 if not_run == failed else 2):
                return False
            if self.link.best_count(type_, n, req_bytes, resp_bytes, self.timeout) > n // 2:
                return False
            if side_effects and failed > not_run:
                lq = math.log1p(-self.link.p)
                qr, qs = math.exp(float(req_bytes(n)) * lq), math.exp(float(resp_bytes(n)) * lq)
                f = min(failed - not_run, 400)
                ran = sum((1 - qr) ** i * qr * (1 - qs) * (1 - qr * qs) ** (f - 1 - i) for i in range(f))
                return ran / max(1e-300, (1 - qr) ** f + ran) < 1e-3
            return True
        return give_up

    def device_state(self) -> Tuple[int, int]:
        """(steps, grad_count) read from the device with an empty TRAIN request (it trains nothing; its
        24-byte answer crosses a bad link more easily than READ_STATS's). DeviceResetError if the model is gone."""
        self._shape()
        r = P.unpack_train(self.request(P.TRAIN, struct.pack("<HHI", 0, 0, 1), resp_size=24).body)
        self._state = (r.steps, r.grad_count)
        return self._state

    def train(self, Xq, Tq, batch: int, timeout: Optional[float] = None, start: int = 0,
              on_progress: Optional[Callable[[int, TrainSummary], None]] = None) -> TrainSummary:
        """Trains on the rows in order, exactly like ``FixedNet.train_q(Xq, Tq, batch)``: a step after every
        ``batch`` rows and after the last. Sent in chunks of whole batches sized to the link, or, when one batch
        does not fit a frame the link carries, accumulated over several frames and stepped once.
        ``start`` (a multiple of batch) skips rows already trained; ``on_progress(rows_done, summary)`` is
        called after each acknowledged frame that ends on a batch boundary."""
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
        if start % batch and start < n:
            raise ConfigError(f"start {start} is not a multiple of the batch size {batch}")
        self._training = True
        try:
            return self._train(Xq, Tq, batch, n, timeout, start, on_progress, n_in, n_out)
        finally:
            self._training = False

    @property
    def window(self) -> int:
        """Training frames this host keeps in flight: the device's answer cache (HELLO), at most MAX_WINDOW
        or the ``window`` given."""
        w = min(self.board_info.cache_entries, self.MAX_WINDOW if self.window_limit is None else self.window_limit)
        return max(1, w)

    def _train(self, Xq, Tq, batch, n, timeout, start, on_progress, n_in, n_out) -> TrainSummary:
        staged = self.staged()
        cap = self.samples_per_frame()
        per = 2 * (n_in + n_out)
        req = lambda k: encoded_size(OVERHEAD + 8 + per * k)      # noqa: E731
        resp = lambda k: encoded_size(OVERHEAD + 24) + 0 * k     # noqa: E731
        out = TrainSummary()
        t0 = time.monotonic()
        if self._state is None:
            self.device_state()
        if self._state[1] and start == 0:
            raise DeviceError(f"the device holds {self._state[1]} accumulated samples of a batch that was not "
                              f"finished (an interrupted train call); load the model again, or train with resume")
        steps0 = self._state[0]
        acc, stp = P.C["EBP_TRAIN_ACCUMULATE"], P.C["EBP_TRAIN_STEP"]
        lo = start
        if not staged and self.window > 1 and start < n and not self._bulk_ok(cap, n_in + n_out):
            lo = self._pipeline(Xq, Tq, batch, n, timeout, start, on_progress, cap, req, resp, out,
                                stop=lambda: self._bulk_ok(cap, n_in + n_out))

        def send(lo, hi, flags, after) -> bool:
            """One frame; False if it was given up (not applied: sent again smaller)."""
            k = hi - lo
            before = self._state
            if staged:
                f = self._send_staged(P.TRAIN, np.concatenate([Xq[lo], Tq[lo]]), batch, flags, timeout)
            elif bulk:
                f = self._send_bulk(Xq[lo:hi], Tq[lo:hi], batch, flags, timeout)
            else:
                f = self.request(P.TRAIN, P.pack_train(Xq[lo:hi], Tq[lo:hi], batch, flags), timeout=timeout,
                                 give_up=self._shrink(P.TRAIN, k, req, resp, side_effects=True))
            if f is None and bulk:            # every TRAIN was refused (blocks missing): nothing trained
                self.stats_abandoned += 1
                return False
            if f is None:
                now = self.device_state()     # did the device apply it?
                if now == before:
                    self.stats_abandoned += 1
                    return False
                if now != after:
                    raise DeviceError(f"the device is at step {now[0]} with {now[1]} samples accumulated, "
                                      f"expected {before} or {after}: it was used by someone else meanwhile")
                out.loss_unknown += k         # applied, response lost for good
            else:
                r = P.unpack_train(f.body)
                if r.n != k:
                    raise ProtocolError(f"device trained {r.n} samples, {k} sent")
                if (r.steps, r.grad_count) != after:
                    raise DeviceError(f"the device reports step {r.steps} with {r.grad_count} samples "
                                      f"accumulated after a frame, expected {after}")
                out.loss_sum += r.loss_sum
                out.ticks += r.ticks
            self._state = after
            out.requests += 1
            out.n += k
            return True

        while lo < n:
            s, g = self._state
            bulk = not staged and self._bulk_ok(cap, n_in + n_out)
            best = self._bulk_count(n_in + n_out) if bulk else self._count(P.TRAIN, cap, req, resp)
            if batch <= best and g == 0:     # whole batches in one frame: the same integers as one call
                hi = min(n, lo + (best // batch) * batch)
                if send(lo, hi, 0, (s + -(-(hi - lo) // batch), 0)):
                    lo = hi
                    if on_progress:
                        on_progress(lo, out)
            else:                             # one batch over several frames, stepped by the last
                blo = lo - g
                bhi = min(n, blo + batch)
                hi = min(bhi, lo + best)
                last = hi == bhi
                if send(lo, hi, acc | (stp if last else 0), (s + 1, 0) if last else (s, g + hi - lo)):
                    lo = hi
                    if last and on_progress:
                        on_progress(lo, out)
        return self._summary(out, n, start, steps0, t0)

    def _bulk_ok(self, cap: int, per: int) -> bool:
        """Whether training samples go as streamed CHUNK blocks (``_send_bulk``): when the link damages frames (a
        clean link takes whole TRAIN frames) and the device stages (HELLO's features; room past the model)."""
        if not self.adaptive or self.bulk is False or (self.bulk is None and not self.link.damaged_lately()):
            return False
        if self.bulk is None and not LinkModel.GRID[0] < self.link.p <= self.BULK_MAX_P:
            return False     # no byte error measured yet, or so bad that few blocks arrive whole: frames
        if not self.board_info.has("STAGE"):
            return False
        if self._bulk_room is None:
            arena = (self.memory or {}).get("arena") or self.board_info.arena
            self._bulk_room = (arena - (((self.memory or {}).get("total", arena)) + 7 & ~7)) // 2
        return self._bulk_room >= cap * per

    def _bulk_block(self, elements: int = 1) -> int:
        """Elements per streamed CHUNK: the fewest bytes sent per element that arrives, (2b + 18) bytes a chunk
        arriving whole with probability (1-p)^(2b + 18); at most 64 chunks for ``elements``."""
        cap = (self.max_body - 4) // 2
        lo = max(1, -(-elements // 64))
        if lo >= cap:
            return cap
        b = np.arange(lo, cap + 1)
        size = encoded_size(OVERHEAD + 4) + 2 * b
        cost = size / (b * np.exp(size * math.log1p(-self.link.p)))
        return int(b[int(np.argmin(cost))])

    def _bulk_count(self, per: int) -> int:
        """Samples per streamed TRAIN: 64 blocks of the best size for the link, as many as the staging area holds
        (one TRAIN and its answer per 64 blocks, rather than per frame)."""
        return max(1, min(0xFFFF, self._bulk_room // per, 64 * self._bulk_block() // per))

    def _send_bulk(self, X, T, batch: int, flags: int, timeout: Optional[float]) -> Optional[P.Frame]:
        """n samples as CHUNK blocks (streamed, not answered) tagged with a fresh seq, then a TRAIN with
        EBP_TRAIN_BLOCKS naming the tag: the device trains once every block has arrived whole, else it answers
        which are missing, and only those go again (selective repeat; blocks are idempotent). The TRAIN itself
        runs once: its answer is cached, and it consumes the blocks. None (nothing trained) when the blocks
        turn out far too large for the link: the caller sends the samples again, in fewer per TRAIN."""
        data = np.concatenate([np.ascontiguousarray(X).ravel(), np.ascontiguousarray(T).ravel()]).astype(np.int16)
        block = self._bulk_block(len(data))
        n_blocks = -(-len(data) // block)
        tag = self.next_seq()
        todo = list(range(n_blocks))
        body = P.pack_train_blocks(len(X), batch, flags, tag, block)
        t0 = time.monotonic()
        limit = self.timeout if timeout is None else float(timeout)
        left = len(todo)
        while True:
            queued = 0
            for k in todo:
                frame = P.encode_frame(P.Frame(P.CHUNK, tag, 0, P.pack_chunk(k, block,
                                                                             data[k * block:(k + 1) * block])))
                self.send_raw(frame)
                queued += len(frame)
            f = self.request(P.TRAIN, body, timeout=timeout, check=False, resp_size=24, queued=queued)
            if f.status != P.C["EBP_PERR_DATA_CRC"]:
                self._check(f)
                return f
            lo_mask, hi_mask = struct.unpack_from("<II", f.body)
            mask = lo_mask | (hi_mask << 32)
            for k in todo:
                self.link.record(encoded_size(OVERHEAD + 4 + 2 * block), not mask >> k & 1)
            todo = [k for k in range(n_blocks) if mask >> k & 1]
            self.stats_retransmissions += len(todo)
            self.link.damage()
            if 2 * self._bulk_block() < block:
                # the link, as now measured, wants blocks less than half this size: nothing was trained (the
                # device refused the TRAIN), so the caller sends these samples again, tiled to the link
                return None
            if len(todo) < left:                # progress: fewer blocks to send again
                left, t0 = len(todo), time.monotonic()
            elif time.monotonic() - t0 > limit:
                raise LinkLostError(f"the device at {self.url} did not get {len(todo)} streamed blocks whole for "
                                    f"{limit:g} s", self.url, "no response")

    def _summary(self, out: TrainSummary, n, start, steps0, t0) -> TrainSummary:
        out.n = n - start
        out.steps = self._state[0]
        out.steps_taken = out.steps - steps0
        out.seconds = time.monotonic() - t0
        info = self.board_info
        if info.tick_unit == P.C["EBP_TICK_INSTRUCTIONS"]:
            out.instructions = info.ticks_to(out.ticks)
        return out

    def _pipe_count(self, cap: int, req: Callable, resp: Callable, window: int) -> int:
        """Samples per pipelined TRAIN frame: the most samples per request byte, counting that a damaged frame
        costs itself and the frames sent behind it (the device refuses them until it is resent)."""
        if not self.adaptive or cap <= 1:
            return cap
        lq = math.log1p(-self.link.p)
        ns = np.arange(1, cap + 1)
        b = req(ns)
        qr = np.exp(b * lq)
        q = qr * np.exp(resp(ns) * lq)
        g = ns * q / (b * (1 + (1 - qr) * (window - 1)))
        return int(ns[int(np.argmax(g))])

    def _pipe_resync(self, flights, out: TrainSummary, on_progress) -> int:
        """Ends a window: the device's (steps, grad_count) say exactly which frames in flight ran (each frame's
        state after it is distinct); those count as trained (an answer not received: loss unknown), the others
        are dropped (the empty TRAIN that asks moves the device's expected seq, so a late copy of them is
        refused). Returns the rows done."""
        now = self.device_state()
        done = flights[0][0]
        if now != self._state_before(flights):
            k = next((i for i, f in enumerate(flights) if f[2] == now), None)
            if k is None:
                raise DeviceError(f"the device is at {now}, which no training frame in flight leads to: it was "
                                  f"used by someone else meanwhile")
            for f in list(flights)[:k + 1]:
                if f[7] is None or f[7] == "unknown":
                    out.loss_unknown += f[1] - f[0]
                else:
                    out.loss_sum += f[7].loss_sum
                    out.ticks += f[7].ticks
                out.requests += 1
                if on_progress and f[2][1] == 0:
                    self._state = f[2]
                    on_progress(f[1], out)
            done = flights[k][1]
        self._state = now
        flights.clear()
        return done

    @staticmethod
    def _state_before(flights):
        return flights[0][10]

    def _pipeline(self, Xq, Tq, batch, n, timeout, start, on_progress, cap, req, resp, out,
                  stop: Callable[[], bool] = lambda: False) -> int:
        """Training frames with several in flight (EBP_TRAIN_IN_ORDER, consecutive seqs). The device runs such a
        frame only right after the one before it and answers a retransmission from its cache of the last
        ``window`` answers, so every frame is applied once and in order (docs/link.md, Pipelining):

        - an answer for frame i means frames before i were applied too: those whose answers were lost are sent
          again at once (their answers come from the cache);
        - EBP_PERR_SEQUENCE for frame i with ``expected`` e: frames before e were applied, e..i were not; those
          not sent again since are resent in order;
        - a CRC error report for frame i: it is resent;
        - no answer at all for a few round trips: every unanswered frame is resent, in order.
        Gives up (LinkLostError) when no frame has been answered for ``timeout`` seconds. Plans no new frame
        once ``stop()`` (the link turned bad: streamed chunks do better) or a batch is half accumulated at the
        end; returns the rows done."""
        W = self.window
        limit = self.timeout if timeout is None else float(timeout)
        acc, stp, io = P.C["EBP_TRAIN_ACCUMULATE"], P.C["EBP_TRAIN_STEP"], P.IN_ORDER
        seq_err = P.C["EBP_PERR_SEQUENCE"]
        # [lo, hi, after, seq, frame, last_sent, copies, result, at_risk bytes, bytes queued at the first send,
        #  state before it, retransmissions so far at its first send]
        flights: deque = deque()
        lo_plan, st_plan = start, self._state
        last_progress = time.monotonic()
        backoff = 1.0
        problems: List[str] = []

        def ev(name):
            self.pipe_events[name] = self.pipe_events.get(name, 0) + 1

        def send(fl, again=False):
            if again:
                fl[6] += 1
                self.stats_retransmissions += 1
                if self.retries is not None and fl[6] - 1 > self.retries:
                    raise DeviceError(f"train request to {self.url}: no valid response after {self.retries} "
                                      f"retransmissions (retries={self.retries}; {'; '.join(problems[-2:])})")
            self.send_raw((b"\x00" if again else b"") + fl[4])
            fl[5] = time.monotonic()

        def index(seq) -> int:
            k = (seq - flights[0][3]) & 0xFFFF if flights else -1
            return k if 0 <= k < len(flights) else -1

        halt = False
        while flights or (lo_plan < n and not halt):
            while len(flights) < W and lo_plan < n and not halt:          # fill the window
                if st_plan[1] == 0 and stop():
                    halt = True
                    break
                s, g = st_plan
                best = self._pipe_count(cap, req, resp, W)
                if batch <= best and g == 0:
                    hi = min(n, lo_plan + (best // batch) * batch)
                    flags, after = 0, (s + -(-(hi - lo_plan) // batch), 0)
                else:
                    bhi = min(n, lo_plan - g + batch)
                    hi = min(bhi, lo_plan + best)
                    last = hi == bhi
                    flags = acc | (stp if last else 0)
                    after = (s + 1, 0) if last else (s, g + hi - lo_plan)
                seq = self.next_seq()
                body = P.pack_train(Xq[lo_plan:hi], Tq[lo_plan:hi], batch, flags | io)
                frame = P.encode_frame(P.Frame(P.TRAIN, seq, 0, body))
                fl = [lo_plan, hi, after, seq, frame, 0.0, 1, None, len(frame) + encoded_size(OVERHEAD + 24), 0,
                      st_plan, self.stats_retransmissions]
                flights.append(fl)
                fl[9] = sum(f[8] for f in flights if f[7] is None)   # bytes queued up to its answer
                send(fl)
                lo_plan, st_plan = hi, after
            pending = [f for f in flights if f[7] is None]
            if any(f[6] >= 4 and f[1] - f[0] > 1 and self._pipe_count(cap, req, resp, W) <= (f[1] - f[0]) // 2
                   for f in pending):
                ev("resync")      # a frame planned too large for the link as it is now: find out what ran
                return self._pipe_resync(flights, out, on_progress)
            if not pending:
                wait = 0.0
            else:
                key = PIPE_KEY if self.link.rtt_predict(PIPE_KEY, 1) is not None else P.TRAIN
                rto = self.link.rto(key, sum(f[8] for f in pending), limit) * backoff
                wait = max(0.0, min(max(f[5] for f in pending) + rto, last_progress + limit) - time.monotonic())
            chunk = self.read_frame(wait) if pending else None
            now = time.monotonic()
            if chunk is None and pending:                     # nothing for a few round trips
                if now - last_progress >= limit:
                    raise LinkLostError(f"no valid response from {self.url} to a train request for {limit:g} s "
                                        f"({len(pending)} frames in flight, of {pending[0][1] - pending[0][0]} "
                                        f"samples, sent {pending[0][6]} times, each waiting up to {rto:.3g} s; "
                                        f"{'; '.join(problems[-2:]) or 'timeout'})", self.url, "no response")
                problems.append("timeout")
                ev("timeout")
                if self.link.attempts:
                    self.link.record(pending[0][8], False, True)
                backoff = min(backoff * 1.25, 2.0)
                for f in pending:
                    send(f, again=True)
                continue
            if chunk is not None:
                try:
                    fr = P.decode_frame(chunk)
                except ProtocolError as e:
                    problems.append(f"corrupt response: {e}")
                    ev("corrupt answer")
                    self.link.damage()
                    self.link.record(encoded_size(OVERHEAD + 24), False)
                    continue
                if fr.type == P.MSG_ERROR:
                    i = index(fr.seq)
                    if fr.status == P.C["EBP_PERR_CRC"] and i >= 0 and flights[i][7] is None:
                        problems.append(f"device could not read a request: {P.status_message(fr.status)}")
                        ev("unreadable request")
                        self.link.damage()
                        self.link.record(flights[i][8], False)
                        send(flights[i], again=True)
                    continue
                i = index(fr.seq)
                if fr.type != (P.TRAIN | P.RESPONSE) or i < 0 or flights[i][7] is not None:
                    continue                                  # a late or repeated answer
                fl = flights[i]
                if fr.status == seq_err:
                    ev("out of order")
                    (e,) = struct.unpack_from("<H", fr.body) if len(fr.body) >= 2 else (None,)
                    j = index(e) if e is not None else -1
                    if j < 0 and e is not None and (e - flights[0][3]) & 0xFFFF == len(flights):
                        j = len(flights)
                    if j < 0 or j > i:
                        if j > i:                             # it ran, its cached answer is gone: loss unknown
                            for f in list(flights)[:i + 1]:
                                if f[7] is None:
                                    f[7] = "unknown"
                        else:
                            raise DeviceError(f"the device expects training frame {e}, which this host did not "
                                              f"send (frames {flights[0][3]}..{flights[-1][3]} in flight): it was "
                                              f"used by someone else meanwhile")
                    else:
                        for f in list(flights)[:j]:           # applied; fetch a lost answer from the cache
                            if f[7] is None and f[5] <= fl[5]:
                                send(f, again=True)
                        for f in list(flights)[j:i + 1]:
                            if f[7] is None and f[5] <= fl[5]:
                                send(f, again=True)
                    continue
                self._check(fr)
                r = P.unpack_train(fr.body)
                if r.n != fl[1] - fl[0]:
                    raise ProtocolError(f"device trained {r.n} samples, {fl[1] - fl[0]} sent")
                if (r.steps, r.grad_count) != fl[2]:
                    raise DeviceError(f"the device reports step {r.steps} with {r.grad_count} samples "
                                      f"accumulated after a frame, expected {fl[2]}")
                fl[7] = r
                self.link.record(fl[8], True)
                if fl[6] == 1:
                    # Karn: first copies only, whose time covers the frames queued before them
                    self.link.rtt_record(PIPE_KEY, fl[9], now - fl[5])
                backoff = 1.0
                last_progress = now
                for f in list(flights)[:i]:                   # applied before it: their answers were lost
                    if f[7] is None and f[5] <= fl[5]:
                        ev("answer lost")
                        send(f, again=True)
            while flights and flights[0][7] is not None:      # retire answered frames in order
                f = flights.popleft()
                if f[7] == "unknown":
                    out.loss_unknown += f[1] - f[0]
                else:
                    out.loss_sum += f[7].loss_sum
                    out.ticks += f[7].ticks
                out.requests += 1
                self._state = f[2]
                if on_progress and f[2][1] == 0:
                    on_progress(f[1], out)
        return lo_plan

    def _chunks(self, type_: int, n: int, cap: int, req, resp, run) -> None:
        """Read-only bulk requests: run(lo, hi) for chunks sized to the link; a chunk that keeps failing is
        given up and sent again smaller (running it twice changes nothing on the device)."""
        lo = 0
        while lo < n:
            k = min(n - lo, self._count(type_, cap, req, resp))
            if run(lo, lo + k, self._shrink(type_, k, req, resp)):
                lo += k
            else:
                self.stats_abandoned += 1

    def predict(self, Xq, timeout: Optional[float] = None) -> np.ndarray:
        n_in, n_out = self._shape()
        Xq = self._rows(Xq, n_in, "inputs")
        mb = self.max_body
        parts = [np.zeros((0, n_out), np.int16)]
        if 2 * n_in > mb - 4:                     # a sample larger than a frame: staged, one at a time
            self._stage_room(n_in)
            for x in Xq:
                f = self._send_staged(P.PREDICT, x, timeout=timeout, resp_size=8 + 2 * n_out)
                parts.append(P.unpack_predict(f.body)[0])
            return np.concatenate(parts)
        cap = max(1, min((mb - 4) // (2 * n_in), (mb - 8) // (2 * n_out)))
        req = lambda k: encoded_size(OVERHEAD + 4 + 2 * n_in * k)     # noqa: E731
        resp = lambda k: encoded_size(OVERHEAD + 8 + 2 * n_out * k)   # noqa: E731

        def run(lo, hi, give_up):
            f = self.request(P.PREDICT, P.pack_predict(Xq[lo:hi]), timeout=timeout, resp_size=8 + 2 * n_out *
                             (hi - lo), give_up=give_up)
            if f is not None:
                parts.append(P.unpack_predict(f.body)[0])
            return f is not None
        self._chunks(P.PREDICT, len(Xq), cap, req, resp, run)
        return np.concatenate(parts)

    def evaluate(self, Xq, Tq, timeout: Optional[float] = None) -> Tuple[int, int]:
        """(Q16 loss sum, correctly classified count), like ``FixedNet.evaluate_q``."""
        n_in, n_out = self._shape()
        Xq, Tq = self._rows(Xq, n_in, "inputs"), self._rows(Tq, n_out, "targets")
        tot = [0, 0]
        if 2 * (n_in + n_out) > self.max_body - 4:     # a sample larger than a frame: staged, one at a time
            self._stage_room(n_in + n_out)
            for x, t in zip(Xq, Tq):
                l, c, _ = P.unpack_evaluate(self._send_staged(P.EVALUATE, np.concatenate([x, t]), timeout=timeout,
                                                              resp_size=16).body)
                tot[0] += l
                tot[1] += c
            return tot[0], tot[1]
        cap = self.samples_per_frame()
        req = lambda k: encoded_size(OVERHEAD + 4 + 2 * (n_in + n_out) * k)   # noqa: E731
        resp = lambda k: encoded_size(OVERHEAD + 16) + 0 * k                  # noqa: E731

        def run(lo, hi, give_up):
            f = self.request(P.EVALUATE, P.pack_evaluate(Xq[lo:hi], Tq[lo:hi]), timeout=timeout, resp_size=16,
                             give_up=give_up)
            if f is not None:
                l, c, _ = P.unpack_evaluate(f.body)
                tot[0] += l
                tot[1] += c
            return f is not None
        self._chunks(P.EVALUATE, len(Xq), cap, req, resp, run)
        return tot[0], tot[1]

    def read_layer(self, layer: int, n_elements: Optional[int] = None) -> P.WeightChunk:
        """Weights and biases of one layer in ``.data`` = concatenation, plus its formats. ``n_elements``: the
        layer's weights plus biases (a conv1d or pooling layer's, from its spec); default a dense layer's."""
        first = P.unpack_read_weights(self.request(P.READ_WEIGHTS, P.pack_read_weights(layer, 0, 0),
                                                   resp_size=P.WEIGHTS_HDR.size).body)
        total = first.n_out * first.n_in + first.n_out if n_elements is None else n_elements
        cap = (self.max_body - P.WEIGHTS_HDR.size) // 2
        chunks: List[np.ndarray] = []
        req = lambda k: encoded_size(OVERHEAD + 8) + 0 * k                    # noqa: E731
        resp = lambda k: encoded_size(OVERHEAD + P.WEIGHTS_HDR.size + 2 * k)  # noqa: E731

        def run(lo, hi, give_up):
            f = self.request(P.READ_WEIGHTS, P.pack_read_weights(layer, lo, hi - lo),
                             resp_size=P.WEIGHTS_HDR.size + 2 * (hi - lo), give_up=give_up)
            if f is None:
                return False
            c = P.unpack_read_weights(f.body)
            if len(c.data) != hi - lo:
                raise ProtocolError(f"device returned {len(c.data)} weights of layer {layer}, asked {hi - lo}")
            chunks.append(c.data)
            return True
        self._chunks(P.READ_WEIGHTS, total, cap, req, resp, run)
        first.data = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return first

    def read_weights(self, shapes=None) -> List[Tuple[np.ndarray, np.ndarray]]:
        """[(W int16 (n_out, n_in), b int16 (n_out,)), ...] like ``FixedNet.get_int_weights()``. ``shapes``:
        ``NetSpec.param_shapes()`` (needed for conv1d and pooling layers; default: every layer dense)."""
        out, l, nl = [], 0, 1
        while l < nl:
            if shapes is not None:
                ws, bs = shapes[l]
                nw = int(np.prod(ws))
                c = self.read_layer(l, nw + int(np.prod(bs)))
                out.append((c.data[:nw].reshape(ws).copy(), c.data[nw:].copy()))
            else:
                c = self.read_layer(l)
                nw = c.n_out * c.n_in
                out.append((c.data[:nw].reshape(c.n_out, c.n_in).copy(), c.data[nw:].copy()))
            nl = c.n_layers
            l += 1
        return out

    def read_formats(self) -> List[dict]:
        """Per layer: n_in, n_out, act, w_frac, a_frac as the device holds them."""
        out, l, nl = [], 0, 1
        while l < nl:
            c = P.unpack_read_weights(self.request(P.READ_WEIGHTS, P.pack_read_weights(l, 0, 0),
                                                   resp_size=P.WEIGHTS_HDR.size).body)
            nl = c.n_layers
            out.append(dict(n_in=c.n_in, n_out=c.n_out, act=c.act, w_frac=c.w_frac, a_frac=c.a_frac))
            l += 1
        return out

    def read_stats(self, clear: bool = False) -> dict:
        """{steps, grad_count, layers: [{sat_out, ..., updates, zero_updates, delta_exp, g_exp}, ...]}"""
        nl = len(self._params["layers"]) if self._params else 4
        s = P.unpack_stats(self.request(P.READ_STATS, bytes([1 if clear else 0]), resp_size=12 + 32 * nl).body)
        if clear and self._state is not None:
            self._state = (0, self._state[1])
        return s

    def set_hparams(self, lr: Optional[float] = None, momentum: float = 0.0, *, lr_m: Optional[int] = None,
                    lr_e: Optional[int] = None, momentum_q15: Optional[int] = None) -> None:
        """Learning rate and momentum, as floats (quantized like TrainConfig) or as the core's integers."""
        if lr is not None:
            from .config import TrainConfig
            c = TrainConfig(optimizer="momentum" if momentum else "sgd", lr=lr, momentum=momentum)
            c.validate()
            lr_m, lr_e = c.quantized_lr()
            momentum_q15 = c.quantized_momentum()
        if lr_m is None or lr_e is None:
            raise ProtocolError("set_hparams needs lr, or lr_m and lr_e")
        self.request(P.SET_HPARAMS, P.pack_hparams(lr_m, lr_e, momentum_q15 or 0), resp_size=0)
        if self._params is not None:
            self._params.update(lr_m=lr_m, lr_e=lr_e, momentum_q15=momentum_q15 or 0)

    def reset(self, hard: bool = False) -> None:
        """Drops the model (``hard``: also resets the MCU)."""
        self.request(P.RESET, bytes([1 if hard else 0]), resp_size=0)
        self._params = None
        self._state = None
        self.memory = None
        if hard:
            self._info = None


# --- an emulated board this process runs, restartable ----------------------------------------------------------
class Emulator:
    """An emulated board (QEMU, or the native host port) run by this process on a fixed TCP port, so that it can
    be killed and started again at the same URL (what ``--resume`` does when the emulator died).

    Wraps ``edgebp.boards``; QEMU's serial socket gets ``nodelay=on`` (without it, Nagle's algorithm and the host's
    delayed ACKs cost about 40 ms per request)."""

    def __init__(self, board: str = "qemu-mps2-an385", timeout: float = 600.0, elf=None):
        from . import boards
        self._b = boards
        self.board = boards.get_board(board)
        if not self.board.emulated:
            raise ConfigError(f"{board} is a real board: flash it (edgebp flash --board {board}) and use its "
                              f"serial port")
        self.elf = elf
        self.timeout = timeout
        self.port: Optional[int] = None
        self.proc = None
        self.starts = 0
        self._deadline = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> str:
        import shutil
        import subprocess
        b = self._b
        if self.elf is None:
            self.elf = b.ensure_built(self.board.name)
        if self._deadline is None:
            self._deadline = time.monotonic() + self.timeout
        if self.port is None:
            self.port = b.free_port()
        if self.board.name == "host":
            cmd = [str(self.elf), "--port", str(self.port)]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = self.proc.stdout.readline()
            if "listening on" not in line:
                self.kill()
                raise DeviceError(f"host firmware did not start: {line!r}")
        else:
            if not self.board.simavr and shutil.which("qemu-system-arm") is None:
                raise DeviceError("qemu-system-arm not found: install it (Debian/Ubuntu: apt install "
                                  "qemu-system-arm)")
            cmd = b.qemu_command(self.board.name, self.elf, self.port)   # a simavr board: its runner
            i = cmd.index("-serial") + 1
            if "nodelay" not in cmd[i]:
                cmd[i] += ",nodelay=on"
            deadline = time.monotonic() + 10
            while True:
                self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                while not b._listening(self.port) and self.proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.proc.poll() is None and b._listening(self.port):
                    break
                err = self.proc.stderr.read()[-400:] if self.proc.poll() is not None else b""
                self.kill()
                if time.monotonic() > deadline:      # e.g. the port still held by the killed instance
                    raise DeviceError(f"QEMU did not open its serial port {self.port} within 10 s: {err!r}")
                time.sleep(0.2)
        self.starts += 1
        return self.url

    def restart(self) -> str:
        """Kills the emulator if it runs and starts it again on the same port (a cold boot: no model)."""
        self.kill()
        return self.start()

    def reopen(self) -> str:
        """For ``Device(reopen=...)``: the URL, after starting the emulator again if it died."""
        if not self.alive():
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise DeviceError(f"the emulator ran out of its {self.timeout:g} s")
            return self.restart()
        return self.url

    def kill(self) -> None:
        if self.proc is not None:
            self._b._kill(self.proc)
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()
            self.proc = None

    def __enter__(self) -> "Emulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


# --- a network on the device -----------------------------------------------------------------------------------
class DeviceNet(IntegerEngine):
    """An Engine whose training and inference run on a device, with the same integers as ``FixedNet``.

    The host keeps a FixedNet only to quantize data and describe the model (``core_params``); it does not
    train it. ``train_ticks`` / ``train_steps`` accumulate what the device measured.

    ``resume``: when the link drops or the device resets, reconnect (``Device.reconnect``, which restarts an
    emulator through ``reopen``) for up to ``resume_timeout`` seconds and go on from the last acknowledged
    training frame, so that the finished run is bit-identical to an uninterrupted one. The host keeps every
    training call of this run (the rows in the order sent, the batch size), every weight upload, and how far the
    device acknowledged them. A device that kept its state (same HELLO session id, at the acknowledged step)
    just continues. A device that lost it (a reset: another session id, or no model) gets the model loaded
    again and then either (``restore="upload"``, the default) the checkpoint read back after each training call
    (the weights, and with ``deploy.read_state`` the stochastic-rounding generator, the step counter and the
    momentum velocities) written back and the acknowledged calls since replayed, or (``restore="replay"``: the
    load restores the initial weights and the rounding generator's seed) every acknowledged call replayed from
    the start. After an upload restore the
    saturation counters count from the restore; after a replay they are the uninterrupted run's too."""

    name = "device"

    def __init__(self, device: Device, spec, cfg=None, resume: bool = False, resume_timeout: float = 120.0,
                 on_event: Optional[Callable[[str], None]] = None, restore: str = "auto"):
        from .config import TrainConfig
        self.device, self.spec, self.cfg = device, spec, cfg or TrainConfig()
        if restore not in ("auto", "upload", "replay"):
            raise ConfigError(f"restore must be auto, upload or replay, got {restore!r}")
        self.uploadable = True      # protocol 4: STATE reads back the generator, the steps and the velocities
        if restore == "upload" and not self.uploadable:
            raise ConfigError("restore='upload' is exact only for optimizer sgd with rounding nearest (momentum's "
                              "velocity and the stochastic-rounding generator cannot be read back); use replay")
        self.restore = ("upload" if self.uploadable else "replay") if restore == "auto" else restore
        self.resume, self.resume_timeout, self.on_event = resume, resume_timeout, on_event
        self._ref = FixedNet(spec, self.cfg)
        self._rng0 = int(self._ref._net.rng)
        self.train_ticks = 0
        self.train_steps = 0
        self.train_samples_seen = 0
        self.train_requests = 0
        self.train_seconds = 0.0
        self.loss_unknown = 0
        self._log: List[dict] = []       # {"train": [Xq, Tq, batch, rows acknowledged]} or {"weights": ints}
        self._ack: Tuple[int, int] = (0, 0)
        self._ckpt: Optional[tuple] = None    # (entries done, weights, steps, state words (deploy.read_state))
        self._session: Optional[int] = None
        self.events: List[str] = []
        self.memory = self._call(self._load, load=True)

    def _load(self) -> dict:
        mem = self.device.load_model(self._ref)
        self._session = getattr(self.device.board_info, "session_id", None)
        self._ack = (0, 0)
        return mem

    # --- recovery ------------------------------------------------------------------------------------------
    def _event(self, msg: str) -> None:
        self.events.append(msg)
        if self.on_event:
            self.on_event(msg)

    def _call(self, fn, load: bool = False):
        """fn(), recovering from a lost link or a reset when ``resume``."""
        while True:
            try:
                return fn()
            except (LinkLostError, DeviceResetError) as e:
                if not self.resume:
                    raise
                self._recover(e, load)

    def _checkpoint(self) -> None:
        """After a training call: the device's weights read back, for an upload restore."""
        if self.resume and self.restore == "upload" and self._ack[1] == 0:
            from .deploy import read_state
            info = self.device.board_info
            if not (info.has("STATE") and info.has("UPLOAD")):   # HELLO's features: the Uno board's firmware
                self.restore, self._ckpt = "replay", None
                self._event("the device's firmware has no STATE or weight upload (a small board's build): a reset "
                            "is restored by replaying every acknowledged call")
                return
            weights = self._call(self.device.read_weights)
            state = self._call(lambda: read_state(self.device))
            self._ckpt = (len(self._log), weights, self._ack[0], state)

    def _recover(self, err: Exception, load: bool = False) -> None:
        self._event(f"link trouble: {err}; reconnecting")
        deadline = time.monotonic() + self.resume_timeout
        dev = self.device
        while True:
            try:
                dev.reconnect(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
                info = dev.info()
                if load:
                    return
                sid = getattr(info, "session_id", None)
                same_boot = sid is None or self._session is None or sid == self._session
                state = dev.device_state() if same_boot and info.have_model and dev.model_params is not None \
                    else None
                if state is not None and state == self._ack:
                    self._event(f"device kept its state (same session, step {state[0]}): continuing")
                    return
                train = [e["train"] for e in self._log if "train" in e]
                if state is not None and train and state[1] == 0 == self._ack[1] and state[0] > self._ack[0]:
                    e = train[-1]            # the frame in flight was applied before the link went
                    b = e[2] if e[2] > 0 else len(e[0])
                    rows = e[3] + (state[0] - self._ack[0]) * b
                    if rows < len(e[0]) + b:
                        rows = min(rows, len(e[0]))
                        self.loss_unknown += rows - e[3]
                        e[3] = rows
                        self._ack = state
                        self._event(f"device applied the frame in flight (step {state[0]}): continuing")
                        return
                self._restore(sid)
                return
            except (LinkLostError, DeviceResetError) as e:
                if time.monotonic() > deadline:
                    raise LinkLostError(f"could not resume within {self.resume_timeout:g} s: {e}", dev.url,
                                        "resume failed") from None
                time.sleep(0.2)

    def _restore(self, sid) -> None:
        """The device lost its state: load the model again, then upload the checkpoint or replay."""
        from .deploy import write_weights
        dev = self.device
        dev.load_model(self._ref)
        self._session = sid
        first = 0
        if self.restore == "upload" and self._ckpt is not None:
            from .deploy import write_state
            first, weights, steps, state = self._ckpt
            write_weights(dev, weights, rng=int(state[0]), steps=steps)
            write_state(dev, state)
            dev._state = (steps, 0)
        rows = sum(e["train"][3] for e in self._log[first:] if "train" in e)
        how = (f"uploaded the weights of step {self._ckpt[2]}" if first else "loaded the model again")
        self._event(f"device lost its state (reset; session {sid}): {how}, replaying {rows} acknowledged rows")
        for e in self._log[first:]:
            if "weights" in e:
                write_weights(dev, e["weights"])
            elif e["train"][3]:
                x, t, b, n = e["train"]
                dev.train(x[:n], t[:n], b)
        state = dev.device_state()
        if state != self._ack:
            raise DeviceError(f"the restored device is at {state}, the acknowledged run at {self._ack}")

    # --- IntegerEngine -------------------------------------------------------------------------------------
    def core_params(self) -> dict:
        return self._ref.core_params()

    def quantize_inputs(self, X) -> np.ndarray:
        return self._ref.quantize_inputs(X)

    def quantize_targets(self, T) -> np.ndarray:
        return self._ref.quantize_targets(T)

    def train_q(self, Xq, Tq, batch_size: int) -> int:
        entry = [np.ascontiguousarray(Xq), np.ascontiguousarray(Tq), int(batch_size), 0]
        self._log.append({"train": entry})
        done = dict(loss=0, ticks=0, requests=0, unknown=0)
        snap = dict(loss=0, ticks=0, requests=0, unknown=0)
        t0 = time.monotonic()
        steps0 = self._ack[0]

        def progress(rows, s):
            entry[3] = rows
            self._ack = self.device._state
            snap.update(loss=s.loss_sum, ticks=s.ticks, requests=s.requests, unknown=s.loss_unknown)

        while True:
            snap.update(loss=0, ticks=0, requests=0, unknown=0)
            try:
                r = self.device.train(entry[0], entry[1], entry[2], start=entry[3], on_progress=progress)
            except (LinkLostError, DeviceResetError) as e:
                if not self.resume:
                    raise
                for k in done:
                    done[k] += snap[k]
                self._recover(e)
                if entry[3] >= len(entry[0]) and len(entry[0]):
                    break
                continue
            done["loss"] += r.loss_sum
            done["ticks"] += r.ticks
            done["requests"] += r.requests
            done["unknown"] += r.loss_unknown
            break
        n = len(entry[0])
        unknown = done["unknown"]
        self.loss_unknown += unknown
        self.train_ticks += done["ticks"]
        self.train_steps += self._ack[0] - steps0
        self.train_samples_seen += n
        self.train_requests += done["requests"]
        self.train_seconds += time.monotonic() - t0
        self._checkpoint()
        known = n - unknown
        return done["loss"] if unknown == 0 or known <= 0 else int(round(done["loss"] * n / known))

    def continue_from(self, int_weights, state, steps: int) -> None:
        """Puts the device where an earlier run stood: its weights, and its training state words
        (``deploy.read_state``: the rounding generator, the step counter ``steps``, the velocities), as a file
        written during training keeps them (``edgebp device train --save-weights F --resume``). Training then
        goes on as the uninterrupted run would; a reset later is restored from here. DeviceError when the
        firmware has no weight upload or STATE (HELLO's features)."""
        from .deploy import write_state, write_weights
        info = self.device.board_info
        if not (info.has("UPLOAD") and info.has("STATE")):
            raise DeviceError(f"the device at {self.device.url} cannot continue a saved run: its firmware has no "
                              f"weight upload or STATE request (a small board's build); train again from the "
                              f"start, without --resume")
        w = [(np.array(W, dtype=np.int16), np.array(b, dtype=np.int16)) for W, b in int_weights]
        words = np.asarray(state, dtype=np.uint32)
        if len(words) < 2 or int(words[1]) != int(steps):
            raise DataError(f"the saved training state says step {int(words[1]) if len(words) > 1 else '?'}, "
                            f"the run record step {steps}: the file is inconsistent; train again without --resume")

        def put():
            write_weights(self.device, w, rng=int(words[0]), steps=int(steps))
            write_state(self.device, words)
        self._call(put)
        self._log.append({"weights": w})
        self._ack = self._call(self.device.device_state)
        if self._ack != (int(steps), 0):
            raise DeviceError(f"the device is at {self._ack} after the restore, expected step {steps}")
        self._ckpt = (len(self._log), w, int(steps), words)

    def set_int_weights(self, int_weights) -> None:
        """Uploads [(W int16 (n_out, n_in), b int16 (n_out,)), ...] into the device's model
        (edgebp.deploy.write_weights: chunked, exactly once, committed with a CRC)."""
        from .deploy import write_weights
        w = [(np.array(W, copy=True), np.array(b, copy=True)) for W, b in int_weights]
        self._call(lambda: write_weights(self.device, w))
        self._log.append({"weights": w})
        self._ack = self._call(self.device.device_state)
        self._checkpoint()

    def predict_q(self, Xq) -> np.ndarray:
        return self._call(lambda: self.device.predict(Xq))

    def evaluate_q(self, Xq, Tq) -> Tuple[int, int]:
        return self._call(lambda: self.device.evaluate(Xq, Tq))

    def get_int_weights(self):
        return self._call(lambda: self.device.read_weights(self.spec.param_shapes()))

    def stats(self) -> List[dict]:
        return [{k: v for k, v in l.items() if k in P.STAT_FIELDS}
                for l in self._call(self.device.read_stats)["layers"]]

    @property
    def steps(self) -> int:
        return self._call(self.device.read_stats)["steps"]

    def ticks_per_step(self) -> Optional[float]:
        return self.train_ticks / self.train_steps if self.train_steps else None

    def instructions_per_step(self) -> Optional[float]:
        info = self._call(lambda: self.device.board_info)
        if info.tick_unit != P.C["EBP_TICK_INSTRUCTIONS"] or not self.train_steps:
            return None
        return info.ticks_to(self.train_ticks) / self.train_steps

    # --- Engine interface beyond IntegerEngine's -----------------------------------------------------------
    def set_weights(self, weights) -> None:
        """Float weights [(W (n_out, n_in), b (n_out,)), ...], quantized to the layers' formats and uploaded
        (early stopping restores the best weights this way)."""
        from .fixed import quantize
        if len(weights) != len(self.spec.layers):
            raise ConfigError(f"{len(weights)} layers of weights given, the network has {len(self.spec.layers)}")
        q = []
        sizes = self.spec.sizes
        for i, ((W, b), l) in enumerate(zip(weights, self.spec.layers)):
            W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
            if W.shape != (sizes[i + 1], sizes[i]) or b.shape != (sizes[i + 1],):
                raise ConfigError(f"layer {i}: weights {W.shape} and biases {b.shape} given, the layer is "
                                  f"({sizes[i + 1]}, {sizes[i]}) with {sizes[i + 1]} biases")
            q.append((quantize(W, l.w_frac, f"layer {i} weights"), quantize(b, l.w_frac, f"layer {i} biases")))
        self.set_int_weights(q)

    def memory_report(self) -> dict:
        return {k: v for k, v in self.memory.items() if k != "arena"}
