"""The compiled frame step (kalshi_platform/trading/_step.c) against a plain Python oracle of
the same rule (docs/trading.md "Backtest: the frame step"): identical reports and order
histories on a bench-generated recording (lazy and every level), a random walk with
recorded trades and both latencies, the bundled capture and a bare recording (no receipt
times); the step's own argument errors; a finished venue is freed (no cycle kept alive)."""

from __future__ import annotations

import gc
import json
import weakref

import pytest
from test_trading_pnl import RandomTrader, _walk
from trading_support import TK, Rec, book

import kalshi_platform.trading.backtest as bt
from conftest import COCKPIT
from kalshi_platform.bench.synth import write_synthetic_recording
from kalshi_platform.trading import RiskConfig
from kalshi_platform.trading._step import FrameStep
from kalshi_platform.trading.backtest import BacktestConfig
from kalshi_platform.trading.run import load_strategy, run_backtest

FREE = RiskConfig.unlimited()
MS = 10**6


class OracleStep:
    """The frame step as the Python it replaced: every delta through the follower's full
    rule (``delta``), no fast path."""

    def __init__(self, *, plant_frame, events, clock, yes, no, known, delta, follow,
                 start_clock, late, stopped_exc, decoded, delta_type, on_market, bbo_type,
                 plant_lines, feed_latency) -> None:
        self.plant_frame, self.events, self.clock = plant_frame, events, clock
        self.bbo_type, self.plant_lines = bbo_type, plant_lines
        self.known, self.delta, self.follow = known, delta, follow
        self.start_clock, self.late, self.stopped_exc = start_clock, late, stopped_exc
        self.decoded, self.delta_type, self.on_market = decoded, delta_type, on_market
        self.feed_latency = feed_latency
        self.frames = self.seq = 0
        self.stopped = self.timed = False

    def lines(self, chunk, kind, other, start=0, end=None) -> int:
        size = len(chunk) if end is None else end
        pos = start
        n = 0
        while pos < size:
            nl = chunk.find(b"\n", pos, size)
            stop = size if nl < 0 else nl + 1
            took_other = []

            def other_line(line, took_other=took_other):
                took_other.append(line)
                return other(line)

            took = self.plant_lines(chunk, kind, other_line, pos, stop)
            n += took
            if took and not took_other:
                recv = next((ev.recv_ns for ev in self.events
                             if type(ev) in (self.delta_type, self.bbo_type)), None)
                self(self.decoded, recv)
            pos = stop
        return n

    def __call__(self, frame, recv_ns=None, raw=None) -> None:
        if frame is not self.decoded:
            self.plant_frame(frame, recv_ns, raw)
        if self.stopped:
            raise self.stopped_exc
        self.frames += 1
        evs = self.events
        if not evs:
            return
        t = recv_ns if recv_ns is not None else evs[0][1] if type(evs[0][1]) is int else None
        clock, heap = self.clock, self.clock.heap
        if t is not None and t > clock.now:
            if not self.timed:
                self.start_clock(t)
            if heap and heap[0][0] < t:
                clock.run_until(t - 1)
            clock.now = t
        now = clock.now
        for ev in evs:
            if type(ev) is self.delta_type and ev[0] in self.known:
                self.delta(ev)
            else:
                self.follow(ev)
        first = self.seq + 1
        self.seq += len(evs)
        if self.feed_latency == 0 and not (heap and heap[0][0] <= now):
            for seq, ev in enumerate(evs, first):
                self.on_market(seq, ev)
        else:
            self.late(now + self.feed_latency, first, list(evs))
        evs.clear()
        if heap and heap[0][0] <= now:
            clock.run_until(now)


def _run(make, path, cfg, seed=0):
    rep, node = run_backtest(make(), path, config=cfg, risk=FREE, seed=seed)
    rep.pop("elapsed_s")
    orders = [(o.client_order_id, o.status.value, o.price, o.count, o.filled, o.venue_order_id,
               o.updated_ns) for o in node.oms.all_orders()]
    return json.dumps([rep, orders], sort_keys=True, default=str), rep


def _both(monkeypatch, make, path, cfg, seed=0):
    compiled, rep = _run(make, path, cfg, seed)
    with monkeypatch.context() as m:
        m.setattr(bt, "FrameStep", OracleStep)
        oracle, _ = _run(make, path, cfg, seed)
    assert compiled == oracle
    return rep


@pytest.mark.parametrize("lazy", [True, False])
def test_compiled_step_matches_the_oracle_on_a_bench_recording(tmp_path, monkeypatch, lazy):
    path = tmp_path / "synth.jsonl"
    write_synthetic_recording(COCKPIT, path, 6000, 2)
    mm = load_strategy("examples.market_maker:MarketMaker")
    rep = _both(monkeypatch, lambda: mm({"size": 2, "half_spread_ticks": 0}), path,
                BacktestConfig(order_latency_ns=MS, lazy_levels=lazy))
    assert rep["orders"] > 0 and rep["events"] > 6000


def test_compiled_step_matches_the_oracle_with_trades_and_both_latencies(tmp_path, monkeypatch):
    rec = _walk(21, steps=300)
    for i in range(40):
        rec.trade(i * 300 + 10, "0.4000", "2.00", "yes" if i % 2 else "no", ticker=TK)
    path = rec.write(tmp_path / "w.jsonl")
    for cfg in (BacktestConfig(order_latency_ns=3 * MS, feed_latency_ns=2 * MS),
                BacktestConfig()):
        rep = _both(monkeypatch, RandomTrader, path, cfg, seed=4)
        assert rep["fill_count"] > 30


def test_compiled_step_matches_the_oracle_on_the_bundled_capture(monkeypatch):
    taker = load_strategy("examples.taker:Taker")
    rep = _both(monkeypatch, lambda: taker({}), COCKPIT, BacktestConfig())
    assert rep["fill_count"] == 4


