"""Trading tables through the market-data sinks (issue 14 §4; docs/trading.md "Tables").

After ``register_storage_tables()`` the ``orders``, ``positions`` and ``pnl`` records (and
our fills as ``fills`` rows) go through the same Parquet store as market data, and through
the QuestDB writer's ILP batches with DDL carrying the dedup keys. The oracle is the
trading node itself (its orders, fills and PnL, recomputed here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import COCKPIT, REPO_ROOT
from examples.taker import Taker
from kalshi_platform.trading.run import run_backtest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def node():
    _, n = run_backtest(Taker({}), COCKPIT)
    assert len(n.fills) == 4
    return n


def test_records_written_by_the_parquet_store(tmp_path, node):
    from kalshi_platform.trading.tables import TRADING_TABLES, records, register_storage_tables

    register_storage_tables()
    from kalshi_platform.storage.parquet_store import ParquetStore

    store = ParquetStore(tmp_path / "store", "trading-test", fsync=False)
    ts = node.venue.now_ns()
    for r in records(node, ts):
        store.publish(r)
    store.close()
    got = {}
    for name in ("orders", "fills", "positions", "pnl"):
        files = sorted((tmp_path / "store" / name).glob("date=*/*.parquet"))  # the store's layout
        assert files, f"no {name} files in the store"
        got[name] = pa.concat_tables([pq.read_table(f) for f in files])
    for name, spec in TRADING_TABLES.items():
        assert got[name].column_names == [c for c, _ in spec.columns]
    orders = got["orders"].to_pylist()
    assert sorted(o["client_order_id"] for o in orders) == sorted(node.oms.orders)
    for o in orders:
        mine = node.oms.orders[o["client_order_id"]]
        assert (o["status"], o["filled"], o["yes_price"]) == (
            mine.status.value, mine.filled / 100, mine.yes_price / 1e6)
    fills = got["fills"].to_pylist()
    assert sorted(f["trade_id"] for f in fills) == sorted(f.fill_id for f in node.fills)
    total = [r for r in got["pnl"].to_pylist() if r["scope"] == "total"]
    assert len(total) == 1 and total[0]["net"] == (node.pnl()["net"] // 100) / 1e6
    pos = {r["ticker"]: r["position"] for r in got["positions"].to_pylist()}
    assert pos == {t: p.pos / 100 for t, p in node.portfolio.positions.items()}


def test_questdb_ddl_and_ilp_rows_for_the_trading_tables():
    """In a fresh interpreter (the QuestDB modules read the table list when imported):
    register, then the writer's ILP batch takes the records; the DDL has the dedup keys."""
    code = """
import sys
sys.path[:0] = ['tests', '.']
from conftest import COCKPIT
from examples.taker import Taker
from kalshi_platform.trading.run import run_backtest
from kalshi_platform.trading.tables import records, register_storage_tables
tables = register_storage_tables()
from kalshi_platform.storage.ilp_batch import IlpBatch
_, node = run_backtest(Taker({}), COCKPIT)
recs = records(node, node.venue.now_ns())
batch, bad = IlpBatch.from_events(recs)
assert not bad, bad
print(sorted(batch.rows_by_table().items()))
print(tables['orders'].questdb_ddl().splitlines()[-1])
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows, ddl = res.stdout.strip().splitlines()
    n_orders = len(run_backtest(Taker({}), COCKPIT)[1].oms.orders)
    assert f"('orders', {n_orders})" in rows and "('fills', 4)" in rows
    assert "('pnl'," in rows and "('positions'," in rows
    assert "DEDUP UPSERT KEYS(ts, ticker, client_order_id, status)" in ddl


def test_register_is_idempotent_and_refuses_a_clash():
    from kalshi_platform.storage.schema import register_table
    from kalshi_platform.trading.tables import OrderRecord, register_storage_tables

    a = register_storage_tables()
    assert register_storage_tables()["orders"] is a["orders"]
    with pytest.raises(ValueError, match="already"):
        register_table("orders", "ts:timestamp", ("ts",), tuple, lambda e: [], "us!:ts")
    with pytest.raises(ValueError, match="already has table"):
        register_table("orders2", "ts:timestamp", ("ts",), OrderRecord, lambda e: [], "us!:ts")
