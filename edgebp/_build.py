"""cffi API-mode build of the C core. csrc/edgebp.h is the single definition of the API: its
preprocessor lines are dropped and integer #defines (and array sizes named by them) become `...`, so their
values live only in C."""
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"


def cdef_from_header(text: str) -> str:
    out = []
    for line in text.splitlines():
        m = re.match(r"#define\s+(EBP_\w+)\s+-?\d+", line)
        if m:
            out.append(f"#define {m.group(1)} ...")
        elif not line.lstrip().startswith("#") and 'extern "C"' not in line and line.strip() != "}":
            out.append(line)
    # array sizes named by a macro are checked by the C compiler, not repeated here
    return re.sub(r"\[EBP_\w+\]", "[...]", "\n".join(out))


def inline_prototypes(text: str) -> str:
    """Prototypes of the static inline helpers, so tests can call exactly what the kernels call."""
    protos = re.findall(r"static inline ([\w ]+?\b\w+\([^)]*\))\s*\{", text)
    return "\n".join(f"{p.strip()};" for p in protos)


ffibuilder = FFI()
ffibuilder.cdef(cdef_from_header((CSRC / "edgebp.h").read_text()))
ffibuilder.cdef(inline_prototypes((CSRC / "ebp_fixed.h").read_text()))
ffibuilder.set_source(
    "edgebp._core",
    '#include "edgebp.h"\n#include "ebp_fixed.h"\n',
    sources=[str(p.relative_to(ROOT)) for p in sorted(CSRC.glob("*.c"))],
    # csrc/edgebp.c includes csrc/core/*.c: rebuild when any of them changes
    depends=[str(p.relative_to(ROOT)) for p in sorted(CSRC.rglob("*.[ch]"))],
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=["-std=c99", "-O3"],  # the host simulation: speed (integer code, same results at any -O)
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
