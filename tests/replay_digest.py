"""Digest of every table a Parquet replay wrote: the before/after check of issue 11.

:func:`table_digests` reads each table of a store back (files in name order, rows in file
order) and hashes its values exactly: timestamps as int64 µs, doubles by their IEEE-754 bits
(so ``-0.0``, a rounding or a NaN payload would change the digest), strings and nulls as
they are. The digests in ``tests/unit/test_replay_digest.py`` were computed with this
function on the code before the issue 11 speed work (commit 85d5612).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _plain(col: pa.ChunkedArray) -> list:
    a = col.combine_chunks()
    if pa.types.is_timestamp(a.type):
        a = a.cast(pa.int64())
    elif pa.types.is_floating(a.type):
        a = a.view(pa.int64())
    return a.to_pylist()


def table_digests(store: Path) -> dict[str, tuple[int, str]]:
    """``table → (rows, sha256 hex)`` for every table directory under ``store`` that holds
    Parquet files (``_quarantine`` excluded); the schema is part of the hash."""
    out = {}
    for d in sorted(p for p in Path(store).iterdir() if p.is_dir() and not p.name.startswith("_")):
        files = sorted(d.glob("date=*/*.parquet"))
        if not files:
            continue
        h = hashlib.sha256()
        rows = 0
        for f in files:
            t = pq.read_table(f, partitioning=None)
            h.update(f"{f.parent.name}/{t.schema}".encode())
            cols = [_plain(t.column(i)) for i in range(t.num_columns)]
            for row in zip(*cols):
                h.update(json.dumps(row).encode())
            rows += t.num_rows
        out[d.name] = (rows, h.hexdigest())
    return out
