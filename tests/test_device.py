"""End to end: the firmware on the host port and on emulated boards trains bit for bit like FixedNet."""
import time

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, TrainConfig
from edgebp._core import lib
from edgebp.errors import ConfigError, DeviceError, MemoryBudgetError
from toolcheck import need_tools


BOARDS = {"host": ("make", "cc"), "qemu-mps2-an385": ("arm-none-eabi-gcc", "qemu-system-arm"),
          "qemu-microbit": ("arm-none-eabi-gcc", "qemu-system-arm")}
EPOCHS = {"host": 3, "qemu-mps2-an385": 2, "qemu-microbit": 1}


@pytest.fixture(scope="module", params=list(BOARDS))
def board_url(request):
    need_tools(*BOARDS[request.param])
    from edgebp.boards import start_emulator
    with start_emulator(request.param, timeout=600) as url:
        yield request.param, url


@pytest.fixture
def dev(board_url):
    from edgebp.device import Device
    with Device(board_url[1], timeout=20.0, retries=2) as d:
        yield d


def make_net(cfg=None, sizes=(8, 16, 2), **kw):
    from edgebp.fixed import FixedNet
    return FixedNet(NetSpec.from_sizes(list(sizes), **kw), cfg or TrainConfig(lr=0.2, batch_size=1, seed=7))


def assert_same_weights(dev_w, host_w):
    assert len(dev_w) == len(host_w)
    for (dW, db), (hW, hb) in zip(dev_w, host_w):
        assert dW.dtype == np.int16 and dW.shape == hW.shape
        assert np.array_equal(dW, hW) and np.array_equal(db, hb)


def test_info(dev, board_url):
    info = dev.info()
    assert info.board == board_url[0]
    assert info.protocol == P.PROTO_VERSION and info.core.startswith("edgebp")
    assert info.arena >= 8 * 1024
    if board_url[0] != "host":
        assert info.tick_unit_name == "instructions"


def test_online_epochs_bit_identical(dev, board_url, diabetes):
    fn = make_net()
    dev.load_model(fn)
    assert_same_weights(dev.read_weights(), fn.get_int_weights())      # same initialisation
    Xq, Tq = fn.quantize_inputs(diabetes.X_train), fn.quantize_targets(diabetes.T_train)
    for epoch in range(EPOCHS[board_url[0]]):
        r = dev.train(Xq, Tq, 1)
        assert r.loss_sum == fn.train_q(Xq, Tq, 1), f"epoch {epoch}: loss sums differ"
        assert r.n == len(Xq) and r.steps_taken == len(Xq) and r.steps == fn.steps
    assert_same_weights(dev.read_weights(), fn.get_int_weights())
    Xt = fn.quantize_inputs(diabetes.X_test)
    assert np.array_equal(dev.predict(Xt), fn.predict_q(Xt))
    assert dev.evaluate(Xt, fn.quantize_targets(diabetes.T_test)) == fn.evaluate_q(Xt, fn.quantize_targets(diabetes.T_test))
    stats = dev.read_stats()
    assert stats["steps"] == fn.steps
    assert [{k: l[k] for k in P.STAT_FIELDS} for l in stats["layers"]] == fn.stats()
    if board_url[0] != "host":
        per_step = dev.board_info.ticks_to(r.ticks) / r.steps_taken
        assert 1000 < per_step < 10 ** 6


@pytest.mark.parametrize("batch", [32, 0])      # whole batches per frame; one batch over several frames
def test_minibatch_momentum_stochastic_bit_identical(dev, diabetes, batch):
    cfg = TrainConfig(optimizer="momentum", lr=0.1, momentum=0.9, batch_size=batch, rounding="stochastic",
                      seed=11, init="xavier")
    fn = make_net(cfg, (8, 12, 6, 2), activation=["tanh", "relu", "softmax"], loss="ce", w_frac=11, a_frac=12)
    dev.load_model(fn)
    X, T = diabetes.X_train[:200], diabetes.T_train[:200]
    Xq, Tq = fn.quantize_inputs(X), fn.quantize_targets(T)
    r = dev.train(Xq, Tq, batch)
    assert r.loss_sum == fn.train_q(Xq, Tq, batch)
    assert r.steps_taken == (1 if batch == 0 else -(-200 // batch))
    assert_same_weights(dev.read_weights(), fn.get_int_weights())
    assert np.array_equal(dev.predict(Xq), fn.predict_q(Xq))


def test_partial_last_chunk_of_one_sample(dev, diabetes):
    fn = make_net(TrainConfig(lr=0.3, batch_size=8, seed=3))
    dev.load_model(fn)
    cap = dev.samples_per_frame()
    n = (cap // 8) * 8 + 1                        # chunks of whole batches, then a single sample
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:n]), fn.quantize_targets(diabetes.T_train[:n])
    assert dev.train(Xq, Tq, 8).loss_sum == fn.train_q(Xq, Tq, 8)
    assert_same_weights(dev.read_weights(), fn.get_int_weights())


def test_set_hparams_matches_host(dev, diabetes):
    fn = make_net(TrainConfig(lr=0.2, batch_size=4, seed=7))
    dev.load_model(fn)
    dev.set_hparams(lr=0.05, momentum=0.0)
    fn.set_hparams(0.05, 0.0)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:64]), fn.quantize_targets(diabetes.T_train[:64])
    dev.train(Xq, Tq, 4)
    fn.train_q(Xq, Tq, 4)
    assert_same_weights(dev.read_weights(), fn.get_int_weights())
    s = dev.read_stats(clear=True)
    assert s["steps"] == 16
    assert dev.read_stats()["steps"] == 0


