"""What one device of a fleet does in a round, whatever it is (host core, board, float mirror).

A round on device k, round r (1-based), from the global weights:

1. build the network afresh with the seed ``device_seed(cfg.seed, r, k)`` (weight init is overwritten; the
   seed drives stochastic rounding and ``--shuffle``): on a board this is one LOAD, on the host a new FixedNet;
2. set the global integer weights (a board: the weight upload);
3. train ``local_epochs`` epochs on the device's own rows (``Engine.train_epoch``, same order everywhere);
4. read the weights back and evaluate them on the own rows (the core's ``evaluate_q``: loss and correct count).

No state survives between rounds but the global weights, so a Flower client (built anew for every message)
and a board that stays powered do exactly the same, and a simulated fleet equals an emulated one bit for bit.

``LinkMeter`` counts the bytes a board exchanges for this, frame by frame, with ``edgebp.protocol``'s framing
(COBS, header, CRC, the 0x00 delimiter) and the chunking of ``edgebp.device.Device`` for the board's maximum
frame body (``FleetTask.max_body``: the protocol's 1,024 bytes, or a small board's, such as the AVR's 128).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

import numpy as np

from ..config import NetSpec, TrainConfig
from .fedavg import Weights, split_rows

ENGINES = ("fixed", "float")


def device_seed(seed: int, rnd: int, device: int) -> int:
    """The 32-bit seed of device ``device`` in round ``rnd`` (deterministic, distinct per pair)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(rnd), int(device)]).generate_state(1)[0])


@dataclass(frozen=True)
class FleetTask:
    """Everything a device needs to know, small enough to ship to every worker: the data set is named (each
    worker loads and splits it itself, deterministically) rather than sent."""
    data: str                      # anything edgebp.data.load_dataset takes
    spec: dict                     # NetSpec.to_dict()
    cfg: dict                      # TrainConfig.to_dict()
    n_devices: int
    split: str = "iid"             # 'iid' or 'dirichlet:ALPHA'
    split_seed: int = 0
    local_epochs: int = 1
    engines: Tuple[str, ...] = ENGINES
    scale: Optional[str] = None    # 'minmax' or 'standard', fitted on the training split (edgebp.data)
    # the maximum frame body (HELLO's max_body) of the board each virtual device stands for, for its link bytes:
    # None for the protocol's (1,024 bytes), one number for every device, or one per device (the AVR's is 128)
    max_body: Union[None, int, Tuple[int, ...]] = None

    def __post_init__(self):
        from ..errors import ConfigError
        mb = self.max_body
        if not isinstance(mb, (list, tuple)):
            bodies = [mb]
        else:
            bodies = list(mb)
            if len(bodies) != self.n_devices:
                raise ConfigError(f"FleetTask.max_body gives {len(bodies)} frame bodies for a fleet of "
                                  f"{self.n_devices} devices: give one number, or one per device")
            object.__setattr__(self, "max_body", tuple(bodies))     # hashable and picklable as given
        for b in bodies:
            if b is not None:
                LinkMeter.check_body(b)

    def body_of(self, k: int) -> Optional[int]:
        """The maximum frame body the link bytes of device ``k`` are counted with (None: the protocol's)."""
        if self.max_body is None or isinstance(self.max_body, (int, np.integer)):
            return self.max_body
        return self.max_body[k]

    @property
    def netspec(self) -> NetSpec:
        return NetSpec.from_dict(self.spec)

    def config(self, rnd: Optional[int] = None, device: Optional[int] = None) -> TrainConfig:
        cfg = TrainConfig(**self.cfg)
        if rnd is not None:
            cfg = dataclasses.replace(cfg, seed=device_seed(cfg.seed, rnd, device))
        return cfg


def _dims(W: np.ndarray) -> Tuple[int, int]:
    """(n_out, n_in) of a layer's weights as a dense layer's header carries them; a conv1d layer's
    (ch, in_ch, kernel) counts in_ch * kernel inputs, a pooling layer has none (the byte count is what matters)."""
    if W.ndim < 2:
        return 0, 0
    return int(W.shape[0]), int(np.prod(W.shape[1:]))


@functools.lru_cache(maxsize=8)
def _load(data: str, n_devices: int, split: str, split_seed: int, scale: Optional[str] = None):
    from ..data import load_dataset
    ds = load_dataset(data, scale=scale)
    rows = split_rows(ds.T_train, n_devices, split, split_seed)
    return ds, rows


def shards_of(task: FleetTask):
    """(dataset, [row indices of device k]) for the task, loaded once per process."""
    return _load(task.data, task.n_devices, task.split, task.split_seed, task.scale)


def device_data(task: FleetTask, k: int) -> Tuple[np.ndarray, np.ndarray]:
    ds, rows = shards_of(task)
    if not 0 <= k < task.n_devices:
        raise IndexError(f"device {k} of a fleet of {task.n_devices}")
    return ds.X_train[rows[k]], ds.T_train[rows[k]]


