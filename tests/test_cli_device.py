"""`edgebp device train --check`: the README's main job, end to end on the host port and the emulated M3."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from devtest import same_weights as same
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


# --- options checked, partial results kept, resume (issue 13) ------------------------------------------------
def run_cli(*argv):
    """edgebp in this process: (exit code, stdout, stderr) via capsys-free redirection."""
    import contextlib
    import io
    from edgebp.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:        # argparse errors
            code = e.code
    return code, out.getvalue(), err.getvalue()


TRAIN = ("device", "train", "diabetes", "--layers", "8,16,2", "--board", "host")


@pytest.mark.parametrize("opt, value, msg", [
    ("--timeout", "0", "--timeout: must be a positive number of seconds"),
    ("--timeout", "nan", "--timeout: must be a positive number of seconds"),
    ("--timeout", "soon", "--timeout: must be a positive number of seconds"),
    ("--retries", "-1", "--retries: must be a whole number >= 0"),
    ("--retries", "2.5", "--retries: must be a whole number >= 0"),
    ("--resume-timeout", "-3", "--resume-timeout: must be a positive number of seconds"),
])
def test_bad_link_options_are_clear_errors(opt, value, msg):
    code, out, err = run_cli(*TRAIN, "--epochs", "1", opt, value)
    assert code == 2 and msg in err and "Traceback" not in err


@pytest.mark.parametrize("path, msg", [
    ("/tmp", "is a directory; give a file name such as /tmp/weights.npz"),
    ("/no/such/folder/w.npz", "the folder /no/such/folder does not exist"),
    ("/proc/w.npz", "the folder /proc is not writable"),
])
def test_save_path_refused_before_training(path, msg, monkeypatch):
    import edgebp.device as D
    monkeypatch.setattr(D.DeviceNet, "__init__", lambda *a, **k: pytest.fail("trained before checking the path"))
    code, out, err = run_cli(*TRAIN, "--epochs", "1", "--save-weights", path)
    assert code == 2 and msg in err and "Traceback" not in err


def test_save_path_without_npz_says_what_it_writes(tmp_path):
    need_tools("make", "cc")
    code, out, err = run_cli(*TRAIN, "--epochs", "1", "--save-weights", str(tmp_path / "w"))
    assert code == 0, err
    assert f"weights go to {tmp_path / 'w.npz'}" in err and (tmp_path / "w.npz").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]          # no temporary file left behind


def host_weights(epochs, **cfg):
    from edgebp.config import NetSpec, StopRule, TrainConfig
    from edgebp.data import load_dataset
    from edgebp.fixed import FixedNet
    ds = load_dataset("diabetes")
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2]), TrainConfig(**{"lr": 0.2, "seed": 1, **cfg}))
    fn.fit(ds.X_train, ds.T_train, StopRule(epochs=epochs))
    return fn.get_int_weights()


def count_calls(monkeypatch, kill_at=None):
    """DeviceNet.train_q counted (one call an epoch); with ``kill_at``, the emulated board is killed at that call."""
    import edgebp.device as D
    real, calls = D.DeviceNet.train_q, []

    def train_q(self, *a):
        calls.append(1)
        if len(calls) == kill_at:
            self.device.emulator.kill()
        return real(self, *a)
    monkeypatch.setattr(D.DeviceNet, "train_q", train_q)
    return calls


def saved(path):
    import numpy as np
    z = np.load(path)
    return [(z[f"w{i}"], z[f"b{i}"]) for i in range(2)]


def test_link_lost_mid_training_keeps_the_last_epoch(tmp_path, monkeypatch):
    """The link dies in epoch 3 of 4: one error line that says the weights after epoch 2 are in the file and
    how to go on; the file holds exactly the host core's weights after 2 epochs."""
    need_tools("make", "cc")
    count_calls(monkeypatch, kill_at=3)
    w = tmp_path / "w.npz"
    code, out, err = run_cli(*TRAIN, "--epochs", "4", "--save-weights", str(w), "--timeout", "2")
    assert code == 2 and "Traceback" not in err
    line = [l for l in err.splitlines() if l.startswith("edgebp: error:")]
    assert len(line) == 1
    assert "lost the link" in line[0] and f"the device's weights after epoch 2 are in {w}" in line[0]
    assert "--resume" in line[0]
    assert same(saved(w), host_weights(2))


