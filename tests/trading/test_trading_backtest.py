"""Backtest venue: the queue model, latency, recorded trades and determinism (issue 14 §5)."""

from __future__ import annotations

import json

import pytest
from trading_support import TK, Rec, Script, book

from conftest import COCKPIT
from kalshi_platform.trading import OrderStatus, RiskConfig, cents, contracts
from kalshi_platform.trading.backtest import BacktestConfig
from kalshi_platform.trading.run import load_strategy, run_backtest

FREE = RiskConfig.unlimited()


def _run(tmp_path, rec: Rec, actions, latency_ms=0, feed_ms=0, settle=None):
    path = rec.write(tmp_path / "rec.jsonl")
    s = Script(actions)
    cfg = BacktestConfig(order_latency_ns=latency_ms * 10**6, feed_latency_ns=feed_ms * 10**6,
                         settle=settle or {})
    report, node = run_backtest(s, path, config=cfg, risk=FREE)
    return s, node, report


def test_order_queues_behind_recorded_size_and_fills_only_when_it_is_gone(tmp_path):
    """Our bid joins 100 recorded contracts at 0.40. Recorded cancels come off the back (none
    behind us: the level shrinks to 60 ahead); a recorded trade of 70 takes those 60 and 10 of
    our 20. Then the level's recorded delta of -70 is absorbed, nothing taken twice."""
    yes, no = book("0.40", "0.45")
    rec = (Rec().snapshot(0, yes, no)
           .delta(100, "yes", "0.4000", "-40.00")   # 100 -> 60: the market's order ahead of us
           .trade(200, "0.40", "70.00", "no")       # someone sells 70 YES at 0.40
           .delta(200, "yes", "0.4000", "-70.00")   # the feed's level change for that trade
           .delta(300, "yes", "0.4000", "5.00"))    # new size joins behind us
    s, node, _ = _run(tmp_path, rec, {0: lambda c: c.buy_yes(TK, cents(40), contracts(20))})
    o = s.placed[0]
    assert [f.count for f in node.fills] == [contracts(10)]
    assert node.fills[0].yes_price == cents(40) and not node.fills[0].is_taker
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.filled == contracts(10)
    # our 10 left at the front of 0.40, then the 5 that joined behind: kept as the level's
    # tail (nothing can trade with it before ours), placed in the core when needed
    snap = node.venue.core.book_snapshot(TK)
    assert dict(snap["yes"])[cents(40)] == contracts(10)
    assert node.venue.core.queue_position(o.venue_order_id) == 0
    lv = node.venue.follower.levels[(TK, "yes", cents(40))]
    assert lv.tail == contracts(5) and lv.resting() == 0


def test_recorded_decrease_does_not_advance_our_queue_when_size_behind_us(tmp_path):
    """Size that joined behind our order is what a recorded decrease removes first."""
    yes, no = book("0.40", "0.45")
    rec = (Rec().snapshot(0, yes, no).delta(200, "yes", "0.4000", "50.00")
           .delta(300, "yes", "0.4000", "-50.00"))
    s, node, _ = _run(tmp_path, rec, {0: lambda c: c.buy_yes(TK, cents(40), contracts(5))})
    o = s.placed[0]
    assert node.venue.core.queue_position(o.venue_order_id) == contracts(100)


def test_recorded_liquidity_crossing_our_better_price_fills_us_as_maker(tmp_path):
    """We bid 0.42 inside the 0.40/0.45 spread; the recorded ask drops to 0.42 (a NO bid at
    0.58): we are filled at our price, as the maker, and the level shows what is left."""
    yes, no = book("0.40", "0.45")
    rec = Rec().snapshot(0, yes, no).delta(500, "no", "0.5800", "30.00")
    s, node, _ = _run(tmp_path, rec, {0: lambda c: c.buy_yes(TK, cents(42), contracts(10))})
    assert [(f.count, f.yes_price, f.is_taker) for f in node.fills] == [
        (contracts(10), cents(42), False)]
    assert node.portfolio.pos(TK) == contracts(10)
    snap = node.venue.core.book_snapshot(TK)
    assert dict(snap["no"])[cents(58)] == contracts(20)


def test_taking_liquidity_leaves_a_deficit_that_does_not_reappear(tmp_path):
    yes, no = book("0.40", "0.45", "10.00")
    rec = Rec().snapshot(0, yes, no).delta(300, "no", "0.5500", "3.00")
    s, node, _ = _run(tmp_path, rec, {0: lambda c: c.buy_yes(TK, cents(45), contracts(4),
                                                            tif="immediate_or_cancel")})
    assert sum(f.count for f in node.fills) == contracts(4)
    # recorded 10 -> 13 at the NO bid 0.55; we took 4: 9 left (6 in the core, the 3 that
    # joined since as the level's tail)
    lv = node.venue.follower.levels[(TK, "no", cents(55))]
    assert lv.deficit == contracts(4) and lv.resting() + lv.tail == contracts(9)
    assert dict(node.venue.core.book_snapshot(TK)["no"])[cents(55)] == lv.resting()


