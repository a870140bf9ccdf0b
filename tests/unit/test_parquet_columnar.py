"""The Parquet store's columnar path (issue 11 §1) writes exactly what the row path wrote.

The reference is the old conversion, rebuilt here from ``Table.rows`` the way the store used
to build its files (``zip(*rows)`` + ``pa.array`` per column + ``pa.Table.from_arrays``).
Tables are compared value by value and type by type (``Table.equals``), and float columns
bit by bit (their int64 view), so a different rounding or a ``-0.0`` would fail. The fast
path is checked to be the one taken (the row fallback is made to raise) on the bundled
recordings; edge values (nulls, times before 1970, sub-µs ns, day boundaries, values beyond
2^53, int64 overflows) are checked against the reference directly.
"""

from __future__ import annotations

import errno
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import BUNDLED

import kalshi_platform.storage.parquet_store as ps
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.storage.schema import TABLE_FOR_EVENT, TABLES, Table, floor_divide
from kalshi_platform.ticker_plant.events import (
    BBO,
    DeltaEvent,
    FeedEvent,
    FillEvent,
    LifecycleEvent,
    SnapshotEvent,
    TickerEvent,
    TradeEvent,
)
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

NS = 1_786_085_189_148_000_000  # 2026-08-07 (ns)
DAY_NS = 86_400 * 10**9
BIG = 2**53 + 1  # the first integer a float64 cannot hold


def row_path(name: str, events: list) -> pa.Table:
    """The store's old conversion of ``events`` (its ``_write_file`` body, verbatim)."""
    t = TABLES[name]
    rows = [r for e in events for r in t.rows(e)]
    schema = t.arrow_schema()
    cols = list(zip(*rows))
    arrays = [pa.array(col, type=f.type) for col, f in zip(cols, schema)]
    return pa.Table.from_arrays(arrays, schema=schema)


def assert_same(got: pa.Table, want: pa.Table) -> None:
    """Same schema, same values in the same order, float64 columns bit for bit."""
    assert got.schema == want.schema
    assert got.num_rows == want.num_rows
    assert got.equals(want)
    for name in want.column_names:
        a, b = got.column(name).combine_chunks(), want.column(name).combine_chunks()
        if a.type == pa.float64():
            assert a.view(pa.int64()).equals(b.view(pa.int64())), name


def sorted_table(t: pa.Table) -> pa.Table:
    return t.sort_by([(c, "ascending") for c in t.column_names])


def edge_events() -> dict[str, list]:
    """Events of every table with the values the conversions must get right."""
    return {
        "trades": [TradeEvent("T", NS + 999, "id-1", 1, 999_999, 1, None, None),
                   TradeEvent("T", -1_500, "id-2", 430_000, 570_000, BIG, "yes", -1),
                   TradeEvent("T", NS, "id-3", 123_457, 876_543, 10**12, "no", NS + 1)],
        "orderbook_deltas": [DeltaEvent("A", NS + 1, None, None, "yes", 10_000, -1, None),
                             DeltaEvent("A", NS + DAY_NS, 1, 2**62, "no", 990_000, 0, NS),
                             DeltaEvent("B", -DAY_NS - 1, 2, 3, "yes", 1, -(10**12), -999)],
        "orderbook_snapshots": [
            SnapshotEvent("A", NS, 1, 1, [], [], None),
            SnapshotEvent("A", NS + 7, 1, 2, [(10_000, 100), (20_000, 1)], [], NS),
            SnapshotEvent("B", NS - 1, None, None, [], [(990_000, BIG)], -5),
            SnapshotEvent("B", NS, 3, 4, [(1, 2)], [(3, 4), (5, 6)], None)],
        "bbo": [BBO("A", NS, 430_000, 229_086, 440_000, 25_255_452, 24, None),
                BBO("A", NS + 1, None, None, 440_000, 1, None, NS, "live"),
                BBO("A", NS + 2, None, None, None, None, 25, NS, "stale"),
                BBO("B", NS + 3, 2**62, 1, 2**62, 1, 1, None),  # mid overflows int64
                BBO("B", NS + 4, BIG, 1, BIG + 2, 1, 2, None, "syncing")],
        "tickers": [TickerEvent("A", NS, None, None, None, None, None, None, None, None),
                    TickerEvent("A", NS + 5, 560_000, 550_000, 570_000, 1, 2, 3 * 10**10,
                                BIG, NS)],
        "market_lifecycle": [LifecycleEvent("A", NS, "settled", "yes", 1_000_000, "{}", NS),
                             LifecycleEvent("E", NS, "event_lifecycle", None, None, '{"a":1}',
                                            None)],
        "fills": [FillEvent("A", NS, "t1", "o1", "yes", "buy", True, 430_000, 100, 7_000,
                            -300, NS),
                  FillEvent("A", NS + 1, "t2", "o2", None, None, None, 1, BIG, None, None,
                            None)],
        "feed_events": [FeedEvent(NS, "gap", 1, 11, 48, "seq gap"),
                        FeedEvent(NS + 1, "connect", None, None, None, None)],
    }


