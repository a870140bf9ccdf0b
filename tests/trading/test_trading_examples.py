"""The example strategies (issue 14 §7): the market maker's quotes (skew, bid_yes + bid_no <
$1, never crossing) and its behaviour in a backtest; the taker's reaction to BBO changes."""

from __future__ import annotations

import itertools

from trading_support import TK, Rec, book

from kalshi_platform.fixedpoint import ONE_DOLLAR
from kalshi_platform.trading import RiskConfig, contracts
from kalshi_platform.trading.backtest import BacktestConfig
from kalshi_platform.trading.run import load_strategy, run_backtest

MM = load_strategy("examples.market_maker:MarketMaker")
TAKER = load_strategy("examples.taker:Taker")
C = 10_000


def _mm(**cfg):
    s = MM(cfg)
    s.on_start()
    return s


def test_quotes_keep_bid_yes_plus_bid_no_below_a_dollar_and_never_cross():
    for half, skew in itertools.product((0, 1, 3), (0, 1, 4)):
        s = _mm(half_spread_ticks=half, skew_ticks_per_10=skew)
        for bid in range(1, 98):
            for width in (1, 2, 5):
                ask = bid + width
                if ask > 99:
                    continue
                for pos in (-60, -10, 0, 10, 60):
                    qb, qa = s.quote_prices(bid * C, ask * C, contracts(pos))
                    assert qb + (ONE_DOLLAR - qa) < ONE_DOLLAR  # bid_yes + bid_no < $1
                    assert qb < ask * C and qa > bid * C      # never crosses the book
                    assert qb % C == 0 and qa % C == 0


def test_quotes_skew_away_from_inventory():
    s = _mm(half_spread_ticks=2, skew_ticks_per_10=1)
    flat = s.quote_prices(40 * C, 50 * C, 0)
    long = s.quote_prices(40 * C, 50 * C, contracts(20))
    short = s.quote_prices(40 * C, 50 * C, contracts(-20))
    assert long[0] < flat[0] and long[1] < flat[1]      # long: both quotes lower
    assert short[0] > flat[0] and short[1] > flat[1]    # short: both higher


def test_market_maker_is_filled_when_the_book_moves_through_it_and_then_skews(tmp_path):
    """Quoting 0.44/0.46 inside a 0.40/0.50 book; the recorded ask falls to 0.44 (a NO bid at
    0.56 of 5 contracts): the YES bid is filled as maker, the position is long 5, and the
    next quotes move down (skew) while keeping bid_yes + bid_no < $1."""
    yes, no = book("0.40", "0.50", "50.00")
    rec = (Rec().snapshot(0, yes, no).delta(100, "no", "0.5600", "5.00")
           .delta(200, "no", "0.5600", "-5.00").delta(300, "yes", "0.4000", "1.00"))
    s = MM({"half_spread_ticks": 1, "size": 5, "skew_ticks_per_10": 4})
    rep, node = run_backtest(s, rec.write(tmp_path / "r.jsonl"), risk=RiskConfig.unlimited(),
                             config=BacktestConfig(order_latency_ns=10**6))
    assert [(f.side.value, f.count, f.yes_price, f.is_taker) for f in node.fills] == [
        ("yes", contracts(5), 44 * C, False)]
    assert node.portfolio.pos(TK) == contracts(5)
    bid, ask = s.quotes[TK]["bid"], s.quotes[TK]["ask"]
    assert bid.price < 44 * C and bid.price + ask.price < ONE_DOLLAR
    assert rep["orders_by_status"].get("canceled", 0) >= 1  # on_stop cancels its quotes


def test_taker_buys_up_moves_and_sells_down_moves(tmp_path):
    yes, no = book("0.40", "0.42", "50.00")
    rec = (Rec().snapshot(0, yes, no).delta(100, "yes", "0.4100", "10.00")  # bid up: buy
           .delta(200, "yes", "0.4100", "-10.00"))                        # bid down: sell
    rep, node = run_backtest(TAKER({"size": 3}), rec.write(tmp_path / "r.jsonl"),
                             risk=RiskConfig.unlimited())
    assert [(f.action.value, f.yes_price) for f in node.fills] == [("buy", 42 * C),
                                                                    ("sell", 40 * C)]
    assert node.portfolio.pos(TK) == 0 and rep["pnl"]["realized"] == "-0.06000000"
