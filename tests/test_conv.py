"""1-D convolution, max / average / global average pooling (issue 15): the model description, the float
mirror's gradients against finite differences (every kind, strides, overlapping windows), the fixed-point
core against the mirror, and the exact memory report. Bit-exactness against the independent reference is in
tests/test_golden.py (golden vectors conv1d_*.json and random conv networks)."""
import numpy as np
import pytest

from edgebp import ConfigError, NetSpec, TrainConfig
from edgebp.config import Layer
from edgebp.fixed import FixedNet
from edgebp.layers import AvgPool1D, Conv1D, Dense, Flatten, GlobalAvgPool1D, MaxPool1D
from edgebp.mirror import (FloatNet, conv1d_backward, conv1d_forward, pool_backward, pool_forward)
from gradcheck import flat, numeric_gradients, rel_err


MODELS = {
    "conv_maxpool_dense": ((2, 11), [Conv1D(3, 3, stride=2, act="tanh"), MaxPool1D(2), Dense(2, act="softmax")]),
    "conv_avgpool_overlap_conv_gap": ((2, 12), [Conv1D(3, 3, act="sigmoid"), AvgPool1D(3, stride=2),
                                                Conv1D(2, 2, act="tanh"), GlobalAvgPool1D(),
                                                Dense(2, act="sigmoid")]),
    "maxpool_overlap_first": ((1, 9), [MaxPool1D(3, stride=1), Conv1D(2, 2, act="linear"), Dense(1, act="linear")]),
    "conv_flatten_dense": ((3, 7), [Conv1D(2, 4, stride=3, act="tanh"), Flatten(), Dense(3, act="tanh"),
                                    Dense(2, act="softmax")]),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float_gradients_match_finite_differences(name):
    shape, layers = MODELS[name]
    spec = NetSpec.sequential(shape, layers)
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (5, spec.n_in))
    T = np.eye(spec.n_out)[rng.integers(0, spec.n_out, 5)] if spec.loss == "ce" else rng.uniform(0, 1, (5, spec.n_out))
    net = FloatNet(spec, TrainConfig(init="uniform", init_range=0.8, seed=3))
    assert rel_err(flat(net.gradients(X, T)), flat(numeric_gradients(net, X, T))) < 1e-6


