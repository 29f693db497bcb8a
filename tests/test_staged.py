"""Samples larger than a frame (issue 15: BasicMotions windows are 6 x 100 readings, 1,208 bytes with their targets;
a frame body holds 1,024): STAGE writes a sample in parts into the free arena past the model, and one TRAIN,
PREDICT or EVALUATE with EBP_TRAIN_STAGED carries its tail and consumes it. The same integers as frames that
carry whole samples; exactly once; refusals. Then BasicMotions on the emulated micro:bit through the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, TrainConfig
from edgebp.errors import ConfigError
from devtest import build_small_host
from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent
BODY = 128
BM_MODEL = "conv1d(8,5,stride=2,act=relu),maxpool1d(2),conv1d(16,3,act=relu),gap,dense(4,act=softmax)"


@pytest.fixture(scope="module")
def small_url(tmp_path_factory):
    """The host port with 128-byte bodies: a (2, 40) window and its targets (164 bytes) no longer fit a frame."""
    from edgebp.boards import start_emulator
    elf = build_small_host(tmp_path_factory.mktemp("host-small-stage"), BODY)
    with start_emulator("host", timeout=300, elf=elf) as url:
        yield url


def conv_net(seed=3, **kw):
    from edgebp.fixed import FixedNet
    from edgebp.layers import Conv1D, Dense, MaxPool1D
    spec = NetSpec.sequential(input=(2, 40), layers=[Conv1D(4, 5, stride=2, act="relu"), MaxPool1D(2),
                                                      Dense(2, act="softmax")])
    return spec, TrainConfig(lr=0.1, seed=seed, **kw), FixedNet(spec, TrainConfig(lr=0.1, seed=seed, **kw))


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 80))
    T = np.eye(2)[rng.integers(0, 2, n)]
    return X, T


@pytest.mark.parametrize("kw", [dict(), dict(optimizer="momentum", momentum=0.5, batch_size=3,
                                               rounding="stochastic")])
def test_staged_samples_train_predict_and_evaluate_like_the_host(small_url, kw):
    """At 128-byte bodies every sample is staged (two STAGE chunks and a tail): online SGD, and mini-batches
    accumulated over staged frames with momentum and stochastic rounding, bit for bit like FixedNet."""
    from edgebp.device import Device, DeviceNet
    from edgebp.config import StopRule
    spec, cfg, fn = conv_net(**kw)
    X, T = data()
    fn.fit(X, T, StopRule(epochs=2))
    with Device(small_url, timeout=20.0) as dev:
        net = DeviceNet(dev, spec, cfg)
        assert dev.staged() and dev.samples_per_frame() == 1
        net.fit(X, T, StopRule(epochs=2))
        for (a, b), (c, d) in zip(net.get_int_weights(), fn.get_int_weights()):
            assert np.array_equal(a, c) and np.array_equal(b, d)
        Xq, Tq = fn.quantize_inputs(X), fn.quantize_targets(T)
        assert np.array_equal(net.predict_q(Xq), fn.predict_q(Xq))
        assert net.evaluate_q(Xq, Tq) == fn.evaluate_q(Xq, Tq)
        assert dev.read_stats()["steps"] == fn.steps


def test_staged_train_is_applied_once_and_refusals(host_url):
    """A staged TRAIN retransmitted under its seq is answered from the cache (one step); STAGE refuses gaps
    and an upload in progress; a staged request needs every element staged."""
    from edgebp.device import Device, DeviceStatusError
    spec, cfg, fn = conv_net()
    X, T = data(2)
    Xq, Tq = fn.quantize_inputs(X), fn.quantize_targets(T)
    sample = np.concatenate([Xq[0], Tq[0]])
    R = P.C
    with Device(host_url, timeout=5.0, retries=2) as dev:
        f = dev.request(P.STAGE, P.pack_stage(0, sample[:10]), check=False)
        assert f.status == R["EBP_PERR_NO_MODEL"]
        dev.load_model(fn)
        # staged in two parts, the tail (the last 20 elements) in the TRAIN body
        assert P.unpack_stage(dev.request(P.STAGE, P.pack_stage(0, sample[:30])).body)[0] == 30
        staged, room = P.unpack_stage(dev.request(P.STAGE, P.pack_stage(30, sample[30:62])).body)
        assert staged == 62 and room == (dev.board_info.arena - ((dev.memory["total"] + 7) & ~7)) // 2
        body = P.pack_staged(P.TRAIN, sample[62:], batch=1)
        seq = dev.next_seq()
        first = dev.request(P.TRAIN, body, seq=seq)
        again = dev.request(P.TRAIN, body, seq=seq)            # its answer lost: from the cache, not run again
        assert again.body == first.body and P.unpack_train(first.body).steps == 1
        f = dev.request(P.TRAIN, body, check=False)            # new seq: the staged sample was consumed
        assert f.status == R["EBP_PERR_RANGE"]
        assert dev.read_stats()["steps"] == 1
        fn.train_q(Xq[:1], Tq[:1], 1)
        for (a, b), (c, d) in zip(dev.read_weights(spec.param_shapes()), fn.get_int_weights()):
            assert np.array_equal(a, c) and np.array_equal(b, d)
        # a gap, past the free arena, a staged request with nothing staged, more than one sample
        assert dev.request(P.STAGE, P.pack_stage(5, sample[:4]), check=False).status == R["EBP_PERR_RANGE"]
        assert dev.request(P.EVALUATE, P.pack_staged(P.EVALUATE, sample[:5]),
                           check=False).status == R["EBP_PERR_RANGE"]
        bad = bytearray(P.pack_staged(P.PREDICT, sample[:80]))
        bad[0] = 2
        assert dev.request(P.PREDICT, bytes(bad), check=False).status == R["EBP_PERR_LENGTH"]
        # during an upload the staging area is the upload's
        dev.request(P.WRITE_WEIGHTS, P.pack_write_weights(0, 0, np.zeros(4, np.int16)))
        assert dev.request(P.STAGE, P.pack_stage(0, sample[:4]), check=False).status == R["EBP_PERR_INCOMPLETE"]
        with pytest.raises(DeviceStatusError):
            dev.request(P.TRAIN, P.pack_staged(P.TRAIN, sample, batch=1))


def test_a_sample_that_does_not_fit_the_free_arena_is_a_clear_error(host_url):
    from edgebp.device import Device
    spec, cfg, fn = conv_net()
    with Device(host_url, timeout=5.0) as dev:
        dev.load_model(fn)
        dev.memory = dict(dev.memory, arena=dev.memory["total"] + 100)   # as if the model nearly filled it
        dev._info = type(dev.board_info)(**{**dev.board_info.__dict__, "max_body": 128})
        with pytest.raises(ConfigError, match="free to stage it"):
            dev.staged()


def test_basicmotions_trains_on_the_emulated_microbit_like_the_host():
    """Issue 15: `edgebp device train BasicMotions --model ... --board qemu-microbit --check` (40 windows of
    6 x 100, each staged; one epoch), bit-identical weights and predictions."""
    need_tools("make", "arm-none-eabi-gcc", "qemu-system-arm")
    p = subprocess.run([sys.executable, "-m", "edgebp.cli", "device", "train", "BasicMotions", "--scale", "minmax",
                        "--shuffle", "--model", BM_MODEL, "--epochs", "1", "--board", "qemu-microbit", "--check",
                        "--json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["check"] == {"identical": True, "differing_layers": [], "identical_predictions": True}
    dev, fixed = out["engines"]["device"], out["engines"]["fixed"]
    assert dev["train_loss"] == fixed["train_loss"] and dev["test_accuracy"] == fixed["test_accuracy"]
    assert dev["steps"] == 40 and dev["instructions_per_step"] > 100_000
