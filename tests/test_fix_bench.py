"""`kalshi-platform bench exchange-fix` (issue 13 §7): output shape and that every order got
its report through a fsynced WAL (a tiny run; figures come from the bench, not from tests)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import kalshi_platform.tools.bench  # noqa: F401  (registers `bench`)
from kalshi_platform.tools.cli import app


def test_bench_exchange_fix_json():
    out = CliRunner().invoke(app, ["bench", "exchange-fix", "--orders", "200", "--rate",
                                   "2000", "--quiet", "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["orders"] == 200 and res["fsync"] is True and res["sessions"] == 4
    assert res["wal_records"] == 200  # every order went through the durable log
    r = res["rtt_us"]
    assert 0 < r["p50"] <= r["p90"] <= r["p99"] <= r["max"]


def test_bench_exchange_fix_bad_input_is_one_line():
    out = CliRunner().invoke(app, ["bench", "exchange-fix", "--sessions", "1", "--quiet"])
    assert out.exit_code == 2
    assert "sessions" in out.output and len(out.output.strip().splitlines()) == 1
