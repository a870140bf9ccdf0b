"""The strategy API (issue 14 §1): callbacks with normalized events, timers on the venue
clock, the context's state views."""

from __future__ import annotations

from trading_support import T0_MS, TK, Rec, book

from kalshi_platform.trading import RiskConfig, Strategy, cents, contracts
from kalshi_platform.trading.backtest import BacktestConfig
from kalshi_platform.trading.run import run_backtest


class Watcher(Strategy):
    def on_start(self) -> None:
        self.log = []
        self.ctx.set_timer(100 * 10**6)  # every 100 ms of recording time

    def on_book(self, book) -> None:
        self.log.append(("book", self.ctx.now_ns, dict(book.yes), book.state))

    def on_bbo(self, bbo) -> None:
        self.log.append(("bbo", bbo.yes_bid, bbo.yes_ask))
        if len([x for x in self.log if x[0] == "bbo"]) == 1:
            self.ctx.buy_yes(TK, cents(40), contracts(2))

    def on_trade(self, trade) -> None:
        self.log.append(("trade", trade.yes_price, trade.count, trade.taker_side))

    def on_fill(self, fill) -> None:
        self.log.append(("fill", fill.count, fill.yes_price, self.ctx.position(TK)))

    def on_order(self, order) -> None:
        self.log.append(("order", order.client_order_id, order.status.value))

    def on_timer(self, ts_ns: int) -> None:
        self.log.append(("timer", ts_ns))

    def on_stop(self) -> None:
        self.log.append(("stop", len(self.ctx.open_orders()), self.ctx.positions))


def test_callbacks_timers_and_context_views(tmp_path):
    yes, no = book("0.40", "0.45", "10.00")
    rec = (Rec().snapshot(0, yes, no).delta(150, "yes", "0.4100", "3.00")
           .trade(420, "0.40", "15.00", "no").delta(420, "yes", "0.4100", "-3.00")
           .delta(420, "yes", "0.4000", "-10.00")
           .delta(1000, "yes", "0.4100", "3.00"))
    s = Watcher()
    rep, node = run_backtest(s, rec.write(tmp_path / "r.jsonl"), risk=RiskConfig.unlimited(),
                             config=BacktestConfig(order_latency_ns=10**6))
    kinds = [x[0] for x in s.log]
    assert kinds[0] == "book" and s.log[0][2] == {cents(40): contracts(10)}
    assert ("bbo", cents(40), cents(45)) in s.log
    assert ("trade", cents(40), contracts(15), "no") in s.log
    # the sell of 15 took the 3 at 0.41, then the 10 ahead of us at 0.40 and our 2: long 2
    assert ("fill", contracts(2), cents(40), contracts(2)) in s.log
    assert ("order", "kp-1", "resting") in s.log and ("order", "kp-1", "filled") in s.log
    timers = [x[1] for x in s.log if x[0] == "timer"]
    t0 = T0_MS * 10**6
    assert timers == [t0 + k * 100 * 10**6 for k in range(1, 11)]  # up to the last frame
    assert s.log[-1] == ("stop", 0, {TK: contracts(2)})
    assert node.ctx.book(TK).state == "live" and node.ctx.bbo(TK).yes_bid == cents(41)
