#!/usr/bin/env python3
"""Instructions per 8-16-2 online training step on the emulated Cortex-M3, M4 and M0 (QEMU -icount, the harness of
tools/model_bench.py: He-initialised weights, inputs in [-1, 1]), round to nearest vs stochastic rounding, both
layouts, the default kernel build (EBP_STATS=1) and the counters compiled out (EBP_STATS=0).

    python tools/step_bench/mcu.py                 # the core in csrc/
    python tools/step_bench/mcu.py --rev HEAD~1    # the core of another commit (git archive of its csrc/)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edgebp import NetSpec, TrainConfig, bench  # noqa: E402
import model_bench  # noqa: E402


MCUS = ("cortex-m3", "cortex-m4", "cortex-m0")


def measure(work: Path, h, csrc: Path, cfg: TrainConfig, mcu: str, flags=()) -> float:
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse")
    kv = model_bench.build_and_run(work, h, spec, cfg, mcu, "8-16-2", csrc=csrc, flags=flags)
    return model_bench.per_step(kv, "step_ticks", mcu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rev", help="measure the csrc/ of this git revision")
    args = ap.parse_args()
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        raise SystemExit("needs arm-none-eabi-gcc and qemu-system-arm (tools/setup.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csrc = ROOT / "csrc"
        if args.rev:
            subprocess.run(f"git archive {args.rev} csrc | tar -x -C {tmp}", shell=True, cwd=ROOT, check=True)
            csrc = work / "csrc"
        h = bench.Harness(work)
        print(f"| 8-16-2 sigmoid online SGD lr 0.2 ({args.rev or 'working tree'}) | rounding | core build | "
              + " | ".join(f"{bench.MCUS[m]['label'].split(' (')[0]} instructions per step" for m in MCUS) + " |")
        print("|---|---|---|" + "---:|" * len(MCUS))
        for online_only in (True, False):
            for rounding in ("nearest", "stochastic"):
                for stats in (1, 0):
                    cfg = TrainConfig(lr=0.2, batch_size=1, rounding=rounding, online_only=online_only)
                    r = [measure(work, h, csrc, cfg, mcu, [f"-DEBP_STATS={stats}"]) for mcu in MCUS]
                    print(f"| {'online_only (default)' if online_only else 'gradient memory'} | {rounding} | "
                          f"EBP_STATS={stats} | " + " | ".join(f"{v:,.0f}" for v in r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
