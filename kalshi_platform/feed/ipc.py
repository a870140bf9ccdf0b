"""``ipc://PATH``: the plant's event stream to subscriber processes on this host
(docs/feed-protocol.md "ipc://").

Socket layout, one endpoint per plant, many subscriber processes:

* ``PATH``: a ZeroMQ ``XPUB`` socket bound at ``ipc://PATH`` (a unix stream socket). Every
  message is one feed protocol message (:mod:`.protocol`): EVENTS (one per committed batch;
  batches already queued when the publisher is behind are merged; at most ``max_batch``
  events), HEARTBEAT about every second while idle, END at the close.
  Subscribers are ``SUB`` sockets subscribed to everything (the empty prefix): the stream is
  contiguous, a missing seq is a gap.
* ``PATH.snap``: the snapshot service (:class:`~kalshi_platform.feed.snapshots.SnapshotService`
  on a unix socket) answering late joiners and subscribers that saw a gap.

Publisher (:func:`attach`, :class:`IpcPublisher`): a stream consumer on its own thread
(``overflow="drop"``, bounded by ``queue`` events) that encodes each batch and sends it with
``NOBLOCK``: a subscriber whose queue is full (``hwm`` messages at the publisher, ``rcvhwm`` at
the subscriber, plus the kernel's socket buffer) loses messages, the others do not, and the plant
is never slowed; that subscriber then sees a seq gap and fetches a snapshot. The ``XPUB`` (rather
than ``PUB``) gives the publisher the subscriber count (``XPUB_VERBOSER``) and, through
``XPUB_NODROP`` (a send fails if any queue is full; the socket then refreshes what its peers
have read and retries, and only if still full sends lossily), a count of the times a
subscriber's queue was really full (``hwm_full``). A :class:`~kalshi_platform.feed.snapshots.MirrorConsumer` (``overflow="spill"``)
keeps the books the snapshot service serves.

At the close the publisher sends END, repeats it every 100 ms while subscribers are still
connected (one that was full gets it once it has drained), and keeps the snapshot service up
until they have all gone or ``end_timeout_s`` passed; then the sockets close with a linger, so
END is flushed before they do.

Slow joiners: a SUB receives nothing sent before its subscription reached the publisher, so a
late joiner's first message is an EVENTS with ``start_seq > 1`` or a HEARTBEAT with
``last_seq > 0``: either makes it take a snapshot (:mod:`.subscriber`). A HEARTBEAT with
``last_seq == 0`` or EVENTS from seq 1 means it is complete from the start. A subscriber
started before its publisher keeps connecting (every 20 ms) until the publisher binds; the
publisher holds its first message back ``grace_s`` (default 0.2 s) after binding so that such
subscribers are connected by then, or, with ``wait_subscribers=N``, until N subscribers are
connected (at most ``wait_timeout_s``): then they see every seq once, in order.

URL options (query string; unknown ones raise :class:`TransportError`)::

    ipc:///tmp/kalshi.feed?hwm=2000&wait_subscribers=1

publisher: ``hwm`` (messages queued per subscriber, default 1000), ``sndbuf`` (kernel socket
buffer bytes, default the OS's), ``queue`` (events the consumer may lag the plant, default
``settings.stream_queue_events``), ``max_batch`` (events per EVENTS message, 256),
``heartbeat_s`` (1.0), ``end_timeout_s`` (5.0), ``grace_s`` (0.2), ``wait_subscribers`` (0),
``wait_timeout_s`` (30); subscriber: ``rcvhwm`` (messages, default 4000), ``snapshot_timeout_s``
(10). Each side ignores the other side's options, so both can use the same URL.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Sequence
from urllib.parse import parse_qsl

import zmq

from kalshi_platform.feed import protocol
from kalshi_platform.feed.protocol import Message
from kalshi_platform.feed.snapshots import MirrorConsumer, SnapshotService, fetch_snapshot
from kalshi_platform.feed.transports import TransportError

log = logging.getLogger(__name__)

#: longest unix socket path (``sun_path`` is 108 bytes with its NUL)
MAX_PATH = 107
SNAP_SUFFIX = ".snap"
_END_REPEAT_S = 0.1


@dataclass
class IpcOptions:
    """Options of an ``ipc://`` URL (see the module docstring); times in seconds."""

    hwm: int = 1000
    sndbuf: int = -1
    queue: int | None = None
    max_batch: int = 256
    heartbeat_s: float = 1.0
    end_timeout_s: float = 5.0
    grace_s: float = 0.2
    wait_subscribers: int = 0
    wait_timeout_s: float = 30.0
    rcvhwm: int = 4000
    snapshot_timeout_s: float = 10.0


