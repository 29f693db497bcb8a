#!/usr/bin/env python3
"""Training throughput over a faulty serial link: samples/s against the share of bytes dropped and flipped.

    python3 tools/bench/link.py                  # emulated Cortex-M3, rates 0 .. 1%, 3 seeds; writes docs/link.md
    python3 tools/bench/link.py --seeds 5 --board qemu-microbit --no-write

For each rate r, a seeded relay (edgebp/relay.py) drops r of the bytes and flips one bit in another r, in both
directions, between the host and the emulated board; diabetes 8-16-2 (online SGD, lr 0.2, seed 1) trains for 2
epochs and the weights read back are compared with the host core's. samples/s counts training requests only
(DeviceNet.train_seconds: the link and the device, not the read-back); link bytes per sample: every byte the relay
carried, both ways, over the samples trained (the whole run: load, training, read-back). The clean row (r = 0) is
the reference for the "of clean" columns; "of the clean run beside it" is the median over seeds of each run's
samples/s over the clean run of the same mode and seed, made just before it (the shared machine's load moves both
alike). Modes: the default (frames sized to the link, stop-and-wait; streamed CHUNK blocks, one TRAIN per 64
blocks, once the link damages frames: Device()); frames only (Device(bulk=False)); a window of 2 training frames in flight
(Device(window=2, bulk=False)); with --fixed-frames also full frames (the link model off), as the host did before
the frames adapted.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RATES = (0.0, 0.0005, 0.001, 0.005, 0.01)
BEGIN, END = "<!-- link-bench:begin -->", "<!-- link-bench:end -->"


def run_once(emu_url, rate, seed, epochs, adaptive, timeout, spec, cfg, ds, ref, **dev_kw):
    import numpy as np
    from edgebp.config import StopRule
    from edgebp.device import Device, DeviceNet
    from edgebp.errors import EdgeBPError
    from edgebp.relay import FaultRelay
    t0 = time.monotonic()
    with FaultRelay(emu_url, drop=rate, flip=rate, seed=seed, lifetime=900) as relay:
        try:
            with Device(relay.url, timeout=timeout, adaptive=adaptive, **dev_kw) as dev:
                net = DeviceNet(dev, spec, cfg)
                net.fit(ds.X_train, ds.T_train, StopRule(epochs=epochs))
                w = net.get_int_weights()
                same = all(np.array_equal(a, b) and np.array_equal(c, d) for (a, c), (b, d) in zip(w, ref))
                moved = sum(relay.counts[d]["bytes"] for d in ("up", "down"))
                return dict(finished=True, identical=same, sps=net.train_samples_seen / net.train_seconds,
                            bps=moved / max(1, net.train_samples_seen),
                            seconds=time.monotonic() - t0, retrans=dev.stats_retransmissions,
                            frames=net.train_requests, unknown=net.loss_unknown, p=dev.link.p, error="")
        except EdgeBPError as e:
            return dict(finished=False, identical=False, sps=None, bps=None, seconds=time.monotonic() - t0,
                        retrans=None, frames=None, unknown=0, p=None, error=str(e)[:400])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="qemu-mps2-an385")
    ap.add_argument("--seeds", type=int, default=3, help="runs per rate (relay seeds 1..N)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rates", default=",".join(str(r) for r in RATES), help="comma list of shares (0.001 = 0.1%%)")
    ap.add_argument("--timeout", type=float, default=10.0, help="Device timeout (seconds without a valid answer)")
    ap.add_argument("--fixed-frames", action="store_true", help="also run with full frames (no link model)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/link.md")
    a = ap.parse_args(argv)
    from edgebp.config import NetSpec, StopRule, TrainConfig
    from edgebp.data import load_dataset
    from edgebp.device import Emulator
    from edgebp.fixed import FixedNet
    ds = load_dataset("diabetes")
    spec, cfg = NetSpec.from_sizes([8, 16, 2]), TrainConfig(lr=0.2, seed=1)
    fn = FixedNet(spec, cfg)
    fn.fit(ds.X_train, ds.T_train, StopRule(epochs=a.epochs))
    ref = fn.get_int_weights()
    rates = [float(r) for r in a.rates.split(",")]
    modes = [("default", True, {}), ("frames only", True, dict(bulk=False)),
             ("window of 2", True, dict(window=2, bulk=False))] + \
        ([("full frames", False, dict(bulk=False))] if a.fixed_frames else [])
    rows = []
    load0 = os.getloadavg()[0]
    with Emulator(a.board, timeout=3600) as emu:
        # seeds outside, rates inside: each rate's runs sit next to clean runs in time, under the same load
        results = {(m, r): [] for m, _, _ in modes for r in rates}
        for seed in range(1, a.seeds + 1):
            for rate in rates:
                for mode, adaptive, kw in modes:
                    results[mode, rate].append(run_once(emu.url, rate, seed, a.epochs, adaptive, a.timeout, spec,
                                                        cfg, ds, ref, **kw))
        for mode, adaptive, _ in modes:
            for rate in rates:
                runs = results[mode, rate]
                done = [r for r in runs if r["finished"]]
                clean_runs = results[mode, 0.0] if 0.0 in rates else []
                paired = [r["sps"] / c["sps"] for r, c in zip(runs, clean_runs) if r["finished"] and c["finished"]]
                row = dict(mode=mode, rate=rate, runs=len(runs), finished=len(done),
                           paired=statistics.median(paired) if paired else None,
                           identical=sum(r["identical"] for r in runs),
                           sps=statistics.median([r["sps"] for r in done]) if done else None,
                           sps_min=min(r["sps"] for r in done) if done else None,
                           bps=statistics.median([r["bps"] for r in done]) if done else None,
                           seconds=statistics.median([r["seconds"] for r in runs]),
                           retrans=statistics.median([r["retrans"] for r in done]) if done else None,
                           frames=statistics.median([r["frames"] for r in done]) if done else None,
                           unknown=sum(r["unknown"] for r in runs),
                           error=next((r["error"] for r in runs if r["error"][:400]), ""))
                rows.append(row)
                print(f"{mode:11} {rate * 100:6.2f}%  finished {row['finished']}/{row['runs']}  identical "
                      f"{row['identical']}/{row['runs']}  samples/s {row['sps'] or 0:7.0f}  frames/run "
                      f"{row['frames'] or 0:6.0f}  retransmissions {row['retrans'] or 0:6.0f}"
                      + (f"  ({row['error']})" if row["error"] else ""), flush=True)
    clean = {r["mode"]: r["sps"] for r in rows if r["rate"] == 0}
    best = max((v for v in clean.values() if v), default=None)
    lines = [f"Measured by `python3 tools/bench/link.py --seeds {a.seeds}"
             f"{' --fixed-frames' if a.fixed_frames else ''}` on {a.board} (diabetes 8-16-2, online SGD, "
             f"{a.epochs} epochs, {len(ds.X_train)} samples per epoch; {time.strftime('%Y-%m-%d')}, load average "
             f"{load0:.1f} before and {os.getloadavg()[0]:.1f} after on {os.cpu_count()} cores). Each rate is "
             f"the share of bytes dropped and, separately, the share with one bit flipped, in each direction "
             f"(so 1% means 2% of the bytes hit each way). samples/s: median over the runs that finished.", "",
             "| frames | dropped + flipped | finished | bit-identical | samples/s | of its clean | of the best clean | "
             "of the clean run beside it | slowest run | link bytes per sample | training frames per run | "
             "retransmissions per run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = clean.get(r["mode"])
        share = f"{r['sps'] / c:.0%}" if r["sps"] and c else "-"
        share_best = f"{r['sps'] / best:.0%}" if r["sps"] and best else "-"
        lines.append(f"| {r['mode']} | {r['rate'] * 100:g}% + {r['rate'] * 100:g}% | {r['finished']}/{r['runs']} | "
                     f"{r['identical']}/{r['runs']} | {r['sps'] or 0:.0f} | {share} | {share_best} | "
                     f"{format(r['paired'], '.0%') if r['paired'] else '-'} | "
                     f"{r['sps_min'] or 0:.0f} | {r['bps'] or 0:.1f} | {r['frames'] or 0:.0f} | "
                     f"{r['retrans'] or 0:.0f} |")
    if any(r["unknown"] for r in rows):
        lines.append("")
        lines.append(f"Samples whose loss was lost for good (their frames were applied, see above): "
                     f"{sum(r['unknown'] for r in rows)}.")
    text = "\n".join(lines)
    print()
    print(text)
    if not a.no_write:
        doc = ROOT / "docs" / "link.md"
        old = doc.read_text()
        new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), BEGIN + "\n" + text + "\n" + END, old, flags=re.S)
        doc.write_text(new)
        print(f"\nwrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
