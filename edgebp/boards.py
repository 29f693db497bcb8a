"""Boards the firmware runs on: how to build, emulate or flash each, and the emulator runner.

    with start_emulator("qemu-mps2-an385") as url:      # builds if needed, QEMU with -icount shift=6
        with Device(url) as dev: ...

simavr boards (an 8-bit AVR) run in simavr through firmware/build/<board>/simavr-run, a small program the
firmware build links against libsimavr: it serves the chip's UART0 on a TCP port, as QEMU does, and simavr
counts CPU cycles exactly (the firmware's tick is one cycle).

Real boards are flashed with the vendor tools (pyOCD, OpenOCD, picotool), which edgebp calls but does not
reimplement. Their port folders are written by the user from firmware/ports/generic-cortex-m.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from . import paths
from .errors import ConfigError, DeviceError, EdgeBPError

# a checkout's firmware/, or the copy an installed package carries (edgebp/_src/firmware; see paths.py)
FIRMWARE_DIR = paths.source_dir("firmware")


@dataclass(frozen=True)
class Board:
    name: str
    core: str                      # CPU core
    emulated: bool
    ram: int                       # bytes of RAM on the part
    qemu_machine: Optional[str] = None
    port: Optional[str] = None     # folder under firmware/ports/ ("" if the user still has to write it)
    flash: List[List[str]] = field(default_factory=list)   # candidate commands; {elf} {hex} {bin} {port}
    notes: str = ""
    simavr_mcu: Optional[str] = None   # run in simavr as this MCU (firmware/build/<port>/simavr-run)
    clock_hz: Optional[int] = None     # CPU clock, where a counter tick is one cycle (cycles = ns * clock / 1e9)
    flash_kib: Optional[int] = None    # simavr: flash given to the simulated chip when the firmware outgrows it

    @property
    def simavr(self) -> bool:
        return self.simavr_mcu is not None

    @property
    def buildable(self) -> bool:
        return self.port is not None and (FIRMWARE_DIR / "ports" / self.port / "board.mk").is_file()


BOARDS: Dict[str, Board] = {b.name: b for b in [
    Board("qemu-mps2-an385", "cortex-m3", True, 4 << 20, "mps2-an385", "qemu-mps2-an385",
          notes="default; ARM MPS2 AN385 FPGA image in QEMU, CMSDK UART0"),
    Board("qemu-mps2-an386", "cortex-m4", True, 4 << 20, "mps2-an386", "qemu-mps2-an386",
          notes="ARM MPS2 AN386 in QEMU: the AN385 board with a Cortex-M4F (DSP kernels; the FPU stays unused)"),
    Board("qemu-microbit", "cortex-m0", True, 16 << 10, "microbit", "qemu-microbit",
          notes="BBC micro:bit v1 (nRF51822) in QEMU: 16 KiB RAM, 64-bit multiply in software"),
    Board("simavr-atmega328p", "avr5", True, 2 << 10, None, "simavr-atmega328p",
          notes="ATmega328P (Arduino Uno's chip) at 16 MHz in simavr: 2 KiB RAM, 32 KiB flash (the firmware fits "
                "32,256 bytes, room for Optiboot), 16-bit int, ticks are CPU cycles; online SGD of dense networks "
                "with squared error",
          simavr_mcu="atmega328p", clock_hz=16_000_000),
    Board("host", "native", True, 0, None, "host",
          notes="the firmware as a native process serving TCP (no emulator needed)"),
    Board("generic-cortex-m", "cortex-m3", False, 32 << 10, None, "generic-cortex-m",
          flash=[["pyocd", "flash", "{elf}"], ["openocd", "-f", "interface/cmsis-dap.cfg", "-f", "target/stm32f4x.cfg",
                                                "-c", "program {elf} verify reset exit"]],
          notes="template: fill in the UART hooks in firmware/ports/generic-cortex-m/port.c"),
    Board("nucleo-f401re", "cortex-m4", False, 96 << 10, None, "nucleo-f401re",
          flash=[["pyocd", "flash", "-t", "stm32f401retx", "{elf}"],
                 ["openocd", "-f", "board/st_nucleo_f4.cfg", "-c", "program {elf} verify reset exit"]],
          notes="write firmware/ports/nucleo-f401re from the generic template (USART2 on the ST-LINK VCP)"),
    Board("nrf52840dk", "cortex-m4f", False, 256 << 10, None, "nrf52840dk",
          flash=[["pyocd", "flash", "-t", "nrf52840", "{elf}"],
                 ["openocd", "-f", "interface/jlink.cfg", "-c", "transport select swd", "-f", "target/nrf52.cfg",
                  "-c", "program {elf} verify reset exit"]],
          notes="write firmware/ports/nrf52840dk from the generic template (UARTE0 on the J-Link VCP)"),
    Board("rpi-pico", "cortex-m0+", False, 264 << 10, None, "rpi-pico",
          flash=[["picotool", "load", "-x", "{elf}"],
                 ["openocd", "-f", "interface/cmsis-dap.cfg", "-f", "target/rp2040.cfg",
                  "-c", "program {elf} verify reset exit"]],
          notes="write firmware/ports/rpi-pico from the generic template (needs the boot2 stage in flash)"),
]}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise ConfigError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None


def build_dir(board: str) -> Path:
    """Build outputs of a port folder (``host-asan`` for the sanitizer build): firmware/build/ in a checkout,
    the per-user cache of an installed package (never site-packages)."""
    return paths.build_root() / board


def firmware_path(board: str) -> Path:
    return build_dir(board) / ("edgebp-host" if board == "host" else "edgebp.elf")


def _need_tree() -> None:
    if not (FIRMWARE_DIR / "Makefile").is_file():
        raise EdgeBPError(f"the firmware sources are not at {FIRMWARE_DIR}: this edgebp installation is "
                          f"incomplete; reinstall it (pip install --force-reinstall edgebp) or use a source checkout")


def build(board: str, jobs: int = 2, sanitize: bool = False) -> dict:
    """Runs make for the board; returns the size report (flash, ram, stack, arena, ...) and 'output'.
    ``sanitize`` (host only): an AddressSanitizer + UBSan build in build/host-asan/ (its 'elf' is the binary)."""
    b = get_board(board)
    _need_tree()
    if not b.buildable:
        raise ConfigError(f"board {board!r} has no port folder yet: copy firmware/ports/generic-cortex-m to "
                          f"firmware/ports/{b.port} and fill in its UART hooks (see firmware/README.md)")
    if b.simavr:
        if shutil.which("avr-gcc") is None:
            raise EdgeBPError("avr-gcc not found: install it (Debian/Ubuntu: apt install gcc-avr avr-libc)")
        if not any(Path(d, "simavr", "sim_avr.h").is_file() for d in ("/usr/include", "/usr/local/include")):
            raise EdgeBPError("the simavr library is not installed (its runner links against it): install it "
                              "(Debian/Ubuntu: apt install libsimavr-dev libsimavrparts1)")
    elif b.name != "host" and shutil.which("arm-none-eabi-gcc") is None:
        raise EdgeBPError("arm-none-eabi-gcc not found: install it (Debian/Ubuntu: apt install gcc-arm-none-eabi "
                          "libnewlib-arm-none-eabi)")
    if sanitize and b.name != "host":
        raise ConfigError("sanitizer builds exist only for the host port")
    if shutil.which("make") is None:
        raise EdgeBPError("make not found: install it (Debian/Ubuntu: apt install make)")
    out = build_dir(b.port + ("-asan" if sanitize else ""))
    cmd = ["make", "-C", str(FIRMWARE_DIR), f"BOARD={b.port}", f"-j{jobs}", f"PYTHON={sys.executable}"]
    cmd += ["SANITIZE=1"] if sanitize else []
    if not paths.is_checkout():     # an installed package: objects go to the user cache, never site-packages
        out.mkdir(parents=True, exist_ok=True)
        cmd.append(f"BUILD={out}")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise EdgeBPError(f"firmware build for {board} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    rep = json.loads((out / "size.json").read_text())
    m = re.search(r"^size report for .*", p.stdout, re.M | re.S)
    text = m.group(0) if m else p.stdout
    rep["output"] = "\n".join(l for l in text.splitlines() if not l.startswith("make"))
    return rep


def ensure_built(board: str) -> Path:
    """Builds the board's firmware (make is incremental, so this is cheap when it is up to date)."""
    build(board)
    return firmware_path(get_board(board).port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ticks_to_cycles(board: str, ns: float) -> Optional[float]:
    """CPU cycles from a time in ns measured by a board whose counter ticks are cycles (clock_hz; the AVR board:
    HELLO's unit is ns = ticks * 125 / 2, so cycles = ns * 16 / 1000 = ticks); None for other boards."""
    b = get_board(board)
    return None if b.clock_hz is None else ns * b.clock_hz / 1e9


def runner_path(board: str) -> Path:
    """simavr boards: the runner the firmware build makes next to the ELF."""
    return build_dir(get_board(board).port) / "simavr-run"


def qemu_command(board: str, elf: Path, port: int) -> List[str]:
    """The emulator holding the guest until the host connects to the serial port on 127.0.0.1:port: QEMU counting
    instructions, or for a simavr board its runner (which takes QEMU's -serial spelling)."""
    b = get_board(board)
    serial = f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"
    if b.simavr:
        return simavr_command(board, elf, port)
    return ["qemu-system-arm", "-M", b.qemu_machine, "-kernel", str(elf), "-display", "none", "-monitor", "none",
            "-serial", serial, "-icount", "shift=6"]


emulator_command = qemu_command


def simavr_command(board: str, elf: Path, port: Optional[int] = None, extra: Optional[List[str]] = None) -> List[str]:
    """simavr-run for the board's MCU: UART0 on 127.0.0.1:port (held until a client connects), or on stdio when
    port is None."""
    b = get_board(board)
    cmd = [str(runner_path(board)), "--mcu", b.simavr_mcu, "--freq", str(b.clock_hz)]
    cmd += ["--flash-kib", str(b.flash_kib)] if b.flash_kib else []
    cmd += ["-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"] if port is not None else ["--stdio"]
    return cmd + list(extra or []) + [str(elf)]


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)


