"""int8 weights per layer (issue 15): half the parameter bytes, int16 activations, stochastic updates, int8
clips counted. Bit-exactness against intref: tests/golden/int8_*.json and the random configurations of
tests/test_golden.py (which draw int8 layers)."""
import numpy as np
import pytest

from edgebp import ConfigError, DataError, Layer, NetSpec, TrainConfig
from edgebp.fixed import FixedNet
from edgebp.layers import Conv1D, Dense, MaxPool1D
from edgebp.mirror import FloatNet


def spec8(bits=8):
    return NetSpec(8, [Layer(16, "sigmoid", 6, 12, w_bits=bits), Layer(2, "sigmoid", 6, 12, w_bits=bits)])


@pytest.mark.parametrize("online", [True, False])
def test_memory_report_counts_one_byte_per_int8_parameter(online):
    cfg = TrainConfig(online_only=online)
    m16, m8 = FixedNet(spec8(16), cfg).memory_report(), FixedNet(spec8(8), cfg).memory_report()
    assert m16["weights"] == 2 * m8["weights"] == 2 * (8 * 16 + 16 * 2)
    assert m16["biases"] == 2 * m8["biases"] == 2 * 18
    for part in ("gradients", "optimizer", "activations", "scratch"):
        assert m8[part] == m16[part]
    assert m16["total"] - m8["total"] == 178
    conv = NetSpec.sequential((2, 20), [Conv1D(4, 3, w_bits=8), MaxPool1D(2), Dense(2, w_bits=8)])
    assert FixedNet(conv, cfg).memory_report()["weights"] == 4 * 2 * 3 + 2 * 4 * 9


def test_int8_weights_read_and_write_as_int8():
    fn = FixedNet(spec8(), TrainConfig(init_range=1.5))
    (W, b), _ = fn.get_int_weights()
    assert W.dtype == np.int8 and W.shape == (16, 8) and np.abs(W).max() <= 96  # 1.5 in Q6
    fn.set_int_weights([(np.full((16, 8), 127), np.full(16, -128)), (np.zeros((2, 16), int), np.zeros(2, int))])
    assert fn.get_int_weights()[0][0].max() == 127 and fn.get_int_weights()[0][1].min() == -128
    with pytest.raises(DataError, match=r"outside int8 \[-128, 127\]"):
        fn.set_int_weights([(np.full((16, 8), 128), np.zeros(16, int)), (np.zeros((2, 16), int), np.zeros(2, int))])
    with pytest.raises(DataError, match="int8; scale"):
        fn.set_weights([(np.full((16, 8), 2.5), np.zeros(16)), (np.zeros((2, 16)), np.zeros(2))])
    fn.set_weights([(np.full((16, 8), 1.0), np.zeros(16)), (np.zeros((2, 16)), np.zeros(2))])
    assert fn.get_int_weights()[0][0][0, 0] == 64


def test_updates_are_stochastic_even_with_round_to_nearest_and_clips_are_counted():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (30, 8))
    T = np.stack([X[:, 0] > 0.5, X[:, 1] > 0.5], axis=1).astype(float)
    fn = FixedNet(spec8(), TrainConfig(lr=0.05, rounding="nearest", seed=4))
    rng0 = int(fn._net.rng)
    fn.train_epoch(X, T)
    assert int(fn._net.rng) != rng0                       # draws happened
    st = fn.stats()
    assert st[0]["updates"] > 0 and st[0]["zero_updates"] < st[0]["updates"]
    big = FixedNet(spec8(), TrainConfig(lr=64.0, seed=4))
    big.train_epoch(X, T)
    assert sum(s["sat_param"] for s in big.stats()) > 0


def test_int8_layers_refuse_what_they_cannot_store():
    with pytest.raises(ConfigError, match="16 or 8"):
        NetSpec(4, [Layer(2, w_bits=4)]).validate()
    with pytest.raises(ConfigError, match="no weights to store"):
        NetSpec(4, [Layer(0, "linear", 0, 12, kind="maxpool1d", kernel=2, w_bits=8), Layer(1)]).validate()


@pytest.mark.parametrize("batch", [1, 8])
def test_int8_dense_network_learns_like_the_float_mirror(batch):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (200, 8))
    T = np.eye(2)[(X[:, 0] + X[:, 1] > 0).astype(int)]
    spec = NetSpec(8, [Layer(16, "tanh", 6, 12, w_bits=8), Layer(2, "softmax", 6, 12, w_bits=8)], "ce")
    cfg = TrainConfig(lr=0.1, batch_size=batch, seed=2, init="xavier")
    fixed = FixedNet(spec, cfg)
    flt = FloatNet(spec, cfg, weights=fixed.get_weights())
    for e in range(20):
        fixed.train_epoch(X, T, e)
        flt.train_epoch(X, T, e)
    (_, aq), (_, af) = fixed.evaluate(X, T), flt.evaluate(X, T)
    assert af > 0.95 and aq > 0.93 and abs(aq - af) < 0.04   # stated bound: 4 points on this task
