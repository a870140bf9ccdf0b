"""Progress of long commands (``replay``, ``eod``) on stderr: a spinner line on a terminal,
nothing at all on a pipe or a file (so scripts and logs read only the results).

The spinner is drawn by rich's own refresh thread (4 times a second) from counters the work
already keeps — the plant's ``stats.frames`` for ``replay``, the rows streamed so far for
``eod`` — so the work itself does nothing more per frame than before.

Only rich and the standard library at import: this costs nothing at CLI start.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, \
    TimeElapsedColumn
from rich.text import Text


def wanted(console: Console) -> bool:
    """True when ``console`` is a terminal (rich: a tty, or ``TTY_COMPATIBLE=1``)."""
    return console.is_terminal


class _Live(ProgressColumn):
    """A column whose text is ``read()`` at each refresh (on rich's thread)."""

    def __init__(self, read: Callable[[], str]) -> None:
        super().__init__()
        self.read = read

    def render(self, task: Task) -> Text:
        return Text(self.read())


class _Spinner:
    """One transient spinner line ``<label> <text()> <elapsed>`` while in ``with``. Log lines
    written meanwhile (the root logger's stderr handlers) are printed above it, not into it:
    those handlers are pointed at rich's stderr proxy for the duration (``setStream``)."""

    label = ""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._moved: list[tuple[logging.StreamHandler, Any]] = []

    def _text(self) -> str:
        raise NotImplementedError

    def __enter__(self) -> Any:
        before = sys.stderr
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  _Live(self._text), TimeElapsedColumn(), console=self.console,
                                  transient=True, refresh_per_second=4)
        self._progress.add_task(self.label, total=None)
        self._progress.start()  # on a terminal sys.stderr is now rich's proxy
        if sys.stderr is not before:
            for h in logging.getLogger().handlers:
                if type(h) is logging.StreamHandler and h.stream is before:
                    self._moved.append((h, h.setStream(sys.stderr)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h, stream in self._moved:
            h.setStream(stream)
        self._moved = []
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class ReplayProgress(_Spinner):
    """``replay``'s spinner: frames read, msg/s and which file of a rotated directory.

    Used by :func:`kalshi_platform.tools.replay.run_replay` as ``progress(stats, files)``, a
    context manager whose :meth:`file` is called as each file starts. ``stats`` is the
    plant's :class:`~kalshi_platform.ticker_plant.stats.PlantStats` (``frames`` is read, never
    written)."""

    label = "replay:"

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.stats: Any = None
        self.files: list[Path] = []
        self.index = 0
        self.t0 = 0.0

    def __call__(self, stats: Any, files: list[Path]) -> "ReplayProgress":
        self.stats, self.files, self.t0 = stats, list(files), time.monotonic()
        return self

    def file(self, index: int, path: Path) -> None:
        """File ``index`` (0-based) of the run starts."""
        self.index = index

    def _text(self) -> str:
        frames = self.stats.frames if self.stats is not None else 0
        dt = time.monotonic() - self.t0
        rate = f", {frames / dt:,.0f} frames/s" if dt > 0.5 else ""
        where = ""
        if len(self.files) > 1:
            where = f" (file {self.index + 1}/{len(self.files)} {self.files[self.index].name})"
        return f"{frames:,} frames{rate}{where}"


def _stderr() -> Console:
    """A console on stderr made now (rich decides at construction whether it is interactive,
    so a console made at import would not redraw a terminal attached since)."""
    return Console(stderr=True)


def replay_progress(console: Console | None = None) -> ReplayProgress | None:
    """A :class:`ReplayProgress` on ``console`` (default: stderr) when it is a terminal, else
    ``None``."""
    console = console or _stderr()
    return ReplayProgress(console) if wanted(console) else None


class EodProgress(_Spinner):
    """``eod``'s spinner: the day and table being migrated and the rows streamed so far.
    Call it as ``progress(table, day, rows)`` (the :class:`~kalshi_platform.storage.eod.EodJob`
    ``progress`` callback) inside ``with``."""

    label = "eod:"

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.where = ""
        self.rows = 0

    def __call__(self, table: str, day: date, rows: int) -> None:
        self.where, self.rows = f"{day} {table}", rows

    def _text(self) -> str:
        return f"{self.where}: {self.rows:,} rows" if self.where else "starting"


def eod_progress(console: Console | None = None) -> EodProgress | None:
    """An :class:`EodProgress` on ``console`` (default: stderr) when it is a terminal, else
    ``None``."""
    console = console or _stderr()
    return EodProgress(console) if wanted(console) else None
