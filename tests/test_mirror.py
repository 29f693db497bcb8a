"""The float64 mirror: gradients by finite differences, the learning rule step by step, training, bad input."""
import time

import numpy as np
import pytest

from edgebp.config import Layer, NetSpec, StopRule, TrainConfig
from edgebp.data import load_dataset
from edgebp.engine import accuracy
from edgebp.errors import ConfigError, DataError, EdgeBPError
from edgebp.mirror import FloatNet, act_backward, act_forward, loss_delta, loss_forward
from gradcheck import flat, numeric_gradients, rel_err

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_T = np.array([[0], [1], [1], [0]], dtype=float)


def hidden_preacts(net, X):
    a, z = X, []
    for (W, b), act in zip(net.get_weights(), net.acts):
        z.append(a @ W.T + b)
        a = act_forward(act, z[-1])
    return z


# each activation on a hidden and an output layer; each loss (mse, ce-softmax, ce-sigmoid)
GRAD_CASES = [
    (("sigmoid", "tanh", "sigmoid"), "mse"),
    (("tanh", "relu", "linear"), "mse"),
    (("relu", "linear", "tanh"), "mse"),
    (("linear", "sigmoid", "relu"), "mse"),
    (("tanh", "sigmoid", "softmax"), "ce"),
    (("relu", "tanh", "sigmoid"), "ce"),
    (("sigmoid", "softmax"), "ce"),
]


@pytest.mark.parametrize("acts,loss", GRAD_CASES)
def test_gradients_match_finite_differences(acts, loss):
    sizes = [3, 5, 4, 2][: len(acts) + 1]
    spec = NetSpec.from_sizes(sizes, list(acts), loss=loss)
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (6, 3))
    T = rng.uniform(0, 1, (6, sizes[-1]))
    if acts[-1] == "softmax":
        T /= T.sum(axis=1, keepdims=True)      # probability rows
    for seed in range(1, 100):                 # keep relu pre-activations away from the kink
        net = FloatNet(spec, TrainConfig(seed=seed, init_range=1.0))
        z = hidden_preacts(net, X)
        if all(np.abs(zl).min() > 1e-3 for zl, a in zip(z, acts) if a == "relu"):
            break
    else:
        pytest.fail("no seed keeps relu pre-activations away from 0")
    before = net.get_weights()
    analytic = net.gradients(X, T)
    assert all(np.array_equal(a, b) for a, b in zip(flat(before), flat(net.get_weights())))
    assert rel_err(flat(analytic), flat(numeric_gradients(net, X, T))) < 1e-6


def test_activation_derivatives_from_outputs():
    z = np.linspace(-4, 4, 81) + 0.013        # avoid relu's kink at 0
    for act in ("linear", "relu", "sigmoid", "tanh"):
        num = (act_forward(act, z + 1e-6) - act_forward(act, z - 1e-6)) / 2e-6
        np.testing.assert_allclose(act_backward(act, act_forward(act, z)), num, rtol=1e-6, atol=1e-9)


