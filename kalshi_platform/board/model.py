"""The board's model: one :class:`MarketRow` per market, updated from feed items (no I/O).

:meth:`BoardModel.apply` takes every :class:`~kalshi_platform.feed.subscriber.Item` a
:class:`~kalshi_platform.feed.subscriber.Subscriber` yields (docs/feed-protocol.md
"Subscribing"), in order:

* ``bbo`` rows set a market's **state** (``live``/``stale``/``syncing``, the plant's book
  state) and, when ``live``, its **top** (YES bid/ask with sizes); a ``stale``/``syncing`` row
  clears the top (the plant's null prices);
* a ``snapshot`` (a late join, or the repair of a stream gap) sets every market's state and
  top from its books (``BookState.bbo``); a market the snapshot lacks has no book any more;
* **updates** count the exchange's messages for the market: ``deltas`` (order-book deltas
  and snapshots), ``trades``, ``tickers`` and ``lifecycle`` events, one each. ``bbo`` rows
  are derived from them and are not counted again;
* ``trades`` also set the **last trade** (YES price, count, taker side);
* ``feed_events`` are counted by kind (``gap``: a Kalshi sequence gap the plant saw,
  ``resync``, ``disconnect``, ...); ``gap`` items are stream gaps of this subscriber (each
  repaired by the snapshot that follows).

Counts start when the board joins: a late joiner sees no earlier feed event.

Rates are counts over a sliding window of samples: :meth:`BoardModel.sample` is called with
a time in ns (a monotonic clock, passed in by the caller; tests pass plain numbers), and a
rate is the count between the window's first sample and the last, divided by the time
between them. Sampling costs one pass over the markets updated since the last sample.

Units as in the plant (docs/plant-contract.md): prices integer micro-dollars, sizes integer
centi-contracts, times ns. Not thread-safe: the caller serialises ``apply``/``sample`` and
reads (the board command holds a lock).
"""

from __future__ import annotations

import fnmatch
import heapq
from collections import Counter, deque
from enum import Enum
from typing import Any, Callable, Iterable

from kalshi_platform.ticker_plant.events import (
    BBO,
    DeltaEvent,
    FeedEvent,
    LifecycleEvent,
    SnapshotEvent,
    TickerEvent,
    TradeEvent,
)

LIVE = "live"

#: exchange messages counted as a market's updates (one plant event per wire message)
UPDATE_TYPES = (DeltaEvent, SnapshotEvent, TickerEvent, LifecycleEvent)


class SortKey(str, Enum):
    """Row orders of the board (``--sort``); ties are broken by ticker.

    ``ticker`` A→Z; ``updates`` busiest first (updates/s over the window, then total);
    ``total`` most updates since joining; ``spread`` tightest first (no spread last);
    ``state`` books not live first; ``trades`` most trades; ``recent`` most recently updated.
    """

    TICKER = "ticker"
    UPDATES = "updates"
    TOTAL = "total"
    SPREAD = "spread"
    STATE = "state"
    TRADES = "trades"
    RECENT = "recent"


class MarketRow:
    """One market on the board.

    ``state``: the plant's book state, ``None`` until a BBO row or snapshot says (a market
    seen only in trades or tickers); ``yes_bid``/``yes_ask`` µ$ and their sizes c-contracts,
    ``None`` for an empty side or a book not live; ``last_price`` (YES, µ$), ``last_count``
    (c-contracts), ``last_side`` (taker ``yes``/``no``/``None``) of the last trade;
    ``trades`` and ``updates`` counted since the board joined; ``last_seq`` the stream seq of
    the last update; ``window`` updates in the current rate window.
    """

    __slots__ = ("ticker", "state", "yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size",
                 "last_price", "last_count", "last_side", "trades", "updates", "last_seq",
                 "window", "sampled")

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.state: str | None = None
        self.yes_bid = self.yes_bid_size = self.yes_ask = self.yes_ask_size = None
        self.last_price: int | None = None
        self.last_count: int | None = None
        self.last_side: str | None = None
        self.trades = 0
        self.updates = 0
        self.last_seq = 0
        self.window = 0
        self.sampled = 0  # ``updates`` at the last sample

    def top(self) -> tuple[int | None, int | None, int | None, int | None]:
        """``(yes_bid µ$, yes_bid_size c-contracts, yes_ask µ$, yes_ask_size c-contracts)``."""
        return self.yes_bid, self.yes_bid_size, self.yes_ask, self.yes_ask_size

    @property
    def spread(self) -> int | None:
        """YES ask − YES bid in µ$; ``None`` unless both sides are present."""
        if self.yes_bid is None or self.yes_ask is None:
            return None
        return self.yes_ask - self.yes_bid

    def set_top(self, bbo: Any) -> None:
        """The top of a BBO event (or clear it: ``None``)."""
        if bbo is None:
            self.yes_bid = self.yes_bid_size = self.yes_ask = self.yes_ask_size = None
        else:
            self.yes_bid, self.yes_bid_size = bbo.yes_bid, bbo.yes_bid_size
            self.yes_ask, self.yes_ask_size = bbo.yes_ask, bbo.yes_ask_size


