"""SQL over the Parquet historical tier with DuckDB: one view per table (de-duplicated on the
table's dedup keys) and one ``<table>_raw`` view (every stored row).

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

**De-duplicated views.** The embedded store appends: two live runs (two writer ids) over the
same feed, or a crashed run plus a replay of its recording, leave the same rows twice, where
QuestDB's ``DEDUP UPSERT KEYS`` would have kept one. So the view named after a table holds
*one row per dedup-key tuple* (``storage/schema.py`` ``Table.dedup_keys``, within one ``date``
partition, as QuestDB's day partitions and the EOD job do), and ``<table>_raw`` is every row
as stored. NULL key values compare equal (QuestDB treats a null key as a value; DuckDB's
``PARTITION BY`` groups NULLs, unlike ``=``). Which copy is kept when copies differ outside the
keys (:func:`latest_row_sql`; the same rule in the EOD job and ``read_table(dedup=True)``):

1. the latest ``recv_ts`` (a NULL ``recv_ts`` counts as the oldest): the copy received last is
   the one a live writer would have upserted last — QuestDB keeps the last written;
2. then the greatest file path: within one writer a later file (``<writer_id>-NNNNNN``, a
   counter) is a later write; between writers the writer id decides (deterministic, arbitrary);
3. then the last row of that file (a writer appends in publish order). S3 views have no row
   number, so there the remaining columns decide instead (greatest value, NULL lowest).

A table directory not declared in ``schema.TABLES`` has no keys: its view is its raw rows.
The rule is ``QUALIFY row_number() OVER (PARTITION BY date, keys ORDER BY …) = 1`` (a hash
partition and a sort per query). Filters on ``date`` and on key columns (``ticker``) are pushed
below it into the scan, so ``WHERE date = …`` still prunes partitions. Cost on a shared 2-core machine, over 800k
``orderbook_deltas`` rows (400k keys, each row twice, 2 days, 200 tickers): ``count(*)`` /
``SELECT *`` / a per-ticker aggregate take 0.16-0.18 s (the raw view: 2-40 ms), one ticker on
one day 15 ms. With 2M rows they take 0.43-0.48 s. Without the file and row tie-breaks, a
full scan takes about half of that, but the copy kept is then not deterministic. Use
``<table>_raw`` when duplicates do not matter and speed does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from kalshi_platform.storage.schema import TABLES

#: Daily OHLC bars per ticker from ``trades``: YES price in dollars (open/close = first/last
#: trade by ``ts``; equal timestamps — older feeds stamp trades to the second — are ordered by
#: ``trade_id`` so the bar is deterministic), volume in contracts, number of trades.
OHLC_SQL = """SELECT ticker, date,
       first(yes_price ORDER BY ts, trade_id) AS open, max(yes_price) AS high,
       min(yes_price) AS low, last(yes_price ORDER BY ts, trade_id) AS close,
       sum("count") AS volume, count(*) AS trades