def test_bare_recording_takes_the_clock_from_the_events(tmp_path, monkeypatch):
    """No receipt times: the frame's time is its first event's exchange time."""
    yes, no = book()
    rec = Rec().snapshot(0, yes, no)
    for i in range(1, 30):
        rec.delta(100 * i, "yes" if i % 2 else "no", "0.4000" if i % 2 else "0.5500",
                  "-3.00" if i % 3 else "2.00")
    path = tmp_path / "bare.jsonl"
    path.write_text("".join(json.dumps(json.loads(x)["frame"]) + "\n" for x in rec.lines))
    rep = _both(monkeypatch, RandomTrader, path, BacktestConfig(order_latency_ns=MS), seed=2)
    assert rep["frames"] == 30 and rep["orders"] > 0


def test_frame_step_arguments():
    with pytest.raises(TypeError):
        FrameStep()
    kw = dict(plant_frame=print, events=[], clock=None, yes={}, no={}, known=set(),
              delta=print, follow=print, start_clock=print, late=print,
              stopped_exc=RuntimeError, decoded=None, delta_type=tuple, on_market=print,
              bbo_type=tuple, plant_lines=None, feed_latency=0)
    with pytest.raises(TypeError):  # events must be a list
        FrameStep(**{**kw, "events": ()})
    with pytest.raises(AttributeError):  # the clock has no heap
        FrameStep(**kw)

    class Clock:
        heap: list = []
        now = 0

    step = FrameStep(**{**kw, "clock": Clock()})
    with pytest.raises(TypeError):
        step.lines("not bytes", 1, print)
    with pytest.raises(TypeError):  # no process_lines
        step.lines(b"{}\n", 1, print)
    with pytest.raises(TypeError):
        step._other(b"{}")  # only while lines() runs


def test_a_finished_venue_is_freed(tmp_path):
    """The venue and its step refer to each other: the cycle collector frees both."""
    path = tmp_path / "synth.jsonl"
    write_synthetic_recording(COCKPIT, path, 2000, 1)
    _, node = run_backtest(RandomTrader(), path, config=BacktestConfig(), risk=FREE)
    ref = weakref.ref(node.venue)
    del node
    gc.collect()
    assert ref() is None


def _troubled(tmp_path):
    """A recording through every way the plant's compiled delta path hands a line back:
    a seq gap, a crossed top, a level driven negative, an unknown market, a snapshot that
    recovers, recorded trades."""
    yes, no = book()
    rec = Rec().snapshot(0, yes, no)
    for i in range(1, 120):
        at = 50 * i
        if i == 30:
            rec.seq += 1  # a gap: the plant resyncs
        if i == 31 or i == 61 or i == 91:
            rec.snapshot(at, yes, no)
            continue
        if i == 45:
            rec.delta(at, "yes", "0.5000", "5.00")  # crosses the 0.45 ask
        elif i == 75:
            rec.delta(at, "no", "0.5500", "-500.00")  # below zero
        elif i == 80:
            rec.delta(at, "yes", "0.3000", "1.00", ticker="KXTEST-26AUG07-UNKNOWN")
        elif i % 7 == 0:
            rec.trade(at, "0.4000", "2.00", "no" if i % 2 else "yes")
        else:
            rec.delta(at, "yes" if i % 2 else "no", "0.4000" if i % 2 else "0.5500",
                      "-2.00" if i % 3 else "3.00")
    return rec


@pytest.mark.parametrize("bare", [False, True])
def test_line_at_a_time_gives_the_frames_of_process_frame(tmp_path, monkeypatch, bare):
    """The reader's chunk path (the plant's compiled delta path, one line at a time, then
    the step) against one process_frame call per line: identical reports."""
    from kalshi_platform.ticker_plant.plant import TickerPlant

    rec = _troubled(tmp_path)
    path = tmp_path / "t.jsonl"
    if bare:
        path.write_text("".join(json.dumps(json.loads(x)["frame"]) + "\n" for x in rec.lines))
    else:
        rec.write(path)
    for cfg in (BacktestConfig(order_latency_ns=MS), BacktestConfig(feed_latency_ns=MS)):
        chunks, rep = _run(RandomTrader, path, cfg, seed=5)
        with monkeypatch.context() as m:
            m.setattr(TickerPlant, "process_lines", None)
            frames, _ = _run(RandomTrader, path, cfg, seed=5)
        assert chunks == frames
        assert rep["frames"] == len(rec.lines) and rep["orders"] > 5


def test_two_processes_with_other_hash_seeds_give_identical_reports(tmp_path):
    """Snapshots and cleared books re-set the follower's levels in sorted order, not a set's
    (whose order follows PYTHONHASHSEED): before, the follower's command counts and the
    venue's order ids of this run differed between processes (the fills did not)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    rec = _walk(21, steps=300)
    for i in range(40):
        rec.trade(i * 300 + 10, "0.4000", "2.00", "yes" if i % 2 else "no", ticker=TK)
    path = rec.write(tmp_path / "w.jsonl")
    here = Path(__file__).resolve().parent
    code = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(here)!r}, {str(here.parent)!r}]\n"
        "from test_trading_step import _run, MS\n"
        "from test_trading_pnl import RandomTrader\n"
        "from kalshi_platform.trading.backtest import BacktestConfig\n"
        f"print(_run(RandomTrader, {str(path)!r}, BacktestConfig(order_latency_ns=3 * MS,"
        " feed_latency_ns=2 * MS), seed=4)[0])\n")
    out = []
    for seed in ("0", "1"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                  capture_output=True, text=True).stdout)
    assert out[0] == out[1] and '"fill_count": ' in out[0]
