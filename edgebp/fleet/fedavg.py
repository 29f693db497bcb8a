"""Federated averaging of integer weights (and of the float mirror's), and splits of a data set across devices.

Integer rule (``fedavg_int``). Client k holds int16 tensors w_k and trained on n_k >= 0 samples, N = sum n_k > 0.
Per element the average is

    s = sum_k n_k * w_k                      exact, in int64 (|s| <= N * 32768, so N must stay below 2^47)
    q = sign(s) * floor((2 |s| + N) / (2 N)) s / N rounded to the nearest integer, halves away from zero
    w = clamp(q, -32768, 32767)              saturation to int16 (never reached: a weighted mean of int16
                                             values lies within their range; kept as the stated last step)

It is the rounding rule of the C core (``ebp_round`` rounds half away from zero, see csrc/edgebp.h) and of
``edgebp.fixed.quantize``. Integer sums are exact, so the result does not depend on the order of the clients
and is the same on every machine.

Float rule (``fedavg_float``): sum_k n_k w_k / N in float64, each element summed with ``math.fsum`` (correctly
rounded), so it too is independent of the clients' order.

Splits: ``iid_split`` cuts a seeded permutation of the rows into near-equal shards; ``dirichlet_split`` gives
device k a share p_kc of class c with (p_1c..p_Nc) ~ Dirichlet(alpha), drawn per class from a seeded numpy
generator (the scheme of Hsu et al. 2019 and of ``flwr_datasets``' DirichletPartitioner), and draws again until
every device holds at least ``min_samples`` rows.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, DataError

Weights = List[Tuple[np.ndarray, np.ndarray]]   # per layer (W (n_out, n_in), b (n_out,))

MAX_TOTAL = 1 << 47    # N * 32768 * 2 must fit in int64


def _counts(counts: Sequence[int], n_clients: int) -> List[int]:
    counts = [int(c) for c in counts]
    if len(counts) != n_clients:
        raise ConfigError(f"{n_clients} clients' weights but {len(counts)} sample counts")
    if n_clients == 0:
        raise ConfigError("federated averaging needs at least one client")
    if min(counts) < 0:
        raise ConfigError(f"sample counts must be >= 0, got {min(counts)}")
    total = sum(counts)
    if total == 0:
        raise ConfigError("the clients trained on 0 samples in total: nothing to average")
    if total >= MAX_TOTAL:
        raise ConfigError(f"{total} samples in total; integer averaging supports fewer than 2^47")
    return counts


def _same_shapes(client_weights) -> None:
    ref = [(np.shape(W), np.shape(b)) for W, b in client_weights[0]]
    for k, w in enumerate(client_weights[1:], 1):
        if [(np.shape(W), np.shape(b)) for W, b in w] != ref:
            raise ConfigError(f"client {k}'s weights have other shapes than client 0's: every device must run the "
                              f"same network")


def div_round_half_away(s: np.ndarray, n: int) -> np.ndarray:
    """s / n for int64 s and a positive int n, rounded to nearest with halves away from zero (exact)."""
    s = np.asarray(s, dtype=np.int64)
    mag = (2 * np.abs(s) + n) // (2 * n)
    return np.where(s < 0, -mag, mag)


def average_int(tensors: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
    """One tensor: the sample-weighted average of int16 tensors by the rule in the module docstring."""
    counts = _counts(counts, len(tensors))
    total = sum(counts)
    acc = np.zeros(np.shape(tensors[0]), dtype=np.int64)
    for t, n in zip(tensors, counts):
        t = np.asarray(t)
        if t.dtype.kind not in "iu" or (t.size and (t.min() < -32768 or t.max() > 32767)):
            raise DataError(f"integer averaging takes int16 tensors, got {t.dtype} values in "
                            f"[{t.min() if t.size else 0}, {t.max() if t.size else 0}]")
        acc += np.int64(n) * t.astype(np.int64)
    return np.clip(div_round_half_away(acc, total), -32768, 32767).astype(np.int16)


def fedavg_int(client_weights: Sequence[Weights], counts: Sequence[int]) -> Weights:
    """Per layer (W, b) int16: each tensor averaged over the clients by ``average_int``."""
    _counts(counts, len(client_weights))
    _same_shapes(client_weights)
    return [(average_int([w[i][0] for w in client_weights], counts),
             average_int([w[i][1] for w in client_weights], counts)) for i in range(len(client_weights[0]))]


def average_float(tensors: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
    counts = _counts(counts, len(tensors))
    total = float(sum(counts))
    stack = np.stack([np.asarray(t, dtype=np.float64) * float(n) for t, n in zip(tensors, counts)])
    flat = stack.reshape(len(tensors), -1)
    out = np.array([math.fsum(flat[:, j]) for j in range(flat.shape[1])], dtype=np.float64) / total
    return out.reshape(np.shape(tensors[0]))


def fedavg_float(client_weights: Sequence[Weights], counts: Sequence[int]) -> Weights:
    """Per layer (W, b) float64: the sample-weighted mean (the float mirror's FedAvg)."""
    _counts(counts, len(client_weights))
    _same_shapes(client_weights)
    return [(average_float([w[i][0] for w in client_weights], counts),
             average_float([w[i][1] for w in client_weights], counts)) for i in range(len(client_weights[0]))]


# --- splits ------------------------------------------------------------------------------------------------
def labels_of(T: np.ndarray) -> np.ndarray:
    """Class of each target row: argmax of one-hot rows, or (one output) the side of 0.5."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 2:
        raise DataError(f"targets must be 2-D (n, n_out), got shape {T.shape}")
    return (T[:, 0] >= 0.5).astype(np.int64) if T.shape[1] == 1 else np.argmax(T, axis=1)


def iid_split(n: int, n_devices: int, seed: int = 0) -> List[np.ndarray]:
    """Row indices per device: a seeded permutation cut into n_devices near-equal shards (each sorted)."""
    _check_devices(n, n_devices)
    perm = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x11D]).permutation(n)
    return [np.sort(s) for s in np.array_split(perm, n_devices)]


def dirichlet_split(labels: np.ndarray, n_devices: int, alpha: float, seed: int = 0, min_samples: int = 1,
                    max_draws: int = 1000) -> List[np.ndarray]:
    """Row indices per device, non-IID: for each class c, its rows (shuffled) are cut in the proportions of
    one draw p ~ Dirichlet(alpha, ..., alpha) over the devices. Small alpha: each device sees few classes;
    large alpha: close to IID. Draws again (same generator) until every device has >= min_samples rows."""
    labels = np.asarray(labels)
    n = len(labels)
    _check_devices(n, n_devices)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"the Dirichlet parameter alpha must be a positive number, got {alpha}")
    if n < n_devices * min_samples:
        raise DataError(f"{n} rows cannot give {n_devices} devices {min_samples} rows each")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xD1])
    classes = np.unique(labels)
    for _ in range(max_draws):
        shards: List[list] = [[] for _ in range(n_devices)]
        for c in classes:
            rows = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(np.full(n_devices, float(alpha)))
            cuts = np.floor(np.cumsum(p)[:-1] * len(rows)).astype(np.int64)
            for k, part in enumerate(np.split(rows, cuts)):
                shards[k].extend(part.tolist())
        if min(len(s) for s in shards) >= min_samples:
            return [np.sort(np.array(s, dtype=np.int64)) for s in shards]
    raise DataError(f"no Dirichlet({alpha}) split of {n} rows over {n_devices} devices gave every device "
                    f"{min_samples} rows in {max_draws} draws; use fewer devices or a larger alpha")


def _check_devices(n: int, n_devices: int) -> None:
    if int(n_devices) < 1:
        raise ConfigError(f"need at least one device, got {n_devices}")
    if n < n_devices:
        raise DataError(f"{n} training rows cannot be split over {n_devices} devices (one row each at least)")


def parse_split(text: str) -> Tuple[str, Optional[float]]:
    """'iid' -> ('iid', None); 'dirichlet:0.5' -> ('dirichlet', 0.5)."""
    t = str(text).strip().lower()
    if t == "iid":
        return "iid", None
    if t.startswith("dirichlet"):
        _, _, a = t.partition(":")
        try:
            alpha = float(a) if a else 0.5
        except ValueError:
            alpha = float("nan")
        if not (math.isfinite(alpha) and alpha > 0):
            raise ConfigError(f"--split {text!r}: alpha must be a positive number, e.g. dirichlet:0.5")
        return "dirichlet", alpha
    raise ConfigError(f"--split {text!r}: choose iid or dirichlet:ALPHA (e.g. dirichlet:0.5)")


def split_rows(T: np.ndarray, n_devices: int, split: str = "iid", seed: int = 0) -> List[np.ndarray]:
    """Row indices per device for a split named like the CLI's --split."""
    kind, alpha = parse_split(split)
    if kind == "iid":
        return iid_split(len(T), n_devices, seed)
    return dirichlet_split(labels_of(T), n_devices, alpha, seed)
