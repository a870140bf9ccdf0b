"""Kalshi WebSocket v2 frames → typed messages.

Source: kalshi-api.md §7 (AsyncAPI 2026-05 plus later changes) and the real captures in
``shared/data/real/kalshi/ws``.

Each frame type is a :class:`msgspec.Struct` whose fields mirror the wire exactly (so a reader
of Kalshi's docs recognises them), decoded straight from the frame's bytes by msgspec — the
decoder is the plant's bottleneck (field-notes "Performance"), and msgspec's typed decoding
skips the intermediate dict. Both wire eras share one struct per type:

* current (since 2026-03-12): fixed-point strings ``*_dollars`` (prices) and ``*_fp`` (counts),
  snapshots as ``yes_dollars_fp`` / ``no_dollars_fp``, deltas as ``price_dollars`` + ``delta_fp``;
* legacy (before 2026-03-12): integer cents (``price``, ``yes_bid``) and integer counts
  (``count``, ``delta``), snapshots as ``yes``/``no`` (``[[cents, count]]``) or
  ``yes_dollars``/``no_dollars`` (``[["0.080", 300]]``).

The ``*_units`` helpers below turn wire values into the plant's fixed-point integers (prices in
micro-dollars, sizes in centi-contracts, times in ns UTC; :mod:`kalshi_platform.fixedpoint`);
when both eras are present the fixed-point string wins (it carries sub-cent prices).

Unknown message types decode to :class:`Unknown`; unknown fields are ignored. A frame that is
not JSON, lacks a required key or has a wrongly typed field raises :class:`DecodeError`, and so
do the ``*_units`` helpers for bad numbers (``""`` where a price is required, ``"abc"``); the
plant turns either into a quarantine record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Union

import msgspec
import orjson

from kalshi_platform.fixedpoint import (
    ONE_DOLLAR,
    FixedPointError,
    cents_to_price,
    contracts_to_size,
    parse_price,
    parse_size,
)


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


class RawNeeded(Exception):
    """Raised by the plant instead of quarantining when a frame was handed over with
    ``raw=NEED_RAW``: the caller (a fast bulk decoder that did not keep each line) must hand
    the same frame again with its exact source text. Raised before any state changes."""


#: placeholder for ``raw`` meaning "the caller can supply the exact text on request"
NEED_RAW = object()


#: an envelope counter (sid, seq, id): non-negative and within a signed 64-bit column
Counter64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
#: a Unix time in ms between 1970 and 2100 (anything else is a corrupt frame)
EpochMs = Annotated[int, msgspec.Meta(ge=0, lt=4_102_444_800_000)]
#: a Unix time in s between 1970 and 2100
EpochS = Annotated[int, msgspec.Meta(ge=0, lt=4_102_444_800)]
_MAX_EPOCH_NS = 4_102_444_800_000_000_000


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


# -- order book (kalshi-api.md §7.5) --------------------------------------------------------


class DeltaBody(_Body):
    """``orderbook_delta.msg``: signed change at one price level of one side's bid ladder."""

    market_ticker: str
    side: str  # "yes" | "no"
    price_dollars: str | None = None
    delta_fp: str | None = None
    price: int | None = None  # legacy integer cents
    delta: int | None = None  # legacy integer contracts
    ts_ms: EpochMs | None = None
    ts: str | EpochS | None = None  # RFC3339 (deprecated)
    market_id: str | None = None
    client_order_id: str | None = None
    subaccount: int | None = None


class OrderbookDelta(Frame, tag="orderbook_delta"):
    """``orderbook_delta`` frame; see :class:`DeltaBody`."""

    msg: DeltaBody


class SnapshotBody(_Body):
    """``orderbook_snapshot.msg``: the whole book of one market; each side a list of
    ``[price, count]`` bids, omitted when that side is empty."""

    market_ticker: str
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


# -- ticker / trade (kalshi-api.md §7.6, §7.7) ---------------------------------------------


