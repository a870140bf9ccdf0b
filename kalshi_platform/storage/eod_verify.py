"""EOD verification primitives: the errors a migration raises, and the digest every copy of a
day is compared by.

**Digest**: row count plus the sum, mod 2**64, of DuckDB's ``hash()`` over *every* column of a
row (so the dedup keys and the values). A sum is order-independent, so the source stream, the
files and the objects can be compared whatever their row order; a lost, extra, duplicated or
altered row changes it. It is computed in this process on Arrow data for all three, so the
server does no hashing. DuckDB's hash is stable within one DuckDB version; the hex stored in the
control table is for reference. The job using it: :mod:`kalshi_platform.storage.eod`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kalshi_platform.storage.schema import TABLES

_U64 = 1 << 64


class EodError(RuntimeError):
    """A migration cannot proceed (bad arguments, a lock held, a source or control failure)."""


class VerificationError(EodError):
    """Rows or digest of the written files/objects differ from the source."""


class SourceChanged(EodError):
    """The source day changed between the export and the drop (nothing was dropped)."""



def error_text(e: BaseException) -> str:
    """What went wrong, as one line without the exception's class name (what a user reads):
    ``<file>: <reason>`` for an OS error, else the message with its whitespace collapsed."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    text = " ".join(str(e).split())
    return text or "unexpected failure (run with --verbose for the traceback)"


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(s: str) -> str:
    """``s`` as a single-quoted SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def duckdb_connection(memory_limit: str = "256MB", temp_dir: str | None = None):
    """An in-memory DuckDB connection under ``memory_limit`` (spilling to ``temp_dir``), on
    at most 4 threads."""
    import duckdb

    cfg = {"memory_limit": memory_limit, "threads": max(1, min(4, os.cpu_count() or 1))}
    if temp_dir:
        cfg["temp_directory"] = temp_dir
    return duckdb.connect(config=cfg)


def arrow_reader(rel, rows: int) -> pa.RecordBatchReader:
    """A streaming Arrow reader over a DuckDB relation (duckdb 2.x name, then 1.x)."""
    fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
    return fn(rows)

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
        self._sql = (f"SELECT count(*), sum(hash({', '.join(map(quote_ident, self.columns))})) "
                     f"FROM _digest_input")
        self._con = duckdb_connection()
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



def check_digest(what: str, want: Digest, got: Digest) -> None:
    """Raise :class:`VerificationError` naming ``what`` unless ``got`` equals ``want``."""
    if want != got:
        raise VerificationError(f"{what}: {got.rows} rows / digest {got.hex}, source has "
                                f"{want.rows} rows / digest {want.hex}")
