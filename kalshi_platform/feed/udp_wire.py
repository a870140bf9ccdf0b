"""The ``udp://`` wire: URL options, sockets and datagram packing (docs/feed-protocol.md "udp").

One stream id per feed (:data:`STREAM_IDS`). Datagrams are msgpack arrays (``rid`` the run id,
``sid`` the stream id, ``dseq`` the datagram seq, contiguous per stream id from 1; events are
:mod:`kalshi_platform.stream.codec` arrays, integer units):

* ``[1, 16, rid, sid, dseq, [[seq, event], ...]]`` DATA: events of one feed, stream seqs
  increasing;
* ``[1, 17, rid, sid, dseq, seq, index, count, bytes]`` FRAG: part ``index`` (0-based) of
  ``count`` of the msgpack encoding of event ``seq`` (one event too big for a datagram; its
  parts take consecutive dseqs);
* ``[1, 18, rid, sid, dseq, first_seq, count]`` GAP: the publisher did not send these stream
  seqs (it fell behind, or an event needed more than :data:`MAX_FRAGS` parts); sent on every
  stream id;
* ``[1, 19, rid, sid, last_dseq, last_seq]`` HEARTBEAT (a stream id idle for ``hb`` s) and
  ``[1, 20, rid, sid, last_dseq, last_seq]`` END (at close, on every stream id):
  ``last_dseq`` the last dseq sent on this stream id (0: none), ``last_seq`` the last stream
  seq the publisher handled on any feed. They take no dseq.

Every datagram is at most ``mtu`` bytes of UDP payload (default 1400).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, NamedTuple, Sequence
from urllib.parse import parse_qs, urlparse

import msgspec

from kalshi_platform.feed.transports import TransportError
from kalshi_platform.stream.codec import EVENT_CODES, FEED_OF

UDP_VERSION = 1
DATA, FRAG, GAP, HEARTBEAT, END = 16, 17, 18, 19, 20
KINDS = {DATA: "data", FRAG: "frag", GAP: "gap", HEARTBEAT: "heartbeat", END: "end"}

#: feed name → stream id (the design card's 1001-1004, then ours)
STREAM_IDS: dict[str, int] = {"trades": 1001, "bbo": 1002, "tickers": 1003, "deltas": 1004,
                              "lifecycle": 1005, "fills": 1006, "feed_events": 1007,
                              "quarantine": 1008}
FEED_OF_STREAM = {s: f for f, s in STREAM_IDS.items()}
_SID_OF_TYPE = {t: STREAM_IDS[FEED_OF[t]] for t in EVENT_CODES}
_CODE_OF_TYPE = dict(EVENT_CODES)

DEFAULT_MTU = 1400  # payload bytes: under a 1500-byte Ethernet MTU with IP/UDP headers
MAX_FRAGS = 4096  # an event needing more (≈5.6 MB at 1400) is sent as a GAP instead
_PARAMS = {"ttl", "iface", "loop", "mtu", "hb", "linger", "snap", "dest", "rcvbuf", "sndbuf",
           "reorder_ms"}

_enc = msgspec.msgpack.Encoder()


class UdpOptions(NamedTuple):
    """A parsed ``udp://`` URL (see :func:`parse_url`). Addresses are ``(ipv4 text, port)``."""

    host: str
    port: int
    multicast: bool
    ttl: int | None
    iface: str | None
    loop: bool
    mtu: int
    hb_s: float
    linger_s: float
    snap: tuple[str, int] | None
    dests: tuple[tuple[str, int], ...]
    rcvbuf: int
    sndbuf: int
    reorder_s: float