@dataclass
class Update:
    """What a device returns from a round for one engine."""
    weights: Weights               # int16 (fixed) or float64 (float)
    n: int                         # samples it trained on (the FedAvg weight)
    loss: float                    # mean loss of its updated weights on its own rows
    accuracy: float                # their accuracy on its own rows
    link_bytes: Dict[str, int] = field(default_factory=dict)   # per message kind (fixed engine only)


def evaluate_int(engine, Xq: np.ndarray, Tq: np.ndarray) -> Tuple[float, float]:
    """(mean loss, accuracy) from the core's evaluate_q (one pass; the same integers on a board)."""
    from ..fixed import LOSS_SCALE
    loss_q, correct = engine.evaluate_q(Xq, Tq)
    return loss_q * LOSS_SCALE / len(Xq), correct / len(Xq)


def train_int(engine, global_int: Weights, X, T, epochs: int) -> Update:
    """Steps 2-4 of a round on any IntegerEngine (FixedNet, DeviceNet) already built for the round."""
    engine.set_int_weights(global_int)
    for e in range(epochs):
        engine.train_epoch(X, T, e)
    w = [(np.asarray(W, np.int16).copy(), np.asarray(b, np.int16).copy()) for W, b in engine.get_int_weights()]
    loss, acc = evaluate_int(engine, engine.quantize_inputs(X), engine.quantize_targets(T))
    return Update(w, len(X), loss, acc)


def train_float(spec: NetSpec, cfg: TrainConfig, global_float: Weights, X, T, epochs: int) -> Update:
    from ..mirror import FloatNet
    net = FloatNet(spec, cfg, weights=global_float)
    for e in range(epochs):
        net.train_epoch(X, T, e)
    loss, acc = net.evaluate(X, T)
    return Update([(W.copy(), b.copy()) for W, b in net.get_weights()], len(X), loss, acc)


def virtual_round(task: FleetTask, k: int, rnd: int, global_int: Optional[Weights],
                  global_float: Optional[Weights]) -> Dict[str, Update]:
    """Device k's round on the host: the C core (same integers as a board) and/or the float mirror."""
    from ..fixed import FixedNet
    spec, cfg = task.netspec, task.config(rnd, k)
    X, T = device_data(task, k)
    out = {}
    if global_int is not None:
        net = FixedNet(spec, cfg)
        out["fixed"] = train_int(net, global_int, X, T, task.local_epochs)
        out["fixed"].link_bytes = LinkMeter(spec, cfg, task.body_of(k)).round_bytes(
            net.core_params(), global_int, net.quantize_inputs(X), net.quantize_targets(T), task.local_epochs,
            out["fixed"].weights)
    if global_float is not None:
        out["float"] = train_float(spec, cfg, global_float, X, T, task.local_epochs)
    return out


def virtual_evaluate(task: FleetTask, k: int, global_int: Optional[Weights],
                     global_float: Optional[Weights]) -> Tuple[Dict[str, Tuple[float, float]], Dict[str, int]]:
    """(loss, accuracy) of the global weights on device k's own rows, per engine; and the link bytes a board
    would exchange for it (fixed engine)."""
    from ..fixed import FixedNet
    from ..mirror import FloatNet
    spec, cfg = task.netspec, task.config()
    X, T = device_data(task, k)
    out, nbytes = {}, {}
    if global_int is not None:
        net = FixedNet(spec, cfg)
        net.set_int_weights(global_int)
        Xq, Tq = net.quantize_inputs(X), net.quantize_targets(T)
        out["fixed"] = evaluate_int(net, Xq, Tq)
        nbytes = LinkMeter(spec, cfg, task.body_of(k)).evaluate_bytes(net.core_params(), global_int, Xq, Tq)
    if global_float is not None:
        out["float"] = FloatNet(spec, cfg, weights=global_float).evaluate(X, T)
    return out, nbytes


def initial_weights(task: FleetTask) -> Tuple[Weights, Weights]:
    """The global model of round 0: the core's initialisation with cfg.seed, and its dequantized copy."""
    from ..fixed import FixedNet
    net = FixedNet(task.netspec, task.config())
    return net.get_int_weights(), net.get_weights()


