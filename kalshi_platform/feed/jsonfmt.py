"""Plant events as JSON objects: ``subscribe --jsonl`` (docs/feed-protocol.md "subscribe --jsonl").

One object per event (per level for a book snapshot, as in the ``orderbook_snapshots`` table):
``feed`` and ``seq`` (the stream seq) first, then the fields named as the table's columns in
:mod:`kalshi_platform.storage.schema`, with exact values: prices as decimal strings in dollars
(``"0.5600"``), sizes as decimal strings in contracts (``"2002.35"``), timestamps ``ts`` and
``recv_ts`` as integer ns UTC. Kalshi's own message seq (the ``seq`` column of
``orderbook_deltas``, ``orderbook_snapshots`` and ``bbo``) is ``kalshi_seq`` here, since
``seq`` is the stream's. ``mid``/``spread`` are derived, exact, for a two-sided BBO.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any, Iterator

from kalshi_platform.fixedpoint import price_to_str, size_to_str
from kalshi_platform.stream.codec import FEED_OF
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent, SnapshotEvent

_PRICES = {"yes_price", "no_price", "yes_bid", "yes_ask", "price", "settlement_value",
           "fee_cost"}
_SIZES = {"count", "yes_bid_size", "yes_ask_size", "volume", "open_interest", "delta",
          "post_position", "size"}
_RENAME = {"ts_ns": "ts", "recv_ns": "recv_ts"}


def _mid(yb: int | None, ya: int | None) -> tuple[str | None, str | None]:
    if yb is None or ya is None:
        return None, None
    s = yb + ya  # mid = s / 2 µ$, exact to the half micro-dollar
    mid = price_to_str(s // 2) if s % 2 == 0 else format(Decimal(s).scaleb(-6) / 2, "f")
    return mid, price_to_str(ya - yb)


def _fields(ev: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, v in zip(ev._fields, ev):
        key = _RENAME.get(name, name)
        if name == "seq":
            key = "kalshi_seq"
        if v is not None and name in _PRICES:
            v = price_to_str(v)
        elif v is not None and name in _SIZES:
            v = size_to_str(v)
        elif isinstance(v, bytes):
            key, v = "raw_b64", base64.b64encode(v).decode()
        out[key] = v
    return out


def event_objects(seq: int, ev: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of one event with stream seq ``seq`` (a snapshot gives one per
    level, or one with null ``side``/``price``/``size`` for an empty book)."""
    feed = FEED_OF.get(type(ev), type(ev).__name__)
    if type(ev) is SnapshotEvent:
        base = {"feed": feed, "seq": seq, "type": "snapshot", "ticker": ev.ticker,
                "ts": ev.ts_ns, "sid": ev.sid, "kalshi_seq": ev.seq}
        levels = [("yes", p, q) for p, q in ev.yes] + [("no", p, q) for p, q in ev.no]
        for side, p, q in levels or [(None, None, None)]:
            yield {**base, "side": side, "price": price_to_str(p), "size": size_to_str(q),
                   "recv_ts": ev.recv_ns}
        return
    obj: dict[str, Any] = {"feed": feed, "seq": seq}
    if type(ev) is DeltaEvent:
        obj["type"] = "delta"
    obj.update(_fields(ev))
    if type(ev) is BBO:
        obj["mid"], obj["spread"] = _mid(ev.yes_bid, ev.yes_ask)
    yield obj


def snapshot_bbo_objects(seq: int, books: Any, feeds: Any) -> Iterator[dict[str, Any]]:
    """A snapshot taken at stream seq ``seq`` (a late join, a gap) as ``bbo`` objects, one
    per book: its last live BBO, or its state with null prices, so a JSONL reader knows every
    market's top from the join on even when the market is quiet afterwards. Nothing when the
    ``bbo`` feed is not subscribed."""
    if "bbo" not in feeds:
        return
    for b in books:
        if b.bbo is not None and b.state == "live":
            for obj in event_objects(seq, b.bbo):
                obj["from_snapshot"] = True
                yield obj
        else:
            yield {"feed": "bbo", "seq": seq, "ticker": b.ticker, "ts": None, "yes_bid": None,
                   "yes_bid_size": None, "yes_ask": None, "yes_ask_size": None,
                   "kalshi_seq": None, "recv_ts": None, "state": b.state, "mid": None,
                   "spread": None, "from_snapshot": True}


__all__ = ["event_objects", "snapshot_bbo_objects"]
