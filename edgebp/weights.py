"""One weights file for the whole project (``.npz``): integer weights with their Q formats and the network
spec, or a float model that is quantized on loading.

    save_weights("w.npz", fixed_net)               # what --save-weights writes
    wf = load_weights("w.npz")
    apply_weights(other_net, wf)                   # FixedNet, FloatNet or DeviceNet

Keys of format version 1 (a superset of the version-0 files the first ``--save-weights`` wrote):

=================  ===========================================================================
``format``         ``"edgebp-weights"``
``format_version`` int, 1
``spec``           the NetSpec as JSON (layer sizes, activations, loss, Q formats)
``w{i}``, ``b{i}`` layer i's int16 weights (n_out, n_in) and biases (n_out,), Q ``w{i}_frac``
``w{i}_frac``      int8 fractional bits of layer i's weights and biases; ``a{i}_frac`` of its outputs
``in_frac``        int8 fractional bits of the inputs
``train_config``   optional JSON: the TrainConfig the network was trained with (lr, optimizer, seed, ...)
``scale``          optional JSON: how real-valued inputs were scaled before quantization, e.g.
                   ``{"kind": "minmax", "offset": [...], "scale": [...]}``: x_model = (x - offset) / scale
                   (edgebp.data.Scaler; save_weights also takes a Scaler)
``run``            optional JSON: where a training run stood when the file was written (``edgebp device
                   train --save-weights``): data, spec, config and stop rule, epochs done, the losses, the
                   early-stopping state, the device's step count; ``--resume`` continues the run from it
``run_state``      optional uint32: the device's training state words then (``deploy.read_state``)
``run_best_W{i}``  optional float64, with ``run_best_b{i}``: early stopping's best weights so far
=================  ===========================================================================

A float model has ``W{i}`` (n_out, n_in) and ``b{i}`` (n_out,) as floats (and optionally ``spec``).
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile
import zipfile
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .config import NetSpec
from .errors import ConfigError, DataError, EdgeBPError

FORMAT = "edgebp-weights"
FORMAT_VERSION = 1

Weights = List[Tuple[np.ndarray, np.ndarray]]


@dataclass
class WeightsFile:
    """What ``load_weights`` read. ``int_weights`` is None for a float model; ``float_weights`` is always set
    (dequantized from the integers when the file holds integers)."""
    path: pathlib.Path
    version: int                       # 0: the first --save-weights format; 1: this one; -1: a float model
    spec: Optional[NetSpec]
    int_weights: Optional[Weights]
    float_weights: Weights
    scale: Optional[dict] = None
    train_config: Optional[dict] = None
    run: Optional[dict] = None         # the ``run`` record, with "state" (uint32 words) and "best_state" added

    @property
    def w_fracs(self) -> Optional[List[int]]:
        return None if self.spec is None else [l.w_frac for l in self.spec.layers]


def check_save_path(path) -> pathlib.Path:
    """The path a weights file will be written to (``.npz`` appended when missing), checked now, before any
    training: EdgeBPError if it is a directory or its folder is missing or not writable."""
    if path is None or str(path) == "":
        raise ConfigError("no path given for the weights file")
    p = pathlib.Path(os.path.expanduser(str(path)))
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    if p.is_dir() or pathlib.Path(os.path.expanduser(str(path))).is_dir():
        raise EdgeBPError(f"{path} is a directory; give a file name such as {pathlib.Path(path) / 'weights.npz'}")
    folder = p.parent if str(p.parent) else pathlib.Path(".")
    if not folder.is_dir():
        raise EdgeBPError(f"cannot save weights to {p}: the folder {folder} does not exist; create it first")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".edgebp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise EdgeBPError(f"cannot save weights to {p}: the folder {folder} is not writable ({e.strerror}); "
                          f"choose another path") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise EdgeBPError(f"cannot save weights to {p}: the file exists and is not writable")
    return p


def _arrays_of(net, scale) -> dict:
    spec = net.spec
    arrays = {"format": np.array(FORMAT), "format_version": np.int32(FORMAT_VERSION),
              "spec": np.array(json.dumps(spec.to_dict())), "in_frac": np.int8(spec.in_frac)}
    if hasattr(net, "get_int_weights"):
        for i, ((W, b), l) in enumerate(zip(net.get_int_weights(), spec.layers)):
            arrays[f"w{i}"], arrays[f"b{i}"] = np.asarray(W, np.int16), np.asarray(b, np.int16)
            arrays[f"w{i}_frac"], arrays[f"a{i}_frac"] = np.int8(l.w_frac), np.int8(l.a_frac)
    else:                                   # a float engine: its float weights, quantized when loaded
        for i, (W, b) in enumerate(net.get_weights()):
            arrays[f"W{i}"], arrays[f"b{i}"] = np.asarray(W, np.float64), np.asarray(b, np.float64)
    if scale is not None:
        arrays["scale"] = np.array(json.dumps(_check_scale(scale, spec.n_in)))
    cfg = getattr(net, "cfg", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        arrays["train_config"] = np.array(json.dumps(cfg.to_dict()))
    return arrays


def _check_scale(scale, n_in: int) -> dict:
    if hasattr(scale, "to_dict"):                  # an edgebp.data.Scaler
        scale = scale.to_dict()
    if not isinstance(scale, dict) or "offset" not in scale or "scale" not in scale:
        raise DataError("the input scaling must be a dict with 'offset' and 'scale' lists (and a 'kind')")
    off, sc = np.asarray(scale["offset"], np.float64), np.asarray(scale["scale"], np.float64)
    if off.shape != (n_in,) or sc.shape != (n_in,) or not (np.all(np.isfinite(off)) and np.all(np.isfinite(sc))):
        raise DataError(f"the input scaling needs {n_in} finite offsets and scales, got {off.shape} and {sc.shape}")
    if np.any(sc == 0):
        raise DataError("the input scaling divides by its scales: none may be 0")
    return {"kind": str(scale.get("kind", "affine")), "offset": off.tolist(), "scale": sc.tolist()}


def save_weights(path, net, scale=None, run: Optional[dict] = None) -> pathlib.Path:
    """Writes ``net``'s weights (a FixedNet or DeviceNet: integers; a FloatNet: floats) with its spec, Q formats
    and the format version, atomically: a temporary file in the same folder, then ``os.replace``. Returns
    the path written (``.npz`` appended when missing). ``run``: where a training run stands (the module's
    table; its "state" and "best_state" go into arrays of their own)."""
    p = check_save_path(path)
    arrays = _arrays_of(net, scale)
    if run is not None:
        record = {k: v for k, v in run.items() if k not in ("state", "best_state")}
        arrays["run"] = np.array(json.dumps(record, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
        arrays["run_state"] = np.asarray(run.get("state", []), dtype=np.uint32)
        for i, (W, b) in enumerate(run.get("best_state") or []):
            arrays[f"run_best_W{i}"], arrays[f"run_best_b{i}"] = np.asarray(W, np.float64), np.asarray(b, np.float64)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise EdgeBPError(f"cannot save weights to {p}: {e}") from None
    return p


def _scalar(z, key, kind=int):
    try:
        return kind(z[key][()])
    except (ValueError, TypeError) as e:
        raise DataError(f"key {key!r} of the weights file is not a {kind.__name__}: {e}") from None


def load_weights(path) -> WeightsFile:
    """Reads a weights file (either version, or a plain float ``.npz``). DataError for a file that is
    missing, corrupt, truncated or inconsistent (shapes that do not chain, values outside int16)."""
    p = pathlib.Path(os.path.expanduser(str(path)))
    if not p.is_file():
        raise DataError(f"no weights file at {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"cannot read weights file {p}: it is not an .npz file, or it is corrupt or truncated "
                        f"({type(e).__name__}: {e})") from None
    if "format" in files and str(files["format"][()]) != FORMAT:
        raise DataError(f"{p} is not an edgebp weights file (format {str(files['format'][()])!r})")
    version = _scalar(files, "format_version") if "format_version" in files else None
    if version is not None and version > FORMAT_VERSION:
        raise DataError(f"{p} has weights format version {version}; this edgebp reads up to {FORMAT_VERSION}: "
                        f"update edgebp")
    spec = None
    if "spec" in files:
        try:
            spec = NetSpec.from_dict(json.loads(str(files["spec"][()])))
            spec.validate()
        except (ValueError, KeyError, TypeError, ConfigError) as e:
            raise DataError(f"{p}: the network spec inside is not valid ({e})") from None
    scale = None
    if "scale" in files:
        try:
            scale = json.loads(str(files["scale"][()]))
        except ValueError as e:
            raise DataError(f"{p}: the input scaling inside is not valid JSON ({e})") from None
    train_config = None
    if "train_config" in files:
        try:
            train_config = json.loads(str(files["train_config"][()]))
        except ValueError as e:
            raise DataError(f"{p}: the training configuration inside is not valid JSON ({e})") from None
    if "w0" in files:
        ints = _read_layers(files, p, "w", integer=True)
        if spec is None:
            raise DataError(f"{p} holds integer weights without the network spec; save it again with edgebp")
        _check_against_spec(ints, spec, p)
        for i, l in enumerate(spec.layers):
            if f"w{i}_frac" in files and _scalar(files, f"w{i}_frac") != l.w_frac:
                raise DataError(f"{p}: layer {i}'s w{i}_frac disagrees with the spec inside")
        if scale is not None:
            scale = _check_scale(scale, spec.n_in)
        floats = [(W.astype(np.float64) * 2.0 ** -l.w_frac, b.astype(np.float64) * 2.0 ** -l.w_frac)
                  for (W, b), l in zip(ints, spec.layers)]
        return WeightsFile(p, 0 if version is None else version, spec, ints, floats, scale, train_config,
                           _read_run(files, p))
    if "W0" in files:
        floats = _read_layers(files, p, "W", integer=False)
        if spec is not None:
            _check_against_spec(floats, spec, p)
        return WeightsFile(p, -1, spec, None, floats, scale, train_config)
    raise DataError(f"{p} holds no weights: expected integer layers w0, b0, ... (edgebp) or float layers W0, b0, "
                    f"... (n_out, n_in); found keys {', '.join(sorted(files)) or 'none'}")


def _read_run(files: dict, p) -> Optional[dict]:
    """The ``run`` record of a file written during training, or None."""
    if "run" not in files:
        return None
    try:
        run = json.loads(str(files["run"][()]))
        run["state"] = [int(v) for v in np.asarray(files["run_state"], dtype=np.uint32).ravel()]
        best = [(files[f"run_best_W{i}"].astype(np.float64), files[f"run_best_b{i}"].astype(np.float64))
                for i in range(sum(k.startswith("run_best_W") for k in files))]
        run["best_state"] = best or None
        int(run["epochs"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{p}: the training run record inside is not valid ({type(e).__name__}: {e}); "
                        f"train again without --resume, or give another --save-weights path") from None
    return run


def _read_layers(files: dict, p, wkey: str, integer: bool) -> Weights:
    out, i = [], 0
    while f"{wkey}{i}" in files:
        if f"b{i}" not in files:
            raise DataError(f"{p}: layer {i} has weights {wkey}{i} but no biases b{i}")
        W, b = np.asarray(files[f"{wkey}{i}"]), np.asarray(files[f"b{i}"])
        if W.ndim != 2 or b.ndim != 1 or b.shape[0] != W.shape[0]:
            raise DataError(f"{p}: layer {i} must have weights (n_out, n_in) and biases (n_out,), got {W.shape} "
                            f"and {b.shape}")
        if i and W.shape[1] != out[-1][0].shape[0]:
            raise DataError(f"{p}: layer {i} takes {W.shape[1]} inputs but layer {i - 1} has {out[-1][0].shape[0]} "
                            f"outputs")
        if integer:
            if W.dtype.kind not in "iu" or b.dtype.kind not in "iu":
                raise DataError(f"{p}: layer {i}'s integer weights are stored as {W.dtype}/{b.dtype}")
            for name, a in ((f"w{i}", W), (f"b{i}", b)):
                if a.size and (a.min() < -32768 or a.max() > 32767):
                    raise DataError(f"{p}: {name} holds {a.max() if a.max() > 32767 else a.min()}, outside int16")
            W, b = W.astype(np.int16), b.astype(np.int16)
        else:
            if W.dtype.kind not in "fiu" or b.dtype.kind not in "fiu":
                raise DataError(f"{p}: layer {i}'s weights are {W.dtype}, not numbers")
            W, b = W.astype(np.float64), b.astype(np.float64)
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise DataError(f"{p}: layer {i} holds NaN or inf")
        out.append((W, b))
        i += 1
    return out


def _check_against_spec(weights: Weights, spec: NetSpec, p) -> None:
    if len(weights) != len(spec.layers):
        raise DataError(f"{p}: {len(weights)} layers of weights but the spec inside has {len(spec.layers)}")
    n_in = spec.n_in
    for i, ((W, _), l) in enumerate(zip(weights, spec.layers)):
        if W.shape != (l.n_out, n_in):
            raise DataError(f"{p}: layer {i} weights are {W.shape}, the spec inside says ({l.n_out}, {n_in})")
        n_in = l.n_out


def _quantize(x: np.ndarray, frac: int, what: str) -> np.ndarray:
    """Round half away from zero (like the core), DataError naming the first value that does not fit."""
    q = np.sign(x) * np.floor(np.abs(x) * 2.0 ** frac + 0.5)
    bad = np.flatnonzero((q > 32767) | (q < -32768))
    if bad.size:
        k = int(bad[0])
        where = np.unravel_index(k, x.shape)
        lim = 32767 * 2.0 ** -frac
        raise DataError(f"{what}: value {x.flat[k]:.6g} at {tuple(int(i) for i in where)} does not fit int16 with "
                        f"{frac} fractional bits (range +-{lim:.6g}); use fewer fractional bits (--w-frac) or "
                        f"smaller weights")
    return q.astype(np.int16)


def quantized_for(spec: NetSpec, wf: WeightsFile) -> Weights:
    """The file's weights as integers in ``spec``'s formats: exactly the file's integers when its formats
    equal the spec's, else its float weights quantized (DataError naming the layer and value that do not fit)."""
    n_in = spec.n_in
    if len(wf.float_weights) != len(spec.layers):
        raise DataError(f"{wf.path} has {len(wf.float_weights)} layers, the network {len(spec.layers)} "
                        f"({'-'.join(map(str, spec.sizes))})")
    for i, ((W, _), l) in enumerate(zip(wf.float_weights, spec.layers)):
        if W.shape != (l.n_out, n_in):
            raise DataError(f"{wf.path}: layer {i} is {W.shape[0]}x{W.shape[1]} (n_out x n_in), the network's is "
                            f"{l.n_out}x{n_in}; train with --layers {'-'.join(str(s) for s in _sizes(wf))} or "
                            f"use a matching file")
        n_in = l.n_out
    if wf.int_weights is not None and wf.w_fracs == [l.w_frac for l in spec.layers]:
        return [(W.copy(), b.copy()) for W, b in wf.int_weights]
    return [(_quantize(W, l.w_frac, f"layer {i} weights"), _quantize(b, l.w_frac, f"layer {i} biases"))
            for i, ((W, b), l) in enumerate(zip(wf.float_weights, spec.layers))]


def _sizes(wf: WeightsFile) -> List[int]:
    return [wf.float_weights[0][0].shape[1]] + [W.shape[0] for W, _ in wf.float_weights]


def apply_weights(net, wf: WeightsFile) -> None:
    """Sets ``net``'s weights from a loaded file: a FixedNet or DeviceNet gets the exact integers when the
    formats match (else the floats quantized to its formats), a FloatNet the float weights as they are. A DeviceNet's
    weights are uploaded (edgebp.deploy.write_weights). The network's shape must match the file's."""
    if not isinstance(wf, WeightsFile):
        wf = load_weights(wf)
    spec = net.spec
    q = quantized_for(spec, wf)          # checks the shapes (and the range) for every engine
    if hasattr(net, "set_int_weights") and hasattr(net, "core_params"):   # FixedNet; DeviceNet uploads
        net.set_int_weights(q)                                             # (and --resume knows of it)
    else:                                                                  # FloatNet: the floats as they are
        net.set_weights([(W.copy(), b.copy()) for W, b in wf.float_weights])
