"""Integer federated averaging (exact rule, order independence, rounding edges) and the data splits."""
from fractions import Fraction
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from edgebp.errors import ConfigError, DataError
from edgebp.fleet.fedavg import (average_float, average_int, dirichlet_split, div_round_half_away, fedavg_float,
                                 fedavg_int, iid_split, labels_of, parse_split, split_rows)


def ref_round(fr: Fraction) -> int:
    """Round half away from zero of an exact rational (the documented rule), clamped to int16."""
    mag = math.floor(abs(fr) + Fraction(1, 2))
    q = -mag if fr < 0 else mag
    return max(-32768, min(32767, q))


def ref_average(values, counts) -> int:
    return ref_round(Fraction(sum(int(v) * n for v, n in zip(values, counts)), sum(counts)))


@pytest.mark.parametrize("values,counts,want", [
    ([1, 2], [1, 1], 2),            # 1.5 -> 2 (half away from zero)
    ([-1, -2], [1, 1], -2),         # -1.5 -> -2
    ([0, 1], [1, 1], 1),            # 0.5 -> 1
    ([0, -1], [1, 1], -1),          # -0.5 -> -1
    ([0, 1], [2, 1], 0),            # 1/3 -> 0
    ([0, 1], [1, 2], 1),            # 2/3 -> 1
    ([0, -1], [1, 2], -1),          # -2/3 -> -1
    ([0, 3], [3, 1], 1),            # 0.75 -> 1
    ([0, -3], [5, 1], -1),          # -3/6 = -0.5 exactly -> -1
    ([32767, 32767], [7, 9], 32767),
    ([-32768, -32768], [1, 1], -32768),
    ([32767, -32768], [1, 1], -1),  # -0.5 -> -1
    ([32767, 32766], [1, 1], 32767),  # 32766.5 -> 32767, never beyond
    ([5, 100], [3, 0], 5),          # a client with no samples does not count
])
def test_rounding_edge_cases(values, counts, want):
    got = int(average_int([np.array([v], np.int16) for v in values], counts)[0])
    assert got == ref_average(values, counts) == want


def test_div_round_half_away_matches_exact_rationals():
    s = np.arange(-50, 51, dtype=np.int64)
    for n in (1, 2, 3, 4, 7, 10):
        got = div_round_half_away(s, n)
        assert [int(g) for g in got] == [ref_round(Fraction(int(v), n)) for v in s]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-32768, 32767), st.integers(0, 10 ** 6)), min_size=1, max_size=12)
       .filter(lambda cs: sum(n for _, n in cs) > 0))
def test_average_int_is_the_exact_rational_rounded(clients):
    values, counts = [v for v, _ in clients], [n for _, n in clients]
    got = average_int([np.array([v], np.int16) for v in values], counts)
    assert got.dtype == np.int16
    assert int(got[0]) == ref_average(values, counts)


def random_weights(rng, sizes=(6, 5, 3)):
    return [(rng.integers(-32768, 32768, size=(o, i)).astype(np.int16),
             rng.integers(-32768, 32768, size=o).astype(np.int16)) for i, o in zip(sizes[:-1], sizes[1:])]


def test_fedavg_int_exact_and_order_independent():
    rng = np.random.default_rng(3)
    clients = [random_weights(rng) for _ in range(5)]
    counts = [1, 17, 4, 250, 9]
    avg = fedavg_int(clients, counts)
    for layer in range(2):
        for part in range(2):
            flat = [c[layer][part].ravel() for c in clients]
            want = [ref_average([f[j] for f in flat], counts) for j in range(flat[0].size)]
            assert avg[layer][part].dtype == np.int16
            assert avg[layer][part].ravel().tolist() == want
    for perm in itertools.permutations(range(5)):
        other = fedavg_int([clients[p] for p in perm], [counts[p] for p in perm])
        assert all(np.array_equal(a, b) for la, lb in zip(avg, other) for a, b in zip(la, lb))


def test_fedavg_of_identical_clients_is_that_client():
    rng = np.random.default_rng(4)
    w = random_weights(rng)
    avg = fedavg_int([w, w, w], [3, 1, 8])
    assert all(np.array_equal(a, b) for la, lb in zip(avg, w) for a, b in zip(la, lb))


