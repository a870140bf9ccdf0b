"""EOD against a real QuestDB 8.x (skipped unless ``QUESTDB_TEST_HTTP`` is set).

Environment: ``QUESTDB_TEST_HTTP`` = ``host:port`` of QuestDB's HTTP endpoint (ILP/HTTP
``/write``, e.g. ``127.0.0.1:9000``); ``QUESTDB_TEST_PG`` = PG wire port on the same host
(default 8812; user ``admin``, password ``quest``, database ``qdb``).

The rows: the bundled real recordings replayed into an embedded store (the oracle), moved to
a test day chosen at random between 1980 and 2007 (so earlier runs and real data cannot
collide — the control table keeps a row per migrated day), written with the official client
over ILP/HTTP into tables created from ``schema.TABLES`` (``CREATE TABLE IF NOT EXISTS``,
``DEDUP UPSERT KEYS``). EOD then streams them out over PG wire (``QuestDBClient.stream_day``),
writes and uploads (moto S3 on loopback), verifies, drops the partition (``ALTER TABLE t DROP
PARTITION LIST``) and records ``eod_migrations`` — all checked against the oracle and against
QuestDB itself.
"""

from __future__ import annotations

import os
import random
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from hist_support import AWS_ENV, S3Server, build_store, rows_of, sorted_rows
from kalshi_platform.storage.eod import (DONE, EMPTY, FAILED, SKIPPED, VERIFIED, EodJob,
                                         QuestDBControl, QuestDBSource, S3Target,
                                         wait_wal_applied)
from kalshi_platform.storage.hdb_writer import day_bounds_us
from kalshi_platform.storage.parquet_store import read_table
from kalshi_platform.storage.schema import TABLES

HTTP = os.environ.get("QUESTDB_TEST_HTTP", "")
PG_PORT = int(os.environ.get("QUESTDB_TEST_PG", "8812"))

pytestmark = pytest.mark.skipif(
    not HTTP, reason="no real QuestDB: set QUESTDB_TEST_HTTP=host:9000 (and QUESTDB_TEST_PG, "
                     "default 8812) to run the EOD integration test against QuestDB 8.x")

ALL = list(TABLES)
_US_DAY = 86_400_000_000


@pytest.fixture(scope="module")
def client():
    try:
        from kalshi_platform.storage.questdb_hdb import QuestDBClient
    except ModuleNotFoundError as e:
        if e.name != "kalshi_platform.storage.questdb_hdb":
            raise
        pytest.skip("kalshi_platform.storage.questdb_hdb (QuestDBClient) is not on this branch")
    c = QuestDBClient(host=HTTP.rsplit(":", 1)[0], port=PG_PORT, user="admin",
                      password="quest", database="qdb")
    for t in TABLES.values():
        c.execute(t.questdb_ddl())
    yield c
    c.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("golden") / "store")


@pytest.fixture(scope="module")
def s3srv():
    srv = S3Server()
    yield srv
    srv.stop()


@pytest.fixture
def s3(s3srv, monkeypatch):
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    bucket = s3srv.new_bucket()
    return S3Target.from_uri(f"s3://{bucket}/hist", s3srv.endpoint), bucket


def _test_day() -> date:
    return date(1980, 1, 1) + timedelta(days=random.SystemRandom().randrange(10_000))


def shifted(store, table: str, day: date) -> pa.Table:
    """Every row of ``table`` in the store moved to ``day``: ``ts`` keeps its time of day and
    ``recv_ts`` moves by the same amount as its row's ``ts``."""
    t = read_table(store, table)
    if t.num_rows == 0:
        return t
    lo, _ = day_bounds_us(day)
    ts = t["ts"].cast(pa.int64()).to_pylist()
    moved = [lo + v % _US_DAY for v in ts]
    t = t.set_column(t.schema.get_field_index("ts"), "ts",
                     pa.array(moved, pa.int64()).cast(pa.timestamp("us", tz="UTC")))
    if "recv_ts" in t.schema.names:
        recv = t["recv_ts"].cast(pa.int64()).to_pylist()
        recv = [None if r is None else r + (m - v) for r, m, v in zip(recv, moved, ts)]
        t = t.set_column(t.schema.get_field_index("recv_ts"), "recv_ts",
                         pa.array(recv, pa.int64()).cast(pa.timestamp("us", tz="UTC")))
    return t.cast(TABLES[table].arrow_schema())


def dedup(table: str, t: pa.Table) -> list[tuple]:
    """What QuestDB keeps under the table's DEDUP UPSERT KEYS (last row wins), sorted."""
    keys = TABLES[table].dedup_keys
    kept = {}
    for r in t.to_pylist():
        kept[tuple(r[k] for k in keys)] = r
    return sorted_rows(pa.Table.from_pylist(list(kept.values()), schema=t.schema))


