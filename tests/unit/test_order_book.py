"""OrderBook: bids-only ladders, YES ask = 1 − best NO bid, replace-on-snapshot, BookError.

Units: prices µ$ (1e-6 $), sizes centi-contracts. The randomized test checks the incremental
best-price tracking against a brute-force recompute from independent shadow ladders after
every single step.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from conftest import COCKPIT, read_lines
from kalshi_platform.ticker_plant.events import BBO, FeedEvent
from kalshi_platform.ticker_plant.order_book import LIVE, STALE, SYNCING, BookError, OrderBook
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

ONE = 1_000_000
C = 10_000  # one cent in µ$
K = 100  # one contract in centi-contracts


def book(yes=(), no=()) -> OrderBook:
    b = OrderBook("KX-TEST")
    b.apply_snapshot(list(yes), list(no))
    return b


def brute_top(yes: dict, no: dict):
    by = max(yes) if yes else None
    bn = max(no) if no else None
    return (by, yes[by] if yes else None, None if bn is None else ONE - bn,
            no[bn] if no else None)


# ---------------------------------------------------------------------------------------------
# snapshots


def test_new_book_is_syncing_and_empty():
    b = OrderBook("T")
    assert b.state == SYNCING
    assert b.top() == (None, None, None, None)
    assert b.depth() == ([], [])
    assert not b.is_crossed()


def test_snapshot_goes_live_and_sets_bbo():
    b = book(yes=[(8 * C, 300 * K), (22 * C, 333 * K)], no=[(54 * C, 20 * K), (56 * C, 146 * K)])
    assert b.state == LIVE
    # best YES bid 0.22 x 333; best YES ask = 1 - best NO bid 0.56 = 0.44, size of that NO level
    assert b.top() == (22 * C, 333 * K, 44 * C, 146 * K)


def test_snapshot_replaces_never_merges():
    b = book(yes=[(40 * C, 10 * K), (41 * C, 5 * K)], no=[(55 * C, 7 * K), (50 * C, 1 * K)])
    b.apply_delta("yes", 45 * C, 3 * K)
    b.apply_snapshot([(30 * C, 1 * K)], [(10 * C, 2 * K)])
    assert b.yes == {30 * C: 1 * K}  # no ghost 0.40 / 0.41 / 0.45 levels
    assert b.no == {10 * C: 2 * K}
    assert b.top() == (30 * C, 1 * K, 90 * C, 2 * K)
    b.apply_snapshot([], [])
    assert b.yes == {} and b.no == {} and b.top() == (None, None, None, None)
    assert b.state == LIVE  # an empty book is still a valid, live book


def test_snapshot_drops_zero_levels():
    b = book(yes=[(40 * C, 0), (39 * C, 2 * K)], no=[(20 * C, 0)])
    assert b.yes == {39 * C: 2 * K} and b.no == {}
    assert b.top() == (39 * C, 2 * K, None, None)


def test_snapshot_restores_stale_book():
    b = book(yes=[(40 * C, 1 * K)])
    with pytest.raises(BookError):
        b.apply_delta("yes", 40 * C, -2 * K)
    assert b.state == STALE
    b.apply_snapshot([(41 * C, 1 * K)], [])
    assert b.state == LIVE and b.top()[0] == 41 * C


@pytest.mark.parametrize("level", [(40 * C, -1), (0, 1 * K), (ONE, 1 * K), (-C, 1 * K)])
def test_bad_snapshot_level_is_book_error_and_stale(level):
    b = book(yes=[(40 * C, 1 * K)])
    with pytest.raises(BookError):
        b.apply_snapshot([(30 * C, 1 * K)], [level])
    assert b.state == STALE


# ---------------------------------------------------------------------------------------------
# deltas


def test_delta_add_increase_decrease_remove():
    b = book(yes=[(40 * C, 10 * K)], no=[(55 * C, 7 * K)])
    assert b.apply_delta("yes", 42 * C, 5 * K) is True  # new best
    assert b.top()[:2] == (42 * C, 5 * K)
    assert b.apply_delta("yes", 30 * C, 1 * K) is False  # below the best: top unchanged
    assert b.yes[30 * C] == 1 * K
    assert b.apply_delta("yes", 42 * C, 250) is True  # size at best changes (fractional)
    assert b.top()[:2] == (42 * C, 5 * K + 250)
    assert b.apply_delta("yes", 42 * C, -(5 * K + 250)) is True  # best removed → next best
    assert 42 * C not in b.yes
    assert b.top()[:2] == (40 * C, 10 * K)
    assert b.apply_delta("yes", 30 * C, -1 * K) is False
    assert 30 * C not in b.yes
    # NO side moves the YES ask
    assert b.apply_delta("no", 57 * C, 3 * K) is True
    assert b.top()[2:] == (43 * C, 3 * K)
    b.apply_delta("no", 57 * C, -3 * K)
    assert b.top()[2:] == (45 * C, 7 * K)
    b.apply_delta("no", 55 * C, -7 * K)
    assert b.top() == (40 * C, 10 * K, None, None)
    assert b.state == LIVE


def test_sub_cent_levels():
    b = book(yes=[(1_000, 5 * K)], no=[(998_000, 1 * K)])  # 0.0010 / 0.9980
    assert b.top() == (1_000, 5 * K, 2_000, 1 * K)
    b.apply_delta("yes", 1_500, 1)
    assert b.top()[:2] == (1_500, 1)


def test_negative_level_is_book_error_and_stale_and_unchanged():
    b = book(yes=[(40 * C, 10 * K)], no=[(55 * C, 7 * K)])
    with pytest.raises(BookError):
        b.apply_delta("no", 55 * C, -8 * K)
    assert b.state == STALE
    assert b.no == {55 * C: 7 * K}  # the rejected delta changed nothing
    with pytest.raises(BookError):
        b.apply_delta("yes", 33 * C, -1)  # removing from an absent level
    assert 33 * C not in b.yes


def test_zero_delta_on_absent_level_changes_nothing():
    b = book(yes=[(40 * C, 10 * K)])
    assert b.apply_delta("yes", 41 * C, 0) is False
    assert b.yes == {40 * C: 10 * K}


def test_clear():
    b = book(yes=[(40 * C, 10 * K)], no=[(55 * C, 7 * K)])
    b.clear()
    assert b.state == SYNCING and b.top() == (None, None, None, None) and not b.yes


# ---------------------------------------------------------------------------------------------
# views


def test_depth_ordering_both_views():
    yes = [(8 * C, 300 * K), (22 * C, 333 * K), (15 * C, 1), (1_000, 2)]
    no = [(54 * C, 20 * K), (56 * C, 146 * K), (10 * C, 5), (999_000, 7)]
    b = book(yes=yes, no=no)
    bids, asks = b.depth()
    assert bids == sorted(yes, key=lambda lv: -lv[0])  # highest YES bid first
    assert [p for p, _ in bids] == [22 * C, 15 * C, 8 * C, 1_000]
    # YES asks = 1 - NO bid, lowest first; each keeps its NO level's size
    assert asks == [(1_000, 7), (44 * C, 146 * K), (46 * C, 20 * K), (90 * C, 5)]
    assert asks == sorted(asks)
    b2, a2 = b.depth(2)
    assert b2 == bids[:2] and a2 == asks[:2]
    assert b.depth(0) == ([], [])
    assert b.depth(100) == (bids, asks)
    assert (bids[0][0], bids[0][1], asks[0][0], asks[0][1]) == b.top()


@pytest.mark.parametrize("yes_bid, no_bid, crossed", [
    (60 * C, 45 * C, True),  # YES ask 0.55 < bid 0.60
    (60 * C, 40 * C, True),  # locked: ask == bid (Kalshi would have matched)
    (59 * C, 40 * C, False),
    (999_999, 1, True),
    (500_000, 499_999, False),
])
def test_is_crossed(yes_bid, no_bid, crossed):
    b = book(yes=[(yes_bid, 1 * K)], no=[(no_bid, 1 * K)])
    assert b.is_crossed() is crossed
    yb, _, ya, _ = b.top()
    assert (yb >= ya) is crossed


def test_one_sided_book_is_never_crossed():
    assert not book(yes=[(99 * C, 1)]).is_crossed()
    assert not book(no=[(99 * C, 1)]).is_crossed()


def test_bbo_and_to_dict():
    b = book(yes=[(47 * C, 300)], no=[(52 * C, 100)])
    q = b.bbo(ts_ns=123, seq=9, recv_ns=456)
    assert isinstance(q, BBO)
    assert q == BBO("KX-TEST", 123, 47 * C, 300, 48 * C, 100, 9, 456)
    assert q.mid == Decimal("0.475") and q.spread == Decimal("0.01")
    d = b.to_dict()
    assert d["state"] == "live"
    assert (d["yes_bid"], d["yes_bid_size"], d["yes_ask"], d["yes_ask_size"]) == (
        "0.4700", "3.00", "0.4800", "1.00")
    assert book().to_dict()["yes_bid"] is None


# ---------------------------------------------------------------------------------------------
# randomized: incremental tracking == brute force after every step


@pytest.mark.parametrize("seed", [1, 2, 3, 20260807])
def test_random_deltas_match_brute_force(seed):
    rng = random.Random(seed)
    # a small price pool (incl. sub-cent ticks and the extremes) so levels collide and best
    # levels get removed often
    pool = sorted({rng.randrange(1, ONE) for _ in range(25)} | {1, 1_000, 10_000, 990_000, ONE - 1})
    yes: dict[int, int] = {}
    no: dict[int, int] = {}
    b = OrderBook("R")
    b.apply_snapshot([], [])
    removed_best = 0
    for step in range(4_000):
        r = rng.random()
        side = "yes" if rng.random() < 0.5 else "no"
        ladder = yes if side == "yes" else no
        if r < 0.01:  # occasional full replacement
            yes = {p: rng.randint(1, 10**6) for p in rng.sample(pool, rng.randint(0, 8))}
            no = {p: rng.randint(1, 10**6) for p in rng.sample(pool, rng.randint(0, 8))}
            b.apply_snapshot(list(yes.items()), list(no.items()))
        elif r < 0.55 or not ladder:
            p = rng.choice(pool)
            d = rng.randint(1, 5_000)
            ladder[p] = ladder.get(p, 0) + d
            b.apply_delta(side, p, d)
        else:
            # reduce an existing level, often the best one, often all the way to zero
            p = max(ladder) if rng.random() < 0.4 else rng.choice(list(ladder))
            d = ladder[p] if rng.random() < 0.6 else rng.randint(1, ladder[p])
            if p == max(ladder) and d == ladder[p]:
                removed_best += 1
            ladder[p] -= d
            if not ladder[p]:
                del ladder[p]
            b.apply_delta(side, p, -d)
        assert b.yes == yes and b.no == no, f"ladders diverge at step {step}"
        top = brute_top(yes, no)
        assert b.top() == top, f"top diverges at step {step}"
        assert (b.best_yes, b.best_no) == (max(yes) if yes else None, max(no) if no else None)
        assert b.is_crossed() == (top[0] is not None and top[2] is not None and top[0] >= top[2])
        bids, asks = b.depth(3)
        assert bids == sorted(yes.items(), reverse=True)[:3]
        assert asks == [(ONE - p, q) for p, q in sorted(no.items(), reverse=True)][:3]
        assert b.state == LIVE
    assert removed_best > 200  # the interesting path was exercised


def test_random_deltas_report_changes_of_top():
    """``apply_delta`` returning False must mean the top really did not change."""
    rng = random.Random(7)
    pool = [rng.randrange(1, ONE) for _ in range(15)]
    b = book()
    for _ in range(3_000):
        side = rng.choice(("yes", "no"))
        ladder = b.yes if side == "yes" else b.no
        before = b.top()
        if ladder and rng.random() < 0.5:
            p = rng.choice(list(ladder))
            changed = b.apply_delta(side, p, -rng.randint(1, ladder[p]))
        else:
            changed = b.apply_delta(side, rng.choice(pool), rng.randint(1, 99))
        if not changed:
            assert b.top() == before


# ---------------------------------------------------------------------------------------------
# crossed books through the plant (real snapshot + a delta that crosses it)


def test_crossed_book_goes_stale_and_resyncs():
    lines = read_lines(COCKPIT)
    sub = json.loads(lines[0])["frame"]
    snap = json.loads(lines[1])["frame"]
    ticker = snap["msg"]["market_ticker"]
    pub = InMemoryPublisher()
    asked: list = []
    plant = TickerPlant([pub], resync=lambda sid, tickers: asked.append((sid, tickers)))
    plant.process(sub)
    plant.process(snap)
    yb, _, ya, _ = plant.books[ticker].top()
    assert yb < ya and plant.stats.crossed == 0
    # a YES bid at the current YES ask: locked/crossed (a missed delete on the wire)
    cross = {"type": "orderbook_delta", "sid": 1, "seq": snap["seq"] + 1,
             "msg": {"market_ticker": ticker, "price_dollars": f"{ya / ONE:.4f}",
                     "delta_fp": "1.00", "side": "yes", "ts_ms": 1786085188500}}
    plant.process(json.dumps(cross))
    b = plant.books[ticker]
    # a crossed/locked top means a missed delete: never live, a null stale BBO, a resync ask
    assert b.state == "syncing" and plant.stats.crossed == 1
    assert asked == [(snap["sid"], [ticker])]
    errs = [e for e in pub.events["feed_events"] if isinstance(e, FeedEvent) and e.kind == "error"]
    assert len(errs) == 1 and "crossed" in errs[0].detail and ticker in errs[0].detail
    last = pub.events["bbo"][-1]
    assert (last.state, last.yes_bid, last.yes_ask, last.seq) == ("stale", None, None,
                                                                   cross["seq"])
    assert all(not (r.state == "live" and r.yes_bid >= r.yes_ask) for r in pub.events["bbo"]
               if r.yes_bid is not None and r.yes_ask is not None)
    # further deltas are recorded, not applied, until a fresh snapshot
    cross["seq"] += 1
    cross["msg"]["delta_fp"] = "-1.00"
    plant.process(json.dumps(cross))
    assert plant.stats.deltas_ignored == 1 and b.state == "syncing"
    snap2 = dict(snap, seq=cross["seq"] + 1)
    plant.process(json.dumps(snap2))
    assert b.state == "live" and not b.is_crossed()
    again = pub.events["bbo"][-1]
    assert again.state == "live" and again.top() == b.top()  # always re-emitted on return
    assert plant.stats.gaps == 0 and plant.stats.quarantined == 0


def test_note_top_is_the_bbo_rule():
    """``note_top``: the new top recorded once, ``None`` while it stays, ``False`` (nothing
    recorded) when the top is crossed or locked."""
    b = OrderBook("N")
    last: dict = {}
    assert b.note_top(last) == (None, None, None, None) and last == {"N": b.top()}
    assert b.note_top(last) is None
    b.apply_snapshot([(40 * C, 2 * K)], [(55 * C, 3 * K)])
    assert b.note_top(last) == (40 * C, 2 * K, 45 * C, 3 * K) == b.top() == last["N"]
    assert b.apply_delta("yes", 30 * C, 1 * K) is False and b.note_top(last) is None
    b.apply_delta("yes", 45 * C, 1 * K)  # YES bid 0.45 = YES ask 0.45: locked
    assert b.note_top(last) is False and last["N"] == (40 * C, 2 * K, 45 * C, 3 * K)
    b.apply_delta("yes", 45 * C, -1 * K)
    assert b.note_top(last) is None  # back to the recorded top


def test_book_core_slots_and_errors():
    b = OrderBook("S", 3)
    assert (b.ticker, b.sid, b.yes, b.no, b.best_yes, b.best_no, b.market_id) == (
        "S", 3, {}, {}, None, None, None)
    with pytest.raises(AttributeError):
        b.other = 1  # slots only
    with pytest.raises(TypeError):
        b.apply_delta("yes", "0.5", 1)
    with pytest.raises(OverflowError):
        b.apply_delta("yes", 2**70, 1)
    with pytest.raises(BookError):
        b.apply_delta("yes", 1, 2**62)  # far past 10^10 contracts: no overflow
    assert b.state == STALE and b.yes == {}
    b.yes[5] = 2**63 - 1  # a size set from Python beyond any range: still no overflow
    with pytest.raises(BookError):
        b.apply_delta("yes", 5, 2**62)
