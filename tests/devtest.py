"""Helpers shared by the tests that drive a device: integer weights compared, a hard reset that waits for the
board, and the host port built with a small frame body."""
import subprocess
import time
from pathlib import Path

from edgebp.errors import DeviceError
from toolcheck import need_tools

ROOT = Path(__file__).resolve().parent.parent


def same_weights(wa, wb) -> bool:
    """Two lists of (W, b) integer arrays, layer by layer, are the same integers."""
    import numpy as np
    return len(wa) == len(wb) and all(np.array_equal(a, b) and np.array_equal(c, d)
                                      for (a, c), (b, d) in zip(wa, wb))


def hard_reset(dev, params=None):
    """RESET with the MCU bit, then HELLO until the device answers (20 s at most); returns that HELLO.
    ``params`` re-attaches the host's view of the restored model (Device forgets it at a reset)."""
    dev.reset(hard=True)
    deadline = time.monotonic() + 20
    while True:
        try:
            info = dev.info()
            break
        except DeviceError:
            if time.monotonic() > deadline:
                raise
    if params is not None:
        dev._params = dict(params)
    return info


def build_small_host(out: Path, body: int, defines: str = "") -> Path:
    """The host port's firmware built into ``out`` with frame bodies of ``body`` bytes (EBP_APP_MAX_BODY, as a
    small board's board.mk sets it) and ``defines`` (more switches, e.g. "-DEBP_APP_UPLOAD=0"); returns the
    binary, for boards.start_emulator("host", elf=...)."""
    need_tools("make", "cc")
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "BOARD=host", f"BUILD={out}", "-j2",
                    f"CPU_FLAGS=-DEBP_APP_MAX_BODY={body} {defines}".strip()], check=True, capture_output=True)
    return out / "edgebp-host"
