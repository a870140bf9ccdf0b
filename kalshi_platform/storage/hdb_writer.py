"""Chunk → Parquet writer for one table-day partition of the historical tier.

Output layout (hive partitioning; the same layout as the embedded store, so one reader serves
both)::

    <dest>/<table>/date=YYYY-MM-DD/<name>-00000.parquet
    <dest>/<table>/date=YYYY-MM-DD/<name>-00001.parquet      (only with max_rows_per_file)

Data arrives as Arrow record batches (or tables, or a ``{column: values}`` mapping) in the
table's schema (:meth:`kalshi_platform.storage.schema.Table.arrow_schema`: ``ts``/``recv_ts``
are UTC microseconds, prices dollars and sizes contracts as float64) and is written with
:class:`pyarrow.parquet.ParquetWriter` (pyarrow docs "Reading and Writing the Apache Parquet
Format"):

* **row groups sized for scans**: up to :data:`ROW_GROUP_ROWS` (1,048,576) rows, and fewer
  when a row group's Arrow size would exceed :data:`ROW_GROUP_BYTES` (128 MiB) — large enough
  that a scan reads few, long column chunks; small enough that one row group is cheap to
  decode. Incoming chunks (e.g. 100k rows off QuestDB) are buffered until a row group is full,
  so the file does not inherit the chunk size;
* **codec** ``zstd`` (default, pyarrow's default level) or ``snappy``/``gzip``/``lz4``/``none``;
  dictionary encoding and min/max statistics on (pyarrow defaults);
* **size-bounded files**: ``max_rows_per_file`` starts a new file after that many rows;
* **atomic, durable**: every file is written to a hidden ``.<file>.tmp`` beside its final
  name, fsynced, and only :meth:`PartitionWriter.commit` renames them into place (then fsyncs
  the directory). Readers never see a partial file (dataset discovery skips dot-files).
* **deterministic names**: a writer with the same ``name`` rewrites the same file names, and
  commit removes that name's files beyond the new count, so re-running the export of a day
  replaces its files instead of adding to them.

Memory is bounded by one row group of buffered input plus pyarrow's encoder state, whatever
the day's size (measured: see :mod:`kalshi_platform.bench.hdb_writer`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kalshi_platform.fsync import fsync_dir
from kalshi_platform.storage.schema import TABLES

#: Rows per row group (upper bound).
ROW_GROUP_ROWS = 1 << 20
#: Arrow (uncompressed) bytes per row group (upper bound; lowers the rows for wide tables).
ROW_GROUP_BYTES = 128 << 20
#: Codecs accepted (pyarrow names).
CODECS = ("zstd", "snappy", "gzip", "lz4", "none")

_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class WrittenFile:
    """One committed Parquet file: final ``path``, ``rows`` and size in ``bytes``."""

    path: Path
    rows: int
    bytes: int


def day_bounds_us(day: date) -> tuple[int, int]:
    """``[start, end)`` of the UTC ``day`` in microseconds since the epoch."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
    return start * 1_000_000, start * 1_000_000 + _DAY_US


def partition_dir(dest: str | Path, table: str, day: date) -> Path:
    """``<dest>/<table>/date=YYYY-MM-DD``."""
    return Path(dest) / table / f"date={day.isoformat()}"


