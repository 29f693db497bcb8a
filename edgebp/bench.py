"""Benchmarks of the edgebp core (issues 5 and 14): instructions per online training step on emulated Cortex-M3,
Cortex-M4 and Cortex-M0, host speed against the float mirror and PyTorch, memory against the analytic minimum, and training
over the emulated serial link. ``run(...)`` measures, ``markdown(...)`` writes docs/benchmarks.md; the command
line is ``edgebp bench`` (edgebp/cli_bench.py) or ``python tools/bench/run.py``.

Every number comes with the command that produced it (``result["commands"]``). Instruction counts on the boards
come from QEMU ``-icount shift=6`` (64 ns of virtual time per instruction, read from SysTick; see
tools/bench/m3/bench_m.c); they are instructions, not cycles.
"""
from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import paths

ROOT = paths.source_root()           # a checkout, or the sources an installed package carries (edgebp/_src)
BENCH_DIR = paths.source_dir("tools") / "bench"
HARNESS = BENCH_DIR / "m3"
CSRC = paths.source_dir("csrc")


def core_sources() -> List[Path]:
    """Every C file of the core (the core may be split into several files)."""
    return sorted(CSRC.glob("*.c"))

NETS: Dict[str, Tuple[int, int, int]] = {"8-16-2": (8, 16, 2), "21-16-3": (21, 16, 3), "64-32-10": (64, 32, 10)}
HOST_DATA = {"8-16-2": "diabetes", "21-16-3": "thyroid", "64-32-10": None}   # None: synthetic (seeded)

MCUS = {
    "cortex-m3": dict(machine="mps2-an385", cpu="cortex-m3", clock=25_000_000, board="qemu-mps2-an385",
                      label="Cortex-M3 (QEMU mps2-an385)"),
    "cortex-m4": dict(machine="mps2-an386", cpu="cortex-m4", clock=25_000_000, board="qemu-mps2-an386",
                      label="Cortex-M4 (QEMU mps2-an386)"),
    "cortex-m0": dict(machine="microbit", cpu="cortex-m0", clock=16_000_000, board="qemu-microbit",
                      label="Cortex-M0 (QEMU microbit)"),
}
OPT = "-O2"
HARNESS_RAM, HARNESS_STACK = 16 * 1024, 1024   # tools/bench/m3/link.ld; the harness needs < 1 KiB of stack

# Baselines quoted from /work/shared/datasets/README.md (8-16-2, Cortex-M3, QEMU, soft float).
BASELINES_M3 = {"genann (float)": 62_800, "AIfES (float32)": 138_500}
GENANN_X86_PER_STEP = 4_145        # genann's double-precision 8-16-2 step under callgrind (issue 14)

# issue 14: instructions per 8-16-2 online step in the default configuration (stochastic rounding, online_only)
STEP_TARGETS = {"cortex-m3": 4_000, "cortex-m4": 3_000, "cortex-m0": 9_000}
TARGETS = dict(m3_step=4_000, m3_per_mac=8.0, host_x86=GENANN_X86_PER_STEP, torch_ratio=500.0, ram_over_min=0.10)

# the core's kernel builds the harness measures (csrc/arch/ebp_arch.h): the default one (the architecture's
# kernels, every statistic counted: what the firmware builds), the counters compiled out, and the portable
# kernels alone (the core before the per-architecture kernels, the reference)
KERNEL_BUILDS = {"default": [], "nostats": ["-DEBP_STATS=0"], "portable": ["-DEBP_PORTABLE=1"]}
KERNEL_LABELS = {"default": "arch kernels, EBP_STATS=1 (default, firmware)", "nostats": "arch kernels, EBP_STATS=0",
                 "portable": "portable kernels (EBP_PORTABLE=1: before)"}

# the AVR board's row (simavr cycles) comes from tools/step_bench/avr.py, measured by its own tool: main() reads
# it with avr_rows() when that file exists
AVR_TOOL = ROOT / "tools" / "step_bench" / "avr.py"


class BenchError(RuntimeError):
    pass


def macs_per_step(n_in: int, n_hid: int, n_out: int) -> int:
    """Multiply-accumulates of one online step, as defined in docs/benchmarks.md: forward
    n_in*n_hid + n_hid*n_out, back-propagation of the output deltas to the hidden layer n_hid*n_out, update of
    every weight n_in*n_hid + n_hid*n_out (biases not counted)."""
    w = n_in * n_hid + n_hid * n_out
    return 2 * w + n_hid * n_out


def _q(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(c)) for c in cmd)


def _rel(p) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def have_mcu_tools() -> Optional[str]:
    """None if the cross compiler and QEMU are installed, else what is missing."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    return ", ".join(missing) or None


# --- 1. instructions per step on the boards --------------------------------------------------------------
class Harness:
    """Builds and runs tools/bench/m3/bench_m.c variants; remembers the commands it ran."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.commands: List[str] = []

    def build(self, mcu: str, sizes: Tuple[int, int, int], variant: str = "fixed", extra: Sequence[str] = ()) -> Path:
        m = MCUS[mcu]
        n_in, n_hid, n_out = sizes
        elf = self.workdir / f"bench_{mcu}_{variant}_{n_in}-{n_hid}-{n_out}.elf"
        defs = [f"-DN_IN={n_in}", f"-DN_HID={n_hid}", f"-DN_OUT={n_out}", f"-DCLOCK_HZ={m['clock']}u"]
        base, _, build = variant.partition("+")      # "lean+nostats": a variant in one of KERNEL_BUILDS
        defs += {"fixed": [], "lean": ["-DBENCH_ONLINE_ONLY"], "float": ["-DBENCH_FLOAT"], "mac": ["-DBENCH_MAC"],
                 "profile": ["-DBENCH_PROFILE"]}[base] + KERNEL_BUILDS[build or "default"]
        srcs = [HARNESS / "startup.c", HARNESS / "bench_m.c"] + (core_sources()
                                                                 if base in ("fixed", "lean", "profile") else [])
        cmd = ["arm-none-eabi-gcc", f"-mcpu={m['cpu']}", "-mthumb", OPT, "-g", "-std=c99", "-ffreestanding",
               "-fno-tree-loop-distribute-patterns", f"-I{_rel(CSRC)}", "-nostdlib", "-nostartfiles",
               "-T", _rel(HARNESS / "link.ld"), *defs, *extra, *[_rel(s) for s in srcs], "-lgcc", "-o", str(elf)]
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(f"harness build failed: {_q(cmd)}\n{p.stderr[-2000:]}")
        self.commands.append(_q(cmd).replace(str(self.workdir) + "/", "$OUT/"))
        self.check_ram(elf)
        return elf

    def check_ram(self, elf: Path) -> None:
        """Refuses a harness whose static data leaves less than HARNESS_STACK bytes of the 16 KiB for the stack
        (it would overflow the stack and hang or fault instead of measuring)."""
        p = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True)
        sizes = dict(re.findall(r"^\.(data|bss)\s+(\d+)", p.stdout, re.M))
        used = sum(int(v) for v in sizes.values())
        if p.returncode == 0 and used > HARNESS_RAM - HARNESS_STACK:
            raise BenchError(f"{elf.name}: {used} bytes of static data leave less than {HARNESS_STACK} bytes of "
                             f"stack in {HARNESS_RAM}")

    def run(self, mcu: str, elf: Path, timeout: float = 120) -> Tuple[dict, List[str]]:
        m = MCUS[mcu]
        cmd = ["qemu-system-arm", "-M", m["machine"], "-kernel", str(elf), "-display", "none", "-monitor", "none",
               "-serial", "null", "-icount", "shift=6", "-semihosting-config", "enable=on,target=native"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"QEMU timed out after {timeout} s: {_q(cmd)}") from None
        if p.returncode != 0:
            raise BenchError(f"harness exited with {p.returncode}: {_q(cmd)}\n{p.stdout[-500:]}{p.stderr[-500:]}")
        self.commands.append(_q(cmd).replace(str(self.workdir) + "/", "$OUT/"))
        kv, other = {}, []
        for line in (p.stdout + "\n" + p.stderr).splitlines():   # semihosting output goes to QEMU's stderr
            mm = re.fullmatch(r"(\w+)=(\d+)", line.strip())
            if mm:
                kv[mm.group(1)] = int(mm.group(2))
            elif line.strip():
                other.append(line.strip())
        return kv, other