@contextlib.contextmanager
def start_emulator(board: str = "qemu-mps2-an385", timeout: float = 600.0, build_first: bool = True,
                   elf: Optional[Path] = None) -> Iterator[str]:
    """Runs the board's firmware (QEMU, or the native host port) and yields a serial URL for ``Device``.
    The process is killed by its PID on exit, or after ``timeout`` seconds at the latest."""
    b = get_board(board)
    if not b.emulated:
        raise ConfigError(f"{board} is a real board: flash it (edgebp flash --board {board}) and use its serial "
                          f"port")
    if elf is None:
        elf = ensure_built(board) if build_first else firmware_path(b.port)
    if not Path(elf).is_file():
        raise EdgeBPError(f"no firmware at {elf}: run edgebp build --board {board}")
    if board == "host":
        proc = subprocess.Popen([str(elf), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        line = proc.stdout.readline()
        m = re.search(r"listening on ([\d.]+):(\d+)", line)
        if not m:
            _kill(proc)
            raise DeviceError(f"host firmware did not start: {line!r} {proc.stderr.read()[-500:]!r}")
        url = f"socket://{m.group(1)}:{m.group(2)}"
    else:
        what = "simavr-run" if b.simavr else "QEMU"
        if b.simavr and not runner_path(board).is_file():
            raise EdgeBPError(f"no simavr runner at {runner_path(board)}: run edgebp build --board {board}")
        if not b.simavr and shutil.which("qemu-system-arm") is None:
            raise EdgeBPError("qemu-system-arm not found: install it (Debian/Ubuntu: apt install qemu-system-arm)")
        port = free_port()
        proc = subprocess.Popen(qemu_command(board, elf, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"socket://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while not _listening(port):   # ready when its serial server listens (checked without connecting)
            if proc.poll() is not None:
                raise DeviceError(f"{what} exited with status {proc.returncode}: {proc.stderr.read()[-800:]!r}")
            if time.monotonic() > deadline:
                _kill(proc)
                raise DeviceError(f"{what} did not open its serial port within 10 s")
            time.sleep(0.05)
    timer = threading.Timer(timeout, _kill, (proc,))
    timer.daemon = True
    timer.start()
    try:
        yield url
    finally:
        timer.cancel()
        _kill(proc)


def _listening(port: int) -> bool:
    """True when something listens on 127.0.0.1:port, read from /proc (connecting would start the guest)."""
    want = f":{port:04X}"
    try:
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(path) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        return False
    except OSError:
        time.sleep(0.3)     # no /proc (macOS): give QEMU a moment
        return True


def flash_command(board: str, elf: Path, port: Optional[str] = None) -> List[str]:
    """The first installed flashing tool's command for a real board; EdgeBPError if none is installed."""
    b = get_board(board)
    if b.emulated:
        raise ConfigError(f"{board} is emulated: nothing to flash")
    for cmd in b.flash:
        if shutil.which(cmd[0]):
            return [c.format(elf=elf, port=port or "") for c in cmd]
    tools = ", ".join(sorted({c[0] for c in b.flash})) or "a vendor tool"
    raise EdgeBPError(f"no flashing tool for {board} found: install one of {tools} (e.g. pip install pyocd)")
