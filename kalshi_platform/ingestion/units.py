"""Wire values → the plant's fixed-point units, with every value range-checked.

Prices become integer micro-dollars, sizes integer centi-contracts and times integer ns since
the epoch, UTC (:mod:`kalshi_platform.fixedpoint`); when both wire eras are present the
fixed-point string wins (it carries sub-cent prices). Every helper raises
:class:`~kalshi_platform.ingestion.messages.DecodeError` for bad text or a value out of its
documented range, and the plant turns that into a quarantine record: nothing out of range
reaches a book, an event or a sink. ``orderbook_delta`` frames are checked to the same ranges
by the compiled delta decoder (:mod:`kalshi_platform.ingestion._delta`), not here. Sources: docs/kalshi-api.md §5 (fixed-point strings), §7.5-§7.9b
(message fields); docs/plant-contract.md (the ranges).
"""

from __future__ import annotations

import re
from typing import Any

from kalshi_platform.fixedpoint import (
    MAX_SIZE,
    ONE_DOLLAR,
    FixedPointError,
    cents_to_price,
    contracts_to_size,
    parse_price,
    parse_size,
)
from kalshi_platform.ingestion.messages import (
    MAX_EPOCH_NS,
    MAX_EPOCH_S,
    MIN_EPOCH_NS,
    MIN_EPOCH_S,
    DecodeError,
    SnapshotBody,
    TickerBody,
    TradeBody,
    iso_to_ns,
)

