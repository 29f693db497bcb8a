"""A device whose frames are small (an 8-bit board with 2 KiB of RAM): HELLO reports its maximum body and the host
sizes every request and answer by it. The host port built with EBP_APP_MAX_BODY=128 trains, uploads, reads back
and predicts bit for bit like FixedNet."""

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, TrainConfig
from edgebp.errors import DeviceError
from devtest import build_small_host

BODY = 128


@pytest.fixture(scope="module")
def small_url(tmp_path_factory):
    from edgebp.boards import start_emulator
    elf = build_small_host(tmp_path_factory.mktemp("host-small"), BODY)
    with start_emulator("host", timeout=300, elf=elf) as url:
        yield url


def test_small_device_trains_uploads_and_reads_back_like_the_host(small_url):
    from edgebp.data import load_dataset
    from edgebp.deploy import write_weights
    from edgebp.device import Device
    from edgebp.fixed import FixedNet
    d = load_dataset("diabetes")
    cfg = TrainConfig(optimizer="momentum", lr=0.1, momentum=0.9, batch_size=4, seed=5)
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2], "sigmoid", "mse"), cfg)
    with Device(small_url, timeout=20.0, retries=2) as dev:
        info = dev.info()
        assert info.max_body == BODY and dev.max_body == BODY
        assert len(info.build) < BODY           # HELLO's build description is cut to fit the frame
        dev.load_model(fn)
        # 8 inputs + 2 targets = 20 bytes a sample: at most 6 in a 128-byte body (8 bytes of header)
        assert dev.samples_per_frame() == (BODY - 8) // 20
        rng = np.random.default_rng(1)
        w = [(rng.integers(-3000, 3000, W.shape).astype(np.int16), rng.integers(-3000, 3000, b.shape).astype(np.int16))
             for W, b in fn.get_int_weights()]
        write_weights(dev, w)                   # 144 weights in chunks of at most 60
        fn.set_int_weights(w)
        Xq, Tq = fn.quantize_inputs(d.X_train[:64]), fn.quantize_targets(d.T_train[:64])
        assert dev.train(Xq, Tq, 4).loss_sum == fn.train_q(Xq, Tq, 4)
        for (dW, db), (hW, hb) in zip(dev.read_weights(), fn.get_int_weights()):
            assert np.array_equal(dW, hW) and np.array_equal(db, hb)
        Xt = fn.quantize_inputs(d.X_test[:40])
        assert np.array_equal(dev.predict(Xt), fn.predict_q(Xt))
        assert dev.read_stats()["steps"] == fn.steps
    # a request larger than the device's buffer is refused as a frame error, and the device still answers
    with Device(small_url, timeout=2.0, retries=0) as dev:
        with pytest.raises(DeviceError, match="longer than the device buffer"):
            dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.zeros(100, np.int16)))
        assert dev.info().max_body == BODY
