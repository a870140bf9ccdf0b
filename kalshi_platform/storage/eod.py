"""End-of-day migration: move a finished UTC day out of the hot tier into the Parquet historical
tier (local, and S3), verified, before the hot tier lets go of it.

For each table (one *migration* = one ``(day, table)``)::

    source day ──stream in chunks──► PartitionWriter ──► <dest>/<table>/date=D/part-NNNNN.parquet
        │   (digest of every chunk)                           │ re-read, digest
        │                                                     ▼
        │                                upload ──► s3://bucket/prefix/<table>/date=D/part-NNNNN.parquet
        │                                                     │ re-read, digest
        ▼                                                     ▼
    rows and digest of the source  ==  rows and digest of the files  ==  of the objects
                                  │ all equal → status "verified"
                                  ▼
         source unchanged since the snapshot? → drop the source day → status "done"

Sources (same three operations; see :class:`QuestDBSource` and :class:`EmbeddedSource`):

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

**Digest** (the verification checksum): row count plus the sum, mod 2**64, of DuckDB's
``hash()`` over *every* column of a row (so the dedup keys and the values). A sum is
order-independent, so the source stream, the files and the objects can be compared whatever
their row order; a lost, extra, duplicated or altered row changes it. It is computed in this
process on Arrow data for all three, so the server does no hashing. DuckDB's hash is stable
within one DuckDB version; the hex stored in the control table is for reference.

**Control table** ``eod_migrations``, one record per ``(day, table)`` with ``status``:

* ``running`` — started; ``failed`` — stopped with ``error`` (nothing dropped);
* ``verified`` — files (and objects) verified, source not dropped (yet, or ``--no-drop``;
  a failure after verification, e.g. in the drop, keeps this status and sets ``error``);
* ``done`` — verified and the source day dropped; ``empty`` — the source had no rows.

Recovery rules (what a re-run does): ``done`` → nothing (a no-op; rows that reached the source
for that day since are reported, not migrated). ``verified`` with ``--no-drop`` and the source
still holding the same row count → nothing. ``verified`` and the source now empty → the drop
happened but was not recorded (a crash): the files are verified against the recorded digest
and the record completed. Anything else with rows in the source → the whole migration again:
file names are deterministic per ``(table, day)``, so files and objects are overwritten, never
added to, and the source is only dropped after this run's own verification.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from kalshi_platform.historical.query import (FILE_COL, ROW_COL, latest_row_sql,
                                              parquet_scan_sql)
from kalshi_platform.storage import s3 as s3mod
from kalshi_platform.storage.hdb_writer import (PartitionWriter, WrittenFile, fsync_dir,
                                                 partition_dir)
from kalshi_platform.storage.schema import TABLES

log = logging.getLogger(__name__)

RUNNING, FAILED, VERIFIED, DONE, EMPTY = "running", "failed", "verified", "done", "empty"
#: outcome of a run for a table that needed no work
SKIPPED = "skipped"
#: file-name stem of EOD output: ``part-00000.parquet`` …
FILE_STEM = "part"
CONTROL_FILE = "_eod_migrations.jsonl"
LOCK_FILE = ".eod.lock"
_PART_RE = re.compile(re.escape(FILE_STEM) + r"-\d{5,}\.parquet")
_U64 = 1 << 64


class EodError(RuntimeError):
    """A migration cannot proceed (bad arguments, a lock held, a source or control failure)."""


class VerificationError(EodError):
    """Rows or digest of the written files/objects differ from the source."""


class SourceChanged(EodError):
    """The source day changed between the export and the drop (nothing was dropped)."""


def utc_yesterday(now: datetime | None = None) -> date:
    """Yesterday's UTC date (the default EOD day)."""
    now = now or datetime.now(timezone.utc)
    return (now.astimezone(timezone.utc) - timedelta(days=1)).date()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _duckdb(memory_limit: str = "256MB", temp_dir: str | None = None):
    import duckdb

    cfg = {"memory_limit": memory_limit, "threads": max(1, min(4, os.cpu_count() or 1))}
    if temp_dir:
        cfg["temp_directory"] = temp_dir
    return duckdb.connect(config=cfg)


def _reader(rel, rows: int) -> pa.RecordBatchReader:
    """A streaming Arrow reader over a DuckDB relation (duckdb 2.x name, then 1.x)."""
    fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
    return fn(rows)


