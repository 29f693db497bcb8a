"""``edgebp fleet``: federated averaging over a fleet of devices (virtual ones on Ray, emulated boards).

``add_fleet_commands(subparsers)`` is called by edgebp/cli.py's parser; ``main(argv)`` runs the command alone.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from .errors import ConfigError, EdgeBPError


def add_fleet_commands(sub) -> None:
    from .cli import add_train_args
    f = sub.add_parser("fleet", help="federated averaging over N devices (Flower; virtual devices on Ray, "
                                     "emulated boards in QEMU)",
                       description="Each round every device trains --local-epochs epochs on its own shard from "
                                   "the global weights; the server averages the int16 weights exactly "
                                   "(docs/fleet.md) and the float mirror's beside them.")
    add_train_args(f)
    f.set_defaults(epochs=None, func=cmd_fleet)
    f.add_argument("--devices", type=int, default=10, help="devices in the fleet (default 10)")
    f.add_argument("--boards", default=None,
                   help="emulated boards that take the first devices' places, e.g. qemu-microbit:2,qemu-mps2-an385:2")
    f.add_argument("--max-body", type=int, default=None, metavar="BYTES",
                   help="the frame body the virtual devices' link bytes are counted with, as a board reporting this "
                        "max_body in HELLO would send them (default the protocol's 1024; the Uno board's is 128); "
                        "the --boards devices count what their boards report")
    f.add_argument("--rounds", type=int, default=10)
    f.add_argument("--local-epochs", type=int, default=1, help="epochs each device trains per round")
    f.add_argument("--split", default="iid", help="iid, or dirichlet:ALPHA (non-IID; e.g. dirichlet:0.5)")
    f.add_argument("--split-seed", type=int, default=0, help="seed of the split of the training set")
    f.add_argument("--engine", default="both", choices=("fixed", "float", "both"),
                   help="fixed-point core, float mirror, or both side by side")
    f.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: every core)")
    f.add_argument("--cpus-per-device", type=float, default=1.0,
                   help="Ray CPUs each running device takes (devices running at once = cpus / this)")
    f.add_argument("--cluster", default=None, metavar="auto|ADDRESS",
                   help="run on an existing Ray cluster: auto, HOST:PORT or ray://HOST:10001")
    f.add_argument("--board-timeout", type=float, default=30.0, help="seconds to wait for each board response")
    f.add_argument("--round-timeout", type=float, default=3600.0,
                   help="seconds a round waits for its devices; the ones that did not answer are left out")
    f.add_argument("--json", action="store_true", help="one JSON object per round (JSON lines), round 0 first")
    f.add_argument("--verbose", action="store_true", help="show Flower's and Ray's log")


def _pct(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def format_round(rec: dict, rounds: int) -> str:
    parts = [f"round {rec['round']:>3}/{rounds}"]
    for eng in ("fixed", "float"):
        if eng in rec:
            r = rec[eng]
            parts.append(f"{eng}: test {_pct(r['test_accuracy'])}" + (
                f" devices mean {_pct(r['device_accuracy_mean'])} worst {_pct(r['device_accuracy_worst'])}"
                if r["device_accuracy_mean"] is not None else ""))
    if "link_bytes" in rec:
        parts.append(f"link {rec['link_bytes']['per_device_mean']:,.0f} B/device")
    if rec["round"]:
        parts.append(f"{rec['seconds']:.2f} s")
    if rec.get("failures"):
        parts.append(f"{len(rec['failures'])} device(s) failed: {rec['failures'][0][:200]}")
    return "  ".join(parts)


def task_from_args(args):
    from .cli import load_data, spec_and_config_from_args
    from .fleet.client import FleetTask
    from .fleet.fedavg import parse_split
    if args.epochs is not None:
        raise ConfigError("edgebp fleet trains --local-epochs epochs per round for --rounds rounds; "
                          "--epochs is not used")
    if args.patience is not None or args.validation_split or args.target_loss is not None or args.all_correct:
        raise ConfigError("edgebp fleet trains a fixed number of epochs per round: --patience, "
                          "--validation-split, --target-loss and --all-correct do not apply")
    if args.devices < 1 or args.rounds < 1 or args.local_epochs < 1:
        raise ConfigError("--devices, --rounds and --local-epochs must be at least 1")
    parse_split(args.split)
    ds = load_data(args)
    spec, cfg, _ = spec_and_config_from_args(args, ds)
    engines = ("fixed", "float") if args.engine == "both" else (args.engine,)
    return FleetTask(args.data, spec.to_dict(), cfg.to_dict(), n_devices=args.devices, split=args.split,
                     split_seed=args.split_seed, local_epochs=args.local_epochs, engines=engines,
                     scale=getattr(args, "scale", None), max_body=getattr(args, "max_body", None))


def cmd_fleet(args) -> int:
    import contextlib
    import dataclasses
    from . import protocol as P
    from .fleet.boards import max_bodies, parse_boards, start_boards
    from .fleet.flower import require_flower, simulate
    require_flower()
    task = task_from_args(args)
    names = parse_boards(args.boards)
    if len(names) > args.devices:
        raise ConfigError(f"--boards lists {len(names)} boards for a fleet of --devices {args.devices}")
    if names and "fixed" not in task.engines:
        raise ConfigError("boards train in integers: use --engine fixed or both with --boards")
    if not args.json:
        spec = task.netspec
        print(f"{args.data}: {'-'.join(map(str, spec.sizes))}, {args.devices} devices"
              + (f" ({len(names)} emulated: {args.boards})" if names else "")
              + f", split {args.split}, {args.rounds} rounds of {args.local_epochs} local epoch(s), "
                f"lr {task.cfg['lr']}, on Ray {'cluster ' + args.cluster if args.cluster else 'local'}",
              flush=True)

    def show(rec):
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(format_round(rec, args.rounds), flush=True)

    with (start_boards(names) if names else contextlib.nullcontext([])) as urls:
        if urls:        # each board's own frame body (HELLO) for its device, the virtual devices' for the rest
            virtual = task.max_body if task.max_body is not None else P.MAX_BODY
            task = dataclasses.replace(task, max_body=tuple(max_bodies(urls, args.board_timeout))
                                       + (virtual,) * (args.devices - len(urls)))
        try:
            res = simulate(task, args.rounds, boards=dict(enumerate(urls)), num_cpus=args.cpus,
                           ray_address=args.cluster, cpus_per_device=args.cpus_per_device, progress=show,
                           board_timeout=args.board_timeout, quiet=not args.verbose,
                           round_timeout=args.round_timeout)
        except EdgeBPError:
            raise
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {args.cluster}" if args.cluster else "the local Ray cluster"
            raise EdgeBPError(f"the Flower simulation on {where} failed: {e}; rerun with --verbose to see "
                              f"Flower's log") from None
    failed = sum(len(r["failures"]) for r in res["rounds"])
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    """``edgebp fleet ...`` on its own (the same as through edgebp.cli once it is wired in)."""
    ap = argparse.ArgumentParser(prog="edgebp")
    sub = ap.add_subparsers(dest="command", required=True)
    add_fleet_commands(sub)
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except EdgeBPError as e:
        print(f"edgebp: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
