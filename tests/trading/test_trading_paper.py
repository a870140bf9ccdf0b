"""Paper trading against the exchange simulator vs the backtest (issue 14 Acceptance
"Parity"; docs/trading.md "Paper and live").

The sim runs as ``kalshi-platform sim --replay FILE --liquidity --speed 0`` does (SimServer +
attach_trading with the recording's liquidity, replay as fast as possible); the strategy runs
on a :class:`RestVenue` over the sim's real REST and WS. The backtest (run_backtest, zero
latency) is the oracle.

* **Same fills** when the fills cannot depend on timing: a recording where each market's
  trigger is its last book change (the taker's IOC meets the same book in both, however late
  it arrives in paper).
* **Where they differ** (each asserted below):
  1. *Self-visibility.* The sim publishes its engine's book, which holds our resting orders:
     in paper the strategy's local book shows its own quotes on top of the recorded size; in
     a backtest the strategy's book is the recording's (our orders live only in the core).
  2. *Fees.* The wire's ``fee_cost`` is the trade fee floored to $0.000001; the backtest's
     fill fee is the core's fee plus the rounding fee (what the cash moved).
  3. *Snapshots arrive level by level.* The sim's liquidity follower builds each recorded
     snapshot in the engine one level at a time, and the sim publishes every engine change:
     the strategy sees BBO rows the recording never had (a book with one side, an ask that
     steps in level by level) before the recorded one. A strategy that reacts to every BBO
     change (the taker) trades on them in paper and not in the backtest.
  4. *Time.* At ``--speed 0`` the recording's 56 s are replayed in a fraction of a second:
     the strategy's reactions reach the sim after later recorded changes (not asserted: a
     race by construction), and wall-clock checks (order rate, timers) see compressed time.
"""

from __future__ import annotations

import pytest

from conftest import COCKPIT, wait_until
from paper_support import NodeThread, SimThread, signer
from trading_support import Rec
from kalshi_platform.trading import Strategy, contracts
from examples.taker import Taker
from kalshi_platform.trading.risk_config import risk_config_from_dict
from kalshi_platform.trading.run import run_backtest

P1 = 1_000_000
MARKETS = [f"KXPAR-26AUG07-{c}" for c in "ABCD"]


def _static_trigger_recording(path):
    """Four markets; each gets a one-level snapshot (YES bid 0.40, YES ask 0.45), then one
    better level (A, B: a YES bid at 0.41, mid up: the taker buys at the ask; C, D: a NO bid
    at 0.57 = YES ask 0.43, mid down: it sells at the bid), and nothing after that."""
    r = Rec()
    for i, tk in enumerate(MARKETS):
        r.snapshot(10 * i, [("0.40", "100.00")], [("0.55", "100.00")], ticker=tk)
    for i, tk in enumerate(MARKETS):
        at = 100 + 50 * i
        if i < 2:
            r.delta(at, "yes", "0.41", "30.00", ticker=tk)
        else:
            r.delta(at, "no", "0.57", "30.00", ticker=tk)
    return r.write(path)


def _key(f) -> tuple:
    return (f.ticker, f.side.value, f.action.value, f.count, f.yes_price, f.is_taker)


def _paper(recording, strategy, tickers, risk=None, settle_when=None):
    with SimThread(recording) as sim:
        with NodeThread(sim, strategy, tickers, key=signer("alice"), risk=risk) as nt:
            wait_until(sim.replay_done, 30, "replay done")
            if settle_when is not None:
                wait_until(lambda: nt.on_loop(lambda: settle_when(nt)), 20, "paper settled")
            return nt, sim


def test_parity_taker_same_fills_as_zero_latency_backtest(tmp_path):
    rec = _static_trigger_recording(tmp_path / "static.jsonl")
    cfg = {"size": 2, "max_position": 10}
    rep, bt = run_backtest(Taker(cfg), rec)
    assert len(bt.fills) == 4  # the oracle trades once per market
    want = sorted(_key(f) for f in bt.fills)
    assert want == sorted([(MARKETS[0], "yes", "buy", 200, 450000, True),
                           (MARKETS[1], "yes", "buy", 200, 450000, True),
                           (MARKETS[2], "yes", "sell", 200, 400000, True),
                           (MARKETS[3], "yes", "sell", 200, 400000, True)])
    nt, _ = _paper(rec, Taker(cfg), MARKETS,
                   settle_when=lambda nt: len(nt.node.fills) >= 4 and not
                   nt.node.oms.open_orders())
    paper = nt.node
    assert sorted(_key(f) for f in paper.fills) == want
    assert {t: paper.portfolio.pos(t) for t in MARKETS} == \
        {t: bt.portfolio.pos(t) for t in MARKETS}
    # difference 2: the wire fee is the trade fee floored to the micro-dollar, without the
    # rounding fee the core charges on top (always >= 0, below one cent per fill)
    bt_fee = {_key(f): f.fee for f in bt.fills}
    for f in paper.fills:
        extra = bt_fee[_key(f)] - f.fee
        assert 0 <= extra < 1_000_000, (f, extra)


