"""Pre-trade risk: each check blocks an order that breaks it (and passes one that does not),
every rejection has a reason and a counter; trading states; the kill switch (issue 14 §3)."""

from __future__ import annotations

import pytest
from trading_support import TK, Rec, Script, book

from kalshi_platform.trading import (Action, Order, OrderStatus, RiskConfig, Side, TradingState,
                                     cents, contracts)
from kalshi_platform.trading.backtest import BacktestConfig
from kalshi_platform.trading.risk import MarketView, OrderIntent, RiskEngine
from kalshi_platform.trading.risk_config import (RiskConfigError, load_risk_config,
                                                 risk_config_from_dict)
from kalshi_platform.trading.run import run_backtest

OFF = RiskConfig.unlimited()
EV = "KXTEST-26AUG07"


class World:
    """Fake state the risk engine reads."""

    def __init__(self, **cfg) -> None:
        self.pos: dict[str, int] = {}
        self.orders: list[Order] = []
        self.view = MarketView("live", cents(40), cents(45))
        self.net = 0
        base = {f: getattr(OFF, f) for f in OFF.__dataclass_fields__}
        base.update(cfg)
        self.risk = RiskEngine(RiskConfig(**base), position=lambda t: self.pos.get(t, 0),
                               event_position=lambda e: sum(v for t, v in self.pos.items()
                                                            if t.rsplit("-", 1)[0] == e),
                               event_of=lambda t: t.rsplit("-", 1)[0],
                               open_orders=lambda: self.orders, market=lambda t: self.view,
                               net_pnl=lambda: self.net)

    def check(self, side="yes", action="buy", price=40, count=1, ticker=TK, ts=0):
        return self.risk.check_new(OrderIntent(ticker, Side(side), Action(action), cents(price),
                                               contracts(count)), ts)


def _blocked(w: World, code: str, **order) -> None:
    r = w.check(**order)
    assert r is not None and r.code == code and r.message
    assert w.risk.counters[code] >= 1


def test_price_range():
    w = World(price_min=cents(5), price_max=cents(95))
    assert w.check(price=40) is None
    _blocked(w, "price_range", price=3)
    _blocked(w, "price_range", side="no", price=2)  # NO at 0.02 = YES at 0.98


def test_price_collar_within_n_ticks_of_the_opposite_best():
    w = World(tick=cents(1), collar_ticks=3)
    assert w.check(price=48) is None          # ask 0.45 + 3 ticks
    _blocked(w, "price_collar", price=49)
    assert w.check(action="sell", price=37) is None  # bid 0.40 - 3 ticks
    _blocked(w, "price_collar", action="sell", price=36)
    # a NO bid at 0.50 is a YES ask at 0.50, above the bid: passes; at 0.64 (a YES ask at
    # 0.36) it is 4 ticks below the bid
    w2 = World(tick=cents(1), collar_ticks=3)
    assert w2.check(side="no", price=50) is None
    _blocked(w2, "price_collar", side="no", price=64)


def test_max_order_size_and_notional():
    w = World(max_order_size=contracts(10), max_order_notional=3 * 10**8)
    assert w.check(count=7) is None           # 7 x 0.40 = $2.80
    _blocked(w, "max_order_size", count=11)
    _blocked(w, "max_order_notional", count=8)  # $3.20


def test_max_position_per_market_counts_open_orders_and_lets_reductions_through():
    w = World(max_position=contracts(10))
    w.pos[TK] = contracts(6)
    w.orders.append(Order("kp-1", TK, Side.YES, Action.BUY, cents(39), contracts(3),
                          status=OrderStatus.RESTING))
    assert w.check(count=1) is None           # 6 + 3 + 1 = 10
    _blocked(w, "max_position", count=2)
    _blocked(w, "max_position", side="no", action="sell", count=2)  # sell NO = buy YES
    assert w.check(action="sell", count=16) is None  # 6 -> -10
    _blocked(w, "max_position", action="sell", count=17)
    w.pos[TK] = contracts(-10)
    _blocked(w, "max_position", side="no", count=1)  # buying NO grows the short


def test_max_event_position_signed_yes_equivalent():
    w = World(max_event_position=contracts(10))
    w.pos[TK] = contracts(8)
    w.pos[EV + "-B"] = contracts(-3)          # NO held in a sibling market nets
    assert w.check(count=5) is None           # 8 - 3 + 5 = 10
    _blocked(w, "max_event_position", count=6)
    assert w.check(ticker="KXOTHER-1-A", count=10) is None


def test_max_open_notional():
    w = World(max_open_notional=5 * 10**8)
    w.orders.append(Order("kp-1", TK, Side.YES, Action.BUY, cents(40), contracts(10),
                          status=OrderStatus.RESTING))  # $4.00 open
    assert w.check(count=2) is None           # + $0.80
    _blocked(w, "max_open_notional", count=3)


def test_daily_loss_limit_blocks_new_risk_but_not_a_reduction():
    w = World(daily_loss_limit=10 * 10**8)
    w.pos[TK] = contracts(5)
    w.net = -10 * 10**8
    _blocked(w, "daily_loss_limit", count=1)
    assert w.check(action="sell", count=5) is None


