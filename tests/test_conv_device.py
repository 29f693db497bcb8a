"""A conv1d model (issue 15) and an int8 one trained on the emulated Cortex-M3 and Cortex-M0, bit-identical to the
host core: the device's weights read back layer by layer in each kind's own shape."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent
MODEL = "conv1d(4,5,stride=2,act=relu),maxpool1d(2),conv1d(4,3,act=tanh,w_bits=8),gap,dense(2,act=softmax)"


@pytest.mark.parametrize("board", ["qemu-mps2-an385", "qemu-microbit"])
def test_conv_pool_int8_model_trains_on_the_board_like_the_host(board):
    need_tools("make", "arm-none-eabi-gcc", "qemu-system-arm")
    p = subprocess.run([sys.executable, "-m", "edgebp.cli", "device", "train", "GunPoint", "--scale", "minmax",
                        "--shuffle", "--model", MODEL, "--epochs", "1", "--board", board, "--check", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["check"] == {"identical": True, "differing_layers": [], "identical_predictions": True}
    dev, fixed = out["engines"]["device"], out["engines"]["fixed"]
    assert dev["train_loss"] == fixed["train_loss"] and dev["test_accuracy"] == fixed["test_accuracy"]
    assert dev["memory"]["total"] == fixed["memory"]["total"]
    assert dev["instructions_per_step"] > 10_000          # a conv step on the board, measured


def test_conv_weights_read_back_in_their_own_shapes():
    """DeviceNet.get_int_weights returns conv (ch, in_ch, kernel) and pooling (empty) arrays like FixedNet."""
    need_tools("make", "cc")
    from edgebp import FixedNet, NetSpec, TrainConfig
    from edgebp.boards import start_emulator
    from edgebp.device import Device, DeviceNet
    from edgebp.layers import Conv1D, Dense, MaxPool1D
    spec = NetSpec.sequential(input=(2, 20), layers=[Conv1D(3, 4, act="relu"), MaxPool1D(2), Dense(2, act="sigmoid")])
    cfg = TrainConfig(lr=0.2, seed=5)
    rng = np.random.default_rng(0)
    X, T = rng.uniform(0, 1, (12, 40)), rng.integers(0, 2, (12, 2)).astype(float)
    host = FixedNet(spec, cfg)
    host.fit(X, T)
    with start_emulator("host") as url, Device(url) as dev:
        net = DeviceNet(dev, spec, cfg)
        net.fit(X, T)
        got = net.get_int_weights()
    want = host.get_int_weights()
    assert got[0][0].shape == (3, 2, 4) and got[0][0].any()      # conv1d (ch, in_ch, kernel), trained
    for (gw, gb), (hw, hb) in zip(got, want):
        assert gw.shape == hw.shape and np.array_equal(gw, hw) and np.array_equal(gb, hb)
