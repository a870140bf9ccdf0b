"""The board as a rich renderable: a header of feed figures over one table row per market.

:func:`render_board` reads a :class:`~kalshi_platform.board.model.BoardModel` and returns a
``rich.console.Group`` of plain strings (it keeps no reference to the model, so a refresh
thread can print it after the model's lock is released). No I/O.

* Header: the source, run, stream seq, stream events per second and in all, the end of the
  stream; then feed gaps (Kalshi sequence gaps the plant reported), resyncs, stream gaps of
  this subscriber, snapshots taken, and the books by state (live, stale, syncing).
* Table: ticker, state, YES bid size / bid / ask / ask size, spread, last trade (YES price,
  count), updates per second and in all. Numbers are right-aligned; prices in dollars and
  sizes in contracts, exact (integer arithmetic on the plant's units, no float), with one
  number of decimals per column so the points line up.
* Width: the ticker is never cut. When the table is wider than ``width``, whole columns are
  left out: empty ones first, then the least needed (:data:`DROP_ORDER`; the sort's own
  column stays longest), down to the ticker alone; a ticker wider than the whole width
  folds onto a second line rather than being cut.
"""

from __future__ import annotations

from typing import Callable, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kalshi_platform.board.model import BoardModel, MarketRow, SortKey
from kalshi_platform.fixedpoint import PRICE_DECIMALS, SIZE_DECIMALS

#: columns left out, first to last, when the board is wider than its width (ticker never)
DROP_ORDER = ("updates", "last qty", "bid qty", "ask qty", "spread", "last", "state", "upd/s",
              "ask", "bid")

STATE_STYLE = {"live": "green", "stale": "bold red", "syncing": "yellow"}

#: lines besides the rows: 2 of header, the table's header and rule, 1 spare for the cursor
CHROME_LINES = 5


def _decimals(values: Sequence[int | None], scale_decimals: int, least: int) -> int:
    """The fewest decimals (at least ``least``) that show every value exactly."""
    need = least
    for v in values:
        if v is None:
            continue
        frac = abs(v) % 10**scale_decimals
        d = scale_decimals
        while d > need and frac % 10 == 0:
            frac //= 10
            d -= 1
        need = d  # never below need
    return need


def _fixed(v: int | None, scale_decimals: int, decimals: int, sep: bool) -> str:
    """Integer units with ``scale_decimals`` implied decimals → text with ``decimals``
    (exact: ``decimals`` is enough for ``v``)."""
    if v is None:
        return ""
    sign = "-" if v < 0 else ""
    whole, frac = divmod(abs(v), 10**scale_decimals)
    head = f"{whole:,}" if sep else str(whole)
    if not decimals:
        return sign + head
    return f"{sign}{head}.{frac // 10**(scale_decimals - decimals):0{decimals}d}"


def price_cells(values: Sequence[int | None]) -> list[str]:
    """µ$ → dollars, at least 2 decimals, the same number for the whole column."""
    d = _decimals(values, PRICE_DECIMALS, 2)
    return [_fixed(v, PRICE_DECIMALS, d, sep=False) for v in values]


def size_cells(values: Sequence[int | None]) -> list[str]:
    """c-contracts → contracts with thousands separators; 2 decimals only when one needs them."""
    d = _decimals(values, SIZE_DECIMALS, 0)
    return [_fixed(v, SIZE_DECIMALS, d, sep=True) for v in values]


def rate_cells(values: Sequence[float | None]) -> list[str]:
    """Updates per second with one decimal."""
    return ["" if v is None else f"{v:,.1f}" for v in values]


