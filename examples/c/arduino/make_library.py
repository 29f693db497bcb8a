"""Lays out the Arduino library (1.5 format) from the repository: library.properties, LICENSE, the example
sketch, and in src/ the core as one translation unit. Arduino compiles every .c file under src/ recursively,
so csrc/edgebp.c (which #includes csrc/core/*.c) is written out with those files inlined, the way
csrc/edgebp.c itself describes the core (an amalgamation); the headers keep their folders.

    python3 examples/c/arduino/make_library.py OUT_DIR      (make arduino runs it)
"""
import re
import shutil
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CSRC = ROOT / "csrc"


def amalgamate(path: Path, seen=None) -> str:
    """``path`` with every ``#include "X.c"`` replaced by X's text (recursively); a .c file inlined from a
    subfolder has its quoted includes rewritten relative to csrc/."""
    seen = set() if seen is None else seen
    out = []
    for line in path.read_text().splitlines():
        m = re.match(r'\s*#include\s+"([^"]+\.c)"', line)
        if m:
            inc = (path.parent / m.group(1)).resolve()
            if inc in seen:
                continue
            seen.add(inc)
            sub = inc.parent.relative_to(CSRC)
            text = amalgamate(inc, seen)
            if str(sub) != ".":
                text = re.sub(r'#include\s+"([^"]+\.h)"',
                              lambda h: f'#include "{(sub / h.group(1)).as_posix()}"', text)
            out += [f"/* ---- {inc.relative_to(ROOT).as_posix()} ---- */", text]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def main(out_dir: str) -> None:
    lib = Path(out_dir) / "edgebp"
    if lib.exists():
        shutil.rmtree(lib)
    (lib / "src").mkdir(parents=True)
    (lib / "examples" / "xor").mkdir(parents=True)
    for f in ("library.properties", "LICENSE"):
        shutil.copy(ROOT / f, lib / f)
    shutil.copy(Path(__file__).parent / "xor" / "xor.ino", lib / "examples" / "xor" / "xor.ino")
    for h in CSRC.rglob("*.h"):
        dst = lib / "src" / h.relative_to(CSRC)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(h, dst)
    tops = sorted(CSRC.glob("*.c"))
    for c in tops:
        (lib / "src" / c.name).write_text(amalgamate(c))
    # ../edgebp.h from src/core/ebp_internal.h still resolves: the headers keep their relative places
    with zipfile.ZipFile(Path(out_dir) / "edgebp-arduino.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(lib.rglob("*")):
            z.write(p, p.relative_to(lib.parent).as_posix())
    print(f"Arduino library in {lib} and {Path(out_dir) / 'edgebp-arduino.zip'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "build" / "arduino"))
