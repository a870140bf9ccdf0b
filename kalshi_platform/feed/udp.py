"""``udp://HOST:PORT``: the plant's event stream as datagrams, one stream id per feed, across
hosts (docs/feed-protocol.md "udp"; the wire is :mod:`kalshi_platform.feed.udp_wire`).

Publisher (:func:`attach`): a stream consumer (``overflow="drop"``: it never blocks the plant)
that packs each batch into datagrams of at most ``mtu`` bytes, one stream id per feed (trades
1001, bbo 1002, tickers 1003, deltas 1004, lifecycle 1005, fills 1006, feed_events 1007,
quarantine 1008), each with its per-stream-id datagram seq and every event with its stream
seq, and sends them to HOST:PORT (unicast, or a multicast group with ``ttl``/``iface``/``loop``)
and to any ``dest=`` unicast copies. An event too big for one datagram goes as FRAGs. An idle
stream id gets a HEARTBEAT every ``hb`` s; END on every stream id at close. A
:class:`~kalshi_platform.feed.snapshots.MirrorConsumer` (spilling: exact) and a TCP
:class:`~kalshi_platform.feed.snapshots.SnapshotService` on the same port number serve late
joiners and gaps.

Subscriber (:class:`Client`, ``contiguous=True``): binds the port (unicast) or joins the group,
reassembles FRAGs and merges the stream ids back into stream order, so the
:class:`~kalshi_platform.feed.subscriber.Subscriber` gets EVENTS messages with contiguous seqs.
A seq still missing ``reorder_ms`` (default 20) after later seqs, a HEARTBEAT or END showed it
exists is lost (a publisher GAP at once): the client hands over ``Message("gap", run_id,
first_seq, [count])`` and the Subscriber repairs it with :meth:`Client.snapshot` over TCP.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Sequence

import msgspec

from kalshi_platform.feed.protocol import Message
from kalshi_platform.feed.snapshots import MirrorConsumer, SnapshotError, SnapshotService, \
    fetch_snapshot
from kalshi_platform.feed.transports import TransportError
from kalshi_platform.feed.udp_wire import (DATA, END, FRAG, GAP, HEARTBEAT, KINDS, STREAM_IDS,
                                           UDP_VERSION, DatagramPacker, UdpOptions,
                                           open_receiver, open_sender, parse_url,
                                           snapshot_address)
from kalshi_platform.stream.codec import FEEDS, CodecError, from_array

__all__ = ["attach", "Client", "UdpTransport", "UdpPublisher", "parse_url", "STREAM_IDS"]

_dec = msgspec.msgpack.Decoder()


class UdpPublisher:
    """The stream consumer behind :func:`attach`: packs each batch, sends it to every
    destination from its runner thread; heartbeats idle stream ids; END and the snapshot
    service's shutdown (after ``linger_s``) at close. A send that would block or fails is
    counted (``send_errors``) and the datagram dropped: subscribers see the loss."""

    def __init__(self, opts: UdpOptions, run_id: str, sock: socket.socket,
                 service: SnapshotService | None = None, first_seq: int = 1) -> None:
        self.opts = opts
        self.expect = first_seq  # the next stream seq due (a lower start is a gap)
        self.packer = DatagramPacker(run_id, opts.mtu)
        self.sock = sock
        self.service = service
        self.dests = ((opts.host, opts.port), *opts.dests)
        self.last_seq = 0
        self.events = self.datagrams = self.bytes = self.send_errors = self.gaps = 0
        self._hb_at = {sid: 0.0 for sid in STREAM_IDS.values()}
        self._sent_dseq = dict(self.packer.dseq)
        self._lock = threading.Lock()
        self._closed = False

    def _send(self, datagrams: list[bytes]) -> None:
        sendto, dests = self.sock.sendto, self.dests
        for d in datagrams:
            for a in dests:
                try:
                    sendto(d, a)
                except OSError:  # EAGAIN/ENOBUFS/ICMP errors: the datagram is lost
                    self.send_errors += 1
            self.datagrams += 1
            self.bytes += len(d)

    def on_batch(self, start_seq: int, events: Sequence[Any]) -> None:
        with self._lock:
            if self._closed:
                return
            if start_seq > self.expect:  # dropped before our first batch: no on_gap for it
                self._gap(self.expect, start_seq - self.expect)
            self.expect = start_seq + len(events)
            dgrams = self.packer.pack(start_seq, events)
            self.last_seq = start_seq + len(events) - 1
            self._send(dgrams)
            self.events += len(events)
            self._heartbeats(time.monotonic())

    def on_gap(self, first_seq: int, count: int) -> None:
        with self._lock:
            if not self._closed and first_seq + count > self.expect:
                self._gap(self.expect, first_seq + count - self.expect)
                self.expect = first_seq + count

    def _gap(self, first: int, count: int) -> None:
        self.gaps += 1
        self.last_seq = max(self.last_seq, first + count - 1)
        self._send(self.packer.control_all(GAP, first, count))

    def on_idle(self) -> None:
        with self._lock:
            if not self._closed:
                self._heartbeats(time.monotonic())

    def _heartbeats(self, now: float) -> None:
        """A HEARTBEAT on each stream id that sent nothing for ``hb_s`` seconds."""
        cur, sent, at, hb = self.packer.dseq, self._sent_dseq, self._hb_at, self.opts.hb_s
        due = []
        for sid, d in cur.items():
            if d != sent[sid]:
                sent[sid] = d
                at[sid] = now
            elif now - at[sid] >= hb:
                at[sid] = now
                due.append(self.packer.control(HEARTBEAT, sid, 0, self.last_seq))
        if due:
            self._send(due)

    def close(self) -> None:
        """END on every stream id (sent again during ``linger_s``); the snapshot service stays
        up ``linger_s`` more seconds (a subscriber that lost the tail still gets its snapshot),
        then everything stops."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._send(self.packer.control_all(END, 0, self.last_seq))
        try:
            if self.service is not None and self.opts.linger_s > 0:
                # the service's grace period, by design; END is repeated in it, since one
                # datagram may be lost to a full socket buffer (idempotent at the client)
                for _ in range(3):
                    time.sleep(self.opts.linger_s / 3)
                    with self._lock:
                        self._send(self.packer.control_all(END, 0, self.last_seq))
        finally:
            if self.service is not None:
                self.service.close()
            self.sock.close()


