"""The serial link under faults: clear errors for a dropped link, a bad URL or a reset device; training through a
seeded relay that drops and flips bytes finishes with the same integers as a clean run (docs/link.md)."""
import time

import numpy as np
import pytest

from edgebp import protocol as P
from edgebp.config import NetSpec, StopRule, TrainConfig
from edgebp.errors import ConfigError, DeviceError, EdgeBPError
from devtest import same_weights as same
from toolcheck import need_tools

QEMU = ("arm-none-eabi-gcc", "qemu-system-arm")


@pytest.fixture(scope="module")
def host_board():
    need_tools("make", "cc")
    from edgebp.device import Emulator
    with Emulator("host", timeout=600) as emu:
        yield emu


def host_run(spec, cfg, ds, epochs):
    from edgebp.fixed import FixedNet
    fn = FixedNet(spec, cfg)
    hist = fn.fit(ds.X_train, ds.T_train, StopRule(epochs=epochs))
    return fn, hist


# --- clear errors -------------------------------------------------------------------------------------------
def test_socket_url_without_port_is_refused_at_once():
    from edgebp.device import Device
    t0 = time.monotonic()
    for url in ("socket://nohost", "socket://:5555", "socket://127.0.0.1:0", "socket://127.0.0.1:99999", ""):
        with pytest.raises(ConfigError, match="socket://HOST:PORT|non-empty"):
            Device(url)
    assert time.monotonic() - t0 < 1.0


def test_unknown_host_and_nothing_listening():
    from edgebp.boards import free_port
    from edgebp.device import Device, LinkLostError
    t0 = time.monotonic()
    with pytest.raises(LinkLostError, match="unknown host"):
        Device("socket://no-such-host.invalid:5555")
    with pytest.raises(LinkLostError, match="cannot open .* within 0.3 s.*running"):
        Device(f"socket://127.0.0.1:{free_port()}", connect_timeout=0.3)
    assert time.monotonic() - t0 < 5.0


def test_bad_timeout_and_retries_are_refused():
    from edgebp.device import Device
    for kw in (dict(timeout=0), dict(timeout=-1), dict(timeout=float("nan")), dict(timeout="5"),
               dict(retries=-1), dict(retries=1.5), dict(retries=True)):
        with pytest.raises(ConfigError):
            Device("loop://", **kw)


def test_dropped_link_is_one_clear_error(diabetes):
    """The board's process dies mid-session (QEMU killed, cable pulled): LinkLostError, not a pyserial traceback."""
    need_tools("make", "cc")
    from edgebp.device import Device, Emulator, LinkLostError
    from edgebp.fixed import FixedNet
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2]), TrainConfig(seed=2))
    with Emulator("host") as emu, Device(emu.url, timeout=3) as dev:
        dev.load_model(fn)
        Xq, Tq = fn.quantize_inputs(diabetes.X_train[:10]), fn.quantize_targets(diabetes.T_train[:10])
        dev.train(Xq, Tq, 1)
        emu.kill()
        with pytest.raises(LinkLostError, match="lost the link to socket://127.0.0.1") as e:
            dev.train(Xq, Tq, 1)
        assert isinstance(e.value, EdgeBPError) and isinstance(e.value, DeviceError)
        with pytest.raises(LinkLostError, match="closed"):
            dev.info()


def test_silent_link_gives_up_after_timeout(host_board):
    from edgebp.device import Device, LinkLostError
    from edgebp.relay import FaultRelay
    with FaultRelay(host_board.url, drop=1.0, seed=1, lifetime=60) as relay:
        with Device(relay.url, timeout=0.6) as dev:
            t0 = time.monotonic()
            with pytest.raises(LinkLostError, match=r"no valid response .* hello request for 0.6 s \(\d+ attempts"):
                dev.info()
            assert 0.55 < time.monotonic() - t0 < 3
        with Device(relay.url, timeout=4, retries=2) as dev:
            sent = []
            real = dev.send_raw
            dev.send_raw = lambda d: (sent.append(d), real(d))
            t0 = time.monotonic()
            with pytest.raises(DeviceError, match=r"after 2 retransmissions \(retries=2"):
                dev.info()
            assert len(sent) == 3 and 3.9 < time.monotonic() - t0 < 7   # then waits out the timeout