def test_too_large_model_is_refused_and_device_keeps_working(dev, diabetes):
    from edgebp.fixed import memory
    fn = make_net()
    dev.load_model(fn)
    arena = dev.info().arena
    width = 1024
    spec = NetSpec.from_sizes([8, width, width, 2])
    need = memory(spec, TrainConfig())["total"]
    assert need > arena
    with pytest.raises(MemoryBudgetError) as e:
        dev.load_model(make_net(sizes=(8, width, width, 2)))
    assert e.value.needed == need and e.value.arena == arena
    assert str(need) in str(e.value)
    Xq = fn.quantize_inputs(diabetes.X_train[:10])      # the previous model is still there
    assert np.array_equal(dev.predict(Xq), fn.predict_q(Xq))


def test_retransmitted_train_request_is_applied_once(dev, diabetes):
    fn = make_net()
    dev.load_model(fn)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:20]), fn.quantize_targets(diabetes.T_train[:20])
    body = P.pack_train(Xq, Tq, 1)
    seq = dev.next_seq()
    first = dev.request(P.TRAIN, body, seq=seq)
    again = dev.request(P.TRAIN, body, seq=seq)      # as if the first response had been lost
    assert again.body == first.body
    dev.send_raw(P.encode_frame(P.Frame(P.TRAIN, seq, 0, body)))  # response dropped on the floor
    again = dev.request(P.TRAIN, body, seq=seq)
    assert again.body == first.body
    assert dev.read_stats()["steps"] == 20
    fn.train_q(Xq, Tq, 1)
    assert_same_weights(dev.read_weights(), fn.get_int_weights())
    # a new sequence number with the same data trains again
    dev.request(P.TRAIN, body)
    assert dev.read_stats()["steps"] == 40


def test_corrupted_request_is_retransmitted(dev, diabetes):
    fn = make_net()
    dev.load_model(fn)
    dev.info()
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:8]), fn.quantize_targets(diabetes.T_train[:8])
    real_send = dev.send_raw
    sent = []

    def flaky(data):          # corrupt the first transmission of the request
        if not sent:
            data = bytearray(data)
            data[10] = data[10] ^ 0x5A or 1
            data = bytes(data)
        sent.append(data)
        real_send(data)

    dev.send_raw = flaky
    try:
        dev.train(Xq, Tq, 1)
    finally:
        dev.send_raw = real_send
    assert len(sent) == 2
    fn.train_q(Xq, Tq, 1)
    assert_same_weights(dev.read_weights(), fn.get_int_weights())


def test_every_request_round_trips(dev, board_url, diabetes):
    fn = make_net()
    mem = dev.load_model(fn)
    assert mem["total"] == fn.memory_report()["total"] and mem["arena"] == dev.info().arena
    assert dev.info().have_model
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:5]), fn.quantize_targets(diabetes.T_train[:5])
    assert dev.train(Xq, Tq, 1).n == 5
    assert dev.predict(Xq).shape == (5, 2)
    assert len(dev.evaluate(Xq, Tq)) == 2
    assert [(f["n_in"], f["n_out"], f["w_frac"]) for f in dev.read_formats()] == [(8, 16, 12), (16, 2, 12)]
    assert len(dev.read_weights()) == 2
    assert dev.read_stats()["steps"] == 5
    dev.set_hparams(lr_m=40000, lr_e=-17, momentum_q15=0)
    dev.reset()
    with pytest.raises(DeviceError):
        dev.predict(Xq)
    with pytest.raises(DeviceError):
        dev.request(P.PREDICT, P.pack_predict(Xq))
    assert not dev.info().have_model
    dev.reset(hard=True)                                # MCU: system reset; host: application re-init
    deadline = time.monotonic() + 10
    while True:
        try:
            assert dev.info().board == board_url[0]
            break
        except DeviceError:
            if time.monotonic() > deadline:
                raise
    dev.load_model(fn)
    assert np.array_equal(dev.predict(Xq), fn.predict_q(Xq))


def test_online_model_refuses_batches_before_sending(dev, diabetes):
    """TrainConfig's default (sgd, batch_size 1) builds the model without gradient memory: a batch request
    gets a ConfigError that says what to do, nothing is sent, and online training still matches the host."""
    fn = make_net()
    assert fn.core_params()["flags"] & lib.EBP_FLAG_ONLINE
    dev.load_model(fn)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:16]), fn.quantize_targets(diabetes.T_train[:16])
    with pytest.raises(ConfigError, match="batch 1 only"):
        dev.train(Xq, Tq, 4)
    dev.train(Xq, Tq, 1)
    fn.train_q(Xq, Tq, 1)
    assert_same_weights(dev.read_weights(), fn.get_int_weights())
