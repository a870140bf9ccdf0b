"""``kalshi-platform bench backtest``: events per second through a backtest with the market
maker on, on a large recording from the bench generator (issue 14 §8; docs/trading.md).

Stages, each on the same synthetic recording (kalshi_platform/bench/synth.py: the bundled
capture's 12 markets in ``copies`` copies, forward and inverse delta passes), best CPU time
of ``repeat`` runs:

* ``plant``: the ticker plant alone (recording reader + decode + books + BBO, one counting
  publisher): the ceiling a backtest cannot beat, its baseline;
* ``backtest``: the whole backtest: the plant, the follower keeping the exchange core's book
  on the recorded liquidity, the trading node (local books, order manager, risk, portfolio)
  and ``examples/market_maker.py`` quoting every market (lazy levels, zero latency);
* ``backtest, every level in the core``: the same with ``lazy_levels=False`` (what the
  lazy follower saves).

Target: >= 300,000 events/s for ``backtest``. The market maker is loaded from the
checkout's ``examples/`` (it is not part of the installed package).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

TARGET_EVENTS_PER_S = 300_000


def _source() -> Path:
    from kalshi_platform.bench.runner import default_source

    return default_source()


def _market_maker():
    root = Path(__file__).resolve().parents[2]
    path = root / "examples" / "market_maker.py"
    if not path.is_file():
        raise ValueError(f"bench backtest needs the checkout's examples/market_maker.py "
                         f"(not found at {path})")
    from kalshi_platform.trading.run import load_strategy

    return load_strategy(f"{path}:MarketMaker")


def _plant_run(path: Path) -> tuple[float, int]:
    from kalshi_platform.ingestion.recording import feed
    from kalshi_platform.ticker_plant.plant import TickerPlant

    class Count:
        n = 0

        def publish(self, e) -> None:
            self.n += 1

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    c = Count()
    t0 = time.process_time()
    feed(path, TickerPlant([c]))
    return time.process_time() - t0, c.n


def _backtest_run(path: Path, mm, lazy: bool) -> tuple[float, int, dict]:
    from kalshi_platform.trading import RiskConfig
    from kalshi_platform.trading.backtest import BacktestConfig
    from kalshi_platform.trading.run import run_backtest

    t0 = time.process_time()
    rep, node = run_backtest(mm({"size": 5}), path, config=BacktestConfig(lazy_levels=lazy),
                             risk=RiskConfig.unlimited())
    dt = time.process_time() - t0
    return dt, rep["events"], {"orders": rep["orders"], "fills": rep["fill_count"],
                               "core_commands": sum(node.venue.follower.stats[k] for k in
                                                    ("adds", "reduces", "cancels"))}


def _best(fn, repeat: int):
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def run_backtest_bench(frames: int = 200_000, copies: int = 8, repeat: int = 3,
                       eager: bool = True, progress: Callable[[str], None] | None = None) -> dict:
    """Measure the stages above; returns a dict of figures (rates in events/s, CPU time).
    Raises ValueError for ``frames < 1000``, ``copies < 1`` or ``repeat < 1``."""
    from kalshi_platform.bench.synth import write_synthetic_recording

    if frames < 1000 or copies < 1 or repeat < 1:
        raise ValueError("frames must be >= 1000, copies and repeat >= 1")
    say = progress or (lambda _m: None)
    mm = _market_maker()
    with tempfile.TemporaryDirectory(prefix="kalshi-bench-bt-") as tmp:
        path = Path(tmp) / "synthetic.jsonl"
        say(f"writing a {frames:,}-frame synthetic recording ({copies} copies)")
        info = write_synthetic_recording(_source(), path, frames, copies)
        say("plant alone")
        p_dt, p_ev = _best(lambda: _plant_run(path), repeat)
        say("backtest (market maker, lazy levels)")
        b_dt, b_ev, b_info = _best(lambda: _backtest_run(path, mm, True), repeat)
        stages = {"plant": {"cpu_s": round(p_dt, 3), "events": p_ev,
                            "events_per_s": int(p_ev / p_dt)},
                  "backtest": {"cpu_s": round(b_dt, 3), "events": b_ev,
                               "events_per_s": int(b_ev / b_dt), **b_info}}
        if eager:
            say("backtest (market maker, every level in the core)")
            e_dt, e_ev, e_info = _best(lambda: _backtest_run(path, mm, False), 1)
            stages["backtest_every_level"] = {"cpu_s": round(e_dt, 3), "events": e_ev,
                                              "events_per_s": int(e_ev / e_dt), **e_info}
    rate = stages["backtest"]["events_per_s"]
    return {"frames": info["frames"], "markets": info["markets"], "repeat": repeat,
            "stages": stages, "target_events_per_s": TARGET_EVENTS_PER_S,
            "meets_target": rate >= TARGET_EVENTS_PER_S,
            "ratio_vs_plant": round(rate / stages["plant"]["events_per_s"], 3),
            "checks": {"all_ok": b_ev == p_ev}}


def render(res: dict, console) -> None:
    """The figures as a few plain lines."""
    console.print(f"bench backtest: {res['frames']:,} frames, {res['markets']} markets, "
                  f"market maker on every market, best CPU time of {res['repeat']}",
                  highlight=False, soft_wrap=True)
    for name, s in res["stages"].items():
        extra = (f"   {s['orders']:,} orders, {s['fills']:,} fills, "
                 f"{s['core_commands']:,} follower commands" if "orders" in s else "")
        console.print(f"  {name:<22} {s['events_per_s']:>10,} events/s  ({s['events']:,} "
                      f"events, {s['cpu_s']:.3f} s){extra}", highlight=False, soft_wrap=True)
    mark = "ok" if res["meets_target"] else "missed"
    console.print(f"  backtest = {res['ratio_vs_plant']:.2f}x the plant alone; target >= "
                  f"{res['target_events_per_s']:,} events/s: {mark}", highlight=False,
                  soft_wrap=True)
