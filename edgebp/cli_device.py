"""``edgebp boards | build | flash | device ...``: the firmware and device commands of the edgebp CLI.

``add_device_commands(subparsers)`` is called by edgebp/cli.py's parser.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

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
        p.add_argument("--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                       help="give up on the link when no valid response has come for this long, however many "
                            "times the request was sent again (default 10); each attempt waits a few measured "
                            "round trips, at most this")
        p.add_argument("--retries", type=_retries, default=None, metavar="N",
                       help="at most N retransmissions of any one request (default: as many as --timeout "
                            "allows; 0: never resend)")

    i = dsub.add_parser("info", help="firmware, protocol, board, arena size")
    target(i)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_device_info)

    t = dsub.add_parser("train", help="train on the device; same flags as `edgebp train`")
    from .cli import add_train_args, add_transfer_args
    add_train_args(t)
    add_transfer_args(t)
    target(t)
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.add_argument("--save-weights", metavar="FILE.npz",
                   help="save the device's integer weights after every epoch (atomically) and at the end; the "
                        "path is checked before training")
    t.add_argument("--resume", action="store_true",
                   help="when the link drops or the device resets, reconnect (restarting an emulated --board) "
                        "and continue from the last acknowledged training frame, bit-identical to an "
                        "uninterrupted run; with --save-weights FILE written by an interrupted run of the same "
                        "command, first continue that run after its last saved epoch")
    t.add_argument("--resume-timeout", type=_seconds, default=120.0, metavar="SECONDS",
                   help="with --resume: how long to keep trying to reconnect (default 120)")
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
def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return v


def _retries(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r} (leave it out to resend as "
                                         f"often as --timeout allows)")
    return v


@contextlib.contextmanager
def connect(args):
    """A Device for --port, or for a freshly started emulated --board (restartable, for --resume)."""
    from .boards import get_board
    from .device import Device, Emulator
    if args.port:
        with Device(args.port, timeout=args.timeout, retries=args.retries) as dev:
            yield dev
        return
    board = get_board(args.board or "qemu-mps2-an385")
    if not board.emulated:
        raise ConfigError(f"{board.name} is a real board: flash it (edgebp flash --board {board.name}) and pass "
                          f"its serial port with --port")
    with Emulator(board.name) as emu:
        with Device(emu.url, timeout=args.timeout, retries=args.retries, reopen=emu.reopen) as dev:
            dev.emulator = emu
            yield dev


def check_save_path(path: str) -> Path:
    """The file --save-weights writes (``.npz`` appended when missing), checked before training
    (edgebp.weights.check_save_path: a directory, a missing folder or an unwritable place is refused)."""
    from .weights import check_save_path as check
    return Path(check(path))


def save_weights_atomic(path: Path, spec, weights, run: Optional[dict] = None) -> Path:
    """The device's integer weights (and, during training, where the run stands: edgebp.weights' ``run``),
    written to a temporary file beside ``path`` and renamed over it (edgebp.weights.save_weights): a crash
    leaves the previous file whole."""
    from .weights import save_weights
    return Path(save_weights(path, _Frozen(spec, weights), run=run))


def _run_identity(args, spec, cfg, stop) -> dict:
    """What a saved run must match to be continued: the data, network, training configuration and stop rule."""
    from dataclasses import asdict
    return dict(data=str(args.data), spec=spec.to_dict(), config=cfg.to_dict(), stop=asdict(stop))


def saved_run(save: Optional[Path], ident: dict) -> Optional[dict]:
    """The run record of --save-weights' file for --resume to continue, or None (no file, or a file written
    without one). EdgeBPError for a run that finished, or that another command started."""
    from .weights import load_weights
    if save is None or not save.exists():
        return None
    wf = load_weights(save)
    run = wf.run
    if run is None:
        return None
    diff = [k for k in ident if run.get(k) != json.loads(json.dumps(ident[k]))]    # as the file keeps it
    if diff:
        raise ConfigError(f"{save} holds a run of another {' and '.join(diff)} than this command's; run the command "
                          f"that wrote it with --resume, or give another --save-weights path (or delete the file) "
                          f"to train from the start")
    if run.get("finished"):
        raise ConfigError(f"{save} holds a run that finished after {run['epochs']} epochs "
                          f"({run.get('stopped_by') or 'done'}): nothing to continue; give another --save-weights "
                          f"path (or delete the file) to train again")
    run["int_weights"] = wf.int_weights
    return run


def _print_json(obj) -> None:
    print(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# --- commands --------------------------------------------------------------------------------------------------
def cmd_boards(args) -> int:
    from .boards import BOARDS
    rows = []
    for b in BOARDS.values():
        rows.append(dict(name=b.name, core=b.core, emulated=b.emulated, qemu_machine=b.qemu_machine,
                         simavr_mcu=b.simavr_mcu, port_folder=b.buildable, flash=[c[0] for c in b.flash],
                         notes=b.notes))
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'board':18} {'core':11} {'how':26} {'port':8} notes")
    for r in rows:
        how = (f"qemu -M {r['qemu_machine']}" if r["qemu_machine"] else f"simavr -m {r['simavr_mcu']}"
               if r["simavr_mcu"] else "native process" if r["emulated"] else "flash: " + "/".join(r["flash"]))
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
    from .cli import Progress, init_weights_of, load_data, result_of, spec_and_config_from_args
    from .device import DeviceNet, DeviceResetError, LinkLostError
    ds = load_data(args)
    spec, cfg, stop = spec_and_config_from_args(args, ds)
    wf = init_weights_of(args, spec)      # a file for another network fails here, before the board starts
    save = check_save_path(args.save_weights) if args.save_weights else None
    if save is not None and str(save) != str(Path(args.save_weights).expanduser()) and not args.json:
        print(f"weights go to {save}", file=sys.stderr)
    ident = _run_identity(args, spec, cfg, stop)
    start = saved_run(save, ident) if args.resume else None      # a file for another run fails here
    results, out = {}, {}
    kept = dict(epoch=start["epochs"] if start else 0)

    def what_was_kept() -> str:
        if save is None:
            return "nothing was saved (give --save-weights FILE.npz to keep the weights after every epoch)"
        if kept["epoch"] == 0:
            return f"no epoch had finished, so {save} was not written"
        return f"the device's weights after epoch {kept['epoch']} are in {save}"

    try:
        with connect(args) as dev:
            info = dev.info()
            events = (lambda m: None) if args.json else (lambda m: print(f"edgebp: {m}", file=sys.stderr))
            net = DeviceNet(dev, spec, cfg, resume=args.resume, resume_timeout=args.resume_timeout,
                            on_event=events)
            if start is not None:         # the interrupted run's weights and training state, then its epochs
                net.continue_from(start["int_weights"], start["state"], start["steps"])
                events(f"continuing the run saved in {save} after epoch {start['epochs']} (step {start['steps']})")
            elif wf is not None:
                from .weights import apply_weights
                apply_weights(net, wf)    # uploaded: chunked, exactly once, committed with a CRC
            bar = Progress(stop.epochs, "device", enabled=False if args.json else None)

            def on_epoch(done, loss):
                bar(done, loss)

            def on_epoch_end(loop):
                """After each epoch: the weights and where the run stands, so that --resume can go on."""
                if save is not None:
                    run = None
                    if info.has("STATE") and info.has("UPLOAD"):      # else the run cannot be continued
                        from .deploy import read_state
                        state = net._call(lambda: read_state(dev))
                        run = dict(ident, **loop, steps=int(state[1]), state=state, finished=False)
                    save_weights_atomic(save, spec, net.get_int_weights(), run=run)
                kept["epoch"] = loop["epochs"]

            t0 = time.monotonic()
            hist = net.fit(ds.X_train, ds.T_train, stop, progress=on_epoch, start=start, on_epoch_end=on_epoch_end)
            bar.close()
            kept["trained"] = True
            seconds = time.monotonic() - t0
            dev_weights = net.get_int_weights()
            if save is not None:
                save_weights_atomic(save, spec, dev_weights,
                                    run=dict(ident, epochs=hist.epochs, loss=hist.loss, val_loss=hist.val_loss,
                                             stopped_by=hist.stopped_by, steps=net.steps, finished=True))
            res = result_of(net, hist, ds, seconds)
            res["saturations"] = net.stats()
            res["board"] = info.board
            if start is not None:
                res["continued_after_epoch"] = start["epochs"]
            res["steps"] = net.train_steps
            res["samples_per_second"] = net.train_samples_seen / net.train_seconds if net.train_seconds else None
            res["instructions_per_step"] = net.instructions_per_step()
            if info.tick_unit_name == "ns" and net.train_steps:
                res["ns_per_step"] = net.train_ticks * info.tick_num / info.tick_den / net.train_steps
                from .boards import BOARDS, ticks_to_cycles
                if info.board in BOARDS:        # a board whose counter counts CPU cycles (the AVR: simavr)
                    res["cycles_per_step"] = ticks_to_cycles(info.board, res["ns_per_step"])
            res["link"] = dict(retransmissions=dev.stats_retransmissions, frames_given_up=dev.stats_abandoned,
                               reconnects=dev.reconnects, byte_error_estimate=dev.link.p,
                               samples_with_unknown_loss=net.loss_unknown, events=net.events)
            results["device"] = res
            dev_pred = net.predict(ds.X_test)
    except (LinkLostError, DeviceResetError) as e:
        if kept.get("trained"):
            state = "training had finished" + (f" and the final weights are in {save}" if save else "")
        else:
            state = what_was_kept()
        if not kept.get("trained") and save is not None and kept["epoch"] > 0:
            go_on = (f"run the same command again with --resume to continue after epoch {kept['epoch']} (from "
                     f"{save}), bit-identical to an uninterrupted run")
        else:
            go_on = ("check the cable or emulator and run the command again" if args.resume else
                     "run the command again, with --resume to reconnect (restoring the last checkpoint after a "
                     "reset) and continue by itself")
        if isinstance(e, LinkLostError):
            raise LinkLostError(f"{e}; {state}; {go_on}", e.url, e.reason) from None
        raise DeviceResetError(e.status, f"{e}; {state}; {go_on}") from None
    ok = True
    if args.check:
        # the same run on the host: the fixed-point core (must match bit for bit) and the float mirror
        from .cli import make_engines
        for name, eng in make_engines(spec, cfg, "both", init_weights=wf).items():
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
        if results["device"].get("cycles_per_step"):
            print(f"CPU cycles per training step (measured on the device): {results['device']['cycles_per_step']:.0f}")
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


def _read_inputs(path: str, raw: bool = False) -> np.ndarray:
    """Samples (n, n_in) from a .npy file or a text/CSV file with one sample per line; DataError naming the
    file (and line) for anything that is not a table of finite numbers."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such file: {path}")
    if p.suffix == ".npy":
        try:
            X = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{path} is not a readable .npy array ({e}); save it with numpy.save") from None
        if X.dtype.kind not in "biuf":
            raise DataError(f"{path} holds {X.dtype} values, not numbers")
        X = X.astype(np.float64)
    else:
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            raise DataError(f"{path} is not a text file; give a .npy array or one sample per line") from None
        rows = []
        for k, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                rows.append([float(v) for v in line.replace(",", " ").split()])
            except ValueError:
                raise DataError(f"{path} line {k}: {line.strip()[:60]!r} is not a list of numbers (a header line "
                                f"must start with #)") from None
            if len(rows[-1]) != len(rows[0]):
                raise DataError(f"{path} line {k} has {len(rows[-1])} values, the first sample {len(rows[0])}")
        X = np.array(rows, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.size == 0:
        raise DataError(f"{path} must hold a table of samples (n, n_in), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{path} contains NaN or inf")
    if raw and (np.any(X != np.round(X)) or X.min() < -32768 or X.max() > 32767):
        raise DataError(f"--raw inputs must be int16 integers (-32768..32767); {path} has {X.min():g}..{X.max():g}"
                        f"{' and fractions' if np.any(X != np.round(X)) else ''}")
    return X


def cmd_device_predict(args) -> int:
    if not 0 <= args.in_frac <= 15:
        raise ConfigError(f"--in-frac must be 0..15 (fractional bits of int16 inputs), got {args.in_frac}")
    X = _read_inputs(args.inputs, args.raw)
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
            Xq = X.astype(np.int16)  # checked by _read_inputs
        else:
            from .fixed import quantize
            Xq = quantize(X, args.in_frac, "inputs")
        dev._params = dict(n_in=n_in, layers=[(f["n_out"], f["act"], f["w_frac"], f["a_frac"]) for f in fmts])
        Y = dev.predict(Xq)
    for row in Y:
        vals = row if args.raw else row * 2.0 ** -a_frac
        print(",".join(str(int(v)) if args.raw else f"{v:.6g}" for v in vals))
    return 0
