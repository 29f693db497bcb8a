"""The standalone firmware (firmware/examples/standalone): it learns with no host, from samples compiled into
flash or from a simulated sensor with concept drift, on the emulated Cortex-M3 and Cortex-M0; its final
weights equal the host core's after the same samples in the same order, also when it resets itself mid-run
and resumes from its checkpoint."""
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from edgebp.config import NetSpec, TrainConfig
from edgebp.fixed import FixedNet
from edgebp.weights import apply_weights, load_weights, save_weights
from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "firmware" / "examples" / "standalone"
MACHINE = {"qemu-mps2-an385": "mps2-an385", "qemu-microbit": "microbit"}
N, EPOCHS, EVERY = 64, 3, 40


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from edgebp.data import load_dataset
    ds = load_dataset("diabetes")
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2], activation=["tanh", "sigmoid"]),
                  TrainConfig(lr=0.3, seed=11, rounding="stochastic"))
    fn.train_q(fn.quantize_inputs(ds.X_train[200:300]), fn.quantize_targets(ds.T_train[200:300]), 1)  # pretrain
    return save_weights(tmp_path_factory.mktemp("standalone") / "w.npz", fn), ds


def build(board, w, tmp, reset_at):
    out = tmp / f"{board}-{reset_at}"
    cmd = ["make", "-s", "-C", str(EXAMPLE), f"BOARD={board}", f"WEIGHTS={w}", "DATA=diabetes",
           f"MAX_SAMPLES={N}", f"EPOCHS={EPOCHS}", f"CKPT_EVERY={EVERY}", f"RESET_AT={reset_at}",
           f"B={out}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return out / "standalone.elf"


def run_until_end(board, elf, timeout=120):
    """The firmware's UART output (QEMU -serial stdio) until its 'end' line; QEMU is killed by its PID."""
    proc = subprocess.Popen(["qemu-system-arm", "-M", MACHINE[board], "-kernel", str(elf), "-display", "none",
                             "-monitor", "none", "-serial", "stdio", "-icount", "shift=6"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("end"):
                break
    finally:
        killer.cancel()
        proc.kill()
        proc.wait(timeout=10)
    assert lines and lines[-1] == "end", f"no 'end' within {timeout} s:\n" + "\n".join(lines[-20:])
    return lines


def host_reference(w, ds):
    wf = load_weights(w)
    ref = FixedNet(wf.spec, TrainConfig(**wf.train_config))
    apply_weights(ref, wf)
    Xq, Tq = ref.quantize_inputs(ds.X_train[:N]), ref.quantize_targets(ds.T_train[:N])
    for _ in range(EPOCHS):
        ref.train_q(Xq, Tq, 1)
    return ref


def weights_of(lines):
    out = {}
    for l in lines:
        if l[:2] in ("W ", "B "):
            parts = l.split()
            out[(parts[0], int(parts[1]))] = [int(v) for v in parts[2:]]
    return out


@pytest.mark.parametrize("board", list(MACHINE))
@pytest.mark.parametrize("reset_at", [0, 100], ids=["uninterrupted", "reset-at-100"])
def test_standalone_learns_like_the_host(board, reset_at, weights, tmp_path):
    need_tools("make", "arm-none-eabi-gcc", "qemu-system-arm")
    w, ds = weights
    lines = run_until_end(board, build(board, w, tmp_path, reset_at))
    text = "\n".join(lines)
    assert "boot 1: no checkpoint, starting from the exported weights" in text
    assert f"done steps {EPOCHS * N}" in text
    # a checkpoint every EVERY steps; after a reset the run resumes from the last one and goes on saving
    assert [l for l in lines if l.startswith("ckpt")] == [f"ckpt {s} ok" for s in range(EVERY, EPOCHS * N + 1, EVERY)]
    if reset_at:
        last = EVERY * (reset_at // EVERY)
        assert f"reset at step {reset_at}" in text
        assert "boot 2: restored checkpoint slot" in text and f"at step {last}" in text
    epochs = [l for l in lines if l.startswith("epoch ")]
    assert epochs and all("correct" in l for l in epochs)
    ref = host_reference(w, ds)
    got = weights_of(lines)
    for i, (W, b) in enumerate(ref.get_int_weights()):
        assert got[("W", i)] == W.ravel().tolist(), f"layer {i} weights differ from the host core's"
        assert got[("B", i)] == b.tolist()


def drift_samples(total, in_frac=12, out_frac=12):
    """The standalone firmware's simulated sensor (standalone.c sample()), sample k from k alone."""
    def mix(x):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        return x
    one_in, one_out = 1 << in_frac, 1 << out_frac
    X = np.zeros((total, 2), np.int16)
    T = np.zeros((total, 2), np.int16)
    for k in range(total):
        b = (2 * one_in) // 5                       # C's -(2 * one_in) / 5 truncates towards zero: -b
        boundary = -b if k < total // 2 else b
        r = mix(mix((k * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF) | 1)
        r2 = mix(r)
        X[k] = ((r & (2 * one_in - 1)) - one_in, (r2 & (2 * one_in - 1)) - one_in)
        cls = X[k, 0] > boundary
        T[k] = (0, one_out) if cls else (one_out, 0)
    return X, T


@pytest.mark.parametrize("board", list(MACHINE))
def test_drifting_sensor_with_a_reset(board, tmp_path):
    """The simulated sensor whose class boundary moves halfway: the firmware adapts (accuracy recovers after
    the drift), resets itself once at step 650, resumes from its checkpoint at 500, and ends with the
    host core's weights after the same 1,000 samples."""
    need_tools("make", "arm-none-eabi-gcc", "qemu-system-arm")
    fn = FixedNet(NetSpec.from_sizes([2, 8, 2]), TrainConfig(lr=0.5, seed=3))
    w = save_weights(tmp_path / "w2.npz", fn)
    out = tmp_path / "drift"
    p = subprocess.run(["make", "-s", "-C", str(EXAMPLE), f"BOARD={board}", f"WEIGHTS={w}", "SENSOR=drift",
                        "EPOCHS=10", "WINDOW=100", "CKPT_EVERY=250", "RESET_AT=650", f"B={out}"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = run_until_end(board, out / "standalone.elf")
    text = "\n".join(lines)
    assert "reset at step 650" in text and "boot 2: restored checkpoint slot" in text and "at step 500" in text
    acc = {int(l.split()[3]): int(l.split()[5].split("/")[0]) for l in lines if l.startswith("epoch ")}
    assert acc[1000] >= 90 and acc[1000] > acc[600] - 5      # recovered after the drift at step 500
    X, T = drift_samples(1000)
    fn.train_q(X, T, 1)
    got = weights_of(lines)
    for i, (W, b) in enumerate(fn.get_int_weights()):
        assert got[("W", i)] == W.ravel().tolist() and got[("B", i)] == b.tolist()
