"""SQL over QuestDB's PostgreSQL wire protocol (psycopg 3): DDL, chunked reads, partitions,
OHLC bars, status.

Follows QuestDB's documented SQL for 8.x (QuestDB docs "PostgreSQL wire protocol", "CREATE
TABLE", "SAMPLE BY", "LATEST ON", "table_partitions", "wal_tables", "ALTER TABLE DROP
PARTITION"):

* timestamps are bound as **naive UTC** ``datetime`` values: QuestDB 8.0 closes the
  connection when psycopg binds a timezone-aware one (docs/field-notes.md "QuestDB facts");
* reads of a day are streamed with psycopg's chunked result mode (``Cursor.stream(size=n)``),
  so memory stays bounded by the chunk size, not the partition;
* timestamps are selected as ``cast(col AS LONG)`` (epoch µs) and UUIDs as strings, so a chunk
  converts into an Arrow batch without one Python ``datetime`` per value;
* table names and dates put into SQL text (``table_partitions('t')``, ``DROP PARTITION LIST
  'YYYY-MM-DD'``) are validated first; values are always bound parameters.

Connection settings come from :class:`kalshi_platform.config.Settings` (``KALSHI_QUESTDB_*``),
defaulting to QuestDB's standard ``127.0.0.1:8812``, user ``admin``, password ``quest``,
database ``qdb``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Iterator

import pyarrow as pa

from kalshi_platform.storage.schema import TABLES, Table

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTERVAL_RE = re.compile(r"^[1-9][0-9]*[Utsmhd]$")


class HDBError(RuntimeError):
    """A QuestDB SQL operation failed: cannot connect, bad SQL, or a server error. The message
    is one line and names the server."""


@dataclass(frozen=True)
class Partition:
    """One day partition of a table (``table_partitions``): ``name`` ``'YYYY-MM-DD'``,
    ``day``, ``rows``, ``min_ts``/``max_ts`` (naive UTC datetimes), ``disk_bytes``."""

    name: str
    day: dt.date | None
    rows: int
    min_ts: dt.datetime | None
    max_ts: dt.datetime | None
    disk_bytes: int | None = None


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise HDBError(f"invalid table name {name!r}")
    return name


def naive_utc(ts: dt.datetime | dt.date) -> dt.datetime:
    """A naive UTC ``datetime`` for binding (aware values are converted to UTC first; a date
    is its midnight). QuestDB 8.0 closes the connection on timezone-aware binds."""
    if not isinstance(ts, dt.datetime):
        return dt.datetime(ts.year, ts.month, ts.day)
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return ts


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[00:00, next 00:00)`` of a UTC day as naive datetimes."""
    lo = dt.datetime(day.year, day.month, day.day)
    return lo, lo + dt.timedelta(days=1)


def select_list(t: Table) -> str:
    """The SELECT list that reads ``t`` in its Arrow column order with cheap wire types:
    timestamps as epoch µs LONGs, UUIDs as strings."""
    out = []
    for c in t.columns:
        if c.kind == "timestamp":
            out.append(f"cast({c.name} AS LONG) {c.name}")
        elif c.kind == "uuid":
            out.append(f"cast({c.name} AS STRING) {c.name}")
        else:
            out.append(c.name)
    return ", ".join(out)


