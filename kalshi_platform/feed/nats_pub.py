"""``--publish nats://HOST:PORT[,...]``: the plant's event stream into NATS JetStream
(docs/scale-out.md; the figures and traps behind each choice: docs/fanout-and-scale.md §2.1 and
"NATS JetStream from Python").

:class:`NatsPublisher` is a stream consumer (``overflow="spill"``: JetStream is a record of
truth, so a stall of the server queues events in memory, then on disk, and never loses one or
blocks the plant). Its consumer thread cuts windows and encodes their parts
(:mod:`kalshi_platform.feed.nats_wire`); an asyncio loop on its own thread publishes them:

* asynchronous publishes with at most ``max_inflight`` unacked (awaiting each ack serializes
  on the round trip: ~2.9k msg/s against ~18-27k measured here), each with a reply subject on
  the publisher's own ack inbox (cheaper than nats-py's ``publish_async``, see ``_send``);
* a publish whose ack has not come after ``ack_timeout_s`` is retried (a request nobody
  answers is never failed by the client: nats-py's ``publish_async`` future never times out);
* a failure (``no responders`` during a leader election: 5-8 s measured; a timeout; a lost
  connection) puts the message back, with the **same** ``Nats-Msg-Id``, and pauses new
  publishes with a backoff of ``backoff_s`` doubling to ``backoff_max_s``; it retries until the
  close timeout, so dedup makes a retry of an already stored message harmless;
* at most ``buffer`` messages are built and unacked; then the consumer thread waits (its
  runner queues and spills the plant's events meanwhile);
* every ``snapshot_s``, at a window boundary, it waits for every ack, then publishes the books
  it mirrors (:class:`~kalshi_platform.feed.books.BookMirror`, fed the same events) as a
  SNAPSHOT valid at the window's last seq, with headers naming the last BOOK and EVENTS stream
  seqs it acked: a late joiner loads it and consumes both streams from the next stream seq.

Counters in :meth:`NatsPublisher.stats`: messages/events published and acked, retries by cause,
duplicates, the longest stall between acks while messages were unacked, snapshots.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any, Sequence

import nats.errors
import nats.js.errors

from kalshi_platform.feed import nats_wire as w
from kalshi_platform.feed import protocol
from kalshi_platform.feed.books import BookMirror
from kalshi_platform.feed.nats_conn import connect, parse_ack, stream_last_seqs
from kalshi_platform.feed.transports import TransportError
from kalshi_platform.stream.codec import EVENT_CODES, FEED_OF
from kalshi_platform.ticker_plant.events import TradeEvent

log = logging.getLogger(__name__)



class _Msg:
    """One message to publish and what retrying it needs."""

    __slots__ = ("subject", "payload", "headers", "stream", "trade", "attempts", "sent_at")

    def __init__(self, subject: str, payload: bytes, headers: dict, stream: str,
                 trade: bool = False) -> None:
        self.subject, self.payload, self.headers, self.stream = subject, payload, headers, stream
        self.trade = trade
        self.attempts = 0
        self.sent_at = 0.0


class NatsPublisher:
    """The publisher side of a ``nats://`` URL (module docstring). Works without a plant too:
    call :meth:`on_batch` with consecutive batches from one thread, then :meth:`close`.

    Args:
        url: ``nats://HOST:PORT[,...][?options]`` (:class:`~.nats_wire.NatsOptions`).
        run_id: the stream's run id.

    Raises :class:`TransportError` when no server answers or the streams do not exist.
    """

    def __init__(self, url: str, run_id: str) -> None:
        self.url = url
        self.options = o = w.parse_url(url)
        self.run_id = run_id
        self.runner: Any = None  # set by attach(): the ConsumerRunner
        self.mirror = BookMirror()
        self._names = w.stream_names(o.env)
        self._subjects: dict[tuple, str] = {}
        self._win: list = []
        self._win_start = 0
        self._win_t = 0.0
        self._last_seq = 0
        self._last_snap = time.monotonic()
        self._built = 0  # messages built and not acked (both threads; under _cond)
        self._cond = threading.Condition()
        self._failed: str | None = None
        self._closed = False
        self.lease: Any = None  # a ShardLease with ?lease_s=
        self.leading = not o.lease_s  # publish windows (the consumer thread reads it)
        self._takeover = False  # set by the loop: the consumer thread announces it
        self.withheld = 0  # events not published while standby
        self.fenced = 0  # messages dropped unacked when the lease was lost
        self._handoff: deque = deque()  # consumer thread → loop (see _put)
        self._wake_posted = False
        # loop-thread state
        self._queue: deque = deque()
        self._retry: deque = deque()
        self._inflight: dict[str, _Msg] = {}  # ack token → message, in send order
        self._next_token = 0
        self._pause_until = 0.0
        self._backoff = 0.0
        self._last_ack = time.monotonic()
        self.acked_seq = {"book": 0, "events": 0}
        # counters
        self.messages = self.events = self.acked = self.duplicates = self.snapshots = 0
        self.retries = {"no_responders": 0, "timeout": 0, "other": 0}
        self.max_stall_s = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-publish",
                                        daemon=True)
        self._thread.start()
        try:
            self._call(self._start(), 30)
        except BaseException:
            self._stop_loop()
            raise
        if self.leading:
            self._queue_snapshot()  # seq 0: a late joiner of this run finds it at once
        log.info("publishing to JetStream at %s (env %s, shard %s)", ",".join(o.servers),
                 o.env, o.shard)

    # -- the consumer thread ---------------------------------------------------------------

    def on_batch(self, start_seq: int, events: Sequence[Any]) -> None:
        """Events ``start_seq …``: merged into the open window while more batches are queued
        (at most ``window_ms`` and ``max_window`` events), else the window is published."""
        if self._failed:
            raise TransportError(self._failed)
        if not self._win:
            self._win_start, self._win_t = start_seq, time.monotonic()
        self._win.extend(events)
        r = self.runner
        if (r is not None and r.lag > len(events) and len(self._win) < self.options.max_window
                and time.monotonic() - self._win_t < self.options.window_ms / 1000):
            return
        self._send_window()
        if self.leading and self.options.snapshot_s and \
                time.monotonic() - self._last_snap >= self.options.snapshot_s:
            self._queue_snapshot()  # a standby's would replace the leader's

    def on_gap(self, first_seq: int, count: int) -> None:  # pragma: no cover - spill
        raise TransportError(f"nats publisher lost {count} events from seq {first_seq}")

    def on_idle(self) -> None:
        if self._win:
            self._send_window()
        elif self._takeover:
            self._announce_takeover()

    def close(self) -> None:
        """Publish the open window, a last snapshot and END, wait for every ack (at most
        ``close_timeout_s``), disconnect. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._win:
                self._send_window()
            if self.leading:
                self._queue_snapshot()
                self._put(("end", protocol.encode_control(protocol.END, self.run_id,
                                                          self._last_seq)))
            self._call(self._finish(), self.options.close_timeout_s + 5)
            r = self.retries
            if sum(r.values()):
                log.warning("%s: %d events in %d messages, all acked after %d retries (no "
                            "responders %d, ack timeouts %d, other %d); longest stall %.1f s",
                            self.url, self.events, self.acked, sum(r.values()),
                            r["no_responders"], r["timeout"], r["other"], self.max_stall_s)
        except (TransportError, TimeoutError) as e:
            log.error("%s: closing: %s (%d messages unacked)", self.url, e, self._built)
        finally:
            self._stop_loop()

    def stats(self) -> dict[str, Any]:
        """Counters (see the module docstring)."""
        return {"url": self.url, "run_id": self.run_id, "last_seq": self._last_seq,
                "messages": self.messages, "events": self.events, "acked": self.acked,
                "unacked": self._built, "duplicates": self.duplicates,
                "retries": dict(self.retries), "max_stall_s": round(self.max_stall_s, 3),
                "snapshots": self.snapshots, "failed": self._failed,
                "leading": self.leading, "withheld": self.withheld, "fenced": self.fenced,
                "lease": None if self.lease is None else {
                    "renewals": self.lease.renewals, "takeovers": self.lease.takeovers,
                    "lost": self.lease.lost, "took_over_from": self.lease.took_over_from}}

    def _send_window(self) -> None:
        first, evs = self._win_start, self._win
        self._win = []
        last = first + len(evs) - 1
        if self._takeover:
            self._announce_takeover()  # before this window: the new leader's books at first-1
        self.mirror.apply_batch(first, evs)
        if not self.leading:  # a standby (or a fenced leader): books kept, nothing sent
            self._last_seq = last
            self.withheld += len(evs)
            return
        msgs = self._parts(first, last, evs)
        self._last_seq = last
        self.events += len(evs)
        self.messages += len(msgs)
        with self._cond:
            while self._built >= self.options.buffer and not self._failed:
                self._cond.wait(0.5)
            self._built += len(msgs)
        self._put(msgs)

    def _parts(self, first: int, last: int, evs: list) -> list[_Msg]:
        """One message per (feed, ticker) of the window, one per trade."""
        groups: dict[tuple, tuple[list, list]] = {}
        trades = []
        codes = EVENT_CODES
        for seq, ev in enumerate(evs, first):
            t = type(ev)
            if t is TradeEvent:
                trades.append((seq, ev))
                continue
            key = (FEED_OF[t], getattr(ev, "ticker", None))
            g = groups.get(key)
            if g is None:
                g = groups[key] = ([], [])
            g[0].append(seq)
            g[1].append([codes[t], *ev])
        o, run = self.options, self.run_id
        out = []
        for key, (seqs, arrays) in groups.items():
            feed = key[0]
            out.append(_Msg(self._subject(key), w.encode_part(run, first, last, seqs, arrays),
                            {w.HDR_MSG_ID: f"{run}:{seqs[0]}", w.HDR_SHARD: o.shard},
                            "book" if feed in w.BOOK_FEEDS else "events"))
        for seq, ev in trades:
            out.append(_Msg(self._subject(("trades", ev.ticker)),
                            w.encode_part(run, first, last, [seq], [[1, *ev]]),
                            {w.HDR_MSG_ID: ev.trade_id or f"{run}:{seq}", w.HDR_SHARD: o.shard},
                            "events", trade=True))
        return out

    def _announce_takeover(self) -> None:
        """This plant just got the shard's lease: a ``feed_events`` takeover marker (a PART
        outside the window chain: ``first`` 0, ``last`` the seq its books are at; the writer
        stores it), then a snapshot of its books so subscribers switch to this run at once.
        A holder that fenced itself (a late renew) and got the lease back announces again:
        its subscribers then resync at once instead of waiting for the hole to time out."""
        from kalshi_platform.ticker_plant.events import FeedEvent

        self._takeover = False
        self.leading = True
        prev = self.lease.took_over_from if self.lease is not None else None
        ev = FeedEvent(time.time_ns(), "takeover", None, None, None,
                       f"shard {self.options.shard}: run {self.run_id} publishes from seq "
                       f"{self._last_seq + 1}" + (f", taking over from {prev}" if prev else ""))
        o, run = self.options, self.run_id
        m = _Msg(w.subject(o.env, "feed_events", None, o.shard),
                 w.encode_part(run, 0, self._last_seq, [0], [[EVENT_CODES[FeedEvent], *ev]]),
                 {w.HDR_MSG_ID: f"{run}:takeover:{self._last_seq}", w.HDR_SHARD: o.shard},
                 "events")
        # the same marker without events on the BOOK stream: each stream is ordered on its
        # own, so a writer fences the previous holder's later book parts by this one
        book = _Msg(w.subject(o.env, "deltas", None, o.shard),
                    w.encode_part(run, 0, self._last_seq, [], []),
                    {w.HDR_MSG_ID: f"{run}:takeover-book:{self._last_seq}", w.HDR_SHARD: o.shard},
                    "book")
        with self._cond:
            self._built += 2
        self._put([m, book])
        self._queue_snapshot()
        log.warning("%s: shard %s: this plant (run %s) publishes now%s", self.url, o.shard,
                    run, f" (took over from {prev})" if prev else "")

    async def _lease_loop(self) -> None:
        """Renew or watch the shard lease every T/3; fence this publisher when it lapses."""
        lease = self.lease
        while True:
            was = lease.leader
            now = await lease.step()
            if now and not was and not self.leading:
                self._takeover = True  # announced by the consumer thread, before a window
            elif not now and self.leading:
                log.error("%s: shard %s: lease lost; not publishing any more", self.url,
                          self.options.shard)
                self.leading = False
                self._drop_unacked()
            await asyncio.sleep(self.options.lease_s / 3)

    def _drop_unacked(self) -> None:
        """(loop thread) The lease is lost: windows built but not stored are dropped, not
        retried (a retry could land after a standby's takeover; the writer fences what
        still does, docs/scale-out.md "Fencing"). Counted in ``fenced``."""
        n = len(self._inflight) + len(self._retry)
        self._inflight.clear()
        self._retry.clear()
        kept: deque = deque()
        for item in self._queue:
            if isinstance(item, list):
                n += len(item)
            else:
                kept.append(item)
        self._queue = kept
        self.fenced += n
        self._changed.set()
        self._slot.set()
        self._release(n)

    def _subject(self, key: tuple) -> str:
        s = self._subjects.get(key)
        if s is None:
            s = self._subjects[key] = w.subject(self.options.env, key[0], key[1],
                                                self.options.shard)
        return s

    def _queue_snapshot(self) -> None:
        self._last_snap = time.monotonic()
        books = self.mirror.snapshot()
        self._put(("snap", protocol.encode_snapshot(self.run_id, self._last_seq, books)))

    def _put(self, item: Any) -> None:
        """Hand ``item`` to the loop thread: appended to ``_handoff`` (a deque: thread-safe
        appends), and the loop woken only if no wake-up is pending (a ``call_soon_threadsafe``
        is a write to the loop's self-pipe: one syscall per window before)."""
        self._handoff.append(item)
        if self._wake_posted:
            return
        self._wake_posted = True
        try:
            self._loop.call_soon_threadsafe(self._take_handoff)
        except RuntimeError:  # the loop stopped (a failure already reported)
            raise TransportError(self._failed or f"{self.url}: publisher stopped") from None

    def _take_handoff(self) -> None:
        """(loop thread) Every item handed over so far, in order, to the send queue. The flag
        is cleared first: an item appended after it is read here or by the next wake-up."""
        self._wake_posted = False
        h = self._handoff
        while h:
            self._enqueue(h.popleft())

    def _call(self, coro: Any, timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    # -- the loop thread ---------------------------------------------------------------------

    async def _start(self) -> None:
        o = self.options
        self._nc = await connect(o.servers, f"kalshi-plant-{o.shard}")
        self._js = self._nc.jetstream()
        try:
            self.acked_seq = await stream_last_seqs(self._js, o.env)
        except BaseException:
            await self._nc.close()
            raise
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._slot = asyncio.Event()  # an in-flight publish was answered or timed out
        self._ack_prefix = self._nc.new_inbox() + "."
        self._ack_prefix_len = len(self._ack_prefix)
        await self._nc.subscribe(self._ack_prefix + "*", cb=self._on_reply)
        self._sender = asyncio.ensure_future(self._run())
        self._timer = asyncio.ensure_future(self._timeouts())
        self._leaser = None
        if o.lease_s:
            from kalshi_platform.feed.nats_shard import ShardLease

            self.lease = ShardLease(self._js, o.env, o.shard, self.run_id, o.lease_s)
            await self.lease.open()
            self._leaser = asyncio.ensure_future(self._lease_loop())

    def _enqueue(self, item: Any) -> None:
        self._queue.append(item)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            while self._retry:
                await self._send(self._retry.popleft())
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._queue.popleft()
            if isinstance(item, list) and not self.leading:  # built before the lease was lost
                self.fenced += len(item)
                self._release(len(item))
            elif isinstance(item, list):
                for m in item:
                    await self._send(m)
            elif item[0] == "snap":
                await self._drain()
                await self._publish_marker(item[1], w.snapshot_subject(
                    self.options.env, self.options.shard), snapshot=True)
            elif item[0] == "end":
                await self._drain()
                await self._publish_marker(item[1], w.control_subject(
                    self.options.env, self.options.shard))
            elif item[0] == "stop":
                return

    async def _send(self, m: _Msg) -> None:
        """Publish ``m`` with a reply subject on this publisher's ack inbox (``{inbox}.N``,
        N a counter): the server's ack (or error) comes back to :meth:`_on_reply`. At most
        ``max_inflight`` unacked. Not nats-py's ``publish_async``: its semaphore, per-message
        random token (an ``os.urandom`` call) and future cost 19.6 µs of CPU a message
        against 7.8 µs for this path (measured here, 20k publishes to one node)."""
        now = time.monotonic()
        if now < self._pause_until:
            await asyncio.sleep(self._pause_until - now)
        while len(self._inflight) >= self.options.max_inflight:
            self._slot.clear()
            await self._slot.wait()
        if not self.leading:  # the lease was lost while this one waited: dropped
            self.fenced += 1
            self._release(1)
            return
        self._next_token += 1
        token = str(self._next_token)
        try:
            await self._nc.publish(m.subject, m.payload, reply=self._ack_prefix + token,
                                   headers=m.headers)
        except nats.errors.MaxPayloadError:
            self._fail(f"{self.url}: a {len(m.payload):,}-byte message on {m.subject} is over "
                       f"the server's max_payload; use a smaller max_window")
            return
        except (nats.errors.Error, OSError) as e:
            self._failure(m, e)
            return
        m.sent_at = time.monotonic()
        self._inflight[token] = m

    async def _on_reply(self, msg: Any) -> None:
        """The server's answer to one publish: a PubAck (``{"stream", "seq"[, "duplicate"]}``),
        an API error (``{"error": {"code", "description"}}``; 503 during a leader election),
        or a 503 status without payload (no stream captures the subject: no responders).
        The answer to a publish already timed out and retried is ignored (the retry has its
        own token; dedup makes the second copy harmless)."""
        m = self._inflight.pop(msg.subject[self._ack_prefix_len:], None)
        if m is None:
            return
        self._changed.set()
        self._slot.set()
        try:
            seq, dup = parse_ack(msg)
        except (nats.errors.Error, ValueError) as e:  # retried (see _failure)
            self._failure(m, e)
            return
        self._acked(m, seq, dup)

    def _acked(self, m: _Msg, seq: int, duplicate: bool) -> None:
        now = time.monotonic()
        if self._inflight or self._retry:
            self.max_stall_s = max(self.max_stall_s, now - self._last_ack)
        self._last_ack = now
        self._backoff = 0.0
        self.acked_seq[m.stream] = max(self.acked_seq[m.stream], seq)
        if duplicate:
            self.duplicates += 1
            if m.trade and w.HDR_DUP not in m.headers:
                self._resend_as_dup(m)
                return
        self.acked += 1
        self._release(1)

    def _resend_as_dup(self, m: _Msg) -> None:
        """The trade id was stored by another run: send the part under this run's id (the
        writer skips it; subscribers need its seq to complete the window)."""
        seq = w.decode_part(m.payload)[0].seqs[0]
        h = {w.HDR_MSG_ID: f"{self.run_id}:{seq}", w.HDR_SHARD: self.options.shard,
             w.HDR_DUP: "1"}
        self._retry.append(_Msg(m.subject, m.payload, h, m.stream, trade=True))
        self._wake.set()

    def _failure(self, m: _Msg, e: BaseException) -> None:
        if isinstance(e, (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError,
                          nats.js.errors.ServiceUnavailableError)):
            self.retries["no_responders"] += 1
        elif isinstance(e, (asyncio.TimeoutError, nats.errors.TimeoutError)):
            self.retries["timeout"] += 1
        elif isinstance(e, nats.js.errors.APIError):
            self._fail(f"{self.url}: JetStream refused a message on {m.subject}: {e}")
            return
        else:
            self.retries["other"] += 1
        if not self.leading:  # not retried once the lease is lost (see _drop_unacked)
            self.fenced += 1
            self._release(1)
            return
        m.attempts += 1
        o = self.options
        self._backoff = min(o.backoff_max_s, self._backoff * 2 if self._backoff else o.backoff_s)
        self._pause_until = max(self._pause_until, time.monotonic() + self._backoff)
        self._retry.append(m)
        self._wake.set()

    def _fail(self, text: str) -> None:
        log.error("%s", text)
        self._failed = text
        with self._cond:
            self._cond.notify_all()

    def _release(self, n: int) -> None:
        with self._cond:
            self._built -= n
            self._cond.notify_all()

    async def _timeouts(self) -> None:
        """A publish unacked after ``ack_timeout_s`` is retried (see the module docstring:
        a request nobody answers is never failed by the client)."""
        limit = self.options.ack_timeout_s
        while True:
            await asyncio.sleep(min(0.25, limit / 4))
            now = time.monotonic()
            for token, m in list(self._inflight.items()):
                if now - m.sent_at < limit:
                    break  # in send order: the rest are younger
                del self._inflight[token]  # a late answer to this token is ignored
                self._changed.set()
                self._slot.set()
                self._failure(m, asyncio.TimeoutError())

    async def _drain(self) -> None:
        """Until every message handed over so far is acked (retrying what fails)."""
        while self._inflight or self._retry:
            while self._retry:
                await self._send(self._retry.popleft())
            self._changed.clear()
            if self._inflight:
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass

    async def _publish_marker(self, payload: bytes, subject: str, snapshot: bool = False) -> None:
        """A snapshot (stamped with the acked stream seqs) or END, retried until stored."""
        h = {w.HDR_SHARD: self.options.shard}
        if snapshot:
            h[w.HDR_BOOK_SEQ] = str(self.acked_seq["book"])
            h[w.HDR_EVENTS_SEQ] = str(self.acked_seq["events"])
        delay = self.options.backoff_s
        while True:
            try:
                ack = await self._js.publish(subject, payload, timeout=self.options.ack_timeout_s,
                                             headers=h)
                break
            except nats.errors.MaxPayloadError:  # late joiners wait for a smaller one
                log.error("%s: a %d-byte snapshot is over the server's max_payload; not "
                          "published (raise max_payload in the server config)", self.url,
                          len(payload))
                return
            except nats.js.errors.APIError as e:
                if not isinstance(e, nats.js.errors.ServiceUnavailableError):
                    self._fail(f"{self.url}: JetStream refused a message on {subject}: {e}")
                    return
            except (nats.errors.Error, OSError, asyncio.TimeoutError):
                pass
            self.retries["no_responders"] += 1
            await asyncio.sleep(delay)
            delay = min(self.options.backoff_max_s, delay * 2)
        if snapshot:
            self.snapshots += 1
        else:
            self.acked_seq["events"] = max(self.acked_seq["events"], ack.seq)

    async def _finish(self) -> None:
        deadline = time.monotonic() + self.options.close_timeout_s
        while (self._handoff or self._queue or self._retry or self._inflight) and \
                time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
        self._enqueue(("stop",))
        try:
            await asyncio.wait_for(self._sender, max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise TransportError(f"{self.url}: {self._built} messages still unacked after "
                                 f"{self.options.close_timeout_s:.0f} s") from None
        finally:
            self._timer.cancel()
            if self._leaser is not None:
                self._leaser.cancel()
                if self.leading and self.lease.revision is not None:
                    try:  # hand the shard over at once instead of after the lease time
                        await self.lease.kv.delete(self.lease.key, last=self.lease.revision)
                    except (nats.errors.Error, nats.js.errors.Error):
                        pass
            await self._nc.close()


def attach(stream: Any, url: str, settings: Any = None) -> NatsPublisher:
    """Publish ``stream`` (an :class:`~kalshi_platform.stream.bus.EventStream`) to JetStream
    at ``url``, as a spilling consumer. Returns the publisher (a ``Transport``). Raises
    :class:`TransportError` when it cannot start."""
    pub = NatsPublisher(url, stream.run_id)
    try:
        pub.runner = stream.attach(pub, f"nats:{','.join(pub.options.servers)}",
                                   max_events=int(getattr(settings, "stream_queue_events",
                                                          1_000_000)), overflow="spill")
    except BaseException:
        pub.close()
        raise
    return pub
