"""``kalshi-platform writer --from nats://…``: JetStream → the storage sinks, acked only once
durable (docs/scale-out.md "The writer"; docs/fanout-and-scale.md §2.3 item 6).

One durable pull consumer per data stream (``{durable}-book`` on ``KALSHI_{ENV}_BOOK``,
``{durable}-events`` on ``KALSHI_{ENV}_EVENTS``; no subject filter, explicit acks,
``ack_wait`` 30 s, ``max_ack_pending`` 50 000 messages). Several writer processes with the same ``--durable``
share the work (pull consumers balance between their fetchers).

A fetch loop per consumer decodes each PART and hands its events to every sink
(:class:`~kalshi_platform.storage.parquet_store.ParquetStore`,
:class:`~kalshi_platform.storage.questdb_rdb.QuestDBWriter`). Every ``flush_s`` seconds (or
``flush_events`` events) the sinks are flushed: the Parquet files are renamed into place
(fsynced), the QuestDB writer's flush returned True with nothing left in its spool (rows
in QuestDB; a flush blocks the loop for at most the QuestDB writer's close timeout).
Only then is every message whose events went into that flush acked, one by one: AckAll
would be wrong here, since a writer's ack of a later message would also ack what a crashed
(or another) writer was delivered and never made durable: a restarted writer gets the newer
messages first and the dead one's only after ``ack_wait``.
A crash before the ack means redelivery of messages whose rows may already be in a file: the
store's dedup keys (``read_table(..., dedup=True)``, ``query``, EOD) and QuestDB's DEDUP UPSERT
KEYS make the copy harmless. A part marked ``Kalshi-Dup`` (a trade another run stored) and
snapshots/END are skipped.

Consuming: a pipelined pull over a core subscription (``_fetch_loop``), not nats-py
``fetch()`` (~65 µs of client CPU per message measured here, docs/fanout-and-scale.md); a
message carries a window's events of one market and feed (~17 in a flat-out replay, 1-2
live).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from kalshi_platform.feed import nats_wire as w
from kalshi_platform.feed.nats_conn import connect
from kalshi_platform.stream.codec import CodecError

log = logging.getLogger(__name__)


def _delivered(m: Any) -> int:
    """How many times JetStream delivered ``m``, from its ack subject
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>``
    (nats-server 2.9 without a domain); other forms through nats-py's parser. Cheaper than
    ``m.metadata`` (a dataclass of every field) on the writer's per-message path."""
    tokens = m.reply.split(".")
    if len(tokens) == 9:
        return int(tokens[4])
    return m.metadata.num_delivered


class WriterError(RuntimeError):
    """The writer cannot go on (one line): a sink failed to flush, a consumer is gone."""