# ------------------------------------------------------------------------------------------
# digest


@dataclass(frozen=True)
class Digest:
    """``rows`` and ``checksum`` (sum mod 2**64 of DuckDB ``hash()`` of every column)."""

    rows: int
    checksum: int

    @property
    def hex(self) -> str:
        return f"{self.checksum:016x}"


class Digester:
    """Accumulates a :class:`Digest` over Arrow chunks of one table (see module docstring)."""

    def __init__(self, table: str) -> None:
        self.columns = TABLES[table].column_names
        self._sql = (f"SELECT count(*), sum(hash({', '.join(map(_q, self.columns))})) "
                     f"FROM _digest_input")
        self._con = _duckdb()
        self.rows = 0
        self._sum = 0

    def _run(self, obj: Any) -> None:
        self._con.register("_digest_input", obj)
        try:
            (n, s), = self._con.execute(self._sql).fetchall()
        finally:
            self._con.unregister("_digest_input")
        self.rows += int(n)
        self._sum = (self._sum + int(s or 0)) % _U64

    def update(self, chunk: pa.RecordBatch | pa.Table) -> None:
        """Add one chunk (its columns in the table's order)."""
        if chunk.num_rows:
            tbl = pa.Table.from_batches([chunk]) if isinstance(chunk, pa.RecordBatch) else chunk
            self._run(tbl.select(self.columns))

    @property
    def digest(self) -> Digest:
        return Digest(self.rows, self._sum)

    def close(self) -> None:
        self._con.close()


def digest_parquet(table: str, paths: list[str], filesystem: Any = None, *,
                   batch_rows: int = 131_072) -> Digest:
    """Digest of Parquet files (local paths, or ``bucket/key`` paths with an S3
    ``filesystem``), read back in the table's schema one batch at a time without pre-buffering
    or threads (pyarrow ``ParquetFile.iter_batches``), so memory stays near one batch whatever
    the file's size. Raises ``OSError`` for unreadable files, ``ValueError``/``ArrowInvalid``
    for files not in the table's schema."""
    d = Digester(table)
    schema = TABLES[table].arrow_schema()
    try:
        for p in paths:
            f = filesystem.open_input_file(p) if filesystem is not None else open(p, "rb")
            with f:
                pf = pq.ParquetFile(f, pre_buffer=False)
                for batch in pf.iter_batches(batch_size=batch_rows, columns=d.columns,
                                             use_threads=False):
                    d.update(batch.cast(schema))
        return d.digest
    finally:
        d.close()


# ------------------------------------------------------------------------------------------
# sources


@dataclass(frozen=True)
class Snapshot:
    """What the source held for a day when the migration started: ``rows`` and a ``token``
    that changes if the day's data changes (embedded: the file list; QuestDB: the count)."""

    rows: int
    token: Any = None