def test_latency_delays_the_order_and_the_strategy_sees_events_late(tmp_path):
    """With 50 ms order latency our IOC reaches the core after the recorded ask moved up:
    it fills at the new, worse ask... or not at all at its limit. Feed latency shifts when
    the strategy sees each BBO row."""
    yes, no = book("0.40", "0.45", "10.00")
    rec = (Rec().snapshot(0, yes, no).delta(20, "no", "0.5500", "-10.00")
           .delta(20, "no", "0.5300", "10.00"))
    buy = {0: lambda c: c.buy_yes(TK, cents(45), contracts(1), tif="immediate_or_cancel")}
    _, fast, _ = _run(tmp_path, rec, buy, latency_ms=0)
    _, slow, _ = _run(tmp_path, rec, buy, latency_ms=50)
    assert [f.yes_price for f in fast.fills] == [cents(45)]
    assert slow.fills == [] and slow.oms.get("kp-1").status is OrderStatus.CANCELED
    s, _, _ = _run(tmp_path, rec, {}, feed_ms=7)
    first = s.seen[0][1]
    assert first == (1_786_085_188_000 + 7) * 10**6


def test_settlement_pays_the_position(tmp_path):
    yes, no = book("0.40", "0.45", "10.00")
    rec = Rec().snapshot(0, yes, no).delta(100, "yes", "0.4000", "1.00")
    _, node, rep = _run(tmp_path, rec, {0: lambda c: c.buy_yes(TK, cents(45), contracts(2))},
                        settle={TK: "yes"})
    p = node.portfolio.positions[TK]
    assert p.pos == 0 and p.settled == contracts(2) * 1_000_000 and p.result == "yes"
    assert rep["positions"][TK]["result"] == "yes"


EXAMPLES = ["examples.market_maker:MarketMaker", "examples.taker:Taker"]


@pytest.mark.parametrize("spec", EXAMPLES)
def test_examples_run_on_the_bundled_recording_deterministically(spec):
    from kalshi_platform.trading.risk_config import load_risk_config
    from conftest import REPO_ROOT

    risk = load_risk_config(REPO_ROOT / "examples" / "market_maker.toml")
    reports = []
    for _ in range(2):
        rep, node = run_backtest(load_strategy(spec)(), COCKPIT, risk=risk, seed=7,
                                 config=BacktestConfig(order_latency_ns=2 * 10**6))
        rep.pop("elapsed_s")
        reports.append(json.dumps(rep, sort_keys=True))
        assert node.kill.reason == "" and not node.rejections
    assert reports[0] == reports[1]
    rep = json.loads(reports[0])
    assert rep["frames"] == 269 and rep["orders"] > 0
    if spec.endswith("Taker"):  # the recording's one moving book: BOS's bid flickers
        assert rep["fill_count"] == 4
        assert {f["ticker"] for f in rep["fills"]} == {"KXMLBGAME-26AUG071910ATHBOS-BOS"}


def _fills(node):
    """Fills without the core's ids (its counters also number the market's orders)."""
    return [(node.oms.by_venue(f.venue_order_id).client_order_id, f.ticker, f.side, f.action,
             f.count, f.yes_price, f.is_taker, f.fee, f.ts_ns) for f in node.fills]


@pytest.mark.parametrize("spec", EXAMPLES + ["random"])
def test_lazy_levels_give_the_same_fills_as_every_level_in_the_core(tmp_path, spec):
    """The follower keeps only the levels that can matter in the core; with every level kept
    (lazy_levels=False) the fills are identical. On a random walk with trades (random trader)
    and on a synthetic multi-market recording from the bench generator."""
    from test_trading_pnl import RandomTrader, _walk

    from kalshi_platform.bench.synth import write_synthetic_recording

    if spec == "random":
        rec = _walk(11)
        for i in range(30):  # and some recorded trades on both sides
            rec.trade(i * 250 + 25, "0.4000" if i % 2 else "0.3900", "3.00",
                      "yes" if i % 3 else "no", ticker="KXTEST-26AUG07-A")
        path = rec.write(tmp_path / "walk.jsonl")
        make = RandomTrader
    else:
        path = tmp_path / "synth.jsonl"
        write_synthetic_recording(COCKPIT, path, 6000, 2)
        make = load_strategy(spec)
    got = []
    for lazy in (True, False):
        cfg = BacktestConfig(order_latency_ns=10**6, lazy_levels=lazy)
        _, node = run_backtest(make({"size": 2}), path, config=cfg, risk=FREE, seed=3)
        got.append(_fills(node))
        if not lazy:
            assert node.venue.follower.stats["materialized"] > 0
    assert got[0] == got[1]
    if spec != "examples.market_maker:MarketMaker":
        assert len(got[0]) > 0


def test_venue_stop_ends_the_replay_early(tmp_path):
    yes, no = book()
    rec = Rec().snapshot(0, yes, no)
    for i in range(1, 20):
        rec.delta(100 * i, "yes", "0.4000", "1.00")
    s, node, rep = _run(tmp_path, rec, {3: lambda c: c._node.venue.stop()})
    assert s.bbos == 4 and rep["frames"] == 4


def test_same_recording_strategy_and_seed_give_identical_reports_with_latency(tmp_path):
    """Determinism with both latencies on, many fills (a random trader on a random walk with
    recorded trades), and a different seed giving a different run."""
    from test_trading_pnl import RandomTrader, _walk

    rec = _walk(21, steps=300)
    for i in range(40):
        rec.trade(i * 300 + 10, "0.4000", "2.00", "yes" if i % 2 else "no",
                  ticker="KXTEST-26AUG07-A")
    path = rec.write(tmp_path / "w.jsonl")
    cfg = BacktestConfig(order_latency_ns=3 * 10**6, feed_latency_ns=2 * 10**6)

    def report(seed):
        rep, node = run_backtest(RandomTrader(), path, config=cfg, risk=FREE, seed=seed)
        rep.pop("elapsed_s")
        return json.dumps(rep, sort_keys=True), len(node.fills)

    (a, n), (b, _), (c, _) = report(4), report(4), report(5)
    assert n > 30 and a == b and a != c
