"""``kalshi-platform replay``: a recording through the same pipeline a live run uses.

Input policy: a file with no recognisable Kalshi frame (or an empty one) is refused before any
sink or store is created (:class:`NotARecording`, exit 2); bad frames inside a recording are
quarantined by the plant and counted; a file cut part-way (a recorder crash) is replayed up to
the cut and reported in ``partial_files``.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from kalshi_platform.ingestion.recording import (
    NotARecording,
    RecordingError,
    TruncatedRecording,
    feed,
    read_meta,
    sniff_recording,
)
from kalshi_platform.stream.sinks import plant_outputs, stream_summary
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.tools.sinks import UsageError, build_sinks

if TYPE_CHECKING:  # imported in run_replay: pydantic-settings and pyarrow stay out of CLI start
    from kalshi_platform.config import Settings

log = logging.getLogger(__name__)

_WHOLE_HASH_LIMIT = 256 << 20

#: gen-0 threshold of the garbage collector during a replay (CPython's default is 700)
REPLAY_GC_GEN0 = 50_000


@contextmanager
def replay_gc(gen0: int = REPLAY_GC_GEN0) -> Iterator[None]:
    """The garbage collector's settings for a replay, restored on exit: every object alive
    at the start (modules, settings, books) is frozen out of collections (``gc.freeze``), and
    a young-generation collection runs every ``gen0`` allocations instead of 700. A replay
    allocates events by the million and frees them by reference count; what collections
    found was the events queued for the sink threads, scanned and promoted again and again
    (measured on a 200k-frame replay with the Parquet sink: ~440 ns of CPU a frame less;
    ``--sink none`` unchanged). Nothing is leaked: cycles are still collected, later."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(gen0, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


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


def check_files(path: Path, files: list[Path]) -> tuple[list[Path], list[str]]:
    """Sniff every file before anything is built or fed (no store is created for a file
    that is not a recording): ``(files to feed, names of partial files)``.

    A single file that is empty or holds no recognisable frame raises
    :class:`NotARecording`; one cut before its first line raises its
    :class:`TruncatedRecording`. In a directory (a rotated ``record`` output, where a crash
    leaves a cut or empty last-written file) an empty file or one cut before its first line
    is skipped with a warning and reported partial; a file that is not a recording still
    raises, and so does a directory left with nothing to feed. Reads only up to each file's
    first frame (line 1 of a real recording)."""
    if files == [path]:
        if sniff_recording(path) is None:
            raise NotARecording(path, "empty", empty=True)
        return files, []
    keep: list[Path] = []
    partial: list[str] = []
    for f in files:
        try:
            kind = sniff_recording(f)
        except TruncatedRecording as e:
            log.warning("%s: cut before its first frame (%s); skipped", f, e.cause)
            partial.append(f.name)
            continue
        if kind is None:
            log.warning("%s: empty; skipped", f)
            partial.append(f.name)
            continue
        keep.append(f)
    if not keep:
        raise NotARecording(path, f"all {len(files)} files are empty or cut before a frame")
    return keep, partial