def ticks_to_instructions(ticks: float, clock_hz: int) -> float:
    """SysTick runs at the core clock; with -icount shift=6 one instruction is 64 ns."""
    return ticks * 1e9 / (clock_hz * 64.0)


def step_floor(net: str, floors: dict) -> Optional[float]:
    """The plain loops' cost of a step: its forward and back-propagation multiply-accumulates at the plain int32
    loop's instructions per MAC, and every parameter's update at the plain stochastic update loop's (no
    per-neuron work: sigmoid table, rounding, block exponent; no per-row work)."""
    if "sr_update" not in floors:
        return None
    n_in, n_hid, n_out = NETS[net]
    macs = n_in * n_hid + 2 * n_hid * n_out
    params = n_in * n_hid + n_hid + n_hid * n_out + n_out
    return macs * floors["int32"] + params * floors["sr_update"]


def mcu_bench(h: Harness, mcus: Sequence[str], nets: Sequence[str], steps: int) -> dict:
    rows, floors = [], {}
    for mcu in mcus:
        clk = MCUS[mcu]["clock"]
        kv, _ = h.run(mcu, h.build(mcu, NETS["8-16-2"], "mac"))
        floors[mcu] = {"int32": ticks_to_instructions(kv["mac32_ticks"], clk) / kv["macs"],
                       "int64": ticks_to_instructions(kv["mac64_ticks"], clk) / kv["macs"],
                       "sr_update": ticks_to_instructions(kv["sr_update_ticks"], clk) / kv["macs"],
                       "draw": ticks_to_instructions(kv["draw_ticks"], clk) / kv["macs"]}
        for net in nets:
            sizes = NETS[net]
            row = dict(mcu=mcu, net=net, macs=macs_per_step(*sizes))
            for variant in ("fixed", "lean", "lean+nostats", "lean+portable", "float"):
                try:
                    kv, _ = h.run(mcu, h.build(mcu, sizes, variant, [f"-DSTEPS={steps}"]))
                except BenchError:
                    if variant != "fixed":
                        raise
                    row["fixed_step"] = row["fixed_fwd"] = None   # the default configuration does not fit RAM
                    continue
                key = variant.replace("+", "_")
                row[f"{key}_step"] = ticks_to_instructions(kv["step_ticks"], clk) / kv["steps"]
                row[f"{key}_fwd"] = ticks_to_instructions(kv["fwd_ticks"], clk) / kv["steps"]
                if variant == "fixed":
                    row["harness_arena"] = kv.get("arena_bytes")
            best = row["lean_step"]           # the default configuration: online_only, stochastic rounding
            row["per_mac"] = best / row["macs"]
            row["per_mac_nostats"] = row["lean_nostats_step"] / row["macs"]
            row["float_per_mac"] = row["float_step"] / row["macs"]
            row["speedup"] = row["float_step"] / best
            rows.append(row)
    return dict(rows=rows, floors=floors)


PHASES = [("forward", ("forward_layers", "ebp_dense_fwd_s16", "fwd_sigmoid", "fwd_tanh", "fwd_sigmoid_kernel", "dot16",
                        "dot16_c", "ebp_arm_dot16", "sigmoid_neuron", "ebp_arm_fwd_sigmoid", "ebp_x86_dot16",
                        "ebp_forward", "sigmoid_pos_q16", "ebp_exp_neg", "ebp_conv1d_fwd", "ebp_pool_fwd_s16",
                        "ebp_act_out")),
          ("loss + output/hidden deltas", ("ebp_backward_deltas", "normalize_delta", "raw_out", "raw_hidden",
                                           "ebp_dense_raw_hidden", "ebp_dense_hidden_raw", "hidden_pass",
                                           "act_deriv_q15", "act_deriv_q15_pre", "unpack_delta", "unpack_word",
                                           "ebp_x86_hidden_mag", "hidden_pack_arch", "ebp_arm_hidden_pack",
                                           "hidden_pack_arm",
                                           "rshift_rn_small", "bit_length", "ebp_loss", "ln_q16",
                                           "ebp_conv1d_back", "ebp_pool_back")),
          ("weight update", ("ebp_update_online", "update_rows_nonneg", "update_rows_nonneg_sr", "row_nonneg",
                             "row_nonneg_sr", "row_step", "fix_row", "fix_row_sr", "sub_sat16", "ebp_online_delta_slow",
                             "update_params", "ebp_conv1d_update_online", "update_rows_sr_nostats", "row_sr_nostats",
                             "ebp_arm_row_sr", "ebp_arm_asr", "ebp_arm_sat16", "ebp_arm_rows_sr_wrap",
                             "fix_row_sr_any", "ebp_arm_count_zero16", "ebp_x86_rows_sr"))]


def _addr2line(elf: Path, addrs: Sequence[int]) -> Dict[int, List[str]]:
    """Inline chain (innermost first) of function names per address."""
    if not addrs:
        return {}
    p = subprocess.run(["arm-none-eabi-addr2line", "-f", "-i", "-a", "-e", str(elf)] + [hex(a) for a in addrs],
                       capture_output=True, text=True, check=True)
    out, cur = {}, None
    lines = p.stdout.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x"):
            cur = int(line, 16)
            out[cur] = []
            i += 1
            continue
        out[cur].append(line.strip())
        i += 2     # function name, then file:line
    return out


def _symbols(elf: Path) -> List[Tuple[int, int, str]]:
    p = subprocess.run(["arm-none-eabi-nm", "-S", "--defined-only", str(elf)], capture_output=True, text=True,
                       check=True)
    syms = []
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() == "t":
            syms.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    return syms


