#!/usr/bin/env python3
"""x86 instructions per 8-16-2 online training step of the C core, round to nearest vs stochastic rounding,
counted by callgrind the way edgebp/bench.py counts them (cc -O3 -std=c99, the amalgamation csrc/edgebp.c; the
difference of two runs divided by the extra steps, so start-up costs cancel).

    python tools/step_bench/run.py [--net 8,16,2] [--steps 200,1200]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def count(exe: Path, out: Path, steps: int, net, layout: str, rounding: str) -> int:
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), str(steps), *map(str, net),
           layout, rounding]
    p = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"Collected\s*:\s*(\d+)", p.stderr)
    if p.returncode != 0 or not m:
        raise SystemExit(f"callgrind failed: {' '.join(cmd)}\n{p.stderr[-1000:]}")
    return int(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="8,16,2")
    ap.add_argument("--steps", default="200,1200")
    args = ap.parse_args()
    net = [int(v) for v in args.net.split(",")]
    s0, s1 = (int(v) for v in args.steps.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "bench_step"
        cmd = ["cc", "-O3", "-std=c99", "-Icsrc", "tools/bench/bench_step.c", "csrc/edgebp.c", "-o", str(exe)]
        subprocess.run(cmd, cwd=ROOT, check=True)
        print(" ".join(cmd))
        print(f"| {'-'.join(map(str, net))} online SGD, x86 instructions per step | round to nearest | stochastic |")
        print("|---|---:|---:|")
        for layout in ("grad", "online"):
            row = []
            for rounding in ("rn", "sr"):
                c = [count(exe, Path(tmp) / f"cg.{s}", s, net, layout, rounding) for s in (s0, s1)]
                row.append((c[1] - c[0]) / (s1 - s0))
            name = "gradient memory (core flags 0)" if layout == "grad" else "EBP_FLAG_ONLINE (online_only)"
            print(f"| {name} | {row[0]:,.0f} | {row[1]:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
