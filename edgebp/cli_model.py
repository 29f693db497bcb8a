"""`--model` and `--w-bits` for the commands that build a network (wired into edgebp/cli.py's parsers).

    --model "conv1d(8,5,stride=2,act=relu),maxpool1d(2),gap,dense(4,act=softmax)"

Layers, separated by commas, each ``name`` or ``name(arguments)``; arguments are numbers in order, then
``key=value``:
    conv1d(filters, kernel, stride=1, act=relu)     maxpool1d(pool, stride=pool)    gap
    dense(n, act=sigmoid)                           avgpool1d(pool, stride=pool)    flatten
(``w_frac=``, ``a_frac=`` and ``w_bits=`` are accepted by conv1d and dense). The input shape (channels,
length) comes from the data set. ``--layers`` keeps working for dense networks.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from typing import List, Optional

from .config import (ACTIVATIONS, AvgPool1D, Conv1D, Dense, Flatten, GlobalAvgPool1D, Layer, MaxPool1D, NetSpec)
from .errors import ConfigError

# name -> (constructor, positional parameter names, keyword parameters)
_KINDS = {
    "conv1d": (Conv1D, ("filters", "kernel"), ("stride", "act", "w_frac", "a_frac", "w_bits")),
    "dense": (Dense, ("n_out",), ("act", "w_frac", "a_frac", "w_bits")),
    "maxpool1d": (MaxPool1D, ("pool",), ("stride",)),
    "avgpool1d": (AvgPool1D, ("pool",), ("stride",)),
    "gap": (GlobalAvgPool1D, (), ()),
    "globalavgpool1d": (GlobalAvgPool1D, (), ()),
    "flatten": (Flatten, (), ()),
}
_EXAMPLE = '"conv1d(8,5,stride=2,act=relu),maxpool1d(2),gap,dense(4,act=softmax)"'


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """Adds --model and --w-bits to a command's parser."""
    parser.add_argument("--model", default=None, metavar="LAYERS",
                        help=f"the layers, e.g. {_EXAMPLE} (input shape from the data; replaces --layers)")
    parser.add_argument("--w-bits", type=int, choices=(8, 16), default=None,
                        help="storage of every layer's weights and biases: int16 (default) or int8")


def _split_top(text: str) -> List[str]:
    """Splits at the commas outside parentheses."""
    items, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"--model: unbalanced ')' in {text!r}; e.g. {_EXAMPLE}")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise ConfigError(f"--model: unbalanced '(' in {text!r}; e.g. {_EXAMPLE}")
    return items + [cur]


def _value(key: str, v: str, item: str):
    if key == "act":
        if v not in ACTIVATIONS:
            raise ConfigError(f"--model: {item}: unknown activation {v!r}; choose one of {', '.join(ACTIVATIONS)}")
        return v
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"--model: {item}: {key} must be a whole number, got {v!r}") from None


def parse_model(text: str, w_frac: int = 12, a_frac: int = 12) -> list:
    """The layer objects of a --model string (Flatten included), ConfigError with what to fix otherwise;
    w_frac and a_frac are the formats of conv1d and dense layers that do not give their own."""
    layers = []
    for item in _split_top(text.replace(" ", "")):
        m = re.fullmatch(r"([a-z0-9_]+)(?:\((.*)\))?", item.lower())
        if not item or m is None:
            raise ConfigError(f"--model: cannot read {item!r}; write layers like {_EXAMPLE}")
        name, args = m.group(1), m.group(2)
        if name not in _KINDS:
            raise ConfigError(f"--model: unknown layer {name!r}; choose one of {', '.join(_KINDS)}")
        ctor, positional, keywords = _KINDS[name]
        pos, kw = [], {}
        for a in _split_top(args) if args else []:
            if "=" in a:
                k, v = a.split("=", 1)
                if k not in keywords:
                    raise ConfigError(f"--model: {item}: unknown argument {k!r}"
                                      + (f"; {name} takes {', '.join(keywords)}" if keywords else ""))
                kw[k] = _value(k, v, item)
            elif kw:
                raise ConfigError(f"--model: {item}: numbers come before key=value arguments")
            else:
                pos.append(_value("argument", a, item))
        if len(pos) != len(positional):
            raise ConfigError(f"--model: {item}: {name} takes {len(positional)} number(s) "
                              f"({', '.join(positional) or 'none'}), got {len(pos)}")
        if name in ("conv1d", "dense"):
            kw.setdefault("w_frac", w_frac)
            kw.setdefault("a_frac", a_frac)
        if name in ("maxpool1d", "avgpool1d") and "stride" in kw:
            kw["stride"] = kw["stride"] or None
        layers.append(ctor(*pos, **kw))
    return layers


def _input_shape(ds):
    shape = getattr(ds, "input_shape", None)
    if shape:
        return tuple(int(v) for v in shape)
    return (1, int(ds.X_train.shape[1]))


def spec_from_model_args(args, ds, base_spec: NetSpec) -> NetSpec:
    """The network the command builds: base_spec (from --layers and the format flags) unchanged when
    neither --model nor --w-bits is given. --model builds NetSpec.sequential with the data's input shape, the
    formats of base_spec (its in_frac, and its first layer's w_frac and a_frac as the default of every
    layer) and its loss ('ce' if the model ends in softmax); --w-bits sets every layer with weights."""
    model: Optional[str] = getattr(args, "model", None)
    w_bits: Optional[int] = getattr(args, "w_bits", None)
    if model is None and w_bits is None:
        return base_spec
    if model is not None:
        layers = parse_model(model, base_spec.layers[0].w_frac, base_spec.layers[0].a_frac)
        last = next((l for l in reversed(layers) if isinstance(l, Layer)), None)
        loss = "ce" if last is not None and last.act == "softmax" else base_spec.loss
        spec = NetSpec.sequential(_input_shape(ds), layers, loss=loss, in_frac=base_spec.in_frac)
        n_targets = int(ds.T_train.shape[1])
        if spec.n_out != n_targets:
            raise ConfigError(f"--model: the last layer has {spec.n_out} outputs but the data has {n_targets} "
                              f"targets; end the model with dense({n_targets},...)")
    else:
        spec = dataclasses.replace(base_spec, layers=[dataclasses.replace(l) for l in base_spec.layers])
    if w_bits is not None:
        for l in spec.layers:
            if l.has_params:
                l.w_bits = w_bits
    spec.validate()
    return spec