def test_reset_mid_run_says_the_device_reset(host_board, diabetes):
    from edgebp.device import Device, DeviceResetError
    from edgebp.fixed import FixedNet
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2]), TrainConfig(seed=2))
    with Device(host_board.url, timeout=5) as dev:
        dev.load_model(fn)
        Xq, Tq = fn.quantize_inputs(diabetes.X_train[:10]), fn.quantize_targets(diabetes.T_train[:10])
        dev.train(Xq, Tq, 1)
        dev.request(P.RESET, b"\x01")           # someone else resets the MCU
        with pytest.raises(DeviceResetError, match="no longer holds the model.*reset"):
            dev.train(Xq, Tq, 1)


# --- the relay ------------------------------------------------------------------------------------------------
def test_relay_faults_are_seeded_and_independent_of_chunking():
    from edgebp.relay import FaultRelay
    data = bytes(range(1, 256)) * 400
    outs = []
    for chunks in ((len(data),), (1, 999, 5000, len(data))):
        r = FaultRelay("socket://127.0.0.1:9", drop=0.01, flip=0.02, seed=5)
        out, lo = b"", 0
        for c in chunks:
            out += r.mangle(data[lo:lo + c], "up")
            lo += c
        r.stop()
        outs.append((out, dict(r.counts["up"])))
    assert outs[0] == outs[1]
    c = outs[0][1]
    assert c["bytes"] == len(data)
    assert 0.008 < c["dropped"] / len(data) < 0.012 and 0.016 < c["flipped"] / len(data) < 0.024
    assert len(outs[0][0]) == len(data) - c["dropped"]
    with pytest.raises(ConfigError):
        FaultRelay("socket://127.0.0.1:9", drop=0.7, flip=0.7)
    with pytest.raises(ConfigError):
        FaultRelay("/dev/ttyS0")


def test_relay_forwards_and_cut_drops_the_connection(host_board):
    from edgebp.device import Device, LinkLostError
    from edgebp.relay import FaultRelay
    with FaultRelay(host_board.url, lifetime=60) as relay:
        with Device(relay.url, timeout=2) as dev:
            assert dev.info().board == "host"
            relay.cut()
            with pytest.raises(LinkLostError):
                for _ in range(50):
                    dev.info()
                    time.sleep(0.02)
            dev.reconnect()
            assert dev.info().board == "host"
        assert relay.connections == 2


# --- noise: bit-identical results -----------------------------------------------------------------------------
@pytest.mark.parametrize("cfg, sizes, kw", [
    (TrainConfig(lr=0.2, seed=4), (8, 16, 2), {}),
    (TrainConfig(optimizer="momentum", lr=0.1, momentum=0.9, batch_size=32, rounding="stochastic", seed=11),
     (8, 12, 2), dict(activation=["tanh", "sigmoid"])),
    (TrainConfig(lr=0.5, batch_size=0, rounding="stochastic", seed=5), (8, 6, 2), {}),   # full batch: accumulate
], ids=["online", "minibatch-momentum", "full-batch"])
def test_noisy_link_host_port_same_integers(host_board, diabetes, cfg, sizes, kw):
    """2% of the bytes hit each way: every frame needs a few attempts, the chunks shrink to a few samples (a full
    batch is accumulated over many frames), and the run ends with the host core's weights, losses and stats."""
    from edgebp.device import Device, DeviceNet
    from edgebp.relay import FaultRelay
    spec = NetSpec.from_sizes(list(sizes), **kw)
    fn, hist = host_run(spec, cfg, diabetes, 2)
    with FaultRelay(host_board.url, drop=0.01, flip=0.01, seed=7, lifetime=300) as relay:
        with Device(relay.url, timeout=10) as dev:
            net = DeviceNet(dev, spec, cfg)
            h = net.fit(diabetes.X_train, diabetes.T_train, StopRule(epochs=2))
            assert same(net.get_int_weights(), fn.get_int_weights())
            assert net.loss_unknown == 0 and h.loss == hist.loss
            assert net.stats() == fn.stats() and net.steps == fn.steps
            Xt = fn.quantize_inputs(diabetes.X_test)
            assert np.array_equal(net.predict_q(Xt), fn.predict_q(Xt))
            assert dev.stats_retransmissions > 100 and dev.link.p > 0.003
        assert relay.counts["up"]["dropped"] > 100 and relay.counts["down"]["flipped"] > 10


