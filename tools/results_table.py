#!/usr/bin/env python3
"""Generates docs/results.md (float vs fixed-point on real data sets) and docs/rounding.png (Gupta et al. 2015:
round-to-nearest vs stochastic rounding at a small learning rate).

    python tools/results_table.py            # about two minutes on two cores

Every row of the table is one `edgebp train ... --engine both --json` command, printed in the document so
anyone can rerun it.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# data set, flags (beyond the common ones), task kind
RUNS = [
    ("diabetes", "--layers 8,16,2 --activation sigmoid --loss mse --lr 0.2 --epochs 200", "class"),
    ("thyroid", "--layers 21,16,3 --activation sigmoid,softmax --loss ce --lr 0.1 --epochs 100", "class"),
    ("parity8", "--layers 8,16,1 --activation sigmoid --loss mse --lr 0.5 --epochs 300", "class"),
    ("two-spiral", "--layers 2,24,1 --activation tanh,sigmoid --loss mse --lr 0.2 --epochs 300", "class"),
    ("sklearn:digits", "--layers 64,32,10 --activation sigmoid,softmax --loss ce --lr 0.1 --epochs 50", "class"),
    ("robot", "--layers 48,16,3 --activation sigmoid --loss mse --lr 0.2 --epochs 200", "regr"),
    ("building", "--layers 14,16,3 --activation sigmoid --loss mse --lr 0.2 --epochs 100", "regr"),
    ("abelone", "--layers 10,16,1 --activation sigmoid --loss mse --lr 0.2 --epochs 100", "regr"),
    ("pumadyn-32fm", "--layers 32,16,1 --activation sigmoid --loss mse --lr 0.2 --epochs 200", "regr"),
]
COMMON = "--optimizer sgd --batch-size 1 --seed 1 --engine both"
ROUNDINGS = ("nearest", "stochastic")   # each set trained with both; stochastic is the default


def write_section(doc: str, begin: str, end: str) -> Path:
    """Puts ``doc`` (which starts with ``begin`` and ends with ``end``) into docs/results.md: in place of the
    section between those markers, or at the end. The other tools/*_results.py and model_bench.py scripts
    write their sections through this."""
    path = ROOT / "docs/results.md"
    text = path.read_text()
    if begin in text:
        text = text[:text.index(begin)] + doc + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + doc + "\n"
    path.write_text(text)
    return path


def run(ds: str, flags: str, rounding: str) -> dict:
    cmd = f"edgebp train {ds} {flags} {COMMON} --rounding {rounding}"
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "edgebp.cli", *shlex.split(cmd)[1:], "--json"], capture_output=True,
                       text=True, cwd=ROOT)
    if p.returncode:
        raise SystemExit(f"{cmd} failed:\n{p.stderr}")
    out = json.loads(p.stdout)
    out["command"], out["wall"] = cmd, time.monotonic() - t0
    return out


def table(results) -> str:
    """One row per data set: the float mirror, then the fixed-point core with round to nearest and with stochastic
    rounding (the default). ``results``: ((ds, flags, kind), {rounding: the run's JSON})."""
    lines = ["| data set | task | network | float test acc | fixed test acc, nearest | gap (points) | "
             "fixed test acc, stochastic | gap (points) | float test loss | fixed test loss, nearest | "
             "fixed test loss, stochastic | fixed memory (B) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (ds, flags, kind), rs in results:
        r = rs["nearest"]
        f = r["engines"]["float"]
        q = {k: v["engines"]["fixed"] for k, v in rs.items()}
        sizes = "-".join(str(s) for s in [r["spec"]["n_in"]] + [l["n_out"] for l in r["spec"]["layers"]])
        acts = ",".join(l["act"] for l in r["spec"]["layers"])
        accs = []
        for name in ROUNDINGS:
            if kind == "class":
                accs += [f"{100 * q[name]['test_accuracy']:.2f}%",
                         f"{100 * (q[name]['test_accuracy'] - f['test_accuracy']):+.2f}"]
            else:
                accs += ["n/a", "n/a"]
        facc = f"{100 * f['test_accuracy']:.2f}%" if kind == "class" else "n/a"
        lines.append(f"| {ds} | {'classification' if kind == 'class' else 'regression'} | {sizes} {acts}, "
                     f"{r['spec']['loss']} | {facc} | {' | '.join(accs)} | {f['test_loss']:.5f} | "
                     f"{q['nearest']['test_loss']:.5f} | {q['stochastic']['test_loss']:.5f} | "
                     f"{q['nearest']['memory']['total']} |")
    return "\n".join(lines)


def rounding_curve(png: Path):
    """diabetes 8-16-2, w_frac 10, lr 0.003, 200 epochs: per-epoch training loss, nearest vs stochastic vs float."""
    import numpy as np
    from edgebp import NetSpec, StopRule, TrainConfig
    from edgebp.data import load_dataset
    from edgebp.fixed import FixedNet
    from edgebp.mirror import FloatNet
    ds = load_dataset("diabetes")
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse", w_frac=10)
    epochs = 200
    curves, final = {}, {}
    for name in ("nearest", "stochastic", "float"):
        cfg = TrainConfig(lr=0.003, rounding="nearest" if name == "float" else name, seed=1)
        fixed = FixedNet(spec, cfg)
        net = FloatNet(spec, cfg, weights=fixed.get_weights()) if name == "float" else fixed
        losses = [net.loss(ds.X_train, ds.T_train)]
        accs = [net.evaluate(ds.X_test, ds.T_test)[1]]

        def progress(epoch, _loss, net=net, losses=losses, accs=accs):
            losses.append(net.loss(ds.X_train, ds.T_train))
            accs.append(net.evaluate(ds.X_test, ds.T_test)[1])

        net.fit(ds.X_train, ds.T_train, StopRule(epochs=epochs), progress=progress)
        curves[name] = (losses, accs)
        final[name] = dict(train_loss=losses[-1], test_accuracy=accs[-1],
                           zero_update_frac=(sum(s["zero_updates"] for s in fixed.stats())
                                             / max(1, sum(s["updates"] for s in fixed.stats())))
                           if name != "float" else None)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, color in (("nearest", "C3"), ("stochastic", "C0"), ("float", "k")):
        label = f"fixed Q{10}, {name} rounding" if name != "float" else "float64 mirror"
        ax[0].plot(range(epochs + 1), curves[name][0], color=color, ls="--" if name == "float" else "-", label=label)
        ax[1].plot(range(epochs + 1), 100 * np.array(curves[name][1]), color=color,
                   ls="--" if name == "float" else "-", label=label)
    ax[0].set(xlabel="epoch", ylabel="training loss (mean squared error / 2)",
              title="diabetes 8-16-2, weights Q10 (LSB 2^-10), lr 0.003")
    ax[1].set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    marks = [0, 10, 50, 100, 200]
    rows = ["| epoch | " + " | ".join(str(m) for m in marks) + " | final test accuracy | updates rounded to zero |",
            "|---|" + "---:|" * (len(marks) + 2)]
    for name in ("nearest", "stochastic", "float"):
        zu = final[name]["zero_update_frac"]
        rows.append(f"| {'fixed, ' + name if name != 'float' else 'float64 mirror'} | "
                    + " | ".join(f"{curves[name][0][m]:.5f}" for m in marks)
                    + f" | {100 * final[name]['test_accuracy']:.2f}% | {'-' if zu is None else f'{100 * zu:.1f}%'} |")
    return "\n".join(rows)


def main() -> int:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as ex:   # each run is its own process
        futs = [{k: ex.submit(run, ds, flags, k) for k in ROUNDINGS} for ds, flags, _ in RUNS]
        curve = rounding_curve(docs / "rounding.png")
        results = [(r, {k: v.result() for k, v in f.items()}) for r, f in zip(RUNS, futs)]
    cmds = "\n".join(rs[k]["command"] for _, rs in results for k in ROUNDINGS)
    md = f"""# Results: float64 mirror vs the fixed-point core

Generated by `python tools/results_table.py` (do not edit by hand; {time.monotonic() - t0:.0f} s on this machine).

Both engines start from the same weights (the core's initial int16 weights, dequantized) and see the samples
in the same order (file order). Fixed point: int16 tensors, Q12 inputs, weights and activations,
block-floating-point deltas and gradients, updates rounded to the nearest or stochastically (the default: one
xorshift32 draw per row of a layer, spread over the row's parameters by a Weyl sequence). Float: the float64 mirror
(`edgebp.mirror.FloatNet`) with the same quantized learning rate. Online SGD, no momentum, uniform
initialisation in [-0.5, 0.5], seed 1.

Accuracy is argmax of outputs against argmax of targets (one output: both sides of 0.5); it is given for the
classification sets only. The regression sets (robot, building, abelone, pumadyn-32fm) are compared by test
loss (mean of 1/2 the squared error summed over outputs). Memory is what the core lays out for training
(weights, gradients, activations, deltas, scratch), in bytes.

{table(results)}

With these plain settings (one hidden layer, online SGD, fixed epochs, no tuning) both engines stay at chance
on parity8 and two-spiral, which are hard for plain backprop; the point of the table is the gap between
the engines, which stays within about one point everywhere.

Commands (each prints both engines; add `--json` for the numbers above):

```sh
{cmds}
```

## Round-to-nearest vs stochastic rounding (Gupta et al., 2015)

Gupta, Agrawal, Gopalakrishnan and Narayanan, "Deep Learning with Limited Numerical Precision" (ICML 2015):
with few fractional bits and a small learning rate, most weight updates are smaller than half an LSB.
Round-to-nearest then throws every one of them away and training stalls; stochastic rounding rounds up with
probability equal to the fraction, so updates survive in expectation and the network learns.

diabetes, 8-16-2 sigmoid, squared error, online SGD, **weights Q10** (LSB 2^-10 = 0.00098), **lr 0.003**,
200 epochs, seed 1. Training loss (full training set) after each number of epochs:

{curve}

![training loss and test accuracy per epoch](rounding.png)

With round-to-nearest every update rounded to zero: the weights never change and the loss and accuracy
stay at their initial values. To see it step by step, with the per-layer gradient agreement and the
attribution of the error (it names the update rounding):

```sh
edgebp compare diabetes --layers 8,16,2 --w-frac 10 --lr 0.003 --rounding nearest --epochs 20
edgebp compare diabetes --layers 8,16,2 --w-frac 10 --lr 0.003 --rounding stochastic --epochs 20
```
"""
    old = (docs / "results.md").read_text() if (docs / "results.md").exists() else ""
    for marker in ("<!-- model-results:begin -->", "<!-- model-bench:begin -->", "<!-- transfer:begin -->",
                   "<!-- lr001:begin -->"):
        if marker in old and marker not in md:
            end = marker.replace(":begin", ":end")
            md = md.rstrip("\n") + "\n\n" + old[old.index(marker):old.index(end) + len(end)] + "\n"
    (docs / "results.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
