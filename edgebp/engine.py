"""What every engine (fixed-point core, float mirror, device) offers, and the training loop they share."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np

from .config import NetSpec, StopRule, TrainConfig
from .errors import DataError


def check_data(spec: NetSpec, X, T=None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """float64 C-contiguous copies of X (n, n_in) and T (n, n_out); raises DataError on a wrong shape or NaN."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != spec.n_in:
        raise DataError(f"inputs must have shape (n, {spec.n_in}), got {X.shape}")
    if len(X) == 0:
        raise DataError("no samples: inputs have zero rows")
    if not np.all(np.isfinite(X)):
        raise DataError("inputs contain NaN or inf; clean or impute them first")
    if T is None:
        return X, None
    T = np.ascontiguousarray(T, dtype=np.float64)
    if T.ndim == 1:
        T = T[None, :] if spec.n_out != 1 or len(T) != len(X) else T[:, None]
    if T.ndim != 2 or T.shape != (X.shape[0], spec.n_out):
        raise DataError(f"targets must have shape ({X.shape[0]}, {spec.n_out}), got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise DataError("targets contain NaN or inf")
    if spec.loss == "ce" and (T.min() < 0 or T.max() > 1):
        raise DataError("cross-entropy targets must lie in [0, 1] (one-hot classes or probabilities)")
    if spec.layers[-1].act == "softmax" and not np.allclose(T.sum(axis=1), 1.0, atol=1e-6):
        raise DataError("softmax cross-entropy targets must sum to 1 per row (one-hot classes)")
    return X, T


def accuracy(Y: np.ndarray, T: np.ndarray) -> float:
    """Classification accuracy: argmax of outputs against argmax of targets (one output: both sides of 0.5)."""
    if len(Y) == 0:
        return float("nan")
    if Y.shape[1] == 1:
        return float(np.mean((Y[:, 0] >= 0.5) == (T[:, 0] >= 0.5)))
    return float(np.mean(np.argmax(Y, axis=1) == np.argmax(T, axis=1)))


def sample_order(n: int, epoch: int, cfg: TrainConfig) -> np.ndarray:
    """The order in which an epoch visits the samples: file order, or a permutation fixed by (seed, epoch)."""
    if not cfg.shuffle:
        return np.arange(n)
    return np.random.default_rng([cfg.seed, epoch]).permutation(n)


@dataclass
class History:
    epochs: int = 0
    loss: List[float] = field(default_factory=list)        # mean training loss seen during each epoch
    val_loss: List[float] = field(default_factory=list)
    stopped_by: str = ""
    best_epoch: int = 0


class Engine:
    """Base class. Subclasses implement the primitives; ``fit`` is shared so every engine stops alike."""

    spec: NetSpec
    cfg: TrainConfig
    name = "engine"

    # --- primitives -------------------------------------------------------------------------------------
    def train_samples(self, X: np.ndarray, T: np.ndarray, batch_size: int) -> float:
        """Trains on the rows in order (a step every batch_size rows and after the last); mean loss."""
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        raise NotImplementedError

    def loss(self, X, T) -> float:
        """Mean per-sample loss."""
        raise NotImplementedError

    def gradients(self, X, T) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per layer (dW (n_out, n_in), db (n_out,)): the mean gradient over the rows, weights unchanged."""
        raise NotImplementedError

    def get_weights(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def set_weights(self, weights) -> None:
        raise NotImplementedError

    def memory_report(self) -> dict:
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------------------
    def evaluate(self, X, T) -> Tuple[float, float]:
        """(mean loss, accuracy)."""
        X, T = check_data(self.spec, X, T)
        return self.loss(X, T), accuracy(self.predict(X), T)

    def train_epoch(self, X, T, epoch: int = 0) -> float:
        X, T = check_data(self.spec, X, T)
        order = sample_order(len(X), epoch, self.cfg)
        batch = self.cfg.batch_size if self.cfg.batch_size > 0 else len(X)
        return self.train_samples(X[order], T[order], batch)

    def fit(self, X, T, stop: Optional[StopRule] = None, X_val=None, T_val=None,
            progress: Optional[Callable[[int, float], None]] = None, start: Optional[dict] = None,
            on_epoch_end: Optional[Callable[[dict], None]] = None) -> History:
        """Trains until the first stopping rule holds. Early stopping restores the best weights.

        ``on_epoch_end(state)`` is called after every epoch that does not end the run, with what the loop needs
        to go on: {"epochs", "loss", "val_loss", "best", "best_epoch", "waited", "best_state"} (best_state: the
        best weights so far, as get_weights gives them, or None). ``start`` (such a state, with the engine's
        weights and training state already those after its epochs) continues the run from there: the same
        epochs, sample orders and stops as the uninterrupted run."""
        stop = stop or StopRule()
        stop.validate(has_validation_data=X_val is not None)
        from .data import as_targets
        T = as_targets(self.spec, T)                 # label vectors 0..n_out-1 -> one-hot
        if T_val is not None:
            T_val = as_targets(self.spec, T_val)
        X, T = check_data(self.spec, X, T)
        if X_val is None and stop.validation_split > 0:
            n_val = int(round(len(X) * stop.validation_split))
            if not 0 < n_val < len(X):
                raise DataError(f"validation_split {stop.validation_split} leaves no training or validation rows")
            X, X_val, T, T_val = X[:-n_val], X[-n_val:], T[:-n_val], T[-n_val:]
        if X_val is not None:
            X_val, T_val = check_data(self.spec, X_val, T_val)
        hist = History()
        best, best_state, waited = float("inf"), None, 0
        first = 0
        if start is not None:
            first = int(start["epochs"])
            hist.epochs, hist.loss, hist.val_loss = first, list(start["loss"]), list(start["val_loss"])
            best, hist.best_epoch, waited = float(start["best"]), int(start["best_epoch"]), int(start["waited"])
            best_state = start.get("best_state")
        for epoch in range(first, stop.epochs):
            loss = self.train_epoch(X, T, epoch)
            hist.epochs = epoch + 1
            hist.loss.append(loss)
            if progress:
                progress(epoch + 1, loss)
            if stop.target_loss is not None and loss <= stop.target_loss:
                hist.stopped_by = "target_loss"
                break
            if stop.all_correct and accuracy(self.predict(X), T) == 1.0:
                hist.stopped_by = "all_correct"
                break
            if X_val is not None:
                vl = self.loss(X_val, T_val)
                hist.val_loss.append(vl)
                if vl < best:
                    best, waited, hist.best_epoch = vl, 0, epoch + 1
                    best_state = copy.deepcopy(self.get_weights())
                else:
                    waited += 1
                    if stop.patience is not None and waited >= stop.patience:
                        if best_state is not None:  # None: the validation loss was never finite
                            self.set_weights(best_state)
                        hist.stopped_by = "early_stopping"
                        break
            if on_epoch_end and epoch + 1 < stop.epochs:
                on_epoch_end(dict(epochs=epoch + 1, loss=list(hist.loss), val_loss=list(hist.val_loss), best=best,
                                  best_epoch=hist.best_epoch, waited=waited, best_state=best_state))
        else:
            hist.stopped_by = "epochs"
        return hist