class UdpTransport:
    """What :func:`attach` returns: ``url``, ``publisher``, ``runner`` (its stream consumer),
    ``mirror``/``service`` (snapshots); ``close()`` and ``stats()``."""

    def __init__(self, url: str, publisher: UdpPublisher, runner: Any, mirror: MirrorConsumer,
                 mirror_runner: Any, service: SnapshotService) -> None:
        self.url = url
        self.publisher = publisher
        self.runner = runner
        self.mirror = mirror
        self.mirror_runner = mirror_runner
        self.service = service

    @property
    def snapshot_address(self) -> tuple[str, int]:
        return self.service.bound  # type: ignore[return-value]

    def close(self) -> None:
        """END and stop now (normally the stream's close() does it, after the last batch)."""
        self.publisher.close()

    def stats(self) -> dict[str, Any]:
        p = self.publisher
        return {"sent": p.events, "datagrams": p.datagrams, "bytes": p.bytes,
                "send_errors": p.send_errors, "dropped": self.runner.dropped,
                "gaps": p.gaps, "too_big": len(p.packer.skipped), "subscribers": None,
                "lag": self.runner.lag}


def attach(stream: Any, url: str, settings: Any = None) -> UdpTransport:
    """Publish ``stream`` on ``url`` (see :func:`parse_url`): a MirrorConsumer (spilling, so
    snapshots are exact) with its TCP SnapshotService on :func:`snapshot_address`, and a
    dropping :class:`UdpPublisher` bounded by ``settings.stream_queue_events`` events. Raises
    :class:`TransportError` (bad URL) or :class:`OSError` (cannot bind/open)."""
    opts = parse_url(url)
    queue = int(getattr(settings, "stream_queue_events", 1_000_000) or 1_000_000)
    store = getattr(settings, "store_dir", None)
    spill = Path(store) / "_stream_spill" if store is not None else None
    sock = open_sender(opts)
    mirror = MirrorConsumer(stream.run_id)
    snap = snapshot_address(opts, publisher=True)
    try:
        service = SnapshotService(mirror, snap).start()
    except OSError as e:
        sock.close()
        raise TransportError(f"cannot publish on {url}: snapshot service on tcp {snap[0]}:"
                             f"{snap[1]}: {e.strerror or e} (give snap=LOCAL_ADDR:PORT when "
                             f"HOST is not an address of this host)") from None
    pub = UdpPublisher(opts, stream.run_id, sock, service, first_seq=stream.seq + 1)
    name = f"udp:{opts.host}:{opts.port}"
    # the sender first: a commit wakes it before the mirror
    run = stream.attach(pub, name, max_events=queue, overflow="drop")
    mrun = stream.attach(mirror, name + ":snapshots", max_events=queue, overflow="spill",
                         spill_dir=spill)
    return UdpTransport(url, pub, run, mirror, mrun, service)


