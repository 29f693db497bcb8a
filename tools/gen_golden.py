#!/usr/bin/env python3
"""Generates tests/golden/*.json: golden vectors of the fixed-point core, computed by tools/intref.py.

The C core is not used here: each file is what an independent pure-Python integer implementation of the
core computes for one scenario, with the seed, the configuration and the integer data written in the file.
tests/test_golden.py runs the same scenario on the C core and requires every integer to match.

Run `python tools/gen_golden.py` after an intended change of the core's arithmetic (and of intref.py);
`--check` regenerates in memory and fails if a committed file differs.

A scenario (`run_scenario`):
  init     weights and biases after ebp_net_init_weights()
  trace    for the first samples of the first batch (at most 3): the outputs of every layer after
           ebp_forward(), then after ebp_backward() the loss, every layer's deltas and delta_exp, and the
           accumulators gw, gb, g_exp.
           With EBP_FLAG_ONLINE (no accumulators, ebp_backward() is refused) each traced sample is instead
           one ebp_train() call on that sample alone (the online update; the first 3 samples, each its own
           step): outputs, loss, deltas, delta_exp, then the weights, stats and rng after the update
  step     after ebp_step() on those samples: weights, velocities, stats, rng, steps (with
           EBP_FLAG_ONLINE ebp_step() has nothing to apply)
  train    `epochs` calls of ebp_train() on all samples: the Q16 loss sum of each, then the same state
  predict  ebp_predict() on all samples, and ebp_evaluate()'s (loss sum, correct)
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "tests" / "golden"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import intref  # noqa: E402
from edgebp.config import (ACTIVATIONS, INITS, KINDS, LOSSES, OPTIMIZERS, ROUNDINGS, AvgPool1D, Conv1D,  # noqa: E402
                           Dense, GlobalAvgPool1D, Layer, MaxPool1D, NetSpec, TrainConfig)

TRACE_MAX = 3


def core_params(spec: NetSpec, cfg: TrainConfig) -> dict:
    """The integers FixedNet.core_params() hands the core, derived from the pure-Python config only."""
    spec.validate()
    cfg.validate()
    lr_m, lr_e = cfg.quantized_lr()
    p = dict(n_in=spec.n_in, in_frac=spec.in_frac, loss=LOSSES.index(spec.loss),
                optimizer=OPTIMIZERS.index(cfg.optimizer), rounding=ROUNDINGS.index(cfg.rounding),
                flags=(intref.FLAG_FIXED_DELTA if cfg.fixed_delta else 0)
                | (intref.FLAG_ONLINE if cfg.online else 0),
                layers=[(l.n_out, ACTIVATIONS.index(l.act), l.w_frac, l.a_frac) for l in spec.layers],
                lr_m=lr_m, lr_e=lr_e, momentum_q15=cfg.quantized_momentum(), init_kind=INITS.index(cfg.init),
                init_range_q12=int(cfg.init_range * 4096 + 0.5),  # half away from zero (init_range > 0)
                seed=cfg.seed & 0xFFFFFFFF)
    ext = [(KINDS.index(l.kind), int(not l.trainable), l.kernel, l.stride, 0 if l.w_bits == 16 else l.w_bits)
           for l in spec.layers]
    in_ch = spec.in_ch if spec.in_ch != 1 else 0
    if in_ch or any(any(e) for e in ext):
        p["in_ch"], p["layer_ext"] = in_ch, ext
    return p


def deltas(net: intref.Net) -> list:
    """Every layer's deltas ([] for a layer below first_train: it has none)."""
    return [list(L.delta) if L.delta is not None else [] for L in net.layers]


def state(net: intref.Net) -> dict:
    return dict(weights=intref.weights(net), velocities=intref.velocities(net), stats=intref.stats(net),
                rng=net.rng, steps=net.steps)


