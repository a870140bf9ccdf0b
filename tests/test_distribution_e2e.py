"""Issue 10 acceptance on loopback: sinks off the read loop (no stall), crash loss bounded by
the Parquet flush interval, and a recording replayed into the same store without doubling."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import COCKPIT
from oracle_compare import assert_books_match, replay_recorded
from sim_support import start_sim_process
from kalshi_platform.config import Settings
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.ingestion.ws_client import Backoff, KalshiWSClient
from kalshi_platform.live import LiveRun
from kalshi_platform.sim.server import SimServer
from kalshi_platform.storage.parquet_store import read_table
from kalshi_platform.storage.schema import TABLES
from kalshi_platform.stream.sinks import plant_outputs
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

CLI = [sys.executable, "-m", "kalshi_platform.tools.cli"]
FAST = Backoff(base_s=0.01, cap_s=0.05)


class SlowFlushSink(InMemoryPublisher):
    """A sink whose every flush takes 2 s (a Parquet write of a huge batch, a slow disk)."""

    sink_name = "parquet"

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        time.sleep(2.0)  # the injected slowness itself, not synchronisation


def test_a_sink_sleeping_2s_per_flush_does_not_stall_the_read_loop(tmp_path):
    gc.collect()  # earlier tests' garbage: a full collection inside the run is not the sink
    sink = SlowFlushSink()
    settings = Settings(store_dir=tmp_path, parquet_flush_s=1.0)
    outputs, _ = plant_outputs([sink], settings)

    async def go():
        async with SimServer(COCKPIT, exit_when_done=True, speed=20.0) as sim:
            plant = TickerPlant(outputs)
            client = KalshiWSClient(sim.ws_url, plant, sorted(sim.known), backoff=FAST,
                                    exit_on_close=True)
            summary = await LiveRun(client, status_interval=0, handle_signals=False).run()
            return plant, summary

    plant, summary = asyncio.run(asyncio.wait_for(go(), 120))
    assert sink.flushes >= 1  # the slow flush really ran during the live run
    # a sink on the read loop would stall it by its 2,000 ms flush; 100 ms leaves room for a
    # GC pause or a busy CI core (31 ms was seen with other jobs on both cores) while still
    # failing for any stall the sink causes
    assert summary["loop_max_stall_ms"] < 100, summary["loop_max_stall_ms"]
    assert_books_match(plant, replay_recorded(COCKPIT))
    # and the slow sink still got every event, in order, by the end
    rows = plant.stats.table_rows()
    assert len(sink.events["orderbook_deltas"]) == rows["orderbook_deltas"]
    assert summary["stream"]["consumers"]["parquet"]["lag"] == 0


def _dedup_counts(store: Path) -> dict[str, int]:
    return {t: read_table(store, t, dedup=True).num_rows for t in TABLES
            if (store / t).is_dir()}


def _recorded_frames(rec: Path) -> int:
    from kalshi_platform.ingestion.recording import count_lines

    return sum(count_lines(f) for f in sorted(rec.glob("*.jsonl")))


def test_kill_9_loses_at_most_the_flush_interval_and_replay_restores_without_doubling(
        tmp_path):
    store, rec = tmp_path / "store", tmp_path / "rec"
    sim, ws, rest = start_sim_process(CLI, COCKPIT, tmp_path, "--speed", "4",
                                      "--exit-when-done")  # ~14 s of playback
    env = dict(os.environ, KALSHI_PARQUET_FLUSH_S="1", KALSHI_STORE_DIR=str(store))
    run = subprocess.Popen(CLI + ["run", "--series", "KXMLBGAME", "--series", "KXWNBAGAME",
                                  "--ws-url", ws, "--base-url", rest, "--record", str(rec),
                                  "--sink", "parquet", "--status-interval", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while _recorded_frames(rec) < 120:  # the run is well into the feed
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.5)  # let more than one flush interval pass, then crash
        frames_at_kill = _recorded_frames(rec)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(10)
    finally:
        for p in (run, sim):
            if p.poll() is None:
                p.kill()
                p.wait()
    # the store never holds a row the recording lacks (it flushes at markers sent after each
    # recording flush), and holds every row older than the flush interval
    assert frames_at_kill >= 120
    crashed = _dedup_counts(store)
    ref = TickerPlant([InMemoryPublisher()])
    for f in sorted(rec.glob("*.jsonl")):
        feed(f, ref)
    want = ref.stats.table_rows()
    assert crashed.get("orderbook_deltas", 0) > 0  # written before the crash
    for t, n in crashed.items():
        assert n <= want.get(t, 0), (t, n, want)
    deltas = read_table(rec_store := _replay_only(rec, tmp_path), "orderbook_deltas")
    recv = [int(x) for x in deltas.column("recv_ts").cast("int64").to_pylist()]
    cutoff = max(recv) - 1_500_000  # µs: flush interval 1 s + housekeeping 0.25 s + slack
    kept = read_table(store, "orderbook_deltas", dedup=True).column("recv_ts")
    kept_recv = [int(x) for x in kept.cast("int64").to_pylist()]
    assert sum(r < cutoff for r in kept_recv) == sum(r < cutoff for r in recv) > 0
    # replaying the recording directory into the same store restores every row, once
    r = subprocess.run(CLI + ["replay", str(rec), "--store", str(store),
                              "--summary-json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "r.json").read_text())
    assert _dedup_counts(store) == summary["rows_by_table"] == _dedup_counts(rec_store)


def _replay_only(rec: Path, tmp_path: Path) -> Path:
    """The recording replayed alone into a fresh store (the reference)."""
    out = tmp_path / "ref-store"
    r = subprocess.run(CLI + ["replay", str(rec), "--store", str(out)], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    return out
