"""The qemu-mps2-an386 board (Cortex-M4F, the DSP kernels of csrc/arch/): the firmware names itself, trains the
default configuration (online SGD, stochastic rounding) bit for bit like the host core, statistics included,
and reports its instruction count."""
import numpy as np
from toolcheck import need_tools

from edgebp.config import NetSpec, TrainConfig


def test_an386_trains_like_the_host():
    need_tools("make", "arm-none-eabi-gcc", "qemu-system-arm")
    from edgebp import protocol as P
    from edgebp.boards import get_board, start_emulator
    from edgebp.data import load_dataset
    from edgebp.device import Device
    from edgebp.fixed import FixedNet
    b = get_board("qemu-mps2-an386")
    assert b.core == "cortex-m4" and b.qemu_machine == "mps2-an386" and b.buildable
    ds = load_dataset("diabetes")
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2]), TrainConfig(lr=0.2, batch_size=1, seed=7))
    assert fn.cfg.rounding == "stochastic"
    Xq, Tq = fn.quantize_inputs(ds.X_train), fn.quantize_targets(ds.T_train)
    with start_emulator("qemu-mps2-an386", timeout=600) as url, Device(url, timeout=30.0, retries=2) as dev:
        info = dev.info()
        assert info.board == "qemu-mps2-an386" and "cortex-m4" in info.build
        dev.load_model(fn)
        r = dev.train(Xq, Tq, 1)
        assert r.loss_sum == fn.train_q(Xq, Tq, 1)
        for (dW, db), (hW, hb) in zip(dev.read_weights(), fn.get_int_weights()):
            assert np.array_equal(dW, hW) and np.array_equal(db, hb)
        stats = dev.read_stats()
        assert [{k: l[k] for k in P.STAT_FIELDS} for l in stats["layers"]] == fn.stats()
        assert 1000 < dev.board_info.ticks_to(r.ticks) / r.steps_taken < 10 ** 5
