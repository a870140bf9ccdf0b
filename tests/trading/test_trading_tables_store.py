"""Trading tables through the market-data sinks (issue 14 §4; docs/trading.md "Tables").

After ``register_storage_tables()`` the ``orders``, ``positions`` and ``pnl`` records (and
our fills as ``fills`` rows) go through the same Parquet store as market data, and through
the QuestDB writer's ILP batches, with DDL carrying the dedup keys. The oracle is the trading
node of the same backtest (its orders, fills, positions and PnL). Registration changes the
process-wide table list, so each check runs in a fresh interpreter (the rest of the suite
keeps the plant's tables only)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import COCKPIT, REPO_ROOT
from examples.taker import Taker
from kalshi_platform.trading.run import run_backtest

pytest.importorskip("pyarrow")

PRELUDE = """
import json, sys
sys.path[:0] = ['tests', '.']
from conftest import COCKPIT
from examples.taker import Taker
from kalshi_platform.trading.run import run_backtest
from kalshi_platform.trading.tables import records, register_storage_tables
tables = register_storage_tables()
_, node = run_backtest(Taker({}), COCKPIT)
recs = records(node, node.venue.now_ns())
"""


def _py(code: str) -> dict:
    res = subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def node():
    _, n = run_backtest(Taker({}), COCKPIT)
    assert len(n.fills) == 4
    return n


def test_records_written_by_the_parquet_store(tmp_path, node):
    got = _py(f"""
import pyarrow.parquet as pq
from pathlib import Path
from kalshi_platform.storage.parquet_store import ParquetStore
root = Path({str(tmp_path / 'store')!r})
st = ParquetStore(root, 'trading-test', fsync=False)
for r in recs:
    st.publish(r)
st.close()
out = {{}}
for name in ('orders', 'fills', 'positions', 'pnl'):
    files = sorted((root / name).glob('date=*/*.parquet'))  # the store's layout
    t = [pq.read_table(f) for f in files]
    out[name] = {{'columns': t[0].column_names if t else [],
                 'rows': [r for x in t for r in x.to_pylist()]}}
print(json.dumps(out, default=str))
""")
    from kalshi_platform.trading.tables import TRADING_TABLES

    for name, spec in TRADING_TABLES.items():
        assert got[name]["columns"] == [c for c, _ in spec.columns]
    orders = got["orders"]["rows"]
    assert sorted(o["client_order_id"] for o in orders) == sorted(node.oms.orders)
    for o in orders:
        mine = node.oms.orders[o["client_order_id"]]
        assert (o["status"], o["filled"], o["yes_price"]) == (
            mine.status.value, mine.filled / 100, mine.yes_price / 1e6)
    assert sorted(f["trade_id"] for f in got["fills"]["rows"]) == \
        sorted(f.fill_id for f in node.fills)
    total = [r for r in got["pnl"]["rows"] if r["scope"] == "total"]
    assert len(total) == 1 and total[0]["net"] == (node.pnl()["net"] // 100) / 1e6
    pos = {r["ticker"]: r["position"] for r in got["positions"]["rows"]}
    assert pos == {t: p.pos / 100 for t, p in node.portfolio.positions.items()}


def test_questdb_ddl_and_ilp_rows_for_the_trading_tables(node):
    got = _py("""
from kalshi_platform.storage.ilp_batch import IlpBatch
batch, bad = IlpBatch.from_events(recs)
print(json.dumps({'bad': len(bad), 'rows': batch.rows_by_table(),
                  'ddl': tables['orders'].questdb_ddl().splitlines()[-1]}))
""")
    assert got["bad"] == 0
    assert got["rows"]["orders"] == len(node.oms.orders) and got["rows"]["fills"] == 4
    assert got["rows"]["positions"] == len(node.portfolio.positions)
    assert got["rows"]["pnl"] >= 2  # per market, per event and the total
    assert "DEDUP UPSERT KEYS(ts, ticker, client_order_id, status)" in got["ddl"]


def test_register_is_idempotent_and_refuses_a_clash():
    got = _py("""
from kalshi_platform.storage.schema import register_table
from kalshi_platform.trading.tables import OrderRecord
same = register_storage_tables()['orders'] is tables['orders']
errs = []
for args in (("orders", "ts:timestamp", ("ts",), tuple, lambda e: [], "us!:ts"),
             ("orders2", "ts:timestamp", ("ts",), OrderRecord, lambda e: [], "us!:ts")):
    try:
        register_table(*args)
    except ValueError as e:
        errs.append(str(e))
print(json.dumps({'same': same, 'errs': errs}))
""")
    assert got["same"] is True
    assert len(got["errs"]) == 2 and "already registered" in got["errs"][0]
    assert "already has table" in got["errs"][1]


def test_tables_registered_after_the_questdb_modules_were_imported():
    """The QuestDB writer's per-table lookups (rows per event, symbol and timestamp columns,
    ILP row functions) are built at import; tables registered later reach them through
    ``schema.TABLE_LISTENERS``. Without that the writer would skip the trading rows (its
    rows-per-event map would not know their event types)."""
    code = """
import json, sys
sys.path[:0] = ['tests', '.']
from kalshi_platform.storage import ilp_batch, ilp_queue, ilp_rows, questdb_rdb  # first
from conftest import COCKPIT
from examples.taker import Taker
from kalshi_platform.trading.run import run_backtest
from kalshi_platform.trading.tables import records, register_storage_tables
tables = register_storage_tables()
_, node = run_backtest(Taker({}), COCKPIT)
recs = records(node, node.venue.now_ns())
batch, bad = ilp_batch.IlpBatch.from_events(recs)

class Buf:
    def __init__(self): self.rows = []
    def row(self, table, **kw): self.rows.append(table)

buf = Buf()
for table, values in batch.to_rows():
    ilp_rows.add_ilp_row(buf, table, values)
print(json.dumps({'bad': len(bad), 'rows': batch.rows_by_table(), 'lines': len(buf.rows),
                  'counted': sum(ilp_queue.rows_of(r) for r in recs)}))
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["bad"] == 0 and got["rows"]["orders"] >= 4 and got["rows"]["pnl"] >= 2
    assert got["lines"] == sum(got["rows"].values()) == got["counted"]