@pytest.mark.parametrize("extra, cfg", [((), {}),
                                        (("--optimizer", "momentum", "--momentum", "0.9", "--lr", "0.1",
                                          "--batch-size", "8"), dict(optimizer="momentum", momentum=0.9, lr=0.1,
                                                                       batch_size=8))])
def test_a_new_process_continues_a_saved_run(tmp_path, monkeypatch, extra, cfg):
    """The host process dies in epoch 3 of 4 (here: the link, without --resume); the same command again with
    --resume continues from the file after epoch 2 -- weights, rounding generator, step count, velocities --
    trains only epochs 3 and 4, and ends bit-identical to an uninterrupted run (--check)."""
    need_tools("make", "cc")
    w = tmp_path / "w.npz"
    argv = (*TRAIN, "--epochs", "4", "--save-weights", str(w), "--timeout", "2", *extra)
    count_calls(monkeypatch, kill_at=3)
    code, out, err = run_cli(*argv)
    assert code == 2 and "continue after epoch 2" in err and "--resume" in err, err
    calls = count_calls(monkeypatch)
    code, out, err = run_cli(*argv, "--resume", "--check", "--json")
    assert code == 0, err
    assert len(calls) == 2                                # epochs 3 and 4 only
    res = json.loads(out)
    assert res["check"]["identical"] and res["engines"]["device"]["epochs"] == 4
    assert res["engines"]["device"]["continued_after_epoch"] == 2
    assert same(saved(w), host_weights(4, **cfg))
    code, out, err = run_cli(*argv, "--resume")            # finished: nothing to continue, said so
    assert code == 2 and "holds a run that finished after 4 epochs" in err and "Traceback" not in err


def test_resume_refuses_a_file_of_another_run(tmp_path, monkeypatch):
    """A --save-weights file written by a run of another command is not continued: one clear error, before the
    board starts; a file without a run record (an older edgebp's) starts the run from the beginning."""
    need_tools("make", "cc")
    import edgebp.device as D
    count_calls(monkeypatch, kill_at=2)
    w = tmp_path / "w.npz"
    code, _, err = run_cli(*TRAIN, "--epochs", "3", "--save-weights", str(w), "--timeout", "2")
    assert code == 2 and "continue after epoch 1" in err
    monkeypatch.setattr(D.DeviceNet, "__init__", lambda *a, **k: pytest.fail("started before checking the file"))
    code, _, err = run_cli(*TRAIN, "--epochs", "3", "--save-weights", str(w), "--resume", "--lr", "0.3")
    assert code == 2 and "holds a run of another config" in err and "Traceback" not in err
    code, _, err = run_cli(*TRAIN, "--epochs", "5", "--save-weights", str(w), "--resume")
    assert code == 2 and "holds a run of another stop" in err


def test_failure_after_training_loses_nothing(tmp_path, monkeypatch):
    need_tools("make", "cc")
    import edgebp.device as D

    def predict_q(self, Xq):
        raise D.LinkLostError("lost the link to the board while reading: test", "", "test")
    monkeypatch.setattr(D.DeviceNet, "predict_q", predict_q)
    w = tmp_path / "w.npz"
    code, out, err = run_cli(*TRAIN, "--epochs", "3", "--save-weights", str(w))
    assert code == 2 and f"training had finished and the final weights are in {w}" in err
    assert same(saved(w), host_weights(3))


def test_cli_resume_restarts_a_killed_emulator(tmp_path, monkeypatch):
    """--resume end to end: QEMU is killed during epoch 2; the command restarts it, replays and finishes with the
    weights of an uninterrupted run (checked by --check against the host core)."""
    need_tools("make", "cc", "arm-none-eabi-gcc", "qemu-system-arm")
    count_calls(monkeypatch, kill_at=2)
    w = tmp_path / "w.npz"
    code, out, err = run_cli("device", "train", "diabetes", "--layers", "8,16,2", "--board", "qemu-mps2-an385",
                             "--epochs", "3", "--resume", "--check", "--json", "--save-weights", str(w))
    assert code == 0, err
    res = json.loads(out)
    assert res["check"]["identical"] is True
    assert res["engines"]["device"]["link"]["reconnects"] >= 1
    assert same(saved(w), host_weights(3))


