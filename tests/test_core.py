"""The fixed-point core through its Python wrapper: memory, errors, determinism, activations, training."""
import numpy as np
import pytest

from edgebp import ConfigError, CoreError, DataError, EdgeBPError, Layer, NetSpec, StopRule, TrainConfig
from edgebp._core import ffi, lib
from edgebp.data import load_dataset
from edgebp.fixed import FixedNet, core_cfg, memory

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
XOR_T = np.array([[0], [1], [1], [0]], float)


def spec(sizes, act="sigmoid", loss="mse", **kw):
    return NetSpec.from_sizes(sizes, act, loss, **kw)


# --- memory ---------------------------------------------------------------------------------------------

def test_memory_report_is_exact_for_8_16_2():
    s = spec([8, 16, 2])
    m = memory(s, TrainConfig(online_only=False))
    params = 8 * 16 + 16 + 16 * 2 + 2
    assert m["weights"] == 2 * (8 * 16 + 16 * 2)
    assert m["biases"] == 2 * (16 + 2)
    assert m["gradients"] == 4 * params
    assert m["optimizer"] == 0
    assert m["activations"] == 2 * (8 + 16 + 2) + 2 * (16 + 2)  # outputs + deltas
    assert m["scratch"] == 8 * 16                                 # raw deltas of the widest layer
    assert m["total"] == sum(v for k, v in m.items() if k != "total")
    lean = memory(s, TrainConfig(online_only=True))
    assert lean["total"] == 2 * (params + 8 + 16 + 2) + 2 * (16 + 2)  # the analytic minimum: params, outputs, deltas
    assert lean["scratch"] == 0                                   # packed into the delta array instead
    assert memory(s, TrainConfig()) == lean                       # the default for sgd with batch_size 1
    assert memory(s, TrainConfig(batch_size=8))["gradients"] == 4 * params
    sm = spec([8, 16, 3], act=["sigmoid", "softmax"], loss="ce")
    assert memory(sm, TrainConfig(online_only=True))["scratch"] == 8 * 3   # softmax z and exp values
    mom = memory(s, TrainConfig(optimizer="momentum"))
    assert mom["optimizer"] == 4 * params
    infer = memory(s, TrainConfig(), train=False)
    assert infer["gradients"] == infer["scratch"] == 0 and infer["total"] == 2 * (params + 8 + 16 + 2)


def test_init_refuses_a_small_or_misaligned_buffer():
    c = core_cfg(spec([4, 3, 2]), TrainConfig(online_only=False))
    need = memory(spec([4, 3, 2]), TrainConfig(online_only=False))["total"]
    net = ffi.new("ebp_net_t *")
    buf = ffi.new("int64_t[]", need // 8 + 2)
    assert lib.ebp_net_init(net, c, lib.EBP_MODE_TRAIN, buf, need - 1) == lib.EBP_ERR_SIZE
    assert lib.ebp_net_init(net, c, lib.EBP_MODE_TRAIN, ffi.cast("char *", buf) + 2, need) == lib.EBP_ERR_ALIGN
    assert lib.ebp_net_init(net, c, lib.EBP_MODE_TRAIN, buf, need) == lib.EBP_OK
    # every array lies inside the buffer and none overlap
    base, end = int(ffi.cast("uintptr_t", buf)), int(ffi.cast("uintptr_t", buf)) + need
    spans = []
    for i in range(2):
        L = net.layers[i]
        for name, n, size in (("w", L.n_out * L.n_in, 2), ("b", L.n_out, 2), ("y", L.n_out, 2),
                              ("delta", L.n_out, 2), ("gw", L.n_out * L.n_in, 4), ("gb", L.n_out, 4)):
            p = int(ffi.cast("uintptr_t", getattr(L, name)))
            spans.append((p, p + n * size))
    spans.append((int(ffi.cast("uintptr_t", net.x)), int(ffi.cast("uintptr_t", net.x)) + 8))
    spans.sort()
    assert spans[0][0] >= base and spans[-1][1] <= end
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


# --- errors ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, exc, words", [
    (lambda: spec([2, 3, 1], act="swish"), ConfigError, "unknown activation"),
    (lambda: spec([2, 3, 1], act=["softmax", "sigmoid"], loss="ce"), ConfigError, "softmax"),
    (lambda: spec([2, 3, 1], w_frac=16), ConfigError, "0..15"),
    (lambda: spec([2, 3, 1], loss="hinge"), ConfigError, "unknown loss"),
    (lambda: FixedNet(spec([2, 1]), TrainConfig(lr=float("nan"))), ConfigError, "learning rate"),
    (lambda: FixedNet(spec([2] + [3] * 9)), ConfigError, "at most"),
    (lambda: FixedNet(spec([2, 2000, 1])), ConfigError, "limit"),
])
def test_bad_configuration_raises_with_a_message(bad, exc, words):
    with pytest.raises(exc, match=words):
        bad()


