"""Benchmark of the QuestDB ILP writer against the ``questdb`` client's raw ``Sender.row()``.

Both push the same table rows (from the plant replaying the bench recording) over ILP/HTTP to
a discarding loopback endpoint that runs in a separate process (so the endpoint does not take
the GIL from the measured side), in batches of the same size:

* **raw** — ``Sender.row(table, symbols=…, columns=…, at=…)`` with the argument dicts built
  beforehand (one request's worth at a time, outside the timing), a ``flush()`` every
  ``batch_rows``: the client's own row-by-row serialisation + HTTP rate;
* **writer** — :class:`~kalshi_platform.storage.questdb_rdb.QuestDBWriter` fed the plant
  *events* in the event stream's batches (``publish_many``, as the ``replay``/``run`` sink
  consumer feeds it; columnar batches, bounded queue, sender thread, spool-ready) until
  ``close()`` returns with every row acknowledged.

Also the ``replay`` command's pipeline (:func:`kalshi_platform.tools.replay.run_replay`: the
event stream, the sink's consumer thread, the command's GC settings) with ``--sink questdb``
against ``--sink none`` in the same run: the writer's overhead on the plant.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.ilp_rows import add_ilp_row
from kalshi_platform.storage.questdb_rdb import DEFAULT_BATCH_ROWS, QuestDBWriter, ilp_conf
from kalshi_platform.stream.sinks import SINK_WAKE_EVENTS as STREAM_BATCH
from kalshi_platform.storage.schema import TABLE_FOR_EVENT
from kalshi_platform.ticker_plant.plant import TickerPlant

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import Sender


class DiscardEndpoint:
    """``python -m kalshi_platform.bench.ilp_endpoint --discard`` in a subprocess."""

    def __enter__(self) -> "DiscardEndpoint":
        self.proc = subprocess.Popen([sys.executable, "-m", "kalshi_platform.bench.ilp_endpoint",
                                      "--discard"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"ILP endpoint did not start: {line!r}")
        self.conf = f"http::addr=127.0.0.1:{int(line.split()[1])};"
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()
        finally:
            self.proc.stdout.close()  # type: ignore[union-attr]


class _Collect:
    def __init__(self, limit: int) -> None:
        self.events: list = []
        self.rows = 0
        self.limit = limit

    def publish(self, ev: Any) -> None:
        t = TABLE_FOR_EVENT.get(type(ev))
        if t is None or self.rows >= self.limit:
            return
        self.events.append(ev)
        self.rows += 1 if t.rows_per_event is None else t.rows_per_event(ev)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _chunks(events: list, rows: int) -> list[list]:
    """``events`` cut into runs of about ``rows`` table rows each (one ILP request each)."""
    out, cur, n = [], [], 0
    for e in events:
        t = TABLE_FOR_EVENT[type(e)]
        cur.append(e)
        n += 1 if t.rows_per_event is None else t.rows_per_event(e)
        if n >= rows:
            out.append(cur)
            cur, n = [], 0
    if cur:
        out.append(cur)
    return out


def _row_args(events: list) -> list[tuple]:
    """The exact ``Sender.row()`` arguments of ``events``' rows (built outside the timing)."""
    calls: list[tuple] = []

    class _Args:
        def row(self, table, symbols, columns, at):
            calls.append((table, symbols, columns, at))

    a = _Args()
    for e in events:
        t = TABLE_FOR_EVENT[type(e)]
        for r in t.rows(e):
            add_ilp_row(a, t.name, r)
    return calls


def _best_of(fn: Callable[[], float], repeat: int, label: str,
             progress: Callable[[str], None] | None) -> float:
    best = float("inf")
    for i in range(repeat):
        if progress:
            progress(f"{label} ({i + 1}/{repeat})" if repeat > 1 else label)
        gc.collect()
        best = min(best, fn())
    return best


def _time_raw(conf: str, chunks: list) -> float:
    """Seconds the raw client takes for ``chunks`` (one ILP request each): ``row()`` calls
    and flushes timed, building their arguments not."""
    timed = 0.0
    t0 = time.perf_counter()
    with Sender.from_conf(conf) as s:
        row, flush = s.row, s.flush
        timed += time.perf_counter() - t0
        for chunk in chunks:
            calls = _row_args(chunk)  # not timed
            t0 = time.perf_counter()
            for table, symbols, columns, at in calls:
                row(table, symbols=symbols, columns=columns, at=at)
            flush()
            timed += time.perf_counter() - t0
            del calls
        t0 = time.perf_counter()
    return timed + time.perf_counter() - t0


