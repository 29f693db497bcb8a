"""An emulated fleet (2 Cortex-M0 micro:bits and 2 Cortex-M3 MPS2 boards in QEMU, plus 2 virtual devices) gives,
round by round, the same integers as the same fleet simulated on the host core; and the bytes measured on
each board's link are the ones LinkMeter computes (plus each connection's HELLO)."""
import numpy as np
import pytest

from edgebp.config import NetSpec, TrainConfig
from edgebp.fleet.client import FleetTask
from test_fleet import need_flower, same
from toolcheck import need_tools

BOARDS = ["qemu-microbit", "qemu-microbit", "qemu-mps2-an385", "qemu-mps2-an385"]


@pytest.fixture(scope="module")
def fleets():
    need_flower()
    need_tools("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from edgebp.fleet.boards import start_boards
    from edgebp.fleet.flower import simulate
    spec = NetSpec.from_sizes([8, 8, 2], "sigmoid", "mse")
    cfg = TrainConfig(lr=0.3, seed=11, shuffle=True, rounding="stochastic")
    task = FleetTask("diabetes", spec.to_dict(), cfg.to_dict(), n_devices=6, split="dirichlet:1.0", split_seed=2,
                     local_epochs=2)
    with start_boards(BOARDS, timeout=900) as urls:
        emulated = simulate(task, rounds=2, boards=dict(enumerate(urls)), num_cpus=2, keep_client_weights=True,
                            board_timeout=60)
    simulated = simulate(task, rounds=2, num_cpus=2, keep_client_weights=True)
    return task, emulated, simulated


def test_emulated_fleet_is_bit_identical_to_the_simulated_one_round_by_round(fleets):
    task, emu, sim = fleets
    for r in (1, 2):
        assert emu["rounds"][r - 1]["failures"] == []
        assert same(emu["strategy"].global_weights[r]["fixed"], sim["strategy"].global_weights[r]["fixed"]), r
        for k in range(task.n_devices):
            assert same(emu["strategy"].client_weights[r][k]["fixed"], sim["strategy"].client_weights[r][k]["fixed"])
        for key in ("test_accuracy", "device_accuracy_mean", "device_accuracy_worst", "local_accuracy_mean"):
            assert emu["rounds"][r - 1]["fixed"][key] == sim["rounds"][r - 1]["fixed"][key]
    # the float mirror is on the host in both runs: the same too
    assert np.array_equal(emu["strategy"].global_weights[2]["float"][0][0],
                          sim["strategy"].global_weights[2]["float"][0][0])


def test_board_links_carry_the_computed_bytes(fleets):
    task, emu, sim = fleets
    for r in (0, 1):
        e, s = emu["rounds"][r]["link_bytes"], sim["rounds"][r]["link_bytes"]
        assert e["measured_on_boards"] == [0, 1, 2, 3]
        for k in range(task.n_devices):
            got, want = e["per_device"][str(k)], s["per_device"][str(k)]
            if k < 4:   # measured: also a HELLO and a leading 0x00 per connection (two connections a round),
                # and the frames a loaded host resent (with their leading 0x00 and the device's repeated answers);
                # the device's tick counters (0 in the computation) add at most a byte per response frame
                extra = got - want - e["hello_per_device"][str(k)] - e["retransmitted_per_device"][str(k)]
                assert 0 <= extra <= 4, (k, got, want, extra)
            else:
                assert got == want


def test_basicmotions_fleet_with_a_microbit_equals_the_simulated_one():
    """Issue 16's BasicMotions row on a board: windows of 6 x 100 (larger than a frame: staged) trained by an
    emulated micro:bit in a fleet of 3, one round, the same integers as the all-virtual fleet; and the bytes
    measured on its link are LinkMeter's (which models the STAGE frames)."""
    need_flower()
    need_tools("arm-none-eabi-gcc", "qemu-system-arm", "make")
    from edgebp.fleet.boards import start_boards
    from edgebp.fleet.flower import simulate
    from edgebp.cli_model import parse_model
    spec = NetSpec.sequential((6, 100), parse_model("conv1d(4,5,stride=2,act=relu),maxpool1d(2),gap,"
                                                    "dense(4,act=softmax)"), in_frac=10)
    cfg = TrainConfig(lr=0.05, seed=3, shuffle=True, rounding="stochastic", init="he")
    task = FleetTask("BasicMotions", spec.to_dict(), cfg.to_dict(), n_devices=3, split="dirichlet:0.5",
                     split_seed=1, local_epochs=1, scale="standard")
    with start_boards(["qemu-microbit"], timeout=900) as urls:
        emu = simulate(task, rounds=1, boards={0: urls[0]}, num_cpus=2, keep_client_weights=True, board_timeout=60)
    sim = simulate(task, rounds=1, num_cpus=2, keep_client_weights=True)
    assert emu["rounds"][0]["failures"] == []
    assert same(emu["strategy"].global_weights[1]["fixed"], sim["strategy"].global_weights[1]["fixed"])
    for k in range(3):
        assert same(emu["strategy"].client_weights[1][k]["fixed"], sim["strategy"].client_weights[1][k]["fixed"])
    assert emu["rounds"][0]["fixed"]["test_accuracy"] == sim["rounds"][0]["fixed"]["test_accuracy"]
    e, s = emu["rounds"][0]["link_bytes"], sim["rounds"][0]["link_bytes"]
    got, want = e["per_device"]["0"], s["per_device"]["0"]
    extra = got - want - e["hello_per_device"]["0"] - e["retransmitted_per_device"]["0"]
    assert 0 <= extra <= 4, (got, want, extra)


def test_avr_board_round_carries_the_bytes_computed_for_its_128_byte_frames():
    """A fleet device that is the 8-bit AVR (simavr-atmega328p, 128-byte frame bodies): its round (the board
    path of the ClientApp, boards.board_round, and board_evaluate) gives the integers of the virtual device, and
    the bytes measured on its link are LinkMeter's for the body the board reports in HELLO (FleetTask.max_body),
    not for the protocol's 1,024 (which counts fewer, larger frames)."""
    need_tools("avr-gcc", "make", "cc")
    import dataclasses
    from edgebp.fleet.boards import board_evaluate, board_round, max_bodies, start_boards
    from edgebp.fleet.client import initial_weights, virtual_evaluate, virtual_round
    spec = NetSpec.from_sizes([8, 8, 2], "sigmoid", "mse")
    cfg = TrainConfig(lr=0.3, seed=11, shuffle=True, rounding="stochastic")
    task = FleetTask("diabetes", spec.to_dict(), cfg.to_dict(), n_devices=6, split="dirichlet:1.0", split_seed=2,
                     local_epochs=2)
    k = 1
    gi, _ = initial_weights(task)
    with start_boards(["simavr-atmega328p"], timeout=600) as (url,):
        (body,) = max_bodies([url])
        up = board_round(task, k, 1, gi, url, timeout=60)
        ev, ev_bytes = board_evaluate(task, k, up.weights, url, timeout=60)
    assert body == 128
    twin = dataclasses.replace(task, max_body=body)
    virt = virtual_round(twin, k, 1, gi, None)["fixed"]
    assert same(up.weights, virt.weights) and (up.loss, up.accuracy) == (virt.loss, virt.accuracy)
    vev, vev_bytes = virtual_evaluate(twin, k, up.weights, None)
    assert ev == vev["fixed"]
    full = dataclasses.replace(task, max_body=None)     # what the meter counted before it took the device's body
    round_1024 = virtual_round(full, k, 1, gi, None)["fixed"].link_bytes
    for got, want, want_1024 in ((up.link_bytes, virt.link_bytes, round_1024),
                                 (ev_bytes, vev_bytes, virtual_evaluate(full, k, up.weights, None)[1])):
        # measured: also the HELLO and its leading 0x00, and frames resent; tick counters: <= 1 byte a response
        extra = {way: got[way] - want[way] - sum(v for kd, v in got.items() if kd.endswith("_" + way) and
                                                 kd.startswith(("hello_", "retransmitted_", "corrupt_", "delimiters_")))
                 for way in ("to_device", "from_device")}
        assert extra["to_device"] == 0 and 0 <= extra["from_device"] <= 4, (got, want)
        assert want_1024["total"] < want["total"]
