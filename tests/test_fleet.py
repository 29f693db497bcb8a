"""Simulated fleets: Flower's simulation engine on Ray's local cluster, checked against the same rounds run by
hand (the integers must be equal), and the protocol bytes a board exchanges against a real device's link."""
import importlib.util
import os

import numpy as np
import pytest

from edgebp.config import NetSpec, TrainConfig
from edgebp.fleet.client import FleetTask, LinkMeter, device_data, initial_weights, virtual_round
from edgebp.fleet.fedavg import fedavg_float, fedavg_int
from toolcheck import need_tools


def need_flower():
    """Skip without Flower + Ray on a developer machine; in CI (CI set) their absence is a failure."""
    missing = [m for m in ("flwr", "ray") if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (pip install 'flwr[simulation]')"
        if os.environ.get("CI"):
            pytest.fail(f"required in CI: {msg}")
        pytest.skip(msg)


def digits_task(n_devices=10, split="dirichlet:0.5", epochs=1, **cfg):
    spec = NetSpec.from_sizes([64, 32, 10], "sigmoid", "mse")
    c = dict(lr=0.2, seed=3)
    c.update(cfg)
    return FleetTask("sklearn:digits", spec.to_dict(), TrainConfig(**c).to_dict(), n_devices=n_devices,
                     split=split, split_seed=5, local_epochs=epochs)


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) and x.dtype == y.dtype
                                    for (xW, xb), (yW, yb) in zip(a, b) for x, y in ((xW, yW), (xb, yb)))


def by_hand(task, rounds):
    """The fleet without Flower: every device's round in this process, averaged by the same rules."""
    gi, gf = initial_weights(task)
    out = []
    for r in range(1, rounds + 1):
        ups = [virtual_round(task, k, r, gi, gf) for k in range(task.n_devices)]
        counts = [u["fixed"].n for u in ups]
        gi = fedavg_int([u["fixed"].weights for u in ups], counts)
        gf = fedavg_float([u["float"].weights for u in ups], counts)
        out.append((gi, gf, ups))
    return out


@pytest.fixture(scope="module")
def simulated():
    need_flower()
    from edgebp.fleet.flower import simulate
    task = digits_task(shuffle=True, rounding="stochastic")
    seen = []
    res = simulate(task, rounds=2, num_cpus=2, progress=seen.append, keep_client_weights=True)
    return task, res, seen


def test_flower_fleet_on_ray_equals_the_rounds_run_by_hand(simulated):
    task, res, seen = simulated
    strat = res["strategy"]
    for r, (gi, gf, ups) in enumerate(by_hand(task, 2), 1):
        assert same(strat.global_weights[r]["fixed"], gi), f"round {r}: integer global model differs"
        np.testing.assert_allclose(np.concatenate([W.ravel() for W, _ in strat.global_weights[r]["float"]]),
                                   np.concatenate([W.ravel() for W, _ in gf]), rtol=0, atol=1e-12)
        for k, u in enumerate(ups):
            assert same(strat.client_weights[r][k]["fixed"], u["fixed"].weights)
    assert [s["round"] for s in seen] == [0, 1, 2]          # progress once per round, and for the start


