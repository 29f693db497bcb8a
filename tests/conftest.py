"""Refuse to test a stale build: the compiled core must be newer than every C source it is built from."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session):
    import edgebp._core as core
    built = Path(core.__file__).stat().st_mtime
    stale = [p.name for p in (ROOT / "csrc").rglob("*.[ch]") if p.stat().st_mtime > built]
    if stale:
        pytest.exit(f"the C core changed since edgebp._core was built ({', '.join(stale)}): "
                    f"run `make setup` (pip install -e .) first", returncode=2)
