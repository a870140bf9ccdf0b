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

Sources (:mod:`.eod_sources`, same four operations ``snapshot``, ``stream``, ``drop``,
``cleanup``): :class:`QuestDBSource` streams the day over PG wire and drops its partition;
:class:`EmbeddedSource` reads the embedded store's ``date=D`` files through DuckDB (one row per
dedup key) and drops the directory with one atomic rename.

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

Modules: this one (the job, its report, retention), :mod:`.eod_sources` (QuestDB and the
embedded store), :mod:`.eod_control` (the control table), :mod:`.eod_verify` (the digest and
the errors). Their public names are re-exported here.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from kalshi_platform.storage import s3 as s3mod
from kalshi_platform.storage.eod_control import (
    CONTROL_DDL, CONTROL_FILE, DONE, EMPTY, FAILED, RUNNING, VERIFIED, Control, JsonlControl,
    MigrationRecord, QuestDBControl)
from kalshi_platform.storage.eod_sources import (
    EmbeddedSource, QuestDBSource, Snapshot, Source, wait_wal_applied)
from kalshi_platform.storage.eod_verify import (
    Digest, Digester, EodError, SourceChanged, VerificationError, check_digest, digest_parquet,
    error_text)
from kalshi_platform.storage.hdb_writer import PartitionWriter, WrittenFile, partition_dir
from kalshi_platform.storage.schema import TABLES

__all__ = [
    "CONTROL_DDL", "CONTROL_FILE", "DONE", "EMPTY", "FAILED", "FILE_STEM", "LOCK_FILE",
    "RUNNING", "SKIPPED", "VERIFIED", "Control", "Digest", "Digester", "EmbeddedSource",
    "EodError", "EodJob", "EodReport", "JsonlControl", "MigrationRecord", "QuestDBControl",
    "QuestDBSource", "S3Target", "Snapshot", "Source", "SourceChanged", "TableResult",
    "VerificationError", "apply_retention", "check_digest", "digest_parquet", "error_text",
    "utc_yesterday", "wait_wal_applied",
]

log = logging.getLogger(__name__)

#: outcome of a run for a table that needed no work
SKIPPED = "skipped"
#: file-name stem of EOD output: ``part-00000.parquet`` …
FILE_STEM = "part"
LOCK_FILE = ".eod.lock"
_PART_RE = re.compile(re.escape(FILE_STEM) + r"-\d{5,}\.parquet")


def utc_yesterday(now: datetime | None = None) -> date:
    """Yesterday's UTC date (the default EOD day)."""
    now = now or datetime.now(timezone.utc)
    return (now.astimezone(timezone.utc) - timedelta(days=1)).date()


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
        progress: ``progress(table, day, rows)`` called as each table starts (rows 0) and
            after each streamed chunk (rows so far), e.g. a terminal spinner; ``None``: none.

    :meth:`run` never raises for a single table's failure: it is recorded (status
    ``failed``, nothing dropped) and reported; other tables go on.
    """

    def __init__(self, source: Any, control: Any, dest: str | Path, *,
                 s3: S3Target | None = None, drop: bool = True, chunk_rows: int = 100_000,
                 compression: str = "zstd", max_rows_per_file: int | None = None,
                 fsync: bool = True,
                 progress: Callable[[str, date, int], None] | None = None) -> None:
        self.source = source
        self.control = control
        self.dest = Path(dest)
        self.s3 = s3
        self.drop = drop
        self.chunk_rows = chunk_rows
        self.compression = compression
        self.max_rows_per_file = max_rows_per_file
        self.fsync = fsync
        self.progress = progress

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
        check_digest(f"{table} {day} local files", want,
                     digest_parquet(table, [str(p) for p in self._local_files(table, day)]))
        if not s3_uri:
            return 0
        if self.s3 is None or self.s3.location.uri != s3_uri:
            raise VerificationError(f"{table} {day}: was uploaded to {s3_uri}; run with "
                                    f"--s3 {s3_uri} to verify it")
        keys = sorted(k for k in s3mod.list_keys(self.s3.fs, self.s3.partition_key(table, day))
                      if _PART_RE.fullmatch(k.rsplit("/", 1)[-1]))
        check_digest(f"{table} {day} S3 objects", want,
                     digest_parquet(table, keys, self.s3.fs))
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
        if self.progress is not None:
            self.progress(table, day, 0)
        try:
            self._migrate(table, day, started, res)
        except Exception as e:  # noqa: BLE001 - recorded, reported, the next table goes on
            # a failure after verification (e.g. in the drop) keeps the record "verified"
            # (with the error): the next run then knows the outputs were good
            keep = res.status == VERIFIED
            res.status = FAILED
            res.error = error_text(e)  # one line, no exception class name
            log.error("eod %s %s failed: %s", table, day, res.error)
            log.debug("eod %s %s failure", table, day, exc_info=True)
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
        if not self._settled(table, day, started, res, prev, snap):
            self._export(table, day, started, res, snap)

    def _settled(self, table: str, day: date, started: datetime, res: TableResult,
                 prev: MigrationRecord | None, snap: Snapshot) -> bool:
        """Fill ``res`` and return True when the migration needs no export: already done,
        already exported with the source kept, an empty source, or a drop that happened but
        was not recorded (recovered)."""
        if prev is not None and prev.status == DONE:
            res.status, res.rows, res.files, res.bytes = SKIPPED, prev.rows, prev.files, prev.bytes
            res.checksum, res.dropped = prev.checksum, prev.dropped
            res.note = "already migrated"
            if snap.rows:
                res.note += (f"; {snap.rows} rows reached the source for this day since "
                             f"(not migrated)")
            return True
        if (prev is not None and prev.status == VERIFIED and not self.drop
                and snap.rows == prev.rows and snap.rows > 0
                and (not self.s3 or prev.s3_uri == self.s3.location.uri)):
            res.status, res.rows, res.files, res.bytes = SKIPPED, prev.rows, prev.files, prev.bytes
            res.checksum = prev.checksum
            res.note = "already exported, source kept (--no-drop)"
            return True
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
                return True
            res.status = EMPTY
            res.note = "no rows in the source"
            if prev is None or prev.status != EMPTY:
                self._record(day, table, EMPTY, started)
            return True
        return False

    def _export(self, table: str, day: date, started: datetime, res: TableResult,
                snap: Snapshot) -> None:
        """Stream the day into files, verify them (and the objects), then drop the source."""
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
                    if self.progress is not None:
                        self.progress(table, day, src.rows)
            want = src.digest
        finally:
            src.close()
        files = w.files
        res.rows, res.files = want.rows, len(files)
        res.bytes, res.checksum = sum(f.bytes for f in files), want.hex
        if want.rows != snap.rows:
            raise VerificationError(f"{table} {day}: streamed {want.rows} rows, the source "
                                    f"counted {snap.rows}")
        check_digest(f"{table} {day} local files", want,
                     digest_parquet(table, [str(f.path) for f in files]))
        if self.s3 is not None:
            keys = self._upload(table, day, files)
            check_digest(f"{table} {day} S3 objects", want,
                         digest_parquet(table, keys, self.s3.fs))
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
