"""FANN file reader and data-set lookup."""
import numpy as np
import pytest

from edgebp.data import DATASET_DIR, Dataset, list_datasets, load_dataset, load_fann
from edgebp.errors import DataError


def write(tmp_path, text, name="set.data"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_diabetes_shapes():
    ds = load_dataset("diabetes")
    assert isinstance(ds, Dataset) and ds.name == "diabetes"
    for X, T in ((ds.X_train, ds.T_train), (ds.X_test, ds.T_test)):
        assert X.shape == (384, 8) and T.shape == (384, 2)
        assert X.dtype == T.dtype == np.float64 and X.flags.c_contiguous
        assert set(np.unique(T)) == {0.0, 1.0} and (T.sum(axis=1) == 1).all()
    np.testing.assert_allclose(ds.X_train[0], [0.058823, 0.445, 0.196721, 0.19, 0.029551, 0.414307, 0.20538, 0])


def test_list_datasets():
    names = list_datasets()
    assert {"diabetes", "thyroid", "parity8", "two-spiral", "robot", "building"} <= set(names)
    assert {"BasicMotions", "GunPoint", "ArrowHead"} <= set(names)
    for n in names:
        fann = (DATASET_DIR / f"{n}.train").is_file() and (DATASET_DIR / f"{n}.test").is_file()
        ts = (DATASET_DIR / f"{n}_TRAIN.ts").is_file() and (DATASET_DIR / f"{n}_TEST.ts").is_file()
        assert fann or ts, n


def test_every_shipped_set_loads():
    for n in list_datasets():
        ds = load_dataset(n)
        assert ds.X_train.shape[1] == ds.X_test.shape[1] and ds.T_train.shape[1] == ds.T_test.shape[1]


def test_tolerant_layout(tmp_path):
    # trailing spaces, a value split onto the next line, blank lines, tabs
    p = write(tmp_path, "2 3 1  \n1 2 \n 3\n\n0.5\n4\t5 6 \n-1e-2\n")
    X, T = load_fann(p)
    np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(T, [[0.5], [-0.01]])


def test_path_prefix(tmp_path):
    write(tmp_path, "1 2 1\n1 2\n1\n", "toy.train")
    write(tmp_path, "2 2 1\n0 0\n0\n1 1\n1\n", "toy.test")
    ds = load_dataset(str(tmp_path / "toy"))
    assert ds.name == "toy" and ds.X_train.shape == (1, 2) and ds.X_test.shape == (2, 2)
    write(tmp_path, "1 2 1\n1 2\n1\n", "half.train")
    with pytest.raises(DataError, match=r"half\.test is missing"):
        load_dataset(str(tmp_path / "half"))


@pytest.mark.parametrize("text,msg", [
    ("", "empty"),
    ("2 3\n1 2 3\n1\n", "bad header"),
    ("two 3 1\n", "bad header"),
    ("2 3 1.5\n", "bad header"),
    ("0 3 1\n", "bad header"),
    ("2 3 1\n1 2 3\n1\n4 5 6\n", "8 values, found 7"),
    ("1 3 1\n1 2 3\n1 9\n", "4 values, found 5"),
    ("2 3 1\n1 2 3\n1\n4 x5 6\n0\n", r"'x5' \(sample 1\) is not a number"),
    ("2 3 1\n1 2 3\n1\n4 5 6\nnan\n", r"'nan' \(sample 1\) is NaN or inf"),
    ("1 3 1\ninf 2 3\n1\n", "NaN or inf"),
])
def test_malformed_files(tmp_path, text, msg):
    p = write(tmp_path, text, "bad.train")
    with pytest.raises(DataError, match=msg) as err:
        load_fann(p)
    assert "bad.train" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_fann(tmp_path / "nope.train")


def test_unknown_name_lists_shipped_sets():
    with pytest.raises(DataError, match="unknown data set 'nosuchset'") as err:
        load_dataset("nosuchset")
    for n in ("diabetes", "thyroid", "parity8"):
        assert n in str(err.value)
    with pytest.raises(DataError, match="breast_cancer"):
        load_dataset("sklearn:nosuchset")


def test_sklearn_missing_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "sklearn", None)            # as if it were not installed
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match="pip install scikit-learn"):
        load_dataset("sklearn:iris")


@pytest.mark.parametrize("name,n_in,n_out", [("iris", 4, 3), ("digits", 64, 10), ("wine", 13, 3),
                                             ("breast_cancer", 30, 2)])
def test_sklearn_sets(name, n_in, n_out):
    pytest.importorskip("sklearn")
    ds = load_dataset(f"sklearn:{name}")
    a = load_dataset(f"sklearn:{name}")
    assert np.array_equal(ds.X_test, a.X_test)                     # deterministic split
    assert ds.X_train.shape[1] == n_in and ds.T_train.shape[1] == n_out
    assert abs(len(ds.X_train) - len(ds.X_test)) <= 1
    assert ds.X_train.min() >= 0 and ds.X_train.max() <= 1
    assert (ds.T_train.sum(axis=1) == 1).all()


