"""Late joiners and gaps: the publisher's book snapshots (docs/feed-protocol.md "Snapshots").

:class:`MirrorConsumer` keeps a :class:`~kalshi_platform.feed.books.BookMirror` current from
the plant's stream (a spilling consumer: it never misses an event, so its live books always
equal the plant's at its seq). :class:`SnapshotService` answers snapshot requests from it over
a unix socket (``ipc://``) or TCP (``udp://``), like kdb+tick's ``.u.sub`` returning the
table schema plus the current state before the updates that follow.

Request: one JSON line ``{"tickers": [..] | null, "depth": true | false, "min_seq": N}``.
Reply: a u32 big-endian length, then one SNAPSHOT message (:mod:`.protocol`) valid at a seq
``>= min_seq`` (the service waits up to ``timeout`` seconds for its mirror to get there).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import struct
import threading
from pathlib import Path
from typing import Any, Sequence

from kalshi_platform.feed import protocol
from kalshi_platform.feed.books import BookMirror

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
MAX_REQUEST = 1 << 20


class SnapshotError(OSError):
    """A snapshot could not be fetched (service unreachable, bad reply, timeout)."""


class MirrorConsumer:
    """A stream consumer that keeps a :class:`BookMirror` and serves consistent snapshots."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.mirror = BookMirror()
        self._cond = threading.Condition()

    def on_batch(self, start_seq: int, events: Sequence[Any]) -> None:
        with self._cond:
            self.mirror.apply_batch(start_seq, events)
            self._cond.notify_all()

    def on_gap(self, first_seq: int, count: int) -> None:  # pragma: no cover - spill only
        raise RuntimeError(f"book mirror lost {count} events from seq {first_seq}")

    def on_idle(self) -> None:
        pass

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def snapshot(self, tickers: list[str] | None = None, depth: bool = True,
                 min_seq: int = 0, timeout: float = 5.0) -> bytes:
        """An encoded SNAPSHOT valid at a seq ``>= min_seq`` (or the latest after
        ``timeout``)."""
        with self._cond:
            self._cond.wait_for(lambda: self.mirror.seq >= min_seq, timeout)
            books = self.mirror.snapshot(tickers, depth)
            seq = self.mirror.seq
        return protocol.encode_snapshot(self.run_id, seq, books)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST)
        try:
            req = json.loads(line)
            tickers = req.get("tickers")
            if tickers is not None and not (isinstance(tickers, list)
                                            and all(isinstance(t, str) for t in tickers)):
                raise ValueError("tickers must be a list of strings")
            depth = bool(req.get("depth", True))
            min_seq = int(req.get("min_seq", 0))
        except (ValueError, TypeError, AttributeError) as e:
            log.warning("snapshot service: bad request: %s", e)
            return
        data = self.server.mirror.snapshot(tickers, depth, min_seq)  # type: ignore[attr-defined]
        self.wfile.write(_LEN.pack(len(data)) + data)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SnapshotService:
    """Serves :meth:`MirrorConsumer.snapshot` on ``address``: a filesystem path (unix socket)
    or a ``(host, port)`` pair (TCP). ``start()`` runs it on a daemon thread; ``close()``
    stops it (and removes the socket file). Raises :class:`OSError` if it cannot bind."""

    def __init__(self, mirror: MirrorConsumer, address: str | tuple[str, int]) -> None:
        self.address = address
        if isinstance(address, str):
            p = Path(address)
            if p.is_socket():
                p.unlink()  # a previous publisher's socket
            self._server: Any = _UnixServer(address, _Handler)
        else:
            self._server = _TCPServer(address, _Handler)
        self._server.mirror = mirror
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="snapshot-service", daemon=True)

    @property
    def bound(self) -> str | tuple[str, int]:
        """The address actually bound (a TCP port 0 becomes the kernel's choice)."""
        return self._server.server_address

    def start(self) -> "SnapshotService":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if isinstance(self.address, str):
            try:
                os.unlink(self.address)
            except OSError:
                pass


def fetch_snapshot(address: str | tuple[str, int], tickers: list[str] | None = None,
                   depth: bool = True, min_seq: int = 0,
                   timeout: float = 10.0) -> protocol.Message:
    """Ask a :class:`SnapshotService` for a snapshot; returns the decoded SNAPSHOT message.
    Raises :class:`SnapshotError`."""
    fam = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    req = json.dumps({"tickers": tickers, "depth": depth, "min_seq": min_seq}).encode() + b"\n"
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(address)
            s.sendall(req)
            head = _recv_exact(s, _LEN.size)
            data = _recv_exact(s, _LEN.unpack(head)[0])
    except OSError as e:
        raise SnapshotError(f"snapshot from {address}: {e.strerror or e}") from None
    try:
        msg = protocol.decode(data)
    except protocol.ProtocolError as e:
        raise SnapshotError(f"snapshot from {address}: {e}") from None
    if msg.kind != "snapshot":
        raise SnapshotError(f"snapshot from {address}: got a {msg.kind} message")
    return msg


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed before the whole snapshot")
        buf += chunk
    return bytes(buf)
