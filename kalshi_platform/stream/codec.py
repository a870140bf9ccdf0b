"""Plant events ↔ plain msgpack-able arrays: one versioned, lossless encoding.

Every plant event (:mod:`kalshi_platform.ticker_plant.events`) becomes ``[code, *fields]``:
the event's fields in declaration order, exactly as the plant holds them (prices integer
micro-dollars, sizes integer centi-contracts, times integer ns UTC, ``None`` as nil). The
codes are part of the feed protocol (docs/feed-protocol.md) and never change meaning:

====  ===================  ==========================================================
code  event                fields
====  ===================  ==========================================================
1     TradeEvent           ticker, ts_ns, trade_id, yes_price, no_price, count,
                           taker_side, recv_ns
2     BBO                  ticker, ts_ns, yes_bid, yes_bid_size, yes_ask, yes_ask_size,
                           seq, recv_ns, state
3     TickerEvent          ticker, ts_ns, price, yes_bid, yes_ask, yes_bid_size,
                           yes_ask_size, volume, open_interest, recv_ns
4     DeltaEvent           ticker, ts_ns, sid, seq, side, price, delta, recv_ns
5     SnapshotEvent        ticker, ts_ns, sid, seq, yes [[price, size]...], no [...],
                           recv_ns
6     LifecycleEvent       ticker, ts_ns, event_type, result, settlement_value, detail,
                           recv_ns
7     FillEvent            ticker, ts_ns, trade_id, order_id, side, action, is_taker,
                           yes_price, count, fee_cost, post_position, recv_ns
8     FeedEvent            ts_ns, kind, sid, expected_seq, got_seq, detail
9     QuarantineRecord     recv_ns, reason, raw (str, or bin for non-UTF-8 bytes)
====  ===================  ==========================================================

A decoder accepts arrays longer than it knows (fields appended by a later version are
ignored), so adding a trailing field is compatible; anything else bumps
:data:`CODEC_VERSION`.
"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec

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

CODEC_VERSION = 1

EVENT_CODES: dict[type, int] = {
    TradeEvent: 1, BBO: 2, TickerEvent: 3, DeltaEvent: 4, SnapshotEvent: 5,
    LifecycleEvent: 6, FillEvent: 7, FeedEvent: 8, QuarantineRecord: 9,
}
EVENT_TYPES: dict[int, type] = {c: t for t, c in EVENT_CODES.items()}
#: feed names (``--feed``) → event types
FEEDS: dict[str, tuple[type, ...]] = {
    "trades": (TradeEvent,), "bbo": (BBO,), "tickers": (TickerEvent,),
    "deltas": (DeltaEvent, SnapshotEvent), "lifecycle": (LifecycleEvent,),
    "fills": (FillEvent,), "feed_events": (FeedEvent,), "quarantine": (QuarantineRecord,),
}
FEED_OF: dict[type, str] = {t: f for f, ts in FEEDS.items() for t in ts}

_NFIELDS = {t: len(t._fields) for t in EVENT_CODES}
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


class CodecError(ValueError):
    """An encoded event or message is not in this codec's format."""


def to_array(ev: Any) -> list:
    """One event → ``[code, *fields]``. Raises :class:`CodecError` for a non-event."""
    code = EVENT_CODES.get(type(ev))
    if code is None:
        raise CodecError(f"not a plant event: {type(ev).__name__}")
    return [code, *ev]


def from_array(a: Any) -> Any:
    """``[code, *fields]`` → the event. Raises :class:`CodecError` on an unknown code or too
    few fields; extra trailing fields are ignored."""
    try:
        code = a[0]
        cls = EVENT_TYPES[code]
    except (TypeError, IndexError, KeyError):
        raise CodecError(f"unknown event code in {str(a)[:60]}") from None
    n = _NFIELDS[cls]
    if len(a) < n + 1:
        raise CodecError(f"{cls.__name__}: {len(a) - 1} fields, need {n}")
    fields = a[1:n + 1]
    if cls is SnapshotEvent:
        fields[4] = [tuple(x) for x in fields[4]]
        fields[5] = [tuple(x) for x in fields[5]]
    return cls(*fields)


def encode_events(events: Iterable[Any]) -> bytes:
    """A list of events → msgpack bytes of ``[[code, *fields], ...]``."""
    return _enc.encode([[EVENT_CODES[type(e)], *e] for e in events])


def decode_events(data: bytes) -> list[Any]:
    """Inverse of :func:`encode_events`. Raises :class:`CodecError` on bad input."""
    try:
        arrays = _dec.decode(data)
    except msgspec.DecodeError as e:
        raise CodecError(f"not msgpack: {e}") from None
    if not isinstance(arrays, list):
        raise CodecError("not an event list")
    return [from_array(a) for a in arrays]
