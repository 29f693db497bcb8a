"""`edgebp device train --check`: the README's main job, end to end on the host port and the emulated M3."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("board", ["host", "qemu-mps2-an385"])
def test_device_train_check_json(board):
    need_tools("make", "cc", *(("arm-none-eabi-gcc", "qemu-system-arm") if board != "host" else ()))
    p = subprocess.run([sys.executable, "-m", "edgebp.cli", "device", "train", "diabetes", "--layers", "8,16,2",
                        "--epochs", "1", "--board", board, "--check", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["check"] == {"identical": True, "differing_layers": [], "identical_predictions": True}
    assert set(out["engines"]) == {"device", "fixed", "float"}
    dev, fixed = out["engines"]["device"], out["engines"]["fixed"]
    assert dev["test_accuracy"] == fixed["test_accuracy"] and dev["train_loss"] == fixed["train_loss"]
    if board != "host":
        assert dev["instructions_per_step"] > 1000
