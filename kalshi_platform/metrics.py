"""Prometheus metrics of the live commands (``run``, ``record``, ``sim``): ``/metrics`` over HTTP.

Everything but one metric is read at scrape time from counters the pipeline keeps anyway
(:class:`~kalshi_platform.ticker_plant.stats.PlantStats`, the WebSocket client's
``ClientStats``, the QuestDB writer's ``WriterStats``, the event stream's consumer runners,
the recorder): a custom :class:`PlantCollector` turns them into metric families when
Prometheus asks, so the hot path pays nothing for them. The exception is
``kalshi_processing_latency_seconds`` (frame receipt → the frame's events handed to the
stream), which needs one observation per frame: :class:`LatencyHistogram` is a plain list of
bucket counts bumped by :func:`instrument_latency` (one ``time.time_ns()``, one ``bisect`` and
two integer adds per frame, ~0.2 µs; no lock, no prometheus-client object on the hot path).

No metric carries a ticker label (thousands of markets would mean thousands of series);
labels are bounded sets: message type, book state, table, stream consumer name. Names follow
the Prometheus rules: base units (seconds, bytes), ``_total`` on counters.

:func:`serve_metrics` starts ``prometheus_client``'s HTTP server on its own thread (loopback
by default) with a private registry holding only our collectors.
"""

from __future__ import annotations

import bisect
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

#: ``kalshi_processing_latency_seconds`` bucket bounds: 1 µs … 100 ms (1-2.5-5 steps).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1)


