"""QuestDB SQL client without a server: the SQL it sends, how it binds timestamps, how it reads
QuestDB's catalogue functions, and Arrow conversion. (The same paths run against a real
QuestDB 8.x in tests/integration/test_questdb_live.py.)"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple

import pyarrow as pa
import pytest

from kalshi_platform.config import Settings
from kalshi_platform.storage.questdb_hdb import (
    HDBError,
    QuestDBClient,
    naive_utc,
    rows_to_batch,
    select_list,
)
from kalshi_platform.storage.schema import TABLES

Col = namedtuple("Col", "name")

# result shapes of QuestDB 8.0's catalogue functions (column names as the server sends them)
CANNED = {
    "SELECT * FROM tables()": (["id", "table_name", "designatedTimestamp", "partitionBy",
                                "maxUncommittedRows", "o3MaxLag", "walEnabled", "directoryName",
                                "dedup"],
                               [(1, "bbo", "ts", "DAY", 500000, 600000000, True, "bbo~1", True),
                                (2, "trades", "ts", "DAY", 500000, 600000000, True, "trades~2", True)]),
    "SELECT * FROM table_partitions('trades')": (
        ["index", "partitionBy", "name", "minTimestamp", "maxTimestamp", "numRows", "diskSize",
         "diskSizeHuman", "readOnly", "active", "attached", "detached", "attachable"],
        [(0, "DAY", "2026-02-12", dt.datetime(2026, 2, 12, 0, 0, 1), dt.datetime(2026, 2, 12, 23, 59),
          120, 98304, "96.0 KiB", False, False, True, False, False),
         (1, "DAY", "2026-02-13", dt.datetime(2026, 2, 13, 0, 1), dt.datetime(2026, 2, 13, 1),
          7, 8192, "8.0 KiB", False, True, True, False, False)]),
    "SELECT * FROM table_partitions('bbo')": (
        ["index", "partitionBy", "name", "minTimestamp", "maxTimestamp", "numRows", "diskSize",
         "diskSizeHuman", "readOnly", "active", "attached", "detached", "attachable"], []),
    "SELECT * FROM wal_tables()": (["name", "suspended", "writerTxn", "writerLagTxnCount",
                                    "sequencerTxn"],
                                   [("bbo", False, 10, 0, 10), ("trades", True, 3, 0, 5)]),
    "SELECT count() FROM trades": (["count"], [(127,)]),
    "SELECT count() FROM bbo": (["count"], [(0,)]),
}


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn
        self.description = None
        self._rows = []

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass

    def execute(self, sql, params=None):
        self.conn.log.append((sql, params))
        names, rows = CANNED.get(sql, ([], []))
        if sql.startswith("SELECT count() FROM trades WHERE"):
            names, rows = ["count"], [(42,)]
        self.description = [Col(n) for n in names]
        self._rows = rows

    def fetchall(self):
        return list(self._rows)

    def stream(self, sql, params=None, size=1):
        self.conn.log.append((sql, params))
        yield from self.conn.stream_rows


class FakeConn:
    closed = False

    def __init__(self):
        self.log = []
        self.stream_rows = []

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


@pytest.fixture()
def client():
    c = QuestDBClient(Settings())
    c._conn = FakeConn()
    return c


def test_settings_defaults_are_questdb_standard_ports():
    c = QuestDBClient(Settings())
    assert (c.host, c.port, c.user, c.password, c.database) == ("127.0.0.1", 8812, "admin", "quest", "qdb")
    s = Settings(questdb_host="db", questdb_pg_port=9999)
    assert (QuestDBClient(s).host, QuestDBClient(s).port) == ("db", 9999)
    assert s.ilp_conf == "http::addr=db:9000;"
    assert Settings(questdb_ilp_protocol="tcp").ilp_conf == "tcp::addr=127.0.0.1:9009;"


def test_timestamps_are_bound_naive_utc(client):
    aware = dt.datetime(2026, 11, 20, 19, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert naive_utc(aware) == dt.datetime(2026, 11, 21, 0, 0) and naive_utc(aware).tzinfo is None
    client.count_day("trades", dt.date(2026, 11, 20))
    sql, params = client._conn.log[-1]
    assert sql == "SELECT count() FROM trades WHERE ts >= %s AND ts < %s"
    assert params == (dt.datetime(2026, 11, 20), dt.datetime(2026, 11, 21))
    assert all(p.tzinfo is None for p in params)
    client.ohlc("KX-A", aware, dt.date(2026, 11, 22), "5m")
    sql, params = client._conn.log[-1]
    assert "SAMPLE BY 5m ALIGN TO CALENDAR" in sql and "first(yes_price)" in sql
    assert params == ("KX-A", dt.datetime(2026, 11, 21), dt.datetime(2026, 11, 22))
    assert all(getattr(p, "tzinfo", None) is None for p in params)


def test_catalogue_parsing_and_status(client):
    assert client.tables() == ["bbo", "trades"]
    parts = client.day_partitions("trades")
    assert [(p.name, p.day, p.rows) for p in parts] == [
        ("2026-02-12", dt.date(2026, 2, 12), 120), ("2026-02-13", dt.date(2026, 2, 13), 7)]
    st = {r["table"]: r for r in client.status()}
    assert st["trades"] == {"table": "trades", "exists": True, "rows": 127, "partitions": 2,
                            "first": "2026-02-12", "last": "2026-02-13", "wal_lag_txns": 2,
                            "suspended": True}
    assert st["bbo"]["rows"] == 0 and st["bbo"]["wal_lag_txns"] == 0
    assert st["tickers"] == {"table": "tickers", "exists": False}


def test_init_schema_creates_missing_and_reasserts_dedup(client):
    created = client.init_schema()
    assert sorted(created) == sorted(set(TABLES) - {"bbo", "trades"})
    sqls = [s for s, _ in client._conn.log]
    assert sum(s.startswith("CREATE TABLE IF NOT EXISTS") for s in sqls) == len(TABLES)
    assert "ALTER TABLE trades DEDUP ENABLE UPSERT KEYS(ts, ticker, trade_id)" in sqls
    # an existing bbo from an older version gains the state column before its dedup keys
    add = "ALTER TABLE bbo ADD COLUMN IF NOT EXISTS state SYMBOL CAPACITY 256 CACHE"
    assert sqls.index(add) < sqls.index(
        "ALTER TABLE bbo DEDUP ENABLE UPSERT KEYS(ts, ticker, seq, state)")
    assert not any(s.startswith("ALTER TABLE tickers") for s in sqls)


def test_drop_partition_sql_and_name_validation(client):
    client.drop_partition("trades", dt.date(2026, 11, 20))
    assert client._conn.log[-1][0] == "ALTER TABLE trades DROP PARTITION LIST '2026-11-20'"
    with pytest.raises(HDBError, match="invalid table name"):
        client.drop_partition("trades; DROP TABLE bbo", dt.date(2026, 11, 20))
    with pytest.raises(HDBError, match="SAMPLE BY interval"):
        client.ohlc("X", dt.date(2026, 1, 1), dt.date(2026, 1, 2), "1h; DROP")


def test_stream_day_chunks_into_arrow(client):
    t = TABLES["trades"]
    rows = [("KX-A", 1_771_000_000_000_000 + i, f"0721192a-a359-a8e8-a4b7-6c27ff12f6{i:02d}",
             0.43, 0.57, 1.0, "yes", None if i % 2 else 1_771_000_000_100_000 + i) for i in range(25)]
    client._conn.stream_rows = rows
    batches = list(client.stream_day("trades", dt.date(2026, 2, 13), chunk_rows=10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert all(b.schema == t.arrow_schema() for b in batches)
    sql, params = client._conn.log[-1]
    assert sql.startswith(f"SELECT {select_list(t)} FROM trades WHERE ts >= %s AND ts < %s")
    assert "cast(ts AS LONG) ts" in sql and "cast(trade_id AS STRING) trade_id" in sql
    tbl = pa.Table.from_batches(batches)
    assert tbl.column("ts")[0].as_py() == dt.datetime(2026, 2, 13, 16, 26, 40, tzinfo=dt.timezone.utc)
    assert tbl.column("recv_ts").null_count == 12


def test_rows_to_batch_empty_keeps_schema():
    b = rows_to_batch(TABLES["bbo"], [])
    assert b.num_rows == 0 and b.schema == TABLES["bbo"].arrow_schema()


def test_unreachable_server_is_one_line_error():
    c = QuestDBClient(Settings(), host="127.0.0.1", port=1, connect_timeout_s=1)
    with pytest.raises(HDBError) as ei:
        c.tables()
    msg = str(ei.value)
    assert msg.startswith("cannot connect to QuestDB PG wire at 127.0.0.1:1") and "\n" not in msg
