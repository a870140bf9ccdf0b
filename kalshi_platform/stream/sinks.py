"""Storage sinks as consumers of the plant's event stream (each on its own thread).

:class:`SinkConsumer` adapts any :class:`~kalshi_platform.ticker_plant.publishers.Publisher`
(the Parquet store, the QuestDB writer) to a stream consumer: it publishes each event in
order, flushes by age (``flush_s``: the Parquet store's ``KALSHI_PARQUET_FLUSH_S``) and closes
the sink at the end of the stream. :func:`attach_sinks` wires a list of sinks to a stream with
``overflow="spill"``: a sink that falls behind queues up to a bound in memory, then on disk,
and never loses an event.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from kalshi_platform.stream.bus import ConsumerRunner, EventStream
from kalshi_platform.ticker_plant.blocks import EventBlock

#: a storage sink's thread is woken once this many events are queued (else every
#: ``bus.IDLE_S``): a replay hands it ~100 chunks' worth at a time, not one chunk (at most
#: half the queue bound, so a small bound wakes it before anything spills)
SINK_WAKE_EVENTS = 16_384


class SinkConsumer:
    """Feeds a Publisher from the stream (see the module docstring).

    Args:
        sink: the publisher (``publish``/``flush``/``close``; a ``publish_many(events)``, if
            it has one, takes each batch in one call, in order, as ``publish`` would; a
            ``publish_block(block)``, if it has one, takes the batches' event blocks as they
            are, in order between the events: ``takes_blocks``, see
            :mod:`kalshi_platform.stream.bus`).
        flush_s: call ``sink.flush()`` once this many seconds passed since the last flush
            (``None``: only at stream flush markers and at the end; the sink batches by
            itself).

    Raises whatever the sink raises (the runner marks the consumer failed).
    """

    def __init__(self, sink: Any, flush_s: float | None = None) -> None:
        self.sink = sink
        self.flush_s = flush_s
        self._many = getattr(sink, "publish_many", None)
        self._block = getattr(sink, "publish_block", None)
        #: the stream hands this consumer event blocks as they are (else their events)
        self.takes_blocks = self._block is not None
        self._last_flush = time.monotonic()

    def on_flush(self) -> None:
        """A flush marker of the stream (:meth:`EventStream.mark_flush`): flush now."""
        self.sink.flush()
        self._last_flush = time.monotonic()

    def on_batch(self, start_seq: int, events: Sequence[Any]) -> None:
        if self._block is None:
            self._publish(events)
        else:  # runs of events between the blocks, in order
            run = 0
            for i, ev in enumerate(events):
                if type(ev) is EventBlock:
                    if run < i:
                        self._publish(events[run:i])
                    self._block(ev)
                    run = i + 1
            if run < len(events):
                self._publish(events[run:] if run else events)
        self._maybe_flush()

    def _publish(self, events: Sequence[Any]) -> None:
        if self._many is not None:
            self._many(events)
        else:
            pub = self.sink.publish
            for ev in events:
                pub(ev)

    def on_gap(self, first_seq: int, count: int) -> None:  # pragma: no cover - spill never gaps
        raise RuntimeError(f"storage sink lost {count} events from seq {first_seq}")

    def on_idle(self) -> None:
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self.flush_s is None:
            return
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.sink.flush()
            # measured from the end of the flush: a slow flush never makes every batch flush
            self._last_flush = time.monotonic()

    def close(self) -> None:
        self.sink.close()


def attach_sinks(stream: EventStream, sinks: Iterable[Any], *, flush_s: dict[str, float] | None
                 = None, max_events: int = 1_000_000,
                 spill_dir: Path | None = None) -> list[ConsumerRunner]:
    """Attach each sink to ``stream`` as a spilling consumer named by its ``sink_name``.

    ``flush_s``: per sink name, the age flush interval (e.g. ``{"parquet": 5.0}``).
    ``spill_dir``: where overflow spools go (default: a temporary directory per consumer).
    Returns the runners (their ``lag``/``spilled`` counters feed the status line)."""
    out = []
    for s in sinks:
        name = getattr(s, "sink_name", None) or type(s).__name__
        out.append(stream.attach(SinkConsumer(s, (flush_s or {}).get(name)), name,
                                 max_events=max_events, overflow="spill",
                                 spill_dir=spill_dir,
                                 wake_events=min(SINK_WAKE_EVENTS, max(1, max_events // 2))))
    return out


def plant_outputs(sinks: list[Any], settings: Any, *, extra: Sequence[Any] = (),
                  publish: Sequence[str] = (), run_id: str | None = None,
                  flush_by_marker: bool = False) -> tuple[list[Any], list[Any]]:
    """The publishers a plant gets, and the started subscriber transports.

    One :class:`EventStream` feeds ``sinks`` on their own threads (Parquet flushed every
    ``settings.parquet_flush_s``; queues bounded by ``settings.stream_queue_events``, then
    spilled under the store) and the ``publish`` URLs' transports
    (:mod:`kalshi_platform.feed.transports`); ``extra`` publishers follow it, called inline
    (in-process subscribers, tests). ``flush_by_marker``: the Parquet store flushes only at
    the stream's flush markers (the live run with ``--record`` marks after each recording
    flush) instead of by its own clock. With no sinks and no URLs the stream is left out, so the
    plant does not even build events (``--sink none``). Raises
    :class:`~kalshi_platform.feed.transports.TransportError` when a transport cannot start."""
    if not sinks and not publish:
        return list(extra), []
    stream = EventStream(run_id)
    attach_sinks(stream, sinks, flush_s={} if flush_by_marker else
                 {"parquet": settings.parquet_flush_s},
                 max_events=settings.stream_queue_events,
                 spill_dir=Path(settings.store_dir) / "_stream_spill")
    started: list[Any] = []
    if publish:
        from kalshi_platform.feed.transports import attach_all

        try:
            started = attach_all(stream, list(publish), settings)
        except BaseException:
            stream.close()
            raise
    return [stream, *extra], started


def stream_summary(plant: Any) -> dict[str, Any] | None:
    """The plant's event stream for a summary: run id, last seq, and per consumer its
    delivered events, lag, worst lag, spilled and dropped events and failure (``None``
    without a stream)."""
    s = getattr(plant, "stream", None)
    if s is None:
        return None
    return {"run_id": s.run_id, "seq": s.seq, "consumers": {
        r.name: {"delivered": r.delivered, "lag": r.lag, "max_lag": r.max_lag,
                 "spilled": r.spilled, "dropped": r.dropped, "failed": r.failed}
        for r in s.runners}}
