"""Issue 14: the simavr-atmega328p board, an 8-bit AVR with 2 KiB of RAM and a 16-bit int (an Arduino Uno's chip)
in simavr. The 8-16-2 network trains online on the simulated chip bit for bit like the host core, in 128-byte
frames (HELLO reports the small maximum body, the host sizes every request by it); a model larger than the
448-byte arena is refused with a clear error; the firmware's static RAM plus the stack it used fit 2 KiB; a
checkpoint saved in the EEPROM comes back after a watchdog reset, and the boot counter counts it."""
import json

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, TrainConfig
from edgebp.errors import DeviceError
from devtest import hard_reset, same_weights
from toolcheck import need_tools

BOARD = "simavr-atmega328p"
RAM = 2048
FLASH_LIMIT = 32 * 1024 - 512      # an Arduino Uno: the ATmega328P's flash less the Optiboot bootloader


@pytest.fixture(scope="module")
def built():
    need_tools("avr-gcc", "make", "cc")
    from edgebp.boards import build
    return build(BOARD)


@pytest.fixture(scope="module")
def url(built):
    from edgebp.boards import start_emulator
    with start_emulator(BOARD, timeout=300, build_first=False) as u:
        yield u


@pytest.mark.parametrize("acts,cfg", [
    ("sigmoid", TrainConfig(seed=3)),                                          # the default: stochastic rounding
    (["tanh", "sigmoid"], TrainConfig(lr=0.5, rounding="nearest", seed=4)),   # tanh: the 16-bit int bug's layer
])
def test_8_16_2_trains_online_on_the_chip_like_the_host(url, built, diabetes, acts, cfg):
    from edgebp.device import Device
    from edgebp.fixed import FixedNet
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2], acts, "mse"), cfg)
    assert fn.memory_report()["total"] == 444
    with Device(url, timeout=20.0) as dev:
        info = dev.info()
        assert info.board == BOARD and info.max_body == 128 and dev.max_body == 128 and info.max_layers == 2
        assert info.tick_unit_name == "ns" and (info.tick_num, info.tick_den) == (125, 2)   # a tick is a cycle
        dev.load_model(fn)
        assert dev.samples_per_frame() == (128 - 8) // 20
        n = 200
        Xq, Tq = fn.quantize_inputs(diabetes.X_train[:n]), fn.quantize_targets(diabetes.T_train[:n])
        r = dev.train(Xq, Tq, 1)
        assert r.loss_sum == fn.train_q(Xq, Tq, 1)
        assert same_weights(dev.read_weights(), fn.get_int_weights())
        assert dev.read_stats()["steps"] == fn.steps == n
        Xt = fn.quantize_inputs(diabetes.X_test[:50])
        assert np.array_equal(dev.predict(Xt), fn.predict_q(Xt))
        # cycles per step from the chip's Timer1 (ns * 16 MHz): thousands of cycles, not instructions
        cycles = r.ticks / n
        assert 1_000 < cycles < 1_000_000
        # static RAM + the deepest stack since reset fit the part's 2 KiB
        stack = dev.info().stack_high_water
        assert 0 < stack < RAM and built["ram"] + stack <= RAM, (built["ram"], stack)


def test_frames_larger_than_the_small_body_are_refused(url):
    from edgebp.device import Device
    with Device(url, timeout=5.0, retries=0) as dev:
        with pytest.raises(DeviceError, match="longer than the device buffer"):
            dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.zeros(100, np.int16)))
        assert dev.info().max_body == 128


def test_a_model_larger_than_the_arena_is_refused(url):
    from edgebp.device import Device
    from edgebp.errors import EdgeBPError
    from edgebp.fixed import FixedNet
    big = FixedNet(NetSpec.from_sizes([8, 32, 2], "sigmoid", "mse"), TrainConfig())
    need = big.memory_report()["total"]
    with Device(url, timeout=10.0) as dev:
        with pytest.raises(EdgeBPError, match=f"needs {need} bytes but the device arena has 448"):
            dev.load_model(big)
        # three layers: the board's ebp_net_t holds two
        three = FixedNet(NetSpec.from_sizes([2, 3, 3, 1], "sigmoid", "mse"), TrainConfig())
        with pytest.raises(EdgeBPError):
            dev.load_model(three)
        assert dev.info().board == BOARD     # still answering


