#!/usr/bin/env python3
"""Flash of the simavr-atmega328p firmware with its code-size levers applied one by one (cumulatively), as a
markdown table: how the firmware came down from ~63 KB to the Arduino Uno's 32,256 bytes (32 KiB less a
512-byte Optiboot). Each row rebuilds firmware/build/simavr-atmega328p with make (-j2) and the board.mk variables
overridden; the intermediate builds get a 64 KiB linker region (they do not fit the part). The last row is the
board as committed. Takes about a minute.

    python3 firmware/ports/simavr-atmega328p/size_levers.py
"""
import subprocess
import sys
from pathlib import Path

FW = Path(__file__).resolve().parent.parent.parent
BOARD = "simavr-atmega328p"
LIMIT = 32 * 1024 - 512
APP0 = "-DEBP_APP_MAX_BODY=128 -DEBP_MAX_LAYERS=2 -DEBP_APP_STAGE=0"

# (what, SIZE_FLAGS, CORE_FEATURES, APP_FEATURES); each row adds to the one before it
LEVERS = [
    ("before (-Os, -ffunction-sections, --gc-sections; helpers inline)", "", "-DEBP_FIXED_INLINE=1", APP0),
    ("+ 64-bit and a few other helpers out of line on AVR (ebp_fixed.h)", "", "", APP0),
    ("+ -mcall-prologues", "-mcall-prologues", "", APP0),
    ("+ -mrelax", "-mcall-prologues -mrelax", "", APP0),
    ("+ -mstrict-X -fno-tree-scev-cprop -fno-move-loop-invariants", "=", "", APP0),
    ("+ EBP_CONV=0 (conv1d, pooling)", "=", "-DEBP_CONV=0", APP0),
    ("+ EBP_INT8=0", "=", "-DEBP_CONV=0 -DEBP_INT8=0", APP0),
    ("+ EBP_GRAD_MEMORY=0 (batches, momentum)", "=", "-DEBP_CONV=0 -DEBP_INT8=0 -DEBP_GRAD_MEMORY=0", APP0),
    ("+ EBP_FIXED_DELTA=0", "=", "+ -DEBP_FIXED_DELTA=0", APP0),
    ("+ EBP_FAST_ROWS=0 (the portable update loop)", "=", "+ -DEBP_FAST_ROWS=0", APP0),
    ("+ EBP_APP_UPLOAD=0, EBP_APP_STATE=0", "=", "+", APP0 + " -DEBP_APP_UPLOAD=0 -DEBP_APP_STATE=0"),
    ("+ EBP_APP_CKPT_DAMAGE=0 (test hook)", "=", "+", "+ -DEBP_APP_CKPT_DAMAGE=0"),
    ("+ EBP_INIT_FAN=0 (Xavier/He init)", "=", "+ -DEBP_INIT_FAN=0", "+"),
    ("+ EBP_SOFTMAX=0 (softmax and its exp table)", "=", "+ -DEBP_SOFTMAX=0", "+"),
    ("+ EBP_CE=0 (cross-entropy and its log table)", "=", "+ -DEBP_CE=0", "+"),
    ("+ the weight upload back (EBP_APP_UPLOAD=1) = the board as committed", "=", "+",
     APP0 + " -DEBP_APP_STATE=0 -DEBP_APP_CKPT_DAMAGE=0"),
]
FULL_SIZE = "-mcall-prologues -mrelax -mstrict-X -fno-tree-scev-cprop -fno-move-loop-invariants"


def flash(size_flags: str, core: str, app: str) -> int:
    subprocess.run(["make", "-C", str(FW), f"BOARD={BOARD}", "clean"], check=True, capture_output=True)
    p = subprocess.run(["make", "-C", str(FW), f"BOARD={BOARD}", "-j2", f"SIZE_FLAGS={size_flags}",
                        f"CORE_FEATURES={core}", f"APP_FEATURES={app}",
                        "BOARD_LDFLAGS=-Wl,--defsym=__TEXT_REGION_LENGTH__=65536", "FLASH_LIMIT="],
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"build failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    out = subprocess.run(["avr-size", str(FW / "build" / BOARD / "edgebp.elf")], check=True, capture_output=True,
                         text=True).stdout.splitlines()[1].split()
    return int(out[0]) + int(out[1])       # text + data: what the flash holds


def main() -> int:
    rows, size, core, app, prev = [], "", "", "", None
    for what, s, c, a in LEVERS:
        size = FULL_SIZE if s == "=" else s
        core = (core + c[1:]).strip() if c.startswith("+") else c
        app = (app + a[1:]).strip() if a.startswith("+") else a
        n = flash(size, core, app)
        rows.append((what, n, None if prev is None else n - prev))
        prev = n
    subprocess.run(["make", "-C", str(FW), f"BOARD={BOARD}", "clean"], check=True, capture_output=True)
    print(f"| lever (cumulative) | flash bytes (text + data) | change | fits {LIMIT:,}? |")
    print("|---|---:|---:|---|")
    for what, n, d in rows:
        print(f"| {what} | {n:,} | {'' if d is None else f'{d:+,}'} | {'yes' if n <= LIMIT else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