def parse_url(url: str) -> tuple[str, IpcOptions]:
    """``ipc://PATH[?opt=value&...]`` → ``(PATH, options)``. PATH is a filesystem path
    (absolute, or relative to the current directory). Raises :class:`TransportError`."""
    if not url.startswith("ipc://"):
        raise TransportError(f"not an ipc:// URL: {url!r}")
    rest = url[len("ipc://"):]
    path, _, query = rest.partition("?")
    if not path:
        raise TransportError(f"{url!r}: ipc:// needs a path, e.g. ipc:///tmp/kalshi.feed")
    if path.startswith("@"):
        raise TransportError(f"{url!r}: abstract unix sockets are not supported; use a path")
    if len((path + SNAP_SUFFIX).encode()) > MAX_PATH:
        raise TransportError(f"{url!r}: path too long for a unix socket (with {SNAP_SUFFIX!r} "
                             f"at most {MAX_PATH} bytes)")
    opts = IpcOptions()
    types = {f.name: f.type for f in fields(IpcOptions)}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in types:
            raise TransportError(f"{url!r}: unknown ipc option {key!r}; known: "
                                 + ", ".join(types))
        try:
            v: Any = float(value) if "float" in str(types[key]) else int(value)
        except ValueError:
            raise TransportError(f"{url!r}: option {key}={value!r} is not a number") from None
        if v < 0 and key != "sndbuf":
            raise TransportError(f"{url!r}: option {key} must be >= 0")
        setattr(opts, key, v)
    if opts.max_batch < 1:
        raise TransportError(f"{url!r}: max_batch must be >= 1")
    return path, opts