class NatsWriter:
    """See the module docstring.

    Args:
        url: ``nats://HOST:PORT[,...][?env=…]``.
        sinks: publishers (``publish``/``flush``/``close``).
        durable: consumer name prefix.
        batch: messages per fetch.
        flush_s / flush_events: flush-and-ack period and event bound.
        idle_exit_s: stop (after a last flush and ack) once no message came for this long
            (``None``: run until :meth:`stop`).

    Counters: ``messages``, ``events``, ``skipped`` (dup parts, snapshots, END), ``flushes``,
    ``acks``, ``redelivered`` (messages delivered more than once), ``unacked_flushes``
    (flushes after which a sink had not stored every row: nothing acked), ``fenced`` (parts
    of a previous lease holder after a takeover, see :meth:`_take`: not stored).

    Durable means, per sink: ``flush()`` did not return False and, for a sink with
    ``stats.spool_depth`` (the QuestDB writer), nothing is left in its spool: rows spooled
    while QuestDB is away are durable on this host only, while JetStream keeps them for any
    writer, so the messages stay unacked until QuestDB took the rows (the QuestDB flush
    returned OK: issue 15 §3).
    """

    def __init__(self, url: str, sinks: list[Any], *, durable: str = "writer",
                 batch: int = 500, flush_s: float = 1.0, flush_events: int = 200_000,
                 idle_exit_s: float | None = None, ack_wait_s: float = 30.0) -> None:
        self.options = w.parse_url(url)
        self.url = url
        self.sinks = sinks
        self.durable = durable
        self.batch = batch
        self.flush_s = flush_s
        self.flush_events = flush_events
        self.idle_exit_s = idle_exit_s
        self.ack_wait_s = ack_wait_s
        self.messages = self.events = self.skipped = self.flushes = self.acks = 0
        self.redelivered = 0
        self.unacked_flushes = 0  # flushes after which a sink still held rows: no acks
        self.fenced = 0  # parts of a previous lease holder after a takeover: not stored
        self._runs: dict[tuple, dict[str, bool]] = {}  # (stream, shard) → run → fenced
        self.first_msg_at: float | None = None  # epoch s of the first message
        self.last_flush_at: float | None = None  # epoch s of the last flush that acked
        self._unflushed = 0
        self._unacked: list = []  # messages handed to the sinks since the last flush
        self._last_msg_t = time.monotonic()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to flush, ack and return (from the loop's thread)."""
        self._stop.set()

    def stats(self) -> dict[str, Any]:
        return {"messages": self.messages, "events": self.events, "skipped": self.skipped,
                "flushes": self.flushes, "acks": self.acks, "redelivered": self.redelivered,
                "unacked_flushes": self.unacked_flushes, "fenced": self.fenced,
                "first_msg_at": self.first_msg_at, "last_flush_at": self.last_flush_at}

    async def run(self) -> dict[str, Any]:
        """Consume until stopped or idle; returns :meth:`stats`. Raises
        :class:`~kalshi_platform.feed.transports.TransportError` when no server answers or a
        stream is missing, :class:`WriterError` when a sink cannot flush."""
        o = self.options
        nc = await connect(o.servers, f"kalshi-writer-{self.durable}")
        try:
            js = nc.jetstream()
            self._nc = nc
            subs = {key: await self._consumer(js, key) for key in ("book", "events")}
            tasks = [asyncio.ensure_future(self._fetch_loop(k, s)) for k, s in subs.items()]
            try:
                await self._flush_loop(tasks)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._flush_and_ack()
        finally:
            await nc.close()
        return self.stats()

    async def _consumer(self, js: Any, key: str) -> tuple[str, str]:
        """Create the durable consumer of stream ``key`` if missing; ``(stream, name)``."""
        from kalshi_platform.feed.nats_conn import stream_last_seqs

        await stream_last_seqs(js, self.options.env)  # both streams exist, or a clear error
        stream = w.stream_names(self.options.env)[key]
        name = f"{self.durable}-{key}"
        cfg = ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT,
                             ack_wait=self.ack_wait_s,
                             max_ack_pending=50_000, deliver_policy=DeliverPolicy.ALL,
                             max_waiting=64)
        try:
            await js.consumer_info(stream, name)
        except nats.js.errors.NotFoundError:
            await js.add_consumer(stream, cfg)
        return stream, name

    async def _fetch_loop(self, key: str, consumer: tuple[str, str]) -> None:
        """The pipelined pull: a core subscription on an inbox takes the messages (a
        callback appends them), and ``$JS.API.CONSUMER.MSG.NEXT`` requests for ``batch``
        messages (expiring after 1 s) are sent whenever fewer than half a batch is still
        asked for. ~9.5 µs of client CPU per message against ~65 µs for nats-py ``fetch()``
        (docs/fanout-and-scale.md)."""
        stream, name = consumer
        nc = self._nc
        got: deque = deque()
        wake = asyncio.Event()

        async def on_msg(m: Any) -> None:
            got.append(m)
            wake.set()

        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, cb=on_msg)
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"
        request = json.dumps({"batch": self.batch, "expires": 1_000_000_000}).encode()
        asked, asked_at = 0, 0.0
        try:
            while True:
                now = time.monotonic()
                if asked <= self.batch // 2 or now - asked_at > 2.0:
                    if now - asked_at > 2.0:
                        asked = 0  # every request has expired by now
                    await nc.publish(subject, request, reply=inbox)
                    asked, asked_at = asked + self.batch, now
                if not got:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), 0.5)
                    except asyncio.TimeoutError:
                        continue
                events: list = []  # of every message taken now: one sink call for all
                taken = 0
                while got:
                    m = got.popleft()
                    if not m.reply:  # a status: 404 no messages, 408 request expired, 409
                        status = (m.headers or {}).get("Status", "")
                        pending = (m.headers or {}).get("Nats-Pending-Messages")
                        asked = max(0, asked - int(pending)) if pending else 0
                        if status == "409":
                            await asyncio.sleep(0.1)
                        continue
                    taken += 1
                    self._take(m, events, key)
                if taken:
                    asked = max(0, asked - taken)
                    self._to_sinks(events)
                    self._last_msg_t = time.monotonic()
        finally:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass

    def _take(self, m: Any, events: list, key: str = "book") -> None:
        """Count message ``m`` (of stream ``key``) as unacked and append its events (none for
        a dup part, a snapshot, END, an unreadable payload or a fenced part) to ``events``.

        Fencing (docs/scale-out.md "Fencing"): a takeover marker (a PART with ``first`` 0)
        of run R for shard K fences every other run this writer has seen on that stream and
        shard: their later parts (the previous lease holder's late or retried publishes) are
        counted in ``fenced``, acked and not stored. A run first seen after the marker (a new
        plant) is not fenced; R's own parts never are."""
        if not self.messages:
            self.first_msg_at = time.time()
        self.messages += 1
        self._unacked.append(m)
        if _delivered(m) > 1:
            self.redelivered += 1
        data = m.data
        headers = m.headers or {}
        try:
            if w.kind_of(data) != w.PART or headers.get(w.HDR_DUP):
                self.skipped += 1
                return
            part, evs = w.decode_part(data)
        except CodecError as e:
            log.warning("writer: skipping a message on %s: %s", m.subject, e)
            self.skipped += 1
            return
        fk = (key, headers.get(w.HDR_SHARD))
        runs = self._runs.get(fk)
        if runs is None:
            runs = self._runs[fk] = {}
        run = part.run_id
        if part.first == 0:  # a takeover marker: every other run seen here is fenced
            for r in runs:
                runs[r] = r != run
        elif runs.setdefault(run, False):
            self.fenced += 1  # a previous holder's part stored after the takeover
            return
        events.extend(evs)

    def _to_sinks(self, events: list) -> None:
        """Hand ``events`` (in delivery order) to every sink: its ``publish_many`` if it has
        one (one call per fetch loop turn, not per message), else ``publish`` each."""
        if not events:
            return
        for s in self.sinks:
            many = getattr(s, "publish_many", None)
            if many is not None:
                many(events)
                continue
            pub = s.publish
            for ev in events:
                pub(ev)
        self.events += len(events)
        self._unflushed += len(events)

    async def _flush_loop(self, tasks: list) -> None:
        last_flush = time.monotonic()
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), 0.05)
            except asyncio.TimeoutError:
                pass
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()
            now = time.monotonic()
            if self._unflushed >= self.flush_events or now - last_flush >= self.flush_s:
                await self._flush_and_ack()
                last_flush = time.monotonic()
            if self.idle_exit_s is not None and now - self._last_msg_t >= self.idle_exit_s:
                return

    async def _flush_and_ack(self) -> None:
        """Flush every sink (blocking: nothing is fetched meanwhile), then ack every message
        handed to them before the flush."""
        to_ack = self._unacked
        if not to_ack:
            return
        if self._unflushed:
            for s in self.sinks:
                try:
                    ok = s.flush()
                except Exception as e:
                    raise WriterError(f"sink {getattr(s, 'sink_name', type(s).__name__)} "
                                      f"could not flush: {e}") from None
                spooled = getattr(getattr(s, "stats", None), "spool_depth", 0)
                if ok is False or spooled:
                    # QuestDB away: its writer kept the rows in memory or its disk spool.
                    # Not acked: JetStream keeps (and after ack_wait redelivers) them until
                    # the rows are in the database; the copies are absorbed by dedup keys
                    self.unacked_flushes += 1
                    log.warning("writer: sink %s has not stored every row yet (%s rows "
                                "spooled); acking later", getattr(s, "sink_name",
                                                                  type(s).__name__), spooled)
                    return
            self.flushes += 1
            self._unflushed = 0
            self.last_flush_at = time.time()
        self._unacked = []
        publish = self._nc.publish
        try:
            for m in to_ack:
                await publish(m.reply, b"+ACK")
            self.acks += len(to_ack)
        except (nats.errors.Error, OSError) as e:  # redelivered later: harmless
            log.warning("writer: acks failed: %s", e)