def test_chunks_grow_back_on_a_clean_link(host_board, diabetes):
    from edgebp.device import Device
    from edgebp.fixed import FixedNet
    from edgebp.relay import FaultRelay
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2]), TrainConfig(seed=3))
    Xq, Tq = fn.quantize_inputs(diabetes.X_train), fn.quantize_targets(diabetes.T_train)
    with FaultRelay(host_board.url, drop=0.01, flip=0.01, seed=2, lifetime=300) as relay:
        with Device(relay.url, timeout=10) as dev:
            dev.bulk = False                      # TRAIN frames that carry their samples (not streamed chunks)
            dev.load_model(fn)
            noisy = dev.train(Xq, Tq, 1).requests
            relay.set_rates(0.0, 0.0)
            dev.train(Xq, Tq, 1)                 # the estimate decays as frames get through
            dev.train(Xq, Tq, 1)
            clean = dev.train(Xq, Tq, 1).requests
            for _ in range(4):
                fn.train_q(Xq, Tq, 1)
            assert same(dev.read_weights(), fn.get_int_weights())
    cap = dev.samples_per_frame()
    fewest = -(-len(Xq) // cap)
    assert noisy > len(Xq) / 4 and clean <= 3 * fewest    # (a loaded machine's late answers look like losses)


@pytest.fixture(scope="module")
def m3():
    need_tools(*QEMU)
    from edgebp.device import Emulator
    with Emulator("qemu-mps2-an385", timeout=900) as emu:
        yield emu


@pytest.fixture(scope="module")
def m3_clean(m3, diabetes):
    """diabetes 8-16-2, 2 epochs of online SGD: the host core's result, checked against a clean device run."""
    from edgebp.device import Device, DeviceNet
    spec, cfg = NetSpec.from_sizes([8, 16, 2]), TrainConfig(lr=0.2, seed=1)
    fn, hist = host_run(spec, cfg, diabetes, 2)
    with Device(m3.url, timeout=10) as dev:
        net = DeviceNet(dev, spec, cfg)
        h = net.fit(diabetes.X_train, diabetes.T_train, StopRule(epochs=2))
        assert same(net.get_int_weights(), fn.get_int_weights()) and h.loss == hist.loss
    return spec, cfg, fn.get_int_weights(), hist.loss


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_one_percent_dropped_one_percent_flipped_m3(m3, m3_clean, diabetes, seed):
    """The issue's target: 1% of bytes dropped and 1% flipped, both ways; diabetes 8-16-2 for 2 epochs on the
    emulated Cortex-M3 finishes with the clean run's weights (5 seeds of 5)."""
    from edgebp.device import Device, DeviceNet
    from edgebp.relay import FaultRelay
    spec, cfg, weights, losses = m3_clean
    with FaultRelay(m3.url, drop=0.01, flip=0.01, seed=seed, lifetime=400) as relay:
        with Device(relay.url, timeout=10) as dev:
            net = DeviceNet(dev, spec, cfg)
            h = net.fit(diabetes.X_train, diabetes.T_train, StopRule(epochs=2))
            assert same(net.get_int_weights(), weights)
            if net.loss_unknown == 0:
                assert h.loss == losses
        up = relay.counts["up"]
        assert up["dropped"] > 300 and up["dropped"] > 0.008 * up["bytes"]    # the faults happened, at the rate