class TickerBody(_Body):
    """``ticker.msg``: exchange-computed summary; every value optional (``""`` = none)."""

    market_ticker: str
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
    market_ticker: str
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


# -- lifecycle, fills (kalshi-api.md §7.9, §7.9b): kept as dicts, they are rare and open ----


class MarketLifecycle(Frame, tag="market_lifecycle_v2"):
    """``market_lifecycle_v2`` frame; ``msg`` is kept whole (its keys vary by ``event_type``:
    created, activated, deactivated, close_date_updated, determined, settled, ...)."""

    msg: dict[str, Any]


class MultivariateMarketLifecycle(Frame, tag="multivariate_market_lifecycle"):
    """``multivariate_market_lifecycle`` frame (combo/MVE markets since 2026-03-19; same
    ``msg`` shape as ``market_lifecycle_v2``, kalshi-api.md §7.4)."""

    msg: dict[str, Any]


class EventFeeUpdate(Frame, tag="event_fee_update"):
    """``event_fee_update`` frame (lifecycle channel): ``msg`` kept whole (``event_ticker``,
    ``fee_type_override``, ``fee_multiplier_override``; kalshi-api.md §7.9)."""

    msg: dict[str, Any]


class EventLifecycle(Frame, tag="event_lifecycle"):
    """``event_lifecycle`` frame; ``msg`` kept whole (``event_ticker``, ``title``, ...)."""

    msg: dict[str, Any]


class Fill(Frame, tag="fill"):
    """``fill`` frame (private); ``msg`` kept whole (``trade_id``, ``order_id``, ...)."""

    msg: dict[str, Any]


# -- control (kalshi-api.md §7.3) ------------------------------------------------------------


class Subscribed(Frame, tag="subscribed"):
    """``subscribed`` ack: ``msg = {"channel": ..., "sid": ...}``."""

    id: int | None = None
    msg: dict[str, Any] | None = None

    @property
    def channel_sid(self) -> tuple[str | None, int | None]:
        """``(channel, sid)`` from the ack (the sid is in ``msg`` for this type)."""
        m = self.msg or {}
        sid = m.get("sid", self.sid)
        return m.get("channel"), sid if type(sid) is int else None


class Ok(Frame, tag="ok"):
    """``ok`` ack (update_subscription / list_subscriptions); consumes ``seq`` when present."""

    id: int | None = None
    msg: Any = None


class Unsubscribed(Frame, tag="unsubscribed"):
    """``unsubscribed`` ack for ``sid`` (carries ``seq``)."""

    id: int | None = None


class ErrorFrame(Frame, tag="error"):
    """``error`` reply: ``msg = {"code": int, "msg": str, "market_ticker"?: str}``."""

    id: int | None = None
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


AnyFrame = Union[OrderbookDelta, OrderbookSnapshot, Ticker, Trade, MarketLifecycle,
                 MultivariateMarketLifecycle, EventLifecycle, EventFeeUpdate, Fill, Subscribed,
                 Ok, Unsubscribed, ErrorFrame]
MESSAGE_TYPES = frozenset(t.__struct_config__.tag for t in AnyFrame.__args__)  # type: ignore[attr-defined]

_decoder = msgspec.json.Decoder(AnyFrame)


def decode_json(raw: bytes | str) -> Frame | Unknown:
    """Decode one frame's JSON text into its typed struct (or :class:`Unknown`).

    Raises :class:`DecodeError` on invalid JSON, a missing required key or a wrongly typed
    field. Numbers stay as on the wire until a ``*_units`` helper converts them.
    """
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
    try:
        return msgspec.convert(obj, AnyFrame)
    except msgspec.ValidationError as e:
        return _classify(obj, e)
    except RecursionError:
        raise DecodeError("frame nested too deeply") from None


