"""The subscriber side of ``nats://``: a
:class:`~kalshi_platform.feed.subscriber.TransportClient` reading JetStream
(docs/scale-out.md "Subscribing over nats://").

A client follows **one run of one shard** (``?shard=``, default ``0``):

1. It reads the shard's latest snapshot (``kalshi.{env}.snapshot.{shard}``, the last message
   kept per subject) with the BOOK and EVENTS stream seqs it is valid at (headers). If that
   run has not ended (the shard's last control message is not its END), the snapshot is the
   first message it hands out and both streams are consumed from the next stream seq.
   Otherwise (no snapshot, or the run ended) it waits for the next run to start at seq 1,
   consuming both streams from their ends (or from the start when there was no snapshot).
2. Two ordered push consumers (no subject filter; multi-filter consumers are silently ignored
   by nats-server 2.9.10) feed a reassembler: every PART of a window is kept until the window's
   seqs are all there; then its events, in stream order, are one EVENTS message. Windows are
   handed out in chain order, so the events come in the plant's order whatever the streams'
   interleaving or a retried publish's place.
3. A window that is still incomplete ``reorder_s`` after a later one completed is a gap: a
   ``gap`` message, then :meth:`Client.snapshot` returns the shard's latest snapshot (valid at
   or after the gap's end; waited for up to ``snapshot_timeout_s``).
4. The run's END, once every window up to its ``last_seq`` was handed out, ends it.
5. Parts of another run (a restarted publisher, a standby that took the shard over) are kept
   while the shard's latest snapshot is read; if it is that run's, the client switches: the
   snapshot, then that run's windows after it (the subscriber sees a new run id).

A consumer that stops moving while its stream holds more (an ordered consumer stalled after
a node failover) is recreated from the next stream seq (``watchdog_s``).

``contiguous`` is false (the client reports gaps itself). Feeds and tickers are filtered by
:class:`~kalshi_platform.feed.subscriber.Subscriber`; the client reads every message of the
streams (it needs every seq of a window), in the connection's own thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from kalshi_platform.feed import nats_wire as w
from kalshi_platform.feed import protocol
from kalshi_platform.feed.nats_conn import connect, stream_last_seqs
from kalshi_platform.feed.protocol import Message
from kalshi_platform.feed.transports import TransportError
from kalshi_platform.stream.codec import CodecError


def _stream_seq(m: Any) -> int:
    """The stream seq of a delivered message, from its ack subject
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>``
    (nats-server 2.9 without a domain; other forms through nats-py's ``metadata``, a
    dataclass of every field: the dearer path on every message)."""
    tokens = m.reply.split(".")
    if len(tokens) == 9:
        return int(tokens[5])
    return m.metadata.sequence.stream


class Client:
    """See the module docstring. Raises :class:`TransportError` for a bad URL or when no
    server answers."""

    contiguous = False

    def __init__(self, url: str, *, feeds: frozenset[str] | None = None,
                 tickers: frozenset[str] | None = None, depth: bool = True) -> None:
        self.url = url
        self.options = o = w.parse_url(url)
        self.names = w.stream_names(o.env)
        self.out: queue.Queue = queue.Queue()
        self.run_id: str | None = None
        self.next_first: int | None = None  # first seq of the next window to hand out
        self._windows: dict[int, list] = {}  # first → [last, got, [(seqs, events), ...]]
        self._end: Message | None = None
        self._waiting_new_run = False
        self._blocked_since: float | None = None
        self._blocked_at: int | None = None  # the next_first that is blocked
        self._adopting: dict[str, list] = {}  # run id → its parts, while its snapshot is read
        self._adopted_end: dict[str, Message] = {}  # run id → its END, while adopting
        self._rejected: set[str] = set()
        self._closed = False
        self.parts = 0
        self.resubscribes = 0
        self._subs: dict[str, Any] = {}
        self._pos = {"book": 0, "events": 0}  # last stream seq received, per stream
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-subscribe",
                                        daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        except BaseException:
            self._stop()
            raise

    # -- TransportClient -------------------------------------------------------------------

    def recv(self, timeout: float) -> Message | None:
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            return None

    def snapshot(self, min_seq: int) -> Message:
        """The shard's latest snapshot valid at a seq ``>= min_seq`` (after a gap). Raises
        :class:`TransportError` when none comes within ``snapshot_timeout_s``."""
        fut = asyncio.run_coroutine_threadsafe(self._resync(min_seq), self._loop)
        return fut.result(self.options.snapshot_timeout_s + 5)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        except Exception:  # already closed or the loop is gone
            pass
        self._stop()

    async def _shutdown(self) -> None:
        await self._nc.close()
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # -- the loop thread ---------------------------------------------------------------------

    async def _start(self) -> None:
        o = self.options
        self._nc = await connect(o.servers, f"kalshi-subscriber-{o.shard}")
        self._js = self._nc.jetstream()
        try:
            await stream_last_seqs(self._js, o.env)  # the streams exist, or one clear line
        except BaseException:
            await self._nc.close()
            raise
        snap = await self._last_snapshot()
        starts: dict[str, int | None] = {"book": None, "events": None}
        if snap is not None:
            msg, seqs = snap
            if await self._ended(msg.run_id):
                self._waiting_new_run = True
                starts = {k: v + 1 for k, v in seqs.items()}
            else:
                self._load(msg)
                starts = {k: v + 1 for k, v in seqs.items()}
        else:
            self._waiting_new_run = True
        for key in ("book", "events"):
            await self._subscribe(key, starts[key])
        asyncio.ensure_future(self._watch_gaps())
        if o.watchdog_s:
            asyncio.ensure_future(self._watchdog())

    async def _subscribe(self, key: str, start: int | None) -> None:
        """An ordered push consumer on stream ``key`` from stream seq ``start`` (``None``:
        from the first message)."""
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL) if start is None else \
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)

        if start is not None:
            self._pos[key] = max(self._pos[key], start - 1)

        async def cb(m: Any, key: str = key) -> None:
            self._pos[key] = _stream_seq(m)
            await self._on_msg(m)

        self._subs[key] = await self._js.subscribe("", stream=self.names[key],
                                                   ordered_consumer=True, cb=cb, config=cfg)

    async def _watchdog(self) -> None:
        """docs/fanout-and-scale.md saw a nats-py ordered consumer stall after a node
        failover: one that has not moved for ``watchdog_s`` while its stream holds later
        messages is recreated from the next stream seq (``resubscribes``)."""
        moved = {k: (self._pos[k], time.monotonic()) for k in self._subs}
        while True:
            await asyncio.sleep(min(1.0, self.options.watchdog_s / 2))
            for key in list(self._subs):
                pos, since = moved[key]
                now = time.monotonic()
                if self._pos[key] != pos:
                    moved[key] = (self._pos[key], now)
                    continue
                if now - since < self.options.watchdog_s:
                    continue
                try:
                    last = (await self._js.stream_info(self.names[key])).state.last_seq
                    if last <= pos:
                        moved[key] = (pos, now)  # idle, not stalled
                        continue
                    try:
                        await self._subs[key].unsubscribe()
                    except nats.errors.Error:
                        pass  # the stalled consumer may be gone already
                    await self._subscribe(key, pos + 1)
                    self.resubscribes += 1
                except (nats.errors.Error, asyncio.TimeoutError):
                    pass  # NATS unreachable: try again at the next check
                moved[key] = (self._pos[key], time.monotonic())

    async def _last_snapshot(self) -> tuple[Message, dict[str, int]] | None:
        try:
            raw = await self._js.get_last_msg(self.names["snapshots"], w.snapshot_subject(
                self.options.env, self.options.shard))
        except nats.js.errors.NotFoundError:
            return None
        h = raw.headers or {}
        return protocol.decode(raw.data), {"book": int(h.get(w.HDR_BOOK_SEQ, 0)),
                                           "events": int(h.get(w.HDR_EVENTS_SEQ, 0))}

    async def _ended(self, run_id: str) -> bool:
        try:
            raw = await self._js.get_last_msg(self.names["events"], w.control_subject(
                self.options.env, self.options.shard))
        except nats.js.errors.NotFoundError:
            return False
        m = protocol.decode(raw.data)
        return m.kind == "end" and m.run_id == run_id

    def _load(self, msg: Message) -> None:
        self.run_id, self.next_first = msg.run_id, msg.seq + 1
        self._windows = {f: v for f, v in self._windows.items() if f > msg.seq}
        self._waiting_new_run = False
        self.out.put(msg)

    async def _on_msg(self, m: Any) -> None:
        h = m.headers or {}
        if h.get(w.HDR_SHARD) != self.options.shard:
            return
        data = m.data
        try:
            kind = w.kind_of(data)
            if kind == w.PART:
                part, events = w.decode_part(data)
                self._on_part(part, events)
            elif kind == protocol.END:
                msg = protocol.decode(data)
                if msg.run_id == self.run_id:
                    self._end = msg
                elif msg.run_id in self._adopting:  # a run being switched to ended already
                    self._adopted_end[msg.run_id] = msg
            else:
                return
        except (CodecError, protocol.ProtocolError):
            return  # not ours to read
        self._hand_out()

    def _on_part(self, part: w.Part, events: list) -> None:
        self.parts += 1
        if part.first == 0:  # a takeover marker, outside the window chain
            nxt = self.next_first
            if not part.seqs:
                return  # its copy on the BOOK stream (for the writer's fence)
            if part.run_id == self.run_id and nxt is not None and part.last >= nxt:
                # the run we follow withheld windows while fenced: resync now
                self.out.put(Message("gap", part.run_id, nxt, [part.last - nxt + 1]))
            return
        if part.run_id != self.run_id:
            if self._waiting_new_run and part.first == 1:
                self._follow_from_start(part.run_id)
            else:
                self._other_run(part, events)
                return
        if self.next_first is not None and part.last < self.next_first:
            return  # already handed out (or covered by the snapshot)
        win = self._windows.get(part.first)
        if win is None:
            win = self._windows[part.first] = [part.last, 0, []]
        win[1] += len(part.seqs)
        win[2].append((part.seqs, events))

    def _follow_from_start(self, run: str) -> None:
        """Follow ``run`` from its window 1 (this client waits for a new run and has its
        first window). Its later windows may have come first, on the other stream (each
        stream has its own consumer): they were kept for adoption by snapshot, and are taken
        now instead (the adoption then stands down, see :meth:`_adopt`)."""
        self.run_id, self.next_first = run, 1
        self._windows, self._waiting_new_run = {}, False
        self._end = self._adopted_end.pop(run, None)
        for part, events in self._adopting.pop(run, []):
            self._on_part(part, events)

    def _other_run(self, part: w.Part, events: list) -> None:
        """A part of a run this client does not follow: a restarted publisher or a standby
        that took the shard over. Kept while the shard's latest snapshot is checked: if it
        is that run's, the client switches to it (snapshot, then that run's windows)."""
        run = part.run_id
        if run in self._rejected:
            return
        kept = self._adopting.get(run)
        if kept is None:
            kept = self._adopting[run] = []
            asyncio.ensure_future(self._adopt(run))
        if len(kept) < 100_000:
            kept.append((part, events))

    async def _adopt(self, run: str) -> None:
        deadline = time.monotonic() + self.options.snapshot_timeout_s
        while time.monotonic() < deadline:
            if self.run_id == run:  # followed from its window 1 meanwhile
                return
            snap = await self._last_snapshot()
            if self.run_id == run:
                return
            if snap is not None and snap[0].run_id == run:
                kept = self._adopting.pop(run, [])
                self._windows, self._end = {}, self._adopted_end.pop(run, None)
                self._load(snap[0])
                for part, events in kept:
                    if part.last > snap[0].seq:
                        self._on_part(part, events)
                self._hand_out()
                return
            await asyncio.sleep(0.1)
        self._adopting.pop(run, None)
        self._adopted_end.pop(run, None)
        self._rejected.add(run)  # an old run, or one without a snapshot: not followed

    def _hand_out(self) -> None:
        wins = self._windows
        while self.next_first in wins:
            last, got, parts = wins[self.next_first]
            if got < last - self.next_first + 1:
                break
            del wins[self.next_first]
            evs: list = [None] * (last - self.next_first + 1)
            base = self.next_first
            for seqs, events in parts:
                for s, ev in zip(seqs, events):
                    evs[s - base] = ev
            self.out.put(Message("events", self.run_id, base, evs))
            self.next_first = last + 1
        # blocked: the next window is missing or partial while a later one has parts; the
        # clock starts when that next window first blocks (a retried publish is late, not lost)
        if len(wins) > (1 if self.next_first in wins else 0):
            if self._blocked_at != self.next_first:
                self._blocked_at, self._blocked_since = self.next_first, time.monotonic()
        else:
            self._blocked_at = self._blocked_since = None
        e = self._end
        if e is not None and self.next_first is not None and e.seq < self.next_first:
            self.out.put(e)
            self._end = None
            self._waiting_new_run = True

    async def _watch_gaps(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            b, nxt = self._blocked_since, self.next_first
            if b is None or nxt is None or time.monotonic() - b < self.options.reorder_s:
                continue
            later = min((f for f in self._windows if f > nxt), default=None)
            if later is None:
                continue
            self._blocked_at = self._blocked_since = None
            self.out.put(Message("gap", self.run_id or "", nxt, [later - nxt]))

    async def _resync(self, min_seq: int) -> Message:
        deadline = time.monotonic() + self.options.snapshot_timeout_s
        while True:
            snap = await self._last_snapshot()
            if snap is not None and snap[0].run_id == self.run_id and snap[0].seq >= min_seq:
                msg = snap[0]
                self.next_first = msg.seq + 1
                self._windows = {f: v for f, v in self._windows.items() if f > msg.seq}
                asyncio.get_running_loop().call_soon(self._hand_out)
                return msg
            if time.monotonic() > deadline:
                raise TransportError(f"{self.url}: no snapshot at seq >= {min_seq} within "
                                     f"{self.options.snapshot_timeout_s:.0f} s")
            await asyncio.sleep(0.2)
