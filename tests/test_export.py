"""`edgebp export`: the header compiles cleanly as C99 and as C++, a 20-line C program trains with it
exactly like FixedNet, the input quantization matches the host's, and a mismatched core or a too-small arena
is refused at compile time."""
import argparse
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgebp.cli_export import add_export_commands
from edgebp.config import NetSpec, TrainConfig
from edgebp.errors import ConfigError, DataError, EdgeBPError
from edgebp.fixed import FixedNet, quantize
from edgebp.weights import apply_weights, load_weights, save_weights
from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
STRICT = ["-Wall", "-Wextra", "-Wconversion", "-Werror"]

PROGRAM = r"""
#include <stdio.h>
#include "diabetes_model.h"
int main(void)
{
    static uint64_t arena[(DIABETES_MODEL_ARENA_BYTES + 7) / 8];
    ebp_net_t net;
    int64_t loss = 0;
    uint32_t l, i, e;
    if (diabetes_model_init(&net, arena, sizeof arena) != EBP_OK)
        return 1;
    for (e = 0; e < EPOCHS; e++)
        if (ebp_train(&net, &diabetes_model_x[0][0], &diabetes_model_t[0][0], DIABETES_MODEL_N_SAMPLES, 1,
                      &loss) != EBP_OK)
            return 2;
    printf("%lld\n", (long long)loss);
    for (l = 0; l < DIABETES_MODEL_N_LAYERS; l++) {
        for (i = 0; i < (uint32_t)net.layers[l].n_out * net.layers[l].n_in; i++)
            printf("%d ", net.layers[l].w[i]);
        for (i = 0; i < net.layers[l].n_out; i++)
            printf("%d ", net.layers[l].b[i]);
        printf("\n");
    }
    return diabetes_model_init(&net, arena, DIABETES_MODEL_ARENA_BYTES - 1) == EBP_ERR_SIZE ? 0 : 3;
}
"""


