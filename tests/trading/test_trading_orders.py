"""Order management: the state machine, fills before acks, unknown outcomes blocking
commands until reconciliation, idempotent retries, reconciliation on restart
(issue 14 §2)."""

from __future__ import annotations

import pytest
from trading_support import TK, Rec, Script, book

from kalshi_platform.exchange import commands as C
from kalshi_platform.trading import (Action, Fill, Order, OrderReport, OrderStatus as S,
                                     RiskConfig, Side, cents, contracts)
from kalshi_platform.trading.backtest import BacktestConfig, BacktestVenue
from kalshi_platform.trading.node import TradingNode
from kalshi_platform.trading.orders import OrderManager, TransitionError

FREE = RiskConfig.unlimited()


def _order(oms: OrderManager, count=10) -> Order:
    return oms.add(Order(oms.next_client_id(), TK, Side.YES, Action.BUY, cents(40),
                         contracts(count)))


def _fill(fid: str, vid: str, count: int) -> Fill:
    return Fill(fid, vid, TK, Side.YES, Action.BUY, contracts(count), cents(40), False, 7, 1)


def test_state_machine_through_partial_fill_cancel_and_amend():
    seen = []
    oms = OrderManager(on_change=lambda o: seen.append(o.status))
    o = _order(oms)
    assert o.client_order_id == "kp-1" and o.status is S.PENDING_NEW
    oms.on_report(OrderReport("accepted", "kp-1", "V1", "resting"))
    assert o.status is S.RESTING and oms.by_venue("V1") is o
    assert oms.on_fill(_fill("f1", "V1", 4)) == (True, o)
    assert oms.on_fill(_fill("f1", "V1", 4)) == (False, None)  # a repeat: counted once
    assert o.status is S.PARTIALLY_FILLED and o.filled == contracts(4) and o.fees == 7
    oms.mark(o, S.PENDING_AMEND, 2)
    oms.on_report(OrderReport("update", "kp-1", "V1", "resting", price=cents(41),
                              count=contracts(10)))
    assert o.status is S.PARTIALLY_FILLED and o.price == cents(41)
    oms.mark(o, S.PENDING_CANCEL, 3)
    oms.on_fill(_fill("f2", "V1", 1))                 # a fill races the cancel
    assert o.status is S.PENDING_CANCEL and o.filled == contracts(5)
    oms.on_report(OrderReport("update", "kp-1", "V1", "canceled"))
    assert o.status is S.CANCELED and o.remaining == 0
    with pytest.raises(TransitionError):
        oms.mark(o, S.RESTING, 4)
    assert seen[:2] == [S.RESTING, S.PARTIALLY_FILLED]
    assert _order(oms).client_order_id == "kp-2"


def test_cancel_rejected_returns_to_the_live_state_and_rejection_is_terminal():
    oms = OrderManager()
    o = _order(oms)
    oms.on_report(OrderReport("accepted", o.client_order_id, "V1", "resting"))
    oms.mark(o, S.PENDING_CANCEL, 1)
    oms.on_report(OrderReport("cancel_rejected", o.client_order_id, "V1", "resting",
                              reason="busy"))
    assert o.status is S.RESTING
    r = _order(oms)
    oms.on_report(OrderReport("rejected", r.client_order_id, code="insufficient_balance",
                              reason="no money"))
    assert r.status is S.REJECTED and r.reason == "no money" and not r.status.open


def test_a_fill_before_the_ack_waits_and_is_counted_on_the_ack():
    oms = OrderManager()
    o = _order(oms)
    assert oms.on_fill(_fill("f1", "V9", 10)) == (True, None)
    assert o.filled == 0 and len(oms.waiting_fills()) == 1
    oms.on_report(OrderReport("accepted", o.client_order_id, "V9", "resting"))
    assert o.filled == contracts(10) and o.status is S.FILLED and not oms.waiting_fills()


# -- with the backtest venue ------------------------------------------------------------

def _venue(tmp_path, rec: Rec | None = None, latency_ms=1) -> BacktestVenue:
    yes, no = book("0.40", "0.45", "10.00")
    rec = rec or Rec().snapshot(0, yes, no).delta(100, "yes", "0.4000", "1.00").delta(
        200, "yes", "0.4000", "1.00").delta(300, "yes", "0.4000", "1.00")
    return BacktestVenue(rec.write(tmp_path / "r.jsonl"),
                         BacktestConfig(order_latency_ns=latency_ms * 10**6))


