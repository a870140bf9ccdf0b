"""QuestDB hot tier (RDB) writer: plant events → columnar ILP over HTTP, never losing a row.

Path of a row::

    publish(event) ─► in-memory event queue (bounded: ``queue_rows``) ─► sender thread:
                              │ overflow (oldest first)        events → Arrow columns → ILP/HTTP
                              ▼                                         │ QuestDB away
                        disk spool (append-only, fsynced) ◄──── kept, retried with backoff

* **Columnar**: ``publish`` only appends the event; the sender thread takes events off the
  queue ``SLICE_ROWS`` at a time into raw Arrow columns, finishes one Arrow table per storage
  table per request, and the client serializes those columns
  (:mod:`kalshi_platform.storage.ilp_batch`; the ILP bytes are the row path's). A replay's
  deltas and BBO rows come as event blocks (``publish_block``): queued as they are, read into
  the columns without the GIL, cut where a request ends (:mod:`~kalshi_platform.storage.
  ilp_queue`), spilled as their events' rows; the requests are the ones their events make.
* **Batching** by rows (``batch_rows``) and by time (``flush_interval_s``): the client's
  documented ``auto_flush_rows`` / ``auto_flush_interval`` (HTTP defaults 75,000 rows and
  1,000 ms; QuestDB docs "Client configuration string", Auto-flushing). A conf string that
  sets them sets the writer's batching; the writer flushes its own buffers, so the client's
  auto-flush is off.
* **Order**: rows of a table leave in publish order. The spool only ever holds rows older
  than the in-memory queue (overflow moves the queue's oldest rows to the spool's tail), and
  the sender drains the spool before the queue, so QuestDB receives rows in order.
* **QuestDB away** (connection refused, timeout, 5xx): the batch in flight is kept, the sender
  backs off exponentially (``retry_base_s`` … ``retry_cap_s``, with jitter) and retries
  forever; new rows queue in memory, then spill to the spool. When QuestDB returns, everything
  drains automatically, oldest first. :meth:`QuestDBWriter.health` says which of ``up`` /
  ``retrying`` / ``spooling`` the writer is in, and where the rows are.
* **Invalid rows** (HTTP 400 ``code: invalid``, e.g. a non-UUID ``trade_id`` or a type
  clash): the batch is bisected until the offending rows are isolated; each goes to the
  quarantine file (JSON Lines, with the server's error) and the rest of the batch lands. A row
  the client itself cannot encode (e.g. a LONG beyond 2^63) is quarantined the same way.
* **Exactly once**: delivery is at-least-once (a batch whose acknowledgement was lost is
  re-sent) into tables whose ``DEDUP UPSERT KEYS`` (storage/schema.py) absorb the repeat.
* **Shutdown**: :meth:`QuestDBWriter.close` flushes, waits up to ``close_timeout_s`` for
  QuestDB, and spools whatever is still unsent, so nothing is lost; the next writer on the
  same spool directory drains it first. The CLI turns SIGINT/SIGTERM into this path.

Transport: the official ``questdb`` client (``Sender.from_conf``), HTTP by default (errors come
back per request; docs/field-notes.md "Sinks and storage"); ``tcp::`` conf strings work but a TCP
server drops the connection on a bad row without saying which (QuestDB docs "ILP overview").
The client's own retries are disabled (``retry_timeout=0``) so the retry policy lives here; the
connection itself (schema first, one request per batch, bisecting invalid rows) is
:mod:`kalshi_platform.storage.ilp_send`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from itertools import islice, repeat
from pathlib import Path
from typing import Any, Callable

from kalshi_platform.logfmt import error_line
from kalshi_platform.retry import Backoff
from kalshi_platform.storage.ilp_batch import BatchBuilder, IlpBatch, Rejected, event_rows
from kalshi_platform.storage.ilp_conf import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_FLUSH_INTERVAL_S,
    WriterError,
    conf_batching,
    ilp_conf,
    is_invalid_data_error,
)
from kalshi_platform.storage.ilp_queue import (
    ROWS_PER,
    spill_take,
    take_blocks,
    take_rows,
)
from kalshi_platform.storage.ilp_send import IlpConnection
from kalshi_platform.storage.ilp_rows import add_ilp_row
from kalshi_platform.storage.quarantine import QuarantineFile
from kalshi_platform.storage.questdb_health import (
    RETRYING,
    SPOOLING,
    UP,
    WriterHealth,
    WriterStats,
    health_of,
)
from kalshi_platform.storage.spool import Spool, SpoolError, SpoolRecord
from kalshi_platform.ticker_plant.blocks import EventBlock, materialize
from kalshi_platform.ticker_plant.events import QuarantineRecord

__all__ = ["DEFAULT_BATCH_ROWS", "DEFAULT_FLUSH_INTERVAL_S", "QuestDBWriter", "WriterError",
           "WriterHealth", "WriterStats", "add_ilp_row", "conf_batching", "ilp_conf",
           "is_invalid_data_error"]

log = logging.getLogger(__name__)

#: rows the sender turns into columns at a time: the queue holds at most about this many
#: Python event objects beyond what the plant publishes meanwhile (a long queue of live
#: objects costs the whole process in garbage-collector passes), and each conversion holds
#: the GIL only briefly
SLICE_ROWS = 16_384

#: marks a batch close() spooled while the sender was still sending it
_ABANDONED = object()
_NOT_A_ROW = object()



class QuestDBWriter:
    """A plant Publisher that writes every table row to QuestDB over ILP (see module doc).

    Args:
        conf: questdb client conf string, e.g. ``http::addr=127.0.0.1:9000;`` (completed by
            :func:`ilp_conf`); its ``auto_flush_rows`` / ``auto_flush_interval`` (ms), when
            set, replace ``batch_rows`` / ``flush_interval_s``.
        spool_dir: durable spool directory; shared by successive writers of one deployment.
        quarantine_path: JSON Lines file for rows QuestDB rejects and malformed frames
            [default ``<spool_dir>/quarantine.jsonl``].
        batch_rows: rows per ILP request (and the queue size that wakes the sender).
        flush_interval_s: a partial batch is sent at least this often, seconds.
        queue_rows: in-memory bound; beyond it the oldest rows spill to the spool.
        spool_fsync: ``batch`` / ``always`` / ``none`` (storage/spool.py).
        retry_base_s / retry_cap_s: exponential backoff (full jitter, the platform's one
            policy: :class:`kalshi_platform.retry.Backoff`) while QuestDB is away, seconds.
        close_timeout_s: how long :meth:`close` waits for QuestDB before spooling the rest.
        sender_factory: ``conf -> Sender`` (tests inject fakes); default ``Sender.from_conf``.
        ensure_schema: called once before the first row is sent (retried like a send until it
            succeeds): :meth:`from_settings` passes ``QuestDBClient.init_schema`` so the tables
            exist with their designated timestamp, partitioning and dedup keys before ILP can
            auto-create them with guessed types (docs/field-notes.md "Sinks and storage").

    Raises:
        WriterError: invalid conf string, unusable spool directory, or negative retry delays.
    """

    #: the name a failure is reported under (``--sink questdb``)
    sink_name = "questdb"

    def __init__(self, conf: str, *, spool_dir: str | Path,
                 quarantine_path: str | Path | None = None,
                 batch_rows: int = DEFAULT_BATCH_ROWS,
                 flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
                 queue_rows: int = 1_000_000, spool_fsync: str = "batch",
                 retry_base_s: float = 0.2, retry_cap_s: float = 15.0,
                 close_timeout_s: float = 10.0,
                 sender_factory: Callable[[str], Any] | None = None,
                 ensure_schema: Callable[[], Any] | None = None) -> None:
        self.conf = ilp_conf(conf)
        rows, interval = conf_batching(self.conf)
        batch_rows = rows or batch_rows
        if batch_rows < 1 or queue_rows < batch_rows:
            raise WriterError("need batch_rows >= 1 and queue_rows >= batch_rows")
        self.batch_rows = batch_rows
        self.flush_interval_s = interval or flush_interval_s
        self.queue_rows = queue_rows
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        #: full jitter; the attempt count is unbounded (QuestDB may be away for hours), which
        #: Backoff's exponent ceiling keeps finite
        try:
            self.backoff = Backoff(retry_base_s, retry_cap_s, factor=2.0, jitter=1.0)
        except ValueError as e:
            raise WriterError(str(e)) from None
        self.close_timeout_s = close_timeout_s
        try:
            self.spool = Spool(spool_dir, fsync=spool_fsync)  # type: ignore[arg-type]
        except (SpoolError, ValueError) as e:
            raise WriterError(str(e)) from None
        self.quarantine_path = Path(quarantine_path) if quarantine_path else \
            Path(spool_dir) / "quarantine.jsonl"
        self._quarantine = QuarantineFile(self.quarantine_path)
        self.stats = WriterStats(spool_depth=self.spool.depth_rows,
                                 spool_bytes=self.spool.bytes_on_disk())
        self._queue: deque = deque()          # plant events, appended by publish()
        self._rows_out = 0                    # rows taken off the queue (under _qlock)
        self._qlock = threading.Lock()        # serialises batch taking and spilling
        self._qcv = threading.Condition(self._qlock)
        self._sending = False                 # the sender is in a network call (owns _inflight)
        self._last_send_ok = True             # the last send QuestDB answered was accepted
        self._wake = threading.Event()        # data ready (publish), flush, close
        self._kick = threading.Event()        # flush, close: cut a retry backoff short
        self._stop = threading.Event()
        self._settled = 0                     # rows from this writer written/quarantined/spooled
        self._force_target = 0                # flush(): send partial batches until settled
        self._settled_cv = threading.Condition()
        self._inflight: IlpBatch | None = None
        self._inflight_from: Any = None       # SpoolRecord the in-flight batch came from
        self._building = BatchBuilder()       # the next batch, raw columns (sender thread)
        self._wake_rows = min(self.batch_rows, SLICE_ROWS)
        self._conn = IlpConnection(self.conf, sender_factory=sender_factory,
                                   ensure_schema=ensure_schema,
                                   quarantine_row=self._quarantine_row,
                                   record_flush=self.stats.record_flush)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="questdb-writer", daemon=True)
        self._thread.start()

    # -- Publisher protocol (plant thread) ----------------------------------------------------

    def publish(self, event: Any) -> None:
        """Queue one plant event's table rows (never blocks on the network; spills the oldest
        rows to the disk spool once more than ``queue_rows`` are in memory)."""
        per = ROWS_PER.get(type(event), _NOT_A_ROW)
        if per is _NOT_A_ROW:
            if isinstance(event, QuarantineRecord):
                self._quarantine_frame(event)
            elif type(event) is EventBlock:
                self.publish_block(event)
            return
        st = self.stats
        st.rows_published += 1 if per is None else per(event)
        self._queue.append(event)
        if st.rows_published - self._rows_out >= self._wake_rows:
            self._queued()

    def publish_many(self, events: Any) -> None:
        """:meth:`publish` of each of ``events``, in order, in one call (the event stream's
        storage consumer hands its batches over this way). Counting and queueing run at C
        speed (one ``Counter`` of the event types, one ``deque.extend``); only snapshots
        (rows per level) and non-table items (a quarantined frame, an event block) take a
        Python loop."""
        st = self.stats
        counts = Counter(map(type, events))
        per_of = ROWS_PER
        rows = 0
        if all(ty in per_of for ty in counts):
            self._queue.extend(events)
        else:
            for e in events:
                if type(e) in per_of:
                    self._queue.append(e)
                elif type(e) is EventBlock and len(e):  # as publish_block
                    self._queue.append(e)
                    rows += len(e)
                elif isinstance(e, QuarantineRecord):
                    self._quarantine_frame(e)
        for ty, k in counts.items():
            per = per_of.get(ty, _NOT_A_ROW)
            if per is None:
                rows += k
            elif per is not _NOT_A_ROW:
                rows += sum(per(e) for e in events if type(e) is ty)
        st.rows_published += rows
        if st.rows_published - self._rows_out >= self._wake_rows:
            self._queued()

    def publish_block(self, block: EventBlock) -> None:
        """Queue an event block's rows (:mod:`kalshi_platform.ticker_plant.blocks`: deltas and
        BBO rows, ``len(block)`` rows, one per event) as :meth:`publish` of each of its events
        would, in order with the events around it (the event stream's storage consumer hands
        a replay's blocks over this way). No Python object is made per event: the sender
        thread reads the block's records into Arrow columns without the GIL
        (:meth:`BatchBuilder.add_blocks`)."""
        n = len(block)
        if not n:
            return
        st = self.stats
        st.rows_published += n
        self._queue.append(block)
        if st.rows_published - self._rows_out >= self._wake_rows:
            self._queued()

    def _queued(self) -> None:
        """Enough rows queued: wake the sender; beyond ``queue_rows`` in memory, spill."""
        if not self._wake.is_set():
            self._wake.set()
        n = self.stats.rows_published - self._rows_out + len(self._building)
        if n > self.queue_rows:
            self._spill(max(n - self.queue_rows, self.batch_rows))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send everything published so far; wait until QuestDB acknowledged it, or until
        ``timeout_s`` (default ``close_timeout_s``) passes, then spool what is still only in
        memory. Returns True when every row published before the call is in QuestDB, in the
        quarantine file, or durably in the spool."""
        target = self.stats.rows_published
        self._force_target = target
        self._wake.set()
        self._kick.set()
        deadline = time.monotonic() + (self.close_timeout_s if timeout_s is None else timeout_s)
        with self._settled_cv:
            while self._settled < target and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._settled_cv.wait(min(left, 0.5))
        if self._settled < target:
            self._spill(0, everything=True)
        return self._settled >= target

    def close(self) -> None:
        """Flush (waiting up to ``close_timeout_s``), spool anything still unsent, stop the
        sender thread and close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        # drain the spool too while QuestDB takes it (stop at the first failed send)
        errors0 = self.stats.flush_errors
        deadline = time.monotonic() + self.close_timeout_s
        while (self.spool.depth_rows and self.stats.flush_errors == errors0
               and self._thread.is_alive() and time.monotonic() < deadline):
            self._kick.set()
            self._wake.set()
            with self._settled_cv:
                self._settled_cv.wait(0.05)
        self._stop.set()
        self._wake.set()
        self._kick.set()
        self._thread.join(timeout=max(self.close_timeout_s, 1.0))
        if self._thread.is_alive():
            # stuck in a network call: spool its batch too (if that send succeeds after all,
            # the repeat is absorbed by dedup) rather than lose it when the process exits
            log.error("QuestDB writer thread did not stop; spooling its batch in flight too")
            self._spill(0, everything=True, abandon=True)
        else:
            self._spill(0, everything=True)
        if self._queue or len(self._building) or (self._inflight is not None
                                             and self._inflight_from is None):
            log.error("QuestDB writer closed with %d rows neither written nor spooled (%s)",
                      self._memory_rows(), self.stats.last_error)
        self._conn.close()
        self.spool.close()
        self._refresh()

    @property
    def healthy(self) -> bool:
        """True while the sender thread runs (it only stops at :meth:`close`)."""
        return self._thread.is_alive() or self._closed

    def health(self) -> WriterHealth:
        """Where the rows are now: state ``up`` / ``retrying`` / ``spooling``
        (:mod:`kalshi_platform.storage.questdb_health`), rows written, spooled in all,
        pending in the spool, spool bytes on disk, rows in memory, flush errors, quarantined.
        Cheap (a directory listing of the spool): fine for a status line every second."""
        self._refresh()
        return health_of(self.stats)

    def _memory_rows(self) -> int:
        inflight = self._inflight
        return max(0, self.stats.rows_published - self._rows_out) + len(self._building) + (
            len(inflight) if inflight is not None and self._inflight_from is None else 0)

    def _refresh(self) -> None:
        st = self.stats
        st.spool_depth = self.spool.depth_rows
        st.spool_bytes = self.spool.bytes_on_disk()
        st.queue_depth = self._memory_rows()
        st.state = UP if self._last_send_ok else (SPOOLING if st.spool_depth else RETRYING)

    # -- spilling (plant thread) ------------------------------------------------------------

    def _spill(self, n: int, *, everything: bool = False, abandon: bool = False) -> None:
        """Move the ``n`` oldest in-memory rows (all with ``everything``) to the spool's tail,
        keeping publish order: the sender's unsent batch first (it is older than the queue),
        then the queue's head, a spool record of at most ``batch_rows`` rows at a time.

        Skipped while the sender is in a network call (its batch may still land, and spooling
        queue rows ahead of it would reorder them): the queue then runs over its bound by one
        send's worth, and the next publish spills. ``abandon`` (close after the sender failed
        to stop) spools that batch regardless and marks it so the sender neither counts nor
        spools it again. Safe against KeyboardInterrupt (SIGINT/SIGTERM) at any point: rows
        are copied to the spool before they leave memory, so an interrupt can at worst leave
        a row in both (dedup absorbs the repeat), never in neither. A spool write error is
        logged and the rows stay in memory.
        """
        with self._qcv:
            if self._sending and not abandon:
                return
            try:
                if self._inflight is not None and self._inflight_from is None:
                    batch = self._inflight
                    self._append_spool(batch.to_rows())
                    if abandon and self._sending:
                        self._inflight_from = _ABANDONED
                    else:
                        self._inflight = None
                    self._settle(len(batch))
                if len(self._building):
                    batch = self._building.build()
                    self._append_spool(batch.to_rows())
                    self._settle(len(batch))
                    n -= len(batch)
                q = self._queue
                while (n > 0 or everything) and q:
                    want = self.batch_rows if everything else min(n, self.batch_rows)
                    items, rows, rest = spill_take(q, want)  # copy first (blocks: events) ...
                    spool_rows, bad = event_rows(materialize(items))
                    self._append_spool(spool_rows)
                    for _ in range(len(items) - (rest is not None)):  # ... and drop from
                        q.popleft()                                     # memory once durable
                    if rest is not None:  # a block cut: its other rows stay at the head
                        q[0] = rest
                    self._rows_out += rows
                    self._quarantine_rejected(bad)
                    self._settle(rows)
                    n -= rows
            except SpoolError as e:
                log.error("%s; the rows stay in memory", e)
                self.stats.last_error = str(e)
            self.stats.queue_depth = self._memory_rows()

    def _append_spool(self, rows: list) -> None:
        self.spool.append(rows)
        self.stats.rows_spooled += len(rows)
        self.stats.spool_depth = self.spool.depth_rows
        if not self._last_send_ok:
            self.stats.state = SPOOLING

    def _settle(self, n: int) -> None:
        with self._settled_cv:
            self._settled += n
            self._settled_cv.notify_all()

    # -- sender thread ----------------------------------------------------------------------

    def _next_batch(self, force: bool) -> bool:
        """Take the next batch into flight: the unsent one, else the spool's oldest record,
        else the queue's head (converted to columns here). False if none is ready (or the
        spool head is unreadable and could not be set aside: memory rows never overtake the
        spool)."""
        with self._qcv:
            if self._inflight is not None:
                self._sending = True
                return True
            while True:
                try:
                    rec = self.spool.peek()
                except SpoolError as e:
                    log.error("%s", e)
                    self.stats.last_error = str(e)
                    try:
                        self.spool.discard_head(str(e))
                    except SpoolError as e2:
                        log.error("%s", e2)
                    return False
                if rec is None:
                    break
                batch, bad = IlpBatch.from_rows(rec.rows)
                self._quarantine_rejected(bad, settle=False)  # settled when spooled
                if len(batch):
                    self._inflight, self._inflight_from = batch, rec
                    self._sending = True
                    return True
                self._ack(rec)
            return self._take_from_queue(force)

    def _take_from_queue(self, force: bool) -> bool:
        """Convert the queue's head to columns a slice (``SLICE_ROWS``) at a time into the
        batch being built; put it into flight once it has ``batch_rows`` rows, or, with
        ``force`` (interval due, flush), whatever it has."""
        q = self._queue
        while q and len(self._building) < self.batch_rows:
            avail = self.stats.rows_published - self._rows_out
            if avail < self._wake_rows and not force:
                break
            self._convert_slice(self.batch_rows - len(self._building))
        if not len(self._building) or (len(self._building) < self.batch_rows and not force):
            return False
        batch = self._building.build()
        self._inflight, self._inflight_from = batch, None
        self._sending = True
        return True

    def _convert_slice(self, room: int) -> None:
        """Take rows off the queue's head into the batch being built, ``room`` rows at most:
        a run of event blocks (:func:`~kalshi_platform.storage.ilp_queue.take_blocks`, the
        last one cut at ``room``; their records read without the GIL), else about
        ``SLICE_ROWS`` rows of events up to the next block: the events up to the one that
        makes the limit's rows (a snapshot is a row per level), split by type in one C pass
        (:func:`~kalshi_platform.storage.ilp_queue.take_rows`)."""
        q = self._queue
        if type(q[0]) is EventBlock:
            blocks, rows = take_blocks(q, room)
            bad = self._building.add_blocks(blocks)
        else:
            limit = min(SLICE_ROWS, room)
            try:
                head = list(islice(q, limit))  # C; only this thread (under _qlock) pops
            except RuntimeError:  # the deque was appended to meanwhile (cannot, under the GIL)
                head = [q[i] for i in range(min(limit, len(q)))]
            groups, taken, rows = take_rows(head, limit)
            for _ in repeat(None, taken):
                q.popleft()
            bad = self._building.add(groups)
        self._rows_out += rows
        self._quarantine_rejected(bad)

    def _run(self) -> None:
        attempt = 0
        last_send = time.monotonic()
        while True:
            try:
                if self._stop.is_set() and (self._inflight is None
                                            or self._inflight_from is _ABANDONED):
                    return  # close() spools whatever is still queued
                due = (time.monotonic() - last_send >= self.flush_interval_s
                       or self._settled < self._force_target)
                if not self._next_batch(force=due):
                    self._wake.wait(self.flush_interval_s)
                    self._wake.clear()
                    continue
                ok = self._send_inflight()
            except Exception as e:  # noqa: BLE001 - a bug must not silently stop the writer
                log.exception("QuestDB writer: unexpected error; retrying")
                self.stats.last_error = f"{type(e).__name__}: {e}"
                with self._qcv:
                    self._sending = False
                    self._qcv.notify_all()
                ok = False
            if ok:
                attempt = 0
                last_send = time.monotonic()
                continue
            if self._stop.is_set():
                return  # close() spools the batch in flight
            attempt += 1
            # flush()/close() cut the backoff short; new rows do not
            self._kick.wait(self.backoff.delay(attempt))
            self._kick.clear()

    def _send_inflight(self) -> bool:
        batch = self._inflight
        assert batch is not None
        st = self.stats
        try:
            written, rejected = self._conn.send(batch)
        except Exception as e:  # noqa: BLE001 - transient: QuestDB away, refused, 5xx, timeout
            st.flush_errors += 1
            st.last_error = error_line(e)
            self._last_send_ok = False
            if st.flush_errors in (1, 10, 100) or st.flush_errors % 1000 == 0:
                log.warning("QuestDB write failed (%s); %d rows kept, retrying with backoff",
                            st.last_error, len(batch))
            self._conn.drop()
            with self._qcv:
                self._sending = False
                self._qcv.notify_all()
            self._refresh()
            return False
        self._last_send_ok = True
        st.rows_written += written
        by_table = batch.rows_by_table()
        for r in rejected:
            by_table[r.table] -= 1
        for table, k in by_table.items():
            st.rows_by_table[table] = st.rows_by_table.get(table, 0) + k
        with self._qcv:
            rec, self._inflight_from = self._inflight_from, None
            self._inflight = None
            self._sending = False
            self._qcv.notify_all()
            if isinstance(rec, SpoolRecord):
                self._ack(rec)
        if rec is None:
            self._settle(len(batch))
        self._refresh()
        return True

    def _ack(self, rec: SpoolRecord) -> None:
        try:
            self.spool.ack(rec)
        except SpoolError as e:  # the record is re-sent after a restart: dedup absorbs it
            log.error("%s", e)
            self.stats.last_error = str(e)
        self.stats.spool_depth = self.spool.depth_rows

    # -- quarantine -------------------------------------------------------------------------

    def _quarantine_row(self, table: str, row: dict, error: str, rows: int = 1) -> None:
        self.stats.rows_quarantined += rows
        log.warning("QuestDB rejected a %s row; quarantined: %s", table, error)
        self._quarantine.row(table, row, error)

    def _quarantine_rejected(self, bad: list[Rejected], settle: bool = True) -> None:
        """Rows that could not be made into a batch: quarantined (and settled, unless they
        came from the spool, whose rows were settled when they were spooled)."""
        for r in bad:
            self._quarantine_row(r.table, r.record(), f"client cannot encode the row: {r.error}",
                                 rows=r.rows)
            if settle:
                self._settle(r.rows)

    def _quarantine_frame(self, rec: QuarantineRecord) -> None:
        self.stats.frames_quarantined += 1
        self._quarantine.append({"kind": "frame", **rec.as_json()})  # bytes kept exactly

    # -- construction from settings ---------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> "QuestDBWriter":
        """A writer configured from :class:`kalshi_platform.config.Settings` (ILP conf,
        batching, queue bound, spool directory and fsync policy; with
        ``questdb_auto_init`` the tables are created over PG wire before the first row);
        ``kw`` overrides."""
        def init_schema() -> None:
            from kalshi_platform.storage.questdb_hdb import QuestDBClient

            with QuestDBClient(settings) as c:
                c.init_schema()

        args = dict(spool_dir=settings.questdb_spool_dir,
                    ensure_schema=init_schema if settings.questdb_auto_init else None,
                    batch_rows=settings.questdb_batch_rows,
                    flush_interval_s=settings.questdb_flush_interval_ms / 1000,
                    queue_rows=max(settings.questdb_queue_rows, settings.questdb_batch_rows),
                    spool_fsync=settings.questdb_spool_fsync,
                    close_timeout_s=settings.questdb_close_timeout_s)
        args.update(kw)
        return cls(settings.ilp_conf, **args)
