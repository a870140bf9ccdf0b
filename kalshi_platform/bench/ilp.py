"""Benchmark of the QuestDB ILP writer against the ``questdb`` client's raw ``Sender.row()``.

Both push the same table rows (from the plant replaying the bench recording) over ILP/HTTP to
a discarding loopback endpoint that runs in a separate process (so the endpoint does not take
the GIL from the measured side), in batches of the same size:

* **raw** — ``Sender.row(table, symbols=…, columns=…, at=…)`` with the argument dicts built
  beforehand (outside the timing), a ``flush()`` every ``batch_rows``: the client's own
  serialisation + HTTP rate, the floor for any writer built on it;
* **writer** — :class:`~kalshi_platform.storage.questdb_rdb.QuestDBWriter` fed the plant
  *events* (row mapping, bounded queue, sender thread, spool-ready batches) until ``close()``
  returns with every row acknowledged.

Also the replay pipeline with ``--sink questdb`` against ``--sink none`` in the same run: the
writer's overhead on the plant.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from kalshi_platform.bench.runner import _best
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.questdb_rdb import QuestDBWriter, add_ilp_row, ilp_conf
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
        self.rows += len(t.rows(ev))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_ilp_bench(rec: Path, *, repeat: int = 3, max_rows: int = 400_000,
                  batch_rows: int = 50_000) -> dict:
    """Measure raw ``Sender.row()`` vs :class:`QuestDBWriter` rows/s and the replay pipeline
    with and without the QuestDB sink, all into a discarding loopback ILP endpoint.

    Returns ``{"rows": n, "raw_s", "writer_s", "raw_rows_per_s", "writer_rows_per_s",
    "writer_vs_raw", "pipeline_none_s", "pipeline_questdb_s", "frames", "overhead_pct"}``.
    """
    col = _Collect(max_rows)
    plant = TickerPlant([col])
    feed(rec, plant)
    events = col.events
    rows = [(TABLE_FOR_EVENT[type(e)].name, r) for e in events for r in TABLE_FOR_EVENT[type(e)].rows(e)]
    n = len(rows)
    with DiscardEndpoint() as ep, tempfile.TemporaryDirectory(prefix="kalshi-ilp-") as tmp:
        conf = ilp_conf(ep.conf)

        calls: list[tuple] = []

        class _Args:  # captures the exact Sender.row() arguments, built outside the timing
            def row(self, table, symbols, columns, at):
                calls.append((table, symbols, columns, at))

        for table, values in rows:
            add_ilp_row(_Args(), table, values)

        def raw() -> None:
            with Sender.from_conf(conf) as s:
                row, flush = s.row, s.flush
                for i, (table, symbols, columns, at) in enumerate(calls, 1):
                    row(table, symbols=symbols, columns=columns, at=at)
                    if i % batch_rows == 0:
                        flush()
                flush()

        def writer() -> None:
            w = QuestDBWriter(ep.conf, spool_dir=Path(tmp) / "spool", batch_rows=batch_rows,
                              queue_rows=max(batch_rows, n + 1), spool_fsync="none")
            for e in events:
                w.publish(e)
            w.close()
            assert w.stats.rows_written == n and w.stats.spool_depth == 0, w.stats.as_dict()

        raw_s = _best(raw, repeat)
        writer_s = _best(writer, repeat)

        frames = [0]

        def pipe_none() -> None:
            p = TickerPlant([])
            feed(rec, p)
            frames[0] = p.stats.frames

        def pipe_qdb() -> None:
            w = QuestDBWriter(ep.conf, spool_dir=Path(tmp) / "spool2", batch_rows=batch_rows,
                              queue_rows=10 * batch_rows, spool_fsync="none")
            p = TickerPlant([w])
            feed(rec, p)
            p.close()
            assert w.stats.spool_depth == 0

        none_s = _best(pipe_none, repeat)
        qdb_s = _best(pipe_qdb, repeat)
    return {"rows": n, "raw_s": raw_s, "writer_s": writer_s,
            "raw_rows_per_s": round(n / raw_s), "writer_rows_per_s": round(n / writer_s),
            "writer_vs_raw": round(raw_s / writer_s, 3),
            "frames": frames[0], "pipeline_none_s": none_s, "pipeline_questdb_s": qdb_s,
            "pipeline_none_msg_per_s": round(frames[0] / none_s),
            "pipeline_questdb_msg_per_s": round(frames[0] / qdb_s),
            "overhead_pct": round(100 * (qdb_s - none_s) / none_s, 1)}
