"""Embedded Parquet store: the no-services default sink (and the historical-tier layout).

Layout (hive partitioning, one layout for the embedded store and the EOD output)::

    <root>/<table>/date=YYYY-MM-DD/<writer_id>-<n:06d>.parquet
    <root>/_quarantine/<writer_id>.jsonl        frames that failed to decode, verbatim

Read it back with ``pyarrow.dataset.dataset(root / table, partitioning="hive")`` (or
:func:`read_table`). Rows are buffered per table and written in batches of ``batch_rows``
(and on ``flush``/``close``), split by the UTC date of ``ts``. Every file is written to a
hidden ``.<name>.tmp`` in its final directory, fsynced, then atomically renamed (readers never
see a partial file; dataset discovery ignores dot-files).

Files are named by ``writer_id`` and a counter, so a writer with a deterministic id (a replay
names itself after the recording's fingerprint) rewrites the same file names on a re-run;
``replace_existing=True`` first removes that writer's earlier files, making a replay of the
same recording into the same store idempotent.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kalshi_platform.storage.schema import TABLE_FOR_EVENT, TABLES, Table
from kalshi_platform.ticker_plant.events import QuarantineRecord

log = logging.getLogger(__name__)

_DAY_US = 86_400_000_000
QUARANTINE_DIR = "_quarantine"


def _day_str(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=timezone.utc).strftime("%Y-%m-%d")


class StoreError(OSError):
    """The store root cannot be created or written."""


class ParquetStore:
    """A :class:`~kalshi_platform.ticker_plant.publishers.Publisher` writing Parquet files.

    Args:
        root: store directory (created).
        writer_id: file-name prefix; unique per writer (``[A-Za-z0-9_.-]``).
        batch_rows: rows buffered per table before a write (bounded memory).
        compression: Parquet codec (``zstd`` default; ``snappy``, ``none``).
        replace_existing: delete this ``writer_id``'s files from an earlier run first.
        fsync: fsync each file before the rename (durability over speed).

    Counters: ``rows_written`` (per table), ``files_written``, ``bytes_written``,
    ``quarantined``. Raises :class:`StoreError` if ``root`` is not writable.
    """

    #: the name a failure is reported under (``--sink parquet``)
    sink_name = "parquet"

    def __init__(self, root: str | Path, writer_id: str, *, batch_rows: int = 250_000,
                 compression: str = "zstd", replace_existing: bool = False,
                 fsync: bool = True) -> None:
        self.root = Path(root)
        self.writer_id = writer_id
        self.batch_rows = batch_rows
        self.compression = compression
        self.fsync = fsync
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create store {self.root}: {e.strerror or e}") from None
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"store {self.root} is not writable")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", writer_id):
            raise StoreError(f"writer id {writer_id!r} must match [A-Za-z0-9_.-]+")
        self._name_re = re.compile(re.escape(writer_id) + r"-(\d{6,})\.parquet")
        if replace_existing:
            self.remove_writer_files()
        self._buf: dict[str, list[tuple]] = defaultdict(list)
        # continue numbering after this writer's existing files: never overwrite them
        self._file_no = 1 + max((int(m.group(1)) for _, m in self._own_files()), default=-1)
        self._qfile = None
        self.rows_written: dict[str, int] = defaultdict(int)
        self.files_written = 0
        self.bytes_written = 0
        self.quarantined = 0
        self.write_seconds = 0.0

    # -- Publisher -------------------------------------------------------------------------

    def publish(self, event: Any) -> None:
        t = TABLE_FOR_EVENT.get(type(event))
        if t is None:
            if isinstance(event, QuarantineRecord):
                self._write_quarantine(event)
            return
        buf = self._buf[t.name]
        buf.extend(t.rows(event))
        if len(buf) >= self.batch_rows:
            self._flush_table(t)

    def flush(self) -> None:
        """Write every table's buffer and sync the quarantine file. Every table is tried even
        when one fails (a full disk on one table leaves no other table unwritten); the first
        error is raised after all were tried, and the failed table keeps its rows."""
        first: BaseException | None = None
        for name in sorted(self._buf):
            if self._buf[name]:
                try:
                    self._flush_table(TABLES[name])
                except Exception as e:
                    log.error("parquet store: writing %s failed: %s: %s", name,
                              type(e).__name__, e)
                    first = first or e
        if self._qfile is not None:
            try:
                self._qfile.flush()
                if self.fsync:
                    os.fsync(self._qfile.fileno())
            except OSError as e:
                first = first or e
        if first is not None:
            raise first

    def close(self) -> None:
        """Flush (see :meth:`flush`; its error is raised) and close the quarantine file."""
        try:
            self.flush()
        finally:
            if self._qfile is not None:
                try:
                    self._qfile.close()
                except OSError:
                    pass
                self._qfile = None

    # -- internals -------------------------------------------------------------------------

    def _flush_table(self, t: Table) -> None:
        """Write the table's buffer, one file per UTC day. Rows leave the buffer only once
        their file is renamed into place: a failed write (disk full) loses nothing and the
        error propagates to the caller."""
        rows = self._buf[t.name]
        ts_i = t.column_names.index("ts")
        first_day = rows[0][ts_i] // _DAY_US
        if rows[-1][ts_i] // _DAY_US == first_day and all(
            r[ts_i] // _DAY_US == first_day for r in rows
        ):
            groups = {first_day: rows}
        else:
            groups = defaultdict(list)
            for r in rows:
                groups[r[ts_i] // _DAY_US].append(r)
        pending = sorted(groups)
        try:
            while pending:
                self._write_file(t, _day_str(pending[0]), groups[pending[0]])
                pending.pop(0)
        finally:
            self._buf[t.name] = [r for day in pending for r in groups[day]]

    def _write_file(self, t: Table, date: str, rows: list[tuple]) -> None:
        t0 = time.perf_counter()
        schema = t.arrow_schema()
        cols = list(zip(*rows))
        arrays = [pa.array(col, type=f.type) for col, f in zip(cols, schema)]
        table = pa.Table.from_arrays(arrays, schema=schema)
        d = self.root / t.name / f"date={date}"
        d.mkdir(parents=True, exist_ok=True)
        name = f"{self.writer_id}-{self._file_no:06d}.parquet"
        self._file_no += 1
        final = d / name
        tmp = d / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                pq.write_table(table, f, compression=self.compression)
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            self._file_no -= 1
            raise
        if self.fsync:  # make the rename itself durable
            dfd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        self.rows_written[t.name] += len(rows)
        self.files_written += 1
        self.bytes_written += final.stat().st_size
        self.write_seconds += time.perf_counter() - t0

    def _write_quarantine(self, rec: QuarantineRecord) -> None:
        if self._qfile is None:
            qd = self.root / QUARANTINE_DIR
            qd.mkdir(parents=True, exist_ok=True)
            self._qfile = open(qd / f"{self.writer_id}.jsonl", "ab")
        self._qfile.write(orjson.dumps(rec.as_json()) + b"\n")
        self.quarantined += 1

    def _own_files(self):
        """``(path, match)`` for every Parquet file this ``writer_id`` wrote (exact names)."""
        for t in TABLES:
            for f in (self.root / t).glob("date=*/*.parquet"):
                m = self._name_re.fullmatch(f.name)
                if m:
                    yield f, m

    def remove_writer_files(self) -> int:
        """Delete every file an earlier run of this ``writer_id`` left (and its leftover
        ``.tmp`` files and quarantine file); returns how many Parquet files went."""
        n = 0
        for f, _ in list(self._own_files()):
            f.unlink()
            n += 1
        for t in TABLES:
            for tmp in (self.root / t).glob(f"date=*/.{self.writer_id}-*.parquet.tmp"):
                if self._name_re.fullmatch(tmp.name[1:-4]):
                    tmp.unlink()
        q = self.root / QUARANTINE_DIR / f"{self.writer_id}.jsonl"
        if q.exists():
            q.unlink()
        return n


def read_table(root: str | Path, table: str, columns: list[str] | None = None, *,
               dedup: bool = False) -> pa.Table:
    """Read one table of a store (all date partitions) into an Arrow table.

    The hive ``date`` partition is dropped from the result (it duplicates ``ts``). Returns an
    empty table with the declared schema when nothing was written. ``dedup=True`` keeps one
    row per dedup-key tuple of the table (NULL keys equal; the copy kept is the one
    ``kalshi-platform query`` and the EOD job keep: latest ``recv_ts``, then the greatest file
    name, then the last row of that file; ``historical.query.latest_row_sql``), read through
    DuckDB and sorted by the dedup keys; raises
    :class:`~kalshi_platform.historical.query.QueryError` on an unreadable file. The default
    (``dedup=False``) returns every stored row.
    """
    t = TABLES[table]
    path = Path(root) / table
    names = columns or t.column_names
    if not path.is_dir() or not any(path.glob("date=*/*.parquet")):
        empty = t.arrow_schema().empty_table()
        return empty.select(names) if dedup else empty
    if dedup:
        from kalshi_platform.historical.query import read_deduped

        return read_deduped(path, table, names)
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    return dataset.to_table(columns=names)
