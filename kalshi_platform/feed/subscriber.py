"""``Subscriber(url, feeds=…, tickers=…)``: typed plant events from a publisher, with late
joins, gaps and local books handled (docs/feed-protocol.md "Subscribing").

The kdb+tick / Aeron model: a subscriber that joins mid-stream, or sees a seq missing, takes a
snapshot of the books valid at stream seq ``S`` and then applies the events from ``S + 1``;
events at or below ``S`` are dropped. One started before its publisher waits for it and, its
first event being seq 1, needs no snapshot: it sees every seq once, in order. A publisher
restarted under a new ``run_id`` is a new stream (books reset, snapshot again).

On a contiguous transport (ipc, udp) the first message of a run may also be a HEARTBEAT or
END (a late joiner of an idle or finished publisher): ``last_seq`` 0 means complete from the
start, more means a snapshot valid at ``>= last_seq``; and an END whose ``last_seq`` is at or
beyond the next seq expected is a lost tail: ``gap``, snapshot, then ``end``.

Iterating gives :class:`Item` s: ``Item(seq, feed, event)`` with ``feed`` one of
:data:`kalshi_platform.stream.codec.FEEDS` and ``event`` a plant NamedTuple (integer units:
prices micro-dollars, sizes centi-contracts, times ns UTC), or a control item: ``snapshot``
(``event`` = list of :class:`~kalshi_platform.feed.protocol.BookState`, after it is loaded into
:attr:`Subscriber.books`), ``gap`` (``event`` = ``(first_seq, count)``, before the snapshot that
repairs it) and ``end`` (the publisher closed its stream; iteration stops).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Iterable, Iterator, NamedTuple, Protocol

from kalshi_platform.feed import transports
from kalshi_platform.feed.books import BookMirror
from kalshi_platform.feed.protocol import Message
from kalshi_platform.stream.codec import FEED_OF, FEEDS


class Item(NamedTuple):
    """One thing a subscriber sees (see the module docstring)."""

    seq: int
    feed: str
    event: Any


class TransportClient(Protocol):
    """The subscriber side of one transport.

    ``contiguous``: every stream seq reaches this client (ipc, udp), so a seq missing is a
    gap; ``False`` when the server filters (ws), which then reports gaps itself (a ``gap``
    message). ``recv(timeout)`` returns the next :class:`Message` or ``None`` on timeout.
    ``snapshot(min_seq)`` fetches a SNAPSHOT valid at a seq ``>= min_seq`` and returns it,
    or asks for one in band and returns ``None`` (it then arrives through ``recv``).
    """

    contiguous: bool

    def recv(self, timeout: float) -> Message | None: ...

    def snapshot(self, min_seq: int) -> Message | None: ...

    def close(self) -> None: ...


def _ticker_of(ev: Any) -> str | None:
    return getattr(ev, "ticker", None)


class Subscriber:
    """Typed events from ``url`` (``ipc://PATH``, ``udp://HOST:PORT``, ``ws://HOST:PORT``).

    Args:
        feeds: feed names to yield (default all but ``quarantine``); books are kept from the
            ``deltas`` and ``bbo`` feeds whatever is yielded, where the transport carries them.
        tickers: markets to yield and keep books for (default all); feed events (no ticker)
            are always yielded when their feed is asked for.
        depth: keep full ladders (default) or only the BBO (smaller snapshots).
        idle_timeout: stop iterating after this many seconds without any message (``None``:
            wait forever, e.g. for a publisher not started yet).

    Attributes: ``books`` (:class:`BookMirror`), ``run_id``, ``next_seq``, ``gaps``,
    ``snapshots``, ``ended``. Raises :class:`~kalshi_platform.feed.transports.TransportError`
    for a bad URL.
    """

    def __init__(self, url: str, feeds: Iterable[str] | None = None,
                 tickers: Iterable[str] | None = None, *, depth: bool = True,
                 idle_timeout: float | None = None) -> None:
        self.url = url
        wanted = frozenset(feeds) if feeds is not None else frozenset(FEEDS) - {"quarantine"}
        unknown = wanted - set(FEEDS)
        if unknown:
            raise transports.TransportError(f"unknown feed(s) {', '.join(sorted(unknown))}; "
                                            f"choose from {', '.join(FEEDS)}")
        self.feeds = wanted
        self.tickers = None if tickers is None else frozenset(tickers)
        self.depth = depth
        self.idle_timeout = idle_timeout
        self.client = transports.connect(url, feeds=self.feeds, tickers=self.tickers,
                                         depth=depth)
        self.books = BookMirror(self.tickers)
        self.run_id: str | None = None
        self.next_seq: int | None = None
        self.gaps = 0
        self.snapshots = 0
        self.ended = False
        self._waiting_snapshot = False
        self._buffer: list[Message] = []

    # -- iteration -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Item]:
        try:
            while not self.ended:
                msg = self.client.recv(0.5)
                if msg is None:
                    if self._idle():
                        return
                    continue
                self._idle_s = 0.0
                yield from self._on_message(msg)
        finally:
            self.close()

    async def __aiter__(self) -> AsyncIterator[Item]:
        """The same items for ``async for``: a reader thread hands them over in batches."""
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        done = object()

        def pump() -> None:
            batch: list[Item] = []
            try:
                for item in self:
                    batch.append(item)
                    if len(batch) >= 256 or item.feed in ("end", "snapshot", "gap"):
                        loop.call_soon_threadsafe(q.put_nowait, batch)
                        batch = []
            finally:
                loop.call_soon_threadsafe(q.put_nowait, batch)
                loop.call_soon_threadsafe(q.put_nowait, done)

        threading.Thread(target=pump, name="subscriber", daemon=True).start()
        while True:
            got = await q.get()
            if got is done:
                return
            for item in got:
                yield item

    def close(self) -> None:
        self.client.close()

    _idle_s = 0.0

    def _idle(self) -> bool:
        self._idle_s += 0.5
        return self.idle_timeout is not None and self._idle_s >= self.idle_timeout

    # -- protocol ----------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> Iterator[Item]:
        contiguous = self.client.contiguous
        if self.run_id is None or msg.run_id != self.run_id and (
                msg.kind != "heartbeat" or contiguous):
            self._new_stream(msg.run_id)
        kind = msg.kind
        if kind == "snapshot":
            yield from self._on_snapshot(msg)
        elif kind == "events":
            if self._waiting_snapshot:
                self._buffer.append(msg)
            else:
                yield from self._on_events(msg)
        elif kind == "gap":
            yield from self._gap(msg.seq, msg.body[0] if msg.body else 0)
        elif kind == "heartbeat":
            if not contiguous or self._waiting_snapshot:
                return
            if self.next_seq is None:  # the first message of a run (ipc/udp slow joiner)
                if msg.seq == 0:
                    self.next_seq = 1  # joined before seq 1 was sent: complete from the start
                else:
                    yield from self._take_snapshot(msg.seq, pending=None)
            elif msg.seq >= self.next_seq:
                yield from self._gap(self.next_seq, msg.seq - self.next_seq + 1)
        elif kind == "end":
            if contiguous and not self._waiting_snapshot and msg.seq > 0:
                if self.next_seq is None:  # joined at the very end: the final books
                    yield from self._take_snapshot(msg.seq, pending=None)
                elif msg.seq >= self.next_seq:  # the tail was lost
                    yield from self._gap(self.next_seq, msg.seq - self.next_seq + 1)
            self.ended = True
            yield Item(msg.seq, "end", None)

    def _new_stream(self, run_id: str) -> None:
        self.run_id = run_id
        self.next_seq = None
        self.books = BookMirror(self.tickers)
        self._buffer = []
        self._waiting_snapshot = False

    def _on_events(self, msg: Message) -> Iterator[Item]:
        start, events = msg.seq, msg.body
        if self.next_seq is None:
            if start == 1:
                self.next_seq = 1  # joined at the very start: nothing to catch up
            else:
                yield from self._take_snapshot(start - 1, pending=msg)
                return
        if start > self.next_seq and self.client.contiguous:
            yield from self._gap(self.next_seq, start - self.next_seq, pending=msg)
            return
        yield from self._emit(start, events)

    def _emit(self, start: int, events: list) -> Iterator[Item]:
        books = self.books
        feeds = self.feeds
        tickers = self.tickers
        nxt = self.next_seq or start
        for seq, ev in enumerate(events, start):
            if seq < nxt:
                continue  # already reflected in the snapshot
            books.apply(seq, ev)
            feed = FEED_OF.get(type(ev))
            if feed in feeds:
                t = _ticker_of(ev)
                if tickers is None or t is None or t in tickers:
                    yield Item(seq, feed, ev)
        end = start + len(events)
        if end > nxt:
            self.next_seq = end

    def _gap(self, first: int, count: int, pending: Message | None = None) -> Iterator[Item]:
        self.gaps += 1
        yield Item(first, "gap", (first, count))
        yield from self._take_snapshot(first + count - 1, pending)

    def _take_snapshot(self, min_seq: int, pending: Message | None) -> Iterator[Item]:
        if pending is not None:
            self._buffer.append(pending)
        snap = self.client.snapshot(min_seq)
        if snap is None:
            self._waiting_snapshot = True  # in band: it arrives through recv
            return
        yield from self._on_snapshot(snap)

    def _on_snapshot(self, msg: Message) -> Iterator[Item]:
        self.books.load(msg.seq, msg.body)
        self.snapshots += 1
        self.next_seq = msg.seq + 1
        self._waiting_snapshot = False
        yield Item(msg.seq, "snapshot", msg.body)
        buffered, self._buffer = self._buffer, []
        for m in buffered:
            if m.seq + len(m.body) <= self.next_seq:
                continue  # wholly covered by the snapshot
            yield from self._on_events(m)
