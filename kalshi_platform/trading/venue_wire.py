"""Kalshi JSON → the trading layer's objects, for the network venues (issue 14 §5;
docs/trading-api.md §4.1 field names, docs/kalshi-api.md §7.9b private WS messages).

The one place where a network venue's wire format is read (docs/trading.md "Venues"): the V2
create/amend answers, V1 ``Order``/``Fill`` objects (REST), the WS ``fill`` and ``user_order``
messages, positions and balance. Out: :mod:`.model` objects in the plant's integer units
(prices µ$ on the side's scale unless named ``yes_price``, counts centi-contracts, money
1e-8 $, times UTC ns). Malformed input raises ``KeyError``/``ValueError`` (the venue logs and
skips it).
"""

from __future__ import annotations

from datetime import datetime

from kalshi_platform.fixedpoint import ONE_DOLLAR, parse_price, parse_size
from kalshi_platform.trading.model import (MONEY_SCALE, Action, Fill, OrderReport, Side,
                                           TimeInForce, VenueOrder, VenueState)

#: money units (1e-8 $) per micro-dollar
MONEY_PER_MICRO = MONEY_SCALE // 1_000_000


def money_of(text: str | None) -> int:
    """A ``*_dollars`` string (up to 6 decimals) → money (1e-8 $); ``None``/``""`` → 0."""
    if not text:
        return 0
    neg = text.startswith("-")
    v = parse_price(text.lstrip("-")) * MONEY_PER_MICRO
    return -v if neg else v


def _ts_ns(obj: dict) -> int:
    if obj.get("ts_ms") is not None:
        return int(obj["ts_ms"]) * 1_000_000
    t = obj.get("created_time")
    if t:
        return int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1e6) * 1000
    return int(obj.get("ts") or 0) * 10**9


def fill_of(msg: dict) -> Fill:
    """A WS ``fill`` msg or a REST ``Fill`` object → :class:`Fill`. ``fill_id`` is Kalshi's
    ``trade_id`` (both forms carry it, so a fill seen on the WS and again in
    ``/portfolio/fills`` is counted once); ``fee`` is ``fee_cost``."""
    return Fill(str(msg["trade_id"]), str(msg["order_id"]),
                msg.get("market_ticker") or msg["ticker"], Side(msg["side"]),
                Action(msg["action"]), parse_size(msg["count_fp"]),
                parse_price(msg["yes_price_dollars"]), bool(msg["is_taker"]),
                money_of(msg.get("fee_cost")), _ts_ns(msg))


def _count(order: dict) -> int:
    """Max fillable count: filled + remaining while resting, else the initial count."""
    filled = parse_size(order.get("fill_count_fp") or "0")
    if order.get("status") == "resting":
        return filled + parse_size(order.get("remaining_count_fp") or "0")
    return parse_size(order.get("initial_count_fp") or "0") or filled


def _side_price(order: dict, side: Side | None = None) -> int:
    """The order's price on ``side``'s scale (default: the venue's ``side`` of the order)."""
    yes = parse_price(order["yes_price_dollars"])
    s = side.value if side is not None else order["side"]
    return yes if s == "yes" else ONE_DOLLAR - yes


def report_of_order(order: dict, kind: str = "update", side: Side | None = None) -> OrderReport:
    """A WS ``user_order`` msg or a V1 ``Order`` → an ``update`` :class:`OrderReport`, its
    price on ``side``'s scale: the side *we* placed the order on. (A V2 venue keeps only the
    book side: our buy-NO comes back as a sell-YES at the same YES price.)"""
    return OrderReport(kind, order.get("client_order_id") or None, str(order["order_id"]),
                       venue_status=order["status"],
                       filled=parse_size(order.get("fill_count_fp") or "0"),
                       count=_count(order), price=_side_price(order, side),
                       ts_ns=_ts_ns(order))


def report_of_v2(answer: dict, kind: str, client_order_id: str, count: int,
                 price: int | None = None) -> OrderReport:
    """A V2 create/amend answer (``fill_count``, ``remaining_count`` strings) → a report of
    ``kind`` (accepted | update); its status is inferred: remaining > 0 resting, all of
    ``count`` filled executed, else canceled (an IOC's rest)."""
    filled = parse_size(answer.get("fill_count") or "0")
    remaining = parse_size(answer.get("remaining_count") or "0")
    status = "resting" if remaining else ("executed" if filled >= count else "canceled")
    return OrderReport(kind, client_order_id, str(answer["order_id"]), venue_status=status,
                       filled=filled, count=count if price is not None else 0, price=price,
                       ts_ns=_ts_ns(answer))


def venue_order_of(order: dict) -> VenueOrder:
    """A V1 ``Order`` object → :class:`VenueOrder` (reconciliation input)."""
    tif = order.get("time_in_force") or TimeInForce.GTC.value
    return VenueOrder(str(order["order_id"]), order.get("client_order_id") or None,
                      order["ticker"], Side(order["side"]), Action(order["action"]),
                      _side_price(order), _count(order),
                      parse_size(order.get("fill_count_fp") or "0"), order["status"],
                      TimeInForce(tif))


def state_of(orders: list[dict], fills: list[dict], positions: list[dict],
             balance: dict) -> VenueState:
    """REST reads → :class:`VenueState` (fills oldest first; positions signed YES-equivalent,
    Kalshi's ``position_fp``; balance from ``balance_dollars``, else whole cents)."""
    bal = (money_of(balance["balance_dollars"]) if balance.get("balance_dollars")
           else int(balance.get("balance") or 0) * 10**6)
    fs = sorted((fill_of(f) for f in fills), key=lambda f: (f.ts_ns, f.fill_id))
    return VenueState(orders=[venue_order_of(o) for o in orders], fills=fs,
                      positions={p["ticker"]: parse_size(p["position_fp"]) for p in positions
                                 if parse_size(p.get("position_fp") or "0")},
                      balance=bal)
