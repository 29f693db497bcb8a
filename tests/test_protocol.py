"""Framing and protocol robustness: unit level (COBS, CRC, frames) and against the host port binary."""
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgebp import protocol as P
from edgebp.errors import ProtocolError
from toolcheck import need_tools


# --- unit level ----------------------------------------------------------------------------------------------
@given(st.binary(max_size=2000))
def test_cobs_round_trip(data):
    enc = P.cobs_encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert P.cobs_decode(enc) == data


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"\x11\x00", b"\x01" * 254, b"\x01" * 255,
                                  b"\x01" * 253 + b"\x00", b"\x00" + b"\x02" * 300])
def test_cobs_edge_cases(data):
    assert P.cobs_decode(P.cobs_encode(data)) == data


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(-32768, 32767), st.binary(max_size=P.MAX_BODY))
def test_frame_round_trip(type_, seq, status, body):
    enc = P.encode_frame(P.Frame(type_, seq, status, body))
    assert enc.endswith(b"\x00") and b"\x00" not in enc[:-1]
    assert len(enc) - 1 <= P.MAX_ENCODED
    f = P.decode_frame(enc[:-1])
    assert (f.type, f.seq, f.status, f.body, f.version) == (type_, seq, status, body, P.PROTO_VERSION)


@given(st.binary(min_size=1, max_size=64), st.integers(0, 10 ** 6))
def test_any_single_bit_flip_is_detected(body, where):
    raw = bytearray(P.encode_raw(P.Frame(P.HELLO, 7, 0, body)))
    bit = where % (8 * len(raw))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ProtocolError):
        P.decode_frame(P.cobs_encode(bytes(raw)))


def test_truncated_and_malformed_frames_raise():
    enc = P.encode_frame(P.Frame(P.HELLO, 1, 0, b"abc"))[:-1]
    for bad in (enc[:-1], enc[:5], b"\x05\x01", b"\x01"):
        with pytest.raises(ProtocolError):
            P.decode_frame(bad)


def test_splitter_skips_empty_frames_and_keeps_partial():
    s = P.FrameSplitter()
    a, b = P.encode_frame(P.Frame(1, 1)), P.encode_frame(P.Frame(2, 2))
    assert list(s.feed(b"\x00\x00" + a + b[:3])) == [a[:-1]]
    assert list(s.feed(b[3:])) == [b[:-1]]


