"""Differential test of the per-architecture kernels (csrc/arch/): random configurations trained on the emulated
Cortex-M3 (mps2-an385, ARMv7-M kernels), Cortex-M4 (mps2-an386, ARMv7E-M + DSP) and Cortex-M0 (micro:bit,
ARMv6-M) give every integer the host's portable kernels give (loss sums, weights, predictions, and the
statistics in the EBP_STATS=1 build).

Each board runs two firmware builds: the default one (EBP_STATS=1, what `edgebp build` makes) and one with the
counters compiled out (EBP_STATS=0, whose update rows are separate kernels); in the second only the statistics
may differ. CI trains a few configurations per board and build (seconds each); the longer sweep is
`make test-kernels-long` (EBP_KERNEL_SWEEP=N configurations per board and build).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toolcheck import need_tools

from edgebp.config import NetSpec, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ["qemu-mps2-an385", "qemu-mps2-an386", "qemu-microbit"]
N_CONFIGS = int(os.environ.get("EBP_KERNEL_SWEEP", "12"))
ACTS = ["sigmoid", "tanh", "relu", "linear"]


def random_case(seed: int, small: bool):
    """A configuration, its data (int16, as quantised), and the batch size: sizes, activations, losses,
    optimizers, batch modes, rounding, learning rates, formats, signed or non-negative inputs, int8 layers and a
    conv1d/pooling model now and then."""
    from edgebp.layers import Conv1D, Dense, GlobalAvgPool1D, MaxPool1D
    r = np.random.default_rng(seed)
    kind = r.choice(["dense"] * 5 + ["conv"])
    optimizer = str(r.choice(["sgd", "sgd", "momentum"]))
    batch = int(r.choice([1, 1, 1, 4, 0])) if optimizer == "sgd" else int(r.choice([1, 4, 0]))
    rounding = str(r.choice(["stochastic", "stochastic", "nearest"]))
    if seed % 3 == 0:             # every third one in the default configuration: online SGD, stochastic rounding
        optimizer, batch, rounding = "sgd", 1, "stochastic"
    lr = float(r.choice([0.01, 0.05, 0.2, 0.5, 1.5]))
    w_frac = int(r.choice([10, 12, 12, 13]))
    if kind == "conv":
        ch, length = int(r.integers(1, 3)), int(r.integers(8, 17))
        spec = NetSpec.sequential(input=(ch, length), layers=[
            Conv1D(int(r.integers(2, 5)), int(r.integers(2, 4)), act=str(r.choice(["relu", "tanh"])),
                   w_bits=int(r.choice([16, 8]))),
            MaxPool1D(2), GlobalAvgPool1D(), Dense(2, act="softmax")])
        n_in, n_out = ch * length, 2
    else:
        depth = int(r.integers(1, 4))
        sizes = [int(r.integers(1, 13))] + [int(r.integers(1, 12 if small else 21)) for _ in range(depth - 1)]
        out_act = str(r.choice(["sigmoid", "tanh", "linear", "softmax"]))
        n_out = int(r.integers(2, 5)) if out_act == "softmax" else int(r.integers(1, 4))
        sizes.append(n_out)
        acts = [str(r.choice(ACTS)) for _ in range(len(sizes) - 2)] + [out_act]
        loss = "ce" if out_act == "softmax" or (out_act == "sigmoid" and r.random() < 0.3) else "mse"
        spec = NetSpec.from_sizes(sizes, acts, loss, w_frac=w_frac, a_frac=12)
        if r.random() < 0.2:
            layer = spec.layers[int(r.integers(0, len(spec.layers)))]
            layer.w_bits, layer.w_frac = 8, 5
        n_in = sizes[0]
    cfg = TrainConfig(lr=lr, batch_size=batch, optimizer=optimizer, momentum=0.9 if optimizer == "momentum" else 0.0,
                      rounding=rounding, seed=int(r.integers(1, 10_000)))
    n = int(r.integers(6, 24))
    lo = 0.0 if r.random() < 0.6 else -1.0          # non-negative inputs take the fast rows, signed ones not
    X = r.uniform(lo, 1.0, (n, n_in))
    T = np.eye(n_out)[r.integers(0, n_out, n)] if n_out > 1 else r.uniform(0, 1, (n, 1))
    return spec, cfg, X, T, batch


def saturating_case():
    """8-16-2 in the default configuration with Q15 weights and lr 8: the fast rows' clip repair runs (both
    layers clip, checked on the host)."""
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse", w_frac=15, a_frac=12)
    cfg = TrainConfig(lr=8.0, batch_size=1, rounding="stochastic", seed=3)
    r = np.random.default_rng(0)
    return spec, cfg, r.uniform(0, 1, (40, 8)), np.eye(2)[r.integers(0, 2, 40)], 1


def wide_case():
    """8-16-2 in the default configuration with inputs near +-8 (Q12) and weights over the whole int16 range: most
    hidden neurons' accumulators leave int32, so the forward kernels' 64-bit path runs (the Arm sigmoid layer stops
    at each such neuron for it). Returns the case and the int16 weights both sides start from."""
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse")
    cfg = TrainConfig(lr=0.2, batch_size=1, rounding="stochastic", seed=5)
    r = np.random.default_rng(1)
    weights = [(r.integers(-32768, 32768, (16, 8)).astype(np.int16), r.integers(-32768, 32768, 16).astype(np.int16)),
               (r.integers(-32768, 32768, (2, 16)).astype(np.int16), r.integers(-32768, 32768, 2).astype(np.int16))]
    weights[0][0][0, :] = 32767  # a neuron at the top: acc = 8 (2^15 - 1) x + ..., far beyond 2^31
    return spec, cfg, r.uniform(-7.99, 7.99, (30, 8)), np.eye(2)[r.integers(0, 2, 30)], 1, weights


def hidden_cases():
    """Online networks whose hidden raw deltas (the packed hidden pass, ebp_arm_hidden_pack on the Arm boards) reach
    its edges: a next layer of 3 to 64 neurons with weights at +-32767 (sums beyond 32 bits, and beyond 2^47 for 40
    and 64, where the kernel hands the layer back to the portable pass), sigmoid and tanh, a_frac 6, 7 (f'(y)'s
    shift at a_frac <= 7), 12 and 15, 40 hidden neurons (a second sign word) and saturated hidden neurons (f'(y) 0
    or tiny). Returns (name, spec, cfg, X, T, batch, int16 weights both sides start from)."""
    r = np.random.default_rng(7)
    out = []
    for nk, act, af in [(40, "sigmoid", 12), (64, "sigmoid", 12), (20, "sigmoid", 12), (24, "tanh", 12),
                        (3, "sigmoid", 6), (5, "tanh", 7), (3, "sigmoid", 15), (33, "sigmoid", 12)]:
        nh = 40 if nk == 33 else 16
        spec = NetSpec.from_sizes([4, nh, nk], [act, "linear" if nk in (40, 64) else "sigmoid"], "mse", a_frac=af)
        w = [(np.zeros((nh, 4), np.int16), r.integers(-300, 300, nh).astype(np.int16)),
             (np.full((nk, nh), 32767, np.int16), r.integers(-32768, 32768, nk).astype(np.int16))]
        w[1][0][:, :3] = r.integers(-32768, 32768, (nk, 3))   # some mixed columns
        w[0][1][:2] = [-32768, 32767]                          # saturated neurons: f'(y) = 0 or tiny
        out.append((f"hidden nk={nk} {act} a_frac={af}", spec, w))
    cfg = TrainConfig(lr=0.01, batch_size=1, rounding="stochastic", seed=3)
    return [(name, spec, cfg, r.uniform(-1, 1, (12, 4)), np.zeros((12, spec.layers[-1].n_out)), 1, w)
            for name, spec, w in out]


def pair_sum_cases():
    """8-16-2-like networks whose forward products come in pairs of (-2^15)^2: first-layer weights -32768 and inputs
    -8.0 (Q12 -32768), so a pair's sum is exactly 2^31, which leaves int32 (the Cortex-M0 sigmoid layer adds two
    products in 32 bits and takes its rare path there); half the neurons have every other weight 0 (one big product
    a pair), and n_in 8, 7, 2 and 1 (odd counts start with a lone product). Returns cases as hidden_cases does."""
    out = []
    for n_in in (8, 7, 2, 1):
        spec = NetSpec.from_sizes([n_in, 16, 2], "sigmoid", "mse")
        cfg = TrainConfig(lr=0.2, batch_size=1, rounding="stochastic", seed=5)
        r = np.random.default_rng(2)
        w = [(np.full((16, n_in), -32768, np.int16), r.integers(-32768, 32768, 16).astype(np.int16)),
             (r.integers(-3000, 3000, (2, 16)).astype(np.int16), r.integers(-3000, 3000, 2).astype(np.int16))]
        w[0][0][8:, 1::2] = 0
        X = np.full((20, n_in), -8.0)
        X[10:, 0] = 0.5
        out.append((f"pair sums n_in={n_in}", spec, cfg, X, np.eye(2)[r.integers(0, 2, 20)], 1, w))
    return out


def stats_off_firmware(board: str, tmp: Path) -> Path:
    """The board's firmware with the core built EBP_STATS=0 (its own build folder)."""
    from edgebp.boards import get_board
    port = get_board(board).port
    opt = "-Os" if board == "qemu-microbit" else "-O2"
    out = tmp / f"{port}-nostats"
    p = subprocess.run(["make", "-C", str(ROOT / "firmware"), f"BOARD={port}", f"BUILD={out}", "-j2",
                        f"CORE_OPT={opt} -DEBP_STATS=0", f"PYTHON={sys.executable}"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return out / "edgebp.elf"


def check_cases(url: str, seeds, with_stats: bool, small: bool):
    from edgebp.device import Device, DeviceNet
    from edgebp.fixed import FixedNet
    hidden = {c[0]: c[1:] for c in hidden_cases() + pair_sum_cases()}
    with Device(url, timeout=60.0, retries=2) as dev:
        for seed in ["saturating", "wide", *hidden, *seeds]:
            weights = None
            if seed == "wide":
                spec, cfg, X, T, batch, weights = wide_case()
            elif seed in hidden:
                spec, cfg, X, T, batch, weights = hidden[seed]
            else:
                spec, cfg, X, T, batch = saturating_case() if seed == "saturating" else random_case(seed, small)
            host = FixedNet(spec, cfg)
            net = DeviceNet(dev, spec, cfg)
            if weights is not None:
                host.set_int_weights(weights)
                net.set_int_weights(weights)
            Xq, Tq = host.quantize_inputs(X), host.quantize_targets(T)
            for epoch in range(2):
                assert net.train_q(Xq, Tq, batch) == host.train_q(Xq, Tq, batch), f"seed {seed} epoch {epoch}"
            got, want = net.get_int_weights(), host.get_int_weights()
            for l, ((gw, gb), (hw, hb)) in enumerate(zip(got, want)):
                assert np.array_equal(gw, hw) and np.array_equal(gb, hb), f"seed {seed}: layer {l} differs"
            assert np.array_equal(net.predict_q(Xq), host.predict_q(Xq)), f"seed {seed}"
            if with_stats:
                assert net.stats() == host.stats(), f"seed {seed}: statistics differ"
            if seed == "saturating":
                assert all(l["sat_param"] > 0 for l in host.stats())
            if seed == "wide":  # the 64-bit path ran: some hidden accumulator left int32 (checked on the host)
                acc = Xq.astype(np.int64) @ weights[0][0].T.astype(np.int64) + (weights[0][1].astype(np.int64) << 12)
                assert np.abs(acc).max() > 2**31


@pytest.mark.parametrize("stats", [1, 0], ids=["EBP_STATS=1", "EBP_STATS=0"])
@pytest.mark.parametrize("board", BOARDS)
def test_random_configurations_match_the_portable_kernels(board, stats, tmp_path):
    need_tools("make", "arm-none-eabi-gcc", "qemu-system-arm")
    from edgebp.boards import start_emulator
    elf = None if stats else stats_off_firmware(board, tmp_path)
    base = {"qemu-mps2-an385": 1000, "qemu-mps2-an386": 2000, "qemu-microbit": 3000}[board] + 500 * (1 - stats)
    with start_emulator(board, timeout=900, elf=elf) as url:
        check_cases(url, range(base, base + N_CONFIGS), with_stats=bool(stats), small=board == "qemu-microbit")


def test_the_kernel_selection_follows_the_architecture():
    """The kernel set each target compiles (EBP_KERNELS), and EBP_PORTABLE=1 forcing the portable one."""
    need_tools("arm-none-eabi-gcc")
    want = {"cortex-m3": "armv7-m", "cortex-m4": "armv7e-m+dsp", "cortex-m7": "armv7e-m+dsp",
            "cortex-m0": "armv6-m", "cortex-m0plus": "armv6-m"}
    for cpu, name in want.items():
        for portable in (0, 1):
            src = '#include "arch/ebp_arch.h"\nconst char *k = EBP_KERNELS;\n'
            p = subprocess.run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", f"-DEBP_PORTABLE={portable}", "-E",
                                "-I", str(ROOT / "csrc"), "-x", "c", "-"], input=src, capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            assert f'"{"portable" if portable else name}"' in p.stdout, (cpu, portable)
