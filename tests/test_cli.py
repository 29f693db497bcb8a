"""The `edgebp` command line, run as a user would."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def edgebp(*args):
    return subprocess.run([sys.executable, "-m", "edgebp.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_train_json_has_the_documented_fields(tmp_path):
    p = edgebp("train", "diabetes", "--layers", "8,16,2", "--activation", "sigmoid", "--loss", "mse",
               "--optimizer", "sgd", "--lr", "0.2", "--momentum", "0", "--batch-size", "1", "--epochs", "3",
               "--seed", "1", "--engine", "both", "--json", "--save-weights", str(tmp_path / "w.npz"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for name in ("fixed", "float"):
        r = out["engines"][name]
        assert r["epochs"] == 3
        for key in ("train_loss", "train_accuracy", "test_accuracy", "memory"):
            assert key in r
        assert 0.5 < r["test_accuracy"] <= 1
    assert out["engines"]["fixed"]["memory"]["total"] == 444      # online SGD: no gradient memory by default
    w = np.load(tmp_path / "w.npz")
    assert w["w0"].dtype == np.int16 and w["w0"].shape == (16, 8) and int(w["w0_frac"]) == 12


def test_activation_list_and_fixed_engine_only():
    p = edgebp("train", "thyroid", "--layers", "21,8,3", "--activation", "tanh,softmax", "--loss", "ce",
               "--epochs", "1", "--engine", "fixed", "--json")
    assert p.returncode == 0, p.stderr
    assert list(json.loads(p.stdout)["engines"]) == ["fixed"]


def test_online_only_reports_the_minimum_memory_and_gradient_memory_the_rest():
    p = edgebp("train", "diabetes", "--layers", "8,16,2", "--epochs", "1", "--engine", "fixed", "--online-only",
               "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["engines"]["fixed"]["memory"]["total"] == 444
    p = edgebp("train", "diabetes", "--layers", "8,16,2", "--epochs", "1", "--engine", "fixed", "--gradient-memory",
               "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["engines"]["fixed"]["memory"]["total"] == 1284
    p = edgebp("train", "diabetes", "--layers", "8,16,2", "--epochs", "1", "--online-only", "--batch-size", "4")
    assert p.returncode != 0 and "online_only needs" in p.stderr


def test_readable_summary():
    p = edgebp("train", "parity8", "--layers", "8,8,1", "--epochs", "2")
    assert p.returncode == 0, p.stderr
    assert "test accuracy" in p.stdout and "fixed" in p.stdout and "float" in p.stdout


def test_errors_say_what_to_fix():
    p = edgebp("train", "diabetes", "--layers", "8,16,3", "--epochs", "1")
    assert p.returncode == 2 and "does not match the data" in p.stderr and "Traceback" not in p.stderr
    p = edgebp("train", "nosuchset", "--epochs", "1")
    assert p.returncode == 2 and "diabetes" in p.stderr and "Traceback" not in p.stderr
    p = edgebp("train", "diabetes", "--activation", "swish", "--epochs", "1")
    assert p.returncode == 2 and "unknown activation" in p.stderr
