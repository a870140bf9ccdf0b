"""Durability helpers shared by every writer that renames or creates files (the exchange WAL,
the QuestDB spool, the Parquet partition writer, the backfill checkpoint): only the
standard library.

POSIX makes a rename, create or unlink durable only once the directory holding it is fsynced
(``fsync(2)``: "Calling fsync() does not necessarily ensure that the entry in the directory
containing the file has also reached disk").
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: str | Path, *, best_effort: bool = False) -> None:
    """fsync the directory ``path`` so the renames, creates and unlinks in it are durable.

    Raises ``OSError`` when the directory cannot be opened or synced, unless ``best_effort``
    (then a filesystem that cannot fsync a directory is ignored: the caller's data is still
    written, only its durability across a power loss is not promised)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if best_effort:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not best_effort:
            raise
    finally:
        os.close(fd)
