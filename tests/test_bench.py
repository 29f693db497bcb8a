"""The benchmark (edgebp/bench.py, docs/benchmarks.md) runs end to end in its short mode, so it cannot rot.
No timing is asserted: only that every table has its rows and every number is positive and finite. The QEMU
parts need arm-none-eabi-gcc and qemu-system-arm: skipped without them, a failure in CI (CI set)."""
import math

import pytest

from edgebp import bench
from toolcheck import need_tools


def positive(v):
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    need_tools("arm-none-eabi-gcc", "qemu-system-arm", "make", "cc")
    return bench.run(short=True, with_torch=False, workdir=tmp_path_factory.mktemp("bench"))


def test_macs_and_minimum_definitions():
    assert bench.macs_per_step(8, 16, 2) == 2 * (8 * 16 + 16 * 2) + 16 * 2 == 352
    # int16 weights+biases (178 params), activations incl. input (26), deltas (18)
    assert bench.analytic_minimum([8, 16, 2]) == 2 * 178 + 2 * 26 + 2 * 18
    assert bench.analytic_minimum([8, 16, 2], batch_size=32) == bench.analytic_minimum([8, 16, 2]) + 4 * 178
    assert bench.analytic_minimum([8, 16, 2], optimizer="momentum") == bench.analytic_minimum([8, 16, 2]) + 4 * 178


def test_mcu_table(short_run):
    rows = short_run["mcu"]["rows"]
    assert {(r["mcu"], r["net"]) for r in rows} == {("cortex-m3", "8-16-2"), ("cortex-m4", "8-16-2"),
                                                    ("cortex-m0", "8-16-2")}
    for r in rows:
        for k in ("fixed_step", "fixed_fwd", "lean_step", "lean_nostats_step", "lean_portable_step", "float_step",
                  "per_mac", "per_mac_nostats", "speedup"):
            assert positive(r[k]), (r["mcu"], k, r[k])
        assert r["fixed_fwd"] < r["fixed_step"]
        assert r["lean_nostats_step"] < r["lean_step"]      # the counters compiled out cost nothing else
    for f in short_run["mcu"]["floors"].values():
        assert positive(f["int32"]) and positive(f["int64"])


def test_profile_attributes_the_step(short_run):
    for p in short_run["profile"]:
        assert p["samples"] > 0
        assert math.isclose(sum(p["phases"].values()), 1.0)
        assert p["phases"].get("forward", 0) > 0 and p["phases"].get("weight update", 0) > 0


def test_host_table(short_run):
    (r,) = short_run["host"]["rows"]
    assert r["net"] == "8-16-2"
    for k in ("c_steps_s", "float_steps_s", "vs_float"):
        assert positive(r[k]), k
    if r["x86_per_step"] is not None:      # valgrind installed
        assert positive(r["x86_per_step"]) and positive(r["x86_per_step_online"])
        assert positive(r["x86_per_step_online_nostats"])


def test_memory_and_firmware(short_run):
    rows = {r["config"]: r for r in short_run["memory"]["rows"]}
    default, full = rows["default (batch 1: online_only)"], rows["gradient memory (batch 1, online_only=False)"]
    assert default["gradients"] == 0 and default["total"] == default["minimum"] and full["gradients"] > 0
    for r in rows.values():
        assert r["total"] >= r["minimum"] > 0
    for b in ("qemu-mps2-an385", "qemu-mps2-an386", "qemu-microbit"):
        f = short_run["firmware"][b]
        assert positive(f["flash"]) and positive(f["stack"])


def test_serial_table(short_run):
    rows = {r["board"]: r for r in short_run["serial"]["rows"]}
    assert set(rows) == {"qemu-mps2-an385", "qemu-mps2-an386", "qemu-microbit"}
    for r in rows.values():
        assert positive(r["samples_s"]) and 0 < r["share"] < 1 and r["tx"] > r["sample_bytes"]
        assert positive(r["device_instr_step"])
        assert r["stack_high_water"] is not None and 0 < r["stack_high_water"] < 16 * 1024


def test_markdown_has_every_table(short_run):
    md = bench.markdown(short_run, "edgebp bench --short")
    for title in ("### 1.", "### 2.", "### 3.", "### 4.", "### Targets", "## Commands", "qemu-system-arm",
                  "valgrind" if short_run["host"]["rows"][0]["x86_per_step"] else "FixedNet"):
        assert title in md