def _columns(model: BoardModel, rows: list[MarketRow]) -> list[tuple[str, str, list]]:
    """``(name, justify, cells)`` of every column, in display order."""
    def col(fn: Callable[[MarketRow], int | None]) -> list[int | None]:
        return [fn(r) for r in rows]

    return [
        ("ticker", "left", [r.ticker for r in rows]),
        ("state", "left", [Text(r.state or "-", style=STATE_STYLE.get(r.state or "", ""))
                           for r in rows]),
        ("bid qty", "right", size_cells(col(lambda r: r.yes_bid_size))),
        ("bid", "right", price_cells(col(lambda r: r.yes_bid))),
        ("ask", "right", price_cells(col(lambda r: r.yes_ask))),
        ("ask qty", "right", size_cells(col(lambda r: r.yes_ask_size))),
        ("spread", "right", price_cells(col(lambda r: r.spread))),
        ("last", "right", price_cells(col(lambda r: r.last_price))),
        ("last qty", "right", size_cells(col(lambda r: r.last_count))),
        ("upd/s", "right", rate_cells([model.rate(r) for r in rows])),
        ("updates", "right", [f"{r.updates:,}" for r in rows]),
    ]


def _table_width(columns: list[tuple[str, str, list]]) -> int:
    """The width rich gives a ``box.SIMPLE_HEAD`` table without edges of these cells: every
    column its widest cell plus a space each side, and one box character between columns."""
    w = 0
    for name, _, cells in columns:
        w += max([cell_len(name)] + [cell_len(str(c)) for c in cells]) + 2
    return w + len(columns) - 1


#: the column a sort reads, kept when columns are left out
SORT_COLUMN = {"updates": "upd/s", "total": "updates", "spread": "spread", "state": "state",
               "trades": "last"}


def fit_columns(columns: list[tuple[str, str, list]], width: int | None,
                keep: str | None = None) -> list[tuple[str, str, list]]:
    """``columns`` without those of :data:`DROP_ORDER` until they fit ``width`` (``None``: no
    limit): first the columns with no value in any row, then the others, each in that
    order; column ``keep`` last, only when nothing else is left to leave out."""
    if width is None:
        return columns
    cols = list(columns)
    empty = {name for name, _, cells in cols if not any(str(c) for c in cells)}
    order = [n for n in DROP_ORDER if n in empty and n != keep]
    order += [n for n in DROP_ORDER if n not in order and n != keep]
    order += [keep] if keep else []
    for name in order:
        if _table_width(cols) <= width:
            break
        cols = [c for c in cols if c[0] != name]
    return cols


def header_text(model: BoardModel, source: str, shown: int, sort: SortKey | str) -> Text:
    """The two header lines (see the module docstring)."""
    rate = model.msg_rate()
    states = model.book_states()
    end = "  [bold]END[/]" if model.ended else ""
    run = f"run {escape(model.run_id)}" if model.run_id else "waiting for the publisher"
    line1 = (f"[bold]{escape(source)}[/]  {run}  seq {model.seq:,}  "
             f"{'-' if rate is None else f'{rate:,.0f}'} msg/s  {model.events:,} events{end}")
    fe = model.feed_events
    line2 = (f"feed gaps {fe['gap']:,}  resyncs {fe['resync']:,}  "
             f"stream gaps {model.stream_gaps:,}  snapshots {model.snapshots:,}  "
             f"books live {states['live']:,}  stale {states['stale']:,}  "
             f"syncing {states['syncing']:,}  markets {shown:,}/{len(model.rows):,} "
             f"by {SortKey(sort).value}")
    return Text.from_markup(line1 + "\n" + line2, overflow="fold")


def render_board(model: BoardModel, *, source: str = "", sort: SortKey | str = SortKey.UPDATES,
                 reverse: bool = False, max_rows: int | None = None,
                 width: int | None = None) -> Group:
    """The board: header and table (at most ``max_rows`` rows in ``sort`` order), fitted to
    ``width`` columns (``None``: natural width). Raises ``ValueError`` for an unknown sort."""
    rows = model.sorted_rows(sort, reverse, max_rows)
    columns = fit_columns(_columns(model, rows), width, SORT_COLUMN.get(SortKey(sort).value))
    table = Table(box=box.SIMPLE_HEAD, expand=False, show_edge=False)
    for name, justify, _ in columns:
        table.add_column(name, justify=justify, no_wrap=name != "ticker",  # type: ignore[arg-type]
                         overflow="fold" if name == "ticker" else "ellipsis",
                         min_width=cell_len(name))
    for i in range(len(rows)):
        table.add_row(*[cells[i] for _, _, cells in columns])
    return Group(header_text(model, source, len(rows), sort), table)
