"""Network and training descriptions shared by the fixed-point core, the float mirror and the device."""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from dataclasses import dataclass, asdict
from typing import List, Optional, Sequence, Tuple

from .errors import ConfigError

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
LOSSES = ("mse", "ce")
OPTIMIZERS = ("sgd", "momentum")
ROUNDINGS = ("nearest", "stochastic")
INITS = ("uniform", "xavier", "he")


KINDS = ("dense", "conv1d", "maxpool1d", "avgpool1d", "gap")
PARAM_KINDS = ("dense", "conv1d")          # kinds with weights and biases
W_BITS = (16, 8)

# fields added after the dense-only Layer, with the default that means "as before" (to_dict leaves them out
# at their default, so older descriptions and golden files read the same)
_LAYER_DEFAULTS = dict(trainable=True, kind="dense", kernel=0, stride=0, w_bits=16)


@dataclass
class Layer:
    """One layer. ``kind`` dense (``n_out`` neurons with learned biases), conv1d (``n_out`` filters of width
    ``kernel`` every ``stride`` samples, 'valid' padding), maxpool1d / avgpool1d (windows of ``kernel`` every
    ``stride``, 0 = the window; ``n_out`` 0: the channels are kept), gap (global average pooling).
    ``trainable`` False freezes the layer (its weights are never updated); ``w_bits`` the storage of weights
    and biases. Build shaped models with ``NetSpec.sequential`` and ``Dense``, ``Conv1D``, ``MaxPool1D``..."""
    n_out: int
    act: str = "sigmoid"
    w_frac: int = 12   # fractional bits of weights and biases
    a_frac: int = 12   # fractional bits of the outputs (int16); pooling layers keep their input's
    trainable: bool = True
    kind: str = "dense"
    kernel: int = 0
    stride: int = 0
    w_bits: int = 16

    @property
    def has_params(self) -> bool:
        return self.kind in PARAM_KINDS

    def describe(self) -> str:
        bits = ",w_bits=8" if self.w_bits == 8 else ""
        if self.kind == "dense":
            return f"dense({self.n_out},act={self.act}{bits})"
        if self.kind == "conv1d":
            return f"conv1d({self.n_out},{self.kernel},stride={self.stride or 1},act={self.act}{bits})"
        if self.kind == "gap":
            return "gap"
        return f"{self.kind}({self.kernel}" + (f",stride={self.stride}" if self.stride else "") + ")"


def Dense(n_out: int, act: str = "sigmoid", w_frac: int = 12, a_frac: int = 12, w_bits: int = 16,
          trainable: bool = True) -> Layer:
    """A dense layer over the whole input (a shaped input is read flattened, channel-major)."""
    return Layer(n_out, act, w_frac, a_frac, trainable, "dense", 0, 0, w_bits)


def Conv1D(filters: int, kernel: int, stride: int = 1, act: str = "relu", w_frac: int = 12, a_frac: int = 12,
           w_bits: int = 16, trainable: bool = True) -> Layer:
    """``filters`` output channels, each a (input channels, ``kernel``) filter plus a bias, 'valid' padding."""
    return Layer(filters, act, w_frac, a_frac, trainable, "conv1d", kernel, stride, w_bits)


def MaxPool1D(pool: int, stride: Optional[int] = None) -> Layer:
    return Layer(0, "linear", 0, -1, True, "maxpool1d", pool, stride or 0)


def AvgPool1D(pool: int, stride: Optional[int] = None) -> Layer:
    return Layer(0, "linear", 0, -1, True, "avgpool1d", pool, stride or 0)


def GlobalAvgPool1D() -> Layer:
    return Layer(0, "linear", 0, -1, True, "gap")


class Flatten:
    """Accepted by ``NetSpec.sequential`` for readability: a dense layer reads a shaped input flattened
    (channel-major) anyway, so it adds no layer (and no memory)."""