def _classify(obj: Any, err: Exception) -> Unknown:
    if type(obj) is not dict:
        raise DecodeError(f"frame is not a JSON object ({type(obj).__name__})")
    t = obj.get("type")
    sid = obj.get("sid")
    seq = obj.get("seq")
    sid = sid if type(sid) is int else None
    seq = seq if type(seq) is int else None
    if isinstance(t, str) and t and t not in MESSAGE_TYPES:
        return Unknown(sid, seq, t, obj)
    if not isinstance(t, str) or not t:
        raise DecodeError("frame has no 'type'", sid=sid, seq=seq)
    raise DecodeError(f"{t}: {err}", msg_type=t, sid=sid, seq=seq)


# ---------------------------------------------------------------------------------------------
# wire values → fixed-point units. All raise DecodeError on bad input.

_MS = 1_000_000
_S = 1_000_000_000


def iso_to_ns(text: str) -> int:
    """RFC3339 (``"2026-06-11T06:31:29.957081Z"``) → ns since epoch, UTC; keeps 9 digits."""
    if not isinstance(text, str) or not text:
        raise DecodeError(f"timestamp {text!r} is not an RFC3339 string")
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
    if not 0 <= ns < _MAX_EPOCH_NS:
        raise DecodeError(f"timestamp {text!r} outside 1970..2100")
    return ns


def ts_units(ts_ms: int | None, ts: int | str | None = None) -> int | None:
    """Event time in ns: ``ts_ms`` (ms) if present, else ``ts`` as int seconds or RFC3339."""
    if ts_ms is not None:
        if type(ts_ms) is not int or not 0 <= ts_ms < _MAX_EPOCH_NS // _MS:
            raise DecodeError(f"ts_ms {ts_ms!r} is not a Unix time in ms (1970..2100)")
        return ts_ms * _MS
    if ts is None:
        return None
    if type(ts) is int:
        if not 0 <= ts < _MAX_EPOCH_NS // _S:
            raise DecodeError(f"ts {ts} outside 1970..2100")
        return ts * _S
    return iso_to_ns(ts)  # type: ignore[arg-type]


def _price(dollars: str | None, cents: int | None, what: str, required: bool,
           lo: int = 0, hi: int = ONE_DOLLAR) -> int | None:
    """A price in µ$ within [lo, hi]; ``""`` means "none" (kalshi-api.md §5: an empty
    ``price_dollars`` on a market without trades) and does not fall back to legacy cents."""
    if dollars == "":
        if required:
            raise DecodeError(f"{what} is an empty string")
        return None
    try:
        if dollars is not None:
            v = parse_price(dollars)
        elif cents is not None:
            v = cents_to_price(cents)
        elif required:
            raise DecodeError(f"{what} missing")
        else:
            return None
    except FixedPointError as e:
        raise DecodeError(f"{what}: {e}") from None
    if not lo <= v <= hi:
        raise DecodeError(f"{what} {dollars if dollars is not None else cents!r} outside "
                          f"[{lo / ONE_DOLLAR:g}, {hi / ONE_DOLLAR:g}] dollars")
    return v


def _size(fp: str | None, count: int | None, what: str, required: bool,
          signed: bool = False) -> int | None:
    """A size in c-contracts (``""`` = none); negative only when ``signed`` (deltas)."""
    if fp == "":
        if required:
            raise DecodeError(f"{what} is an empty string")
        return None
    try:
        if fp is not None:
            v = parse_size(fp)
        elif count is not None:
            v = contracts_to_size(count)
        elif required:
            raise DecodeError(f"{what} missing")
        else:
            return None
    except FixedPointError as e:
        raise DecodeError(f"{what}: {e}") from None
    if v < 0 and not signed:
        raise DecodeError(f"{what} {fp if fp is not None else count!r} is negative")
    return v


