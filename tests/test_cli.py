"""The `edgebp` command line, run as a user would."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def _labels_csv(tmp_path, n=120, name="mydata.csv"):
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 50, (n, 4))                     # beyond Q12's +-8 unless scaled
    y = (X[:, 0] + X[:, 1] > 50).astype(int)
    p = tmp_path / name
    p.write_text("f1,f2,label,f3,f4\n" + "".join(f"{a},{b},{t},{c},{d}\n" for (a, b, c, d), t in zip(X, y)))
    return p


def test_own_csv_with_integer_labels_scaled_both_engines(tmp_path):
    """Issue 12's 'done when': edgebp train mydata.csv --target label --scale minmax --engine both."""
    p = _labels_csv(tmp_path)
    r = edgebp("train", str(p), "--target", "label", "--scale", "minmax", "--engine", "both", "--epochs", "30",
               "--shuffle", "--json", "--save-weights", str(tmp_path / "w.npz"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["dataset"]["n_train"] == 96 and out["dataset"]["n_test"] == 24 and out["dataset"]["scale"] == "minmax"
    assert out["dataset"]["classes"] == ["0", "1"] and "20% held out" in out["dataset"]["test_split"]
    for name in ("fixed", "float"):
        assert out["engines"][name]["test_accuracy"] > 0.75
    w = np.load(tmp_path / "w.npz")
    scale = json.loads(str(w["scale"]))
    assert scale["kind"] == "minmax" and len(scale["offset"]) == 4
    # without --scale the inputs do not fit Q12, and the error names the split and the column, before training
    r = edgebp("train", str(p), "--target", "label", "--epochs", "1")
    assert r.returncode == 2 and "training split: 'f1' reaches" in r.stderr and "--scale minmax" in r.stderr
    assert "Traceback" not in r.stderr and "train loss" not in r.stdout


def test_out_of_range_test_file_is_reported_before_training(tmp_path):
    p = _labels_csv(tmp_path)
    q = tmp_path / "t.csv"
    q.write_text("f1,f2,label,f3,f4\n1,2,0,3,4\n4000,2,1,3,4\n")
    r = edgebp("train", str(p), "--target", "label", "--scale", "minmax", "--test", str(q), "--epochs", "1")
    assert r.returncode == 2 and "test split: 'f1' reaches" in r.stderr and "train loss" not in r.stdout


def test_sorted_by_class_warning_and_shuffle(tmp_path):
    r = edgebp("train", "BasicMotions", "--scale", "minmax", "--layers", "600,4,4", "--epochs", "1",
               "--engine", "fixed")
    assert r.returncode == 0, r.stderr
    assert "sorted by class" in r.stderr and "--shuffle" in r.stderr
    r = edgebp("train", "BasicMotions", "--scale", "minmax", "--layers", "600,4,4", "--epochs", "1",
               "--engine", "fixed", "--shuffle")
    assert r.returncode == 0 and "sorted by class" not in r.stderr


def test_saturation_and_zero_update_warnings_say_what_to_change():
    r = edgebp("train", "diabetes", "--layers", "8,32,32,2", "--activation", "relu,relu,sigmoid", "--a-frac", "14",
               "--init-range", "2", "--epochs", "3", "--engine", "fixed", "--rounding", "nearest")
    assert r.returncode == 0, r.stderr
    assert "layer 2 (relu, 32 outputs)" in r.stderr and "58% of the weight updates rounded to zero" in r.stderr and "outputs clipped to +-2 (Q14)" in r.stderr
    assert "--a-frac 12" in r.stderr
    r = edgebp("train", "diabetes", "--layers", "8,16,2", "--lr", "0.001", "--epochs", "2", "--engine", "fixed",
               "--rounding", "nearest")
    assert "100% of the weight updates rounded to zero" in r.stderr and "--rounding stochastic" in r.stderr
    # under stochastic rounding (the default) the same run still says its rate is small, without that advice
    r = edgebp("train", "diabetes", "--layers", "8,16,2", "--lr", "0.001", "--epochs", "2", "--engine", "fixed")
    assert "rounded to zero" in r.stderr and "--lr" in r.stderr and "--rounding stochastic" not in r.stderr
    # the default run is clean
    r = edgebp("train", "diabetes", "--layers", "8,16,2", "--epochs", "2", "--engine", "fixed")
    assert "warning" not in r.stderr
    # with --json the warnings are in the object
    r = edgebp("train", "diabetes", "--layers", "8,16,2", "--lr", "0.001", "--epochs", "2", "--engine", "fixed",
               "--json")
    assert any("rounded to zero" in w for w in json.loads(r.stdout)["warnings"])


@pytest.mark.parametrize("flags,msg", [
    (["--epochs", "-5"], "--epochs must be at least 1"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--validation-split", "-1", "--patience", "3"], "--validation-split must be in [0, 1)"),
    (["--validation-split", "1"], "--validation-split must be in [0, 1)"),
    (["--patience", "3"], "--patience needs a validation split"),
    (["--patience", "0", "--validation-split", "0.2"], "--patience must be at least 1"),
    (["--momentum", "0.9", "--optimizer", "sgd"], "has no effect with --optimizer sgd"),
    (["--momentum", "1.5", "--optimizer", "momentum", "--batch-size", "4"], "--momentum must be in [0, 1)"),
    (["--save-weights", "/tmp"], "is a directory"),
    (["--save-weights", "/nonexistent-dir/w.npz"], "does not exist"),
    (["--seed", "-1", "--shuffle"], "--seed must be an integer in 1..4294967295"),
    (["--seed", str(2 ** 32 + 1)], "--seed must be an integer"),
    (["--seed", str(2 ** 40)], "--seed must be an integer"),
    (["--seed", "0"], "same random stream as --seed 1"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--test-split", "0.3"], "own test split"),
    (["--batch-size", "-1"], "batch_size must be >= 0"),
])
def test_bad_options_are_clear_errors_before_training(flags, msg):
    r = edgebp("train", "diabetes", "--layers", "8,4,2", "--epochs", "1", *flags)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert msg in r.stderr and "Traceback" not in r.stderr and "train loss" not in r.stdout


def test_unwritable_save_path_is_refused_before_training(tmp_path, monkeypatch):
    """Tests run as root here, who writes anywhere: the folder's answer is faked, the check is real."""
    import tempfile
    from edgebp.cli import check_save_path
    from edgebp.errors import EdgeBPError
    assert check_save_path(str(tmp_path / "w.npz")) == tmp_path / "w.npz"

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(EdgeBPError, match="not writable"):
        check_save_path(str(tmp_path / "w.npz"))


def test_save_weights_writes_the_named_file_and_says_where(tmp_path):
    r = edgebp("train", "diabetes", "--layers", "8,4,2", "--epochs", "1", "--engine", "fixed", "--save-weights",
               str(tmp_path / "w.npz"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"] and f"weights saved to {tmp_path / 'w.npz'}" in r.stdout
    r = edgebp("train", "diabetes", "--layers", "8,4,2", "--epochs", "1", "--engine", "fixed", "--save-weights",
               str(tmp_path / "v"))
    assert r.returncode == 0 and f"weights saved to {tmp_path / 'v.npz'}" in r.stdout


def test_ctrl_c_stops_cleanly_with_one_line(tmp_path):
    import signal
    import time
    p = subprocess.Popen([sys.executable, "-m", "edgebp.cli", "train", "thyroid", "--layers", "21,64,3",
                          "--epochs", "100000", "--engine", "fixed", "--save-weights", str(tmp_path / "w.npz")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [l for l in err.splitlines() if "interrupted" in l]
    assert all(l.startswith("edgebp: warning:") for l in err.splitlines() if l not in lines)
    assert len(lines) == 1 and "interrupted" in lines[0] and "partial" in lines[0] and "no weights saved" in lines[0]
    assert "train loss" in out and "interrupted" in out                    # the partial table, marked
    assert not (tmp_path / "w.npz").exists()


def test_version():
    import edgebp as pkg
    r = subprocess.run([sys.executable, "-m", "edgebp.cli", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == f"edgebp {pkg.__version__}"


def _weights(path):
    z = np.load(path)
    return [z[f"w{i}"] for i in range(2)] + [z[f"b{i}"] for i in range(2)]


def test_init_weights_continue_training_exactly(tmp_path):
    """3 epochs, saved, then 2 more from the file = 5 epochs in one run (nearest rounding, file order)."""
    common = ["--layers", "8,6,2", "--engine", "fixed", "--rounding", "nearest"]
    assert edgebp("train", "diabetes", *common, "--epochs", "3", "--save-weights", str(tmp_path / "a.npz")).returncode == 0
    r = edgebp("train", "diabetes", *common, "--epochs", "2", "--init-weights", str(tmp_path / "a.npz"),
               "--save-weights", str(tmp_path / "b.npz"))
    assert r.returncode == 0, r.stderr
    assert edgebp("train", "diabetes", *common, "--epochs", "5", "--save-weights", str(tmp_path / "c.npz")).returncode == 0
    for x, y in zip(_weights(tmp_path / "b.npz"), _weights(tmp_path / "c.npz")):
        assert np.array_equal(x, y)
    r = edgebp("train", "diabetes", "--layers", "8,5,2", "--epochs", "1", "--init-weights", str(tmp_path / "a.npz"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "train loss" not in r.stdout


def test_train_layers_freezes_all_but_the_last(tmp_path):
    common = ["--layers", "8,6,2", "--engine", "fixed", "--epochs", "2"]
    assert edgebp("train", "diabetes", *common, "--save-weights", str(tmp_path / "a.npz")).returncode == 0
    r = edgebp("train", "diabetes", *common, "--init-weights", str(tmp_path / "a.npz"), "--train-layers", "1",
               "--save-weights", str(tmp_path / "b.npz"), "--json")
    assert r.returncode == 0, r.stderr
    a, b = _weights(tmp_path / "a.npz"), _weights(tmp_path / "b.npz")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])          # layer 1 frozen
    assert not np.array_equal(a[1], b[1])                                     # layer 2 trained
    r = edgebp("train", "diabetes", *common, "--train-layers", "3")
    assert r.returncode == 2 and "k in 1..2" in r.stderr


def test_compare_starts_from_init_weights(tmp_path):
    assert edgebp("train", "diabetes", "--layers", "8,6,2", "--engine", "fixed", "--epochs", "2",
                  "--save-weights", str(tmp_path / "a.npz")).returncode == 0
    r = edgebp("compare", "diabetes", "--layers", "8,6,2", "--epochs", "1", "--init-weights", str(tmp_path / "a.npz"),
               "--json", "--no-attribution")
    assert r.returncode == 0, r.stderr
    start = json.loads(r.stdout)["curves"]
    r0 = edgebp("compare", "diabetes", "--layers", "8,6,2", "--epochs", "1", "--json", "--no-attribution")
    assert json.loads(r0.stdout)["curves"]["fixed"]["train_loss"][0] != start["fixed"]["train_loss"][0]


def test_model_flag_builds_a_conv_network_on_a_time_series():
    r = edgebp("train", "BasicMotions", "--scale", "minmax", "--shuffle", "--epochs", "1", "--engine", "fixed",
               "--model", "conv1d(4,5,stride=2,act=relu),gap,dense(4,act=softmax)", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dataset"]["input_shape"] == [6, 100]
    r = edgebp("train", "diabetes", "--layers", "8,4,2", "--model", "dense(2,act=softmax)", "--epochs", "1")
    assert r.returncode == 2 and "not both" in r.stderr


def test_command_groups_are_registered_and_transfer_flags_only_where_applied():
    for cmd in (["fleet", "--help"], ["device", "train", "--help"], ["bench", "--help"], ["export", "--help"]):
        r = edgebp(*cmd)
        assert r.returncode == 0, (cmd, r.stderr)
    for cmd, has in ((["train"], True), (["compare"], True), (["device", "train"], True), (["advise"], False),
                     (["fleet"], False)):
        r = edgebp(*cmd, "--help")
        assert ("--init-weights" in r.stdout) == has and ("--train-layers" in r.stdout) == has, cmd


def test_ctrl_c_during_device_training_stops_the_emulated_board(tmp_path):
    """The host port (a native process) stands in for an emulator: it is stopped, and one line is printed."""
    import signal
    import time
    from edgebp.boards import firmware_path
    from toolcheck import need_tools
    need_tools("make", "cc")
    exe = str(firmware_path("host"))

    def boards():          # the host ports running now (one that another test left behind is not this run's)
        return set(subprocess.run(["pgrep", "-f", exe], capture_output=True, text=True).stdout.split())
    before = boards()
    p = subprocess.Popen([sys.executable, "-m", "edgebp.cli", "device", "train", "diabetes", "--layers", "8,16,2",
                          "--epochs", "100000", "--board", "host"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=ROOT)
    t0 = time.monotonic()
    while not boards() - before and time.monotonic() - t0 < 60:
        time.sleep(0.2)
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and [l for l in err.splitlines() if "interrupted" in l] == [err.strip()]
    time.sleep(0.5)
    assert not boards() - before                                                        # the board is gone


def test_progress_on_a_terminal_has_rate_eta_and_explains_its_loss():
    import os
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "edgebp.cli", "train", "diabetes", "--layers", "8,4,2", "--epochs",
                          "30"], stdout=subprocess.PIPE, stderr=slave, text=True, cwd=ROOT)
    os.close(slave)
    out, _ = p.communicate(timeout=120)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    err = b"".join(chunks).decode(errors="replace")
    assert p.returncode == 0 and "test accuracy" in out
    assert "30/30" in err and "epochs/s" in err and "ETA" in err
    assert "the bar's loss is the mean over each epoch" in " ".join(err.split())


def test_a_one_class_validation_split_is_reported():
    r = edgebp("train", "BasicMotions", "--scale", "minmax", "--layers", "600,4,4", "--epochs", "1", "--engine",
               "fixed", "--shuffle", "--validation-split", "0.2")
    assert r.returncode == 0, r.stderr
    assert "holds one class only ('Badminton')" in r.stderr