class _FarQuoter(Strategy):
    """Once per market, at its first two-sided BBO: a YES bid and a NO bid 10 ticks behind
    the touch (1 contract each); never requotes."""

    def on_start(self) -> None:
        self.done: set[str] = set()

    def on_bbo(self, bbo) -> None:
        if bbo.state != "live" or bbo.yes_bid is None or bbo.yes_ask is None \
                or bbo.ticker in self.done:
            return
        self.done.add(bbo.ticker)
        tick = 10_000
        self.ctx.buy_yes(bbo.ticker, max(bbo.yes_bid - 10 * tick, tick), contracts(1))
        self.ctx.buy_no(bbo.ticker, max(P1 - bbo.yes_ask - 10 * tick, tick), contracts(1))


@pytest.mark.skipif(not COCKPIT.is_file(), reason="bundled recording missing")
def test_paper_book_shows_own_quotes_backtest_book_does_not():
    """Difference 1, on the bundled real recording: once the replay is over and the quotes
    rest at the sim, the strategy's local book at each quoted level is the recorded final size
    (the backtest's local book at the end: the oracle) plus its own remaining count; in the
    backtest it is the recorded size alone."""
    risk = risk_config_from_dict({"max_orders_per_s": 100})  # 24 orders at once (at speed 0)
    _, bt = run_backtest(_FarQuoter(), COCKPIT, risk=risk)
    assert len(bt.oms.open_orders()) == 24 and not bt.fills  # resting, never filled
    with SimThread(COCKPIT) as sim:
        tickers = sorted(sim.call(lambda: list(sim.exchange.markets)))
        with NodeThread(sim, _FarQuoter(), tickers, key=signer("alice"), risk=risk) as nt:
            wait_until(sim.replay_done, 30, "replay done")

            def settled() -> int:
                n = nt.node
                if nt.venue.in_flight or len(n.oms.open_orders()) < 20 or any(
                        o.status.value != "resting" for o in n.oms.open_orders()):
                    return 0
                return _own_size_in_book(n, bt)

            # the public WS may show a quote a little after its REST answer: poll until every
            # quoted level shows it (a level that never does fails here)
            wait_until(lambda: nt.on_loop(settled) >= 20, 20,
                       "every quote visible in the local book on top of the recorded size")


def _own_size_in_book(paper, bt) -> int:
    """For every market without a fill of ours, each level holding our resting orders: the paper
    book's size = the backtest's (recorded) size + ours. Returns how many levels matched (0
    when one did not)."""
    filled = {f.ticker for f in paper.fills}  # (a maker fill leaves a deficit at its level)
    n = 0
    for o in paper.oms.open_orders():
        if o.ticker in filled:
            continue
        ladder = "yes" if o.is_bid else "no"
        price = o.yes_price if o.is_bid else P1 - o.yes_price
        mine = sum(x.remaining for x in paper.oms.open_orders(o.ticker)
                   if x.is_bid == o.is_bid and x.yes_price == o.yes_price)
        recorded = getattr(bt.books.books[o.ticker], ladder).get(price, 0)
        seen = getattr(paper.books.books[o.ticker], ladder).get(price, 0)
        if seen != recorded + mine:
            return 0
        n += 1
    return n


class _Watch(Strategy):  # a Strategy that only records the BBO rows it sees
    def __init__(self) -> None:
        super().__init__({})
        self.rows: list[tuple] = []

    def on_bbo(self, bbo) -> None:
        self.rows.append((bbo.ticker, bbo.yes_bid, bbo.yes_ask))


def test_paper_sees_snapshot_levels_one_by_one(tmp_path):
    """Difference 3: a two-level snapshot per side. The backtest's strategy sees the recorded
    BBO once per market; in paper the same books arrive one engine level at a time, so there
    are intermediate rows (one-sided, or a worse ask/bid) before the recorded one."""
    r = Rec()
    for i, tk in enumerate(MARKETS):
        r.snapshot(10 * i, [("0.38", "50.00"), ("0.40", "100.00")],
                   [("0.50", "80.00"), ("0.55", "100.00")], ticker=tk)
    rec = r.write(tmp_path / "two_levels.jsonl")
    _, bt = run_backtest(bw := _Watch(), rec)
    assert sorted(bw.rows) == sorted((tk, 400000, 450000) for tk in MARKETS)
    pw = _Watch()
    with SimThread(rec) as sim:
        with NodeThread(sim, pw, MARKETS, key=signer("alice")):
            wait_until(sim.replay_done, 30, "replay done")
            wait_until(lambda: {tk for tk, b, a in pw.rows if (b, a) == (400000, 450000)}
                       == set(MARKETS), 20, "recorded BBO reached in paper")
    for tk in MARKETS:
        mine = [(b, a) for t, b, a in pw.rows if t == tk]
        assert mine[-1] == (400000, 450000)  # the same book in the end
        assert len(set(mine)) >= 3, mine  # ... after rows the recording never had
        assert any(b is None or a is None or (b, a) != (400000, 450000) for b, a in mine[:-1])
