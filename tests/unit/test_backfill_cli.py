"""``kalshi-platform backfill`` end to end over a real loopback socket: a threaded HTTP server
(``api_fakes.serve``) serves the 55 real manta_prod trades 2 per page, with the historical
cutoff inside 2026-08-24 15:15:38 (one market's trades straddle it) and every 15th request
answered 429. Checks: every trade in the Parquet store exactly once, ``--validate``, the
request rate seen by the server against the configured bucket, resume after an interrupt,
idempotent re-runs, and one-line errors. Market metadata for these tickers are stubs or
absent (see test_backfill.py); the trades are real.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from typer.testing import CliRunner

import kalshi_platform.tools.backfill  # noqa: F401  (registers `backfill`)
from api_fakes import FakeKalshi, manta_trades, max_burst_excess, serve, unused_port
from kalshi_platform.storage.parquet_store import read_table
from kalshi_platform.tools.cli import app

TRADES = manta_trades()
TICKERS = sorted({t["ticker"] for t in TRADES})
TOKENS_PER_S, COST = 1000, 10     # 100 requests/s, burst 100


def stub(t: str) -> dict:
    return {"ticker": t, "event_ticker": t.rsplit("-", 1)[0], "market_type": "binary",
            "status": "finalized"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("KALSHI_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("KALSHI_READ_TOKENS_PER_S", str(TOKENS_PER_S))
    monkeypatch.setenv("KALSHI_REQUEST_COST", str(COST))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def make_fake() -> FakeKalshi:
    fake = FakeKalshi(trades=TRADES, cutoff="2026-08-24T15:15:38.56Z", page_cap=2,
                      markets=[stub(t) for t in TICKERS[::3]],
                      historical_markets=[stub(t) for t in TICKERS[1::3]])
    fake.fail_every = 15
    return fake


def args(base, tmp_path, *extra):
    out = ["backfill", "--start", "2026-08-24", "--end", "2026-08-30", "--window", "7d",
           "--base-url", base,
           "--store", str(tmp_path / "store"), "--no-progress",
           "--report-json", str(tmp_path / "report.json")]
    for t in TICKERS:
        out += ["--ticker", t]
    return out + list(extra)


def invoke(argv):
    return CliRunner().invoke(app, [str(a) for a in argv])


def one_error_line(r) -> str:
    assert r.exit_code != 0
    assert "Traceback" not in r.output + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    return lines[0]


def assert_store_has_every_trade_once(root) -> None:
    rows = read_table(root, "trades").to_pylist()
    ids = Counter(r["trade_id"] for r in rows)
    assert set(ids) == {t["trade_id"] for t in TRADES} and set(ids.values()) == {1}


def test_backfill_validate_rate_and_rerun(tmp_path):
    fake = make_fake()
    with serve(fake) as base:
        r = invoke(args(base, tmp_path, "--validate", "--concurrency", 8))
        assert r.exit_code == 0, r.stdout + r.stderr
        rep = json.loads((tmp_path / "report.json").read_text())
        assert rep["trades_inserted"] == 55 and rep["complete"]
        assert rep["validation"]["ok"]
        assert rep["validation"]["api"] == {"2026-08-24": 10, "2026-08-30": 45}
        assert rep["status_counts"]["429"] > 0
        assert "trades inserted" in r.stdout and "per-day counts match" in r.stdout
        assert_store_has_every_trade_once(tmp_path / "store")
        # the server saw no more than the bucket allows (slack: 3 requests of socket jitter)
        times = fake.request_times()
        assert len(times) == rep["requests"] and len(times) > 1.2 * TOKENS_PER_S / COST
        assert max_burst_excess(times, TOKENS_PER_S / COST, TOKENS_PER_S / COST) <= 3
        # the same command again: already complete, nothing fetched
        n = len(fake.log)
        r2 = invoke(args(base, tmp_path, "--validate"))
        assert r2.exit_code == 0 and "already complete" in r2.stdout
        assert "per-day counts match" in r2.stdout and len(fake.log) == n
        # --restart: fetched again, the writer's files rewritten, still each trade once
        r3 = invoke(args(base, tmp_path, "--restart"))
        assert r3.exit_code == 0, r3.stderr
        assert_store_has_every_trade_once(tmp_path / "store")


def test_interrupted_cli_run_resumes(tmp_path, monkeypatch):
    """The server fails (503 for good) partway: the run exits 1 with one line; the same
    command once the server is healthy resumes and lands every trade exactly once."""
    fake = make_fake()
    import kalshi_platform.backfill as bf

    real_walk = bf._walk
    calls = {"n": 0}

    async def walk(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 20:
            fake.fail_next = [503] * 1000
        return await real_walk(*a, **kw)

    monkeypatch.setattr(bf, "_walk", walk)
    with serve(fake) as base:
        r = invoke(args(base, tmp_path, "--concurrency", 1, "--max-retries", 1))
        line = one_error_line(r)
        assert r.exit_code == 2 and "run again to resume" in line and "HTTP 503" in line
        ck = json.loads(next((tmp_path / "store" / "_backfill").glob("*.json")).read_text())
        done_before = len(ck["done"])
        assert 0 < done_before < len(ck["plan"])
        # the checkpoint belongs to this server: another base URL is refused
        other = f"http://127.0.0.1:{unused_port()}/trade-api/v2"
        assert "different backfill" in one_error_line(invoke(args(other, tmp_path)))
        fake.fail_next = []
        r2 = invoke(args(base, tmp_path, "--validate"))
    assert r2.exit_code == 0, r2.stderr
    assert "resuming from" in r2.stderr
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["windows"]["before"] == done_before and rep["validation"]["ok"]
    assert_store_has_every_trade_once(tmp_path / "store")


def test_errors_are_one_line(tmp_path):
    with serve(make_fake()) as base:
        r = invoke(args(base, tmp_path)[:-2 * len(TICKERS)] + ["--ticker", "KXNOPE-1"])
        assert r.exit_code == 2 and "unknown market 'KXNOPE-1'" in one_error_line(r)
        r = invoke(args(base, tmp_path) + ["--series", "KXX"])
        assert r.exit_code == 2 and "exactly one of" in one_error_line(r)
        r = invoke(["backfill", "--ticker", "A", "--start", "2026-08-30", "--end", "2026-08-01",
                    "--base-url", base])
        assert r.exit_code == 2 and "not after" in one_error_line(r)
        r = invoke(["backfill", "--ticker", "A", "--start", "Aug 1", "--end", "2026-08-01"])
        assert r.exit_code == 2 and "not a date" in one_error_line(r)
        r = invoke(["backfill", "--ticker", "A", "--start", "2026-08-01", "--end", "2026-08-02",
                    "--sink", "none", "--validate"])
        assert r.exit_code == 2 and "--validate" in one_error_line(r)
        r = invoke(["backfill", "--ticker", "A", "--start", "2026-08-01", "--end", "2026-08-02",
                    "--sink", "kafka"])
        assert r.exit_code == 2 and "unknown sink" in one_error_line(r)
    r = invoke(["backfill", "--ticker", "A", "--start", "2026-08-01", "--end", "2026-08-02",
                "--base-url", f"http://127.0.0.1:{unused_port()}/trade-api/v2",
                "--store", str(tmp_path / "s2"), "--no-progress", "--max-retries", "1"])
    line = one_error_line(r)
    assert r.exit_code == 2 and "cannot connect" in line
