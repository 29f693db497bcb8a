#!/usr/bin/env python3
"""The fleet results of docs/fleet.md: a federated fleet (Flower on Ray) beside centralized training with the
same total epochs and beside each device trained alone, fixed point and float side by side; bytes per round
per device and wall time per round. Prints a Markdown report (and --json FILE writes every number).

    python3 tools/fleet_results.py                     # digits 64-32-10, 100 devices, Dirichlet 0.5
    python3 tools/fleet_results.py --rounds 5 --devices 20 --split iid
    python3 tools/fleet_results.py --data BasicMotions --model "conv1d(8,5,stride=2,act=relu),maxpool1d(2),\
        conv1d(16,3,act=relu),gap,dense(4,act=softmax)" --scale standard --in-frac 10 --lr 0.05 --init he \
        --rounding stochastic --shuffle --devices 10 --rounds 10 --local-epochs 5

Total epochs: a round is --local-epochs epochs over every device's shard, so R rounds see each training row
R * E times; the centralized network trains R * E epochs on the whole training set, and each device alone
trains R * E epochs on its own shard, all from the same initial weights (the core's init with --seed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from edgebp.config import NetSpec, StopRule, TrainConfig   # noqa: E402
from edgebp.fleet.client import FleetTask, device_data, initial_weights, shards_of   # noqa: E402


def alone_job(job, _shared=None):
    """Device k trained alone (both engines) from the fleet's initial weights; accuracy on the test set."""
    from edgebp.fixed import FixedNet
    from edgebp.mirror import FloatNet
    task, k, epochs = job
    ds, _ = shards_of(task)
    X, T = device_data(task, k)
    gi, gf = initial_weights(task)
    fixed = FixedNet(task.netspec, task.config())
    fixed.set_int_weights(gi)
    flt = FloatNet(task.netspec, task.config(), weights=gf)
    out = {}
    for name, net in (("fixed", fixed), ("float", flt)):
        net.fit(X, T, StopRule(epochs=epochs))
        out[name] = net.evaluate(ds.X_test, ds.T_test)[1]
    return out


def centralized(task, epochs):
    from edgebp.fixed import FixedNet
    from edgebp.mirror import FloatNet
    ds, _ = shards_of(task)
    gi, gf = initial_weights(task)
    fixed = FixedNet(task.netspec, task.config())
    fixed.set_int_weights(gi)
    flt = FloatNet(task.netspec, task.config(), weights=gf)
    out = {}
    for name, net in (("fixed", fixed), ("float", flt)):
        t0 = time.monotonic()
        net.fit(ds.X_train, ds.T_train, StopRule(epochs=epochs))
        out[name] = dict(test_accuracy=net.evaluate(ds.X_test, ds.T_test)[1], seconds=time.monotonic() - t0)
    return out