def ticker_matcher(patterns: Iterable[str] | None) -> Callable[[str], bool] | None:
    """A ``--filter`` predicate: a ticker matches when any pattern does, case-insensitively; a
    pattern with ``*``, ``?`` or ``[`` is a glob (:mod:`fnmatch`), any other a substring.
    ``None`` (or no pattern): everything matches."""
    pats = [p.strip().upper() for p in (patterns or ()) if p.strip()]
    if not pats:
        return None
    globs = [p for p in pats if any(c in p for c in "*?[")]
    subs = [p for p in pats if p not in globs]

    def match(ticker: str) -> bool:
        t = ticker.upper()
        return any(s in t for s in subs) or any(fnmatch.fnmatchcase(t, g) for g in globs)

    return match


class BoardModel:
    """Every market's row plus the feed's counters (see the module docstring).

    Args:
        accept: keep only markets for which this returns true (``None``: all); asked once
            per ticker.
        window_s: the rate window in seconds (> 0).

    Attributes: ``rows`` (ticker → :class:`MarketRow`), ``run_id`` (set by
    :meth:`start_run`), ``seq`` (the last stream seq seen), ``events`` (stream events
    received, every market and feed, the board's own filter aside), ``feed_events``
    (``Counter`` of feed event kinds), ``stream_gaps``, ``snapshots``, ``ended``.
    """

    def __init__(self, accept: Callable[[str], bool] | None = None,
                 window_s: float = 5.0) -> None:
        if not window_s > 0:
            raise ValueError(f"rate window must be > 0 s, got {window_s}")
        self.accept = accept
        self.window_ns = int(window_s * 1e9)
        self.start_run(None)

    def start_run(self, run_id: str | None) -> None:
        """Forget everything: a new publisher run (a new stream) begins."""
        self.run_id = run_id
        self.rows: dict[str, MarketRow] = {}
        self._rejected: set[str] = set()
        self.seq = 0
        self.events = 0
        self.feed_events: Counter[str] = Counter()
        self.stream_gaps = 0
        self.snapshots = 0
        self.ended = False
        self._dirty: set[MarketRow] = set()
        self._samples: deque[tuple[int, list[tuple[MarketRow, int]], int]] = deque()
        self._events_sampled = 0
        self._window_events = 0

    # -- items ---------------------------------------------------------------------------

    def apply(self, item: Any) -> None:
        """Apply one subscriber item ``(seq, feed, event)``."""
        feed = item.feed
        if feed == "snapshot":
            self.seq = max(self.seq, item.seq)  # the books are valid at this seq
            self._snapshot(item.event)
        elif feed == "gap":
            self.stream_gaps += 1
        elif feed == "end":
            self.ended = True
        else:
            self.events += 1
            self.seq = item.seq
            ev = item.event
            t = type(ev)
            if t is BBO:
                r = self._row(ev.ticker)
                if r is not None:
                    r.state = ev.state
                    r.set_top(ev if ev.state == LIVE else None)
            elif t is FeedEvent:
                self.feed_events[ev.kind] += 1
            elif t is TradeEvent:
                r = self._update(item.seq, ev.ticker)
                if r is not None:
                    r.trades += 1
                    r.last_price, r.last_count, r.last_side = ev.yes_price, ev.count, ev.taker_side
            elif t in UPDATE_TYPES:
                self._update(item.seq, ev.ticker)

    def _update(self, seq: int, ticker: str) -> MarketRow | None:
        r = self._row(ticker)
        if r is not None:
            r.updates += 1
            r.last_seq = seq
            self._dirty.add(r)
        return r

    def _row(self, ticker: str) -> MarketRow | None:
        r = self.rows.get(ticker)
        if r is None:
            if ticker in self._rejected:
                return None
            if self.accept is not None and not self.accept(ticker):
                self._rejected.add(ticker)
                return None
            r = self.rows[ticker] = MarketRow(ticker)
        return r

    def _snapshot(self, books: list) -> None:
        self.snapshots += 1
        present = set()
        for b in books:
            r = self._row(b.ticker)
            if r is None:
                continue
            present.add(b.ticker)
            r.state = b.state
            r.set_top(b.bbo if b.state == LIVE else None)
        for t, r in self.rows.items():
            if t not in present and r.state is not None:
                r.state = None  # the publisher holds no book for it now
                r.set_top(None)

    # -- rates ---------------------------------------------------------------------------

    def sample(self, now_ns: int) -> None:
        """Take a rate sample at ``now_ns`` (ns, any monotonic clock; never going back)."""
        samples = self._samples
        deltas = []
        for r in self._dirty:
            d = r.updates - r.sampled
            r.sampled = r.updates
            if d and samples:
                r.window += d
                deltas.append((r, d))
        self._dirty.clear()
        evd = self.events - self._events_sampled
        self._events_sampled = self.events
        if not samples:
            deltas, evd = [], 0  # the first sample is the window's start: nothing before it
        self._window_events += evd
        samples.append((now_ns, deltas, evd))
        cutoff = now_ns - self.window_ns
        while len(samples) >= 2 and samples[1][0] <= cutoff:
            samples.popleft()
            _, old, old_evd = samples[0]  # the new start: what it counted is now outside
            for r, d in old:
                r.window -= d
            self._window_events -= old_evd

    def elapsed_s(self) -> float:
        """Seconds the current window spans (0 before two samples)."""
        s = self._samples
        return (s[-1][0] - s[0][0]) / 1e9 if len(s) >= 2 else 0.0

    def rate(self, row: MarketRow) -> float | None:
        """``row``'s updates per second over the window (``None`` before two samples)."""
        e = self.elapsed_s()
        return row.window / e if e > 0 else None

    def msg_rate(self) -> float | None:
        """Stream events received per second over the window (``None`` before two samples)."""
        e = self.elapsed_s()
        return self._window_events / e if e > 0 else None

    # -- reading -------------------------------------------------------------------------

    def book_states(self) -> Counter[str]:
        """Markets by book state (``live``, ``stale``, ``syncing``; ``none``: no book)."""
        return Counter(r.state or "none" for r in self.rows.values())

    def sorted_rows(self, key: SortKey | str = SortKey.UPDATES, reverse: bool = False,
                    limit: int | None = None) -> list[MarketRow]:
        """The rows in ``key`` order (:class:`SortKey`; ``reverse`` flips it), at most
        ``limit``. Raises ``ValueError`` for an unknown key."""
        fn = _SORT_KEYS[SortKey(key)]
        rows = self.rows.values()
        if limit is not None and limit < len(self.rows):
            pick = heapq.nlargest if reverse else heapq.nsmallest
            return pick(max(limit, 0), rows, key=fn)
        return sorted(rows, key=fn, reverse=reverse)


_STATE_RANK = {"stale": 0, "syncing": 1, None: 2, LIVE: 3}

_SORT_KEYS: dict[SortKey, Callable[[MarketRow], Any]] = {
    SortKey.TICKER: lambda r: r.ticker,
    SortKey.UPDATES: lambda r: (-r.window, -r.updates, r.ticker),
    SortKey.TOTAL: lambda r: (-r.updates, r.ticker),
    SortKey.SPREAD: lambda r: (r.spread is None, r.spread or 0, r.ticker),
    SortKey.STATE: lambda r: (_STATE_RANK.get(r.state, 2), r.ticker),
    SortKey.TRADES: lambda r: (-r.trades, r.ticker),
    SortKey.RECENT: lambda r: (-r.last_seq, r.ticker),
}
