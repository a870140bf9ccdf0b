"""``kalshi-platform bench exchange-rest`` (issue 13 §7): output shape on a small run (the
speed itself is measured by the bench, not asserted here), every order in the WAL, bad
input one line with exit 2."""

from __future__ import annotations

from typer.testing import CliRunner

import kalshi_platform.tools.bench  # noqa: F401  (registers bench)
from kalshi_platform.bench.exchange_rest import run_rest_bench
from kalshi_platform.tools.cli import app


def test_rest_bench_shape_and_every_order_logged():
    res = run_rest_bench(orders=200, rate=400, clients=2)
    assert res["orders"] == 200 and res["fsync"] is True
    assert res["wal_records"] == 200 + 2  # each order durable before its answer, + 2 deposits
    assert 0 < res["fills"] <= 200  # IOC sells took resting bids (two sides per trade)
    r = res["rtt_us"]
    assert 0 < r["p50"] <= r["p90"] <= r["p99"] <= r["max"]
    assert res["server_cpu_us_per_order"] > 0


def test_rest_bench_bad_input_is_one_line_exit_2():
    out = CliRunner().invoke(app, ["bench", "exchange-rest", "--clients", "1"])
    assert out.exit_code == 2
    assert len(out.output.strip().splitlines()) == 1 and "clients" in out.output