def delta_units(m: DeltaBody) -> tuple[str, int, int, int | None]:
    """``(side, price µ$, delta c-contracts, ts_ns | None)`` of a delta; side on the wire's
    scale (see ``use_yes_price``). Raises :class:`DecodeError`."""
    side = m.side
    if side != "yes" and side != "no":
        raise DecodeError(f"orderbook_delta side must be 'yes' or 'no', got {side!r}")
    price = _price(m.price_dollars, m.price, "price_dollars", True, 1, ONE_DOLLAR - 1)
    delta = _size(m.delta_fp, m.delta, "delta_fp", True, signed=True)
    return side, price, delta, ts_units(m.ts_ms, m.ts)  # type: ignore[return-value]


def _levels(fp, legacy_dollars, legacy_cents, side: str) -> list[tuple[int, int]]:
    try:
        if fp is not None:
            out = [(parse_price(p), parse_size(q)) for p, q in fp]
        elif legacy_dollars is not None:
            out = [(parse_price(p), contracts_to_size(q) if type(q) is int else parse_size(q))
                   for p, q in legacy_dollars]
        elif legacy_cents is not None:
            out = [(cents_to_price(p), contracts_to_size(q)) for p, q in legacy_cents]
        else:
            return []
    except FixedPointError as e:
        raise DecodeError(f"orderbook_snapshot {side} level: {e}") from None
    for p, q in out:
        if not 0 < p < ONE_DOLLAR or q < 0:
            raise DecodeError(f"orderbook_snapshot {side} level price {p / ONE_DOLLAR:g} $ "
                              f"size {q / 100:g} out of range")
    return out


