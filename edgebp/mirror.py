"""float64 mirror of the C core: the math of csrc/edgebp.h in numpy, exact up to float rounding.

Every layer kind of the core has its op here (dense, conv1d, max/avg pooling, global average pooling; a
shaped batch is (n, channels x length), channel-major, reshaped to (n, channels, length) inside the ops).
Frozen layers (Layer.trainable False) are never updated and, below the lowest trained layer, get no deltas.
A layer's storage (``w_bits``: int16 or int8 weights in the core) does not change the math here: the mirror
is float64 throughout, which is what the int8 core is measured against.

The core's weight updates are rounded, to the nearest or stochastically (the default); the mirror applies the
exact update, which is what stochastic rounding gives in expectation: each parameter's dither is uniform (one
xorshift32 draw per row of the online update, spread over the row's parameters by a Weyl sequence; one draw per
parameter in ebp_step), so no rounding is biased. The fixed-point core is judged against this. Ops are pure functions, forward beside backward; ``FloatNet``
strings them together. A batch of vectors is an array (n, width), one row per sample; weights are
(n_out, n_in) as in the core.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np

from .config import ACTIVATIONS, Layer, NetSpec, TrainConfig
from .engine import Engine, check_data
from .errors import ConfigError, DataError

LOG_MIN = 1e-300   # cross-entropy clips what it hands to ln into [LOG_MIN, 1]
F64 = 8            # bytes per stored value


# --- activations: y = f(z); the derivative is computed from the output y, as the core does -----------------
def act_forward(name: str, z: np.ndarray) -> np.ndarray:
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "sigmoid":                      # 1 / (1 + exp(-z)) without overflow for any z
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0, e) / (1.0 + e)
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":                      # over the last axis, max subtracted
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def act_backward(name: str, y: np.ndarray) -> np.ndarray:
    """f'(z) as a function of y = f(z), elementwise. Softmax has none: with cross-entropy it cancels."""
    if name == "linear":
        return np.ones_like(y)
    if name == "relu":
        return (y > 0).astype(np.float64)
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "tanh":
        return 1.0 - y * y
    raise ConfigError(f"activation {name!r} has no elementwise derivative (softmax needs loss='ce')")


# --- losses: per-sample value beside the output delta dL/dz -------------------------------------------------
def _ln(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, LOG_MIN, 1.0))


