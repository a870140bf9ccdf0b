"""Kalshi JSON of the engine's views (what the REST/WS layers will serve)."""

from kalshi_platform.exchange.views import (balance_json, market_position_ws, order_json,
                                            position_json)
from kalshi_platform.fixedpoint import parse_price, parse_size
from exchange_helpers import kinds, market, order


def test_order_position_and_balance_json():
    ex = market()
    ex.submit(order("a", "yes", "buy", 10, 40, client_order_id="k1"), 10**9)
    r = ex.submit(order("b", "no", "buy", 4, 60), 2 * 10**9)
    o = order_json(ex.get_order(r.order.order_id))
    assert o["status"] == "executed" and o["side"] == "no" and o["yes_price"] == 40
    assert o["no_price_dollars"] == "0.6000" and o["fill_count_fp"] == "4.00"
    assert o["taker_fill_cost_dollars"] == "2.400000" and o["taker_fees_dollars"] == "0.067200"
    assert o["created_time"] == "1970-01-01T00:00:02.000000Z"
    a = order_json(ex.get_order(ex.client_ids[("a", "k1")]))
    assert a["remaining_count_fp"] == "6.00" and a["client_order_id"] == "k1"
    (pos,) = ex.positions("b")
    pj = position_json(pos)
    assert pj["position_fp"] == "-4.00" and parse_price(pj["market_exposure_dollars"]) == 2_400_000
    assert pj["total_traded_dollars"] == "2.400000"
    ws = market_position_ws(next(p for p in kinds(r, "PositionUpdate") if p.user_id == "b"))
    assert parse_size(ws["position_fp"]) == -400 and ws["fees_paid_dollars"] == "0.067200"
    b = balance_json(ex.balance("a"), 3 * 10**9)
    # a: $1000 - 4 x 40c paid - collateral of 6 left at 40c (+ its fee bound)
    assert b["portfolio_value"] == 160 and b["updated_ts"] == 3 and b["balance"] < 100_000 - 160
