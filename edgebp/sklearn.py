"""scikit-learn estimators around the fixed-point core and its float mirror (needs scikit-learn:
``pip install edgebp[sklearn]``), so that ``cross_val_score`` and ``GridSearchCV`` compare fixed and float
directly:

    from sklearn.model_selection import cross_val_score
    from edgebp.sklearn import FixedMLPClassifier
    for engine in ("fixed", "float"):
        print(engine, cross_val_score(FixedMLPClassifier(engine=engine, epochs=100), X, y, cv=5).mean())

Both engines of one configuration start from the same weights (the core's seeded initialisation, dequantized
for the float mirror), as ``edgebp train --engine both`` does. Inputs are scaled inside the estimator
(``input_scaling``, fitted on the training data) because int16 Q formats hold about +-8 at the default 12
fractional bits; inputs still beyond the format at predict time saturate to it, as a sensor reading would.
The regressor standardises its targets the same way. Class labels may be any values; they become one-hot
targets (one output per class).
"""
from __future__ import annotations

import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
except ImportError as e:     # pragma: no cover - exercised by hand without scikit-learn
    from .errors import ConfigError
    raise ConfigError("edgebp.sklearn needs scikit-learn: pip install scikit-learn (or edgebp[sklearn])") from e

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:          # scikit-learn < 1.6
    def _validate_data(est, X, y=None, reset=True, **kw):
        if y is None:
            return est._validate_data(X, reset=reset, **kw)
        return est._validate_data(X, y, reset=reset, **kw)

from .config import ACTIVATIONS, OPTIMIZERS, ROUNDINGS, NetSpec, StopRule, TrainConfig
from .errors import ConfigError

ENGINES = ("fixed", "float")


class _FixedMLP(BaseEstimator):
    """Shared parameters and training. ``hidden_layer_sizes`` as in scikit-learn's MLP; ``activation`` of
    the hidden layers; formats ``w_frac``/``a_frac``/``in_frac`` (fractional bits of weights, activations,
    inputs); ``rounding`` of the weight updates; ``optimizer``/``lr``/``momentum``/``batch_size`` (1 =
    online, 0 = full batch); ``epochs``; ``shuffle`` each epoch; ``seed`` (1..2^32-1) for the initial weights,
    the order and stochastic rounding; ``input_scaling`` 'minmax' (to [0, 1]), 'standard' or None."""

    _output_act = "linear"
    _loss = "mse"

    def __init__(self, hidden_layer_sizes=(16,), activation="sigmoid", engine="fixed", w_frac=12, a_frac=12,
                 in_frac=12, rounding="stochastic", optimizer="sgd", lr=0.2, momentum=0.0, batch_size=1,
                 epochs=100, shuffle=True, seed=1, init="uniform", init_range=0.5, input_scaling="minmax"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.engine = engine
        self.w_frac = w_frac
        self.a_frac = a_frac
        self.in_frac = in_frac
        self.rounding = rounding
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.seed = seed
        self.init = init
        self.init_range = init_range
        self.input_scaling = input_scaling

    # --- parameters ------------------------------------------------------------------------------------------
    def _check_params(self):
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.activation not in ACTIVATIONS or self.activation == "softmax":
            raise ConfigError(f"activation (of the hidden layers) must be one of linear, relu, sigmoid, tanh; got "
                              f"{self.activation!r}")
        if self.rounding not in ROUNDINGS or self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"rounding must be one of {ROUNDINGS} and optimizer one of {OPTIMIZERS}")
        if not isinstance(self.epochs, numbers.Integral) or self.epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not isinstance(self.seed, numbers.Integral) or not 1 <= int(self.seed) <= 2 ** 32 - 1:
            raise ConfigError(f"seed must be an integer in 1..2^32-1, got {self.seed!r}")
        if self.input_scaling not in (None, "minmax", "standard"):
            raise ConfigError(f"input_scaling must be 'minmax', 'standard' or None, got {self.input_scaling!r}")
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if not all(isinstance(s, numbers.Integral) and s >= 1 for s in sizes):
            raise ConfigError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _config(self, n_batch):
        bs = self.batch_size
        if not isinstance(bs, numbers.Integral) or bs < 0:
            raise ConfigError(f"batch_size must be an integer >= 0 (0 = full batch), got {bs!r}")
        return TrainConfig(optimizer=self.optimizer, lr=float(self.lr), momentum=float(self.momentum),
                           batch_size=int(bs), rounding=self.rounding, seed=int(self.seed), init=self.init,
                           init_range=float(self.init_range), shuffle=bool(self.shuffle))

    # --- scaling ---------------------------------------------------------------------------------------------
    def _fit_scaling(self, X):
        if self.input_scaling is None:
            self.x_offset_, self.x_scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
            return
        from .data import Scaler
        s = Scaler.fit(X, self.input_scaling)
        self.x_offset_, self.x_scale_ = s.offset, s.scale

    def _inputs(self, X):
        Xs = (X - self.x_offset_) * self.x_scale_
        lim = 32767.0 / 2.0 ** self.in_frac       # saturate to the input format, as a sensor reading would
        return np.clip(Xs, -lim, lim)

    # --- training --------------------------------------------------------------------------------------------
    def _fit(self, X, T):
        hidden = self._check_params()
        self._fit_scaling(X)
        spec = NetSpec.from_sizes([X.shape[1], *hidden, T.shape[1]],
                                  [self.activation] * len(hidden) + [self._output_act], self._loss,
                                  int(self.w_frac), int(self.a_frac), int(self.in_frac))
        cfg = self._config(len(X))
        cfg.validate()
        from .fixed import FixedNet
        fixed = FixedNet(spec, cfg)
        if self.engine == "fixed":
            net = fixed
        else:
            from .mirror import FloatNet
            net = FloatNet(spec, cfg, weights=fixed.get_weights())
        hist = net.fit(self._inputs(X), T, StopRule(epochs=int(self.epochs)))
        self.net_, self.spec_ = net, spec
        self.n_iter_ = hist.epochs
        self.loss_curve_ = list(hist.loss)
        return self

    # --- pickling: the core network lives in C memory; it is stored as its integers and rebuilt ---------------
    def __getstate__(self):
        state = self.__dict__.copy()
        net = state.get("net_")
        if net is not None and hasattr(net, "get_int_weights"):
            state["net_"] = ("fixed", net.spec, net.cfg, net.get_int_weights())
        return state

    def __setstate__(self, state):
        net = state.get("net_")
        if isinstance(net, tuple) and net and net[0] == "fixed":
            from .fixed import FixedNet
            _, spec, cfg, weights = net
            fixed = FixedNet(spec, cfg)
            fixed.set_int_weights(weights)
            state["net_"] = fixed
        self.__dict__.update(state)

    def _outputs(self, X):
        check_is_fitted(self, "net_")
        X = _validate_data(self, X, reset=False, dtype=np.float64)
        return self.net_.predict(self._inputs(X))


