"""Issue 12 §1: Prometheus metrics of ``run``/``record``/``sim`` (kalshi_platform/metrics.py).

A live ``run`` against the local sim with a dropped-frame fault serves ``/metrics`` on
loopback; the scraped counters equal the run's own summary (gaps, frames, resyncs, books).
The collector's QuestDB families are checked on a writer's real ``WriterStats``; the latency
histogram's buckets and its cost per frame are checked directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

import kalshi_platform.tools.live  # noqa: F401  (registers run, record, sim)
from conftest import COCKPIT
from metrics_support import CLI, run_with_metrics, scrape, wait_for
from kalshi_platform.ingestion.ws_client import Backoff, KalshiWSClient
from kalshi_platform.live import LiveRun
from kalshi_platform.metrics import (
    LATENCY_BUCKETS_S,
    LatencyHistogram,
    PlantCollector,
    instrument_latency,
)
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.server import SimServer
from kalshi_platform.storage.questdb_rdb import WriterStats
from kalshi_platform.ticker_plant.plant import TickerPlant

DESIGN_CARD = ("kalshi_trades_processed_total", "kalshi_bbo_updates_total",
               "kalshi_processing_latency_seconds_bucket", "kalshi_sequence_gaps_total")
ALSO = ("kalshi_messages_total", "kalshi_books", "kalshi_resyncs_total",
        "kalshi_reconnects_total", "kalshi_quarantined_frames_total", "kalshi_duplicates_total",
        "kalshi_last_frame_age_seconds", "kalshi_spool_rows", "kalshi_spool_bytes",
        "kalshi_sink_failures_total", "kalshi_stream_lag_events", "kalshi_markets_subscribed")


def value(samples: dict, name: str, **labels) -> float:
    """One sample's value (KeyError when absent)."""
    return samples[(name, tuple(sorted(labels.items())))]


def test_run_serves_metrics_equal_to_its_summary(tmp_path):
    """`run --metrics-port 0` against a sim dropping every 25th frame: once every gap was
    healed, the scraped counters equal the summary the run writes when stopped."""
    with run_with_metrics(tmp_path, drop_every=25) as r:
        assert r["url"].startswith("http://127.0.0.1:")

        def healed():
            s = scrape(r["url"])
            done = (value(s, "kalshi_sequence_gaps_total") == 10
                    and value(s, "kalshi_books", state="live") == 12)
            return s if done else None
        s = wait_for(healed, 20, "10 gaps and 12 live books")
    summary = json.loads(r["summary_path"].read_text())
    names = {k[0] for k in s}
    assert set(DESIGN_CARD) | set(ALSO) <= names
    assert not any("ticker" in dict(labels) for _, labels in s)  # no per-market series
    assert value(s, "kalshi_sequence_gaps_total") == summary["gaps"] == 10
    assert value(s, "kalshi_frames_total") == summary["frames"]
    assert value(s, "kalshi_resyncs_total") == summary["resyncs"] >= 1
    assert value(s, "kalshi_reconnects_total") == summary["reconnects"] == 0
    for t, n in summary["messages_by_type"].items():
        assert value(s, "kalshi_messages_total", type=t) == n
    assert value(s, "kalshi_trades_processed_total") == summary["messages_by_type"].get("trade", 0)
    assert value(s, "kalshi_bbo_updates_total") == summary["rows_by_table"]["bbo"]
    assert value(s, "kalshi_markets_subscribed") == 12
    # every frame was timed; the histogram is cumulative up to +Inf = count
    count = value(s, "kalshi_processing_latency_seconds_count")
    assert count == value(s, "kalshi_processing_latency_seconds_bucket", le="+Inf")
    assert count == summary["frames"]
    assert value(s, "kalshi_processing_latency_seconds_bucket", le="0.1") == count