def test_sigmoid_and_softmax_are_stable():
    z = np.array([[-1000.0, 0.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(act_forward("sigmoid", z), [[0.0, 0.5, 1.0]])
        np.testing.assert_allclose(act_forward("softmax", z), [[0.0, 0.0, 1.0]])
        np.testing.assert_allclose(act_forward("softmax", np.array([[1e3, 1e3]])), [[0.5, 0.5]])


def test_losses_by_hand():
    y, t = np.array([[0.2, 0.8]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(loss_forward("mse", "sigmoid", y, t), [0.5 * (0.04 + 0.04)])
    np.testing.assert_allclose(loss_forward("ce", "softmax", y, t), [-np.log(0.8)])
    np.testing.assert_allclose(loss_forward("ce", "sigmoid", y, t), [-2 * np.log(0.8)])
    np.testing.assert_allclose(loss_delta("mse", "sigmoid", y, t), (y - t) * y * (1 - y))
    np.testing.assert_allclose(loss_delta("ce", "softmax", y, t), y - t)
    # ln is clipped: a confident wrong answer gives a large finite loss, not inf
    big = loss_forward("ce", "sigmoid", np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert np.isfinite(big).all() and big[0] == pytest.approx(-2 * np.log(1e-300))


# --- the learning rule ------------------------------------------------------------------------------------
def small_net(opt="sgd", momentum=0.0, batch_size=1, seed=3):
    cfg = TrainConfig(optimizer=opt, lr=0.3, momentum=momentum, batch_size=batch_size, seed=seed)
    return FloatNet(NetSpec.from_sizes([3, 4, 2], ["tanh", "sigmoid"]), cfg)


def data8(seed=5):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (8, 3)), rng.uniform(0, 1, (8, 2))


def manual_step(weights, grads, lr):
    return [(W - lr * gW, b - lr * gb) for (W, b), (gW, gb) in zip(weights, grads)]


def assert_weights_close(a, b, tol=1e-13):
    for x, y in zip(flat(a), flat(b)):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize("batch,ends", [(0, [8]), (3, [3, 6, 8]), (1, list(range(1, 9)))])
def test_batches_step_after_every_batch_and_the_last_row(batch, ends):
    X, T = data8()
    net = small_net(batch_size=batch)
    ref = small_net(batch_size=batch)
    lr = net.cfg.effective_lr()
    assert lr != net.cfg.lr                    # quantized learning rate is the one used
    losses, start = [], 0
    for end in ends:                           # manual: gradients() then w -= lr g, per batch
        losses += list(loss_forward("mse", "sigmoid", ref.predict(X[start:end]), T[start:end]))
        ref.set_weights(manual_step(ref.get_weights(), ref.gradients(X[start:end], T[start:end]), lr))
        start = end
    steps = net.steps
    loss = net.train_epoch(X, T)
    assert net.steps - steps == len(ends)
    assert loss == pytest.approx(np.mean(losses), rel=1e-12)
    assert_weights_close(net.get_weights(), ref.get_weights())


def test_momentum_by_hand_and_differs_from_sgd():
    X, T = data8()
    mom, sgd = small_net("momentum", 0.9, batch_size=0), small_net("sgd", batch_size=0)
    lr, mu = mom.cfg.effective_lr(), mom.cfg.effective_momentum()
    assert mu == 29491 / 32768
    w0 = mom.get_weights()
    g0 = mom.gradients(X, T)
    w1 = manual_step(w0, g0, lr)              # v1 = lr g0
    probe = small_net()
    probe.set_weights(w1)
    g1 = probe.gradients(X, T)
    w2 = [(W - (mu * lr * a + lr * c), b - (mu * lr * p + lr * q))   # v2 = mu v1 + lr g1
          for (W, b), (a, p), (c, q) in zip(w1, g0, g1)]
    mom.train_epoch(X, T)
    mom.train_epoch(X, T)
    sgd.train_epoch(X, T)
    sgd.train_epoch(X, T)
    assert_weights_close(mom.get_weights(), w2)
    diff = max(np.abs(a - b).max() for a, b in zip(flat(mom.get_weights()), flat(sgd.get_weights())))
    assert diff > 1e-4


def test_xor_learns_and_all_correct_stops():
    net = FloatNet(NetSpec.from_sizes([2, 4, 1], "sigmoid"), TrainConfig(lr=0.5, seed=1, init_range=1.0))
    hist = net.fit(XOR_X, XOR_T, StopRule(epochs=5000, all_correct=True))
    assert hist.stopped_by == "all_correct" and hist.epochs < 5000
    assert accuracy(net.predict(XOR_X), XOR_T) == 1.0


def test_target_loss_stops():
    net = FloatNet(NetSpec.from_sizes([2, 4, 1], "sigmoid"), TrainConfig(lr=0.5, seed=1, init_range=1.0))
    hist = net.fit(XOR_X, XOR_T, StopRule(epochs=5000, target_loss=0.1))
    assert hist.stopped_by == "target_loss"
    assert hist.loss[-1] <= 0.1 < min(hist.loss[:-1])


def test_epochs_stop():
    hist = small_net().fit(*data8(), StopRule(epochs=3))
    assert hist.stopped_by == "epochs" and hist.epochs == 3 and len(hist.loss) == 3


def test_early_stopping_restores_best_weights():
    net = FloatNet(NetSpec.from_sizes([2, 4, 1], "sigmoid"), TrainConfig(lr=0.5, seed=1, init_range=1.0))
    X_val, T_val = XOR_X, 1 - XOR_T         # flipped labels: validation loss falls at first, rises as XOR is learned
    hist = net.fit(XOR_X, XOR_T, StopRule(epochs=5000, patience=20), X_val=X_val, T_val=T_val)
    assert hist.stopped_by == "early_stopping"
    assert hist.epochs == hist.best_epoch + 20 and hist.best_epoch > 1
    assert hist.val_loss[hist.best_epoch - 1] == min(hist.val_loss)
    assert net.loss(X_val, T_val) == min(hist.val_loss)


def test_validation_split_takes_the_last_rows():
    X, T = data8()
    a, b = small_net(), small_net()
    ha = a.fit(X, T, StopRule(epochs=2, validation_split=0.25))
    hb = b.fit(X[:6], T[:6], StopRule(epochs=2), X_val=X[6:], T_val=T[6:])
    assert ha.val_loss == hb.val_loss and ha.loss == hb.loss


def test_diabetes_float_baseline():
    """8-16-2 sigmoid, mse, online SGD lr 0.2, uniform +-0.5, file order, 200 epochs: float libraries 75.0-75.8%."""
    ds = load_dataset("diabetes")
    net = FloatNet(NetSpec.from_sizes([8, 16, 2], "sigmoid"), TrainConfig(lr=0.2, init_range=0.5, seed=1))
    t0 = time.perf_counter()
    hist = net.fit(ds.X_train, ds.T_train, StopRule(epochs=200))
    elapsed = time.perf_counter() - t0
    loss, acc = net.evaluate(ds.X_test, ds.T_test)
    assert hist.epochs == 200 and net.steps == 200 * 384
    assert 0.74 <= acc <= 0.77, acc
    assert elapsed < 20, f"200 online epochs took {elapsed:.1f} s"


# --- initialisation, weights, memory ----------------------------------------------------------------------
def test_init_schemes():
    spec = NetSpec.from_sizes([6, 10, 3], "tanh")
    for init, bound in (("xavier", np.sqrt(6 / 16)), ("he", np.sqrt(6 / 6))):
        (W, b), _ = FloatNet(spec, TrainConfig(init=init)).get_weights()
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.7 * bound and not b.any()
    (W, b), _ = FloatNet(spec, TrainConfig(init="uniform", init_range=0.25, seed=9)).get_weights()
    assert np.abs(W).max() <= 0.25 and np.abs(b).max() <= 0.25 and b.any()
    again = FloatNet(spec, TrainConfig(init="uniform", init_range=0.25, seed=9)).get_weights()[0][0]
    assert np.array_equal(W, again)


def test_given_weights_are_copied():
    spec = NetSpec.from_sizes([2, 2, 1], "sigmoid")
    w = [(np.ones((2, 2)), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))]
    net = FloatNet(spec, TrainConfig(), weights=w)
    w[0][0][0, 0] = 5.0
    got = net.get_weights()
    assert got[0][0][0, 0] == 1.0
    got[0][0][0, 0] = 7.0
    assert net.get_weights()[0][0][0, 0] == 1.0
    np.testing.assert_allclose(net.predict([[0.0, 0.0]]), [[1 / (1 + np.exp(-1.0))]])   # sigmoid(0.5 + 0.5)


def test_memory_report():
    spec = NetSpec.from_sizes([3, 5, 2], "sigmoid")
    sgd = FloatNet(spec, TrainConfig()).memory_report()
    params = 8 * (15 + 10 + 5 + 2)
    assert sgd["weights"] == 8 * 25 and sgd["biases"] == 8 * 7 and sgd["gradients"] == params
    assert sgd["optimizer"] == 0 and sgd["activations"] == 8 * (3 + 5 + 2 + 5 + 2)
    assert sgd["total"] == sum(v for k, v in sgd.items() if k != "total")
    mom = FloatNet(spec, TrainConfig(optimizer="momentum", momentum=0.5)).memory_report()
    assert mom["optimizer"] == params and mom["total"] == sgd["total"] + params


# --- bad input ------------------------------------------------------------------------------------------
@pytest.fixture
def net():
    return small_net()


def test_wrong_input_shape(net):
    with pytest.raises(DataError, match=r"inputs must have shape \(n, 3\)"):
        net.predict(np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"targets must have shape \(4, 2\)"):
        net.train_samples(np.zeros((4, 3)), np.zeros((4, 3)), 1)
    with pytest.raises(DataError, match="targets"):
        net.gradients(np.zeros((4, 3)), np.zeros((3, 2)))


def test_nan_inputs(net):
    X = np.zeros((4, 3))
    X[2, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        net.fit(X, np.zeros((4, 2)))
    with pytest.raises(DataError, match="NaN"):
        net.loss(np.zeros((4, 3)), np.full((4, 2), np.inf))


def test_set_weights_checks(net):
    w = net.get_weights()
    bad = [(W.copy(), b.copy()) for W, b in w]
    bad[1][0][0, 0] = np.nan
    with pytest.raises(DataError, match="layer 1.*NaN"):
        net.set_weights(bad)
    with pytest.raises(ConfigError, match=r"layer 0: W must be \(4, 3\)"):
        net.set_weights([(w[0][0].T, w[0][1]), w[1]])
    with pytest.raises(ConfigError, match="expected 2"):
        net.set_weights(w[:1])
    with pytest.raises(ConfigError, match="pairs"):
        net.set_weights([1, 2])
    assert all(np.array_equal(a, b) for a, b in zip(flat(w), flat(net.get_weights())))   # untouched


def test_ce_targets_outside_unit_interval():
    net = FloatNet(NetSpec.from_sizes([3, 2], "softmax", loss="ce"), TrainConfig())
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        net.train_samples(np.zeros((2, 3)), np.array([[1.5, -0.5], [0, 1]]), 1)


def test_bad_config():
    with pytest.raises(ConfigError, match="unknown activation"):
        FloatNet(NetSpec(2, [Layer(1, "swish")]), TrainConfig())
    with pytest.raises(ConfigError, match="init_range"):
        FloatNet(NetSpec.from_sizes([2, 1]), TrainConfig(init_range=float("nan")))
    with pytest.raises(EdgeBPError):
        FloatNet(NetSpec.from_sizes([2, 1]), TrainConfig(lr=-1))
