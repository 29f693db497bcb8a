"""Weight upload (WRITE_WEIGHTS + COMMIT_WEIGHTS), LOAD refusals and the boot identity in HELLO, on the host
port and both emulated boards, bit for bit against the host core."""
import struct

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, TrainConfig
from edgebp.deploy import write_weights
from edgebp.errors import ConfigError, DataError, DeviceError
from devtest import build_small_host, hard_reset
from toolcheck import need_tools

BOARDS = {"host": ("make", "cc"), "qemu-mps2-an385": ("arm-none-eabi-gcc", "qemu-system-arm"),
          "qemu-microbit": ("arm-none-eabi-gcc", "qemu-system-arm")}


@pytest.fixture(scope="module", params=list(BOARDS))
def board_url(request):
    need_tools(*BOARDS[request.param])
    from edgebp.boards import start_emulator
    with start_emulator(request.param, timeout=900) as url:
        yield request.param, url


@pytest.fixture
def dev(board_url):
    from edgebp.device import Device
    with Device(board_url[1], timeout=20.0) as d:
        yield d


def make_net(cfg=None, sizes=(8, 16, 2), **kw):
    from edgebp.fixed import FixedNet
    return FixedNet(NetSpec.from_sizes(list(sizes), **kw), cfg or TrainConfig(lr=0.2, batch_size=1, seed=7))


def random_weights(net, seed, scale=3000):
    rng = np.random.default_rng(seed)
    return [(rng.integers(-scale, scale + 1, W.shape).astype(np.int16),
             rng.integers(-scale, scale + 1, b.shape).astype(np.int16)) for W, b in net.get_int_weights()]


def assert_same(a, b):
    assert len(a) == len(b)
    for (W1, b1), (W2, b2) in zip(a, b):
        assert W1.dtype == W2.dtype == np.int16
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)


# --- upload ---------------------------------------------------------------------------------------------------
def test_upload_reads_back_and_trains_like_the_host(dev, board_url, diabetes):
    """Upload weights that are not the LOAD's own initialisation, read them back, then train host and device
    from them: the same integers after training."""
    fn = make_net()
    dev.load_model(fn)
    w = random_weights(fn, 1)
    write_weights(dev, w)
    assert_same(dev.read_weights(), w)
    info = dev.info()
    assert info.model_state == "ready" and info.have_model
    fn.set_int_weights(w)
    n = {"host": 768, "qemu-mps2-an385": 384, "qemu-microbit": 128}[board_url[0]]
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:n]), fn.quantize_targets(diabetes.T_train[:n])
    assert dev.train(Xq, Tq, 1).loss_sum == fn.train_q(Xq, Tq, 1)
    assert_same(dev.read_weights(), fn.get_int_weights())
    Xt = fn.quantize_inputs(diabetes.X_test[:50])
    assert np.array_equal(dev.predict(Xt), fn.predict_q(Xt))


def test_upload_of_several_chunks_with_momentum_and_stochastic_rounding(dev, board_url, diabetes):
    """A layer larger than one chunk (8-24-24-2: 576 + 24 elements), minibatch momentum with
    stochastic rounding, and the rng/steps set by the commit: bit-identical to the host after training."""
    cfg = TrainConfig(optimizer="momentum", lr=0.1, momentum=0.9, batch_size=8, rounding="stochastic", seed=3)
    fn = make_net(cfg, (8, 24, 24, 2), activation=["tanh", "relu", "sigmoid"])
    dev.load_model(fn)
    w = random_weights(fn, 2, 2000)
    write_weights(dev, w, rng=0x12345678, steps=1000)
    fn.set_int_weights(w)
    fn._net.rng, fn._net.steps = 0x12345678, 1000
    assert dev.read_stats()["steps"] == 1000
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:96]), fn.quantize_targets(diabetes.T_train[:96])
    assert dev.train(Xq, Tq, 8).loss_sum == fn.train_q(Xq, Tq, 8)
    assert_same(dev.read_weights(), fn.get_int_weights())
    assert dev.read_stats()["steps"] == fn.steps == 1012


