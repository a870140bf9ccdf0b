"""Subscriber processes of ``bench fanout`` (:mod:`kalshi_platform.bench.fanout`).

A pool of worker processes is started once (``spawn``) and reused for every run, so process
start-up and imports are never part of a measurement. Each worker owns one end of a
``multiprocessing`` pipe and one ``multiprocessing.Queue`` (the ``mpq`` baseline; a queue can
only be handed to a process when it starts). The parent sends a *run* command (a dict):

``{"op": "run", "system": S, "spec": {...}, "stall": bool, "timeout_s": float}``

with ``S`` one of ``ipc``/``udp``/``ws`` (our transports, read with their ``Client``, which
decodes every message into plant events: :class:`~kalshi_platform.feed.protocol.Message`),
``zmq64`` (raw pyzmq SUB, 64-byte messages ``<q seq>`` + padding), ``zmq`` (raw pyzmq SUB,
our EVENTS messages, decoded with :func:`~kalshi_platform.feed.protocol.decode`) or ``mpq``
(our EVENTS messages from the worker's queue, decoded the same way). The worker connects,
answers ``{"ready": True}`` once it can receive (``zmq``/``zmq64``: after the first probe
message; ``ws``: after the subscription's snapshot), and reads until the END message or the
timeout. A *stalled* worker stops reading after ready until the parent sends ``"resume"``,
then drains like the others (so what it lost, and whether it was told, is counted).

The reply is one dict: ``records`` (bytes of an ``int64`` array of ``[start_seq, count,
t_ns]`` rows, one per events message, ``t_ns`` = ``time.monotonic_ns()`` right after the
message was received and decoded; CLOCK_MONOTONIC is one clock for every process on the host),
``digest`` (BLAKE2b of the msgpack encoding of every event received, in receipt order; the
parent recomputes it from the events it published), ``gap_msgs``, ``snapshots``,
``heartbeats``, ``ended`` (END seen), ``end_seq`` (its last seq), ``cpu_s`` (the worker's
CPU time from connecting to END, before the digest), ``error`` (``None`` or one line).
"""

from __future__ import annotations

import gc
import hashlib
import struct
import time
import traceback
from typing import Any, Callable

#: 64-byte baseline messages: ``<q`` seq, zero padding (seq 0 = probe, -1 = END)
SMALL = struct.Struct("<q56x")
PROBE_SEQ, END_SEQ = 0, -1


def worker_main(conn: Any, queue: Any) -> None:
    """A worker process: import what the runs need, answer ``{"warm": True}``, then serve
    run commands from ``conn`` until ``{"op": "quit"}``."""
    import importlib

    for mod in ("numpy", "zmq", "msgspec", "kalshi_platform.feed.ipc", "kalshi_platform.feed.udp",
                "kalshi_platform.feed.ws_client", "kalshi_platform.stream.codec"):
        importlib.import_module(mod)  # here, never inside a measurement

    conn.send({"warm": True})
    while True:
        try:
            cmd = conn.recv()
        except (EOFError, OSError):
            return
        if cmd.get("op") == "quit":
            return
        gc.disable()  # the events kept for the digest are this harness's, not a subscriber's:
        try:  # their collections must not show up as latency
            res = _run(cmd, conn, queue)
        except Exception as e:  # reported to the parent, which fails the run
            res = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        finally:
            gc.enable()
        try:
            conn.send(res)
        except (OSError, EOFError):
            return
        del res
        gc.collect()


class _Recorder:
    """What one worker saw during a run (see the module docstring)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int]] = []
        self.bodies: list[list] = []
        self.gap_msgs = self.snapshots = self.heartbeats = 0
        self.ended = False
        self.end_seq: int | None = None  # END's last seq (beyond the last received: a lost tail)
        self.cpu0 = time.process_time()

    def result(self, digest: bool = True) -> dict[str, Any]:
        import numpy as np

        cpu_s = time.process_time() - self.cpu0
        arr = np.array(self.rows, dtype=np.int64).reshape(-1, 3)
        return {"cpu_s": cpu_s, "records": arr.tobytes(),
                "digest": _digest(self.bodies) if digest else None,
                "gap_msgs": self.gap_msgs, "snapshots": self.snapshots,
                "heartbeats": self.heartbeats, "ended": self.ended, "end_seq": self.end_seq,
                "error": None}


def _digest(bodies: list[list]) -> str:
    """BLAKE2b over each event's msgpack ``[code, *fields]`` encoding, in order."""
    import msgspec

    from kalshi_platform.stream.codec import to_array

    enc = msgspec.msgpack.Encoder().encode
    h = hashlib.blake2b(digest_size=16)
    for body in bodies:
        h.update(b"".join([enc(to_array(e)) for e in body]))
    return h.hexdigest()


def _run(cmd: dict, conn: Any, queue: Any) -> dict[str, Any]:
    system, spec = cmd["system"], cmd["spec"]
    deadline = time.monotonic() + float(cmd.get("timeout_s", 60.0))
    stall = bool(cmd.get("stall"))
    if system in ("ipc", "udp", "ws"):
        return _run_client(system, spec, conn, stall, deadline)
    if system == "zmq64":
        return _run_zmq64(spec, conn, stall, deadline)
    if system == "zmq":
        return _run_zmq_events(spec, conn, stall, deadline)
    if system == "mpq":
        return _run_mpq(queue, conn, stall, deadline)
    raise ValueError(f"unknown system {system!r}")