def run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def export(tmp_path, weights, *extra, name="diabetes_model"):
    ap = argparse.ArgumentParser()
    add_export_commands(ap.add_subparsers(dest="command"))
    out = tmp_path / f"{name}.h"
    args = ap.parse_args(["export", str(weights), "--name", name, "-o", str(out), *extra])
    assert args.func(args) == 0
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 8-16-2 network trained a little on the host, saved; the exported header with 64 samples."""
    from edgebp.data import load_dataset
    tmp = tmp_path_factory.mktemp("export")
    ds = load_dataset("diabetes")
    cfg = TrainConfig(lr=0.3, seed=5, rounding="stochastic")
    fn = FixedNet(NetSpec.from_sizes([8, 16, 2], activation=["tanh", "sigmoid"]), cfg)
    fn.train_q(fn.quantize_inputs(ds.X_train[:100]), fn.quantize_targets(ds.T_train[:100]), 1)
    w = save_weights(tmp / "w.npz", fn)
    return tmp, w, ds


def core_objects(tmp):
    objs = []
    for c in sorted(CSRC.glob("*.c")):
        o = tmp / (c.stem + ".o")
        run(["gcc", "-std=c99", *STRICT, "-O1", f"-I{CSRC}", "-c", c, "-o", o])
        objs.append(o)
    return objs


@pytest.mark.parametrize("lang", ["c99", "c++"])
def test_program_trains_like_fixednet(trained, lang):
    need_tools("gcc", "g++")
    tmp, w, ds = trained
    header = export(tmp, w, "--data", "diabetes", "--max-samples", "64")
    main = tmp / "main.c"
    main.write_text(PROGRAM)
    exe = tmp / f"prog-{lang}"
    objs = core_objects(tmp)
    if lang == "c99":
        run(["gcc", "-std=c99", "-pedantic", *STRICT, "-DEPOCHS=3", f"-I{CSRC}", f"-I{tmp}", main, *objs, "-o", exe])
    else:
        run(["g++", "-x", "c++", "-std=c++11", *STRICT, "-DEPOCHS=3", f"-I{CSRC}", f"-I{tmp}", main, "-x", "none",
             *objs, "-o", exe])
    out = run([exe]).splitlines()
    wf = load_weights(w)
    ref = FixedNet(wf.spec, TrainConfig(**wf.train_config))
    apply_weights(ref, wf)
    Xq, Tq = ref.quantize_inputs(ds.X_train[:64]), ref.quantize_targets(ds.T_train[:64])
    for _ in range(3):
        loss = ref.train_q(Xq, Tq, 1)
    assert int(out[0]) == loss
    for line, (W, b) in zip(out[1:], ref.get_int_weights()):
        assert [int(v) for v in line.split()] == W.ravel().tolist() + b.tolist()
    assert "diabetes_model_cfg" in header.read_text()


def test_input_quantization_matches_the_host(trained):
    need_tools("gcc")
    tmp, w, ds = trained
    fn = FixedNet(load_weights(w).spec, TrainConfig())
    offset, scale = np.linspace(-1, 1, 8), np.linspace(0.5, 3, 8)
    w2 = save_weights(tmp / "scaled.npz", fn, scale={"kind": "minmax", "offset": offset.tolist(),
                                                     "scale": scale.tolist()})
    export(tmp, w2, name="scaled")
    rng = np.random.default_rng(1)
    X = np.vstack([rng.uniform(-1, 1, (50, 8)), np.full((1, 8), 1e9), np.full((1, 8), -1e9),
                   offset + 0.5 / scale / 4096])             # exactly half an LSB: rounds away from zero
    prog = tmp / "q.c"
    rows = ",\n".join("{" + ", ".join(repr(float(v)) for v in r) + "}" for r in X)
    prog.write_text('#include <stdio.h>\n#include "scaled.h"\n'
                    f"static const double X[{len(X)}][8] = {{{rows}}};\n"
                    "int main(void)\n{\n    int16_t q[8];\n    int r, i;\n"
                    f"    for (r = 0; r < {len(X)}; r++) {{\n        scaled_quantize_input(X[r], q);\n"
                    "        for (i = 0; i < 8; i++)\n            printf(\"%d \", q[i]);\n        printf(\"\\n\");\n"
                    "    }\n    return 0;\n}\n")
    exe = tmp / "q"
    run(["gcc", "-std=c99", *STRICT, f"-I{CSRC}", f"-I{tmp}", prog, "-o", exe])
    got = np.array([[int(v) for v in l.split()] for l in run([exe]).splitlines()])
    Z = (X - offset) * scale
    want = np.clip(np.sign(Z) * np.floor(np.abs(Z) * 4096 + 0.5), -32768, 32767)
    assert np.array_equal(got, want)
    assert np.array_equal(got[:50], quantize(Z[:50], 12))      # the host's own quantizer, where it is in range


def test_compile_time_refusals(trained):
    need_tools("gcc")
    tmp, w, _ = trained
    export(tmp, w)
    src = tmp / "use.c"
    src.write_text('#include "diabetes_model.h"\nint main(void) { return (int)diabetes_model_cfg.n_in; }\n')
    p = subprocess.run(["gcc", "-std=c99", *STRICT, "-DEBP_ARENA_BYTES=400", f"-I{CSRC}", f"-I{tmp}", "-c",
                        str(src), "-o", str(tmp / "use.o")], capture_output=True, text=True)
    assert p.returncode != 0 and "needs a training arena of 444 bytes" in p.stderr
    fake = tmp / "fakecore"
    fake.mkdir(exist_ok=True)
    (fake / "edgebp.h").write_text((CSRC / "edgebp.h").read_text().replace("#define EBP_VERSION_MAJOR 0",
                                                                           "#define EBP_VERSION_MAJOR 1"))
    p = subprocess.run(["gcc", "-std=c99", *STRICT, f"-I{fake}", f"-I{tmp}", "-c", str(src), "-o",
                        str(tmp / "use.o")], capture_output=True, text=True)
    assert p.returncode != 0 and "exported for the edgebp core 0.x" in p.stderr


def test_bad_arguments_are_clear_errors(trained, tmp_path):
    tmp, w, _ = trained
    with pytest.raises(ConfigError, match="C identifier"):
        export(tmp_path, w, name="2bad")
    with pytest.raises(ConfigError, match="C identifier"):
        export(tmp_path, w, name="int")
    with pytest.raises(DataError, match="no weights file"):
        export(tmp_path, tmp_path / "missing.npz")
    np.savez(tmp_path / "float.npz", W0=np.zeros((2, 3)), b0=np.zeros(2))
    with pytest.raises(DataError, match="without a network spec"):
        export(tmp_path, tmp_path / "float.npz")
    with pytest.raises(DataError, match="do not fit the network"):
        export(tmp_path, w, "--data", "thyroid")
    with pytest.raises(EdgeBPError, match="is a directory"):
        ap = argparse.ArgumentParser()
        add_export_commands(ap.add_subparsers(dest="command"))
        args = ap.parse_args(["export", str(w), "--name", "m", "-o", str(tmp_path)])
        args.func(args)
