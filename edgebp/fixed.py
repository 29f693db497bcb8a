"""The fixed-point network: a thin, checked wrapper over the C core (``edgebp._core``).

Python never computes a size or an offset: it asks the core for the bytes a configuration needs, hands it
a buffer, and reads tensors through the pointers the core laid out.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import numpy as np

from ._core import ffi, lib
from .config import ACTIVATIONS, INITS, KINDS, LOSSES, OPTIMIZERS, ROUNDINGS, NetSpec, TrainConfig
from .engine import Engine, check_data
from .errors import ConfigError, CoreError, DataError, MemoryBudgetError

LOSS_SCALE = 2.0 ** -lib.EBP_LOSS_FRAC


def check(status: int, what: str) -> None:
    """Raises the EdgeBPError subclass that fits a core status, with what to fix."""
    if status == lib.EBP_OK:
        return
    msg = f"{what}: {ffi.string(lib.ebp_status_str(status)).decode()} (status {status})"
    if status in (lib.EBP_ERR_CONFIG, lib.EBP_ERR_FORMAT):
        raise ConfigError(msg)
    if status == lib.EBP_ERR_SIZE:
        raise MemoryBudgetError(msg)
    raise CoreError(status, msg)


def quantize(x, frac: int, what: str = "values", bits: int = 16) -> np.ndarray:
    """float -> int16 (or int8, ``bits`` 8) Q``frac``, rounding half away from zero like the core; DataError
    if out of range."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{what} contain NaN or inf")
    q = np.sign(x) * np.floor(np.abs(x) * 2.0 ** frac + 0.5)
    top = (1 << (bits - 1)) - 1
    if q.size and (q.max() > top or q.min() < -top - 1):
        lim = top / 2.0 ** frac
        raise DataError(f"{what} reach {np.abs(x).max():.4g}, beyond the range +-{lim:.4g} of Q{frac} int{bits}; "
                        f"scale the data or use fewer fractional bits")
    return q.astype(np.int16 if bits == 16 else np.int8)


def dequantize(q, frac: int) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * 2.0 ** -frac


def core_cfg(spec: NetSpec, cfg: TrainConfig, online: Optional[bool] = None):
    """The ebp_cfg_t of a NetSpec + TrainConfig (checked by the core); ``online`` overrides ``cfg.online``."""
    spec.validate()
    cfg.validate()
    if len(spec.layers) > lib.EBP_MAX_LAYERS:
        raise ConfigError(f"{len(spec.layers)} layers; the core supports at most {lib.EBP_MAX_LAYERS}")
    for w in spec.sizes:
        if w > lib.EBP_MAX_WIDTH:
            raise ConfigError(f"layer width {w} exceeds the core's limit of {lib.EBP_MAX_WIDTH}")
    c = ffi.new("ebp_cfg_t *")
    c.n_in = spec.n_in
    c.in_frac = spec.in_frac
    c.in_ch = spec.in_ch if spec.in_ch != 1 else 0
    c.n_layers = len(spec.layers)
    c.loss = LOSSES.index(spec.loss)
    c.optimizer = OPTIMIZERS.index(cfg.optimizer)
    c.rounding = ROUNDINGS.index(cfg.rounding)
    online = cfg.online if online is None else online
    c.flags = (lib.EBP_FLAG_FIXED_DELTA if cfg.fixed_delta else 0) | (lib.EBP_FLAG_ONLINE if online else 0)
    for i, l in enumerate(spec.layers):
        c.layers[i].n_out = l.n_out
        c.layers[i].act = ACTIVATIONS.index(l.act)
        c.layers[i].w_frac = l.w_frac
        c.layers[i].a_frac = l.a_frac
        c.layers[i].kind = KINDS.index(l.kind)
        c.layers[i].frozen = 0 if l.trainable else 1
        c.layers[i].kernel = l.kernel
        c.layers[i].stride = l.stride
        c.layers[i].w_bits = 0 if l.w_bits == 16 else l.w_bits
    check(lib.ebp_cfg_check(c), "network configuration")
    return c


def memory(spec: NetSpec, cfg: TrainConfig, train: bool = True, online: Optional[bool] = None) -> dict:
    """Bytes by part for this configuration, as the core lays it out."""
    mem = ffi.new("ebp_memory_t *")
    check(lib.ebp_net_memory(core_cfg(spec, cfg, online), lib.EBP_MODE_TRAIN if train else lib.EBP_MODE_INFER,
                             mem), "memory report")
    return {k: int(getattr(mem, k)) for k in
            ("weights", "biases", "gradients", "optimizer", "activations", "scratch", "total")}