FROM trades GROUP BY ticker, date ORDER BY ticker, date"""

_DATE_PART = pads.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")

#: pseudo-columns of a de-duplicating scan: the source file's path and the row's index in it
#: (``read_parquet(filename = …, file_row_number = true)``); never part of a view's result
FILE_COL = "__kp_file"
ROW_COL = "file_row_number"
#: suffix of the views over every stored row (no de-duplication)
RAW_SUFFIX = "_raw"


class QueryError(RuntimeError):
    """No tables to query, an unreadable root, or a SQL error (DuckDB's message)."""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _has_parquet(table_dir: Path) -> bool:
    return any(table_dir.glob("date=*/*.parquet"))


def latest_row_sql(table: str, columns: Sequence[str], *, partition: Sequence[str] = (),
                   file_col: str | None = FILE_COL, row_col: str | None = ROW_COL) -> str | None:
    """The ``QUALIFY`` clause keeping one row per dedup-key tuple of ``table`` (module
    docstring, "De-duplicated views": latest ``recv_ts``, then greatest ``file_col``, then
    greatest ``row_col``; without ``row_col`` the other columns break ties by value).

    ``columns``: the columns the scan has (keys it lacks are NULL in every row, so they are
    left out of the partition); ``partition``: more columns to partition by (``date``);
    ``file_col``/``row_col``: the scan's pseudo-columns, or ``None`` when it has none.
    Returns ``None`` (no de-duplication) for a table with no declared keys (not in
    ``schema.TABLES``) or a scan with none of them.
    """
    t = TABLES.get(table)
    have = set(columns)
    keys = [c for c in (*partition, *(t.dedup_keys if t else ())) if c in have]
    if t is None or not keys:
        return None
    order = ['"recv_ts" DESC NULLS LAST'] if "recv_ts" in have and "recv_ts" not in keys \
        else []
    order += [f"{_q(c)} DESC NULLS LAST" for c in (file_col, row_col) if c]
    if row_col is None:
        skip = {*keys, "recv_ts", file_col}
        order += [f"{_q(c)} DESC NULLS LAST" for c in columns if c not in skip]
    over = f"PARTITION BY {', '.join(map(_q, keys))}"
    if order:
        over += f" ORDER BY {', '.join(order)}"
    return f"QUALIFY row_number() OVER ({over}) = 1"


def parquet_scan_sql(paths: str, *, hive: bool) -> str:
    """``read_parquet`` over ``paths`` (an SQL string literal or list of them) by name, with the
    :data:`FILE_COL` and :data:`ROW_COL` pseudo-columns; ``hive`` adds the ``date`` partition
    as a ``DATE`` column."""
    opts = ", hive_partitioning = true, hive_types = {'date': DATE}" if hive else ""
    return (f"read_parquet({paths}{opts}, union_by_name = true, "
            f"filename = {_sql_str(FILE_COL)}, file_row_number = true)")


def _columns(con: Any, relation: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def _add_views(con: Any, name: str, scan: str, pseudo: Sequence[str], row_col: str | None
               ) -> None:
    """``<name>_raw`` (every row) and ``<name>`` (one row per dedup key) over ``scan``, a
    relation with the ``pseudo`` columns besides the table's own."""
    excl = f" EXCLUDE ({', '.join(map(_q, pseudo))})"
    con.execute(f"CREATE VIEW {_q(name + RAW_SUFFIX)} AS SELECT *{excl} FROM {scan}")
    cols = _columns(con, _q(name + RAW_SUFFIX))
    qualify = latest_row_sql(name, cols + list(pseudo), partition=("date",),
                             file_col=FILE_COL, row_col=row_col)
    con.execute(f"CREATE VIEW {_q(name)} AS SELECT *{excl} FROM {scan} {qualify or ''}")


def read_deduped(table_dir: str | Path, table: str, columns: Sequence[str]) -> pa.Table:
    """One row per dedup-key tuple (:func:`latest_row_sql`) of a local table directory
    (``<table_dir>/date=*/*.parquet``), ``columns`` in that order with the declared Arrow
    types (a column no file has is all NULL), sorted by the dedup keys. Raises
    :class:`QueryError` on an unreadable file."""
    import duckdb

    t = TABLES[table]
    con = _connect()
    try:
        scan = parquet_scan_sql(_sql_str(str(Path(table_dir) / "date=*" / "*.parquet")),
                                hive=True)
        have = _columns(con, f"(SELECT * FROM {scan})")
        typ = dict(zip(t.column_names, t.arrow_schema()))
        sel = ", ".join(_q(c) if c in have else f"NULL AS {_q(c)}" for c in columns)
        keys = ", ".join(_q(k) for k in t.dedup_keys if k in have)
        qualify = latest_row_sql(table, have, partition=("date",)) or ""
        rel = con.sql(f"SELECT {sel} FROM {scan} {qualify} ORDER BY {keys or 'ALL'}")
        out = (getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table)()
    except duckdb.Error as e:
        raise QueryError(str(e).splitlines()[0]) from None
    finally:
        con.close()
    return out.cast(pa.schema([typ.get(c) or out.schema.field(c) for c in columns]))


@dataclass
class Hdb:
    """A DuckDB connection over ``root``: per table a de-duplicated view named after it
    (``views``) and ``<table>_raw`` with every stored row (``raw_views``)."""

    con: Any
    root: str
    views: list[str]
    raw_views: list[str] = field(default_factory=list)

    def query(self, sql: str, batch_rows: int = 65_536) -> pa.RecordBatchReader | None:
        """Run ``sql``; a streaming Arrow reader over its rows, or ``None`` for a statement
        without a result. Raises :class:`QueryError` with DuckDB's message."""
        import duckdb

        try:
            rel = self.con.sql(sql)
        except duckdb.CatalogException as e:
            raise QueryError(self._missing_table(str(e)) or str(e).splitlines()[0]) from None
        except duckdb.Error as e:
            raise QueryError(str(e).splitlines()[0] if str(e).strip()
                             else "DuckDB refused the query (no reason given)") from None
        if rel is None:
            return None
        try:
            fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
            return fn(batch_rows)
        except duckdb.Error as e:
            raise QueryError(str(e).splitlines()[0]) from None

    def _missing_table(self, message: str) -> str | None:
        """For DuckDB's "Table with name X does not exist" catalog error: which tables this
        store has instead (``None`` for any other catalog error)."""
        import re

        m = re.search(r"Table with name (.+?) does not exist", message)
        if m is None:
            return None
        have = ", ".join(self.views) or "none"
        return (f"no table {m.group(1)} in {self.root}; it has: {have} "
                f"(each also as <table>{RAW_SUFFIX}, every stored row)")

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
    does not start with ``.`` or ``_``): ``<name>`` de-duplicated, ``<name>_raw`` as stored.
    Raises :class:`QueryError` if there is none."""
    root = Path(root)
    if not root.is_dir():
        raise QueryError(f"{root}: no such directory")
    con = _connect()
    views = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith((".", "_")) and _has_parquet(d):
            scan = parquet_scan_sql(_sql_str(str(d / "date=*" / "*.parquet")), hive=True)
            _add_views(con, d.name, scan, (FILE_COL, ROW_COL), ROW_COL)
            views.append(d.name)
    if not views:
        con.close()
        raise QueryError(f"{root}: no <table>/date=YYYY-MM-DD/*.parquet found")
    return Hdb(con, str(root), views, [v + RAW_SUFFIX for v in views])


def open_s3(uri: str, endpoint_url: str | None = None, region: str | None = None,
            filesystem: Any = None) -> Hdb:
    """Views over ``s3://bucket/prefix`` (pyarrow datasets registered into DuckDB; see the
    module docstring), ``<name>`` de-duplicated and ``<name>_raw`` as stored. Raises
    :class:`QueryError` if no table is found, ``S3Error`` for a bad URI/endpoint/bucket."""
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
        src = f"__kp_src_{len(views)}"
        con.register(src, _with_file_column(dset, fs))
        _add_views(con, name, _q(src), (FILE_COL,), None)
        views.append(name)
    if not views:
        con.close()
        raise QueryError(f"{uri}: no <table>/date=YYYY-MM-DD/*.parquet found")
    return Hdb(con, loc.uri, views, [v + RAW_SUFFIX for v in views])


def _with_file_column(dset: pads.FileSystemDataset, fs: Any) -> pads.FileSystemDataset:
    """``dset`` with a :data:`FILE_COL` string column: each file's path, attached like a
    partition value (so it costs no scan and is pushed down)."""
    fmt = pads.ParquetFileFormat()
    frags = [fmt.make_fragment(f.path, filesystem=fs, partition_expression=(
        f.partition_expression & (pc.field(FILE_COL) == f.path))) for f in dset.get_fragments()]
    return pads.FileSystemDataset(frags, dset.schema.append(pa.field(FILE_COL, pa.string())),
                                  fmt, fs)


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
