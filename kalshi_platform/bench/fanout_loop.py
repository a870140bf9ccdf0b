"""``bench fanout``, loop stall: how long the plant's read loop is blocked while a Parquet store
writes, with the store on the event stream's consumer thread (today's design, issue 10 §1-2)
against the old inline design (the store a direct plant publisher, writing on the loop).

Both run the real pipeline on the same synthetic recording (:mod:`.synth`, grown from the
bundled real capture): each frame's JSON text goes to ``TickerPlant.process()`` then
``commit()``, paced at ``rate`` frames/s (frames due are handled back to back, as a loop
draining its socket would), with a :class:`~kalshi_platform.storage.parquet_store.ParquetStore`
(``batch_rows`` rows per write, fsync on, zstd):

* ``inline``: ``TickerPlant([store])``: every ``batch_rows``-th row writes a file on the loop;
* ``stream``: ``TickerPlant(plant_outputs([store], settings))``: an
  :class:`~kalshi_platform.stream.bus.EventStream` whose consumer thread
  (:class:`~kalshi_platform.stream.sinks.SinkConsumer`) does the store's writes (and its age
  flushes every ``parquet_flush_s`` = 5 s).

Per design: ``worst_call_ms`` (the longest single ``process()`` + ``commit()``: the loop
blocked), ``p999_call_ms``, ``worst_late_ms`` (the most a frame was handled after it was due:
the loop lag a socket would see), the writes (files) and write seconds the store spent while
the loop ran, the longest garbage collection on the loop's thread and on the others (a
collection holds the GIL wherever it runs, so one on the sink's thread stalls the loop as
well), ``close_s`` (the final flush at close; the stream design also drains its queue), and
the rows stored per table (they must be equal). The frames are read into memory first and
kept out of the garbage collector's scans (``gc.freeze``): they are the harness's, and a
live loop holds none of them; the plant's and the store's own objects are scanned as usual.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def _frames(n: int, workdir: Path, source: Path | None) -> list[tuple[int | None, bytes]]:
    import orjson

    from kalshi_platform.bench.runner import default_source
    from kalshi_platform.bench.synth import write_synthetic_recording
    from kalshi_platform.ingestion.recording import iter_frames

    rec = workdir / f"loop-synthetic-{n}.jsonl"
    write_synthetic_recording(source or default_source(), rec, n)
    out = [(recv_ns, payload if isinstance(payload, bytes) else orjson.dumps(payload))
           for recv_ns, payload in iter_frames(rec)]
    rec.unlink()
    return out


def _paced(plant: Any, frames: list, rate: float) -> tuple[list[int], int]:
    """Feed ``frames`` at ``rate`` frames/s; returns (ns per call, worst lateness ns)."""
    mono, sleep = time.perf_counter_ns, time.sleep
    process, commit = plant.process, plant.commit
    calls: list[int] = []
    rec = calls.append
    per = 1e9 / rate
    n = len(frames)
    worst_late = 0
    t0 = mono()
    i = 0
    while i < n:
        now = mono()
        due = t0 + int(i * per)
        if due > now:
            sleep((due - now) / 1e9)
            continue
        if now - due > worst_late:
            worst_late = now - due
        upto = min(n, int((now - t0) / per) + 1)
        while i < upto:
            recv_ns, payload = frames[i]
            a = mono()
            process(payload, recv_ns)
            commit()
            rec(mono() - a)
            i += 1
    return calls, worst_late


class _GcWatch:
    """The longest garbage collection on the loop's thread and on any other (a collection
    holds the GIL: on a sink's thread it stalls the loop too), in ms, while installed."""

    def __init__(self) -> None:
        self.loop_ms = self.other_ms = 0.0
        self._t0: dict[int, float] = {}
        self._main = threading.get_ident()

    def __call__(self, phase: str, info: dict) -> None:
        me = threading.get_ident()
        if phase == "start":
            self._t0[me] = time.perf_counter()
            return
        ms = (time.perf_counter() - self._t0.pop(me, time.perf_counter())) * 1000
        if me == self._main:
            self.loop_ms = max(self.loop_ms, ms)
        else:
            self.other_ms = max(self.other_ms, ms)

    def __enter__(self) -> "_GcWatch":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


def _one(design: str, frames: list, rate: float, batch_rows: int, root: Path) -> dict[str, Any]:
    import numpy as np

    from kalshi_platform.storage.parquet_store import ParquetStore
    from kalshi_platform.stream.sinks import plant_outputs
    from kalshi_platform.ticker_plant.plant import TickerPlant

    store = ParquetStore(root, "bench", batch_rows=batch_rows, replace_existing=True,
                         fsync=True)
    if design == "inline":
        pubs: list[Any] = [store]
    else:
        settings = SimpleNamespace(parquet_flush_s=5.0, stream_queue_events=1_000_000,
                                   store_dir=root)
        pubs, _ = plant_outputs([store], settings)
    plant = TickerPlant(pubs)
    gc.collect()
    with _GcWatch() as gcw:
        calls, worst_late = _paced(plant, frames, rate)
    writes, write_s = store.files_written, store.write_seconds
    t = time.perf_counter()
    plant.close()
    close_s = time.perf_counter() - t
    c = np.array(calls, dtype=np.int64) / 1e6
    rows = {k: v for k, v in sorted(store.rows_written.items()) if v}
    return {"design": ("ParquetStore inline on the loop" if design == "inline" else
                       "ParquetStore on the stream's consumer thread"),
            "worst_call_ms": round(float(c.max()), 3),
            "p999_call_ms": round(float(np.percentile(c, 99.9)), 3),
            "p99_call_ms": round(float(np.percentile(c, 99)), 3),
            "worst_late_ms": round(worst_late / 1e6, 3), "writes_in_run": writes,
            "write_s_in_run": round(write_s, 3), "close_s": round(close_s, 3),
            "gc_worst_loop_ms": round(gcw.loop_ms, 2),
            "gc_worst_other_ms": round(gcw.other_ms, 2),
            "rows": sum(rows.values()), "rows_by_table": rows,
            "sink_failures": dict(plant.sink_failures)}


def run_loop_stall(frames: int, rate: float, batch_rows: int, workdir: Path,
                   source: Path | None = None) -> dict[str, Any]:
    """Both designs on the same frames (see the module docstring). Returns ``{"frames",
    "rate", "batch_rows", "inline": {...}, "stream": {...}, "ratio_call"/"ratio_late"
    (inline's worst / the stream's worst), "rows_equal"}``. Raises
    :class:`FileNotFoundError` without a source recording."""
    data = _frames(frames, workdir, source)
    out: dict[str, Any] = {"frames": len(data), "rate": rate, "batch_rows": batch_rows}
    gc.collect()
    gc.freeze()  # the frames held in memory are this harness's (a socket holds none of them)
    try:
        for design in ("inline", "stream"):
            out[design] = _one(design, data, rate, batch_rows, workdir / f"store-{design}")
    finally:
        gc.unfreeze()
    i, st = out["inline"], out["stream"]
    out["ratio_call"] = round(i["worst_call_ms"] / max(st["worst_call_ms"], 1e-3), 1)
    out["ratio_late"] = round(i["worst_late_ms"] / max(st["worst_late_ms"], 1e-3), 1)
    out["rows_equal"] = out["inline"]["rows_by_table"] == out["stream"]["rows_by_table"]
    return out
