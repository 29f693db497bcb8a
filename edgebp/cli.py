"""The ``edgebp`` command line."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional

import numpy as np

from .config import ACTIVATIONS, INITS, LOSSES, OPTIMIZERS, ROUNDINGS, NetSpec, StopRule, TrainConfig
from .errors import ConfigError, EdgeBPError


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal, unless forced)."""

    def __init__(self, total: int, label: str, enabled: Optional[bool] = None):
        self.total, self.label = total, label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.monotonic()

    def __call__(self, done: int, loss: float) -> None:
        if not self.enabled:
            return
        w = 30
        fill = int(w * done / max(self.total, 1))
        sys.stderr.write(f"\r{self.label:>6} [{'#' * fill}{'.' * (w - fill)}] {done}/{self.total} "
                         f"loss {loss:.5f} {time.monotonic() - self.t0:.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The model and training flags shared by ``train``, ``device train``, ``compare`` and ``advise``."""
    p.add_argument("data", help="data set: a shipped name (diabetes, thyroid, ...), a FANN path prefix "
                                "without .train/.test, or sklearn:NAME")
    p.add_argument("--layers", default=None, help="sizes, input first, e.g. 8,16,2 (default: n_in,16,n_out)")
    p.add_argument("--activation", default="sigmoid",
                   help=f"one of {','.join(ACTIVATIONS)} for all layers, or a comma list per layer")
    p.add_argument("--loss", default="mse", choices=LOSSES)
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=1, help="1 = online, 0 = full batch")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounding", default="nearest", choices=ROUNDINGS, help="weight-update rounding (fixed point)")
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
    p.add_argument("--patience", type=int, default=None, help="early stopping on a validation split")
    p.add_argument("--validation-split", type=float, default=0.0)


def load_data(args):
    from .data import load_dataset
    return load_dataset(args.data)


def spec_and_config_from_args(args, ds=None):
    """(NetSpec, TrainConfig, StopRule) from parsed ``add_train_args`` flags; ``ds`` fills default sizes."""
    if args.layers:
        try:
            sizes = [int(s) for s in args.layers.split(",")]
        except ValueError:
            raise ConfigError(f"--layers must be comma-separated integers, got {args.layers!r}") from None
    elif ds is not None:
        sizes = [ds.X_train.shape[1], 16, ds.T_train.shape[1]]
    else:
        raise ConfigError("--layers is required")
    if ds is not None and (sizes[0] != ds.X_train.shape[1] or sizes[-1] != ds.T_train.shape[1]):
        raise ConfigError(f"--layers {args.layers} does not match the data: it has {ds.X_train.shape[1]} inputs "
                          f"and {ds.T_train.shape[1]} outputs")
    acts = args.activation.split(",")
    spec = NetSpec.from_sizes(sizes, acts[0] if len(acts) == 1 else acts, args.loss, args.w_frac, args.a_frac,
                              args.in_frac)
    cfg = TrainConfig(optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, batch_size=args.batch_size,
                      rounding=args.rounding, seed=args.seed, init=args.init, init_range=args.init_range,
                      shuffle=args.shuffle, online_only=args.online_only)
    cfg.validate()
    stop = StopRule(epochs=args.epochs, target_loss=args.target_loss, all_correct=args.all_correct,
                    patience=args.patience, validation_split=args.validation_split)
    return spec, cfg, stop


def make_engines(spec: NetSpec, cfg: TrainConfig, which: str = "both"):
    """The fixed-point network and its float mirror, starting from the same (dequantized) weights."""
    from .fixed import FixedNet
    from .mirror import FloatNet
    fixed = FixedNet(spec, cfg)
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


def cmd_train(args) -> int:
    ds = load_data(args)
    spec, cfg, stop = spec_and_config_from_args(args, ds)
    engines = make_engines(spec, cfg, args.engine)
    results = {}
    for name, eng in engines.items():
        bar = Progress(stop.epochs, name, enabled=False if args.json else None)
        t0 = time.monotonic()
        hist = eng.fit(ds.X_train, ds.T_train, stop, progress=bar)
        bar.close()
        results[name] = result_of(eng, hist, ds, time.monotonic() - t0)
        if name == "fixed":
            results[name]["saturations"] = eng.stats()
            if args.save_weights:
                save_weights(args.save_weights, eng)
    if args.json:
        print(json.dumps(dict(data=args.data, spec=spec.to_dict(), config=cfg.to_dict(), engines=results)))
    else:
        print_table(results, f"{args.data}: {'-'.join(map(str, spec.sizes))} "
                             f"{','.join(l.act for l in spec.layers)}, {spec.loss}, {cfg.optimizer} lr {cfg.lr}, "
                             f"batch {cfg.batch_size}")
        if "fixed" in results and "float" in results:
            gap = results["fixed"]["test_accuracy"] - results["float"]["test_accuracy"]
            print(f"fixed - float test accuracy: {gap * 100:+.2f} points")
    return 0


def save_weights(path: str, fixed) -> None:
    """Integer weights and biases per layer with their Q formats, as an .npz file."""
    arrays = {}
    for i, ((W, b), l) in enumerate(zip(fixed.get_int_weights(), fixed.spec.layers)):
        arrays[f"w{i}"], arrays[f"b{i}"] = W, b
        arrays[f"w{i}_frac"] = np.int8(l.w_frac)
        arrays[f"a{i}_frac"] = np.int8(l.a_frac)
    arrays["in_frac"] = np.int8(fixed.spec.in_frac)
    arrays["spec"] = np.array(json.dumps(fixed.spec.to_dict()))
    np.savez(path, **arrays)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgebp", description="Fixed-point backpropagation for microcontrollers.")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on the host: fixed-point core, float mirror, or both")
    add_train_args(t)
    t.add_argument("--engine", default="both", choices=("fixed", "float", "both"))
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.add_argument("--save-weights", metavar="FILE.npz", help="save the fixed-point integer weights")
    t.set_defaults(func=cmd_train)
    # command groups that live in their own modules
    from .cli_bench import add_bench_commands
    from .cli_compare import add_compare_commands
    from .cli_device import add_device_commands
    for add in (add_device_commands, add_compare_commands, add_bench_commands):
        add(sub)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgeBPError as e:
        print(f"edgebp: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
