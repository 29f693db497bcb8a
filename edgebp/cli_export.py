"""``edgebp export WEIGHTS --name NAME -o NAME.h [--data DATA]``: a trained model as a C header.

``add_export_commands(subparsers)`` is called by edgebp/cli.py's parser.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .config import OPTIMIZERS, ROUNDINGS
from .errors import EdgeBPError


def add_export_commands(sub) -> None:
    e = sub.add_parser("export", help="write a trained model as one C header for your own firmware")
    e.add_argument("weights", help="weights file (.npz) from --save-weights or edgebp.save_weights")
    e.add_argument("--name", required=True, help="C name of the model: my_model gives my_model_cfg, "
                                                 "my_model_init, MY_MODEL_ARENA_BYTES, ...")
    e.add_argument("-o", "--output", help="header to write (default: NAME.h)")
    e.add_argument("--data", help="also compile in samples: a data set name or FANN prefix (its training "
                                  "part, see --split) or an .npz with arrays X and T")
    e.add_argument("--split", choices=("train", "test"), default="train", help="which part of --data")
    e.add_argument("--max-samples", type=int, default=None, help="at most this many samples from --data")
    e.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="how the firmware trains (default: as "
                                                                          "saved in the file, else sgd)")
    e.add_argument("--lr", type=float, default=None)
    e.add_argument("--momentum", type=float, default=None)
    e.add_argument("--batch-size", type=int, default=None, help="1 with sgd lays the network out without "
                                                                 "gradient memory (the least RAM)")
    e.add_argument("--rounding", choices=ROUNDINGS, default=None)
    e.add_argument("--seed", type=int, default=None, help="seed of the stochastic-rounding generator")
    e.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from .export import check_name, export_header, load_samples, train_config_of
    from .weights import load_weights
    name = check_name(args.name)
    out = Path(args.output or f"{name}.h")
    if out.is_dir():
        raise EdgeBPError(f"{out} is a directory; give a file name such as {out / (name + '.h')}")
    wf = load_weights(args.weights)
    cfg = train_config_of(wf, dict(optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                                   batch_size=args.batch_size, rounding=args.rounding, seed=args.seed))
    samples = load_samples(args.data, wf.spec, args.split, args.max_samples) if args.data and wf.spec else None
    text = export_header(wf, name, cfg, samples, source=Path(args.weights).name)
    folder = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)
    except OSError as e:
        raise EdgeBPError(f"cannot write {out}: {e.strerror or e}") from None
    from .fixed import memory
    print(f"wrote {out}: {name}, {'-'.join(map(str, wf.spec.sizes))}, training arena "
          f"{memory(wf.spec, cfg)['total']} bytes" + (f", {len(samples[0])} samples" if samples is not None else ""))
    return 0


def main(argv=None) -> int:
    """``python3 -m edgebp.cli_export WEIGHTS --name NAME ...`` (what ``edgebp export`` runs)."""
    import argparse
    import sys
    ap = argparse.ArgumentParser(prog="edgebp")
    add_export_commands(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(["export", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except EdgeBPError as e:
        print(f"edgebp: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
