"""Wire renderings of the sim's current books (docs/kalshi-api.md §3.6, §7.5, §7.8).

The sim keeps its books in a :class:`~kalshi_platform.ticker_plant.plant.TickerPlant` (the same
code a client runs), so ``get_snapshot`` answers and the REST order book are built from exactly
the state the recording has reached. These helpers turn one
:class:`~kalshi_platform.ticker_plant.order_book.OrderBook` (integer micro-dollar prices,
centi-contract sizes, NO side held as NO bids) into Kalshi's fixed-point strings.
"""

from __future__ import annotations

from typing import Any

from kalshi_platform.fixedpoint import ONE_DOLLAR, parse_price, price_to_str, size_to_str
from kalshi_platform.ticker_plant.order_book import OrderBook


def levels(ladder: dict[int, int], *, yes_scale: bool = False,
           depth: int | None = None) -> list[list[str]]:
    """A bid ladder as ``[[price_dollars, count_fp], ...]`` strings, ascending by price.

    ``ladder``: price µ$ → size c-contracts (bids). ``yes_scale``: express NO bids on the YES
    price scale (``1 − q``; docs/kalshi-api.md §7.8). ``depth``: keep only the best N bids (highest
    prices), still listed ascending (the order Kalshi is observed to send, §3.6).
    """
    items = sorted(ladder.items())
    if depth:
        items = items[-depth:]
    if yes_scale:
        return [[price_to_str(ONE_DOLLAR - p), size_to_str(q)] for p, q in reversed(items)]
    return [[price_to_str(p), size_to_str(q)] for p, q in items]


def snapshot_msg(ticker: str, book: OrderBook | None, *, use_yes_price: bool = False,
                 market_id: str | None = None) -> dict[str, Any]:
    """The ``msg`` of an ``orderbook_snapshot`` frame for ``ticker`` (docs/kalshi-api.md §7.5).

    ``book`` ``None`` (no snapshot in the recording yet) renders an empty book. Empty sides
    are omitted, as Kalshi does. ``use_yes_price``: NO levels on the YES scale (§7.8).
    """
    msg: dict[str, Any] = {"market_ticker": ticker,
                           "market_id": (book.market_id if book is not None else None)
                           or market_id or ""}
    if book is not None:
        if book.yes:
            msg["yes_dollars_fp"] = levels(book.yes)
        if book.no:
            msg["no_dollars_fp"] = levels(book.no, yes_scale=use_yes_price)
    return msg


def orderbook_fp(book: OrderBook | None, depth: int | None = None) -> dict[str, Any]:
    """REST ``GET /markets/{ticker}/orderbook`` body (docs/kalshi-api.md §3.6): both sides as bids,
    NO side at NO prices, ascending, ``depth`` best levels per side (0/None = all)."""
    if book is None:
        return {"orderbook_fp": {"yes_dollars": [], "no_dollars": []}}
    return {"orderbook_fp": {"yes_dollars": levels(book.yes, depth=depth),
                             "no_dollars": levels(book.no, depth=depth)}}


def flip_no_price(msg: dict[str, Any]) -> dict[str, Any]:
    """A NO-side ``orderbook_delta`` msg with its price moved to the other scale (p → 1 − p).

    Used when a client's ``use_yes_price`` differs from the recording's. Handles the current
    ``price_dollars`` string and the legacy integer-cents ``price``; returns a new dict (the
    input is shared between connections). Unparseable prices are left as they are (the
    client's plant quarantines them, as it would the original).
    """
    out = dict(msg)
    p = out.get("price_dollars")
    if isinstance(p, str):
        try:
            out["price_dollars"] = price_to_str(ONE_DOLLAR - parse_price(p))
        except ValueError:
            pass
    c = out.get("price")
    if type(c) is int:
        out["price"] = 100 - c
    return out
