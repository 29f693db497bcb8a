"""Every port builds with the strict flags; the size report has flash, RAM, stack and arena figures; the
core's objects use no allocation or stdio."""
import re
import subprocess

import pytest
from toolcheck import need_tools


PORTS = {"host": ("make", "cc"), "qemu-mps2-an385": ("make", "arm-none-eabi-gcc"),
         "qemu-microbit": ("make", "arm-none-eabi-gcc"), "generic-cortex-m": ("make", "arm-none-eabi-gcc")}


@pytest.mark.parametrize("board", list(PORTS))
def test_build_and_size_report(board):
    need_tools(*PORTS[board])
    from edgebp.boards import build, build_dir, firmware_path
    rep = build(board)
    for key in ("flash", "ram", "stack", "arena"):
        assert isinstance(rep[key], int) and rep[key] > 0, key
        assert re.search(rf"^\s+{key}:\s+\d+ bytes", rep["output"], re.M), rep["output"]
    assert "call-graph worst case" in rep["stack_method"]
    assert rep["ram"] >= rep["arena"]
    assert firmware_path(board).is_file()
    if board != "host":
        assert rep["flash"] < 64 * 1024
        assert not rep["stack_notes"], "recursion or indirect calls make the stack figure a lower bound"
        nm = "arm-none-eabi-nm"
        for obj in (build_dir(board) / "core").glob("*.o"):
            undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
            for bad in ("malloc", "free", "calloc", "printf", "sprintf", "puts", "float", "__aeabi_f", "__aeabi_d"):
                assert not re.search(rf"\b{bad}", undefined), f"{obj.name} uses {bad}"
    if board == "qemu-microbit":
        assert rep["ram"] + rep["stack"] <= 16 * 1024, "static RAM plus worst-case stack must fit 16 KiB"


def test_unknown_board_is_a_clear_error():
    from edgebp.boards import build
    from edgebp.errors import ConfigError
    with pytest.raises(ConfigError, match="known boards"):
        build("no-such-board")
