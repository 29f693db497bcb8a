"""`edgebp fleet`: JSON lines per round from a small simulated fleet, and clear errors for bad flags."""
import json

import pytest

from edgebp.cli_fleet import main
from test_fleet import need_flower


def test_fleet_json_lines_per_round(capsys):
    need_flower()
    rc = main(["fleet", "sklearn:digits", "--layers", "64,16,10", "--devices", "8", "--rounds", "2",
               "--local-epochs", "2", "--split", "dirichlet:0.5", "--lr", "0.3", "--cpus", "2", "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    recs = [json.loads(l) for l in out]
    assert [r["round"] for r in recs] == [0, 1, 2]
    last = recs[-1]
    for eng in ("fixed", "float"):
        for key in ("test_accuracy", "device_accuracy_mean", "device_accuracy_worst"):
            assert 0 <= last[eng][key] <= 1
        assert last[eng]["test_accuracy"] > recs[0][eng]["test_accuracy"]
    assert last["devices"] == 8 and len(last["link_bytes"]["per_device"]) == 8
    assert min(last["link_bytes"]["per_device"].values()) > 0


def test_fleet_text_progress_fixed_only(capsys):
    need_flower()
    rc = main(["fleet", "diabetes", "--layers", "8,4,2", "--devices", "3", "--rounds", "1", "--engine", "fixed",
               "--cpus", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "3 devices, split iid, 1 rounds" in out
    assert "round   1/1  fixed: test" in out and "float" not in out.split("\n", 1)[1]


def test_fleet_max_body_counts_small_frames(capsys):
    """--max-body 128 counts the virtual devices' link bytes as the Uno board's frames would carry them: more
    frames, so more bytes than at the protocol's 1,024, for the same training."""
    need_flower()
    args = ["fleet", "diabetes", "--layers", "8,4,2", "--devices", "2", "--rounds", "1", "--engine", "fixed",
            "--cpus", "2", "--json"]
    per = []
    for extra in ([], ["--max-body", "128"]):
        assert main(args + extra) == 0
        last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        per.append(sum(last["link_bytes"]["per_device"].values()))
    assert per[1] > per[0] > 0


@pytest.mark.parametrize("argv,msg", [
    (["--max-body", "10"], "max_body must be a whole number of bytes"),
    (["--epochs", "5"], "--local-epochs"),
    (["--patience", "3"], "do not apply"),
    (["--split", "dirichlet:0"], "alpha must be a positive number"),
    (["--devices", "0"], "at least 1"),
    (["--boards", "qemu-microbit:x"], "BOARD:COUNT"),
    (["--boards", "nucleo-f401re"], "real board"),
    (["--boards", "qemu-microbit:3", "--devices", "2"], "3 boards for a fleet of --devices 2"),
    (["--layers", "8,4,3"], "does not match the data"),
    (["--devices", "5000"], "cannot be split over 5000 devices"),
])
def test_fleet_bad_flags_are_clear_errors(argv, msg, capsys):
    need_flower()
    rc = main(["fleet", "diabetes"] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and "Traceback" not in err
