"""The weights file (edgebp/weights.py): round trips, the old --save-weights format, float models, and every
kind of bad file gets an EdgeBPError that says what is wrong."""
import json
import os
import stat
import zipfile

import numpy as np
import pytest

from edgebp.config import NetSpec, TrainConfig
from edgebp.errors import DataError, EdgeBPError
from edgebp.fixed import FixedNet
from edgebp.mirror import FloatNet
from edgebp.weights import apply_weights, check_save_path, load_weights, save_weights


def net(seed=1, sizes=(8, 16, 2), w_frac=12, **kw):
    return FixedNet(NetSpec.from_sizes(list(sizes), w_frac=w_frac, **kw), TrainConfig(seed=seed))


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(W1, W2) and np.array_equal(b1, b2) for (W1, b1), (W2, b2)
                                    in zip(a, b))


def test_round_trip_is_exact_and_atomic(tmp_path):
    a = net(1, activation=["tanh", "sigmoid"])
    p = save_weights(tmp_path / "w", a, scale={"kind": "minmax", "offset": [0.5] * 8, "scale": [2.0] * 8})
    assert p == tmp_path / "w.npz" and p.is_file()
    assert [f.name for f in tmp_path.iterdir()] == ["w.npz"]        # no temporary left behind
    wf = load_weights(p)
    assert wf.version == 1 and wf.spec == a.spec
    assert same(wf.int_weights, a.get_int_weights())
    assert wf.scale == {"kind": "minmax", "offset": [0.5] * 8, "scale": [2.0] * 8}
    b = net(2, activation=["tanh", "sigmoid"])
    assert not same(b.get_int_weights(), a.get_int_weights())
    apply_weights(b, wf)
    assert same(b.get_int_weights(), a.get_int_weights())


def test_old_save_weights_format_loads(tmp_path):
    """The keys the first `edgebp train --save-weights` wrote (edgebp/cli.py save_weights)."""
    a = net(3)
    arrays = {}
    for i, ((W, b), l) in enumerate(zip(a.get_int_weights(), a.spec.layers)):
        arrays[f"w{i}"], arrays[f"b{i}"] = W, b
        arrays[f"w{i}_frac"], arrays[f"a{i}_frac"] = np.int8(l.w_frac), np.int8(l.a_frac)
    arrays["in_frac"] = np.int8(a.spec.in_frac)
    arrays["spec"] = np.array(json.dumps(a.spec.to_dict()))
    np.savez(tmp_path / "old.npz", **arrays)
    wf = load_weights(tmp_path / "old.npz")
    assert wf.version == 0 and same(wf.int_weights, a.get_int_weights())
    b = net(4)
    apply_weights(b, wf)
    assert same(b.get_int_weights(), a.get_int_weights())


def test_float_model_is_quantized_to_the_networks_formats(tmp_path):
    rng = np.random.default_rng(0)
    W0, b0, W1, b1 = rng.normal(0, 1, (16, 8)), rng.normal(0, 1, 16), rng.normal(0, 1, (2, 16)), rng.normal(0, 1, 2)
    np.savez(tmp_path / "f.npz", W0=W0, b0=b0, W1=W1, b1=b1)
    wf = load_weights(tmp_path / "f.npz")
    assert wf.int_weights is None and wf.spec is None
    a = net(w_frac=10)
    apply_weights(a, wf)
    (qW0, qb0), (qW1, qb1) = a.get_int_weights()
    assert np.array_equal(qW0, np.sign(W0) * np.floor(np.abs(W0) * 1024 + 0.5))
    assert np.array_equal(qb1, np.sign(b1) * np.floor(np.abs(b1) * 1024 + 0.5))
    f = FloatNet(a.spec, TrainConfig())
    apply_weights(f, wf)                                   # the float mirror takes the floats as they are
    assert np.array_equal(f.get_weights()[0][0], W0)


def test_float_mirror_weights_save_and_load(tmp_path):
    a = net(5)
    f = FloatNet(a.spec, TrainConfig(), weights=a.get_weights())
    p = save_weights(tmp_path / "float.npz", f)
    wf = load_weights(p)
    assert wf.int_weights is None and wf.spec == a.spec
    b = net(6)
    apply_weights(b, wf)                                   # exact: the floats are dequantized integers
    assert same(b.get_int_weights(), a.get_int_weights())


