"""Progress bars for long commands: rate and ETA, on stderr, hidden when stderr is not a terminal.

``rich`` draws them when it is installed (the optional extra ``edgebp[progress]``); otherwise a one-line bar of
the same content is written by hand. The library never prints: only the command line makes these.

    bar = Progress(total=200, label="fixed", unit="epoch")
    for epoch in ...: bar(epoch + 1, loss)      # loss: the mean training loss seen during that epoch
    bar.close()
"""
from __future__ import annotations

import sys
import time
from typing import Optional

LOSS_NOTE = ("the bar's loss is the mean over each epoch of the loss before each update; the table "
             "evaluates the final weights")


def _rich_available() -> bool:
    try:
        import rich.progress  # noqa: F401
        return True
    except ImportError:
        return False


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """A progress bar on stderr (only when it is a terminal, unless ``enabled`` forces it).

    Called as ``bar(done, loss)``; ``loss`` may be None. ``close()`` ends the line (call it in a finally)."""

    def __init__(self, total: int, label: str, enabled: Optional[bool] = None, unit: str = "epoch",
                 use_rich: Optional[bool] = None, stream=None):
        self.total, self.label, self.unit = max(int(total), 1), label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = (getattr(self.stream, "isatty", lambda: False)()) if enabled is None else bool(enabled)
        self.t0 = time.monotonic()
        self.done = 0
        self._rich = None
        if self.enabled and (use_rich if use_rich is not None else _rich_available()):
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self._rich = RichProgress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn(f"{{task.fields[rate]}} {unit}s/s"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[loss]}"),
                                      console=Console(file=self.stream), transient=False)
            self._rich.start()
            self._task = self._rich.add_task(label, total=self.total, rate="-", loss="")

    def set_label(self, label: str) -> None:
        self.label = label
        if self._rich is not None:
            self._rich.update(self._task, description=label)

    def rate(self) -> float:
        dt = time.monotonic() - self.t0
        return self.done / dt if dt > 0 else 0.0

    def eta(self) -> Optional[float]:
        r = self.rate()
        return (self.total - self.done) / r if r > 0 else None

    def __call__(self, done: int, loss: Optional[float] = None) -> None:
        self.done = int(done)
        if not self.enabled:
            return
        loss_txt = f"loss {loss:.5f}" if loss is not None else ""
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, total=self.total, rate=f"{self.rate():.3g}",
                              loss=loss_txt)
            return
        w = 24
        fill = int(w * self.done / self.total)
        eta = self.eta()
        self.stream.write(f"\r{self.label:>8} [{'#' * fill}{'.' * (w - fill)}] {self.done}/{self.total} "
                          f"{self.rate():.3g} {self.unit}s/s {format_seconds(time.monotonic() - self.t0)} "
                          f"ETA {format_seconds(eta) if eta is not None else '?'} {loss_txt}  ")
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        else:
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False