# --- bytes over the serial link ------------------------------------------------------------------------------
class LinkMeter:
    """Bytes a board exchanges with the host for a round, frame by frame: encoded request frames (host ->
    device) and response frames (device -> host), each COBS(header | body | CRC-32) + 0x00, in the chunks
    ``edgebp.device.Device`` sends to a device whose frame bodies hold at most ``max_body`` bytes (as
    ``Device.max_body``: HELLO's, capped at the protocol's ``MAX_BODY``; default the protocol's). Response fields
    the host cannot know (the device's tick counter) are taken as zero; COBS adds a byte per 254 non-zero bytes,
    so such a field can change a count by at most one byte per frame. Retransmissions are not counted."""

    MIN_BODY = 128     # the smallest body the firmware builds with (app.c: EBP_APP_MAX_BODY >= 128)

    def __init__(self, spec: NetSpec, cfg: TrainConfig, max_body: Optional[int] = None):
        from .. import protocol as P
        self.spec, self.cfg = spec, cfg
        self.body = P.MAX_BODY if max_body is None else min(P.MAX_BODY, self.check_body(max_body))  # Device.max_body

    @classmethod
    def check_body(cls, max_body) -> int:
        """``max_body`` as an int; ConfigError unless it is a frame body a device can report."""
        from ..errors import ConfigError
        if isinstance(max_body, bool) or not isinstance(max_body, (int, np.integer)) or max_body < cls.MIN_BODY:
            raise ConfigError(f"max_body must be a whole number of bytes >= {cls.MIN_BODY} (the maximum frame body "
                              f"the device reports in HELLO), got {max_body!r}")
        return int(max_body)

    @staticmethod
    def frame(type_: int, body: bytes) -> int:
        from .. import protocol as P
        return len(P.encode_frame(P.Frame(type_, 1, 0, body)))

    def _pair(self, type_: int, req: bytes, resp: bytes) -> Tuple[int, int]:
        from .. import protocol as P
        return self.frame(type_, req), self.frame(type_ | P.RESPONSE, resp)

    def load(self, params: dict) -> Tuple[int, int]:
        from .. import protocol as P
        return self._pair(P.LOAD, P.pack_load(params), bytes(32))

    def upload(self, weights: Weights) -> Tuple[int, int]:
        """The weight upload as ``DeviceNet.set_int_weights`` (``edgebp.deploy.write_weights``) sends it: the
        device's formats read per layer (READ_WEIGHTS of 0 elements), WRITE_WEIGHTS chunks of at most
        MAX_WRITE_COUNT elements, one COMMIT_WEIGHTS with the CRC-32, and an empty TRAIN for the step count."""
        import struct
        from .. import protocol as P
        up = down = 0
        per = min(P.MAX_WRITE_COUNT, (self.body - P.WRITE_HDR.size) // 2)     # as write_weights
        for layer, (W, b) in enumerate(weights):
            hdr = P.WEIGHTS_HDR.pack(layer, len(weights), _dims(W)[1], _dims(W)[0], 0, 0, 0, 0, 0)
            a, c = self._pair(P.READ_WEIGHTS, P.pack_read_weights(layer, 0, 0), hdr)
            up, down = up + a, down + c
        for layer, (W, b) in enumerate(weights):
            data = np.concatenate([np.asarray(W, np.int16).ravel(), np.asarray(b, np.int16)])
            for off in range(0, len(data), per):
                part = data[off:off + per]
                a, c = self._pair(P.WRITE_WEIGHTS, P.pack_write_weights(layer, off, part),
                                  struct.pack("<IIBxxx", off + len(part), len(data), 1))   # app.c: 12 bytes
                up, down = up + a, down + c
        crc = P.weights_crc(weights)
        a, c = self._pair(P.COMMIT_WEIGHTS, P.pack_commit_weights(crc), struct.pack("<I", crc))
        up, down = up + a, down + c
        # DeviceNet.set_int_weights then reads the step counter with an empty TRAIN (Device.device_state)
        a, c = self._pair(P.TRAIN, struct.pack("<HHI", 0, 0, 1), bytes(24))
        return up + a, down + c

    def train(self, Xq: np.ndarray, Tq: np.ndarray, epochs: int) -> Tuple[int, int]:
        from .. import protocol as P
        from ..engine import sample_order
        n, n_in, n_out = len(Xq), Xq.shape[1], Tq.shape[1]
        batch = self.cfg.batch_size if self.cfg.batch_size > 0 else n
        cap = max(1, min(0xFFFF, (self.body - 8) // (2 * (n_in + n_out))))
        up = down = 0
        resp = bytes(24)
        staged = 2 * (n_in + n_out) > self.body - 8
        for e in range(epochs):
            o = sample_order(n, e, self.cfg)
            X, T = Xq[o], Tq[o]
            if staged:           # a sample larger than a frame: STAGE chunks and a TRAIN with its tail each
                acc, stp = P.C["EBP_TRAIN_ACCUMULATE"], P.C["EBP_TRAIN_STEP"]
                for i in range(n):
                    flags = 0 if batch == 1 else acc | (stp if (i + 1) % batch == 0 or i == n - 1 else 0)
                    a, b = self.staged(P.TRAIN, np.concatenate([X[i], T[i]]), resp, batch, flags)
                    up, down = up + a, down + b
                continue
            if batch <= cap:
                chunk = (cap // batch) * batch
                spans = [(lo, min(n, lo + chunk), 0) for lo in range(0, n, chunk)]
            else:
                spans = [(lo, min(min(n, blo + batch), lo + cap), P.C["EBP_TRAIN_ACCUMULATE"])
                         for blo in range(0, n, batch) for lo in range(blo, min(n, blo + batch), cap)]
            for lo, hi, flags in spans:
                a, b = self._pair(P.TRAIN, P.pack_train(X[lo:hi], T[lo:hi], batch, flags), resp)
                up, down = up + a, down + b
        return up, down

    def staged(self, kind: int, sample: np.ndarray, resp: bytes, batch: int = 1, flags: int = 0) -> Tuple[int, int]:
        """One sample larger than a frame, as ``Device._send_staged`` sends it on a clean link: STAGE chunks of
        its head (8-byte answers), then ``kind`` with EBP_TRAIN_STAGED and the tail."""
        from .. import protocol as P
        e = len(sample)
        chunk = (self.body - 8) // 2
        tail = min(e, (self.body - (8 if kind == P.TRAIN else 4)) // 2, chunk)
        up = down = 0
        for off in range(0, e - tail, chunk):
            a, b = self._pair(P.STAGE, P.pack_stage(off, sample[off:min(off + chunk, e - tail)]), bytes(8))
            up, down = up + a, down + b
        a, b = self._pair(kind, P.pack_staged(kind, sample[e - tail:], batch, flags), resp)
        return up + a, down + b

    def readback(self, weights: Weights) -> Tuple[int, int]:
        from .. import protocol as P
        up = down = 0
        for layer, (W, b) in enumerate(weights):
            # Device.read_layer: the layer's formats first (0 elements), then its elements in chunks
            hdr = P.WEIGHTS_HDR.pack(layer, len(weights), _dims(W)[1], _dims(W)[0], 0, 0, 0, 0, 0)
            a, c = self._pair(P.READ_WEIGHTS, P.pack_read_weights(layer, 0, 0), hdr)
            up, down = up + a, down + c
            data = np.concatenate([np.asarray(W, np.int16).ravel(), np.asarray(b, np.int16)])
            per = (self.body - P.WEIGHTS_HDR.size) // 2
            for off in range(0, len(data), per):
                part = data[off:off + per]
                hdr = P.WEIGHTS_HDR.pack(layer, len(weights), _dims(W)[1], _dims(W)[0], 0, 0, off, len(part), 0)
                a, c = self._pair(P.READ_WEIGHTS, P.pack_read_weights(layer, off, 0xFFFF),
                                  hdr + part.astype("<i2").tobytes())
                up, down = up + a, down + c
        return up, down

    def evaluate(self, Xq: np.ndarray, Tq: np.ndarray) -> Tuple[int, int]:
        from .. import protocol as P
        n_in, n_out = Xq.shape[1], Tq.shape[1]
        cap = max(1, min(0xFFFF, (self.body - 8) // (2 * (n_in + n_out))))
        up = down = 0
        if 2 * (n_in + n_out) > self.body - 4:
            for x, t in zip(Xq, Tq):
                a, b = self.staged(P.EVALUATE, np.concatenate([x, t]), bytes(16))
                up, down = up + a, down + b
            return up, down
        for lo in range(0, len(Xq), cap):
            a, b = self._pair(P.EVALUATE, P.pack_evaluate(Xq[lo:lo + cap], Tq[lo:lo + cap]), bytes(16))
            up, down = up + a, down + b
        return up, down

    def round_bytes(self, params: dict, global_int: Weights, Xq, Tq, epochs: int, new_int: Weights) -> Dict[str, int]:
        """Per message kind and direction for one training round (steps 1-4 of the module docstring)."""
        return self._sum(dict(load=self.load(params), upload=self.upload(global_int),
                              train=self.train(Xq, Tq, epochs), readback=self.readback(new_int),
                              evaluate=self.evaluate(Xq, Tq)))

    def evaluate_bytes(self, params: dict, global_int: Weights, Xq, Tq) -> Dict[str, int]:
        """Per message kind and direction for evaluating the global weights on the device's rows."""
        return self._sum(dict(load=self.load(params), upload=self.upload(global_int), evaluate=self.evaluate(Xq, Tq)))

    @staticmethod
    def _sum(parts) -> Dict[str, int]:
        out = {}
        for k, (up, down) in parts.items():
            out[f"{k}_to_device"], out[f"{k}_from_device"] = up, down
        out["to_device"] = sum(v[0] for v in parts.values())
        out["from_device"] = sum(v[1] for v in parts.values())
        out["total"] = out["to_device"] + out["from_device"]
        return out
