"""Data sets: FANN text training files, the sets shipped in edgebp/datasets/, and a few scikit-learn sets."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np

from .errors import DataError

DATASET_DIR = Path(__file__).parent / "datasets"
SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")


def load_fann(path) -> Tuple[np.ndarray, np.ndarray]:
    """A FANN training file -> (X (n, n_in), T (n, n_out)), float64.

    Format: a header line ``N_SAMPLES N_INPUTS N_OUTPUTS``, then per sample a line of inputs and a line of
    outputs. Only the order of the whitespace-separated values after the header matters.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    if not lines or not lines[0].strip():
        raise DataError(f"{path}: empty file or empty first line; expected a header 'N_SAMPLES N_INPUTS N_OUTPUTS'")
    head = lines[0].split()
    try:
        n, n_in, n_out = (int(h) for h in head)
    except ValueError:
        raise DataError(f"{path}: bad header {lines[0].strip()!r}; expected three integers "
                        "'N_SAMPLES N_INPUTS N_OUTPUTS'") from None
    if n < 1 or n_in < 1 or n_out < 1:
        raise DataError(f"{path}: bad header {lines[0].strip()!r}; sample, input and output counts must be >= 1")
    tokens = " ".join(lines[1:]).split()
    want = n * (n_in + n_out)
    if len(tokens) != want:
        raise DataError(f"{path}: header says {n} samples of {n_in} inputs and {n_out} outputs = {want} values, "
                        f"found {len(tokens)}")
    try:
        values = np.array([float(t) for t in tokens])
    except ValueError:
        bad = next(i for i, t in enumerate(tokens) if not _is_float(t))
        raise DataError(f"{path}: value {tokens[bad]!r} (sample {bad // (n_in + n_out)}) is not a number") from None
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataError(f"{path}: value {tokens[bad]!r} (sample {bad // (n_in + n_out)}) is NaN or inf")
    values = values.reshape(n, n_in + n_out)
    return np.ascontiguousarray(values[:, :n_in]), np.ascontiguousarray(values[:, n_in:])


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray   # (n_train, n_in)
    T_train: np.ndarray   # (n_train, n_out)
    X_test: np.ndarray    # (n_test, n_in)
    T_test: np.ndarray    # (n_test, n_out)


def list_datasets() -> List[str]:
    """Names of the sets shipped in edgebp/datasets/ (those with both a .train and a .test file)."""
    return sorted(p.stem for p in DATASET_DIR.glob("*.train") if p.with_suffix(".test").is_file())


def load_dataset(name: str) -> Dataset:
    """``name``: a path prefix P with P.train and P.test, a shipped set (see list_datasets), or 'sklearn:NAME'."""
    name = str(name)
    if name.startswith("sklearn:"):
        return _load_sklearn(name[len("sklearn:"):])
    for prefix in (Path(name), DATASET_DIR / name):
        train, test = Path(f"{prefix}.train"), Path(f"{prefix}.test")
        if train.is_file() or test.is_file():
            if not (train.is_file() and test.is_file()):
                missing = test if train.is_file() else train
                raise DataError(f"data set {name!r}: {missing} is missing; a set needs both .train and .test")
            return Dataset(prefix.name, *load_fann(train), *load_fann(test))
    raise DataError(f"unknown data set {name!r}: not a path prefix with .train/.test files, nor a shipped set "
                    f"({', '.join(list_datasets())}), nor sklearn:NAME ({', '.join(SKLEARN_SETS)})")


def _load_sklearn(which: str) -> Dataset:
    """Inputs scaled to [0, 1] by the training split (digits: / 16), one-hot targets, fixed 50/50 split."""
    if which not in SKLEARN_SETS:
        raise DataError(f"unknown scikit-learn data set {which!r}; choose one of {', '.join(SKLEARN_SETS)}")
    try:
        import sklearn.datasets as skd
    except ImportError:
        raise DataError(f"sklearn:{which} needs scikit-learn: pip install scikit-learn") from None
    X, y = getattr(skd, f"load_{which}")(return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    T = np.eye(int(y.max()) + 1)[y]
    perm = np.random.default_rng(0).permutation(len(X))
    tr, te = perm[:len(X) // 2], perm[len(X) // 2:]
    if which == "digits":
        X = X / 16.0
    else:    # test values may fall slightly outside [0, 1]; constant columns become 0
        lo, hi = X[tr].min(axis=0), X[tr].max(axis=0)
        X = (X - lo) / np.where(hi > lo, hi - lo, 1.0)
    return Dataset(f"sklearn:{which}", X[tr], T[tr], X[te], T[te])