__all__ = ["MIN_EPOCH_NS", "MAX_EPOCH_NS", "ts_units", "snapshot_units",
           "ticker_units", "trade_units", "lifecycle_units", "fill_units"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Ranges (docs/plant-contract.md), checked here so nothing out of range reaches a book, an
# event or a sink:
#   book and trade prices            0 < p < $1 (exclusive: a level at $0 or $1 cannot exist)
#   ticker quotes, settlement value  0 <= p <= $1 (Kalshi sends "0.0000" / cents 0 for "no
#                                    bid" and 100 for "no ask"; kept as sent)
#   level sizes, trade/fill counts   0 < n <= 10^10 contracts
#   deltas                           0 < |n| <= 10^10 contracts
#   volume, open interest, ticker sizes  0 <= n <= 10^10 contracts
#   fill post_position               |n| <= 10^10 contracts;  fee_cost 0 <= fee <= $10^10
#   event times                      2000-01-01 <= t < 2100-01-01 (UTC)

_MS = 1_000_000
_S = 1_000_000_000
_MAX_FEE = 10**10 * ONE_DOLLAR


def ts_units(ts_ms: int | None, ts: int | str | None = None) -> int | None:
    """Event time in ns: ``ts_ms`` (ms) if present, else ``ts`` as int seconds or RFC3339.

    Raises :class:`DecodeError` for a wrong type or a time outside 2000 … 2100."""
    if ts_ms is not None:
        if type(ts_ms) is not int or not MIN_EPOCH_S * 1000 <= ts_ms < MAX_EPOCH_S * 1000:
            raise DecodeError(f"ts_ms {str(ts_ms)[:40]!r} is not a Unix time in ms "
                              "(2000..2100)")
        return ts_ms * _MS
    if ts is None:
        return None
    if type(ts) is int:
        if not MIN_EPOCH_S <= ts < MAX_EPOCH_S:
            raise DecodeError(f"ts {str(ts)[:40]} outside 2000..2100")
        return ts * _S
    return iso_to_ns(ts)  # type: ignore[arg-type]


def _show(v: Any) -> str:
    """A wire value for an error message, cut to 40 characters."""
    return repr(v if not isinstance(v, (str, int)) or len(str(v)) <= 40 else str(v)[:40] + "…")


def _wire(text: Any, legacy: Any, what: str, required: bool, parse: Any,
          from_legacy: Any) -> int | None:
    """A fixed-point wire value: the string form (``""`` means "none", docs/kalshi-api.md §5: an
    empty ``price_dollars`` on a market without trades; it never falls back to the legacy
    field), else the legacy integer; ``None`` when neither is sent and not ``required``."""
    if text == "":
        if required:
            raise DecodeError(f"{what} is an empty string")
        return None
    try:
        if text is not None:
            return parse(text)
        if legacy is not None:
            return from_legacy(legacy)
    except FixedPointError as e:
        raise DecodeError(f"{what}: {e}") from None
    if required:
        raise DecodeError(f"{what} missing")
    return None


def _price(dollars: Any, cents: Any, what: str, required: bool,
           lo: int = 1, hi: int = ONE_DOLLAR - 1) -> int | None:
    """A price in µ$ within [lo, hi] (default: the open interval (0, 1) dollars)."""
    v = _wire(dollars, cents, what, required, parse_price, cents_to_price)
    if v is not None and not lo <= v <= hi:
        raise DecodeError(f"{what} {_show(dollars if dollars is not None else cents)} outside "
                          f"[{lo / ONE_DOLLAR:g}, {hi / ONE_DOLLAR:g}] dollars")
    return v


def _size(fp: Any, count: Any, what: str, required: bool, lo: int = 1,
          hi: int = MAX_SIZE, nonzero: bool = False) -> int | None:
    """A size in c-contracts within [lo, hi] (default (0, 10^10] contracts); ``nonzero``
    also rejects 0 (signed deltas: lo = -hi)."""
    v = _wire(fp, count, what, required, parse_size, contracts_to_size)
    if v is not None and (not lo <= v <= hi or (nonzero and v == 0)):
        raise DecodeError(f"{what} {_show(fp if fp is not None else count)} outside "
                          f"[{lo / 100:g}, {hi / 100:g}] contracts"
                          + (" or zero" if nonzero else ""))
    return v


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
        if not 0 < p < ONE_DOLLAR or not 0 < q <= MAX_SIZE:
            raise DecodeError(f"orderbook_snapshot {side} level price {_show(p)} µ$ size "
                              f"{_show(q)} c-contracts outside (0, 1) $ / (0, 10^10] contracts")
    if len({p for p, _ in out}) != len(out):
        raise DecodeError(f"orderbook_snapshot {side} side lists a price level twice")
    return out


def snapshot_units(m: SnapshotBody) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(yes, no)`` bid levels as ``(price µ$, size c-contracts)``; a missing side is ``[]``.

    Raises :class:`DecodeError` on a bad level (price outside (0, 1) $, size outside
    (0, 10^10] contracts) or a price listed twice on one side (the same rule as the REST
    order book, :func:`kalshi_platform.api.models`)."""
    return (_levels(m.yes_dollars_fp, m.yes_dollars, m.yes, "yes"),
            _levels(m.no_dollars_fp, m.no_dollars, m.no, "no"))


def ticker_units(m: TickerBody) -> tuple:
    """``(price, yes_bid, yes_ask, yes_bid_size, yes_ask_size, volume, open_interest, ts_ns)``
    in µ$ / c-contracts / ns, each ``None`` when not sent. Prices in [0, 1] dollars (0 and 1
    mean "none" on Kalshi's ticker), sizes in [0, 10^10] contracts. Raises
    :class:`DecodeError`."""
    ts_ns = ts_units(m.ts_ms, m.ts)
    if ts_ns is None and m.time is not None:
        ts_ns = iso_to_ns(m.time)
    return (
        _price(m.price_dollars, m.price, "price_dollars", False, 0, ONE_DOLLAR),
        _price(m.yes_bid_dollars, m.yes_bid, "yes_bid_dollars", False, 0, ONE_DOLLAR),
        _price(m.yes_ask_dollars, m.yes_ask, "yes_ask_dollars", False, 0, ONE_DOLLAR),
        _size(m.yes_bid_size_fp, None, "yes_bid_size_fp", False, lo=0),
        _size(m.yes_ask_size_fp, None, "yes_ask_size_fp", False, lo=0),
        _size(m.volume_fp, m.volume, "volume_fp", False, lo=0),
        _size(m.open_interest_fp, m.open_interest, "open_interest_fp", False, lo=0),
        ts_ns,
    )


def _taker(side: Any) -> str | None:
    if side is None or side == "yes" or side == "no":
        return side
    raise DecodeError(f"taker side must be 'yes' or 'no', got {_show(side)}")


def _uuid(v: Any, key: str, what: str) -> str:
    if not isinstance(v, str) or _UUID.fullmatch(v) is None:
        raise DecodeError(f"{what}: {key} {_show(v)} is not a UUID")
    return v


def trade_units(m: TradeBody) -> tuple:
    """``(yes_price µ$, no_price µ$, count c-contracts, taker_side, ts_ns)``; ``no_price`` is
    1 − yes when not sent (and must equal it when sent); ``taker_side`` prefers
    ``taker_outcome_side``. Prices in (0, 1) $, count in (0, 10^10] contracts, ``trade_id`` a
    UUID (docs/kalshi-api.md §7.7). Raises :class:`DecodeError`."""
    yes = _price(m.yes_price_dollars, m.yes_price, "yes_price_dollars", True)
    no = _price(m.no_price_dollars, m.no_price, "no_price_dollars", False)
    if no is None:
        no = ONE_DOLLAR - yes  # type: ignore[operator]
    elif no + yes != ONE_DOLLAR:  # type: ignore[operator]
        raise DecodeError("trade: yes_price + no_price is not $1")
    count = _size(m.count_fp, m.count, "count_fp", True)
    _uuid(m.trade_id, "trade_id", "trade")
    taker = _taker(m.taker_outcome_side or m.taker_side)
    return yes, no, count, taker, ts_units(m.ts_ms, m.ts)


_LIFECYCLE_TS = {"determined": "determination_ts", "settled": "settled_ts"}


def _str_field(m: dict, key: str, what: str, limit: int = 128) -> str:
    v = m.get(key)
    if not isinstance(v, str) or not v or len(v) > limit:
        raise DecodeError(f"{what}: {key} must be a string of 1..{limit} characters, "
                          f"got {_show(v)}")
    return v


def _int_field(m: dict, key: str) -> int | None:
    v = m.get(key)
    if v is None:
        return None
    if type(v) is not int:
        raise DecodeError(f"{key} must be an integer, got {_show(v)}")
    return v


def lifecycle_units(m: dict) -> tuple[str, str, str | None, int | None, int | None]:
    """``(ticker, event_type, result, settlement_value µ$, ts_ns)`` of a
    ``market_lifecycle_v2`` msg; ``ts_ns`` from ``ts_ms``, ``determination_ts`` or
    ``settled_ts`` (else ``None``), within 2000 … 2100; ``settlement_value`` in [0, 1] $.
    Raises :class:`DecodeError`."""
    ticker = _str_field(m, "market_ticker", "market_lifecycle_v2")
    event_type = _str_field(m, "event_type", "market_lifecycle_v2", 64)
    ts_ns = ts_units(_int_field(m, "ts_ms"))
    if ts_ns is None:
        key = _LIFECYCLE_TS.get(event_type)
        if key is not None:
            ts_ns = ts_units(None, _int_field(m, key))
    sv = m.get("settlement_value")
    if sv is not None and type(sv) is not str and type(sv) is not int:  # bools too
        raise DecodeError(f"settlement_value must be a dollar string, got {_show(sv)}")
    value = None if sv is None else _price(sv if type(sv) is str else None,
                                           sv if type(sv) is int else None,
                                           "settlement_value", False, 0, ONE_DOLLAR)
    result = m.get("result")
    if result is not None and (not isinstance(result, str) or len(result) > 16):
        raise DecodeError(f"result must be a short string, got {_show(result)}")
    return ticker, event_type, result, value, ts_ns


def fill_units(m: dict) -> tuple:
    """``(ticker, trade_id, order_id, side, action, is_taker, yes_price µ$, count c-contracts,
    fee_cost µ$, post_position c-contracts, ts_ns)`` of a ``fill`` msg (docs/kalshi-api.md §7.9b).
    Price in (0, 1) $, count in (0, 10^10], post_position within ±10^10 contracts, fee_cost in
    [0, 10^10] $, ids UUIDs. Raises :class:`DecodeError`."""
    ticker = _str_field(m, "market_ticker", "fill")
    trade_id = _uuid(m.get("trade_id"), "trade_id", "fill")
    order_id = _uuid(m.get("order_id"), "order_id", "fill")
    yes = _price(m.get("yes_price_dollars"), m.get("yes_price"), "yes_price_dollars", True)
    count = _size(m.get("count_fp"), m.get("count"), "count_fp", True)
    post = _size(m.get("post_position_fp"), m.get("post_position"), "post_position_fp", False,
                 lo=-MAX_SIZE)
    fee = m.get("fee_cost")
    if fee is not None and type(fee) is not str:
        raise DecodeError(f"fill: fee_cost must be a dollar string, got {_show(fee)}")
    fee_cost = _price(fee, None, "fee_cost", False, 0, _MAX_FEE)
    ts_ns = ts_units(_int_field(m, "ts_ms"), m.get("ts"))
    side = m.get("outcome_side") or m.get("side")
    action = m.get("action")
    if side is not None and side not in ("yes", "no"):
        raise DecodeError(f"fill: side must be 'yes' or 'no', got {_show(side)}")
    if action is not None and action not in ("buy", "sell"):
        raise DecodeError(f"fill: action must be 'buy' or 'sell', got {_show(action)}")
    is_taker = m.get("is_taker")
    return (ticker, trade_id, order_id, side, action,
            is_taker if isinstance(is_taker, bool) else None, yes, count, fee_cost, post, ts_ns)
