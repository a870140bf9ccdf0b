"""PnL equals an independent recomputation from the fills and the settlement, and the
exchange core's own cash agrees (issue 14 §4)."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest
from trading_support import Rec

from kalshi_platform.trading import RiskConfig, Strategy, contracts
from kalshi_platform.trading.backtest import BacktestConfig
from kalshi_platform.trading.portfolio import Portfolio
from kalshi_platform.trading.report import max_drawdown
from kalshi_platform.trading.run import run_backtest

A, B = "KXTEST-26AUG07-A", "KXTEST-26AUG07-B"


def _walk(seed: int, steps: int = 150) -> Rec:
    rng = random.Random(seed)
    rec, mids = Rec(), {A: 40, B: 60}
    for i in range(steps):
        t = rng.choice((A, B))
        mids[t] = min(max(mids[t] + rng.choice((-1, 0, 1)), 5), 95)
        m, w = mids[t], rng.choice((1, 2))
        rec.snapshot(i * 50, [(f"0.{m - w:02d}00", "20.00"), (f"0.{m - w - 1:02d}00", "50.00")],
                     [(f"0.{100 - m - w:02d}00", "20.00")], ticker=t)
    return rec


class RandomTrader(Strategy):
    """IOC and resting orders of random sides at or near the touch (seeded)."""

    def on_bbo(self, bbo) -> None:
        r = self.ctx.random
        if bbo.state != "live" or r.random() < 0.3:
            return
        size = contracts(r.randint(1, 4))
        kind = r.randrange(4)
        place = (self.ctx.buy_yes, self.ctx.sell_yes, self.ctx.buy_no, self.ctx.sell_no)[kind]
        yes = bbo.yes_ask if kind in (0, 3) else bbo.yes_bid  # take the touch
        if r.random() < 0.3:  # or rest one tick worse
            yes += -10_000 if kind in (0, 3) else 10_000
        price = yes if kind < 2 else 1_000_000 - yes
        tif = "immediate_or_cancel" if r.random() < 0.6 else "good_till_canceled"
        place(bbo.ticker, price, size, tif=tif)


class _CoreFill:
    """An exchange-core fill seen through the oracle's four fields."""

    def __init__(self, x) -> None:
        self.count, self.yes_price, self.ticker = x.count, x.yes_price, x.ticker
        self.is_bid = x.book_side == "bid"
        self.fee = x.fee_cost + x.rounding_fee


def _oracle(fills, marks: dict) -> Fraction:
    """Net PnL in dollars: YES-equivalent cash flows of every fill, minus fees, plus the
    final position at its mark (settlement: $1 yes, $0 no; else the mid)."""
    cash, pos = Fraction(0), {}
    for f in fills:
        q, p = Fraction(f.count, 100), Fraction(f.yes_price, 10**6)
        signed = q if f.is_bid else -q
        cash -= signed * p + Fraction(f.fee, 10**8)
        pos[f.ticker] = pos.get(f.ticker, 0) + signed
    return cash + sum(q * marks[t] for t, q in pos.items())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pnl_equals_recomputation_from_fills_and_settlement(tmp_path, seed):
    path = _walk(seed).write(tmp_path / "walk.jsonl")
    cfg = BacktestConfig(order_latency_ns=3 * 10**6, settle={A: "yes", B: "no"})
    rep, node = run_backtest(RandomTrader(), path, config=cfg, risk=RiskConfig.unlimited(),
                             seed=seed)
    assert len(node.fills) > 20 and {f.ticker for f in node.fills} == {A, B}
    assert any(f.is_taker for f in node.fills) and any(not f.is_taker for f in node.fills)
    want = _oracle(node.fills, {A: Fraction(1), B: Fraction(0)})
    got = node.pnl()
    assert Fraction(got["net"], 10**8) == want
    assert got["unrealized"] == 0 and all(p.pos == 0 for p in node.portfolio.positions.values())
    # the exchange core's cash moved by exactly our net PnL (fees and rounding included)
    core = node.venue.core
    assert core.balance("strategy")["cash"] - cfg.deposit_cents * 10**6 == got["net"]
    # the core's own fill records (its structs, not ours) give the same number
    assert _oracle([_CoreFill(x) for x in core.fills["strategy"]], {A: 1, B: 0}) == want
    # per event: both markets are one event
    ev = node.portfolio.by_event(node.tops())
    assert list(ev) == ["KXTEST-26AUG07"] and ev["KXTEST-26AUG07"]["net"] == got["net"]
    assert Decimal(rep["pnl"]["net"]) == Decimal(got["net"]).scaleb(-8)


def test_unrealized_at_mid_and_liquidation_before_settlement(tmp_path):
    path = _walk(5).write(tmp_path / "walk.jsonl")
    rep, node = run_backtest(RandomTrader(), path, risk=RiskConfig.unlimited(), seed=5)
    tops = node.tops()
    mids = {t: Fraction(b + a, 2 * 10**6) for t, (b, a) in tops.items()}
    got = node.pnl("mid")
    assert Fraction(got["net"], 10**8) == _oracle(node.fills, mids)
    liq = node.pnl("liquidation")
    for t, p in node.portfolio.positions.items():
        bid, ask = tops[t]
        mark = Fraction(bid if p.pos > 0 else ask, 10**6)
        val = Fraction(p.pos, 100) * mark if p.pos > 0 else Fraction(-p.pos, 100) * (1 - mark)
        assert Fraction(p.unrealized(bid, ask, "liquidation"), 10**8) == val - Fraction(p.cost, 10**8)
    assert liq["unrealized"] <= got["unrealized"]  # liquidation pays the spread
    assert Fraction(max_drawdown(node.recorder.curve)) >= 0


def test_average_cost_realized_and_void():
    from kalshi_platform.trading import Action, Fill, Side

    pf = Portfolio()

    def fill(side, action, count, yes):
        return Fill(f"f{len(pf.positions)}{count}{yes}", "v", A, Side(side), Action(action),
                    count, yes, True, 0, 0)

    pf.apply_fill(fill("yes", "buy", 1000, 400_000))   # 10 YES at 0.40
    pf.apply_fill(fill("yes", "buy", 1000, 500_000))   # 10 more at 0.50: avg 0.45
    pf.apply_fill(fill("no", "buy", 500, 600_000))     # buy 5 NO at 0.40 = sell 5 YES at 0.60
    p = pf.positions[A]
    assert p.pos == 1500 and p.cost == 1500 * 450_000
    assert p.realized == 500 * (600_000 - 450_000)
    cost = p.cost
    assert pf.apply_settlement(A, "void") == cost
    assert p.realized == 500 * 150_000 and p.pos == 0
