"""The trading suite of the SDK driver (issue 13 §4 "Official SDK"): every trading call of
``kalshi-python-sync`` that the sim serves, through the SDK's own API classes, so each
answer is validated by the SDK's pydantic models; the driver's checks look at the content.

CONFIG (besides the driver's ``base_url``, ``key_id``, ``private_key_pem``): ``"trading":
true``, ``ticker`` (a market with recorded liquidity), ``ask`` / ``rest_price`` (YES-scale
dollar strings: the best ask, a price below the bid that rests), ``admin_url`` (the sim's
``/admin`` REST, plain HTTP, to settle the market at the end).
"""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal
from typing import Any, Callable

import kalshi_python_sync as k
from checks import check

TRADING_CALLS = [
    ("OrdersApi.create_order_v2 (taker IOC)", "create_taker"),
    ("OrdersApi.create_order_v2 (resting) + get_order + queue positions", "create_resting"),
    ("OrdersApi.amend_order_v2", "amend"),
    ("OrdersApi.decrease_order_v2", "decrease"),
    ("OrdersApi.get_orders", "orders"),
    ("OrdersApi.cancel_order_v2", "cancel"),
    ("OrdersApi.batch_create_orders_v2 / batch_cancel_orders_v2", "batch"),
    ("OrdersApi.cancel_all_orders", "cancel_all"),
    ("OrderGroupsApi (create, get, list, limit, reset, trigger, delete)", "groups"),
    ("PortfolioApi.get_fills", "fills"),
    ("PortfolioApi.get_positions", "positions"),
    ("PortfolioApi.get_balance / get_portfolio_resting_order_total_value", "balance"),
    ("PortfolioApi.get_settlements", "settlements"),
]


def _admin(cfg: dict, path: str, body: dict | None = None) -> None:
    req = urllib.request.Request(cfg["admin_url"] + path, method="POST",
                                 data=json.dumps(body or {}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        check(r.status == 200, f"admin {path}: {r.status}")


def trading_checks(cfg: dict[str, Any], api: k.ApiClient) -> dict[str, Callable[[], Any]]:
    """Checks by name (closures over the SDK API objects and a shared state dict)."""
    o, pf, g = k.OrdersApi(api), k.PortfolioApi(api), k.OrderGroupsApi(api)
    t, st = cfg["ticker"], {}
    base = dict(ticker=t, time_in_force="good_till_canceled",
                self_trade_prevention_type="taker_at_cross")

    def create_taker():
        r = o.create_order_v2(**{**base, "time_in_force": "immediate_or_cancel"},
                              side="bid", count="2", price=cfg["ask"], client_order_id="sdk-1")
        check(r.fill_count == "2.00" and r.remaining_count == "0.00", "taker not filled")
        check(Decimal(r.average_fill_price) == Decimal(cfg["ask"]), "average fill price")
        st["taker"] = r.order_id
        return {"avg_price": r.average_fill_price, "avg_fee": r.average_fee_paid}

    def create_resting():
        r = o.create_order_v2(**base, side="bid", count="5", price=cfg["rest_price"])
        check(r.remaining_count == "5.00" and r.fill_count == "0.00", "resting order")
        st["rest"] = r.order_id
        one = o.get_order(r.order_id).order
        check(one.status == "resting" and one.book_side == "bid", "get_order")
        qp = o.get_order_queue_position(r.order_id)
        qps = o.get_order_queue_positions(market_tickers=t).queue_positions
        check([x.order_id for x in qps] == [r.order_id], "queue_positions")
        check(qps[0].queue_position_fp == qp.queue_position_fp, "queue position agrees")
        return {"queue_position_fp": qp.queue_position_fp}

    def amend():
        r = o.amend_order_v2(st["rest"], ticker=t, side="bid", price=cfg["rest_price"],
                             count="4")
        check(r.order_id == st["rest"] and r.remaining_count == "4.00", "amend")
        return {"remaining": r.remaining_count}

    def decrease():
        r = o.decrease_order_v2(st["rest"], reduce_by="1")
        check(r.remaining_count == "3.00", "decrease")

    def orders():
        r = o.get_orders(ticker=t, limit=1)
        check(len(r.orders) == 1 and r.cursor, "page of one with a cursor")
        r2 = o.get_orders(ticker=t, limit=1, cursor=r.cursor)
        ids = {r.orders[0].order_id, r2.orders[0].order_id}
        check(ids == {st["rest"], st["taker"]}, "both orders over two pages")
        res = o.get_orders(status="resting").orders
        check([x.order_id for x in res] == [st["rest"]], "status filter")

    def cancel():
        r = o.cancel_order_v2(st["rest"])
        check(r.order_id == st["rest"] and r.reduced_by == "3.00", "cancel")

    def batch():
        req = [k.CreateOrderV2Request(**base, side="bid", count="1", price=cfg["rest_price"],
                                      client_order_id=f"sdk-b{i}") for i in range(2)]
        r = o.batch_create_orders_v2(orders=req)
        ids = [x.order_id for x in r.orders]
        check(len(ids) == 2 and all(x.error is None for x in r.orders), "batch create")
        c = o.batch_cancel_orders_v2(orders=[{"order_id": i} for i in ids])
        check([x.reduced_by for x in c.orders] == ["1.00", "1.00"], "batch cancel")

    def cancel_all():
        o.create_order_v2(**base, side="bid", count="1", price=cfg["rest_price"])
        o.cancel_all_orders()
        check(o.get_orders(status="resting").orders == [], "cancel_all left orders")

    def groups():
        gid = g.create_order_group(contracts_limit=10).order_group_id
        one = g.get_order_group(gid)
        check(one.contracts_limit_fp == "10.00" and one.is_auto_cancel_enabled, "get group")
        check(gid in [x.id for x in g.get_order_groups().order_groups], "list groups")
        g.update_order_group_limit(gid, contracts_limit=20)
        check(g.get_order_group(gid).contracts_limit_fp == "20.00", "limit")
        g.reset_order_group(gid)
        g.trigger_order_group(gid)
        g.delete_order_group(gid)
        check(gid not in [x.id for x in g.get_order_groups().order_groups or []], "deleted")

    def fills():
        fs = pf.get_fills(ticker=t).fills
        check([f.order_id for f in fs] == [st["taker"]] and fs[0].is_taker, "fills")
        return {"count": fs[0].count_fp, "fee": fs[0].fee_cost}

    def positions():
        r = pf.get_positions()
        check([(p.ticker, p.position_fp) for p in r.market_positions] == [(t, "2.00")],
              "positions")
        check(len(r.event_positions) == 1, "event positions")

    def balance():
        st["bal"] = pf.get_balance().balance
        v = pf.get_portfolio_resting_order_total_value()
        check(v.total_resting_order_value == 0, "no resting orders left")
        return {"balance": st["bal"]}

    def settlements():
        for path, body in ((f"/markets/{t}/close", None),
                           (f"/markets/{t}/determine", {"result": "yes"}),
                           (f"/markets/{t}/settle", None)):
            _admin(cfg, path, body)
        ss = pf.get_settlements().settlements
        check([(s.ticker, s.market_result, s.revenue) for s in ss] == [(t, "yes", 200)],
              "settlement")
        check(pf.get_balance().balance == st["bal"] + 200, "paid $1 per contract")
        return {"revenue": ss[0].revenue}

    return {"create_taker": create_taker, "create_resting": create_resting, "amend": amend,
            "decrease": decrease, "orders": orders, "cancel": cancel, "batch": batch,
            "cancel_all": cancel_all, "groups": groups, "fills": fills,
            "positions": positions, "balance": balance, "settlements": settlements}
