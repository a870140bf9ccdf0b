"""A local Kalshi-compatible server: WebSocket v2 market data and REST, fed from a recording.

One ``websockets`` server on one port answers both protocols:

* ``ws://HOST:PORT/trade-api/ws/v2`` — the WebSocket API (docs/kalshi-api.md §7): ``subscribe``
  (``channels`` + ``market_ticker(s)``, ``use_yes_price``, ``send_initial_snapshot``),
  ``unsubscribe``, ``update_subscription`` (``add_markets``, ``delete_markets``,
  ``get_snapshot``; exactly one sid), ``list_subscriptions``; ``subscribed``/``ok``/
  ``unsubscribed`` acks carrying the command ``id``; ``seq`` per ``sid`` (acks of seq'd
  channels consume one, §7.10); errors with Kalshi's codes (§7.3); a ``heartbeat`` ping every
  10 s (§7.1); the handshake's ``KALSHI-ACCESS-*`` headers verified against a public key when
  one is configured (HTTP 401 otherwise, §2.4).
* ``http://HOST:PORT/trade-api/v2/...`` — the REST market-data endpoints
  (:mod:`kalshi_platform.sim.rest`), answered from ``process_request`` before any WebSocket
  handshake.

Why ``websockets`` for HTTP too: one dependency we already need, one port, and — most
important — REST runs on the same event loop as the playback, so ``GET .../orderbook`` sees
exactly the book the WebSocket stream has reached (no locks, no thread). The price is a minimal
HTTP server: ``GET`` only, no request bodies, ``Connection: close`` after every answer. That is
all Kalshi's market-data REST needs (httpx opens a new connection per request transparently).

Playback: the recording is replayed through the sim's own
:class:`~kalshi_platform.ticker_plant.plant.TickerPlant` (its books answer ``get_snapshot`` and
REST), and each data frame is re-sent to every matching subscription with that connection's
own ``sid``/``seq``. Snapshots in the recording are re-rendered from the sim's book after it
applied them. Playback starts with the first ``orderbook_delta`` subscription (or the first
subscription if the recording has no book frames) and pauses while nobody is subscribed —
or, with ``start="now"``, plays at once regardless of clients, like a live exchange — and runs as fast as possible (``speed=0``) or at ``speed`` × the
recording's pace. NO-side prices are converted when a subscription's ``use_yes_price`` differs
from the recording's (§7.8).

With ``exit_when_done`` the sim closes every connection with code 1000 ("replay finished")
once playback has ended and that connection has been sent everything (and has resynced any
gap the sim injected), then :attr:`SimServer.finished` is set. Faults: :mod:`.faults`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from kalshi_platform.ingestion.recording import iter_frames, read_meta
from kalshi_platform.sim.books import flip_no_price, snapshot_msg
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.rest import REST_PREFIX, RestApi, RestData, event_of, trade_from_ws
from kalshi_platform.ticker_plant.order_book import OrderBook
from kalshi_platform.ticker_plant.plant import TickerPlant

log = logging.getLogger(__name__)

WS_PATH = "/trade-api/ws/v2"

#: wire type of a data frame → the channel that carries it (docs/kalshi-api.md §7.4)
CHANNEL_OF = {
    "orderbook_snapshot": "orderbook_delta",
    "orderbook_delta": "orderbook_delta",
    "ticker": "ticker",
    "trade": "trade",
    "market_lifecycle_v2": "market_lifecycle_v2",
    "event_lifecycle": "market_lifecycle_v2",
    "event_fee_update": "market_lifecycle_v2",
}
#: channels whose frames (and acks) carry ``seq`` (§7.5, §7.7, §7.9)
SEQ_CHANNELS = frozenset({"orderbook_delta", "trade", "market_lifecycle_v2"})
#: channels a client may subscribe to; the ones outside CHANNEL_OF's values carry no data here
KNOWN_CHANNELS = frozenset({
    "orderbook_delta", "ticker", "trade", "market_lifecycle_v2", "multivariate_market_lifecycle",
    "fill", "user_orders", "market_positions", "order_group_updates", "communications",
    "cfbenchmarks_value", "cfbenchmarks_value_5hz", "pyth_value"})
#: channels that take no market filter (§7.4)
UNFILTERED = frozenset({"market_lifecycle_v2", "multivariate_market_lifecycle"})

# Kalshi WebSocket error codes (docs/kalshi-api.md §7.3)
E_UNPROCESSABLE, E_PARAMS, E_CHANNELS, E_SIDS, E_UNKNOWN_CMD = 1, 2, 3, 4, 5
E_UNKNOWN_SID, E_UNKNOWN_CHANNEL, E_INVALID_PARAM, E_ONE_SID = 7, 8, 11, 12
E_UNSUPPORTED_ACTION, E_TICKER_REQUIRED, E_ACTION_REQUIRED, E_MARKET_NOT_FOUND = 13, 14, 15, 16
ERROR_TEXT = {
    1: "Unable to process message", 2: "Params required", 3: "Channels required",
    4: "Subscription IDs required", 5: "Unknown command", 7: "Unknown subscription ID",
    8: "Unknown channel name", 11: "Invalid parameter", 12: "Exactly one subscription ID is required",
    13: "Unsupported action", 14: "Market Ticker required", 15: "Action required",
    16: "Market not found",
}

_CLOSE = object()
_ABORT = object()


class SimError(OSError):
    """The sim cannot start: unreadable recording or fixtures, port in use, bad key."""


@dataclass
class SimStats:
    """Counters of one sim run (ints)."""

    frames_read: int = 0  # recording frames read by the playback
    frames_played: int = 0  # data frames applied to the sim's books and fanned out
    frames_sent: int = 0  # WebSocket frames sent (all connections)
    frames_dropped: int = 0  # playback frames dropped by the fault injector
    connections: int = 0  # WebSocket connections accepted
    disconnects_injected: int = 0
    handshakes_rejected: int = 0  # 401s on the WebSocket handshake
    commands: int = 0
    errors_sent: int = 0
    rest_requests: int = 0
    rest_429: int = 0


@dataclass
class _Sub:
    sid: int
    channel: str
    tickers: set[str] | None  # None = every market
    use_yes_price: bool
    seq: int = 0

    def next_seq(self) -> int | None:
        if self.channel not in SEQ_CHANNELS:
            return None
        self.seq += 1
        return self.seq


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    n: int
    q: asyncio.Queue = field(default_factory=asyncio.Queue)
    subs: dict[int, _Sub] = field(default_factory=dict)
    next_sid: int = 1
    played: int = 0  # playback frames counted for faults
    ending: bool = False  # close/abort queued: nothing more is enqueued
    pending_resync: set[int] = field(default_factory=set)  # book sids with an injected gap
    resynced: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    closer: asyncio.Task | None = None

    def enqueue(self, obj: dict[str, Any] | object) -> None:
        if not self.ending:
            self.q.put_nowait(orjson.dumps(obj).decode() if isinstance(obj, dict) else obj)


class SimServer:
    """The local Kalshi-compatible server.

    Args:
        recording: a recording in any format :mod:`kalshi_platform.ingestion.recording` reads;
            ``None`` serves REST fixtures only.
        host, port: where to listen (``port=0`` = any free port; see :attr:`port`).
        speed: 0 = as fast as possible; 1 = the recording's pace (receipt times).
        faults: :class:`~kalshi_platform.sim.faults.Faults`.
        public_key: verify the ``KALSHI-ACCESS-*`` headers of WebSocket handshakes (and of REST
            requests that carry them) against this key (a PEM path/text or a key object,
            whatever :func:`kalshi_platform.api.auth.load_public_key` takes); ``None`` = no auth.
        max_skew_s: reject signatures whose timestamp is further than this from now (s).
        rest_fixtures: directory of REST JSON fixtures (:meth:`RestData.load_fixtures`).
        cutoff: RFC3339 historical cutoff (overrides a fixture's ``/historical/cutoff``).
        use_yes_price: the recording's ``use_yes_price`` convention (default: its
            ``.meta.json`` sidecar, else ``False``).
        ping_interval: seconds between ``heartbeat`` pings (Kalshi: 10).
        start: ``"subscribe"`` (default: play from the first subscription, pause while nobody
            is subscribed) or ``"now"`` (play at once, whoever listens).
        exit_when_done: close connections with 1000 after playback and set :attr:`finished`.
        done_grace_s: how long a connection may keep an injected gap unresynced after
            playback before it is closed anyway.

    Raises :class:`SimError` from :meth:`start` for unreadable inputs or a busy port.
    """

    def __init__(self, recording: str | Path | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, speed: float = 0.0, faults: Faults | None = None,
                 public_key: Any = None, max_skew_s: float = 300.0,
                 rest_fixtures: str | Path | None = None, cutoff: str | None = None,
                 use_yes_price: bool | None = None, ping_interval: float = 10.0,
                 start: str = "subscribe", exit_when_done: bool = False,
                 done_grace_s: float = 5.0) -> None:
        if start not in ("subscribe", "now"):
            raise ValueError("start must be 'subscribe' or 'now'")
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.recording = Path(recording) if recording is not None else None
        self.host = host
        self._port = port
        self.speed = speed
        self.faults = faults or Faults()
        self.rest_times: list[float] = []  # monotonic arrival time of every REST request
        self.max_skew_s = max_skew_s
        self.ping_interval = ping_interval
        self.start_mode = start
        self.exit_when_done = exit_when_done
        self.done_grace_s = done_grace_s
        self._public_key_src = public_key
        self._public_key: Any = None
        self._verify: Callable[..., bool] | None = None
        self._rest_fixtures = Path(rest_fixtures) if rest_fixtures is not None else None
        self._cutoff = cutoff
        self._use_yes_price = use_yes_price
        self.stats = SimStats()
        self.data = RestData()
        self.rest = RestApi(self.data, self.book_of, page_cap=self.faults.page_cap)
        self.plant: TickerPlant = TickerPlant()
        self.known: set[str] = set()
        self.has_book_frames = False
        self._market_ids: dict[str, str] = {}
        self._last_ticker: dict[str, dict] = {}
        self._conns: set[_Conn] = set()
        self._conn_no = 0
        self._server: Server | None = None
        self._playback: asyncio.Task | None = None
        self._started = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._normal_closes = 0
        #: set when playback has applied the whole recording
        self.done = asyncio.Event()
        #: with ``exit_when_done``: set once playback is done and every connection was closed
        self.finished = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        return self._port

    @property
    def ws_url(self) -> str:
        """``ws://host:port/trade-api/ws/v2``."""
        return f"ws://{self.host}:{self._port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        """``http://host:port/trade-api/v2`` (the REST base URL)."""
        return f"http://{self.host}:{self._port}{REST_PREFIX}"

    @property
    def books(self) -> dict[str, OrderBook]:
        """The sim's current books (ticker → OrderBook), as far as playback has got."""
        return self.plant.books

    def book_of(self, ticker: str) -> OrderBook | None:
        """The sim's current book of ``ticker`` or ``None``."""
        return self.plant.books.get(ticker)

    async def start(self) -> None:
        """Load the recording index and fixtures, listen, start the playback task."""
        self._load()
        try:
            self._server = await serve(
                self._handler, self.host, self._port, process_request=self._process_request,
                ping_interval=None, compression=None, max_size=1 << 20)
        except OSError as e:
            raise SimError(f"cannot listen on {self.host}:{self._port}: {e.strerror or e}") from None
        self._port = self._server.sockets[0].getsockname()[1]
        if self.recording is not None:
            self._playback = asyncio.create_task(self._play(), name="sim-playback")
        else:
            self.done.set()
        if self.start_mode == "now":
            self._started.set()
        log.info("sim listening on %s (REST %s)", self.ws_url, self.rest_url)

    async def stop(self) -> None:
        """Stop listening, close every connection, stop playback."""
        if self._playback is not None:
            self._playback.cancel()
            try:
                await self._playback
            except (asyncio.CancelledError, Exception):
                pass
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> "SimServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def serve_until_finished(self) -> None:
        """Run until :attr:`finished` (only ever set with ``exit_when_done``)."""
        await self.finished.wait()

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        if self._public_key_src is not None:
            try:
                from kalshi_platform.api.auth import load_public_key, verify_signature
            except ImportError as e:  # pragma: no cover - api package always present
                raise SimError(f"signature verification unavailable: {e}") from None
            try:
                self._public_key = load_public_key(self._public_key_src)
            except (ValueError, OSError) as e:
                raise SimError(f"public key: {e}") from None
            self._verify = verify_signature
        if self._rest_fixtures is not None:
            try:
                counts = self.data.load_fixtures(self._rest_fixtures)
            except OSError as e:
                raise SimError(f"REST fixtures: {e}") from None
            log.info("REST fixtures from %s: %s", self._rest_fixtures, counts)
        for t in self.data.markets:
            self.known.add(t)
        if self.recording is not None:
            self._index_recording()
        if self._cutoff is not None:
            try:
                self.data.set_cutoff(self._cutoff)
            except ValueError as e:
                raise SimError(f"cutoff: {e}") from None

    def _index_recording(self) -> None:
        """One pass over the recording: markets it mentions, REST trades, its convention."""
        from kalshi_platform.ingestion.recording import RecordingError

        assert self.recording is not None
        if not self.recording.is_file():
            raise SimError(f"{self.recording}: no such file")
        if self._use_yes_price is None:
            self._use_yes_price = bool(read_meta(self.recording).use_yes_price)
        self.plant = TickerPlant(use_yes_price=self._use_yes_price)
        try:
            for _, frame in self._frames():
                t = frame.get("type")
                msg = frame.get("msg")
                if t not in CHANNEL_OF or not isinstance(msg, dict):
                    continue
                ticker = msg.get("market_ticker")
                if not isinstance(ticker, str) or not ticker:
                    continue
                if t in ("orderbook_snapshot", "orderbook_delta"):
                    self.has_book_frames = True
                if isinstance(msg.get("market_id"), str):
                    self._market_ids.setdefault(ticker, msg["market_id"])
                if ticker not in self.known:
                    self.known.add(ticker)
                    self.data.add_market(self._market_obj(ticker), replace=False)
                if t == "trade":
                    rt = trade_from_ws(msg)
                    if rt is not None:
                        self.data.add_trade(rt)
        except RecordingError as e:
            raise SimError(str(e)) from None

    def _market_obj(self, ticker: str) -> dict[str, Any]:
        ev = event_of(ticker)
        return {"ticker": ticker, "event_ticker": ev, "market_type": "binary",
                "title": ticker, "yes_sub_title": "", "no_sub_title": "", "status": "active",
                "result": "", "last_price_dollars": "0.0000", "volume_fp": "0.00",
                "open_interest_fp": "0.00", "price_level_structure": "linear_cent",
                "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
                "_sim": True}

    def _frames(self):
        """(recv_ns, frame dict) for every frame of the recording (markers/junk skipped)."""
        assert self.recording is not None
        for recv_ns, payload in iter_frames(self.recording):
            if isinstance(payload, (str, bytes)):
                try:
                    payload = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    continue
            if isinstance(payload, dict) and isinstance(payload.get("type"), str):
                yield recv_ns, payload

    # -- playback --------------------------------------------------------------------------

    async def _play(self) -> None:
        try:
            await self._started.wait()
            t0: float | None = None
            r0: int | None = None
            n = 0
            for recv_ns, frame in self._frames():
                self.stats.frames_read += 1
                if self.start_mode == "subscribe" and not self._subscribed.is_set():
                    await self._subscribed.wait()
                    t0 = None  # re-anchor pacing after a pause
                if self.speed > 0 and recv_ns is not None:
                    now = time.monotonic()
                    if t0 is None or r0 is None:
                        t0, r0 = now, recv_ns
                    else:
                        due = t0 + (recv_ns - r0) / 1e9 / self.speed
                        if due > now:
                            await asyncio.sleep(due - now)
                self._apply(frame, recv_ns)
                n += 1
                await self._backpressure()
                if n % 16 == 0 or self.speed > 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception:  # a sim bug must not hang clients silently
            log.exception("sim playback failed")
        finally:
            self.done.set()
        log.info("sim playback finished: %d frames played", self.stats.frames_played)
        if self.exit_when_done:
            for c in list(self._conns):
                self._arm_closer(c)
            self._check_finished()

    async def _backpressure(self) -> None:
        for c in list(self._conns):
            if c.q.qsize() > 10_000:
                await self._drained(c)

    async def _drained(self, c: _Conn) -> None:
        join = asyncio.ensure_future(c.q.join())
        gone = asyncio.ensure_future(c.gone.wait())
        await asyncio.wait((join, gone), return_when=asyncio.FIRST_COMPLETED)
        join.cancel()
        gone.cancel()

    def _apply(self, frame: dict[str, Any], recv_ns: int | None) -> None:
        t = frame["type"]
        self.plant.process(frame, recv_ns)
        ch = CHANNEL_OF.get(t)
        msg = frame.get("msg")
        if ch is None or not isinstance(msg, dict):
            return
        self.stats.frames_played += 1
        ticker = msg.get("market_ticker")
        if t == "ticker" and isinstance(ticker, str):
            self._last_ticker[ticker] = msg
        elif t == "market_lifecycle_v2" and isinstance(ticker, str):
            self._lifecycle_status(ticker, msg)
        for c in list(self._conns):
            if c.ending:
                continue
            for sub in list(c.subs.values()):
                if sub.channel != ch:
                    continue
                if sub.tickers is not None and ticker not in sub.tickers:
                    continue
                if t == "orderbook_snapshot":
                    out = snapshot_msg(ticker, self.book_of(ticker),  # type: ignore[arg-type]
                                       use_yes_price=sub.use_yes_price,
                                       market_id=self._market_ids.get(ticker))  # type: ignore[arg-type]
                elif (t == "orderbook_delta" and msg.get("side") == "no"
                      and sub.use_yes_price != self._use_yes_price):
                    out = flip_no_price(msg)
                else:
                    out = msg
                self._send_playback(c, sub, t, out)

    def _lifecycle_status(self, ticker: str, msg: dict[str, Any]) -> None:
        m = self.data.markets.get(ticker)
        if m is None or not m.get("_sim"):
            return
        et = msg.get("event_type")
        status = {"determined": "determined", "settled": "finalized",
                  "activated": "active"}.get(et)  # type: ignore[arg-type]
        if et == "deactivated":
            status = "inactive" if msg.get("is_deactivated", True) else "active"
        if status:
            m["status"] = status
        if et == "determined" and isinstance(msg.get("result"), str):
            m["result"] = msg["result"]

    def _send_playback(self, c: _Conn, sub: _Sub, t: str, msg: dict[str, Any]) -> None:
        seq = sub.next_seq()
        c.played += 1
        if self.faults.drops(c.played):
            self.stats.frames_dropped += 1
            if sub.channel == "orderbook_delta":
                c.pending_resync.add(sub.sid)
                c.resynced.clear()
            log.debug("conn %d: dropped playback frame %d (sid %d seq %s)", c.n, c.played,
                      sub.sid, seq)
        else:
            c.enqueue(_frame(t, sub.sid, seq, msg))
        if self.faults.disconnects(c.played):
            self.stats.disconnects_injected += 1
            log.debug("conn %d: injected disconnect after %d playback frames", c.n, c.played)
            c.q.put_nowait(_ABORT)
            c.ending = True
            self._update_subscribed()  # pause playback until someone is subscribed again

    # -- connections -----------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        self._conn_no += 1
        c = _Conn(ws, self._conn_no)
        self._conns.add(c)
        self.stats.connections += 1
        writer = asyncio.create_task(self._writer(c), name=f"sim-writer-{c.n}")
        pinger = asyncio.create_task(self._pinger(c), name=f"sim-pinger-{c.n}")
        try:
            async for text in ws:
                self._on_command(c, text)
        except ConnectionClosed:
            pass
        finally:
            c.ending = True
            c.gone.set()
            self._conns.discard(c)
            self._update_subscribed()
            for task in (pinger, c.closer):
                if task is not None:
                    task.cancel()
            if not writer.done():
                writer.cancel()
            while not c.q.empty():  # let joiners finish
                c.q.get_nowait()
                c.q.task_done()
            self._check_finished()

    async def _writer(self, c: _Conn) -> None:
        ws = c.ws
        delay = self.faults.delay_s
        try:
            while True:
                item = await c.q.get()
                try:
                    if delay:
                        await asyncio.sleep(delay)
                    if item is _ABORT:
                        ws.transport.abort()
                        return
                    if item is _CLOSE:
                        self._normal_closes += 1
                        await ws.close(1000, "replay finished")
                        return
                    await ws.send(item)
                    self.stats.frames_sent += 1
                finally:
                    c.q.task_done()
        except ConnectionClosed:
            pass

    async def _pinger(self, c: _Conn) -> None:
        if not self.ping_interval or self.ping_interval <= 0:
            return
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                await c.ws.ping(b"heartbeat")
        except ConnectionClosed:
            pass

    def _update_subscribed(self) -> None:
        if any(c.subs for c in self._conns if not c.ending):
            self._subscribed.set()
        else:
            self._subscribed.clear()

    def _arm_closer(self, c: _Conn) -> None:
        if c.closer is None and not c.ending and self._ready_to_close(c):
            c.closer = asyncio.create_task(self._close_when_drained(c), name=f"sim-close-{c.n}")

    def _ready_to_close(self, c: _Conn) -> bool:
        if not c.subs:
            return False
        if self.has_book_frames:
            return any(s.channel == "orderbook_delta" for s in c.subs.values())
        return True

    async def _close_when_drained(self, c: _Conn) -> None:
        deadline = time.monotonic() + self.done_grace_s
        while True:
            await self._drained(c)
            if c.gone.is_set() or not c.pending_resync:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("conn %d: closing with unresynced gap(s) on sid(s) %s", c.n,
                            sorted(c.pending_resync))
                break
            try:
                await asyncio.wait_for(c.resynced.wait(), left)
            except TimeoutError:
                pass
        if not c.ending:
            c.q.put_nowait(_CLOSE)
            c.ending = True

    def _check_finished(self) -> None:
        if (self.exit_when_done and self.done.is_set() and self._normal_closes > 0
                and not self._conns):
            self.finished.set()

    # -- commands (docs/kalshi-api.md §7.2, §7.3) -----------------------------------------------

    def _error(self, c: _Conn, cid: int, code: int, ticker: str | None = None,
               text: str | None = None) -> None:
        msg: dict[str, Any] = {"code": code, "msg": text or ERROR_TEXT.get(code, "error")}
        if ticker is not None:
            msg["market_ticker"] = ticker
        self.stats.errors_sent += 1
        c.enqueue({"id": cid, "type": "error", "msg": msg})

    def _on_command(self, c: _Conn, text: str | bytes) -> None:
        self.stats.commands += 1
        try:
            cmd = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(c, 0, E_UNPROCESSABLE)
            return
        if not isinstance(cmd, dict):
            self._error(c, 0, E_UNPROCESSABLE)
            return
        cid = cmd.get("id", 0)
        if type(cid) is not int:
            self._error(c, 0, E_UNPROCESSABLE, text="id must be an integer")
            return
        name = cmd.get("cmd")
        params = cmd.get("params")
        if name == "list_subscriptions":
            c.enqueue({"id": cid, "type": "ok",
                       "msg": [{"channel": s.channel, "sid": s.sid} for s in c.subs.values()]})
            return
        handler = {"subscribe": self._subscribe, "unsubscribe": self._unsubscribe,
                   "update_subscription": self._update}.get(name)  # type: ignore[arg-type]
        if handler is None:
            self._error(c, cid, E_UNKNOWN_CMD)
            return
        if not isinstance(params, dict):
            self._error(c, cid, E_PARAMS)
            return
        handler(c, cid, params)
        self._update_subscribed()
        if self.exit_when_done and self.done.is_set():
            self._arm_closer(c)

    def _tickers(self, c: _Conn, cid: int, params: dict[str, Any]) -> list[str] | None:
        """Market tickers of a command (``market_ticker`` xor ``market_tickers``); ``None``
        after sending an error. Unknown markets → error 16."""
        one = params.get("market_ticker")
        many = params.get("market_tickers")
        if one is not None and many is not None:
            self._error(c, cid, E_INVALID_PARAM, text="market_ticker and market_tickers are exclusive")
            return None
        if one is not None:
            many = [one]
        if many is None:
            return []
        if not isinstance(many, list) or not all(isinstance(t, str) and t for t in many):
            self._error(c, cid, E_INVALID_PARAM, text="market_tickers must be a list of strings")
            return None
        for t in many:
            if t not in self.known:
                self._error(c, cid, E_MARKET_NOT_FOUND, ticker=t)
                return None
        return list(dict.fromkeys(many))

    def _subscribe(self, c: _Conn, cid: int, params: dict[str, Any]) -> None:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            self._error(c, cid, E_CHANNELS)
            return
        for ch in channels:
            if ch not in KNOWN_CHANNELS:
                self._error(c, cid, E_UNKNOWN_CHANNEL, text=f"Unknown channel name: {ch}")
                return
        tickers = self._tickers(c, cid, params)
        if tickers is None:
            return
        if "orderbook_delta" in channels and not tickers:
            self._error(c, cid, E_TICKER_REQUIRED)
            return
        use_yes = params.get("use_yes_price", False)
        if type(use_yes) is not bool:
            self._error(c, cid, E_INVALID_PARAM, text="use_yes_price must be a boolean")
            return
        new: list[_Sub] = []
        for ch in dict.fromkeys(channels):
            sub = _Sub(c.next_sid, ch, None if ch in UNFILTERED or not tickers else set(tickers),
                       use_yes)
            c.next_sid += 1
            c.subs[sub.sid] = sub
            new.append(sub)
            c.enqueue({"id": cid, "type": "subscribed", "msg": {"channel": ch, "sid": sub.sid}})
        for sub in new:
            if sub.channel == "orderbook_delta":
                for t in tickers:
                    self._send_snapshot(c, sub, t, None)
            elif sub.channel == "ticker" and params.get("send_initial_snapshot") is True:
                for t in tickers or sorted(self._last_ticker):
                    if t in self._last_ticker:
                        c.enqueue(_frame("ticker", sub.sid, None, self._last_ticker[t]))
        if not self._started.is_set() and (
                "orderbook_delta" in channels or not self.has_book_frames):
            self._started.set()

    def _send_snapshot(self, c: _Conn, sub: _Sub, ticker: str, cid: int | None) -> None:
        frame = _frame("orderbook_snapshot", sub.sid, sub.next_seq(),
                       snapshot_msg(ticker, self.book_of(ticker), use_yes_price=sub.use_yes_price,
                                    market_id=self._market_ids.get(ticker)))
        if cid is not None:
            frame["id"] = cid
        c.enqueue(frame)

    def _unsubscribe(self, c: _Conn, cid: int, params: dict[str, Any]) -> None:
        sids = params.get("sids")
        if not isinstance(sids, list) or not sids:
            self._error(c, cid, E_SIDS)
            return
        for sid in sids:
            if sid not in c.subs:
                self._error(c, cid, E_UNKNOWN_SID, text=f"Unknown subscription ID: {sid}")
                return
        for sid in sids:
            sub = c.subs.pop(sid)
            c.pending_resync.discard(sid)
            frame: dict[str, Any] = {"id": cid, "sid": sid, "type": "unsubscribed"}
            seq = sub.next_seq()
            if seq is not None:
                frame["seq"] = seq
            c.enqueue(frame)
        if not c.pending_resync:
            c.resynced.set()

    def _update(self, c: _Conn, cid: int, params: dict[str, Any]) -> None:
        sid = params.get("sid")
        sids = params.get("sids")
        if sid is None and isinstance(sids, list) and len(sids) == 1:
            sid = sids[0]
        elif sid is None or sids is not None:  # none, several, or both forms
            self._error(c, cid, E_ONE_SID)
            return
        sub = c.subs.get(sid)  # type: ignore[arg-type]
        if sub is None:
            self._error(c, cid, E_UNKNOWN_SID, text=f"Unknown subscription ID: {sid}")
            return
        action = params.get("action")
        if not action:
            self._error(c, cid, E_ACTION_REQUIRED)
            return
        if action not in ("add_markets", "delete_markets", "get_snapshot") or (
                action == "get_snapshot" and sub.channel != "orderbook_delta") or (
                sub.channel in UNFILTERED):
            self._error(c, cid, E_UNSUPPORTED_ACTION)
            return
        tickers = self._tickers(c, cid, params)
        if tickers is None:
            return
        if not tickers:
            self._error(c, cid, E_TICKER_REQUIRED)
            return
        if action == "get_snapshot":
            for t in tickers:
                if sub.tickers is not None and t not in sub.tickers:
                    self._error(c, cid, E_INVALID_PARAM, ticker=t,
                                text="market is not part of this subscription")
                    continue
                self._send_snapshot(c, sub, t, cid)
            if sid in c.pending_resync:
                c.pending_resync.discard(sid)
                if not c.pending_resync:
                    c.resynced.set()
            return
        added: list[str] = []
        if action == "add_markets":
            if sub.tickers is not None:
                added = [t for t in tickers if t not in sub.tickers]
                sub.tickers.update(added)
        else:
            if sub.tickers is None:
                self._error(c, cid, E_UNSUPPORTED_ACTION)
                return
            sub.tickers.difference_update(tickers)
        ack: dict[str, Any] = {"id": cid, "sid": sid, "type": "ok",
                               "msg": {"market_tickers": sorted(sub.tickers or ())}}
        seq = sub.next_seq()
        if seq is not None:
            ack["seq"] = seq
        c.enqueue(ack)
        if sub.channel == "orderbook_delta":
            for t in added:
                self._send_snapshot(c, sub, t, None)

    # -- HTTP: WebSocket handshake auth and REST -------------------------------------------

    def _auth_failure(self, method: str, path: str, headers: Headers) -> str | None:
        """Why the request's signature is not acceptable, or ``None`` when it is."""
        key = headers.get("KALSHI-ACCESS-KEY")
        ts = headers.get("KALSHI-ACCESS-TIMESTAMP")
        sig = headers.get("KALSHI-ACCESS-SIGNATURE")
        if not key or not ts or not sig:
            return "missing KALSHI-ACCESS-KEY/-TIMESTAMP/-SIGNATURE headers"
        try:
            ts_ms = int(ts)
        except ValueError:
            return "KALSHI-ACCESS-TIMESTAMP is not an integer (ms)"
        if abs(time.time() * 1000 - ts_ms) > self.max_skew_s * 1000:
            return "KALSHI-ACCESS-TIMESTAMP too far from server time"
        assert self._verify is not None
        try:
            ok = self._verify(self._public_key, sig, ts_ms, method, path)
        except Exception:  # malformed base64 etc.
            ok = False
        return None if ok else "signature does not verify"

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        method = getattr(request, "method", "GET")
        if path == WS_PATH:
            if self._verify is not None:
                why = self._auth_failure("GET", path, request.headers)
                if why is not None:
                    self.stats.handshakes_rejected += 1
                    log.info("rejected WebSocket handshake: %s", why)
                    return _json_response(conn, 401, {"error": {
                        "code": "authentication_error", "message": why, "details": ""}})
            return None
        self.stats.rest_requests += 1
        self.rest_times.append(time.monotonic())
        if self.stats.rest_429 < self.faults.rest_429:
            self.stats.rest_429 += 1
            return _json_response(conn, 429, {"error": "too many requests"})
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if self._verify is not None and "KALSHI-ACCESS-SIGNATURE" in request.headers:
            why = self._auth_failure(method, path, request.headers)
            if why is not None:
                return _json_response(conn, 401, {"error": {
                    "code": "authentication_error", "message": why, "details": ""}})
        status, body = self.rest.handle(method, request.path)
        return _json_response(conn, status, body)


def _frame(t: str, sid: int, seq: int | None, msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": t, "sid": sid}
    if seq is not None:
        out["seq"] = seq
    out["msg"] = msg
    return out


def _json_response(conn: ServerConnection, status: int, body: Any) -> Response:
    """A JSON HTTP response (``Connection: close``) in place of a WebSocket handshake."""
    resp = conn.respond(status, "")
    data = orjson.dumps(body)
    headers = Headers([(k, v) for k, v in resp.headers.raw_items()
                       if k.lower() not in ("content-type", "content-length")])
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = str(len(data))
    return Response(resp.status_code, resp.reason_phrase, headers, data)