def test_int_file_into_other_formats_is_requantized(tmp_path):
    a = net(7, w_frac=12)
    wf = load_weights(save_weights(tmp_path / "w.npz", a))
    b = net(8, w_frac=10)
    apply_weights(b, wf)
    W = a.get_int_weights()[0][0].astype(np.float64) / 4
    assert np.array_equal(b.get_int_weights()[0][0], np.sign(W) * np.floor(np.abs(W) + 0.5))


def test_value_out_of_range_names_layer_and_value(tmp_path):
    W0 = np.zeros((16, 8))
    W0[3, 5] = 9.5                                          # beyond +-8 at 12 fractional bits
    np.savez(tmp_path / "f.npz", W0=W0, b0=np.zeros(16), W1=np.zeros((2, 16)), b1=np.zeros(2))
    a = net()
    before = a.get_int_weights()
    with pytest.raises(DataError, match=r"layer 0 weights: value 9\.5 at \(3, 5\)"):
        apply_weights(a, load_weights(tmp_path / "f.npz"))
    assert same(a.get_int_weights(), before)                # nothing changed


def test_wrong_shape_is_refused(tmp_path):
    a = net(sizes=(8, 12, 2))
    wf = load_weights(save_weights(tmp_path / "w.npz", a))
    b = net()
    before = b.get_int_weights()
    with pytest.raises(DataError, match="layer 0 is 12x8"):
        apply_weights(b, wf)
    assert same(b.get_int_weights(), before)
    c = net(sizes=(8, 12, 4, 2))
    with pytest.raises(DataError, match="2 layers, the network 3"):
        apply_weights(c, wf)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not_zip_member", "int_overflow",
                                    "no_bias", "chain", "bad_spec", "future", "no_weights", "nan"])
def test_bad_files_are_clear_errors(tmp_path, damage):
    p = save_weights(tmp_path / "w.npz", net())
    data = p.read_bytes()
    if damage == "truncated":
        p.write_bytes(data[:len(data) // 2])
    elif damage == "garbage":
        p.write_bytes(os.urandom(400))
    elif damage == "empty":
        p.write_bytes(b"")
    elif damage == "not_zip_member":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("w0.npy", b"not an npy")
    else:
        z = dict(np.load(p))
        if damage == "int_overflow":
            z["w0"] = z["w0"].astype(np.int32) + 40000
        elif damage == "no_bias":
            del z["b1"]
        elif damage == "chain":
            z["w1"] = np.zeros((2, 5), np.int16)
        elif damage == "bad_spec":
            z["spec"] = np.array("{not json")
        elif damage == "future":
            z["format_version"] = np.int32(99)
        elif damage == "no_weights":
            z = {"something": np.zeros(3)}
        elif damage == "nan":
            z = {"W0": np.full((2, 3), np.nan), "b0": np.zeros(2)}
        np.savez(p, **z)
    with pytest.raises(DataError) as e:
        load_weights(p)
    assert str(p) in str(e.value)


def test_missing_file():
    with pytest.raises(DataError, match="no weights file"):
        load_weights("/nonexistent/w.npz")


def test_check_save_path(tmp_path):
    assert check_save_path(tmp_path / "x") == tmp_path / "x.npz"
    assert check_save_path(tmp_path / "x.npz") == tmp_path / "x.npz"
    with pytest.raises(EdgeBPError, match="is a directory"):
        check_save_path(tmp_path)
    with pytest.raises(EdgeBPError, match="does not exist"):
        check_save_path(tmp_path / "no" / "x.npz")
    if os.path.isdir("/proc"):                     # refused even for root (os.access would say yes)
        with pytest.raises(EdgeBPError, match="the folder /proc is not writable"):
            check_save_path("/proc/w.npz")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
        with pytest.raises(EdgeBPError, match="not writable"):
            check_save_path(ro / "x.npz")
    finally:
        ro.chmod(stat.S_IRWXU)
