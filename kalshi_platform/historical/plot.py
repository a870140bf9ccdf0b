"""One market's day as a PNG: YES bid/ask steps, trades, volume, stale periods.

Input is any root in the hive layout ``<root>/<table>/date=YYYY-MM-DD/*.parquet``: the
embedded store written by ``replay``/``run --sink parquet`` and the historical tier written by
``eod`` alike (docs/architecture.md "Tables"). Rows are read through
:func:`kalshi_platform.historical.query.open_local`'s de-duplicated views, one row per dedup
key, the copy ``read_table(..., dedup=True)``, ``query`` and the EOD job keep, with
``date`` and ``ticker`` pushed down into the scan so a year-long store costs one day's files.

Two steps, kept apart so each can be used and tested alone:

* :func:`load_market_day` → :class:`MarketDay` (pyarrow tables; dollars, contracts, µs UTC);
* :func:`draw_market_day` → a PNG through matplotlib's Agg canvas (no pyplot, no display)
  and a :class:`Drawing` saying what was drawn (trade markers and their sizes, BBO steps,
  stale spans, volume), so a caller can check the picture against the data.

What is drawn (storage/schema.py, ``bbo`` and ``trades``):

* upper panel — YES bid and YES ask as step lines (each value holds until the next ``bbo``
  row), the spread filled between them; trades as dots at their YES price, area proportional
  to ``count`` (green: YES taker, red: NO taker);
* lower panel — traded contracts per time bucket (1 s … 1 h, ≤ 120 buckets over the span);
* both — shaded spans where the book was not trustworthy: from a ``bbo`` row whose ``state``
  is not ``live`` (the plant's null-price invalidation row, docs/plant-contract.md) to the
  next ``live`` row, or to the end of the plotted span.

matplotlib is the optional ``plot`` extra; it is imported only inside :func:`draw_market_day`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

#: ``bbo`` columns read (prices dollars, sizes contracts, ``ts`` µs UTC)
BBO_COLUMNS = ("ts", "yes_bid", "yes_ask", "yes_bid_size", "yes_ask_size", "state", "seq")
#: ``trades`` columns read
TRADE_COLUMNS = ("ts", "yes_price", "count", "taker_side", "trade_id")
#: tables a plot reads; a root needs at least one of them
PLOT_TABLES = ("bbo", "trades")
#: volume bucket widths to choose from, seconds
BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
#: tables whose last row of the day marks the end of the recorded data (a book that went
#: stale stays stale until then: deltas keep being stored while it waits for a snapshot)
END_TABLES = ("bbo", "trades", "orderbook_deltas", "orderbook_snapshots", "tickers")
#: at most this many tickers are named in an error listing
LIST_MAX = 20


class PlotError(ValueError):
    """Bad input: a malformed date, or a date / ticker / root the data does not have. The
    message is one line and says what the root has instead."""


@dataclass
class MarketDay:
    """One market's rows for one UTC day.

    Attributes:
        ticker: the market ticker.
        day: the UTC date (the hive ``date`` partition).
        bbo: :data:`BBO_COLUMNS` sorted by ``ts``, ``seq``; ``ts`` as int64 µs since the epoch
            (UTC), prices in dollars (null on a non-live row), sizes in contracts.
        trades: :data:`TRADE_COLUMNS` sorted by ``ts``, ``trade_id``; ``ts`` int64 µs UTC,
            ``yes_price`` dollars, ``count`` contracts.
        day_end_us: the last ``ts`` recorded that day in any market (:data:`END_TABLES`),
            µs UTC, or ``None``.
    """

    ticker: str
    day: date
    bbo: pa.Table
    trades: pa.Table
    day_end_us: int | None = None

    def span_us(self) -> tuple[int, int]:
        """The plotted span, µs UTC: from the market's first row to the end of the day's
        recorded data (its last row if later); a single instant is widened by 1 s each way
        so the axis has a width. Raises :class:`PlotError` when the market has no row."""
        times = [int(v) for t in (self.bbo, self.trades) if t.num_rows
                 for v in (pc.min(t["ts"]).as_py(), pc.max(t["ts"]).as_py())]
        if not times:
            raise PlotError(f"no bbo or trades rows for {self.ticker} on {self.day}")
        lo, hi = min(times), max(times + [self.day_end_us or 0])
        return (lo - 1_000_000, hi + 1_000_000) if lo == hi else (lo, hi)


@dataclass
class Drawing:
    """What :func:`draw_market_day` drew.

    Attributes:
        path: the PNG written.
        width_px / height_px: its size in pixels.
        trade_points: trade markers in the scatter (one per ``trades`` row).
        trade_sizes: their marker areas (points², in row order).
        bbo_steps: BBO rows drawn as steps (live rows with both sides, or one side, present).
        stale_spans: shaded spans as ``(start_us, end_us)``, UTC.
        volume: contracts in the volume panel (the sum of ``count``).
        bucket_s: the volume panel's bucket width, seconds.
    """

    path: Path
    width_px: int
    height_px: int
    trade_points: int = 0
    trade_sizes: list[float] = field(default_factory=list)
    bbo_steps: int = 0
    stale_spans: list[tuple[int, int]] = field(default_factory=list)
    volume: float = 0.0
    bucket_s: int = 0


# --- loading ------------------------------------------------------------------------------

def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` → :class:`date`; :class:`PlotError` otherwise."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise PlotError(f"--date: expected YYYY-MM-DD, got {text!r}") from None


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _listing(items: Sequence[str]) -> str:
    """``a, b, c`` (the first :data:`LIST_MAX`, then ``… (N in all)``), or ``nothing``."""
    if not items:
        return "nothing"
    shown = ", ".join(items[:LIST_MAX])
    return shown + (f", … ({len(items)} in all)" if len(items) > LIST_MAX else "")


def _values(h: Any, sql: str) -> list[Any]:
    """The first column of ``sql``'s result (Python values)."""
    reader = h.query(sql)
    return [v for b in reader for v in b.column(0).to_pylist()] if reader else []


