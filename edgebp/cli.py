"""The ``edgebp`` command line: parses, calls the library, prints (the library itself never prints)."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import List

import numpy as np

from .config import ACTIVATIONS, INITS, LOSSES, OPTIMIZERS, ROUNDINGS, NetSpec, StopRule, TrainConfig
from .errors import ConfigError, EdgeBPError
from .progress import LOSS_NOTE, Progress  # noqa: F401  (cli_device and cli_compare import it from here)

SEED_MAX = 2 ** 32 - 1
# training warnings: shares above which the text output says what to change
WARN_CLIPPED_OUTPUTS = 1e-3      # outputs of a layer clipped to its format
WARN_ZERO_UPDATES = 0.5          # weight updates with a non-zero gradient that rounded to zero


def warn(msg: str) -> None:
    print(f"edgebp: warning: {msg}", file=sys.stderr)


def add_data_args(p: argparse.ArgumentParser) -> None:
    """How a user's own file is read: target column, test split, scaling."""
    g = p.add_argument_group("data files (CSV, .npy, .npz)")
    g.add_argument("--target", default=None, metavar="COLUMN",
                   help="CSV/.npy: the target column, a header name or a 0-based index (default: the last column)")
    g.add_argument("--test", default=None, metavar="FILE", help="a separate test file of the same kind")
    g.add_argument("--test-split", type=float, default=None, metavar="F",
                   help="without --test: the share held out as the test split, stratified by class "
                        "(default 0.2)")
    g.add_argument("--test-seed", type=int, default=0, help="seed of the held-out test split (default 0)")
    hdr = g.add_mutually_exclusive_group()
    hdr.add_argument("--header", dest="header", action="store_true", default=None,
                     help="the CSV's first row names the columns (default: detected)")
    hdr.add_argument("--no-header", dest="header", action="store_false", help="the CSV has no header row")
    g.add_argument("--task", default="auto", choices=("auto", "classification", "regression"),
                   help="auto: strings and integer labels with at most 20 values are classes")
    p.add_argument("--scale", default=None, choices=("minmax", "standard"),
                   help="scale the inputs, fitted on the training split (minmax: [0, 1]; standard: mean 0, sd 1); "
                        "stored with --save-weights")


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The model and training flags shared by ``train``, ``device train``, ``compare`` and ``advise``."""
    p.add_argument("data", help="data set: a shipped name (diabetes, BasicMotions, ...), a FANN path prefix "
                                "without .train/.test, PATH/NAME_TRAIN.ts, a .csv/.npy/.npz file, or sklearn:NAME")
    add_data_args(p)
    p.add_argument("--layers", default=None, help="sizes, input first, e.g. 8,16,2 (default: n_in,16,n_out)")
    p.add_argument("--activation", default="sigmoid",
                   help=f"one of {','.join(ACTIVATIONS)} for all layers, or a comma list per layer")
    p.add_argument("--loss", default="mse", choices=LOSSES)
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--momentum", type=float, default=None, help="with --optimizer momentum (default 0.9 there)")
    p.add_argument("--batch-size", type=int, default=1, help="1 = online, 0 = full batch")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=1, help=f"weight init and stochastic rounding, 1..{SEED_MAX}")
    p.add_argument("--rounding", default="stochastic", choices=ROUNDINGS,
                   help="weight-update rounding (fixed point; default stochastic: updates below one LSB survive in expectation)")
    p.add_argument("--init", default="uniform", choices=INITS)
    p.add_argument("--init-range", type=float, default=0.5, help="uniform init: weights in [-r, r]")
    p.add_argument("--in-frac", type=int, default=12, help="fractional bits of the inputs")
    p.add_argument("--w-frac", type=int, default=12, help="fractional bits of weights and biases")
    p.add_argument("--a-frac", type=int, default=12, help="fractional bits of activations")
    p.add_argument("--shuffle", action="store_true", help="reshuffle samples every epoch (same order per engine)")
    mem = p.add_mutually_exclusive_group()
    mem.add_argument("--online-only", action="store_true", default=None,
                     help="fixed point: online SGD without gradient memory, the least RAM (the default for "
                          "--batch-size 1 with sgd; needs both)")
    mem.add_argument("--gradient-memory", dest="online_only", action="store_false",
                     help="fixed point: keep gradient memory with --batch-size 1 (about 6%% fewer instructions "
                          "per step, more RAM)")
    p.add_argument("--target-loss", type=float, default=None, help="stop when the training loss reaches this")
    p.add_argument("--all-correct", action="store_true", help="stop when every training sample is classified")
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping: epochs without improvement of the validation loss (needs "
                        "--validation-split)")
    p.add_argument("--validation-split", type=float, default=0.0,
                   help="share of the training split held out (from its end) for early stopping")
    from .cli_model import add_model_args
    add_model_args(p)


def add_transfer_args(p: argparse.ArgumentParser) -> None:
    """--init-weights and --train-layers: for the commands that apply them (train, compare; device train once
    it uploads the file: see init_weights_of)."""
    p.add_argument("--init-weights", default=None, metavar="FILE.npz",
                   help="start from this weights file (--save-weights output, or a float model's W{i}, b{i}) "
                        "instead of the seeded initialisation")
    p.add_argument("--train-layers", type=int, default=None, metavar="K",
                   help="train only the last K layers with weights (transfer learning; default: all)")


def load_data(args):
    from .data import load_dataset
    return load_dataset(args.data, target=getattr(args, "target", None), test=getattr(args, "test", None),
                        test_split=getattr(args, "test_split", None), split_seed=getattr(args, "test_seed", 0),
                        scale=getattr(args, "scale", None), header=getattr(args, "header", None),
                        task=getattr(args, "task", "auto"))


def check_options(args) -> None:
    """What argparse cannot see: values out of range and options that would be silently ignored."""
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {args.epochs}")
    if not 0 <= args.seed <= SEED_MAX:
        raise ConfigError(f"--seed must be an integer in 1..{SEED_MAX} (32 bits), got {args.seed}")
    if args.seed == 0:
        raise ConfigError("--seed 0 gives the same random stream as --seed 1 (the core's xorshift32 generator "
                          f"has no zero state); use 1..{SEED_MAX}")
    if not (math.isfinite(args.validation_split) and 0 <= args.validation_split < 1):
        raise ConfigError(f"--validation-split must be in [0, 1) (0: none), got {args.validation_split}")
    if args.patience is not None:
        if args.patience < 1:
            raise ConfigError(f"--patience must be at least 1 epoch, got {args.patience}")
        if args.validation_split == 0:
            raise ConfigError("--patience needs a validation split to watch: add --validation-split 0.2 (or another "
                              "share in (0, 1))")
    if args.momentum is not None:
        if args.optimizer != "momentum" and args.momentum != 0:
            raise ConfigError(f"--momentum {args.momentum} has no effect with --optimizer {args.optimizer}: add "
                              "--optimizer momentum, or drop --momentum")
        if not (math.isfinite(args.momentum) and 0 <= args.momentum < 1):
            raise ConfigError(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.target_loss is not None and not (math.isfinite(args.target_loss) and args.target_loss >= 0):
        raise ConfigError(f"--target-loss must be a finite number >= 0, got {args.target_loss}")
    if not math.isfinite(args.lr):
        raise ConfigError(f"--lr must be a finite number, got {args.lr}")
    path = getattr(args, "save_weights", None)
    if path:
        check_save_path(path)


def check_save_path(path: str):
    """Before training: where the weights file goes (edgebp.weights.check_save_path: not a directory, its
    folder exists and is writable; ``.npz`` appended when missing, as every command does)."""
    from .weights import check_save_path as check
    return check(path)


def spec_and_config_from_args(args, ds=None):
    """(NetSpec, TrainConfig, StopRule) from parsed ``add_train_args`` flags; ``ds`` fills default sizes and is
    checked against the number formats (every split, before any training)."""
    check_options(args)
    if args.layers:
        try:
            sizes = [int(s) for s in args.layers.split(",")]
        except ValueError:
            raise ConfigError(f"--layers must be comma-separated integers, got {args.layers!r}") from None
    elif ds is not None:
        sizes = [ds.X_train.shape[1], 16, ds.T_train.shape[1]]
    else:
        raise ConfigError("--layers is required")
    if getattr(args, "model", None) is not None and args.layers:
        raise ConfigError("give the network either with --layers (dense) or with --model, not both")
    if ds is not None and getattr(args, "model", None) is None and (sizes[0] != ds.X_train.shape[1] or
                                                                    sizes[-1] != ds.T_train.shape[1]):
        raise ConfigError(f"--layers {args.layers} does not match the data: it has {ds.X_train.shape[1]} inputs "
                          f"and {ds.T_train.shape[1]} outputs")
    acts = args.activation.split(",")
    spec = NetSpec.from_sizes(sizes, acts[0] if len(acts) == 1 else acts, args.loss, args.w_frac, args.a_frac,
                              args.in_frac)
    if ds is not None:
        from .cli_model import spec_from_model_args
        spec = spec_from_model_args(args, ds, spec)      # --model / --w-bits; unchanged without them
    if getattr(args, "train_layers", None) is not None:
        spec = spec.with_trainable_last(args.train_layers)
    momentum = args.momentum if args.momentum is not None else (0.9 if args.optimizer == "momentum" else 0.0)
    cfg = TrainConfig(optimizer=args.optimizer, lr=args.lr, momentum=momentum, batch_size=args.batch_size,
                      rounding=args.rounding, seed=args.seed, init=args.init, init_range=args.init_range,
                      shuffle=args.shuffle, online_only=args.online_only)
    cfg.validate()
    stop = StopRule(epochs=args.epochs, target_loss=args.target_loss, all_correct=args.all_correct,
                    patience=args.patience, validation_split=args.validation_split)
    if ds is not None:
        from .data import check_format, sorted_by_class
        check_format(ds, spec)
        if not args.shuffle and cfg.batch_size != 0 and sorted_by_class(ds.T_train):
            n = ds.T_train.shape[1]
            warn(f"the training split of {args.data} is sorted by class ({n} blocks, one class each): training in "
                 f"file order forgets all but the last classes; add --shuffle")
        n_val = int(round(len(ds.T_train) * stop.validation_split))
        if 0 < n_val < len(ds.T_train) and ds.classes is not None and ds.T_train.shape[1] > 1:
            held = np.unique(np.argmax(ds.T_train[-n_val:], axis=1))
            if len(held) == 1 and len(np.unique(np.argmax(ds.T_train, axis=1))) > 1:
                warn(f"the validation split (the last {n_val} training rows) holds one class only "
                     f"({ds.classes[int(held[0])]!r}): the file is ordered by class; reorder it, or judge by "
                     f"the test split")
        for note in ds.notes:
            warn(note)
    return spec, cfg, stop


def init_weights_of(args, spec: NetSpec):
    """The --init-weights file, loaded and checked against the network now (before any training), or None."""
    path = getattr(args, "init_weights", None)
    if path is None:
        return None
    from .weights import load_weights, quantized_for
    wf = load_weights(path)
    quantized_for(spec, wf)        # a file for another shape or values out of range: a clear error now
    return wf


def make_engines(spec: NetSpec, cfg: TrainConfig, which: str = "both", init_weights=None):
    """The fixed-point network and its float mirror, starting from the same (dequantized) weights: the seeded
    initialisation, or ``init_weights`` (a path or a loaded weights file) given to the core."""
    from .fixed import FixedNet
    from .mirror import FloatNet
    fixed = FixedNet(spec, cfg)
    if init_weights is not None:
        from .weights import apply_weights
        apply_weights(fixed, init_weights)
    engines = {}
    if which in ("fixed", "both"):
        engines["fixed"] = fixed
    if which in ("float", "both"):
        engines["float"] = FloatNet(spec, cfg, weights=fixed.get_weights())
    return engines


def result_of(engine, hist, ds, seconds: float) -> dict:
    train_loss, train_acc = engine.evaluate(ds.X_train, ds.T_train)
    test_loss, test_acc = engine.evaluate(ds.X_test, ds.T_test)
    return dict(train_loss=train_loss, train_accuracy=train_acc, test_loss=test_loss, test_accuracy=test_acc,
                epochs=hist.epochs, stopped_by=hist.stopped_by, final_epoch_loss=hist.loss[-1] if hist.loss else None,
                seconds=round(seconds, 3), memory=engine.memory_report())


def training_warnings(stats: List[dict], spec: NetSpec, cfg: TrainConfig, forward_passes: int) -> List[str]:
    """What the fixed-point counters say a user should change, above the thresholds (WARN_*)."""
    out = []
    for i, (s, l) in enumerate(zip(stats, spec.layers)):
        name = f"layer {i + 1} ({l.act}, {l.n_out} outputs)"
        total = forward_passes * l.n_out
        if s["sat_out"] and total and s["sat_out"] / total > WARN_CLIPPED_OUTPUTS:
            lim = 32767 / 2.0 ** l.a_frac
            out.append(f"{name}: {s['sat_out']:,} outputs clipped to +-{lim:.4g} (Q{l.a_frac}), "
                       f"{s['sat_out'] / total:.2%} of them: give the activations more integer bits (--a-frac "
                       f"{max(l.a_frac - 2, 0)}), or a smaller --init-range or --lr")
        if s["sat_param"]:
            lim = 32767 / 2.0 ** l.w_frac
            out.append(f"{name}: {s['sat_param']:,} weight or bias updates clipped to +-{lim:.4g} (Q{l.w_frac}): "
                       f"use fewer fractional bits for the weights (--w-frac {max(l.w_frac - 2, 0)}) or a smaller "
                       f"--lr")
        if s["sat_delta"]:
            out.append(f"{name}: {s['sat_delta']:,} deltas clipped to plain Q15: drop the fixed-delta ablation "
                       f"(block floating point keeps them)")
        if s["sat_grad"] or s["sat_vel"]:
            out.append(f"{name}: {s['sat_grad'] + s['sat_vel']:,} gradient or velocity sums clipped to int32: use "
                       f"a smaller --batch-size or --lr")
        if s["updates"] and s["zero_updates"] / s["updates"] > WARN_ZERO_UPDATES:
            share = s["zero_updates"] / s["updates"]
            fix = ("--rounding stochastic (keeps them in expectation), a larger --lr or more weight fractional "
                   f"bits (--w-frac {min(l.w_frac + 2, 15)})" if cfg.rounding == "nearest" else
                   f"a larger --lr or more weight fractional bits (--w-frac {min(l.w_frac + 2, 15)})")
            out.append(f"{name}: {share:.0%} of the weight updates rounded to zero ({s['zero_updates']:,} of "
                       f"{s['updates']:,}): use {fix}")
    return out


def print_table(results: dict, title: str) -> None:
    names = list(results)
    rows = [("train loss", "train_loss", "{:.5f}"), ("train accuracy", "train_accuracy", "{:.2%}"),
            ("test loss", "test_loss", "{:.5f}"), ("test accuracy", "test_accuracy", "{:.2%}"),
            ("epochs", "epochs", "{}"), ("stopped by", "stopped_by", "{}"), ("seconds", "seconds", "{:.2f}"),
            ("training memory (bytes)", None, "{}")]
    print(title)
    print(f"{'':26}" + "".join(f"{n:>14}" for n in names))
    for label, key, fmt in rows:
        vals = [fmt.format(results[n][key]) if key else str(results[n]["memory"]["total"]) for n in names]
        print(f"{label:26}" + "".join(f"{v:>14}" for v in vals))


def describe_data(ds) -> dict:
    return dict(name=ds.name, input_shape=list(ds.input_shape), classes=ds.classes, n_train=len(ds.X_train),
                n_test=len(ds.X_test), test_split=ds.test_source,
                scale=ds.scaler.kind if ds.scaler is not None else None)


def cmd_train(args) -> int:
    ds = load_data(args)
    spec, cfg, stop = spec_and_config_from_args(args, ds)
    engines = make_engines(spec, cfg, args.engine, init_weights=init_weights_of(args, spec))
    results, warnings, interrupted, saved = {}, [], None, None
    shown = False
    for name, eng in engines.items():
        bar = Progress(stop.epochs, name, enabled=False if args.json else None)
        shown = shown or bar.enabled
        t0 = time.monotonic()
        try:
            hist = eng.fit(ds.X_train, ds.T_train, stop, progress=bar)
        except KeyboardInterrupt:
            from .engine import History
            hist = History(epochs=bar.done, stopped_by="interrupted")
            interrupted = name
        finally:
            bar.close()
        seconds = time.monotonic() - t0
        if name == "fixed":   # the counters of training alone, before the evaluation below adds to them
            stats = eng.stats()
            n_val = int(round(len(ds.X_train) * stop.validation_split))
            warnings += training_warnings(stats, spec, cfg, hist.epochs * (len(ds.X_train) - n_val))
        results[name] = result_of(eng, hist, ds, seconds)
        if name == "fixed":
            results[name]["saturations"] = stats
            if args.save_weights and interrupted is None:
                saved = save_weights(args.save_weights, eng, scale=ds.scaler)
        if interrupted:
            break
    if args.json:
        print(json.dumps(dict(data=args.data, dataset=describe_data(ds), spec=spec.to_dict(), config=cfg.to_dict(),
                              engines=results, warnings=warnings, partial=interrupted is not None)))
    else:
        print_table(results, f"{args.data}: {'-'.join(map(str, spec.sizes))} "
                             f"{','.join(l.act for l in spec.layers)}, {spec.loss}, {cfg.optimizer} lr {cfg.lr}, "
                             f"batch {cfg.batch_size}" + (f", inputs scaled {ds.scaler.kind}" if ds.scaler else "")
                             + (f"; test split: {ds.test_source}" if ds.test_source != "fixed split" else ""))
        if "fixed" in results and "float" in results:
            gap = results["fixed"]["test_accuracy"] - results["float"]["test_accuracy"]
            print(f"fixed - float test accuracy: {gap * 100:+.2f} points")
        if saved is not None:
            print(f"weights saved to {saved}")
        if shown:
            print(f"({LOSS_NOTE})", file=sys.stderr)
        for w in warnings:
            warn(w)
    if interrupted:
        print(f"edgebp: interrupted during {interrupted} training after {results[interrupted]['epochs']} epochs: "
              f"the results above are partial" + ("; no weights saved" if args.save_weights else ""),
              file=sys.stderr)
        return 130
    return 0


def save_weights(path, net, scale=None):
    """The project's weights file (edgebp/weights.py), with the input scaling (a data.Scaler or its dict)."""
    from .weights import save_weights as save
    if scale is not None and hasattr(scale, "to_dict"):
        scale = scale.to_dict()
    return save(path, net, scale=scale)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    ap = argparse.ArgumentParser(prog="edgebp", description="Fixed-point backpropagation for microcontrollers.")
    ap.add_argument("--version", action="version", version=f"edgebp {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on the host: fixed-point core, float mirror, or both")
    add_train_args(t)
    add_transfer_args(t)
    t.add_argument("--engine", default="both", choices=("fixed", "float", "both"))
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.add_argument("--save-weights", metavar="FILE.npz", help="save the fixed-point integer weights (and the input "
                                                              "scaling)")
    t.set_defaults(func=cmd_train)
    # command groups that live in their own modules
    from .cli_bench import add_bench_commands
    from .cli_compare import add_compare_commands
    from .cli_device import add_device_commands
    from .cli_fleet import add_fleet_commands
    adders = [add_device_commands, add_compare_commands, add_bench_commands, add_fleet_commands]
    try:
        from .cli_export import add_export_commands       # lane FW's `edgebp export`
        adders.append(add_export_commands)
    except ImportError:
        pass
    for add in adders:
        add(sub)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgeBPError as e:
        print(f"edgebp: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # context managers (emulators, serial ports) have already been closed on the way out
        print("edgebp: interrupted (Ctrl-C): stopped and emulators shut down; what was not yet printed or saved is "
              "lost", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