def _addr(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise TransportError(f"udp: {what} must be HOST:PORT, not {text!r}")
    return _ipv4(host, what), int(port)


def _ipv4(host: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError as e:
        raise TransportError(f"udp: {what} {host!r} does not resolve to IPv4: {e}") from None


def parse_url(url: str) -> UdpOptions:
    """``udp://HOST:PORT[?param=value&...]`` → :class:`UdpOptions`.

    Params: ``ttl`` (0-255; multicast TTL, default 1, or unicast IP TTL), ``iface`` (IPv4
    address of the interface for multicast sends/joins), ``loop`` (0/1 multicast loopback,
    default 1), ``mtu`` (max datagram payload bytes, 256-65000, default 1400), ``hb``
    (heartbeat seconds per idle stream id, default 1), ``linger`` (seconds the snapshot
    service outlives END, default 0.5), ``snap`` (HOST:PORT of the TCP snapshot service),
    ``dest`` (repeatable: more unicast HOST:PORT destinations), ``rcvbuf``/``sndbuf`` (socket
    buffer bytes), ``reorder_ms`` (client: how long a missing seq may be late, default 20).
    Raises :class:`TransportError` on anything else or a bad value."""
    u = urlparse(url)
    if u.scheme != "udp" or not u.hostname:
        raise TransportError(f"not a udp://HOST:PORT URL: {url!r}")
    try:
        port = u.port
    except ValueError:
        port = None
    if not port:
        raise TransportError(f"udp: {url!r} needs a port (1-65535)")
    q = parse_qs(u.query, keep_blank_values=True, strict_parsing=False)
    unknown = set(q) - _PARAMS
    if unknown:
        raise TransportError(f"udp: unknown parameter(s) {', '.join(sorted(unknown))} in "
                             f"{url!r}; known: {', '.join(sorted(_PARAMS))}")
    host = _ipv4(u.hostname, "host")
    multicast = ipaddress.IPv4Address(host).is_multicast

    def one(name: str, conv: Any, default: Any, lo: float, hi: float) -> Any:
        if name not in q:
            return default
        try:
            v = conv(q[name][-1])
        except ValueError:
            raise TransportError(f"udp: {name}={q[name][-1]!r} is not a number") from None
        if not lo <= v <= hi:
            raise TransportError(f"udp: {name} must be in [{lo}, {hi}], not {v}")
        return v

    iface = _ipv4(q["iface"][-1], "iface") if "iface" in q else None
    return UdpOptions(
        host=host, port=port, multicast=multicast,
        ttl=one("ttl", int, 1 if multicast else None, 0, 255), iface=iface,
        loop=bool(one("loop", int, 1, 0, 1)), mtu=one("mtu", int, DEFAULT_MTU, 256, 65000),
        hb_s=one("hb", float, 1.0, 0.01, 3600), linger_s=one("linger", float, 0.5, 0, 60),
        snap=_addr(q["snap"][-1], "snap") if "snap" in q else None,
        dests=tuple(_addr(d, "dest") for d in q.get("dest", [])),
        rcvbuf=one("rcvbuf", int, 4 << 20, 4096, 1 << 30),
        sndbuf=one("sndbuf", int, 1 << 20, 4096, 1 << 30),
        reorder_s=one("reorder_ms", float, 20.0, 0, 10_000) / 1000)


def snapshot_address(opts: UdpOptions, *, publisher: bool) -> tuple[str, int]:
    """Where the TCP snapshot service is: ``snap`` if given; else HOST:PORT for unicast
    (0.0.0.0 → 127.0.0.1 for a client); for a multicast group the publisher binds
    ``iface`` (or 0.0.0.0: anyone who can receive the group) and a client asks 127.0.0.1."""
    if opts.snap is not None:
        return opts.snap
    if not opts.multicast:
        if not publisher and opts.host == "0.0.0.0":
            return "127.0.0.1", opts.port
        return opts.host, opts.port
    if publisher:
        return opts.iface or "0.0.0.0", opts.port
    return "127.0.0.1", opts.port


# -- sockets -----------------------------------------------------------------------------------


def open_sender(opts: UdpOptions) -> socket.socket:
    """The publisher's non-blocking UDP socket, options set (multicast TTL/interface/loop, or
    the unicast TTL). Sends nothing. Raises :class:`OSError`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, opts.sndbuf)
        if opts.multicast:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, opts.ttl)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(opts.loop))
            if opts.iface:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                             socket.inet_aton(opts.iface))
        elif opts.ttl is not None:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, opts.ttl)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def membership_request(opts: UdpOptions) -> bytes:
    """``struct ip_mreq`` for IP_ADD_MEMBERSHIP: group, then interface (0.0.0.0 = any)."""
    return socket.inet_aton(opts.host) + socket.inet_aton(opts.iface or "0.0.0.0")


def open_receiver(opts: UdpOptions, *, join: bool = True) -> socket.socket:
    """The subscriber's non-blocking socket bound to PORT: on HOST (unicast; one subscriber
    per address and port), or on the group with SO_REUSEADDR (many per host) and, if
    ``join``, IP_ADD_MEMBERSHIP on ``iface``. Raises :class:`OSError`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)
        if opts.multicast:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((opts.host, opts.port))
        if opts.multicast and join:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership_request(opts))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


