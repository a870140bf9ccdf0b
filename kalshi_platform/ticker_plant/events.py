"""Normalized events the ticker plant emits, one type per storage table.

Every event is a ``NamedTuple`` in fixed-point units: prices in integer micro-dollars, sizes in
integer centi-contracts (:mod:`kalshi_platform.fixedpoint`), times in integer ns since the Unix
epoch (UTC). ``ts_ns`` is the exchange event time (the designated timestamp of its table,
falling back to receipt time when the wire carries none); ``recv_ns`` is local receipt time.
Sinks convert to their own types; they never see Kalshi's wire format
(docs/architecture.md "Layering rules").

The table each event lands in is ``type(event).table`` (see :mod:`kalshi_platform.storage.schema`).
"""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

import msgspec
import orjson

from kalshi_platform.ticker_plant.order_book import BBO

__all__ = [
    "BBO",
    "TradeEvent",
    "DeltaEvent",
    "SnapshotEvent",
    "TickerEvent",
    "LifecycleEvent",
    "FillEvent",
    "FeedEvent",
    "QuarantineRecord",
    "kept_text",
    "TABLE_OF",
]


class TradeEvent(NamedTuple):
    """A public trade (``trades`` table). ``taker_side`` is ``"yes"``/``"no"`` or ``None``."""

    ticker: str
    ts_ns: int
    trade_id: str
    yes_price: int
    no_price: int
    count: int
    taker_side: str | None
    recv_ns: int | None


class DeltaEvent(NamedTuple):
    """An order-book delta as received (``orderbook_deltas``): ``side`` ``"yes"``/``"no"`` bid,
    ``price`` µ$ on that side's own scale (NO bids at the NO price), signed ``delta``."""

    ticker: str
    ts_ns: int
    sid: int | None
    seq: int | None
    side: str
    price: int
    delta: int
    recv_ns: int | None


class SnapshotEvent(NamedTuple):
    """A full book (``orderbook_snapshots``, one row per level; an empty book is one row with
    null side/price/size so the snapshot itself is never lost). ``yes``/``no``: bid levels
    ``(price µ$, size c-contracts)`` on their own side's scale."""

    ticker: str
    ts_ns: int
    sid: int | None
    seq: int | None
    yes: list[tuple[int, int]]
    no: list[tuple[int, int]]
    recv_ns: int | None


class TickerEvent(NamedTuple):
    """Exchange ticker summary (``tickers``); any field may be ``None`` when not sent."""

    ticker: str
    ts_ns: int
    price: int | None
    yes_bid: int | None
    yes_ask: int | None
    yes_bid_size: int | None
    yes_ask_size: int | None
    volume: int | None
    open_interest: int | None
    recv_ns: int | None


class LifecycleEvent(NamedTuple):
    """Market or event lifecycle (``market_lifecycle``). ``ticker`` is the market ticker, or the
    event ticker for ``event_type == "event_lifecycle"``; ``detail`` is the wire ``msg`` as
    compact JSON text (lossless); ``settlement_value`` µ$ or ``None``."""

    ticker: str
    ts_ns: int
    event_type: str
    result: str | None
    settlement_value: int | None
    detail: str
    recv_ns: int | None


class FillEvent(NamedTuple):
    """One of our own fills (``fills``, private channel). ``fee_cost`` µ$."""

    ticker: str
    ts_ns: int
    trade_id: str
    order_id: str
    side: str | None
    action: str | None
    is_taker: bool | None
    yes_price: int
    count: int
    fee_cost: int | None
    post_position: int | None
    recv_ns: int | None


class FeedEvent(NamedTuple):
    """Feed health marker (``feed_events``): ``kind`` is one of ``connect``, ``disconnect``,
    ``gap``, ``resync``, ``error``, ``quarantine``, ``sink_failed``. ``expected_seq``/``got_seq``
    on gaps; ``detail`` at most 500 characters when it quotes the wire."""

    ts_ns: int
    kind: str
    sid: int | None
    expected_seq: int | None
    got_seq: int | None
    detail: str | None


class QuarantineRecord(NamedTuple):
    """A frame that could not be decoded, kept verbatim: ``raw`` is the frame text as received
    (or the line of the recording), or the exact ``bytes`` when they are not valid UTF-8;
    ``reason`` one line. Not a table: sinks keep it in a quarantine file beside the data
    (:meth:`as_json`)."""

    recv_ns: int | None
    reason: str
    raw: str | bytes

    def as_json(self) -> dict:
        """The record as one JSON object: ``{"recv_ns", "reason", "raw"}``, with ``raw_b64``
        (standard base64 of the exact bytes) in place of ``raw`` for non-UTF-8 input."""
        if isinstance(self.raw, bytes):
            return {"recv_ns": self.recv_ns, "reason": self.reason,
                    "raw_b64": base64.b64encode(self.raw).decode()}
        return {"recv_ns": self.recv_ns, "reason": self.reason, "raw": self.raw}


def kept_text(raw: Any) -> str | bytes:
    """What a quarantine record keeps of ``raw``: the text as received; bytes that are not
    UTF-8 are kept as the exact bytes. A frame handed over already parsed, without its text
    (a one-document recording), is the only case encoded here, with a depth guard."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        b = bytes(raw)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b
    try:
        return orjson.dumps(raw).decode() if type(raw) is dict else (
            msgspec.json.encode(raw).decode())
    except (TypeError, msgspec.EncodeError, RecursionError, ValueError):
        return f"<{type(raw).__name__} that cannot be encoded>"


TABLE_OF: dict[type, str] = {
    TradeEvent: "trades",
    DeltaEvent: "orderbook_deltas",
    SnapshotEvent: "orderbook_snapshots",
    BBO: "bbo",
    TickerEvent: "tickers",
    LifecycleEvent: "market_lifecycle",
    FillEvent: "fills",
    FeedEvent: "feed_events",
}
