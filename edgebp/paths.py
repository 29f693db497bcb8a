"""Where edgebp finds its C and firmware sources and where it writes build outputs.

A source checkout uses its own ``csrc/``, ``firmware/`` and ``tools/`` and builds into ``firmware/build/`` as
before. An installed package (wheel or sdist) carries copies of those folders in ``edgebp/_src/`` (setup.py's
build_py puts them there) and builds into a per-user cache directory, never into site-packages:

    Linux/BSD  $XDG_CACHE_HOME/edgebp (default ~/.cache/edgebp)
    macOS      ~/Library/Caches/edgebp
    Windows    %LOCALAPPDATA%\\edgebp\\Cache
    anywhere   $EDGEBP_CACHE_DIR when set

These are the rules of platformdirs' user_cache_dir, written out here so that the runtime dependencies stay
numpy, cffi and pyserial. Build outputs go under a folder named after the package version, so two installed
versions never share stale objects.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_ROOT = PACKAGE_DIR.parent
BUNDLE_ROOT = PACKAGE_DIR / "_src"
BUNDLED = ("csrc", "firmware", "tools")   # folders setup.py copies into edgebp/_src/


def is_checkout() -> bool:
    """True when this package runs from a source checkout (its csrc/ and pyproject.toml beside it)."""
    return (CHECKOUT_ROOT / "csrc").is_dir() and (CHECKOUT_ROOT / "pyproject.toml").is_file()


def source_root() -> Path:
    """The folder holding csrc/, firmware/ and tools/: the checkout, or the installed package's bundle."""
    return CHECKOUT_ROOT if is_checkout() else BUNDLE_ROOT


def source_dir(name: str) -> Path:
    """``csrc``, ``firmware`` or ``tools`` (see BUNDLED)."""
    if name not in BUNDLED:
        raise ValueError(f"unknown source folder {name!r}; one of {', '.join(BUNDLED)}")
    return source_root() / name


def user_cache_dir() -> Path:
    """The per-user cache folder for edgebp (see the module docstring); not created here."""
    env = os.environ.get("EDGEBP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "edgebp" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "edgebp"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "edgebp"


def build_root() -> Path:
    """Where firmware and benchmark builds go: firmware/build in a checkout, else the versioned user cache."""
    if is_checkout():
        return source_dir("firmware") / "build"
    from . import __version__
    return user_cache_dir() / __version__ / "firmware"
