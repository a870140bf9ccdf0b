"""SQL over the Parquet historical tier with DuckDB: one view per table.

The tier's layout is ``<root>/<table>/date=YYYY-MM-DD/*.parquet`` (EOD output and the embedded
store alike). Every table directory becomes a view of the same name with the hive partition
``date`` as a ``DATE`` column next to the table's own columns (``ts``/``recv_ts`` are
``TIMESTAMP WITH TIME ZONE``, UTC; prices dollars, sizes contracts, float64), so
``WHERE date = '2026-08-07'`` prunes whole partitions.

* **local** root: DuckDB's own ``read_parquet(glob, hive_partitioning = true, hive_types =
  {'date': DATE}, union_by_name = true)`` (DuckDB docs "Hive Partitioning");
* **S3** root: DuckDB's ``httpfs`` extension is not bundled with the Python wheel and cannot be
  installed offline, so S3 is read with ``pyarrow.dataset`` over ``pyarrow.fs.S3FileSystem``
  (same credentials and endpoint override as the EOD upload) and each dataset is registered
  into DuckDB; DuckDB pushes column projection and filters into the pyarrow scan.

The session time zone is UTC, so timestamps print and export as UTC whatever the machine's
zone. :data:`OHLC_SQL` is the canonical example: daily OHLC bars per ticker from ``trades``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

#: Daily OHLC bars per ticker from ``trades``: YES price in dollars (open/close = first/last
#: trade by ``ts``; equal timestamps — older feeds stamp trades to the second — are ordered by
#: ``trade_id`` so the bar is deterministic), volume in contracts, number of trades.
OHLC_SQL = """SELECT ticker, date,
       first(yes_price ORDER BY ts, trade_id) AS open, max(yes_price) AS high,
       min(yes_price) AS low, last(yes_price ORDER BY ts, trade_id) AS close,
       sum("count") AS volume, count(*) AS trades
FROM trades GROUP BY ticker, date ORDER BY ticker, date"""

_DATE_PART = pads.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")


class QueryError(RuntimeError):
    """No tables to query, an unreadable root, or a SQL error (DuckDB's message)."""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _has_parquet(table_dir: Path) -> bool:
    return any(table_dir.glob("date=*/*.parquet"))


@dataclass
class Hdb:
    """A DuckDB connection with one view per table (``views``) over ``root``."""

    con: Any
    root: str
    views: list[str]

    def query(self, sql: str, batch_rows: int = 65_536) -> pa.RecordBatchReader | None:
        """Run ``sql``; a streaming Arrow reader over its rows, or ``None`` for a statement
        without a result. Raises :class:`QueryError` with DuckDB's message."""
        import duckdb

        try:
            rel = self.con.sql(sql)
        except duckdb.Error as e:
            raise QueryError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        if rel is None:
            return None
        try:
            fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
            return fn(batch_rows)
        except duckdb.Error as e:
            raise QueryError(str(e).splitlines()[0]) from None

    def close(self) -> None:
        self.con.close()


def _connect() -> Any:
    import duckdb

    con = duckdb.connect(config={"threads": max(1, min(4, os.cpu_count() or 1))})
    try:
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:  # a build without ICU: timestamps are UTC already
        pass
    return con


def open_local(root: str | Path) -> Hdb:
    """Views over a local root (every ``<root>/<name>/date=*/*.parquet`` directory whose name
    does not start with ``.`` or ``_``). Raises :class:`QueryError` if there is none."""
    root = Path(root)
    if not root.is_dir():
        raise QueryError(f"{root}: no such directory")
    con = _connect()
    views = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith((".", "_")) and _has_parquet(d):
            glob = str(d / "date=*" / "*.parquet")
            con.execute(f"CREATE VIEW {_q(d.name)} AS SELECT * FROM read_parquet("
                        f"{_sql_str(glob)}, hive_partitioning = true, "
                        f"hive_types = {{'date': DATE}}, union_by_name = true)")
            views.append(d.name)
    if not views:
        con.close()
        raise QueryError(f"{root}: no <table>/date=YYYY-MM-DD/*.parquet found")
    return Hdb(con, str(root), views)


def open_s3(uri: str, endpoint_url: str | None = None, region: str | None = None,
            filesystem: Any = None) -> Hdb:
    """Views over ``s3://bucket/prefix`` (pyarrow datasets registered into DuckDB; see the
    module docstring). Raises :class:`QueryError` if no table is found, ``S3Error`` for a
    bad URI/endpoint/bucket."""
    from kalshi_platform.storage import s3 as s3mod

    loc = s3mod.parse_s3_uri(uri)
    fs = filesystem or s3mod.s3_filesystem(endpoint_url, region)
    s3mod.check_bucket(fs, loc)
    try:
        entries = fs.get_file_info(pafs.FileSelector(loc.key(), allow_not_found=True))
    except OSError as e:
        raise s3mod.S3Error(f"cannot list {uri}: {e}") from None
    con = _connect()
    views = []
    for e in sorted(entries, key=lambda i: i.path):
        name = e.path.rsplit("/", 1)[-1]
        if e.type != pafs.FileType.Directory or name.startswith((".", "_")):
            continue
        dset = pads.dataset(e.path, filesystem=fs, format="parquet", partitioning=_DATE_PART)
        if not dset.files:
            continue
        con.register(name, dset)
        views.append(name)
    if not views:
        con.close()
        raise QueryError(f"{uri}: no <table>/date=YYYY-MM-DD/*.parquet found")
    return Hdb(con, loc.uri, views)


def take(reader: pa.RecordBatchReader, limit: int | None) -> Iterator[pa.RecordBatch]:
    """Batches of ``reader`` up to ``limit`` rows in total (all when ``None``)."""
    left = limit
    for b in reader:
        if left is not None:
            if left <= 0:
                break
            if b.num_rows > left:
                b = b.slice(0, left)
            left -= b.num_rows
        yield b


def write_result(reader: pa.RecordBatchReader, path: str | Path, fmt: str,
                 limit: int | None = None) -> int:
    """Stream a result to ``path`` as ``csv`` (header, ISO timestamps) or ``parquet`` (zstd),
    written to ``<path>.tmp`` and renamed. Returns the rows written. Raises ``OSError``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    try:
        if fmt == "csv":
            w = pacsv.CSVWriter(str(tmp), reader.schema)
        elif fmt == "parquet":
            w = pq.ParquetWriter(str(tmp), reader.schema, compression="zstd")
        else:
            raise ValueError(f"unknown format {fmt!r}")
        try:
            for b in take(reader, limit):
                w.write_batch(b)
                n += b.num_rows
        finally:
            w.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n