def test_round_records_say_accuracy_and_bytes(simulated):
    task, res, _ = simulated
    first, last = res["initial"], res["rounds"][-1]
    assert [r["round"] for r in res["rounds"]] == [1, 2]
    for eng in ("fixed", "float"):
        rec = last[eng]
        assert 0 <= rec["device_accuracy_worst"] <= rec["device_accuracy_mean"] <= 1
        assert 0 <= rec["local_accuracy_worst"] <= rec["local_accuracy_mean"] <= 1
        assert rec["test_accuracy"] > first[eng]["test_accuracy"] + 0.05   # 2 rounds learn something
    assert abs(last["fixed"]["test_accuracy"] - last["float"]["test_accuracy"]) < 0.1
    assert last["devices"] == task.n_devices and last["failures"] == []
    lb = last["link_bytes"]
    assert len(lb["per_device"]) == task.n_devices and lb["total"] == sum(lb["per_device"].values())
    # every device's count is what LinkMeter computes for its round
    gi = res["strategy"].global_weights[1]["fixed"]
    from edgebp.fixed import FixedNet
    k = 3
    X, T = device_data(task, k)
    cfg = task.config(2, k)
    net = FixedNet(task.netspec, cfg)
    new = res["strategy"].client_weights[2][k]["fixed"]
    Xq, Tq = net.quantize_inputs(X), net.quantize_targets(T)
    meter = LinkMeter(task.netspec, cfg)
    want = meter.round_bytes(net.core_params(), gi, Xq, Tq, task.local_epochs, new)["total"]
    want += meter.evaluate_bytes(net.core_params(), res["strategy"].global_weights[2]["fixed"], Xq, Tq)["total"]
    assert lb["per_device"][str(k)] == want
    assert lb["mean_by_kind"]["train.train_to_device"] > lb["mean_by_kind"]["train.readback_from_device"] > 0


def test_link_meter_counts_the_bytes_a_device_exchanges():
    """Against the firmware's host port: LOAD, TRAIN, READ_WEIGHTS and EVALUATE frames, counted on the link."""
    need_tools("make", "cc")
    from edgebp.boards import start_emulator
    from edgebp.device import DeviceNet
    from edgebp.fixed import FixedNet
    from edgebp.fleet.boards import connect, measured
    from edgebp.fleet.client import evaluate_int
    task = digits_task(n_devices=20, shuffle=True)
    X, T = device_data(task, 2)
    cfg = task.config(1, 2)
    with start_emulator("host", timeout=120) as url:
        with connect(url) as (dev, counter):
            dev.adaptive = False   # full frames: the meter models them; adaptive sizes follow the machine's timing
            net = DeviceNet(dev, task.netspec, cfg)
            for e in range(2):
                net.train_epoch(X, T, e)
            w = net.get_int_weights()
            evaluate_int(net, net.quantize_inputs(X), net.quantize_targets(T))
        got = measured(counter)
    ref = FixedNet(task.netspec, cfg)
    for e in range(2):
        ref.train_epoch(X, T, e)
    assert same(w, ref.get_int_weights())
    m = LinkMeter(task.netspec, cfg)
    Xq, Tq = ref.quantize_inputs(X), ref.quantize_targets(T)
    for kind, (up, down) in dict(load=m.load(ref.core_params()), train=m.train(Xq, Tq, 2), read_weights=m.readback(w),
                                 evaluate=m.evaluate(Xq, Tq)).items():
        assert got[f"{kind}_to_device"] == up, kind
        n_frames = got.get(f"{kind}_from_device", 0) // 30 + 1
        assert abs(got[f"{kind}_from_device"] - down) <= n_frames, kind   # tick counters: <= 1 byte a frame


def test_a_device_whose_link_fails_is_left_out_and_named():
    """A board that cannot be reached: its round fails with the reason, the others are averaged without it;
    when every device fails the run stops with an EdgeBPError."""
    need_flower()
    from edgebp.errors import EdgeBPError
    from edgebp.fleet.flower import simulate
    task = digits_task(n_devices=3, split="iid")
    res = simulate(task, rounds=1, num_cpus=2, boards={1: "socket://127.0.0.1:1"}, keep_client_weights=True)
    rec = res["rounds"][0]
    assert rec["devices"] == 2 and len(rec["failures"]) >= 1 and "cannot open socket://127.0.0.1:1" in rec["failures"][0]
    gi, gf = initial_weights(task)
    ups = [virtual_round(task, k, 1, gi, gf) for k in (0, 2)]
    want = fedavg_int([u["fixed"].weights for u in ups], [u["fixed"].n for u in ups])
    assert same(res["strategy"].global_weights[1]["fixed"], want)
    with pytest.raises(EdgeBPError, match="every device failed"):
        simulate(FleetTask(task.data, task.spec, task.cfg, n_devices=2, engines=("fixed",)), rounds=1, num_cpus=2,
                 boards={0: "socket://127.0.0.1:1", 1: "socket://127.0.0.1:1"})
