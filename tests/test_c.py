"""The C core on its own: strict warnings, sanitizers, integer-only object code, no drifted tables."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wconversion", "-Werror"]
# What the core may call: the compiler's own runtime (64-bit and division helpers) and struct copies.
ALLOWED_UNDEFINED = {"memset", "memcpy"}


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_c_suite_under_asan_and_ubsan(tmp_path):
    exe = tmp_path / "test_core"
    run(["gcc", *STRICT, "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-fno-omit-frame-pointer", f"-I{CSRC}", ROOT / "tests/c/test_core.c", CSRC / "edgebp.c", "-o", exe])
    out = run([exe])
    last = out.strip().splitlines()[-1]
    assert last.endswith(", 0 failed") and int(last.split()[0]) > 1000, out


def test_c_suite_with_the_core_built_file_by_file(tmp_path):
    """csrc/core/*.c compile on their own too (EBP_INTERNAL functions external): the same C suite passes."""
    exe = tmp_path / "test_core_split"
    run(["gcc", *STRICT, "-O1", f"-I{CSRC}", ROOT / "tests/c/test_core.c", *sorted((CSRC / "core").glob("*.c")),
         "-o", exe])
    out = run([exe])
    assert out.strip().splitlines()[-1].endswith(", 0 failed"), out


@pytest.mark.parametrize("flags", [[], ["-DEBP_NO_CLZ"]], ids=["clz", "portable"])
def test_bit_length_both_implementations(tmp_path, flags):
    exe = tmp_path / "test_bit_length"
    run(["gcc", *STRICT, *flags, "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         f"-I{CSRC}", ROOT / "tests/c/test_bit_length.c", "-o", exe])
    out = run([exe])
    assert out.strip().endswith(", 0 failed") and int(out.split()[0]) > 100000, out


def undefined_symbols(obj):
    return {line.split()[-1] for line in run(["nm", "-u", obj]).splitlines() if line.strip()}


def test_core_object_calls_nothing_but_memset_and_memcpy(tmp_path):
    obj = tmp_path / "edgebp.o"
    run(["gcc", *STRICT, "-O2", "-c", CSRC / "edgebp.c", "-o", obj])
    assert undefined_symbols(obj) <= ALLOWED_UNDEFINED


def test_kernel_builds_train_the_same_integers_on_the_host(tmp_path):
    """The host's kernel variants (csrc/arch/ebp_arch.h: EBP_STATS=0's update rows, EBP_WIDE_MUL=0's 32-bit
    stochastic row, EBP_PORTABLE=1 without the x86 kernels) train 300 random online networks to the default build's weights, biases and generator state,
    each under ASan and UBSan."""
    outs = {}
    for name, flags in {"default": [], "EBP_STATS=0": ["-DEBP_STATS=0"], "EBP_WIDE_MUL=0": ["-DEBP_WIDE_MUL=0"],
                        "both": ["-DEBP_STATS=0", "-DEBP_WIDE_MUL=0"], "EBP_PORTABLE=1": ["-DEBP_PORTABLE=1"],
                        "portable, EBP_STATS=0": ["-DEBP_PORTABLE=1", "-DEBP_STATS=0"]}.items():
        exe = tmp_path / f"train_dump_{len(outs)}"
        run(["gcc", *STRICT, *flags, "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
             f"-I{CSRC}", ROOT / "tests/c/train_dump.c", CSRC / "edgebp.c", "-o", exe])
        outs[name] = run([exe, "1", "300"])
    lines = outs["default"].splitlines()
    assert len(lines) == 300 and not [l for l in lines if "refused" in l or "failed" in l]
    for name, out in outs.items():
        assert out == outs["default"], name


def test_host_arch_kernels_match_the_portable_ones_on_edge_cases(tmp_path):
    """The host's architecture kernels (EBP_X86_SSE2 on x86-64: csrc/arch/ebp_arch_x86.h) against -DEBP_PORTABLE=1,
    under ASan and UBSan: 300 ordinary and 300 harsh random online networks (train_dump's `edge`: signed inputs over
    the whole int16 range, weights near +-32767, shifts down to 1 and |dl| >= 2^S, up to 40 inputs and neurons)
    give the same weights, biases, generator state and every layer's counters."""
    outs = {}
    for name, flags in {"default": [], "portable": ["-DEBP_PORTABLE=1"]}.items():
        exe = tmp_path / f"train_dump_{name}"
        run(["gcc", *STRICT, *flags, "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
             f"-I{CSRC}", ROOT / "tests/c/train_dump.c", CSRC / "edgebp.c", "-o", exe])
        outs[name] = run([exe, "5", "300", "stats"]) + run([exe, "6", "300", "edge", "stats"])
    lines = outs["portable"].splitlines()
    assert len(lines) == 600 and not [l for l in lines if "refused" in l or "failed" in l]
    saturated = [l for l in lines if re.search(r" param [1-9]", l)]
    assert len(saturated) > 20  # the edge cases do clip weights (the counters are compared too)
    assert outs["default"] == outs["portable"]


@pytest.mark.parametrize("flags", [[], ["-DEBP_STATS=0"], ["-DEBP_PORTABLE=1"]], ids=["default", "nostats", "portable"])
@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m3", "cortex-m4"])
def test_core_builds_for_cortex_m_without_float(tmp_path, cpu, flags):
    need_tools("arm-none-eabi-gcc")
    obj = tmp_path / "edgebp.o"
    run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", "-Os", *STRICT, *flags, "-c",
         CSRC / "edgebp.c", "-o", obj])
    syms = undefined_symbols(obj)
    runtime = {s for s in syms if s.startswith(("__aeabi_", "__gnu_thumb1"))}
    assert syms - runtime <= ALLOWED_UNDEFINED
    # no soft-float helper: __aeabi_f* / __aeabi_d* (add, mul, div, conversions) would mean float code
    assert not [s for s in runtime if s.startswith(("__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_i2d",
                                                     "__aeabi_l2f", "__aeabi_l2d", "__aeabi_ui2"))], runtime


def test_tables_are_up_to_date():
    run([sys.executable, ROOT / "tools/gen_tables.py", "--check"])
