"""De-duplication on each table's dedup keys (issue 10 §2): a second run over the same feed
into the same embedded store gives the same ``query`` results, ``read_table(dedup=True)`` rows
and EOD output as one run, while ``<table>_raw`` shows the doubles.

The doubled store is the bundled real recordings replayed twice into one store under two writer
ids (``replay-<fingerprint>`` by ``run_replay``'s own sink, ``live-b`` by a second
:class:`ParquetStore`), which is what two live runs capturing the same frames, or a crashed
run plus the replay of its recording, leave. Which copy is kept when copies differ is checked
on hand-made rows (the rule in :mod:`kalshi_platform.historical.query`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import BUNDLED, COCKPIT
from hist_support import (S3Server, build_store, copy_store, rows_of, set_aws_env, snapshot_store,
                          sorted_rows)
from kalshi_platform.historical.query import OHLC_SQL, open_local, open_s3
from kalshi_platform.storage.eod import CONTROL_FILE, DONE, EmbeddedSource, EodJob, JsonlControl
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.storage.schema import TABLES
from kalshi_platform.ticker_plant.events import FeedEvent, TradeEvent
from kalshi_platform.tools.replay import run_replay

DAY = date(2026, 8, 7)
#: the last BBO per ticker and how many top-of-book changes it had (the plant's BBO stream)
BBO_SQL = """SELECT ticker, count(*) AS changes,
       last(yes_bid ORDER BY ts, seq) AS yes_bid, last(yes_ask ORDER BY ts, seq) AS yes_ask,
       last(yes_bid_size ORDER BY ts, seq) AS bid_size, last(state ORDER BY ts, seq) AS state
