"""Publisher sides of ``bench fanout`` (:mod:`kalshi_platform.bench.fanout`): our transports
and the two baselines, behind one small interface driven by the parent process.

* :class:`StreamSystem` (``ipc``, ``udp``, ``ws``): the plant's path. An
  :class:`~kalshi_platform.stream.bus.EventStream` with the transport attached by its own
  ``attach(stream, url, settings)`` (snapshot mirror and publisher threads, exactly as
  ``--publish`` does); :meth:`send` is what the plant does per frame, ``publish()`` each event
  then ``commit()``. The transport encodes and sends on its own thread.
* :class:`ZmqSystem` (``zmq64``, ``zmq``): raw pyzmq ``PUB`` bound at ``ipc://``, default HWM
  (1000 messages), sending on the calling thread: 64-byte messages (one per event) or our
  EVENTS message of each commit (:func:`~kalshi_platform.feed.protocol.encode_events`, the
  same bytes ``ipc://`` sends). Lossless: ``XPUB_NODROP`` (valid on PUB) and a blocking send,
  so a full subscriber queue holds the publisher back, as the measurements in
  docs/fanout-and-scale.md ("zmq-block") did.
* :class:`MpqSystem` (``mpq``): one bounded ``multiprocessing.Queue`` per subscriber (a put
  blocks while it is full: lossless), each commit's EVENTS message put on every queue.

A lossless baseline blocks on a subscriber that stopped reading: both wait at most
:data:`BLOCK_TIMEOUT_S` per send, then give that subscriber up (zmq: ``XPUB_NODROP`` off, so
the full queue drops; mpq: no more puts to that queue) and count the time in ``blocked_s``.

Interface: ``open(n) -> [spec per worker]``, ``probe()`` (called while waiting for workers to
be ready), ``after_ready(n)``, ``send(start_seq, events)``, ``sent()`` (events the publisher
side has sent so far), ``close()`` (END; may block until subscribers got it), ``poke()``
(called while collecting results: re-sends END where it can be lost), ``finish()`` (release
sockets), ``stats()``.
"""

from __future__ import annotations

import queue as stdlib_queue
import socket
import time
from types import SimpleNamespace
from typing import Any, Sequence

from kalshi_platform.bench.fanout_workers import END_SEQ, PROBE_SEQ, SMALL

TRANSPORTS = ("ipc", "udp", "ws")
BASELINES = ("zmq64", "zmq", "mpq")
LABELS = {"ipc": "ipc://", "udp": "udp:// (loopback)", "ws": "ws:// (loopback)",
          "zmq64": "pyzmq PUB/SUB 64 B", "zmq": "pyzmq PUB/SUB batch",
          "mpq": "multiprocessing.Queue"}
SHORT = {"ipc": "ipc", "udp": "udp", "ws": "ws", "zmq64": "zmq 64B", "zmq": "zmq batch",
         "mpq": "mp.Queue"}

#: a baseline send waits at most this long on a full subscriber queue (a stalled subscriber),
#: then gives that subscriber up (counted in ``blocked_s``)
BLOCK_TIMEOUT_S = 0.5
MPQ_MAXSIZE = 1000


def free_udp_ports(n: int) -> list[int]:
    """``n`` distinct 127.0.0.1 ports free for UDP (the first also for TCP: the snapshot
    service binds it). Raises :class:`OSError` if none can be found."""
    ports: list[int] = []
    socks = []
    try:
        while len(ports) < n:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            socks.append(u)
            if not ports:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                finally:
                    t.close()
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