# -- packing ---------------------------------------------------------------------------------------


class DatagramPacker:
    """Cuts events into datagrams for one run (pure: no socket). ``pack(start, events)`` →
    encoded datagrams in send order (by first stream seq, so that a stream's first datagram
    leaves first), assigning each stream id's dseqs."""

    def __init__(self, run_id: str, mtu: int = DEFAULT_MTU) -> None:
        self.run_id = run_id
        self.mtu = mtu
        big = 1 << 62
        head = len(_enc.encode([UDP_VERSION, DATA, run_id, 1008, big, []]))
        self.room = mtu - head - 3  # the body's array16 header
        fhead = len(_enc.encode([UDP_VERSION, FRAG, run_id, 1008, big, big, 65535, 65535, b""]))
        self.frag_room = mtu - fhead - 1  # bin8 header → bin16
        if self.room < 64 or self.frag_room < 64:
            raise TransportError(f"udp: mtu {mtu} leaves no room for events")
        self.dseq = {sid: 0 for sid in STREAM_IDS.values()}
        self.skipped: list[int] = []  # seqs of events too big even for MAX_FRAGS fragments

    def _next(self, sid: int) -> int:
        d = self.dseq[sid] = self.dseq[sid] + 1
        return d

    def _data(self, sid: int, parts: list[bytes]) -> bytes:
        n = len(parts)
        body = (bytes((0x90 | n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big")) + b"".join(parts)
        return _enc.encode([UDP_VERSION, DATA, self.run_id, sid, self._next(sid),
                            msgspec.Raw(body)])

    def pack(self, start: int, events: Sequence[Any]) -> list[bytes]:
        """Datagrams for stream events ``start``, ``start + 1``, … (see the class doc)."""
        out: list[tuple[int, int, bytes]] = []  # (first seq, order, datagram)
        bufs: dict[int, list] = {}  # sid → [first seq, bytes, parts]
        room, enc, sid_of, code_of = self.room, _enc.encode, _SID_OF_TYPE, _CODE_OF_TYPE
        for seq, ev in enumerate(events, start):
            t = type(ev)
            sid = sid_of[t]
            part = enc([seq, [code_of[t], *ev]])
            b = bufs.get(sid)
            if len(part) > room:
                data = enc([code_of[t], *ev])
                count = -(-len(data) // self.frag_room)
                for s in ([sid] if sid in bufs else []) if count <= MAX_FRAGS else list(bufs):
                    bs = bufs.pop(s)  # what precedes it on its stream id(s) leaves first
                    out.append((bs[0], len(out), self._data(s, bs[2])))
                for d in self._frags(sid, seq, data, count):
                    out.append((seq, len(out), d))
                continue
            if b is None:
                bufs[sid] = b = [seq, 0, []]
            elif b[1] + len(part) > room:
                out.append((b[0], len(out), self._data(sid, b[2])))
                bufs[sid] = b = [seq, 0, []]
            b[1] += len(part)
            b[2].append(part)
        for sid, b in bufs.items():
            out.append((b[0], len(out), self._data(sid, b[2])))
        out.sort()
        return [d for _, _, d in out]

    def _frags(self, sid: int, seq: int, data: bytes, count: int) -> list[bytes]:
        """FRAGs of one event's encoding ``data`` (``count`` parts), or a GAP for its seq on
        every stream id when it needs more than :data:`MAX_FRAGS`."""
        r = self.frag_room
        if count > MAX_FRAGS:
            self.skipped.append(seq)
            return self.control_all(GAP, seq, 1)
        return [_enc.encode([UDP_VERSION, FRAG, self.run_id, sid, self._next(sid), seq, i,
                             count, data[i * r:(i + 1) * r]]) for i in range(count)]

    def control_all(self, kind: int, a: int, b: int) -> list[bytes]:
        """One GAP (``a`` first seq, ``b`` count; consumes a dseq) or HEARTBEAT/END (``b`` the
        last stream seq) datagram per stream id."""
        return [self.control(kind, sid, a, b) for sid in STREAM_IDS.values()]

    def control(self, kind: int, sid: int, a: int, b: int) -> bytes:
        if kind == GAP:
            return _enc.encode([UDP_VERSION, GAP, self.run_id, sid, self._next(sid), a, b])
        return _enc.encode([UDP_VERSION, kind, self.run_id, sid, self.dseq[sid], b])
