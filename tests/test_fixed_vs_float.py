"""The fixed-point core judged against the float64 mirror from the same starting weights."""
import numpy as np
import pytest

from edgebp import NetSpec, StopRule, TrainConfig
from edgebp.data import load_dataset
from edgebp.fixed import FixedNet
from edgebp.mirror import FloatNet


def cosine(a, b):
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))


def pair(spec, cfg):
    fixed = FixedNet(spec, cfg)
    return fixed, FloatNet(spec, cfg, weights=fixed.get_weights())


CASES = [
    ([4, 8, 3], ["sigmoid", "sigmoid"], "mse"),
    ([4, 8, 3], ["tanh", "linear"], "mse"),
    ([4, 8, 6, 3], ["relu", "tanh", "softmax"], "ce"),
    ([4, 8, 6, 5, 3], ["sigmoid", "relu", "tanh", "sigmoid"], "ce"),
]


@pytest.mark.parametrize("sizes, acts, loss", CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gradients_agree_per_layer(sizes, acts, loss, seed):
    # Bound: cosine similarity >= 0.99 for every layer's weight and bias gradients, with Q12 int16 formats
    # that fit the data (inputs in [-1, 1], one-hot targets), on a batch and on single samples.
    spec = NetSpec.from_sizes(sizes, acts, loss)
    fixed, flt = pair(spec, TrainConfig(seed=seed, init="xavier"))
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (16, sizes[0]))
    T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 16)]
    for rows in (slice(0, 16), slice(0, 1), slice(5, 6)):
        gq, gf = fixed.gradients(X[rows], T[rows]), flt.gradients(X[rows], T[rows])
        for l, ((wq, bq), (wf, bf)) in enumerate(zip(gq, gf)):
            assert cosine(wq, wf) >= 0.99, (l, rows)
            assert cosine(bq, bf) >= 0.99, (l, rows)
            assert np.linalg.norm(wq - wf) <= 0.05 * np.linalg.norm(wf), (l, rows)


def test_block_floating_point_keeps_tiny_gradients():
    # A 4-layer network whose outputs almost match the targets: the output errors are ~1e-4 and the
    # first layer's deltas ~1e-6, below one LSB of Q15 (3e-5). With block floating point the gradients
    # still agree with float; with plain Q15 deltas (EBP_FLAG_FIXED_DELTA) they vanish.
    spec = NetSpec.from_sizes([4, 8, 8, 8, 2], "sigmoid", "mse")
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (8, 4))
    bfp, flt = pair(spec, TrainConfig(seed=5))
    fixed_q15 = FixedNet(spec, TrainConfig(seed=5, fixed_delta=True))
    T = np.clip(flt.predict(X) + rng.normal(0, 1e-3, (8, 2)), 0, 1)
    gf, gb, gq = flt.gradients(X, T), bfp.gradients(X, T), fixed_q15.gradients(X, T)
    for l in range(4):
        assert cosine(gb[l][0], gf[l][0]) >= 0.98, l
    assert np.abs(gf[0][0]).max() < 2 ** -15                 # really below one Q15 LSB
    assert not np.any(gq[0][0])                              # fixed Q15: the first layer learns nothing


def test_diabetes_fixed_within_one_point_of_float():
    # The setup: 8-16-2 sigmoid, squared error, online SGD, lr 0.2, 200 epochs, file order.
    ds = load_dataset("diabetes")
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse")
    fixed, flt = pair(spec, TrainConfig(lr=0.2, seed=1))
    for eng in (fixed, flt):
        eng.fit(ds.X_train, ds.T_train, StopRule(epochs=200))
    acc_q = fixed.evaluate(ds.X_test, ds.T_test)[1]
    acc_f = flt.evaluate(ds.X_test, ds.T_test)[1]
    assert 0.74 <= acc_f <= 0.77
    assert abs(acc_q - acc_f) <= 0.01, (acc_q, acc_f)


def test_softmax_cross_entropy_on_thyroid():
    # three classes; majority class is 93.0% of the test set
    ds = load_dataset("thyroid")
    spec = NetSpec.from_sizes([21, 16, 3], ["sigmoid", "softmax"], "ce")
    fixed, flt = pair(spec, TrainConfig(lr=0.2, seed=1))
    for eng in (fixed, flt):
        eng.fit(ds.X_train, ds.T_train, StopRule(epochs=30))
    acc_q = fixed.evaluate(ds.X_test, ds.T_test)[1]
    acc_f = flt.evaluate(ds.X_test, ds.T_test)[1]
    assert acc_f > 0.94 and abs(acc_q - acc_f) <= 0.01, (acc_q, acc_f)


def test_momentum_and_minibatch_track_float():
    ds = load_dataset("diabetes")
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse")
    for cfg in (TrainConfig(lr=0.1, optimizer="momentum", momentum=0.9, batch_size=16, seed=2),
                TrainConfig(lr=0.5, batch_size=0, seed=2)):
        fixed, flt = pair(spec, cfg)
        for eng in (fixed, flt):
            eng.fit(ds.X_train, ds.T_train, StopRule(epochs=30))
        lq, lf = fixed.loss(ds.X_train, ds.T_train), flt.loss(ds.X_train, ds.T_train)
        assert abs(lq - lf) <= 0.05 * lf, (cfg.optimizer, lq, lf)