def test_retransmitted_chunks_are_applied_once(dev):
    fn = make_net()
    dev.load_model(fn)
    old = dev.read_weights()
    w = random_weights(fn, 4)
    flat0 = np.concatenate([w[0][0].ravel(), w[0][1]])
    body = P.pack_write_weights(0, 0, flat0[:100])
    seq = dev.next_seq()
    first = dev.request(P.WRITE_WEIGHTS, body, seq=seq)
    again = dev.request(P.WRITE_WEIGHTS, body, seq=seq)       # the first answer was lost: same seq
    assert again.body == first.body
    assert P.unpack_write_weights(first.body).written == 100
    again = dev.request(P.WRITE_WEIGHTS, body)                 # the same chunk under a new seq: idempotent
    assert P.unpack_write_weights(again.body).written == 100
    gap = dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 101, flat0[101:110]), check=False)
    assert gap.status == P.C["EBP_PERR_RANGE"]                 # chunks come in order: no gaps
    past = dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 100, np.zeros(300, np.int16)), check=False)
    assert past.status == P.C["EBP_PERR_RANGE"]                # beyond the layer's 144 elements
    r = P.unpack_write_weights(dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 100, flat0[100:])).body)
    assert (r.written, r.total) == (144, 144)
    # layer 1 never written: the commit is refused and says where the upload stands
    f = dev.request(P.COMMIT_WEIGHTS, P.pack_commit_weights(P.weights_crc(w)), check=False)
    assert f.status == P.C["EBP_PERR_INCOMPLETE"]
    assert f.body[0] == 1 and struct.unpack_from("<II", f.body, 4) == (0, 34)
    assert_same(dev.read_weights(), old) if r.staged else None
    flat1 = np.concatenate([w[1][0].ravel(), w[1][1]])
    dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(1, 0, flat1))
    seq = dev.next_seq()
    commit = P.pack_commit_weights(P.weights_crc(w))
    a = dev.request(P.COMMIT_WEIGHTS, commit, seq=seq)
    b = dev.request(P.COMMIT_WEIGHTS, commit, seq=seq)         # a retransmitted commit: answered from cache
    assert a.status == b.status == 0 and a.body == b.body
    assert_same(dev.read_weights(), w)


def test_interrupted_or_corrupt_upload_keeps_the_old_model(dev, diabetes):
    """With room in the arena the upload is staged: half an upload, or one whose CRC does not match, leaves the
    model exactly as it was, and it keeps training like the host."""
    fn = make_net()
    dev.load_model(fn)
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:16]), fn.quantize_targets(diabetes.T_train[:16])
    w = random_weights(fn, 5)
    r = P.unpack_write_weights(dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, w[0][0].ravel()[:50])).body)
    assert r.staged
    assert dev.info().model_state == "ready"
    assert dev.train(Xq, Tq, 1).loss_sum == fn.train_q(Xq, Tq, 1)      # the old model, during the upload
    assert_same(dev.read_weights(), fn.get_int_weights())
    with pytest.raises(DeviceError, match="incomplete"):
        dev.request(P.COMMIT_WEIGHTS, P.pack_commit_weights(P.weights_crc(w)))
    assert_same(dev.read_weights(), fn.get_int_weights())
    # a complete upload with a wrong CRC is refused, and the model is unchanged
    real = P.weights_crc
    try:
        P.weights_crc = lambda ws: real(ws) ^ 1
        with pytest.raises(DeviceError, match="CRC"):
            write_weights(dev, w)
    finally:
        P.weights_crc = real
    assert_same(dev.read_weights(), fn.get_int_weights())
    assert dev.train(Xq, Tq, 1).loss_sum == fn.train_q(Xq, Tq, 1)
    assert_same(dev.read_weights(), fn.get_int_weights())


def test_upload_in_place_refuses_training_until_committed(dev, board_url, diabetes):
    """A model too large to stage a second copy in the arena is written in place: until the commit the
    device refuses to train or predict (never trains on half a model) and HELLO says 'uploading'."""
    sizes = {"host": (8, 600, 600, 2), "qemu-microbit": (8, 64, 64, 2)}.get(board_url[0])
    if sizes is None:
        pytest.skip("the 1 MiB arena of qemu-mps2-an385 is tested on the host port (same arena, faster link)")
    fn = make_net(sizes=sizes)
    dev.load_model(fn)
    w = random_weights(fn, 6)
    flat0 = np.concatenate([w[0][0].ravel(), w[0][1]])
    r = P.unpack_write_weights(dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, flat0[:200])).body)
    assert not r.staged
    assert dev.info().model_state == "uploading"
    Xq, Tq = fn.quantize_inputs(diabetes.X_train[:4]), fn.quantize_targets(diabetes.T_train[:4])
    for req in (lambda: dev.train(Xq, Tq, 1), lambda: dev.predict(Xq), lambda: dev.evaluate(Xq, Tq)):
        with pytest.raises(DeviceError, match="incomplete"):
            req()
    write_weights(dev, w)
    assert dev.info().model_state == "ready"
    fn.set_int_weights(w)
    assert dev.train(Xq, Tq, 1).loss_sum == fn.train_q(Xq, Tq, 1)
    assert_same(dev.read_weights(), fn.get_int_weights())


def test_host_refuses_bad_uploads_before_sending(dev):
    fn = make_net()
    dev.load_model(fn)
    w = fn.get_int_weights()
    with pytest.raises(ConfigError, match="layers"):
        write_weights(dev, w[:1])
    with pytest.raises(ConfigError, match="layer 0"):
        write_weights(dev, [(w[0][0][:, :4], w[0][1]), w[1]])
    with pytest.raises(DataError, match="integer"):
        write_weights(dev, [(w[0][0] * 0.5, w[0][1]), w[1]])
    with pytest.raises(DataError, match="int16"):
        write_weights(dev, [(w[0][0].astype(np.int32) + 40000, w[0][1]), w[1]])
    assert_same(dev.read_weights(), w)