class LatencyHistogram:
    """A lock-free histogram in integer nanoseconds, bumped on the plant's thread and read by
    the scrape thread (a scrape may see one frame's count without its sum: harmless).

    Attributes: ``counts`` (per bucket, the last one is +Inf, not cumulative), ``sum_ns``.
    """

    __slots__ = ("bounds_ns", "counts", "sum_ns")

    def __init__(self, buckets_s: Iterable[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds_ns = [round(b * 1e9) for b in buckets_s]
        self.counts = [0] * (len(self.bounds_ns) + 1)
        self.sum_ns = 0

    def observe_ns(self, ns: int) -> None:
        """Count one observation of ``ns`` nanoseconds (``le`` semantics: a value equal to a
        bound goes in that bound's bucket)."""
        self.counts[bisect.bisect_left(self.bounds_ns, ns)] += 1
        self.sum_ns += ns

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        """The histogram as a Prometheus metric family (cumulative buckets, seconds)."""
        counts = list(self.counts)
        buckets, acc = [], 0
        for bound, c in zip(self.bounds_ns, counts):
            acc += c
            buckets.append((repr(bound / 1e9), acc))
        acc += counts[-1]
        buckets.append(("+Inf", acc))
        return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=self.sum_ns / 1e9)


def instrument_latency(client: Any, hist: LatencyHistogram) -> Callable[[], None]:
    """Observe every frame's processing latency into ``hist``: from the client's receipt of
    the frame to its events handed to the plant's stream, through the client's public
    :meth:`~kalshi_platform.ingestion.ws_client.KalshiWSClient.set_frame_observer`.
    Returns a function that stops it."""
    client.set_frame_observer(hist.observe_ns)
    return lambda: client.set_frame_observer(None)


def _dir_bytes(path: Path | None) -> int:
    """Bytes of the files directly under ``path`` (0 when it is missing)."""
    if path is None:
        return 0
    total = 0
    try:
        for p in Path(path).iterdir():
            try:
                if p.is_file():
                    total += p.stat().st_size
            except OSError:
                pass
    except OSError:
        return 0
    return total


def _questdb_writers(sinks: Iterable[Any]) -> list[Any]:
    """The sinks that are QuestDB writers (duck-typed on their ``WriterStats``)."""
    return [s for s in sinks
            if hasattr(getattr(s, "stats", None), "flush_latency_ms_total")]


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class PlantCollector(Collector):
    """The live run's metrics, read from its counters at scrape time.

    Args:
        plant: the :class:`~kalshi_platform.ticker_plant.plant.TickerPlant`.
        client: its :class:`~kalshi_platform.ingestion.ws_client.KalshiWSClient`.
        sinks: the plant's storage publishers (QuestDB writers among them are found by duck
            typing).
        recorder: the raw-frame recorder, if any.
        latency: the processing-latency histogram (see :func:`instrument_latency`).
    """

    def __init__(self, plant: Any, client: Any, sinks: Iterable[Any] = (),
                 recorder: Any = None, latency: LatencyHistogram | None = None) -> None:
        self.plant = plant
        self.client = client
        self.sinks = list(sinks)
        self.recorder = recorder
        self.latency = latency or LatencyHistogram()
        self.started_ns = time.time_ns()
        self._qdb_seen: dict[int, tuple[int, int, int]] = {}  # id → (flushes, errors, up)

    def collect(self) -> Iterator[Any]:
        """Every metric family, freshly read."""
        yield from self._plant_families()
        yield from self._client_families()
        yield from self._stream_families()
        yield from self._questdb_families()
        yield from self._recorder_families()

    def _plant_families(self) -> Iterator[Any]:
        st = self.plant.stats
        by_type = st.messages_by_type()
        yield _counter("kalshi_frames", "Frames handed to the ticker plant.", st.frames)
        yield _counter("kalshi_trades_processed", "Trade messages processed.",
                       by_type.get("trade", 0))
        yield _counter("kalshi_bbo_updates", "BBO rows emitted (top-of-book or validity "
                       "changes).", st.bbo)
        yield _counter("kalshi_sequence_gaps", "Sequence gaps detected.", st.gaps)
        yield _counter("kalshi_duplicates", "Frames dropped as duplicates (seq at or below the "
                       "watermark).", st.duplicates)
        yield _counter("kalshi_quarantined_frames", "Malformed or out-of-range frames "
                       "quarantined.", st.quarantined)
        yield _counter("kalshi_sink_failures", "Sinks marked failed.", st.sink_failures)
        yield _gauge("kalshi_sinks_failed", "Sinks currently failed.",
                     len(self.plant.sink_failures))
        msgs = CounterMetricFamily("kalshi_messages", "Accepted messages by wire type.",
                                   labels=["type"])
        for t, n in by_type.items():
            msgs.add_metric([t], n)
        yield msgs
        states = {"live": 0, "stale": 0, "syncing": 0}
        for b in list(self.plant.books.values()):
            states[b.state] = states.get(b.state, 0) + 1
        books = GaugeMetricFamily("kalshi_books", "Order books by state.", labels=["state"])
        for s, n in states.items():
            books.add_metric([s], n)
        yield books
        yield self.latency.family("kalshi_processing_latency_seconds",
                                  "Frame receipt to the frame's events emitted.")

    def _client_families(self) -> Iterator[Any]:
        cs = self.client.stats
        last = cs.last_frame_ns or self.started_ns
        yield _counter("kalshi_received_bytes", "WebSocket bytes received.", cs.bytes)
        yield _counter("kalshi_resyncs", "get_snapshot resyncs requested.", cs.resyncs)
        yield _counter("kalshi_reconnects", "WebSocket reconnects.", cs.reconnects)
        yield _counter("kalshi_stale_timeouts", "Reconnects forced by the stale-feed "
                       "watchdog.", cs.stale_timeouts)
        yield _counter("kalshi_errors", "Kalshi error replies.", cs.errors)
        yield _gauge("kalshi_ws_connected", "1 while the WebSocket is connected.",
                     1 if self.client.connected else 0)
        yield _gauge("kalshi_markets_subscribed", "Markets the run subscribes.",
                     len(self.client.tickers))
        yield _gauge("kalshi_last_frame_age_seconds", "Seconds since the last frame (since "
                     "the start before the first).", max(0.0, (time.time_ns() - last) / 1e9))

    def _stream_families(self) -> Iterator[Any]:
        stream = getattr(self.plant, "stream", None)
        runners = list(getattr(stream, "runners", ()) or ())
        lag = GaugeMetricFamily("kalshi_stream_lag_events", "Events queued for a stream "
                                "consumer (memory and spill).", labels=["consumer"])
        dropped = CounterMetricFamily("kalshi_stream_dropped_events", "Events a subscriber "
                                      "transport was too slow for.", labels=["consumer"])
        spool_rows = spool_bytes = 0
        for r in runners:
            lag.add_metric([r.name], r.lag)
            dropped.add_metric([r.name], r.dropped)
            sp = getattr(r, "_spool", None)
            if sp is not None:
                spool_rows += len(sp)
                spool_bytes += _dir_bytes(sp.dir)
        for w in _questdb_writers(self.sinks):
            spool_rows += w.stats.spool_depth
            spool_bytes += _dir_bytes(getattr(getattr(w, "spool", None), "dir", None))
        yield lag
        yield dropped
        yield _gauge("kalshi_spool_rows", "Rows (events) spooled to disk and not yet "
                     "delivered: QuestDB spool plus stream spills.", spool_rows)
        yield _gauge("kalshi_spool_bytes", "Bytes of the on-disk spools.", spool_bytes)

    def _questdb_up(self, w: Any) -> int:
        """1 unless the writer's sends since the previous scrape all failed (a scrape with
        no send attempt keeps the previous answer)."""
        st = w.stats
        flushes, errors, up = self._qdb_seen.get(id(w), (0, 0, 1))
        if st.flushes > flushes:
            up = 1
        elif st.flush_errors > errors:
            up = 0
        self._qdb_seen[id(w)] = (st.flushes, st.flush_errors, up)
        return up

    def _questdb_families(self) -> Iterator[Any]:
        writers = _questdb_writers(self.sinks)
        if not writers:
            return
        flushes = errors = uncommitted = 0
        total_ms = 0.0
        rows: dict[str, int] = {}
        up = 1
        for w in writers:
            st = w.stats
            flushes += st.flushes
            errors += st.flush_errors
            total_ms += st.flush_latency_ms_total
            uncommitted += max(0, st.rows_published - st.rows_written - st.rows_quarantined)
            for t, n in dict(st.rows_by_table).items():
                rows[t] = rows.get(t, 0) + n
            up = min(up, self._questdb_up(w))
        yield SummaryMetricFamily("questdb_write_latency_seconds", "QuestDB ILP send latency "
                                  "of successful sends.", count_value=flushes,
                                  sum_value=total_ms / 1000)
        yield _counter("questdb_write_errors", "Failed QuestDB sends (each retried).", errors)
        yield _gauge("questdb_uncommitted_rows", "Rows handed to the writer and not yet "
                     "acknowledged by QuestDB (memory, in flight and spool).", uncommitted)
        yield _gauge("questdb_up", "1 while QuestDB accepts writes (0 once every send since "
                     "the previous scrape failed).", up)
        rc = GaugeMetricFamily("questdb_row_count", "Rows this run wrote to each QuestDB "
                               "table.", labels=["table"])
        for t, n in sorted(rows.items()):
            rc.add_metric([t], n)
        yield rc

    def _recorder_families(self) -> Iterator[Any]:
        rec = self.recorder
        if rec is None:
            return
        yield _counter("kalshi_recorder_frames", "Raw frames recorded.", rec.frames)
        yield _counter("kalshi_recorder_bytes", "Bytes recorded.", rec.bytes_written)
        yield _gauge("kalshi_recorder_failed", "1 once the recorder failed.",
                     1 if rec.failed else 0)


class SimCollector(Collector):
    """The local sim's counters (``SimServer.stats``) as ``kalshi_sim_*`` counters."""

    _FIELDS = ("frames_played", "frames_sent", "frames_dropped", "connections",
               "disconnects_injected", "handshakes_rejected", "commands", "rest_requests")

    def __init__(self, server: Any) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        """One counter per sim counter."""
        st = self.server.stats
        for f in self._FIELDS:
            yield _counter(f"kalshi_sim_{f}", f"Sim counter {f}.", getattr(st, f))


class MetricsServer:
    """A running ``/metrics`` endpoint (see :func:`serve_metrics`). ``port`` is the bound port;
    :meth:`close` stops it."""

    def __init__(self, server: Any, thread: Any, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and join the server thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(collectors: Iterable[Collector], port: int,
                  host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``collectors`` (a private registry: no process/platform defaults) at
    ``http://host:port/metrics`` on a daemon thread. ``port`` 0 picks a free port. Raises
    :class:`OSError` when the address cannot be bound."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    for c in collectors:
        registry.register(c)
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread, host)