def test_constants_come_from_the_c_header():
    consts = P.parse_header(P.HEADER_FILE.read_text())
    assert consts == P._FALLBACK, "update protocol._FALLBACK to match firmware/app/protocol.h"
    assert P.PROTO_VERSION == consts["EBP_PROTO_VERSION"]
    assert consts["EBP_PROTO_MAX_RAW"] == consts["EBP_PROTO_HEADER"] + consts["EBP_PROTO_MAX_BODY"] + 4
    worst = consts["EBP_PROTO_MAX_RAW"] + -(-consts["EBP_PROTO_MAX_RAW"] // 254)
    assert consts["EBP_PROTO_MAX_ENCODED"] >= worst


def test_load_body_round_trip():
    p = dict(n_in=8, in_frac=12, loss=0, optimizer=1, rounding=1, flags=0, layers=[(16, 2, 12, 12), (2, 4, 11, 10)],
             lr_m=52429, lr_e=-18, momentum_q15=29491, init_kind=2, init_range_q12=2048, seed=0xDEADBEEF)
    assert P.unpack_load(P.pack_load(p)) == p


# --- against the host port ----------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["plain", "asan"])
def host_url(request):
    """The host port as shipped, and built with AddressSanitizer + UBSan (any memory error kills it)."""
    need_tools("make", "cc")
    from edgebp.boards import build, start_emulator
    from pathlib import Path
    elf = Path(build("host", sanitize=request.param == "asan")["elf"])
    with start_emulator("host", timeout=300, elf=elf) as url:
        yield url


@pytest.fixture
def dev(host_url):
    from edgebp.device import Device
    with Device(host_url, timeout=2.0, retries=2) as d:
        yield d


def exchange(dev, data: bytes, timeout=2.0):
    """Sends raw bytes; returns every frame (decoded) that arrives until the line is quiet."""
    dev.send_raw(data)
    out = []
    while True:
        chunk = dev.read_frame(timeout if not out else 0.2)
        if chunk is None:
            return out
        out.append(P.decode_frame(chunk))


def test_hello_round_trip(dev):
    info = dev.info()
    assert info.protocol == P.PROTO_VERSION and info.board == "host" and info.arena > 0
    assert info.max_body == P.MAX_BODY


def test_corrupt_crc_gets_error_response(dev):
    enc = bytearray(P.cobs_encode(P.encode_raw(P.Frame(P.HELLO, 4242))))
    enc[3] ^= 0x40 if enc[3] != 0x40 else 0x41
    (f,) = exchange(dev, bytes(enc) + b"\x00")
    assert f.type == P.MSG_ERROR and f.status == P.C["EBP_PERR_CRC"]
    dev.info()


def test_truncated_frame_gets_error_response(dev):
    enc = P.encode_frame(P.Frame(P.HELLO, 99))
    (f,) = exchange(dev, enc[:6] + b"\x00")
    assert f.type == P.MSG_ERROR and f.status in (P.C["EBP_PERR_FRAME"], P.C["EBP_PERR_CRC"])
    dev.info()


def test_garbage_between_frames(dev):
    rng = np.random.default_rng(3)
    hello = P.encode_frame(P.Frame(P.HELLO, 1234))
    garbage = rng.integers(1, 256, 100, dtype=np.uint8).tobytes()
    hello2 = P.encode_frame(P.Frame(P.HELLO, 1235))
    frames = exchange(dev, hello + garbage + b"\x00" + hello2 + b"\x00\x00")
    assert [(f.type, f.seq) for f in frames] == [(P.HELLO | P.RESPONSE, 1234), (P.MSG_ERROR, 0),
                                                 (P.HELLO | P.RESPONSE, 1235)]
    dev.info()


def test_unknown_request(dev):
    (f,) = exchange(dev, P.encode_frame(P.Frame(0x42, 77, 0, b"xyz")))
    assert f.type == 0x42 | P.RESPONSE and f.seq == 77 and f.status == P.C["EBP_PERR_UNKNOWN"]


def test_version_mismatch_and_bad_length(dev):
    (f,) = exchange(dev, P.encode_frame(P.Frame(P.HELLO, 5, 0, b"", version=P.PROTO_VERSION + 1)))
    assert f.status == P.C["EBP_PERR_VERSION"] and f.body[0] == P.PROTO_VERSION
    raw = bytearray(P.encode_raw(P.Frame(P.READ_STATS, 6, 0, b"\x00")))
    raw[6] = 9   # header length disagrees with the frame
    raw[-4:] = struct.pack("<I", __import__("zlib").crc32(bytes(raw[:-4])))
    (f,) = exchange(dev, P.cobs_encode(bytes(raw)) + b"\x00")
    assert f.status == P.C["EBP_PERR_LENGTH"]


def test_oversized_frame_is_refused_and_device_recovers(dev):
    (f,) = exchange(dev, b"\x07" * 5000 + b"\x00")
    assert f.type == P.MSG_ERROR and f.status == P.C["EBP_PERR_OVERFLOW"]
    assert dev.info().board == "host"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_random_bytes_never_break_the_device(dev, data):
    dev.send_raw(data + b"\x00")
    assert dev.info().protocol == P.PROTO_VERSION   # request() skips the error frames the garbage caused


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 20), st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_valid_frames_with_random_bodies_get_an_answer(dev, type_, body, seq):
    """Well-framed requests with arbitrary bodies: every one is answered (mostly with a length error)."""
    if type_ == P.RESET:
        body = body[:1].replace(b"\x01", b"\x00")   # a hard reset is tested in test_device
    f = dev.request(type_, body, check=False)
    assert f.type == type_ | P.RESPONSE
    assert f.status <= 0
    if type_ not in P.MESSAGE_NAMES:
        assert f.status == P.C["EBP_PERR_UNKNOWN"]
