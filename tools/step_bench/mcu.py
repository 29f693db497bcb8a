#!/usr/bin/env python3
"""Instructions per 8-16-2 online training step on the emulated Cortex-M3 and M0 (QEMU -icount, the harness of
tools/model_bench.py), round to nearest vs stochastic rounding, both layouts.

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
from edgebp.fixed import FixedNet  # noqa: E402
import model_bench  # noqa: E402


def measure(work: Path, h, csrc: Path, cfg: TrainConfig, mcu: str) -> float:
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse")
    d = Path(tempfile.mkdtemp(dir=work))
    (d / "model_cfg.h").write_text(model_bench.header(spec, cfg))
    m = bench.MCUS[mcu]
    elf = d / "bench.elf"
    cmd = ["arm-none-eabi-gcc", f"-mcpu={m['cpu']}", "-mthumb", bench.OPT, "-g", "-std=c99", "-ffreestanding",
           "-fno-tree-loop-distribute-patterns", f"-I{csrc}", f"-I{d}", "-nostdlib", "-nostartfiles",
           "-T", str(bench.HARNESS / "link.ld"), str(bench.HARNESS / "startup.c"),
           str(model_bench.HERE / "bench_model.c"), str(csrc / "edgebp.c"), "-lgcc", "-o", str(elf)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"build failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    kv, other = h.run(mcu, elf, timeout=600)
    if "step_ticks" not in kv:
        raise SystemExit(f"{mcu}: no result ({kv}, {other[-3:]})")
    assert kv["arena_bytes"] == FixedNet(spec, cfg).memory_report()["total"]
    return bench.ticks_to_instructions(kv["step_ticks"] / kv["steps"], m["clock"])


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
        print(f"| 8-16-2 sigmoid online SGD lr 0.2 ({args.rev or 'working tree'}) | rounding | Cortex-M3 "
              "instructions per step | Cortex-M0 instructions per step |")
        print("|---|---|---:|---:|")
        for online_only in (True, False):
            for rounding in ("nearest", "stochastic"):
                cfg = TrainConfig(lr=0.2, batch_size=1, rounding=rounding, online_only=online_only)
                r = [measure(work, h, csrc, cfg, mcu) for mcu in ("cortex-m3", "cortex-m0")]
                print(f"| {'online_only (default)' if online_only else 'gradient memory'} | {rounding} | "
                      f"{r[0]:,.0f} | {r[1]:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