def _union(views: Sequence[str], select: str, where: str = "") -> str:
    parts = [f"SELECT {select} FROM {v} {where}" for v in views]
    return " UNION ".join(parts) + " ORDER BY 1"


def _read(h: Any, table: str, columns: Sequence[str], ticker: str, day: date,
          order: str) -> pa.Table:
    """``columns`` of ``table`` for one ticker and day (``ts`` as int64 µs UTC)."""
    from kalshi_platform.storage.schema import TABLES

    if table not in h.views:
        schema = TABLES[table].arrow_schema()
        fields = [pa.field("ts", pa.int64()) if c == "ts" else schema.field(c) for c in columns]
        return pa.schema(fields).empty_table()
    sel = ", ".join("epoch_us(ts) AS ts" if c == "ts" else f'"{c}"' for c in columns)
    reader = h.query(f"SELECT {sel} FROM {table} WHERE date = DATE '{day.isoformat()}' "
                     f"AND ticker = {_sql_str(ticker)} ORDER BY {order}")
    return reader.read_all() if reader is not None else pa.table({})


def _day_end_us(h: Any, day: date) -> int | None:
    """The last ``ts`` of ``day`` over :data:`END_TABLES` (their raw views: de-duplication
    does not move a maximum), µs UTC; ``None`` when none has a row."""
    from kalshi_platform.historical.query import RAW_SUFFIX

    views = [t + RAW_SUFFIX for t in END_TABLES if t in h.views]
    if not views:
        return None
    sql = " UNION ALL ".join(f"SELECT max(epoch_us(ts)) FROM {v} WHERE date = "
                             f"DATE '{day.isoformat()}'" for v in views)
    got = _values(h, f"SELECT max(m) FROM ({sql}) AS t(m)")
    return int(got[0]) if got and got[0] is not None else None


def load_market_day(root: str | Path, ticker: str, day: date | str) -> MarketDay:
    """Read one market's ``bbo`` and ``trades`` rows for one UTC day from ``root`` (store or
    historical tier; see the module docstring).

    Raises:
        PlotError: a malformed date; a root with neither table; a day the root does not have
            (the message lists the days it has); a ticker without rows that day (lists the
            tickers of that day).
        kalshi_platform.historical.query.QueryError: no such directory, no tables at all, or
            an unreadable file.
    """
    from kalshi_platform.historical.query import open_local

    day = parse_day(day) if isinstance(day, str) else day
    h = open_local(root)
    try:
        views = [t for t in PLOT_TABLES if t in h.views]
        if not views:
            raise PlotError(f"{root} has no bbo or trades table (it has: {_listing(h.views)})")
        dates = _values(h, _union(views, "DISTINCT CAST(date AS VARCHAR)"))
        if day.isoformat() not in dates:
            raise PlotError(f"no data for {day} in {root}; dates there: {_listing(dates)}")
        tickers = _values(h, _union(views, "DISTINCT ticker",
                                    f"WHERE date = DATE '{day.isoformat()}'"))
        if ticker not in tickers:
            raise PlotError(f"no market {ticker} on {day} in {root}; markets that day: "
                            f"{_listing(tickers)}")
        bbo = _read(h, "bbo", BBO_COLUMNS, ticker, day, "ts, seq")
        trades = _read(h, "trades", TRADE_COLUMNS, ticker, day, "ts, trade_id")
        end = _day_end_us(h, day)
    finally:
        h.close()
    return MarketDay(ticker, day, bbo, trades, end)