def _check_free(path: str) -> None:
    """Raise :class:`TransportError` if a live process listens on unix socket ``path`` (a
    stale socket file is fine: it is replaced)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
    except OSError:
        return  # absent, refused (stale file) or not a socket: bind decides
    finally:
        s.close()
    raise TransportError(f"ipc://{path}: another publisher is running there")


def _unlink_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass


class IpcPublisher:
    """The publisher side of ``ipc://PATH``: a stream consumer and a ``Transport``.

    Works without a plant too (benchmarks): call :meth:`on_batch` with consecutive batches
    from one thread, then :meth:`close`.

    Args:
        path: the socket path (``ipc://`` stripped), or a whole ``ipc://`` URL (its options
            then replace ``options``).
        run_id: the stream's run id (stamped on every message).
        options: :class:`IpcOptions`.
        snapshots: the :class:`MirrorConsumer` whose books the snapshot service at
            ``PATH.snap`` serves (``None``: no snapshot service).

    Raises :class:`TransportError` if another publisher is live at PATH or the path is bad,
    :class:`OSError` if it cannot bind.
    """

    def __init__(self, path: str, run_id: str, options: IpcOptions | None = None,
                 snapshots: MirrorConsumer | None = None) -> None:
        if path.startswith("ipc://"):
            path, options = parse_url(path)
        self.path = path
        self.url = f"ipc://{path}"
        self.run_id = run_id
        self.options = o = options or IpcOptions()
        self.runner: Any = None  # set by attach(): the ConsumerRunner (lag, dropped)
        _check_free(path)
        _check_free(path + SNAP_SUFFIX)
        self._ctx = zmq.Context(io_threads=1)
        self._sock = s = self._ctx.socket(zmq.XPUB)
        s.setsockopt(zmq.SNDHWM, o.hwm)
        if o.sndbuf > 0:
            s.setsockopt(zmq.SNDBUF, o.sndbuf)
        s.setsockopt(zmq.XPUB_VERBOSER, 1)  # every (un)subscription: an exact count
        s.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue shows (then: lossy retry)
        s.setsockopt(zmq.LINGER, 0)
        try:
            s.bind(self.url)
        except zmq.ZMQError as e:
            s.close()
            self._ctx.term()
            raise TransportError(f"cannot publish on {self.url}: {e}") from None
        self._service: SnapshotService | None = None
        if snapshots is not None:
            try:
                self._service = SnapshotService(snapshots, path + SNAP_SUFFIX).start()
            except OSError:
                s.close()
                self._ctx.term()
                raise
        self._bound_at = time.monotonic()
        self._held = o.grace_s > 0 or o.wait_subscribers > 0
        self._last_send = self._bound_at
        self._last_seq = 0
        self._closed = False
        self._pending: list = []  # merged batches not sent yet (see on_batch)
        self._pending_start = 0
        self._lock = threading.RLock()  # the socket is used by one thread at a time
        # counters (written by the consumer thread, read by stats())
        self.sent = self.messages = self.bytes = 0
        self.hwm_full = 0
        self.heartbeats = 0
        self.gap_events = 0
        self.subscribers = 0
        self.end_sent = 0
        log.info("publishing on %s (snapshots at %s)", self.url, path + SNAP_SUFFIX)

    # -- stream consumer (the consumer thread) -----------------------------------------------

    def on_batch(self, start_seq: int, events: Sequence[Any]) -> None:
        """Send events ``start_seq …``. While more batches are already queued for this
        publisher (it fell behind the plant), consecutive batches are merged into one EVENTS
        message of up to ``max_batch`` events (nothing ever waits for a batch to come)."""
        with self._lock:
            if self._closed:
                return
            if self._held:
                self._hold_first()
            r = self.runner
            more = r is not None and r.lag > len(events)  # lag counts this batch too
            pend = self._pending
            if pend:
                pend.extend(events)
                if more and len(pend) < self.options.max_batch:
                    return
                start_seq, events = self._pending_start, pend
                self._pending = []
            elif more and len(events) < self.options.max_batch:
                self._pending_start, self._pending = start_seq, list(events)
                return
            self._send_events(start_seq, events)

    def on_gap(self, first_seq: int, count: int) -> None:
        """The stream runner dropped ``count`` events (this consumer fell behind the plant):
        what is merged so far is sent; subscribers see the missing seqs in the next EVENTS."""
        with self._lock:
            self.gap_events += count
            self._flush_pending()

    def on_idle(self) -> None:
        """Subscription bookkeeping, and a HEARTBEAT when nothing was sent for
        ``heartbeat_s``."""
        with self._lock:
            if self._closed:
                return
            self._flush_pending()
            self._read_subscriptions()
            if time.monotonic() - self._last_send >= self.options.heartbeat_s:
                self._send(protocol.encode_control(protocol.HEARTBEAT, self.run_id,
                                                   self._last_seq))
                self.heartbeats += 1

    def close(self) -> None:
        """End of stream: END to every subscriber, then the sockets close (see the module
        docstring); blocks up to ``end_timeout_s`` while subscribers are still connected.
        Idempotent; any thread (the socket is only used under a lock)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._send_end_and_drain()
            finally:
                self._closed = True
                self._sock.close(linger=1000)  # END still queued is flushed first
                self._ctx.term()
                _unlink_socket(self.path)  # libzmq leaves the socket file behind
                if self._service is not None:
                    self._service.close()

    # -- Transport ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: ``sent`` events, ``messages``, ``bytes``, ``dropped`` (events the stream
        runner dropped because this publisher fell behind), ``hwm_full`` (times a subscriber's
        queue was full: it lost messages from there until it drained), ``subscribers``
        (connected now), ``lag`` (events queued for this publisher), ``heartbeats``."""
        r = self.runner
        return {"url": self.url, "sent": self.sent, "messages": self.messages,
                "bytes": self.bytes, "dropped": r.dropped if r is not None else self.gap_events,
                "hwm_full": self.hwm_full, "subscribers": self.subscribers,
                "lag": r.lag if r is not None else 0, "heartbeats": self.heartbeats}

    def wait_for_subscribers(self, n: int, timeout: float) -> int:
        """Block until ``n`` subscribers are connected or ``timeout`` seconds passed; returns
        the count (it holds the socket meanwhile: sending waits)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._read_subscriptions()
            while self.subscribers < n and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._sock.poll(int(min(left, 0.05) * 1000) + 1, zmq.POLLIN)
                self._read_subscriptions()
            return self.subscribers

    # -- internals -------------------------------------------------------------------------------

    def _send_events(self, start_seq: int, events: Sequence[Any]) -> None:
        n = len(events)
        step = self.options.max_batch
        enc = protocol.encode_events
        if n <= step:
            self._send(enc(self.run_id, start_seq, events))
        else:
            for i in range(0, n, step):
                self._send(enc(self.run_id, start_seq + i, events[i:i + step]))
        self.sent += n
        self._last_seq = start_seq + n - 1
        if self.messages & 63 == 0:
            self._read_subscriptions()

    def _flush_pending(self) -> None:
        if self._pending:
            start, events = self._pending_start, self._pending
            self._pending = []
            self._send_events(start, events)

    def _send(self, data: bytes) -> None:
        s = self._sock
        try:
            s.send(data, zmq.NOBLOCK)
        except zmq.Again:
            # A queue looks full. The socket learns what its peers read through commands it
            # processes about once a millisecond while sending: refresh, then retry.
            s.getsockopt(zmq.EVENTS)
            try:
                s.send(data, zmq.NOBLOCK)
            except zmq.Again:  # really full: send to the others, that subscriber loses it
                self.hwm_full += 1
                s.setsockopt(zmq.XPUB_NODROP, 0)
                try:
                    s.send(data, zmq.NOBLOCK)
                except zmq.Again:
                    pass
                finally:
                    s.setsockopt(zmq.XPUB_NODROP, 1)
        self.messages += 1
        self.bytes += len(data)
        self._last_send = time.monotonic()

    def _read_subscriptions(self) -> None:
        s = self._sock
        while True:
            try:
                m = s.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if m[:1] == b"\x01":
                self.subscribers += 1
            elif m[:1] == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)

    def _hold_first(self) -> None:
        """Before the first message: let subscribers already waiting connect."""
        self._held = False
        o = self.options
        if o.wait_subscribers > 0:
            got = self.wait_for_subscribers(o.wait_subscribers, o.wait_timeout_s)
            if got < o.wait_subscribers:
                log.warning("%s: %d of %d subscribers after %.0f s; starting anyway",
                            self.url, got, o.wait_subscribers, o.wait_timeout_s)
        left = self._bound_at + o.grace_s - time.monotonic()
        if left > 0:
            self.wait_for_subscribers(1 << 30, left)

    def _send_end_and_drain(self) -> None:
        self._flush_pending()
        end = protocol.encode_control(protocol.END, self.run_id, self._last_seq)
        deadline = time.monotonic() + self.options.end_timeout_s
        self._read_subscriptions()
        self._send(end)
        self.end_sent = 1
        last = time.monotonic()
        while self.subscribers > 0 and time.monotonic() < deadline:
            self._sock.poll(int(_END_REPEAT_S * 1000), zmq.POLLIN)
            self._read_subscriptions()
            if self.subscribers and time.monotonic() - last >= _END_REPEAT_S:
                self._send(end)  # one that was full gets it once it has room
                self.end_sent += 1
                last = time.monotonic()
        if self.subscribers:
            log.warning("%s: %d subscriber(s) still connected %.1f s after END; closing",
                        self.url, self.subscribers, self.options.end_timeout_s)