def test_every_table_is_declared_columnar():
    for t in TABLES.values():
        empty = t.read_events([])
        assert empty.data.schema == t.arrow_schema() and empty.data.num_rows == 0
        assert empty.ts_us is None
        assert TABLE_FOR_EVENT[t.event] is t


def test_the_c_read_gives_the_ts_range_and_refuses_what_it_does_not_take():
    """``read_events`` (the C pass) reports the µs range of ``ts``; a float, a bool or a
    str subclass where it wants an int or a str is refused (the row path then decides:
    ``to_arrow`` gives ``rows()``' values, e.g. the float divided as ``rows`` divides it)."""
    t = TABLES["orderbook_deltas"]
    evs = [DeltaEvent("A", NS + 1_999, 1, 1, "yes", 10_000, 1, None),
           DeltaEvent("A", -1_500, 1, 2, "no", 10_000, 1, None)]
    assert t.read_events(evs).ts_us == (-2, NS // 1000 + 1)

    class Side(str):
        pass

    odd = [evs[0]._replace(price=10_000.5), evs[0]._replace(delta=True),
           evs[0]._replace(side=Side("yes")), evs[0]._replace(ticker=b"A"),
           evs[0]._replace(recv_ns=2**63)]
    for e in odd:
        with pytest.raises((TypeError, ValueError, OverflowError)):
            t.read_events([e])
    for e in odd[:3]:
        assert_same(t.to_arrow([e]), row_path("orderbook_deltas", [e]))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_edge_values_equal_the_row_path(name):
    events = edge_events()[name]
    assert_same(TABLES[name].to_arrow(events), row_path(name, events))
    for e in events:  # one by one too (a batch of one event)
        assert_same(TABLES[name].to_arrow([e]), row_path(name, [e]))


def test_random_events_equal_the_row_path():
    rnd = random.Random(11)

    def maybe(v):
        return None if rnd.random() < 0.2 else v

    deltas = [DeltaEvent(f"K{rnd.randrange(50)}", rnd.randrange(-2**62, 2**62),
                         maybe(rnd.randrange(1, 2**63)), maybe(rnd.randrange(1, 2**63)),
                         rnd.choice(("yes", "no")), rnd.randrange(1, 10**6),
                         rnd.randrange(-10**12, 10**12), maybe(rnd.randrange(-2**62, 2**62)))
              for _ in range(5_000)]
    bbos = [BBO(f"K{rnd.randrange(50)}", rnd.randrange(0, 2**62), maybe(rnd.randrange(1, 10**6)),
                maybe(rnd.randrange(0, 10**12)), maybe(rnd.randrange(1, 10**6)),
                maybe(rnd.randrange(0, 10**12)), maybe(rnd.randrange(1, 2**40)),
                maybe(rnd.randrange(0, 2**62)), rnd.choice(("live", "stale", "syncing")))
            for _ in range(5_000)]
    assert_same(TABLES["orderbook_deltas"].to_arrow(deltas), row_path("orderbook_deltas", deltas))
    assert_same(TABLES["bbo"].to_arrow(bbos), row_path("bbo", bbos))


@pytest.mark.parametrize("k", [1, 1000, 86_400_000_000])
def test_floor_divide_is_python_floor_division(k):
    vals = [0, 1, -1, k - 1, k, k + 1, -k, -k - 1, -k + 1, 2**62, -(2**62), 2**63 - 1,
            -(2**63), None]
    got = floor_divide(pa.array(vals, pa.int64()), k).to_pylist()
    assert got == [None if v is None else v // k for v in vals]


@pytest.mark.parametrize("rec", BUNDLED, ids=lambda p: p.name)
def test_bundled_replay_writes_the_row_path_tables(tmp_path, monkeypatch, rec):
    """Every table of a replay of each bundled recording, read back from the store, equals
    the old row conversion of the same events, value by value, type by type, bit by bit.
    Small chunks and batches so every table crosses chunk and file boundaries."""

    def no_fallback(self, rows):
        raise AssertionError(f"{self.name}: the row fallback was taken on real events")

    monkeypatch.setattr(Table, "rows_to_arrow", no_fallback)
    monkeypatch.setattr(ps, "CHUNK_ROWS", 7)
    mem = InMemoryPublisher()
    store = ParquetStore(tmp_path, "w", batch_rows=50, fsync=False)
    plant = TickerPlant([store, mem])
    feed(rec, plant)
    plant.close()
    assert plant.sink_failures == {}
    names = [n for n in TABLES if mem.events.get(n)]
    assert names
    for name in TABLES:
        want = row_path(name, mem.events.get(name, [])) if name in names else None
        got = read_table(tmp_path, name)
        if want is None:
            assert got.num_rows == 0
            continue
        assert store.rows_written[name] == want.num_rows == got.num_rows
        assert_same(sorted_table(got), sorted_table(want))


def old_file_rows(events: list, t, batch_rows: int) -> list[int]:
    """Rows per file the row-by-row buffer made (one day): a write as soon as ``batch_rows``
    rows were buffered, then the rest at close."""
    out, n = [], 0
    for e in events:
        n += len(t.rows(e))
        if n >= batch_rows:
            out.append(n)
            n = 0
    return out + ([n] if n else [])


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_files_hold_the_rows_they_held_before(tmp_path, monkeypatch, chunk):
    """Chunking never moves a file boundary: batch_rows counts rows, snapshots included."""
    monkeypatch.setattr(ps, "CHUNK_ROWS", chunk)
    deltas = [DeltaEvent("A", NS + i, 1, i, "yes", 10_000, 100, None) for i in range(23)]
    snaps = [SnapshotEvent("A", NS + i, 1, i, [(10_000, 1)] * (i % 4), [(20_000, 2)] * (i % 3),
                           None) for i in range(17)]
    store = ParquetStore(tmp_path, "w", batch_rows=5, fsync=False)
    for d, s in zip(deltas, snaps + [None] * 6):
        store.publish(d)
        if s is not None:
            store.publish(s)
    store.close()
    for name, events in (("orderbook_deltas", deltas), ("orderbook_snapshots", snaps)):
        files = sorted(tmp_path.glob(f"{name}/date=*/*.parquet"))
        got = [pq.read_metadata(f).num_rows for f in files]
        assert got == old_file_rows(events, TABLES[name], 5)
        assert_same(pa.concat_tables(pq.read_table(f) for f in files), row_path(name, events))


def test_days_split_and_a_failed_day_keeps_its_rows(tmp_path, monkeypatch):
    """Rows of two UTC days go to two files; when the second write fails the first day's
    file stays, the second day's rows stay buffered and the next flush writes them."""
    monkeypatch.setattr(ps, "CHUNK_ROWS", 2)
    events = [DeltaEvent("A", NS + (i % 2) * DAY_NS + i, 1, i, "yes", 10_000 + i, i, None)
              for i in range(9)]
    real = ParquetStore._write_file
    calls = []

    def fail_second(self, t, date, rows):
        calls.append((date, rows.num_rows))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, t, date, rows)

    monkeypatch.setattr(ParquetStore, "_write_file", fail_second)
    store = ParquetStore(tmp_path, "w", fsync=False)
    for e in events:
        store.publish(e)
    with pytest.raises(OSError):
        store.flush()
    assert calls == [("2026-08-07", 5), ("2026-08-08", 4)]
    assert store.buffered_rows("orderbook_deltas") == 4
    store.publish(events[0]._replace(seq=100))  # a new row after the kept ones
    store.close()
    assert calls[2:] == [("2026-08-07", 1), ("2026-08-08", 4)]
    want = row_path("orderbook_deltas", events + [events[0]._replace(seq=100)])
    assert_same(sorted_table(read_table(tmp_path, "orderbook_deltas")), sorted_table(want))
    assert store.rows_written["orderbook_deltas"] == 10 and store.files_written == 3


def test_fallback_chunks_keep_their_place(tmp_path, monkeypatch):
    """A chunk the columnar read refuses (a ts beyond int64 ns whose µs fit; a price beyond
    int64 units, which the row path still divides into a float) goes through the row path
    and is written in its place among the columnar chunks."""
    monkeypatch.setattr(ps, "CHUNK_ROWS", 2)
    events = [DeltaEvent("A", NS + i, 1, i, "yes", 10_000, 1, None) for i in range(6)]
    events[2] = events[2]._replace(ts_ns=2**63 + 5_000)
    events[5] = events[5]._replace(price=2**64)
    store = ParquetStore(tmp_path, "w", fsync=False)
    for e in events:
        store.publish(e)
    store.close()
    files = sorted(tmp_path.glob("orderbook_deltas/date=*/*.parquet"))
    got = pa.concat_tables(pq.read_table(f) for f in files)
    want = row_path("orderbook_deltas", events)
    assert_same(sorted_table(got), sorted_table(want))


def test_an_event_the_row_path_rejects_is_dropped_with_its_error(tmp_path):
    """A ``None`` price makes ``rows()`` raise TypeError. The row-by-row buffer raised it at
    that publish and never took the event; the store raises it when the chunk holding the
    event is read (here at once: batch_rows=2), drops that event only, and writes the rest."""
    store = ParquetStore(tmp_path, "w", batch_rows=2, fsync=False)
    store.publish(FeedEvent(NS, "connect", None, None, None, None))
    good = DeltaEvent("A", NS, 1, 1, "yes", 10_000, 1, None)
    store.publish(good)
    with pytest.raises(TypeError):
        store.publish(DeltaEvent("A", NS, 1, 2, "yes", None, 1, None))
    assert store.buffered_rows("orderbook_deltas") == 1
    store.close()
    assert read_table(tmp_path, "feed_events").num_rows == 1
    assert_same(read_table(tmp_path, "orderbook_deltas"), row_path("orderbook_deltas", [good]))


def test_a_rejected_event_found_at_close_still_lets_the_rest_be_written(tmp_path):
    store = ParquetStore(tmp_path, "w", fsync=False)
    good = [DeltaEvent("A", NS + i, 1, i, "yes", 10_000, 1, None) for i in range(3)]
    for e in (good[0], good[1]._replace(delta=None), good[2]):
        store.publish(e)
    with pytest.raises(TypeError):
        store.close()
    want = row_path("orderbook_deltas", [good[0], good[2]])
    assert_same(read_table(tmp_path, "orderbook_deltas"), want)
    assert store.buffered_rows("orderbook_deltas") == 0


def test_a_null_ts_is_refused_even_where_the_spec_allows_it():
    """A table whose spec does not mark ``ts`` non-null (``us:`` rather than ``us!:``) still
    never gets a null ``ts`` from the C pass: the batch is refused (the row path decides)."""
    from typing import NamedTuple

    from kalshi_platform.storage.schema import _Columnar

    class Rec(NamedTuple):
        ts_ns: int | None
        kind: str

    c = _Columnar(Rec, "us:ts_ns, str:kind")
    schema = pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("kind", pa.string())])
    assert c.read([Rec(1_000, "a")], schema).ts_us == (1, 1)
    with pytest.raises(ValueError):
        c.read([Rec(1_000, "a"), Rec(None, "b")], schema)