def test_unknown_outcome_blocks_commands_until_reconciled(tmp_path):
    venue = _venue(tmp_path)
    state = {}

    def place(c):
        venue.lose_answers(1)  # the core takes the order; its answer is lost
        return c.buy_yes(TK, cents(38), contracts(3))

    def try_cancel(c):
        o = c.get_order("kp-1")
        state["blocked"] = (o.blocked, c.cancel(o))
        state["notes"] = node.reconcile()
        state["after"] = (o.status, o.blocked, o.venue_order_id is not None)
        state["cancel"] = c.cancel(o)

    s = Script({0: place, 1: try_cancel})
    node = TradingNode(s, venue, FREE)
    node.run()
    assert state["blocked"][0] and state["blocked"][1] is False  # nothing sent while unknown
    assert state["after"] == (S.RESTING, "", True) and state["notes"] == []
    assert state["cancel"] is True and node.oms.get("kp-1").status is S.CANCELED
    assert venue.core.user_orders("strategy", status="resting") == []


def test_retry_with_the_same_client_order_id_places_one_order(tmp_path):
    venue = _venue(tmp_path)

    def place(c):
        venue.lose_answers(1)
        return c.buy_yes(TK, cents(38), contracts(3))

    s = Script({0: place, 1: lambda c: c.retry("kp-1")})
    node = TradingNode(s, venue, FREE)
    node.run()
    o = node.oms.get("kp-1")
    assert len(venue.core.user_orders("strategy")) == 1
    assert o.status is S.RESTING and not o.blocked and o.venue_order_id
    assert node.rejections == []  # the duplicate answer is not a reject


def test_unknown_new_order_the_venue_never_saw_is_rejected_by_reconciliation(tmp_path):
    venue = _venue(tmp_path)
    node = TradingNode(Script(), venue, FREE)
    node.start()
    o = node.oms.add(Order(node.oms.next_client_id(), TK, Side.YES, Action.BUY, cents(40), 100))
    node.oms.block(o, "timeout")
    node.reconcile()
    assert o.status is S.REJECTED and not o.blocked


def test_restart_picks_up_open_orders_fills_and_positions_with_nothing_doubled(tmp_path):
    venue = _venue(tmp_path)
    acts = {0: lambda c: [c.buy_yes(TK, cents(45), contracts(4), tif="immediate_or_cancel"),
                          c.buy_yes(TK, cents(38), contracts(2)),
                          c.sell_yes(TK, cents(47), contracts(1))]}
    first = TradingNode(Script(acts), venue, FREE)
    first.run()
    # someone else (a person on the website) places an order on the same account
    venue.core.submit(C.CreateOrder(user_id="strategy", ticker=TK, side="no", action="buy",
                                    count=100, no_price=cents(50),
                                    client_order_id="web-1"), venue.now_ns())
    second = TradingNode(Script(), venue, FREE)
    second.start()
    assert second.portfolio.pos(TK) == first.portfolio.pos(TK) == contracts(4)
    assert len(second.fills) == len(first.fills) == len(venue.core.fills["strategy"])
    open2 = {o.client_order_id: o for o in second.oms.open_orders()}
    assert set(open2) == {"kp-2", "kp-3", "web-1"}
    assert not open2["kp-2"].external and open2["web-1"].external
    assert second.oms.get("kp-1").status is S.FILLED
    assert second.oms.next_client_id() == "kp-4"  # never reuses an id the venue holds
    cash = venue.core.balance("strategy")["cash"]
    assert first.ctx.balance == second.ctx.balance == cash
    assert any("web-1" in n for n in second.reconcile_notes)
    # reconciling again changes nothing
    second.reconcile()
    assert len(second.fills) == len(first.fills) and second.portfolio.pos(TK) == contracts(4)
    assert second.cancel_all() == 3
    venue.clock.run_until(venue.now_ns() + 10**7)
    assert venue.core.user_orders("strategy", status="resting") == []