def _time_writer(conf: str, events: list, rows: int, spool_dir: Path, batch_rows: int) -> float:
    """Seconds a :class:`QuestDBWriter` takes from construction to ``close()`` for
    ``events``, fed as the stream's storage consumer feeds it (``publish_many`` of
    :data:`STREAM_BATCH` events); checks that all ``rows`` were written."""
    t0 = time.perf_counter()
    w = QuestDBWriter(conf, spool_dir=spool_dir, batch_rows=batch_rows,
                      queue_rows=max(batch_rows, rows + 1), spool_fsync="none")
    for i in range(0, len(events), STREAM_BATCH):
        w.publish_many(events[i:i + STREAM_BATCH])
    w.close()
    took = time.perf_counter() - t0
    assert w.stats.rows_written == rows and w.stats.spool_depth == 0, w.stats.as_dict()
    return took


def _time_replay(rec: Path, conf: str, tmp: Path, sinks: list[str], run: int) -> tuple[float, int]:
    """``(seconds, frames)`` of the ``replay`` command's own path (event stream, sink threads,
    its GC settings) with ``sinks``: what ``--sink none`` / ``--sink questdb`` cost."""
    from kalshi_platform.config import Settings
    from kalshi_platform.tools.replay import run_replay

    settings = Settings(questdb_ilp_conf=conf, questdb_auto_init=False,
                        questdb_spool_dir=tmp / f"spool-{run}", store_dir=tmp / "store")
    t0 = time.perf_counter()
    s = run_replay(rec, store=tmp / "store", sinks=sinks, settings=settings)
    took = time.perf_counter() - t0
    q = s.get("questdb")
    assert q is None or (q["spool_depth"] == 0 and
                         q["rows_written"] == sum(s["rows_by_table"].values())), q
    return took, s["frames"]


def run_ilp_bench(rec: Path, *, repeat: int = 3, max_rows: int = 400_000,
                  batch_rows: int = DEFAULT_BATCH_ROWS,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Measure raw ``Sender.row()`` vs :class:`QuestDBWriter` rows/s and the replay pipeline
    with and without the QuestDB sink, all into a discarding loopback ILP endpoint, in ILP
    requests of ``batch_rows`` rows (default: the client's documented ``auto_flush_rows``).

    Streams: only the plant events are held (about 90 MB for 400k rows); the raw client's
    ``row()`` arguments are built one request at a time, outside its timing.

    Returns ``{"rows": n, "raw_s", "writer_s", "raw_rows_per_s", "writer_rows_per_s",
    "writer_vs_raw", "pipeline_none_s", "pipeline_questdb_s", "frames", "overhead_pct",
    "batch_rows"}``.
    """
    col = _Collect(max_rows)
    plant = TickerPlant([col])
    feed(rec, plant)
    events = col.events
    n = col.rows
    chunks = _chunks(events, batch_rows)
    frames = [0]
    runs = iter(range(1_000_000))
    with DiscardEndpoint() as ep, tempfile.TemporaryDirectory(prefix="kalshi-ilp-") as tmp:
        conf = ilp_conf(ep.conf)
        raw_s = _best_of(lambda: _time_raw(conf, chunks), repeat,
                         "QuestDB ILP: raw Sender.row()", progress)
        writer_s = _best_of(lambda: _time_writer(ep.conf, events, n, Path(tmp) / "spool",
                                                 batch_rows),
                            repeat, "QuestDB ILP: writer", progress)
        del chunks

        def replay(sinks: list[str]) -> float:
            took, frames[0] = _time_replay(rec, ep.conf, Path(tmp), sinks, next(runs))
            return took

        none_s = _best_of(lambda: replay([]), repeat, "QuestDB ILP: pipeline --sink none",
                          progress)
        qdb_s = _best_of(lambda: replay(["questdb"]), repeat,
                         "QuestDB ILP: pipeline --sink questdb", progress)
    return {"rows": n, "batch_rows": batch_rows, "raw_s": raw_s, "writer_s": writer_s,
            "raw_rows_per_s": round(n / raw_s), "writer_rows_per_s": round(n / writer_s),
            "writer_vs_raw": round(raw_s / writer_s, 3),
            "frames": frames[0], "pipeline_none_s": none_s, "pipeline_questdb_s": qdb_s,
            "pipeline_none_msg_per_s": round(frames[0] / none_s),
            "pipeline_questdb_msg_per_s": round(frames[0] / qdb_s),
            "overhead_pct": round(100 * (qdb_s - none_s) / none_s, 1)}
