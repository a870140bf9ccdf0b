"""Candlesticks computed from what the sim has: the recorded trades and book (BBO) history.

Kalshi's candlestick endpoints (docs/kalshi-api.md §3.8): a candle with ``end_period_ts`` E
covers the period ``(E − p, E]`` for ``p`` = ``period_interval`` minutes (1, 60 or 1440), and
period ends are multiples of ``p`` (Unix seconds), as in the recorded responses
(``data/rest/cockpit_prod/candlesticks_pregame_mlb.json``). Like those, only periods with
activity get a candle (Kalshi's recorded 1-minute series skips minutes); here activity is a
trade or a book change.

* ``yes_bid`` / ``yes_ask``: open = the BBO in force when the period began (the first in-period
  value when none was), high/low over the period, close = the last value. An empty bid side is
  ``0.0000``, an empty ask side ``1.0000`` (how Kalshi renders an empty book); a market the
  recording has no book for renders that empty book throughout.
* ``price``: OHLC of the trades in the period, ``mean`` = volume-weighted mean (µ$, rounded
  down), ``previous`` = the close of the last earlier period with trades; all ``None`` when the
  period had no trade (``previous`` is kept).
* ``volume_fp``: contracts traded in the period. ``open_interest_fp``: the sim does not know
  open interest from trades and books, so it is ``"0.00"``.

Prices are integer micro-dollars throughout (:mod:`kalshi_platform.fixedpoint`); sizes integer
centi-contracts.
"""

from __future__ import annotations

from typing import Any, Iterable

from kalshi_platform.fixedpoint import ONE_DOLLAR, FixedPointError, parse_price, parse_size
from kalshi_platform.fixedpoint import price_to_str, size_to_str

PERIODS = (1, 60, 1440)


class CandleError(ValueError):
    """Bad candlestick parameters (message is one line)."""


def _end_of(t: int, p: int) -> int:
    return -(-t // p) * p


def _trade_points(trades: Iterable[Any]) -> list[tuple[int, int, int]]:
    """``(created_s, yes_price µ$, count c-contracts)`` of REST trade records, ascending."""
    out = []
    for r in trades:
        o = r.obj
        try:
            out.append((r.created_ns // 1_000_000_000, parse_price(o["yes_price_dollars"]),
                        parse_size(o["count_fp"])))
        except (KeyError, TypeError, FixedPointError):
            continue
    out.sort()
    return out


def _ohlc(values: list[int]) -> tuple[int, int, int, int]:
    return values[0], max(values), min(values), values[-1]


def compute(trades: Iterable[Any], bbo: list[tuple[int, int | None, int | None]], *,
            start_ts: int, end_ts: int, period_interval: int,
            include_latest_before_start: bool = False) -> list[dict[str, Any]]:
    """Live-shape candles (``*_dollars``, ``volume_fp``; SDK ``MarketCandlestick``) whose
    ``end_period_ts`` lies in ``[start_ts, end_ts]``, ascending.

    ``trades``: :class:`~kalshi_platform.sim.market_data.TradeRecord` of one market (any
    order); ``bbo``: ``[(unix_s, yes_bid µ$|None, yes_ask µ$|None)]`` ascending. Raises
    :class:`CandleError` for a period other than 1/60/1440 or ``end_ts < start_ts``.
    """
    if period_interval not in PERIODS:
        raise CandleError("period_interval must be 1, 60 or 1440 (minutes)")
    if end_ts < start_ts:
        raise CandleError("end_ts must not be before start_ts")
    p = period_interval * 60
    tp = _trade_points(trades)
    ends = sorted({_end_of(t, p) for t, _, _ in tp} | {_end_of(t, p) for t, _, _ in bbo})
    candles: list[dict[str, Any]] = []
    ti = bi = 0
    bid = ask = None  # BBO in force (µ$), None before the first book frame
    prev_close: int | None = None
    for e in ends:
        period_trades = []
        while ti < len(tp) and tp[ti][0] <= e:
            period_trades.append(tp[ti])
            ti += 1
        bids = [0 if bid is None else bid] if bi else []
        asks = [ONE_DOLLAR if ask is None else ask] if bi else []
        while bi < len(bbo) and bbo[bi][0] <= e:
            _, bid, ask = bbo[bi]
            bids.append(0 if bid is None else bid)
            asks.append(ONE_DOLLAR if ask is None else ask)
            bi += 1
        candle = _candle(e, period_trades, bids or [0], asks or [ONE_DOLLAR], prev_close)
        if period_trades:
            prev_close = period_trades[-1][1]
        candles.append(candle)
    out = [c for c in candles if start_ts <= c["end_period_ts"] <= end_ts]
    if include_latest_before_start:
        before = [c for c in candles if c["end_period_ts"] < start_ts]
        if before:
            out.insert(0, _projected(before[-1], _end_of(start_ts, p)))
    return out


def _candle(end: int, trades: list[tuple[int, int, int]], bids: list[int], asks: list[int],
            prev_close: int | None) -> dict[str, Any]:
    vol = sum(q for _, _, q in trades)
    price: dict[str, Any] = dict.fromkeys(
        ("open_dollars", "low_dollars", "high_dollars", "close_dollars", "mean_dollars"))
    if trades:
        o, h, lo, c = _ohlc([px for _, px, _ in trades])
        mean = sum(px * q for _, px, q in trades) // vol if vol else c
        price.update(open_dollars=price_to_str(o), high_dollars=price_to_str(h),
                     low_dollars=price_to_str(lo), close_dollars=price_to_str(c),
                     mean_dollars=price_to_str(mean))
    price["previous_dollars"] = price_to_str(prev_close)
    return {"end_period_ts": end, "yes_bid": _dist(bids), "yes_ask": _dist(asks),
            "price": price, "volume_fp": size_to_str(vol), "open_interest_fp": "0.00"}


def _dist(values: list[int]) -> dict[str, str]:
    o, h, lo, c = _ohlc(values)
    return {"open_dollars": price_to_str(o), "low_dollars": price_to_str(lo),
            "high_dollars": price_to_str(h), "close_dollars": price_to_str(c)}


def _projected(c: dict[str, Any], end: int) -> dict[str, Any]:
    """The synthetic candle ``include_latest_before_start`` prepends: ``c`` moved to ``end``,
    price OHLC null, ``previous`` = ``c``'s close (or its previous), BBO flat at ``c``'s
    close, no volume (SDK 3.34 ``get_market_candlesticks`` doc)."""
    close = c["price"]["close_dollars"] or c["price"]["previous_dollars"]
    price = dict.fromkeys(c["price"])
    price["previous_dollars"] = close
    keys = ("open_dollars", "low_dollars", "high_dollars", "close_dollars")
    flat = {k: dict.fromkeys(keys, c[k]["close_dollars"]) for k in ("yes_bid", "yes_ask")}
    return {"end_period_ts": end, **flat, "price": price, "volume_fp": "0.00",
            "open_interest_fp": c["open_interest_fp"]}


def historical_shape(c: dict[str, Any]) -> dict[str, Any]:
    """A live-shape candle in the historical endpoint's field names (``open``... without
    ``_dollars``; ``volume``, ``open_interest``; docs/kalshi-api.md §3.8)."""
    def strip(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        return {k: d.get(f"{k}_dollars") for k in keys}

    ba = ("open", "low", "high", "close")
    return {"end_period_ts": c["end_period_ts"], "yes_bid": strip(c["yes_bid"], ba),
            "yes_ask": strip(c["yes_ask"], ba),
            "price": strip(c["price"], ba + ("mean", "previous")),
            "volume": c["volume_fp"], "open_interest": c["open_interest_fp"]}