def run_scenario(p: dict, X: list, T: list, batch: int, epochs: int) -> dict:
    """Runs one scenario on intref (see the module docstring); the record holds Python ints and lists only."""
    net = intref.from_params(p)
    rec = {"init": intref.weights(net)}
    first = len(X) if batch == 0 or batch > len(X) else batch
    rec["trace"] = []
    online = bool(p["flags"] & intref.FLAG_ONLINE)
    for s in range(min(len(X) if online else first, TRACE_MAX)):
        if online:
            loss = intref.train(net, [X[s]], [T[s]], 1)
            rec["trace"].append(dict(y=[list(L.y) for L in net.layers], loss=loss, delta=deltas(net),
                                     delta_exp=[L.delta_exp for L in net.layers], weights=intref.weights(net),
                                     stats=intref.stats(net), rng=net.rng))
            continue
        intref.forward(net, X[s])
        ys = [list(L.y) for L in net.layers]
        loss = intref.backward(net, T[s])
        rec["trace"].append(dict(y=ys, loss=loss, delta=deltas(net),
                                 delta_exp=[L.delta_exp for L in net.layers], grads=intref.grads(net)))
    intref.step(net)
    rec["step"] = state(net)
    rec["train_loss_sums"] = [intref.train(net, X, T, batch) for _ in range(epochs)]
    rec["train"] = state(net)
    rec["predict"] = intref.predict(net, X)
    rec["evaluate"] = list(intref.evaluate(net, X, T))
    return rec


def one_hot(k: int, n: int, frac: int) -> list:
    return [min(1 << frac, 32767) if i == k else 0 for i in range(n)]


def make_data(spec: NetSpec, n: int, seed: int) -> tuple:
    """n integer samples: inputs uniform in [-1, 1] at in_frac; targets one-hot (softmax, or several sigmoid
    outputs) or uniform in the output's range."""
    rnd = random.Random(seed)
    lim = 1 << spec.in_frac
    X = [[rnd.randint(-lim, lim) for _ in range(spec.n_in)] for _ in range(n)]
    out = spec.layers[-1]
    one = min(1 << out.a_frac, 32767)
    if out.act == "softmax" or (out.act == "sigmoid" and out.n_out > 1):
        T = [one_hot(rnd.randrange(out.n_out), out.n_out, out.a_frac) for _ in range(n)]
    elif out.act in ("sigmoid", "relu"):
        T = [[rnd.randint(0, one) for _ in range(out.n_out)] for _ in range(n)]
    else:
        T = [[rnd.randint(-one, one) for _ in range(out.n_out)] for _ in range(n)]
    return X, T