def snapshot_units(m: SnapshotBody) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(yes, no)`` bid levels as ``(price µ$, size c-contracts)``; a missing side is ``[]``.
    Raises :class:`DecodeError` on a bad level."""
    return (_levels(m.yes_dollars_fp, m.yes_dollars, m.yes, "yes"),
            _levels(m.no_dollars_fp, m.no_dollars, m.no, "no"))


def ticker_units(m: TickerBody) -> tuple:
    """``(price, yes_bid, yes_ask, yes_bid_size, yes_ask_size, volume, open_interest, ts_ns)``
    in µ$ / c-contracts / ns, each ``None`` when not sent. Raises :class:`DecodeError`."""
    ts_ns = ts_units(m.ts_ms, m.ts)
    if ts_ns is None and m.time is not None:
        ts_ns = iso_to_ns(m.time)
    return (
        _price(m.price_dollars, m.price, "price_dollars", False),
        _price(m.yes_bid_dollars, m.yes_bid, "yes_bid_dollars", False),
        _price(m.yes_ask_dollars, m.yes_ask, "yes_ask_dollars", False),
        _size(m.yes_bid_size_fp, None, "yes_bid_size_fp", False),
        _size(m.yes_ask_size_fp, None, "yes_ask_size_fp", False),
        _size(m.volume_fp, m.volume, "volume_fp", False),
        _size(m.open_interest_fp, m.open_interest, "open_interest_fp", False),
        ts_ns,
    )


def trade_units(m: TradeBody) -> tuple:
    """``(yes_price µ$, no_price µ$, count c-contracts, taker_side, ts_ns)``; ``no_price`` is
    1 − yes when not sent; ``taker_side`` prefers ``taker_outcome_side``."""
    yes = _price(m.yes_price_dollars, m.yes_price, "yes_price_dollars", True)
    no = _price(m.no_price_dollars, m.no_price, "no_price_dollars", False)
    if no is None:
        no = ONE_DOLLAR - yes  # type: ignore[operator]
    count = _size(m.count_fp, m.count, "count_fp", True)
    if not m.trade_id:
        raise DecodeError("trade_id is empty")
    return yes, no, count, m.taker_outcome_side or m.taker_side, ts_units(m.ts_ms, m.ts)


_LIFECYCLE_TS = {"determined": "determination_ts", "settled": "settled_ts"}


def _str_field(m: dict, key: str, what: str) -> str:
    v = m.get(key)
    if not isinstance(v, str) or not v:
        raise DecodeError(f"{what}: {key} must be a non-empty string, got {v!r}")
    return v


def _int_field(m: dict, key: str) -> int | None:
    v = m.get(key)
    if v is None:
        return None
    if type(v) is not int:
        raise DecodeError(f"{key} must be an integer, got {v!r}")
    return v


def lifecycle_units(m: dict) -> tuple[str, str, str | None, int | None, int | None]:
    """``(ticker, event_type, result, settlement_value µ$, ts_ns)`` of a
    ``market_lifecycle_v2`` msg; ``ts_ns`` from ``ts_ms``, ``determination_ts`` or
    ``settled_ts`` (else ``None``). Raises :class:`DecodeError`."""
    ticker = _str_field(m, "market_ticker", "market_lifecycle_v2")
    event_type = _str_field(m, "event_type", "market_lifecycle_v2")
    ts_ms = _int_field(m, "ts_ms")
    ts_ns = ts_ms * _MS if ts_ms is not None else None
    if ts_ns is None:
        key = _LIFECYCLE_TS.get(event_type)
        if key is not None:
            s = _int_field(m, key)
            ts_ns = s * _S if s is not None else None
    sv = m.get("settlement_value")
    if sv is not None and not isinstance(sv, (str, int)):
        raise DecodeError(f"settlement_value must be a dollar string, got {sv!r}")
    try:
        if sv is None or sv == "":
            value = None
        elif type(sv) is int:
            value = cents_to_price(sv)
        else:
            value = parse_price(sv)
    except FixedPointError as e:
        raise DecodeError(f"settlement_value: {e}") from None
    result = m.get("result")
    return ticker, event_type, result if isinstance(result, str) else None, value, ts_ns


def fill_units(m: dict) -> tuple:
    """``(ticker, trade_id, order_id, side, action, is_taker, yes_price µ$, count c-contracts,
    fee_cost µ$, post_position c-contracts, ts_ns)`` of a ``fill`` msg."""
    ticker = _str_field(m, "market_ticker", "fill")
    trade_id = _str_field(m, "trade_id", "fill")
    order_id = _str_field(m, "order_id", "fill")
    yd, yc = m.get("yes_price_dollars"), m.get("yes_price")
    cf, cc = m.get("count_fp"), m.get("count")
    pf, pc = m.get("post_position_fp"), m.get("post_position")
    fee = m.get("fee_cost")
    try:
        yes = _price(yd, yc, "yes_price_dollars", True)
        count = _size(cf, cc, "count_fp", True)
        post = _size(pf, pc, "post_position_fp", False)
        fee_cost = parse_price(fee) if isinstance(fee, str) and fee else None
        ts_ns = ts_units(_int_field(m, "ts_ms"), m.get("ts"))
    except (FixedPointError, TypeError, OverflowError) as e:
        raise DecodeError(f"fill: {e}") from None
    is_taker = m.get("is_taker")
    return (ticker, trade_id, order_id, m.get("outcome_side") or m.get("side"), m.get("action"),
            is_taker if isinstance(is_taker, bool) else None, yes, count, fee_cost, post, ts_ns)


__all__ = [
    "DecodeError", "RawNeeded", "NEED_RAW", "Frame", "AnyFrame", "MESSAGE_TYPES",
    "DeltaBody", "OrderbookDelta", "SnapshotBody", "OrderbookSnapshot",
    "TickerBody", "Ticker", "TradeBody", "Trade", "MarketLifecycle",
    "MultivariateMarketLifecycle", "EventLifecycle", "EventFeeUpdate", "Fill",
    "Subscribed", "Ok", "Unsubscribed", "ErrorFrame", "Unknown",
    "decode_json", "decode_frame", "iso_to_ns", "ts_units",
    "delta_units", "snapshot_units", "ticker_units", "trade_units", "lifecycle_units",
    "fill_units",
]