# --- UCR/UEA .ts time series -------------------------------------------------------------------------------
from edgebp.data import Scaler, as_targets, check_format, load_ts, sorted_by_class, split_indices  # noqa: E402


def _ts_text(cases, classes="a b", dims=None, extra=""):
    head = f"# a comment\n@problemName Toy\n@timeStamps false\n@classLabel true {classes}\n{extra}"
    if dims:
        head += f"@dimensions {dims}\n"
    return head + "@data\n" + "\n".join(cases) + "\n"


@pytest.mark.parametrize("name,shape,n_train,n_test,classes", [
    ("BasicMotions", (6, 100), 40, 40, ["Standing", "Running", "Walking", "Badminton"]),
    ("GunPoint", (1, 150), 50, 150, ["1", "2"]),
    ("ArrowHead", (1, 251), 36, 175, ["0", "1", "2"]),
])
def test_shipped_ts_sets(name, shape, n_train, n_test, classes):
    ds = load_dataset(name)
    assert ds.input_shape == shape and ds.classes == classes
    C, T = shape
    assert ds.X_train.shape == (n_train, C * T) and ds.X_test.shape == (n_test, C * T)
    assert ds.T_train.shape == (n_train, len(classes)) and (ds.T_train.sum(axis=1) == 1).all()
    assert name in list_datasets()


def test_basicmotions_is_channel_major_and_sorted_by_class():
    """Input c*T + t is channel c at step t: compare with the raw text of the first case."""
    ds = load_dataset("BasicMotions")
    first = next(l for l in (DATASET_DIR / "BasicMotions_TRAIN.ts").read_text().splitlines()
                 if l and l[0] not in "#@")
    fields = first.split(":")
    assert fields[-1] == "Standing" and len(fields) == 7
    for c in range(6):
        np.testing.assert_array_equal(ds.X_train[0, c * 100:(c + 1) * 100], [float(v) for v in fields[c].split(",")])
    assert sorted_by_class(ds.T_train)                          # 10 Standing, then 10 Running, ...
    assert not sorted_by_class(load_dataset("ArrowHead").T_train)   # 0, 1, 2, 0, 1, 2, ...


