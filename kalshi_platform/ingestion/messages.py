"""Kalshi WebSocket v2 frames → typed messages.

Source: docs/kalshi-api.md §7 (AsyncAPI 2026-05 plus later changes) and the real captures in
``shared/data/real/kalshi/ws``.

``orderbook_delta`` frames, nearly all of a feed, are decoded by the compiled delta decoder
(:mod:`kalshi_platform.ingestion._delta`, docs/field-notes.md "Performance") straight into an
:class:`OrderbookDelta` of fixed-point integers, every value range-checked. Every other frame
type is a :class:`msgspec.Struct` whose fields mirror the wire exactly (so a reader of Kalshi's
docs recognises them), decoded from the frame's bytes by msgspec. Both wire eras share one type:

* current (since 2026-03-12): fixed-point strings ``*_dollars`` (prices) and ``*_fp`` (counts),
  snapshots as ``yes_dollars_fp`` / ``no_dollars_fp``, deltas as ``price_dollars`` + ``delta_fp``;
* legacy (before 2026-03-12): integer cents (``price``, ``yes_bid``) and integer counts
  (``count``, ``delta``), snapshots as ``yes``/``no`` (``[[cents, count]]``) or
  ``yes_dollars``/``no_dollars`` (``[["0.080", 300]]``).

The ``*_units`` helpers of :mod:`kalshi_platform.ingestion.units` turn the other types' wire
values into the plant's fixed-point integers and range-check them. Envelope counters (``sid``,
``seq``), event times and tickers are bounded here, in the struct types, so msgspec rejects
them while decoding.

Unknown message types decode to :class:`Unknown`; unknown fields are ignored. A frame that is
not JSON, lacks a required key or has a wrongly typed field raises :class:`DecodeError`, and so
do the delta decoder and the ``*_units`` helpers for bad numbers (``""`` where a price is
required, ``"abc"``); the plant turns either into a quarantine record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NamedTuple, Union

import msgspec
import orjson

from kalshi_platform.ingestion._delta import decode as _decode_delta


class DecodeError(ValueError):
    """A frame could not be decoded: bad JSON, a missing key, or a bad price/size/timestamp.

    ``reason`` is a one-line description; ``msg_type``/``sid``/``seq`` are filled when the
    envelope was readable (they are reported, never used to advance a watermark).
    """

    def __init__(self, reason: str, *, msg_type: str | None = None, sid: int | None = None,
                 seq: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.msg_type = msg_type
        self.sid = sid
        self.seq = seq


# -- value ranges (the plant's input contract; docs/plant-contract.md) --------------------
#: ``sid`` and ``seq``: 1 <= n < 2^63 (a signed 64-bit column); Kalshi starts both at 1
MAX_COUNTER = 2**63 - 1
Counter64 = Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNTER)]
#: command ``id`` of acks: 0 <= n < 2^63
CommandId = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNTER)]
#: event times: 2000-01-01T00:00:00Z <= t < 2100-01-01T00:00:00Z (anything else is corrupt)
MIN_EPOCH_S = 946_684_800
MAX_EPOCH_S = 4_102_444_800
EpochMs = Annotated[int, msgspec.Meta(ge=MIN_EPOCH_S * 1000, lt=MAX_EPOCH_S * 1000)]
EpochS = Annotated[int, msgspec.Meta(ge=MIN_EPOCH_S, lt=MAX_EPOCH_S)]
MIN_EPOCH_NS = MIN_EPOCH_S * 1_000_000_000
MAX_EPOCH_NS = MAX_EPOCH_S * 1_000_000_000
#: market/event tickers: 1..128 characters (the longest real one is 40)
TickerStr = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
#: timestamps as RFC3339 text: at most this long before parsing
_MAX_TS_TEXT = 40


class _Body(msgspec.Struct, kw_only=True, gc=False):
    pass


class Frame(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    """Base of every frame: envelope ``sid`` (subscription id) and ``seq`` (per-sid sequence;
    ``None`` on frames without one, e.g. ``ticker``, ``fill``, ``subscribed``)."""

    sid: Counter64 | None = None
    seq: Counter64 | None = None

    @property
    def type(self) -> str:
        """The wire ``type`` of this frame."""
        return self.__struct_config__.tag  # type: ignore[return-value]


# -- order book (docs/kalshi-api.md §7.5) --------------------------------------------------------


class OrderbookDelta(NamedTuple):
    """``orderbook_delta`` frame, decoded and range-checked by the compiled delta decoder
    (:mod:`kalshi_platform.ingestion._delta`; both wire eras: ``price_dollars``/``delta_fp``
    strings or legacy integer ``price`` cents / ``delta`` contracts): a signed change at one
    price level of one side's bid ladder.

    ``sid``/``seq`` in [1, 2^63) or ``None``; ``market_ticker`` 1..128 characters; ``side``
    ``"yes"``/``"no"`` (on the wire's scale, see ``use_yes_price``); ``price`` µ$ in (0, 1) $;
    ``delta`` c-contracts, non-zero, within ±10^10 contracts; ``ts_ns`` exchange time in ns
    (from ``ts_ms``, else ``ts``) or ``None`` when the frame carries none."""

    sid: int | None
    seq: int | None
    market_ticker: str
    side: str
    price: int
    delta: int
    ts_ns: int | None

    @property
    def type(self) -> str:
        """The wire ``type``: ``"orderbook_delta"``."""
        return "orderbook_delta"


class SnapshotBody(_Body):
    """``orderbook_snapshot.msg``: the whole book of one market; each side a list of
    ``[price, count]`` bids, omitted when that side is empty."""

    market_ticker: TickerStr
    market_id: str | None = None
    yes_dollars_fp: list[tuple[str, str]] | None = None
    no_dollars_fp: list[tuple[str, str]] | None = None
    yes_dollars: list[tuple[str, Union[int, str]]] | None = None  # legacy
    no_dollars: list[tuple[str, Union[int, str]]] | None = None  # legacy
    yes: list[tuple[int, int]] | None = None  # legacy cents
    no: list[tuple[int, int]] | None = None  # legacy cents
    ts_ms: EpochMs | None = None


class OrderbookSnapshot(Frame, tag="orderbook_snapshot"):
    """``orderbook_snapshot`` frame; see :class:`SnapshotBody`."""

    msg: SnapshotBody


# -- ticker / trade (docs/kalshi-api.md §7.6, §7.7) ---------------------------------------------


class TickerBody(_Body):
    """``ticker.msg``: exchange-computed summary; every value optional (``""`` = none)."""

    market_ticker: TickerStr
    market_id: str | None = None
    price_dollars: str | None = None
    yes_bid_dollars: str | None = None
    yes_ask_dollars: str | None = None
    yes_bid_size_fp: str | None = None
    yes_ask_size_fp: str | None = None
    volume_fp: str | None = None
    open_interest_fp: str | None = None
    price: int | None = None  # legacy cents
    yes_bid: int | None = None
    yes_ask: int | None = None
    volume: int | None = None  # legacy contracts
    open_interest: int | None = None
    ts_ms: EpochMs | None = None
    ts: EpochS | str | None = None  # seconds (deprecated)
    time: str | None = None  # RFC3339 (deprecated)


class Ticker(Frame, tag="ticker"):
    """``ticker`` frame (no ``seq``); see :class:`TickerBody`."""

    msg: TickerBody


class TradeBody(_Body):
    """``trade.msg``: one public-tape execution."""

    trade_id: str
    market_ticker: TickerStr
    yes_price_dollars: str | None = None
    no_price_dollars: str | None = None
    count_fp: str | None = None
    yes_price: int | None = None  # legacy cents
    no_price: int | None = None
    count: int | None = None  # legacy contracts
    taker_side: str | None = None
    taker_outcome_side: str | None = None
    taker_book_side: str | None = None
    is_block_trade: bool | None = None
    ts_ms: EpochMs | None = None
    ts: EpochS | str | None = None  # seconds


class Trade(Frame, tag="trade"):
    """``trade`` frame (``seq`` optional); see :class:`TradeBody`."""

    msg: TradeBody


# -- lifecycle, fills (docs/kalshi-api.md §7.9, §7.9b): kept as dicts, they are rare and open ----


class MarketLifecycle(Frame, tag="market_lifecycle_v2"):
    """``market_lifecycle_v2`` frame; ``msg`` is kept whole (its keys vary by ``event_type``:
    created, activated, deactivated, close_date_updated, determined, settled, ...)."""

    msg: dict[str, Any]


class MultivariateMarketLifecycle(Frame, tag="multivariate_market_lifecycle"):
    """``multivariate_market_lifecycle`` frame (combo/MVE markets since 2026-03-19; same
    ``msg`` shape as ``market_lifecycle_v2``, docs/kalshi-api.md §7.4)."""

    msg: dict[str, Any]


class EventFeeUpdate(Frame, tag="event_fee_update"):
    """``event_fee_update`` frame (lifecycle channel): ``msg`` kept whole (``event_ticker``,
    ``fee_type_override``, ``fee_multiplier_override``; docs/kalshi-api.md §7.9)."""

    msg: dict[str, Any]


class EventLifecycle(Frame, tag="event_lifecycle"):
    """``event_lifecycle`` frame; ``msg`` kept whole (``event_ticker``, ``title``, ...)."""

    msg: dict[str, Any]


class Fill(Frame, tag="fill"):
    """``fill`` frame (private); ``msg`` kept whole (``trade_id``, ``order_id``, ...)."""

    msg: dict[str, Any]


# -- control (docs/kalshi-api.md §7.3) ------------------------------------------------------------


class Subscribed(Frame, tag="subscribed"):
    """``subscribed`` ack: ``msg = {"channel": ..., "sid": ...}``."""

    id: CommandId | None = None
    msg: dict[str, Any] | None = None

    @property
    def channel_sid(self) -> tuple[str | None, int | None]:
        """``(channel, sid)`` from the ack (the sid is in ``msg`` for this type)."""
        m = self.msg or {}
        sid = m.get("sid", self.sid)
        return m.get("channel"), sid if type(sid) is int else None


class Ok(Frame, tag="ok"):
    """``ok`` ack (update_subscription / list_subscriptions); consumes ``seq`` when present."""

    id: CommandId | None = None
    msg: Any = None


class Unsubscribed(Frame, tag="unsubscribed"):
    """``unsubscribed`` ack for ``sid`` (carries ``seq``)."""

    id: CommandId | None = None


class ErrorFrame(Frame, tag="error"):
    """``error`` reply: ``msg = {"code": int, "msg": str, "market_ticker"?: str}``."""

    id: CommandId | None = None
    msg: dict[str, Any] | None = None


class Unknown:
    """A well-formed frame of a type this version does not know: ``wire_type`` and the whole
    ``frame`` dict are kept; ``sid``/``seq`` still count for sequencing."""

    __slots__ = ("sid", "seq", "wire_type", "frame")

    def __init__(self, sid: int | None, seq: int | None, wire_type: str, frame: dict) -> None:
        self.sid = sid
        self.seq = seq
        self.wire_type = wire_type
        self.frame = frame

    @property
    def type(self) -> str:
        return "unknown"


#: every frame type msgspec decodes (an ``orderbook_delta`` is decoded by the compiled decoder
#: first, see :func:`decode_json`)
AnyFrame = Union[OrderbookSnapshot, Ticker, Trade, MarketLifecycle,
                 MultivariateMarketLifecycle, EventLifecycle, EventFeeUpdate, Fill, Subscribed,
                 Ok, Unsubscribed, ErrorFrame]
MESSAGE_TYPES = frozenset({"orderbook_delta"} | {
    t.__struct_config__.tag for t in AnyFrame.__args__})  # type: ignore[attr-defined]

_decoder = msgspec.json.Decoder(AnyFrame)


def decode_json(raw: bytes | str) -> Frame | Unknown:
    """Decode one frame's JSON text into its typed struct (or :class:`Unknown`).

    Raises :class:`DecodeError` on invalid JSON, a missing required key or a wrongly typed
    field. An ``orderbook_delta`` comes back as :class:`OrderbookDelta`, already in fixed-point
    units and range-checked; other types keep their numbers as on the wire until a ``*_units``
    helper converts them.
    """
    try:
        d = _decode_delta(raw)
    except ValueError as e:
        reason, sid, seq = e.args
        raise DecodeError(reason, msg_type="orderbook_delta", sid=sid, seq=seq) from None
    if d is not None:
        return _delta_frame(d)
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as e:
        try:
            obj = orjson.loads(raw)
        except (orjson.JSONDecodeError, RecursionError):
            raise DecodeError(f"invalid frame: {e}") from None
        return _classify(obj, e)
    except msgspec.DecodeError as e:
        raise DecodeError(f"invalid JSON: {e}") from None
    except RecursionError:
        raise DecodeError("frame nested too deeply") from None


def decode_frame(obj: Any) -> Frame | Unknown:
    """Decode an already-parsed frame (a dict, e.g. from a recording envelope).

    Same result and errors as :func:`decode_json`.
    """
    if type(obj) is dict and obj.get("type") == "orderbook_delta":
        try:
            text = orjson.dumps(obj)
        except (TypeError, orjson.JSONEncodeError):
            raise DecodeError("orderbook_delta: not a JSON object", msg_type="orderbook_delta",
                              sid=_counter(obj.get("sid")), seq=_counter(obj.get("seq"))) from None
        return decode_json(text)
    try:
        return msgspec.convert(obj, AnyFrame)
    except msgspec.ValidationError as e:
        return _classify(obj, e)
    except RecursionError:
        raise DecodeError("frame nested too deeply") from None


_new = tuple.__new__


def _delta_frame(d: tuple) -> OrderbookDelta:
    """The compiled decoder's tuple as an :class:`OrderbookDelta` (a string ``ts`` parsed)."""
    ts = d[6]
    if type(ts) is str:
        try:
            ts_ns = iso_to_ns(ts)
        except DecodeError as e:
            raise DecodeError(e.reason, msg_type="orderbook_delta", sid=d[0], seq=d[1]) from None
        d = d[:6] + (ts_ns,)
    return _new(OrderbookDelta, d)


def _counter(v: Any) -> int | None:
    """An envelope ``sid``/``seq`` if it is an int in range, else ``None`` (for reports)."""
    return v if type(v) is int and 1 <= v <= MAX_COUNTER else None


def _classify(obj: Any, err: Exception) -> Unknown:
    if type(obj) is not dict:
        raise DecodeError(f"frame is not a JSON object ({type(obj).__name__})")
    t = obj.get("type")
    sid = _counter(obj.get("sid"))
    seq = _counter(obj.get("seq"))
    if not isinstance(t, str) or not t:
        raise DecodeError("frame has no 'type'", sid=sid, seq=seq)
    if t in MESSAGE_TYPES:
        raise DecodeError(f"{t}: {err}", msg_type=t, sid=sid, seq=seq)
    if len(t) > 64 or not t.isprintable():
        raise DecodeError("frame 'type' is not a short printable name", sid=sid, seq=seq)
    for key in ("sid", "seq"):
        v = obj.get(key)
        if v is not None and _counter(v) is None:
            raise DecodeError(f"{t}: {key} {str(v)[:40]!r} is not an integer in "
                              f"[1, 2^63)", msg_type=t, sid=sid, seq=seq)
    return Unknown(sid, seq, t, obj)


_S = 1_000_000_000


def iso_to_ns(text: str) -> int:
    """RFC3339 (``"2026-06-11T06:31:29.957081Z"``) → ns since epoch, UTC; keeps 9 digits.

    Raises :class:`DecodeError` for non-strings, text over 40 characters, no timezone, or a
    time outside 2000-01-01 … 2100-01-01."""
    if not isinstance(text, str) or not text:
        raise DecodeError(f"timestamp {str(text)[:40]!r} is not an RFC3339 string")
    if len(text) > _MAX_TS_TEXT:
        raise DecodeError(f"timestamp text is {len(text)} characters long (at most "
                          f"{_MAX_TS_TEXT})")
    t = text[:-1] + "+00:00" if text.endswith("Z") else text
    frac_ns = 0
    dot = t.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(t) and "0" <= t[end] <= "9":
            end += 1
        digits = t[dot + 1:end]
        frac_ns = int(digits.ljust(9, "0")[:9]) if digits else 0
        t = t[:dot] + t[end:]
    if "," in t:
        raise DecodeError(f"timestamp {text!r}: use '.' as the decimal separator")
    try:
        dt = datetime.fromisoformat(t)
        if dt.tzinfo is None:
            raise DecodeError(f"timestamp {text!r} has no timezone")
        ns = int(dt.timestamp()) * _S + frac_ns
    except (ValueError, OverflowError) as e:
        if isinstance(e, DecodeError):
            raise
        raise DecodeError(f"timestamp {text!r}: {e}") from None
    if not MIN_EPOCH_NS <= ns < MAX_EPOCH_NS:
        raise DecodeError(f"timestamp {text!r} outside 2000..2100")
    return ns


__all__ = [
    "DecodeError", "Frame", "AnyFrame", "MESSAGE_TYPES",
    "OrderbookDelta", "SnapshotBody", "OrderbookSnapshot",
    "TickerBody", "Ticker", "TradeBody", "Trade", "MarketLifecycle",
    "MultivariateMarketLifecycle", "EventLifecycle", "EventFeeUpdate", "Fill",
    "Subscribed", "Ok", "Unsubscribed", "ErrorFrame", "Unknown",
    "decode_json", "decode_frame", "iso_to_ns", "MAX_COUNTER", "MIN_EPOCH_S", "MAX_EPOCH_S",
]
