"""The integer helpers every kernel goes through (csrc/ebp_fixed.h), against exact Python integers."""
from fractions import Fraction
import math

from hypothesis import given, strategies as st, example

from edgebp._core import ffi, lib

LIM = 1 << 62
values = st.integers(-LIM, LIM)
shifts = st.integers(1, 62)
EDGES = [0, 1, -1, 2, -2, 3, -3, 32767, -32768, 32768, -32769, 2**31 - 1, -2**31, 2**31, LIM, -LIM, LIM - 1]


def rn(x, s):  # round half away from zero
    q = Fraction(x, 2 ** s)
    return int(math.floor(abs(q) + Fraction(1, 2))) * (1 if q >= 0 else -1)


@given(st.integers(-2**63, 2**63 - 1))
def test_sat16_sat32(x):
    assert lib.ebp_sat16(x) == min(max(x, -32768), 32767)
    assert lib.ebp_sat32(x) == min(max(x, -2**31), 2**31 - 1)


def test_edges_exhaustive():
    for x in EDGES:
        for s in range(0, 63):
            assert lib.ebp_rshift_rn(x, s) == (x if s == 0 else rn(x, s)), (x, s)
            assert lib.ebp_rshift_floor(x, s) == x >> s, (x, s)  # Python's >> is floor division


@given(values, shifts)
@example(3, 1)     # 1.5 -> 2
@example(-3, 1)    # -1.5 -> -2 (away from zero, not half-up)
@example(1, 1)     # 0.5 -> 1
@example(-1, 1)    # -0.5 -> -1
def test_rshift_rn(x, s):
    assert lib.ebp_rshift_rn(x, s) == rn(x, s)


@given(values, shifts)
def test_rshift_floor(x, s):
    assert lib.ebp_rshift_floor(x, s) == x >> s


@given(values, shifts, st.integers(0, 2**32 - 1))
def test_rshift_sr_is_floor_plus_uniform(x, s, r):
    # floor(x / 2^s + u), with u = r / 2^32 truncated to the s bits that matter
    u = r >> (32 - s) if s <= 32 else r << (s - 32)
    assert lib.ebp_rshift_sr(x, s, r) == (x + u) >> s
    assert lib.ebp_rshift_sr(x, s, r) in (x >> s, (x >> s) + 1)


def test_rshift_sr_is_unbiased():
    # 0.25 LSB rounds up a quarter of the time over the whole generator range
    x, s, n = 1 << 10, 12, 1 << 12
    ups = sum(lib.ebp_rshift_sr(x, s, (k << 20) | 0x5A5A5) for k in range(n))
    assert ups == n // 4
    assert sum(lib.ebp_rshift_sr(-x, s, (k << 20)) for k in range(n)) == -n // 4


@given(st.integers(-LIM, LIM), st.integers(0, 70))
@example(0, 62)
@example(0, 70)
def test_lshift_sat(x, s):
    exact = x * 2 ** s
    assert lib.ebp_lshift_sat(x, s) == max(min(exact, LIM), -LIM)


def test_xorshift32_reference_sequence():
    # Marsaglia (2003), 13/17/5 triple: first outputs from state 1
    state = ffi.new("uint32_t *", 1)
    seq = [lib.ebp_xorshift32(state) for _ in range(3)]
    ref, x = [], 1
    for _ in range(3):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        ref.append(x)
    assert seq == ref == [270369, 67634689, 2647435461]


@given(st.data(), st.integers(1, 31))
def test_rshift_rn32_matches_64_bit_rule_on_its_domain(data, s):
    x = data.draw(st.integers(-2**31 + 1, 2**31 - 2**(s - 1) - 1))
    assert lib.ebp_rshift_rn32(x, s) == rn(x, s)


def test_rshift_rn32_edges():
    for s in range(1, 32):
        for x in (-2**31 + 1, -2**30, -1, 0, 1, 2**(s - 1), -2**(s - 1), 2**31 - 2**(s - 1) - 1):
            if x < 2**31 - 2**(s - 1):  # the documented domain
                assert lib.ebp_rshift_rn32(x, s) == rn(x, s), (x, s)


@given(st.integers(-2**30, 2**30), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_rshift_sr32_matches_64_bit_rule(x, s, r):
    assert lib.ebp_rshift_sr32(x, s, r) == lib.ebp_rshift_sr(x, s, r)