# name -> (description, spec, train config, samples, batch, epochs, data seed)
SCENARIOS = {
    "sgd_sigmoid_mse_8_16_2": (
        "8-16-2 sigmoid, squared error, SGD, round to nearest, online, uniform init",
        NetSpec(8, [Layer(16, "sigmoid", 12, 12), Layer(2, "sigmoid", 11, 13)], "mse", 10),
        TrainConfig("sgd", lr=0.5, batch_size=1, rounding="nearest", seed=7, init="uniform", init_range=0.5,
                    online_only=False),
        4, 1, 2, 101),
    "momentum_softmax_4_6_5_3": (
        "4-6-5-3 relu/tanh/softmax, cross-entropy, momentum, stochastic rounding, batch 3 (8 samples: the "
        "last batch has 2), xavier init",
        NetSpec(4, [Layer(6, "relu", 12, 10), Layer(5, "tanh", 13, 14), Layer(3, "softmax", 11, 12)], "ce", 11),
        TrainConfig("momentum", lr=0.25, momentum=0.9, batch_size=3, rounding="stochastic", seed=2024,
                    init="xavier", online_only=False),
        8, 3, 2, 202),
    "fixed_delta_tanh_sigmoid_ce_3_4_2": (
        "3-4-2 tanh/sigmoid, cross-entropy on sigmoid outputs, SGD, stochastic rounding, fixed Q15 deltas "
        "(EBP_FLAG_FIXED_DELTA), batch 2, he init",
        NetSpec(3, [Layer(4, "tanh", 14, 15), Layer(2, "sigmoid", 9, 8)], "ce", 13),
        TrainConfig("sgd", lr=0.75, batch_size=2, rounding="stochastic", seed=99, init="he",
                    fixed_delta=True, online_only=False),
        6, 2, 2, 303),
    "momentum_linear_lowfrac_2_3_1": (
        "2-3-1 relu/linear, squared error, momentum, round to nearest, full batch, uniform init, few "
        "fractional bits (left-shifting requant paths; a dead relu layer keeps g_exp empty)",
        NetSpec(2, [Layer(3, "relu", 4, 3), Layer(1, "linear", 5, 2)], "mse", 2),
        TrainConfig("momentum", lr=0.125, momentum=0.5, batch_size=0, rounding="nearest", seed=0,
                    init="uniform", init_range=1.5, online_only=False),
        5, 0, 3, 404),
    "online_stochastic_relu_sigmoid_ce_5_7_3": (
        "5-7-3 relu/sigmoid, cross-entropy on sigmoid outputs, SGD batch 1 (the fused update_online path of "
        "ebp_train), stochastic rounding, zero inputs and dead relu units (zero-input draws and counters); "
        "the trace runs the accumulator path (ebp_backward + ebp_step) on the first sample",
        NetSpec(5, [Layer(7, "relu", 13, 11), Layer(3, "sigmoid", 12, 14)], "ce", 12),
        TrainConfig("sgd", lr=0.4, batch_size=1, rounding="stochastic", seed=31337, init="he",
                    online_only=False),
        9, 1, 2, 505),
    "online_only_extreme_formats_tanh_linear_3_4_2": (
        "3-4-2 tanh/linear, squared error, EBP_FLAG_ONLINE (TrainConfig.online_only: no gradient memory), "
        "round to nearest, uniform init, extreme formats (Q2 inputs, Q15 tanh outputs into Q0 weights): "
        "the update_online fast path, both slow paths (S > 30 and S <= 0), zero inputs, clipped weights, "
        "per-sample traces",
        NetSpec(3, [Layer(4, "tanh", 9, 15), Layer(2, "linear", 0, 10)], "mse", 2),
        TrainConfig("sgd", lr=1.0, batch_size=1, rounding="nearest", seed=12, init="uniform",
                    init_range=0.75, online_only=True),
        6, 1, 2, 606),
    "frozen_first_layer_online_only_6_5_4_2": (
        "6-5-4-2 tanh/sigmoid/sigmoid, squared error, the first layer frozen (transfer learning): it runs "
        "forward only, with no deltas and no delta memory; EBP_FLAG_ONLINE, stochastic rounding",
        NetSpec(6, [Layer(5, "tanh", 12, 12, trainable=False), Layer(4, "sigmoid", 12, 12),
                    Layer(2, "sigmoid", 12, 12)], "mse", 12),
        TrainConfig("sgd", lr=0.5, batch_size=1, rounding="stochastic", seed=77, init="uniform", init_range=0.8,
                    online_only=True),
        6, 1, 2, 707),
    "frozen_middle_momentum_batch_4_5_4_3": (
        "4-5-4-3 relu/tanh/softmax, cross-entropy, momentum, batch 2, the middle layer frozen: its deltas are "
        "computed (the first layer trains) but it is never updated and has no gradient or velocity memory",
        NetSpec(4, [Layer(5, "relu", 12, 11), Layer(4, "tanh", 12, 13, trainable=False),
                    Layer(3, "softmax", 12, 12)], "ce", 11),
        TrainConfig("momentum", lr=0.3, momentum=0.8, batch_size=2, rounding="nearest", seed=5, init="xavier",
                    online_only=False),
        6, 2, 2, 808),
    "conv1d_maxpool_softmax_online_only_2x12": (
        "input 2 channels x 12, conv1d(3 filters, kernel 3, stride 2, relu), maxpool1d(2), dense(2, softmax), "
        "cross-entropy, EBP_FLAG_ONLINE (the conv1d fused online update, no gradient memory), stochastic "
        "rounding, he init",
        NetSpec.sequential((2, 12), [Conv1D(3, 3, stride=2, act="relu"), MaxPool1D(2), Dense(2, act="softmax")]),
        TrainConfig("sgd", lr=0.3, batch_size=1, rounding="stochastic", seed=3, init="he", online_only=True),
        5, 1, 2, 909),
    "conv1d_avgpool_conv_gap_momentum_batch_2x12": (
        "input 2 x 12, conv1d(3, 3, tanh), avgpool1d(3, stride 2: overlapping windows), conv1d(2, 2, sigmoid), "
        "global average pooling, dense(2, sigmoid), squared error, momentum, batch 2 (conv1d gradient "
        "accumulators), round to nearest, xavier init",
        NetSpec.sequential((2, 12), [Conv1D(3, 3, act="tanh"), AvgPool1D(3, stride=2), Conv1D(2, 2, act="sigmoid"),
                                     GlobalAvgPool1D(), Dense(2, act="sigmoid")], loss="mse"),
        TrainConfig("momentum", lr=0.3, momentum=0.5, batch_size=2, rounding="nearest", seed=4, init="xavier",
                    online_only=False),
        6, 2, 2, 1010),
    "conv1d_gap_linear_sgd_1x9": (
        "input 1 x 9, conv1d(2, kernel 4, linear), global average pooling, dense(1, linear), squared error, SGD "
        "batch 1 with gradient memory (the fused online update; the trace runs ebp_backward on the first "
        "sample), uniform init",
        NetSpec.sequential((1, 9), [Conv1D(2, 4, act="linear"), GlobalAvgPool1D(), Dense(1, act="linear")],
                           loss="mse"),
        TrainConfig("sgd", lr=0.1, batch_size=1, rounding="nearest", seed=5, online_only=False),
        5, 1, 2, 1111),
    "int8_dense_online_only_8_16_2": (
        "8-16-2 sigmoid, squared error, int8 weights and biases (Q6) in both layers, EBP_FLAG_ONLINE: the conv1d "
        "rules for dense layers, updates always rounded stochastically (cfg.rounding says nearest), int8 clips",
        NetSpec(8, [Layer(16, "sigmoid", 6, 12, w_bits=8), Layer(2, "sigmoid", 6, 12, w_bits=8)], "mse", 12),
        TrainConfig("sgd", lr=8.0, batch_size=1, rounding="nearest", seed=8, init="uniform", init_range=1.95,
                    online_only=True),
        6, 1, 2, 1212),
    "int8_conv_softmax_momentum_batch_2x10": (
        "input 2 x 10, conv1d(3, 3, stride 2, tanh, int8 Q6), maxpool1d(2), dense(3, softmax, int8 Q5) after an "
        "int16 dense(4, relu), cross-entropy, momentum, batch 2: int8 velocities' updates, softmax on the "
        "plain path",
        NetSpec.sequential((2, 10), [Conv1D(3, 3, stride=2, act="tanh", w_frac=6, w_bits=8), MaxPool1D(2),
                                     Dense(4, act="relu"), Dense(3, act="softmax", w_frac=5, w_bits=8)]),
        TrainConfig("momentum", lr=0.5, momentum=0.5, batch_size=2, rounding="nearest", seed=9, init="xavier",
                    online_only=False),
        6, 2, 2, 1313),
}


def build(name: str) -> dict:
    desc, spec, cfg, n, batch, epochs, data_seed = SCENARIOS[name]
    p = core_params(spec, cfg)
    X, T = make_data(spec, n, data_seed)
    doc = dict(name=name, description=desc, generator="tools/gen_golden.py from tools/intref.py",
               data_seed=data_seed, spec=spec.to_dict(), train_config=cfg.to_dict(), core=p,
               batch=batch, epochs=epochs, X=X, T=T)
    doc.update(run_scenario(p, X, T, batch, epochs))
    return doc


def render(doc: dict) -> str:
    """JSON with one top-level key per line (compact values keep the files a few KiB)."""
    doc = json.loads(json.dumps(doc))  # tuples -> lists
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in doc.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if a committed file differs")
    args = ap.parse_args()
    stale = []
    for name in SCENARIOS:
        path = OUT / f"{name}.json"
        text = render(build(name))
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)} ({len(text)} bytes)")
    if args.check:
        if stale:
            sys.exit(f"out of date: {', '.join(stale)}; run python tools/gen_golden.py")
        print(f"{len(SCENARIOS)} golden files are up to date")


if __name__ == "__main__":
    main()
