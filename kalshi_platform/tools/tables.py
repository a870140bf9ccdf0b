"""How every command prints a table (rich), one rule for all of them.

* Numbers are right-aligned (:func:`add_num_column`), so digits line up by place value.
* Names (tickers, titles, paths, free text) are never cut (:func:`add_text_column`): on a
  terminal narrower than the table a long name wraps inside its cell (rich's ``fold``
  overflow: every character is shown, none replaced by ``…``); on a pipe or a file the table is
  printed at its natural width however wide it is (:func:`print_table`), so a script reading
  the output gets one row per line with every name whole.

Only rich and the standard library: importing this costs nothing at CLI start.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table

#: the widest a table is ever laid out when measuring its natural width (characters)
_MEASURE_WIDTH = 100_000


def add_num_column(table: Table, header: str = "", **kw: Any) -> None:
    """A numeric column: right-aligned. On a terminal too narrow for the table the widest
    columns (long names) give way first; a number is folded, never cut, if even that is not
    enough."""
    kw.setdefault("overflow", "fold")
    table.add_column(header, justify="right", **kw)


def add_text_column(table: Table, header: str = "", **kw: Any) -> None:
    """A text column (ticker, name, path, note): left-aligned and folded, never cut, when
    the table does not fit a terminal."""
    kw.setdefault("overflow", "fold")
    table.add_column(header, **kw)


def natural_width(table: Table) -> int:
    """The width (characters) ``table`` takes when nothing has to wrap."""
    probe = Console(file=io.StringIO(), width=_MEASURE_WIDTH, color_system=None)
    return probe.measure(table).maximum


def _content_width(column: Column) -> int:
    """The widest of a column's header and cells (characters, padding excluded)."""
    probe = Console(file=io.StringIO(), width=_MEASURE_WIDTH, color_system=None)
    parts = [column.header, *column.cells]
    return max((Measurement.get(probe, probe.options, p).maximum for p in parts), default=0)


def fit_text_columns(table: Table, width: int) -> None:
    """Share what ``width`` leaves after the other columns among the foldable text columns
    (:func:`add_text_column`; narrowest first, each given at most its natural width), by
    setting their ``max_width``: the numbers keep their full width and the long names fold.
    Does nothing when the table fits, or when even 4 characters per text column do not."""
    need = natural_width(table)
    if need <= width:
        return
    text = [c for c in table.columns  # add_text_column's (numbers are right-justified)
            if c.overflow == "fold" and not c.no_wrap and c.justify != "right"]
    if not text:
        return
    natural = {id(c): _content_width(c) for c in text}
    left = width - (need - sum(natural.values()))
    if left < 4 * len(text):
        return
    for i, c in enumerate(sorted(text, key=lambda c: natural[id(c)])):
        share = min(natural[id(c)], left // (len(text) - i))
        c.max_width = share
        left -= share


def print_table(table: Table, console: Console) -> None:
    """Print ``table`` on ``console``: fitted to the width of a terminal (long names fold in
    their cells, numbers keep their width: :func:`fit_text_columns`); on a pipe or file at its
    natural width when that is wider than the console's (``COLUMNS``, else 80), so nothing is
    wrapped or cut."""
    if console.is_terminal:
        fit_text_columns(table, console.width)
        console.print(table)
        return
    need = natural_width(table)
    if need <= console.width:
        console.print(table)
        return
    wide = Console(file=console.file, width=need, color_system=None, no_color=console.no_color,
                   highlight=False, emoji=False)
    wide.print(table)