def test_order_rate_below_the_venue_limit():
    w = World(max_orders_per_s=3)
    assert all(w.check(ts=i) is None for i in range(3))
    _blocked(w, "order_rate", ts=10)
    assert w.check(ts=10**9 + 1) is None      # the first has left the window


def test_book_not_live():
    w = World(require_live_book=True)
    w.view = MarketView("stale", None, None)
    _blocked(w, "book_not_live")


def test_trading_states_halted_and_reducing():
    w = World()
    w.pos[TK] = contracts(5)
    w.risk.state = TradingState.REDUCING
    assert w.check(action="sell", count=5) is None
    _blocked(w, "reducing", action="sell", count=6)
    _blocked(w, "reducing", count=1)
    w.risk.state = TradingState.HALTED
    _blocked(w, "halted", action="sell", count=1)


def test_risk_toml(tmp_path):
    p = tmp_path / "risk.toml"
    p.write_text('[risk]\nmax_order_notional = "12.5"\nmax_position = 7\ntick = 0.001\n'
                 'kill_reject_window_s = 2\nkill_on_stale_book = false\n')
    c = load_risk_config(p)
    assert c.max_order_notional == 1_250_000_000 and c.max_position == 700
    assert c.tick == 1000 and c.kill_reject_window_ns == 2 * 10**9 and not c.kill_on_stale_book
    with pytest.raises(RiskConfigError, match="unknown risk setting 'max_pos'"):
        risk_config_from_dict({"max_pos": 1})
    with pytest.raises(RiskConfigError, match="precision"):
        risk_config_from_dict({"price_min": "0.0000001"})
    p.write_text("[risk\n")
    with pytest.raises(RiskConfigError, match="not valid TOML"):
        load_risk_config(p)


# -- the kill switch, end to end in a backtest ---------------------------------------------

def _bt(tmp_path, rec, actions, **risk):
    base = {f: getattr(OFF, f) for f in OFF.__dataclass_fields__}
    base.update(risk)
    s = Script(actions)
    rep, node = run_backtest(s, rec.write(tmp_path / "r.jsonl"), risk=RiskConfig(**base),
                             config=BacktestConfig(order_latency_ns=10**6))
    return s, node, rep


def _resting_at_core(node) -> list:
    return node.venue.core.user_orders("strategy", status="resting")


def test_kill_switch_on_reject_spike_cancels_everything_and_halts(tmp_path):
    yes, no = book()
    rec = Rec().snapshot(0, yes, no).delta(100, "yes", "0.4000", "1.00").delta(
        200, "yes", "0.4000", "1.00").delta(300, "yes", "0.4000", "1.00")
    acts = {0: lambda c: c.buy_yes(TK, cents(30), contracts(1)),
            1: lambda c: [c.buy_yes(TK, cents(41), contracts(99)) for _ in range(3)],
            2: lambda c: c.buy_yes(TK, cents(31), contracts(1))}
    s, node, rep = _bt(tmp_path, rec, acts, max_order_size=contracts(10), kill_reject_count=3,
                       kill_reject_window_ns=10**9)
    assert node.kill.reason.startswith("reject spike")
    assert node.risk.state is TradingState.HALTED
    assert _resting_at_core(node) == []
    assert node.oms.get("kp-1").status is OrderStatus.CANCELED
    assert node.oms.get("kp-5").status is OrderStatus.REJECTED  # after the halt
    assert rep["risk_rejections"] == {"halted": 1, "max_order_size": 3}


def test_kill_switch_on_a_stale_book_of_a_traded_market(tmp_path):
    yes, no = book()
    # a delta that drives a level negative: the plant marks the book stale
    rec = Rec().snapshot(0, yes, no).delta(100, "yes", "0.4000", "1.00").delta(
        300, "yes", "0.3000", "-5.00")
    s, node, _ = _bt(tmp_path, rec, {0: lambda c: c.buy_yes(TK, cents(35), contracts(1))},
                     kill_on_stale_book=True)
    assert "not live" in node.kill.reason or "stale" in node.kill.reason
    assert node.risk.state is TradingState.HALTED and _resting_at_core(node) == []


def test_kill_switch_on_the_daily_loss_limit(tmp_path):
    yes, no = book("0.40", "0.60", "10.00")
    rec = Rec().snapshot(0, yes, no).delta(100, "yes", "0.4000", "1.00")
    acts = {0: lambda c: [c.buy_yes(TK, cents(60), contracts(5), tif="immediate_or_cancel"),
                          c.buy_yes(TK, cents(20), contracts(1))]}
    s, node, _ = _bt(tmp_path, rec, acts, daily_loss_limit=5 * 10**7)
    # $0.50: 5 x (0.60 paid - 0.50 mid) plus the taker fee
    assert node.kill.reason.startswith("daily loss")
    assert node.risk.state is TradingState.HALTED and _resting_at_core(node) == []


