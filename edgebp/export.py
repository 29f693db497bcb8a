"""A trained model as one C header for a user's own firmware (``edgebp export``).

    text = export_header(load_weights("w.npz"), "my_model")

The header holds ``static const ebp_cfg_t my_model_cfg`` (every field of the core's struct, read through
cffi, so a field added to the core is exported too), ``my_model_hparams``, the int16 weights and biases of
every layer, ``MY_MODEL_ARENA_BYTES`` (``ebp_net_memory`` of the core, not recomputed here), the input
quantization (per input the offset and scale of edgebp.data.Scaler: q = round((x - offset) / scale * 2^in_frac),
half away from zero, saturated to int16, the same double operations as the host, so the same int16;
``my_model_quantize_input`` does it), optional samples, and ``my_model_init`` that lays the
network out for training and copies the weights in. It includes ``edgebp.h`` and refuses (``#error``) a core of
another major version, or a board whose ``EBP_ARENA_BYTES`` is smaller than the model needs.
"""
from __future__ import annotations

import re
from typing import List, Optional

import numpy as np

from ._core import ffi, lib
from .config import TrainConfig
from .errors import ConfigError, DataError
from .weights import WeightsFile, quantized_for

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_C_KEYWORDS = {"auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
               "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
               "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
               "volatile", "while", "class", "new", "delete", "template", "this", "namespace", "private", "public"}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in _C_KEYWORDS or name.startswith("ebp_"):
        raise ConfigError(f"--name {name!r} must be a C identifier (letters, digits, _; not a keyword, not "
                          f"starting with ebp_), e.g. my_model")
    return name


def train_config_of(wf: WeightsFile, overrides: Optional[dict] = None) -> TrainConfig:
    """The TrainConfig saved in the file (or the defaults), with ``overrides`` applied, validated."""
    d = dict(wf.train_config or {})
    d.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = set(TrainConfig.__dataclass_fields__)
    cfg = TrainConfig(**{k: v for k, v in d.items() if k in known})
    cfg.validate()
    return cfg


def _struct_init(cdata, ctype, indent: str = "    ") -> str:
    """A C initializer for a cffi struct value, every field in declaration order (nested for arrays)."""
    t = ffi.typeof(ctype) if isinstance(ctype, str) else ctype
    if t.kind == "struct":
        parts = [_struct_init(getattr(cdata, n), f.type, indent) for n, f in t.fields]
        return "{" + ", ".join(parts) + "}"
    if t.kind == "array":
        return "{" + ", ".join(_struct_init(cdata[i], t.item, indent) for i in range(t.length)) + "}"
    return str(int(cdata))


def _array(name: str, values: np.ndarray, ctype: str = "int16_t", per_line: int = 16, dims: str = "") -> str:
    values = np.asarray(values)
    if values.ndim == 2:                    # one braced row per line (-Wmissing-braces)
        body = ",\n    ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in values)
    else:
        flat = [str(int(v)) for v in values.ravel()]
        lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)] or ["0"]
        body = ",\n    ".join(lines)
    return f"EBP_EXPORT_UNUSED static const {ctype} {name}{dims} = {{\n    {body}\n}};\n"


def _double(v: float) -> str:
    r = repr(float(v))
    return r if ("e" in r or "." in r or "inf" in r or "nan" in r) else r + ".0"


