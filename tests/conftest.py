"""Refuse to test a stale build: the compiled core must be newer than every C source it is built from. And the
fixtures the device tests share."""
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


@pytest.fixture(scope="module")
def diabetes():
    """The diabetes data set (8 inputs, 2 classes), loaded once per module."""
    from edgebp.data import load_dataset
    return load_dataset("diabetes")


@pytest.fixture(scope="module")
def host_url():
    """The firmware's host port (a native process serving TCP), one per module."""
    from toolcheck import need_tools
    need_tools("make", "cc")
    from edgebp.boards import start_emulator
    with start_emulator("host", timeout=600) as url:
        yield url