# --- LOAD refusals: nothing is lost, and host and device refuse the same things ----------------------------
def raw_load_body(p):
    layers = list(p["layers"])
    body = P.LOAD_FIXED.pack(p["n_in"], p["in_frac"], len(layers), p["loss"], p["optimizer"], p["rounding"],
                             p["flags"], p["lr_m"], p["lr_e"], p["momentum_q15"], p["init_kind"],
                             p["init_range_q12"], p["seed"])
    return body + b"".join(P.LAYER.pack(*l) for l in layers)


@pytest.mark.parametrize("change, status", [
    (dict(init_kind=9), "EBP_PERR_RANGE"), (dict(lr_e=127), "EBP_PERR_RANGE"), (dict(lr_m=0), "EBP_PERR_RANGE"),
    (dict(momentum_q15=40000), "EBP_PERR_RANGE"), (dict(lr_e=-81), "EBP_PERR_RANGE"),
    (dict(loss=5), "EBP_ERR_CONFIG"), (dict(layers=[(16, 9, 12, 12), (2, 2, 12, 12)]), "EBP_ERR_CONFIG"),
    (dict(in_frac=16), "EBP_ERR_FORMAT")])
def test_refused_load_keeps_the_model(dev, diabetes, change, status):
    """Regression (issue 13): a LOAD the core refused with EBP_ERR_ARG wiped the model already there."""
    from edgebp._core import lib
    fn = make_net()
    dev.load_model(fn)
    w = random_weights(fn, 8)
    write_weights(dev, w)
    bad = dict(fn.core_params(), **change)
    f = dev.request(P.LOAD, raw_load_body(bad), check=False)
    want = P.C[status] if status in P.C else getattr(lib, status)
    assert f.status == want
    assert dev.info().model_state == "ready"
    assert_same(dev.read_weights(), w)
    fn.set_int_weights(w)
    Xq = fn.quantize_inputs(diabetes.X_train[:10])
    assert np.array_equal(dev.predict(Xq), fn.predict_q(Xq))
    if status == "EBP_PERR_RANGE":          # the host refuses the same, before sending anything
        with pytest.raises(ConfigError):
            P.pack_load(bad)


def test_set_hparams_refuses_a_zero_learning_rate_on_both_sides(dev):
    fn = make_net()
    dev.load_model(fn)
    f = dev.request(P.SET_HPARAMS, struct.pack("<HbBH", 0, -16, 0, 0), check=False)
    assert f.status == P.C["EBP_PERR_RANGE"]
    with pytest.raises(ConfigError, match="zero learning rate"):
        dev.set_hparams(lr_m=0, lr_e=-16, momentum_q15=0)


# --- boot identity ----------------------------------------------------------------------------------------------
def test_hello_reports_a_new_session_after_a_reset(dev, board_url):
    a = dev.info()
    assert a.boot_count >= 1 and a.session_id != 0
    assert dev.info().session_id == a.session_id            # stable while the device runs
    b = hard_reset(dev)
    assert b.boot_count == a.boot_count + 1
    assert b.session_id != a.session_id
    assert not b.have_model
    if board_url[0] != "host":
        assert b.stack_high_water and b.stack_high_water > 0


def test_a_firmware_without_upload_says_so(tmp_path, diabetes):
    """A board that compiles the upload out (EBP_APP_UPLOAD=0, for a small flash) says so in HELLO's features and
    answers WRITE_WEIGHTS as an unknown message; write_weights refuses, before it sends a chunk, with one
    DeviceError that says what is missing and what to do."""
    from edgebp.boards import start_emulator
    from edgebp.device import Device
    from edgebp.fixed import FixedNet
    elf = build_small_host(tmp_path, 1024, "-DEBP_APP_UPLOAD=0")
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2]), TrainConfig(seed=2))
    with start_emulator("host", timeout=120, elf=elf) as url, Device(url, timeout=5) as dev:
        dev.load_model(fn)
        feat = dev.info().features
        assert feat == P.C["EBP_FEAT_STAGE"] | P.C["EBP_FEAT_STATE"] | P.C["EBP_FEAT_GRAD_MEMORY"]
        assert dev.info().to_dict()["features"] == ["stage", "state", "grad_memory"]
        seq = dev._seq
        with pytest.raises(DeviceError, match="takes no weight upload: its firmware compiles WRITE_WEIGHTS out"):
            write_weights(dev, fn.get_int_weights())
        assert dev._seq == seq                      # no request was sent
        assert dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, [1]), check=False).status == \
            P.C["EBP_PERR_UNKNOWN"]
        Xq, Tq = fn.quantize_inputs(diabetes.X_train[:5]), fn.quantize_targets(diabetes.T_train[:5])
        assert dev.train(Xq, Tq, 1).loss_sum == fn.train_q(Xq, Tq, 1)     # the model still trains
