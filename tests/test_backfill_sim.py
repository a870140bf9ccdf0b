"""`kalshi-platform backfill` against the local Kalshi-compatible server (`kalshi_platform.sim`)
serving the real manta_prod trade fixtures: 2 trades per page (`page_cap`), the historical
cutoff inside the range (one market's trades straddle it), and injected 429s. Every trade
lands exactly once, an interrupted run resumed gives the same rows, and the request times the
server saw respect the configured token bucket."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api_fakes import max_burst_excess
from sim_support import sim_thread
from kalshi_platform.sim.faults import Faults
from kalshi_platform.storage.parquet_store import read_table
from kalshi_platform.tools.cli import _register_optional, app

_register_optional()
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "rest" / "manta_prod"
CUTOFF = "2026-08-24T15:15:38.56Z"
TOKENS_PER_S, COST = 1000, 10  # 100 requests/s, burst 100


def _fixture_trades() -> list[dict]:
    out = {}
    for f in FIXTURES.glob("trades_*.json"):
        doc = json.loads(f.read_text())
        body = doc.get("response", doc) if isinstance(doc, dict) else doc
        for t in (body.get("trades") or body.get("body", {}).get("trades") or []):
            out[t["trade_id"]] = t
    return list(out.values())


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("KALSHI_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("KALSHI_READ_TOKENS_PER_S", str(TOKENS_PER_S))
    monkeypatch.setenv("KALSHI_REQUEST_COST", str(COST))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def _args(sim, tmp_path, tickers, *extra):
    out = ["backfill", "--start", "2026-08-24", "--end", "2026-08-31", "--window", "7d",
           "--base-url", sim.rest_url, "--store", str(tmp_path / "store"), "--no-progress",
           "--checkpoint", str(tmp_path / "bf.ckpt.json"),
           "--report-json", str(tmp_path / "report.json")]
    for t in tickers:
        out += ["--ticker", t]
    return out + list(extra)


def test_backfill_against_sim_every_trade_once_with_429s_and_small_pages(tmp_path, monkeypatch):
    rate = 30  # requests/s (Basic tier is 20): low enough that the bucket really throttles
    monkeypatch.setenv("KALSHI_READ_TOKENS_PER_S", str(rate * COST))
    trades = _fixture_trades()
    tickers = sorted({t["ticker"] for t in trades})
    assert len(trades) == 55
    with sim_thread(rest_fixtures=FIXTURES, cutoff=CUTOFF,
                    faults=Faults(rest_429=4, page_cap=2)) as sim:
        r = CliRunner().invoke(app, _args(sim, tmp_path, tickers, "--validate"))
        times = list(sim.rest_times)
        n429 = sim.stats.rest_429
    assert r.exit_code == 0, r.stdout + r.stderr
    got = read_table(tmp_path / "store", "trades").to_pylist()
    assert Counter(t["trade_id"] for t in got) == Counter({t["trade_id"]: 1 for t in trades})
    assert n429 == 4 and len(times) > 55 // 2  # small pages: many requests, 429s retried
    # the request times the server saw respect the bucket (slack: 3 for loopback jitter)
    assert len(times) > 2 * rate  # longer than one burst: the refill rate is what is tested
    assert max_burst_excess(times, rate, rate) <= 3
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["trades_inserted"] == 55


def test_backfill_against_sim_interrupted_then_resumed_gives_the_same_rows(tmp_path):
    trades = _fixture_trades()
    tickers = sorted({t["ticker"] for t in trades})
    with sim_thread(rest_fixtures=FIXTURES, cutoff=CUTOFF, faults=Faults(page_cap=2)) as sim:
        real = sim.rest.handle
        served = [0]

        def failing_after_12(method, target):  # the API goes away part-way through run 1
            served[0] += 1
            if served[0] > 12:
                return 503, {"error": {"code": "service_unavailable", "message": "down"}}
            return real(method, target)

        sim.rest.handle = failing_after_12
        r0 = CliRunner().invoke(app, _args(sim, tmp_path, tickers, "--max-retries", "1"))
        partial = read_table(tmp_path / "store", "trades").num_rows \
            if (tmp_path / "store" / "trades").exists() else 0
        sim.rest.handle = real
        r1 = CliRunner().invoke(app, _args(sim, tmp_path, tickers))
    assert r0.exit_code != 0 and "Traceback" not in r0.stdout + r0.stderr
    assert partial < 55
    assert r1.exit_code == 0, r1.stdout + r1.stderr
    got = read_table(tmp_path / "store", "trades").to_pylist()
    assert Counter(t["trade_id"] for t in got) == Counter({t["trade_id"]: 1 for t in trades})
