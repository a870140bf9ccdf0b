"""The network venues ``sim`` and ``kalshi``: one implementation over Kalshi's REST and WS API
(issue 14 §5; docs/trading.md "Venues"; docs/trading-api.md §4.1, docs/kalshi-api.md §7).

Only the base URLs and the key differ between the local exchange simulator
(``kalshi-platform sim --exchange``, docs/exchange.md "Trading API on the sim") and Kalshi
(demo by default, prod only when asked for explicitly: :func:`kalshi_endpoints`).

* **Orders**: signed V2 writes (``POST /portfolio/events/orders``, ``…/{id}/amend``,
  ``DELETE …/{id}``), each sent as its own asyncio task, so a burst (the kill switch's
  cancel-all) takes one round trip. The answer becomes an :class:`~.model.OrderReport`; a
  timeout, a transport error or a 5xx is ``kind="unknown"`` (the node blocks the order until
  reconciliation); a 409 ``order_already_exists`` carries the first order's id (an
  idempotent retry); a 429 is retried with backoff, then rejected.
* **Market data**: the public channels through the platform's own ingester and plant
  (:class:`~kalshi_platform.ingestion.ws_client.KalshiWSClient` + :class:`TickerPlant`):
  the strategy sees the plant's normalized events with a contiguous seq, as in a backtest.
* **Private channels** ``fill`` and ``user_orders`` on a second signed connection:
  :meth:`VenueListener.on_fill` / ``on_order_report``. After every (re)subscribe the venue
  calls :meth:`VenueListener.on_reconnect`: the node reconciles from :meth:`state`, so a
  fill missed while disconnected is counted from ``/portfolio/fills`` (once: ``trade_id``).
* :meth:`state` reads ``/portfolio/orders`` (resting, and every order since the venue
  started), ``/portfolio/fills``, ``/portfolio/positions`` and ``/portfolio/balance``
  (a blocking read on the venue's thread: reconciliation is rare).

Threading: :meth:`run` runs one asyncio loop on the calling thread; every listener callback
and timer runs on it. :meth:`stop` is safe from any thread (and a signal handler); before
the loop closes, ``before_close`` (the CLI: cancel all and ``on_stop``) runs and the
commands in flight are awaited.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from kalshi_platform.trading.model import Fill, Order, OrderReport, VenueState, is_bid
from kalshi_platform.trading.venue import Venue, VenueListener
from kalshi_platform.trading.venue_wire import (fill_of, report_of_order, report_of_v2,
                                                state_of)

log = logging.getLogger(__name__)

V2 = "/portfolio/events/orders"


def kalshi_endpoints(env: str) -> tuple[str, str]:
    """``(rest_url, ws_url)`` of Kalshi's ``demo`` or ``prod`` (docs/kalshi-api.md §1).
    Raises ValueError for another name."""
    from kalshi_platform.api.rest import BASE_URLS
    from kalshi_platform.ingestion.ws_client import WS_URLS

    if env not in BASE_URLS:
        raise ValueError(f"env must be demo or prod, got {env!r}")
    return BASE_URLS[env], WS_URLS[env]


@dataclass
class RestVenueConfig:
    """``rest_url`` (…/trade-api/v2), ``ws_url`` (…/trade-api/ws/v2), ``signer``
    (:class:`kalshi_platform.api.auth.Signer`), ``tickers`` to trade and watch,
    ``timeout_s`` per write (then ``unknown``), ``name`` (sim | kalshi),
    ``close_grace_s``: how long to wait for the last order reports before closing."""

    rest_url: str
    ws_url: str
    signer: Any
    tickers: tuple[str, ...]
    timeout_s: float = 5.0
    name: str = "sim"
    close_grace_s: float = 0.5
    max_429_retries: int = 3


class _Forward:
    """A plant publisher handing each event to the listener with the next stream seq."""

    def __init__(self, venue: "RestVenue") -> None:
        self.venue = venue

    def publish(self, event: Any) -> None:
        v = self.venue
        v.seq += 1
        v.events += 1
        if v.listener is not None:
            v.listener.on_market(v.seq, event)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class RestVenue(Venue):
    """``sim`` or ``kalshi`` over REST + WS (see the module docstring)."""

    def __init__(self, cfg: RestVenueConfig,
                 before_close: Optional[Callable[[], None]] = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.before_close = before_close
        self.listener: Optional[VenueListener] = None
        self.seq = 0
        self.events = 0
        self.reconnects = 0
        self.private_connected = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._stop_requested = False
        self._early: list[Callable[[], None]] = []
        self._ours: dict[str, tuple] = {}  # client_order_id -> (side, action) as we sent it
        self._cid_of: dict[str, str] = {}  # venue order id -> client_order_id
        self._tasks: set[asyncio.Task] = set()
        self._http = None
        self._sync = None
        self._t0_s = int(time.time())
        self.plant = None

    # -- Venue API -------------------------------------------------------------------------

    def start(self, listener: VenueListener) -> None:
        import httpx

        self.listener = listener
        self._sync = httpx.Client(base_url=self.cfg.rest_url, timeout=self.cfg.timeout_s)

    def now_ns(self) -> int:
        return time.time_ns()

    def call_at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        def arm() -> None:
            self._loop.call_later(max(ts_ns - time.time_ns(), 0) / 1e9, self._guard, fn)

        self._on_loop(arm)

    def submit(self, order: Order) -> None:
        self._ours[order.client_order_id] = (order.side, order.action)
        self._on_loop(lambda: self._spawn(self._create(order)))

    def cancel(self, order: Order) -> None:
        self._on_loop(lambda: self._spawn(self._cancel(order)))

    def amend(self, order: Order, price: int, count: int) -> None:
        self._on_loop(lambda: self._spawn(self._amend(order, price, count)))

    @property
    def running(self) -> bool:
        """True while :meth:`run`'s loop is up."""
        return self._loop is not None and not self._loop.is_closed()

    @property
    def in_flight(self) -> int:
        """Commands sent and not answered yet."""
        return len(self._tasks)

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on the venue's loop (any thread): where the node may be touched."""
        self._on_loop(fn)

    def stop(self) -> None:
        """Ask :meth:`run` to finish (any thread; a signal handler too)."""
        self._stop_requested = True
        loop = self._loop
        if loop is not None and self._stop is not None:
            try:
                loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # loop already closed
                pass

    def run(self) -> None:
        asyncio.run(self._main())

    def state(self) -> VenueState:
        orders = {o["order_id"]: o for o in self._get_all("/portfolio/orders", "orders",
                                                           {"status": "resting"})}
        for o in self._get_all("/portfolio/orders", "orders", {"min_ts": self._t0_s - 1}):
            orders.setdefault(o["order_id"], o)
        fills = self._get_all("/portfolio/fills", "fills", {})
        positions = self._get_all("/portfolio/positions", "market_positions", {})
        balance = self._get("/portfolio/balance", {})
        return state_of(list(orders.values()), fills, positions, balance)

    # -- loop ------------------------------------------------------------------------------

    def _on_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            self._early.append(fn)  # before run(): on_start's orders and timers
        elif loop.is_closed():
            log.warning("%s venue closed: command dropped", self.name)
        elif _running_loop() is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def _guard(self, fn: Callable[[], None]) -> None:
        if not self._stop.is_set():
            fn()

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _main(self) -> None:
        import httpx

        from kalshi_platform.ingestion.ws_client import Backoff, KalshiWSClient
        from kalshi_platform.ticker_plant.plant import TickerPlant

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.cfg.timeout_s))
        ws_stop = asyncio.Event()
        priv = asyncio.ensure_future(self._private(ws_stop))
        self.plant = TickerPlant([_Forward(self)])
        path = urlsplit(self.cfg.ws_url).path
        client = KalshiWSClient(self.cfg.ws_url, self.plant, list(self.cfg.tickers),
                                headers=lambda: self.cfg.signer.headers("GET", path),
                                backoff=Backoff(base_s=0.05, cap_s=2.0))
        pub = asyncio.ensure_future(client.run(ws_stop))
        try:
            early, self._early = self._early, []
            for fn in early:
                fn()
            await self._stop.wait()
            if self.before_close is not None:
                self.before_close()
            await self._drain()
        finally:
            ws_stop.set()
            for t in (priv, pub):
                t.cancel()
            await asyncio.gather(priv, pub, return_exceptions=True)
            await self._http.aclose()
            if self._sync is not None:
                self._sync.close()

    async def _drain(self) -> None:
        """Await the commands in flight, then give the WS ``close_grace_s`` for their
        reports."""
        end = self._loop.time() + max(self.cfg.timeout_s, 1.0) + 1.0
        while self._tasks and self._loop.time() < end:
            await asyncio.wait(set(self._tasks), timeout=end - self._loop.time())
        await asyncio.sleep(self.cfg.close_grace_s)

    # -- private WS ------------------------------------------------------------------------

    async def _private(self, stop: asyncio.Event) -> None:
        import aiohttp
        import orjson

        path = urlsplit(self.cfg.ws_url).path
        delay = 0.05
        async with aiohttp.ClientSession() as s:
            while not stop.is_set():
                try:
                    async with s.ws_connect(self.cfg.ws_url,
                                            headers=self.cfg.signer.headers("GET", path),
                                            heartbeat=20) as ws:
                        await ws.send_json({"id": 1, "cmd": "subscribe", "params": {
                            "channels": ["fill", "user_orders"]}})
                        delay = 0.05
                        async for m in ws:
                            if m.type != aiohttp.WSMsgType.TEXT:
                                break
                            self._private_frame(orjson.loads(m.data))
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                    log.warning("%s private WS: %s", self.name, e or type(e).__name__)
                self.private_connected.clear()
                if stop.is_set():
                    return
                self.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _private_frame(self, frame: dict) -> None:
        t, msg = frame.get("type"), frame.get("msg") or {}
        lst = self.listener
        try:
            if t == "fill":
                lst.on_fill(self._as_ours(fill_of(msg)))
            elif t == "user_order":
                cid = msg.get("client_order_id") or self._cid_of.get(msg.get("order_id"))
                if cid and msg.get("order_id"):
                    self._cid_of[msg["order_id"]] = cid
                mine = self._ours.get(cid) if cid else None
                lst.on_order_report(report_of_order(msg, side=mine[0] if mine else None))
            elif t == "subscribed":
                if msg.get("channel") == "user_orders":
                    self.private_connected.set()
                    lst.on_reconnect()  # fills or state changes missed meanwhile
            elif t == "error":
                log.warning("%s private WS error: %s", self.name, msg.get("msg") or msg)
        except (KeyError, ValueError) as e:
            log.warning("%s: malformed %s message skipped (%s)", self.name, t, e)

    def _as_ours(self, f: Fill) -> Fill:
        """A fill of an order we placed, in the terms we placed it (the venue's V2 book side
        turns buy-NO into sell-YES: same YES-equivalent count and YES price)."""
        cid = self._cid_of.get(f.venue_order_id)
        mine = self._ours.get(cid) if cid else None
        if mine is None or (f.side, f.action) == mine or is_bid(*mine) != f.is_bid:
            return f
        return replace(f, side=mine[0], action=mine[1])

    # -- commands --------------------------------------------------------------------------

    async def _write(self, method: str, path: str, body: dict | None) -> tuple[int, dict]:
        """A signed write → ``(status, json)``; status 0 for a timeout or transport error."""
        import httpx
        import orjson

        url = self.cfg.rest_url + path
        sign_path = urlsplit(url).path
        content = orjson.dumps(body) if body is not None else None
        for attempt in range(self.cfg.max_429_retries + 1):
            headers = self.cfg.signer.headers(method, sign_path)
            if content is not None:
                headers["Content-Type"] = "application/json"
            try:
                r = await self._http.request(method, url, content=content, headers=headers)
            except httpx.HTTPError as e:
                return 0, {"error": {"message": str(e) or type(e).__name__}}
            if r.status_code == 429 and attempt < self.cfg.max_429_retries:
                await asyncio.sleep(0.05 * 2 ** attempt)
                continue
            try:
                data = orjson.loads(r.content) if r.content else {}
            except orjson.JSONDecodeError:
                data = {}
            return r.status_code, data if isinstance(data, dict) else {}
        return 429, {}

    def _report(self, r: OrderReport) -> None:
        if self.listener is not None:
            self.listener.on_order_report(r)

    def _failure(self, kind: str, o: Order, status: int, data: dict) -> OrderReport:
        err = data.get("error") or {}
        now = time.time_ns()
        if status == 0 or status >= 500:
            what = "no answer" if status == 0 else f"HTTP {status}"
            return OrderReport("unknown", o.client_order_id, o.venue_order_id,
                               reason=f"{what}: {err.get('message', '')}".rstrip(": "),
                               ts_ns=now)
        code = err.get("code") or f"http_{status}"
        details = err.get("details")
        # a duplicate client_order_id names the first order (the ack a retry missed)
        vid = (details if code == "order_already_exists" and isinstance(details, str)
               and details else o.venue_order_id)
        return OrderReport(kind, o.client_order_id, vid, reason=err.get("message", ""),
                           code=code, ts_ns=now)

    async def _create(self, o: Order) -> None:
        body = _order_body(o)
        status, data = await self._write("POST", V2, body)
        if status in (200, 201):
            if data.get("order_id"):
                self._cid_of[str(data["order_id"])] = o.client_order_id
            self._report(report_of_v2(data, "accepted", o.client_order_id, o.count))
        else:
            self._report(self._failure("rejected", o, status, data))

    async def _cancel(self, o: Order) -> None:
        status, data = await self._write("DELETE", f"{V2}/{o.venue_order_id}", None)
        if status in (200, 204):
            self._report(OrderReport("update", o.client_order_id, o.venue_order_id,
                                     venue_status="canceled", filled=o.filled,
                                     ts_ns=time.time_ns()))
        else:
            self._report(self._failure("cancel_rejected", o, status, data))

    async def _amend(self, o: Order, price: int, count: int) -> None:
        from kalshi_platform.api.trading import v2_side
        from kalshi_platform.fixedpoint import price_to_str, size_to_str

        book_side, yes_price = v2_side(o.side.value, o.action.value, price)
        body = {"ticker": o.ticker, "side": book_side, "price": price_to_str(yes_price),
                "count": size_to_str(count)}
        status, data = await self._write("POST", f"{V2}/{o.venue_order_id}/amend", body)
        if status in (200, 201):
            if data.get("order_id"):
                self._cid_of[str(data["order_id"])] = o.client_order_id
            self._report(report_of_v2(data, "update", o.client_order_id, count, price))
        else:
            self._report(self._failure("amend_rejected", o, status, data))

    # -- reads -----------------------------------------------------------------------------

    def _get(self, path: str, params: dict) -> dict:
        sign_path = urlsplit(self.cfg.rest_url + path).path
        r = self._sync.get(path, params=params,
                           headers=self.cfg.signer.headers("GET", sign_path))
        if r.status_code != 200:
            raise ConnectionError(f"GET {sign_path}: HTTP {r.status_code}")
        return r.json()

    def _get_all(self, path: str, key: str, params: dict) -> list[dict]:
        out: list[dict] = []
        q = dict(params, limit=200)
        while True:
            body = self._get(path, q)
            out += body.get(key) or []
            if not body.get("cursor"):
                return out
            q["cursor"] = body["cursor"]


def _order_body(o: Order) -> dict:
    """The V2 create body (``CreateOrderV2Request``: book side, YES-scale price string,
    fp count; docs/trading-api.md §4.1) of ``o``."""
    from kalshi_platform.api.trading import v2_side
    from kalshi_platform.fixedpoint import price_to_str, size_to_str

    book_side, yes_price = v2_side(o.side.value, o.action.value, o.price)
    body = {"ticker": o.ticker, "client_order_id": o.client_order_id, "side": book_side,
            "count": size_to_str(o.count), "price": price_to_str(yes_price),
            "time_in_force": o.tif.value, "self_trade_prevention_type": "taker_at_cross"}
    if o.post_only:
        body["post_only"] = True
    if o.reduce_only:
        body["reduce_only"] = True
    return body


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