# -- subscriber --------------------------------------------------------------------------------


class ClientStats:
    """Counters of a :class:`Client`: datagrams, bytes, bad (undecodable), lost_datagrams
    (dseq holes per stream id, heartbeat/END tails included), late (datagrams older than the
    merge point), gaps (reported), snapshots."""

    __slots__ = ("datagrams", "bytes", "bad", "lost_datagrams", "late", "gaps", "snapshots")

    def __init__(self) -> None:
        for k in self.__slots__:
            setattr(self, k, 0)

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


_MISSING = object()
MAX_BUFFER = 1_000_000  # events held beyond a hole before it is declared lost at once


class Client:
    """The subscriber side of ``udp://HOST:PORT`` (a ``TransportClient``; see the module doc).

    ``contiguous`` is True: every stream seq is handed over in order, once, or reported
    missing as a ``Message("gap", run_id, first_seq, [count])``; END is handed over once
    every seq up to its ``last_seq`` was. HEARTBEATs become ``heartbeat`` messages (see
    :meth:`_heartbeat`). ``feeds`` is informational (every stream id is merged, since
    stream order needs them all); ``tickers``/``depth`` shape snapshot requests. Raises
    :class:`TransportError` for a bad URL or a port it cannot bind (one unicast subscriber
    per address and port; use ``dest=`` on the publisher for more)."""

    contiguous = True

    def __init__(self, url: str, *, feeds: frozenset[str] | None = None,
                 tickers: frozenset[str] | None = None, depth: bool = True) -> None:
        self.url = url
        self.opts = parse_url(url)
        self.feeds = frozenset(FEEDS) if feeds is None else feeds
        self.tickers = None if tickers is None else sorted(tickers)
        self.depth = depth
        self.snap_address = snapshot_address(self.opts, publisher=False)
        try:
            self.sock = open_receiver(self.opts)
        except OSError as e:
            raise TransportError(f"cannot subscribe on {url}: {e.strerror or e}") from None
        self.stats = ClientStats()
        self._out: deque = deque()
        self._hb_pushed = 0.0
        self._reset(None)

    def _reset(self, run_id: str | None) -> None:
        self.run_id = run_id
        self._next: int | None = None  # the next stream seq to hand over
        self._buf: dict[int, Any] = {}  # seq → event received at or beyond _next
        self._frags: dict[int, list] = {}  # seq → [count, {index: bytes}]
        self._lost: dict[int, int] = {}  # the publisher's GAPs: first seq → count
        self._known = 0  # the highest stream seq known to exist
        self._top = 0  # the highest stream seq received
        self._floor = 0  # the seq of the last snapshot handed out
        self._dseen: dict[int, list] = {}  # stream id → [highest dseq, missing dseqs]
        self._end: int | None = None
        self._ended = False
        self._hole_since: float | None = None
        self._joining = False
        self._hb_seq: int | None = None  # a HEARTBEAT's last seq, not yet handed over

    # -- TransportClient ---------------------------------------------------------------------

    def recv(self, timeout: float) -> Message | None:
        """The next message, or ``None`` after ``timeout`` seconds with nothing to hand over."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self._pop()
            if msg is not None:
                return msg
            now = time.monotonic()
            self._advance(now)
            msg = self._pop()
            if msg is not None:
                return msg
            wait = deadline - now
            if self._hole_since is not None:
                wait = min(wait, self._hole_since + self.opts.reorder_s - now)
            if wait <= 0 and now >= deadline:
                return None
            self._read(max(0.0, wait))

    def snapshot(self, min_seq: int) -> Message:
        """The books valid at a seq ``>= min_seq`` from the TCP snapshot service (at a join,
        ``>=`` the newest seq received, so the partial batch a late joiner caught needs no
        second snapshot). Events up to its seq are dropped here. Raises
        :class:`~kalshi_platform.feed.snapshots.SnapshotError` after 3 tries."""
        if self._joining:
            min_seq = max(min_seq, self._top)
            self._joining = False
        for attempt in range(3):
            try:
                msg = fetch_snapshot(self.snap_address, self.tickers, self.depth, min_seq)
                break
            except SnapshotError:
                if attempt == 2:
                    raise
                time.sleep(0.1 * (attempt + 1))  # retry backoff, not synchronisation
        s = msg.seq
        self._floor = max(self._floor, s)
        if self._next is None or self._next <= s:
            self._next = s + 1
            self._prune()
        self._hole_since = None
        self.stats.snapshots += 1
        return msg

    def close(self) -> None:
        self.sock.close()

    # -- merging -----------------------------------------------------------------------------

    def _pop(self) -> Message | None:
        """The next queued message, skipping a gap a snapshot already repaired."""
        while self._out:
            m = self._out.popleft()
            if m.kind == "gap" and m.seq + m.body[0] - 1 <= self._floor:
                continue
            return m
        return None

    def _advance(self, now: float) -> None:
        """Queue what can be handed over (:meth:`_merge`), then a heartbeat if one came."""
        if self._ended:
            return
        self._merge(now)
        if self._hb_seq is not None and not self._ended:
            self._heartbeat(now)

    def _merge(self, now: float) -> None:
        """The contiguous run from ``_next``, a gap for a hole that is lost (a publisher GAP,
        or older than ``reorder_s``), END when everything up to its seq was handed over."""
        buf = self._buf
        if self._next is None:
            if buf:  # the join point: the lowest seq heard of (a publisher GAP included)
                self._next = min(min(buf), *self._lost) if self._lost else min(buf)
                self._joining = self._next > 1 and self._next in buf
            elif self._end is not None:  # an empty run, or joined at its very end
                self._finish()
                return
            else:
                return
        n = start = self._next
        run = []
        pop = buf.pop
        while True:
            ev = pop(n, _MISSING)
            if ev is _MISSING:
                break
            run.append(ev)
            n += 1
        if run:
            self._out.append(Message("events", self.run_id, start, run))
            self._next = n
            self._hole_since = None
        if self._end is not None and n > self._end:
            self._finish()
            return
        if not buf and self._known < n:
            self._hole_since = None
            return
        lost = any(f <= n < f + c for f, c in self._lost.items())
        if not lost and len(buf) < MAX_BUFFER:
            if self._hole_since is None:
                self._hole_since = now
                return
            if now - self._hole_since < self.opts.reorder_s:
                return
        self._gap(n)

    def _gap(self, n: int) -> None:
        end = min(self._buf) - 1 if self._buf else self._known
        self._next = end + 1
        self._prune()
        self._hole_since = None
        self.stats.gaps += 1
        self._out.append(Message("gap", self.run_id, n, [end - n + 1]))

    def _finish(self) -> None:
        self._ended = True
        self._hole_since = None
        self._out.append(Message("end", self.run_id, self._end or 0, []))

    def _prune(self) -> None:
        floor = self._next or 0
        self._buf = {s: e for s, e in self._buf.items() if s >= floor}
        self._frags = {s: f for s, f in self._frags.items() if s >= floor}
        self._lost = {f: c for f, c in self._lost.items() if f + c > floor}

    # -- datagrams ---------------------------------------------------------------------------

    def _read(self, wait: float) -> None:
        sock = self.sock
        if wait > 0 and not select.select([sock], [], [], wait)[0]:
            return
        for _ in range(1024):
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.stats.datagrams += 1
            self.stats.bytes += len(data)
            self._datagram(data)

    def _datagram(self, data: bytes) -> None:
        """Take one datagram (a test subclass drops some here to inject loss)."""
        try:
            a = _dec.decode(data)
            version, kind, rid, sid, d = a[0], a[1], a[2], a[3], a[4]
            if version != UDP_VERSION or kind not in KINDS or not isinstance(rid, str):
                raise ValueError(kind)
            if rid != self.run_id:
                if kind in (HEARTBEAT, END) and self.run_id is not None:
                    return  # a finished or foreign run's control datagram
                self._reset(rid)
            self._count(kind, sid, d)
            if kind == DATA:
                self._data(a[5])
            elif kind == FRAG:
                self._frag(a[5], a[6], a[7], a[8])
            elif kind == GAP:
                first, count = a[5], a[6]
                self._lost[first] = max(count, self._lost.get(first, 0))
                self._known = max(self._known, first + count - 1)
            else:
                self._known = max(self._known, a[5])
                if kind == END:
                    self._end = a[5]
                else:
                    self._hb_seq = max(self._hb_seq or 0, a[5])
        except (msgspec.DecodeError, CodecError, TypeError, ValueError, IndexError,
                KeyError):
            self.stats.bad += 1

    def _count(self, kind: int, sid: int, d: int) -> None:
        """Per stream id dseq bookkeeping: holes below the highest dseq seen are counted
        lost until (if reordered) they arrive; HEARTBEAT/END carry the last dseq sent."""
        st = self._dseen.get(sid)
        if st is None:  # joined: what came before is not ours to count
            self._dseen[sid] = [d, set()]
            return
        high, missing = st
        if len(missing) > 65536:
            missing.clear()  # bounded; the count stays
        if kind in (HEARTBEAT, END):
            if d > high:
                missing.update(range(high + 1, d + 1))
                self.stats.lost_datagrams += d - high
                st[0] = d
        elif d > high:
            if d > high + 1:
                missing.update(range(high + 1, d))
                self.stats.lost_datagrams += d - high - 1
            st[0] = d
        else:  # reordered (a hole filled late), a duplicate, or from before the join
            if d in missing:
                missing.discard(d)
                self.stats.lost_datagrams -= 1
            self.stats.late += 1

    def _data(self, pairs: list) -> None:
        floor = self._next or 0
        buf = self._buf
        for seq, arr in pairs:
            if seq >= floor:
                buf[seq] = from_array(arr)
        if pairs:
            last = pairs[-1][0]
            if last > self._top:
                self._top = last
            if last > self._known:
                self._known = last

    def _frag(self, seq: int, index: int, count: int, chunk: bytes) -> None:
        if seq < (self._next or 0) or not 0 <= index < count:
            return
        f = self._frags.get(seq)
        if f is None:
            if len(self._frags) >= 4096:  # bounded: the oldest unfinished event is lost
                del self._frags[min(self._frags)]
            f = self._frags[seq] = [count, {}]
        f[1][index] = chunk
        if len(f[1]) == f[0]:
            del self._frags[seq]
            self._buf[seq] = from_array(_dec.decode(b"".join(f[1][i] for i in range(f[0]))))
            self._top = max(self._top, seq)
            self._known = max(self._known, seq)

    def _heartbeat(self, now: float) -> None:
        """Hand over a heartbeat (at most every 0.25 s) after the events before it. Its seq
        is the publisher's last seq while nothing was handed over yet (0: complete from the
        start; more: the Subscriber takes a snapshot, a late join to an idle publisher), else
        at most the last seq handed over: this client finds lost tails itself."""
        seq, self._hb_seq = self._hb_seq, None
        if seq is None or now - self._hb_pushed < 0.25:
            return
        self._hb_pushed = now
        if self._next is not None:
            seq = min(seq, self._next - 1)
        self._out.append(Message("heartbeat", self.run_id, seq, []))
