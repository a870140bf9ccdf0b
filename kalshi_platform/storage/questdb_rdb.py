"""QuestDB hot tier (RDB) writer: plant events → ILP over HTTP, never losing a row.

Path of a row::

    publish(event) ─► in-memory queue (bounded: ``queue_rows``) ─► sender thread ─► ILP/HTTP
                              │ overflow (oldest first)                 │ QuestDB away
                              ▼                                         ▼
                        disk spool (append-only, fsynced) ◄──── kept, retried with backoff

* **Batching** by rows (``batch_rows``) and by time (``flush_interval_s``): the sender thread
  sends whatever is queued at least every ``flush_interval_s``.
* **Order**: batches leave in publish order. The spool only ever holds rows older than the
  in-memory queue (overflow moves the queue's oldest rows to the spool's tail), and the
  sender drains the spool before the queue, so QuestDB receives rows in order.
* **QuestDB away** (connection refused, timeout, 5xx): the batch in flight is kept, the sender
  backs off exponentially (``retry_base_s`` … ``retry_cap_s``, with jitter) and retries
  forever; new rows queue in memory, then spill to the spool. When QuestDB returns, everything
  drains automatically, oldest first.
* **Invalid rows** (HTTP 400 ``code: invalid``, e.g. a non-UUID ``trade_id`` or a type
  clash): the batch is bisected until the offending rows are isolated; each goes to the
  quarantine file (JSON Lines, with the server's error) and the rest of the batch lands.
* **Exactly once**: delivery is at-least-once (a batch whose acknowledgement was lost is
  re-sent) into tables whose ``DEDUP UPSERT KEYS`` (storage/schema.py) absorb the repeat.
* **Shutdown**: :meth:`QuestDBWriter.close` flushes, waits up to ``close_timeout_s`` for
  QuestDB, and spools whatever is still unsent, so nothing is lost; the next writer on the
  same spool directory drains it first. The CLI turns SIGINT/SIGTERM into this path.

Transport: the official ``questdb`` client (``Sender.from_conf``), HTTP by default (errors come
back per request; docs/field-notes.md "Sinks and storage"); ``tcp::`` conf strings work but a TCP
server drops the connection on a bad row without saying which (QuestDB docs "ILP overview").
The client's own retries are disabled (``retry_timeout=0``) so the retry policy lives here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import warnings
from collections import Counter, deque
from itertools import islice
from operator import itemgetter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kalshi_platform.retry import Backoff
from kalshi_platform.storage.schema import TABLE_FOR_EVENT, TABLES, Table
from kalshi_platform.storage.spool import Spool, SpoolError, SpoolRecord
from kalshi_platform.ticker_plant.events import QuarantineRecord

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import QuestDBError, Sender, TimestampMicros

log = logging.getLogger(__name__)

#: ILP error text of a row the server rejects as invalid (HTTP 400): "[id: …, code: invalid, line: N]"
_INVALID_RE = re.compile(r"code:\s*invalid\b|\bcode\":\s*\"invalid\"")


#: marks a batch close() spooled while the sender was still sending it
_ABANDONED = object()


class WriterError(RuntimeError):
    """The writer cannot start (bad conf string, unusable spool directory)."""


def is_invalid_data_error(err: BaseException) -> bool:
    """True when QuestDB rejected the request's *data* (HTTP 400 ``code: invalid``): resending
    it unchanged would fail again. Everything else (refused, timeout, 5xx) is transient."""
    return isinstance(err, QuestDBError) and bool(_INVALID_RE.search(str(err)))


def ilp_conf(conf: str) -> str:
    """Complete a client conf string: pin ILP protocol version 1 (text; every QuestDB 8.x
    accepts it) and disable the client's own retries and auto-flush unless the string already
    sets them. Raises :class:`WriterError` for a conf that is not ``http``/``https``/``tcp``."""
    conf = conf.strip()
    schema = conf.split("::", 1)[0].lower() if "::" in conf else ""
    if schema not in ("http", "https", "tcp", "tcps"):
        raise WriterError(f"QuestDB conf must start with http::, https::, tcp:: or tcps::, got {conf!r}")
    if not conf.endswith(";"):
        conf += ";"
    keys = {kv.split("=", 1)[0].strip() for kv in conf.split("::", 1)[1].split(";") if "=" in kv}
    extra = {"protocol_version": "1", "auto_flush": "off"}
    if schema.startswith("http"):
        extra["retry_timeout"] = "0"
    for k, v in extra.items():
        if k not in keys:
            conf += f"{k}={v};"
    return conf


# -- ILP row mapping ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    symbols: tuple[tuple[int, str], ...]
    columns: tuple[tuple[int, str, bool], ...]  # (index, name, is_timestamp)
    ts_index: int


def _plan(t: Table) -> _Plan:
    syms, cols, ts = [], [], -1
    for i, c in enumerate(t.columns):
        if c.name == "ts":
            ts = i
        elif c.kind in ("symbol", "enum"):
            syms.append((i, c.name))
        else:
            cols.append((i, c.name, c.kind == "timestamp"))
    assert ts >= 0, t.name
    return _Plan(tuple(syms), tuple(cols), ts)


_PLANS: dict[str, _Plan] = {name: _plan(t) for name, t in TABLES.items()}


def _compile_row_fn(table: str, plan: _Plan) -> Callable[[Any, tuple], None]:
    """A straight-line ``fn(buf, values)`` for one table: no per-row loop over the schema, one
    ``is not None`` test per nullable column (generated once per table, at import)."""
    lines = ["def fn(buf, v, TM=TimestampMicros):", "    s = {}", "    c = {}"]
    for i, name in plan.symbols:
        lines += [f"    x = v[{i}]", f"    if x is not None: s[{name!r}] = x"]
    for i, name, is_ts in plan.columns:
        lines += [f"    x = v[{i}]",
                  f"    if x is not None: c[{name!r}] = {'TM(x)' if is_ts else 'x'}"]
    lines.append(f"    buf.row({table!r}, symbols=s, columns=c, at=TM(v[{plan.ts_index}]))")
    ns: dict[str, Any] = {"TimestampMicros": TimestampMicros}
    exec("\n".join(lines), ns)  # noqa: S102 - code built from our own schema names only
    return ns["fn"]


_ROW_FNS: dict[str, Callable[[Any, tuple], None]] = {
    name: _compile_row_fn(name, plan) for name, plan in _PLANS.items()}


def add_ilp_row(buf: Any, table: str, values: tuple) -> None:
    """Append one storage row (``values`` in the column order of ``schema.TABLES[table]``) to
    a ``questdb`` Buffer (or Sender): SYMBOL columns as ILP symbols, ``ts`` as the designated
    timestamp (µs), other timestamps as ``TimestampMicros``, ``None`` omitted (ILP null), UUID
    and VARCHAR as strings, DOUBLE as float, LONG as int.

    Raises ``questdb.QuestDBError`` for a value the client cannot encode (e.g. a bad name).
    """
    _ROW_FNS[table](buf, values)


# -- stats ----------------------------------------------------------------------------------

@dataclass
class WriterStats:
    """Counters of a :class:`QuestDBWriter` (read from any thread; updated by its threads).

    rows_published: rows handed to the writer. rows_written: rows QuestDB acknowledged.
    rows_spooled: rows moved to the disk spool (total). spool_depth: rows in the spool now.
    queue_depth: rows in memory (queue + batch in flight). rows_quarantined: rows QuestDB
    rejected as invalid. frames_quarantined: malformed-frame records kept in the quarantine
    file. flush_errors: failed sends (each retried). flushes: successful sends.
    flush_latency_ms_last / _max / _total: send latency of successful sends, ms.
    """

    rows_published: int = 0
    rows_written: int = 0
    rows_spooled: int = 0
    spool_depth: int = 0
    queue_depth: int = 0
    rows_quarantined: int = 0
    frames_quarantined: int = 0
    flush_errors: int = 0
    flushes: int = 0
    flush_latency_ms_last: float = 0.0
    flush_latency_ms_max: float = 0.0
    flush_latency_ms_total: float = 0.0
    last_error: str = ""
    rows_by_table: dict[str, int] = field(default_factory=dict)

    @property
    def flush_latency_ms_mean(self) -> float:
        return self.flush_latency_ms_total / self.flushes if self.flushes else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "rows_by_table"}
        d["flush_latency_ms_mean"] = round(self.flush_latency_ms_mean, 3)
        d["rows_by_table"] = dict(sorted(self.rows_by_table.items()))
        return d


# -- the writer -----------------------------------------------------------------------------

class QuestDBWriter:
    """A plant Publisher that writes every table row to QuestDB over ILP (see module doc).

    Args:
        conf: questdb client conf string, e.g. ``http::addr=127.0.0.1:9000;`` (completed by
            :func:`ilp_conf`).
        spool_dir: durable spool directory; shared by successive writers of one deployment.
        quarantine_path: JSON Lines file for rows QuestDB rejects and malformed frames
            [default ``<spool_dir>/quarantine.jsonl``].
        batch_rows: rows per ILP request (and the queue size that wakes the sender).
        flush_interval_s: a partial batch is sent at least this often.
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
                 batch_rows: int = 50_000, flush_interval_s: float = 1.0,
                 queue_rows: int = 1_000_000, spool_fsync: str = "batch",
                 retry_base_s: float = 0.2, retry_cap_s: float = 15.0,
                 close_timeout_s: float = 10.0,
                 sender_factory: Callable[[str], Any] | None = None,
                 ensure_schema: Callable[[], Any] | None = None) -> None:
        if batch_rows < 1 or queue_rows < batch_rows:
            raise WriterError("need batch_rows >= 1 and queue_rows >= batch_rows")
        self.conf = ilp_conf(conf)
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
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
        self._sender_factory = sender_factory or Sender.from_conf
        self._ensure_schema = ensure_schema
        try:
            self.spool = Spool(spool_dir, fsync=spool_fsync)  # type: ignore[arg-type]
        except (SpoolError, ValueError) as e:
            raise WriterError(str(e)) from None
        self.quarantine_path = Path(quarantine_path) if quarantine_path else \
            Path(spool_dir) / "quarantine.jsonl"
        self.stats = WriterStats(spool_depth=self.spool.depth_rows)
        self._queue: deque = deque()          # (table, values), appended by publish()
        self._qlock = threading.Lock()        # serialises batch taking and spilling
        self._qcv = threading.Condition(self._qlock)
        self._sending = False                 # the sender is in a network call (owns _inflight)
        self._wake = threading.Event()        # data ready (publish), flush, close
        self._kick = threading.Event()        # flush, close: cut a retry backoff short
        self._stop = threading.Event()
        self._settled = 0                     # rows from this writer written/quarantined/spooled
        self._force_target = 0                # flush(): send partial batches until settled
        self._settled_cv = threading.Condition()
        self._inflight: list | None = None
        self._inflight_from: Any = None       # SpoolRecord the in-flight batch came from
        self._sender = None
        self._buf = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="questdb-writer", daemon=True)
        self._thread.start()

    # -- Publisher protocol (plant thread) ----------------------------------------------------

    def publish(self, event: Any) -> None:
        """Queue the table rows of one plant event (never blocks on the network; spills the
        oldest rows to the disk spool once more than ``queue_rows`` are in memory)."""
        t = TABLE_FOR_EVENT.get(type(event))
        if t is None:
            if isinstance(event, QuarantineRecord):
                self._quarantine_frame(event)
            return
        rows = t.rows(event)
        name = t.name
        q = self._queue
        for r in rows:
            q.append((name, r))
        self.stats.rows_published += len(rows)
        n = len(q)
        if n >= self.batch_rows:
            self._wake.set()
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
            self._spill(len(self._queue) + 1, everything=True)
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
            self._spill(len(self._queue) + 1, everything=True, abandon=True)
        else:
            self._spill(len(self._queue) + 1, everything=True)
        if self._queue or (self._inflight is not None and self._inflight_from is None):
            log.error("QuestDB writer closed with %d rows neither written nor spooled (%s)",
                      len(self._queue) + len(self._inflight or ()), self.stats.last_error)
        if self._sender is not None:
            try:
                self._sender.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
        self.spool.close()
        self.stats.spool_depth = self.spool.depth_rows
        self.stats.queue_depth = len(self._queue)

    @property
    def healthy(self) -> bool:
        """True while the sender thread runs (it only stops at :meth:`close`)."""
        return self._thread.is_alive() or self._closed

    # -- spilling (plant thread) ------------------------------------------------------------

    def _spill(self, n: int, *, everything: bool = False, abandon: bool = False) -> None:
        """Move the ``n`` oldest in-memory rows to the spool's tail, keeping publish order: the
        sender's unsent batch first (it is older than the queue), then the queue's head.

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
                    self._append_spool(batch)
                    if abandon and self._sending:
                        self._inflight_from = _ABANDONED
                    else:
                        self._inflight = None
                    self._settle(len(batch))
                q = self._queue
                while (n > 0 or everything) and q:
                    k = min(self.batch_rows, len(q)) if everything else min(n, self.batch_rows, len(q))
                    batch = list(islice(q, k))   # copy first ...
                    self._append_spool(batch)
                    for _ in range(k):           # ... and drop from memory once durable
                        q.popleft()
                    self._settle(k)
                    n -= k
            except SpoolError as e:
                log.error("%s; the rows stay in memory", e)
                self.stats.last_error = str(e)
            self.stats.queue_depth = len(self._queue) + len(self._inflight or ())

    def _append_spool(self, batch: list) -> None:
        self.spool.append(batch)
        self.stats.rows_spooled += len(batch)
        self.stats.spool_depth = self.spool.depth_rows

    def _settle(self, n: int) -> None:
        with self._settled_cv:
            self._settled += n
            self._settled_cv.notify_all()

    # -- sender thread ----------------------------------------------------------------------

    def _next_batch(self, force: bool) -> bool:
        """Take the next batch into flight: the unsent one, else the spool's oldest record,
        else the queue's head. False if none is ready (or the spool head is unreadable and
        could not be set aside: memory rows never overtake the spool)."""
        with self._qcv:
            if self._inflight is not None:
                self._sending = True
                return True
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
            if rec is not None:
                self._inflight, self._inflight_from = rec.rows, rec
                self._sending = True
                return True
            q = self._queue
            if not q or (len(q) < self.batch_rows and not force):
                return False
            k = min(self.batch_rows, len(q))
            self._inflight = [q.popleft() for _ in range(k)]
            self._inflight_from = None
            self._sending = True
            return True

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
                self.stats.queue_depth = len(self._queue) + len(self._inflight or ())
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

    def _connect(self):
        if self._ensure_schema is not None:
            self._ensure_schema()  # raises while QuestDB is away: retried with the batch
            self._ensure_schema = None
        if self._sender is None:
            s = self._sender_factory(self.conf)
            if hasattr(s, "establish"):
                s.establish()
            self._sender = s
        return self._sender

    def _drop_sender(self) -> None:
        s, self._sender = self._sender, None
        if s is not None:
            try:
                s.close()
            except Exception:  # noqa: BLE001
                pass

    def _send_rows(self, rows: list) -> list:
        """One ILP request for ``rows``. A row the client itself cannot encode (e.g. a LONG
        beyond 2^63, a bad name) is quarantined and left out. Returns those rows; raises
        QuestDBError/OSError when the request fails."""
        sender = self._connect()
        buf = sender.new_buffer()
        fns = _ROW_FNS
        bad: list[tuple[int, BaseException]] = []
        for i, (table, values) in enumerate(rows):
            try:
                fns[table](buf, values)
            except Exception as e:  # noqa: BLE001 - quarantined below
                bad.append((i, e))
        if bad:
            skip = {i for i, _ in bad}
            buf = sender.new_buffer()  # a failed row may have left a partial line behind
            for i, (table, values) in enumerate(rows):
                if i not in skip:
                    fns[table](buf, values)
            for i, e in bad:
                self._quarantine_row(rows[i], f"client cannot encode the row: "
                                              f"{type(e).__name__}: {e}")
        t0 = time.perf_counter()
        if len(rows) > len(bad):
            sender.flush(buf)
        ms = (time.perf_counter() - t0) * 1e3
        st = self.stats
        st.flushes += 1
        st.flush_latency_ms_last = ms
        st.flush_latency_ms_total += ms
        if ms > st.flush_latency_ms_max:
            st.flush_latency_ms_max = ms
        return [rows[i] for i, _ in bad]

    def _send_inflight(self) -> bool:
        rows = self._inflight
        assert rows is not None
        try:
            written, rejected = self._send_isolating(rows)
        except Exception as e:  # noqa: BLE001 - transient: QuestDB away, refused, 5xx, timeout
            self.stats.flush_errors += 1
            self.stats.last_error = f"{type(e).__name__}: {e}"
            if self.stats.flush_errors in (1, 10, 100) or self.stats.flush_errors % 1000 == 0:
                log.warning("QuestDB write failed (%s); %d rows kept, retrying with backoff",
                            self.stats.last_error, len(rows))
            self._drop_sender()
            with self._qcv:
                self._sending = False
                self._qcv.notify_all()
            return False
        st = self.stats
        st.rows_written += written
        counts = Counter(map(itemgetter(0), rows))
        counts.subtract(Counter(map(itemgetter(0), rejected)))
        for table, k in counts.items():
            st.rows_by_table[table] = st.rows_by_table.get(table, 0) + k
        with self._qcv:
            rec, self._inflight_from = self._inflight_from, None
            self._inflight = None
            self._sending = False
            self._qcv.notify_all()
            if isinstance(rec, SpoolRecord):
                try:
                    self.spool.ack(rec)
                except SpoolError as e:  # the record is re-sent after a restart: dedup absorbs it
                    log.error("%s", e)
                    st.last_error = str(e)
                st.spool_depth = self.spool.depth_rows
        if rec is None:
            self._settle(len(rows))
        return True

    def _send_isolating(self, rows: list) -> tuple[int, list]:
        """Send ``rows``; if QuestDB rejects the data, bisect until each invalid row is
        isolated and quarantined, sending the rest. Returns (rows written, rows rejected).
        A transient error anywhere propagates (the whole batch is retried later; rows already
        acknowledged are absorbed by dedup)."""
        try:
            rejected = self._send_rows(rows)
            return len(rows) - len(rejected), rejected
        except QuestDBError as e:
            if not is_invalid_data_error(e):
                raise
            if len(rows) == 1:
                self._quarantine_row(rows[0], str(e))
                return 0, list(rows)
        mid = len(rows) // 2
        w1, r1 = self._send_isolating(rows[:mid])
        w2, r2 = self._send_isolating(rows[mid:])
        return w1 + w2, r1 + r2

    # -- quarantine -------------------------------------------------------------------------

    def _append_quarantine(self, rec: dict) -> None:
        try:
            self.quarantine_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.quarantine_path, "a") as f:
                f.write(json.dumps(rec, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            log.error("cannot write quarantine %s: %s; record: %s", self.quarantine_path, e, rec)

    def _quarantine_row(self, row: tuple, error: str) -> None:
        table, values = row
        names = TABLES[table].column_names
        self.stats.rows_quarantined += 1
        log.warning("QuestDB rejected a %s row; quarantined: %s", table, error)
        self._append_quarantine({"kind": "row", "table": table,
                                 "row": dict(zip(names, values)), "error": error,
                                 "quarantined_at_ns": time.time_ns()})

    def _quarantine_frame(self, rec: QuarantineRecord) -> None:
        self.stats.frames_quarantined += 1
        self._append_quarantine({"kind": "frame", **rec.as_json()})  # bytes kept exactly

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