def profile(h: Harness, mcu: str, net: str = "8-16-2", steps: int = 256, period: int = 1999,
            build: str = "default") -> dict:
    """Where a step's instructions go (the default configuration: online_only, stochastic rounding; ``build``
    one of KERNEL_BUILDS): a SysTick interrupt every ``period`` ticks samples the interrupted PC; samples inside
    libgcc helpers are charged to their caller (the stacked LR)."""
    elf = h.build(mcu, NETS[net], "profile" + ("" if build == "default" else "+" + build),
                  [f"-DSTEPS={steps}", f"-DPROFILE_PERIOD={period}u", "-DBENCH_ONLINE_ONLY"])
    _, lines = h.run(mcu, elf)
    samples, lost = [], 0
    for line in lines:
        mm = re.fullmatch(r"pc=(0x[0-9a-f]+) lr=(0x[0-9a-f]+) ret=(0x[0-9a-f]+) n=(\d+)", line)
        if mm:
            samples.append((int(mm.group(1), 16), int(mm.group(2), 16), int(mm.group(3), 16), int(mm.group(4))))
        mm = re.fullmatch(r"lost=(\d+)", line)
        if mm:
            lost = int(mm.group(1))
    syms = _symbols(elf)

    def sym_of(a):
        for lo, size, name in syms:
            if lo <= a < lo + size:
                return name
        return None

    def core(a):      # an address in compiled C (not a libgcc helper)
        s = sym_of(a & ~1)
        return s is not None and not s.startswith("__")

    addrs, resolved = set(), []
    for pc, lr, ret, n in samples:
        helper = None if core(pc) else (sym_of(pc) or "?")
        a = pc
        if helper:    # charge the helper's instructions to the C code that called it
            a = next(((c & ~1) - 2 for c in (lr, ret) if c and core(c)), pc)
        resolved.append((a, n, helper))
        addrs.add(a)
    chains = _addr2line(elf, sorted(addrs))
    totals: Dict[str, int] = {}
    funcs: Dict[str, int] = {}
    helpers: Dict[str, int] = {}
    for a, n, helper in resolved:
        chain = [c for c in chains.get(a, []) if c != "??"] or [sym_of(a) or "?"]
        phase = "other (ebp_train loop, calls)"
        for name, fns in PHASES:
            if any(f in fns for f in chain):
                phase = name
                break
        totals[phase] = totals.get(phase, 0) + n
        fn = helper or chain[0]
        funcs[fn] = funcs.get(fn, 0) + n
        if helper:
            key = f"{helper} in {phase.split(' (')[0]}"
            helpers[key] = helpers.get(key, 0) + n
    total = sum(totals.values()) or 1
    if lost > 0.01 * total:
        raise BenchError(f"profiler table overflowed: {lost} of {total + lost} samples lost")
    return dict(mcu=mcu, net=net, build=build, samples=total, lost=lost,
                phases={k: v / total for k, v in totals.items()},
                functions=dict(sorted(((k, v / total) for k, v in funcs.items()), key=lambda kv: -kv[1])[:10]),
                helpers={k: v / total for k, v in helpers.items()})


# --- 2. host --------------------------------------------------------------------------------------------
def _host_data(net: str, n: int, seed: int = 1):
    from .data import load_dataset
    n_in, _, n_out = NETS[net]
    name = HOST_DATA.get(net)
    if name:
        ds = load_dataset(name)
        X, T = ds.X_train[:n], ds.T_train[:n]
    else:
        r = np.random.default_rng(seed)
        X = r.uniform(0, 1, (n, n_in))
        T = np.eye(n_out)[r.integers(0, n_out, n)]
    return np.ascontiguousarray(X, np.float64), np.ascontiguousarray(T, np.float64), name or "synthetic"


def callgrind_per_step(workdir: Path, net: str, steps: Tuple[int, int], commands: List[str],
                       online: bool = False, nostats: bool = False) -> Optional[float]:   # stochastic rounding
    """x86 instructions per online step of the C core (tools/bench/bench_step.c, cc -O3 like the Python
    extension; ``online``: an EBP_FLAG_ONLINE network; ``nostats``: the core built -DEBP_STATS=0): difference of
    two callgrind runs divided by the extra steps. None if valgrind or cc is missing."""
    if shutil.which("valgrind") is None or shutil.which("cc") is None:
        return None
    exe = Path(workdir) / ("bench_step_nostats" if nostats else "bench_step")
    if not exe.exists():
        cmd = ["cc", "-O3", "-std=c99", *(["-DEBP_STATS=0"] if nostats else []), f"-I{_rel(CSRC)}",
               _rel(BENCH_DIR / "bench_step.c"),
               *[_rel(c) for c in core_sources()], "-o", str(exe)]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        commands.append(_q(cmd).replace(str(workdir) + "/", "$OUT/"))
    counts = []
    for s in steps:
        out = Path(workdir) / f"callgrind.{net}.{s}{'.online' if online else ''}{'.nostats' if nostats else ''}"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), str(s), *map(str, NETS[net]),
               "online" if online else "grad", "sr"]      # the default rounding: stochastic
        p = subprocess.run(cmd, capture_output=True, text=True)
        mm = re.search(r"Collected\s*:\s*(\d+)", p.stderr)
        if p.returncode != 0 or not mm:
            raise BenchError(f"callgrind failed: {_q(cmd)}\n{p.stderr[-1000:]}")
        counts.append(int(mm.group(1)))
        commands.append(_q(cmd).replace(str(workdir) + "/", "$OUT/"))
    return (counts[1] - counts[0]) / (steps[1] - steps[0])


def _best_rates(runs: Dict[str, Tuple], rounds: int) -> Dict[str, float]:
    """Steps per second of each ``name: (fn, n_steps)``: the fastest of ``rounds`` timed calls, taken in turn
    (one call of each per round), so that the ratios compare runs made under the same load of a shared
    machine."""
    best = {name: math.inf for name in runs}
    for _ in range(rounds):
        for name, (fn, _n) in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: n / best[name] for name, (_fn, n) in runs.items()}


def torch_available() -> Optional[str]:
    try:
        import torch
        return torch.__version__
    except Exception:
        return None