FROM bbo WHERE date = DATE '2026-08-07' GROUP BY ticker ORDER BY ticker"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """``(one, two)``: every bundled recording replayed once, and twice under two writers."""
    tmp = tmp_path_factory.mktemp("dedup")
    one = build_store(tmp / "one")
    two = build_store(tmp / "two")
    for rec in BUNDLED:
        run_replay(rec, store=two, sinks=[], publishers=[ParquetStore(two, "live-b")])
    assert {p.name.split("-")[0] for p in two.rglob("*.parquet")} == {"replay", "live"}
    return one, two


def view_rows(h, view: str) -> list[dict]:
    return h.query(f'SELECT * FROM "{view}" ORDER BY ALL').read_all().to_pylist()


def count(h, view: str) -> int:
    return h.query(f'SELECT count(*) AS n FROM "{view}"').read_all().to_pylist()[0]["n"]


def test_second_run_gives_the_same_views_and_raw_shows_the_doubles(stores):
    one, two = (open_local(s) for s in stores)
    try:
        assert two.views == one.views == sorted(t for t in TABLES if t != "fills")
        assert two.raw_views == [v + "_raw" for v in two.views]
        for v in one.views:
            n = count(one, v)
            assert n > 0 and count(one, v + "_raw") == n, v  # one run: no duplicates
            assert view_rows(two, v) == view_rows(one, v), v
            assert count(two, v + "_raw") == 2 * n, v
        # the cockpit capture's tables (the brief's recording) are there in full
        assert [count(two, t) for t in ("orderbook_snapshots", "orderbook_deltas", "bbo")] \
            == [1114, 245, 45]
    finally:
        one.close()
        two.close()


def test_ohlc_and_bbo_queries_equal_one_run(stores):
    one, two = (open_local(s) for s in stores)
    try:
        for sql in (OHLC_SQL, BBO_SQL):
            want = one.query(sql).read_all().to_pylist()
            assert want and two.query(sql).read_all().to_pylist() == want
        raw = two.query(OHLC_SQL.replace("FROM trades", "FROM trades_raw")).read_all()
        assert [r["trades"] for r in raw.to_pylist()] == \
            [2 * r["trades"] for r in one.query(OHLC_SQL).read_all().to_pylist()]
    finally:
        one.close()
        two.close()


def test_read_table_dedup_equals_one_run(stores, tmp_path):
    one, two = stores
    for t in TABLES:
        want = sorted_rows(read_table(one, t))
        got = read_table(two, t, dedup=True)
        assert got.schema == TABLES[t].arrow_schema(), t
        assert sorted_rows(got) == want, t
        assert read_table(two, t).num_rows == 2 * len(want), t  # default: every stored row
    sub = read_table(two, "bbo", ["ticker", "yes_bid"], dedup=True)
    assert sub.schema.names == ["ticker", "yes_bid"] and sub.num_rows == 45
    assert read_table(tmp_path, "bbo", ["ticker"], dedup=True).schema.names == ["ticker"]


def test_eod_from_two_writers_migrates_each_row_once(stores, tmp_path):
    one, two = stores
    store = copy_store(two, tmp_path / "store")
    dest = tmp_path / "hdb"
    job = EodJob(EmbeddedSource(store), JsonlControl(dest / CONTROL_FILE), dest)
    want = snapshot_store(one)
    for day in sorted({d for (_, d) in want}):
        rep = job.run(day, list(TABLES))
        assert not rep.failed
        for r in rep.results:
            if (r.table, day) in want:
                assert r.status == DONE
                assert rows_of(dest, r.table, day) == want[(r.table, day)], (r.table, day)
    h = open_local(dest)
    try:  # the tier EOD wrote holds no duplicates: its raw views equal its views
        assert all(count(h, v) == count(h, v + "_raw") for v in h.views)
    finally:
        h.close()


def test_s3_views_deduplicate_too(stores, monkeypatch):
    one, two = stores
    set_aws_env(monkeypatch)
    srv = S3Server()
    try:
        bucket = srv.new_bucket()
        c = srv.client()
        for f in sorted(two.rglob("*.parquet")):
            c.upload_file(str(f), bucket, f"hist/{f.relative_to(two)}")
        h, local = open_s3(f"s3://{bucket}/hist", srv.endpoint), open_local(one)
        try:
            assert h.views == local.views
            for v in h.views:
                assert view_rows(h, v) == view_rows(local, v), v
                assert count(h, v + "_raw") == 2 * count(local, v), v
            assert h.query(OHLC_SQL).read_all() == local.query(OHLC_SQL).read_all()
        finally:
            h.close()
            local.close()
    finally:
        srv.stop()


# -- which copy is kept ---------------------------------------------------------------------

T0 = 1_786_060_800 * 10**9  # 2026-08-07T00:00:00Z, ns


def trade(n: int, price: int, recv_s: int | None) -> TradeEvent:
    """Trade ``n`` (key: ts, ticker, trade_id) at ``price`` µ$, received ``recv_s`` s after T0."""
    return TradeEvent("KXTEST-26AUG07-T1", T0 + n * 10**9, f"00000000-0000-4000-8000-{n:012d}",
                      price, 1_000_000 - price, 100, "yes",
                      None if recv_s is None else T0 + recv_s * 10**9)


def write(root: Path, writer: str, *batches: list) -> None:
    """Events through a :class:`ParquetStore` named ``writer``, one file per batch."""
    st = ParquetStore(root, writer, fsync=False)
    for batch in batches:
        for e in batch:
            st.publish(e)
        st.flush()
    st.close()


@pytest.fixture
def contested(tmp_path):
    """Copies of trades 1-5 that differ in price; ``expected``: trade -> yes_price kept."""
    root = tmp_path / "store"
    write(root, "aaa", [trade(1, 100_000, 20), trade(2, 300_000, None), trade(3, 500_000, 10),
                        trade(4, 700_000, 5), trade(4, 800_000, 5), trade(5, 110_000, 7)],
          [trade(5, 120_000, 7)])
    write(root, "zzz", [trade(1, 200_000, 10), trade(2, 400_000, None), trade(3, 600_000, None)])
    # 1: latest recv_ts wins over the file name; 2: equal (null) recv_ts, greatest file name;
    # 3: a null recv_ts is the oldest; 4: one file, the last row; 5: one writer, the later file
    return root, {1: 0.1, 2: 0.4, 3: 0.5, 4: 0.8, 5: 0.12}


def kept(rows) -> dict[int, float]:
    return {int(r["trade_id"][-12:]): r["yes_price"] for r in rows}


def test_the_latest_copy_is_kept_the_same_way_everywhere(contested, tmp_path, monkeypatch):
    root, expected = contested
    h = open_local(root)
    try:
        assert count(h, "trades_raw") == 10
        assert kept(view_rows(h, "trades")) == expected
    finally:
        h.close()
    assert kept(read_table(root, "trades", dedup=True).to_pylist()) == expected
    dest = tmp_path / "hdb"
    job = EodJob(EmbeddedSource(root), JsonlControl(dest / CONTROL_FILE), dest, drop=False)
    assert job.run(DAY, ["trades"]).results[0].rows == 5
    assert kept(pq.read_table(dest / "trades").to_pylist()) == expected
    # S3 views have no row number: ties within a file go to the greatest value (trade 4: 0.8)
    set_aws_env(monkeypatch)
    srv = S3Server()
    try:
        bucket = srv.new_bucket()
        for f in sorted(root.rglob("*.parquet")):
            srv.client().upload_file(str(f), bucket, f"s/{f.relative_to(root)}")
        h = open_s3(f"s3://{bucket}/s", srv.endpoint)
        try:
            assert kept(view_rows(h, "trades")) == expected
        finally:
            h.close()
    finally:
        srv.stop()


def test_null_key_columns_compare_equal(tmp_path):
    """feed_events keys on (ts, kind, sid, expected_seq, got_seq): rows with a null sid (a
    sink failure, a connect) from two writers are one row, as in QuestDB; a null sid is not
    equal to sid 0; the copy kept is the greatest file's (no recv_ts)."""
    root = tmp_path / "store"
    ts = T0 + 5 * 10**9
    write(root, "run-a", [FeedEvent(ts, "sink_failed", None, None, None, "questdb: down (a)"),
                          FeedEvent(ts, "connect", None, None, None, None),
                          FeedEvent(ts, "gap", 0, 11, 48, "seq skipped 37")])
    write(root, "run-b", [FeedEvent(ts, "sink_failed", None, None, None, "questdb: down (b)"),
                          FeedEvent(ts, "connect", None, None, None, None),
                          FeedEvent(ts, "gap", None, 11, 48, "seq skipped 37")])
    want = [("connect", None, None), ("gap", None, "seq skipped 37"),
            ("gap", 0, "seq skipped 37"), ("sink_failed", None, "questdb: down (b)")]
    h = open_local(root)
    try:
        assert count(h, "feed_events_raw") == 6
        got = h.query("SELECT kind, sid, detail FROM feed_events ORDER BY kind, sid NULLS FIRST"
                      ).read_all().to_pylist()
        assert [tuple(r.values()) for r in got] == want
    finally:
        h.close()
    rt = read_table(root, "feed_events", dedup=True).to_pylist()
    assert sorted((r["kind"], r["sid"] is not None, r["sid"], r["detail"]) for r in rt) == \
        [(k, s is not None, s, d) for k, s, d in want]
    dest = tmp_path / "hdb"
    job = EodJob(EmbeddedSource(root), JsonlControl(dest / CONTROL_FILE), dest)
    assert job.run(DAY, ["feed_events"]).results[0].rows == 4
    assert len(pq.read_table(dest / "feed_events").to_pylist()) == 4