def ingest(client, data: dict[str, pa.Table]) -> None:
    """Write rows over ILP/HTTP with the official client (symbols as SYMBOL, timestamps as
    TimestampMicros), then wait until every table's WAL is applied."""
    try:  # questdb >= 5 exports these at the top level (questdb.ingress warns)
        from questdb import Sender, TimestampMicros
    except ImportError:
        from questdb.ingress import Sender, TimestampMicros

    with Sender.from_conf(f"http::addr={HTTP};") as sender:
        for table, t in data.items():
            kinds = {c.name: c.kind for c in TABLES[table].columns}
            as_int = t.cast(pa.schema([  # timestamps as exact integer µs
                pa.field(f.name, pa.int64() if kinds[f.name] == "timestamp" else f.type)
                for f in t.schema]))
            for r in as_int.to_pylist():
                symbols = {k: v for k, v in r.items() if kinds[k] == "symbol" and v is not None}
                cols = {k: (TimestampMicros(v) if kinds[k] == "timestamp" else v)
                        for k, v in r.items()
                        if k != "ts" and v is not None and kinds[k] != "symbol"}
                sender.row(table, symbols=symbols, columns=cols, at=TimestampMicros(r["ts"]))
        sender.flush()
    for table in data:
        assert wait_wal_applied(client, table, 60), f"{table}: WAL not applied"


def load_day(client, store) -> tuple[date, dict[str, list[tuple]]]:
    day = _test_day()
    data = {t: shifted(store, t, day) for t in TABLES}
    data = {t: v for t, v in data.items() if v.num_rows}
    ingest(client, data)
    oracle = {t: dedup(t, v) for t, v in data.items()}
    for t, rows in oracle.items():
        assert client.count_day(t, day) == len(rows), t
    return day, oracle


def day_ts(day: date) -> datetime:
    """The control table's ``ts`` of a migrated day, bound naive UTC (QuestDB 8.0)."""
    return datetime(day.year, day.month, day.day)


def job(client, dest, s3, **kw) -> EodJob:
    return EodJob(QuestDBSource(client), QuestDBControl(client), dest, s3=s3[0], **kw)


def test_eod_against_questdb(client, store, s3, s3srv, tmp_path):
    day, oracle = load_day(client, store)
    dest = tmp_path / "hdb"
    rep = job(client, dest, s3).run(day, ALL)
    for r in rep.results:
        assert r.error == "", r
        assert r.status == (DONE if r.table in oracle else EMPTY), r
    for t, rows in oracle.items():
        assert rows_of(dest, t, day) == rows, t
        assert rows_of(f"{s3[1]}/hist", t, day, filesystem=s3[0].fs) == rows, t
        assert client.count_day(t, day) == 0, f"{t}: partition not dropped"
        assert [p.day for p in client.day_partitions(t)].count(day) == 0
    rec = client.fetchall("SELECT table_name, status, row_count, file_count, dropped "
                          "FROM eod_migrations WHERE ts = %s",
                          (day_ts(day),))
    got = {r[0]: r[1:] for r in rec}
    for t, rows in oracle.items():
        assert got[t] == (DONE, len(rows), 1, True), (t, got.get(t))
    assert len(rec) == len(ALL)  # one row per (day, table): DEDUP UPSERT KEYS(ts, table_name)
    # a re-run of the finished day is a no-op
    rep = job(client, dest, s3).run(day, ALL)
    assert {r.status for r in rep.results} <= {SKIPPED, EMPTY}


def test_crash_between_upload_and_drop_is_recovered(client, store, s3, s3srv, tmp_path,
                                                    monkeypatch):
    day, oracle = load_day(client, store)
    dest = tmp_path / "hdb"

    def crash(self, table, d, snap):
        raise RuntimeError("simulated crash before DROP PARTITION")

    monkeypatch.setattr(QuestDBSource, "drop", crash)
    rep = job(client, dest, s3, max_rows_per_file=100).run(day, ALL)
    assert {r.table for r in rep.results if r.status == FAILED} == set(oracle)
    for t, rows in oracle.items():
        assert client.count_day(t, day) == len(rows)  # nothing dropped
        assert QuestDBControl(client).get(day, t).status == VERIFIED
    monkeypatch.undo()
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    rep = job(client, dest, s3).run(day, ALL)
    assert {r.table for r in rep.results if r.status == DONE} == set(oracle)
    for t, rows in oracle.items():
        assert rows_of(dest, t, day) == rows
        assert [p.name for p in (dest / t / f"date={day}").iterdir()] == ["part-00000.parquet"]
        assert rows_of(f"{s3[1]}/hist", t, day, filesystem=s3[0].fs) == rows
        assert client.count_day(t, day) == 0
    assert set(s3srv.objects(s3[1])) == {f"hist/{t}/date={day}/part-00000.parquet"
                                          for t in oracle}
