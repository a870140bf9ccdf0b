"""``kalshi-platform bench exchange``: the matching engine's ops/s in-process (issue 13 §7).

One seeded mix of commands runs through (a) our Exchange as the servers use it (every event
built, no per-user history), (b) our Exchange with events off (the bare core: validation,
matching, collateral, fees, positions), and (c) the naive sortedcontainers engine of
exchange_baseline.py, which only matches. Every stage runs ``repeat`` times on a fresh engine
and keeps the best CPU time of the engine's own loop (``time.process_time``: the box is
shared by other jobs, and CPU time is what they disturb least; setup excluded). The check: all three match the same trades and volume. Also an
insert-only run (passive adds), for the reference figure of akhil4n-orderbook (~416k
inserts/s, ~124k matched orders/s; pure Python; docs/trading-api.md §4.5), which is quoted,
not measured here; and a matched-orders run (each IOC order takes exactly one resting
order, the reference's second figure).

The mix (per market, cent ticks, mid 50¢): 55 % passive limit adds 1-9 ticks from the mid by
64 maker users, 25 % cancels of a random earlier add (some already filled: refused by ours,
ignored by the baseline), 20 % marketable IOC orders by 16 taker users through the touch
(buy at 55¢ / sell at 45¢) that take one or more levels. Makers and takers never share a
user, so no self-trade prevention fires and the baseline, which has none, must agree.
"""

from __future__ import annotations

import random
import time
from typing import Callable

from kalshi_platform.bench.exchange_baseline import NaiveEngine
from kalshi_platform.exchange import (AddMarket, CancelOrder, CreateOrder, Deposit, Exchange,
                                      ExchangeConfig)

TARGET_OPS = 500_000
REFERENCE = {"engine": "akhil4n-orderbook (pure Python, price-time)",
             "inserts_per_s": 416_000, "matched_per_s": 124_000,
             "source": "pypi.org/project/akhil4n-orderbook (docs/trading-api.md §4.5)"}
CENT = 10_000


def build_mix(ops: int, seed: int = 0, markets: int = 8) -> tuple[list, list, dict]:
    """``(ours, baseline, counts)``: the same commands for both (the baseline's cancels name
    its own ids ``str(n)``) and how many of each kind."""
    rng = random.Random(seed)
    ours, base = [], []
    live: list[int] = []
    user_of: dict[int, str] = {}
    counts = {"add": 0, "cancel": 0, "cross": 0}
    n = 0
    for _ in range(ops):
        r = rng.random()
        t = f"BENCH-{rng.randrange(markets)}"
        if r < 0.55 or not live:
            n += 1
            bid = rng.random() < 0.5
            cents = 50 - rng.randint(1, 9) if bid else 50 + rng.randint(1, 9)
            c = CreateOrder(user_id=f"m{rng.randrange(64)}", ticker=t, side="yes",
                            action="buy" if bid else "sell", count=rng.randint(1, 10) * 100,
                            yes_price=cents * CENT)
            live.append(n)
            user_of[n] = c.user_id
            ours.append(c)
            base.append(c)
            counts["add"] += 1
        elif r < 0.80:
            k = live.pop(rng.randrange(len(live)))
            user = user_of[k]
            ours.append(CancelOrder(user_id=user, order_id=f"00000000-0000-4000-8000-{k:012x}"))
            base.append(CancelOrder(user_id=user, order_id=str(k)))
            counts["cancel"] += 1
        else:
            n += 1
            bid = rng.random() < 0.5
            c = CreateOrder(user_id=f"t{rng.randrange(16)}", ticker=t, side="yes",
                            action="buy" if bid else "sell", count=rng.randint(1, 10) * 100,
                            yes_price=(55 if bid else 45) * CENT,
                            time_in_force="immediate_or_cancel")
            ours.append(c)
            base.append(c)
            counts["cross"] += 1
    return ours, base, counts


def _setup(events: bool, markets: int = 8) -> Exchange:
    ex = Exchange(ExchangeConfig(events=events, keep_history=False))
    for m in range(markets):
        ex.submit(AddMarket(ticker=f"BENCH-{m}"), 0)
    for u in [f"m{i}" for i in range(64)] + [f"t{i}" for i in range(16)]:
        ex.submit(Deposit(user_id=u, amount=10**11), 0)
    return ex


def build_matched(n: int, markets: int = 8) -> tuple[list, list]:
    """``(resting, takers)``: ``n`` one-contract asks at 55¢ by makers, then ``n`` one-contract
    IOC buys at 55¢ by takers, each matching exactly one resting order (the reference's
    "matched orders")."""
    resting = [CreateOrder(user_id=f"m{k % 64}", ticker=f"BENCH-{k % markets}", side="yes",
                           action="sell", count=100, yes_price=55 * CENT) for k in range(n)]
    takers = [CreateOrder(user_id=f"t{k % 16}", ticker=f"BENCH-{k % markets}", side="yes",
                          action="buy", count=100, yes_price=55 * CENT,
                          time_in_force="immediate_or_cancel") for k in range(n)]
    return resting, takers


def _run_ours(cmds: list, events: bool, untimed: list = ()) -> Callable[[], tuple]:
    def run():
        ex = _setup(events)
        submit = ex.submit
        for c in untimed:
            submit(c, 0)
        t0 = time.process_time()
        for i, c in enumerate(cmds):
            submit(c, i)
        dt = time.process_time() - t0
        vol = sum(p.volume for m in ex.markets.values() for p in m.positions.values()) // 2
        return dt, ex.next_trade, vol
    return run


def _run_base(cmds: list, untimed: list = ()) -> Callable[[], tuple]:
    def run():
        eng = NaiveEngine()
        submit = eng.submit
        for c in untimed:
            submit(c)
        t0 = time.process_time()
        for c in cmds:
            submit(c)
        return time.process_time() - t0, eng.trades, eng.volume
    return run