def pct(x):
    return f"{100 * x:.2f}%"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="sklearn:digits")
    ap.add_argument("--layers", default="64,32,10")
    ap.add_argument("--activation", default="sigmoid")
    ap.add_argument("--loss", default="mse")
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--local-epochs", type=int, default=5)
    ap.add_argument("--split", default="dirichlet:0.5")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: every core)")
    ap.add_argument("--model", help="a model string as `edgebp train --model` takes (instead of --layers)")
    ap.add_argument("--scale", choices=("minmax", "standard"), help="scale the inputs (fitted on the training split)")
    ap.add_argument("--in-frac", type=int, default=12, help="fractional bits of the inputs")
    ap.add_argument("--init", default="uniform", choices=("uniform", "xavier", "he"))
    ap.add_argument("--rounding", default="nearest", choices=("nearest", "stochastic"))
    ap.add_argument("--shuffle", action="store_true", help="reshuffle each device's rows every epoch")
    ap.add_argument("--json", metavar="FILE", help="also write every number to FILE")
    a = ap.parse_args(argv)

    from edgebp.fleet.flower import simulate
    from edgebp.fleet.sweep import run_jobs
    acts = a.activation.split(",")
    if a.model:
        from edgebp.cli_model import _input_shape, parse_model
        from edgebp.data import load_dataset
        layers = parse_model(a.model)
        spec = NetSpec.sequential(_input_shape(load_dataset(a.data, scale=a.scale)), layers, in_frac=a.in_frac,
                                  loss="ce" if a.model.rstrip(")").endswith("softmax") else a.loss)
        a.layers = a.model
    else:
        spec = NetSpec.from_sizes([int(s) for s in a.layers.split(",")], acts[0] if len(acts) == 1 else acts, a.loss,
                                  in_frac=a.in_frac)
    cfg = TrainConfig(lr=a.lr, seed=a.seed, init=a.init, rounding=a.rounding, shuffle=a.shuffle)
    task = FleetTask(a.data, spec.to_dict(), cfg.to_dict(), n_devices=a.devices, split=a.split,
                     split_seed=a.split_seed, local_epochs=a.local_epochs, scale=a.scale)
    total_epochs = a.rounds * a.local_epochs
    _, rows = shards_of(task)
    sizes = [len(r) for r in rows]

    def show(rec):
        r = rec["round"]
        print(f"round {r:>3}: fixed {pct(rec['fixed']['test_accuracy'])} float {pct(rec['float']['test_accuracy'])}"
              + (f"  {rec['seconds']:.2f} s" if r else ""), file=sys.stderr, flush=True)

    t0 = time.monotonic()
    fed = simulate(task, a.rounds, num_cpus=a.cpus, progress=show)
    fed_seconds = time.monotonic() - t0
    cen = centralized(task, total_epochs)
    alone = run_jobs(alone_job, [(task, k, total_epochs) for k in range(a.devices)], processes=a.cpus)

    rounds = fed["rounds"]
    last = rounds[-1]
    secs = [r["seconds"] for r in rounds]
    steady = secs[1:] if len(secs) > 1 else secs
    lb = [r["link_bytes"] for r in rounds]
    res = dict(
        setup=dict(data=a.data, layers=a.layers, activation=a.activation, loss=a.loss, lr=a.lr, seed=a.seed,
                   devices=a.devices, rounds=a.rounds, local_epochs=a.local_epochs, split=a.split,
                   split_seed=a.split_seed, total_epochs=total_epochs, shard_sizes=dict(
                       min=min(sizes), median=float(np.median(sizes)), max=max(sizes)),
                   machine=f"{platform.machine()}, {os.cpu_count()} cores, Ray CPUs {a.cpus or os.cpu_count()}"),
        federated={e: dict(test_accuracy=last[e]["test_accuracy"], device_accuracy_mean=last[e]["device_accuracy_mean"],
                           device_accuracy_worst=last[e]["device_accuracy_worst"],
                           per_round=[r[e]["test_accuracy"] for r in rounds]) for e in ("fixed", "float")},
        centralized={e: cen[e]["test_accuracy"] for e in ("fixed", "float")},
        alone={e: dict(mean=float(np.mean([x[e] for x in alone])), worst=float(np.min([x[e] for x in alone])),
                       best=float(np.max([x[e] for x in alone]))) for e in ("fixed", "float")},
        link_bytes_per_round_per_device=dict(mean=float(np.mean([x["per_device_mean"] for x in lb])),
                                             max=int(max(x["per_device_max"] for x in lb)),
                                             mean_by_kind=lb[-1]["mean_by_kind"]),
        seconds_per_round=dict(first=secs[0], mean_after_first=float(np.mean(steady)), max_after_first=max(steady)),
        seconds_total=fed_seconds)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)

    s = res["setup"]
    what = spec.loss if a.model else f"{a.activation}/{a.loss}"
    print(f"{a.data} {a.layers} {what}, lr {a.lr}, {a.devices} virtual devices, split {a.split} "
          f"(rows per device: min {s['shard_sizes']['min']}, median {s['shard_sizes']['median']:g}, max "
          f"{s['shard_sizes']['max']}), {a.rounds} rounds x {a.local_epochs} local epochs = {total_epochs} epochs "
          f"per row\n")
    print("| test accuracy | fixed (int16 core) | float64 mirror |")
    print("|---|---:|---:|")
    f_, c_, al = res["federated"], res["centralized"], res["alone"]
    print(f"| federated global model after {a.rounds} rounds | {pct(f_['fixed']['test_accuracy'])} | "
          f"{pct(f_['float']['test_accuracy'])} |")
    print(f"| centralized, {total_epochs} epochs on all rows | {pct(c_['fixed'])} | {pct(c_['float'])} |")
    print(f"| each device alone, {total_epochs} epochs on its rows: mean (worst / best) | "
          f"{pct(al['fixed']['mean'])} ({pct(al['fixed']['worst'])} / {pct(al['fixed']['best'])}) | "
          f"{pct(al['float']['mean'])} ({pct(al['float']['worst'])} / {pct(al['float']['best'])}) |")
    print(f"| federated model on each device's own rows: mean (worst) | "
          f"{pct(f_['fixed']['device_accuracy_mean'])} ({pct(f_['fixed']['device_accuracy_worst'])}) | "
          f"{pct(f_['float']['device_accuracy_mean'])} ({pct(f_['float']['device_accuracy_worst'])}) |")
    b, t = res["link_bytes_per_round_per_device"], res["seconds_per_round"]
    print(f"\nserial link per round per device (protocol frames, train + evaluate): mean {b['mean']:,.0f} bytes, "
          f"max {b['max']:,} bytes")
    print(f"wall time per round, {a.devices} virtual devices on {s['machine']}: {t['mean_after_first']:.2f} s "
          f"(max {t['max_after_first']:.2f} s; round 1 {t['first']:.2f} s includes starting Ray's workers)")
    every = max(1, a.rounds // 10)
    shown = list(range(a.rounds - 1, -1, -every))[::-1]     # every few rounds, ending with the last
    print("\n| global model's test accuracy after round | " + " | ".join(str(i + 1) for i in shown) + " |")
    print("|---|" + "---:|" * len(shown))
    for e in ("fixed", "float"):
        print(f"| {e} | " + " | ".join(pct(f_[e]['per_round'][i]) for i in shown) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
