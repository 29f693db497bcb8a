"""Checkpoints in the device's non-volatile storage (firmware/app/ckpt.c): train, save, reset the MCU,
reconnect: the same integers, and training goes on bit for bit like the host; a corrupt newest slot boots
from the other one, or with no model and a clear status. Host port (storage in a file), qemu-mps2-an385
(RAM that survives a system reset: emulated retention, not power loss) and qemu-microbit (nRF51 NVMC flash)."""
import os

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, TrainConfig
from edgebp.deploy import (checkpoint_status, damage_checkpoint, erase_checkpoints, save_checkpoint,
                           set_autosave)
from edgebp.errors import DeviceError
from devtest import hard_reset
from toolcheck import need_tools

BOARDS = {"host": ("make", "cc"), "qemu-mps2-an385": ("arm-none-eabi-gcc", "qemu-system-arm"),
          "qemu-microbit": ("arm-none-eabi-gcc", "qemu-system-arm")}


@pytest.fixture(scope="module", params=list(BOARDS))
def board(request, tmp_path_factory):
    """(name, url, storage file or None). The host port keeps its storage in a file (EBP_HOST_NV)."""
    need_tools(*BOARDS[request.param])
    from edgebp.boards import start_emulator
    nv = None
    old = os.environ.get("EBP_HOST_NV")
    if request.param == "host":
        nv = tmp_path_factory.mktemp("nv") / "host.nv"
        os.environ["EBP_HOST_NV"] = str(nv)
    try:
        with start_emulator(request.param, timeout=900) as url:
            yield request.param, url, nv
    finally:
        if old is None:
            os.environ.pop("EBP_HOST_NV", None)
        else:
            os.environ["EBP_HOST_NV"] = old


@pytest.fixture
def dev(board):
    from edgebp.device import Device
    with Device(board[1], timeout=20.0) as d:
        erase_checkpoints(d)
        yield d


def make_net(cfg, sizes=(8, 16, 2), **kw):
    from edgebp.fixed import FixedNet
    return FixedNet(NetSpec.from_sizes(list(sizes), **kw), cfg)


def assert_same(a, b):
    assert len(a) == len(b)
    for (W1, b1), (W2, b2) in zip(a, b):
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)


def momentum_net():
    cfg = TrainConfig(optimizer="momentum", lr=0.1, momentum=0.9, batch_size=4, rounding="stochastic", seed=9)
    return make_net(cfg, activation=["tanh", "sigmoid"])


def test_train_save_reset_restores_everything(dev, diabetes):
    """Weights, momentum velocities, the rounding generator and the step count come back: after the reset the
    device trains on exactly like the host that never stopped."""
    fn = momentum_net()
    dev.load_model(fn)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:96]), fn.quantize_targets(diabetes.T_train[:96])
    dev.train(Xq[:48], Tq[:48], 4)
    fn.train_q(Xq[:48], Tq[:48], 4)
    st = save_checkpoint(dev)
    assert st["last_save"] == "ok" and st["newest_steps"] == fn.steps == 12 and st["saves"] == 1
    info = hard_reset(dev, fn.core_params())
    assert info.have_model and info.checkpoint == dict(slot=st["newest_slot"], steps=12)
    assert info.checkpoint_boot == "restored"
    assert_same(dev.read_weights(), fn.get_int_weights())
    assert dev.read_stats()["steps"] == 12
    r = dev.train(Xq[48:], Tq[48:], 4)
    assert r.loss_sum == fn.train_q(Xq[48:], Tq[48:], 4)
    assert_same(dev.read_weights(), fn.get_int_weights())


