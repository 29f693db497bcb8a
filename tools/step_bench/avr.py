#!/usr/bin/env python3
"""Cycles per 8-16-2 online training step on an ATmega328P at 16 MHz in simavr (cycle-accurate): edgebp's core
against genann's algorithm on the same chip, with cycles per multiply-accumulate and the plain int16 MAC loop's
floor, and the share of the step each phase of the core takes.

    python tools/step_bench/avr.py            # prints a markdown table (make bench-avr)
    python tools/step_bench/avr.py --json     # the measure() dict

The harness is tools/step_bench/avr_bench.c (one binary per variant), run by the firmware's simavr runner
(firmware/ports/simavr-atmega328p/simavr_run.c, built here with the host's cc and libsimavr). The core is built
as the firmware builds it (avr-gcc -Os with the board's SIZE_FLAGS and CORE_FEATURES from its board.mk,
EBP_MAX_LAYERS=2, an EBP_FLAG_ONLINE network as `edgebp device train` loads it), and once more with every
feature and the fast update rows at plain -Os (the core before the firmware was cut to the Uno's 32 KiB), for the
speed the size levers cost. The core at -O2 does not fit the Uno's flash (see firmware/README.md, AVR).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent.parent
HARNESS = Path(__file__).resolve().parent / "avr_bench.c"
RUNNER = ROOT / "firmware" / "ports" / "simavr-atmega328p" / "simavr_run.c"
CSRC = ROOT / "csrc"
MCU, F_CPU, FLASH_KIB = "atmega328p", 16_000_000, 32      # the part's own flash
OPT = "-Os"
STEPS = 16
SIZES = (8, 16, 2)
TARGET_RATIO = 10.0          # issue 14: at least 10x fewer cycles per step than genann on the same chip

CFLAGS = [f"-mmcu={MCU}", f"-DF_CPU={F_CPU}UL", "-std=c99", "-ffunction-sections", "-fdata-sections",
          "-DEBP_MAX_LAYERS=2", f"-DSTEPS={STEPS}"]
LDFLAGS = ["-Wl,--gc-sections", "-Wl,--section-start=.mmcu=0x910000"]
FULL_FLASH_KIB = 64      # the core with every feature (~42 KB) needs more flash than the part: simulated only


class AvrBenchError(RuntimeError):
    pass


BOARD_MK = ROOT / "firmware" / "ports" / "simavr-atmega328p" / "board.mk"


def board_flags(names=("SIZE_FLAGS", "CORE_FEATURES")) -> List[str]:
    """The simavr-atmega328p board's compiler flags from its board.mk (code-size flags, the core's feature
    switches), so that the benchmark and tests/test_avr_core.py build the core as the firmware does."""
    text = BOARD_MK.read_text().replace("\\\n", " ")
    out: List[str] = []
    for name in names:
        m = re.search(rf"^{name}\s*:?=(.*)$", text, re.M)
        if m is None:
            raise AvrBenchError(f"{BOARD_MK} has no {name}")
        out += m.group(1).split()
    return out


def macs_per_step(n_in: int, n_hid: int, n_out: int) -> int:
    """As edgebp.bench.macs_per_step (docs/benchmarks.md): forward, back-propagation to the hidden layer, the
    update of every weight (biases not counted)."""
    w = n_in * n_hid + n_hid * n_out
    return 2 * w + n_hid * n_out


def missing_tools() -> Optional[str]:
    for t in ("avr-gcc", "cc"):
        if shutil.which(t) is None:
            return f"{t} not found (tools/setup.sh installs it)"
    if not any(Path(d, "simavr", "sim_avr.h").is_file() for d in ("/usr/include", "/usr/local/include")):
        return "libsimavr-dev not installed (tools/setup.sh installs it)"
    return None


def _run(cmd: List[str], what: str, timeout: float = 300) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode:
        raise AvrBenchError(f"{what} failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-1500:]}{p.stderr[-1500:]}")
    return p.stdout


def build_runner(work: Path) -> Path:
    exe = work / "simavr-run"
    _run(["cc", "-O2", "-std=c99", "-o", str(exe), str(RUNNER), "-lsimavr"], "building simavr-run")
    return exe


def build(work: Path, name: str, defs: List[str], opt: str = OPT, commands: Optional[List[str]] = None,
          flash_kib: int = FLASH_KIB) -> Path:
    elf = work / f"{name}.elf"
    if "-DBENCH_GENANN" in defs or "-DBENCH_MAC" in defs:
        srcs, libs = [str(HARNESS)], ["-lm"]
    elif "-DBENCH_PHASES" in defs:          # separate files: the kernels' internal functions are external
        srcs, libs = [str(HARNESS)] + [str(p) for p in sorted((CSRC / "core").glob("*.c"))], []
    else:
        srcs, libs = [str(HARNESS), str(CSRC / "edgebp.c")], []
    cmd = ["avr-gcc", *CFLAGS, opt, *defs, f"-I{CSRC}", *srcs, *LDFLAGS,
           f"-Wl,--defsym=__TEXT_REGION_LENGTH__={flash_kib * 1024}", *libs, "-o", str(elf)]
    _run(cmd, f"building {name}")
    if commands is not None:
        commands.append(" ".join(c.replace(str(ROOT) + "/", "") for c in cmd))
    return elf


def run(runner: Path, elf: Path, flash_kib: int = FLASH_KIB) -> Dict[str, int]:
    out = _run([str(runner), "--mcu", MCU, "--freq", str(F_CPU), "--flash-kib", str(flash_kib), "--stdio",
                "--max-cycles", str(2_000_000_000), str(elf)], f"simulating {elf.name}")
    kv = {}
    for line in out.splitlines():
        k, sep, v = line.strip().partition("=")
        if sep and v.isdigit():
            kv[k] = int(v)
    if "error" in kv:
        raise AvrBenchError(f"{elf.name} reports error {kv['error']}")
    return kv


def measure(commands: Optional[List[str]] = None) -> dict:
    """Cycles per step (and per forward pass, per MAC) on the simulated ATmega328P; the coordinator's
    ``edgebp bench`` can call this. Raises AvrBenchError when a tool is missing or a run fails."""
    why = missing_tools()
    if why:
        raise AvrBenchError(why)
    macs = macs_per_step(*SIZES)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runner = build_runner(work)
        r: dict = dict(chip=f"{MCU} {F_CPU // 1_000_000} MHz (simavr, cycle-accurate)", net="8-16-2", macs=macs,
                       steps=STEPS, opt=OPT)
        bf = board_flags()
        r["board_flags"] = " ".join(bf)
        big = FULL_FLASH_KIB
        kv = run(runner, build(work, "core_full", [], commands=commands, flash_kib=big), big)
        r["core_step_full"] = kv["step_cycles"] / kv["steps"]
        kv = run(runner, build(work, "core_rn_full", ["-DBENCH_NEAREST"], commands=commands, flash_kib=big), big)
        r["core_step_nearest_full"] = kv["step_cycles"] / kv["steps"]
        kv = run(runner, build(work, "core_sr", bf, commands=commands))
        r["core_step"] = kv["step_cycles"] / kv["steps"]
        r["core_fwd"] = kv["fwd_cycles"] / kv["steps"]
        r["arena_bytes"] = kv["arena_bytes"]
        kv = run(runner, build(work, "core_rn", bf + ["-DBENCH_NEAREST"], commands=commands))
        r["core_step_nearest"] = kv["step_cycles"] / kv["steps"]
        kv = run(runner, build(work, "phases", bf + ["-DBENCH_PHASES"], commands=commands))
        total = kv["step_cycles"]
        r["phases"] = {k: kv[f"{k}_cycles"] / total for k in ("fwd", "delta", "update0", "update1")}
        r["phases_step"] = total / kv["steps"]
        kv = run(runner, build(work, "genann", ["-DBENCH_GENANN"], commands=commands))
        if kv.get("double_bytes") != 4:
            raise AvrBenchError(f"genann's double should be 4 bytes on AVR, is {kv.get('double_bytes')}")
        r["genann_step"] = kv["step_cycles"] / kv["steps"]
        r["genann_fwd"] = kv["fwd_cycles"] / kv["steps"]
        kv = run(runner, build(work, "mac", ["-DBENCH_MAC"], commands=commands))
        r["mac32"] = kv["mac32_cycles"] / kv["macs"]
        r["mac64"] = kv["mac64_cycles"] / kv["macs"]
    r["core_per_mac"] = r["core_step"] / macs
    r["genann_per_mac"] = r["genann_step"] / macs
    r["ratio"] = r["genann_step"] / r["core_step"]
    # the best any C core could do with avr-gcc's own int16 x int16 -> int32 MAC loop: every MAC at that floor
    r["floor_step"] = macs * r["mac32"]
    r["floor_ratio"] = r["genann_step"] / r["floor_step"]
    r["target_ratio"] = TARGET_RATIO
    r["target_met"] = r["ratio"] >= TARGET_RATIO
    return r


def table(r: dict) -> str:
    f = lambda v, nd=0: f"{v:,.{nd}f}"  # noqa: E731
    ph = r["phases"]
    L = [f"| ATmega328P, 16 MHz, simavr ({r['net']}, online SGD, batch 1) | cycles/step | cycles/forward "
         f"| cycles/MAC ({r['macs']} MACs) | genann / this |",
         "|---|---:|---:|---:|---:|",
         f"| edgebp core as the Uno firmware builds it, stochastic rounding (default), avr-gcc {r['opt']} + board "
         f"flags | {f(r['core_step'])} | {f(r['core_fwd'])} | {f(r['core_per_mac'], 1)} | {f(r['ratio'], 2)}x |",
         f"| the same, round to nearest | {f(r['core_step_nearest'])} | {f(r['core_fwd'])} | "
         f"{f(r['core_step_nearest'] / r['macs'], 1)} | {f(r['genann_step'] / r['core_step_nearest'], 2)}x |",
         f"| edgebp core with every feature and the fast rows, stochastic rounding, avr-gcc {r['opt']} only "
         f"({FULL_FLASH_KIB} KiB of simulated flash: it does not fit the 328P's {FLASH_KIB}) | "
         f"{f(r['core_step_full'])} | | {f(r['core_step_full'] / r['macs'], 1)} | "
         f"{f(r['genann_step'] / r['core_step_full'], 2)}x |",
         f"| the same, round to nearest | {f(r['core_step_nearest_full'])} | | "
         f"{f(r['core_step_nearest_full'] / r['macs'], 1)} | {f(r['genann_step'] / r['core_step_nearest_full'], 2)}x |",
         f"| genann's algorithm, 32-bit float, exp() sigmoid, avr-gcc {r['opt']} | {f(r['genann_step'])} | "
         f"{f(r['genann_fwd'])} | {f(r['genann_per_mac'], 1)} | 1.00x |",
         f"| plain loop: int16 x int16 into int32 (the floor) | | | {f(r['mac32'], 1)} | |",
         f"| plain loop: int16 x int16 into int64 (the core's accumulator) | | | {f(r['mac64'], 1)} | |",
         "",
         f"Share of the core's step (stochastic rounding, {f(r['phases_step'])} cycles when built from the separate "
         f"files): forward {ph['fwd']:.0%}, deltas {ph['delta']:.0%}, update of the hidden layer "
         f"{ph['update0']:.0%}, update of the output layer {ph['update1']:.0%}.",
         "",
         f"Target (issue 14): genann / edgebp >= {r['target_ratio']:g}x: "
         + ("met." if r["target_met"] else f"NOT met ({r['ratio']:.2f}x).")
         + f" Bound for C: {r['macs']} MACs at the plain int32 loop's {r['mac32']:.1f} cycles are "
           f"{f(r['floor_step'])} cycles, genann / that = {r['floor_ratio']:.1f}x: 10x needs hand-written AVR "
           "multiply-accumulates (MUL is 8 x 8 bits), not only a leaner C kernel.",
         "",
         "Notes: cycles from Timer1 at the CPU clock in simavr, which is cycle-accurate; each call timed alone, "
         f"{r['steps']} steps after {r['steps']} warm-up steps, the empty measurement subtracted. The core is built "
         f"as the firmware builds it (-Os and the board.mk flags: {r['board_flags']}; EBP_MAX_LAYERS=2; an "
         "EBP_FLAG_ONLINE network of 444 bytes; EBP_STATS as the core defines it). genann's algorithm is written in tools/step_bench/avr_bench.c (no genann "
         "source copied): float weights (avr-gcc's double is 32-bit), sigmoid 1/(1+exp(-a)) with avr-libc's exp() "
         "(genann's uncached sigmoid: its 4096-entry cache does not fit 2 KiB), bias weight first with input -1, "
         "genann_train's order (output deltas, hidden deltas, output weights, hidden weights). "
         f"MACs per step: forward + back-propagation to the hidden layer + weight updates = {r['macs']}. "
         f"The simulated chip has the 328P's own {FLASH_KIB} KiB of flash."]
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print the measure() dict as JSON")
    ap.add_argument("--commands", action="store_true", help="also print the build commands")
    a = ap.parse_args(argv)
    commands: List[str] = []
    try:
        r = measure(commands)
    except AvrBenchError as e:
        print(f"avr bench: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(r, indent=1))
    else:
        print(table(r))
    if a.commands:
        print("\nBuild commands:\n" + "\n".join(f"    {c}" for c in commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
