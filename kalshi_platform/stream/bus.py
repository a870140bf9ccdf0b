"""The plant's one sequenced event stream, and consumers that read it on their own threads.

The plant emits every event into an :class:`EventStream` (a publisher of its fan-out). The
stream stamps each event with a **stream seq**, contiguous from 1 per plant run and named by
a ``run_id``: the i-th event of a committed batch starting at ``start`` has seq ``start + i``.
``commit()`` (end of a frame live, end of a chunk in a replay) hands the pending batch to
every attached consumer's queue: a ``deque.append`` and a wake-up (a storage sink's only every
16k events, see :class:`ConsumerRunner`), never disk or network, so
the read loop never waits on a sink (kdb+tick's tickerplant → RDB split; docs/fanout-and-scale.md).

Each consumer runs on its own thread (:class:`ConsumerRunner`) and sees every batch in order.
When it falls behind by more than ``max_events``:

* ``overflow="spill"`` (storage sinks: never lose an event): a spiller thread moves the
  oldest queued batches into an on-disk spool (:class:`~kalshi_platform.storage.spool.Spool`,
  encoded with :mod:`kalshi_platform.stream.codec`); the consumer reads the spool before the
  newer in-memory batches, so order holds;
* ``overflow="drop"`` (subscriber transports: never block the plant or the others): the
  oldest queued batches are dropped and the consumer is told with ``on_gap(first, count)``;
  its subscribers see the missing seqs and fetch a snapshot.

A batch may hold **event blocks** (:mod:`kalshi_platform.ticker_plant.blocks`: a replay's
deltas and BBO rows in columnar form, ``len(block)`` events and seqs each). A consumer whose
``takes_blocks`` attribute is true (a storage sink) gets them as they are; every other
consumer, and the spool, gets the events themselves, materialized on the consumer's thread.

A consumer that raises is marked failed: its name and one-line error are collected
(:meth:`EventStream.take_failures`, read by the plant on its own thread, which then emits a
``feed_events`` row), and it gets nothing more. Everything else goes on.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence

from kalshi_platform.logfmt import error_line
from kalshi_platform.stream import codec
from kalshi_platform.ticker_plant.blocks import materialize

log = logging.getLogger(__name__)

#: a consumer with nothing to do is called ``on_idle`` this often (age-based flushes); a
#: consumer woken only by size (``wake_events > 1``) also takes what is queued this often
IDLE_S = 0.05


def new_run_id() -> str:
    """A fresh run id: UTC start time plus 8 random hex digits (``20261201T084512Z-1f2e3d4c``)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


class StreamConsumer(Protocol):
    """What a :class:`ConsumerRunner` drives, on its own thread, in stream order."""

    def on_batch(self, start_seq: int, events: Sequence[Any]) -> None:
        """Events ``start_seq``, ``start_seq + 1``, … (plant events, see ticker_plant.events;
        with ``takes_blocks``, event blocks among them, each standing for its events)."""

    def on_gap(self, first_seq: int, count: int) -> None:
        """``count`` events from ``first_seq`` were dropped (``overflow="drop"`` only)."""

    def on_idle(self) -> None:
        """Nothing arrived for :data:`IDLE_S` seconds (a chance to flush by age)."""

    # optional: ``on_flush()``, called at each :meth:`EventStream.mark_flush` marker, in
    # stream order (every event before the marker has been delivered)

    def close(self) -> None:
        """The stream ended; every batch has been delivered."""


