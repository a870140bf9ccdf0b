"""Plant events as JSON objects: the ``ws://`` transport's events and ``subscribe --jsonl``
(docs/feed-protocol.md "subscribe --jsonl" and "ws://").

An event is one object: ``feed`` and ``seq`` (the stream seq) first, then the fields named as
the table's columns in :mod:`kalshi_platform.storage.schema`, with exact values: prices as
decimal strings in dollars (``"0.5600"``), sizes as decimal strings in contracts
(``"2002.35"``), timestamps ``ts`` and ``recv_ts`` as integer ns UTC. Kalshi's own message seq
(the ``seq`` column of ``orderbook_deltas``, ``orderbook_snapshots`` and ``bbo``) is
``kalshi_seq`` here, since ``seq`` is the stream's. ``mid``/``spread`` are derived, exact, for a
two-sided BBO. :func:`event_json` keeps a book snapshot's ladders whole (``yes``/``no``, as the
ws transport sends it); :func:`event_objects` (``--jsonl``) writes one object per level, as in
the ``orderbook_snapshots`` table.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any, Callable, Iterator

from kalshi_platform.fixedpoint import price_to_str as _price_to_str
from kalshi_platform.fixedpoint import size_to_str as _size_to_str
from kalshi_platform.ticker_plant.events import (
    BBO,
    DeltaEvent,
    FeedEvent,
    FillEvent,
    LifecycleEvent,
    QuarantineRecord,
    SnapshotEvent,
    TickerEvent,
    TradeEvent,
)

__all__ = ["event_json", "event_objects", "snapshot_bbo_objects", "bbo_fields",
           "levels_json"]

_CACHE_LIMIT = 100_000


def _memo(fmt: Any) -> Any:
    """``fmt`` (units → decimal string) memoised in a bounded dict; ``None`` stays ``None``."""
    cache: dict[int, str] = {}

    def f(units: int | None) -> str | None:
        if units is None:
            return None
        s = cache.get(units)
        if s is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            s = cache[units] = fmt(units)
        return s

    return f


_p = _memo(_price_to_str)
_s = _memo(_size_to_str)


def _mid(yb: int | None, ya: int | None) -> tuple[str | None, str | None]:
    if yb is None or ya is None:
        return None, None
    s = yb + ya  # mid = s / 2 µ$: exact to the half micro-dollar
    mid = _price_to_str(s // 2) if s % 2 == 0 else format(Decimal(s).scaleb(-6) / 2, "f")
    return mid, _p(ya - yb)


# -- events → JSON objects --------------------------------------------------------------


def bbo_fields(e: BBO) -> dict[str, Any]:
    t, ts, yb, ybs, ya, yas, kseq, recv, state = e
    mid, spread = _mid(yb, ya)
    return {"ticker": t, "ts": ts, "yes_bid": _p(yb), "yes_bid_size": _s(ybs),
            "yes_ask": _p(ya), "yes_ask_size": _s(yas), "mid": mid, "spread": spread,
            "kalshi_seq": kseq, "recv_ts": recv, "state": state}


def _j_bbo(seq: int, e: BBO) -> dict[str, Any]:
    return {"feed": "bbo", "seq": seq, **bbo_fields(e)}


def _j_delta(seq: int, e: DeltaEvent) -> dict[str, Any]:
    t, ts, sid, kseq, side, price, delta, recv = e
    return {"feed": "deltas", "seq": seq, "type": "delta", "ticker": t, "ts": ts, "sid": sid,
            "kalshi_seq": kseq, "side": side, "price": _p(price), "delta": _s(delta),
            "recv_ts": recv}


def levels_json(levels: Any) -> list[list[str]]:
    return [[_p(p), _s(q)] for p, q in levels]


def _j_snapshot(seq: int, e: SnapshotEvent) -> dict[str, Any]:
    return {"feed": "deltas", "seq": seq, "type": "snapshot", "ticker": e.ticker,
            "ts": e.ts_ns, "sid": e.sid, "kalshi_seq": e.seq, "yes": levels_json(e.yes),
            "no": levels_json(e.no), "recv_ts": e.recv_ns}


def _j_trade(seq: int, e: TradeEvent) -> dict[str, Any]:
    t, ts, tid, yp, np_, count, side, recv = e
    return {"feed": "trades", "seq": seq, "ticker": t, "ts": ts, "trade_id": tid,
            "yes_price": _p(yp), "no_price": _p(np_), "count": _s(count),
            "taker_side": side, "recv_ts": recv}


def _j_ticker(seq: int, e: TickerEvent) -> dict[str, Any]:
    t, ts, price, yb, ya, ybs, yas, vol, oi, recv = e
    return {"feed": "tickers", "seq": seq, "ticker": t, "ts": ts, "price": _p(price),
            "yes_bid": _p(yb), "yes_ask": _p(ya), "yes_bid_size": _s(ybs),
            "yes_ask_size": _s(yas), "volume": _s(vol), "open_interest": _s(oi),
            "recv_ts": recv}


def _j_lifecycle(seq: int, e: LifecycleEvent) -> dict[str, Any]:
    return {"feed": "lifecycle", "seq": seq, "ticker": e.ticker, "ts": e.ts_ns,
            "event_type": e.event_type, "result": e.result,
            "settlement_value": _p(e.settlement_value), "detail": e.detail,
            "recv_ts": e.recv_ns}


def _j_fill(seq: int, e: FillEvent) -> dict[str, Any]:
    return {"feed": "fills", "seq": seq, "ticker": e.ticker, "ts": e.ts_ns,
            "trade_id": e.trade_id, "order_id": e.order_id, "side": e.side,
            "action": e.action, "is_taker": e.is_taker, "yes_price": _p(e.yes_price),
            "count": _s(e.count), "fee_cost": _p(e.fee_cost),
            "post_position": _s(e.post_position), "recv_ts": e.recv_ns}


def _j_feed(seq: int, e: FeedEvent) -> dict[str, Any]:
    return {"feed": "feed_events", "seq": seq, "ts": e.ts_ns, "kind": e.kind, "sid": e.sid,
            "expected_seq": e.expected_seq, "got_seq": e.got_seq, "detail": e.detail}


def _j_quarantine(seq: int, e: QuarantineRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"feed": "quarantine", "seq": seq, "recv_ts": e.recv_ns,
                           "reason": e.reason}
    if isinstance(e.raw, bytes):
        out["raw_b64"] = base64.b64encode(e.raw).decode()
    else:
        out["raw"] = e.raw
    return out


_TO_JSON: dict[type, Callable[[int, Any], dict[str, Any]]] = {
    BBO: _j_bbo, DeltaEvent: _j_delta, SnapshotEvent: _j_snapshot, TradeEvent: _j_trade,
    TickerEvent: _j_ticker, LifecycleEvent: _j_lifecycle, FillEvent: _j_fill,
    FeedEvent: _j_feed, QuarantineRecord: _j_quarantine,
}


def event_json(seq: int, ev: Any) -> dict[str, Any]:
    """The JSON object of plant event ``ev`` with stream seq ``seq`` (see the module
    docstring; a book snapshot keeps its ladders whole). Raises ``KeyError`` for a
    non-event."""
    return _TO_JSON[type(ev)](seq, ev)


def event_objects(seq: int, ev: Any) -> Iterator[dict[str, Any]]:
    """The ``--jsonl`` objects of one event with stream seq ``seq``: :func:`event_json`,
    except that a book snapshot gives one object per level (``side``, ``price``, ``size``), or
    one with null ``side``/``price``/``size`` for an empty book."""
    if type(ev) is not SnapshotEvent:
        yield event_json(seq, ev)
        return
    base = {"feed": "deltas", "seq": seq, "type": "snapshot", "ticker": ev.ticker,
            "ts": ev.ts_ns, "sid": ev.sid, "kalshi_seq": ev.seq}
    levels = [("yes", p, q) for p, q in ev.yes] + [("no", p, q) for p, q in ev.no]
    for side, p, q in levels or [(None, None, None)]:
        yield {**base, "side": side, "price": _p(p), "size": _s(q), "recv_ts": ev.recv_ns}


def snapshot_bbo_objects(seq: int, books: Any, feeds: Any) -> Iterator[dict[str, Any]]:
    """A snapshot taken at stream seq ``seq`` (a late join, a gap) as ``bbo`` objects, one
    per book: its last live BBO, or its state with null prices, so a JSONL reader knows every
    market's top from the join on even when the market is quiet afterwards. Nothing when the
    ``bbo`` feed is not subscribed."""
    if "bbo" not in feeds:
        return
    for b in books:
        if b.bbo is not None and b.state == "live":
            yield {**event_json(seq, b.bbo), "from_snapshot": True}
        else:
            yield {"feed": "bbo", "seq": seq, "ticker": b.ticker, "ts": None, "yes_bid": None,
                   "yes_bid_size": None, "yes_ask": None, "yes_ask_size": None,
                   "mid": None, "spread": None, "kalshi_seq": None, "recv_ts": None,
                   "state": b.state, "from_snapshot": True}