def test_bad_data_raises_and_loses_nothing():
    n = FixedNet(spec([2, 4, 1]), TrainConfig(lr=0.5))
    before = n.get_int_weights()
    with pytest.raises(DataError, match="shape"):
        n.train_epoch(np.zeros((4, 3)), XOR_T)
    with pytest.raises(DataError, match="NaN"):
        n.train_epoch(np.full((4, 2), np.nan), XOR_T)
    with pytest.raises(DataError, match="beyond the range"):
        n.train_epoch(XOR_X * 100, XOR_T)          # Q12 int16 holds +-8
    with pytest.raises(DataError, match="int16"):
        n.train_q(XOR_X, XOR_T, 1)                  # floats where integers are expected
    with pytest.raises(EdgeBPError):
        n.set_int_weights([(np.zeros((4, 2), np.int16), np.zeros(4, np.int16))])
    for (w0, b0), (w1, b1) in zip(before, n.get_int_weights()):
        assert np.array_equal(w0, w1) and np.array_equal(b0, b1)


def test_calls_out_of_order_are_refused():
    n = FixedNet(spec([2, 4, 1]))
    t = ffi.new("int16_t[]", 1)
    with pytest.raises(CoreError) as e:
        from edgebp.fixed import check
        check(lib.ebp_backward(n._net, t, ffi.NULL), "backward")
    assert e.value.status == lib.EBP_ERR_STATE
    infer = FixedNet(spec([2, 4, 1]), train=False)
    with pytest.raises(CoreError, match="out of order"):
        infer.train_q(np.zeros((1, 2), np.int16), np.zeros((1, 1), np.int16), 1)


# --- determinism ----------------------------------------------------------------------------------------

def test_same_seed_same_integers_and_epoch_chunks_are_equivalent():
    ds = load_dataset("diabetes")
    cfg = dict(lr=0.2, seed=7, batch_size=4, rounding="stochastic", optimizer="momentum", momentum=0.5)
    a, b, c = (FixedNet(spec([8, 16, 2]), TrainConfig(**cfg)) for _ in range(3))
    X, T = a.quantize_inputs(ds.X_train), a.quantize_targets(ds.T_train)
    la = a.train_q(X, T, 4)
    lb = b.train_q(X, T, 4)
    lc = sum(c.train_q(X[i:i + 64], T[i:i + 64], 4) for i in range(0, len(X), 64))  # chunks at batch multiples
    assert la == lb == lc
    for (wa, ba), (wb, bb), (wc, bc) in zip(a.get_int_weights(), b.get_int_weights(), c.get_int_weights()):
        assert np.array_equal(wa, wb) and np.array_equal(wa, wc)
        assert np.array_equal(ba, bb) and np.array_equal(ba, bc)
    d = FixedNet(spec([8, 16, 2]), TrainConfig(**dict(cfg, seed=8)))
    assert not np.array_equal(d.get_int_weights()[0][0], FixedNet(spec([8, 16, 2]), TrainConfig(**cfg)).get_int_weights()[0][0])


def test_weight_init_ranges():
    n = FixedNet(spec([8, 16, 2], w_frac=12), TrainConfig(init="uniform", init_range=0.5, seed=3))
    (W0, b0), (W1, b1) = n.get_int_weights()
    assert W0.min() >= -2048 and W0.max() <= 2048 and W0.min() < -1800 and W0.max() > 1800
    assert abs(W0.mean()) < 200 and np.any(b0 != 0)
    x = FixedNet(spec([8, 16, 2], w_frac=12), TrainConfig(init="xavier", seed=3))
    (W0, b0), _ = x.get_int_weights()
    r = int(np.sqrt(6 / 24) * 4096)
    assert abs(np.abs(W0).max() - r) < 200 and np.abs(W0).max() <= r and not np.any(b0)