def test_own_ts_pair(tmp_path):
    write(tmp_path, _ts_text(["1,2,3:4,5,6:b", "0,0,0:1,1,1:a"], dims=2), "Toy_TRAIN.ts")
    write(tmp_path, _ts_text(["7,8,9:1,2,3:a"], dims=2), "Toy_TEST.ts")
    ds = load_dataset(str(tmp_path / "Toy_TRAIN.ts"))
    assert ds.name == "Toy" and ds.input_shape == (2, 3) and ds.classes == ["a", "b"]
    np.testing.assert_array_equal(ds.X_train, [[1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(ds.T_train, [[0, 1], [1, 0]])
    np.testing.assert_array_equal(ds.T_test, [[1, 0]])


@pytest.mark.parametrize("cases,extra,msg", [
    (["1,2:3,4:a", "1,2:b"], "", "case 1 has 1 channels"),
    (["1,2,3:a", "1,2:b"], "", "unequal-length"),
    (["1,?,3:a"], "", r"missing values \('\?'\)"),
    (["1,x,3:a"], "", "'x' is not a number"),
    (["1,2,3:c"], "", r"labels \['c'\] are not among"),
    (["1,2,3:a"], "@timeStamps true\n", "time-stamped"),
])
def test_malformed_ts(tmp_path, cases, extra, msg):
    p = write(tmp_path, _ts_text(cases, extra=extra).replace("@timeStamps false\n", "" if extra else
                                                                "@timeStamps false\n"), "Bad_TRAIN.ts")
    with pytest.raises(DataError, match=msg):
        load_ts(p)


def test_ts_pair_errors(tmp_path):
    write(tmp_path, _ts_text(["1,2:a"]), "Solo_TRAIN.ts")
    with pytest.raises(DataError, match="Solo_TEST.ts is missing"):
        load_dataset(str(tmp_path / "Solo_TRAIN.ts"))
    write(tmp_path, _ts_text(["1,2:a"]), "Solo_TEST.ts")
    with pytest.raises(DataError, match="NAME_TRAIN.ts"):
        load_dataset(str(tmp_path / "Solo_TEST.ts"))
    p = write(tmp_path, "@problemName x\n1,2:a\n", "NoData_TRAIN.ts")
    with pytest.raises(DataError, match="expected an @tag or @data"):
        load_ts(p)


def test_scaler_per_channel_for_series():
    ds = load_dataset("BasicMotions", scale="minmax")
    assert ds.scaler.kind == "minmax" and ds.scaler.offset.shape == (600,)
    X = ds.X_train.reshape(40, 6, 100)
    np.testing.assert_allclose(X.min(axis=(0, 2)), 0, atol=1e-12)    # one range per channel, over all steps
    np.testing.assert_allclose(X.max(axis=(0, 2)), 1, atol=1e-12)
    raw = load_dataset("BasicMotions")
    np.testing.assert_allclose(ds.scaler.transform(raw.X_test), ds.X_test)
    np.testing.assert_allclose(ds.scaler.inverse(ds.X_test), raw.X_test)
    back = Scaler.from_dict(ds.scaler.to_dict())
    np.testing.assert_array_equal(back.offset, ds.scaler.offset)


# --- a user's own CSV, .npy and .npz files -----------------------------------------------------------------
def _csv(tmp_path, n=40, header=True, name="my.csv", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, (n, 3))
    y = (X[:, 0] > 5).astype(int) + (X[:, 1] > 5).astype(int)          # classes 0, 1, 2
    lines = (["a,b,label,c"] if header else []) + [f"{r[0]},{r[1]},{t},{r[2]}" for r, t in zip(X, y)]
    return write(tmp_path, "\n".join(lines) + "\n", name), X, y


def test_csv_with_header_integer_labels_one_hot_and_seeded_split(tmp_path):
    p, X, y = _csv(tmp_path)
    ds = load_dataset(str(p), target="label")
    assert ds.columns == ["a", "b", "c"] and ds.classes == ["0", "1", "2"] and ds.task == "classification"
    assert len(ds.X_train) + len(ds.X_test) == 40 and len(ds.X_test) == 8          # default test split 0.2
    assert "20% held out" in ds.test_source and "split seed 0" in ds.test_source
    again = load_dataset(str(p), target="label")
    np.testing.assert_array_equal(ds.X_test, again.X_test)                           # seeded
    other = load_dataset(str(p), target="label", split_seed=7)
    assert not np.array_equal(ds.X_test, other.X_test)
    # every row lands in exactly one split, with its own label
    rows = {tuple(r): t for r, t in zip(np.delete(np.column_stack([X[:, :2], y, X[:, 2]]), 2, axis=1), y)}
    for Xs, Ts in ((ds.X_train, ds.T_train), (ds.X_test, ds.T_test)):
        for r, t in zip(Xs, Ts):
            assert rows[tuple(r)] == int(np.argmax(t))
    # stratified: each class on both sides
    assert set(np.argmax(ds.T_test, axis=1)) == {0, 1, 2}
    assert load_dataset(str(p), target=2).columns == ["a", "b", "c"]                # by index too


def test_csv_without_header_and_default_target(tmp_path):
    p, X, y = _csv(tmp_path, header=False)
    ds = load_dataset(str(p), target=2, test_split=0.25)
    assert ds.columns == ["column 0", "column 1", "column 3"] and len(ds.X_test) == 10
    last = load_dataset(str(p))                          # the last column (a float) -> regression
    assert last.task == "regression" and last.T_train.shape[1] == 1 and "last column" in last.notes[0]
    with pytest.raises(DataError, match="no column 'label'"):
        load_dataset(str(p), target="label")


def test_csv_test_file_and_scaling_fitted_on_training_split(tmp_path):
    p, X, y = _csv(tmp_path)
    q, Xt, yt = _csv(tmp_path, n=10, name="my_test.csv", seed=1)
    ds = load_dataset(str(p), target="label", test=str(q), scale="minmax")
    assert len(ds.X_train) == 40 and len(ds.X_test) == 10 and "my_test.csv" in ds.test_source
    np.testing.assert_allclose(ds.X_train.min(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.max(axis=0), 1, atol=1e-12)
    lo, hi = X.min(axis=0), X.max(axis=0)
    np.testing.assert_allclose(ds.X_test, (Xt - lo) / (hi - lo))                      # training split's range
    st = load_dataset(str(p), target="label", scale="standard")
    np.testing.assert_allclose(st.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(st.X_train.std(axis=0), 1, atol=1e-12)


@pytest.mark.parametrize("text,msg", [
    ("a,b,label\n1,2,0\n1,red,1\n", r"column 'b', data row 2: 'red' is not a number"),
    ("a,b,label\n1,,0\n1,2,1\n", r"column 'b', data row 1: is empty"),
    ("a,b,label\n1,2,0\n1,2\n", "data row 2 has 2 fields"),
    ("a,b,label\n", "no data rows"),
    ("a\n1\n2\n", "one column only"),
    ("a,b,label\n1,2,0\n1,2,\n", "target column 'label' has empty values"),
    ("a,b,label\n1,2,0\n1,2,0\n", "one class only"),
])
def test_bad_csv(tmp_path, text, msg):
    p = write(tmp_path, text, "bad.csv")
    with pytest.raises(DataError, match=msg):
        load_dataset(str(p), target="label" if "label" in text else None)


def test_string_labels_and_test_labels_unseen_in_training(tmp_path):
    p = write(tmp_path, "x,kind\n" + "".join(f"{i},{'cat' if i % 2 else 'dog'}\n" for i in range(20)), "s.csv")
    ds = load_dataset(str(p), target="kind")
    assert ds.classes == ["cat", "dog"]
    q = write(tmp_path, "x,kind\n1,cow\n", "t.csv")
    with pytest.raises(DataError, match=r"test split: labels \['cow'\]"):
        load_dataset(str(p), target="kind", test=str(q))


def test_npz_npy_and_label_vectors(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.classes == ["0", "1"] and len(ds.X_test) == 6 and ds.X_train.shape[1] == 4
    np.savez(tmp_path / "e.npz", X=X, y=y, X_test=X[:5], y_test=y[:5])
    assert len(load_dataset(str(tmp_path / "e.npz")).X_test) == 5
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    assert load_dataset(str(tmp_path / "X.npy")).classes == ["0", "1"]
    np.save(tmp_path / "all.npy", np.column_stack([X, y]))
    ds = load_dataset(str(tmp_path / "all.npy"), test=str(tmp_path / "all.npy"))
    assert len(ds.X_test) == 30 and ds.X_train.shape[1] == 4
    np.savez(tmp_path / "noy.npz", X=X)
    with pytest.raises(DataError, match="needs arrays 'X' and 'y'"):
        load_dataset(str(tmp_path / "noy.npz"))
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="not a readable"):
        load_dataset(str(tmp_path / "corrupt.npy"))
    with pytest.raises(DataError, match="no such file"):
        load_dataset(str(tmp_path / "absent.csv"))


def test_options_that_do_not_apply_are_refused():
    from edgebp.errors import ConfigError
    with pytest.raises(ConfigError, match="own test split"):
        load_dataset("diabetes", test_split=0.3)
    with pytest.raises(ConfigError, match="--target applies"):
        load_dataset("diabetes", target="x")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load_dataset("x.csv", test_split=1.5)
    with pytest.raises(ConfigError, match="unknown scaling"):
        load_dataset("diabetes", scale="log")


def test_split_indices_keep_order_and_every_class():
    y = np.repeat([0, 1, 2], [10, 3, 2])
    tr, te = split_indices(y, 0.2, 0)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(15))
    assert (np.diff(tr) > 0).all() and (np.diff(te) > 0).all()
    assert set(y[te]) == {0, 1, 2} and set(y[tr]) == {0, 1, 2}


def test_as_targets_for_fit():
    from edgebp.config import NetSpec
    spec = NetSpec.from_sizes([2, 4, 3])
    np.testing.assert_array_equal(as_targets(spec, np.array([0, 2, 1])), np.eye(3)[[0, 2, 1]])
    T = np.eye(3)[[1, 1]]
    assert as_targets(spec, T) is T
    with pytest.raises(DataError, match="class indices 0..2"):
        as_targets(spec, np.array([0, 3]))
    with pytest.raises(DataError, match="must be integers"):
        as_targets(spec, np.array(["a", "b"]))
    one = NetSpec.from_sizes([2, 4, 1])
    assert as_targets(one, np.array([0.5, 1.0])).shape == (2,)      # one output: the engine makes it a column


def test_check_format_names_split_and_column(tmp_path):
    from edgebp.config import NetSpec
    ds = load_dataset("BasicMotions")
    spec = NetSpec.from_sizes([600, 8, 4])
    with pytest.raises(DataError, match=r"training split: channel \d step \d+ \(input \d+\) reaches .*--scale"):
        check_format(ds, spec)
    check_format(load_dataset("BasicMotions", scale="minmax"), spec)
    p = write(tmp_path, "a,b,label\n" + "".join(f"{i / 10},{i / 10},{i % 2}\n" for i in range(20)), "t.csv")
    q = write(tmp_path, "a,b,label\n0.5,99,1\n0.1,0.1,0\n", "t_test.csv")
    ds = load_dataset(str(p), target="label", test=str(q))
    with pytest.raises(DataError, match=r"test split: 'b' reaches 99.*--in-frac 8"):
        check_format(ds, NetSpec.from_sizes([2, 4, 2]))
    ds = load_dataset("diabetes")
    with pytest.raises(DataError, match=r"training split: target 0 reaches 1.*output format Q15.*--a-frac 14"):
        check_format(ds, NetSpec.from_sizes([8, 4, 2], a_frac=15))
