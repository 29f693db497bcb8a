"""Progress bars: rate and ETA, hidden when stderr is not a terminal, rich when installed, plain otherwise."""
import io

import pytest

from edgebp.progress import Progress, format_seconds


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_hidden_when_not_a_terminal():
    s = io.StringIO()
    b = Progress(5, "fixed", stream=s)
    for i in range(1, 6):
        b(i, 0.25)
    b.close()
    assert s.getvalue() == "" and b.done == 5


def test_plain_bar_has_rate_and_eta():
    s = TTY()
    b = Progress(4, "fixed", stream=s, use_rich=False)
    b(1, 0.5)
    b(4, 0.125)
    b.close()
    out = s.getvalue()
    assert "4/4" in out and "epochs/s" in out and "ETA" in out and "loss 0.12500" in out and out.endswith("\n")


def test_rich_bar_on_a_terminal():
    pytest.importorskip("rich")
    s = TTY()
    b = Progress(3, "advise", stream=s, unit="format")
    assert b._rich is not None
    for i in range(1, 4):
        b(i)
    b.close()
    assert "formats/s" in s.getvalue() and "ETA" in s.getvalue()


def test_format_seconds():
    assert format_seconds(0) == "0:00" and format_seconds(75) == "1:15" and format_seconds(3725) == "1:02:05"


def test_set_label_renames_the_bar():
    s = TTY()
    b = Progress(2, "bench", stream=s, use_rich=False, unit="phase")
    b.set_label("memory")
    b(1)
    b.close()
    assert "  memory [" in s.getvalue() and "phases/s" in s.getvalue()
