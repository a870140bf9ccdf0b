"""The Parquet store's write-ahead (storage/parquet_ahead.py): a batch that grows past
``ROW_GROUP_ROWS`` is written as row groups before it is complete, and its files are renamed
into place when it is. Files hold the rows they held before, with the same values (against
the row path of tests/unit/test_parquet_columnar.py); a failure at any step loses nothing and
leaves no tmp file behind."""

from __future__ import annotations

import errno

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_parquet_columnar import DAY_NS, NS, assert_same, old_file_rows, row_path, sorted_table

import kalshi_platform.storage.parquet_store as ps
from kalshi_platform.storage.parquet_ahead import BatchFiles
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.storage.schema import TABLES
from kalshi_platform.ticker_plant.events import DeltaEvent

NAME = "orderbook_deltas"


def deltas(n: int, day_every: int = 0) -> list[DeltaEvent]:
    """``n`` deltas; with ``day_every``, each run of that many is a UTC day later."""
    return [DeltaEvent("A", NS + (i // day_every if day_every else 0) * DAY_NS + i, 1, i,
                       "yes", 10_000 + i, i + 1, NS + i) for i in range(n)]


def files(root) -> list:
    return sorted(root.glob(f"{NAME}/date=*/*.parquet"))


def tmp_files(root) -> list:
    return list(root.glob(f"{NAME}/date=*/.*.tmp"))


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(ps, "CHUNK_ROWS", 3)
    monkeypatch.setattr(ps, "ROW_GROUP_ROWS", 4)


def test_a_batch_is_written_ahead_in_row_groups_with_the_same_rows(tmp_path, small):
    events = deltas(23)
    store = ParquetStore(tmp_path, "w", batch_rows=10)
    for e in events:
        store.publish(e)
        assert not store._tb[NAME].ahead or tmp_files(tmp_path)  # ahead: a hidden tmp file
    store.close()
    got = [pq.read_metadata(f) for f in files(tmp_path)]
    assert [m.num_rows for m in got] == old_file_rows(events, TABLES[NAME], 10) == [10, 10, 3]
    assert [m.num_row_groups for m in got] == [2, 2, 1]  # 6 + 4 rows; 6 + 4; 3 (never ahead)
    assert not tmp_files(tmp_path)
    assert_same(pa.concat_tables(pq.read_table(f) for f in files(tmp_path)),
                row_path(NAME, events))
    assert store.rows_written[NAME] == 23 and store.files_written == 3


def test_days_written_ahead_are_renamed_in_day_order(tmp_path, small):
    events = deltas(12, day_every=5)  # days 0, 1, 2 interleaved across row groups
    events = events[5:10] + events[:5] + events[10:]  # day 1 arrives first
    store = ParquetStore(tmp_path, "w", fsync=False)
    for e in events:
        store.publish(e)
    store.close()
    names = [(f.parent.name, f.name) for f in files(tmp_path)]
    assert names == [("date=2026-08-07", "w-000000.parquet"),
                     ("date=2026-08-08", "w-000001.parquet"),
                     ("date=2026-08-09", "w-000002.parquet")]
    assert_same(sorted_table(read_table(tmp_path, NAME)), sorted_table(row_path(NAME, events)))


def test_a_failed_row_group_write_keeps_the_batch_and_writes_it_at_the_end(tmp_path, small,
                                                                           monkeypatch):
    real = BatchFiles.write
    calls = []

    def fail_second(self, groups):
        calls.append(sum(g.num_rows for _, g in groups))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, groups)

    monkeypatch.setattr(BatchFiles, "write", fail_second)
    events = deltas(14)
    store = ParquetStore(tmp_path, "w", fsync=False)
    for e in events:
        store.publish(e)
    assert len(calls) == 2 and not tmp_files(tmp_path)  # ahead off for this batch
    assert store.buffered_rows(NAME) == 14
    store.close()
    (f,) = files(tmp_path)
    assert pq.read_metadata(f).num_row_groups == 1  # written whole at the end
    assert_same(read_table(tmp_path, NAME), row_path(NAME, events))


def test_a_failed_rename_keeps_the_days_not_in_place(tmp_path, small, monkeypatch):
    """Finishing day 2 fails: day 1's file stays, day 2's rows stay buffered (the error of
    writing them the whole-file way is raised, as before), the next flush writes them."""
    real = BatchFiles.finish
    real_write = ParquetStore._write_file
    fail = {"finish": 1, "write": 1}

    def finish(self, date, final_name):
        if date == "2026-08-08" and fail["finish"]:
            fail["finish"] -= 1
            raise OSError(errno.EIO, "I/O error")
        return real(self, date, final_name)

    def write_file(self, t, date, rows):
        if fail["write"]:
            fail["write"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, t, date, rows)

    monkeypatch.setattr(BatchFiles, "finish", finish)
    monkeypatch.setattr(ParquetStore, "_write_file", write_file)
    events = deltas(12, day_every=6)
    store = ParquetStore(tmp_path, "w", fsync=False)
    for e in events:
        store.publish(e)
    with pytest.raises(OSError, match="No space"):
        store.flush()
    assert [f.parent.name for f in files(tmp_path)] == ["date=2026-08-07"]
    assert store.buffered_rows(NAME) == 6 and not tmp_files(tmp_path)
    store.close()
    assert [f.parent.name for f in files(tmp_path)] == ["date=2026-08-07", "date=2026-08-08"]
    assert_same(sorted_table(read_table(tmp_path, NAME)), sorted_table(row_path(NAME, events)))
    assert store.rows_written[NAME] == 12


def test_a_crash_mid_batch_leaves_only_hidden_files_that_a_rerun_replaces(tmp_path, small):
    events = deltas(9)
    store = ParquetStore(tmp_path, "w", fsync=False)
    for e in events:
        store.publish(e)
    assert tmp_files(tmp_path) and not files(tmp_path)  # never closed: a crash
    assert read_table(tmp_path, NAME).num_rows == 0  # readers ignore the tmp file
    again = ParquetStore(tmp_path, "w", replace_existing=True, fsync=False)
    assert not tmp_files(tmp_path)
    for e in events:
        again.publish(e)
    again.close()
    assert_same(read_table(tmp_path, NAME), row_path(NAME, events))
