"""Data sets: the sets shipped in edgebp/datasets/ (FANN text files and UCR/UEA ``.ts`` time series), a user's
own CSV, ``.npy``/``.npz`` and ``.ts`` files, a few scikit-learn sets; class labels to one-hot targets, a seeded
test split, input scaling fitted on the training split, and the check of every split against the number
formats before training.

    ds = load_dataset("BasicMotions")                 # X_train (40, 600): 6 channels of 100 steps, channel-major
    ds.input_shape                                    # (6, 100)
    ds = load_dataset("my.csv", target="label", scale="minmax")   # 20% held out, seeded (split_seed=0)
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ConfigError, DataError

DATASET_DIR = Path(__file__).parent / "datasets"
SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")
TABLE_SUFFIXES = (".csv", ".tsv")
ARRAY_SUFFIXES = (".npy", ".npz")
SCALINGS = ("minmax", "standard")
TASKS = ("auto", "classification", "regression")
DEFAULT_TEST_SPLIT = 0.2        # share of a CSV/.npy/.npz file held out as the test split without --test
MAX_AUTO_CLASSES = 20           # integer labels with at most this many distinct values are classes


# --- FANN ----------------------------------------------------------------------------------------------------
def load_fann(path) -> Tuple[np.ndarray, np.ndarray]:
    """A FANN training file -> (X (n, n_in), T (n, n_out)), float64.

    Format: a header line ``N_SAMPLES N_INPUTS N_OUTPUTS``, then per sample a line of inputs and a line of
    outputs. Only the order of the whitespace-separated values after the header matters.
    """
    path = Path(path)
    lines = _read_text(path).splitlines()
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


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


# --- UCR/UEA .ts time series ---------------------------------------------------------------------------------
@dataclass
class TimeSeries:
    """One .ts file: X (n, C*T) channel-major (channel 0's T values, then channel 1's, ...), labels (n,)."""
    X: np.ndarray
    labels: List[str]
    classes: List[str]
    input_shape: Tuple[int, int]
    problem: str


def load_ts(path) -> TimeSeries:
    """A UCR/UEA ``.ts`` file (sktime's format): ``#`` comments, ``@`` header tags up to ``@data``, then one case
    per line, ``ch0_v0,ch0_v1,...:ch1_v0,...:label``. Equal-length series without time stamps only (the format's
    common case); missing values (``?``) are refused."""
    path = Path(path)
    tags: Dict[str, str] = {}
    rows: List[List[np.ndarray]] = []
    labels: List[str] = []
    in_data = False
    for lineno, raw in enumerate(_read_text(path).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{path}:{lineno}: expected an @tag or @data before the data, got {line[:40]!r}")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
            else:
                tags[key] = value.strip()
            continue
        if tags.get("timestamps", "false").lower() == "true":
            raise DataError(f"{path}: time-stamped series (@timeStamps true) are not supported; give equal-length "
                            "series without time stamps")
        fields = line.split(":")
        has_label = tags.get("classlabel", "false").split()[:1] == ["true"]
        if has_label:
            if len(fields) < 2:
                raise DataError(f"{path}:{lineno}: case has no ':label' at its end")
            labels.append(fields[-1].strip())
            fields = fields[:-1]
        chans = []
        for c, f in enumerate(fields):
            toks = f.split(",")
            if "?" in (t.strip() for t in toks):
                raise DataError(f"{path}:{lineno}: channel {c} has missing values ('?'); impute them first")
            try:
                chans.append(np.array([float(t) for t in toks]))
            except ValueError:
                bad = next(t for t in toks if not _is_float(t))
                raise DataError(f"{path}:{lineno}: channel {c}: value {bad.strip()!r} is not a number") from None
        rows.append(chans)
    if not in_data:
        raise DataError(f"{path}: no @data line; is this a UCR/UEA .ts file?")
    if not rows:
        raise DataError(f"{path}: no cases after @data")
    C, T = len(rows[0]), len(rows[0][0])
    for i, chans in enumerate(rows):
        if len(chans) != C:
            raise DataError(f"{path}: case {i} has {len(chans)} channels, the first case {C}")
        for c, ch in enumerate(chans):
            if len(ch) != T:
                raise DataError(f"{path}: case {i} channel {c} has {len(ch)} steps, the first case {T}; "
                                "unequal-length series are not supported")
    if "dimensions" in tags and tags["dimensions"].isdigit() and int(tags["dimensions"]) != C:
        raise DataError(f"{path}: @dimensions says {tags['dimensions']}, the cases have {C} channels")
    X = np.array([np.concatenate(chans) for chans in rows], dtype=np.float64)
    if not np.isfinite(X).all():
        raise DataError(f"{path}: values are NaN or inf")
    declared = tags.get("classlabel", "").split()[1:]
    classes = declared or sorted(set(labels), key=_label_key)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(f"{path}: labels {unknown} are not among the declared @classLabel values {classes}")
    return TimeSeries(X, labels, classes, (C, T), tags.get("problemname", path.stem))


# --- tables and arrays ---------------------------------------------------------------------------------------
def _label_key(v):
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def _column_index(target, names: Optional[List[str]], width: int, path) -> int:
    """--target as a header name or a 0-based (or negative) column index."""
    if target is None:
        return width - 1
    if names is not None and str(target) in names:
        return names.index(str(target))
    try:
        i = int(target)
    except (TypeError, ValueError):
        have = f"columns are {', '.join(names)}" if names else "the file has no header row: give a column index"
        raise DataError(f"{path}: no column {target!r} for --target; {have}") from None
    if not -width <= i < width:
        raise DataError(f"{path}: --target {i} is outside the {width} columns (0..{width - 1}, or -1 for the last)")
    return i % width


def load_table(path, target=None, header: Optional[bool] = None):
    """A CSV (or tab-/semicolon-separated) file -> (X (n, n_in) float64, y (n,) str, input column names,
    target column name). ``header`` None detects a header row (a first row that is not all numbers)."""
    path = Path(path)
    text = _read_text(path)
    first = next((l for l in text.splitlines() if l.strip()), "")
    if not first:
        raise DataError(f"{path}: empty file")
    delim = max(",;\t", key=first.count) if any(d in first for d in ",;\t") else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delim) if any(c.strip() for c in r)]
    if header is None:
        header = not all(_is_float(c) for c in rows[0])
    names = [c.strip() for c in rows[0]] if header else None
    body = rows[1:] if header else rows
    if not body:
        raise DataError(f"{path}: a header row and no data rows")
    width = len(rows[0])
    for i, r in enumerate(body):
        if len(r) != width:
            raise DataError(f"{path}: data row {i + 1} has {len(r)} fields, the first row {width}")
    if width < 2:
        raise DataError(f"{path}: one column only; a data file needs input columns and a --target column")
    names = names or [f"column {j}" for j in range(width)]
    t = _column_index(target, names if header else None, width, path)
    cols = [j for j in range(width) if j != t]
    X = np.empty((len(body), len(cols)))
    for k, j in enumerate(cols):
        for i, r in enumerate(body):
            v = r[j].strip()
            try:
                X[i, k] = float(v)
            except ValueError:
                what = "is empty (a missing value)" if not v else f"{v!r} is not a number"
                raise DataError(f"{path}: column {names[j]!r}, data row {i + 1}: {what}; inputs must be "
                                "numbers (encode categories, impute missing values), or name this column with "
                                "--target") from None
    bad = ~np.isfinite(X)
    if bad.any():
        i, k = map(int, np.argwhere(bad)[0])
        raise DataError(f"{path}: column {names[cols[k]]!r}, data row {i + 1} is NaN or inf")
    y = [r[t].strip() for r in body]
    if any(v == "" for v in y):
        raise DataError(f"{path}: target column {names[t]!r} has empty values (data row "
                        f"{y.index('') + 1})")
    return X, y, [names[j] for j in cols], names[t]


def _load_npy(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy/.npz file ({e})") from None


def load_arrays(path, target=None):
    """``.npz`` with arrays ``X`` (n, n_in) and ``y`` (n,) or (n, n_out) (and optionally ``X_test``, ``y_test``);
    ``.npy``: ``X.npy`` with ``y.npy`` beside it (any name with X -> y), or one 2-D array whose ``--target``
    column (an index, default the last) holds the labels. -> (X, y, X_test or None, y_test or None)."""
    path = Path(path)
    if path.suffix == ".npz":
        z = _load_npy(path)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not an .npz archive")
        with z:
            keys = {k.lower(): k for k in z.files}
            if "x" not in keys or "y" not in keys:
                raise DataError(f"{path}: an .npz data file needs arrays 'X' and 'y'; it has {', '.join(z.files)}")
            X, y = z[keys["x"]], z[keys["y"]]
            Xt = z[keys["x_test"]] if "x_test" in keys else None
            yt = z[keys["y_test"]] if "y_test" in keys else None
        if (Xt is None) != (yt is None):
            raise DataError(f"{path}: give both 'X_test' and 'y_test', or neither")
        return X, y, Xt, yt
    A = _load_npy(path)
    sibling = path.with_name(path.name.replace("X", "y", 1)) if "X" in path.name else None
    if sibling is not None and sibling.is_file() and target is None:
        return A, _load_npy(sibling), None, None
    if A.ndim != 2 or A.shape[1] < 2:
        raise DataError(f"{path}: a single .npy data file must be a 2-D array (inputs and a target column), got "
                        f"shape {A.shape}; or give X.npy with y.npy beside it")
    try:
        t = _column_index(target, None, A.shape[1], path)
    except DataError:
        raise
    return np.delete(A, t, axis=1), A[:, t], None, None


def _as_inputs(X, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{what}: inputs must be numbers, got dtype {X.dtype}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim > 2:
        X = X.reshape(len(X), -1)
    if len(X) == 0:
        raise DataError(f"{what}: no samples")
    if not np.isfinite(X).all():
        i, j = map(int, np.argwhere(~np.isfinite(X))[0])
        raise DataError(f"{what}: input column {j}, row {i} is NaN or inf")
    return np.ascontiguousarray(X)


# --- labels and targets --------------------------------------------------------------------------------------
def infer_task(y) -> str:
    """'classification' for strings, booleans and integer labels with few distinct values, else 'regression'."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return "regression"
    y = y.reshape(-1)
    if y.dtype.kind in "bUSO":
        try:
            v = np.array([float(s) for s in y])
        except (TypeError, ValueError):
            return "classification"
    else:
        v = y.astype(np.float64)
    if np.all(np.isfinite(v)) and np.all(v == np.round(v)) and len(np.unique(v)) <= MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def encode_labels(y, classes: Optional[Sequence] = None):
    """Labels (n,) -> (one-hot T (n, n_classes), classes). Classes are sorted (numbers numerically) unless
    given; a label not among given classes is an error."""
    y = np.asarray(y).reshape(-1)
    keys = [_norm_label(v) for v in y]
    if classes is None:
        classes = sorted(set(keys), key=_label_key)
    classes = [_norm_label(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(keys) - set(index), key=_label_key)
    if unknown:
        raise DataError(f"labels {unknown[:5]} do not occur in the training split (classes {classes[:10]})")
    T = np.zeros((len(y), len(classes)))
    T[np.arange(len(y)), [index[k] for k in keys]] = 1.0
    return T, classes


def _norm_label(v) -> str:
    """'1', 1 and 1.0 are the same class."""
    s = str(v).strip()
    try:
        f = float(s)
        if math.isfinite(f) and f == int(f):
            return str(int(f))
    except ValueError:
        pass
    return s


def as_targets(spec, y) -> np.ndarray:
    """What ``fit(X, y)`` accepts: one-hot or real targets (n, n_out) pass through; a label vector (n,) of
    integer classes 0..n_out-1 becomes one-hot when the network has several outputs, a column when it has one.
    ``spec`` is a NetSpec (or anything with ``n_out``)."""
    y = np.asarray(y)
    n_out = spec.n_out
    if y.ndim != 1 or n_out == 1:
        return y
    if y.dtype.kind not in "biuf":
        raise DataError(f"class labels for fit must be integers 0..{n_out - 1} (got {y.dtype}); use "
                        "edgebp.data.encode_labels for other labels, or give one-hot targets (n, n_out)")
    v = y.astype(np.float64)
    if not (np.all(np.isfinite(v)) and np.all(v == np.round(v)) and v.min() >= 0 and v.max() <= n_out - 1):
        raise DataError(f"a label vector for a network with {n_out} outputs must hold class indices "
                        f"0..{n_out - 1}; got values in [{v.min():g}, {v.max():g}]; or give targets of shape "
                        f"(n, {n_out})")
    return np.eye(n_out)[v.astype(np.int64)]


# --- scaling -------------------------------------------------------------------------------------------------
@dataclass
class Scaler:
    """Input scaling fitted on the training split: x_model = (x - offset) * scale, per input (the convention
    of the weights file, edgebp/weights.py, which stores it with ``to_dict``).

    For time series (input_shape (C, T)) one offset and scale per channel, repeated over its T steps."""
    kind: str
    offset: np.ndarray   # (n_in,)
    scale: np.ndarray    # (n_in,), > 0: 1 / range (minmax) or 1 / standard deviation

    @classmethod
    def fit(cls, X, kind: str, input_shape: Optional[Tuple[int, ...]] = None) -> "Scaler":
        if kind not in SCALINGS:
            raise ConfigError(f"unknown scaling {kind!r}; choose one of {', '.join(SCALINGS)}")
        X = np.asarray(X, dtype=np.float64)
        if input_shape is not None and len(input_shape) == 2:
            C, T = input_shape
            G = X.reshape(len(X), C, T).transpose(1, 0, 2).reshape(C, -1)   # (C, n*T)
        else:
            C, T, G = X.shape[1], 1, X.T
        if kind == "minmax":
            lo, hi = G.min(axis=1), G.max(axis=1)
            off, sc = lo, hi - lo
        else:
            off, sc = G.mean(axis=1), G.std(axis=1)
        sc = np.where(sc > 0, sc, 1.0)   # a constant input becomes 0
        return cls(kind, np.repeat(off, T), np.repeat(1.0 / sc, T))

    def transform(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != len(self.offset):
            raise DataError(f"the scaling was fitted on {len(self.offset)} inputs, the data has {X.shape[-1]}")
        return np.ascontiguousarray((X - self.offset) * self.scale)

    def inverse(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) / self.scale + self.offset

    def to_dict(self) -> dict:
        return dict(kind=self.kind, offset=self.offset.tolist(), scale=self.scale.tolist())

    @classmethod
    def from_dict(cls, d) -> "Scaler":
        if isinstance(d, (str, bytes, np.ndarray)):
            d = json.loads(str(d))
        try:
            return cls(str(d["kind"]), np.asarray(d["offset"], dtype=np.float64),
                       np.asarray(d["scale"], dtype=np.float64))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"a stored input scaling needs kind, offset and scale ({e})") from None


# --- the data set --------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    X_train: np.ndarray   # (n_train, n_in); time series channel-major: input c*T + t is channel c, step t
    T_train: np.ndarray   # (n_train, n_out)
    X_test: np.ndarray    # (n_test, n_in)
    T_test: np.ndarray    # (n_test, n_out)
    input_shape: Optional[Tuple[int, ...]] = None   # (C, T) for time series, (n_in,) otherwise
    classes: Optional[List[str]] = None              # class label of each output, for classification
    columns: Optional[List[str]] = None              # a name per input (CSV header), else None
    scaler: Optional[Scaler] = None                  # the scaling applied to X_train and X_test
    test_source: str = "fixed split"                 # how the test split was obtained
    notes: List[str] = field(default_factory=list)   # what was chosen for the user (default target, split)

    def __post_init__(self):
        if self.input_shape is None:
            self.input_shape = (int(self.X_train.shape[1]),)
        self.input_shape = tuple(int(s) for s in self.input_shape)

    @property
    def task(self) -> str:
        return "classification" if self.classes is not None else "regression"

    def input_name(self, j: int) -> str:
        """Human name of input j: a CSV column, 'channel c step t' of a series, or 'input j'."""
        if self.columns is not None:
            return repr(self.columns[j])
        if len(self.input_shape) == 2:
            T = self.input_shape[1]
            return f"channel {j // T} step {j % T} (input {j})"
        return f"input {j}"


def list_datasets() -> List[str]:
    """Names of the sets shipped in edgebp/datasets/: FANN sets (.train and .test) and .ts sets
    (NAME_TRAIN.ts and NAME_TEST.ts)."""
    fann = [p.stem for p in DATASET_DIR.glob("*.train") if p.with_suffix(".test").is_file()]
    ts = [p.name[:-len("_TRAIN.ts")] for p in DATASET_DIR.glob("*_TRAIN.ts")
          if (DATASET_DIR / p.name.replace("_TRAIN.ts", "_TEST.ts")).is_file()]
    return sorted(fann + ts, key=str.lower)


def load_dataset(name, *, target=None, test=None, test_split: Optional[float] = None, split_seed: int = 0,
                 scale: Optional[str] = None, header: Optional[bool] = None, task: str = "auto") -> Dataset:
    """A data set by name or path.

    ``name``: a shipped set (see list_datasets), a FANN path prefix P with P.train and P.test, a UCR/UEA pair
    given as ``PATH/NAME_TRAIN.ts`` (``NAME_TEST.ts`` beside it is the test split), a ``.csv`` file (``target``:
    a header name or column index, default the last column; ``header`` None detects a header row), a ``.npy``
    or ``.npz`` file (see load_arrays), or ``sklearn:NAME``.
    CSV and arrays: ``test`` names a separate test file of the same kind; without it a seeded share
    ``test_split`` (default DEFAULT_TEST_SPLIT = 0.2, stratified by class, ``split_seed`` 0) is held out.
    ``task``: 'auto' (strings and integer labels with at most 20 values are classes), 'classification' or
    'regression'. ``scale``: None, 'minmax' (inputs to [0, 1]) or 'standard' (mean 0, sd 1), fitted on the
    training split and applied to both (``ds.scaler``).
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if scale is not None and scale not in SCALINGS:
        raise ConfigError(f"unknown scaling {scale!r}; choose one of {', '.join(SCALINGS)}")
    if test_split is not None and not (isinstance(test_split, (int, float)) and 0 < test_split < 1):
        raise ConfigError(f"test split must be a fraction between 0 and 1 (exclusive), got {test_split}")
    if not (isinstance(split_seed, (int, np.integer)) and 0 <= split_seed < 2 ** 32):
        raise ConfigError(f"the test split seed (--test-seed) must be an integer in 0..2^32-1, got {split_seed}")
    name = str(name)
    own_file = Path(name).suffix.lower() in TABLE_SUFFIXES + ARRAY_SUFFIXES
    if not own_file and (test is not None or test_split is not None):
        raise ConfigError(f"{name} comes with its own test split: --test and --test-split apply to CSV, .npy and "
                          ".npz files only")
    if not own_file and target is not None:
        raise ConfigError(f"--target applies to CSV, .npy and .npz files only; {name} has its targets")
    if name in SKLEARN_SETS and name not in list_datasets() and not Path(name).exists():
        name = f"sklearn:{name}"      # `digits` is scikit-learn's digits (the name the issues and docs use)
    if name.startswith("sklearn:"):
        ds = _load_sklearn(name[len("sklearn:"):])
    elif own_file:
        ds = _load_own(Path(name), target, test, test_split, split_seed, header, task)
    elif name.lower().endswith(".ts"):
        ds = _load_ts_pair(Path(name))
    else:
        ds = _load_named(name)
    if scale is not None:
        ds.scaler = Scaler.fit(ds.X_train, scale, ds.input_shape)
        ds.X_train, ds.X_test = ds.scaler.transform(ds.X_train), ds.scaler.transform(ds.X_test)
    return ds


def _load_named(name: str) -> Dataset:
    for prefix in (Path(name), DATASET_DIR / name):
        train, test = Path(f"{prefix}.train"), Path(f"{prefix}.test")
        if train.is_file() or test.is_file():
            if not (train.is_file() and test.is_file()):
                missing = test if train.is_file() else train
                raise DataError(f"data set {name!r}: {missing} is missing; a set needs both .train and .test")
            X, T = load_fann(train)
            Xt, Tt = load_fann(test)
            if X.shape[1] != Xt.shape[1] or T.shape[1] != Tt.shape[1]:
                raise DataError(f"data set {name!r}: {train} has {X.shape[1]} inputs and {T.shape[1]} outputs, "
                                f"{test} {Xt.shape[1]} and {Tt.shape[1]}")
            classes = None
            if T.shape[1] > 1 and set(np.unique(T)) <= {0.0, 1.0} and (T.sum(axis=1) == 1).all():
                classes = [str(i) for i in range(T.shape[1])]
            return Dataset(prefix.name, X, T, Xt, Tt, classes=classes)
    shipped = DATASET_DIR / f"{name}_TRAIN.ts"
    if shipped.is_file():
        return _load_ts_pair(shipped)
    raise DataError(f"unknown data set {name!r}: not a shipped set ({', '.join(list_datasets())}), nor a FANN "
                    f"path prefix with .train/.test files, a NAME_TRAIN.ts file, a .csv, .npy or .npz file, nor "
                    f"sklearn:NAME ({', '.join(SKLEARN_SETS)})")


def _load_ts_pair(train: Path) -> Dataset:
    if not train.name.upper().endswith("_TRAIN.TS"):
        raise DataError(f"{train}: give a UCR/UEA pair as PATH/NAME_TRAIN.ts (with NAME_TEST.ts beside it)")
    base, tail = train.name[:-len("_TRAIN.ts")], train.name[-len("_TRAIN.ts"):]
    test = train.with_name(base + tail.replace("TRAIN", "TEST").replace("train", "test"))
    if not train.is_file():
        raise DataError(f"{train}: no such file")
    if not test.is_file():
        raise DataError(f"{train}: its test split {test.name} is missing (expected beside it)")
    a, b = load_ts(train), load_ts(test)
    if a.input_shape != b.input_shape:
        raise DataError(f"{test}: series of shape {b.input_shape} (channels, steps), {train.name} has "
                        f"{a.input_shape}")
    T, classes = encode_labels(a.labels, a.classes)
    try:
        Tt, _ = encode_labels(b.labels, classes)
    except DataError as e:
        raise DataError(f"{test}: {e}") from None
    return Dataset(train.name[:-len("_TRAIN.ts")], a.X, T, b.X, Tt, input_shape=a.input_shape, classes=classes)


def _load_file(path: Path, target, header):
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() in TABLE_SUFFIXES:
        X, y, cols, tname = load_table(path, target, header)
        return X, np.array(y), None, None, cols, tname
    X, y, Xt, yt = load_arrays(path, target)
    return X, y, Xt, yt, None, None


def _load_own(path: Path, target, test, test_split, split_seed, header, task) -> Dataset:
    X, y, Xt, yt, cols, tname = _load_file(path, target, header)
    notes = []
    if tname is not None and target is None:
        notes.append(f"target: the last column {tname!r} (choose another with --target)")
    X = _as_inputs(X, str(path))
    y = np.asarray(y)
    if len(y) != len(X):
        raise DataError(f"{path}: {len(X)} input rows but {len(y)} targets")
    if test is not None:
        if Xt is not None:
            raise ConfigError(f"{path} holds its own X_test and y_test; drop --test")
        Xt, yt, _, _, tcols, _ = _load_file(Path(test), target, header)
        if tcols is not None and cols is not None and tcols != cols:
            raise DataError(f"{test}: input columns {tcols} differ from the training file's {cols}")
        source = f"file {test}"
    elif Xt is not None:
        source = f"X_test/y_test in {path.name}"
    else:
        source = None
    if Xt is not None:
        Xt = _as_inputs(Xt, f"{test or path} (test split)")
        yt = np.asarray(yt)
        if Xt.shape[1] != X.shape[1]:
            raise DataError(f"test split: {Xt.shape[1]} inputs, the training split has {X.shape[1]}")
        if len(yt) != len(Xt):
            raise DataError(f"test split: {len(Xt)} input rows but {len(yt)} targets")
    if task == "auto":
        task = infer_task(y)
    if task == "classification":
        if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
            raise DataError(f"{path}: class labels must be one column, got shape {y.shape}")
        if Xt is None:
            frac = DEFAULT_TEST_SPLIT if test_split is None else test_split
            tr, te = split_indices(y.reshape(-1), frac, split_seed, stratify=True)
            X, Xt, y, yt = X[tr], X[te], y[tr], y[te]
            source = f"{frac:.0%} held out (stratified, split seed {split_seed})"
        T, classes = encode_labels(y)
        try:
            Tt, _ = encode_labels(yt, classes)
        except DataError as e:
            raise DataError(f"test split: {e}") from None
        if len(classes) < 2:
            raise DataError(f"{path}: the target has one class only ({classes[0]}); nothing to learn")
    else:
        T = _as_regression(y, str(path))
        classes = None
        if Xt is None:
            frac = DEFAULT_TEST_SPLIT if test_split is None else test_split
            tr, te = split_indices(np.zeros(len(X)), frac, split_seed, stratify=False)
            X, Xt, T, yt = X[tr], X[te], T[tr], T[te]
            source = f"{frac:.0%} held out (split seed {split_seed})"
        Tt = _as_regression(yt, "test split")
        if Tt.shape[1] != T.shape[1]:
            raise DataError(f"test split: {Tt.shape[1]} target columns, the training split has {T.shape[1]}")
    if len(X) == 0 or len(Xt) == 0:
        raise DataError(f"{path}: {len(X)} training and {len(Xt)} test rows; each split needs at least one")
    ds = Dataset(path.stem, X, T, Xt, Tt, classes=classes, columns=cols, test_source=source, notes=notes)
    return ds


def _as_regression(y, what: str) -> np.ndarray:
    y = np.asarray(y)
    try:
        T = np.asarray(y, dtype=np.float64)
    except ValueError:
        raise DataError(f"{what}: regression targets must be numbers; use --task classification for labels") \
            from None
    if T.ndim == 1:
        T = T[:, None]
    if not np.isfinite(T).all():
        raise DataError(f"{what}: targets are NaN or inf (row {int(np.argwhere(~np.isfinite(T))[0][0])})")
    return np.ascontiguousarray(T)


def split_indices(y, frac: float, seed: int, stratify: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a seeded random share ``frac`` held out, per class when ``stratify`` (each class
    with at least two rows keeps one on each side). Both keep the file order of the rows."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y).reshape(-1)
    n = len(y)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    # round(n * frac) rows in all, shared between the classes by largest remainder
    quota = np.array([len(g) * frac for g in groups])
    ks = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - ks), kind="stable")[:int(round(n * frac)) - int(ks.sum())]:
        ks[i] += 1
    test = []
    for g, k in zip(groups, ks):
        if len(g) >= 2:
            k = min(max(int(k), 1), len(g) - 1)
        test.append(rng.permutation(g)[:k])
    te = np.sort(np.concatenate(test)).astype(np.int64)
    tr = np.setdiff1d(np.arange(n), te)
    return tr, te


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
    return Dataset(f"sklearn:{which}", X[tr], T[tr], X[te], T[te], classes=[str(i) for i in range(T.shape[1])])


# --- checks before training ----------------------------------------------------------------------------------
def _q_range(frac: int) -> Tuple[float, float]:
    """The real values that round (half away from zero, as the core) into int16 Q``frac``."""
    return -32768.5 / 2.0 ** frac, 32767.5 / 2.0 ** frac


def check_format(ds: Dataset, spec) -> None:
    """Every split's inputs against Q in_frac and targets against the output layer's Q a_frac, before training:
    a DataError naming the split, the column and the value, and what to change."""
    lo, hi = _q_range(spec.in_frac)
    for split, X in (("training", ds.X_train), ("test", ds.X_test)):
        if X.shape[1] != spec.n_in:
            raise DataError(f"{split} split has {X.shape[1]} inputs, the network {spec.n_in}")
        bad = (X <= lo) | (X >= hi)
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            col = X[:, j]
            v = col[np.argmax(np.abs(col))]
            n_cols = int(bad.any(axis=0).sum())
            raise DataError(f"{split} split: {ds.input_name(j)} reaches {v:.4g}, outside the input format Q"
                            f"{spec.in_frac} (about +-{32767 / 2.0 ** spec.in_frac:.4g}); {n_cols} input(s) "
                            f"affected. Scale the inputs (--scale minmax or --scale standard) or use fewer "
                            f"fractional bits (--in-frac {max(spec.in_frac - _bits_needed(X, spec.in_frac), 0)})")
    a_frac = spec.layers[-1].a_frac
    lo, hi = _q_range(a_frac)
    for split, T in (("training", ds.T_train), ("test", ds.T_test)):
        if T.shape[1] != spec.n_out:
            raise DataError(f"{split} split has {T.shape[1]} targets, the network {spec.n_out} outputs")
        bad = (T <= lo) | (T >= hi)
        if bad.any():
            k = int(np.flatnonzero(bad.any(axis=0))[0])
            v = T[np.argmax(np.abs(T[:, k])), k]
            raise DataError(f"{split} split: target {k} reaches {v:.4g}, outside the output format Q{a_frac} "
                            f"(about +-{32767 / 2.0 ** a_frac:.4g}); use fewer fractional bits (--a-frac "
                            f"{max(a_frac - _bits_needed(T, a_frac), 0)}) or scale the targets")


def _bits_needed(A: np.ndarray, frac: int) -> int:
    """How many fractional bits to give up so that every value of A fits int16."""
    m = float(np.abs(A).max())
    k = 0
    while k < frac and m >= 32767.5 / 2.0 ** (frac - k):
        k += 1
    return k


def sorted_by_class(T) -> bool:
    """True when the rows come in blocks of one class each (as the UCR/UEA files do): online training in file
    order then forgets all but the last classes."""
    T = np.asarray(T)
    if T.ndim != 2 or T.shape[1] < 2 or len(T) < 4:
        return False
    c = np.argmax(T, axis=1)
    n_classes = len(np.unique(c))
    return n_classes > 1 and int(np.count_nonzero(np.diff(c))) == n_classes - 1