def attach(stream: Any, url: str, settings: Any = None) -> IpcPublisher:
    """Publish ``stream`` (an :class:`~kalshi_platform.stream.bus.EventStream`) on ``url``:
    its snapshot mirror (spilling) and the publisher (dropping) are attached as two consumers.
    Returns the publisher (``Transport``: ``url``, ``close()``, ``stats()``). Raises
    :class:`TransportError` or :class:`OSError` when it cannot start."""
    path, opts = parse_url(url)
    queue = opts.queue if opts.queue is not None else int(
        getattr(settings, "stream_queue_events", 1_000_000))
    mirror = MirrorConsumer(stream.run_id)
    pub = IpcPublisher(path, stream.run_id, opts, snapshots=mirror)
    try:
        stream.attach(mirror, f"ipc-snapshots:{path}",
                      max_events=int(getattr(settings, "stream_queue_events", 1_000_000)),
                      overflow="spill")
        pub.runner = stream.attach(pub, f"ipc:{path}", max_events=queue, overflow="drop")
    except BaseException:
        pub.close()
        raise
    return pub


class Client:
    """The subscriber side of ``ipc://PATH`` (a
    :class:`~kalshi_platform.feed.subscriber.TransportClient`): a SUB socket subscribed to
    everything, so ``contiguous`` is true; snapshots from ``PATH.snap``.

    It may connect before the publisher exists: it retries every 20 ms until it binds.
    ``feeds`` are filtered by :class:`~kalshi_platform.feed.subscriber.Subscriber` (every
    message carries every feed); ``tickers`` and ``depth`` go into snapshot requests.
    Raises :class:`TransportError` for a bad URL.
    """

    contiguous = True

    def __init__(self, url: str, *, feeds: frozenset[str] | None = None,
                 tickers: frozenset[str] | None = None, depth: bool = True) -> None:
        self.path, self.options = parse_url(url)
        self.url = url
        self.tickers = None if tickers is None else sorted(tickers)
        self.depth = depth
        self._ctx = zmq.Context(io_threads=1)
        self._sock = s = self._ctx.socket(zmq.SUB)
        s.setsockopt(zmq.RCVHWM, self.options.rcvhwm)
        s.setsockopt(zmq.RECONNECT_IVL, 20)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(f"ipc://{self.path}")
        self._closed = False

    def recv_bytes(self, timeout: float) -> bytes | None:
        """The next raw message, or ``None`` after ``timeout`` seconds."""
        s = self._sock
        try:
            return s.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass
        if not s.poll(max(0, int(timeout * 1000)), zmq.POLLIN):
            return None
        return s.recv(zmq.NOBLOCK)

    def recv(self, timeout: float) -> Message | None:
        """The next message, decoded; ``None`` after ``timeout`` seconds. Raises
        :class:`~kalshi_platform.feed.protocol.ProtocolError` on a message of another
        protocol version or a malformed one."""
        data = self.recv_bytes(timeout)
        return None if data is None else protocol.decode(data)

    def snapshot(self, min_seq: int) -> Message:
        """A SNAPSHOT valid at a seq ``>= min_seq`` from ``PATH.snap``. Raises
        :class:`~kalshi_platform.feed.snapshots.SnapshotError`."""
        return fetch_snapshot(self.path + SNAP_SUFFIX, tickers=self.tickers, depth=self.depth,
                              min_seq=min_seq, timeout=self.options.snapshot_timeout_s)

    def close(self) -> None:
        """Disconnect (the publisher sees the subscriber leave). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._sock.close(linger=0)
        self._ctx.term()
