#!/usr/bin/env python3
"""Instructions per online training step of conv1d, int8 and dense models on the emulated Cortex-M3
(QEMU mps2-an385) and Cortex-M0 (QEMU microbit), beside their training arena (issue 15), and the arena and
step saved by training only the last layers (issue 11). Counted with QEMU -icount shift=6 by
tools/model_bench/bench_model.c (the harness of tools/bench, its startup code and link script; a 256 KiB RAM
link script on the Cortex-M3 for models larger than the micro:bit's 16 KiB).

    python tools/model_bench.py            # two minutes; prints a markdown table
    python tools/model_bench.py --write    # and puts it in docs/results.md (between the model-bench markers)
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgebp import NetSpec, TrainConfig  # noqa: E402
from edgebp import bench  # noqa: E402
from edgebp.cli_model import parse_model  # noqa: E402
from edgebp.fixed import FixedNet, core_cfg  # noqa: E402

HERE = Path(__file__).resolve().parent / "model_bench"
FIELDS = ("n_out", "act", "w_frac", "a_frac", "kind", "frozen", "kernel", "stride", "w_bits")


def model(shape, text, w_bits=16, train_last=None):
    spec = NetSpec.sequential(shape, parse_model(text), in_frac=10)
    for layer in spec.layers:
        if layer.has_params:
            layer.w_bits, layer.w_frac = (8, 5) if w_bits == 8 else (16, layer.w_frac)
    return spec.with_trainable_last(train_last) if train_last else spec


BM_CONV = "conv1d(8,5,stride=2,act=relu),maxpool1d(2),conv1d(16,3,act=relu),gap,dense(4,act=softmax)"
MODELS = [
    ("BasicMotions conv1d", model((6, 100), BM_CONV)),
    ("BasicMotions conv1d, int8 weights", model((6, 100), BM_CONV, w_bits=8)),
    ("BasicMotions MLP 600-32-4", model((6, 100), "dense(32,act=relu),dense(4,act=softmax)")),
    ("GunPoint conv1d", model((1, 150), "conv1d(8,7,stride=2,act=relu),maxpool1d(2),dense(2,act=softmax)")),
    ("GunPoint MLP 150-32-2", model((1, 150), "dense(32,act=relu),dense(2,act=softmax)")),
    ("8-16-16-2 sigmoid, all layers", NetSpec.from_sizes([8, 16, 16, 2], "sigmoid", "mse")),
    ("8-16-16-2 sigmoid, last layer only", NetSpec.from_sizes([8, 16, 16, 2], "sigmoid", "mse").with_trainable_last(1)),
]


def header(spec: NetSpec, cfg: TrainConfig) -> str:
    c = core_cfg(spec, cfg)
    lr_m, lr_e = cfg.quantized_lr()
    lines = ["#include <stdint.h>", f"#define N_IN {spec.n_in}", f"#define N_OUT {spec.n_out}",
             f"#define IN_FRAC {spec.in_frac}", f"#define OUT_FRAC {spec.layers[-1].a_frac}",
             f"#define ARENA_BYTES {FixedNet(spec, cfg).memory_report()['total']}",
             f"#define LR_M {lr_m}u", f"#define LR_E ({lr_e})",
             "static void make_cfg(ebp_cfg_t *c) {", "    uint32_t i;",
             "    for (i = 0; i < sizeof *c; i++) ((uint8_t *)c)[i] = 0;"]
    for f in ("n_in", "in_frac", "n_layers", "loss", "optimizer", "rounding", "flags", "in_ch"):
        lines.append(f"    c->{f} = {getattr(c, f)};")
    for i in range(c.n_layers):
        for f in FIELDS:
            lines.append(f"    c->layers[{i}].{f} = {getattr(c.layers[i], f)};")
    return "\n".join(lines + ["}", ""])


def build_and_run(work: Path, h: "bench.Harness", spec: NetSpec, cfg: TrainConfig, mcu: str, what: str,
                  csrc: Path = ROOT / "csrc", flags=(), link: Optional[Path] = None) -> dict:
    """Builds bench_model.c for ``spec`` trained with ``cfg`` (its model_cfg.h, ``header``) and the core in
    ``csrc`` for ``mcu`` (``flags``: extra compiler flags; ``link``: a link script, default the harness's 16 KiB
    one), runs it in QEMU and returns the harness's key=value results (steps, step_ticks, fwd_ticks,
    arena_bytes), the arena checked against FixedNet's. ``what`` names the measurement in errors. Shared with
    tools/step_bench/mcu.py."""
    d = Path(tempfile.mkdtemp(dir=work))
    (d / "model_cfg.h").write_text(header(spec, cfg))
    m = bench.MCUS[mcu]
    elf = d / "bench.elf"
    cmd = ["arm-none-eabi-gcc", f"-mcpu={m['cpu']}", "-mthumb", bench.OPT, "-g", "-std=c99", "-ffreestanding",
           "-fno-tree-loop-distribute-patterns", *flags, f"-I{csrc}", f"-I{d}", "-nostdlib", "-nostartfiles",
           "-T", str(link or bench.HARNESS / "link.ld"), str(bench.HARNESS / "startup.c"), str(HERE / "bench_model.c"),
           *[str(s) for s in sorted(Path(csrc).glob("*.c"))], "-lgcc", "-o", str(elf)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"build failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    kv, other = h.run(mcu, elf, timeout=600)
    if "step_ticks" not in kv:
        raise SystemExit(f"{what} on {mcu}: no result ({kv}, {other[-3:]})")
    assert kv["arena_bytes"] == FixedNet(spec, cfg).memory_report()["total"]
    return kv


def per_step(kv: dict, key: str, mcu: str) -> float:
    """Instructions per training step of the harness's tick counter ``key`` (step_ticks, fwd_ticks)."""
    return bench.ticks_to_instructions(kv[key] / kv["steps"], bench.MCUS[mcu]["clock"])


