"""Issue 12 §2: the C core as a CMake library (edgebp::core). The example (examples/c/xor.c) is built for the
host and run, its outputs equal to the Python package's FixedNet bit for bit; it is cross-built for Cortex-M4
and Cortex-M0 with cmake/arm-none-eabi.cmake; and a user's project gets edgebp::core through
add_subdirectory, FetchContent and find_package. cmake, cc and arm-none-eabi-gcc: skipped without them on a
developer machine, a failure in CI."""
import re
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent


def cmake(*args, cwd=None):
    p = subprocess.run(["cmake", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def configure_and_build(src, build, *defs):
    cmake("-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release", *defs)
    cmake("--build", build, "-j2")


def host_fixednet_outputs():
    """The example's network and training, run by the Python package."""
    from edgebp import NetSpec, StopRule, TrainConfig
    from edgebp.fixed import FixedNet
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    T = np.array([[0], [1], [1], [0]], float)
    net = FixedNet(NetSpec.from_sizes([2, 4, 1], ["tanh", "sigmoid"], "mse"),
                   TrainConfig(lr=1.0, seed=1, init_range=1.0, rounding="nearest"))
    net.fit(X, T, StopRule(epochs=2000))
    return net.predict_q(net.quantize_inputs(X))[:, 0].tolist(), net.memory_report()["total"]


def test_host_build_runs_the_example_bit_identical_to_the_python_core(tmp_path):
    need_tools("cmake", "cc")
    configure_and_build(ROOT, tmp_path / "b")
    exe = tmp_path / "b" / "examples" / "c" / "edgebp_xor"
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    ys = [int(v) for v in re.findall(r"-> (-?\d+) / 4096", out)]
    want, total = host_fixednet_outputs()
    assert ys == want
    assert ys[0] < 2048 < ys[1] and ys[2] > 2048 > ys[3]            # it learned XOR
    assert f"arena: {total} of" in out
    assert (tmp_path / "b" / "libedgebp.a").is_file()


def test_strict_warnings_are_on_the_core(tmp_path):
    need_tools("cmake", "cc")
    p = cmake("-S", ROOT, "-B", tmp_path / "b")
    cmake("--build", tmp_path / "b", "--target", "edgebp_core", "--verbose")
    flags = (tmp_path / "b" / "CMakeFiles" / "edgebp_core.dir" / "flags.make").read_text()
    for f in ("-Wall", "-Wextra", "-Wconversion", "-Werror", "-std=c99"):
        assert f in flags, f
    assert "edgebp" in p.stdout or p.returncode == 0


@pytest.mark.parametrize("cpu,arch", [("cortex-m4", "v7E-M"), ("cortex-m0", "v6S-M")])
def test_cross_build_for_cortex_m(tmp_path, cpu, arch):
    need_tools("cmake", "arm-none-eabi-gcc", "arm-none-eabi-readelf")
    configure_and_build(ROOT, tmp_path / "b", f"-DCMAKE_TOOLCHAIN_FILE={ROOT / 'cmake' / 'arm-none-eabi.cmake'}",
                        f"-DEDGEBP_CPU={cpu}", "-DCMAKE_BUILD_TYPE=MinSizeRel")
    for f in (tmp_path / "b" / "examples" / "c" / "edgebp_xor", tmp_path / "b" / "libedgebp.a"):
        a = subprocess.run(["arm-none-eabi-readelf", "-A", str(f)], capture_output=True, text=True, check=True)
        assert f"Tag_CPU_arch: {arch}" in a.stdout, a.stdout


CONSUMER_MAIN = """#include "edgebp.h"
int main(void) {
    ebp_cfg_t cfg = {.n_in = 2, .in_frac = 12, .n_layers = 1, .layers = {{1, EBP_ACT_SIGMOID, 12, 12}}};
    ebp_memory_t mem;
    return ebp_cfg_check(&cfg) == EBP_OK && ebp_net_memory(&cfg, EBP_MODE_TRAIN, &mem) == EBP_OK ? 0 : 1;
}
"""


def consumer(tmp_path, how: str) -> Path:
    d = tmp_path / f"user_{how}"
    d.mkdir()
    (d / "main.c").write_text(CONSUMER_MAIN)
    (d / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(user C)\n" + how_lines(tmp_path, how) +
        "add_executable(user main.c)\ntarget_link_libraries(user PRIVATE edgebp::core)\n")
    return d


def how_lines(tmp_path, how: str) -> str:
    if how == "add_subdirectory":
        return f'add_subdirectory("{ROOT}" edgebp)\n'
    if how == "fetchcontent":
        tgz = tmp_path / "edgebp-src.tar.gz"       # what a release archive or a git checkout holds
        with tarfile.open(tgz, "w:gz") as t:
            for name in ("CMakeLists.txt", "cmake", "csrc", "examples"):
                t.add(ROOT / name, arcname=f"edgebp/{name}")
        return (f'include(FetchContent)\nFetchContent_Declare(edgebp URL "file://{tgz}")\n'
                'FetchContent_MakeAvailable(edgebp)\n')
    return "find_package(edgebp 0.1 CONFIG REQUIRED)\n"


@pytest.mark.parametrize("how", ["add_subdirectory", "fetchcontent", "find_package"])
def test_a_users_project_links_edgebp_core(tmp_path, how):
    need_tools("cmake", "cc")
    defs = []
    if how == "find_package":
        configure_and_build(ROOT, tmp_path / "core", "-DEDGEBP_BUILD_EXAMPLES=OFF")
        cmake("--install", tmp_path / "core", "--prefix", tmp_path / "prefix")
        assert (tmp_path / "prefix" / "include" / "edgebp" / "edgebp.h").is_file()
        defs = [f"-DCMAKE_PREFIX_PATH={tmp_path / 'prefix'}"]
    src = consumer(tmp_path, how)
    configure_and_build(src, tmp_path / "ub", *defs)
    exe = tmp_path / "ub" / "user"
    assert subprocess.run([str(exe)]).returncode == 0
    if how != "find_package":        # built as a subproject: the core is there, the examples are not
        assert not list((tmp_path / "ub").rglob("edgebp_xor"))
