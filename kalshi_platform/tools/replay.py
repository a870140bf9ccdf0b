"""``kalshi-platform replay``: a recording through the same pipeline a live run uses."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from kalshi_platform.ingestion.recording import RecordingError, feed, read_meta
from kalshi_platform.config import Settings
from kalshi_platform.storage.parquet_store import ParquetStore
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.tools.sinks import UsageError, build_sinks

_WHOLE_HASH_LIMIT = 256 << 20


def fingerprint(path: Path) -> str:
    """16 hex digits identifying a recording's content (sha1).

    Files up to 256 MiB are hashed whole; larger ones by size plus 64 samples of 64 KiB spread
    over the file (a full read of a multi-GB recording just to name it is not worth it).
    Used as the Parquet writer id so a re-replay of the same file rewrites the same files.
    """
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as f:
        if size <= _WHOLE_HASH_LIMIT:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            for i in range(64):
                f.seek(size * i // 64)
                h.update(f.read(1 << 16))
            f.seek(-(1 << 16), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:16]


def recording_files(path: Path) -> list[Path]:
    """The recording files to replay: ``path`` itself, or for a directory (a rotated
    ``record`` output) its ``*.jsonl[.gz]`` / ``*.json`` files in name order (the recorder's
    names sort chronologically), ``.meta.json`` sidecars excluded. Raises
    :class:`RecordingError` for a directory without recordings."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.endswith(".meta.json")
                   and (p.name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz"))))
    if not files:
        raise RecordingError(f"{path}: a directory with no recording files (*.jsonl[.gz], *.json)")
    return files


def run_replay(file: Path, *, store: Path, sinks: list[str], speed: float = 0.0,
               use_yes_price: bool | None = None, batch_rows: int = 250_000,
               compression: str = "zstd", settings: Settings | None = None) -> dict[str, Any]:
    """Replay ``file`` (a recording, or a directory of rotated recording files, fed in name
    order into one plant) into a fresh :class:`TickerPlant` with the given sinks; return the
    summary.

    ``use_yes_price=None`` takes the flag from a ``.meta.json`` sidecar when there is one.
    ``settings`` configures the sinks (QuestDB conf, spool); ``batch_rows``/``compression``
    override its Parquet fields. A KeyboardInterrupt (SIGINT, or SIGTERM via the CLI) closes
    the sinks first, so everything replayed so far is flushed (or spooled) before it propagates.
    Raises :class:`RecordingError` (unreadable recording), :class:`UsageError`, or
    :class:`~kalshi_platform.storage.parquet_store.StoreError`.
    """
    if speed < 0:
        raise UsageError("--speed must be >= 0")
    if not file.exists():
        raise RecordingError(f"{file}: no such file")
    files = recording_files(file)
    for f in files:
        if not os.access(f, os.R_OK):
            raise RecordingError(f"{f}: permission denied")
    meta = read_meta(files[0])
    if use_yes_price is None:
        use_yes_price = bool(meta.use_yes_price)
    settings = (settings or Settings()).model_copy(
        update={"parquet_batch_rows": batch_rows, "parquet_compression": compression})
    fp = fingerprint(files[0]) if len(files) == 1 else hashlib.sha1(
        "".join(fingerprint(f) for f in files).encode()).hexdigest()[:16]
    publishers = build_sinks(sinks, writer_id=f"replay-{fp}", settings=settings,
                             store=store, replace_existing=True)
    store_pub = next((p for p in publishers if isinstance(p, ParquetStore)), None)
    qdb_pub = next((p for p in publishers if type(p).__name__ == "QuestDBWriter"), None)
    plant = TickerPlant(publishers, use_yes_price=use_yes_price)
    if meta.recorded_at_ns is not None:
        plant.clock_ns = meta.recorded_at_ns
    t0 = time.perf_counter()
    try:
        for f in files:  # a rotated recording: one run, in order (markers carry the resets)
            feed(f, plant, speed=speed)
    except KeyboardInterrupt:
        plant.close()  # flush (or spool) everything replayed so far
        raise
    except RecordingError as e:
        plant.close()  # keep everything replayed so far
        raise RecordingError(f"{e}; partial replay: {plant.stats.frames} frames processed"
                             + (f", their rows flushed to {store}" if store_pub else "")) from None
    plant.close()
    elapsed = time.perf_counter() - t0
    st = plant.stats
    messages = st.messages_by_type()
    n_msgs = sum(messages.values())
    states: dict[str, int] = {}
    for b in plant.books.values():
        states[b.state] = states.get(b.state, 0) + 1
    return {
        "file": str(file),
        "sinks": sinks or ["none"],
        "store": str(store) if store_pub else None,
        "use_yes_price": use_yes_price,
        "frames": st.frames,
        "messages": n_msgs,
        "messages_by_type": messages,
        "market_count": len(plant.books),
        "market_states": dict(sorted(states.items())),
        "gaps": st.gaps,
        "duplicates": st.duplicates,
        "quarantined": st.quarantined,
        "crossed": st.crossed,
        "book_errors": st.book_errors,
        "deltas_ignored": st.deltas_ignored,
        "kalshi_errors": st.errors,
        "rows_by_table": st.table_rows(),
        "rows_written": dict(sorted(store_pub.rows_written.items())) if store_pub else {},
        "files_written": store_pub.files_written if store_pub else 0,
        "questdb": qdb_pub.stats.as_dict() if qdb_pub else None,
        "elapsed_s": round(elapsed, 6),
        "msg_per_s": round(n_msgs / elapsed) if elapsed > 0 else None,
        "markets": plant.markets_summary(),
    }
