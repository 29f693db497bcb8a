"""edgebp.compare and edgebp.advise: the metrics, their attribution, and the two commands end to end."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebp import NetSpec, StopRule, TrainConfig
from edgebp.advise import advise
from edgebp.compare import compare, cosine, csv_rows, format_report, rel_l2, sign_agreement
from edgebp.data import load_dataset
from edgebp.fixed import FixedNet
from edgebp.mirror import FloatNet

ROOT = Path(__file__).resolve().parent.parent


def edgebp(*args):
    return subprocess.run([sys.executable, "-m", "edgebp.cli", *args], capture_output=True, text=True, cwd=ROOT)


def fine_case(n=16, seed=0):
    """Linear layers in Q14 on inputs in [-0.5, 0.5]: fine enough that the core matches float closely."""
    spec = NetSpec.from_sizes([3, 4, 2], ["tanh", "linear"], "mse", w_frac=14, a_frac=14, in_frac=14)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-0.5, 0.5, (n, 3))
    T = rng.uniform(-0.5, 0.5, (n, 2))
    return spec, X, T


def test_metric_helpers():
    a = np.array([1.0, -2.0, 0.0])
    assert cosine(a, a) == pytest.approx(1.0) and cosine(a, -a) == pytest.approx(-1.0)
    assert cosine(np.zeros(3), np.zeros(3)) == 1.0 and cosine(a, np.zeros(3)) == 0.0
    assert rel_l2(3 * a, a) == pytest.approx(2.0) and rel_l2(a, a) == 0.0
    assert sign_agreement(a, np.array([2.0, -1.0, 0.0])) == 1.0
    assert sign_agreement(a, np.array([-2.0, -1.0, 1.0])) == pytest.approx(1 / 3)


def test_one_step_of_the_fine_case_matches_float_within_1e4():
    spec, X, T = fine_case()
    cfg = TrainConfig(lr=0.1, batch_size=4, seed=3)
    fixed = FixedNet(spec, cfg)
    flt = FloatNet(spec, cfg, weights=fixed.get_weights())
    fixed.train_samples(X[:4], T[:4], 4)
    flt.train_samples(X[:4], T[:4], 4)
    for (wq, bq), (wf, bf) in zip(fixed.get_weights(), flt.get_weights()):
        assert np.abs(wq - wf).max() < 1e-4 and np.abs(bq - bf).max() < 1e-4


@pytest.mark.parametrize("optimizer, batch", [("sgd", 1), ("sgd", 4), ("momentum", 4), ("momentum", 0)])
def test_identical_engines_report_agreement(optimizer, batch):
    spec, X, T = fine_case()
    cfg = TrainConfig(lr=0.1, batch_size=batch, optimizer=optimizer, momentum=0.5 if optimizer == "momentum" else 0,
                      seed=3)
    rep = compare(spec, cfg, X, T, X, T, epochs=3, every=1)
    s = rep["summary"]
    assert rep["every"] == 1 and len(rep["records"]) == rep["steps"] == 3 * (-(-16 // (batch or 16)))
    assert s["first_disagreement"] is None
    for r in rep["records"]:
        for m in r["layers"]:
            assert m["cos_w"] > 0.999 and m["cos_b"] > 0.999 and m["rel_w"] < 2e-3, m
            assert m["drift_cos"] > 0.999
            # every source is small, and the split adds up to at least the total
            assert m["err_forward"] < 1e-2 and m["err_backward"] < 1e-2 and m["err_update"] < 5e-2, m
            assert m["err_forward"] + m["err_backward"] + m["err_update"] >= m["err_total"] - 1e-12
    assert abs(s["test_accuracy_gap"]) < 1e-9 or s["engines"]["fixed"]["test_loss"] == pytest.approx(
        s["engines"]["float"]["test_loss"], abs=1e-3)


def planted(layer, how):
    def hook(l, dW, db):
        if l != layer:
            return dW, db
        if how == "scale":
            return 3.0 * dW, 3.0 * db
        flip = np.where(np.random.default_rng(0).random(dW.shape) < 0.5, -1.0, 1.0)   # half the signs
        return dW * flip, -db
    return hook


@pytest.mark.parametrize("layer, how", [(1, "scale"), (0, "flip"), (2, "flip")])
def test_planted_error_points_at_its_layer(layer, how):
    ds = load_dataset("diabetes")
    spec = NetSpec.from_sizes([8, 6, 4, 2], "sigmoid", "mse")
    rep = compare(spec, TrainConfig(lr=0.2, batch_size=8), ds.X_train[:64], ds.T_train[:64], epochs=2, every=1,
                  grad_hook=planted(layer, how))
    s = rep["summary"]
    assert s["first_disagreement"]["layer"] == layer and s["first_disagreement"]["step"] == 0
    assert s["first_disagreement"]["metric"] == ("rel_w" if how == "scale" else "cos_w")
    assert s["worst_layer"] == layer
    assert s["layers"][layer]["disagree_frac"] == 1.0
    assert all(s["layers"][l]["disagree_frac"] == 0.0 for l in range(3) if l != layer)
    # the planted error is in the core's gradient, so the attribution blames the backward pass
    assert s["layers"][layer]["attribution"]["per_step"]["backward"] > 0.5


def test_round_to_nearest_attribution_blames_the_update():
    # Gupta et al. (2015): at a small learning rate round-to-nearest drops every update; stochastic rounding
    # keeps them in expectation, so its accumulated update error is much smaller.
    ds = load_dataset("diabetes")
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse", w_frac=10)
    acc = {}
    for rounding in ("nearest", "stochastic"):
        rep = compare(spec, TrainConfig(lr=0.003, rounding=rounding), ds.X_train, ds.T_train, epochs=2, every=1)
        att = rep["summary"]["attribution"]
        assert att["per_step"]["dominant"] == "update"
        acc[rounding] = att["accumulated"]["update"]
        if rounding == "nearest":
            assert all(ly["zero_update_frac"] == 1.0 for ly in rep["summary"]["layers"])
    assert acc["nearest"] > 0.99 and acc["stochastic"] < 0.75, acc


def test_scipy_lbfgs_full_batch():
    ds = load_dataset("diabetes")
    spec = NetSpec.from_sizes([8, 8, 2], "sigmoid", "mse")
    rep = compare(spec, TrainConfig(lr=0.5, batch_size=0), ds.X_train, ds.T_train, ds.X_test, ds.T_test, epochs=30,
                  scipy_method="lbfgs")
    s = rep["summary"]
    assert "float+lbfgs" in s["engines"] and s["scipy"]["iterations"] >= 1
    # L-BFGS gets further in 30 iterations than 30 full-batch gradient steps
    assert s["engines"]["float+lbfgs"]["train_loss"] < s["engines"]["float"]["train_loss"]
    assert "scipy L-BFGS-B" in format_report(rep)
    with pytest.raises(Exception, match="batch-size 0"):
        compare(spec, TrainConfig(batch_size=1), ds.X_train, ds.T_train, epochs=1, scipy_method="cg")


def test_compare_command_json_csv_and_plot(tmp_path):
    png = tmp_path / "report.png"
    p = edgebp("compare", "two-spiral", "--layers", "2,8,1", "--epochs", "3", "--batch-size", "4", "--json",
               "--plot", str(png))
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    for key in ("data", "spec", "config", "epochs", "steps", "every", "batch_size", "threshold", "rel_threshold",
                "records", "curves", "summary"):
        assert key in rep, key
    assert rep["steps"] == 3 * 49 and rep["curves"]["epoch"] == [0, 1, 2, 3]
    for eng in ("fixed", "float"):
        assert set(rep["curves"][eng]) == {"epoch_loss", "train_loss", "train_accuracy", "test_loss", "test_accuracy"}
    m = rep["records"][0]["layers"][0]
    for key in ("cos_w", "cos_b", "rel_w", "rel_b", "sign_w", "sign_b", "drift_cos", "zero_update_frac",
                "saturations", "err_forward", "err_backward", "err_update", "err_total"):
        assert key in m, key
    s = rep["summary"]
    for key in ("engines", "first_disagreement", "worst_layer", "layers", "train_accuracy_gap", "test_accuracy_gap",
                "attribution"):
        assert key in s, key
    assert set(s["layers"][0]["saturations"]) == {"sat_out", "sat_delta", "sat_grad", "sat_param", "sat_vel"}
    assert s["attribution"]["per_step"]["dominant"] in ("forward", "backward", "update")
    assert png.stat().st_size > 10000 and png.read_bytes()[:4] == b"\x89PNG"

    p = edgebp("compare", "two-spiral", "--layers", "2,8,1", "--epochs", "2", "--csv")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("step,epoch,layer,cos_w")
    assert len(lines) == 1 + 2 * (2 * 193)       # online: 386 steps, every step recorded, 2 layers each
    p = edgebp("compare", "two-spiral", "--layers", "2,8,1", "--epochs", "2")
    assert p.returncode == 0 and "gradient agreement per layer" in p.stdout and "dominant source" in p.stdout


def test_advise_recommendation_reproduces_on_retraining():
    p = edgebp("advise", "diabetes", "--layers", "8,8,2", "--epochs", "15", "--w-fracs", "6,10", "--a-fracs",
               "8,12", "--validation-split", "0.25", "--max-loss", "2", "--jobs", "2", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert len(rep["candidates"]) == 8 and rep["jobs"] == 2 and rep["selected_on"] == "val_accuracy"
    assert rep["memory_format_independent"] and len(rep["memory_bytes"]) == 1
    best = rep["recommended"]
    assert best is not None and best["rank"] == 1 and best["within"]
    # honest: the printed command retrains to exactly the accuracy the report gave
    cmd = shlex.split(rep["command"])
    assert cmd[:2] == ["edgebp", "train"]
    q = edgebp(*cmd[1:], "--json")
    assert q.returncode == 0, q.stderr
    got = json.loads(q.stdout)["engines"]["fixed"]
    assert got["test_accuracy"] == best["test_accuracy"] and got["train_accuracy"] == best["train_accuracy"]


def test_advise_api_per_tensor_and_readable_table():
    from edgebp.advise import format_advice
    ds = load_dataset("two-spiral")
    spec = NetSpec.from_sizes([2, 6, 1], "tanh,sigmoid".split(","), "mse")
    stop = StopRule(epochs=5)
    rep = advise(spec, TrainConfig(lr=0.1), stop, ds.X_train, ds.T_train, ds.X_test, ds.T_test,
                 w_fracs=(8, 12), a_fracs=(12,), roundings=("stochastic",), jobs=1, per_tensor=True)
    per_layer = [c for c in rep["candidates"] if "/" in c["format"]]
    assert per_layer, [c["format"] for c in rep["candidates"]]
    rec = rep["recommended"] or rep["closest"]
    fixed = FixedNet(NetSpec.from_dict(rec["spec"]), TrainConfig(lr=0.1, rounding=rec["rounding"]))
    fixed.fit(ds.X_train, ds.T_train, stop)
    assert fixed.evaluate(ds.X_test, ds.T_test)[1] == rec["test_accuracy"]
    text = format_advice(rep)
    assert "memory:" in text and "every format" in text and ("recommended" in text or "no format" in text)


def test_csv_curves_table():
    spec, X, T = fine_case()
    rep = compare(spec, TrainConfig(lr=0.1, batch_size=4), X, T, epochs=2)
    rows = csv_rows(rep, "curves")
    assert rows[0][:3] == ["epoch", "step", "fixed_epoch_loss"] and len(rows) == 1 + 3


def test_advise_ranks_on_a_validation_split_by_default_and_on_loss_for_regression():
    p = edgebp("advise", "diabetes", "--layers", "8,4,2", "--epochs", "3", "--w-fracs", "6,12", "--a-fracs", "12",
               "--roundings", "nearest", "--jobs", "1", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["selected_on"] == "val_accuracy" and rep["stop"]["validation_split"] == 0.2
    assert "--validation-split 0.2" in rep["command"]           # the retraining command holds out the same rows
    p = edgebp("advise", "building", "--layers", "14,6,3", "--activation", "sigmoid,linear", "--epochs", "3",
               "--w-fracs", "4,12", "--a-fracs", "12", "--roundings", "nearest", "--jobs", "1", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["task"] == "regression" and rep["selected_on"] == "val_loss"
    ranked = [c for c in rep["candidates"] if not c["error"]]
    within = [c for c in ranked if c["within"]]
    assert [c["val_loss"] for c in within] == sorted(c["val_loss"] for c in within)   # equal memory: by loss
    for c in ranked:
        assert c["loss_vs_float"] == pytest.approx((c["val_loss"] - rep["float"]["val_loss"]) /
                                                   rep["float"]["val_loss"] * 100)
    text = edgebp("advise", "building", "--layers", "14,6,3", "--activation", "sigmoid,linear", "--epochs", "2",
                  "--w-fracs", "12", "--a-fracs", "12", "--roundings", "nearest", "--jobs", "1").stdout
    assert "ranked on the validation loss" in text and "test loss" in text


def test_plot_shows_fixed_minus_float_under_a_title_that_names_the_setup(tmp_path):
    pytest.importorskip("matplotlib")
    from edgebp.compare import curve_differences, plot_report
    ds = load_dataset("diabetes")
    spec = NetSpec.from_sizes([8, 4, 2], "sigmoid", "mse", w_frac=10, a_frac=11, in_frac=9)
    rep = compare(spec, TrainConfig(lr=0.2, rounding="stochastic"), ds.X_train[:100], ds.T_train[:100],
                  ds.X_test[:50], ds.T_test[:50], epochs=3, attribution=False)
    rep["data"] = "diabetes"
    d = curve_differences(rep)
    c = rep["curves"]
    for key in ("train_loss", "test_accuracy"):
        assert d[key] == [a - b for a, b in zip(c["fixed"][key], c["float"][key])]
    assert any(v != 0 for v in d["train_loss"])               # the two curves differ: the plot shows by how much
    title = plot_report(rep, str(tmp_path / "p.png"))
    for part in ("diabetes", "8-4-2 sigmoid,sigmoid", "in Q9", "weights Q10", "activations Q11",
                 "rounding stochastic", "3 epochs"):
        assert part in title, part
    assert (tmp_path / "p.png").stat().st_size > 10_000