@pytest.mark.parametrize("content, name, msg", [
    (b"\x93NUMPY garbage", "x.npy", "is not a readable .npy array"),
    (b"1,2,3,4,5,6,7,8\n1,2,three,4,5,6,7,8\n", "x.csv", "line 2: '1,2,three,4,5,6,7,8' is not a list of numbers"),
    (b"1,2,3\n1,2\n", "x.csv", "line 2 has 2 values, the first sample 3"),
    (b"1,nan,3\n", "x.csv", "contains NaN or inf"),
    (b"", "x.csv", "must hold a table of samples"),
    (b"\xff\xfe\x00bin", "x.txt", "is not a text file"),
])
def test_device_predict_bad_inputs(tmp_path, content, name, msg):
    f = tmp_path / name
    f.write_bytes(content)
    code, out, err = run_cli("device", "predict", str(f), "--port", "socket://127.0.0.1:9")
    assert code == 2 and msg in err and "Traceback" not in err


def test_device_predict_bad_raw_and_in_frac(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("1.5,2\n")
    code, out, err = run_cli("device", "predict", str(f), "--raw", "--port", "socket://127.0.0.1:9")
    assert code == 2 and "--raw inputs must be int16 integers" in err
    code, out, err = run_cli("device", "predict", str(f), "--in-frac", "16", "--port", "socket://127.0.0.1:9")
    assert code == 2 and "--in-frac must be 0..15" in err


def test_device_commands_bad_url_is_immediate():
    import time
    t0 = time.monotonic()
    code, out, err = run_cli("device", "info", "--port", "socket://nohost")
    assert code == 2 and "use socket://HOST:PORT" in err and time.monotonic() - t0 < 2


def test_device_train_patience_restores_the_best_weights():
    """--patience on a device: the best weights are uploaded back at the end, as on the host core (--check)."""
    need_tools("make", "cc")
    code, out, err = run_cli(*TRAIN, "--epochs", "60", "--lr", "4", "--seed", "2", "--patience", "3",
                             "--validation-split", "0.25", "--check", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["check"]["identical"] is True
    assert res["engines"]["device"]["stopped_by"] == "early_stopping" == res["engines"]["fixed"]["stopped_by"]


def test_device_train_from_a_weights_file_fine_tunes_the_last_layer(tmp_path):
    """Issue 11's path: pretrain on the host, save, fine-tune only the last layer on the micro:bit, --check."""
    need_tools("make", "arm-none-eabi-gcc", "qemu-system-arm")
    w = tmp_path / "w.npz"
    run = lambda *a: subprocess.run([sys.executable, "-m", "edgebp.cli", *a], capture_output=True, text=True,
                                    cwd=ROOT, timeout=600)
    p = run("train", "diabetes", "--layers", "8,16,16,2", "--epochs", "3", "--engine", "fixed", "--save-weights", str(w))
    assert p.returncode == 0, p.stderr
    out_w = tmp_path / "tuned.npz"
    p = run("device", "train", "diabetes", "--layers", "8,16,16,2", "--init-weights", str(w), "--train-layers", "1",
            "--epochs", "2", "--board", "qemu-microbit", "--check", "--json", "--save-weights", str(out_w))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["check"]["identical"] is True
    from edgebp.weights import load_weights
    before, after = load_weights(w).int_weights, load_weights(out_w).int_weights
    for (bw, bb), (aw, ab) in zip(before[:2], after[:2]):          # frozen layers: exactly the file's integers
        assert np.array_equal(bw, aw) and np.array_equal(bb, ab)
    assert not np.array_equal(before[2][0], after[2][0])          # the last layer learned
    assert out["engines"]["device"]["memory"]["total"] < 1052     # no delta memory below the trained layer
