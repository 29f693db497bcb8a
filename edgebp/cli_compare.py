"""`edgebp compare` and `edgebp advise`: fixed point against float, and number-format advice."""
from __future__ import annotations

import csv
import json
import sys

from .errors import ConfigError

ADVISE_VALIDATION_SPLIT = 0.2   # what `edgebp advise` holds out of the training rows without --validation-split


def _int_list(text: str, flag: str):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated integers, got {text!r}") from None


def cmd_compare(args) -> int:
    from .cli import Progress, init_weights_of, load_data, spec_and_config_from_args
    from .compare import clean_json, compare, csv_rows, format_report, plot_report
    ds = load_data(args)
    spec, cfg, stop = spec_and_config_from_args(args, ds)
    if stop.patience is not None or stop.target_loss is not None or stop.all_correct:
        print("edgebp compare: runs every --epochs; --patience, --target-loss and --all-correct are ignored",
              file=sys.stderr)
    X, T = ds.X_train, ds.T_train
    if stop.validation_split > 0:          # train on the same rows as `edgebp train --validation-split`
        n_val = int(round(len(X) * stop.validation_split))
        if not 0 < n_val < len(X):
            raise ConfigError(f"--validation-split {stop.validation_split} leaves no training or validation rows")
        X, T = X[:-n_val], T[:-n_val]
    quiet = args.json or args.csv
    bar = Progress(stop.epochs, "compare", enabled=False if quiet else None)
    rep = compare(spec, cfg, X, T, ds.X_test, ds.T_test, epochs=stop.epochs, every=args.every,
                  threshold=args.threshold, rel_threshold=args.rel_threshold, attribution=not args.no_attribution,
                  eval_every=args.eval_every, scipy_method=args.scipy, progress=bar,
                  init_weights=init_weights_of(args, spec))
    bar.close()
    rep["data"] = args.data
    if args.plot:
        plot_report(rep, args.plot)
    if args.json:
        print(json.dumps(clean_json(rep), allow_nan=False))
    elif args.csv:
        csv.writer(sys.stdout, lineterminator="\n").writerows(clean_json(csv_rows(rep, args.csv)))
    else:
        print(format_report(rep, args.data))
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0


def cmd_advise(args) -> int:
    from .advise import advise, format_advice, train_command
    from .cli import load_data, spec_and_config_from_args
    from .compare import clean_json
    from .config import ROUNDINGS
    ds = load_data(args)
    spec, cfg, stop = spec_and_config_from_args(args, ds)
    if stop.validation_split == 0:     # rank on held-out training rows, never on the test set
        stop.validation_split = ADVISE_VALIDATION_SPLIT
    roundings = [r.strip() for r in args.roundings.split(",") if r.strip()]
    for r in roundings:
        if r not in ROUNDINGS:
            raise ConfigError(f"--roundings: unknown rounding {r!r}; choose from {', '.join(ROUNDINGS)}")
    from .cli import Progress
    bars = {}

    def progress(done, total):      # one bar, its total grown by the per-tensor round
        bar = bars.get("bar")
        if bar is None:
            bar = bars["bar"] = Progress(total, "advise", enabled=False if (args.json or args.csv) else None,
                                         unit="format")
        bar.total = max(total, 1)
        bar(done)
    try:
        rep = advise(spec, cfg, stop, ds.X_train, ds.T_train, ds.X_test, ds.T_test,
                     w_fracs=_int_list(args.w_fracs, "--w-fracs"), a_fracs=_int_list(args.a_fracs, "--a-fracs"),
                     in_fracs=_int_list(args.in_fracs, "--in-fracs") if args.in_fracs else None,
                     roundings=roundings, max_loss=args.max_loss, jobs=args.jobs, per_tensor=args.per_tensor,
                     progress=progress, cluster=args.cluster)
    finally:
        if "bar" in bars:
            bars["bar"].close()
    rep["data"] = args.data
    rec = rep["recommended"] or rep["closest"]
    rep["command"] = train_command(args.data, rec["spec"], rec["rounding"], rep["config"], rep["stop"]) if rec else None
    if args.json:
        print(json.dumps(clean_json(rep), allow_nan=False))
    elif args.csv:
        cols = ("rank", "format", "rounding", "memory", "train_accuracy", "val_accuracy", "test_accuracy",
                "test_loss", "loss_vs_float", "within", "zero_update_frac", "saturations", "seconds", "error")
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        for r in rep["candidates"]:
            w.writerow(clean_json([r.get(c) for c in cols]))
    else:
        print(format_advice(rep, f"{args.data}: format sweep"))
        if rep["command"]:
            print(f"retrain it: {rep['command']}")
        elif rec:
            print(f"retrain it with the Python API: NetSpec.from_dict({json.dumps(rec['spec'])}), "
                  f"rounding={rec['rounding']!r}")
    return 0


def add_compare_commands(sub) -> None:
    from .cli import add_train_args, add_transfer_args
    from .compare import SCIPY_METHODS
    c = sub.add_parser("compare", help="train the fixed-point core and the float mirror side by side and report "
                                       "per-layer gradient agreement, error sources and curves")
    add_train_args(c)
    add_transfer_args(c)
    c.add_argument("--every", type=int, default=0, help="compare gradients every N steps (0: about 400 records)")
    c.add_argument("--eval-every", type=int, default=1, help="loss/accuracy curves every N epochs")
    c.add_argument("--threshold", type=float, default=0.9, help="cosine below which a layer disagrees")
    c.add_argument("--rel-threshold", type=float, default=0.5, help="relative L2 error above which a layer "
                                                                    "disagrees")
    c.add_argument("--no-attribution", action="store_true", help="skip the forward/backward/update split")
    c.add_argument("--scipy", choices=sorted(SCIPY_METHODS), default=None,
                   help="also train the float mirror full batch with scipy (needs --batch-size 0)")
    c.add_argument("--json", action="store_true", help="print the whole report as one JSON object")
    c.add_argument("--csv", nargs="?", const="steps", choices=("steps", "curves"), default=None,
                   help="print CSV: per-step per-layer metrics (default) or the per-epoch curves")
    c.add_argument("--plot", metavar="FILE.png", help="write loss curves and gradient agreement (matplotlib)")
    c.set_defaults(func=cmd_compare)

    a = sub.add_parser("advise", help="sweep number formats and recommend one within --max-loss of float")
    add_train_args(a)
    a.add_argument("--w-fracs", default="6,8,10,12,14", help="weight fractional bits to try")
    a.add_argument("--cluster", default=None, metavar="local|auto|ADDRESS",
                   help="run the candidates as Ray tasks (edgebp[fleet]) on this cluster instead of local processes")
    a.add_argument("--a-fracs", default="8,10,12,14", help="activation fractional bits to try")
    a.add_argument("--in-fracs", default=None, help="input fractional bits to try (default: --in-frac)")
    a.add_argument("--roundings", default="nearest,stochastic", help="update roundings to try")
    a.add_argument("--max-loss", type=float, default=1.0,
                   help="allowed loss against the float mirror: accuracy points (classification) or percent more "
                        "validation loss (regression)")
    a.add_argument("--per-tensor", action="store_true", help="then vary each tensor's fractional bits alone")
    a.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    a.add_argument("--json", action="store_true", help="print the report as one JSON object")
    a.add_argument("--csv", action="store_true", help="print the measured table as CSV")
    a.set_defaults(func=cmd_advise)
