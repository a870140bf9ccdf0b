"""The ``ws://`` publisher: a WebSocket feed server on its own thread and asyncio loop.

Layout (threads; none of them is the plant's, which only appends to queues):

* the stream runner of :class:`_Feed` (``overflow="drop"``, bounded by
  ``WsConfig.stream_queue``) hands each batch to the server's loop through a bounded inbox
  (it waits when the loop is behind; the runner then drops and reports a gap);
* a :class:`~kalshi_platform.feed.snapshots.MirrorConsumer` (``overflow="spill"``: never
  loses an event) keeps the books the in-band snapshots are cut from;
* the server thread runs the asyncio loop: ``websockets`` connections, the fan-out (per
  client filtering by feed and ticker, JSON encoded once per event), one writer task per
  client with its own bounded queue, heartbeats;
* a small thread pool takes snapshots off the mirror (it may wait for the mirror to reach a
  seq), so the loop never blocks.

A client whose queue passes ``client_queue`` events is cut off: its queue is dropped, it gets
``{"type":"gap"}`` and a fresh snapshot, then the events after it. Nobody else waits for it.
Message shapes: docs/feed-protocol.md "ws://".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kalshi_platform.feed import protocol
from kalshi_platform.feed.snapshots import MirrorConsumer
from kalshi_platform.feed.ws import (
    WS_VERSION,
    Command,
    CommandError,
    WsConfig,
    encode_event,
    events_message,
    message,
    parse_command,
    snapshot_message,
)
from kalshi_platform.stream.codec import FEED_OF, FEEDS

log = logging.getLogger(__name__)

#: control messages (errors, acks, pongs) queued for one client at most; more are dropped
MAX_CONTROLS = 64
#: a snapshot that cannot reach its seq after this long is sent as it is (logged)
SNAPSHOT_WAIT_S = 10.0


#: inbox events fanned out per loop pass before the client writers get a turn
_DRAIN_EVENTS = 1_000


class _Session:
    """One connected client (loop thread only)."""

    def __init__(self, ws: ServerConnection, cfg: WsConfig) -> None:
        self.ws = ws
        self.peer = "%s:%s" % (ws.remote_address or ("?", "?"))[:2]
        self.cfg = cfg
        self.feeds: frozenset[str] = frozenset()
        self.tickers: frozenset[str] | None = None
        self.depth = True
        self.queue: deque = deque()  # (seq, encoded event), stream order
        self.controls: deque = deque()  # encoded messages sent before anything queued
        self.wake = asyncio.Event()
        self.resync: int | None = None  # a snapshot is due, valid at a seq >= this
        self.gap_first: int | None = None  # first seq of events lost since the last snapshot
        self.synced = False  # a snapshot was delivered (a later loss is a gap)
        self.last_seq = 0  # last seq delivered (an event, or a snapshot's seq)
        self.ending = False
        self.gen = 0  # bumped by every subscribe / unsubscribe
        self.writer: asyncio.Task | None = None
        self.last_send = time.monotonic()
        self.sent = self.dropped = self.gaps = self.snapshots = 0

    def control(self, data: bytes) -> None:
        if len(self.controls) < MAX_CONTROLS:
            self.controls.append(data)
            self.wake.set()

    def stats(self) -> dict[str, Any]:
        return {"peer": self.peer, "feeds": sorted(self.feeds),
                "tickers": None if self.tickers is None else len(self.tickers),
                "queued": len(self.queue), "sent": self.sent, "dropped": self.dropped,
                "gaps": self.gaps, "snapshots": self.snapshots, "last_seq": self.last_seq}


class _Feed:
    """The stream consumer (its runner's thread): batches and gaps into the server's inbox."""

    def __init__(self, server: "WsServer") -> None:
        self.server = server

    def on_batch(self, start_seq: int, events: Sequence[Any]) -> None:
        self.server.post(("batch", start_seq, events), len(events))

    def on_gap(self, first_seq: int, count: int) -> None:
        self.server.post(("gap", first_seq, count), 0)

    def on_idle(self) -> None:
        pass

    def close(self) -> None:
        """End of stream: every client gets what is queued for it, then END (bounded by
        ``end_timeout_s``); then the server stops."""
        self.server.end_stream()


class WsServer:
    """The WebSocket feed server of one stream (see the module docstring).

    Args:
        run_id: the stream's run id.
        cfg: :class:`WsConfig` (host, port, bounds).
        mirror: the :class:`MirrorConsumer` snapshots are cut from (attached to the same
            stream, ``overflow="spill"``, before the first event).
        mirror_failed: returns the mirror runner's failure text or ``None``.

    ``start()`` binds (raises :class:`OSError`); ``consumer`` is the stream consumer to attach.
    Counters: ``position`` (last stream seq fanned out), ``sent``/``dropped`` events over all
    clients, ``gaps``, ``stream_gaps`` (seqs the runner dropped).
    """

    def __init__(self, run_id: str, cfg: WsConfig, mirror: MirrorConsumer,
                 mirror_failed: Any = None) -> None:
        self.run_id = run_id
        self.cfg = cfg
        self.mirror = mirror
        self._mirror_failed = mirror_failed or (lambda: None)
        self.consumer = _Feed(self)
        self.position = 0
        self.stream_gaps = 0
        self._dropped_closed = 0
        self._sent_closed = 0
        self.sessions: dict[int, _Session] = {}
        self._subscribed: dict[int, _Session] = {}
        self._cv = threading.Condition()
        self._inbox: deque = deque()
        self._inbox_events = 0
        self._history: deque = deque()  # (start_seq, events) batches, contiguous to position
        self._history_events = 0
        self._scheduled = False
        self._stopping = False
        self._ending = False  # END is being sent (loop thread)
        self._stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event  # set by _main on the loop: the server is to stop
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="ws-snapshot")
        self._thread = threading.Thread(target=self._run, name=f"ws-server-{cfg.port}",
                                        daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.failed: str | None = None  # the loop died of this (the consumer then raises)
        self.url = cfg.url

    # -- lifecycle (any thread) ----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> "WsServer":
        """Start the loop thread and bind. Raises :class:`OSError` if it cannot."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise OSError(f"ws server on {self.cfg.url} did not start in {timeout} s")
        if self._error is not None:
            raise self._error
        return self

    def end_stream(self) -> None:
        """Queue END after everything posted; wait (bounded) until the server has stopped."""
        self.post(("end",), 0)
        self._stopped.wait(self.cfg.end_timeout_s + 5.0)

    def close(self) -> None:
        """END to every client (if the stream has not ended) and stop. Idempotent."""
        if self._loop is not None and not self._stopped.is_set():
            self.end_stream()
        self._stopping = True
        with self._cv:
            self._cv.notify_all()
        if self._loop is not None and not self._stopped.is_set():
            try:
                self._loop.call_soon_threadsafe(self._done.set)
            except RuntimeError:  # the loop is closed
                pass
        self._thread.join(5.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def post(self, item: tuple, n: int) -> None:
        """Hand one inbox item to the loop (stream runner thread). Waits while the inbox
        holds more than ``stream_queue`` events, so a slow loop makes the runner drop.
        Raises :class:`RuntimeError` when the loop died (the runner marks the consumer
        failed and the plant reports it)."""
        if self.failed is not None:
            raise RuntimeError(f"ws server {self.url} stopped: {self.failed}")
        with self._cv:
            while self._inbox_events > self.cfg.stream_queue and not self._stopping:
                self._cv.wait(0.1)
            if self._stopping or self._loop is None:
                return
            self._inbox.append((item, n))
            self._inbox_events += n
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed
                pass

    def stats(self) -> dict[str, Any]:
        sessions = list(self.sessions.values())
        return {"url": self.url, "subscribers": len(sessions), "position": self.position,
                "sent": self._sent_closed + sum(s.sent for s in sessions),
                "dropped": self._dropped_closed + sum(s.dropped for s in sessions),
                "gaps": sum(s.gaps for s in sessions), "stream_gaps": self.stream_gaps,
                "inbox": self._inbox_events, "clients": [s.stats() for s in sessions]}

    # -- the loop thread -----------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except BaseException as e:  # bind errors surface in start()
            if not self._ready.is_set():
                self._error = e if isinstance(e, OSError) else OSError(str(e))
                self._ready.set()
            else:
                self.failed = f"{type(e).__name__}: {e}"
                log.error("ws server %s stopped: %s", self.url, self.failed)
        finally:
            self._stopping = True
            loop.close()
            self._stopped.set()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        async with serve(self._handler, self.cfg.host, self.cfg.port, compression=None,
                         max_size=1 << 20, ping_interval=20, ping_timeout=20,
                         close_timeout=1.0, server_header=None) as server:
            port = server.sockets[0].getsockname()[1]
            self.url = WsConfig(host=self.cfg.host, port=port).url
            self._loop = loop
            self._done = asyncio.Event()
            self._ready.set()
            log.info("ws feed server on %s (run %s)", self.url, self.run_id)
            beat = asyncio.create_task(self._heartbeats())
            await self._done.wait()
            beat.cancel()
            server.close(close_connections=True)

    def _drain(self) -> None:
        """Fan out at most ``_DRAIN_EVENTS`` inbox events, then let the client writers run
        (the rest is drained on the next loop pass): fanning a whole inbox out at once would
        overflow the queues of clients that keep up."""
        items = []
        with self._cv:
            budget = _DRAIN_EVENTS
            while self._inbox and budget > 0:
                item, n = self._inbox.popleft()
                items.append(item)
                self._inbox_events -= n
                budget -= max(n, 1)
            more = bool(self._inbox)
            self._scheduled = more
            self._cv.notify_all()
        if more:
            asyncio.get_running_loop().call_soon(self._drain)
        try:
            for item in items:
                kind = item[0]
                if kind == "batch":
                    self._fanout(item[1], item[2])
                elif kind == "gap":
                    self._stream_gap(item[1], item[2])
                else:
                    asyncio.get_running_loop().create_task(self._end())
        except Exception as e:  # a bug: make it seen (the consumer raises on its next batch)
            self.failed = f"{type(e).__name__}: {e}"
            log.exception("ws server %s: fan-out failed", self.url)

    def _fanout(self, start: int, events: Sequence[Any]) -> None:
        """Queue each event for every subscribed client that wants it (encoded once)."""
        self.position = start + len(events) - 1
        self._remember(start, events)
        sessions = list(self._subscribed.values())
        if not sessions:
            return
        feeds = [FEED_OF.get(type(e)) for e in events]
        frags: list[bytes | None] = [None] * len(events)
        for s in sessions:
            want, tickers, q = s.feeds, s.tickers, s.queue
            n0 = len(q)
            for i, ev in enumerate(events):
                if feeds[i] not in want:
                    continue
                if tickers is not None:
                    t = getattr(ev, "ticker", None)
                    if t is not None and t not in tickers:
                        continue
                f = frags[i]
                if f is None:
                    f = frags[i] = encode_event(start + i, ev)
                q.append((start + i, f))
            if len(q) > s.cfg.client_queue:
                self._overflow(s)
            elif len(q) > n0:
                s.wake.set()

    def _remember(self, start: int, events: Sequence[Any]) -> None:
        """Keep the last ``history`` events (whole batches) for ``from_seq`` subscribes."""
        bound = self.cfg.history
        if not bound:
            return
        h = self._history
        h.append((start, events))
        self._history_events += len(events)
        while len(h) > 1 and self._history_events - len(h[0][1]) >= bound:
            self._history_events -= len(h.popleft()[1])

    def _replay(self, s: _Session, first: int) -> bool:
        """Queue for ``s`` its events from seq ``first`` out of the history; ``False`` (and
        nothing queued) when the history no longer holds ``first`` or holds more of them
        than ``client_queue``."""
        if first > self.position + 1:
            return False
        h, q = self._history, s.queue
        if first <= self.position and (not h or h[0][0] > first):
            return False
        want, tickers, limit = s.feeds, s.tickers, s.cfg.client_queue
        for start, events in h:
            if start + len(events) <= first:
                continue
            for seq, ev in enumerate(events, start):
                if seq < first or FEED_OF.get(type(ev)) not in want:
                    continue
                if tickers is not None:
                    t = getattr(ev, "ticker", None)
                    if t is not None and t not in tickers:
                        continue
                q.append((seq, encode_event(seq, ev)))
                if len(q) > limit:
                    q.clear()
                    return False
        return True

    def _overflow(self, s: _Session, first: int | None = None) -> None:
        """``s`` lost what was queued for it: drop its queue; a gap and a snapshot follow."""
        if s.queue:
            first = s.queue[0][0]
        if s.synced and s.gap_first is None and first is not None:
            s.gap_first = first
        s.dropped += len(s.queue)
        s.queue.clear()
        s.resync = self.position
        s.wake.set()

    def _stream_gap(self, first: int, count: int) -> None:
        """The stream runner dropped ``count`` seqs from ``first``: every client resyncs."""
        self.stream_gaps += count
        self.position = first + count - 1
        self._history.clear()  # a history with a hole cannot be replayed
        self._history_events = 0
        log.warning("ws server %s fell behind the plant: %d events dropped from seq %d",
                    self.url, count, first)
        for s in self._subscribed.values():
            self._overflow(s, first)

    async def _end(self) -> None:
        self._ending = True
        for s in self.sessions.values():
            s.ending = True
            s.wake.set()
        tasks = [t for t in self._writers() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=self.cfg.end_timeout_s)
        self._done.set()

    def _writers(self) -> list[asyncio.Task]:
        return [s.writer for s in self.sessions.values() if s.writer is not None]

    async def _heartbeats(self) -> None:
        every = self.cfg.heartbeat_s
        while True:
            await asyncio.sleep(every / 4)
            now = time.monotonic()
            for s in self.sessions.values():
                if not s.queue and s.resync is None and now - s.last_send >= every:
                    s.last_send = now
                    s.control(message("heartbeat", run_id=self.run_id, seq=self.position))

    # -- one connection -------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        s = _Session(ws, self.cfg)
        key = id(s)
        self.sessions[key] = s
        s.control(message("hello", version=WS_VERSION, run_id=self.run_id, seq=self.position,
                          feeds=list(FEEDS)))
        s.writer = asyncio.get_running_loop().create_task(self._writer(s))
        s.ending = self._ending  # connected after the end: hello, END
        try:
            async for data in ws:
                self._command(s, data)
        except ConnectionClosed:
            pass
        finally:
            self._subscribed.pop(key, None)
            self.sessions.pop(key, None)
            self._sent_closed += s.sent
            self._dropped_closed += s.dropped
            if not s.writer.done():
                s.writer.cancel()

    def _command(self, s: _Session, data: Any) -> None:
        """One client message: a command, or an ``error`` message back (never a disconnect)."""
        try:
            c = parse_command(data, self.cfg.max_tickers)
        except CommandError as e:
            s.control(message("error", error=str(e), cmd=e.cmd))
            return
        try:
            if c.cmd == "subscribe":
                self._subscribe(s, c)
            elif c.cmd == "unsubscribe":
                self._unsubscribe(s, c)
            elif c.cmd == "snapshot":
                if not s.feeds:
                    raise CommandError("snapshot needs a subscription first")
                s.resync = max(c.min_seq, s.resync or 0)
                s.wake.set()
            else:
                s.control(message("pong", id=c.id, run_id=self.run_id, seq=self.position))
        except CommandError as e:
            s.control(message("error", error=str(e), cmd=c.cmd))

    def _subscribe(self, s: _Session, c: Command) -> None:
        """Replace ``s``'s subscription. With ``from_seq`` (1, or a seq of this run) the events
        from it come out of the history when it still holds them (for 1, after the empty
        snapshot valid at seq 0); otherwise, and without ``from_seq``, a snapshot first, and a
        gap before it for a ``from_seq`` that could not be honoured."""
        s.feeds, s.tickers, s.depth = c.feeds or frozenset(), c.tickers, c.depth
        s.gen += 1
        s.dropped += len(s.queue)
        s.queue.clear()
        s.gap_first = None
        s.synced = False
        self._subscribed[id(s)] = s
        resume = c.from_seq if c.from_seq == 1 or c.run_id == self.run_id else None
        if resume is not None and self._replay(s, resume):
            s.control(self._ack(s, resume))
            if resume == 1:
                s.control(snapshot_message(self.run_id, 0, s.depth, []))
                s.snapshots += 1
            s.synced, s.last_seq, s.resync = True, resume - 1, None
            s.wake.set()
            return
        if resume is not None and resume <= self.position:
            s.synced, s.gap_first = True, resume  # lost: the gap goes before the snapshot
        s.resync = c.min_seq
        s.control(self._ack(s, None))

    def _unsubscribe(self, s: _Session, c: Command) -> None:
        s.gen += 1
        if c.tickers is not None:
            if s.tickers is None:
                raise CommandError("this subscription is to all tickers: subscribe again "
                                   "with a ticker list instead of unsubscribing tickers")
            s.tickers = s.tickers - c.tickers
        if c.feeds is not None:
            s.feeds = s.feeds - c.feeds
        if (c.feeds is None and c.tickers is None) or not s.feeds or s.tickers == frozenset():
            s.feeds, s.tickers = frozenset(), None
            self._subscribed.pop(id(s), None)
            s.queue.clear()
            s.resync = None
        s.control(self._ack(s, None))

    def _ack(self, s: _Session, from_seq: int | None) -> bytes:
        return message("subscribed", run_id=self.run_id, feeds=sorted(s.feeds),
                       tickers=None if s.tickers is None else sorted(s.tickers),
                       depth="full" if s.depth else "bbo", from_seq=from_seq)

    async def _writer(self, s: _Session) -> None:
        """Send ``s`` its controls, snapshots and events in order; END at the end."""
        ws = s.ws
        try:
            while True:
                if s.controls:
                    await ws.send(s.controls.popleft(), text=True)
                elif s.resync is not None:
                    await self._resync(s)
                elif s.queue:
                    data, n = self._take_events(s)
                    if n:
                        await ws.send(data, text=True)
                        s.sent += n
                elif s.ending:
                    await ws.send(message("end", run_id=self.run_id, seq=self.position),
                                  text=True)
                    await ws.close(1000, "end of stream")
                    return
                else:
                    s.wake.clear()
                    await s.wake.wait()
                    continue
                s.last_send = time.monotonic()
        except ConnectionClosed:
            pass
        except Exception as e:  # a bug must not go unseen, nor stop the others
            log.exception("ws client %s: writer failed: %s", s.peer, e)
            try:
                await ws.close(1011, "server error")
            except Exception:
                pass

    def _take_events(self, s: _Session) -> tuple[bytes, int]:
        q, last = s.queue, s.last_seq
        frags = []
        limit = self.cfg.max_message_events
        while q and len(frags) < limit:
            seq, f = q.popleft()
            if seq > last:
                frags.append(f)
                last = seq
        s.last_seq = last
        return events_message(self.run_id, frags), len(frags)

    async def _resync(self, s: _Session) -> None:
        """Snapshot ``s``'s books at a seq >= what it is due, preceded by its gap if it lost
        events; queued events the snapshot covers are dropped."""
        loop = asyncio.get_running_loop()
        snap = None
        while s.resync is not None:  # set again if it overflowed or re-subscribed meanwhile
            min_seq = max(s.resync, self.position)
            s.resync = None
            gen, depth = s.gen, s.depth
            snap = await loop.run_in_executor(self._pool, self._books_at, s.tickers, depth,
                                              min_seq)
            if s.gen != gen and s.resync is None:
                return  # unsubscribed meanwhile
        if snap is None:
            return
        m = snap.seq
        gap, s.gap_first = s.gap_first, None
        q = s.queue
        while q and q[0][0] <= m:
            q.popleft()
        s.synced, s.last_seq = True, m  # before the sends: a loss during them is a gap too
        if gap is not None:
            await s.ws.send(message("gap", run_id=self.run_id, first_seq=gap,
                                    count=max(1, m - gap + 1)), text=True)
            s.gaps += 1
        await s.ws.send(snapshot_message(self.run_id, m, depth, snap.body), text=True)
        s.snapshots += 1

    def _books_at(self, tickers: frozenset[str] | None, depth: bool,
                  min_seq: int) -> protocol.Message:
        """A snapshot from the mirror valid at a seq >= ``min_seq`` (snapshot pool thread)."""
        deadline = time.monotonic() + SNAPSHOT_WAIT_S
        want = None if tickers is None else sorted(tickers)
        while True:
            msg = protocol.decode(self.mirror.snapshot(want, depth, min_seq, timeout=1.0))
            if msg.seq >= min_seq:
                return msg
            failed = self._mirror_failed()
            if failed is not None or time.monotonic() > deadline or self._stopping:
                log.error("ws server %s: book mirror at seq %d, wanted %d (%s); sending it",
                          self.url, msg.seq, min_seq, failed or "timeout")
                return msg
