"""One Kalshi market's order book in fixed-point integers.

Kalshi books are **bids only** (docs/kalshi-api.md §3.6, §7.5; docs/field-notes.md "Books and sequencing"):
a YES-bid ladder and a NO-bid ladder. A NO bid at price q is a YES ask at 1 − q, so

* best YES bid  = max YES-bid price, with that level's size;
* best YES ask  = 1 − max NO-bid price, with that NO level's size.

Prices are integer micro-dollars and sizes integer centi-contracts
(:mod:`kalshi_platform.fixedpoint`). Each ladder is a ``dict`` price → size with the best price
tracked incrementally; the maximum is recomputed only when the best level is removed. The slots,
the delta apply and the top are the compiled :class:`~._delta.BookCore` (the delta hot path,
``_delta.c``); the rest is here.

States: ``syncing`` (no snapshot yet, or a resync was requested), ``live`` (built from a
snapshot and every delta since), ``stale`` (a seq gap or a negative level: do not trust).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from kalshi_platform.fixedpoint import ONE_DOLLAR, price_to_decimal, price_to_str, size_to_str
from kalshi_platform.ingestion._delta import BookCore, BookError, set_stale

LIVE = "live"
STALE = "stale"
SYNCING = "syncing"
set_stale(STALE)  # the state BookCore.apply_delta leaves a book in when it raises BookError

__all__ = ["LIVE", "STALE", "SYNCING", "BookError", "BBO", "OrderBook"]


class BBO(NamedTuple):
    """Best bid and offer of one market in YES terms (a plant event; one ``bbo`` table row).

    ``yes_bid``/``yes_ask`` in micro-dollars, sizes in centi-contracts, ``None`` for an empty
    side. ``ts_ns``: exchange time of the update that moved the top (ns, UTC); ``seq``: the
    ``seq`` of the message that moved it (``None`` if it had none), which keeps two changes in
    the same millisecond distinct; ``recv_ns``: local receipt time (ns, UTC) or ``None``.
    ``state``: the book's state. ``live`` rows carry the top; a row in ``stale`` or
    ``syncing`` says the book stopped being trustworthy at ``ts_ns`` and has null prices.
    """

    ticker: str
    ts_ns: int
    yes_bid: int | None
    yes_bid_size: int | None
    yes_ask: int | None
    yes_ask_size: int | None
    seq: int | None
    recv_ns: int | None
    state: str = LIVE

    @property
    def mid(self) -> Decimal | None:
        """Mid price in dollars (exact), ``None`` unless both sides are present."""
        if self.yes_bid is None or self.yes_ask is None:
            return None
        return price_to_decimal(self.yes_bid + self.yes_ask) / 2

    @property
    def spread(self) -> Decimal | None:
        """YES ask − YES bid in dollars (exact); ``None`` unless both sides are present."""
        if self.yes_bid is None or self.yes_ask is None:
            return None
        return price_to_decimal(self.yes_ask - self.yes_bid)

    def top(self) -> tuple[int | None, int | None, int | None, int | None]:
        """``(yes_bid, yes_bid_size, yes_ask, yes_ask_size)`` in fixed-point units."""
        return (self.yes_bid, self.yes_bid_size, self.yes_ask, self.yes_ask_size)


class OrderBook(BookCore):
    """YES and NO bid ladders of one market with tracked best prices.

    Attributes (slots of :class:`BookCore`): ``ticker``; ``sid`` (the subscription whose seq
    stream feeds it); ``yes`` and ``no`` (``dict`` price µ$ → size c-contracts, bids);
    ``best_yes``/``best_no`` (µ$ or ``None``); ``state`` (``live``/``stale``/``syncing``);
    ``market_id``.

    Compiled (:class:`BookCore`):

    * ``apply_delta(side, price, delta) -> bool``: add ``delta`` (signed c-contracts) at
      ``price`` (µ$) on ``side`` (``"yes"``, else the NO ladder); a level reaching 0 is
      removed. ``True`` when the top of that side may have changed (price at or above the
      previous best), ``False`` when it cannot have. Raises :class:`BookError` and marks the
      book ``stale`` (the ladder unchanged) if the level would go negative or past 10^10
      contracts (:data:`~kalshi_platform.fixedpoint.MAX_SIZE`).
    * ``top()`` → ``(yes_bid, yes_bid_size, yes_ask, yes_ask_size)`` (µ$ / c-contracts,
      ``None`` for an empty side; YES ask = 1 − best NO bid).
    * ``note_top(last_top)``: the plant's BBO rule — ``False`` when the top is crossed or
      locked, ``None`` when it equals ``last_top[ticker]``, else the new top, recorded there.
    """

    __slots__ = ()

    def __init__(self, ticker: str, sid: int | None = None) -> None:
        self.ticker = ticker
        self.sid = sid
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self.best_yes: int | None = None
        self.best_no: int | None = None
        self.state = SYNCING
        self.market_id: str | None = None

    # -- updates -------------------------------------------------------------------------

    def apply_snapshot(self, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> None:
        """Replace the whole book (never merge: merging leaves ghost levels) and go ``live``.

        ``yes``/``no``: ``(price µ$, size c-contracts)`` bids in any order; zero-size levels
        are dropped. Raises :class:`BookError` (book left ``stale``) on a negative size or a
        price outside (0, 1) dollars.
        """
        ny: dict[int, int] = {}
        nn: dict[int, int] = {}
        for ladder, levels in ((ny, yes), (nn, no)):
            for p, q in levels:
                if q < 0 or p <= 0 or p >= ONE_DOLLAR:
                    self.state = STALE
                    raise BookError(f"{self.ticker}: bad snapshot level price={p} size={q}")
                if q:
                    ladder[p] = ladder.get(p, 0) + q
        self.yes = ny
        self.no = nn
        self.best_yes = max(ny) if ny else None
        self.best_no = max(nn) if nn else None
        self.state = LIVE

    def clear(self, state: str = SYNCING) -> None:
        """Drop every level (e.g. on reconnect) and set ``state``."""
        self.yes = {}
        self.no = {}
        self.best_yes = self.best_no = None
        self.state = state

    # -- views ---------------------------------------------------------------------------

    def bbo(self, ts_ns: int, seq: int | None = None, recv_ns: int | None = None) -> BBO:
        """The current :class:`BBO` stamped with ``ts_ns``, ``seq`` and ``recv_ns``."""
        return BBO(self.ticker, ts_ns, *self.top(), seq, recv_ns)

    def depth(self, n: int | None = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``n`` levels (all when ``None``) in YES terms: ``(bids, asks)``.

        ``bids``: YES bids, best (highest) first. ``asks``: YES asks derived from NO bids
        (price 1 − q), best (lowest) first. Each level is ``(price µ$, size c-contracts)``.
        """
        bids = sorted(self.yes.items(), reverse=True)
        asks = [(ONE_DOLLAR - p, q) for p, q in sorted(self.no.items(), reverse=True)]
        if n is not None:
            bids = bids[:n]
            asks = asks[:n]
        return bids, asks

    def is_crossed(self) -> bool:
        """``True`` when best YES bid ≥ best YES ask (best YES bid + best NO bid ≥ $1).

        Kalshi matches such orders immediately, so a crossed book means a missed delete.
        """
        return (
            self.best_yes is not None
            and self.best_no is not None
            and self.best_yes + self.best_no >= ONE_DOLLAR
        )

    def to_dict(self) -> dict:
        """JSON-friendly view: state, BBO as dollar / contract decimal strings (``None`` if empty)."""
        yb, ybs, ya, yas = self.top()
        return {
            "state": self.state,
            "yes_bid": price_to_str(yb),
            "yes_bid_size": size_to_str(ybs),
            "yes_ask": price_to_str(ya),
            "yes_ask_size": size_to_str(yas),
            "levels_yes": len(self.yes),
            "levels_no": len(self.no),
        }

