"""Training only some layers (issue 11, section 2): frozen layers are never updated, the layers below the
lowest trained one run forward only (no deltas, no delta or gradient memory), in the C core, the float
mirror and the independent reference (golden vectors in tests/golden/frozen_*.json, random configurations
in tests/test_golden.py)."""
import numpy as np
import pytest

from edgebp import ConfigError, Layer, NetSpec, TrainConfig
from edgebp._core import ffi
from edgebp.fixed import FixedNet
from edgebp.mirror import FloatNet


def spec_8_16_16_2():
    return NetSpec.from_sizes([8, 16, 16, 2], "sigmoid", "mse")


def test_with_trainable_last_marks_the_last_k_layers_with_weights():
    spec = spec_8_16_16_2()
    assert [l.trainable for l in spec.with_trainable_last(1).layers] == [False, False, True]
    assert [l.trainable for l in spec.with_trainable_last(3).layers] == [True, True, True]
    assert spec.with_trainable_last(2).first_train == 1 and spec.first_train == 0
    assert all(l.trainable for l in spec.layers)                     # a copy: the original is unchanged
    for bad in (0, 4, -1, 1.5, True):
        with pytest.raises(ConfigError, match="k in 1..3"):
            spec.with_trainable_last(bad)


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_memory_report_counts_only_what_trained_layers_need(online, k):
    spec = spec_8_16_16_2().with_trainable_last(k)
    cfg = TrainConfig("sgd", lr=0.2, batch_size=1, online_only=online)
    mem = FixedNet(spec, cfg).memory_report()
    sizes, first = spec.sizes, spec.first_train                      # [8, 16, 16, 2]
    params = [o * i + o for i, o in zip(sizes[:-1], sizes[1:])]
    trained = sum(params[first:])
    delta_widths = sizes[1 + first:]
    assert mem["weights"] == 2 * (8 * 16 + 16 * 16 + 16 * 2) and mem["biases"] == 2 * 34
    assert mem["gradients"] == (0 if online else 4 * trained)
    assert mem["activations"] == 2 * sum(sizes) + 2 * sum(delta_widths)
    assert mem["scratch"] == (0 if online else 8 * max(delta_widths))
    assert mem["total"] == sum(v for key, v in mem.items() if key != "total")
    full = FixedNet(spec_8_16_16_2(), cfg).memory_report()
    assert mem["total"] < full["total"] or k == 3
    # the float mirror's report has the same structure
    fm = FloatNet(spec, cfg).memory_report()
    assert fm["gradients"] == 8 * trained and fm["activations"] == 8 * (sum(sizes) + sum(delta_widths))


def test_layers_below_the_lowest_trained_one_have_no_delta_or_gradient_memory():
    spec = spec_8_16_16_2().with_trainable_last(1)
    fn = FixedNet(spec, TrainConfig("sgd", lr=0.2, batch_size=4))
    net = fn._net
    assert net.first_train == 2
    assert [net.layers[i].delta == ffi.NULL for i in range(3)] == [True, True, False]
    assert [net.layers[i].gw == ffi.NULL for i in range(3)] == [True, True, False]
    mid = FixedNet(NetSpec(8, [Layer(16), Layer(16, trainable=False), Layer(2)]), TrainConfig(batch_size=4))
    assert mid._net.first_train == 0 and mid._net.layers[1].delta != ffi.NULL and mid._net.layers[1].gw == ffi.NULL


@pytest.mark.parametrize("batch", [1, 4])
def test_frozen_layers_stay_bit_identical_and_the_rest_learns(batch):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 8))
    T = (X[:, :2] > 0).astype(float)
    spec = spec_8_16_16_2().with_trainable_last(1)
    cfg = TrainConfig("sgd", lr=0.5, batch_size=batch, rounding="stochastic", seed=3)
    fixed = FixedNet(spec, cfg)
    flt = FloatNet(spec, cfg, weights=fixed.get_weights())
    w0_int, w0_float = fixed.get_int_weights(), flt.get_weights()
    before = fixed.loss(X, T)
    for _ in range(20):
        fixed.train_epoch(X, T)
        flt.train_epoch(X, T)
    for l in (0, 1):
        assert np.array_equal(fixed.get_int_weights()[l][0], w0_int[l][0])
        assert np.array_equal(fixed.get_int_weights()[l][1], w0_int[l][1])
        assert np.array_equal(flt.get_weights()[l][0], w0_float[l][0])
    assert fixed.stats()[0]["updates"] == fixed.stats()[1]["updates"] == 0 < fixed.stats()[2]["updates"]
    assert fixed.loss(X, T) < before
    # the trained layer follows the float mirror's (stated bound: 0.02 per weight after 20 epochs)
    assert np.abs(fixed.get_weights()[2][0] - flt.get_weights()[2][0]).max() < 0.02


def test_gradients_of_frozen_layers_are_zero_and_the_others_are_unchanged():
    rng = np.random.default_rng(1)
    X, T = rng.uniform(-1, 1, (10, 8)), rng.uniform(0, 1, (10, 2))
    full = FloatNet(spec_8_16_16_2(), TrainConfig(seed=4))
    part = FloatNet(spec_8_16_16_2().with_trainable_last(2), TrainConfig(seed=4), weights=full.get_weights())
    gf, gp = full.gradients(X, T), part.gradients(X, T)
    assert not gp[0][0].any() and not gp[0][1].any()
    for l in (1, 2):
        assert np.allclose(gp[l][0], gf[l][0], rtol=0, atol=1e-15) and np.allclose(gp[l][1], gf[l][1], atol=1e-15)
    fixed = FixedNet(spec_8_16_16_2().with_trainable_last(2), TrainConfig(seed=4, online_only=False, batch_size=4))
    g = fixed.gradients(X, T)
    assert not g[0][0].any() and g[2][0].any()


def test_a_network_with_every_layer_frozen_only_evaluates():
    spec = NetSpec(3, [Layer(4, trainable=False), Layer(2, trainable=False)])
    fn = FixedNet(spec, TrainConfig())
    assert fn._net.first_train == 2 and fn.memory_report()["activations"] == 2 * (3 + 4 + 2)
    w0 = fn.get_int_weights()
    X, T = np.full((3, 3), 0.5), np.full((3, 2), 0.25)
    loss = fn.train_samples(X, T, 1)
    assert loss > 0 and all(np.array_equal(a[0], b[0]) for a, b in zip(fn.get_int_weights(), w0))
    flt = FloatNet(spec, TrainConfig(), weights=fn.get_weights())
    flt.train_samples(X, T, 1)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(flt.get_weights(), fn.get_weights()))