def stale_spans(bbo: pa.Table, end_us: int) -> list[tuple[int, int]]:
    """Spans ``(start_us, end_us)`` where the book was not live: each starts at a ``bbo`` row
    whose ``state`` is not ``live`` and ends at the next ``live`` row, or at ``end_us`` when
    none follows. ``bbo`` must be sorted by time (as :func:`load_market_day` returns it)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for ts, state in zip(bbo["ts"].to_pylist(), bbo["state"].to_pylist()):
        live = state == "live"
        if not live and start is None:
            start = ts
        elif live and start is not None:
            spans.append((start, ts))
            start = None
    if start is not None:
        spans.append((start, max(start, end_us)))
    return spans


def bucket_seconds(span_us: int, max_buckets: int = 120) -> int:
    """The smallest width in :data:`BUCKETS_S` giving at most ``max_buckets`` buckets over
    ``span_us`` (the largest one for longer spans)."""
    for b in BUCKETS_S:
        if span_us / (b * 1_000_000) <= max_buckets:
            return b
    return BUCKETS_S[-1]


# --- drawing ------------------------------------------------------------------------------

def _dates(us: Any) -> Any:
    """int64 µs UTC (array-like) → matplotlib date numbers (days)."""
    import matplotlib.dates as mdates
    import numpy as np

    return mdates.date2num(np.asarray(us, dtype="int64").astype("datetime64[us]"))


def _floats(col: pa.ChunkedArray) -> Any:
    """A nullable float column as a numpy array with NaN for null (breaks a line)."""
    import numpy as np

    return np.asarray(col.to_pylist() if col.null_count else col.to_numpy(), dtype="float64")


def _draw_book(ax: Any, md: MarketDay, end_us: int, d: Drawing) -> list[float]:
    """Bid/ask steps and the spread on ``ax``; returns the prices shown (for the y range)."""
    import numpy as np

    bbo = md.bbo
    if not bbo.num_rows:
        ax.text(0.5, 0.97, "no BBO rows (no order book recorded for this market)",
                transform=ax.transAxes, ha="center", va="top", color="0.4")
        return []
    x = _dates(bbo["ts"].to_pylist() + [end_us])  # the last value holds to the end
    bid, ask = _floats(bbo["yes_bid"]), _floats(bbo["yes_ask"])
    bid, ask = np.append(bid, bid[-1]), np.append(ask, ask[-1])
    # the spread as explicit steps (fill_between's own step mode drops the segment before a
    # null row); each segment [x_i, x_i+1] holds row i's values
    sx = np.repeat(x, 2)[1:-1]
    ax.fill_between(sx, np.repeat(bid[:-1], 2), np.repeat(ask[:-1], 2), color="tab:blue",
                    alpha=0.12, linewidth=0)
    ax.step(x, ask, where="post", color="tab:red", linewidth=1.2, label="YES ask")
    ax.step(x, bid, where="post", color="tab:green", linewidth=1.2, label="YES bid")
    d.bbo_steps = sum(1 for b, a in zip(bid[:-1], ask[:-1])
                      if not (math.isnan(b) and math.isnan(a)))
    return [v for v in np.concatenate([bid, ask]) if not math.isnan(v)]


def _draw_trades(ax: Any, md: MarketDay, d: Drawing) -> list[float]:
    """Trades as dots sized by count; returns their prices."""
    t = md.trades
    if not t.num_rows:
        return []
    count = [float(c) for c in t["count"].to_pylist()]
    top = max(count) or 1.0
    sizes = [15.0 + 185.0 * c / top for c in count]
    colors = ["tab:green" if s == "yes" else "tab:red" if s == "no" else "0.4"
              for s in t["taker_side"].to_pylist()]
    prices = [float(p) for p in t["yes_price"].to_pylist()]
    pts = ax.scatter(_dates(t["ts"].to_pylist()), prices, s=sizes, c=colors, alpha=0.7,
                     edgecolors="black", linewidths=0.4, zorder=3,
                     label="trades (YES price; area ∝ count)")
    d.trade_points = len(pts.get_offsets())
    d.trade_sizes = [float(s) for s in pts.get_sizes()]
    return prices


def _draw_volume(ax: Any, md: MarketDay, lo_us: int, hi_us: int, d: Drawing) -> None:
    """Contracts traded per bucket."""
    import numpy as np

    d.bucket_s = bucket_seconds(hi_us - lo_us)
    t = md.trades
    if not t.num_rows:
        ax.text(0.5, 0.5, "no trades", transform=ax.transAxes, ha="center", va="center",
                color="0.4")
        return
    width_us = d.bucket_s * 1_000_000
    first = lo_us - lo_us % width_us
    edges = np.arange(first, hi_us + width_us + 1, width_us, dtype="int64")
    counts = np.asarray(t["count"].to_pylist(), dtype="float64")
    vol, _ = np.histogram(np.asarray(t["ts"].to_pylist(), dtype="int64"), bins=edges,
                          weights=counts)
    ax.bar(_dates(edges[:-1]), vol, width=d.bucket_s / 86_400, align="edge",
           color="tab:purple", alpha=0.7)
    d.volume = float(vol.sum())


def _shade(axes: Sequence[Any], spans: Sequence[tuple[int, int]]) -> None:
    for i, (a, b) in enumerate(spans):
        xa, xb = _dates([a, b])
        for ax in axes:
            ax.axvspan(xa, xb, color="0.5", alpha=0.25, linewidth=0,
                       label="book not live" if i == 0 and ax is axes[0] else None)


def _decimals_of(step: float) -> int:
    """The decimals (2 to 6: cents to micro-dollars) that write every multiple of ``step``
    dollars exactly: a $0.025 step needs 3 (``$0.025``, not ``$0.03``)."""
    for d in range(2, 7):
        scaled = step * 10**d
        if abs(scaled - round(scaled)) < 1e-6 * max(1.0, scaled):
            return d
    return 6


def _price_axis(ax: Any, prices: Sequence[float]) -> None:
    """Y range around ``prices`` (within $0-$1) and dollar tick labels with as many decimals
    as the tick step needs (a 1-cent range gets tenths of a cent, a $0.025 step three
    decimals)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if prices:
        lo, hi = min(prices), max(prices)
        pad = max(0.01, (hi - lo) * 0.1)
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
    loc = MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10])
    ax.yaxis.set_major_locator(loc)
    lo, hi = ax.get_ylim()
    ticks = [t for t in loc.tick_values(lo, hi)]
    step = min((b - a for a, b in zip(ticks, ticks[1:])), default=0.01)
    decimals = _decimals_of(step)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:.{decimals}f}"))
    ax.set_ylabel("YES price")
    ax.grid(True, alpha=0.3)