def test_manual_kill(tmp_path):
    yes, no = book()
    rec = Rec().snapshot(0, yes, no).delta(100, "yes", "0.4000", "1.00").delta(
        200, "yes", "0.4000", "1.00")
    acts = {0: lambda c: c.buy_yes(TK, cents(30), contracts(1)), 1: lambda c: c.kill("operator")}
    s, node, _ = _bt(tmp_path, rec, acts)
    assert node.kill.reason == "operator" and _resting_at_core(node) == []


def test_reducing_state_set_by_the_strategy_lets_only_reductions_through(tmp_path):
    yes, no = book("0.40", "0.45", "50.00")
    rec = Rec().snapshot(0, yes, no)
    for i in range(1, 4):
        rec.delta(100 * i, "yes", "0.4000", "1.00")
    acts = {0: lambda c: c.buy_yes(TK, cents(45), contracts(3), tif="immediate_or_cancel"),
            1: lambda c: c.set_state("reducing"),
            2: lambda c: [c.buy_yes(TK, cents(45), contracts(1), tif="immediate_or_cancel"),
                          c.sell_yes(TK, cents(40), contracts(2), tif="immediate_or_cancel")]}
    s, node, rep = _bt(tmp_path, rec, acts)
    assert node.portfolio.pos(TK) == contracts(1)
    assert rep["risk_rejections"] == {"reducing": 1}
    assert node.risk.state is TradingState.REDUCING


def test_daily_loss_kill_on_a_market_move_without_a_fill(tmp_path):
    yes, no = book("0.40", "0.42", "50.00")
    rec = (Rec().snapshot(0, yes, no).delta(100, "yes", "0.4000", "1.00")
           .delta(200, "yes", "0.4000", "-51.00").delta(200, "yes", "0.3000", "10.00"))
    acts = {0: lambda c: [c.buy_yes(TK, cents(42), contracts(10), tif="immediate_or_cancel"),
                          c.buy_yes(TK, cents(20), contracts(1))]}
    s, node, _ = _bt(tmp_path, rec, acts, daily_loss_limit=5 * 10**7)
    # bought 10 at 0.42 (fees ~0.17): fine at the 0.41 mid; the bid falls to 0.30: mid 0.36
    assert node.kill.reason.startswith("daily loss") and len(node.fills) == 1
    assert _resting_at_core(node) == []


def test_manual_kill_by_signal(tmp_path):
    import os
    import signal

    if not hasattr(signal, "SIGUSR1"):
        pytest.skip("no SIGUSR1 on this platform")
    yes, no = book()
    rec = Rec().snapshot(0, yes, no)
    for i in range(1, 5):
        rec.delta(100 * i, "yes", "0.4000", "1.00")
    acts = {0: lambda c: c.buy_yes(TK, cents(30), contracts(1)),
            1: lambda c: os.kill(os.getpid(), signal.SIGUSR1)}
    old = signal.getsignal(signal.SIGUSR1)
    rep, node = run_backtest(Script(acts), rec.write(tmp_path / "r.jsonl"), risk=OFF,
                             config=BacktestConfig(order_latency_ns=10**6), kill_signal=True)
    assert signal.getsignal(signal.SIGUSR1) is old  # restored after the run
    assert node.kill.reason == "manual (SIGUSR1)" and rep["trading_state"] == "halted"
    assert _resting_at_core(node) == []


def test_amend_is_checked_like_an_order():
    w = World(max_position=contracts(10), max_order_size=contracts(8))
    o = Order("kp-1", TK, Side.YES, Action.BUY, cents(40), contracts(5),
              status=OrderStatus.RESTING)
    w.orders.append(o)
    assert w.risk.check_amend(o, cents(41), contracts(5), 0) is None
    assert w.risk.check_amend(o, cents(41), contracts(9), 1).code == "max_order_size"
    w.pos[TK] = contracts(4)
    assert w.risk.check_amend(o, cents(40), contracts(7), 2).code == "max_position"  # 4+5+2
    w.risk.state = TradingState.HALTED
    assert w.risk.check_amend(o, cents(39), contracts(5), 3).code == "halted"


def test_venue_rejects_are_counted_and_feed_the_kill_switch(tmp_path):
    """A post-only order that would cross is refused by the core: a venue reject with its
    code, counted, and three of them trip the reject-spike kill switch."""
    yes, no = book("0.40", "0.45", "10.00")
    rec = Rec().snapshot(0, yes, no)
    for i in range(1, 5):
        rec.delta(100 * i, "yes", "0.4000", "1.00")
    acts = {i: (lambda c: c.buy_yes(TK, cents(45), contracts(1), post_only=True))
            for i in range(3)}
    s, node, rep = _bt(tmp_path, rec, acts, kill_reject_count=3)
    assert rep["risk_rejections"] == {"venue:post_only_cross": 3}
    assert [r["source"] for r in rep["rejections"]] == ["venue"] * 3
    assert node.oms.get("kp-1").status is OrderStatus.REJECTED
    assert node.kill.reason.startswith("reject spike")
