"""EOD sources: the hot tiers a finished day is migrated from (same four operations:
``snapshot``, ``stream``, ``drop``, ``cleanup``; the job: :mod:`kalshi_platform.storage.eod`).

* **QuestDB** (the hot tier): rows streamed over PG wire by ``QuestDBClient.stream_day``
  (bounded memory; works on 8.x, which has no server-side Parquet export — field notes
  "QuestDB facts"), counted with ``count_day``, dropped with
  ``ALTER TABLE t DROP PARTITION LIST 'YYYY-MM-DD'`` (QuestDB docs "ALTER TABLE DROP
  PARTITION"). After a drop the job waits until the WAL has applied it (``wal_tables()``).
* **embedded** Parquet store: the day's files ``<store>/<table>/date=D/*.parquet``, read through
  DuckDB ordered by ``ts`` and the dedup keys (an external sort under a memory limit, so a day
  larger than memory still streams), one row per dedup-key tuple (the copy the ``query``
  views keep: ``historical.query.latest_row_sql``), dropped by renaming the ``date=D``
  directory away in one atomic ``rename`` and then deleting it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Iterator, Protocol

import pyarrow as pa

from kalshi_platform.historical.query import (FILE_COL, ROW_COL, latest_row_sql,
                                              parquet_scan_sql)
from kalshi_platform.storage.eod_verify import (EodError, SourceChanged, arrow_reader,
                                               duckdb_connection, quote_ident, sql_str)
from kalshi_platform.fsync import fsync_dir
from kalshi_platform.storage.hdb_writer import partition_dir
from kalshi_platform.storage.schema import TABLES

log = logging.getLogger("kalshi_platform.storage.eod")


@dataclass(frozen=True)
class Snapshot:
    """What the source held for a day when the migration started: ``rows`` and a ``token``
    that changes if the day's data changes (embedded: the file list; QuestDB: the count)."""

    rows: int
    token: Any = None


