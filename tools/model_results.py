#!/usr/bin/env python3
"""Measurements of issue 15 for docs/results.md: 1-D convolution on sensor windows (BasicMotions, GunPoint)
against the float mirror and a plain MLP on the same windows, int8 dense networks against float (diabetes,
thyroid, sklearn:digits), the arena bytes of int16 and int8 networks, and whether the BasicMotions conv model
fits the micro:bit's arena. Every number is a mean over 5 seeds (seed = weight init and epoch shuffle).

    python tools/model_results.py              # about 10 minutes on two cores; rewrites its part of
                                               # docs/results.md (between the model-results markers)
    python tools/model_results.py --print      # print the tables only

Both engines of a run start from the same weights (the core's initial integer weights, dequantized) and see
the samples in the same order; the fixed engine is the C core (FixedNet), the float one the float64 mirror
(FloatNet) with the same quantized learning rate. Nothing here is a test: it prints tables.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgebp import NetSpec, StopRule, TrainConfig, load_dataset  # noqa: E402
from edgebp.cli_model import parse_model  # noqa: E402
from edgebp.fixed import FixedNet  # noqa: E402
from edgebp.mirror import FloatNet  # noqa: E402

SEEDS = (1, 2, 3, 4, 5)
BEGIN, END = "<!-- model-results:begin -->", "<!-- model-results:end -->"

# time series: (data set, label, --model string, learning rate, epochs)
TS_RUNS = [
    ("BasicMotions", "conv1d", "conv1d(8,5,stride=2,act=relu),maxpool1d(2),conv1d(16,3,act=relu),gap,"
                               "dense(4,act=softmax)", 0.05, 100),
    ("BasicMotions", "MLP", "dense(32,act=relu),dense(4,act=softmax)", 0.03, 100),
    ("GunPoint", "conv1d", "conv1d(8,7,stride=2,act=relu),maxpool1d(2),dense(2,act=softmax)", 0.03, 100),
    ("GunPoint", "MLP", "dense(32,act=relu),dense(2,act=softmax)", 0.03, 100),
]
TS_SETTINGS = ("inputs standardised per channel on the training split (`scale='standard'`), Q10 inputs (the "
               "standardised BasicMotions readings reach 16.5), Q12 weights and activations, online SGD "
               "(batch 1, no gradient memory), stochastic rounding, He initialisation, samples reshuffled every "
               "epoch")

# int8: (data set, sizes, activations, loss, learning rate, epochs) as in the table above, int8 weights in Q5
INT8_RUNS = [
    ("diabetes", [8, 16, 2], "sigmoid", "mse", 0.2, 200),
    ("thyroid", [21, 16, 3], "sigmoid,softmax", "ce", 0.1, 100),
    ("sklearn:digits", [64, 32, 10], "sigmoid,softmax", "ce", 0.1, 50),
]
INT8_W_FRAC = 5


def _fit_pair(spec, cfg, ds, epochs):
    fixed = FixedNet(spec, cfg)
    flt = FloatNet(spec, cfg, weights=fixed.get_weights())
    for net in (fixed, flt):
        net.fit(ds.X_train, ds.T_train, StopRule(epochs=epochs))
    return fixed.evaluate(ds.X_test, ds.T_test)[1], flt.evaluate(ds.X_test, ds.T_test)[1], fixed.memory_report()


def ts_job(job):
    name, label, model, lr, epochs, seed = job
    ds = load_dataset(name, scale="standard")
    spec = NetSpec.sequential(ds.input_shape, parse_model(model), in_frac=10)
    cfg = TrainConfig(lr=lr, batch_size=1, seed=seed, init="he", rounding="stochastic", shuffle=True)
    t0 = time.monotonic()
    fixed, flt, mem = _fit_pair(spec, cfg, ds, epochs)
    return dict(job=job[:5], seed=seed, fixed=fixed, float=flt, mem=mem, wall=time.monotonic() - t0)


def int8_job(job):
    name, sizes, acts, loss, lr, epochs, seed, bits = job
    ds = load_dataset(name)
    spec = NetSpec.from_sizes(sizes, acts.split(",") if "," in acts else acts, loss,
                              w_frac=12 if bits == 16 else INT8_W_FRAC)
    for layer in spec.layers:
        layer.w_bits = bits
    cfg = TrainConfig(lr=lr, batch_size=1, seed=seed, rounding="stochastic")
    fixed, flt, mem = _fit_pair(spec, cfg, ds, epochs)
    return dict(job=job[:6], bits=bits, seed=seed, fixed=fixed, float=flt, mem=mem)


def microbit_arena() -> int:
    text = (ROOT / "firmware/ports/qemu-microbit/board.mk").read_text()
    return int(re.search(r"ARENA_BYTES\s*:?=\s*(\d+)", text).group(1))


def pct(v):
    return f"{100 * v:.2f}%"


def ts_table(results) -> str:
    lines = ["| data set | model | float test acc | fixed test acc | gap (points) | per-seed fixed | training "
             "memory (B) |", "|---|---|---:|---:|---:|---|---:|"]
    for run in TS_RUNS:
        rs = [r for r in results if r["job"] == run]
        fx, fl = np.mean([r["fixed"] for r in rs]), np.mean([r["float"] for r in rs])
        seeds = " ".join(f"{100 * r['fixed']:.0f}" for r in rs)
        lines.append(f"| {run[0]} | {run[1]} `{run[2]}` (lr {run[3]}, {run[4]} epochs) | {pct(fl)} | {pct(fx)} | "
                     f"{100 * (fx - fl):+.2f} | {seeds} | {rs[0]['mem']['total']:,} |")
    return "\n".join(lines)


def int8_table(results) -> str:
    lines = ["| data set | network | float test acc (int8 start) | int8 fixed test acc | gap (points) | "
             "float (int16 start) | int16 fixed | gap (points) | arena int16 (B) | arena int8 (B) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in INT8_RUNS:
        rows = {b: [r for r in results if r["job"] == run[:6] and r["bits"] == b] for b in (8, 16)}
        m = {b: (np.mean([r["float"] for r in rows[b]]), np.mean([r["fixed"] for r in rows[b]])) for b in (8, 16)}
        net = "-".join(map(str, run[1])) + f" {run[2]}, {run[3]}"
        lines.append(f"| {run[0]} | {net} | {pct(m[8][0])} | {pct(m[8][1])} | {100 * (m[8][1] - m[8][0]):+.2f} | "
                     f"{pct(m[16][0])} | {pct(m[16][1])} | {100 * (m[16][1] - m[16][0]):+.2f} | "
                     f"{rows[16][0]['mem']['total']:,} | {rows[8][0]['mem']['total']:,} |")
    return "\n".join(lines)


def arena_table() -> str:
    """Training arena (ebp_net_memory, online SGD without gradient memory) of the networks above, int16 and
    int8 weights, and whether each fits the micro:bit."""
    arena = microbit_arena()
    lines = [f"| network | int16 arena (B) | int8 arena (B) | saved | fits the micro:bit's {arena:,} B (int16 / "
             "int8) |", "|---|---:|---:|---:|---|"]
    nets = [(f"BasicMotions {label}", NetSpec.sequential((6, 100), parse_model(model), in_frac=10))
            for name, label, model, _, _ in TS_RUNS if name == "BasicMotions"]
    nets += [(f"GunPoint {label}", NetSpec.sequential((1, 150), parse_model(model), in_frac=10))
             for name, label, model, _, _ in TS_RUNS if name == "GunPoint"]
    nets += [(f"{name} {'-'.join(map(str, sizes))}", NetSpec.from_sizes(sizes, acts.split(",") if "," in acts
                                                                        else acts, loss))
             for name, sizes, acts, loss, _, _ in INT8_RUNS]
    for label, spec in nets:
        mem16 = FixedNet(spec, TrainConfig()).memory_report()["total"]
        spec8 = NetSpec.from_dict(spec.to_dict())
        for layer in spec8.layers:
            if layer.has_params:
                layer.w_bits, layer.w_frac = 8, INT8_W_FRAC
        mem8 = FixedNet(spec8, TrainConfig()).memory_report()["total"]
        fits = " / ".join("yes" if m <= arena else "no" for m in (mem16, mem8))
        lines.append(f"| {label} | {mem16:,} | {mem8:,} | {100 * (1 - mem8 / mem16):.0f}% | {fits} |")
    return "\n".join(lines)


def document(ts, i8, wall) -> str:
    cmds = "\n".join(f"edgebp train {n} --model \"{m}\" --lr {lr} --epochs {e} --batch-size 1 --rounding stochastic "
                     f"--init he --shuffle --scale standard --in-frac 10 --engine both --seed S" for n, _, m, lr, e in TS_RUNS)
    return f"""{BEGIN}