def test_a_table_without_declared_keys_is_raw_and_missing_key_columns_are_null(tmp_path):
    root = tmp_path / "store"
    d = root / "extra" / f"date={DAY}"
    d.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 1]}), d / "w-000000.parquet")
    old = TABLES["bbo"].arrow_schema()
    old = pa.schema([f for f in old if f.name != "state"])  # a store from before `state`
    d = root / "bbo" / f"date={DAY}"
    d.mkdir(parents=True)
    row = {"ticker": ["K"], "ts": [T0 // 1000], "yes_bid": [0.5], "yes_bid_size": [1.0],
           "yes_ask": [0.6], "yes_ask_size": [2.0], "mid": [0.55], "spread": [0.1], "seq": [7],
           "recv_ts": [None]}
    for w in ("a", "b"):
        pq.write_table(pa.table(row, schema=old), d / f"{w}-000000.parquet")
    h = open_local(root)
    try:
        assert count(h, "extra") == count(h, "extra_raw") == 2
        assert count(h, "bbo") == 1 and count(h, "bbo_raw") == 2
    finally:
        h.close()
    got = read_table(root, "bbo", dedup=True)
    assert got.num_rows == 1 and got.column("state").to_pylist() == [None]


def test_cockpit_replayed_twice_by_one_writer_id_is_not_doubled(tmp_path):
    """The replay's own writer id replaces its earlier files: raw views hold one copy."""
    root = tmp_path / "store"
    for _ in range(2):
        run_replay(COCKPIT, store=root, sinks=["parquet"])
    h = open_local(root)
    try:
        assert count(h, "orderbook_deltas_raw") == count(h, "orderbook_deltas") == 245
    finally:
        h.close()
