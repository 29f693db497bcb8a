"""Fine-tuning only the last layers on the device (issue 11 section 2, device half): LOAD carries the per-layer
frozen flag (the LOAD extension of protocol 3), the host-pretrained weights are uploaded, and training on the
device is bit-identical to FixedNet's; the frozen layers do not move, the device lays out only what the
trained layers need, and a checkpoint restores the frozen configuration. Host port and both emulated boards."""

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, TrainConfig
from edgebp.deploy import erase_checkpoints, save_checkpoint, write_weights
from edgebp.fixed import FixedNet
from devtest import hard_reset
from toolcheck import need_tools

BOARDS = {"host": ("make", "cc"), "qemu-mps2-an385": ("arm-none-eabi-gcc", "qemu-system-arm"),
          "qemu-microbit": ("arm-none-eabi-gcc", "qemu-system-arm")}


@pytest.fixture(scope="module", params=list(BOARDS))
def dev(request):
    need_tools(*BOARDS[request.param])
    from edgebp.boards import start_emulator
    from edgebp.device import Device
    with start_emulator(request.param, timeout=900) as url:
        with Device(url, timeout=20.0) as d:
            yield d


@pytest.fixture(scope="module")
def pretrained():
    """8-16-16-2 pretrained on the host on the first half of diabetes' training set."""
    from edgebp.data import load_dataset
    ds = load_dataset("diabetes")
    half = len(ds.X_train) // 2
    base = FixedNet(NetSpec.from_sizes([8, 16, 16, 2]), TrainConfig(lr=0.3, seed=2))
    base.train_q(base.quantize_inputs(ds.X_train[:half]), base.quantize_targets(ds.T_train[:half]), 1)
    return base, ds, half


def test_load_body_round_trip_with_the_extension():
    spec = NetSpec.from_sizes([8, 16, 16, 2]).with_trainable_last(1)
    p = FixedNet(spec, TrainConfig()).core_params()
    assert [e[1] for e in p["layer_ext"]] == [1, 1, 0]
    body = P.pack_load(p)
    assert len(body) == 20 + 5 * 3 + 4 + 5 * 3
    assert P.unpack_load(body) == p


@pytest.mark.parametrize("cfg", [TrainConfig(lr=0.1, seed=8),
                                 TrainConfig(optimizer="momentum", lr=0.05, momentum=0.9, batch_size=4,
                                             rounding="stochastic", seed=8)], ids=["online", "momentum"])
def test_finetune_last_layer_on_the_device_like_the_host(dev, pretrained, cfg):
    base, ds, half = pretrained
    spec = base.spec.with_trainable_last(1)
    host = FixedNet(spec, cfg)
    host.set_int_weights(base.get_int_weights())
    mem = dev.load_model(host)
    assert mem["total"] == host.memory_report()["total"]
    full = FixedNet(base.spec, cfg).memory_report()["total"]
    assert mem["total"] < full                      # no deltas, gradients or velocities for the frozen layers
    write_weights(dev, base.get_int_weights())
    n = {"host": 300, "qemu-mps2-an385": 200, "qemu-microbit": 64}.get(dev.board_info.board, 64)
    X, T = ds.X_train[half:half + n], ds.T_train[half:half + n]
    Xq, Tq = host.quantize_inputs(X), host.quantize_targets(T)
    r = dev.train(Xq, Tq, cfg.batch_size)
    assert r.loss_sum == host.train_q(Xq, Tq, cfg.batch_size)
    got, want = dev.read_weights(), host.get_int_weights()
    for (dW, db), (hW, hb) in zip(got, want):
        assert np.array_equal(dW, hW) and np.array_equal(db, hb)
    for (dW, db), (bW, bb) in zip(got[:2], base.get_int_weights()[:2]):
        assert np.array_equal(dW, bW) and np.array_equal(db, bb)      # frozen: unchanged
    assert not np.array_equal(got[2][0], base.get_int_weights()[2][0])  # the last layer learned
    Xt = host.quantize_inputs(ds.X_test[:40])
    assert np.array_equal(dev.predict(Xt), host.predict_q(Xt))


def test_checkpoint_keeps_the_frozen_configuration(dev, pretrained):
    base, ds, half = pretrained
    spec = base.spec.with_trainable_last(1)
    cfg = TrainConfig(lr=0.1, seed=9)
    host = FixedNet(spec, cfg)
    host.set_int_weights(base.get_int_weights())
    dev.load_model(host)
    write_weights(dev, base.get_int_weights())
    erase_checkpoints(dev)
    Xq, Tq = host.quantize_inputs(ds.X_train[half:half + 60]), host.quantize_targets(ds.T_train[half:half + 60])
    dev.train(Xq[:30], Tq[:30], 1)
    host.train_q(Xq[:30], Tq[:30], 1)
    save_checkpoint(dev)
    info = hard_reset(dev, host.core_params())
    assert info.have_model and info.checkpoint["steps"] == 30
    dev._state = None
    assert dev.train(Xq[30:], Tq[30:], 1).loss_sum == host.train_q(Xq[30:], Tq[30:], 1)
    for (dW, db), (hW, hb) in zip(dev.read_weights(), host.get_int_weights()):
        assert np.array_equal(dW, hW) and np.array_equal(db, hb)
    erase_checkpoints(dev)


def test_finetune_demo_script_runs(capsys):
    """firmware/tools/finetune_demo.py (the transfer-learning table of the report), briefly on the host port;
    it returns 1 if a run is not bit-identical to the host."""
    need_tools("make", "cc")
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "firmware" / "tools" / "finetune_demo.py"
    spec = importlib.util.spec_from_file_location("finetune_demo", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--board", "host", "--pre-epochs", "2", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "last layer" in out and "all layers" in out and "NO" not in out
