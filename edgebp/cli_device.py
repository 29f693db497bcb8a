"""``edgebp boards | build | flash | device ...``: the firmware and device commands of the edgebp CLI.

``add_device_commands(subparsers)`` is called by edgebp/cli.py's parser.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError, EdgeBPError


def add_device_commands(sub) -> None:
    b = sub.add_parser("boards", help="list the boards the firmware supports")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_boards)

    b = sub.add_parser("build", help="build the firmware for a board and print its size report")
    b.add_argument("--board", default="qemu-mps2-an385")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_build)

    f = sub.add_parser("flash", help="flash a real board, or run an emulated one until Ctrl-C")
    f.add_argument("--board", default="qemu-mps2-an385")
    f.add_argument("--port", help="serial port of a real board (passed to the flashing tool when it needs one)")
    f.set_defaults(func=cmd_flash)

    d = sub.add_parser("device", help="talk to a board running the edgebp firmware")
    dsub = d.add_subparsers(dest="device_command", required=True)

    def target(p):
        g = p.add_mutually_exclusive_group()
        g.add_argument("--port", help="serial URL: /dev/ttyACM0, socket://127.0.0.1:5555, ...")
        g.add_argument("--board", help="start this emulated board (default qemu-mps2-an385 without --port)")
        p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each response")
        p.add_argument("--retries", type=int, default=3)

    i = dsub.add_parser("info", help="firmware, protocol, board, arena size")
    target(i)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_device_info)

    t = dsub.add_parser("train", help="train on the device; same flags as `edgebp train`")
    from .cli import add_train_args
    add_train_args(t)
    target(t)
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.add_argument("--save-weights", metavar="FILE.npz", help="save the device's integer weights")
    t.add_argument("--check", action="store_true",
                   help="also train FixedNet on the host and require bit-identical weights (exit 1 otherwise)")
    t.set_defaults(func=cmd_device_train)

    p = dsub.add_parser("predict", help="outputs of the model loaded on a device for inputs from a file")
    target(p)
    p.add_argument("inputs", help=".npy, or a text/CSV file with one sample per line")
    p.add_argument("--in-frac", type=int, default=12, help="fractional bits of the model's inputs")
    p.add_argument("--raw", action="store_true", help="inputs and outputs are the int16 integers")
    p.set_defaults(func=cmd_device_predict)


# --- helpers ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def connect(args):
    """A Device for --port, or for a freshly started emulated --board."""
    from .boards import get_board, start_emulator
    from .device import Device
    if args.port:
        with Device(args.port, timeout=args.timeout, retries=args.retries) as dev:
            yield dev
        return
    board = get_board(args.board or "qemu-mps2-an385")
    if not board.emulated:
        raise ConfigError(f"{board.name} is a real board: flash it (edgebp flash --board {board.name}) and pass "
                          f"its serial port with --port")
    with start_emulator(board.name) as url:
        with Device(url, timeout=args.timeout, retries=args.retries) as dev:
            yield dev


def _print_json(obj) -> None:
    print(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# --- commands --------------------------------------------------------------------------------------------------
def cmd_boards(args) -> int:
    from .boards import BOARDS
    rows = []
    for b in BOARDS.values():
        rows.append(dict(name=b.name, core=b.core, emulated=b.emulated, qemu_machine=b.qemu_machine,
                         port_folder=b.buildable, flash=[c[0] for c in b.flash], notes=b.notes))
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'board':18} {'core':11} {'how':26} {'port':8} notes")
    for r in rows:
        how = f"qemu -M {r['qemu_machine']}" if r["qemu_machine"] else ("native process" if r["emulated"] else
                                                                      "flash: " + "/".join(r["flash"]))
        print(f"{r['name']:18} {r['core']:11} {how:26} {'yes' if r['port_folder'] else 'to write':8} {r['notes']}")
    return 0


def cmd_build(args) -> int:
    from .boards import build
    rep = build(args.board)
    if args.json:
        _print_json({k: v for k, v in rep.items() if k != "output"})
    else:
        print(rep["output"].rstrip())
    return 0


def cmd_flash(args) -> int:
    from .boards import ensure_built, flash_command, get_board, start_emulator
    board = get_board(args.board)
    if board.emulated:
        with start_emulator(board.name, timeout=7 * 24 * 3600) as url:
            print(f"{board.name} running; serial: {url}")
            print(f"  edgebp device info --port {url}")
            print("Ctrl-C to stop", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("stopped")
        return 0
    elf = ensure_built(board.name)
    cmd = flash_command(board.name, elf, args.port)
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def cmd_device_info(args) -> int:
    with connect(args) as dev:
        info = dev.info()
    if args.json:
        _print_json(info.to_dict())
        return 0
    print(f"board:     {info.board}")
    print(f"core:      {info.core} (core API {info.core_version[0]}.{info.core_version[1]})")
    print(f"firmware:  {info.firmware_version[0]}.{info.firmware_version[1]}, protocol {info.protocol}, "
          f"max frame body {info.max_body} bytes")
    print(f"arena:     {info.arena} bytes")
    print(f"counter:   {info.tick_unit_name} = ticks * {info.tick_num} / {info.tick_den}")
    print(f"build:     {info.build}")
    print(f"model:     {'loaded' if info.have_model else 'none'}")
    return 0


def cmd_device_train(args) -> int:
    from .cli import Progress, load_data, result_of, save_weights, spec_and_config_from_args
    from .device import DeviceNet
    ds = load_data(args)
    spec, cfg, stop = spec_and_config_from_args(args, ds)
    if stop.patience is not None:
        raise ConfigError("--patience needs to restore the best weights, which the device protocol cannot "
                          "upload; use --epochs or --target-loss")
    results, out = {}, {}
    with connect(args) as dev:
        info = dev.info()
        net = DeviceNet(dev, spec, cfg)
        bar = Progress(stop.epochs, "device", enabled=False if args.json else None)
        t0 = time.monotonic()
        hist = net.fit(ds.X_train, ds.T_train, stop, progress=bar)
        bar.close()
        seconds = time.monotonic() - t0
        res = result_of(net, hist, ds, seconds)
        res["saturations"] = net.stats()
        res["board"] = info.board
        res["steps"] = net.train_steps
        res["samples_per_second"] = net.train_samples_seen / net.train_seconds if net.train_seconds else None
        res["instructions_per_step"] = net.instructions_per_step()
        if info.tick_unit_name == "ns" and net.train_steps:
            res["ns_per_step"] = net.train_ticks * info.tick_num / info.tick_den / net.train_steps
        results["device"] = res
        dev_weights = net.get_int_weights()
        dev_pred = net.predict(ds.X_test)
        if args.save_weights:
            save_weights(args.save_weights, _Frozen(spec, dev_weights))
    ok = True
    if args.check:
        # the same run on the host: the fixed-point core (must match bit for bit) and the float mirror
        from .cli import make_engines
        for name, eng in make_engines(spec, cfg, "both").items():
            t0 = time.monotonic()
            h = eng.fit(ds.X_train, ds.T_train, stop)
            results[name] = result_of(eng, h, ds, time.monotonic() - t0)
            if name == "fixed":
                host_weights, fhist, host_pred = eng.get_int_weights(), h, eng.predict(ds.X_test)
        diffs = [i for i, ((dW, db), (hW, hb)) in enumerate(zip(dev_weights, host_weights))
                 if not (np.array_equal(dW, hW) and np.array_equal(db, hb))]
        same_pred = bool(np.array_equal(dev_pred, host_pred))
        ok = not diffs and same_pred and fhist.epochs == hist.epochs
        out["check"] = dict(identical=ok, differing_layers=diffs, identical_predictions=same_pred)
    if args.json:
        _print_json(dict(data=args.data, spec=spec.to_dict(), config=cfg.to_dict(), engines=results, **out))
    else:
        from .cli import print_table
        print_table(results, f"{args.data} on {results['device']['board']}: {'-'.join(map(str, spec.sizes))}, "
                             f"{cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size}")
        ips = results["device"]["instructions_per_step"]
        if ips:
            print(f"instructions per training step (measured on the device): {ips:.0f}")
        sps = results["device"]["samples_per_second"]
        if sps:
            print(f"samples per second over the link: {sps:.0f}")
        if args.check:
            c = out["check"]
            print("device vs host fixed-point core: " + ("weights and predictions bit-identical" if ok else
                  f"DIFFERENT: weights of layers {c['differing_layers']}, "
                  f"predictions {'equal' if c['identical_predictions'] else 'differ'}"))
            gap = results["fixed"]["test_accuracy"] - results["float"]["test_accuracy"]
            print(f"fixed - float test accuracy: {gap * 100:+.2f} points")
    return 0 if ok else 1


class _Frozen:
    """What cli.save_weights needs (spec + integer weights) for weights read from a device."""

    def __init__(self, spec, weights):
        self.spec, self._w = spec, weights

    def get_int_weights(self):
        return self._w


def _read_inputs(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {path}")
    if p.suffix == ".npy":
        X = np.load(p)
    else:
        text = p.read_text().replace(",", " ")
        X = np.array([[float(v) for v in line.split()] for line in text.splitlines() if line.strip()])
    return np.atleast_2d(X)


def cmd_device_predict(args) -> int:
    X = _read_inputs(args.inputs)
    with connect(args) as dev:
        info = dev.info()
        if not info.have_model:
            raise EdgeBPError(f"no model is loaded on {info.board}: train one first (edgebp device train ... "
                              f"--port URL)")
        fmts = dev.read_formats()
        n_in, a_frac = fmts[0]["n_in"], fmts[-1]["a_frac"]
        if X.shape[1] != n_in:
            raise DataError(f"the device model has {n_in} inputs, the file has {X.shape[1]} columns")
        if args.raw:
            Xq = X.astype(np.int16)
        else:
            from .fixed import quantize
            Xq = quantize(X, args.in_frac, "inputs")
        dev._params = dict(n_in=n_in, layers=[(f["n_out"], f["act"], f["w_frac"], f["a_frac"]) for f in fmts])
        Y = dev.predict(Xq)
    for row in Y:
        vals = row if args.raw else row * 2.0 ** -a_frac
        print(",".join(str(int(v)) if args.raw else f"{v:.6g}" for v in vals))
    return 0
