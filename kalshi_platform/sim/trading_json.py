"""Kalshi JSON of the sim's trading objects (docs/trading-api.md §4.1; SDK 3.34 models).

Builds on :mod:`kalshi_platform.exchange.views` (``order_json``, ``fill_json``,
``settlement_json``, ``position_json``: the keys of real captures) and adds what the current
SDK requires on top: ``exchange_index`` (0: the sim is one shard), the direction vocabulary
``outcome_side``/``book_side`` on orders (buy-yes = sell-no = yes/bid, buy-no = sell-yes =
no/ask; docs/trading-api.md §4.1 "Direction vocabulary"), ``balance_dollars``, event
positions, and the V2 order answers (``/portfolio/events/orders``: counts as ``*_fp``
strings without the suffix, ``average_fill_price``/``average_fee_paid``, ``ts_ms``).
Units in: engine units (µ$ prices, centi-contracts, 1e-8 $ money, UTC ns).
"""

from __future__ import annotations

from kalshi_platform.exchange.events import OrderView, PositionUpdate, SettlementRecord
from kalshi_platform.exchange.views import (fill_json, money_to_str, order_amounts_json,
                                            order_json, position_json, rfc3339,
                                            settlement_json)
from kalshi_platform.fixedpoint import price_to_str, size_to_str

MONEY_PER_CENT = 10**6


def ms(ts_ns: int) -> int:
    """UTC ns → Unix ms."""
    return ts_ns // 1_000_000


def rfc3339_of(ts_ns: int) -> str:
    """UTC ns → RFC 3339 with microseconds (``2026-06-11T06:29:30.164956Z``)."""
    return rfc3339(ts_ns)


def is_bid(side: str, action: str) -> bool:
    """buy-yes and sell-no rest on the YES bid (book side ``bid``)."""
    return (side == "yes") == (action == "buy")


def order_full(v: OrderView) -> dict:
    """V1 ``Order`` JSON (views.order_json + outcome/book side, exchange index)."""
    out = order_json(v)
    bid = is_bid(v.side, v.action)
    out["outcome_side"] = "yes" if bid else "no"
    out["book_side"] = "bid" if bid else "ask"
    out["exchange_index"] = 0
    out["cancel_order_on_pause"] = False
    if out["self_trade_prevention_type"] not in ("taker_at_cross", "maker"):
        out["self_trade_prevention_type"] = "taker_at_cross"
    return out


def fill_full(f) -> dict:
    """``Fill`` JSON (the real capture's keys + ``exchange_index``, required by SDK 3.34)."""
    out = fill_json(f)
    out["exchange_index"] = 0
    return out


def settlement_full(s: SettlementRecord) -> dict:
    """``Settlement`` JSON + ``exchange_index``."""
    out = settlement_json(s)
    out["exchange_index"] = 0
    return out


def position_full(p: PositionUpdate) -> dict:
    """REST ``MarketPosition`` JSON + ``exchange_index``."""
    out = position_json(p)
    out["exchange_index"] = 0
    return out


def event_positions(ps: list[PositionUpdate], event_of) -> list[dict]:
    """REST ``EventPosition`` rows: the user's market positions summed per event
    (``event_of(ticker) -> event_ticker``); exposure = cost of the held contracts."""
    acc: dict[str, list[int]] = {}
    for p in ps:
        a = acc.setdefault(event_of(p.ticker), [0, 0, 0, 0, 0])
        a[0] += p.total_traded
        a[1] += p.volume
        a[2] += p.position_cost
        a[3] += p.realized_pnl
        a[4] += p.fees_paid
    return [{"event_ticker": e, "total_cost_dollars": money_to_str(a[0]),
             "total_cost_shares_fp": size_to_str(a[1]),
             "event_exposure_dollars": money_to_str(a[2]),
             "realized_pnl_dollars": money_to_str(a[3]), "fees_paid_dollars": money_to_str(a[4])}
            for e, a in sorted(acc.items())]


def balance_full(b: dict, ts_ns: int) -> dict:
    """``GET /portfolio/balance``: ``balance``/``portfolio_value`` whole cents (floored),
    ``balance_dollars``, ``updated_ts`` (UTC s); ``b`` is ``Exchange.balance(user)``."""
    return {"balance": b["balance"] // MONEY_PER_CENT,
            "balance_dollars": money_to_str(b["balance"]),
            "portfolio_value": b["portfolio_value"] // MONEY_PER_CENT,
            "updated_ts": ts_ns // 10**9}


def _averages(v: OrderView) -> tuple[str, str]:
    """Average fill price and fee per contract (dollar strings; "0.0000" with no fill)."""
    if not v.fill_count:
        return "0.0000", "0.0000"
    cost = v.taker_fill_cost + v.maker_fill_cost
    fees = v.taker_fees + v.maker_fees
    return price_to_str(cost // v.fill_count), price_to_str(fees // v.fill_count)


def v2_order(v: OrderView, ts_ns: int) -> dict:
    """V2 create/amend answer (``CreateOrderV2Response``; the real one:
    data fortuna_demo/orders__create_v2_taker_ioc.json)."""
    avg_price, avg_fee = _averages(v)
    return {"order_id": v.order_id, "client_order_id": v.client_order_id or "",
            "fill_count": size_to_str(v.fill_count),
            "remaining_count": size_to_str(v.remaining_count),
            "average_fill_price": avg_price, "average_fee_paid": avg_fee, "ts_ms": ms(ts_ns)}


def user_order_ws(v: OrderView) -> dict:
    """WS ``user_order`` msg (docs/trading-api.md §4.1 private channels)."""
    bid = is_bid(v.side, v.action)
    return {"order_id": v.order_id, "ticker": v.ticker, "market_ticker": v.ticker,
            "status": v.status, "side": v.side, "action": v.action, "is_yes": v.side == "yes",
            "outcome_side": "yes" if bid else "no", "book_side": "bid" if bid else "ask",
            "client_order_id": v.client_order_id or "",
            "yes_price_dollars": price_to_str(v.yes_price),
            **order_amounts_json(v),
            "created_time": rfc3339(v.created_ts), "last_update_time": rfc3339(v.last_update_ts)}