def measure(work: Path, h: "bench.Harness", label: str, spec: NetSpec, mcu: str):
    cfg = TrainConfig(lr=0.05, batch_size=1, rounding="stochastic", online_only=True)
    arena = FixedNet(spec, cfg).memory_report()["total"]
    big = arena + 2 * 2 * (spec.n_in + spec.n_out) > 12 * 1024
    if big and mcu == "cortex-m0":
        return arena, None, None          # does not fit the micro:bit's 16 KiB
    kv = build_and_run(work, h, spec, cfg, mcu, label, link=HERE / "link_big.ld" if big else None)
    return arena, per_step(kv, "step_ticks", mcu), per_step(kv, "fwd_ticks", mcu)


BEGIN, END = "<!-- model-bench:begin -->", "<!-- model-bench:end -->"


def main() -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="update docs/results.md too")
    args = ap.parse_args()
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        raise SystemExit("needs arm-none-eabi-gcc and qemu-system-arm (tools/setup.sh)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        h = bench.Harness(Path(tmp))
        for label, spec in MODELS:
            r = {"label": label}
            for mcu in ("cortex-m3", "cortex-m0"):
                r["arena"], r[mcu], r[mcu + "_fwd"] = measure(Path(tmp), h, label, spec, mcu)
            rows.append(r)
    f = lambda v: "does not fit" if v is None else f"{v:,.0f}"  # noqa: E731
    lines = ["| model | training arena (B, online) | Cortex-M3 instructions per step | Cortex-M3 forward | "
             "Cortex-M0 instructions per step | Cortex-M0 forward |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['arena']:,} | {f(r['cortex-m3'])} | {f(r['cortex-m3_fwd'])} | "
                     f"{f(r['cortex-m0'])} | {f(r['cortex-m0_fwd'])} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        doc = (f"{BEGIN}\n## Instructions per training step: conv1d, int8, MLP, frozen layers (issues 15 and 11)\n\n"
               "Generated by `python tools/model_bench.py --write` (do not edit by hand): one online SGD step "
               "(`ebp_train`, batch 1, the least-RAM layout) and one forward pass, counted with QEMU `-icount` on "
               "the emulated Cortex-M3 (mps2-an385) and Cortex-M0 (micro:bit), the C core built with "
               "`arm-none-eabi-gcc -O2`. The BasicMotions MLP needs 40 KB and fits neither the micro:bit nor "
               "the 16 KiB harness (measured on the Cortex-M3 with a 256 KiB RAM link script). The conv1d "
               "layers run plain loops (one multiply-accumulate per weight and position, no unrolling yet), "
               "which is why a conv1d step costs more instructions than the MLP's despite fewer weights. The "
               "last rows train 8-16-16-2 in full and with only its last layer (`spec.with_trainable_last(1)`): "
               "the frozen layers run forward only.\n\n" + table + f"\n{END}")
        from results_table import write_section
        write_section(doc, BEGIN, END)


if __name__ == "__main__":
    main()