def run_replay(file: Path, *, store: Path, sinks: list[str], speed: float = 0.0,
               use_yes_price: bool | None = None, batch_rows: int = 250_000,
               compression: str = "zstd", settings: Settings | None = None,
               publishers: Sequence[Any] = (), publish: Sequence[str] = (),
               progress: Any = None) -> dict[str, Any]:
    """Replay ``file`` (a recording, or a directory of rotated recording files, fed in name
    order into one plant) into a fresh :class:`TickerPlant` with the given sinks; return the
    summary (:func:`summarize`).

    ``use_yes_price=None`` takes the flag from a ``.meta.json`` sidecar when there is one.
    ``settings`` configures the sinks (QuestDB conf, spool); ``batch_rows``/``compression``
    override its Parquet fields. ``publishers``: more publishers after the ``sinks`` ones
    (in-process subscribers, or a test's failing sink). ``publish``: subscriber transport
    URLs (``--publish``; :mod:`kalshi_platform.feed.transports`). Every file is checked before any
    sink is built (:func:`check_files`). A file whose reading fails part-way (a gzip cut by
    a crash) is replayed up to the cut, warned about, listed in ``partial_files`` and the
    replay goes on with the next file. A sink that fails is the plant's business (it marks
    it failed and goes on); the summary's ``sink_failures`` names it. A KeyboardInterrupt
    (SIGINT, or SIGTERM via the CLI) closes the sinks first, so everything replayed so far
    is flushed (or spooled) before it propagates. Raises :class:`NotARecording` (exit 2 at
    the CLI), :class:`RecordingError` (unreadable recording), :class:`UsageError`, or
    :class:`~kalshi_platform.storage.parquet_store.StoreError`. ``progress``: ``None`` or
    ``progress(plant.stats, files)``, a context manager held while the files are fed, whose
    ``file(i, path)`` is called as each starts (:class:`~kalshi_platform.tools.progress.
    ReplayProgress`: it reads ``stats.frames`` from its own thread, nothing per frame here).
    """
    from kalshi_platform.config import Settings

    if speed < 0:
        raise UsageError("--speed must be >= 0")
    if not file.exists():
        raise RecordingError(f"{file}: no such file")
    listed = recording_files(file)
    for f in listed:
        if not os.access(f, os.R_OK):
            raise RecordingError(f"{f}: permission denied")
    files, partial = check_files(file, listed)
    meta = read_meta(listed[0])  # a sidecar is written when its file opens: valid if cut
    if use_yes_price is None:
        use_yes_price = bool(meta.use_yes_price)
    settings = (settings or Settings()).model_copy(
        update={"parquet_batch_rows": batch_rows, "parquet_compression": compression,
                "store_dir": store})
    fp = fingerprint(files[0]) if len(files) == 1 else hashlib.sha1(
        "".join(fingerprint(f) for f in files).encode()).hexdigest()[:16]
    pubs = build_sinks(sinks, writer_id=f"replay-{fp}", settings=settings,
                       store=store, replace_existing=True)
    try:
        outputs, started = plant_outputs(pubs, settings, extra=publishers, publish=publish)
    except BaseException:
        for p in pubs:
            p.close()
        raise
    plant = TickerPlant(outputs, use_yes_price=use_yes_price)
    pubs += list(publishers)
    if meta.recorded_at_ns is not None:
        plant.clock_ns = meta.recorded_at_ns
    t0 = time.perf_counter()
    store_pub = _parquet_sink(pubs)
    shown = progress(plant.stats, files) if progress is not None else None
    # the sinks' last events are written under replay_gc too (plant.close)
    with replay_gc(), shown or nullcontext():
        try:
            partial = sorted(partial + _feed_files(files, plant, speed, shown))  # name order
        except KeyboardInterrupt:
            plant.close()  # flush (or spool) everything replayed so far
            raise
        except RecordingError as e:
            plant.close()  # keep everything replayed so far
            raise RecordingError(f"{e}; partial replay: {plant.stats.frames} frames processed"
                                 + (f", their rows flushed to {store}" if store_pub else "")
                                 ) from None
        plant.close()
    return summarize(plant, pubs, file=file, sinks=sinks, store=store, partial=partial,
                     use_yes_price=use_yes_price, elapsed=time.perf_counter() - t0)


def _feed_files(files: list[Path], plant: TickerPlant, speed: float,
                progress: Any = None) -> list[str]:
    """Feed ``files`` in order (a rotated recording is one run: its markers carry the
    resets); returns the names of the files cut part-way (each warned about once).
    ``progress.file(i, path)`` is told as each file starts."""
    partial: list[str] = []
    for i, f in enumerate(files):
        if progress is not None:
            progress.file(i, f)
        try:
            feed(f, plant, speed=speed)
        except TruncatedRecording as e:
            log.warning("%s: cut short after %d frames (%s; a recorder crash?): replayed up "
                        "to the cut%s", f, e.frames, e.cause,
                        ", going on with the next file" if f is not files[-1] else "")
            partial.append(f.name)
    return partial


def summarize(plant: TickerPlant, publishers: Sequence[Any], *, file: Path, sinks: list[str],
              store: Path, partial: list[str], use_yes_price: bool,
              elapsed: float) -> dict[str, Any]:
    """The replay summary (JSON-ready): counts from the plant's stats, books by state, rows
    produced by table and written by the Parquet sink, QuestDB writer stats, speed
    (``elapsed_s`` seconds, ``msg_per_s``), ``partial_files`` (names of files cut short or
    empty), ``sink_failures`` (sink name → one-line error, ``{}`` when every sink held) and
    the final top of every market."""
    store_pub = _parquet_sink(publishers)
    qdb_pub = next((p for p in publishers if type(p).__name__ == "QuestDBWriter"), None)
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
        "partial_files": partial,
        "sink_failures": sink_failures(plant),
        "rows_by_table": st.table_rows(),
        "rows_written": dict(sorted(store_pub.rows_written.items())) if store_pub else {},
        "files_written": store_pub.files_written if store_pub else 0,
        "questdb": qdb_pub.stats.as_dict() if qdb_pub else None,
        "stream": stream_summary(plant),
        "elapsed_s": round(elapsed, 6),
        "msg_per_s": round(n_msgs / elapsed) if elapsed > 0 else None,
        "markets": plant.markets_summary(),
    }


def _parquet_sink(publishers: Sequence[Any]) -> Any:
    """The first :class:`~kalshi_platform.storage.parquet_store.ParquetStore` among
    ``publishers``, or ``None`` (imported here, not at the top: pyarrow is not loaded at CLI
    start)."""
    from kalshi_platform.storage.parquet_store import ParquetStore

    return next((p for p in publishers if isinstance(p, ParquetStore)), None)


def sink_failures(plant: Any) -> dict[str, str]:
    """``plant.sink_failures`` (sink name → one-line error text, set by the plant when a
    sink raised) as a plain dict; ``{}`` for a plant without failures or without that
    attribute."""
    got = getattr(plant, "sink_failures", None) or {}
    return {str(k): str(v) for k, v in dict(got).items()}