def test_ops_input_gradients_match_finite_differences():
    """dL/dx of conv1d and of both poolings for L = sum(r * y): the adjoint of the forward op."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (2, 3, 10))
    W, b = rng.uniform(-1, 1, (4, 3, 3)), rng.uniform(-1, 1, 4)
    cases = [(lambda v: conv1d_forward(W, b, v, 2), lambda r: conv1d_backward(W, x, r, 2)[2]),
             (lambda v: pool_forward("max", v, 3, 2), lambda r: pool_backward("max", x, r, 3, 2)),
             (lambda v: pool_forward("avg", v, 4, 3), lambda r: pool_backward("avg", x, r, 4, 3))]
    for fwd, bwd in cases:
        r = rng.uniform(-1, 1, fwd(x).shape)
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[i] += 1e-6
            xm[i] -= 1e-6
            num[i] = (np.sum(r * fwd(xp)) - np.sum(r * fwd(xm))) / 2e-6
        assert np.allclose(bwd(r), num, atol=1e-7)


def test_sequential_shapes_and_defaults():
    spec = NetSpec.sequential((6, 100), [Conv1D(8, 5, stride=2, act="relu"), MaxPool1D(2), Conv1D(16, 3, act="relu"),
                                         GlobalAvgPool1D(), Dense(4, act="softmax")])
    assert spec.shapes() == [(6, 100), (8, 48), (8, 24), (16, 22), (16, 1), (4, 1)]
    assert spec.loss == "ce" and spec.in_ch == 6 and spec.n_in == 600 and spec.n_out == 4
    assert [l.a_frac for l in spec.layers] == [12, 12, 12, 12, 12]          # pooling takes its input's format
    assert spec.param_shapes()[0] == ((8, 6, 5), (8,)) and spec.param_shapes()[1] == ((0,), (0,))
    assert NetSpec.from_dict(spec.to_dict()) == spec
    assert spec.describe() == ("conv1d(8,5,stride=2,act=relu),maxpool1d(2),conv1d(16,3,stride=1,act=relu),gap,"
                               "dense(4,act=softmax)")
    assert NetSpec.sequential(8, [Dense(2)]).loss == "mse"


@pytest.mark.parametrize("shape, layers, match", [
    ((2, 10), [Conv1D(2, 11), Dense(1)], "longer than its input"),
    ((2, 10), [MaxPool1D(4), MaxPool1D(3), Dense(1)], "longer than its input"),
    ((2, 10), [Conv1D(2, 0), Dense(1)], "window must be 1..255"),
    ((2, 10), [Conv1D(2, 3, act="softmax"), Dense(1)], "softmax"),
    ((2, 600), [Conv1D(4, 3), Dense(1)], "limit of 1024"),
    ((2, 10), ["dense"], "not a layer"),
    ("six", [Dense(1)], "channels, length"),
])
def test_sequential_refuses_what_does_not_fit(shape, layers, match):
    with pytest.raises(ConfigError, match=match):
        NetSpec.sequential(shape, layers)


def test_pooling_layers_must_keep_their_input_format():
    spec = NetSpec.sequential((1, 8), [Conv1D(2, 3, a_frac=10), MaxPool1D(2), Dense(1)])
    spec.layers[1].a_frac = 11
    with pytest.raises(ConfigError, match="keeps its input's format"):
        spec.validate()
    with pytest.raises(ConfigError, match="n_out 0"):
        NetSpec(8, [Layer(3, "linear", 0, 12, kind="maxpool1d", kernel=2), Layer(1)]).validate()


@pytest.mark.parametrize("online", [True, False])
def test_memory_report_is_exact_and_online_lean(online):
    spec = NetSpec.sequential((6, 100), [Conv1D(8, 5, stride=2, act="relu"), MaxPool1D(2), GlobalAvgPool1D(),
                                         Dense(4, act="softmax")])
    mem = FixedNet(spec, TrainConfig(online_only=online)).memory_report()
    outs = 8 * 48 + 8 * 24 + 8 + 4
    params = 8 * 6 * 5 + 8 + 4 * 8 + 4
    assert mem["weights"] == 2 * (8 * 6 * 5 + 4 * 8) and mem["biases"] == 2 * (8 + 4)
    assert mem["activations"] == 2 * (600 + outs) + 2 * outs                   # outputs and deltas
    assert mem["gradients"] == (0 if online else 4 * params)
    assert mem["scratch"] == (8 * 4 if online else 8 * 8 * 48)                # softmax only / widest deltas
    assert mem["total"] == sum(v for k, v in mem.items() if k != "total")
    # the lean layout is exactly the int16 parameters, input, outputs and deltas (plus the softmax scratch)
    if online:
        assert mem["total"] == 2 * params + 2 * (600 + 2 * outs) + 8 * 4
    frozen = FixedNet(spec.with_trainable_last(1), TrainConfig(online_only=online)).memory_report()
    assert frozen["activations"] == 2 * (600 + outs) + 2 * 4                  # deltas of the dense layer only


def synthetic_windows(n, ch, length, seed):
    """Two classes of sensor-like windows: a slow or a fast oscillation in channel 0 at a random phase, plus
    noise in every channel (what a convolution and global pooling separate, and a position cannot)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.2, (n, ch, length))
    y = rng.integers(0, 2, n)
    t = np.arange(length)
    for i in range(n):
        X[i, 0] += np.sin(t * (0.4 if y[i] == 0 else 2.2) + rng.uniform(0, 6.3))
    return np.clip(X, -1.9, 1.9).reshape(n, -1), np.eye(2)[y]


@pytest.mark.parametrize("online", [True, False])
def test_fixed_conv_network_tracks_the_float_mirror(online):
    X, T = synthetic_windows(120, 2, 24, 1)
    spec = NetSpec.sequential((2, 24), [Conv1D(4, 5, stride=2, act="relu"), MaxPool1D(2), GlobalAvgPool1D(),
                                        Dense(2, act="softmax")])
    cfg = TrainConfig("sgd", lr=0.1, batch_size=1 if online else 8, init="he", seed=2, rounding="stochastic")
    fixed = FixedNet(spec, cfg)
    flt = FloatNet(spec, cfg, weights=fixed.get_weights())
    # gradients of the same weights agree (stated bound: relative L2 error below 0.1%)
    assert rel_err(flat(fixed.gradients(X[:16], T[:16])), flat(flt.gradients(X[:16], T[:16]))) < 1e-3
    for epoch in range(15):
        fixed.train_epoch(X, T, epoch)
        flt.train_epoch(X, T, epoch)
    (lq, aq), (lf, af) = fixed.evaluate(X, T), flt.evaluate(X, T)
    assert af > 0.9 and aq > 0.9                  # both learn the synthetic task
    assert abs(aq - af) <= 0.05 and abs(lq - lf) < 0.05
