"""Network and training descriptions shared by the fixed-point core, the float mirror and the device."""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import List, Optional, Sequence

from .errors import ConfigError

ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
LOSSES = ("mse", "ce")
OPTIMIZERS = ("sgd", "momentum")
ROUNDINGS = ("nearest", "stochastic")
INITS = ("uniform", "xavier", "he")


@dataclass
class Layer:
    """One dense layer: ``n_out`` neurons with learned biases."""
    n_out: int
    act: str = "sigmoid"
    w_frac: int = 12   # fractional bits of weights and biases (int16)
    a_frac: int = 12   # fractional bits of the outputs (int16)


@dataclass
class NetSpec:
    """``n_in`` inputs (Q ``in_frac``), then dense ``layers``, trained on ``loss``."""
    n_in: int
    layers: List[Layer]
    loss: str = "mse"
    in_frac: int = 12

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def sizes(self) -> List[int]:
        return [self.n_in] + [l.n_out for l in self.layers]

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
            if l.act not in ACTIVATIONS:
                raise ConfigError(f"layer {i}: unknown activation {l.act!r}; choose one of {', '.join(ACTIVATIONS)}")
            if l.n_out < 1:
                raise ConfigError(f"layer {i}: n_out must be at least 1, got {l.n_out}")
            if l.act == "softmax" and (i != len(self.layers) - 1 or self.loss != "ce"):
                raise ConfigError("softmax is only supported on the output layer with loss='ce'")
        if self.loss == "ce" and self.layers[-1].act not in ("softmax", "sigmoid"):
            raise ConfigError("loss='ce' needs a softmax or sigmoid output layer")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetSpec":
        return cls(d["n_in"], [Layer(**l) for l in d["layers"]], d.get("loss", "mse"), d.get("in_frac", 12))


@dataclass
class TrainConfig:
    """How to train. ``lr`` and ``momentum`` are quantized as the core stores them (see ``quantized_lr``)."""
    optimizer: str = "sgd"
    lr: float = 0.2
    momentum: float = 0.0
    batch_size: int = 1          # 1 = online; 0 or >= n_samples = full batch
    rounding: str = "nearest"    # weight-update rounding of the fixed-point core
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
