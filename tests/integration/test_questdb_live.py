"""Against a real QuestDB 8.x (skipped unless ``QUESTDB_TEST_HTTP`` names one).

Environment:
    QUESTDB_TEST_HTTP    ``host:port`` of ILP/HTTP (e.g. ``127.0.0.1:9000``). Required.
    QUESTDB_TEST_PG      ``host:port`` of PG wire [default: same host, 8812].
    QUESTDB_TEST_STOP_CMD / QUESTDB_TEST_START_CMD
                         shell commands that stop and start that server (e.g.
                         ``docker stop questdb`` / ``docker start questdb``); the restart test
                         is skipped without them.

The server must be a throwaway one: the tests drop and recreate the platform's tables.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kalshi_platform.config import Settings
from kalshi_platform.fixedpoint import PRICE_SCALE, SIZE_SCALE
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.parquet_store import read_table
from kalshi_platform.storage.questdb_hdb import QuestDBClient
from kalshi_platform.storage.questdb_rdb import QuestDBWriter
from kalshi_platform.storage.schema import TABLES
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.tools.replay import run_replay

HTTP = os.environ.get("QUESTDB_TEST_HTTP", "")
pytestmark = pytest.mark.skipif(
    not HTTP, reason="QUESTDB_TEST_HTTP is not set: no QuestDB 8.x server to test against "
                     "(set it to host:9000; QuestDB cannot be installed on this machine)")

DATA = Path(__file__).resolve().parents[2] / "data" / "recordings"
COCKPIT = DATA / "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
RECORDINGS = [COCKPIT, DATA / "ssmd_prod_trade_2026-02-12.jsonl",
              DATA / "ssmd_prod_ticker_2026-02-12.jsonl"]


def _settings(tmp_path: Path) -> Settings:
    host, _, http_port = HTTP.partition(":")
    pg = os.environ.get("QUESTDB_TEST_PG", f"{host}:8812")
    pg_host, _, pg_port = pg.partition(":")
    return Settings(questdb_ilp_conf=f"http::addr={host}:{http_port or 9000};",
                    questdb_pg_host=pg_host, questdb_pg_port=int(pg_port or 8812),
                    questdb_spool_dir=tmp_path / "spool", questdb_close_timeout_s=60.0,
                    store_dir=tmp_path / "store")


@pytest.fixture()
def qdb(tmp_path):
    s = _settings(tmp_path)
    c = QuestDBClient(s)
    for t in TABLES:
        c.execute(f"DROP TABLE IF EXISTS {t}")
    assert sorted(c.init_schema()) == sorted(TABLES)
    assert c.init_schema() == []  # idempotent
    yield s, c
    c.close()


def _wait_applied(c: QuestDBClient, timeout_s: float = 60.0) -> None:
    """Wait until every WAL table has applied all its transactions (bounded)."""
    deadline = time.monotonic() + timeout_s
    ev = threading.Event()
    while True:
        lag = c.wal_lag()
        if all((v["lag_txns"] or 0) == 0 for k, v in lag.items() if k in TABLES):
            assert not any(v["suspended"] for k, v in lag.items() if k in TABLES), lag
            return
        assert time.monotonic() < deadline, f"WAL not applied: {lag}"
        ev.wait(0.1)


def _counts(c: QuestDBClient) -> dict[str, int]:
    return {t: int(c.fetchall(f"SELECT count() FROM {t}")[0][0]) for t in TABLES}


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda p: p.name)
def test_replay_counts_then_dedup_on_second_replay(qdb, rec):
    s, c = qdb
    summary = run_replay(rec, store=s.store_dir, sinks=["questdb", "parquet"], settings=s)
    _wait_applied(c)
    expected = {t: summary["rows_by_table"].get(t, 0) for t in TABLES}
    assert summary["questdb"]["rows_quarantined"] == 0
    assert _counts(c) == expected
    run_replay(rec, store=s.store_dir, sinks=["questdb"], settings=s)
    _wait_applied(c)
    assert _counts(c) == expected  # DEDUP UPSERT KEYS: a replay adds nothing
    # the PG-wire read path returns exactly what the Parquet sink holds
    for t, n in expected.items():
        if not n:
            continue
        days = sorted({p.day for p in c.day_partitions(t)})
        got = sum(b.num_rows for d in days for b in c.stream_day(t, d, chunk_rows=500))
        assert got == n == read_table(s.store_dir, t).num_rows


def test_latest_bbo_matches_the_plant(qdb, tmp_path):
    s, c = qdb
    w = QuestDBWriter.from_settings(s)
    plant = TickerPlant([w])
    feed(COCKPIT, plant)
    plant.close()
    _wait_applied(c)
    latest = c.latest_bbo()
    books = {t: b for t, b in plant.books.items() if b.state == "live"}
    assert books and set(books) <= set(latest)
    for t, b in books.items():
        yb, ybs, ya, yas = b.top()
        _ts, qyb, qybs, qya, qyas, _seq = latest[t]
        assert (qyb, qybs, qya, qyas) == (
            None if yb is None else yb / PRICE_SCALE, None if ybs is None else ybs / SIZE_SCALE,
            None if ya is None else ya / PRICE_SCALE, None if yas is None else yas / SIZE_SCALE), t


def test_ohlc_and_drop_partition(qdb):
    s, c = qdb
    rec = DATA / "ssmd_prod_trade_2026-02-12.jsonl"
    run_replay(rec, store=s.store_dir, sinks=["questdb", "parquet"], settings=s)
    _wait_applied(c)
    trades = read_table(s.store_dir, "trades").to_pylist()
    ticker = max({r["ticker"] for r in trades}, key=lambda k: sum(r["ticker"] == k for r in trades))
    mine = sorted((r for r in trades if r["ticker"] == ticker), key=lambda r: r["ts"])
    day = mine[0]["ts"].date()
    end = mine[-1]["ts"].replace(tzinfo=None) + dt.timedelta(seconds=1)
    bars = c.ohlc(ticker, day, end, "1d")
    assert sum(b[6] for b in bars) == len(mine)
    assert max(b[2] for b in bars) == max(r["yes_price"] for r in mine)
    assert min(b[3] for b in bars) == min(r["yes_price"] for r in mine)
    parts = c.day_partitions("trades")
    assert parts and sum(p.rows for p in parts) == len(trades)
    c.drop_partition("trades", parts[0].day)
    _wait_applied(c)
    assert c.count_day("trades", parts[0].day) == 0


def test_server_restart_mid_replay_every_row_lands_once(qdb, tmp_path):
    stop, start = os.environ.get("QUESTDB_TEST_STOP_CMD"), os.environ.get("QUESTDB_TEST_START_CMD")
    if not (stop and start):
        pytest.skip("QUESTDB_TEST_STOP_CMD / QUESTDB_TEST_START_CMD not set: cannot restart the server")
    s, c = qdb
    expected = run_replay(COCKPIT, store=tmp_path / "oracle", sinks=["none"])["rows_by_table"]
    w = QuestDBWriter.from_settings(s, batch_rows=100, flush_interval_s=0.05,
                                    retry_base_s=0.1, retry_cap_s=1.0)
    n = [0]

    class Plant(TickerPlant):
        def process_frame(self, f, recv_ns=None, raw=None):
            super().process_frame(f, recv_ns, raw)
            n[0] += 1
            if n[0] == 90:
                subprocess.run(stop, shell=True, check=True, timeout=120)
            elif n[0] == 180:
                subprocess.run(start, shell=True, check=True, timeout=120)

    plant = Plant([w])
    feed(COCKPIT, plant)
    plant.close()
    assert w.stats.spool_depth == 0, w.stats.as_dict()
    c.close()
    _wait_applied(c, timeout_s=120)
    got = _counts(c)
    assert {t: got[t] for t in expected} == expected


def test_columnar_fills_with_null_booleans_land(qdb, tmp_path):
    """The columnar path's one divergence from row(): rows with a null BOOLEAN go in a frame
    without that column (dataframe() refuses null booleans). On a real server every fill
    lands, and QuestDB's BOOLEAN (no null) reads false for the rows that left it out."""
    from kalshi_platform.ticker_plant.events import FillEvent

    s, c = qdb
    fills = [FillEvent("KXT-1", 1_786_085_188_416_123_456 + i * 1_000_001,
                       f"0721192a-a359-a8e8-a4b7-6c27ff12f6{i:02d}",
                       f"1721192a-a359-a8e8-a4b7-6c27ff12f6{i:02d}", ("yes", "no", None)[i % 3],
                       ("buy", "sell", None)[i % 3], (True, False, None)[i % 3],
                       10_000 * (i + 1), 100 * i + 1, None, None, None) for i in range(12)]
    w = QuestDBWriter.from_settings(s)
    for f in fills:
        w.publish(f)
    w.close()
    assert w.stats.rows_written == 12 and w.stats.rows_quarantined == 0
    _wait_applied(c)
    assert int(c.fetchall("SELECT count() FROM fills")[0][0]) == 12
    assert int(c.fetchall("SELECT count() FROM fills WHERE is_taker")[0][0]) == 4
