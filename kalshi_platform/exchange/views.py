"""Public views of engine state and their Kalshi JSON forms (docs/trading-api.md §4.1).

``order_view`` (the C core's) snapshots an internal order as events.OrderView, positionally
in its field order; ``remaining_count`` is 0 unless the order rests. The ``*_json`` helpers turn
views/events into Kalshi's wire dicts: prices as ``*_dollars`` strings and legacy cents,
counts as ``*_fp`` strings, times as RFC 3339 — what the REST/WS layers serve.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kalshi_platform.exchange import _core
from kalshi_platform.exchange.events import Fill, OrderView, PositionUpdate, SettlementRecord
from kalshi_platform.fixedpoint import price_to_str, size_to_str

#: ``order_view(order) -> OrderView`` (the C core's)
order_view = _core.order_view


def money_to_str(units: int) -> str:
    """Money (1e-8 dollars) → a dollar string with 6 decimals, floored to $0.000001 (Kalshi's
    ``*_dollars`` precision): ``1750000`` → ``"0.017500"``."""
    return price_to_str_6(units // 100)


def price_to_str_6(micro: int) -> str:
    """Micro-dollars → ``"0.017500"`` (always 6 decimals, as Kalshi's fee_cost)."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def rfc3339(ts_ns: int) -> str:
    """UTC nanoseconds → ``2026-06-11T06:29:30.164956Z``."""
    dt = datetime.fromtimestamp(ts_ns // 1000 / 1e6, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def order_amounts_json(v: OrderView) -> dict:
    """An order's counts (``*_count_fp``, contracts as fixed-point strings) and its taker/maker
    fill cost and fees (``*_dollars``, 6 decimals): the keys Kalshi's REST ``Order`` and WS
    ``user_order`` share (docs/trading-api.md §4.1)."""
    return {
        "fill_count_fp": size_to_str(v.fill_count),
        "remaining_count_fp": size_to_str(v.remaining_count),
        "initial_count_fp": size_to_str(v.initial_count),
        "taker_fill_cost_dollars": money_to_str(v.taker_fill_cost),
        "maker_fill_cost_dollars": money_to_str(v.maker_fill_cost),
        "taker_fees_dollars": money_to_str(v.taker_fees),
        "maker_fees_dollars": money_to_str(v.maker_fees),
    }


def order_json(v: OrderView) -> dict:
    """Kalshi ``Order`` JSON of a view."""
    return {
        "order_id": v.order_id, "user_id": v.user_id, "client_order_id": v.client_order_id or "",
        "ticker": v.ticker, "side": v.side, "action": v.action, "type": v.type,
        "status": v.status, "yes_price": v.yes_price // 10_000, "no_price": v.no_price // 10_000,
        "yes_price_dollars": price_to_str(v.yes_price), "no_price_dollars": price_to_str(v.no_price),
        **order_amounts_json(v),
        "expiration_time": rfc3339(v.expiration_ts * 10**9) if v.expiration_ts else None,
        "created_time": rfc3339(v.created_ts), "last_update_time": rfc3339(v.last_update_ts),
        "self_trade_prevention_type": v.self_trade_prevention_type,
        "order_group_id": v.order_group_id, "subaccount_number": 0,
    }


def fill_json(f: Fill) -> dict:
    """Kalshi ``Fill`` JSON (the keys of a real ``/portfolio/fills`` item)."""
    return {
        "action": f.action, "book_side": f.book_side, "count_fp": size_to_str(f.count),
        "created_time": rfc3339(f.ts), "fee_cost": money_to_str(f.fee_cost),
        "fill_id": f.fill_id, "is_taker": f.is_taker, "market_ticker": f.ticker,
        "no_price_dollars": price_to_str(f.no_price), "order_id": f.order_id,
        "outcome_side": "yes" if f.book_side == "bid" else "no", "side": f.side,
        "subaccount_number": 0, "ticker": f.ticker, "trade_id": f.trade_id,
        "ts": f.ts // 10**9, "yes_price_dollars": price_to_str(f.yes_price),
    }


def settlement_json(s: SettlementRecord) -> dict:
    """Kalshi ``Settlement`` JSON (``revenue`` in cents, costs as 6-decimal dollars)."""
    return {
        "event_ticker": s.event_ticker, "fee_cost": money_to_str(s.fee_cost),
        "market_result": s.market_result, "no_count_fp": size_to_str(s.no_count),
        "no_total_cost_dollars": money_to_str(s.no_total_cost),
        "revenue": s.revenue // 1_000_000, "settled_time": rfc3339(s.settled_ts),
        "ticker": s.ticker, "value": s.value, "yes_count_fp": size_to_str(s.yes_count),
        "yes_total_cost_dollars": money_to_str(s.yes_total_cost),
    }


def position_json(p: PositionUpdate) -> dict:
    """Kalshi REST ``MarketPosition`` JSON (docs/trading-api.md §4.1 ``/portfolio/positions``);
    ``market_exposure_dollars`` is the cost of the held contracts."""
    return {
        "ticker": p.ticker, "position_fp": size_to_str(p.position),
        "total_traded_dollars": money_to_str(p.total_traded),
        "market_exposure_dollars": money_to_str(p.position_cost),
        "realized_pnl_dollars": money_to_str(p.realized_pnl),
        "fees_paid_dollars": money_to_str(p.fees_paid), "last_updated_ts": rfc3339(p.ts),
    }


def market_position_ws(p: PositionUpdate) -> dict:
    """Kalshi WS ``market_position`` msg (docs/trading-api.md §4.1 private channels)."""
    return {
        "market_ticker": p.ticker, "position_fp": size_to_str(p.position),
        "position_cost_dollars": money_to_str(p.position_cost),
        "realized_pnl_dollars": money_to_str(p.realized_pnl),
        "fees_paid_dollars": money_to_str(p.fees_paid), "volume_fp": size_to_str(p.volume),
        "subaccount": 0,
    }


def balance_json(b: dict, ts_ns: int) -> dict:
    """Kalshi ``GET /portfolio/balance``: ``balance`` (available) and ``portfolio_value`` in
    whole cents (floored), ``updated_ts`` UTC seconds; ``b`` is ``Exchange.balance(...)``."""
    return {"balance": b["balance"] // 1_000_000, "portfolio_value": b["portfolio_value"] // 1_000_000,
            "updated_ts": ts_ns // 10**9}