def test_metrics_port_from_the_environment_and_sim_metrics(tmp_path):
    """KALSHI_METRICS_PORT turns the sim's endpoint on; its counters are ``kalshi_sim_*``."""
    p = subprocess.Popen(CLI + ["sim", "--replay", str(COCKPIT), "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=tmp_path, env={**os.environ, "KALSHI_METRICS_PORT": "0"})
    try:
        url = None
        for _ in range(10):
            line = p.stdout.readline()
            if line.startswith("sim: metrics "):
                url = line.split()[-1]
                break
        assert url and url.startswith("http://127.0.0.1:"), p.stderr.read()
        s = scrape(url)
        assert value(s, "kalshi_sim_connections_total") == 0
        assert value(s, "kalshi_sim_frames_dropped_total") == 0
    finally:
        p.terminate()
        p.wait(timeout=15)


def test_bad_metrics_port_is_one_line(tmp_path):
    """A port out of range exits 2 with one line, before connecting anywhere."""
    r = subprocess.run(CLI + ["run", "--markets", "X", "--ws-url", "ws://127.0.0.1:9/",
                              "--base-url", "http://127.0.0.1:9/trade-api/v2",
                              "--metrics-port", "70000"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert r.returncode == 2 and "--metrics-port" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_questdb_families_from_writer_stats():
    """questdb_* come from the writer's WriterStats: latency summary, uncommitted rows, rows
    per table, and questdb_up going to 0 when every send since the last scrape failed."""
    class FakeWriter:
        def __init__(self):
            self.stats = WriterStats(rows_published=900, rows_written=600, rows_quarantined=50,
                                     flushes=4, flush_latency_ms_total=8.0,
                                     rows_by_table={"bbo": 400, "trades": 200})
            self.spool = None

    class Client:
        stats = KalshiWSClient("ws://127.0.0.1:9/", TickerPlant()).stats
        connected, tickers = False, []

    w = FakeWriter()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PlantCollector(TickerPlant(), Client(), [w]))
    text = generate_latest(reg).decode()
    assert "questdb_write_latency_seconds_count 4.0" in text
    assert "questdb_write_latency_seconds_sum 0.008" in text
    assert "questdb_uncommitted_rows 250.0" in text
    assert 'questdb_row_count{table="bbo"} 400.0' in text
    assert "questdb_up 1.0" in text
    w.stats.flush_errors = 3  # sends failing, none succeeded since the last scrape
    assert "questdb_up 0.0" in generate_latest(reg).decode()
    w.stats.flushes = 5
    assert "questdb_up 1.0" in generate_latest(reg).decode()


def test_latency_buckets_span_1us_to_100ms():
    """Bucket bounds 1 µs … 100 ms, ``le`` semantics, cumulative export in seconds."""
    assert LATENCY_BUCKETS_S[0] == 1e-6 and LATENCY_BUCKETS_S[-1] == 0.1
    h = LatencyHistogram()
    for ns in (500, 1_000, 1_001, 2_000_000, 10**9):
        h.observe_ns(ns)
    fam = h.family("x_seconds", "x")
    buckets = {s.labels["le"]: s.value for s in fam.samples if s.name == "x_seconds_bucket"}
    assert buckets["1e-06"] == 2 and buckets["2.5e-06"] == 3
    assert buckets["0.0025"] == 4 and buckets["0.1"] == 4 and buckets["+Inf"] == 5


def test_in_process_run_times_every_frame():
    """LiveRun.start_metrics against the sim (drops): one latency observation per frame, and
    the collector's gaps equal the plant's."""
    async def go():
        async with SimServer(COCKPIT, exit_when_done=True, faults=Faults(drop_every=25)) as sim:
            plant = TickerPlant()
            client = KalshiWSClient(sim.ws_url, plant, sorted(sim.known), exit_on_close=True,
                                    backoff=Backoff(base_s=0.005, cap_s=0.02))
            live = LiveRun(client, status_interval=0, handle_signals=False)
            url = live.start_metrics(0)
            assert url.startswith("http://127.0.0.1:")
            hist = live.metrics_collector.latency
            summary = await live.run()
            return summary, hist, plant
    summary, hist, plant = asyncio.run(asyncio.wait_for(go(), 30))
    assert sum(hist.counts) == summary["frames"] == plant.stats.frames
    assert summary["gaps"] == 10


def test_latency_is_observed_through_the_clients_public_observer():
    """No wrapper around the plant and no private attribute: the client reports each frame's
    latency to the observer it was given, and stopping removes it."""
    class C:
        def __init__(self):
            self.fn = None

        def set_frame_observer(self, fn):
            self.fn = fn

    c, hist = C(), LatencyHistogram()
    stop = instrument_latency(c, hist)
    for ns in (500, 2_000, 50_000_000):
        c.fn(ns)
    assert sum(hist.counts) == 3 and hist.sum_ns == 50_002_500
    stop()
    assert c.fn is None


@pytest.mark.parametrize("cmd", ["run", "record", "sim"])
def test_metrics_port_option_is_documented(cmd):
    """Every live command offers --metrics-port."""
    from typer.testing import CliRunner

    from kalshi_platform.tools.cli import app

    r = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
    assert "--metrics-port" in r.stdout
