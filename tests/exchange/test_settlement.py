"""Settlement lifecycle (docs/trading-api.md §4.4): open -> closed (resting orders canceled)
-> determined -> settled; $1 per net winning contract, void returns cost; money conserved."""

import pytest

from kalshi_platform.exchange import CloseMarket, DetermineMarket, SettleMarket
from exchange_helpers import DOLLAR, MONEY_CENT, kinds, market, order


def _trade(ex):
    # a buys 10 YES at 40c from b (b buys 10 NO at 60c), both makers/takers pay no fee on
    # "quadratic" except the taker b
    assert ex.submit(order("a", "yes", "buy", 10, 40), 1).ok
    r = ex.submit(order("b", "no", "buy", 10, 60), 2)
    assert r.order.status == "executed"
    return r


def _settle(ex, result, ts=10):
    for c in (CloseMarket(ticker="M"), DetermineMarket(ticker="M", result=result),
              SettleMarket(ticker="M")):
        r = ex.submit(c, ts)
        assert r.ok, r.error
    return r


@pytest.mark.parametrize("result", ["yes", "no", "void"])
def test_settlement_pays_the_winner(result):
    ex = market()
    _trade(ex)
    cash = {u: ex.accounts[u].cash for u in "ab"}
    r = _settle(ex, result)
    got = {u: ex.accounts[u].cash - cash[u] for u in "ab"}
    want = {"yes": {"a": 10 * DOLLAR, "b": 0}, "no": {"a": 0, "b": 10 * DOLLAR},
            "void": {"a": 4 * DOLLAR, "b": 6 * DOLLAR}}[result]
    assert got == want
    recs = {s.user_id: s for s in ex.settlements.values() for s in s}
    assert recs["a"].yes_count == 1000 and recs["b"].no_count == 1000
    assert recs["a"].yes_total_cost == 4 * DOLLAR and recs["b"].no_total_cost == 6 * DOLLAR
    assert recs["a"].value == {"yes": 100, "no": 0, "void": None}[result]
    assert ex.markets["M"].status == "settled" and ex.markets["M"].escrow == 0
    assert all(p.pos == 0 for p in ex.markets["M"].positions.values())
    assert ex.check_invariants() == []
    assert sorted(s.user_id for s in kinds(r, "SettlementRecord")) == ["a", "b"]
    pnl = {u: ex.markets["M"].positions[u].realized for u in "ab"}
    assert pnl["a"] == want["a"] - 4 * DOLLAR and pnl["b"] == want["b"] - 6 * DOLLAR


def test_void_after_contracts_changed_hands_is_funded_by_the_exchange():
    ex = market()
    _trade(ex)                                   # a long 10 YES @40, b long 10 NO @60
    ex.submit(order("c", "yes", "buy", 10, 70), 3)
    ex.submit(order("a", "yes", "sell", 10, 70), 4)  # a sells to c at 70: escrow still $10
    _settle(ex, "void")
    assert ex.void_adjustment == 3 * DOLLAR      # refunds 7 + 6 = $13 from $10 of escrow
    assert ex.check_invariants() == []


def test_netting_settles_only_the_net_position():
    ex = market()
    _trade(ex)                                   # a +10 YES
    ex.submit(order("c", "yes", "buy", 4, 50), 3)
    ex.submit(order("a", "no", "buy", 4, 50), 4)     # a buys 4 NO: nets to +6 YES
    assert ex.markets["M"].positions["a"].pos == 600
    cash = ex.accounts["a"].cash
    _settle(ex, "yes")
    assert ex.accounts["a"].cash - cash == 6 * DOLLAR


def test_close_cancels_resting_orders_and_lifecycle_is_enforced():
    ex = market()
    ex.submit(order("a", "yes", "buy", 10, 40), 1)
    assert ex.accounts["a"].reserved > 0
    assert ex.submit(SettleMarket(ticker="M"), 2).error.code == "invalid_market_state"
    assert ex.submit(DetermineMarket(ticker="M", result="yes"), 2).error.code == \
        "invalid_market_state"
    r = ex.submit(CloseMarket(ticker="M"), 2)
    assert [u.order.status for u in kinds(r, "OrderUpdate")] == ["canceled"]
    assert ex.accounts["a"].reserved == 0 and ex.book_snapshot("M")["yes"] == []
    assert ex.submit(order("a", "yes", "buy", 1, 40), 3).error.code == "market_closed"
    assert ex.submit(DetermineMarket(ticker="M", result="maybe"), 3).error.code == \
        "invalid_parameter"
    assert ex.submit(DetermineMarket(ticker="M", result="no"), 3).ok
    assert ex.submit(SettleMarket(ticker="M"), 4).ok
    assert ex.accounts["a"].cash == 100_000 * MONEY_CENT
