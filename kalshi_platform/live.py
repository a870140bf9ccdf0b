"""The live run loop: WebSocket ingester → ticker plant → sinks, with a status line and a clean stop.

Used by ``kalshi-platform run`` and ``kalshi-platform record`` (which is a run with no sinks
and a recorder). Everything runs on one asyncio loop: the ingester's read loop does the plant
work inline (decode → book → BBO → publishers), a housekeeping task flushes the recorder every
second and prints the status line, and SIGINT/SIGTERM (or ``duration``) stop it. On the way
out the connection is closed (a final ``disconnect`` feed event), every sink is flushed and
closed (:meth:`TickerPlant.close`), and the recorder is flushed, fsynced and closed. A second
SIGINT while shutting down interrupts (default Python behaviour is restored after the first).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Any, Callable, Iterable

from kalshi_platform.ingestion.recorder import Recorder
from kalshi_platform.ingestion.ws_client import KalshiWSClient
from kalshi_platform.stream.sinks import stream_summary
from kalshi_platform.ticker_plant.order_book import LIVE, STALE, SYNCING
from kalshi_platform.ticker_plant.plant import TickerPlant

log = logging.getLogger(__name__)


def _sink_counters(sinks: Iterable[Any]) -> tuple[int | None, int | None]:
    """``(rows_written, spool_depth)`` summed over sinks that expose them (duck-typed:
    ``rows_written`` int or dict of ints, ``spool_depth`` int, directly or on ``.stats``);
    ``None`` when no sink has that counter."""
    rows: int | None = None
    spool: int | None = None
    for s in sinks:
        for holder in (s, getattr(s, "stats", None)):
            if holder is None:
                continue
            rw = getattr(holder, "rows_written", None)
            if isinstance(rw, dict):
                rows = (rows or 0) + sum(v for v in rw.values() if isinstance(v, int))
                break
            if isinstance(rw, int):
                rows = (rows or 0) + rw
                break
        for holder in (s, getattr(s, "stats", None)):
            sd = getattr(holder, "spool_depth", None) if holder is not None else None
            if callable(sd):
                sd = sd()
            if isinstance(sd, int):
                spool = (spool or 0) + sd
                break
    return rows, spool


def market_states(plant: TickerPlant) -> dict[str, int]:
    """Books by state: ``{"live": n, "stale": n, "syncing": n}``."""
    out = {LIVE: 0, STALE: 0, SYNCING: 0}
    for b in plant.books.values():
        out[b.state] = out.get(b.state, 0) + 1
    return out


def status_line(plant: TickerPlant, client: KalshiWSClient, sinks: Iterable[Any] = (),
                recorder: Recorder | None = None, *, elapsed_s: float = 0.0,
                rate: float | None = None) -> str:
    """One line: elapsed, connection up/down, frames and frames/s, markets live/stale/syncing,
    gaps, resyncs, reconnects, quarantined (if any), rows written by the sinks out of the rows
    the plant produced and spool depth (when a sink reports them), the health of every sink
    with a ``health()`` (the QuestDB writer: ``up`` / ``retrying`` / ``spooling``, rows
    written, spooled in all, pending in the spool and its bytes on disk, rows in memory,
    flush errors: storage/questdb_health.py), recorder state."""
    from kalshi_platform.storage.questdb_health import health_text

    st = plant.stats
    ms = market_states(plant)
    parts = [f"{elapsed_s:7.1f}s",
             f"{'up' if client.connected else 'DOWN'}",
             f"msgs {st.frames:,}" + (f" ({rate:,.0f}/s)" if rate is not None else ""),
             f"markets {len(plant.books)}: {ms[LIVE]} live {ms[STALE]} stale {ms[SYNCING]} syncing",
             f"gaps {st.gaps} resyncs {client.stats.resyncs} reconnects {client.stats.reconnects}"]
    if st.quarantined:
        parts.append(f"quarantined {st.quarantined}")
    sinks = list(sinks)
    healths = [(s, s.health) for s in sinks if callable(getattr(s, "health", None))]
    rows, _ = _sink_counters(sinks)
    _, spool = _sink_counters([s for s in sinks if not callable(getattr(s, "health", None))])
    if rows is not None:
        parts.append(f"rows written {rows:,} of {sum(st.table_rows().values()):,}")
    if spool is not None:
        parts.append(f"spool {spool:,}")
    for s, health in healths:
        parts.append(f"{getattr(s, 'sink_name', 'sink')} {health_text(health())}")
    if recorder is not None:
        parts.append("rec " + (recorder.failed or f"{recorder.frames:,} frames"))
    return " | ".join(parts)


class LiveRun:
    """Runs a :class:`KalshiWSClient` into its plant until stopped.

    Args:
        client: the ingester (its ``plant`` is the plant that owns the sinks).
        sinks: the plant's publishers (only read for the status line's counters).
        recorder: the recorder tap, flushed every second and closed at the end.
        status_interval: seconds between status lines (0 = none).
        status: where status lines go (default: ``logging`` at INFO).
        handle_signals: stop on SIGINT/SIGTERM (only possible in the main thread).
        banner: printed through ``status`` once the first connection is up (and a short
            notice on every reconnect), so a run that fails to start prints only its error.
        store_flush_s: with a recorder, every this many seconds the recording is flushed and
            then a flush marker goes down the plant's stream (the sinks flush at it), so the
            store never holds a row the recording on disk lacks.
    """

    def __init__(self, client: KalshiWSClient, *, sinks: Iterable[Any] = (),
                 recorder: Recorder | None = None, status_interval: float = 5.0,
                 status: Callable[[str], None] | None = None,
                 handle_signals: bool = True, banner: str | None = None,
                 store_flush_s: float | None = None) -> None:
        self.client = client
        self.plant = client.plant
        self.sinks = list(sinks)
        self.recorder = recorder
        self.status_interval = status_interval
        self.status = status or (lambda line: log.info("%s", line))
        self.handle_signals = handle_signals
        self.banner = banner
        self.store_flush_s = store_flush_s
        self.stop_event = asyncio.Event()
        self.stopped_by = ""
        self._t0 = 0.0
        self.max_stall_s = 0.0
        self.metrics: Any = None  # a kalshi_platform.metrics.MetricsServer once started
        self.metrics_collector: Any = None  # its PlantCollector
        self._metrics_undo: Callable[[], None] | None = None

    def start_metrics(self, port: int, host: str = "127.0.0.1") -> str:
        """Serve this run's Prometheus metrics at ``http://host:port/metrics`` (port 0 = any
        free port) until the run ends, and start timing every frame into
        ``kalshi_processing_latency_seconds``. Returns the URL; raises :class:`OSError` when
        the address cannot be bound."""
        from kalshi_platform.metrics import (LatencyHistogram, PlantCollector,
                                             instrument_latency, serve_metrics)

        hist = LatencyHistogram()
        collector = PlantCollector(self.plant, self.client, self.sinks, self.recorder, hist)
        self.metrics_collector = collector
        self.metrics = serve_metrics([collector], port, host)
        self._metrics_undo = instrument_latency(self.client, hist)
        return self.metrics.url

    def _stop_metrics(self) -> None:
        if self._metrics_undo is not None:
            self._metrics_undo()
            self._metrics_undo = None
        if self.metrics is not None:
            self.metrics.close()

    def stop(self, why: str = "stop requested") -> None:
        """Ask the run to end (flushing everything)."""
        if not self.stopped_by:
            self.stopped_by = why
        self.stop_event.set()

    async def run(self, duration: float | None = None) -> dict[str, Any]:
        """Run until :meth:`stop`, a signal, ``duration`` seconds, or the client returning
        (``exit_on_close``). Returns :meth:`summary`. Re-raises the client's
        :class:`~kalshi_platform.ingestion.ws_client.FeedError` after closing everything."""
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig, loop)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        self._t0 = time.monotonic()
        house = asyncio.create_task(self._housekeeping(), name="live-housekeeping")
        watch = asyncio.create_task(self._watch_stalls(), name="live-stall-watch")
        timer = None
        if duration is not None:
            timer = loop.call_later(duration, self.stop, f"duration {duration:g}s")
        try:
            await self.client.run(self.stop_event)
            if not self.stopped_by:
                self.stopped_by = "server closed"
        finally:
            if timer is not None:
                timer.cancel()
            house.cancel()
            watch.cancel()
            for sig in installed:
                try:
                    loop.remove_signal_handler(sig)
                except (RuntimeError, ValueError):
                    pass
            try:
                self._close()
            finally:
                self._stop_metrics()
        if self.status_interval:
            self.status(self._line())
        return self.summary()

    def _on_signal(self, sig: int, loop: asyncio.AbstractEventLoop) -> None:
        name = signal.Signals(sig).name
        log.warning("%s: stopping (flushing sinks and recorder)", name)
        self.stop(name)
        try:  # a second Ctrl-C interrupts a stuck shutdown
            loop.remove_signal_handler(sig)
        except (RuntimeError, ValueError):
            pass

    def _close(self) -> None:
        try:
            self.plant.close()
        finally:
            if self.recorder is not None:
                self.recorder.close()

    async def _watch_stalls(self, period: float = 0.002) -> None:
        """Measure how late the event loop wakes up: the worst is the longest time the read
        loop was blocked (``loop_max_stall_ms`` in the summary; the sinks run on their own
        threads, so it stays small however slow they are)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            stall = now - last - period
            if stall > self.max_stall_s:
                self.max_stall_s = stall
            last = now

    async def _housekeeping(self) -> None:
        next_status = time.monotonic() + self.status_interval if self.status_interval else None
        last_frames = self.plant.stats.frames
        last_t = time.monotonic()
        seen_connects = 0
        next_mark = time.monotonic() + (self.store_flush_s or 0)
        stream = getattr(self.plant, "stream", None)
        while True:
            await asyncio.sleep(min(0.25, self.status_interval or 0.25))
            if self.recorder is not None:
                self.recorder.maybe_flush()
                if (self.store_flush_s is not None and stream is not None
                        and time.monotonic() >= next_mark):
                    self.recorder.flush()  # the raw frames first, then the rows from them
                    stream.mark_flush()
                    next_mark = time.monotonic() + self.store_flush_s
            cs = self.client.stats
            if self.status_interval and cs.connects > seen_connects and self.client.connected:
                if seen_connects == 0 and self.banner:
                    self.status(self.banner)
                elif seen_connects:
                    self.status(f"reconnected (connection #{cs.connects})")
                seen_connects = cs.connects
            now = time.monotonic()
            if next_status is not None and now >= next_status:
                frames = self.plant.stats.frames
                rate = (frames - last_frames) / (now - last_t) if now > last_t else None
                last_frames, last_t = frames, now
                self.status(self._line(rate))
                next_status = now + self.status_interval

    def _line(self, rate: float | None = None) -> str:
        return status_line(self.plant, self.client, self.sinks, self.recorder,
                           elapsed_s=time.monotonic() - self._t0, rate=rate)

    def summary(self) -> dict[str, Any]:
        """What the run did: frames, messages by type, markets by state, gaps, resyncs,
        reconnects, quarantined, rows by table (plant) and written (sinks), recorder files,
        elapsed seconds, why it stopped, and ``sink_failures`` (sink name → one-line error
        for every sink the plant marked failed; ``{}`` when all held)."""
        st = self.plant.stats
        cs = self.client.stats
        rows, spool = _sink_counters(self.sinks)
        rec = self.recorder
        return {
            "stopped_by": self.stopped_by,
            "elapsed_s": round(time.monotonic() - self._t0, 3),
            "loop_max_stall_ms": round(self.max_stall_s * 1000, 3),
            "stream": stream_summary(self.plant),
            "frames": st.frames,
            "messages_by_type": st.messages_by_type(),
            "market_count": len(self.plant.books),
            "market_states": market_states(self.plant),
            "gaps": st.gaps,
            "quarantined": st.quarantined,
            "resyncs": cs.resyncs,
            "resync_fallbacks": cs.resync_fallbacks,
            "connects": cs.connects,
            "reconnects": cs.reconnects,
            "stale_timeouts": cs.stale_timeouts,
            "kalshi_errors": cs.errors,
            "rows_by_table": st.table_rows(),
            "rows_written": rows,
            "spool_depth": spool,
            "recording": None if rec is None else {
                "files": [str(p) for p in rec.files], "frames": rec.frames,
                "events": rec.events, "bytes": rec.bytes_written, "failed": rec.failed},
            "sink_failures": {str(k): str(v) for k, v in
                              dict(getattr(self.plant, "sink_failures", None) or {}).items()},
            "markets": self.plant.markets_summary(),
        }
