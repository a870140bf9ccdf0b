"""The local Kalshi-compatible server: assembly, lifecycle and port.

One aiohttp application on one port serves both protocols (aiohttp is a real HTTP/1.1 server
with request bodies and keep-alive, and a WebSocket server, on the same event loop):

* ``ws://HOST:PORT/trade-api/ws/v2`` — the WebSocket API (:mod:`.feed`, :mod:`.ws_commands`;
  docs/kalshi-api.md §7); the handshake's ``KALSHI-ACCESS-*`` headers are verified when a key is
  configured (HTTP 401 otherwise, §2.4).
* ``http://HOST:PORT/trade-api/v2/...`` — REST (:mod:`.rest_market`, :mod:`.rest_lists`;
  §3). Public market data works unsigned; a request that carries a signature must verify.

Everything runs on one event loop, so ``GET .../orderbook`` sees exactly the book the WebSocket
stream has reached (no locks, no thread). Playback: :mod:`.playback`; faults: :mod:`.faults`;
rate limit: :mod:`.limits`; auth: :mod:`.auth`.

With ``exit_when_done`` the sim closes every connection with code 1000 ("replay finished")
once playback has ended and that connection has been sent everything (and has resynced any
gap the sim injected), then :attr:`SimServer.finished` is set.

Extension points (trading API, FIX):

* :meth:`SimServer.add_routes` — aiohttp route definitions under ``/trade-api/v2`` (e.g.
  ``web.post(REST_PREFIX + "/portfolio/orders", handler)``), optionally requiring a verified
  key; handlers read the caller's API key as ``request[KALSHI_KEY]``. Call before
  :meth:`start`. :attr:`SimServer.app` is the aiohttp ``Application`` for anything else
  (``cleanup_ctx`` for a FIX TCP server beside it, sub-apps).
* :attr:`SimServer.feed` — :meth:`~.feed.MarketFeed.publish` (public frames),
  :meth:`~.feed.MarketFeed.publish_private` (``fill``/``user_orders``/``market_positions`` to
  one key's connections), ``snapshot_hooks`` (initial state on subscribe).
* :attr:`SimServer.auth` — :meth:`~.auth.Authenticator.add_key` (one user per API key).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import orjson
from aiohttp import web

from kalshi_platform.sim import ws_commands
from kalshi_platform.sim.auth import HEADER_SIG, Authenticator
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.feed import Conn, MarketFeed
from kalshi_platform.sim.limits import RateLimiter
from kalshi_platform.sim.market_data import RestData
from kalshi_platform.sim.playback import Playback, PlaybackError
from kalshi_platform.sim.protocol import WS_PATH
from kalshi_platform.sim.rest_market import REST_PREFIX, RestApi, RestError
from kalshi_platform.ticker_plant.order_book import OrderBook
from kalshi_platform.ticker_plant.plant import TickerPlant

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: ``request[KALSHI_KEY]``: the caller's API key id (verified when keys are configured) or None
KALSHI_KEY = web.RequestKey("kalshi_key", object)


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
    rest_429: int = 0  # injected 429s (faults.rest_429)
    rest_rate_limited: int = 0  # 429s from the rate limit


def json_response(status: int, body: Any) -> web.Response:
    """A JSON response (``Content-Type: application/json``, orjson-encoded)."""
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


class SimServer:
    """The local Kalshi-compatible server.

    Args:
        recording: a recording in any format :mod:`kalshi_platform.ingestion.recording` reads;
            ``None`` serves REST fixtures only.
        host, port: where to listen (``port=0`` = any free port; see :attr:`port`).
        speed: 0 = as fast as possible; 1 = the recording's pace (receipt times).
        faults: :class:`~kalshi_platform.sim.faults.Faults`.
        public_key: verify ``KALSHI-ACCESS-*`` headers of WebSocket handshakes (and of REST
            requests that carry them) against this key; ``None`` = no auth.
        max_skew_s: reject signatures whose timestamp is further than this from now (s).
        rest_fixtures: directory of REST JSON fixtures (:meth:`RestData.load_fixtures`).
        cutoff: RFC3339 historical cutoff (overrides a fixture's ``/historical/cutoff``).
        use_yes_price: the recording's ``use_yes_price`` convention (default: its
            ``.meta.json`` sidecar, else ``False``).
        ping_interval: seconds between ``heartbeat`` pings (Kalshi: 10).
        start: ``"subscribe"`` (play from the first subscription, pause while nobody is
            subscribed) or ``"now"`` (play at once, whoever listens).
        exit_when_done: close connections with 1000 after playback and set :attr:`finished`.
        done_grace_s: how long a connection may keep an injected gap unresynced after
            playback before it is closed anyway.
        rate_limit_read, rate_limit_write: REST requests/s per client (0 = unlimited;
            :mod:`.limits`; Kalshi Basic is 20 reads/s and 10 writes/s at default cost).

    Raises ``ValueError`` for bad arguments and :class:`SimError` from :meth:`start` for
    unreadable inputs or a busy port.
    """

    def __init__(self, recording: str | Path | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, speed: float = 0.0, faults: Faults | None = None,
                 public_key: Any = None, max_skew_s: float = 300.0,
                 rest_fixtures: str | Path | None = None, cutoff: str | None = None,
                 use_yes_price: bool | None = None, ping_interval: float = 10.0,
                 start: str = "subscribe", exit_when_done: bool = False,
                 done_grace_s: float = 5.0, rate_limit_read: float = 0.0,
                 rate_limit_write: float = 0.0) -> None:
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
        self.start_mode = start
        self.exit_when_done = exit_when_done
        self.done_grace_s = done_grace_s
        self._public_key_src = public_key
        self._rest_fixtures = Path(rest_fixtures) if rest_fixtures is not None else None
        self._cutoff = cutoff
        self.limiter = RateLimiter(rate_limit_read, rate_limit_write)
        self.auth = Authenticator(max_skew_s=max_skew_s)
        self.stats = SimStats()
        self.data = RestData()
        self.known: set[str] = set()
        self.feed = MarketFeed(self.book_of, self.known, self.faults, self.stats,
                               ping_interval=ping_interval, market_id_of=self._market_id)
        self.feed.on_command_done = self._after_command
        self.feed.commands.update({
            "subscribe": lambda c, cid, p: self._subscribe(c, cid, p),
            "unsubscribe": lambda c, cid, p: self._unsubscribe(c, cid, p),
            "update_subscription": lambda c, cid, p: self._update(c, cid, p)})
        self.feed.on_conn_gone = lambda c: self._check_finished()
        self.playback: Playback | None = None
        if self.recording is not None:
            self.playback = Playback(self.recording, self.feed, self.data, self.stats,
                                     use_yes_price=use_yes_price, speed=speed, start=start)
        self.rest = RestApi(self.data, self.book_of, page_cap=self.faults.page_cap,
                            bbo_history=self._bbo_history,
                            last_ticker=self.feed.last_ticker.get)
        self._idle_plant = TickerPlant()
        #: ``ticker -> OrderBook | None`` replacing the playback's books in snapshots and
        #: REST (the trading API sets it to the engine's published books; sim/trading.py)
        self.book_source: Callable[[str], OrderBook | None] | None = None
        #: awaited after playback, before :attr:`done` is set (everything published)
        self.before_done: list[Callable[[], Awaitable[None]]] = []
        self._auth_routes: set[str] = set()
        #: the aiohttp application (routes, ``cleanup_ctx``, sub-apps); extend before start
        self.app = web.Application(middlewares=[self._middleware])
        self.app.router.add_get(WS_PATH, self._ws)
        for pattern, _ in self.rest.routes():
            self.app.router.add_get(REST_PREFIX + pattern, self._rest)
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task | None = None
        #: set when playback has applied the whole recording
        self.done = asyncio.Event()
        #: with ``exit_when_done``: set once playback is done and every connection was closed
        self.finished = asyncio.Event()

    # -- properties ------------------------------------------------------------------------

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
    def plant(self) -> TickerPlant:
        """The plant holding the sim's books (the playback's)."""
        return self.playback.plant if self.playback is not None else self._idle_plant

    @property
    def books(self) -> dict[str, OrderBook]:
        """The sim's current books (ticker → OrderBook), as far as playback has got."""
        return self.plant.books

    @property
    def has_book_frames(self) -> bool:
        """Whether the recording has order-book frames."""
        return self.feed.book_frames

    def book_of(self, ticker: str) -> OrderBook | None:
        """The sim's current book of ``ticker`` or ``None`` (from :attr:`book_source` when
        set)."""
        if self.book_source is not None:
            return self.book_source(ticker)
        return self.plant.books.get(ticker)

    def _market_id(self, ticker: str) -> str | None:
        return self.playback.market_ids.get(ticker) if self.playback is not None else None

    def _bbo_history(self, ticker: str) -> list:
        return self.playback.bbo_history(ticker) if self.playback is not None else []

    # -- extension points ------------------------------------------------------------------

    def add_routes(self, routes: Iterable[web.AbstractRouteDef], *,
                   auth_required: bool = True) -> None:
        """Register aiohttp routes (paths under :data:`REST_PREFIX`), e.g. the trading API.

        With ``auth_required`` a request must carry a verified signature when a key is
        configured (401 otherwise) and, without keys, a ``KALSHI-ACCESS-KEY`` header naming
        the user. Handlers find the key id in ``request[KALSHI_KEY]``. Call before
        :meth:`start`.
        """
        routes = list(routes)
        if auth_required:
            self._auth_routes.update(r.path for r in routes if isinstance(r, web.RouteDef))
        self.app.add_routes(routes)

    # -- WebSocket commands: the feed calls these, so a subclass may override one ----------

    @property
    def _conns(self) -> set[Conn]:
        return self.feed.conns

    def _error(self, c: Conn, cid: int, code: int, ticker: str | None = None,
               text: str | None = None) -> None:
        self.feed.error(c, cid, code, ticker=ticker, text=text)

    def _subscribe(self, c: Conn, cid: int, params: dict[str, Any]) -> None:
        ws_commands.subscribe(self.feed, c, cid, params)

    def _unsubscribe(self, c: Conn, cid: int, params: dict[str, Any]) -> None:
        ws_commands.unsubscribe(self.feed, c, cid, params)

    def _update(self, c: Conn, cid: int, params: dict[str, Any]) -> None:
        ws_commands.update(self.feed, c, cid, params)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the recording index and fixtures, listen, start the playback task."""
        self.load()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            raise SimError(f"cannot listen on {self.host}:{self._port}: {e.strerror or e}") from None
        self._port = self._runner.addresses[0][1]
        self._task = asyncio.create_task(self._play(), name="sim-playback")
        if self.start_mode == "now":
            self.feed.started.set()
        log.info("sim listening on %s (REST %s)", self.ws_url, self.rest_url)

    async def stop(self) -> None:
        """Stop playback, close every connection, stop listening."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.feed.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "SimServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def serve_until_finished(self) -> None:
        """Run until :attr:`finished` (only ever set with ``exit_when_done``)."""
        await self.finished.wait()

    def load(self) -> None:
        """Read the key, the fixtures and the recording's index (:meth:`start` does this
        first; alone it lets :attr:`rest` answer without listening). Raises
        :class:`SimError`."""
        if self._public_key_src is not None:
            try:
                self.auth = Authenticator(self._public_key_src, self.max_skew_s)
            except (ValueError, OSError) as e:
                raise SimError(f"public key: {e}") from None
        if self._rest_fixtures is not None:
            try:
                counts = self.data.load_fixtures(self._rest_fixtures)
            except OSError as e:
                raise SimError(f"REST fixtures: {e}") from None
            log.info("REST fixtures from %s: %s", self._rest_fixtures, counts)
        self.known.update(self.data.markets)
        if self.playback is not None:
            try:
                self.playback.index()
            except PlaybackError as e:
                raise SimError(str(e)) from None
        if self._cutoff is not None:
            try:
                self.data.set_cutoff(self._cutoff)
            except ValueError as e:
                raise SimError(f"cutoff: {e}") from None

    async def _play(self) -> None:
        if self.playback is not None:
            try:
                await self.playback.run()
                for hook in self.before_done:  # e.g. the engine's WAL flush (sim/trading.py)
                    await hook()
            finally:
                self.done.set()
        else:
            self.done.set()
        if self.exit_when_done:
            for c in list(self.feed.conns):
                self._arm_closer(c)
            self._check_finished()

    # -- exit when done --------------------------------------------------------------------

    def _after_command(self, c: Conn) -> None:
        if self.exit_when_done and self.done.is_set():
            self._arm_closer(c)

    def _arm_closer(self, c: Conn) -> None:
        if not c.subs:
            return
        if self.feed.book_frames and not any(s.channel == "orderbook_delta"
                                             for s in c.subs.values()):
            return
        self.feed.close_when_done(c, self.done_grace_s)

    def _check_finished(self) -> None:
        if (self.exit_when_done and self.done.is_set() and self.feed.normal_closes > 0
                and not self.feed.conns):
            self.finished.set()

    # -- HTTP ------------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        key, why = self.auth.check("GET", WS_PATH, request.headers)
        if why is not None:
            self.stats.handshakes_rejected += 1
            log.info("rejected WebSocket handshake: %s", why)
            return json_response(401, {"error": {
                "code": "authentication_error", "message": why, "details": ""}})
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return json_response(426, {"error": {"code": "upgrade_required", "message":
                                                 "this path is a WebSocket endpoint",
                                                 "details": ""}})
        await ws.prepare(request)
        await self.feed.serve(ws, request.transport, key)
        return ws

    async def _rest(self, request: web.Request) -> web.Response:
        """Market-data REST: answered by :meth:`RestApi.handle` (looked up per request)."""
        status, body = self.rest.handle(request.method, request.raw_path)
        return json_response(status, body)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == WS_PATH:
            return await handler(request)
        self.stats.rest_requests += 1
        self.rest_times.append(time.monotonic())
        if self.stats.rest_429 < self.faults.rest_429:
            self.stats.rest_429 += 1
            return json_response(429, {"error": "too many requests"})
        signed = HEADER_SIG in request.headers
        key, why = self.auth.check(request.method, request.raw_path, request.headers) \
            if signed or not self.auth.enabled else (None, None)  # signed: the path as sent
        if self.limiter.active and not self.limiter.allow(
                key or request.remote or "?", request.method not in ("GET", "HEAD")):
            self.stats.rest_rate_limited += 1
            return json_response(429, {"error": "too many requests"})
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if why is None and not signed and self.auth.enabled and self._needs_auth(request):
            why = "this endpoint needs signed KALSHI-ACCESS-* headers"
        if why is None and key is None and self._needs_auth(request):
            why = "this endpoint needs a KALSHI-ACCESS-KEY header (the user)"
        if why is not None:
            return json_response(401, {"error": {
                "code": "authentication_error", "message": why, "details": ""}})
        request[KALSHI_KEY] = key
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status in (404, 405):
                code = "not_found" if e.status == 404 else "method_not_allowed"
                return json_response(e.status, RestError(e.status, code, (
                    f"no such endpoint {request.path}" if e.status == 404 else
                    f"{request.method} is not supported here")).body())
            raise

    def _needs_auth(self, request: web.Request) -> bool:
        info = request.match_info.route.resource
        return info is not None and info.canonical in self._auth_routes
