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


def check_link_meter(url, task, k, body):
    """The bytes on the link of the device at ``url`` (frame bodies of at most ``body`` bytes; None: the
    protocol's) against LinkMeter's: per message kind for LOAD, 2 epochs of TRAIN, READ_WEIGHTS and EVALUATE;
    then a whole fleet round (with the weight upload) against virtual_round's count for device ``k``."""
    from edgebp.device import DeviceNet
    from edgebp.fixed import FixedNet
    from edgebp.fleet.boards import _device_net, connect, measured
    from edgebp.fleet.client import evaluate_int, train_int
    X, T = device_data(task, k)
    cfg = task.config(1, k)
    with connect(url) as (dev, counter):
        dev.adaptive = False   # full frames: the meter models them; adaptive sizes follow the machine's timing
        assert dev.max_body == (body or 1024)
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
    m = LinkMeter(task.netspec, cfg, body)
    Xq, Tq = ref.quantize_inputs(X), ref.quantize_targets(T)
    tr, ev = m.train(Xq, Tq, 2), m.evaluate(Xq, Tq)
    staged = got.get("stage_to_device", 0) > 0      # STAGE frames (counted apart) carry the heads of the samples
    want = dict(load=m.load(ref.core_params()), read_weights=m.readback(w))
    want.update({"train+evaluate+stage": (tr[0] + ev[0], tr[1] + ev[1])} if staged else dict(train=tr, evaluate=ev))
    assert staged == (2 * (task.netspec.sizes[0] + task.netspec.sizes[-1]) > dev.max_body - 8)
    for kind, (up, down) in want.items():
        have = {way: sum(got.get(f"{part}_{way}", 0) for part in kind.split("+"))
                for way in ("to_device", "from_device")}
        assert have["to_device"] == up, kind
        n_frames = have["from_device"] // 30 + 1
        assert abs(have["from_device"] - down) <= n_frames, kind   # tick counters: <= 1 byte a frame
    # a fleet round as boards.board_round runs it (full frames), against the virtual device's computed count
    gi, _ = initial_weights(task)
    with connect(url) as (dev, counter):
        dev.adaptive = False
        up = train_int(_device_net(dev, task, cfg), gi, X, T, task.local_epochs)
    got = measured(counter)
    virt = virtual_round(task, k, 1, gi, None)["fixed"]
    assert same(up.weights, virt.weights)
    want = virt.link_bytes
    for way in ("to_device", "from_device"):   # less the HELLO, the 0x00 before it and frames resent (a new
        # connection's first sequence numbers can meet the device's cache of the previous one's)
        extra = got[way] - sum(got.get(f"{kind}_{way}", 0) for kind in ("hello", "delimiters", "retransmitted")) \
            - want[way]
        n_frames = got[way] // 30 + 1
        assert (extra == 0) if way == "to_device" else (0 <= extra <= n_frames), (way, got[way], want[way])


def test_link_meter_counts_the_bytes_a_device_exchanges():
    """Against the firmware's host port: LOAD, TRAIN, READ_WEIGHTS and EVALUATE frames, counted on the link."""
    need_tools("make", "cc")
    from edgebp.boards import start_emulator
    task = digits_task(n_devices=20, shuffle=True)
    with start_emulator("host", timeout=120) as url:
        check_link_meter(url, task, 2, None)


@pytest.fixture(scope="module")
def small_host(tmp_path_factory):
    from devtest import build_small_host
    return build_small_host(tmp_path_factory.mktemp("host-small-fleet"), 128)


@pytest.mark.parametrize("sizes,data", [([8, 16, 2], "diabetes"),          # 6 samples a TRAIN frame, not 50
                                        ([64, 32, 10], "sklearn:digits")])  # a sample larger than a frame: staged
def test_link_meter_counts_the_bytes_of_a_device_with_small_frames(small_host, sizes, data):
    """A board with 128-byte frame bodies (the AVR's; here the host port built so): Device sizes every request
    by HELLO's max_body, and LinkMeter, given the same body (FleetTask.max_body), counts the frames it sends."""
    from edgebp.boards import start_emulator
    spec = NetSpec.from_sizes(sizes, "sigmoid", "mse")
    task = FleetTask(data, spec.to_dict(), TrainConfig(lr=0.2, seed=3, shuffle=True).to_dict(), n_devices=20,
                     split="iid", split_seed=5, local_epochs=1, max_body=128)
    with start_emulator("host", timeout=120, elf=small_host) as url:
        check_link_meter(url, task, 2, 128)


def test_link_meter_sizes_frames_by_the_devices_body():
    """No device needed: with 128-byte bodies every frame LinkMeter counts is a small one, there are more of them,
    and the round costs more bytes than with the protocol's 1,024; FleetTask.max_body is checked."""
    from edgebp import protocol as P
    from edgebp.errors import ConfigError
    from edgebp.fixed import FixedNet
    spec = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse")
    cfg = TrainConfig(seed=1)
    net = FixedNet(spec, cfg)
    rng = np.random.default_rng(0)
    Xq = rng.integers(-4096, 4096, (60, 8)).astype(np.int16)
    Tq = rng.integers(0, 4096, (60, 2)).astype(np.int16)
    big, small = LinkMeter(spec, cfg), LinkMeter(spec, cfg, 128)
    assert big.body == 1024 and small.body == 128 and LinkMeter(spec, cfg, 4096).body == 1024

    def frames(lengths):   # TRAIN request bytes for consecutive chunks of the given sample counts
        los = np.cumsum([0] + list(lengths))
        return sum(big.frame(P.TRAIN, P.pack_train(Xq[lo:hi], Tq[lo:hi], 1, 0)) for lo, hi in zip(los, los[1:]))
    # 20 bytes a sample: 50 of them a frame with 1,024-byte bodies, 6 with 128-byte ones
    assert big.train(Xq, Tq, 1)[0] == frames([50, 10])
    assert small.train(Xq, Tq, 1)[0] == frames([6] * 10) > frames([50, 10])
    w = net.get_int_weights()
    assert small.readback(w)[1] > big.readback(w)[1] and small.upload(w)[0] > big.upload(w)[0]
    for bad in (64, 1.5, "128", True):
        with pytest.raises(ConfigError, match="max_body"):
            LinkMeter(spec, cfg, bad)
    with pytest.raises(ConfigError, match="one per device"):
        FleetTask("diabetes", spec.to_dict(), cfg.to_dict(), n_devices=3, max_body=(128, 1024))
    t = FleetTask("diabetes", spec.to_dict(), cfg.to_dict(), n_devices=3, max_body=[128, 1024, 512])
    assert [t.body_of(k) for k in range(3)] == [128, 1024, 512]


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