# --- activations ----------------------------------------------------------------------------------------

def sweep(act, w_real, n_out=1, loss="mse"):
    """Outputs (Q15) of a one-input layer over every int16 input, with z = w_real * x."""
    n = FixedNet(NetSpec(1, [Layer(n_out, act, 12, 15)], loss, 12), TrainConfig())
    W = np.zeros((n_out, 1), np.int16)
    W[0, 0] = int(w_real * 4096)
    n.set_int_weights([(W, np.zeros(n_out, np.int16))])
    xq = np.arange(-32768, 32768, dtype=np.int16)[:, None]
    return xq[:, 0] / 4096 * w_real, n.predict_q(xq) / 32768


def test_activation_approximation_errors_are_as_documented():
    # the bounds quoted in csrc/edgebp.h, measured at a_frac = 15 over z in [-16, 16) (tanh: [-8, 8))
    z, y = sweep("sigmoid", 2.0)
    assert np.abs(y[:, 0] - 1 / (1 + np.exp(-z))).max() < 8e-5
    z, y = sweep("tanh", 1.0)
    assert np.abs(y[:, 0] - np.tanh(z)).max() < 1.2e-4
    z, y = sweep("softmax", 2.0, 2, "ce")
    assert np.abs(y[:, 0] - 1 / (1 + np.exp(-z))).max() < 1.5e-4
    assert np.all(y.sum(axis=1) <= 1 + 2 ** -15) and np.all(y.sum(axis=1) >= 1 - 2 ** -14)
    z, y = sweep("relu", 1.0)
    assert np.array_equal(y[:, 0], np.maximum(z, 0) * 4096 / 4096 * 1.0) or np.abs(y[:, 0] - np.clip(z, 0, 1 - 2**-15)).max() <= 2 ** -15


def test_loss_values_match_the_exact_formulas():
    rng = np.random.default_rng(0)
    for act, loss in (("sigmoid", "mse"), ("softmax", "ce"), ("sigmoid", "ce"), ("linear", "mse")):
        n = FixedNet(spec([3, 5, 4], act=["tanh", act], loss=loss), TrainConfig(seed=2))
        X = rng.uniform(-1, 1, (50, 3))
        T = np.eye(4)[rng.integers(0, 4, 50)]
        Y = n.predict(X)
        if loss == "mse":
            exact = np.mean(0.5 * ((Y - T) ** 2).sum(1))
        elif act == "softmax":
            exact = np.mean(-(T * np.log(np.maximum(Y, 2 ** -12))).sum(1))
        else:
            Yc = np.clip(Y, 2 ** -12, 1 - 2 ** -12)
            exact = np.mean(-(T * np.log(Yc) + (1 - T) * np.log(1 - Yc)).sum(1))
        assert abs(n.loss(X, T) - exact) < 2e-4 * max(1, exact), (act, loss)


# --- training -------------------------------------------------------------------------------------------

def test_xor_reaches_100_percent_in_fixed_point():
    n = FixedNet(spec([2, 4, 1]), TrainConfig(lr=0.5, seed=1, init_range=1.0))
    hist = n.fit(XOR_X, XOR_T, StopRule(epochs=5000, all_correct=True))
    assert hist.stopped_by == "all_correct"
    assert n.evaluate(XOR_X, XOR_T)[1] == 1.0


def test_deep_network_trains_every_layer():
    # 4 dense layers, mixed activations: every layer's weights move and the loss falls
    ds = load_dataset("diabetes")
    n = FixedNet(spec([8, 12, 10, 8, 2], act=["relu", "tanh", "sigmoid", "softmax"], loss="ce"),
                 TrainConfig(lr=0.05, seed=3, init="xavier"))
    w0 = n.get_int_weights()
    l0 = n.loss(ds.X_train, ds.T_train)
    n.fit(ds.X_train, ds.T_train, StopRule(epochs=20))
    assert n.loss(ds.X_train, ds.T_train) < l0 - 0.05
    assert all(not np.array_equal(a[0], b[0]) for a, b in zip(w0, n.get_int_weights()))
    assert n.evaluate(ds.X_test, ds.T_test)[1] > 0.70