class IntegerEngine(Engine):
    """An engine whose arithmetic is the core's integers (FixedNet on the host, DeviceNet on a board). Its
    float interface quantizes on the way in and dequantizes on the way out, around the integer primitives
    quantize_inputs, quantize_targets, train_q, predict_q, evaluate_q and get_int_weights."""

    def train_samples(self, X, T, batch_size: int) -> float:
        return self.train_q(self.quantize_inputs(X), self.quantize_targets(T), batch_size) * LOSS_SCALE / len(X)

    def predict(self, X) -> np.ndarray:
        return dequantize(self.predict_q(self.quantize_inputs(X)), self.spec.layers[-1].a_frac)

    def loss(self, X, T) -> float:
        X, T = check_data(self.spec, X, T)
        return self.evaluate_q(self.quantize_inputs(X), self.quantize_targets(T))[0] * LOSS_SCALE / len(X)

    def get_weights(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        return [(dequantize(W, l.w_frac), dequantize(b, l.w_frac))
                for (W, b), l in zip(self.get_int_weights(), self.spec.layers)]


class FixedNet(IntegerEngine):
    """A network trained in integer arithmetic by the C core, exactly as on the device."""

    name = "fixed"

    def __init__(self, spec: NetSpec, cfg: TrainConfig = None, train: bool = True):
        self.spec, self.cfg = spec, cfg or TrainConfig()
        self._train = train
        self._layout(self.cfg.online)
        p = self.core_params()
        check(lib.ebp_net_init_weights(self._net, p["init_kind"], p["init_range_q12"], p["seed"]), "weight init")
        check(lib.ebp_net_seed(self._net, p["seed"]), "rounding seed")
        self.set_hparams(self.cfg.lr, self.cfg.momentum)

    def _layout(self, online: bool) -> None:
        """A new, zeroed core network in a new buffer, with (online False) or without gradient memory."""
        self._online = online
        self._cfg = core_cfg(self.spec, self.cfg, online)
        self._mem = memory(self.spec, self.cfg, self._train, online)
        # int64 elements keep the buffer 8-byte aligned, as the core requires
        self._buf = ffi.new("int64_t[]", (self._mem["total"] + 7) // 8)
        self._net = ffi.new("ebp_net_t *")
        check(lib.ebp_net_init(self._net, self._cfg, lib.EBP_MODE_TRAIN if self._train else lib.EBP_MODE_INFER,
                               self._buf, self._mem["total"]), "network init")

    def _add_gradient_memory(self) -> None:
        """Lays an automatically online network (TrainConfig.online_only None) out again with gradient
        memory. Weights, biases, the rounding generator, counters and the step count carry over, and neither
        layout changes an integer, so training goes on exactly as if it had had gradient memory from the
        start."""
        weights, stats, rng, steps = self.get_int_weights(), self.stats(), self._net.rng, self._net.steps
        self._layout(False)
        self.set_int_weights(weights)
        for i, st in enumerate(stats):
            for f, v in st.items():
                setattr(self._net.layers[i].stats, f, v)
        self._net.rng, self._net.steps = rng, steps
        self.set_hparams(self.cfg.lr, self.cfg.momentum)

    # --- integer interface (what the device sees) ----------------------------------------------------------
    def core_params(self) -> dict:
        """Every integer the device needs to build this network (enum values as ints). ``layers`` holds
        (n_out, act, w_frac, a_frac) per layer; a network that uses any ebp_cfg_t field added since (input
        channels, layer kinds, frozen layers, int8 weights) also has ``in_ch`` and ``layer_ext``, per layer
        (kind, frozen, kernel, stride, w_bits) as the core stores them (0: the default)."""
        lr_m, lr_e = self.cfg.quantized_lr()
        c = self._cfg
        p = dict(n_in=c.n_in, in_frac=c.in_frac, loss=c.loss, optimizer=c.optimizer, rounding=c.rounding,
                 flags=c.flags,
                 layers=[(c.layers[i].n_out, c.layers[i].act, c.layers[i].w_frac, c.layers[i].a_frac)
                         for i in range(c.n_layers)],
                 lr_m=lr_m, lr_e=lr_e, momentum_q15=self.cfg.quantized_momentum(),
                 init_kind=INITS.index(self.cfg.init),
                 init_range_q12=int(quantize(self.cfg.init_range, 12, "init_range")),
                 seed=self.cfg.seed & 0xFFFFFFFF)
        ext = [(c.layers[i].kind, c.layers[i].frozen, c.layers[i].kernel, c.layers[i].stride, c.layers[i].w_bits)
               for i in range(c.n_layers)]
        if c.in_ch or any(any(e) for e in ext):
            p["in_ch"] = c.in_ch
            p["layer_ext"] = ext
        return p

    def set_hparams(self, lr: float, momentum: float = 0.0) -> None:
        self.cfg.lr, self.cfg.momentum = lr, momentum
        self.cfg.validate()
        hp = ffi.new("ebp_hparams_t *")
        hp.lr_m, hp.lr_e = self.cfg.quantized_lr()
        if hp.lr_e < -80:
            raise ConfigError(f"learning rate {lr} is too small for the core (below 2^-64)")
        hp.momentum_q15 = self.cfg.quantized_momentum()
        check(lib.ebp_net_set_hparams(self._net, hp), "hyperparameters")

    def quantize_inputs(self, X) -> np.ndarray:
        X, _ = check_data(self.spec, X)
        return np.ascontiguousarray(quantize(X, self.spec.in_frac, "inputs"))

    def quantize_targets(self, T) -> np.ndarray:
        T = np.asarray(T, dtype=np.float64)
        if T.ndim != 2 or T.shape[1] != self.spec.n_out:
            raise DataError(f"targets must have shape (n, {self.spec.n_out}), got {T.shape}")
        return np.ascontiguousarray(quantize(T, self.spec.layers[-1].a_frac, "targets"))

    def _rows(self, A: np.ndarray, width: int, what: str) -> np.ndarray:
        A = np.ascontiguousarray(A)
        if A.dtype != np.int16 or A.ndim != 2 or A.shape[1] != width:
            raise DataError(f"{what} must be an int16 array of shape (n, {width}), got {A.dtype} {A.shape}")
        return A

    def train_q(self, Xq, Tq, batch_size: int) -> int:
        """Trains on quantized rows in order; returns the Q16 sum of the per-sample losses."""
        Xq = self._rows(Xq, self.spec.n_in, "inputs")
        Tq = self._rows(Tq, self.spec.n_out, "targets")
        if len(Xq) != len(Tq):
            raise DataError(f"{len(Xq)} input rows but {len(Tq)} target rows")
        if self._online and batch_size != 1:
            if self.cfg.online_only:
                raise ConfigError(f"an online_only network trains with batch_size 1 and sgd only (got batch_size "
                                  f"{batch_size}); build it with online_only=False to train in batches")
            self._add_gradient_memory()
        loss = ffi.new("int64_t *")
        check(lib.ebp_train(self._net, ffi.from_buffer("int16_t[]", Xq), ffi.from_buffer("int16_t[]", Tq),
                            len(Xq), batch_size, loss), "train")
        return int(loss[0])

    def predict_q(self, Xq) -> np.ndarray:
        Xq = self._rows(Xq, self.spec.n_in, "inputs")
        Y = np.empty((len(Xq), self.spec.n_out), dtype=np.int16)
        check(lib.ebp_predict(self._net, ffi.from_buffer("int16_t[]", Xq), len(Xq),
                              ffi.from_buffer("int16_t[]", Y)), "predict")
        return Y

    def evaluate_q(self, Xq, Tq) -> Tuple[int, int]:
        """(Q16 loss sum, correctly classified count) as the core computes them."""
        Xq = self._rows(Xq, self.spec.n_in, "inputs")
        Tq = self._rows(Tq, self.spec.n_out, "targets")
        loss, correct = ffi.new("int64_t *"), ffi.new("uint32_t *")
        check(lib.ebp_evaluate(self._net, ffi.from_buffer("int16_t[]", Xq), ffi.from_buffer("int16_t[]", Tq),
                               len(Xq), loss, correct), "evaluate")
        return int(loss[0]), int(correct[0])

    def _array(self, ptr, n: int, dtype) -> np.ndarray:
        return np.frombuffer(ffi.buffer(ptr, n * np.dtype(dtype).itemsize), dtype=dtype)

    def get_int_weights(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        out = []
        for i, (ws, bs) in enumerate(self.spec.param_shapes()):
            L = self._net.layers[i]
            if L.n_w == 0:
                out.append((np.zeros(ws, np.int16), np.zeros(bs, np.int16)))
                continue
            if L.w8 != ffi.NULL:      # int8 weights
                out.append((self._array(L.w8, L.n_w, np.int8).reshape(ws).copy(),
                            self._array(L.b8, L.n_b, np.int8).copy()))
                continue
            W = self._array(L.w, L.n_w, np.int16).reshape(ws).copy()
            out.append((W, self._array(L.b, L.n_b, np.int16).copy()))
        return out

    def set_int_weights(self, weights) -> None:
        if len(weights) != len(self.spec.layers):
            raise ConfigError(f"{len(weights)} layers of weights given for {len(self.spec.layers)} layers")
        shapes = self.spec.param_shapes()
        for i, (W, b) in enumerate(weights):
            L = self._net.layers[i]
            W, b = np.asarray(W), np.asarray(b)
            ws, bs = shapes[i]
            if W.shape != ws or b.shape != bs:
                raise ConfigError(f"layer {i}: weights must be {ws} and biases {bs}, got {W.shape} and {b.shape}")
            if L.n_w == 0:
                continue
            if W.dtype.kind not in "iu" or b.dtype.kind not in "iu":
                raise DataError(f"layer {i}: integer weights expected, got {W.dtype}; use set_weights for floats")
            lo, hi = (-128, 127) if L.w8 != ffi.NULL else (-32768, 32767)
            if W.size and (min(W.min(), b.min()) < lo or max(W.max(), b.max()) > hi):
                raise DataError(f"layer {i}: integer weights outside int{8 if lo == -128 else 16} "
                                f"[{lo}, {hi}]")
        for i, (W, b) in enumerate(weights):
            L = self._net.layers[i]
            if L.w8 != ffi.NULL:
                self._array(L.w8, L.n_w, np.int8)[:] = np.asarray(W).ravel()
                self._array(L.b8, L.n_b, np.int8)[:] = b
            elif L.n_w:
                self._array(L.w, L.n_w, np.int16)[:] = np.asarray(W).ravel()
                self._array(L.b, L.n_b, np.int16)[:] = b

    def stats(self) -> List[dict]:
        """Per layer: saturation and update counters since the last clear_stats()."""
        fields = ("sat_out", "sat_delta", "sat_grad", "sat_param", "sat_vel", "updates", "zero_updates")
        return [{f: int(getattr(self._net.layers[i].stats, f)) for f in fields} for i in range(len(self.spec.layers))]

    def clear_stats(self) -> None:
        check(lib.ebp_net_clear_stats(self._net), "clear stats")

    @property
    def steps(self) -> int:
        return int(self._net.steps)

    # --- Engine interface beyond IntegerEngine's --------------------------------------------------------
    def gradients(self, X, T) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Mean gradient over the rows, computed by the core and dequantized; weights are unchanged. A network
        without gradient memory computes them in a copy of itself that has it (host memory, same integers)."""
        if self._online:
            twin = FixedNet(self.spec, dataclasses.replace(self.cfg, online_only=False), self._train)
            twin.set_int_weights(self.get_int_weights())
            return twin.gradients(X, T)
        X, T = check_data(self.spec, X, T)
        Xq, Tq = self.quantize_inputs(X), self.quantize_targets(T)
        check(lib.ebp_zero_grad(self._net), "zero_grad")
        for x, t in zip(Xq, Tq):
            check(lib.ebp_forward(self._net, ffi.from_buffer("int16_t[]", x), ffi.NULL), "forward")
            check(lib.ebp_backward(self._net, ffi.from_buffer("int16_t[]", t), ffi.NULL), "backward")
        out = []
        n = self._net.grad_count
        for i, (ws, bs) in enumerate(self.spec.param_shapes()):
            L = self._net.layers[i]
            if L.gw == ffi.NULL:   # frozen, or no parameters: no gradient
                out.append((np.zeros(ws), np.zeros(bs)))
                continue
            scale = 0.0 if L.g_exp == -32768 else 2.0 ** L.g_exp / n
            gW = self._array(L.gw, L.n_w, np.int32).reshape(ws) * scale
            out.append((gW, self._array(L.gb, L.n_b, np.int32) * scale))
        check(lib.ebp_zero_grad(self._net), "zero_grad")
        return out

    def set_weights(self, weights) -> None:
        if len(weights) != len(self.spec.layers):
            raise ConfigError(f"{len(weights)} layers of weights given for {len(self.spec.layers)} layers")
        self.set_int_weights([(quantize(W, l.w_frac, f"layer {i} weights", l.w_bits),
                               quantize(b, l.w_frac, f"layer {i} biases", l.w_bits))
                              for i, ((W, b), l) in enumerate(zip(weights, self.spec.layers))])

    def memory_report(self) -> dict:
        return dict(self._mem)
