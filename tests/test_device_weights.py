"""DeviceNet.set_int_weights / set_weights upload through edgebp.deploy.write_weights, on both emulated boards,
and early stopping (which restores the best weights) runs on a device like on the host core."""
import numpy as np
import pytest

from edgebp.config import NetSpec, StopRule, TrainConfig
from edgebp.errors import ConfigError, DataError
from devtest import same_weights as same
from toolcheck import need_tools

BOARDS = {"host": ("make", "cc"), "qemu-mps2-an385": ("arm-none-eabi-gcc", "qemu-system-arm"),
          "qemu-microbit": ("arm-none-eabi-gcc", "qemu-system-arm")}


@pytest.fixture(scope="module", params=list(BOARDS))
def board(request):
    need_tools(*BOARDS[request.param])
    from edgebp.device import Emulator
    with Emulator(request.param, timeout=600) as emu:
        yield emu


def test_set_int_weights_and_set_weights_upload(board, diabetes):
    from edgebp.device import Device, DeviceNet
    from edgebp.fixed import FixedNet
    spec, cfg = NetSpec.from_sizes([8, 12, 2]), TrainConfig(lr=0.2, seed=5)
    rng = np.random.default_rng(8)
    ints = [(rng.integers(-3000, 3000, (12, 8)).astype(np.int16), rng.integers(-500, 500, 12).astype(np.int16)),
            (rng.integers(-3000, 3000, (2, 12)).astype(np.int16), rng.integers(-500, 500, 2).astype(np.int16))]
    fn = FixedNet(spec, cfg)
    with Device(board.url, timeout=10) as dev:
        net = DeviceNet(dev, spec, cfg)
        net.set_int_weights(ints)
        fn.set_int_weights(ints)
        assert same(net.get_int_weights(), ints)
        Xq, Tq = fn.quantize_inputs(diabetes.X_train), fn.quantize_targets(diabetes.T_train)
        assert net.train_q(Xq, Tq, 1) == fn.train_q(Xq, Tq, 1)      # trains on from the uploaded integers
        assert same(net.get_int_weights(), fn.get_int_weights())
        floats = fn.get_weights()
        floats[0] = (floats[0][0] * 0.5, floats[0][1])
        net.set_weights(floats)
        fn.set_weights(floats)
        assert same(net.get_int_weights(), fn.get_int_weights())
        with pytest.raises(ConfigError, match="layer 1"):
            net.set_weights([floats[0], (np.zeros((3, 12)), np.zeros(3))])
        with pytest.raises(DataError):
            net.set_weights([(floats[0][0] * 1e6, floats[0][1]), floats[1]])
        assert same(net.get_int_weights(), fn.get_int_weights())       # a refused upload changes nothing


def test_early_stopping_on_a_device_restores_the_best_weights(diabetes):
    need_tools("make", "cc")
    from edgebp.device import Device, DeviceNet, Emulator
    from edgebp.fixed import FixedNet
    spec, cfg = NetSpec.from_sizes([8, 16, 2]), TrainConfig(lr=4.0, seed=2)
    stop = StopRule(epochs=60, patience=3, validation_split=0.25)
    fn = FixedNet(spec, cfg)
    hf = fn.fit(diabetes.X_train, diabetes.T_train, stop)
    assert hf.stopped_by == "early_stopping" and hf.best_epoch < hf.epochs
    with Emulator("host") as emu, Device(emu.url) as dev:
        net = DeviceNet(dev, spec, cfg)
        hd = net.fit(diabetes.X_train, diabetes.T_train, stop)
        assert (hd.epochs, hd.best_epoch, hd.stopped_by, hd.loss, hd.val_loss) == \
            (hf.epochs, hf.best_epoch, hf.stopped_by, hf.loss, hf.val_loss)
        assert same(net.get_int_weights(), fn.get_int_weights())
