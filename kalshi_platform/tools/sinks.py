"""``--sink`` for every command that writes plant events (replay, run, backfill).

One place turns a ``--sink`` spec into Publisher objects, so replay, the live run and the
backfill write through exactly the same sinks. Cheap to import (the CLI imports it at start):
the settings and the stores are imported inside :func:`build_sinks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kalshi_platform.config import Settings

#: sink names accepted by ``--sink`` (comma-separated; ``none`` alone = discard)
SINKS = ("parquet", "questdb", "none")


class UsageError(ValueError):
    """A command-line argument is invalid (reported as one line, exit code 2)."""


def parse_sinks(spec: str) -> list[str]:
    """``"parquet,questdb"``-style list → validated sink names (``[]`` for ``none``).

    Raises :class:`UsageError` for an unknown name or ``none`` combined with another sink.
    """
    names = [s.strip().lower() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in SINKS]
    if bad or not names:
        raise UsageError(f"unknown sink {','.join(bad) or spec!r}; choose from {', '.join(SINKS)}")
    if "none" in names and len(names) > 1:
        raise UsageError("--sink none cannot be combined with other sinks")
    return [] if names == ["none"] else list(dict.fromkeys(names))


def build_sinks(names: list[str], *, writer_id: str, settings: Settings | None = None,
                store: Path | None = None, replace_existing: bool = False) -> list[Any]:
    """Publishers for ``names`` (from :func:`parse_sinks`), in the order given.

    * ``parquet`` → :class:`ParquetStore` at ``store`` (default ``settings.store_dir``) with
      ``writer_id`` naming its files (``replace_existing`` rewrites a previous run's files).
    * ``questdb`` → :class:`~kalshi_platform.storage.questdb_rdb.QuestDBWriter` from the
      ``KALSHI_QUESTDB_*`` settings (ILP conf, batching, queue bound, spool directory).

    Raises :class:`~kalshi_platform.storage.parquet_store.StoreError` when the store cannot be
    created, :class:`UsageError` when the QuestDB writer cannot start (bad conf, spool dir).
    """
    from kalshi_platform.config import get_settings
    from kalshi_platform.storage.parquet_store import ParquetStore

    settings = settings or get_settings()
    out: list[Any] = []
    for name in names:
        if name == "parquet":
            out.append(ParquetStore(store or settings.store_dir, writer_id,
                                    batch_rows=settings.parquet_batch_rows,
                                    compression=settings.parquet_compression,
                                    replace_existing=replace_existing))
        elif name == "questdb":
            from kalshi_platform.storage.questdb_rdb import QuestDBWriter, WriterError

            try:
                out.append(QuestDBWriter.from_settings(settings))
            except WriterError as e:
                for p in out:
                    p.close()
                raise UsageError(f"QuestDB sink: {e}") from None
        else:  # pragma: no cover - parse_sinks rejects unknown names
            raise UsageError(f"unknown sink {name!r}")
    return out