## Sensor windows: conv1d against the float mirror and a plain MLP (issue 15)

Generated by `python tools/model_results.py` ({wall:.0f} s on this machine; do not edit by hand). Mean test
accuracy over seeds {', '.join(map(str, SEEDS))}; {TS_SETTINGS}. The MLP reads the same windows flattened
(channel-major). Memory is the core's training arena (`ebp_net_memory`) in bytes.

{ts_table(ts)}

## int8 weights against float (issue 15)

Dense networks of the table above, online SGD with stochastic rounding, every layer's weights and biases int8 in
Q{INT8_W_FRAC} (activations int16), mean over seeds {', '.join(map(str, SEEDS))}. Each float column starts
from its fixed run's initial weights (so the int8 one from the int8-quantized start).

{int8_table(i8)}

## Arena bytes, int16 and int8

{arena_table()}

The equivalent command lines, once `--model` is wired into `edgebp train` (the script calls the library):

```sh
{cmds}
```
{END}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--print", action="store_true", help="print the tables instead of updating docs/results.md")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    t0 = time.monotonic()
    ts_jobs = [run + (seed,) for run in TS_RUNS for seed in SEEDS]
    i8_jobs = [run + (seed, bits) for run in INT8_RUNS for seed in SEEDS for bits in (16, 8)]
    with ProcessPoolExecutor(args.jobs) as ex:
        i8 = ex.map(int8_job, i8_jobs)       # the long ones first
        ts = ex.map(ts_job, ts_jobs)
        i8, ts = list(i8), list(ts)
    doc = document(ts, i8, time.monotonic() - t0)
    if args.print:
        print(doc)
        return
    from results_table import write_section
    path = write_section(doc, BEGIN, END)
    print(f"updated {path.relative_to(ROOT)} ({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