def test_fedavg_float_is_the_weighted_mean_and_order_independent():
    rng = np.random.default_rng(5)
    clients = [[(rng.normal(size=(4, 3)), rng.normal(size=4))] for _ in range(6)]
    counts = [3, 1, 4, 1, 5, 9]
    avg = fedavg_float(clients, counts)
    want = sum(n * c[0][0] for c, n in zip(clients, counts)) / sum(counts)
    np.testing.assert_allclose(avg[0][0], want, rtol=1e-14, atol=1e-15)
    rev = fedavg_float(clients[::-1], counts[::-1])
    assert np.array_equal(avg[0][0], rev[0][0]) and np.array_equal(avg[0][1], rev[0][1])   # fsum: bit-equal
    assert average_float([np.array([1.0]), np.array([2.0])], [1, 1])[0] == 1.5


def test_fedavg_rejects_bad_input():
    w = [(np.zeros((2, 2), np.int16), np.zeros(2, np.int16))]
    with pytest.raises(ConfigError, match="0 samples"):
        fedavg_int([w, w], [0, 0])
    with pytest.raises(ConfigError, match="sample counts"):
        fedavg_int([w, w], [1])
    with pytest.raises(ConfigError, match=">= 0"):
        fedavg_int([w, w], [1, -1])
    with pytest.raises(ConfigError, match="same network"):
        fedavg_int([w, [(np.zeros((3, 2), np.int16), np.zeros(3, np.int16))]], [1, 1])
    with pytest.raises(DataError, match="int16"):
        average_int([np.array([1.5]), np.array([2.0])], [1, 1])
    with pytest.raises(DataError, match="int16"):
        average_int([np.array([40000]), np.array([2])], [1, 1])
    with pytest.raises(ConfigError, match="2\\^47"):
        average_int([np.array([1], np.int16)], [1 << 47])


# --- splits ------------------------------------------------------------------------------------------------
def onehot(y, k):
    return np.eye(k)[y]


def test_iid_split_partitions_every_row_once_and_is_seeded():
    shards = iid_split(103, 10, seed=7)
    allrows = np.concatenate(shards)
    assert sorted(allrows.tolist()) == list(range(103))
    assert {len(s) for s in shards} <= {10, 11}
    again = iid_split(103, 10, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(shards, again))
    other = iid_split(103, 10, seed=8)
    assert not all(np.array_equal(a, b) for a, b in zip(shards, other))


def test_dirichlet_split_is_a_seeded_partition_with_fewer_classes_per_device_at_small_alpha():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, size=2000)
    small = dirichlet_split(y, 20, 0.1, seed=1)
    large = dirichlet_split(y, 20, 100.0, seed=1)
    for shards in (small, large):
        assert sorted(np.concatenate(shards).tolist()) == list(range(2000))
        assert min(len(s) for s in shards) >= 1
    again = dirichlet_split(y, 20, 0.1, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(small, again))
    assert not all(np.array_equal(a, b) for a, b in zip(small, dirichlet_split(y, 20, 0.1, seed=2)))

    def classes_seen(shards):   # classes holding at least 10% of a device's rows
        return np.mean([np.sum(np.bincount(y[s], minlength=10) >= 0.1 * len(s)) for s in shards])
    assert classes_seen(small) < 4 < classes_seen(large)


def test_split_rows_by_name_and_errors():
    T = onehot(np.arange(100) % 4, 4)
    assert labels_of(T).tolist() == (np.arange(100) % 4).tolist()
    assert labels_of(np.array([[0.2], [0.9]])).tolist() == [0, 1]
    assert len(split_rows(T, 5, "iid", 0)) == 5
    assert len(split_rows(T, 5, "dirichlet:0.5", 0)) == 5
    assert parse_split("dirichlet:0.5") == ("dirichlet", 0.5)
    assert parse_split("IID") == ("iid", None)
    for bad in ("dirichlet:x", "dirichlet:-1", "shards"):
        with pytest.raises(ConfigError, match="--split"):
            parse_split(bad)
    with pytest.raises(DataError, match="cannot be split"):
        iid_split(3, 4)
    with pytest.raises(DataError, match="larger alpha"):
        dirichlet_split(np.arange(30) % 3, 30, 0.01, seed=0, max_draws=5)
