"""The sim's WebSocket market-data feed: connections, commands, subscriptions, fan-out.

Speaks Kalshi's WebSocket v2 protocol (docs/kalshi-api.md §7) over an aiohttp
``WebSocketResponse``:

* commands ``subscribe`` (``channels`` + ``market_ticker(s)``, ``use_yes_price``,
  ``send_initial_snapshot``), ``unsubscribe``, ``update_subscription`` (``add_markets``,
  ``delete_markets``, ``get_snapshot``; exactly one sid), ``list_subscriptions`` (§7.2);
* ``subscribed``/``ok``/``unsubscribed`` acks carrying the command ``id``; ``seq`` per ``sid``
  (acks of seq'd channels consume one, §7.10); errors with Kalshi's codes (§7.3);
* a ``heartbeat`` ping every ``ping_interval`` s (§7.1);
* faults (:mod:`.faults`): dropped playback frames (the ``seq`` is consumed, so the client sees
  a gap), aborted connections (TCP reset, no close frame), a per-frame delay.

Extension points (for the trading API):

* :meth:`MarketFeed.publish` fans one public data frame (``orderbook_delta``, ``trade``,
  ``ticker``, lifecycle) out to every matching subscription; the playback calls it, and so can a
  matching engine's public feed.
* :meth:`MarketFeed.publish_private` sends a frame of a private channel (``fill``,
  ``user_orders``, ``market_positions``, ``order_group_updates``) to the connections
  authenticated with one API key (the key of the signed handshake, ``Conn.key_id``).
* :attr:`MarketFeed.snapshot_hooks` (``channel -> callable(conn, sub, tickers)``) lets a private
  channel send its initial state on subscribe.
* :attr:`MarketFeed.commands` (``name -> handler(conn, id, params)``) holds the command
  handlers; the server routes them through its own overridable methods.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from kalshi_platform.sim.books import snapshot_msg
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.protocol import CHANNEL_OF, ERROR_TEXT, SEQ_CHANNELS
from kalshi_platform.sim import ws_commands
from kalshi_platform.ticker_plant.order_book import OrderBook

log = logging.getLogger(__name__)

_CLOSE = object()
_ABORT = object()


@dataclass
class Sub:
    """One subscription: ``sid``, channel, market filter (``None`` = every market), its
    ``use_yes_price`` and the last ``seq`` sent on it."""

    sid: int
    channel: str
    tickers: set[str] | None
    use_yes_price: bool
    seq: int = 0

    def next_seq(self) -> int | None:
        """The next ``seq`` of this sid, or ``None`` for channels without seq."""
        if self.channel not in SEQ_CHANNELS:
            return None
        self.seq += 1
        return self.seq

    def matches(self, channel: str, ticker: str | None) -> bool:
        """Whether a frame of ``channel`` about ``ticker`` goes to this subscription."""
        return self.channel == channel and (self.tickers is None or ticker in self.tickers)


@dataclass(eq=False)
class Conn:
    """One WebSocket connection. ``ws`` is an aiohttp ``WebSocketResponse``; ``key_id`` the
    API key of its signed handshake (``None`` when unsigned)."""

    ws: Any
    n: int
    transport: Any = None
    key_id: str | None = None
    q: asyncio.Queue = field(default_factory=asyncio.Queue)
    subs: dict[int, Sub] = field(default_factory=dict)
    next_sid: int = 1
    played: int = 0  # playback frames counted for faults
    ending: bool = False  # close/abort queued: nothing more is enqueued
    pending_resync: set[int] = field(default_factory=set)  # book sids with an injected gap
    resynced: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    closer: asyncio.Task | None = None

    def enqueue(self, obj: dict[str, Any] | object) -> None:
        """Queue a frame (a dict, sent as JSON) unless the connection is ending."""
        if not self.ending:
            self.q.put_nowait(orjson.dumps(obj).decode() if isinstance(obj, dict) else obj)


def frame(t: str, sid: int, seq: int | None, msg: Any) -> dict[str, Any]:
    """A data frame ``{"type", "sid", "seq"?, "msg"}`` (docs/kalshi-api.md §7.3)."""
    out: dict[str, Any] = {"type": t, "sid": sid}
    if seq is not None:
        out["seq"] = seq
    out["msg"] = msg
    return out


class MarketFeed:
    """The WebSocket side of the sim.

    Args:
        book_of: ``ticker -> OrderBook | None``, the book a snapshot is rendered from.
        known: the set of market tickers a client may subscribe to (shared, may grow).
        faults: fault switches (:class:`~kalshi_platform.sim.faults.Faults`).
        stats: the server's :class:`~kalshi_platform.sim.app.SimStats` (counters bumped here).
        ping_interval: seconds between ``heartbeat`` pings (0 = none).
        market_id_of: ``ticker -> market_id | None`` for snapshots of books not seen yet.
    """

    def __init__(self, book_of: Callable[[str], OrderBook | None], known: set[str],
                 faults: Faults, stats: Any, ping_interval: float = 10.0,
                 market_id_of: Callable[[str], str | None] = lambda t: None) -> None:
        self.book_of = book_of
        self.known = known
        self.faults = faults
        self.stats = stats
        self.ping_interval = ping_interval
        self.market_id_of = market_id_of
        self.conns: set[Conn] = set()
        self.last_ticker: dict[str, dict] = {}  # ticker → last ``ticker`` msg (initial snapshot)
        self.snapshot_hooks: dict[str, Callable[[Conn, Sub, list[str]], None]] = {}
        #: command name → ``handler(conn, id, params)`` (replaceable, e.g. by the server)
        self.commands: dict[str, Callable[[Conn, int, dict[str, Any]], None]] = {
            "subscribe": lambda c, cid, p: ws_commands.subscribe(self, c, cid, p),
            "unsubscribe": lambda c, cid, p: ws_commands.unsubscribe(self, c, cid, p),
            "update_subscription": lambda c, cid, p: ws_commands.update(self, c, cid, p)}
        self.normal_closes = 0
        self._conn_no = 0
        #: set while any live connection has a subscription (playback runs while it is set)
        self.subscribed = asyncio.Event()
        #: set by the first order-book subscription (or any, see ``book_frames``)
        self.started = asyncio.Event()
        self.book_frames = False  # the recording has book frames: start on orderbook_delta
        #: called after every command (the server arms exit-when-done closers)
        self.on_command_done: Callable[[Conn], None] = lambda c: None
        #: called when a connection is gone
        self.on_conn_gone: Callable[[Conn], None] = lambda c: None
        #: ``(type, msg) -> consumed``: sees every playback frame first; a frame it consumes
        #: is not published (``sim --liquidity`` turns recorded books into engine orders)
        self.playback_sink: Callable[[str, dict[str, Any]], bool] | None = None

    # -- connections -----------------------------------------------------------------------

    async def serve(self, ws: Any, transport: Any, key_id: str | None) -> None:
        """Run one prepared aiohttp WebSocket until it closes."""
        from aiohttp import WSMsgType

        self._conn_no += 1
        c = Conn(ws, self._conn_no, transport=transport, key_id=key_id)
        self.conns.add(c)
        self.stats.connections += 1
        writer = asyncio.create_task(self._writer(c), name=f"sim-writer-{c.n}")
        pinger = asyncio.create_task(self._pinger(c), name=f"sim-pinger-{c.n}")
        try:
            async for m in ws:
                if m.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self.on_command(c, m.data)
                elif m.type == WSMsgType.ERROR:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            c.ending = True
            c.gone.set()
            self.conns.discard(c)
            self.update_subscribed()
            for task in (pinger, c.closer):
                if task is not None:
                    task.cancel()
            if not writer.done():
                writer.cancel()
            while not c.q.empty():  # let joiners finish
                c.q.get_nowait()
                c.q.task_done()
            self.on_conn_gone(c)

    async def _writer(self, c: Conn) -> None:
        delay = self.faults.delay_s
        try:
            while True:
                item = await c.q.get()
                try:
                    if delay:
                        await asyncio.sleep(delay)
                    if item is _ABORT:
                        if c.transport is not None:
                            c.transport.abort()
                        return
                    if item is _CLOSE:
                        self.normal_closes += 1
                        await c.ws.close(code=1000, message=b"replay finished")
                        return
                    await c.ws.send_str(item)
                    self.stats.frames_sent += 1
                finally:
                    c.q.task_done()
        except (ConnectionResetError, RuntimeError):
            pass

    async def _pinger(self, c: Conn) -> None:
        if not self.ping_interval or self.ping_interval <= 0:
            return
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                await c.ws.ping(b"heartbeat")
        except (ConnectionResetError, RuntimeError):
            pass

    async def close_all(self, code: int = 1001) -> None:
        """Close every connection (``code``, default 1001 going away) and wait briefly."""
        for c in list(self.conns):
            c.ending = True
            try:
                await asyncio.wait_for(c.ws.close(code=code, message=b"server stopping"), 2)
            except (asyncio.TimeoutError, ConnectionResetError, RuntimeError):
                if c.transport is not None:
                    c.transport.abort()

    def update_subscribed(self) -> None:
        """Set :attr:`subscribed` iff a live connection has a subscription."""
        if any(c.subs for c in self.conns if not c.ending):
            self.subscribed.set()
        else:
            self.subscribed.clear()

    async def drained(self, c: Conn) -> None:
        """Wait until everything queued on ``c`` was sent, or ``c`` is gone."""
        join = asyncio.ensure_future(c.q.join())
        gone = asyncio.ensure_future(c.gone.wait())
        await asyncio.wait((join, gone), return_when=asyncio.FIRST_COMPLETED)
        join.cancel()
        gone.cancel()

    def close_when_done(self, c: Conn, grace_s: float) -> None:
        """Queue a normal close (1000 "replay finished") once ``c`` drained and resynced any
        injected gap (at most ``grace_s`` s after draining)."""
        if c.closer is None and not c.ending:
            c.closer = asyncio.create_task(self._close_when_drained(c, grace_s),
                                           name=f"sim-close-{c.n}")

    async def _close_when_drained(self, c: Conn, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while True:
            await self.drained(c)
            if c.gone.is_set() or not c.pending_resync:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("conn %d: closing with unresynced gap(s) on sid(s) %s", c.n,
                            sorted(c.pending_resync))
                break
            try:
                await asyncio.wait_for(c.resynced.wait(), left)
            except asyncio.TimeoutError:
                pass
        if not c.ending:
            c.q.put_nowait(_CLOSE)
            c.ending = True

    # -- fan-out ---------------------------------------------------------------------------

    def publish(self, t: str, msg: dict[str, Any], *, flip_no: Callable | None = None,
                playback: bool = True) -> None:
        """Fan a public data frame of wire type ``t`` out to every matching subscription.

        ``orderbook_snapshot`` frames are re-rendered from the current book per subscription
        (its ``use_yes_price``); ``flip_no(sub, msg)`` may return a converted NO-side delta.
        ``playback`` frames count for faults (drops, disconnects; :mod:`.faults`).
        """
        ch = CHANNEL_OF.get(t)
        if ch is None:
            return
        if playback and self.playback_sink is not None and self.playback_sink(t, msg):
            return
        ticker = msg.get("market_ticker")
        if t == "ticker" and isinstance(ticker, str):
            self.last_ticker[ticker] = msg
        for c in list(self.conns):
            if c.ending:
                continue
            for sub in list(c.subs.values()):
                if not sub.matches(ch, ticker):
                    continue
                if t == "orderbook_snapshot":
                    out = snapshot_msg(ticker, self.book_of(ticker),  # type: ignore[arg-type]
                                       use_yes_price=sub.use_yes_price,
                                       market_id=self.market_id_of(ticker))  # type: ignore[arg-type]
                elif flip_no is not None:
                    out = flip_no(sub, msg)
                else:
                    out = msg
                self._send(c, sub, t, out, playback)

    def publish_private(self, key_id: str, channel: str, t: str, msg: dict[str, Any]) -> int:
        """Send a private-channel frame (wire type ``t``) to every subscription on
        ``channel`` of the connections authenticated as ``key_id``; the market filter applies
        to ``msg["market_ticker"]`` when present. Returns the number of frames queued."""
        n = 0
        ticker = msg.get("market_ticker")
        for c in list(self.conns):
            if c.ending or c.key_id != key_id:
                continue
            for sub in list(c.subs.values()):
                if sub.channel == channel and (sub.tickers is None or ticker is None
                                               or ticker in sub.tickers):
                    self._send(c, sub, t, msg, False)
                    n += 1
        return n

    def _send(self, c: Conn, sub: Sub, t: str, msg: dict[str, Any], playback: bool) -> None:
        seq = sub.next_seq()
        if not playback:
            c.enqueue(frame(t, sub.sid, seq, msg))
            return
        c.played += 1
        if self.faults.drops(c.played):
            self.stats.frames_dropped += 1
            if sub.channel == "orderbook_delta":
                c.pending_resync.add(sub.sid)
                c.resynced.clear()
            log.debug("conn %d: dropped playback frame %d (sid %d seq %s)", c.n, c.played,
                      sub.sid, seq)
        else:
            c.enqueue(frame(t, sub.sid, seq, msg))
        if self.faults.disconnects(c.played):
            self.stats.disconnects_injected += 1
            log.debug("conn %d: injected disconnect after %d playback frames", c.n, c.played)
            c.q.put_nowait(_ABORT)
            c.ending = True
            self.update_subscribed()  # pause playback until someone is subscribed again

    def send_snapshot(self, c: Conn, sub: Sub, ticker: str, cid: int | None) -> None:
        """Queue an ``orderbook_snapshot`` of ``ticker`` on ``sub`` (``id`` = ``cid`` when it
        answers a ``get_snapshot``)."""
        f = frame("orderbook_snapshot", sub.sid, sub.next_seq(),
                  snapshot_msg(ticker, self.book_of(ticker), use_yes_price=sub.use_yes_price,
                               market_id=self.market_id_of(ticker)))
        if cid is not None:
            f["id"] = cid
        c.enqueue(f)

    # -- commands (docs/kalshi-api.md §7.2, §7.3) -----------------------------------------------

    def error(self, c: Conn, cid: int, code: int, ticker: str | None = None,
              text: str | None = None) -> None:
        """Queue a Kalshi ``error`` frame (code from §7.3)."""
        msg: dict[str, Any] = {"code": code, "msg": text or ERROR_TEXT.get(code, "error")}
        if ticker is not None:
            msg["market_ticker"] = ticker
        self.stats.errors_sent += 1
        c.enqueue({"id": cid, "type": "error", "msg": msg})

    def on_command(self, c: Conn, text: str | bytes) -> None:
        """Handle one client command frame."""
        self.stats.commands += 1
        ws_commands.dispatch(self, c, text)
        self.update_subscribed()
        self.on_command_done(c)