def test_checkpoint_in_eeprom_survives_a_watchdog_reset(url, diabetes):
    from edgebp.deploy import checkpoint_status, erase_checkpoints, save_checkpoint
    from edgebp.device import Device
    from edgebp.fixed import FixedNet
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse"), TrainConfig(seed=8))
    with Device(url, timeout=20.0) as dev:
        boots = dev.info().boot_count
        erase_checkpoints(dev)
        st = checkpoint_status(dev)
        assert st["storage"] and st["slot_bytes"] == 512
        dev.load_model(fn)
        Xq, Tq = fn.quantize_inputs(diabetes.X_train[:30]), fn.quantize_targets(diabetes.T_train[:30])
        dev.train(Xq, Tq, 1)
        fn.train_q(Xq, Tq, 1)
        st = save_checkpoint(dev)
        assert st["last_save"] == "ok" and st["newest_steps"] == 30
        info = hard_reset(dev, dev._params)
        assert info.boot_count == boots + 1 and info.have_model and info.checkpoint_boot == "restored"
        assert same_weights(dev.read_weights(), fn.get_int_weights())
        r = dev.train(Xq, Tq, 1)            # and it trains on like the host (the generator's state came back)
        assert r.loss_sum == fn.train_q(Xq, Tq, 1)
        assert same_weights(dev.read_weights(), fn.get_int_weights())
        erase_checkpoints(dev)


def test_size_report(built):
    assert built["arena"] == 448 and built["ram"] <= RAM - 256    # at least 256 bytes left for the stack
    rep = json.loads(json.dumps(built))
    assert rep["board"] == BOARD
    assert rep["stack_method"].startswith("n/a (no call graph from avr-gcc 5")


def test_firmware_fits_an_arduino_uno(built):
    """Issue 14: what an Arduino Uno has. The firmware (code, constants and the .data image) fits the ATmega328P's
    32 KiB of flash less the 512 bytes of its Optiboot bootloader; the linker's flash region is the part's 32 KiB
    (not more); and the size report, which the build runs, fails a firmware over the limit."""
    import subprocess
    import sys
    from pathlib import Path
    elf = Path(built["elf"])
    assert built["flash_limit"] == FLASH_LIMIT and 0 < built["flash"] <= FLASH_LIMIT, built["flash"]
    mem = elf.with_name("edgebp.map").read_text().split("Memory Configuration", 1)[1].split("Linker script", 1)[0]
    text = next(line.split() for line in mem.splitlines() if line.startswith("text "))
    assert int(text[2], 16) == 32 * 1024, text
    report = Path(__file__).resolve().parent.parent / "firmware" / "tools" / "size_report.py"
    args = [sys.executable, str(report), "--board", BOARD, "--elf", str(elf), "--size-tool", "avr-size",
            "--arena", "448", "--root", "main"]
    for limit, rc in ((built["flash"], 0), (built["flash"] - 1, 1)):
        with __import__("tempfile").TemporaryDirectory() as d:
            p = subprocess.run(args + ["--build", d, "--flash-limit", str(limit)], capture_output=True, text=True)
        assert p.returncode == rc, (limit, p.stdout, p.stderr)
    assert "more than the" in p.stderr and "OVER by 1 bytes" in p.stdout


def _refused_models():
    from edgebp.layers import Conv1D, Dense
    return [
        ("conv1d", NetSpec.sequential(input=(2, 8), layers=[Conv1D(2, 3, act="relu"), Dense(2, act="sigmoid")]),
         TrainConfig()),
        ("int8 weights", NetSpec.sequential(input=4, layers=[Dense(3, act="sigmoid", w_bits=8)]), TrainConfig()),
        ("softmax", NetSpec.from_sizes([4, 3], "softmax", "ce"), TrainConfig()),
        ("a batch (gradient memory)", NetSpec.from_sizes([2, 3, 1], "sigmoid", "mse"), TrainConfig(batch_size=4)),
        ("momentum", NetSpec.from_sizes([2, 3, 1], "sigmoid", "mse"),
         TrainConfig(optimizer="momentum", batch_size=4)),
        ("Xavier init", NetSpec.from_sizes([2, 3, 1], "sigmoid", "mse"), TrainConfig(init="xavier")),
        ("cross-entropy", NetSpec.from_sizes([2, 3, 1], "sigmoid", "ce"), TrainConfig()),
    ]


@pytest.mark.parametrize("what", [m[0] for m in _refused_models()])
def test_features_compiled_out_of_the_board_are_refused_clearly(url, diabetes, what):
    """The board's core is built without what it does without (board.mk: EBP_CONV=0, EBP_INT8=0, EBP_SOFTMAX=0,
    EBP_CE=0, EBP_GRAD_MEMORY=0, EBP_INIT_FAN=0, ...): a model that needs one is refused with EBP_ERR_FEATURE before anything
    changes, and the host raises an EdgeBPError that says so. The host's own core (every feature on) takes the
    same model. The model loaded before still trains like the host's."""
    from edgebp._core import lib
    from edgebp.device import Device, DeviceStatusError
    from edgebp.errors import EdgeBPError
    from edgebp.fixed import FixedNet
    _, spec, cfg = next(m for m in _refused_models() if m[0] == what)
    refused = FixedNet(spec, cfg)
    assert refused.memory_report()["total"] <= 448       # it would fit: refused for the feature, not the size
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse"), TrainConfig(seed=5))
    with Device(url, timeout=10.0) as dev:
        dev.load_model(fn)
        with pytest.raises(DeviceStatusError, match="compiled out") as e:
            dev.load_model(refused)
        assert e.value.status == lib.EBP_ERR_FEATURE and isinstance(e.value, EdgeBPError)
        assert dev.info().have_model
        assert dev.info().to_dict()["features"] == ["upload"]     # HELLO: no STAGE, STATE or gradient memory
        Xq, Tq = fn.quantize_inputs(diabetes.X_train[:10]), fn.quantize_targets(diabetes.T_train[:10])
        assert dev.train(Xq, Tq, 1).loss_sum == fn.train_q(Xq, Tq, 1)
        assert same_weights(dev.read_weights(), fn.get_int_weights())