class PartitionWriter:
    """Write one ``(table, day)`` partition as Parquet, chunk by chunk.

    Args:
        dest: root of the historical layout.
        table: a table of :data:`~kalshi_platform.storage.schema.TABLES`; its Arrow schema is
            the file schema.
        day: the UTC day; every row's ``ts`` must fall inside it (``ValueError`` otherwise).
        name: file-name stem (``[A-Za-z0-9_.-]+``); files are ``<name>-NNNNN.parquet``.
        compression: one of :data:`CODECS`; ``compression_level`` is passed to pyarrow.
        row_group_rows / row_group_bytes: row-group bounds (see module docstring).
        max_rows_per_file: start a new file after this many rows (``None`` = one file).
        fsync: fsync files and the directory (durability over speed).

    Use as a context manager (commits on success, aborts on an exception) or call
    :meth:`write` then :meth:`commit` / :meth:`abort`. Raises ``ValueError`` for data that is
    not in the table's schema or not of ``day``; ``OSError`` from the filesystem.
    """

    def __init__(self, dest: str | Path, table: str, day: date, *, name: str = "part",
                 compression: str = "zstd", compression_level: int | None = None,
                 row_group_rows: int = ROW_GROUP_ROWS, row_group_bytes: int = ROW_GROUP_BYTES,
                 max_rows_per_file: int | None = None, fsync: bool = True) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        if compression not in CODECS:
            raise ValueError(f"compression must be one of {', '.join(CODECS)}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"file name stem {name!r} must match [A-Za-z0-9_.-]+")
        if row_group_rows < 1 or row_group_bytes < 1:
            raise ValueError("row group bounds must be >= 1")
        if max_rows_per_file is not None and max_rows_per_file < 1:
            raise ValueError("max_rows_per_file must be >= 1")
        self.table = table
        self.day = day
        self.schema = TABLES[table].arrow_schema()
        self.dir = partition_dir(dest, table, day)
        self.name = name
        self.compression = compression
        self.compression_level = compression_level
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self.max_rows_per_file = max_rows_per_file
        self.fsync = fsync
        self._lo, self._hi = day_bounds_us(day)
        self._name_re = re.compile(re.escape(name) + r"-(\d{5,})\.parquet")
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._group_rows: int | None = None  # fixed from the first chunk's bytes per row
        self._writer: pq.ParquetWriter | None = None
        self._sink: Any = None
        self._file_rows = 0
        self._tmp_files: list[tuple[Path, Path, int]] = []  # (tmp, final, rows)
        self._closed = False
        #: rows accepted so far
        self.rows = 0
        #: the committed files (set by :meth:`commit`)
        self.files: list[WrittenFile] = []
        self.dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.dir.glob(f".{name}-*.parquet.tmp"):  # a crashed earlier run
            leftover.unlink(missing_ok=True)

    # -- input ------------------------------------------------------------------------------

    def _as_table(self, data: pa.RecordBatch | pa.Table | Mapping[str, Any]) -> pa.Table:
        if isinstance(data, pa.RecordBatch):
            tbl = pa.Table.from_batches([data])
        elif isinstance(data, pa.Table):
            tbl = data
        elif isinstance(data, Mapping):
            unexpected = [k for k in data if k not in self.schema.names]
            if unexpected:
                raise ValueError(f"{self.table}: unexpected columns {unexpected}")
            tbl = pa.table({f.name: (data[f.name] if isinstance(data[f.name], (
                pa.Array, pa.ChunkedArray)) else pa.array(data[f.name], type=f.type))
                for f in self.schema if f.name in data})
        else:
            raise TypeError(f"expected a RecordBatch, Table or column mapping, got "
                            f"{type(data).__name__}")
        if tbl.schema.names != self.schema.names:
            missing = [n for n in self.schema.names if n not in tbl.schema.names]
            extra = [n for n in tbl.schema.names if n not in self.schema.names]
            if missing or extra:
                raise ValueError(f"{self.table}: columns do not match the schema"
                                 f" (missing {missing}, unexpected {extra})")
            tbl = tbl.select(self.schema.names)
        if not tbl.schema.equals(self.schema):
            try:
                tbl = tbl.cast(self.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ValueError(f"{self.table}: data does not cast to the table schema: {e}"
                                 ) from None
        return tbl

    def _check_day(self, tbl: pa.Table) -> None:
        ts = tbl.column("ts")
        if ts.null_count:
            raise ValueError(f"{self.table}: {ts.null_count} rows with a null ts")
        mm = pc.min_max(ts.cast(pa.int64()))
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo < self._lo or hi >= self._hi:
            raise ValueError(f"{self.table}: rows outside {self.day.isoformat()} UTC "
                             f"(ts range {lo}..{hi} µs)")

    def write(self, data: pa.RecordBatch | pa.Table | Mapping[str, Any]) -> None:
        """Append one chunk (any number of rows, ``ts`` within the day)."""
        if self._closed:
            raise ValueError("writer is closed")
        tbl = self._as_table(data)
        if tbl.num_rows == 0:
            return
        self._check_day(tbl)
        if self._group_rows is None:
            per_row = max(1, tbl.nbytes // tbl.num_rows)
            self._group_rows = max(1, min(self.row_group_rows, self.row_group_bytes // per_row))
            if self.max_rows_per_file:
                self._group_rows = min(self._group_rows, self.max_rows_per_file)
        self._pending.append(tbl)
        self._pending_rows += tbl.num_rows
        self.rows += tbl.num_rows
        if self._pending_rows >= self._group_rows:
            self._drain(final=False)

    def write_all(self, chunks: Iterable[pa.RecordBatch | pa.Table]) -> None:
        """:meth:`write` every chunk of an iterable (e.g. a RecordBatchReader)."""
        for c in chunks:
            self.write(c)

    # -- output -----------------------------------------------------------------------------

    def _open_file(self) -> None:
        i = len(self._tmp_files)
        final = self.dir / f"{self.name}-{i:05d}.parquet"
        tmp = self.dir / f".{final.name}.tmp"
        self._sink = open(tmp, "wb")
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression=self.compression,
                                        compression_level=self.compression_level)
        self._tmp_files.append((tmp, final, 0))
        self._file_rows = 0

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.flush()
        if self.fsync:
            os.fsync(self._sink.fileno())
        self._sink.close()
        tmp, final, _ = self._tmp_files[-1]
        self._tmp_files[-1] = (tmp, final, self._file_rows)
        self._writer = self._sink = None

    def _drain(self, *, final: bool) -> None:
        """Write whole row groups out of the buffer (and the remainder when ``final``)."""
        if not self._pending_rows:
            return
        data = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        group = self._group_rows or self.row_group_rows
        off = 0
        n = data.num_rows
        while n - off >= group or (final and off < n):
            if self._writer is None:
                self._open_file()
            take = min(group, n - off)
            if self.max_rows_per_file:
                take = min(take, self.max_rows_per_file - self._file_rows)
            self._writer.write_table(data.slice(off, take), row_group_size=take)
            self._file_rows += take
            off += take
            if self.max_rows_per_file and self._file_rows >= self.max_rows_per_file:
                self._close_file()
        rest = data.slice(off) if off < n else None
        self._pending = [rest] if rest is not None else []
        self._pending_rows = n - off

    def commit(self) -> list[WrittenFile]:
        """Write what is buffered, rename every file into place, remove this name's files
        beyond the new count (left by an earlier, larger export) and fsync the directory.
        Returns the files in order (none for a partition with no rows)."""
        if self._closed:
            raise ValueError("writer is closed")
        try:
            self._drain(final=True)
            self._close_file()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        out = []
        for tmp, final, rows in self._tmp_files:
            os.replace(tmp, final)
            out.append(WrittenFile(final, rows, final.stat().st_size))
        keep = {f.path.name for f in out}
        for f in self.dir.glob(f"{self.name}-*.parquet"):
            if self._name_re.fullmatch(f.name) and f.name not in keep:
                f.unlink()
        if self.fsync:
            fsync_dir(self.dir)
        if not out and not any(self.dir.iterdir()):
            self.dir.rmdir()
        self.files = out
        return out

    def abort(self) -> None:
        """Discard everything written so far (temporary files only; committed files of an
        earlier run stay as they were)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
            self._sink.close()
            self._writer = self._sink = None
        for tmp, _, _ in self._tmp_files:
            tmp.unlink(missing_ok=True)
        self._tmp_files.clear()
        self._pending = []
        self._pending_rows = 0
        self._closed = True
        try:
            self.dir.rmdir()  # only if this writer left it empty
        except OSError:
            pass

    def __enter__(self) -> "PartitionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._closed:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_partition(chunks: Iterable[pa.RecordBatch | pa.Table], dest: str | Path, table: str,
                    day: date, **kwargs: Any) -> list[WrittenFile]:
    """Write ``chunks`` as the ``(table, day)`` partition under ``dest`` and commit; keyword
    arguments as :class:`PartitionWriter`. Returns the committed files."""
    w = PartitionWriter(dest, table, day, **kwargs)
    try:
        w.write_all(chunks)
    except BaseException:
        w.abort()
        raise
    return w.commit()
