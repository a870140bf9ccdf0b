"""Table declarations: one source for Arrow schemas, QuestDB DDL and row mapping."""

from __future__ import annotations

import pyarrow as pa
import pytest

from kalshi_platform.storage.schema import TABLE_FOR_EVENT, TABLES
from kalshi_platform.ticker_plant.events import BBO, SnapshotEvent, TradeEvent


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_is_consistent(name):
    t = TABLES[name]
    names = t.column_names
    assert names.count("ts") == 1 and len(set(names)) == len(names)
    assert t.dedup_keys[0] == "ts" and set(t.dedup_keys) <= set(names)
    assert t.arrow_schema().field("ts").type == pa.timestamp("us", tz="UTC")
    ddl = t.questdb_ddl()
    assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS {name} (")
    assert ddl.endswith(f"TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS({', '.join(t.dedup_keys)});")
    for c in t.columns:
        assert f"  {c.name} " in ddl
    assert TABLE_FOR_EVENT[t.event] is t


def test_rows_convert_fixed_point_exactly():
    bbo = BBO("T", 1_786_085_189_148_000_000, 430_000, 229_086, 440_000, 25_255_452, 24, None)
    (row,) = TABLES["bbo"].rows(bbo)
    assert row == ("T", 1_786_085_189_148_000, 0.43, 2290.86, 0.44, 252554.52, 0.435,
                   pytest.approx(0.01, abs=1e-12), 24, None, "live")
    (trade,) = TABLES["trades"].rows(TradeEvent("T", 5_000, "id", 890_000, 110_000, 300, "yes", 7_000))
    assert trade == ("T", 5, "id", 0.89, 0.11, 3.0, "yes", 7)
    empty = TABLES["orderbook_snapshots"].rows(SnapshotEvent("T", 1000, 1, 1, [], [], None))
    assert empty == [("T", 1, 1, 1, None, None, None, None)]
    two = TABLES["orderbook_snapshots"].rows(
        SnapshotEvent("T", 1000, 1, 1, [(10_000, 100)], [(20_000, 250)], None))
    assert [r[4:7] for r in two] == [("yes", 0.01, 1.0), ("no", 0.02, 2.5)]


def test_trades_ddl_golden():
    """The exact QuestDB DDL for ``trades`` (QuestDB docs "CREATE TABLE", "Deduplication")."""
    from kalshi_platform.storage.schema import TABLES

    assert TABLES["trades"].questdb_ddl() == (
        "CREATE TABLE IF NOT EXISTS trades (\n"
        "  ticker SYMBOL CAPACITY 65536 CACHE,\n"
        "  ts TIMESTAMP,\n"
        "  trade_id UUID,\n"
        "  yes_price DOUBLE,\n"
        "  no_price DOUBLE,\n"
        "  count DOUBLE,\n"
        "  taker_side SYMBOL CAPACITY 256 CACHE,\n"
        "  recv_ts TIMESTAMP\n"
        ") TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, ticker, trade_id);")


def test_dedup_keys_are_fixed_size_columns_on_questdb_8_0():
    """VARCHAR/STRING dedup keys need QuestDB 8.1.1+ (questdb PR #4915): keep keys fixed-size
    so `db init` works on every 8.x."""
    from kalshi_platform.storage.schema import TABLES

    for t in TABLES.values():
        kinds = {c.name: c.kind for c in t.columns}
        assert all(kinds[k] not in ("varchar",) for k in t.dedup_keys), t.name