def test_avr_step_bench_runs(built):
    """tools/step_bench/avr.py's measure() (make bench-avr) works and its table says what it measured; no speed
    claim here (the table is the benchmark)."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tools" / "step_bench"))
    import avr
    r = avr.measure()
    assert r["macs"] == 2 * (8 * 16 + 16 * 2) + 16 * 2 and r["arena_bytes"] == 448
    for k in ("core_step", "core_step_nearest", "core_fwd", "genann_step", "genann_fwd", "mac32", "mac64"):
        assert r[k] > 0, k
    assert r["mac32"] < r["mac64"] and r["core_fwd"] < r["core_step"]
    assert abs(sum(r["phases"].values()) - 1.0) < 1e-9
    text = avr.table(r)
    assert "genann" in text and "-Os" in text and f"{r['core_step']:,.0f}" in text


def test_cli_device_train_checks_and_reports_cycles(built, capsys, tmp_path):
    """What a user runs: `edgebp device train ... --board simavr-atmega328p --check` starts the runner (no QEMU
    needed), trains bit-identically and reports CPU cycles per step from the chip's cycle counter. The weights
    are saved after every epoch (without the training state, which this firmware cannot read)."""
    from edgebp.cli import main
    from edgebp.weights import load_weights
    w = tmp_path / "w.npz"
    rc = main(["device", "train", "diabetes", "--board", "simavr-atmega328p", "--layers", "8,16,2", "--epochs", "2",
               "--check", "--json", "--save-weights", str(w), "--resume"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["check"]["identical"]
    assert load_weights(w).run["finished"] and load_weights(w).run["state"] == []
    assert 50_000 < out["engines"]["device"]["cycles_per_step"] < 1_000_000


def test_a_reset_during_a_resumable_run_is_restored_by_replay(url, diabetes):
    """The board has no STATE message (board.mk), so DeviceNet(resume=True) cannot restore a reset device's
    training state from its checkpoint: HELLO's features say so at its first checkpoint, and it replays instead;
    the finished run is the host's, bit for bit."""
    from edgebp.deploy import erase_checkpoints
    from edgebp.device import Device, DeviceNet
    from edgebp.fixed import FixedNet
    spec, cfg = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse"), TrainConfig(seed=9)
    fn = FixedNet(spec, cfg)
    X, T = fn.quantize_inputs(diabetes.X_train[:40]), fn.quantize_targets(diabetes.T_train[:40])
    with Device(url, timeout=20.0) as dev:
        erase_checkpoints(dev)
        net = DeviceNet(dev, spec, cfg, resume=True, resume_timeout=60.0)
        assert net.train_q(X[:20], T[:20], 1) == fn.train_q(X[:20], T[:20], 1)
        assert net.restore == "replay" and any("no STATE or weight upload" in e for e in net.events)
        hard_reset(dev, dev._params)    # behind the run's back: the chip resets and forgets the model
        assert net.train_q(X[20:], T[20:], 1) == fn.train_q(X[20:], T[20:], 1)
        assert any("replaying" in e for e in net.events), net.events
        assert same_weights(dev.read_weights(), fn.get_int_weights())


def test_host_trained_weights_go_onto_the_uno_and_train_on(url, diabetes):
    """Weight upload fits the Uno's 32 KiB: weights trained on the host are written to the board (WRITE_WEIGHTS
    in 128-byte frames, then COMMIT_WEIGHTS with their CRC-32) and fine-tuned there like the host core."""
    from edgebp.deploy import write_weights
    from edgebp.device import Device
    from edgebp.fixed import FixedNet
    spec, cfg = NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse"), TrainConfig(seed=4)
    host = FixedNet(spec, cfg)
    X, T = host.quantize_inputs(diabetes.X_train[:60]), host.quantize_targets(diabetes.T_train[:60])
    host.train_q(X[:40], T[:40], 1)                   # trained on the host
    with Device(url, timeout=20.0) as dev:
        dev.load_model(FixedNet(spec, cfg))           # the board starts from its own initial weights
        write_weights(dev, host.get_int_weights(), rng=int(host._net.rng), steps=host.steps)  # and its generator
        assert same_weights(dev.read_weights(), host.get_int_weights()) and dev.read_stats()["steps"] == 40
        dev.train(X[40:], T[40:], 1)
        host.train_q(X[40:], T[40:], 1)
        assert same_weights(dev.read_weights(), host.get_int_weights())