class Source(Protocol):
    """A hot tier the EOD job can migrate from."""

    kind: str

    def snapshot(self, table: str, day: date) -> Snapshot: ...

    def stream(self, table: str, day: date, chunk_rows: int) -> Iterator[pa.RecordBatch]: ...

    def drop(self, table: str, day: date, snap: Snapshot) -> None: ...

    def cleanup(self, table: str, day: date) -> None: ...


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
    return "[" + ", ".join(_sql_str(str(f)) for f in files) + "]"


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
            keys = ", ".join(_q(k) for k in t.dedup_keys)
            rows = con.sql(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM "
                           f"read_parquet({_file_list(files)}))").fetchall()[0][0]
        finally:
            con.close()
        return Snapshot(int(rows), token)

    def _con(self):
        os.makedirs(self.temp_dir, exist_ok=True)
        return _duckdb(self.memory_limit, self.temp_dir)

    def stream(self, table: str, day: date, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        files = self.files(table, day)
        if not files:
            return
        t = TABLES[table]
        schema = t.arrow_schema()
        con = self._con()
        try:
            order = ", ".join(_q(k) for k in t.dedup_keys)
            # the embedded store appends (two live runs, a crashed run and the replay of its
            # recording, a backfill over a live run's trades): keep one row per dedup key,
            # NULL keys equal, chosen as the query views choose (latest recv_ts, then the
            # greatest file name, then the last row of it: deterministic, so a re-run
            # writes the same files)
            qualify = latest_row_sql(table, [*t.column_names, FILE_COL, ROW_COL])
            rel = con.sql(f"SELECT {', '.join(map(_q, t.column_names))} FROM "
                          f"{parquet_scan_sql(_file_list(files), hive=False)} {qualify} "
                          f"ORDER BY {order}")
            for batch in _reader(rel, chunk_rows):
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


# ------------------------------------------------------------------------------------------
# control table


@dataclass
class MigrationRecord:
    """One ``eod_migrations`` row: the latest state of the migration of ``(day, table)``.

    ``rows``/``files``/``bytes`` of the output, ``checksum`` (16 hex digits, see
    :class:`Digest`), ``started``/``finished`` (UTC), ``error`` (empty unless failed),
    ``source`` (questdb/embedded), ``dest`` (local root), ``s3_uri`` (root the files were
    verified in, empty if not uploaded), ``dropped`` (source day dropped).
    """

    day: date
    table: str
    status: str
    rows: int = 0
    files: int = 0
    bytes: int = 0
    checksum: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    error: str = ""
    source: str = ""
    dest: str = ""
    s3_uri: str = ""
    dropped: bool = False

    def to_json(self) -> dict:
        d = asdict(self)
        d["day"] = self.day.isoformat()
        for k in ("started", "finished"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "MigrationRecord":
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d["day"] = date.fromisoformat(d["day"])
        for k in ("started", "finished"):
            if d.get(k):
                d[k] = datetime.fromisoformat(d[k])
        return cls(**d)


class JsonlControl:
    """The control table as an append-only JSON Lines file (embedded source):
    ``<dest>/_eod_migrations.jsonl``. Every state change appends one fsynced line; the last
    line of a ``(day, table)`` wins. A torn last line (crash mid-write) is ignored."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def records(self) -> dict[tuple[date, str], MigrationRecord]:
        """Latest record per ``(day, table)``."""
        out: dict[tuple[date, str], MigrationRecord] = {}
        if not self.path.exists():
            return out
        with open(self.path, "rb") as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    rec = MigrationRecord.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    log.warning("%s: line %d unreadable, ignored", self.path, i + 1)
                    continue
                out[(rec.day, rec.table)] = rec
        return out

    def get(self, day: date, table: str) -> MigrationRecord | None:
        return self.records().get((day, table))

    def put(self, rec: MigrationRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(json.dumps(rec.to_json(), sort_keys=True).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def flush(self) -> None:
        return None


#: QuestDB DDL of the control table. Designated timestamp ``ts`` = the migrated UTC day at
#: 00:00, ``DEDUP UPSERT KEYS(ts, table_name)``: every state change of a migration upserts the
#: one row of its ``(day, table)`` (QuestDB docs "Deduplication"), so the table holds exactly
#: one, latest, row per migration and a retried INSERT cannot double it. WAL (dedup needs it),
#: PARTITION BY YEAR (8 rows a day). Column names avoid QuestDB keywords (``table``, ``rows``,
#: ``error`` are keywords).
CONTROL_DDL = """CREATE TABLE IF NOT EXISTS eod_migrations (
  ts TIMESTAMP,
  table_name SYMBOL,
  status SYMBOL,
  row_count LONG,
  file_count LONG,
  byte_count LONG,
  checksum VARCHAR,
  started TIMESTAMP,
  finished TIMESTAMP,
  error_msg VARCHAR,
  src SYMBOL,
  dest VARCHAR,
  s3_uri VARCHAR,
  dropped BOOLEAN
) TIMESTAMP(ts) PARTITION BY YEAR WAL DEDUP UPSERT KEYS(ts, table_name);"""

_CONTROL_COLS = ("ts", "table_name", "status", "row_count", "file_count", "byte_count",
                 "checksum", "started", "finished", "error_msg", "src", "dest", "s3_uri",
                 "dropped")


def _naive_utc(dt: datetime | None) -> datetime | None:
    """QuestDB 8.0 closes the connection on a tz-aware bind: pass naive UTC (field notes)."""
    if dt is None:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _day_dt(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


class QuestDBControl:
    """The control table ``eod_migrations`` in QuestDB (see :data:`CONTROL_DDL`), created on
    first use. :meth:`flush` waits until the table's WAL is applied, so the next run (or a
    query) sees the latest state."""

    def __init__(self, client: Any, *, wal_timeout_s: float = 30.0) -> None:
        self.client = client
        self.wal_timeout_s = wal_timeout_s
        client.execute(CONTROL_DDL)

    def _from_row(self, r: tuple) -> MigrationRecord:
        d = dict(zip(_CONTROL_COLS, r))

        def aware(x):
            return x.replace(tzinfo=timezone.utc) if isinstance(x, datetime) and x.tzinfo is None else x

        ts = d["ts"]
        return MigrationRecord(
            day=(ts.date() if isinstance(ts, datetime) else date.fromisoformat(str(ts)[:10])),
            table=d["table_name"], status=d["status"], rows=int(d["row_count"] or 0),
            files=int(d["file_count"] or 0), bytes=int(d["byte_count"] or 0),
            checksum=d["checksum"] or "", started=aware(d["started"]),
            finished=aware(d["finished"]), error=d["error_msg"] or "", source=d["src"] or "",
            dest=d["dest"] or "", s3_uri=d["s3_uri"] or "", dropped=bool(d["dropped"]))

    def records(self) -> dict[tuple[date, str], MigrationRecord]:
        rows = self.client.fetchall(f"SELECT {', '.join(_CONTROL_COLS)} FROM eod_migrations")
        out: dict[tuple[date, str], MigrationRecord] = {}
        for r in rows:
            rec = self._from_row(r)
            out[(rec.day, rec.table)] = rec
        return out

    def get(self, day: date, table: str) -> MigrationRecord | None:
        rows = self.client.fetchall(
            f"SELECT {', '.join(_CONTROL_COLS)} FROM eod_migrations "
            f"WHERE ts = %s AND table_name = %s", (_day_dt(day), table))
        if not rows:
            return None
        recs = [self._from_row(r) for r in rows]  # one after dedup; newest wins regardless
        return max(recs, key=lambda r: (r.finished or r.started or datetime.min.replace(
            tzinfo=timezone.utc)))

    def put(self, rec: MigrationRecord) -> None:
        vals = (_day_dt(rec.day), rec.table, rec.status, rec.rows, rec.files, rec.bytes,
                rec.checksum, _naive_utc(rec.started), _naive_utc(rec.finished),
                rec.error, rec.source, rec.dest, rec.s3_uri, rec.dropped)
        self.client.execute(
            f"INSERT INTO eod_migrations ({', '.join(_CONTROL_COLS)}) VALUES "
            f"({', '.join(['%s'] * len(_CONTROL_COLS))})", vals)

    def flush(self) -> None:
        if not wait_wal_applied(self.client, "eod_migrations", self.wal_timeout_s):
            log.warning("eod_migrations: WAL not applied within %.0f s", self.wal_timeout_s)


class Control(Protocol):
    """Where migration records live (:class:`QuestDBControl`, :class:`JsonlControl`)."""

    def get(self, day: date, table: str) -> MigrationRecord | None: ...

    def put(self, rec: MigrationRecord) -> None: ...

    def records(self) -> dict[tuple[date, str], MigrationRecord]: ...

    def flush(self) -> None: ...


# ------------------------------------------------------------------------------------------
# the job


@dataclass
class S3Target:
    """Where to upload: a parsed ``s3://bucket/prefix`` and a pyarrow S3 filesystem."""

    location: s3mod.S3Location
    fs: Any

    @classmethod
    def from_uri(cls, uri: str, endpoint_url: str | None = None,
                 region: str | None = None) -> "S3Target":
        """Parse ``uri``, build the filesystem and check the bucket (:class:`S3Error`)."""
        loc = s3mod.parse_s3_uri(uri)
        fs = s3mod.s3_filesystem(endpoint_url, region)
        s3mod.check_bucket(fs, loc)
        return cls(loc, fs)

    def partition_key(self, table: str, day: date) -> str:
        return self.location.key(table, f"date={day.isoformat()}")


@dataclass
class TableResult:
    """What a run did for one table: ``status`` (done, verified, skipped, empty, failed),
    output ``rows``/``files``/``bytes``, ``checksum`` hex, ``s3_objects`` verified (under
    ``s3_uri``), ``dropped``, wall ``seconds``, a ``note`` and the ``error`` of a failure."""

    table: str
    day: date
    status: str
    rows: int = 0
    files: int = 0
    bytes: int = 0
    checksum: str = ""
    s3_objects: int = 0
    s3_uri: str = ""
    dropped: bool = False
    seconds: float = 0.0
    note: str = ""
    error: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["day"] = self.day.isoformat()
        return d


@dataclass
class EodReport:
    """A whole run: the day, the source kind, ``dest``, ``s3_uri``, per-table ``results``
    and what retention deleted/kept (``(table, 'YYYY-MM-DD')`` pairs)."""

    day: date
    source: str
    dest: str
    s3_uri: str
    results: list[TableResult] = field(default_factory=list)
    retention_deleted: list[tuple[str, str]] = field(default_factory=list)
    retention_kept: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[TableResult]:
        return [r for r in self.results if r.status == FAILED]

    def to_json(self) -> dict:
        return {"day": self.day.isoformat(), "source": self.source, "dest": self.dest,
                "s3_uri": self.s3_uri, "results": [r.to_json() for r in self.results],
                "retention_deleted": [list(x) for x in self.retention_deleted],
                "retention_kept": [list(x) for x in self.retention_kept]}


class _Lock:
    """An exclusive ``flock`` on ``<dest>/.eod.lock`` (one EOD run per destination)."""

    def __init__(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(dest / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise EodError(f"another eod run holds {dest / LOCK_FILE}") from None

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _check(what: str, want: Digest, got: Digest) -> None:
    if want != got:
        raise VerificationError(f"{what}: {got.rows} rows / digest {got.hex}, source has "
                                f"{want.rows} rows / digest {want.hex}")


class EodJob:
    """Migrate one UTC ``day`` of ``tables`` from ``source`` to ``dest`` (and ``s3``).

    Args:
        source: :class:`QuestDBSource` or :class:`EmbeddedSource`.
        control: :class:`QuestDBControl` or :class:`JsonlControl`.
        dest: local root of the historical layout.
        s3: upload target, or ``None``.
        drop: drop the source day after verification.
        chunk_rows: rows per streamed chunk (bounds memory with the writer's row group).
        compression / max_rows_per_file: passed to :class:`PartitionWriter`.

    :meth:`run` never raises for a single table's failure: it is recorded (status
    ``failed``, nothing dropped) and reported; other tables go on.
    """

    def __init__(self, source: Any, control: Any, dest: str | Path, *,
                 s3: S3Target | None = None, drop: bool = True, chunk_rows: int = 100_000,
                 compression: str = "zstd", max_rows_per_file: int | None = None,
                 fsync: bool = True) -> None:
        self.source = source
        self.control = control
        self.dest = Path(dest)
        self.s3 = s3
        self.drop = drop
        self.chunk_rows = chunk_rows
        self.compression = compression
        self.max_rows_per_file = max_rows_per_file
        self.fsync = fsync

    # -- one table ---------------------------------------------------------------------------

    def _record(self, day: date, table: str, status: str, started: datetime, **kw: Any
                ) -> MigrationRecord:
        """Write the state of a migration; ``s3_uri`` is only set by the caller once the
        objects are verified."""
        rec = MigrationRecord(day=day, table=table, status=status, started=started,
                              finished=None if status == RUNNING else _now(),
                              source=self.source.kind, dest=str(self.dest), **kw)
        self.control.put(rec)
        return rec

    def _local_files(self, table: str, day: date) -> list[Path]:
        d = partition_dir(self.dest, table, day)
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if _PART_RE.fullmatch(p.name))

    def _verify_outputs(self, table: str, day: date, want: Digest, s3_uri: str) -> int:
        """Re-read the local files (and the objects when ``s3_uri``) and compare with
        ``want``; returns the number of objects verified. Raises VerificationError."""
        _check(f"{table} {day} local files", want,
               digest_parquet(table, [str(p) for p in self._local_files(table, day)]))
        if not s3_uri:
            return 0
        if self.s3 is None or self.s3.location.uri != s3_uri:
            raise VerificationError(f"{table} {day}: was uploaded to {s3_uri}; run with "
                                    f"--s3 {s3_uri} to verify it")
        keys = sorted(k for k in s3mod.list_keys(self.s3.fs, self.s3.partition_key(table, day))
                      if _PART_RE.fullmatch(k.rsplit("/", 1)[-1]))
        _check(f"{table} {day} S3 objects", want, digest_parquet(table, keys, self.s3.fs))
        return len(keys)

    def _upload(self, table: str, day: date, files: list[WrittenFile]) -> list[str]:
        """Upload the day's files under deterministic keys, delete this stem's other objects
        in the partition (left by an earlier, larger export)."""
        prefix = self.s3.partition_key(table, day)
        keys = []
        for f in files:
            key = f"{prefix}/{f.path.name}"
            s3mod.upload_file(self.s3.fs, f.path, key)
            keys.append(key)
        stale = [k for k in s3mod.list_keys(self.s3.fs, prefix)
                 if k not in keys and _PART_RE.fullmatch(k.rsplit("/", 1)[-1])]
        s3mod.delete_keys(self.s3.fs, stale)
        return keys

    def migrate(self, table: str, day: date) -> TableResult:
        """Migrate one ``(table, day)``; see the module docstring for the state machine."""
        t0 = time.perf_counter()
        started = _now()
        res = TableResult(table, day, FAILED)
        try:
            self._migrate(table, day, started, res)
        except Exception as e:  # noqa: BLE001 - recorded, reported, the next table goes on
            # a failure after verification (e.g. in the drop) keeps the record "verified"
            # (with the error): the next run then knows the outputs were good
            keep = res.status == VERIFIED
            res.status = FAILED
            res.error = f"{type(e).__name__}: {e}" if not isinstance(e, EodError) else str(e)
            log.error("eod %s %s failed: %s", table, day, res.error)
            try:
                self._record(day, table, VERIFIED if keep else FAILED, started, rows=res.rows,
                             files=res.files, bytes=res.bytes, checksum=res.checksum,
                             s3_uri=res.s3_uri if keep else "", error=res.error)
            except Exception as e2:  # noqa: BLE001
                res.error += f" (and recording the failure failed: {e2})"
        res.seconds = round(time.perf_counter() - t0, 3)
        return res

    def _migrate(self, table: str, day: date, started: datetime, res: TableResult) -> None:
        prev = self.control.get(day, table)
        self.source.cleanup(table, day)
        snap = self.source.snapshot(table, day)

        if prev is not None and prev.status == DONE:
            res.status, res.rows, res.files, res.bytes = SKIPPED, prev.rows, prev.files, prev.bytes
            res.checksum, res.dropped = prev.checksum, prev.dropped
            res.note = "already migrated"
            if snap.rows:
                res.note += (f"; {snap.rows} rows reached the source for this day since "
                             f"(not migrated)")
            return
        if (prev is not None and prev.status == VERIFIED and not self.drop
                and snap.rows == prev.rows and snap.rows > 0
                and (not self.s3 or prev.s3_uri == self.s3.location.uri)):
            res.status, res.rows, res.files, res.bytes = SKIPPED, prev.rows, prev.files, prev.bytes
            res.checksum = prev.checksum
            res.note = "already exported, source kept (--no-drop)"
            return
        if snap.rows == 0:
            if prev is not None and prev.status == VERIFIED:
                # the source day went after verification but before "done" was recorded; if
                # re-checking the outputs fails now (S3 away, local copy pruned), the record
                # must stay "verified" with its rows/checksum/s3_uri: it is the only account
                # of where that day lives
                res.status, res.rows, res.files, res.bytes = VERIFIED, prev.rows, prev.files, prev.bytes
                res.checksum, res.s3_uri = prev.checksum, prev.s3_uri
                want = Digest(prev.rows, int(prev.checksum, 16))
                res.s3_objects = self._verify_outputs(table, day, want, prev.s3_uri)
                self._record(day, table, DONE, prev.started or started, rows=prev.rows,
                             files=prev.files, bytes=prev.bytes, checksum=prev.checksum,
                             s3_uri=prev.s3_uri, dropped=True)
                res.status, res.rows, res.files, res.bytes = DONE, prev.rows, prev.files, prev.bytes
                res.checksum, res.dropped, res.s3_uri = prev.checksum, True, prev.s3_uri
                res.note = "recovered: source already dropped, outputs verified"
                return
            res.status = EMPTY
            res.note = "no rows in the source"
            if prev is None or prev.status != EMPTY:
                self._record(day, table, EMPTY, started)
            return

        self._record(day, table, RUNNING, started)
        src = Digester(table)
        try:
            with PartitionWriter(self.dest, table, day, name=FILE_STEM,
                                 compression=self.compression,
                                 max_rows_per_file=self.max_rows_per_file,
                                 fsync=self.fsync) as w:
                for batch in self.source.stream(table, day, self.chunk_rows):
                    src.update(batch)
                    w.write(batch)
            want = src.digest
        finally:
            src.close()
        files = w.files
        res.rows, res.files = want.rows, len(files)
        res.bytes, res.checksum = sum(f.bytes for f in files), want.hex
        if want.rows != snap.rows:
            raise VerificationError(f"{table} {day}: streamed {want.rows} rows, the source "
                                    f"counted {snap.rows}")
        _check(f"{table} {day} local files", want,
               digest_parquet(table, [str(f.path) for f in files]))
        if self.s3 is not None:
            keys = self._upload(table, day, files)
            _check(f"{table} {day} S3 objects", want, digest_parquet(table, keys, self.s3.fs))
            res.s3_objects = len(keys)
        res.s3_uri = self.s3.location.uri if self.s3 is not None else ""
        self._record(day, table, VERIFIED, started, rows=want.rows, files=len(files),
                     bytes=res.bytes, checksum=want.hex, s3_uri=res.s3_uri)
        res.status = VERIFIED
        if not self.drop:
            res.note = "source kept (--no-drop)"
            return
        self.source.drop(table, day, snap)
        self._record(day, table, DONE, started, rows=want.rows, files=len(files),
                     bytes=res.bytes, checksum=want.hex, s3_uri=res.s3_uri, dropped=True)
        res.status, res.dropped = DONE, True

    # -- the run -----------------------------------------------------------------------------

    def run(self, day: date, tables: Iterable[str], *, keep_days: int = 0) -> EodReport:
        """Migrate ``tables`` for ``day`` (then apply retention when ``keep_days`` > 0).
        Raises :class:`EodError` if another run holds the destination's lock."""
        tables = list(tables)
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise EodError(f"unknown table(s): {', '.join(unknown)}")
        today = datetime.now(timezone.utc).date()
        if day >= today and self.drop:
            raise EodError(f"{day} is not a finished UTC day (today is {today}); migrate it "
                           "tomorrow, or use --no-drop to copy it without dropping")
        lock = _Lock(self.dest)
        try:
            report = EodReport(day, self.source.kind, str(self.dest),
                               self.s3.location.uri if self.s3 else "")
            for t in tables:
                report.results.append(self.migrate(t, day))
            self.control.flush()
            if keep_days > 0:
                report.retention_deleted, report.retention_kept = apply_retention(
                    self.dest, keep_days, day, self.control)
            return report
        finally:
            lock.release()


def apply_retention(dest: str | Path, keep_days: int, ref_day: date, control: Any
                    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Delete local historical partitions older than the ``keep_days`` days ending at
    ``ref_day`` (so ``keep_days=1`` keeps only ``ref_day``) — but only those the control
    table shows verified in S3 (status done/verified with an ``s3_uri``): the local copy of a
    day that exists nowhere else is kept and reported. Returns ``(deleted, kept)`` as
    ``(table, 'YYYY-MM-DD')`` pairs. Raises ``ValueError`` for ``keep_days < 1``."""
    if keep_days < 1:
        raise ValueError("keep_days must be >= 1")
    cutoff = ref_day - timedelta(days=keep_days - 1)
    recs = control.records()
    deleted, kept = [], []
    dest = Path(dest)
    for table in TABLES:
        tdir = dest / table
        if not tdir.is_dir():
            continue
        for d in sorted(tdir.glob("date=*")):
            try:
                day = date.fromisoformat(d.name[5:])
            except ValueError:
                continue
            if day >= cutoff or not d.is_dir():
                continue
            rec = recs.get((day, table))
            if rec is not None and rec.status in (DONE, VERIFIED) and rec.s3_uri:
                shutil.rmtree(d)
                deleted.append((table, day.isoformat()))
            else:
                kept.append((table, day.isoformat()))
    return deleted, kept
