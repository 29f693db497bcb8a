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
from edgebp.data import Scaler, as_targets, check_format, encode_labels, load_ts, sorted_by_class, split_indices  # noqa: E402


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
