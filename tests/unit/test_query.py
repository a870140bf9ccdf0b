"""``kalshi-platform query``: DuckDB over the Parquet tier produced by EOD from the bundled
real recordings, locally and on S3 (moto on loopback), checked against results computed in
Python from the embedded store's rows."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date

import pyarrow.parquet as pq
import pytest

from hist_support import (AWS_ENV, S3Server, build_store, copy_store, invoke, one_error_line,
                          run_cli, snapshot_store)
from kalshi_platform.historical.query import OHLC_SQL, QueryError, open_local, open_s3
from kalshi_platform.storage.eod import CONTROL_FILE, EmbeddedSource, EodJob, JsonlControl, S3Target
from kalshi_platform.storage.schema import TABLES


@pytest.fixture(scope="module")
def tier(tmp_path_factory):
    """EOD every day of the bundled recordings into a local root and an S3 bucket."""
    tmp = tmp_path_factory.mktemp("tier")
    golden = build_store(tmp / "golden")
    oracle = snapshot_store(golden)
    store = copy_store(golden, tmp / "store")
    srv = S3Server()
    bucket = srv.new_bucket()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in AWS_ENV.items():
            mp.setenv(k, v)
        hdb = tmp / "hdb"
        job = EodJob(EmbeddedSource(store), JsonlControl(hdb / CONTROL_FILE), hdb,
                     s3=S3Target.from_uri(f"s3://{bucket}/hist", srv.endpoint))
        for day in sorted({d for (_, d) in oracle}):
            assert not job.run(day, list(TABLES)).failed
        yield {"hdb": hdb, "oracle": oracle, "srv": srv, "uri": f"s3://{bucket}/hist",
               "tmp": tmp}
    srv.stop()


@pytest.fixture
def aws(monkeypatch):
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)


def oracle_rows(oracle, table):
    cols = TABLES[table].column_names
    return [dict(zip(cols, r), date=d) for (t, d), rows in oracle.items() if t == table
            for r in rows]


def ohlc_oracle(oracle):
    """Daily OHLC per ticker from the raw trade rows (ties in ts ordered by trade_id)."""
    groups = defaultdict(list)
    for r in oracle_rows(oracle, "trades"):
        groups[(r["ticker"], r["date"])].append(r)
    out = []
    for (ticker, d), rows in sorted(groups.items()):
        rows.sort(key=lambda r: (r["ts"], r["trade_id"]))
        prices = [r["yes_price"] for r in rows]
        out.append({"ticker": ticker, "date": d, "open": prices[0], "high": max(prices),
                    "low": min(prices), "close": prices[-1],
                    "volume": sum(r["count"] for r in rows), "trades": len(rows)})
    return out


def test_one_view_per_table_with_date_partition(tier):
    h = open_local(tier["hdb"])
    try:
        assert h.views == sorted({t for (t, _) in tier["oracle"]})
        counts = h.query("SELECT date, count(*) AS n FROM orderbook_snapshots GROUP BY date"
                         ).read_all().to_pylist()
        assert counts == [{"date": date(2026, 8, 7), "n": 1114}]
        # the partition column prunes: one day of bbo out of the tier
        got = h.query("SELECT * EXCLUDE (date) FROM bbo WHERE date = DATE '2026-08-07'"
                      ).read_all()
        assert got.schema.names == TABLES["bbo"].column_names
        assert got.num_rows == len(tier["oracle"][("bbo", date(2026, 8, 7))])
    finally:
        h.close()


def test_ohlc_bars_equal_python_over_the_raw_trades(tier):
    want = ohlc_oracle(tier["oracle"])
    assert len(want) == 4 and any(w["trades"] == 5 for w in want)  # 2 days, ties in ts
    h = open_local(tier["hdb"])
    try:
        assert h.query(OHLC_SQL).read_all().to_pylist() == want
    finally:
        h.close()


def test_s3_tier_gives_the_same_answers(tier, aws):
    h = open_s3(tier["uri"], tier["srv"].endpoint)
    try:
        assert h.views == sorted({t for (t, _) in tier["oracle"]})
        assert h.query(OHLC_SQL).read_all().to_pylist() == ohlc_oracle(tier["oracle"])
        n = h.query("SELECT count(*) AS n FROM orderbook_deltas WHERE date = DATE '2026-08-07'"
                    ).read_all().to_pylist()
        assert n == [{"n": 245}]
    finally:
        h.close()


def test_cli_prints_a_table(tier):
    r = run_cli(["query", OHLC_SQL, "--hdb", tier["hdb"]], tier["tmp"])
    assert r.returncode == 0, r.stderr
    for w in ohlc_oracle(tier["oracle"]):
        assert w["ticker"] in r.stdout
    assert "4 row(s)" in r.stdout


def test_cli_writes_csv_and_parquet(tier, tmp_path):
    sql = "SELECT ticker, ts, trade_id, yes_price, \"count\" FROM trades ORDER BY ts, trade_id"
    want = sorted(oracle_rows(tier["oracle"], "trades"), key=lambda r: (r["ts"], r["trade_id"]))
    r = run_cli(["query", sql, "--hdb", tier["hdb"], "--csv", tmp_path / "t.csv"], tmp_path)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "t.csv", newline="") as f:
        got = list(csv.DictReader(f))
    assert [(g["ticker"], g["trade_id"], float(g["yes_price"]), float(g["count"])) for g in got] \
        == [(w["ticker"], w["trade_id"], w["yes_price"], w["count"]) for w in want]
    assert got[0]["ts"].startswith(want[0]["ts"].strftime("%Y-%m-%d %H:%M:%S"))
    r = run_cli(["query", sql, "--hdb", tier["hdb"], "--parquet", tmp_path / "t.parquet",
                 "--limit", "3"], tmp_path)
    assert r.returncode == 0, r.stderr
    t = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert [x["trade_id"] for x in t] == [w["trade_id"] for w in want[:3]]
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_limit_and_more_rows_note(tier):
    r = invoke(["query", "SELECT * FROM orderbook_snapshots", "--hdb", tier["hdb"]])
    assert r.exit_code == 0 and "100 row(s) shown; more available" in r.stdout
    r = invoke(["query", "SELECT * FROM orderbook_snapshots", "--hdb", tier["hdb"],
                "--limit", "5"])
    assert r.exit_code == 0 and "5 row(s)" in r.stdout and "more available" not in r.stdout


def test_cli_s3(tier):
    r = run_cli(["query", "SELECT count(*) AS n FROM trades", "--s3", tier["uri"],
                 "--s3-endpoint", tier["srv"].endpoint], tier["tmp"], **AWS_ENV)
    assert r.returncode == 0, r.stderr
    assert "11" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["SELECT * FROM no_such_table"], "no_such_table"),
    (["SELEC 1"], "syntax error"),
    (["SELECT 1", "--hdb", "/nonexistent/hdb"], "/nonexistent/hdb: no such directory"),
    (["SELECT 1", "--csv", "a.csv", "--parquet", "a.parquet"], "at most one of --csv"),
])
def test_cli_errors_are_one_line(tier, args, message):
    full = ["query", *args] + ([] if "--hdb" in args else ["--hdb", tier["hdb"]])
    r = invoke(full)
    assert r.exit_code == 2
    assert message in one_error_line(r.stderr)


def test_open_local_without_tables_is_an_error(tmp_path):
    with pytest.raises(QueryError, match="no <table>/date=YYYY-MM-DD"):
        open_local(tmp_path)