def test_slots_alternate_and_a_corrupt_newest_slot_falls_back(dev, diabetes):
    fn = make_net(TrainConfig(lr=0.2, seed=4))
    dev.load_model(fn)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:40]), fn.quantize_targets(diabetes.T_train[:40])
    dev.train(Xq[:20], Tq[:20], 1)
    fn.train_q(Xq[:20], Tq[:20], 1)
    first = save_checkpoint(dev)
    at_first = fn.get_int_weights()
    dev.train(Xq[20:], Tq[20:], 1)
    fn.train_q(Xq[20:], Tq[20:], 1)
    second = save_checkpoint(dev)
    assert second["newest_slot"] == 1 - first["newest_slot"] and second["newest_seq"] == first["newest_seq"] + 1
    damage_checkpoint(dev, second["newest_slot"])
    st = checkpoint_status(dev)
    assert st["newest_slot"] == first["newest_slot"] and st["corrupt_slots"] == [second["newest_slot"]]
    info = hard_reset(dev, fn.core_params())
    assert info.checkpoint == dict(slot=first["newest_slot"], steps=20)
    assert info.checkpoint_boot.startswith("restored the older slot")
    assert_same(dev.read_weights(), at_first)
    # both slots corrupt: the device boots without a model, says so, and keeps working
    save_checkpoint(dev)                      # into the corrupt slot: good again
    damage_checkpoint(dev, 0)
    damage_checkpoint(dev, 1)
    info = hard_reset(dev)
    assert not info.have_model and info.checkpoint is None and info.checkpoint_boot.startswith("corrupt")
    with pytest.raises(DeviceError, match="no model"):
        dev.request(P.PREDICT, P.pack_predict(Xq[:1]))
    fresh = make_net(TrainConfig(lr=0.2, seed=4))
    dev.load_model(fresh)
    assert np.array_equal(dev.predict(Xq), fresh.predict_q(Xq))


def test_garbage_written_into_the_storage_file(dev, board, diabetes):
    """Host port: the newest slot overwritten with random bytes through the port layer (its file)."""
    if board[2] is None:
        pytest.skip("only the host port keeps its storage in a file; the boards use the protocol's damage hook")
    fn = make_net(TrainConfig(lr=0.2, seed=5))
    dev.load_model(fn)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:30]), fn.quantize_targets(diabetes.T_train[:30])
    dev.train(Xq[:10], Tq[:10], 1)
    fn.train_q(Xq[:10], Tq[:10], 1)
    a = save_checkpoint(dev)
    at_a = fn.get_int_weights()
    dev.train(Xq[10:], Tq[10:], 1)
    b = save_checkpoint(dev)
    slot_bytes = b["slot_bytes"]
    with open(board[2], "r+b") as f:           # header and payload of the newest slot
        f.seek(b["newest_slot"] * slot_bytes)
        f.write(np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8).tobytes())
    info = hard_reset(dev)
    assert info.checkpoint == dict(slot=a["newest_slot"], steps=10)
    assert_same(dev.read_weights(), at_a)


def test_autosave_every_n_steps(dev, diabetes):
    fn = make_net(TrainConfig(lr=0.2, seed=6))
    dev.load_model(fn)
    set_autosave(dev, 30)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:100]), fn.quantize_targets(diabetes.T_train[:100])
    snapshots = {}
    for lo in range(0, 100, 20):               # one TRAIN request per 20 samples
        dev.train(Xq[lo:lo + 20], Tq[lo:lo + 20], 1)
        fn.train_q(Xq[lo:lo + 20], Tq[lo:lo + 20], 1)
        snapshots[fn.steps] = fn.get_int_weights()
    st = checkpoint_status(dev)
    # saves after the requests that end at 40 (>= 0 + 30) and 80 (>= 40 + 30) steps
    assert st["autosave_every"] == 30 and st["saves"] == 2 and st["newest_steps"] == 80
    info = hard_reset(dev)
    assert info.checkpoint["steps"] == 80
    assert_same(dev.read_weights(), snapshots[80])
    assert checkpoint_status(dev)["autosave_every"] == 0      # a reset turns autosave off until the host sets it


def test_save_without_a_model_or_too_large_is_refused(dev, board):
    dev.reset()
    with pytest.raises(DeviceError, match="no model"):
        save_checkpoint(dev)
    if board[0] == "host":                     # 732 KiB of weights, 512 KiB slots
        dev.load_model(make_net(TrainConfig(), sizes=(8, 600, 600, 2)))
        with pytest.raises(DeviceError, match="larger than a storage slot"):
            save_checkpoint(dev)
        assert checkpoint_status(dev)["last_save"].startswith("the checkpoint is larger")