def rows_to_batch(t: Table, rows: list[tuple]) -> pa.RecordBatch:
    """Rows selected with :func:`select_list` → a RecordBatch in ``t.arrow_schema()``."""
    schema = t.arrow_schema()
    cols = list(zip(*rows)) if rows else [()] * len(t.columns)
    arrays = []
    for c, f, values in zip(t.columns, schema, cols):
        if c.kind == "timestamp":
            arrays.append(pa.array(values, type=pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(values, type=f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class QuestDBClient:
    """A QuestDB connection over PG wire (psycopg 3, autocommit).

    Args:
        settings: :class:`~kalshi_platform.config.Settings` (``None`` = load from env/.env).
        host, port, user, password, database: override the settings.
        connect_timeout_s: TCP connect timeout.

    Raises:
        HDBError: on connection failure (first use) and on any SQL error, one line.
    """

    def __init__(self, settings: Any = None, *, host: str | None = None, port: int | None = None,
                 user: str | None = None, password: str | None = None,
                 database: str | None = None, connect_timeout_s: float = 5.0) -> None:
        if settings is None:
            from kalshi_platform.config import get_settings

            settings = get_settings()
        self.host = host or settings.pg_host
        self.port = int(port or settings.questdb_pg_port)
        self.user = user or settings.questdb_user
        self.password = password if password is not None else settings.questdb_password
        self.database = database or settings.questdb_database
        self.connect_timeout_s = connect_timeout_s
        self._conn = None

    # -- connection -------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"QuestDB PG wire at {self.host}:{self.port}"

    def connect(self):
        """Open the connection if needed and return it. Raises :class:`HDBError`."""
        if self._conn is None or self._conn.closed:
            import psycopg

            try:
                self._conn = psycopg.connect(
                    host=self.host, port=self.port, user=self.user, password=self.password,
                    dbname=self.database, autocommit=True,
                    connect_timeout=max(1, int(round(self.connect_timeout_s))),
                    prepare_threshold=None)
            except psycopg.Error as e:
                raise HDBError(f"cannot connect to {self.where}: {_one_line(e)}") from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __enter__(self) -> "QuestDBClient":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- generic SQL ------------------------------------------------------------------------

    def execute(self, sql: str, params: tuple | None = None) -> None:
        """Run one statement (DDL or DML). Raises :class:`HDBError`."""
        self._run(sql, params, fetch=False)

    def fetchall(self, sql: str, params: tuple | None = None) -> list[tuple]:
        """All rows of a (small) query. Raises :class:`HDBError`."""
        return self._run(sql, params, fetch=True)

    def columns_of(self, sql: str, params: tuple | None = None) -> tuple[list[str], list[tuple]]:
        """(column names, rows) of a small query."""
        import psycopg

        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, _bind(params))
                names = [d.name for d in cur.description or []]
                return names, cur.fetchall()
        except psycopg.Error as e:
            raise HDBError(f"{self.where}: {_one_line(e)}") from None

    def stream(self, sql: str, params: tuple | None = None, *,
               chunk_rows: int = 100_000) -> Iterator[list[tuple]]:
        """Rows of a query in lists of at most ``chunk_rows``, read with psycopg's chunked
        result mode: memory is bounded by the chunk, not the result. Raises :class:`HDBError`.
        """
        import psycopg

        conn = self.connect()
        chunk: list[tuple] = []
        # chunked mode needs libpq >= 17 (psycopg docs "Cursor.stream"); else single-row mode
        size = min(chunk_rows, 10_000) if psycopg.pq.version() >= 170000 else 1
        try:
            with conn.cursor() as cur:
                for row in cur.stream(sql, _bind(params), size=size):
                    chunk.append(row)
                    if len(chunk) >= chunk_rows:
                        yield chunk
                        chunk = []
        except psycopg.Error as e:
            raise HDBError(f"{self.where}: {_one_line(e)}") from None
        if chunk:
            yield chunk

    def _run(self, sql: str, params: tuple | None, *, fetch: bool):
        import psycopg

        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, _bind(params))
                return cur.fetchall() if fetch else None
        except psycopg.Error as e:
            raise HDBError(f"{self.where}: {_one_line(e)}") from None

    # -- schema -----------------------------------------------------------------------------

    def tables(self) -> list[str]:
        """Names of every table on the server (``tables()``)."""
        names, rows = self.columns_of("SELECT * FROM tables()")
        col = "table_name" if "table_name" in names else "name"
        i = names.index(col)
        return sorted(r[i] for r in rows)

    def table_exists(self, name: str) -> bool:
        return _check_name(name) in self.tables()

    def init_schema(self, tables: list[str] | None = None) -> list[str]:
        """Create the platform's tables (``CREATE TABLE IF NOT EXISTS``: designated ``ts``,
        ``PARTITION BY DAY WAL``, ``DEDUP UPSERT KEYS``) and (re)assert each table's dedup keys
        with ``ALTER TABLE … DEDUP ENABLE UPSERT KEYS`` (idempotent, QuestDB docs "ALTER TABLE
        DEDUP ENABLE"); an existing table first gets any missing column with ``ALTER TABLE …
        ADD COLUMN IF NOT EXISTS`` (QuestDB docs "ALTER TABLE ADD COLUMN"). Returns the tables
        that did not exist before."""
        existing = set(self.tables())
        created = []
        for name in tables or list(TABLES):
            t = TABLES[name]
            self.execute(t.questdb_ddl())
            if name in existing:
                # a table created by an older version gains the columns added since (bbo.state)
                for c in t.columns:
                    if c.name != "ts":
                        self.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS "
                                     f"{c.name} {t.questdb_type(c)}")
                self.execute(f"ALTER TABLE {name} DEDUP ENABLE UPSERT KEYS({', '.join(t.dedup_keys)})")
            else:
                created.append(name)
        return created

    # -- day partitions ---------------------------------------------------------------------

    def day_partitions(self, table: str) -> list[Partition]:
        """Partitions of ``table`` (``table_partitions('t')``), oldest first."""
        _check_name(table)
        names, rows = self.columns_of(f"SELECT * FROM table_partitions('{table}')")
        ix = {n: i for i, n in enumerate(names)}
        out = []
        for r in rows:
            name = str(r[ix["name"]])
            try:
                day = dt.date.fromisoformat(name[:10])
            except ValueError:
                day = None
            out.append(Partition(name=name, day=day, rows=int(r[ix["numRows"]] or 0),
                                 min_ts=r[ix["minTimestamp"]] if "minTimestamp" in ix else None,
                                 max_ts=r[ix["maxTimestamp"]] if "maxTimestamp" in ix else None,
                                 disk_bytes=r[ix["diskSize"]] if "diskSize" in ix else None))
        return out

    def count_day(self, table: str, day: dt.date) -> int:
        """Rows of ``table`` with ``ts`` in the UTC day."""
        _check_name(table)
        lo, hi = day_bounds(day)
        return int(self.fetchall(f"SELECT count() FROM {table} WHERE ts >= %s AND ts < %s",
                                 (lo, hi))[0][0])

    def stream_day(self, table: str, day: dt.date, *,
                   chunk_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
        """The UTC day's rows of ``table`` ordered by ``ts``, as RecordBatches of at most
        ``chunk_rows`` in exactly ``schema.TABLES[table].arrow_schema()``."""
        t = TABLES[_check_name(table)]
        lo, hi = day_bounds(day)
        sql = (f"SELECT {select_list(t)} FROM {table} WHERE ts >= %s AND ts < %s ORDER BY ts")
        for rows in self.stream(sql, (lo, hi), chunk_rows=chunk_rows):
            yield rows_to_batch(t, rows)

    def drop_partition(self, table: str, day: dt.date) -> None:
        """``ALTER TABLE t DROP PARTITION LIST 'YYYY-MM-DD'`` (QuestDB docs "ALTER TABLE DROP
        PARTITION"). Raises :class:`HDBError` (e.g. no such partition)."""
        _check_name(table)
        self.execute(f"ALTER TABLE {table} DROP PARTITION LIST '{day.isoformat()}'")

    # -- market data queries ----------------------------------------------------------------

    def latest_bbo(self) -> dict[str, tuple]:
        """Last BBO row per market: ``SELECT … FROM bbo LATEST ON ts PARTITION BY ticker`` →
        ``{ticker: (ts_us, yes_bid, yes_bid_size, yes_ask, yes_ask_size, seq)}`` in dollars and
        contracts."""
        rows = self.fetchall("SELECT ticker, cast(ts AS LONG), yes_bid, yes_bid_size, yes_ask, "
                             "yes_ask_size, seq FROM bbo LATEST ON ts PARTITION BY ticker")
        return {r[0]: tuple(r[1:]) for r in rows}

    def ohlc(self, ticker: str, start: dt.datetime | dt.date, end: dt.datetime | dt.date,
             interval: str = "1h") -> list[tuple]:
        """OHLC bars of one market's trades (YES price, dollars) with ``SAMPLE BY interval
        ALIGN TO CALENDAR``: rows ``(bar_start naive UTC, open, high, low, close, volume
        contracts, trades)``. ``interval`` like ``1m``, ``5m``, ``1h``, ``1d``."""
        if not _INTERVAL_RE.match(interval):
            raise HDBError(f"invalid SAMPLE BY interval {interval!r} (e.g. 1m, 1h, 1d)")
        sql = ("SELECT ts, first(yes_price), max(yes_price), min(yes_price), last(yes_price), "
               "sum(count), count() FROM trades WHERE ticker = %s AND ts >= %s AND ts < %s "
               f"SAMPLE BY {interval} ALIGN TO CALENDAR")
        return self.fetchall(sql, (ticker, naive_utc(start), naive_utc(end)))

    def wal_lag(self) -> dict[str, dict[str, Any]]:
        """Per WAL table: ``suspended`` and ``lag_txns`` = sequencerTxn - writerTxn
        (``wal_tables()``; QuestDB docs "Write-Ahead Log")."""
        names, rows = self.columns_of("SELECT * FROM wal_tables()")
        ix = {n: i for i, n in enumerate(names)}
        out = {}
        for r in rows:
            seq, wr = r[ix["sequencerTxn"]], r[ix["writerTxn"]]
            out[r[ix["name"]]] = {"suspended": bool(r[ix["suspended"]]),
                                  "lag_txns": (seq - wr) if seq is not None and wr is not None else None}
        return out

    def status(self) -> list[dict[str, Any]]:
        """For each platform table: exists, rows, partitions (count, first, last day) and WAL
        lag — what ``kalshi-platform db status`` prints."""
        existing = set(self.tables())
        lag = self.wal_lag() if existing else {}
        out = []
        for name in TABLES:
            if name not in existing:
                out.append({"table": name, "exists": False})
                continue
            rows = int(self.fetchall(f"SELECT count() FROM {name}")[0][0])
            parts = self.day_partitions(name)
            w = lag.get(name, {})
            out.append({"table": name, "exists": True, "rows": rows, "partitions": len(parts),
                        "first": parts[0].name if parts else None,
                        "last": parts[-1].name if parts else None,
                        "wal_lag_txns": w.get("lag_txns"), "suspended": w.get("suspended")})
        return out


def _bind(params: tuple | None) -> tuple | None:
    if params is None:
        return None
    return tuple(naive_utc(p) if isinstance(p, dt.datetime) else p for p in params)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