def draw_market_day(md: MarketDay, out: str | Path, *, width_px: int = 1200,
                    height_px: int = 800, dpi: int = 100) -> Drawing:
    """Draw ``md`` into a ``width_px`` × ``height_px`` PNG at ``out`` (matplotlib's Agg
    canvas). Returns what was drawn (:class:`Drawing`). Raises :class:`PlotError` for a day
    without rows or a size outside 200–10000 px, :class:`ImportError` without matplotlib,
    :class:`OSError` when ``out`` cannot be written."""
    if not (200 <= width_px <= 10_000 and 200 <= height_px <= 10_000):
        raise PlotError(f"image size {width_px}x{height_px}: each side must be 200-10000 px")
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lo, hi = md.span_us()
    d = Drawing(Path(out), width_px, height_px)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    price, volume = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    prices = _draw_book(price, md, hi, d) + _draw_trades(price, md, d)
    _draw_volume(volume, md, lo, hi, d)
    d.stale_spans = stale_spans(md.bbo, hi)
    _shade((price, volume), d.stale_spans)
    _price_axis(price, prices)
    volume.set_ylabel(f"contracts / {d.bucket_s} s")
    volume.grid(True, alpha=0.3)
    volume.set_xlim(*_dates([lo, hi]))
    loc = mdates.AutoDateLocator()
    volume.xaxis.set_major_locator(loc)
    volume.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    volume.set_xlabel("time (UTC)")
    if price.get_legend_handles_labels()[0]:
        price.legend(loc="upper left", fontsize="small", framealpha=0.8)
    price.set_title(f"{md.ticker}  {md.day.isoformat()} UTC\n{md.bbo.num_rows:,} BBO rows, "
                    f"{md.trades.num_rows:,} trades, {d.volume:,.0f} contracts, "
                    f"{len(d.stale_spans)} stale period(s)", fontsize="medium", loc="left")
    fig.savefig(d.path, format="png", dpi=dpi)
    return d