class StreamSystem:
    """One of our transports on an EventStream (see the module docstring)."""

    def __init__(self, name: str, workdir: str, run_no: int) -> None:
        from kalshi_platform.stream.bus import EventStream

        self.name = name
        self.stream = EventStream()
        self.run_id = self.stream.run_id
        self._workdir = workdir
        self._run_no = run_no
        self.transport: Any = None
        # the --publish defaults: 1M events of stream queue before a transport drops
        self._settings = SimpleNamespace(stream_queue_events=1_000_000, store_dir=None)

    def open(self, n: int) -> list[dict]:
        from kalshi_platform.feed.transports import module_for

        if self.name == "ipc":
            url = f"ipc://{self._workdir}/ipc{self._run_no}.sock?grace_s=0&end_timeout_s=3"
            specs = [{"url": url}] * n
        elif self.name == "udp":
            ports = free_udp_ports(n)
            url = f"udp://127.0.0.1:{ports[0]}?linger=0" + "".join(
                f"&dest=127.0.0.1:{p}" for p in ports[1:])
            specs = [{"url": f"udp://127.0.0.1:{p}?snap=127.0.0.1:{ports[0]}"} for p in ports]
        elif self.name == "ws":
            url = "ws://127.0.0.1:0?end_timeout=3"
            specs = []
        else:
            raise ValueError(self.name)
        self.transport = module_for(url).attach(self.stream, url, self._settings)
        if self.name == "ws":
            specs = [{"url": self.transport.url}] * n
        return specs

    def probe(self) -> None:
        pass

    def after_ready(self, n: int, timeout: float = 10.0) -> None:
        """ipc: every SUB's subscription reached the XPUB; ws: every client subscribed."""
        if self.name == "ipc":
            got = self.transport.wait_for_subscribers(n, timeout)
            if got < n:
                raise RuntimeError(f"ipc: {got} of {n} subscribers connected")
        elif self.name == "ws":
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                clients = self.transport.stats()["clients"]
                if sum(1 for c in clients if c["feeds"]) >= n:
                    return
                time.sleep(0.01)  # polling an observable condition, with a deadline
            raise RuntimeError(f"ws: fewer than {n} clients subscribed")

    def send(self, start: int, events: Sequence[Any]) -> None:
        pub = self.stream.publish
        for e in events:
            pub(e)
        self.stream.commit()

    def sent(self) -> int:
        st = self.transport.stats()
        return int(st["position"] if self.name == "ws" else st["sent"])

    def close(self) -> None:
        self.stream.close()  # END to every subscriber; ipc/ws wait (bounded) for them

    def poke(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        st = dict(self.transport.stats())
        st.pop("clients", None)
        st.pop("url", None)
        return st


class ZmqSystem:
    """Raw pyzmq PUB/SUB over ``ipc://`` (see the module docstring)."""

    def __init__(self, name: str, workdir: str, run_no: int) -> None:
        import zmq

        from kalshi_platform.stream.bus import new_run_id

        self.name = name
        self.run_id = new_run_id()
        self.url = f"ipc://{workdir}/zmq{run_no}.sock"
        self._zmq = zmq
        self._ctx = zmq.Context(io_threads=1)
        self._sock = s = self._ctx.socket(zmq.PUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.XPUB_NODROP, 1)
        s.setsockopt(zmq.SNDTIMEO, int(BLOCK_TIMEOUT_S * 1000))
        self.blocked_s = 0.0
        self.given_up = 0
        self._sent = 0
        self._last_seq = 0
        self._closed = False

    def open(self, n: int) -> list[dict]:
        self._sock.bind(self.url)
        return [{"url": self.url}] * n

    def probe(self) -> None:
        if self.name == "zmq64":
            data = SMALL.pack(PROBE_SEQ)
        else:
            from kalshi_platform.feed import protocol

            data = protocol.encode_control(protocol.HEARTBEAT, self.run_id, 0)
        try:
            self._sock.send(data, self._zmq.NOBLOCK)
        except self._zmq.Again:
            pass

    def after_ready(self, n: int) -> None:
        pass

    def send(self, start: int, events: Sequence[Any]) -> None:
        n = len(events)
        if self.name == "zmq64":
            pack, send = SMALL.pack, self._send
            for seq in range(start, start + n):
                send(pack(seq))
        else:
            from kalshi_platform.feed.protocol import encode_events

            self._send(encode_events(self.run_id, start, events))
        self._sent += n
        self._last_seq = start + n - 1

    def _send(self, data: bytes) -> None:
        try:
            self._sock.send(data)  # blocks while a subscriber queue is full
        except self._zmq.Again:  # blocked BLOCK_TIMEOUT_S: give the full subscriber up
            self.blocked_s += BLOCK_TIMEOUT_S
            self.given_up += 1
            self._sock.setsockopt(self._zmq.XPUB_NODROP, 0)
            self._sock.send(data)

    def sent(self) -> int:
        return self._sent

    def close(self) -> None:
        self.poke()

    def poke(self) -> None:
        """END (again, without blocking: one whose queue is full gets a later one)."""
        if self._closed:
            return
        if self.name == "zmq64":
            data = SMALL.pack(END_SEQ)
        else:
            from kalshi_platform.feed import protocol

            data = protocol.encode_control(protocol.END, self.run_id, self._last_seq)
        try:
            self._sock.send(data, self._zmq.NOBLOCK)
        except self._zmq.Again:
            pass

    def finish(self) -> None:
        self._closed = True
        self._sock.close(linger=0)
        self._ctx.term()

    def stats(self) -> dict[str, Any]:
        return {"sent": self._sent, "blocked_s": round(self.blocked_s, 3),
                "subscribers_given_up": self.given_up}


class MpqSystem:
    """``multiprocessing.Queue`` per subscriber (see the module docstring)."""

    name = "mpq"

    def __init__(self, queues: list[Any]) -> None:
        from kalshi_platform.stream.bus import new_run_id

        self.run_id = new_run_id()
        self._queues = queues
        self._live: list[Any] = []
        self._used: list[Any] = []
        self._sent = 0
        self._last_seq = 0
        self.blocked_s = 0.0
        self.given_up = 0

    def open(self, n: int) -> list[dict]:
        for q in self._queues:  # nothing left over from an earlier run
            try:
                while True:
                    q.get_nowait()
            except stdlib_queue.Empty:
                pass
        self._used = list(self._queues[:n])
        self._live = list(self._used)
        return [{}] * n

    def probe(self) -> None:
        pass

    def after_ready(self, n: int) -> None:
        pass

    def send(self, start: int, events: Sequence[Any]) -> None:
        from kalshi_platform.feed.protocol import encode_events

        data = encode_events(self.run_id, start, events)
        for q in self._live:
            try:
                q.put(data, True, BLOCK_TIMEOUT_S)
            except stdlib_queue.Full:
                self.blocked_s += BLOCK_TIMEOUT_S
                self.given_up += 1
                self._live = [x for x in self._live if x is not q]
        self._sent += len(events)
        self._last_seq = start + len(events) - 1

    def sent(self) -> int:
        return self._sent

    def close(self) -> None:
        from kalshi_platform.feed import protocol

        end = protocol.encode_control(protocol.END, self.run_id, self._last_seq)
        for q in self._used:  # a given-up (stalled) one too: it drains once resumed
            try:
                q.put(end, True, 5.0)
            except stdlib_queue.Full:
                pass

    def poke(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {"sent": self._sent, "blocked_s": round(self.blocked_s, 3),
                "subscribers_given_up": self.given_up}
