"""Devices of a fleet that are boards (emulated in QEMU, or real, on a serial URL), driven by ``DeviceNet``.

A board's round is ``client.train_int`` on a ``DeviceNet``: LOAD with the round's seed, weight upload, TRAIN
frames, READ_WEIGHTS, EVALUATE: the same integers as ``client.virtual_round`` on the host core. The host
connects for each round and disconnects after it (QEMU's serial server takes the next connection), so any
worker process of a Flower simulation can serve any board. ``CountingTransport`` measures the bytes on the
link per message type, to set beside ``LinkMeter``'s computed counts.
"""
from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import ConfigError, DeviceError, EdgeBPError
from .client import FleetTask, Update, device_data, evaluate_int, train_int
from .fedavg import Weights


class CountingTransport:
    """A pyserial object wrapped to count the bytes of every frame each way, per message name."""

    def __init__(self, ser):
        from .. import protocol as P
        self._ser = ser
        self._split = {"to_device": P.FrameSplitter(), "from_device": P.FrameSplitter()}
        self.bytes: Dict[str, int] = defaultdict(int)    # '<message>_to_device' / '<message>_from_device'
        self.raw = {"to_device": 0, "from_device": 0}
        self._seen = {"to_device": set(), "from_device": set()}   # (type, seq) of the frames so far

    def _count(self, way: str, data: bytes) -> None:
        from .. import protocol as P
        self.raw[way] += len(data)
        for chunk in self._split[way].feed(bytes(data)):
            try:
                f = P.decode_frame(chunk)
                name = P.MESSAGE_NAMES.get(f.type & ~P.RESPONSE if f.type != P.MSG_ERROR else f.type, str(f.type))
                if (f.type, f.seq) in self._seen[way]:
                    name = "retransmitted"      # a resent request, or the device's answer to one
                self._seen[way].add((f.type, f.seq))
            except EdgeBPError:
                name = "corrupt"
            self.bytes[f"{name}_{way}"] += len(chunk) + 1

    def write(self, data):
        self._count("to_device", data)
        return self._ser.write(data)

    def read(self, n=1):
        data = self._ser.read(n)
        self._count("from_device", data)
        return data

    def __getattr__(self, name):
        return getattr(self._ser, name)

    def __setattr__(self, name, value):
        if name.startswith("_") or name in ("bytes", "raw"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._ser, name, value)


@contextlib.contextmanager
def connect(url: str, timeout: float = 30.0, retries: int = 3) -> Iterator[Tuple["object", CountingTransport]]:
    """A Device on ``url`` whose link is counted."""
    import serial
    from ..device import Device
    try:
        ser = serial.serial_for_url(url, baudrate=115200, timeout=0.05, write_timeout=10)
    except (serial.SerialException, OSError, ValueError) as e:
        raise DeviceError(f"cannot open {url}: {e}") from None
    counter = CountingTransport(ser)
    dev = Device(url, timeout=timeout, retries=retries, transport=counter)
    try:
        yield dev, counter
    finally:
        dev.close()


def _device_net(dev, task: FleetTask, cfg):
    from ..device import DeviceNet
    net = DeviceNet(dev, task.netspec, cfg)
    if not callable(getattr(net, "set_int_weights", None)):   # a DeviceNet without it: upload directly
        from ..deploy import write_weights
        net.set_int_weights = lambda w: write_weights(dev, w)
    return net


def board_round(task: FleetTask, k: int, rnd: int, global_int: Weights, url: str,
                timeout: float = 30.0) -> Update:
    """Device k's round on the board at ``url``; ``link_bytes`` are the measured bytes per message."""
    X, T = device_data(task, k)
    with connect(url, timeout) as (dev, counter):
        net = _device_net(dev, task, task.config(rnd, k))
        up = train_int(net, global_int, X, T, task.local_epochs)
    up.link_bytes = measured(counter)
    return up


def board_evaluate(task: FleetTask, k: int, global_int: Weights, url: str,
                   timeout: float = 30.0) -> Tuple[Tuple[float, float], Dict[str, int]]:
    """(loss, accuracy) of the global weights on device k's rows, on the board; and the bytes measured."""
    X, T = device_data(task, k)
    with connect(url, timeout) as (dev, counter):
        net = _device_net(dev, task, task.config())
        net.set_int_weights(global_int)
        res = evaluate_int(net, net.quantize_inputs(X), net.quantize_targets(T))
    return res, measured(counter)


def max_bodies(urls: Sequence[str], timeout: float = 30.0) -> List[int]:
    """The maximum frame body each board reports in HELLO (``Device.max_body``): what ``FleetTask.max_body``
    takes for the virtual devices that stand for these boards (a simulated twin of an emulated fleet)."""
    out = []
    for url in urls:
        with connect(url, timeout) as (dev, _):
            out.append(dev.max_body)
    return out


def measured(counter: CountingTransport) -> Dict[str, int]:
    out = dict(counter.bytes)
    for way in ("to_device", "from_device"):   # 0x00 bytes outside frames: one per connection, one per resend
        extra = counter.raw[way] - sum(v for k, v in counter.bytes.items() if k.endswith("_" + way))
        if extra:
            out[f"delimiters_{way}"] = extra
    out["to_device"], out["from_device"] = counter.raw["to_device"], counter.raw["from_device"]
    out["total"] = out["to_device"] + out["from_device"]
    return out


def parse_boards(text: Optional[str]) -> List[str]:
    """'qemu-microbit:2,qemu-mps2-an385:2' -> ['qemu-microbit', 'qemu-microbit', 'qemu-mps2-an385', ...]."""
    from ..boards import get_board
    if not text:
        return []
    out = []
    for part in text.split(","):
        name, _, count = part.strip().partition(":")
        try:
            n = int(count) if count else 1
        except ValueError:
            n = -1
        if n < 1:
            raise ConfigError(f"--boards {text!r}: each entry is BOARD or BOARD:COUNT with COUNT >= 1")
        b = get_board(name)
        if not b.emulated:
            raise ConfigError(f"--boards: {name} is a real board; pass its serial port with --port instead")
        out += [name] * n
    return out


@contextlib.contextmanager
def start_boards(names: Sequence[str], timeout: float = 3600.0) -> Iterator[List[str]]:
    """Starts one emulator per name (``edgebp.boards.start_emulator``) and yields their serial URLs; all are
    stopped (by PID) on exit."""
    from ..boards import ensure_built, start_emulator
    for name in sorted(set(names)):
        ensure_built(name)
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(start_emulator(n, timeout=timeout, build_first=False)) for n in names]
