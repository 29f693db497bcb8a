"""edgebp/cli_model.py: --model and --w-bits, parsed into a NetSpec with the data's input shape."""
import argparse
from types import SimpleNamespace

import numpy as np
import pytest

from edgebp import ConfigError, NetSpec
from edgebp.cli_model import add_model_args, parse_model, spec_from_model_args
from edgebp.layers import Conv1D, Dense, GlobalAvgPool1D, MaxPool1D


def parser():
    p = argparse.ArgumentParser()
    add_model_args(p)
    return p


def dataset(shape=(6, 100), n_targets=4):
    n = shape[0] * shape[1]
    return SimpleNamespace(X_train=np.zeros((3, n)), T_train=np.zeros((3, n_targets)), input_shape=shape)


BASE = NetSpec.from_sizes([600, 16, 4], "sigmoid", "mse", w_frac=11, a_frac=10, in_frac=9)


def test_model_string_builds_the_sequential_spec():
    args = parser().parse_args(["--model", "conv1d(8,5,stride=2,act=relu), maxpool1d(2),gap,dense(4,act=softmax)"])
    spec = spec_from_model_args(args, dataset(), BASE)
    want = NetSpec.sequential((6, 100), [Conv1D(8, 5, stride=2, act="relu", w_frac=11, a_frac=10), MaxPool1D(2),
                                         GlobalAvgPool1D(), Dense(4, act="softmax", w_frac=11, a_frac=10)],
                              in_frac=9)
    assert spec == want and spec.loss == "ce" and spec.in_ch == 6
    assert spec.shapes()[1:] == [(8, 48), (8, 24), (8, 1), (4, 1)]


def test_without_model_or_w_bits_the_base_spec_is_returned_unchanged():
    args = parser().parse_args([])
    assert spec_from_model_args(args, dataset(), BASE) is BASE


def test_w_bits_sets_every_layer_with_weights():
    args = parser().parse_args(["--w-bits", "8"])
    spec = spec_from_model_args(args, dataset(), BASE)
    assert [l.w_bits for l in spec.layers] == [8, 8] and [l.w_bits for l in BASE.layers] == [16, 16]
    args = parser().parse_args(["--model", "conv1d(4,3,w_frac=13),maxpool1d(2,stride=1),dense(4,act=softmax)",
                                "--w-bits", "8"])
    spec = spec_from_model_args(args, dataset(), BASE)
    assert [l.w_bits for l in spec.layers] == [8, 16, 8] and spec.layers[0].w_frac == 13
    assert spec.layers[1].stride == 1
    with pytest.raises(SystemExit):
        parser().parse_args(["--w-bits", "4"])


def test_flat_data_is_one_channel():
    ds = SimpleNamespace(X_train=np.zeros((3, 8)), T_train=np.zeros((3, 2)))
    spec = spec_from_model_args(parser().parse_args(["--model", "conv1d(2,3),flatten,dense(2)"]), ds, BASE)
    assert spec.input_shape == (1, 8) and len(spec.layers) == 2 and spec.loss == "mse"


@pytest.mark.parametrize("model, match", [
    ("conv1d(8,5", "unbalanced"),
    ("conv1d(8,5))", "unbalanced"),
    ("lstm(4),dense(4)", "unknown layer 'lstm'"),
    ("conv1d(8),dense(4)", "takes 2 number"),
    ("conv1d(8,5,padding=1),dense(4)", "unknown argument 'padding'"),
    ("conv1d(8,x),dense(4)", "whole number"),
    ("conv1d(8,5,act=gelu),dense(4)", "unknown activation"),
    ("conv1d(act=relu,8,5),dense(4)", "numbers come before"),
    ("conv1d(8,101),dense(4)", "longer than its input"),
    ("conv1d(8,5),dense(3)", "data has 4 targets"),
    ("", "cannot read"),
])
def test_bad_models_say_what_to_fix(model, match):
    with pytest.raises(ConfigError, match=match):
        spec_from_model_args(parser().parse_args(["--model", model]), dataset(), BASE)


def test_parse_model_alone():
    assert [l.kind for l in parse_model("conv1d(2,3),avgpool1d(2),globalavgpool1d,dense(1)")] == \
        ["conv1d", "avgpool1d", "gap", "dense"]