def host_bench(workdir: Path, nets: Sequence[str], n: int, repeat: int, callgrind_steps: Tuple[int, int],
               commands: List[str], with_torch: bool = True) -> dict:
    from .config import NetSpec, TrainConfig
    from .fixed import FixedNet
    from .mirror import FloatNet
    rows = []
    tv = torch_available() if with_torch else None
    for net in nets:
        sizes = NETS[net]
        X, T, data = _host_data(net, n)
        spec = NetSpec.from_sizes(list(sizes), "sigmoid", "mse", w_frac=12, a_frac=12)
        cfg = TrainConfig(lr=0.2, batch_size=1)
        fixed = FixedNet(spec, cfg)
        Xq, Tq = fixed.quantize_inputs(X), fixed.quantize_targets(T)
        flt = FloatNet(spec, cfg, weights=fixed.get_weights())
        row = dict(net=net, data=data, n=len(X))
        # the C epoch is sub-millisecond: time the data repeated to >= 4,096 rows so timer and call overhead vanish
        k = max(1, -(-4096 // len(Xq)))
        Xk, Tk = np.ascontiguousarray(np.tile(Xq, (k, 1))), np.ascontiguousarray(np.tile(Tq, (k, 1)))
        runs = dict(c=(lambda: fixed.train_q(Xk, Tk, 1), len(Xk)), float=(lambda: flt.train_samples(X, T, 1), len(X)))
        if tv:
            runs["torch"] = (_torch_epoch(spec, fixed.get_weights(), X, T), len(X))
        rates = _best_rates(runs, repeat)
        row["c_steps_s"], row["float_steps_s"], row["torch_steps_s"] = rates["c"], rates["float"], rates.get("torch")
        row["x86_per_step"] = callgrind_per_step(workdir, net, callgrind_steps, commands)
        row["x86_per_step_online"] = callgrind_per_step(workdir, net, callgrind_steps, commands, online=True)
        row["x86_per_step_online_nostats"] = callgrind_per_step(workdir, net, callgrind_steps, commands, online=True,
                                                                nostats=True)
        row["vs_float"] = row["c_steps_s"] / row["float_steps_s"]
        row["vs_torch"] = row["c_steps_s"] / row["torch_steps_s"] if row["torch_steps_s"] else None
        rows.append(row)
    return dict(rows=rows, torch=tv)


def _torch_epoch(spec, weights, X, T):
    """One epoch of PyTorch on the CPU, float32, batch size 1, one thread: the same net, loss 1/2 sum (y - t)^2,
    plain SGD; returned as a function, warmed up."""
    import torch
    torch.set_num_threads(1)
    sizes = spec.sizes
    layers = []
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(weights[i][0], dtype=torch.float32).reshape(sizes[i + 1], sizes[i]))
            lin.bias.copy_(torch.tensor(weights[i][1], dtype=torch.float32).reshape(-1))
        layers += [lin, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    Xt = torch.tensor(X, dtype=torch.float32)
    Tt = torch.tensor(T, dtype=torch.float32)

    def epoch():
        for i in range(len(Xt)):
            opt.zero_grad()
            y = model(Xt[i:i + 1])
            loss = 0.5 * ((y - Tt[i:i + 1]) ** 2).sum()
            loss.backward()
            opt.step()

    epoch()   # warm up
    return epoch


# --- 3. memory ------------------------------------------------------------------------------------------
def analytic_minimum(sizes: Sequence[int], batch_size: int = 1, optimizer: str = "sgd") -> int:
    """Bytes a configuration cannot do without (docs/benchmarks.md): int16 weights and biases, int16 activations
    including the input, int16 deltas of every layer; plus int32 gradient sums when batch_size != 1, int32
    velocities for momentum. Online SGD needs no gradient memory."""
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    n = 2 * params + 2 * sum(sizes) + 2 * sum(sizes[1:])
    if batch_size != 1:
        n += 4 * params
    if optimizer == "momentum":
        n += 4 * params
    return n


def memory_bench(nets: Sequence[str]) -> dict:
    from .config import NetSpec, TrainConfig
    from .fixed import memory
    rows = []
    for net in nets:
        sizes = NETS[net]
        spec = NetSpec.from_sizes(list(sizes), "sigmoid", "mse")
        for label, cfg in (("default (batch 1: online_only)", TrainConfig(batch_size=1)),
                           ("gradient memory (batch 1, online_only=False)",
                            TrainConfig(batch_size=1, online_only=False)),
                           ("batch 32", TrainConfig(batch_size=32)),
                           ("momentum 0.9, batch 1", TrainConfig(optimizer="momentum", momentum=0.9, batch_size=1))):
            mem = memory(spec, cfg)
            amin = analytic_minimum(sizes, cfg.batch_size, cfg.optimizer)
            rows.append(dict(net=net, config=label, **mem, minimum=amin, over=mem["total"] / amin - 1))
    return dict(rows=rows)


def firmware_bench(boards: Sequence[str], commands: List[str]) -> dict:
    from .boards import build
    out = {}
    for b in boards:
        rep = build(b)
        commands.append(f"edgebp build --board {b}   # = make -C firmware BOARD={b} -j2")
        out[b] = {k: rep[k] for k in ("flash", "ram", "ram_without_arena", "arena", "stack", "stack_max_frame",
                                      "stack_max_frame_function")}
    return out


# --- 4. serial ------------------------------------------------------------------------------------------
class CountingSerial:
    """Wraps a pyserial object and counts the bytes that cross it."""

    def __init__(self, ser):
        self._ser = ser
        self.tx = 0
        self.rx = 0

    def write(self, data):
        self.tx += len(data)
        return self._ser.write(data)

    def read(self, size=1):
        data = self._ser.read(size)
        self.rx += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._ser, name)

    def __setattr__(self, name, value):
        if name in ("_ser", "tx", "rx"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._ser, name, value)


def serial_bench(boards: Sequence[str], n: int, commands: List[str]) -> dict:
    from .boards import start_emulator
    from .config import NetSpec, TrainConfig
    from .device import Device, DeviceNet
    rows = []
    X, T, data = _host_data("8-16-2", n)
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse", w_frac=12, a_frac=12)
    for b in boards:
        with start_emulator(b) as url, Device(url, timeout=60) as dev:
            cfg = TrainConfig(lr=0.2, batch_size=1, online_only=True)
            dnet = DeviceNet(dev, spec, cfg)
            Xq, Tq = dnet.quantize_inputs(X), dnet.quantize_targets(T)
            dev.info()    # HELLO now, so that only training requests cross the counted link
            counter = CountingSerial(dev.ser)
            dev.ser = counter
            t0 = time.monotonic()
            dnet.train_q(Xq, Tq, 1)
            secs = time.monotonic() - t0
            dev.ser = counter._ser
            sample_bytes = int(Xq.nbytes + Tq.nbytes)
            info = dev.info()
            ipstep = dnet.instructions_per_step()
            rows.append(dict(board=b, n=len(Xq), seconds=secs, samples_s=len(Xq) / secs, tx=counter.tx,
                             rx=counter.rx, sample_bytes=sample_bytes,
                             share=sample_bytes / max(1, counter.tx + counter.rx),
                             share_tx=sample_bytes / max(1, counter.tx), requests=dnet.train_requests,
                             device_instr_step=ipstep, stack_high_water=info.stack_high_water,
                             build=info.build))
        commands.append(f"python: start_emulator({b!r}) + DeviceNet(Device(url), 8-16-2, online_only).train_q("
                        f"{data} first {len(Xq)} rows, batch 1), serial object wrapped to count bytes")
    return dict(rows=rows, data=data)


# --- AVR (hook) -----------------------------------------------------------------------------------------
def avr_rows(commands: Optional[List[str]] = None) -> Optional[dict]:
    """The simavr ATmega328P measurement of tools/step_bench/avr.py (the AVR board's own tool: cycles per 8-16-2
    step, edgebp against genann on the same chip): {"result": its measure() dict, "table": its markdown}, or
    {"error": why} when its tools are missing or it fails; None without that file (an installed package)."""
    if not AVR_TOOL.is_file():
        return None
    import importlib.util
    spec = importlib.util.spec_from_file_location("edgebp_avr_step_bench", AVR_TOOL)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        r = mod.measure(commands)
        return dict(result=r, table=mod.table(r))
    except Exception as e:       # the AVR toolchain missing, or the tool failing: say so in the table
        return dict(error=f"{type(e).__name__}: {e}")


# --- driver ---------------------------------------------------------------------------------------------
FIRMWARE_BOARDS = ["qemu-mps2-an385", "qemu-mps2-an386", "qemu-microbit"]

def run(short: bool = False, parts: Sequence[str] = ("mcu", "host", "memory", "serial"), nets: Optional[Sequence[str]] = None,
        with_torch: bool = True, workdir: Optional[Path] = None, progress=None) -> dict:
    """Measures everything (``short``: 8-16-2 only, few steps; for tests). Returns a dict of tables."""
    say = progress or (lambda s: None)
    nets = list(nets or (["8-16-2"] if short else list(NETS)))
    tmp = tempfile.TemporaryDirectory(prefix="edgebp-bench-") if workdir is None else None
    wd = Path(workdir or tmp.name)
    wd.mkdir(parents=True, exist_ok=True)
    res: dict = dict(short=short, nets=nets, commands={}, started=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    try:
        if "mcu" in parts:
            missing = have_mcu_tools()
            if missing:
                raise BenchError(f"missing {missing}: install gcc-arm-none-eabi and qemu-system-arm")
            h = Harness(wd)
            say("MCU: instructions per step (QEMU -icount)")
            res["mcu"] = mcu_bench(h, list(MCUS), nets, 8 if short else 32)
            say("MCU: profile")
            res["profile"] = [profile(h, m, "8-16-2", 16 if short else 256, build=b)
                              for m in MCUS for b in (("default",) if short else ("portable", "default", "nostats"))]
            res["commands"]["mcu"] = h.commands
        if "host" in parts:
            say("host: steps per second, callgrind")
            cmds: List[str] = []
            res["host"] = host_bench(wd, nets, 64 if short else 384, 2 if short else 9,
                                     (20, 40) if short else (1000, 3000), cmds, with_torch)
            res["commands"]["host"] = cmds
        if "memory" in parts:
            say("memory")
            cmds = []
            res["memory"] = memory_bench(nets)
            res["firmware"] = firmware_bench(FIRMWARE_BOARDS, cmds) if "serial" in parts \
                or not short else {}
            res["commands"]["memory"] = cmds
        if "serial" in parts:
            say("serial: DeviceNet over the emulated UART")
            cmds = []
            res["serial"] = serial_bench(FIRMWARE_BOARDS, 32 if short else 384, cmds)
            res["commands"]["serial"] = cmds
        if "mcu" in parts and not short:
            say("AVR: cycles per step (simavr, tools/step_bench/avr.py)")
            cmds = []
            res["avr"] = avr_rows(cmds)
            res["commands"]["avr"] = cmds
        res["targets"] = targets(res)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return res


def targets(res: dict) -> List[dict]:
    out = []

    def add(name, value, limit, met, unit=""):
        out.append(dict(target=name, value=value, limit=limit, met=met, unit=unit))

    mcu = {(r["mcu"], r["net"]): r for r in res.get("mcu", {}).get("rows", [])}
    for m, limit in STEP_TARGETS.items():
        r = mcu.get((m, "8-16-2"))
        if not r:
            continue
        name = MCUS[m]["label"].split(" (")[0]
        add(f"{name} 8-16-2 online step, default configuration (stochastic, online_only), EBP_STATS=1 (firmware)",
            r["lean_step"], limit, r["lean_step"] <= limit)
        add(f"{name} 8-16-2 online step, default configuration, EBP_STATS=0 (counters compiled out)",
            r["lean_nostats_step"], limit, r["lean_nostats_step"] <= limit)
    avr = (res.get("avr") or {}).get("result")
    if avr:
        add("ATmega328P 8-16-2 online step: genann's cycles / edgebp's (simavr), at least", avr["ratio"],
            avr["target_ratio"], avr["ratio"] >= avr["target_ratio"])
    host = {r["net"]: r for r in res.get("host", {}).get("rows", [])}
    r = host.get("8-16-2")
    if r and r["x86_per_step"]:
        add("host C core 8-16-2, x86 instructions per step (stochastic rounding, gradient memory)",
            r["x86_per_step"], TARGETS["host_x86"], r["x86_per_step"] <= TARGETS["host_x86"])
        add("host C core 8-16-2, x86 instructions per step (stochastic rounding, online_only: the default)",
            r["x86_per_step_online"], TARGETS["host_x86"], r["x86_per_step_online"] <= TARGETS["host_x86"])
        if r.get("x86_per_step_online_nostats"):
            add("host C core 8-16-2, x86 instructions per step (online_only), EBP_STATS=0 (counters compiled out)",
                r["x86_per_step_online_nostats"], TARGETS["host_x86"],
                r["x86_per_step_online_nostats"] <= TARGETS["host_x86"])
    if r and r["vs_torch"]:
        add("host C core vs PyTorch batch 1, speed-up per step", r["vs_torch"], TARGETS["torch_ratio"],
            r["vs_torch"] >= TARGETS["torch_ratio"])
    for m in res.get("memory", {}).get("rows", []):
        if m["net"] == "8-16-2" and m["config"] == "default (batch 1: online_only)":
            add(f"8-16-2 SGD training RAM over the analytic minimum ({m['config']})", m["over"],
                TARGETS["ram_over_min"], m["over"] <= TARGETS["ram_over_min"])
    return out


# --- report ---------------------------------------------------------------------------------------------
def _f(v, nd=0):
    if v is None:
        return "n/a"
    if isinstance(v, float) and not math.isfinite(v):
        return "n/a"
    return f"{v:,.{nd}f}"


def tables(res: dict) -> str:
    L: List[str] = []
    if "mcu" in res:
        fl = res["mcu"]["floors"]
        L += ["### 1. Instructions per online training step on the microcontroller (QEMU -icount)", "",
              "The default configuration: online SGD (batch 1, lr 0.2), stochastic rounding, online_only (no gradient "
              "memory). Three builds of the core: the architecture's kernels with every statistic counted "
              "(EBP_STATS=1, what the firmware builds), the same with the counters compiled out (EBP_STATS=0), and "
              "the portable kernels alone (EBP_PORTABLE=1, the core before the per-architecture kernels). "
              "instr/MAC is the default build's, beside the plain-loop floor measured on the same board.", "",
              "| core | net | MACs/step | default: instr/step | EBP_STATS=0: instr/step | portable (before): "
              "instr/step | gradient memory: instr/step | default: forward | default: instr/MAC | EBP_STATS=0: "
              "instr/MAC | plain int32 MAC loop: instr/MAC | plain int64 MAC loop: instr/MAC | plain stochastic "
              "update loop: instr/param | plain-loop floor of the step | float32: instr/step "
              "| float32: instr/MAC | speed-up over float |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["mcu"]["rows"]:
            f = fl[r["mcu"]]
            fixed = _f(r["fixed_step"]) if r["fixed_step"] is not None else "does not fit 16 KiB"
            L.append(f"| {MCUS[r['mcu']]['label']} | {r['net']} | {r['macs']:,} | {_f(r['lean_step'])} | "
                     f"{_f(r.get('lean_nostats_step'))} | {_f(r.get('lean_portable_step'))} | {fixed} | "
                     f"{_f(r['lean_fwd'])} | {_f(r['per_mac'], 1)} | {_f(r.get('per_mac_nostats'), 1)} | "
                     f"{_f(f['int32'], 1)} | {_f(f['int64'], 1)} | {_f(f.get('sr_update'), 1)} | "
                     f"{_f(step_floor(r['net'], f))} | {_f(r['float_step'])} | "
                     f"{_f(r['float_per_mac'], 1)} | {_f(r['speedup'], 1)}x |")
        avr = res.get("avr")
        if avr and avr.get("result"):
            a = avr["result"]
            L.append(f"| ATmega328P (simavr, cycles, tools/step_bench/avr.py) | 8-16-2 | {a['macs']:,} | "
                     f"{_f(a['core_step'])} cycles | | | | {_f(a['core_fwd'])} cycles | {_f(a['core_per_mac'], 1)} "
                     f"cycles | | {_f(a['mac32'], 1)} cycles | {_f(a['mac64'], 1)} cycles | | {_f(a['floor_step'])} "
                     f"cycles (MACs only) | genann {_f(a['genann_step'])} cycles | {_f(a['genann_per_mac'], 1)} | "
                     f"{_f(a['ratio'], 1)}x over genann |")
        else:
            why = avr["error"] if avr else "not run (--short, or tools/step_bench/avr.py absent)"
            L.append(f"| ATmega328P (simavr) | 8-16-2 | {macs_per_step(8, 16, 2)} | cycles by "
                     f"tools/step_bench/avr.py: {why} | | | | | | | | | | | | | |")
        if avr and avr.get("table"):
            L += ["", "#### ATmega328P in simavr (cycles; `python tools/step_bench/avr.py`, the AVR board's tool)", "",
                  avr["table"]]
        L += ["", "Baselines, Cortex-M3, 8-16-2 online update (datasets README): " +
              ", ".join(f"{k} {v:,}" for k, v in BASELINES_M3.items()) + " instructions."]
        m3 = next((r for r in res["mcu"]["rows"] if r["mcu"] == "cortex-m3" and r["net"] == "8-16-2"), None)
        if m3:
            L[-1] += " edgebp's fixed-point step (default build): " + ", ".join(
                f"{v / m3['lean_step']:.1f}x fewer than {k}" for k, v in BASELINES_M3.items()) + \
                f"; the float32 build of the same algorithm here: {m3['float_step']:,.0f}."
        L.append("")
    if res.get("profile"):
        key = {"default": "lean_step", "nostats": "lean_nostats_step", "portable": "lean_portable_step"}
        steps = {(r["mcu"], r["net"], b): r.get(k) for r in res.get("mcu", {}).get("rows", []) for b, k in key.items()}
        L += ["### Where a step's instructions go (8-16-2, default configuration, sampling profiler)", "",
              "Share of the step's instructions (and the instructions it implies) per build: the portable kernels "
              "(before) and the architecture's kernels with and without the counters (after); libgcc helpers are "
              "charged to the phase that called them.", "",
              "| core | build | samples | " + " | ".join(n for n, _ in PHASES) + " | other | top functions "
              "(innermost, share) | libgcc helpers |", "|---|---|---|" + "---|" * (len(PHASES) + 3)]
        for p in res["profile"]:
            b = p.get("build", "default")
            st = steps.get((p["mcu"], p["net"], b))
            other = sum(v for k, v in p["phases"].items() if k not in dict(PHASES))
            top = ", ".join(f"{k} {v:.0%}" for k, v in list(p["functions"].items())[:6])
            hel = ", ".join(f"{k} {v:.0%}" for k, v in p["helpers"].items()) or "none"
            cell = lambda v: f"{v:.0%}" + (f" (~{v * st:,.0f})" if st else "")  # noqa: E731
            L.append(f"| {MCUS[p['mcu']]['label']} | {KERNEL_LABELS[b]} | {p['samples']:,} | " +
                     " | ".join(cell(p['phases'].get(n, 0)) for n, _ in PHASES) + f" | {cell(other)} | {top} | {hel} |")
        L.append("")
    if "host" in res:
        L += ["### 2. Host (x86-64): the C core driven from Python, loop in C", "",
              f"PyTorch: {res['host']['torch'] or 'not installed'}.", "",
              "| net | data | C core steps/s (`FixedNet.train_q`, default layout: online_only) | x86 instr/step "
              "(callgrind), gradient memory | x86 instr/step, online_only | x86 instr/step, online_only, "
              "EBP_STATS=0 | float mirror steps/s (numpy) | PyTorch CPU batch 1 steps/s | C / float mirror | "
              "C / PyTorch |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["host"]["rows"]:
            L.append(f"| {r['net']} | {r['data']} ({r['n']} rows) | {_f(r['c_steps_s'])} | {_f(r['x86_per_step'])} | "
                     f"{_f(r.get('x86_per_step_online'))} | {_f(r.get('x86_per_step_online_nostats'))} | "
                     f"{_f(r['float_steps_s'])} | {_f(r['torch_steps_s'])} | {_f(r['vs_float'])}x | "
                     f"{_f(r['vs_torch'])}{'x' if r['vs_torch'] else ''} |")
        L += ["", f"genann: about {GENANN_X86_PER_STEP:,} x86 instructions per 8-16-2 step. Steps/s are wall-clock "
              "(best of several interleaved runs) on a shared 2-core machine and move by tens of percent between "
              "runs of the benchmark; the "
              "instruction counts are exact and repeatable.", ""]
    if "memory" in res:
        L += ["### 3. Memory", "", "Training arena (`edgebp.fixed.memory(spec, cfg)`, bytes) against the analytic "
              "minimum of the configuration:", "",
              "| net | configuration | weights | biases | gradients | optimizer | activations | scratch | total | "
              "analytic minimum | over minimum |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for m in res["memory"]["rows"]:
            L.append(f"| {m['net']} | {m['config']} | {m['weights']:,} | {m['biases']:,} | {m['gradients']:,} | "
                     f"{m['optimizer']:,} | {m['activations']:,} | {m['scratch']:,} | {m['total']:,} | "
                     f"{m['minimum']:,} | {m['over']:+.0%} |")
        L.append("")
        fit = [m for m in res["memory"]["rows"] if m["config"].startswith(("default", "gradient memory"))]
        if fit and res.get("firmware", {}).get("qemu-microbit"):
            arena = res["firmware"]["qemu-microbit"]["arena"]
            L += ["micro:bit firmware arena " + f"{arena:,} bytes: " + "; ".join(
                f"{m['net']} {m['config']} {m['total']:,} ({'fits' if m['total'] <= arena else 'does NOT fit'})"
                for m in fit) + ".", ""]
        if res.get("firmware"):
            hw = {r["board"]: r["stack_high_water"] for r in res.get("serial", {}).get("rows", [])}
            L += ["Firmware (`edgebp build` size report) and stack:", "",
                  "| board | flash | static RAM (with arena) | arena | static RAM without arena | stack, call-graph "
                  "estimate | stack, measured high-water (painted) |", "|---|---|---|---|---|---|---|"]
            for b, f in res["firmware"].items():
                L.append(f"| {b} | {f['flash']:,} | {f['ram']:,} | {f['arena']:,} | {f['ram_without_arena']:,} | "
                         f"{f['stack']:,} (largest frame {f['stack_max_frame']} in {f['stack_max_frame_function']}) | "
                         f"{_f(hw.get(b)) if hw.get(b) is not None else 'n/a'} |")
            L.append("")
    if "serial" in res:
        L += ["### 4. Training over the emulated UART (`DeviceNet`, 8-16-2, online, "
              f"{res['serial']['data']})", "",
              "| board | samples | samples/s (wall) | requests | bytes host->device | bytes device->host | sample bytes "
              "| sample share of all link bytes | of host->device bytes | device instr/step (firmware build) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["serial"]["rows"]:
            L.append(f"| {r['board']} | {r['n']} | {_f(r['samples_s'])} | {r['requests']} | {r['tx']:,} | "
                     f"{r['rx']:,} | {r['sample_bytes']:,} | {r['share']:.1%} | {r['share_tx']:.1%} | "
                     f"{_f(r['device_instr_step'])} |")
        L += ["", "#### Over a link that drops and flips bytes", "",
              "Samples/s against the fault rate for each way of framing (`make bench-link`, which writes this table "
              "into [link.md](link.md#measurements); copied here from there when this file is made):", ""]
        L += [_link_table(), ""]
    if res.get("targets"):
        L += ["### Targets", "", "| target | measured | limit | met |", "|---|---|---|---|"]
        for t in res["targets"]:
            v = t["value"]
            if "over the analytic" in t["target"]:
                vs, ls = f"{v:+.1%}", f"<= +{t['limit']:.0%}"
            elif "genann's cycles" in t["target"]:
                vs, ls = f"{v:.2f}x", f">= {t['limit']:g}x"
            elif "speed-up" in t["target"]:
                vs, ls = f"{v:,.0f}x", f">= {t['limit']:,.0f}x"
            elif "per MAC" in t["target"]:
                vs, ls = f"{v:.1f}", f"<= {t['limit']:.0f}"
            else:
                vs, ls = f"{v:,.0f}", f"<= {t['limit']:,}"
            L.append(f"| {t['target']} | {vs} | {ls} | {'met' if t['met'] else 'NOT met'} |")
        L.append("")
    return "\n".join(L)


def _link_table() -> str:
    """The fault-rate table that tools/bench/link.py last wrote into docs/link.md (between its markers)."""
    from .paths import source_root
    try:
        text = (source_root() / "docs" / "link.md").read_text()
    except OSError:
        return "(docs/link.md not found: run `make bench-link`)"
    m = re.search(r"<!-- link-bench:begin -->\n(.*?)\n<!-- link-bench:end -->", text, re.S)
    return m.group(1).strip() if m else "(no table in docs/link.md: run `make bench-link`)"


def markdown(res: dict, command: str) -> str:
    cmds = []
    for part, cs in res.get("commands", {}).items():
        cmds += [f"# {part}"] + cs
    return "\n".join([
        "# Benchmarks", "",
        f"Produced by `{command}` on {res['started']} (edgebp/bench.py; tools/bench/). Every instruction count on a "
        "board comes from QEMU `-icount shift=6`: SysTick then advances 64 ns of virtual time per instruction, so "
        "instructions = ticks x 1e9 / (f_clk x 64). SysTick works on the three emulated boards (checked: the micro:bit's "
        "SysTick runs at its 16 MHz core clock in QEMU 7.2, so the nRF51 TIMER0 was not needed). These are "
        "instructions, not cycles (QEMU has no pipeline model). The harness (tools/bench/m3/bench_m.c, built "
        f"{OPT}) times each call alone and subtracts the cost of an empty measurement; batch-1 SGD runs the fused "
        "online path, built two ways: with gradient memory (core flags 0, `online_only=False` in Python: int32 "
        "gradient sums it does not use online, and scratch for the raw deltas) and, built -DBENCH_ONLINE_ONLY, "
        "an EBP_FLAG_ONLINE network, the Python default for batch-1 SGD: the same integers with no gradient "
        "memory and no scratch, hidden raw deltas packed exactly into the delta array (so 64-32-10 fits the "
        "micro:bit's 16 KiB). Both in the default configuration's rounding, stochastic (tools/bench/m3/bench_m.c "
        "BENCH_ROUNDING). instr/MAC and the speed-up use the online_only build, the default configuration.", "",
        "Definitions:", "",
        "- **MACs per step** (2-layer n_in-n_hid-n_out): forward n_in*n_hid + n_hid*n_out, back-propagation of the "
        "output deltas n_hid*n_out, update of every weight n_in*n_hid + n_hid*n_out (biases not counted): " +
        ", ".join(f"{k} {macs_per_step(*v):,}" for k, v in NETS.items()) + ".",
        "- **float32 build**: the same 2-layer sigmoid / squared-error online SGD step written like genann in C "
        "float (soft float on M0/M3, libgcc `__aeabi_f*`), sigmoid from a 257-entry table on [0, 16] with linear "
        "interpolation as in the fixed core (tools/bench/m3/bench_m.c, `-DBENCH_FLOAT`).",
        "- **plain loops** (`-DBENCH_MAC`, same harness): `acc += a[i] * b[i]` over 1,024 int16 pairs into int32 and "
        "into int64; the plain stochastic update loop over 1,024 weights (the online rows' rule: "
        "`w -= (dl * a + (r >> (32 - S))) >> S` saturated to int16, then `r += 0x9E3779B9`, the next value of the "
        "row's Weyl sequence; the row's one xorshift32 draw not counted; as C compiles it); the **plain-loop floor of "
        "the step** = (forward + back-propagation MACs) x the int32 loop + (weights + biases) x the update loop.",
        "- **analytic minimum** of a configuration: int16 weights and biases, int16 activations including the input, "
        "int16 deltas of every layer; plus int32 gradient sums when the batch is not 1 and int32 velocities for "
        "momentum. Online SGD needs no gradient memory. Scratch and the `ebp_net_t` struct are not in it.",
        "- **host**: steps/s is the best of several runs timed with `time.perf_counter` (the C core over the rows "
        "repeated to at least 4,096 steps per call, the others over one epoch), the C core, the float mirror and "
        "PyTorch taking turns, one run each per round, so that their ratios compare runs made under the same "
        "load; x86 instructions per "
        "step = (callgrind total at N2 steps - at N1 steps) / (N2 - N1) of tools/bench/bench_step.c (cc -O3, as the Python extension is built). "
        "PyTorch: float32, one thread, `Linear`+`Sigmoid` x2, loss 1/2 sum (y-t)^2, `optim.SGD(lr=0.2)`, "
        "batch size 1, a Python loop over the samples (`zero_grad`, forward, `backward`, `step`).",
        "- **serial**: the host counts every byte written to and read from the serial object during "
        "`DeviceNet.train_q`; sample bytes = int16 inputs + targets. Samples/s is host wall time including the "
        "emulated link; the device's own instruction count per step comes from the firmware's counter (the "
        "micro:bit firmware compiles the core with -Os, the harness with -O2, hence its higher count).",
        "- **stack high-water**: the Cortex-M firmware paints the free RAM between .bss and the stack at reset "
        "(ports/common/cortexm.c) and reports the deepest overwritten byte as an optional u32 after HELLO's "
        "strings (`Device.info().stack_high_water`), read here after loading the model and training; the "
        "estimate is the size report's worst case over GCC's call graph.",
        "- **profile**: the harness built with -DBENCH_PROFILE takes a SysTick interrupt every 1,999 ticks and "
        "records the interrupted PC (a sample inside a libgcc helper is charged to the return address of its "
        "C caller); PCs are mapped to the inline chain by `arm-none-eabi-addr2line -f -i`, and a sample belongs to "
        "the first phase whose function appears in the chain.",
        "- `$OUT` in the commands is a temporary directory.", "",
        "What the online step runs (csrc/edgebp.c; every kernel gives the integers of the plain rules in "
        "csrc/ebp_fixed.h, checked against the golden vectors, the independent reference tools/intref.py and, for "
        "the per-architecture kernels, tests/test_kernels.py on the emulated boards and tests/test_c.py on the host; "
        "docs/core.md lists them): `fwd_sigmoid` (an int64 dot product, then the rounding to Q12, the sigmoid table "
        "and the output rounding on magnitudes in 32-bit arithmetic; on ARMv7-M and ARMv6-M the whole layer in "
        "assembly, `ebp_arm_fwd_sigmoid`, SMLAL, SMLALD pairs with DSP, on the M0 two products added in 32 bits a "
        "step, a neuron whose sum leaves int32 finished by the 64-bit path in C; on x86-64 four neurons at a time in "
        "SSE2 lanes, `ebp_x86_sigmoid4`), `normalize_delta` (block floating point deltas; in an EBP_FLAG_ONLINE "
        "network the hidden raw deltas packed into the delta array: `ebp_arm_hidden_pack` in assembly on the Arm "
        "cores, `ebp_x86_hidden_mag` with the f'(y), pack and unpack kernels on x86-64), and the fused online update. "
        "Under stochastic rounding (the default) the update rows are `update_rows_nonneg_sr` (every statistic "
        "counted): `ebp_arm_rows_sr_wrap`, a layer's rows in assembly with one xorshift32 draw a row and one ADD a "
        "weight for its Weyl sequence, a weight that left int16 flagging its row for `fix_row_sr_any` (on the "
        "Cortex-M3 two weights a step, 12 instructions a weight and 7 for a zero update; on the M4 four weights a "
        "step with the DSP's 16-bit pairs, 9 a weight; on the M0 Thumb-1 with every value in registers, 16 a weight "
        "and 9 for a zero update); on x86-64 `ebp_x86_rows_sr` (csrc/arch/ebp_arch_x86.h: rows in blocks of 8, the "
        "Weyl values of 8 weights in two vectors, PMADDWD products, shift, pack and saturated subtract, the biases of "
        "8 rows together, every counter kept in lanes); elsewhere the portable rows (the zero-update count from bit "
        "31 of a biased sum, weights stored modulo 2^16 with an OR-ed range flag and `fix_row_sr` for a row that "
        "clipped). With the counters compiled out (EBP_STATS=0), `update_rows_sr_nostats`: on the Cortex-M3 "
        "`ebp_arm_row_sr` (MLA, ASR and SSAT, 11 instructions a weight), on the M0 and M4 the counted rows above with "
        "the counts dropped (measured faster there), on x86-64 the x86 rows. The default build (what the firmware "
        "runs) counts every statistic, so the host and the device report the same ones.", "",
        "The stochastic rounding rule changed for issue 14 (the issue allowed it): the online update draws one "
        "xorshift32 number per row and rounds parameter j of the row with that draw + j x 0x9E3779B9 (a Weyl "
        "sequence: each value uniform, so every rounding stays unbiased), where it drew once per parameter; "
        "tools/intref.py, the golden vectors and docs/results.md changed with it (the fidelity table trains every "
        "set with both roundings: stochastic within -0.25 to +0.00 points of the float mirror, against -0.39 to "
        "+0.00 with one draw per parameter). That change alone took the 8-16-2 step from 6,811 to 6,560 Cortex-M3, "
        "6,610 to 6,360 Cortex-M4, 12,522 to 11,992 Cortex-M0 and 7,436 to about 6,100 x86-64 instructions, and "
        "from 198,420 to 152,266 ATmega328P cycles; the kernels written after it (docs/core.md) took the step to "
        "the counts of the table below. Stochastic rounding now costs no more than round to nearest on x86 and on "
        "the Cortex-M boards.", "",
        "Why the other issue-14 targets are still not met: the **plain-loop floor** column adds the step's "
        "multiply-accumulates at the plain int32 loop's cost and every parameter's update at the plain stochastic "
        "update loop's (a multiply-add, two shifts, the saturation, the store and the Weyl step, as C compiles it), "
        "with no per-neuron or per-row work at all: on the Cortex-M3 and M4 it is about 3,600, under the M3's 4,000 "
        "but above the M4's 3,000. The kernels beat the plain loops (the counted update 12 instructions a weight on "
        "the M3, 7 for a zero update, 9 on the M4), but the per-neuron work (the sigmoid table and its "
        "interpolation, the roundings, f'(y), the block exponent and the packing of the deltas) and the per-row and "
        "per-layer work (the scaled delta, the draw, the bias, the range check, the statistics, the calls) add about "
        "2,500 more on the M3 and 2,000 on the M4. What would reach them: the whole step per architecture in one hand-scheduled "
        "kernel (forward, deltas and update with the layer's values kept in registers, the M4's dual 16-bit "
        "multiply-accumulates throughout), which was not written. On x86-64 the default build's step is about 100 "
        "instructions above genann's 4,145 after six rounds of SSE2 kernels (the last two found 170 and 6), and the "
        "build with the counters compiled out (EBP_STATS=0) is under it: the statistics' zero and clip counts cost "
        "about 200 a step; what is left is spread over the update rows' per-row set-up, the forward pass's table "
        "lookups and the calls between the phases. On the ATmega328P, 10x genann is below even the plain C loops' "
        "floor (see its table).", "",
        "## Results", "", tables(res),
        "## Commands", "", "```sh", *cmds, "```", ""])


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="edgebp bench", description="Benchmarks of the edgebp core (docs/benchmarks.md)")
    add_arguments(ap)
    return run_from_args(ap.parse_args(argv), "python tools/bench/run.py")


def add_arguments(ap) -> None:
    ap.add_argument("--short", action="store_true", help="8-16-2 only, few steps (what the tests run)")
    ap.add_argument("--parts", default="mcu,host,memory,serial", help="comma list of mcu,host,memory,serial")
    ap.add_argument("--nets", default=None, help=f"comma list of {','.join(NETS)}")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--output", default=None, help="markdown file to write (default in a source checkout: "
                                                   "docs/benchmarks.md unless --short; installed: none; '-' for none)")
    ap.add_argument("--json", default=None, help="also write the raw results as JSON to this file")


def run_from_args(args, prog: str) -> int:
    import json
    import sys
    parts = [p for p in args.parts.split(",") if p]
    nets = args.nets.split(",") if args.nets else None
    from .progress import Progress
    phases = sum({"mcu": 2}.get(p, 1) for p in parts)
    bar = Progress(phases, "bench", unit="phase")
    seen = []

    def say(s):
        if bar.enabled:                    # a terminal: one bar over the phases, named after the current one
            bar.set_label(s.split(":")[0][:12])
            bar(len(seen))
        else:
            print(f"[bench] {s}", file=sys.stderr, flush=True)
        seen.append(s)
    try:
        res = run(short=args.short, parts=parts, nets=nets, with_torch=not args.no_torch, progress=say)
        bar(phases)
    finally:
        bar.close()
    print(tables(res))
    cmdline = prog + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    default = ROOT / "docs" / "benchmarks.md" if paths.is_checkout() and not args.short else None
    out = args.output if args.output is not None else (str(default) if default else None)
    if out and out != "-":
        Path(out).write_text(markdown(res, cmdline))
        print(f"wrote {out}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return 0