def test_round_to_nearest_stalls_where_stochastic_rounding_learns():
    # Gupta et al. 2015: at a small learning rate every update is below half an LSB of the Q10 weights;
    # round-to-nearest throws all of them away, stochastic rounding keeps them in expectation.
    ds = load_dataset("diabetes")
    s = spec([8, 16, 2], w_frac=10)
    near = FixedNet(s, TrainConfig(lr=0.003, seed=1, rounding="nearest"))
    sto = FixedNet(s, TrainConfig(lr=0.003, seed=1, rounding="stochastic"))
    l0 = near.loss(ds.X_train, ds.T_train)
    w0 = near.get_int_weights()
    near.fit(ds.X_train, ds.T_train, StopRule(epochs=20))
    sto.fit(ds.X_train, ds.T_train, StopRule(epochs=20))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(w0, near.get_int_weights()))   # stalled
    assert sum(s["zero_updates"] for s in near.stats()) == sum(s["updates"] for s in near.stats())
    assert near.loss(ds.X_train, ds.T_train) == l0
    assert sto.loss(ds.X_train, ds.T_train) < l0 - 0.03                                 # learned


def test_online_only_network_needs_no_gradient_memory_and_trains():
    ds = load_dataset("diabetes")
    s = spec([8, 16, 2])
    lean = FixedNet(s, TrainConfig(lr=0.2, seed=1, online_only=True))
    full = FixedNet(s, TrainConfig(lr=0.2, seed=1, online_only=False))
    assert lean.memory_report()["gradients"] == 0
    # no int32 gradient sums and no int64 raw-delta scratch (packed into the delta arrays instead)
    assert lean.memory_report()["total"] == full.memory_report()["total"] - 4 * (8 * 16 + 16 + 16 * 2 + 2) - 8 * 16
    for n in (lean, full):
        n.fit(ds.X_train, ds.T_train, StopRule(epochs=3))
    for (a, b), (c, d) in zip(lean.get_int_weights(), full.get_int_weights()):   # same online path
        assert np.array_equal(a, c) and np.array_equal(b, d)
    # gradients come from a copy with gradient memory: the same integers as the network that has it
    X5, T5 = ds.X_train[:5], ds.T_train[:5]
    for (a, b), (c, d) in zip(lean.gradients(X5, T5), full.gradients(X5, T5)):
        assert np.array_equal(a, c) and np.array_equal(b, d) and np.abs(a).max() > 0
    assert lean.memory_report()["gradients"] == 0
    with pytest.raises(ConfigError, match="batch_size 1"):
        lean.train_samples(ds.X_train[:4], ds.T_train[:4], 2)  # online_only=True insists
    x, t = lean.quantize_inputs(ds.X_train[:1]), lean.quantize_targets(ds.T_train[:1])
    assert lib.ebp_forward(lean._net, ffi.from_buffer("int16_t[]", x), ffi.NULL) == lib.EBP_OK
    assert lib.ebp_backward(lean._net, ffi.from_buffer("int16_t[]", t), ffi.NULL) == lib.EBP_ERR_STATE
    with pytest.raises(ConfigError, match="online_only"):
        TrainConfig(online_only=True, batch_size=4).validate()


def test_default_online_network_gains_gradient_memory_for_batches_with_the_same_integers():
    """TrainConfig() (sgd, batch_size 1) lays the network out without gradient memory; trained later in
    batches, a FixedNet lays itself out again with it, carrying weights, rounding state, counters and steps,
    so it continues exactly like a network that had gradient memory from the start."""
    ds = load_dataset("diabetes")
    s = spec([8, 16, 2])
    auto = FixedNet(s, TrainConfig(lr=0.3, seed=3, rounding="stochastic"))
    full = FixedNet(s, TrainConfig(lr=0.3, seed=3, rounding="stochastic", online_only=False))
    assert auto.memory_report() == memory(s, TrainConfig(online_only=True))
    for n in (auto, full):
        n.train_samples(ds.X_train[:50], ds.T_train[:50], 1)     # online, stochastic rounding draws numbers
        n.train_samples(ds.X_train[50:130], ds.T_train[50:130], 16)  # batches: auto gains gradient memory
        n.train_samples(ds.X_train[130:150], ds.T_train[130:150], 1)
    assert auto.memory_report() == full.memory_report()
    assert auto.stats() == full.stats() and auto.steps == full.steps == 50 + 5 + 20
    assert int(auto._net.rng) == int(full._net.rng)
    for (a, b), (c, d) in zip(auto.get_int_weights(), full.get_int_weights()):
        assert np.array_equal(a, c) and np.array_equal(b, d)