class FixedMLPClassifier(ClassifierMixin, _FixedMLP):
    """A dense network classifier, trained by the fixed-point core (engine='fixed') or its float64 mirror
    (engine='float'). Output layer: one sigmoid unit per class with squared error (the project's default
    setup), or ``output='softmax'`` with cross-entropy. ``predict_proba`` normalises the outputs to sum to 1.
    See _FixedMLP for the other parameters."""

    def __init__(self, hidden_layer_sizes=(16,), activation="sigmoid", engine="fixed", w_frac=12, a_frac=12,
                 in_frac=12, rounding="stochastic", optimizer="sgd", lr=0.2, momentum=0.0, batch_size=1,
                 epochs=100, shuffle=True, seed=1, init="uniform", init_range=0.5, input_scaling="minmax",
                 output="sigmoid"):
        super().__init__(hidden_layer_sizes, activation, engine, w_frac, a_frac, in_frac, rounding, optimizer,
                         lr, momentum, batch_size, epochs, shuffle, seed, init, init_range, input_scaling)
        self.output = output

    def fit(self, X, y):
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        if self.output not in ("sigmoid", "softmax"):
            raise ConfigError(f"output must be 'sigmoid' or 'softmax', got {self.output!r}")
        self._output_act, self._loss = ("sigmoid", "mse") if self.output == "sigmoid" else ("softmax", "ce")
        self.classes_, idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"the training data has one class only ({self.classes_[0]!r}); a classifier needs "
                             "at least 2 classes")
        return self._fit(X, np.eye(len(self.classes_))[idx])

    def predict_proba(self, X):
        Y = np.clip(self._outputs(X), 0.0, None)
        s = Y.sum(axis=1, keepdims=True)
        return np.where(s > 0, Y / np.where(s > 0, s, 1.0), 1.0 / Y.shape[1])

    def predict(self, X):
        Y = self._outputs(X)
        return self.classes_[np.argmax(Y, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class FixedMLPRegressor(RegressorMixin, _FixedMLP):
    """A dense network regressor (linear outputs, squared error), trained by the fixed-point core or its float
    mirror. Targets are standardised on the training data (``target_scaling``) so that they fit the output
    format; predictions are mapped back. See _FixedMLP for the other parameters."""

    def __init__(self, hidden_layer_sizes=(16,), activation="sigmoid", engine="fixed", w_frac=12, a_frac=12,
                 in_frac=12, rounding="stochastic", optimizer="sgd", lr=0.05, momentum=0.0, batch_size=1,
                 epochs=100, shuffle=True, seed=1, init="uniform", init_range=0.5, input_scaling="minmax",
                 target_scaling=True):
        super().__init__(hidden_layer_sizes, activation, engine, w_frac, a_frac, in_frac, rounding, optimizer,
                         lr, momentum, batch_size, epochs, shuffle, seed, init, init_range, input_scaling)
        self.target_scaling = target_scaling

    def fit(self, X, y):
        X, y = _validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        Y = y.reshape(len(y), -1)
        if self.target_scaling:
            self.y_mean_, sd = Y.mean(axis=0), Y.std(axis=0)
            self.y_scale_ = np.where(sd > 0, sd, 1.0)
        else:
            self.y_mean_, self.y_scale_ = np.zeros(Y.shape[1]), np.ones(Y.shape[1])
        lim = 32767.0 / 2.0 ** self.a_frac
        return self._fit(X, np.clip((Y - self.y_mean_) / self.y_scale_, -lim, lim))

    def predict(self, X):
        Y = self._outputs(X) * self.y_scale_ + self.y_mean_
        return Y[:, 0] if self._y_1d else Y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True      # y of shape (n, k): k linear outputs
        return tags
