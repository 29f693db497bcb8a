"""Issue 12 §1: one install is the whole product. `python -m build` makes an sdist and, from it, an abi3 wheel;
the wheel installed in a fresh virtual environment, run from a folder outside the repository, builds the
firmware into the per-user cache (never site-packages) and trains on the emulated micro:bit bit for bit
against the host core; host training and the benchmark harness run from it too. About 45 s: the build, one
firmware build, one epoch on the emulator, the short Cortex-M benchmark."""
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent


def test_one_version_defined_once():
    import edgebp
    head = (ROOT / "csrc" / "edgebp.h").read_text()
    major = int(re.search(r"#define EBP_VERSION_MAJOR (\d+)", head).group(1))
    minor = int(re.search(r"#define EBP_VERSION_MINOR (\d+)", head).group(1))
    assert edgebp.__version__.split(".")[:2] == [str(major), str(minor)]
    py = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in py and 'version = {attr = "edgebp.__version__"}' in py
    assert not re.search(r"^version\s*=\s*\"", py, re.M)          # no second definition
    assert (ROOT / "LICENSE").is_file()
    assert "Origins and terms" in (ROOT / "edgebp" / "datasets" / "README.md").read_text()


def test_paths_in_a_checkout_and_the_user_cache(monkeypatch, tmp_path):
    from edgebp import paths
    assert paths.is_checkout() and paths.source_dir("csrc") == ROOT / "csrc"
    assert paths.build_root() == ROOT / "firmware" / "build"
    monkeypatch.setenv("EDGEBP_CACHE_DIR", str(tmp_path / "c"))
    assert paths.user_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EDGEBP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert paths.user_cache_dir() == tmp_path / "xdg" / "edgebp"
    monkeypatch.setattr(paths, "is_checkout", lambda: False)
    import edgebp
    assert paths.source_root() == ROOT / "edgebp" / "_src"
    assert paths.build_root() == tmp_path / "xdg" / "edgebp" / edgebp.__version__ / "firmware"
    with pytest.raises(ValueError):
        paths.source_dir("docs")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    pytest.importorskip("build")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True,
                       text=True, env=env, cwd=out)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return out


def test_sdist_and_abi3_wheel_carry_the_sources(dist):
    import edgebp
    v = edgebp.__version__
    wheels = list(dist.glob(f"edgebp-{v}-*.whl"))
    assert len(wheels) == 1 and re.search(r"-cp3\d+-abi3-", wheels[0].name), wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    for want in ("edgebp/_src/csrc/edgebp.h", "edgebp/_src/firmware/Makefile", "edgebp/_src/firmware/app/app.c",
                 "edgebp/_src/firmware/ports/qemu-microbit/board.mk", "edgebp/_src/tools/bench/bench_step.c",
                 "edgebp/datasets/diabetes.train", "edgebp/datasets/BasicMotions_TRAIN.ts",
                 "edgebp/datasets/README.md"):
        assert want in names, want
    # every tracked source of the core, the firmware and the bench harness, whatever their layout
    tracked = subprocess.run(["git", "ls-files", "csrc", "firmware", "tools/bench"], capture_output=True, text=True,
                             cwd=ROOT)
    if tracked.returncode == 0 and tracked.stdout.strip():
        for f in tracked.stdout.split():
            assert f"edgebp/_src/{f}" in names, f
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(re.match(r"edgebp/_core\.abi3\.(so|pyd)$", n) for n in names)
    assert not [n for n in names if "/build/" in n or n.endswith((".o", ".elf"))]   # no build outputs
    import tarfile
    sdist = tarfile.open(dist / f"edgebp-{v}.tar.gz")
    snames = sdist.getnames()
    for want in ("csrc/edgebp.h", "csrc/ebp_fixed.h", "firmware/Makefile", "LICENSE", "MANIFEST.in"):
        assert f"edgebp-{v}/{want}" in snames, want


def test_installed_wheel_builds_and_trains_on_the_emulated_board(dist, tmp_path):
    need_tools("arm-none-eabi-gcc", "qemu-system-arm", "make")
    wheel = next(dist.glob("edgebp-*.whl"))
    venv = tmp_path / "venv"
    # a plain venv (not --system-site-packages: an editable install of a checkout there would shadow the wheel);
    # pip brings the declared runtime dependencies, so they are checked too
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGEBP_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    py = venv / "bin" / "python"
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                       env=env, cwd=work)
    assert p.returncode == 0, p.stderr
    exe = str(venv / "bin" / "edgebp")

    def run(*args, timeout=300):
        r = subprocess.run([exe, *args], capture_output=True, text=True, cwd=work, env=env, timeout=timeout)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    site = Path(subprocess.run([str(py), "-c", "import edgebp, os; print(os.path.dirname(edgebp.__file__))"],
                               capture_output=True, text=True, cwd=work, env=env, check=True).stdout.strip())
    assert site.is_relative_to(venv)                             # the installed copy, not this checkout
    before = sorted(str(p) for p in site.rglob("*") if "__pycache__" not in p.parts)

    import edgebp
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"edgebp {edgebp.__version__}"
    r = run("boards", "--json")
    assert r.returncode == 0, r.stderr
    boards = {b["name"]: b for b in json.loads(r.stdout)}
    for name in ("qemu-mps2-an385", "qemu-microbit", "host"):
        assert boards[name]["port_folder"] is True, name
    r = run("build", "--board", "qemu-microbit")
    assert r.returncode == 0, r.stderr
    assert "flash" in r.stdout and "arena" in r.stdout
    r = run("device", "train", "diabetes", "--layers", "8,16,2", "--epochs", "1", "--board", "qemu-microbit",
            "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "weights and predictions bit-identical" in r.stdout

    r = run("train", "diabetes", "--layers", "8,4,2", "--epochs", "2", "--engine", "both")
    assert r.returncode == 0 and "test accuracy" in r.stdout, r.stderr
    # the benchmark harness (tools/bench) comes with the package: instructions per step on the emulated M3/M0
    r = run("bench", "--short", "--parts", "mcu", "--no-torch")
    assert r.returncode == 0, r.stderr
    assert "cortex-m3" in r.stdout.lower() and "cortex-m0" in r.stdout.lower()

    after = sorted(str(p) for p in site.rglob("*") if "__pycache__" not in p.parts)
    assert after == before                                       # nothing written into site-packages
    elf = tmp_path / "cache" / "edgebp" / edgebp.__version__ / "firmware" / "qemu-microbit" / "edgebp.elf"
    assert elf.is_file()
    assert list(work.iterdir()) == []                            # nor into the working directory