def export_header(wf: WeightsFile, name: str, cfg: Optional[TrainConfig] = None, samples=None,
                  source: str = "") -> str:
    """The header text. ``cfg``: how the firmware trains (default: the file's TrainConfig or the defaults);
    ``samples``: optional (X, T) float arrays in model units, quantized like FixedNet quantizes them."""
    from .fixed import core_cfg, memory, quantize
    name = check_name(name)
    up = name.upper()
    if wf.spec is None:
        raise DataError(f"{wf.path} holds a float model without a network spec (layer sizes, activations, "
                        f"formats): load it into a network and save it with edgebp.save_weights first")
    spec = wf.spec
    cfg = cfg or train_config_of(wf)
    ints = quantized_for(spec, wf)
    c = core_cfg(spec, cfg)
    mem = memory(spec, cfg, train=True)
    lr_m, lr_e = cfg.quantized_lr()
    hp = ffi.new("ebp_hparams_t *")
    hp.lr_m, hp.lr_e, hp.momentum_q15 = lr_m, lr_e, cfg.quantized_momentum()
    scale = wf.scale or {"kind": "identity", "offset": [0.0] * spec.n_in, "scale": [1.0] * spec.n_in}
    major, minor = lib.EBP_VERSION_MAJOR, lib.EBP_VERSION_MINOR
    out: List[str] = []
    w = out.append
    w(f"/* {name}.h - generated by edgebp export (core {major}.{minor}, weights format {wf.version}) from "
      f"{source or wf.path.name}: do not edit.\n")
    w(f" * Network {'-'.join(map(str, spec.sizes))} ({', '.join(l.act for l in spec.layers)}; loss {spec.loss}), "
      f"{cfg.optimizer} lr {cfg.effective_lr():.6g}" + (f" momentum {cfg.effective_momentum():.6g}"
                                                           if cfg.optimizer == "momentum" else "") +
      f", rounding {cfg.rounding}, seed {cfg.seed}.\n")
    w(f" *   ebp_net_t net; static uint64_t arena[({up}_ARENA_BYTES + 7) / 8];\n")
    w(f" *   {name}_init(&net, arena, sizeof arena);   then ebp_train / ebp_predict as usual\n")
    w(f" * Inputs: {name}_quantize_input(reading, q) maps real readings to the int16 inputs the model expects:\n")
    w(f" *   q[i] = round((x[i] - {name}_in_offset[i]) / {name}_in_scale[i] * 2^{spec.in_frac}), half away from zero,\n")
    w(f" *   saturated (input scaling: {scale.get('kind')}; the host's operations in the same order).\n */\n")
    w(f"#ifndef {up}_H\n#define {up}_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n#include \"edgebp.h\"\n\n")
    w(f"#if EBP_VERSION_MAJOR != {major}\n#error \"{name}.h was exported for the edgebp core {major}.x: export it "
      f"again with this core's edgebp\"\n#endif\n")
    w(f"#define {up}_ARENA_BYTES {mem['total']}u /* ebp_net_memory(EBP_MODE_TRAIN) total */\n")
    w(f"#if defined(EBP_ARENA_BYTES) && EBP_ARENA_BYTES < {mem['total']}\n#error \"{name} needs a training arena "
      f"of {mem['total']} bytes, more than this board's EBP_ARENA_BYTES\"\n#endif\n")
    w(f"#define {up}_N_IN {spec.n_in}\n#define {up}_N_OUT {spec.n_out}\n#define {up}_N_LAYERS {len(spec.layers)}\n")
    w(f"#define {up}_IN_FRAC {spec.in_frac}  /* inputs are Q{spec.in_frac} */\n")
    w(f"#define {up}_OUT_FRAC {spec.layers[-1].a_frac} /* outputs and targets are Q{spec.layers[-1].a_frac} */\n")
    w(f"#define {up}_SEED {cfg.seed & 0xFFFFFFFF}u\n\n")
    w("#ifndef EBP_EXPORT_UNUSED\n#if defined(__GNUC__) || defined(__clang__)\n"
      "#define EBP_EXPORT_UNUSED __attribute__((unused))\n#else\n#define EBP_EXPORT_UNUSED\n#endif\n#endif\n\n")
    w(f"EBP_EXPORT_UNUSED static const ebp_cfg_t {name}_cfg = {_struct_init(c[0], 'ebp_cfg_t')};\n")
    w(f"EBP_EXPORT_UNUSED static const ebp_hparams_t {name}_hparams = {_struct_init(hp[0], 'ebp_hparams_t')};\n\n")
    for i, ((W, b), l) in enumerate(zip(ints, spec.layers)):
        w(f"/* layer {i}: weights ({l.n_out}, {W.shape[1]}) row-major and biases, Q{l.w_frac}; {l.act} outputs "
          f"Q{l.a_frac} */\n")
        w(_array(f"{name}_w{i}", W.ravel(), dims=f"[{W.size}]"))
        w(_array(f"{name}_b{i}", b, dims=f"[{b.size}]"))
    w(f"\nEBP_EXPORT_UNUSED static const double {name}_in_offset[{spec.n_in}] = "
      f"{{{', '.join(_double(v) for v in scale['offset'])}}};\n")
    w(f"EBP_EXPORT_UNUSED static const double {name}_in_scale[{spec.n_in}] = "
      f"{{{', '.join(_double(v) for v in scale['scale'])}}};\n\n")
    if samples is not None:
        X, T = samples
        Xq = quantize(X, spec.in_frac, "samples' inputs")
        Tq = quantize(T, spec.layers[-1].a_frac, "samples' targets")
        w(f"/* {len(Xq)} samples, quantized: inputs Q{spec.in_frac}, targets Q{spec.layers[-1].a_frac} */\n")
        w(f"#define {up}_N_SAMPLES {len(Xq)}u\n")
        w(_array(f"{name}_x", Xq, dims=f"[{len(Xq)}][{spec.n_in}]"))
        w(_array(f"{name}_t", Tq, dims=f"[{len(Tq)}][{spec.n_out}]"))
        w("\n")
    w("/** Quantizes n_in real readings as the host did: q = round((x - offset) / scale * 2^in_frac), saturated. */\n")
    w(f"static inline void {name}_quantize_input(const double *x, int16_t *q)\n{{\n    int i;\n"
      f"    for (i = 0; i < {up}_N_IN; i++) {{\n"
      f"        double v = (x[i] - {name}_in_offset[i]) / {name}_in_scale[i] * {float(2 ** spec.in_frac)!r};\n"
      f"        if (v >= 32767.0)\n            q[i] = 32767;\n        else if (v <= -32768.0)\n            q[i] = -32768;\n"
      f"        else\n            q[i] = (int16_t)(v < 0 ? -(int32_t)(-v + 0.5) : (int32_t)(v + 0.5));\n    }}\n}}\n\n")
    w(f"/** Lays the network out for training in arena (8-byte aligned, at least {up}_ARENA_BYTES) and copies\n"
      f" *  the weights in; seeds the rounding generator with {up}_SEED. @return an ebp_status_t. */\n")
    w(f"static inline int {name}_init(ebp_net_t *net, void *arena, size_t size)\n{{\n    int st;\n    uint32_t i;\n")
    w(f"    if (size < {up}_ARENA_BYTES)\n        return EBP_ERR_SIZE;\n")
    w(f"    st = ebp_net_init(net, &{name}_cfg, EBP_MODE_TRAIN, arena, size);\n")
    w(f"    if (st == EBP_OK)\n        st = ebp_net_set_hparams(net, &{name}_hparams);\n")
    w(f"    if (st == EBP_OK)\n        st = ebp_net_seed(net, {up}_SEED);\n    if (st != EBP_OK)\n        return st;\n")
    for i, (W, b) in enumerate(ints):
        w(f"    for (i = 0; i < {W.size}u; i++)\n        net->layers[{i}].w[i] = {name}_w{i}[i];\n")
        w(f"    for (i = 0; i < {b.size}u; i++)\n        net->layers[{i}].b[i] = {name}_b{i}[i];\n")
    w("    return EBP_OK;\n}\n\n")
    w(f"#endif /* {up}_H */\n")
    return "".join(out)


def load_samples(data: str, spec, split: str = "train", limit: Optional[int] = None):
    """(X, T) float arrays from a data set edgebp.data.load_dataset knows, or an .npz with arrays X and T."""
    if data.endswith(".npz"):
        try:
            with np.load(data, allow_pickle=False) as z:
                X, T = np.asarray(z["X"], np.float64), np.asarray(z["T"], np.float64)
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"cannot read samples from {data}: {e} (an .npz with arrays X (n, n_in) and T "
                            f"(n, n_out) is expected)") from None
    else:
        from .data import load_dataset
        ds = load_dataset(data)
        X, T = (ds.X_train, ds.T_train) if split == "train" else (ds.X_test, ds.T_test)
    if X.ndim != 2 or T.ndim != 2 or X.shape[0] != T.shape[0] or X.shape[1] != spec.n_in or T.shape[1] != spec.n_out:
        raise DataError(f"samples of shape {X.shape} and {T.shape} do not fit the network "
                        f"({spec.n_in} inputs, {spec.n_out} outputs)")
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--max-samples must be at least 1, got {limit}")
        X, T = X[:limit], T[:limit]
    return X, T