class ConsumerRunner:
    """One consumer's queue and thread. Created by :meth:`EventStream.attach`.

    ``wake_events``: a commit wakes the consumer's thread once this many events are queued
    (1: every commit, for live subscribers). A storage sink takes more (``attach_sinks``): its
    thread then runs every :data:`IDLE_S` or every ``wake_events`` events, not after every
    256 KiB chunk of a replay. Each wake-up makes the plant's thread hand over the GIL and wait
    to get it back, which cost a replay more than the sink's own work (measured).

    Counters (read from any thread): ``delivered`` events, ``lag`` events queued (memory and
    spool), ``max_lag``, ``spilled`` events ever written to the spool, ``dropped`` events,
    ``failed`` (the one-line error or ``None``).
    """

    def __init__(self, stream: "EventStream", consumer: StreamConsumer, name: str, *,
                 max_events: int, overflow: Literal["spill", "drop"],
                 spill_dir: Path | None = None, wake_events: int = 1) -> None:
        if overflow not in ("spill", "drop"):
            raise ValueError(f"overflow must be spill or drop, not {overflow!r}")
        self.name = name
        self.consumer = consumer
        self.max_events = max_events
        self.wake_events = max(1, wake_events)
        self.overflow = overflow
        self._stream = stream
        #: (start_seq, items, events, blocks) batches, oldest left: ``items`` the events (and
        #: event blocks when ``blocks``; None for a flush marker), ``events`` their count
        self._mem: deque = deque()
        self._takes_blocks = bool(getattr(consumer, "takes_blocks", False))
        self._offered = 0  # events offered (plant thread only)
        self._dropped = 0  # events dropped (plant thread only)
        self._taken = 0  # events taken off the memory queue (under _lock)
        self._lock = threading.Lock()  # consumer / spiller decisions
        self._wake = threading.Event()
        self._spill_wake = threading.Event()  # the queue went over its bound, or closing
        self._closing = False
        self._spool = None
        self._spill_dir = spill_dir
        self.delivered = 0
        self.spilled = 0
        self.max_lag = 0
        self.failed: str | None = None
        self._next_seq = stream.seq + 1  # batches dropped before the first delivery count too
        self._thread = threading.Thread(target=self._run, name=f"consumer-{name}", daemon=True)
        self._spiller = None
        if overflow == "spill":
            self._spiller = threading.Thread(target=self._spill_loop, name=f"spill-{name}",
                                             daemon=True)

    # -- producer side (the plant's thread) --------------------------------------------------

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def lag(self) -> int:
        """Events offered and not yet delivered (memory plus spool)."""
        return max(0, self._offered - self._dropped - self.delivered)

    def offer_flush(self, seq: int) -> None:
        """Queue a flush marker after stream seq ``seq`` (see :meth:`EventStream.mark_flush`)."""
        if self.failed is None and hasattr(self.consumer, "on_flush"):
            self._mem.append((seq + 1, None, 0, False))
            if not self._wake.is_set():
                self._wake.set()

    def offer(self, start: int, events: list, n: int | None = None,
              blocks: bool = False) -> None:
        """Queue one batch (plant thread; never blocks on disk or network): ``n`` events
        (default ``len(events)``); ``blocks``: event blocks are among them."""
        if self.failed is not None:
            return
        if n is None:
            n = len(events)
        self._mem.append((start, events, n, blocks))
        self._offered += n
        lag = self._offered - self._dropped - self._taken
        if lag > self.max_lag:
            self.max_lag = lag
        if lag > self.max_events:
            if self.overflow == "drop":
                self._drop_oldest(lag)
            elif not self._spill_wake.is_set():
                self._spill_wake.set()
        if lag >= self.wake_events and not self._wake.is_set():
            self._wake.set()

    def _drop_oldest(self, lag: int) -> None:
        while lag > self.max_events and len(self._mem) > 1:
            try:
                _, _, n, _ = self._mem.popleft()
            except IndexError:
                return
            self._dropped += n  # a flush marker (0) is dropped with the batches around it
            lag -= n

    # -- consumer side -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        if self._spiller is not None:
            self._spiller.start()

    def begin_close(self) -> None:
        """Ask the thread to deliver what is queued, then close the consumer (no wait)."""
        self._closing = True
        self._wake.set()
        self._spill_wake.set()

    def close(self, timeout: float | None = None) -> None:
        """Deliver everything queued, then ``consumer.close()``; joins the threads."""
        self.begin_close()
        if self._spiller is not None:
            self._spiller.join(timeout)
        self._thread.join(timeout)
        if self._spool is not None:
            drained = len(self._spool) == 0
            self._spool.close()
            if drained:  # an overflow buffer of this run only: nothing left to keep
                shutil.rmtree(self._spool.dir, ignore_errors=True)

    def _take(self) -> tuple[int, list | None, int, bool] | None:
        """The next batch in stream order, ``(start, items, events, blocks)`` as queued: the
        spool (older) first, then memory."""
        with self._lock:
            if self._spool is not None and len(self._spool):
                rec = self._spool.peek()
                kind, (start,) = rec.rows[0]
                events = None if kind == 1 else [codec.from_array([c, *f])
                                                 for c, f in rec.rows[1:]]
                self._spool.ack(rec)
                return start, events, 0 if events is None else len(events), False
            try:
                batch = self._mem.popleft()
            except IndexError:
                return None
            self._taken += batch[2]
            if self._takes_blocks and batch[1] is not None:
                batch = self._merge_queued(batch)
            return batch

    def _merge_queued(self, batch: tuple) -> tuple:
        """``batch`` with the data batches queued right behind it (under ``_lock``): a storage
        sink takes what is queued as one batch, one call of its Python glue, not one per
        commit (a replay commits every chunk; its thread holds the GIL for each call)."""
        mem = self._mem
        if not mem or mem[0][1] is None:
            return batch
        start, items, n, blocks = batch
        items = list(items)
        while mem and mem[0][1] is not None and mem[0][0] == start + n:
            _, more, m, b = mem.popleft()
            self._taken += m
            items += more
            n += m
            blocks = blocks or b
        return start, items, n, blocks

    def _run(self) -> None:
        c = self.consumer
        while True:
            batch = self._take()
            if batch is None:
                if self._closing and not self._mem and (self._spiller is None
                                                        or not self._spiller.is_alive()):
                    batch = self._take()  # the spiller may have moved the last ones
                    if batch is None:
                        break
                else:
                    self._wake.clear()
                    if self._mem:
                        continue
                    if (not self._wake.wait(IDLE_S) and not self._mem
                            and self.failed is None):
                        self._call(c.on_idle)
                    continue
            if self.failed is not None:
                continue  # drain and discard: a failed consumer gets nothing
            start, events, n, blocks = batch
            if events is None:
                self._call(c.on_flush)  # type: ignore[attr-defined]
                continue
            if start > self._next_seq:
                self._call(c.on_gap, self._next_seq, start - self._next_seq)
            self._next_seq = start + n
            if blocks and not self._takes_blocks:
                events = materialize(events)
            self._call(c.on_batch, start, events)
            self.delivered += n
        if self.failed is None:
            self._call(c.close)
        else:
            try:
                c.close()
            except Exception:
                pass

    def _call(self, fn, *args) -> None:
        if self.failed is not None:
            return
        try:
            fn(*args)
        except Exception as e:  # isolation: any error of any consumer
            self.failed = error_line(e)
            log.error("stream consumer %s failed and is stopped: %s", self.name, self.failed)
            self._stream._failed(self.name, self.failed)

    def _spill_loop(self) -> None:
        """Move the oldest in-memory batches to the spool while the queue is over bound (woken
        by :meth:`offer` when it is, and at close; it never polls)."""
        while True:
            lag = self._offered - self._dropped - self._taken
            if lag <= self.max_events or len(self._mem) <= 1:
                if self._closing:
                    self._wake.set()  # the consumer may be waiting for this thread to end
                    return
                self._spill_wake.wait()
                self._spill_wake.clear()  # before the bound is checked again: no lost wake-up
                continue
            with self._lock:
                try:
                    batch = self._mem.popleft()
                except IndexError:
                    continue
                start, events, n, blocks = batch
                self._taken += n
                try:
                    self._spool_append(start, materialize(events) if blocks else events)
                except Exception as e:
                    self._mem.appendleft(batch)  # keep it; stop spilling
                    self._taken -= n
                    log.error("stream consumer %s: spill failed (%s); queueing in memory",
                              self.name, e)
                    return

    def _spool_append(self, start: int, events: list) -> None:
        if self._spool is None:
            from kalshi_platform.storage.spool import Spool

            if self._spill_dir is None:
                d = Path(tempfile.mkdtemp(prefix=f"kalshi-spill-{self.name}-"))
            else:
                d = self._spill_dir / f"{self._stream.run_id}-{self.name}"
            self._spool = Spool(d, fsync="none")
        if events is None:  # a flush marker
            self._spool.append([(1, (start,))])
            return
        rows = [(0, (start,))] + [(a[0], a[1:]) for a in map(codec.to_array, events)]
        self._spool.append(rows)
        self.spilled += len(events)