def loss_forward(loss: str, out_act: str, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-sample loss, shape (n,), of outputs y (n, n_out) against targets t (n, n_out)."""
    if loss == "mse":
        return 0.5 * np.sum((y - t) ** 2, axis=-1)
    if loss == "ce" and out_act == "softmax":
        return -np.sum(t * _ln(y), axis=-1)
    if loss == "ce" and out_act == "sigmoid":
        return -np.sum(t * _ln(y) + (1.0 - t) * _ln(1.0 - y), axis=-1)
    raise ConfigError(f"loss {loss!r} with a {out_act!r} output layer is not supported")


def loss_delta(loss: str, out_act: str, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Output-layer delta dL/dz (n, n_out): (y - t) f'(y) for mse; y - t for ce (f' cancels)."""
    if loss == "mse":
        return (y - t) * act_backward(out_act, y)
    if loss == "ce" and out_act in ("softmax", "sigmoid"):
        return y - t
    raise ConfigError(f"loss {loss!r} with a {out_act!r} output layer is not supported")


# --- dense layer ----------------------------------------------------------------------------------------------
def dense_forward(W: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """z = W x + b for every row of x (n, n_in) -> (n, n_out)."""
    return x @ W.T + b


def dense_backward(W: np.ndarray, x: np.ndarray, delta: np.ndarray):
    """Mean over the rows of dW = delta x^T (n_out, n_in) and db = delta (n_out,); and W^T delta (n, n_in)."""
    n = len(x)
    return delta.T @ x / n, delta.sum(axis=0) / n, delta @ W


# --- conv1d: x (n, C, T) channel-major, W (F, C, K), stride s, 'valid' padding -> (n, F, T_out) ---------------
def _windows(T: int, K: int, s: int) -> np.ndarray:
    """(T_out, K) input positions of every window."""
    T_out = (T - K) // s + 1
    return np.arange(T_out)[:, None] * s + np.arange(K)[None, :]


def conv1d_forward(W: np.ndarray, b: np.ndarray, x: np.ndarray, stride: int) -> np.ndarray:
    """z[o, t] = b[o] + sum_{c, j} W[o, c, j] x[c, t s + j]."""
    idx = _windows(x.shape[2], W.shape[2], stride)
    return np.einsum("nctk,fck->nft", x[:, :, idx], W) + b[None, :, None]


def conv1d_backward(W: np.ndarray, x: np.ndarray, delta: np.ndarray, stride: int):
    """Mean over the rows of dW[o, c, j] = sum_t delta[o, t] x[c, t s + j], db[o] = sum_t delta[o, t]; and
    dL/dx (n, C, T), every window's share added at its positions."""
    n, K = len(x), W.shape[2]
    idx = _windows(x.shape[2], K, stride)
    dW = np.einsum("nft,nctk->fck", delta, x[:, :, idx]) / n
    dx = np.zeros_like(x)
    for j in range(K):
        dx[:, :, idx[:, j]] += np.einsum("nft,fc->nct", delta, W[:, :, j])
    return dW, delta.sum(axis=(0, 2)) / n, dx


# --- pooling: per channel over windows of K every s (global: one window of the whole length) ----------------
def pool_forward(kind: str, x: np.ndarray, K: int, stride: int) -> np.ndarray:
    """(n, C, T) -> (n, C, T_out): the maximum or the mean of each window."""
    w = x[:, :, _windows(x.shape[2], K, stride)]
    return w.max(axis=3) if kind == "max" else w.mean(axis=3)


def pool_backward(kind: str, x: np.ndarray, delta: np.ndarray, K: int, stride: int) -> np.ndarray:
    """dL/dx (n, C, T): max pooling routes each window's delta to its first maximum, mean pooling spreads
    delta / K over the window; overlapping windows add up."""
    idx = _windows(x.shape[2], K, stride)
    dx = np.zeros_like(x)
    if kind == "max":
        first = x[:, :, idx].argmax(axis=3)                      # (n, C, T_out), the first maximum
        pos = idx[np.arange(idx.shape[0])[None, None, :], first]
        n, C, T_out = delta.shape
        np.add.at(dx, (np.arange(n)[:, None, None], np.arange(C)[None, :, None], pos), delta)
    else:
        for j in range(K):
            dx[:, :, idx[:, j]] += delta / K
    return dx


# --- one layer of any kind on flat rows (n, channels x length), channel-major ---------------------------------
def layer_forward(l: Layer, shape_in, W, b, x: np.ndarray) -> np.ndarray:
    """The pre-activation z (n, n_out) of layer l whose input has shape (C, T)."""
    n = len(x)
    if l.kind == "dense":
        return dense_forward(W, b, x)
    xs = x.reshape(n, *shape_in)
    if l.kind == "conv1d":
        return conv1d_forward(W, b, xs, l.stride or 1).reshape(n, -1)
    if l.kind == "gap":
        return xs.mean(axis=2)
    return pool_forward(l.kind[:3], xs, l.kernel, l.stride or l.kernel).reshape(n, -1)


def layer_backward(l: Layer, shape_in, W, x: np.ndarray, delta: np.ndarray):
    """(dW, db, dL/dx (n, n_in)) of layer l for deltas dL/dz (n, n_out); pooling has no dW, db (None)."""
    n = len(x)
    if l.kind == "dense":
        return dense_backward(W, x, delta)
    xs = x.reshape(n, *shape_in)
    if l.kind == "conv1d":
        dW, db, dx = conv1d_backward(W, xs, delta.reshape(n, W.shape[0], -1), l.stride or 1)
        return dW, db, dx.reshape(n, -1)
    if l.kind == "gap":
        return None, None, np.repeat(delta / shape_in[1], shape_in[1], axis=1)
    dx = pool_backward(l.kind[:3], xs, delta.reshape(n, shape_in[0], -1), l.kernel, l.stride or l.kernel)
    return None, None, dx.reshape(n, -1)


# --- initialisation (float; FixedNet normally hands its own dequantized weights instead) --------------------
def init_weights(spec: NetSpec, cfg: TrainConfig) -> List[Tuple[np.ndarray, np.ndarray]]:
    """uniform: W and b in [-init_range, init_range]; xavier: W +-sqrt(6/(fan_in+fan_out)); he: +-sqrt(6/fan_in),
    b 0 (fan in: inputs per output, dense n_in, conv1d channels x kernel; fan out: n_out, or filters x kernel)."""
    if cfg.init == "uniform" and not (math.isfinite(cfg.init_range) and cfg.init_range >= 0):
        raise ConfigError(f"init_range must be a finite number >= 0, got {cfg.init_range}")
    rng = np.random.default_rng(cfg.seed)
    out = []
    for (ws, bs), l in zip(spec.param_shapes(), spec.layers):
        if not l.has_params:
            out.append((np.zeros(ws), np.zeros(bs)))
            continue
        fan_in = int(np.prod(ws[1:]))
        fan_out = ws[0] * (l.kernel if l.kind == "conv1d" else 1)
        if cfg.init == "uniform":
            r = cfg.init_range
            out.append((rng.uniform(-r, r, ws), rng.uniform(-r, r, bs)))
        else:
            r = math.sqrt(6.0 / (fan_in + fan_out)) if cfg.init == "xavier" else math.sqrt(6.0 / fan_in)
            out.append((rng.uniform(-r, r, ws), np.zeros(bs)))
    return out


class FloatNet(Engine):
    """The float64 reference engine. ``weights``: per layer (W (n_out, n_in), b (n_out,)), e.g. FixedNet's."""

    name = "float"

    def __init__(self, spec: NetSpec, cfg: TrainConfig, weights=None):
        spec.validate()
        cfg.validate()
        self.spec, self.cfg = spec, cfg
        self.acts = [l.act for l in spec.layers]
        self.shapes = spec.shapes()                  # (channels, length) of the input and of every output
        self.first_train = spec.first_train
        self.lr = cfg.effective_lr()                 # the quantized values the integer core uses
        self.mu = cfg.effective_momentum()
        self.set_weights(init_weights(spec, cfg) if weights is None else weights)
        self.vW = [np.zeros_like(W) for W in self.W]  # momentum velocities, persist across steps
        self.vb = [np.zeros_like(b) for b in self.b]
        self.steps = 0                                # optimizer steps applied

    # --- passes on a checked batch ------------------------------------------------------------------------------
    def _forward(self, X: np.ndarray) -> List[np.ndarray]:
        """[X, y_1, ..., y_L], each (n, width)."""
        a = [X]
        for l, (W, b, layer) in enumerate(zip(self.W, self.b, self.spec.layers)):
            a.append(act_forward(layer.act, layer_forward(layer, self.shapes[l], W, b, a[-1])))
        return a

    def _backward(self, a: List[np.ndarray], T: np.ndarray):
        """(mean gradients per layer, per-sample losses (n,)) of the batch whose forward activations are a."""
        y = a[-1]
        losses = loss_forward(self.spec.loss, self.acts[-1], y, T)
        delta = loss_delta(self.spec.loss, self.acts[-1], y, T)
        grads = [(np.zeros_like(W), np.zeros_like(b)) for W, b in zip(self.W, self.b)]  # frozen: none
        for l in range(len(self.W) - 1, self.first_train - 1, -1):  # the layers below run forward only
            layer = self.spec.layers[l]
            dW, db, back = layer_backward(layer, self.shapes[l], self.W[l], a[l], delta)
            if layer.trainable and dW is not None:
                grads[l] = (dW, db)
            if l > self.first_train:
                delta = back * act_backward(self.acts[l - 1], a[l])
        return grads, losses

    def _step(self, grads) -> None:
        for l, (gW, gb) in enumerate(grads):
            if not (self.spec.layers[l].trainable and self.spec.layers[l].has_params):
                continue                           # frozen: never updated, no velocity
            if self.cfg.optimizer == "momentum":   # v = mu v + lr g; w -= v
                for v, g in ((self.vW[l], gW), (self.vb[l], gb)):
                    v *= self.mu
                    v += self.lr * g
                self.W[l] -= self.vW[l]
                self.b[l] -= self.vb[l]
            else:                                  # w -= lr g
                self.W[l] -= self.lr * gW
                self.b[l] -= self.lr * gb
        self.steps += 1

    # --- Engine primitives --------------------------------------------------------------------------------------
    def forward(self, X) -> List[np.ndarray]:
        """Outputs of every layer [y_1, ..., y_L] for the rows of X."""
        X, _ = check_data(self.spec, X)
        return self._forward(X)[1:]

    def train_samples(self, X, T, batch_size: int) -> float:
        X, T = check_data(self.spec, X, T)
        n = len(X)
        if n == 0:
            return float("nan")
        bs = batch_size if batch_size > 0 else n
        total = 0.0
        for s in range(0, n, bs):
            grads, losses = self._backward(self._forward(X[s:s + bs]), T[s:s + bs])
            total += float(losses.sum())
            self._step(grads)
        return total / n

    def predict(self, X) -> np.ndarray:
        X, _ = check_data(self.spec, X)
        return self._forward(X)[-1]

    def loss(self, X, T) -> float:
        X, T = check_data(self.spec, X, T)
        if len(X) == 0:
            return float("nan")
        return float(np.mean(loss_forward(self.spec.loss, self.acts[-1], self._forward(X)[-1], T)))

    def gradients(self, X, T) -> List[Tuple[np.ndarray, np.ndarray]]:
        X, T = check_data(self.spec, X, T)
        if len(X) == 0:
            raise DataError("gradients need at least one sample")
        return self._backward(self._forward(X), T)[0]

    def get_weights(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b)]

    def set_weights(self, weights) -> None:
        """Copies weights in; velocities are left as they are. All layers are checked before any is set."""
        shapes, L = self.spec.param_shapes(), len(self.spec.layers)
        try:
            pairs = [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in weights]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"weights must be a list of (W, b) numeric array pairs, one per layer: {e}") from None
        if len(pairs) != L:
            raise ConfigError(f"expected {L} (W, b) pairs, one per layer, got {len(pairs)}")
        for l, (W, b) in enumerate(pairs):
            if W.shape != shapes[l][0] or b.shape != shapes[l][1]:
                raise ConfigError(f"layer {l}: W must be {shapes[l][0]} and b {shapes[l][1]}, "
                                  f"got {W.shape} and {b.shape}")
            if not (np.isfinite(W).all() and np.isfinite(b).all()):
                raise DataError(f"layer {l}: weights or biases contain NaN or inf")
        self.W = [W for W, _ in pairs]
        self.b = [b for _, b in pairs]

    def memory_report(self) -> dict:
        """Bytes a float64 implementation of this network stores, by the same parts as the core's ebp_memory_t."""
        s, layers = self.spec.sizes, self.spec.layers
        params = [int(np.prod(ws)) if l.has_params else 0 for (ws, _), l in zip(self.spec.param_shapes(), layers)]
        biases = [ws[0] if l.has_params else 0 for (ws, _), l in zip(self.spec.param_shapes(), layers)]
        trained = sum(w + b for w, b, l in zip(params, biases, layers) if l.trainable)
        weights = F64 * sum(params)
        rep = {"weights": weights, "biases": F64 * sum(biases), "gradients": F64 * trained,
               "optimizer": F64 * trained if self.cfg.optimizer == "momentum" else 0,
               # input and layer outputs, plus deltas from the lowest trained layer up
               "activations": F64 * (sum(s) + sum(s[1 + self.first_train:])),
               "scratch": 0}                                 # float needs no wide accumulator
        rep["total"] = sum(rep.values())
        return rep