def _wait_resume(conn: Any, deadline: float) -> None:
    """A stalled subscriber: read nothing until the parent says ``resume``."""
    while time.monotonic() < deadline:
        if conn.poll(0.05):
            conn.recv()
            return


#: a reader that got events and then nothing for this long stops (a lost UDP END)
IDLE_STOP_S = 1.5


def _loop(rec: _Recorder, recv: Callable[[float], Any], deadline: float) -> None:
    """Read decoded :class:`Message` s until END, the deadline, or :data:`IDLE_STOP_S`
    without a message once events came."""
    mono = time.monotonic_ns
    rows, bodies = rec.rows, rec.bodies
    last = time.monotonic()
    while True:
        m = recv(0.2)
        if m is None:
            now = time.monotonic()
            if now > deadline or (rows and now - last > IDLE_STOP_S):
                return
            continue
        last = time.monotonic()
        kind = m.kind
        if kind == "events":
            t = mono()
            rows.append((m.seq, len(m.body), t))
            bodies.append(m.body)
        elif kind == "end":
            rec.ended = True
            rec.end_seq = m.seq
            return
        elif kind == "gap":
            rec.gap_msgs += 1
        elif kind == "snapshot":
            rec.snapshots += 1
        else:
            rec.heartbeats += 1


def _run_client(system: str, spec: dict, conn: Any, stall: bool,
                deadline: float) -> dict[str, Any]:
    """Our transports through their public ``Client`` (``transports.connect``)."""
    from kalshi_platform.feed.transports import connect

    client = connect(spec["url"], feeds=None, tickers=None, depth=True)
    rec = _Recorder()
    try:
        if system == "ws":  # connected and subscribed once its first snapshot came
            while time.monotonic() < deadline:
                m = client.recv(0.2)
                if m is not None and m.kind == "snapshot":
                    rec.snapshots += 1
                    break
        conn.send({"ready": True})
        if stall:
            _wait_resume(conn, deadline)
        _loop(rec, client.recv, deadline)
    finally:
        client.close()
    return rec.result()


def _zmq_sub(url: str) -> tuple[Any, Any]:
    import zmq

    ctx = zmq.Context(io_threads=1)
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.RCVHWM, 1000)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(url)
    return ctx, s


def _first_probe(sock: Any, deadline: float) -> None:
    while time.monotonic() < deadline:
        if sock.poll(50):
            sock.recv()
            return
    raise TimeoutError("no probe from the publisher")


def _run_zmq64(spec: dict, conn: Any, stall: bool, deadline: float) -> dict[str, Any]:
    """Raw pyzmq SUB, 64-byte messages: one row per message (count 1), no decoding."""
    ctx, sock = _zmq_sub(spec["url"])
    rec = _Recorder()
    try:
        _first_probe(sock, deadline)
        conn.send({"ready": True})
        if stall:
            _wait_resume(conn, deadline)
        mono, unpack, rows = time.monotonic_ns, SMALL.unpack_from, rec.rows
        last = time.monotonic()
        while time.monotonic() < deadline:
            if not sock.poll(200):
                if rows and time.monotonic() - last > IDLE_STOP_S:
                    break
                continue
            last = time.monotonic()
            seq = unpack(sock.recv())[0]
            if seq > 0:
                rows.append((seq, 1, mono()))
            elif seq == END_SEQ:
                rec.ended = True
                break
    finally:
        sock.close(linger=0)
        ctx.term()
    return rec.result(digest=False)


def _run_zmq_events(spec: dict, conn: Any, stall: bool, deadline: float) -> dict[str, Any]:
    """Raw pyzmq SUB carrying our EVENTS messages (decoded like ``ipc.Client.recv``)."""
    from kalshi_platform.feed.protocol import decode

    ctx, sock = _zmq_sub(spec["url"])
    rec = _Recorder()

    def recv(timeout: float) -> Any:
        if not sock.poll(int(timeout * 1000)):
            return None
        m = decode(sock.recv())
        return None if m.kind == "heartbeat" and m.seq == 0 else m  # probes

    try:
        _first_probe(sock, deadline)
        conn.send({"ready": True})
        if stall:
            _wait_resume(conn, deadline)
        _loop(rec, recv, deadline)
    finally:
        sock.close(linger=0)
        ctx.term()
    return rec.result()


def _run_mpq(queue: Any, conn: Any, stall: bool, deadline: float) -> dict[str, Any]:
    """``multiprocessing.Queue`` of our EVENTS messages (bytes), decoded the same way."""
    import queue as stdlib_queue

    from kalshi_platform.feed.protocol import decode

    rec = _Recorder()

    def recv(timeout: float) -> Any:
        try:
            return decode(queue.get(timeout=timeout))
        except stdlib_queue.Empty:
            return None

    conn.send({"ready": True})
    if stall:
        _wait_resume(conn, deadline)
    _loop(rec, recv, deadline)
    return rec.result()
