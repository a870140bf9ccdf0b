"""The Kalshi WebSocket v2 ingester: connect, subscribe, hand every frame on, resync, reconnect.

Wire protocol: docs/kalshi-api.md §2.4 (signed handshake), §7 (commands, acks, channels, seq);
operational lessons: docs/field-notes.md "Feed handling" and "Books and sequencing".

Data path, per frame (one asyncio task, no threads)::

    socket ─► raw text + recv time (time.time_ns()) ─► taps (recorder: exact text, before decode)
                                                    └► decode_json ─► plant.process_frame
                                                                     └► control frames here

* **Seq has one owner: the plant.** The plant (any :class:`~.feed_api.PlantAPI`; in production
  :class:`~kalshi_platform.ticker_plant.plant.TickerPlant`) tracks ``seq`` per ``sid``, detects
  gaps and calls the resync handler this client registers with ``set_resync_handler``. The
  client talks to the plant only through that public API and never imports
  :mod:`kalshi_platform.ticker_plant` (the plant imports ``ingestion.messages``; importing
  back would be a cycle). The client answers with ``update_subscription`` action
  ``get_snapshot`` for those tickers (plus any ticker of that sid without a live book); if the
  server answers with an ``error`` or no snapshot arrives within ``resync_timeout`` s it falls
  back to ``unsubscribe`` + ``subscribe`` (a new sid, fresh snapshots; §7.10).
* **Connection events** go into the normalized stream through the plant — ``connect``
  (``feed_event``), ``disconnect`` (``plant.reset``: every book and seq watermark dropped, since
  sids are reassigned per connection) — and to every tap (the recorder writes them as marker
  lines so a replay reproduces them), as does ``resync``.
* **Reconnect** with capped exponential backoff and jitter (:class:`~kalshi_platform.retry.Backoff`,
  the platform's one policy), forever once a
  connection has succeeded. Before the first success, ``connect_attempts`` bounds the tries
  so that a wrong host fails fast with :class:`FeedConnectError` instead of hanging; a 401/403
  on the handshake is always fatal (:class:`FeedAuthError`: keys do not heal by retrying).
  A subscription error before the first complete subscription (e.g. error 16 "Market not
  found") is fatal (:class:`FeedSubscribeError`); later ones are logged and the named market
  is dropped from the set. Error bodies and ``error`` frames are read by
  :func:`kalshi_platform.api.errors.error_text`.
* **Stale-feed watchdog**: no frame for ``stale_after`` s → the connection is aborted and
  re-established (liveness of a quiet but healthy socket is checked separately by the
  client's own pings, ``ping_interval``; Kalshi's 10 s ``heartbeat`` pings are answered by
  ``websockets`` automatically).
* ``max_size`` defaults to 64 MiB (Kalshi's reported frame limit, §7.1).

Subscriptions per connection: ``market_lifecycle_v2`` (no market filter, §7.4), then
``ticker`` + ``trade`` for the markets, then ``orderbook_delta`` for the markets with
``use_yes_price`` sent explicitly (§7.8). Markets can be added and removed at runtime with
:meth:`KalshiWSClient.add_markets` / :meth:`~KalshiWSClient.remove_markets`
(``update_subscription`` ``add_markets``/``delete_markets``, no reconnect). Per-connection
bookkeeping (commands in flight, sids, pending resyncs) is :mod:`.ws_session`.

Modules: the handshake, URLs and errors are :mod:`.ws_connect`, subscriptions and resyncs
:mod:`.ws_subscriptions`, frame handling :mod:`.ws_frames`; this module is the client (the
connection loop, one session, the writer and the watchdog) and re-exports their names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping
from urllib.parse import urlparse

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from kalshi_platform.ingestion.feed_api import FrameTap, PlantAPI
from kalshi_platform.ingestion.ws_connect import (
    MAX_SIZE,
    WS_URLS,
    FeedAuthError,
    FeedConnectError,
    FeedError,
    _describe,
    open_connection,
)
from kalshi_platform.ingestion.ws_frames import FramesMixin
from kalshi_platform.ingestion.ws_session import Session
from kalshi_platform.ingestion.ws_subscriptions import (
    DEFAULT_CHANNELS,
    UNFILTERED,
    FeedSubscribeError,
    SubscriptionsMixin,
)
from kalshi_platform.retry import Backoff

__all__ = ["WS_URLS", "DEFAULT_CHANNELS", "UNFILTERED", "MAX_SIZE", "FeedError", "FeedAuthError",
           "FeedConnectError", "FeedSubscribeError", "FrameTap", "PlantAPI", "Backoff",
           "ClientStats", "KalshiWSClient"]

log = logging.getLogger(__name__)


@dataclass
class ClientStats:
    """Counters of a client's life (ints; ``last_frame_ns`` = receipt time of the newest frame,
    ns UTC, 0 before the first)."""

    frames: int = 0
    bytes: int = 0
    connects: int = 0
    reconnects: int = 0  # connects after the first
    disconnects: int = 0
    connect_failures: int = 0
    resyncs: int = 0  # get_snapshot requests sent
    resync_fallbacks: int = 0  # unsubscribe + subscribe after a failed get_snapshot
    stale_timeouts: int = 0
    commands: int = 0
    errors: int = 0  # Kalshi `error` replies
    last_frame_ns: int = 0


class _Stale(Exception):
    pass


class KalshiWSClient(SubscriptionsMixin, FramesMixin):
    """One Kalshi WebSocket connection (re-established forever) feeding a ticker plant.

    Args:
        url: ``wss://…/trade-api/ws/v2`` (:data:`WS_URLS`) or the sim's ``ws://`` URL.
        plant: the plant that receives every frame (:class:`~.feed_api.PlantAPI`, in
            production a ``TickerPlant``); this client registers itself as its resync handler.
        tickers: market tickers to subscribe (may be empty and grown with :meth:`add_markets`).
        channels: subset of :data:`DEFAULT_CHANNELS` (or other Kalshi channel names).
        headers: called before every connection attempt for the handshake headers (e.g.
            ``lambda: signer.headers("GET", "/trade-api/ws/v2")``, docs/kalshi-api.md §2.4) so each
            attempt is freshly signed; ``None`` = unsigned.
        use_yes_price: the ``orderbook_delta`` ``use_yes_price`` flag (§7.8), always sent.
        taps: :class:`FrameTap` s that see every raw frame before decoding (the recorder).
        max_size: largest accepted message, bytes.
        open_timeout: seconds allowed for TCP + TLS + HTTP upgrade.
        stale_after: seconds without any frame before reconnecting (0 = no watchdog).
        resync_timeout: seconds to wait for a ``get_snapshot`` answer before resubscribing.
        backoff: :class:`~kalshi_platform.retry.Backoff` between connection attempts (and
            between retried subscribes); its ``cap_s`` is also the session length after which
            the attempt count resets.
        connect_attempts: attempts before the first successful connection (≥ 1).
        exit_on_close: return from :meth:`run` when the server closes the connection cleanly
            (code 1000) instead of reconnecting (for runs against ``sim --exit-when-done``).
        ping_interval: seconds between the client's own pings (``None`` = off); a missing
            pong within the same time closes the connection.

    Attributes: ``stats`` (:class:`ClientStats`), ``tickers`` (current market set),
    ``connected`` (bool).
    """

    def __init__(self, url: str, plant: PlantAPI, tickers: Iterable[str] = (), *,
                 channels: Iterable[str] = DEFAULT_CHANNELS,
                 headers: Callable[[], Mapping[str, str]] | None = None,
                 use_yes_price: bool = False, taps: Iterable[FrameTap] = (),
                 max_size: int = MAX_SIZE, open_timeout: float = 10.0,
                 stale_after: float = 120.0, resync_timeout: float = 10.0,
                 backoff: Backoff | None = None, connect_attempts: int = 3,
                 exit_on_close: bool = False, ping_interval: float | None = 20.0) -> None:
        if connect_attempts < 1:
            raise ValueError("connect_attempts must be >= 1")
        self.url = url
        self.path = urlparse(url).path or "/"
        self.plant = plant
        plant.set_resync_handler(self._on_gap)
        self.tickers: list[str] = list(dict.fromkeys(tickers))
        self.channels = tuple(dict.fromkeys(channels))
        self.headers = headers
        self.use_yes_price = use_yes_price
        self.taps = list(taps)
        self.max_size = max_size
        self.open_timeout = open_timeout
        self.stale_after = stale_after
        self.resync_timeout = resync_timeout
        self.backoff = backoff or Backoff()
        self.connect_attempts = connect_attempts
        self.exit_on_close = exit_on_close
        self.ping_interval = ping_interval
        self.stats = ClientStats()
        self.connected = False
        self._sess: Session | None = None
        self._ever_connected = False
        self._ever_subscribed = False
        self._cur_ns = 0
        self._frame_observer: Callable[[int], None] | None = None
        self._last_frame = 0.0
        self._fatal: FeedError | None = None
        self._stop = asyncio.Event()

    # -- public control --------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask :meth:`run` to close the connection and return (safe from signal handlers
        running on the loop)."""
        self._stop.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Connect and keep the feed going until :meth:`request_stop`, ``stop`` is set, or (with
        ``exit_on_close``) the server closes cleanly.

        Raises :class:`FeedAuthError`, :class:`FeedConnectError`, :class:`FeedSubscribeError`
        (see the module doc). Always records a final ``disconnect`` when a connection was up.
        """
        main = asyncio.create_task(self._main(), name="kalshi-ws")
        waiters = {main, asyncio.create_task(self._stop.wait())}
        if stop is not None:
            waiters.add(asyncio.create_task(stop.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                if w is not main:
                    w.cancel()
            if not main.done():
                main.cancel()
                try:
                    await main
                except asyncio.CancelledError:
                    pass
        if not main.cancelled() and main.exception() is not None:
            raise main.exception()  # type: ignore[misc]

    # -- connection loop -------------------------------------------------------------------

    async def _main(self) -> None:
        attempt = 0
        while True:
            try:
                ws = await self._connect()
            except FeedError:
                raise
            except Exception as e:  # noqa: BLE001 - every connect failure is retried the same way
                self.stats.connect_failures += 1
                why = _describe(e)
                if not self._ever_connected and attempt + 1 >= self.connect_attempts:
                    raise FeedConnectError(
                        f"cannot connect to {self.url}: {why} "
                        f"(after {attempt + 1} attempt{'s' if attempt else ''})") from None
                delay = self.backoff.delay(attempt)
                log.warning("connect to %s failed: %s; retrying in %.2fs", self.url, why, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            got_data = False
            t0 = time.monotonic()
            try:
                got_data, clean = await self._session(ws)
            finally:
                self._sess = None
                self.connected = False
            if self._fatal is not None:
                raise self._fatal
            if clean and self.exit_on_close:
                return
            attempt = 0 if got_data and time.monotonic() - t0 > self.backoff.cap_s else attempt + 1
            delay = self.backoff.delay(attempt)
            log.warning("disconnected from %s; reconnecting in %.2fs", self.url, delay)
            await asyncio.sleep(delay)

    async def _connect(self) -> ClientConnection:
        hdrs = self.headers() if self.headers is not None else None
        return await open_connection(self.url, hdrs, max_size=self.max_size,
                                     open_timeout=self.open_timeout,
                                     ping_interval=self.ping_interval,
                                     ever_connected=self._ever_connected)

    async def _session(self, ws: ClientConnection) -> tuple[bool, bool]:
        """Run one connection; returns ``(received_data, closed_cleanly_by_server)``."""
        s = Session(ws)
        self._sess = s
        self.connected = True
        first = not self._ever_connected
        self._ever_connected = True
        self.stats.connects += 1
        if not first:
            self.stats.reconnects += 1
        ns = time.time_ns()
        self.plant.feed_event("connect", detail=self.url, ts_ns=ns)
        self.plant.commit()
        for tap in self.taps:
            tap.event("connect", ns, None, self.url)
        log.info("connected to %s", self.url)
        self._last_frame = time.monotonic()
        frames_before = self.stats.frames
        self._subscribe_all(s)
        writer = asyncio.create_task(self._writer(s), name="kalshi-ws-writer")
        watchdog = asyncio.create_task(self._watchdog(s), name="kalshi-ws-watchdog")
        clean = False
        reason = "connection lost"
        try:
            async for raw in ws:
                self._on_raw(s, raw)
                if self._fatal is not None:
                    reason = str(self._fatal)
                    break
            rcvd = ws.protocol.close_rcvd
            clean = rcvd is not None and rcvd.code == 1000
            reason = f"server closed ({rcvd.code} {rcvd.reason})".strip() if rcvd else reason
        except ConnectionClosed as e:
            reason = f"connection lost ({_describe(e)})"
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            if watchdog.done() and not watchdog.cancelled() and isinstance(
                    watchdog.exception(), _Stale):
                reason = str(watchdog.exception())
            watchdog.cancel()
            writer.cancel()
            if reason == "stopped" or self._fatal is not None:
                try:
                    await asyncio.wait_for(ws.close(), 2.0)
                except (Exception, asyncio.CancelledError):  # noqa: BLE001
                    pass
            elif ws.transport is not None:
                ws.transport.abort()
            final = (reason == "stopped" or self._fatal is not None
                     or (clean and self.exit_on_close))
            self._disconnected(reason, final)
        return self.stats.frames > frames_before, clean

    def _disconnected(self, reason: str, final: bool) -> None:
        """Record a disconnect. Books and seq watermarks are dropped (``plant.reset``: sids are
        reassigned on the next connection) unless this is the end of the run (``final``), when
        the books are kept as the run's final state and only the feed event is emitted. The
        tap's marker says which (``reset``), so a replay does the same."""
        self.stats.disconnects += 1
        ns = time.time_ns()
        for tap in self.taps:
            tap.event("disconnect", ns, None, reason, reset=not final)
        if final:
            self.plant.feed_event("disconnect", detail=reason, ts_ns=ns)
        else:
            self.plant.reset(reason)
        self.plant.commit()
        log.info("disconnected from %s: %s", self.url, reason)

    async def _writer(self, s: Session) -> None:
        try:
            while True:
                text = await s.out.get()
                await s.ws.send(text)
                self.stats.commands += 1
        except ConnectionClosed:
            pass

    async def _watchdog(self, s: Session) -> None:
        period = 0.5
        if self.stale_after:
            period = max(0.01, min(period, self.stale_after / 4))
        if self.resync_timeout:
            period = max(0.01, min(period, self.resync_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if self.stale_after and now - self._last_frame > self.stale_after:
                self.stats.stale_timeouts += 1
                msg = f"stale feed: no frame for {self.stale_after:g}s"
                log.warning("%s; reconnecting", msg)
                self.plant.feed_event("error", detail=msg)
                self.plant.commit()
                if s.ws.transport is not None:
                    s.ws.transport.abort()
                raise _Stale(msg)
            for sid, r in list(s.resyncs.items()):
                if now > r.deadline:
                    log.warning("no snapshot for sid %s within %ss; resubscribing", sid,
                                self.resync_timeout)
                    self._resubscribe(s, sid)
