"""Issue 12 §2: the PlatformIO (library.json) and Arduino (library.properties) manifests point at the core's
sources (csrc/) and carry the package's version. library.json is checked with PlatformIO's own manifest
schema and packer (pip install platformio; its licence list comes from the network, which is not reachable
here, so it is given the one SPDX id we use). library.properties is checked against the Arduino library
specification's fields, and `make arduino` (the 1.5 layout: src/ holds csrc/) is compiled for an AVR board
with arduino-builder (Debian: arduino-builder arduino-core-avr arduino-ctags) and run on simavr."""
import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent


def version():
    import edgebp
    return edgebp.__version__


def need_module(name):
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI (tools/setup.sh installs it)")
        pytest.skip(f"{name} not installed (pip install {name})")


def test_library_json_passes_platformio_schema_and_packs_the_core(tmp_path, monkeypatch):
    need_module("platformio")
    from platformio.package.manifest.parser import ManifestParserFactory
    from platformio.package.manifest.schema import ManifestSchema
    from platformio.package.pack import PackagePacker
    monkeypatch.setattr(ManifestSchema, "load_spdx_licenses",
                        staticmethod(lambda: {"licenses": [{"licenseId": "MIT"}]}))
    raw = json.loads((ROOT / "library.json").read_text())
    m = ManifestSchema().load_manifest(ManifestParserFactory.new_from_file(str(ROOT / "library.json")).as_dict())
    assert m["name"] == "edgebp" and m["version"] == version() and m["headers"] == ["edgebp.h"]
    assert raw["build"]["srcDir"] == raw["build"]["includeDir"] == "csrc"
    out = PackagePacker(str(ROOT)).pack(str(tmp_path))
    names = tarfile.open(out).getnames()
    for p in (ROOT / "csrc").rglob("*.[ch]"):
        assert p.relative_to(ROOT).as_posix() in names, p.name
    assert "library.json" in names and "examples/c/xor.c" in names
    assert not [n for n in names if n.startswith(("edgebp/", "tests/", "firmware/build"))]


def test_library_properties_has_the_arduino_fields():
    props = dict(line.split("=", 1) for line in (ROOT / "library.properties").read_text().splitlines()
                 if line.strip() and not line.startswith("#"))
    for key in ("name", "version", "author", "maintainer", "sentence", "paragraph", "category", "url",
                "architectures"):
        assert props.get(key), key
    assert props["version"] == version()
    assert props["category"] in ("Display", "Communication", "Signal Input/Output", "Sensors", "Device Control",
                                 "Timing", "Data Storage", "Data Processing", "Other")
    for h in props["includes"].split(","):
        assert (ROOT / "csrc" / h.strip()).is_file()
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.\-]*", props["name"])


@pytest.fixture(scope="module")
def arduino_build(tmp_path_factory):
    need_tools("arduino-builder", "arduino-ctags", "avr-gcc", "make")
    if not Path("/usr/share/arduino/hardware/arduino/avr/boards.txt").is_file():
        pytest.fail("arduino-core-avr is missing (tools/setup.sh installs it)") if os.environ.get("CI") else \
            pytest.skip("arduino-core-avr not installed")
    d = tmp_path_factory.mktemp("arduino")
    subprocess.run(["make", "-s", "-C", str(ROOT), "arduino", f"ARDUINO_OUT={d / 'libs'}"], check=True,
                   capture_output=True)
    lib = d / "libs" / "edgebp"
    assert (lib / "library.properties").is_file() and (lib / "src" / "edgebp.h").is_file()
    # Arduino compiles every .c under src/: the core is there as one translation unit, nothing twice
    assert [p.relative_to(lib / "src").as_posix() for p in (lib / "src").rglob("*.c")] == ["edgebp.c"]
    assert (d / "libs" / "edgebp-arduino.zip").is_file()
    build = d / "build"
    build.mkdir()
    # Debian's Arduino AVR core needs DECIMAL_DIG, which its avr-libc's float.h lacks (a packaging mismatch)
    p = subprocess.run(["arduino-builder", "-compile", "-hardware", "/usr/share/arduino/hardware", "-hardware",
                        "/usr/share/arduino-builder", "-tools", "/usr/bin", "-libraries", str(d / "libs"),
                        "-fqbn", "arduino:avr:mega:cpu=atmega2560", "-build-path", str(build),
                        "-prefs=compiler.cpp.extra_flags=-DDECIMAL_DIG=17", str(lib / "examples" / "xor" / "xor.ino")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return build


def test_arduino_library_compiles_for_avr(arduino_build):
    assert (arduino_build / "libraries" / "edgebp" / "edgebp.c.o").is_file() or \
        list((arduino_build / "libraries" / "edgebp").glob("*.o"))
    assert (arduino_build / "xor.ino.elf").is_file()


def test_arduino_example_on_simavr_equals_the_host_core(arduino_build):
    need_tools("simavr")
    from test_cmake import host_fixednet_outputs
    want, _ = host_fixednet_outputs()
    p = subprocess.Popen(["simavr", "-m", "atmega2560", "-f", "16000000", str(arduino_build / "xor.ino.elf")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, t0 = [], time.monotonic()
    try:
        while len(lines) < 4 and time.monotonic() - t0 < 120:
            line = p.stdout.readline()
            if not line:
                break
            m = re.search(r"(\d) xor (\d) -> (-?\d+) / 4096", line)
            if m:
                lines.append(int(m.group(3)))
            elif "aligned" in line or "error" in line.lower():
                pytest.fail(f"the sketch reports: {line.strip()}")
    finally:
        p.kill()
        p.wait()
    assert lines == want