def _stage(run, repeat: int) -> tuple[float, int, int]:
    """Best of ``repeat`` of the engine's own loop time (setup excluded)."""
    results = [run() for _ in range(repeat)]
    dt = min(r[0] for r in results)
    return dt, results[0][1], results[0][2]


def run_exchange_bench(ops: int = 200_000, repeat: int = 3, seed: int = 0,
                       progress: Callable[[str], None] | None = None) -> dict:
    """Measure the stages above on ``ops`` commands; a dict of figures (rates in ops/s).
    Raises ValueError for ``ops < 1000`` or ``repeat < 1``."""
    if ops < 1000 or repeat < 1:
        raise ValueError("ops must be >= 1000 and repeat >= 1")
    say = progress or (lambda _m: None)
    ours, base, counts = build_mix(ops, seed)
    inserts = [c for c in ours if type(c) is CreateOrder and c.user_id[0] == "m"]
    say("ours (events on)")
    ev_dt, trades, vol = _stage(_run_ours(ours, True), repeat)
    say("ours (events off)")
    core_dt, trades2, vol2 = _stage(_run_ours(ours, False), repeat)
    say("baseline (sortedcontainers)")
    base_dt, btrades, bvol = _stage(_run_base(base), repeat)
    say("ours, inserts only")
    ins_dt, _, _ = _stage(_run_ours(inserts, True), repeat)
    say("baseline, inserts only")
    bins_dt, _, _ = _stage(_run_base(inserts), repeat)
    resting, takers = build_matched(len(inserts))
    say("ours, matched orders")
    m_dt, m_trades, _ = _stage(_run_ours(takers, True, resting), repeat)
    say("baseline, matched orders")
    bm_dt, bm_trades, _ = _stage(_run_base(takers, resting), repeat)
    rate = lambda n, dt: int(n / dt) if dt > 0 else 0  # noqa: E731
    res = {
        "ops": ops, "repeat": repeat, "seed": seed, "mix": counts, "markets": 8,
        "ours_events_per_s": rate(ops, ev_dt), "ours_core_per_s": rate(ops, core_dt),
        "baseline_per_s": rate(ops, base_dt),
        "inserts": len(inserts), "ours_inserts_per_s": rate(len(inserts), ins_dt),
        "baseline_inserts_per_s": rate(len(inserts), bins_dt),
        "matched": len(takers), "ours_matched_per_s": rate(len(takers), m_dt),
        "baseline_matched_per_s": rate(len(takers), bm_dt),
        "trades": trades, "matched_volume_contracts": vol / 100,
        "target_ops_per_s": TARGET_OPS, "reference": REFERENCE,
    }
    res["ratio_vs_baseline"] = round(res["ours_events_per_s"] / max(res["baseline_per_s"], 1), 2)
    res["core_ratio_vs_baseline"] = round(res["ours_core_per_s"] / max(res["baseline_per_s"], 1), 2)
    res["meets_target"] = res["ours_events_per_s"] >= TARGET_OPS
    res["checks"] = {"same_trades": trades == trades2 == btrades,
                     "same_volume": vol == vol2 == bvol,
                     "matched_one_each": m_trades == bm_trades == len(takers)}
    res["checks"]["all_ok"] = all(res["checks"].values())
    return res


def render(res: dict, console) -> None:
    """Print the figures as a few plain lines (no wrapping issues on a pipe)."""
    m = res["mix"]
    console.print(f"bench exchange: {res['ops']:,} commands on {res['markets']} markets "
                  f"({m['add']:,} adds, {m['cancel']:,} cancels, {m['cross']:,} crossing IOC; "
                  f"{res['trades']:,} trades, {res['matched_volume_contracts']:,.0f} contracts), "
                  f"best of {res['repeat']}", highlight=False, soft_wrap=True)
    mark = "ok" if res["meets_target"] else "missed"
    console.print(f"  ours, events on   {res['ours_events_per_s']:>10,} ops/s   "
                  f"{res['ratio_vs_baseline']:.2f}x baseline   target >= "
                  f"{res['target_ops_per_s']:,} {mark}", highlight=False, soft_wrap=True)
    console.print(f"  ours, events off  {res['ours_core_per_s']:>10,} ops/s   "
                  f"{res['core_ratio_vs_baseline']:.2f}x baseline", highlight=False, soft_wrap=True)
    console.print(f"  baseline          {res['baseline_per_s']:>10,} ops/s   (naive "
                  "sortedcontainers engine: matching only, no accounts/fees/events)",
                  highlight=False, soft_wrap=True)
    console.print(f"  inserts only      {res['ours_inserts_per_s']:>10,} /s ours, "
                  f"{res['baseline_inserts_per_s']:,} /s baseline ({res['inserts']:,} adds)",
                  highlight=False, soft_wrap=True)
    console.print(f"  matched orders    {res['ours_matched_per_s']:>10,} /s ours, "
                  f"{res['baseline_matched_per_s']:,} /s baseline ({res['matched']:,} IOC "
                  "orders, each taking one resting order)", highlight=False, soft_wrap=True)
    r = res["reference"]
    console.print(f"  reference (quoted, not measured): {r['engine']}: ~{r['inserts_per_s']:,} "
                  f"inserts/s, ~{r['matched_per_s']:,} matched orders/s; {r['source']}",
                  highlight=False, soft_wrap=True)
    c = res["checks"]
    console.print(f"checks: same trades in all three {c['same_trades']}, same volume "
                  f"{c['same_volume']}, one trade per matched order {c['matched_one_each']}",
                  highlight=False, soft_wrap=True)
