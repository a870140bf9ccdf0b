"""Books rebuilt from the plant's event stream: the publisher's snapshot source and every
subscriber's local books.

:class:`BookMirror` applies stream events in seq order with the plant's own rules, so that
**every book it holds as ``live`` equals the plant's book at the same stream seq** (tested
against the plant on the real recordings):

* a ``SnapshotEvent`` replaces the book (ladders, ``sid``) and makes it ``live``; if the plant
  found it crossed, its ``stale`` BBO row follows in the stream;
* a ``DeltaEvent`` is applied only to a ``live`` book of the same ``sid`` (the plant records
  the others without applying them); one that would drive a level negative or past 10^10
  contracts leaves the ladder alone (the plant's ``stale`` BBO row follows);
* a ``BBO`` row sets the book's state: ``stale``/``syncing`` rows (null prices) say the book
  stopped being trustworthy; ``live`` rows are kept as the book's last BBO.

Units as in the plant: prices integer micro-dollars, sizes integer centi-contracts; NO bids at
NO prices. Not thread-safe: one owner thread.
"""

from __future__ import annotations

from typing import Any, Iterable

from kalshi_platform.feed.protocol import BookState
from kalshi_platform.fixedpoint import MAX_SIZE, ONE_DOLLAR
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent, SnapshotEvent

LIVE = "live"


class MirrorBook:
    """One market: ``state``, ``sid``, ``yes``/``no`` (price → size bids), ``bbo`` (last live
    BBO event or ``None``)."""

    __slots__ = ("ticker", "state", "sid", "yes", "no", "bbo", "has_depth")

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.state = "syncing"
        self.sid: int | None = None
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self.bbo: BBO | None = None
        self.has_depth = True  # False after a BBO-only snapshot: ladders unknown until one

    def top(self) -> tuple[int | None, int | None, int | None, int | None]:
        """``(yes_bid, yes_bid_size, yes_ask, yes_ask_size)`` from the ladders."""
        by = max(self.yes) if self.yes else None
        bn = max(self.no) if self.no else None
        return (by, None if by is None else self.yes[by],
                None if bn is None else ONE_DOLLAR - bn, None if bn is None else self.no[bn])

    def state_of(self, depth: bool = True) -> BookState:
        """This book as a snapshot entry (ladders best first; none when ``depth`` is off)."""
        if not depth:
            return BookState(self.ticker, self.state, self.sid, None, None, self.bbo)
        return BookState(self.ticker, self.state, self.sid,
                         sorted(self.yes.items(), reverse=True),
                         sorted(self.no.items(), reverse=True), self.bbo)


class BookMirror:
    """Books from stream events (see the module docstring).

    Args:
        tickers: keep only these markets (``None``: all).

    Attributes: ``books`` (ticker → :class:`MirrorBook`), ``seq`` (the last stream seq
    applied; 0 before any).
    """

    def __init__(self, tickers: Iterable[str] | None = None) -> None:
        self.tickers = None if tickers is None else frozenset(tickers)
        self.books: dict[str, MirrorBook] = {}
        self.seq = 0

    def apply(self, seq: int, ev: Any) -> None:
        """Apply event ``ev`` with stream seq ``seq`` (other event types only move ``seq``)."""
        self.seq = seq
        t = type(ev)
        if t is DeltaEvent:
            self._delta(ev)
        elif t is BBO:
            if self.tickers is None or ev.ticker in self.tickers:
                b = self._book(ev.ticker)
                b.state = ev.state
                b.bbo = ev if ev.state == LIVE else None
        elif t is SnapshotEvent:
            if self.tickers is None or ev.ticker in self.tickers:
                b = self._book(ev.ticker)
                b.yes = {p: q for p, q in ev.yes}
                b.no = {p: q for p, q in ev.no}
                b.sid = ev.sid
                b.state = LIVE
                b.has_depth = True

    def apply_batch(self, start_seq: int, events: Iterable[Any]) -> None:
        """Apply consecutive events from ``start_seq``."""
        for i, ev in enumerate(events, start_seq):
            self.apply(i, ev)

    def _delta(self, ev: DeltaEvent) -> None:
        b = self.books.get(ev.ticker)
        if b is None or b.state != LIVE or b.sid != ev.sid or not b.has_depth:
            return
        ladder = b.yes if ev.side == "yes" else b.no
        new = ladder.get(ev.price, 0) + ev.delta
        if new > MAX_SIZE or new < 0:
            return  # the plant's book error; its stale BBO row follows
        if new:
            ladder[ev.price] = new
        else:
            ladder.pop(ev.price, None)

    def _book(self, ticker: str) -> MirrorBook:
        b = self.books.get(ticker)
        if b is None:
            b = self.books[ticker] = MirrorBook(ticker)
        return b

    # -- snapshots -------------------------------------------------------------------------

    def snapshot(self, tickers: Iterable[str] | None = None,
                 depth: bool = True) -> list[BookState]:
        """Books (all, or ``tickers``) as snapshot entries, valid at :attr:`seq`."""
        want = self.books if tickers is None else {t: self.books[t] for t in tickers
                                                   if t in self.books}
        return [want[t].state_of(depth) for t in sorted(want)]

    def load(self, seq: int, books: Iterable[BookState]) -> None:
        """Replace everything with a snapshot valid at ``seq`` (a late joiner, a gap)."""
        self.books = {}
        for s in books:
            if self.tickers is not None and s.ticker not in self.tickers:
                continue
            b = self._book(s.ticker)
            b.state, b.sid, b.bbo = s.state, s.sid, s.bbo
            b.yes = dict(s.yes or ())
            b.no = dict(s.no or ())
            b.has_depth = s.yes is not None
        self.seq = seq