@dataclass
class NetSpec:
    """``n_in`` inputs (Q ``in_frac``; ``in_ch`` channels of ``n_in // in_ch`` values, channel-major), then
    ``layers``, trained on ``loss``."""
    n_in: int
    layers: List[Layer]
    loss: str = "mse"
    in_frac: int = 12
    in_ch: int = 1

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    @property
    def input_shape(self) -> Tuple[int, int]:
        return (self.in_ch, self.n_in // self.in_ch if self.in_ch else 0)

    def shapes(self) -> List[Tuple[int, int]]:
        """[(channels, length) of the input, then of every layer's output]; ConfigError if a layer does not
        fit its input."""
        if self.in_ch < 1 or self.n_in < 1 or self.n_in % self.in_ch:
            raise ConfigError(f"{self.n_in} inputs do not split into {self.in_ch} channels of equal length")
        out = [self.input_shape]
        for i, l in enumerate(self.layers):
            ch, n = out[-1]
            what = f"layer {i} ({l.describe()})"
            if l.kind == "dense":
                out.append((l.n_out, 1))
                continue
            if l.kind == "gap":
                out.append((ch, 1))
                continue
            if l.kernel < 1 or l.kernel > 255:
                raise ConfigError(f"{what}: the window must be 1..255, got {l.kernel}")
            if l.kernel > n:
                raise ConfigError(f"{what}: window {l.kernel} is longer than its input (length {n}); use a "
                                  f"smaller kernel or pool, or fewer strides before it")
            if not 0 <= l.stride <= 255:
                raise ConfigError(f"{what}: stride must be 0..255, got {l.stride}")
            s = l.stride or (1 if l.kind == "conv1d" else l.kernel)
            out.append((l.n_out if l.kind == "conv1d" else ch, (n - l.kernel) // s + 1))
        return out

    @property
    def sizes(self) -> List[int]:
        """Flat widths: the inputs, then every layer's outputs (channels x length)."""
        return [c * n for c, n in self.shapes()]

    def param_shapes(self) -> List[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
        """Per layer, the shapes of W and b: dense (n_out, n_in) and (n_out,), conv1d (filters, in channels,
        kernel) and (filters,), pooling (0,) and (0,)."""
        shapes, out = self.shapes(), []
        for (ch, n), l in zip(shapes, self.layers):
            if l.kind == "dense":
                out.append(((l.n_out, ch * n), (l.n_out,)))
            elif l.kind == "conv1d":
                out.append(((l.n_out, ch, l.kernel), (l.n_out,)))
            else:
                out.append(((0,), (0,)))
        return out

    @property
    def first_train(self) -> int:
        """The lowest layer that gets deltas: the lowest trainable layer with parameters (len(layers) if
        none); the layers below it run forward only."""
        return next((i for i, l in enumerate(self.layers) if l.trainable and l.has_params), len(self.layers))

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], activation="sigmoid", loss="mse", w_frac=12, a_frac=12,
                   in_frac=12) -> "NetSpec":
        """``sizes`` = [n_in, hidden..., n_out]; ``activation`` is one name or one per layer."""
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ConfigError(f"need at least an input and an output size, got {sizes}")
        n = len(sizes) - 1
        acts = [activation] * n if isinstance(activation, str) else list(activation)
        if len(acts) != n:
            raise ConfigError(f"{len(acts)} activations given for {n} layers; give one, or one per layer")
        spec = cls(sizes[0], [Layer(s, a, w_frac, a_frac) for s, a in zip(sizes[1:], acts)], loss, in_frac)
        spec.validate()
        return spec

    @classmethod
    def sequential(cls, input, layers, loss: Optional[str] = None, in_frac: int = 12) -> "NetSpec":
        """A model that reads like Keras's Sequential: ``input`` = (channels, length) or a number of inputs;
        ``layers`` of Dense, Conv1D, MaxPool1D, AvgPool1D, GlobalAvgPool1D (and Flatten, which adds nothing).
        ``loss`` defaults to 'ce' for a softmax output, else 'mse'. Pooling layers take their input's format."""
        if isinstance(input, int):
            ch, n = 1, int(input)
        else:
            try:
                ch, n = (int(v) for v in input)
            except (TypeError, ValueError):
                raise ConfigError(f"input must be (channels, length) or a number of inputs, got {input!r}") from None
        out = []
        for l in layers:
            if isinstance(l, Flatten) or l is Flatten:
                continue
            if not isinstance(l, Layer):
                raise ConfigError(f"{l!r} is not a layer; use Dense, Conv1D, MaxPool1D, AvgPool1D or GlobalAvgPool1D")
            out.append(dataclasses.replace(l))
        if not out:
            raise ConfigError("a network needs at least one layer")
        frac = in_frac
        for l in out:          # pooling keeps the format of what it pools
            if l.kind in ("maxpool1d", "avgpool1d", "gap"):
                l.a_frac = frac
            frac = l.a_frac
        if loss is None:
            loss = "ce" if out[-1].act == "softmax" else "mse"
        spec = cls(ch * n, out, loss, in_frac, ch)
        spec.validate()
        return spec

    def with_trainable_last(self, k: int) -> "NetSpec":
        """A copy in which only the last ``k`` layers with parameters (dense, conv1d) are trained; the others
        are frozen, and the layers below the lowest trained one run forward only (no deltas, no gradient
        memory)."""
        n = sum(l.has_params for l in self.layers)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= n:
            raise ConfigError(f"train the last k layers with k in 1..{n} (this network has {n} layers with "
                              f"weights), got {k!r}")
        spec = copy.deepcopy(self)
        seen = 0
        for l in reversed(spec.layers):
            if l.has_params:
                seen += 1
                l.trainable = seen <= k
        return spec

    def validate(self) -> None:
        if not self.layers:
            raise ConfigError("a network needs at least one layer")
        if self.n_in < 1:
            raise ConfigError(f"n_in must be at least 1, got {self.n_in}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        for f in [self.in_frac] + [l.w_frac for l in self.layers] + [l.a_frac for l in self.layers]:
            if not 0 <= f <= 15:
                raise ConfigError(f"fractional bits must be 0..15 for int16 tensors, got {f}")
        for i, l in enumerate(self.layers):
            if l.kind not in KINDS:
                raise ConfigError(f"layer {i}: unknown kind {l.kind!r}; choose one of {', '.join(KINDS)}")
            if l.act not in ACTIVATIONS:
                raise ConfigError(f"layer {i}: unknown activation {l.act!r}; choose one of {', '.join(ACTIVATIONS)}")
            if l.trainable not in (True, False):
                raise ConfigError(f"layer {i}: trainable must be True or False, got {l.trainable!r}")
            if l.w_bits not in W_BITS:
                raise ConfigError(f"layer {i}: w_bits must be 16 or 8, got {l.w_bits!r}")
            if l.has_params and l.n_out < 1:
                raise ConfigError(f"layer {i}: n_out must be at least 1, got {l.n_out}")
            if l.kind == "dense" and (l.kernel or l.stride):
                raise ConfigError(f"layer {i}: a dense layer has no kernel or stride")
            if not l.has_params:
                if l.n_out != 0 or l.act != "linear":
                    raise ConfigError(f"layer {i}: a {l.kind} layer has n_out 0 and act 'linear' (it keeps the "
                                      f"channels); build it with MaxPool1D, AvgPool1D or GlobalAvgPool1D")
                if l.w_bits != 16:
                    raise ConfigError(f"layer {i}: a {l.kind} layer has no weights to store in {l.w_bits} bits")
                if l.kind == "gap" and (l.kernel or l.stride):
                    raise ConfigError(f"layer {i}: global average pooling has no window or stride")
            if l.act == "softmax" and (i != len(self.layers) - 1 or self.loss != "ce" or l.kind != "dense"):
                raise ConfigError("softmax is only supported on a dense output layer with loss='ce'")
        shapes = self.shapes()
        fracs = [self.in_frac] + [l.a_frac for l in self.layers]
        for i, l in enumerate(self.layers):
            if not l.has_params and l.a_frac != fracs[i]:
                raise ConfigError(f"layer {i} ({l.describe()}): a pooling layer keeps its input's format "
                                  f"(a_frac {fracs[i]}), got {l.a_frac}")
            c, n = shapes[i + 1]
            if c * n > 1024:
                raise ConfigError(f"layer {i} ({l.describe()}): {c} x {n} = {c * n} outputs, more than the "
                                  f"core's limit of 1024; use a larger stride or pool")
        if self.loss == "ce" and self.layers[-1].act not in ("softmax", "sigmoid"):
            raise ConfigError("loss='ce' needs a softmax or sigmoid output layer")

    def describe(self) -> str:
        """The layers as the CLI's --model string."""
        return ",".join(l.describe() for l in self.layers)

    def to_dict(self) -> dict:
        d = asdict(self)
        for l in d["layers"]:
            for k, v in _LAYER_DEFAULTS.items():
                if l[k] == v:
                    del l[k]
        if d["in_ch"] == 1:
            del d["in_ch"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetSpec":
        return cls(d["n_in"], [Layer(**l) for l in d["layers"]], d.get("loss", "mse"), d.get("in_frac", 12),
                   d.get("in_ch", 1))


@dataclass
class TrainConfig:
    """How to train. ``lr`` and ``momentum`` are quantized as the core stores them (see ``quantized_lr``)."""
    optimizer: str = "sgd"
    lr: float = 0.2
    momentum: float = 0.0
    batch_size: int = 1          # 1 = online; 0 or >= n_samples = full batch
    rounding: str = "stochastic"  # weight-update rounding of the fixed-point core (issue 14: docs/results.md, lr 0.01)
    seed: int = 1                # weight init and stochastic rounding
    init: str = "uniform"
    init_range: float = 0.5      # uniform init: weights and biases in [-init_range, init_range]
    shuffle: bool = False        # reshuffle the samples every epoch (same order for every engine)
    fixed_delta: bool = False    # ablation: plain Q15 deltas instead of block floating point
    # online SGD without gradient memory, the least RAM: None (default) chooses it exactly for sgd with
    # batch_size 1 (a FixedNet gains gradient memory on the host if later asked for batches); True insists
    # on it (sgd, batch_size 1 only); False keeps gradient memory (the fused online step then takes ~6%
    # fewer instructions)
    online_only: Optional[bool] = None

    def validate(self) -> None:
        for name in ("lr", "momentum", "init_range"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ConfigError(f"{name} must be a number, got {v!r} ({type(v).__name__})")
        for name in ("seed", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ConfigError(f"{name} must be a whole number, got {v!r} ({type(v).__name__})")
        if not 0 <= self.seed <= 0xFFFFFFFF:
            raise ConfigError(f"seed must be a full 32-bit value, 0..4294967295 (the core's generator state), "
                              f"got {self.seed}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"unknown rounding {self.rounding!r}; choose one of {', '.join(ROUNDINGS)}")
        if self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}; choose one of {', '.join(INITS)}")
        if not (math.isfinite(self.lr) and 0 < self.lr < 2 ** 16):
            raise ConfigError(f"learning rate must be a positive finite number below 65536, got {self.lr}")
        if not self.lr >= 2.0 ** -64:
            raise ConfigError(f"learning rate {self.lr} is below 2^-64, the smallest the core represents")
        if not (math.isfinite(self.init_range) and 0 < self.init_range < 8):
            raise ConfigError(f"init_range must be in (0, 8), got {self.init_range}")
        if not (0 <= self.momentum < 1):
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.momentum != 0 and self.optimizer != "momentum":
            raise ConfigError(f"momentum {self.momentum} is given with optimizer {self.optimizer!r}, which ignores it; "
                              f"use optimizer='momentum', or leave momentum at 0")
        if self.online_only not in (None, True, False):
            raise ConfigError(f"online_only must be None (automatic), True or False, got {self.online_only!r}")
        if self.online_only and (self.optimizer != "sgd" or self.batch_size != 1):
            raise ConfigError("online_only needs optimizer='sgd' and batch_size=1 (it keeps no gradient memory)")
        if self.batch_size < 0:
            raise ConfigError(f"batch_size must be >= 0 (0 = full batch), got {self.batch_size}")

    @property
    def online(self) -> bool:
        """Whether the core network is laid out without gradient memory (EBP_FLAG_ONLINE)."""
        if self.online_only is None:
            return self.optimizer == "sgd" and self.batch_size == 1
        return bool(self.online_only)

    def quantized_lr(self):
        """(lr_m, lr_e) with lr_m a 16-bit mantissa: the learning rate the core uses is lr_m * 2**lr_e."""
        m, e = math.frexp(self.lr)          # lr = m * 2**e, m in [0.5, 1)
        lr_m = min(int(math.floor(m * 65536 + 0.5)), 65535)
        return lr_m, e - 16

    def effective_lr(self) -> float:
        m, e = self.quantized_lr()
        return math.ldexp(m, e)

    def quantized_momentum(self) -> int:
        return min(int(math.floor(self.momentum * 32768 + 0.5)), 32767)

    def effective_momentum(self) -> float:
        return self.quantized_momentum() / 32768.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StopRule:
    """When ``fit`` stops: whichever comes first."""
    epochs: int = 100
    target_loss: Optional[float] = None      # mean training loss at or below this
    all_correct: bool = False                # every training sample classified correctly
    patience: Optional[int] = None           # early stopping: epochs without validation improvement
    validation_split: float = 0.0            # fraction of the training data held out (taken from the end)

    def validate(self, has_validation_data: bool = False) -> None:
        """ConfigError for a rule that cannot hold; ``has_validation_data``: fit() was given X_val."""
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, numbers.Integral) or self.epochs < 0:
            raise ConfigError(f"epochs must be a whole number >= 0, got {self.epochs!r}")
        if self.target_loss is not None and (isinstance(self.target_loss, bool) or
                                             not isinstance(self.target_loss, numbers.Real) or
                                             not math.isfinite(self.target_loss)):
            raise ConfigError(f"target_loss must be a finite number (or None), got {self.target_loss!r}")
        if self.all_correct not in (True, False):
            raise ConfigError(f"all_correct must be True or False, got {self.all_correct!r}")
        v = self.validation_split
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < 1:
            raise ConfigError(f"validation_split must be a fraction in [0, 1), got {v!r}")
        if self.patience is not None:
            if isinstance(self.patience, bool) or not isinstance(self.patience, numbers.Integral) or self.patience < 1:
                raise ConfigError(f"patience must be a whole number of epochs >= 1 (or None), got {self.patience!r}")
            if v == 0 and not has_validation_data:
                raise ConfigError("patience needs validation data to watch: give validation_split (e.g. 0.2) or "
                                  "X_val and T_val to fit()")
