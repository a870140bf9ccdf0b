"""Write-ahead of one table's batch in the Parquet store: row groups written before the batch
is complete, files renamed into place when it is.

The store buffers a table's rows until ``batch_rows`` (one file per UTC day per batch). If
it encoded and compressed the whole batch only then, that work would all happen at the end
(at ``close`` of a replay: after the plant is done, on the critical path). Instead, every
``ROW_GROUP_ROWS`` rows are written as a row group into the batch's hidden ``.tmp`` file of
their day while the batch fills: ``ParquetWriter.write_table`` encodes and compresses with
the GIL released, so that work overlaps the plant's. Completing the batch writes the last
row group and the footer, fsyncs, and renames each day's file into place, days ascending.

Nothing is lost on a failure: the store keeps every row of a batch in memory until its file
is renamed, and :meth:`BatchFiles.abort` removes the tmp files; the store then writes the
batch the one-file-at-a-time way (see ``parquet_store._flush_table``). Values are the same
either way; only the file's row-group layout differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from kalshi_platform.fsync import fsync_dir

#: rows per row group written ahead (32Ki: large enough for readers and for the encoding of
#: a chunk not to dominate; a 250k-row batch is eight groups). What is left at the end of a
#: replay, up to a group, is encoded on the critical path (measured on a 500k-frame replay into
#: the store: 32Ki groups 357-368 ms against 369-417 ms with 64Ki, 400-418 ms with 128Ki)
ROW_GROUP_ROWS = 32_768


def _sync(path: Path, how: Callable[[int], None]) -> None:
    """``os.fsync`` / ``os.fdatasync`` of the file at ``path`` (through a descriptor of its
    own: Linux syncs the file, whichever descriptor wrote it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        how(fd)
    finally:
        os.close(fd)


class _DayFile:
    """One day's open tmp file: its path, handle, Parquet writer and rows written."""

    __slots__ = ("dir", "tmp", "f", "writer", "rows")

    def __init__(self, d: Path, tmp: Path, f: pa.NativeFile, writer: Any) -> None:
        self.dir, self.tmp, self.f, self.writer, self.rows = d, tmp, f, writer, 0


class BatchFiles:
    """The open tmp files of one table's current batch, one per UTC day.

    Args:
        table_dir: ``<root>/<table>``.
        schema: the table's Arrow schema.
        tmp_name: ``() -> str``, a fresh hidden tmp file name (``.<writer>-<n>.parquet.tmp``).
        write_args: ``pq.ParquetWriter`` keyword arguments (compression, use_dictionary).
        fsync: fdatasync after each row group (in the background) and fsync before a rename.

    Raises what the file system or Parquet writer raises (``OSError``, ``pa.ArrowException``);
    the caller then calls :meth:`abort`.
    """

    def __init__(self, table_dir: Path, schema: pa.Schema, tmp_name: Callable[[], str],
                 write_args: dict, fsync: bool) -> None:
        self._dir = table_dir
        self._schema = schema
        self._tmp_name = tmp_name
        self._args = write_args
        self._fsync = fsync
        self._days: dict[str, _DayFile] = {}

    def __bool__(self) -> bool:
        return bool(self._days)

    def write(self, groups: list[tuple[str, pa.Table]]) -> None:
        """Append each ``(date 'YYYY-MM-DD', rows of that day)`` as a row group of that
        day's file (opened on first use)."""
        for date, rows in groups:
            df = self._days.get(date) or self._open(date)
            df.writer.write_table(rows)
            df.rows += rows.num_rows
            if self._fsync:  # most of the bytes reach the disk now, not at the rename
                df.f.flush()
                _sync(df.tmp, os.fdatasync)

    def _open(self, date: str) -> _DayFile:
        d = self._dir / f"date={date}"
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / self._tmp_name()
        f = pa.OSFile(str(tmp), "wb")  # Arrow's own file: its writes need no GIL
        try:
            w = pq.ParquetWriter(f, self._schema, **self._args)
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        df = self._days[date] = _DayFile(d, tmp, f, w)
        return df

    def dates(self) -> list[str]:
        """The days with a file open, ascending."""
        return sorted(self._days)

    def finish(self, date: str, final_name: str) -> tuple[Path, int]:
        """Close ``date``'s file (footer), fsync it, rename it to ``final_name`` in its
        directory and fsync the directory; returns ``(final path, rows)``."""
        df = self._days[date]
        df.writer.close()
        df.f.close()
        if self._fsync:
            _sync(df.tmp, os.fsync)
        final = df.dir / final_name
        os.replace(df.tmp, final)
        del self._days[date]
        if self._fsync:
            fsync_dir(df.dir)
        return final, df.rows

    def abort(self) -> None:
        """Close and remove every open tmp file (errors ignored: they are hidden files a
        later ``replace_existing`` run removes too)."""
        for df in self._days.values():
            for step in (df.writer.close, df.f.close, lambda: df.tmp.unlink(missing_ok=True)):
                try:
                    step()
                except Exception:  # noqa: BLE001 - best effort: the rows are still buffered
                    pass
        self._days.clear()