class Source(Protocol):
    """A hot tier the EOD job can migrate from (``kind``: ``questdb`` or ``embedded``, the
    name the report and the control records carry). ``day`` is a UTC date, ``table`` a name
    of storage/schema.py's ``TABLES``."""

    kind: str

    def snapshot(self, table: str, day: date) -> Snapshot:
        """The day's row count and change token now (0 rows for a table the source lacks).
        Raises :class:`~kalshi_platform.storage.eod_verify.EodError` when the source cannot
        say yet (QuestDB: its WAL not applied in time)."""
        ...

    def stream(self, table: str, day: date, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """The day's rows in the table's Arrow schema, at most ``chunk_rows`` a batch, in a
        deterministic order (bounded memory whatever the day's size)."""
        ...

    def drop(self, table: str, day: date, snap: Snapshot) -> None:
        """Delete the day from the source, only if it still holds what ``snap`` saw; raises
        :class:`~kalshi_platform.storage.eod_verify.SourceChanged` (nothing dropped)
        otherwise."""
        ...

    def cleanup(self, table: str, day: date) -> None:
        """Finish what an interrupted :meth:`drop` left behind (embedded: a directory renamed
        away but not yet deleted); a no-op when there is nothing."""
        ...


class QuestDBSource:
    """The QuestDB hot tier through ``kalshi_platform.storage.questdb_hdb.QuestDBClient``
    (or anything with its ``table_exists``/``count_day``/``stream_day``/``drop_partition``/
    ``fetchall`` methods).

    ``drop`` re-counts the day first and raises :class:`SourceChanged` if rows arrived since
    the snapshot; after ``DROP PARTITION`` it waits (up to ``wal_timeout_s``) until
    ``wal_tables()`` shows the table's WAL applied, so the drop is visible when the job
    records ``done``.
    """

    kind = "questdb"

    def __init__(self, client: Any, *, wal_timeout_s: float = 30.0) -> None:
        self.client = client
        self.wal_timeout_s = wal_timeout_s

    def snapshot(self, table: str, day: date) -> Snapshot:
        if not self.client.table_exists(table):
            return Snapshot(0, 0)
        # queries see only *applied* WAL transactions (QuestDB docs "Write-Ahead Log"): wait
        # until every committed row of the table is visible before counting and exporting
        if not wait_wal_applied(self.client, table, self.wal_timeout_s):
            raise EodError(f"{table}: QuestDB has not applied its WAL within "
                           f"{self.wal_timeout_s:.0f} s; not migrating (re-run later)")
        n = int(self.client.count_day(table, day))
        return Snapshot(n, n)

    def stream(self, table: str, day: date, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        return iter(self.client.stream_day(table, day, chunk_rows=chunk_rows))

    def drop(self, table: str, day: date, snap: Snapshot) -> None:
        # rows committed since the export must be visible to the re-count, or DROP PARTITION
        # (itself applied after them) would take them unexported
        if not wait_wal_applied(self.client, table, self.wal_timeout_s):
            raise SourceChanged(f"{table} {day}: QuestDB WAL not applied; not dropped "
                                "(re-run to migrate)")
        now = int(self.client.count_day(table, day))
        if now != snap.rows:
            raise SourceChanged(f"{table} {day}: {now} rows in QuestDB now, {snap.rows} when "
                                f"exported; not dropped (re-run to migrate them)")
        self.client.drop_partition(table, day)
        if not wait_wal_applied(self.client, table, self.wal_timeout_s):
            log.warning("%s: WAL not applied within %.0f s after DROP PARTITION", table,
                        self.wal_timeout_s)

    def cleanup(self, table: str, day: date) -> None:
        return None


def wait_wal_applied(client: Any, table: str, timeout_s: float = 30.0,
                     poll_s: float = 0.05) -> bool:
    """Wait until QuestDB has applied every committed WAL transaction of ``table``
    (``wal_tables()``: ``writerTxn >= sequencerTxn``; QuestDB docs "Meta functions").

    Returns False on timeout, True when applied or when ``table`` is not a WAL table. Raises
    :class:`EodError` if the table's WAL is suspended (writes would never become visible).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        rows = client.fetchall("SELECT suspended, writerTxn, sequencerTxn FROM wal_tables() "
                               "WHERE name = %s", (table,))
        if not rows:
            return True
        suspended, writer, sequencer = rows[0]
        if suspended:
            raise EodError(f"QuestDB table {table}: WAL is suspended (see wal_tables(); "
                           f"ALTER TABLE {table} RESUME WAL)")
        if writer is not None and sequencer is not None and int(writer) >= int(sequencer):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def _file_list(files: list[Path]) -> str:
    return "[" + ", ".join(sql_str(str(f)) for f in files) + "]"


class EmbeddedSource:
    """The embedded Parquet store (:mod:`kalshi_platform.storage.parquet_store`) as a source.

    Args:
        store: the store root (``<store>/<table>/date=YYYY-MM-DD/*.parquet``).
        memory_limit: DuckDB's memory limit for the ordered read (it spills beyond it).
        temp_dir: where DuckDB spills (default: the system temp dir).
    """

    kind = "embedded"

    def __init__(self, store: str | Path, *, memory_limit: str = "256MB",
                 temp_dir: str | None = None) -> None:
        self.store = Path(store)
        self.memory_limit = memory_limit
        self.temp_dir = temp_dir or os.path.join(tempfile.gettempdir(), "kalshi-eod-duckdb")

    def _dir(self, table: str, day: date) -> Path:
        return partition_dir(self.store, table, day)

    def files(self, table: str, day: date) -> list[Path]:
        """The day's visible Parquet files (hidden ``.tmp`` files of a writer excluded)."""
        d = self._dir(table, day)
        if not d.is_dir():
            return []
        return sorted(p for p in d.glob("*.parquet") if not p.name.startswith((".", "_")))

    def days(self) -> list[date]:
        """Every UTC day with at least one Parquet file in some table of the store, in
        order (to tell a user which days a ``--date`` could have been)."""
        out: set[date] = set()
        for table in TABLES:
            tdir = self.store / table
            if not tdir.is_dir():
                continue
            for d in tdir.glob("date=*"):
                try:
                    day = date.fromisoformat(d.name[5:])
                except ValueError:
                    continue
                if self.files(table, day):
                    out.add(day)
        return sorted(out)

    def snapshot(self, table: str, day: date) -> Snapshot:
        """Rows of the day *after de-duplication on the table's dedup keys* (what
        :meth:`stream` yields), and a token of the files (name, size, mtime)."""
        files = self.files(table, day)
        token = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        if not files:
            return Snapshot(0, token)
        t = TABLES[table]
        con = self._con()
        try:
            keys = ", ".join(quote_ident(k) for k in t.dedup_keys)
            rows = con.sql(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM "
                           f"read_parquet({_file_list(files)}))").fetchall()[0][0]
        finally:
            con.close()
        return Snapshot(int(rows), token)

    def _con(self):
        os.makedirs(self.temp_dir, exist_ok=True)
        return duckdb_connection(self.memory_limit, self.temp_dir)

    def stream(self, table: str, day: date, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        files = self.files(table, day)
        if not files:
            return
        t = TABLES[table]
        schema = t.arrow_schema()
        con = self._con()
        try:
            order = ", ".join(quote_ident(k) for k in t.dedup_keys)
            # the embedded store appends (two live runs, a crashed run and the replay of its
            # recording, a backfill over a live run's trades): keep one row per dedup key,
            # NULL keys equal, chosen as the query views choose (latest recv_ts, then the
            # greatest file name, then the last row of it: deterministic, so a re-run
            # writes the same files)
            qualify = latest_row_sql(table, [*t.column_names, FILE_COL, ROW_COL])
            rel = con.sql(f"SELECT {', '.join(map(quote_ident, t.column_names))} FROM "
                          f"{parquet_scan_sql(_file_list(files), hive=False)} {qualify} "
                          f"ORDER BY {order}")
            for batch in arrow_reader(rel, chunk_rows):
                yield batch.cast(schema)
        finally:
            con.close()

    def drop(self, table: str, day: date, snap: Snapshot) -> None:
        now = self.snapshot(table, day)
        if now.token != snap.token:
            raise SourceChanged(f"{table} {day}: the store's files changed since the export; "
                                f"not dropped (re-run to migrate them)")
        d = self._dir(table, day)
        if not d.exists():
            return
        gone = d.with_name(f".{d.name}.eod-dropped")
        if gone.exists():
            shutil.rmtree(gone)
        os.rename(d, gone)  # atomic: readers see the whole day or none of it
        fsync_dir(d.parent)
        shutil.rmtree(gone)

    def cleanup(self, table: str, day: date) -> None:
        """Finish a drop that was interrupted after its rename."""
        gone = self._dir(table, day).with_name(f".date={day.isoformat()}.eod-dropped")
        if gone.exists():
            shutil.rmtree(gone)

