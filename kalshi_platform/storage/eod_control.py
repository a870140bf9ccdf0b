"""The EOD control table: one record per ``(day, table)`` migration and its status, in QuestDB
(``eod_migrations``) or as a JSON Lines file beside the embedded store's output. The statuses
and the recovery rules they drive: :mod:`kalshi_platform.storage.eod`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from kalshi_platform.storage.eod_sources import wait_wal_applied

log = logging.getLogger("kalshi_platform.storage.eod")

RUNNING, FAILED, VERIFIED, DONE, EMPTY = "running", "failed", "verified", "done", "empty"
CONTROL_FILE = "_eod_migrations.jsonl"


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

    def get(self, day: date, table: str) -> MigrationRecord | None:
        """The latest record of ``(day, table)`` (UTC date, table name), or ``None``."""
        ...

    def put(self, rec: MigrationRecord) -> None:
        """Record ``rec`` as the latest state of its ``(day, table)`` (JSON Lines: appended
        and fsynced; QuestDB: one committed INSERT, visible to reads after :meth:`flush`)."""
        ...

    def records(self) -> dict[tuple[date, str], MigrationRecord]:
        """Every ``(day, table)``'s latest record. Raises when the store of the records
        cannot be read (e.g. no control table yet in QuestDB)."""
        ...

    def flush(self) -> None:
        """Make every ``put`` visible to a reader (QuestDB: wait for the WAL to apply)."""
        ...