class EventStream:
    """The plant's sequenced output (a publisher in its fan-out; see the module docstring).

    Args:
        run_id: names this run's stream (default :func:`new_run_id`).

    Attributes: ``run_id``, ``seq`` (the last seq assigned), ``runners`` (attached
    :class:`ConsumerRunner` s).
    """

    sink_name = "stream"

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.seq = 0
        self._pending: list = []
        self._extra = 0  # events the pending blocks stand for beyond one item each
        self._blocks = False  # an event block is pending
        #: the Publisher entry point, the pending list's own ``append`` (one C call an event,
        #: the plant's hot path): ``commit`` copies and clears the list, never replaces it
        self.publish = self._pending.append
        self.runners: list[ConsumerRunner] = []
        self._failures: deque = deque()
        self._closed = False

    def attach(self, consumer: StreamConsumer, name: str, *, max_events: int = 1_000_000,
               overflow: Literal["spill", "drop"] = "spill",
               spill_dir: Path | None = None, wake_events: int = 1) -> ConsumerRunner:
        """Add a consumer (before the first event, or it starts at the next batch) and start
        its thread. ``max_events`` bounds its in-memory queue; ``wake_events``: see
        :class:`ConsumerRunner`."""
        r = ConsumerRunner(self, consumer, name, max_events=max_events, overflow=overflow,
                           spill_dir=spill_dir, wake_events=wake_events)
        self.runners.append(r)
        r.start()
        return r

    # -- Publisher (the plant's thread) ------------------------------------------------------

    # ``publish(event)``: an instance attribute, bound in __init__

    def publish_block(self, block: Any) -> None:
        """Take an event block (:mod:`kalshi_platform.ticker_plant.blocks`) in stream order:
        ``len(block)`` events, seqs assigned at commit as for that many ``publish`` calls."""
        n = len(block)
        if not n:
            return
        self._pending.append(block)
        self._extra += n - 1
        self._blocks = True

    def commit(self) -> None:
        """Hand every event published since the last commit to every consumer, as one batch."""
        pending = self._pending
        if not pending:
            return
        ev = pending.copy()
        pending.clear()
        n, blocks = len(ev) + self._extra, self._blocks
        self._extra, self._blocks = 0, False
        start = self.seq + 1
        self.seq += n
        for r in self.runners:
            r.offer(start, ev, n, blocks)

    def flush(self) -> None:
        self.commit()

    def mark_flush(self) -> None:
        """Commit, then queue a flush marker for every consumer that has ``on_flush``: it is
        called once every event before it was delivered. The live run marks after flushing
        its raw recording, so a sink flushed at markers never holds a row the recording on
        disk lacks (kill -9 then replaying the recording restores the store exactly)."""
        self.commit()
        for r in self.runners:
            r.offer_flush(self.seq)

    def close(self) -> None:
        """Commit, then let every consumer drain and close (joins their threads)."""
        if self._closed:
            return
        self.commit()
        self._closed = True
        for r in self.runners:  # all drain and close at once: subscribers get END without
            r.begin_close()     # waiting for the storage sinks to finish writing
        for r in self.runners:
            r.close()

    # -- failures ------------------------------------------------------------------------

    def _failed(self, name: str, text: str) -> None:
        self._failures.append((name, text))

    def take_failures(self) -> list[tuple[str, str]]:
        """``(consumer name, one-line error)`` of consumers that failed since the last call."""
        out = []
        while self._failures:
            out.append(self._failures.popleft())
        return out
