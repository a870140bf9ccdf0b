"""The ``ws://`` subscriber side: a :class:`~kalshi_platform.feed.subscriber.TransportClient`
over a WebSocket (the ``websockets`` threading client).

:class:`Client` connects (retrying with :class:`~kalshi_platform.retry.Backoff` until the
server is up: a subscriber started before its publisher waits for it), sends one
``subscribe`` command and turns the server's JSON messages back into
:class:`~kalshi_platform.feed.protocol.Message` s with plant events in integer units.
The server filters by feed and ticker, so the seqs a client sees are not contiguous
(``contiguous = False``); losses are explicit ``gap`` messages, each followed by a fresh
snapshot in band.

Resuming (``from_seq`` in the subscribe, served from the server's bounded history): a client
whose first connection attempt failed (started before its publisher) asks for everything
from seq 1, so it sees every seq once even if the publisher started emitting before the
next retry; a client that lost its connection asks for the seqs after the last it got, of the
same run. When the server no longer holds them it sends a gap and a snapshot instead.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import urlparse

import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from kalshi_platform.feed.protocol import Message, ProtocolError
from kalshi_platform.feed.transports import TransportError
from kalshi_platform.feed.ws import WS_VERSION, book_from_json, event_from_json
from kalshi_platform.retry import Backoff

log = logging.getLogger(__name__)

#: keyword arguments of websockets' sync ``connect`` that older releases lack: ``proxy``
#: (15.0; ``None`` = never through an HTTP proxy from the environment) and ``legacy`` (17.0;
#: ``True`` = return the connection directly, without the deprecation warning)
_CONNECT_KW = {k: v for k, v in (("proxy", None), ("legacy", True))
               if k in inspect.signature(connect).parameters}

#: feeds a Subscriber's books are kept from (asked for whatever it yields)
BOOK_FEEDS = {True: frozenset({"deltas", "bbo"}), False: frozenset({"bbo"})}


class Client:
    """A ws subscriber connection (see the module docstring).

    Args:
        url: ``ws://HOST:PORT`` (options after ``?`` are the server's and are ignored).
        feeds: feeds to ask for (``None``: the server's default, all but quarantine); the
            book feeds (``deltas`` and ``bbo``, or ``bbo`` when ``depth`` is off) are added so
            the Subscriber's books follow the stream.
        tickers: markets to ask for (``None``: all).
        depth: full ladders in snapshots, or the BBO only.
        book_feeds: add the book feeds (default); ``False`` asks for exactly ``feeds``.
        backoff: connect retry delays (default 50 ms doubling to 1 s).

    Attributes: ``connects`` (successful connections), ``attempts`` (failed ones since the
    last success), ``errors`` (``error`` messages from the server: ``(cmd, text)``).
    Raises :class:`TransportError` for a URL that is not ``ws://HOST:PORT``.
    """

    contiguous = False

    def __init__(self, url: str, *, feeds: frozenset[str] | None = None,
                 tickers: frozenset[str] | None = None, depth: bool = True,
                 book_feeds: bool = True, backoff: Backoff | None = None) -> None:
        u = urlparse(url)
        try:
            port = u.port
        except ValueError:
            port = None
        if u.scheme != "ws" or not port:
            raise TransportError(f"not a ws://HOST:PORT URL: {url!r}")
        host = u.hostname or "127.0.0.1"
        self.url = f"ws://{'[' + host + ']' if ':' in host else host}:{port}/"
        cmd: dict[str, Any] = {"cmd": "subscribe", "depth": "full" if depth else "bbo",
                               "tickers": None if tickers is None else sorted(tickers)}
        if feeds is not None:
            cmd["feeds"] = sorted(set(feeds) | (BOOK_FEEDS[depth] if book_feeds else set()))
        self._subscribe = cmd
        self._backoff = backoff or Backoff(base_s=0.05, cap_s=1.0, jitter=0.5)
        self._ws: ClientConnection | None = None
        self._pending: deque[Message] = deque()
        self._next_try = 0.0
        self._snapshot_due = False  # a snapshot will arrive without asking for one
        self._run_id: str | None = None
        self._last_seq: int | None = None  # last seq delivered in this run
        self._ended = False
        self._closed = False
        self.connects = 0
        self.attempts = 0
        self.errors: list[tuple[str | None, str]] = []

    # -- TransportClient ---------------------------------------------------------------------

    def recv(self, timeout: float) -> Message | None:
        """The next message, or ``None`` after ``timeout`` seconds without one (including
        while the server is not up yet). Raises :class:`ProtocolError` on a message that is
        not this protocol."""
        deadline = time.monotonic() + timeout
        while True:
            if self._pending:
                msg = self._pending.popleft()
                if msg.kind == "snapshot":
                    self._snapshot_due = False
                return msg
            if self._ended or self._closed:
                _wait_until(deadline)
                return None
            if self._ws is None and not self._connect(deadline):
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                data = self._ws.recv(remaining, decode=False)  # type: ignore[union-attr]
            except TimeoutError:
                return None
            except ConnectionClosed:
                self._drop_connection()
                continue
            self._on_data(data)

    def snapshot(self, min_seq: int) -> Message | None:
        """Ask for a snapshot valid at a seq >= ``min_seq`` in band; it arrives through
        :meth:`recv`. Returns ``None`` (nothing is asked when one is already due: after a
        ``gap`` or a (re)connect the server sends one by itself)."""
        if not self._snapshot_due and self._ws is not None:
            try:
                self._ws.send(orjson.dumps({"cmd": "snapshot", "min_seq": min_seq}).decode())
            except ConnectionClosed:
                self._drop_connection()
        self._snapshot_due = True
        return None

    def close(self) -> None:
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()

    # -- connection --------------------------------------------------------------------------

    def _connect(self, deadline: float) -> bool:
        now = time.monotonic()
        if now < self._next_try:
            _wait_until(min(deadline, self._next_try))
            if time.monotonic() < self._next_try:
                return False
        try:
            ws = connect(self.url, open_timeout=max(0.2, deadline - time.monotonic()),
                         compression=None, max_size=None, close_timeout=1.0, **_CONNECT_KW)
        except (OSError, TimeoutError, EOFError, InvalidHandshake, ConnectionClosed) as e:
            self._next_try = time.monotonic() + self._backoff.delay(self.attempts)
            if self.attempts == 0:
                log.info("ws feed %s not reachable (%s); retrying", self.url, e)
            self.attempts += 1
            return False
        except InvalidURI as e:
            raise TransportError(f"{self.url}: {e}") from None
        try:
            ws.send(orjson.dumps(self._subscribe_command()).decode())
        except ConnectionClosed:
            ws.close()
            return False
        self._ws = ws
        self.connects += 1
        self.attempts = 0
        self._snapshot_due = True
        return True

    def _subscribe_command(self) -> dict[str, Any]:
        cmd = dict(self._subscribe)
        if self._run_id is not None and self._last_seq is not None and not self._snapshot_due:
            cmd["from_seq"], cmd["run_id"] = self._last_seq + 1, self._run_id  # reconnect
        # (a snapshot still due, after a gap: the books are not whole; a fresh one, not a resume)
        elif self.connects == 0 and self.attempts > 0:
            cmd["from_seq"] = 1  # started before the publisher: everything from the start
        return cmd

    def _drop_connection(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
        if not self._ended:
            log.info("ws feed %s: connection lost; reconnecting", self.url)

    # -- messages ----------------------------------------------------------------------------

    def _on_data(self, data: bytes | str) -> None:
        try:
            o = orjson.loads(data)
            kind = o["type"]
        except (orjson.JSONDecodeError, TypeError, KeyError) as e:
            raise ProtocolError(f"not a ws feed message: {e}") from None
        handler = _HANDLERS.get(kind)
        if handler is None:
            log.debug("ws feed %s: ignoring message type %r", self.url, kind)
            return
        try:
            handler(self, o)
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"bad ws {kind} message: {type(e).__name__}: {e}") from None

    def _on_events(self, o: dict) -> None:
        run_id = o["run_id"]
        pending = self._pending
        start: int | None = None
        run: list = []
        for obj in o["events"]:
            seq, ev = event_from_json(obj)
            if start is not None and seq == start + len(run):
                run.append(ev)
                continue
            if run:
                pending.append(Message("events", run_id, start, run))
            start, run = seq, [ev]
        if run:
            pending.append(Message("events", run_id, start, run))
            self._last_seq = start + len(run) - 1

    def _on_snapshot(self, o: dict) -> None:
        run_id, seq = o["run_id"], o["seq"]
        books = [book_from_json(b) for b in o["books"]]
        self._run_id, self._last_seq = run_id, seq
        self._pending.append(Message("snapshot", run_id, seq, books))

    def _on_gap(self, o: dict) -> None:
        self._snapshot_due = True
        self._pending.append(Message("gap", o["run_id"], o["first_seq"], [o["count"]]))

    def _on_end(self, o: dict) -> None:
        self._ended = True
        self._pending.append(Message("end", o["run_id"], o["seq"], []))

    def _on_heartbeat(self, o: dict) -> None:
        self._pending.append(Message("heartbeat", o["run_id"], o["seq"], []))

    def _on_hello(self, o: dict) -> None:
        if o.get("version") != WS_VERSION:
            raise ProtocolError(f"ws feed version {o.get('version')!r}; this code reads "
                                f"{WS_VERSION}")

    def _on_subscribed(self, o: dict) -> None:
        if o.get("from_seq") not in (None, 1):
            self._snapshot_due = False  # resumed from the history: no snapshot follows

    def _on_error(self, o: dict) -> None:
        self.errors.append((o.get("cmd"), str(o.get("error"))))
        log.warning("ws feed %s refused %s: %s", self.url, o.get("cmd"), o.get("error"))


_HANDLERS = {"events": Client._on_events, "snapshot": Client._on_snapshot,
             "gap": Client._on_gap, "end": Client._on_end, "heartbeat": Client._on_heartbeat,
             "hello": Client._on_hello, "error": Client._on_error,
             "subscribed": Client._on_subscribed}


def _wait_until(deadline: float) -> None:
    """Sleep until ``deadline`` (a retry delay or an idle wait; never synchronisation)."""
    d = deadline - time.monotonic()
    if d > 0:
        time.sleep(d)
