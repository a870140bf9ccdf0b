"""Async Kalshi REST client (httpx): market data, trades, historical tier (docs/kalshi-api.md §1–§6).

* Environments (§1): ``prod`` → ``https://external-api.kalshi.com/trade-api/v2``, ``demo`` →
  ``https://external-api.demo.kalshi.co/trade-api/v2``; ``base_url`` overrides (e.g. the local
  sim server ``http://127.0.0.1:PORT/trade-api/v2``).
* Signing (§2): with a :class:`~kalshi_platform.api.auth.Signer` every attempt is signed afresh
  over the URL path (including ``/trade-api/v2``, without the query string). Market-data
  endpoints are public, so no signer is needed for them (§2.5).
* Rate limit (§6): a client-side :class:`TokenBucket` (Basic tier: 200 read tokens/s, 10 tokens
  per request, capacity one second of budget) gates **every** attempt, retries included, so
  the request rate never exceeds the bucket.
* Retries: 429, 5xx and transport errors (connect/read timeouts, refused connections) are
  retried with exponential backoff and full jitter, capped (Kalshi sends no ``Retry-After``;
  the platform's one policy, :class:`kalshi_platform.retry.Backoff`);
  after ``max_retries`` retries a :class:`RestError` names the path and the last failure.
  404 raises :class:`NotFoundError`; other 4xx raise :class:`RestError` at once. Error bodies
  are read by :func:`kalshi_platform.api.errors.error_text` (every shape Kalshi sends).
* Pagination (§3.1): :meth:`RestClient.iter_pages` follows ``cursor`` until it is ``""`` or
  absent; typed iterators yield records one by one (pages of up to ``limit`` ≤ 1000).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable
from urllib.parse import quote, urlsplit

import httpx

from kalshi_platform.api.auth import Signer
from kalshi_platform.api.errors import error_text
from kalshi_platform.api.models import (
    Candlesticks,
    Event,
    ExchangeStatus,
    HistoricalCutoff,
    Market,
    ModelError,
    Orderbook,
    Series,
    Trade,
    decode_json,
)
from kalshi_platform.retry import Backoff

__all__ = [
    "BASE_URLS",
    "RestError",
    "NotFoundError",
    "TokenBucket",
    "RestStats",
    "RestClient",
]

#: REST base URL per environment (docs/kalshi-api.md §1, "recommended" hosts).
BASE_URLS = {
    "prod": "https://external-api.kalshi.com/trade-api/v2",
    "demo": "https://external-api.demo.kalshi.co/trade-api/v2",
}

MAX_LIMIT = 1000          # /markets, /markets/trades, /historical/* (§3.5, §3.7, §3.9)
MAX_EVENTS_LIMIT = 200    # /events (§3.4)


class RestError(Exception):
    """A REST call failed for good: ``status`` is the HTTP status of the last attempt (``None``
    for a transport failure such as an unreachable host), ``path`` the request path without
    query. ``str(e)`` is one line fit for a user."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path

    @property
    def exit_code(self) -> int:
        """CLI exit code (:mod:`kalshi_platform.tools.exitcodes`): always 2. A 4xx means the
        user's request is wrong; a transport failure or a 5xx/429 that outlived the retries
        means the service cannot be reached: both are "bad input or an unreachable service",
        not an internal error of ours."""
        return 2


class NotFoundError(RestError):
    """HTTP 404: the market, event or series does not exist (or the path is wrong)."""


class TokenBucket:
    """A token bucket: ``rate`` tokens refill per second up to ``capacity``; :meth:`acquire`
    waits (FIFO) until ``cost`` tokens are available and takes them.

    Over any interval of length T the tokens taken are at most ``capacity + rate * T``. The
    clock (``clock() -> seconds``, monotonic) and ``sleep`` (an ``async`` function of seconds)
    are injectable so tests run on a fake clock. Raises :class:`ValueError` if ``rate`` or
    ``capacity`` is not positive.
    """

    def __init__(self, rate: float, capacity: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if not rate > 0 or not capacity > 0:
            raise ValueError(f"token bucket needs rate > 0 and capacity > 0, got {rate}, {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.capacity
        self._t = clock()
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> float:
        now = self.clock()
        if now > self._t:
            self._tokens = min(self.capacity, self._tokens + (now - self._t) * self.rate)
            self._t = now
        return now

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    async def acquire(self, cost: float) -> float:
        """Take ``cost`` tokens, waiting as needed (behind earlier callers, then for the
        refill); returns the seconds spent waiting by the clock, 0.0 when the tokens were
        there at once. Raises :class:`ValueError` if ``cost`` exceeds the capacity (it could
        never fit)."""
        if cost > self.capacity:
            raise ValueError(f"request cost {cost} exceeds the bucket capacity {self.capacity}")
        if self._lock is None:
            self._lock = asyncio.Lock()
        start = self.clock()
        waited = self._lock.locked()
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= cost - 1e-9:
                    self._tokens -= cost
                    return max(0.0, self.clock() - start) if waited else 0.0
                waited = True
                await self.sleep((cost - self._tokens) / self.rate)

    def drain(self) -> None:
        """Empty the bucket (after a 429: the server's budget is spent, so is ours)."""
        self._refill()
        self._tokens = 0.0


@dataclass
class RestStats:
    """Counters of one client: ``requests`` HTTP attempts sent, ``retries`` attempts repeated
    after a 429/5xx/transport error, ``throttled_waits`` attempts the token bucket delayed,
    ``throttled_s`` total seconds waited for tokens, ``status_counts`` responses by HTTP status,
    ``transport_errors`` attempts that got no response."""

    requests: int = 0
    retries: int = 0
    throttled_waits: int = 0
    throttled_s: float = 0.0
    transport_errors: int = 0
    status_counts: Counter = field(default_factory=Counter)


def _limit(limit: int, hi: int = MAX_LIMIT) -> int:
    if type(limit) is not int or not 1 <= limit <= hi:
        raise ValueError(f"limit must be an integer in 1..{hi}, got {limit!r}")
    return limit


def _seg(s: str, what: str) -> str:
    if not isinstance(s, str) or not s.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return quote(s.strip(), safe="")


def _params(**kw: Any) -> dict[str, Any]:
    """Drop ``None``; booleans as ``true``/``false``; lists joined with commas."""
    out: dict[str, Any] = {}
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (list, tuple, set, frozenset)):
            v = ",".join(v)
        out[k] = v
    return out


class RestClient:
    """Async client for Kalshi's public market-data REST API (and any signed GET).

    Args:
        base_url: overrides the environment's URL (must include ``/trade-api/v2``).
        env: ``"prod"`` or ``"demo"`` (docs/kalshi-api.md §1).
        signer: signs every attempt when given (§2); public endpoints work without.
        read_tokens_per_s / request_cost: token bucket (§6); capacity = one second of budget
            (at least one request).
        max_retries: retries after a 429/5xx/transport error before :class:`RestError`.
        backoff_base_s / backoff_cap_s: full-jitter backoff, ``uniform(0, min(cap, base·2^n))``
            before retry ``n`` (0-based); the :class:`~kalshi_platform.retry.Backoff` is kept
            as ``self.backoff``.
        timeout_s: per-attempt timeout (connect, read, write, pool) in seconds.
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        clock / sleep / rng: injectable monotonic clock, async sleep and jitter source (tests).
        bucket: share one :class:`TokenBucket` between clients (default: a new one).

    Use as ``async with RestClient(...) as c:``. Methods raise :class:`NotFoundError` (404),
    :class:`RestError` (other failures, after retries where retrying makes sense), and
    :class:`~kalshi_platform.api.models.ModelError` for a response that does not parse.
    """

    def __init__(self, base_url: str | None = None, *, env: str = "prod",
                 signer: Signer | None = None, read_tokens_per_s: float = 200.0,
                 request_cost: float = 10.0, max_retries: int = 8, backoff_base_s: float = 0.25,
                 backoff_cap_s: float = 30.0, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 rng: random.Random | None = None,
                 bucket: TokenBucket | None = None) -> None:
        if base_url:
            base = base_url.strip().rstrip("/")
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"base URL {base_url!r} must be http(s)://host[:port]/trade-api/v2")
        else:
            if env not in BASE_URLS:
                raise ValueError(f"env must be one of {', '.join(BASE_URLS)}, got {env!r}")
            base = BASE_URLS[env]
        if max_retries < 0 or backoff_base_s < 0 or backoff_cap_s < 0 or not timeout_s > 0:
            raise ValueError("max_retries, backoff_base_s, backoff_cap_s must be >= 0 and "
                             "timeout_s > 0")
        if not request_cost > 0:
            raise ValueError(f"request_cost must be > 0, got {request_cost}")
        self.base_url = base
        self.env = env
        self.signer = signer
        self.request_cost = float(request_cost)
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_cap_s = float(backoff_cap_s)
        self.timeout_s = float(timeout_s)
        self._sleep = sleep
        #: full jitter (``jitter=1``): Kalshi sends no ``Retry-After`` (§6)
        self.backoff = Backoff(self.backoff_base_s, self.backoff_cap_s, factor=2.0, jitter=1.0,
                               rng=rng or random.Random())
        self.bucket = bucket or TokenBucket(read_tokens_per_s,
                                            max(float(read_tokens_per_s), self.request_cost),
                                            clock=clock, sleep=sleep)
        self.stats = RestStats()
        self._http = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(self.timeout_s),
            headers={"Accept": "application/json", "User-Agent": "kalshi-platform/0.1"},
            follow_redirects=False)

    @classmethod
    def from_settings(cls, settings=None, **kw: Any) -> "RestClient":
        """A client from :class:`~kalshi_platform.config.Settings` (``KALSHI_ENV``,
        ``KALSHI_REST_BASE_URL``, ``KALSHI_READ_TOKENS_PER_S``, ``KALSHI_REQUEST_COST``, and a
        signer when both ``KALSHI_API_KEY_ID`` and ``KALSHI_PRIVATE_KEY_PATH`` are set).
        Keyword arguments override. Raises :class:`~kalshi_platform.api.auth.AuthError` for an
        unusable key."""
        if settings is None:
            from kalshi_platform.config import get_settings

            settings = get_settings()
        if "signer" not in kw and settings.api_key_id and settings.private_key_path:
            kw["signer"] = Signer.from_pem_file(settings.api_key_id, settings.private_key_path)
        kw.setdefault("env", settings.env)
        kw.setdefault("read_tokens_per_s", settings.read_tokens_per_s)
        kw.setdefault("request_cost", settings.request_cost)
        base = kw.pop("base_url", None) or settings.rest_base_url or None
        return cls(base, **kw)

    async def __aenter__(self) -> "RestClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r}, signed={self.signer is not None})"

    # -- core ------------------------------------------------------------------------------

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``base_url + path`` and decode the JSON body (fractions as ``Decimal``).

        Token bucket before every attempt; retries 429/5xx/transport errors with full-jitter
        backoff up to ``max_retries`` times. Raises :class:`NotFoundError` on 404 and
        :class:`RestError` otherwise (status/path attached).
        """
        url = self.base_url + path
        sign_path = urlsplit(url).path
        params = _params(**(params or {}))
        last = ""
        status: int | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                await self._sleep(self.backoff.delay(attempt - 1))
            waited = await self.bucket.acquire(self.request_cost)
            if waited > 0:
                self.stats.throttled_waits += 1
                self.stats.throttled_s += waited
            headers = self.signer.headers("GET", sign_path) if self.signer else None
            self.stats.requests += 1
            try:
                resp = await self._http.get(url, params=params, headers=headers)
            except httpx.TransportError as e:
                self.stats.transport_errors += 1
                status = None
                last = _transport_text(e, url)
                continue
            status = resp.status_code
            self.stats.status_counts[status] += 1
            if status == 200:
                try:
                    return decode_json(resp.content)
                except ModelError as e:
                    raise RestError(f"GET {sign_path}: {e}", status=status, path=sign_path) from None
            if status == 429 or status >= 500:
                if status == 429:
                    self.bucket.drain()
                last = f"HTTP {status}" + (f" ({m})" if (m := error_text(resp.content)) else "")
                continue
            msg = error_text(resp.content)
            text = f"GET {sign_path}: HTTP {status}" + (f": {msg}" if msg else "")
            if status == 404:
                raise NotFoundError(text, status=status, path=sign_path)
            if status in (401, 403):
                text += " (check KALSHI_API_KEY_ID, the private key and the environment)"
            raise RestError(text, status=status, path=sign_path)
        raise RestError(f"GET {sign_path}: gave up after {self.max_retries + 1} attempts; "
                        f"last: {last}", status=status, path=sign_path)

    async def iter_pages(self, path: str, params: dict[str, Any] | None,
                         key: str) -> AsyncIterator[list[dict]]:
        """Walk a cursor-paginated endpoint (docs/kalshi-api.md §3.1): yield ``response[key]`` (a
        list of wire objects, possibly empty) per page, passing ``cursor`` back verbatim with
        the same filters, until the cursor is ``""``, ``null`` or absent. Raises
        :class:`RestError` if the server repeats a cursor (it would loop forever)."""
        params = dict(params or {})
        params.pop("cursor", None)
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            q = dict(params)
            if cursor:
                q["cursor"] = cursor
            body = await self.get_json(path, q)
            if not isinstance(body, dict):
                raise RestError(f"GET {path}: expected a JSON object, got {type(body).__name__}",
                                path=path)
            items = body.get(key)
            if items is None:
                items = []
            if not isinstance(items, list):
                raise RestError(f"GET {path}: {key!r} is not a list", path=path)
            yield items
            cursor = body.get("cursor")
            if not cursor:
                return
            if cursor in seen:
                raise RestError(f"GET {path}: server repeated cursor {cursor[:24]}…", path=path)
            seen.add(cursor)

    async def _iter(self, path: str, params: dict[str, Any], key: str,
                    parse: Callable[[Any], Any]) -> AsyncIterator[Any]:
        async for page in self.iter_pages(path, params, key):
            for obj in page:
                yield parse(obj)

    # -- exchange, series, events ------------------------------------------------------------

    async def get_exchange_status(self) -> ExchangeStatus:
        """``GET /exchange/status`` (§3.2)."""
        return ExchangeStatus.from_wire(await self.get_json("/exchange/status"))

    async def get_series(self, series_ticker: str) -> Series:
        """``GET /series/{series_ticker}`` (§3.3). :class:`NotFoundError` if unknown."""
        body = await self.get_json(f"/series/{_seg(series_ticker, 'series_ticker')}")
        return Series.from_wire(body.get("series") if isinstance(body, dict) else body)

    async def iter_series(self, **filters: Any) -> AsyncIterator[Series]:
        """``GET /series`` (§3.3; ``category``, ``tags``, ``include_volume``, …), one
        :class:`Series` at a time (the endpoint is not paginated)."""
        async for s in self._iter("/series", _params(**filters), "series", Series.from_wire):
            yield s

    async def get_event(self, event_ticker: str, *, with_nested_markets: bool = False) -> Event:
        """``GET /events/{event_ticker}`` (§3.4) with its markets (nested or top-level list;
        markets settled before the historical cutoff are omitted by Kalshi)."""
        body = await self.get_json(f"/events/{_seg(event_ticker, 'event_ticker')}",
                                   _params(with_nested_markets=with_nested_markets or None))
        if not isinstance(body, dict):
            raise ModelError("event response is not an object")
        return Event.from_wire(body.get("event"), body.get("markets"))

    async def iter_events(self, *, series_ticker: str | None = None, status: str | None = None,
                          with_nested_markets: bool | None = None, limit: int = MAX_EVENTS_LIMIT,
                          **filters: Any) -> AsyncIterator[Event]:
        """``GET /events`` (§3.4), all pages, one :class:`Event` at a time (``limit`` ≤ 200)."""
        p = _params(series_ticker=series_ticker, status=status,
                    with_nested_markets=with_nested_markets,
                    limit=_limit(limit, MAX_EVENTS_LIMIT), **filters)
        async for e in self._iter("/events", p, "events", Event.from_wire):
            yield e

    # -- markets ---------------------------------------------------------------------------

    async def get_market(self, ticker: str) -> Market:
        """``GET /markets/{ticker}`` (§3.5). :class:`NotFoundError` for an unknown market."""
        body = await self.get_json(f"/markets/{_seg(ticker, 'ticker')}")
        return Market.from_wire(body.get("market") if isinstance(body, dict) else body)

    async def iter_markets(self, *, event_ticker: str | None = None,
                           series_ticker: str | None = None, status: str | None = None,
                           tickers: Iterable[str] | None = None, min_close_ts: int | None = None,
                           max_close_ts: int | None = None, limit: int = MAX_LIMIT,
                           **filters: Any) -> AsyncIterator[Market]:
        """``GET /markets`` (§3.5), every page, one :class:`Market` at a time. ``status`` is a
        filter value (``unopened``, ``open``, ``paused``, ``closed``, ``settled``), ``*_ts``
        Unix seconds, ``tickers`` joined with commas, ``limit`` ≤ 1000 per page."""
        p = _params(event_ticker=event_ticker, series_ticker=series_ticker, status=status,
                    tickers=list(tickers) if tickers is not None else None,
                    min_close_ts=min_close_ts, max_close_ts=max_close_ts, limit=_limit(limit),
                    **filters)
        async for m in self._iter("/markets", p, "markets", Market.from_wire):
            yield m

    async def iter_historical_markets(self, *, event_ticker: str | None = None,
                                      series_ticker: str | None = None,
                                      tickers: Iterable[str] | None = None,
                                      limit: int = MAX_LIMIT) -> AsyncIterator[Market]:
        """``GET /historical/markets`` (§3.9): markets settled before the cutoff, which
        ``/markets`` no longer lists. Filters are mutually exclusive on Kalshi's side."""
        p = _params(event_ticker=event_ticker, series_ticker=series_ticker,
                    tickers=list(tickers) if tickers is not None else None, limit=_limit(limit))
        async for m in self._iter("/historical/markets", p, "markets", Market.from_wire):
            yield m

    async def get_historical_market(self, ticker: str) -> Market:
        """``GET /historical/markets/{ticker}`` (§3.9): a market settled before the cutoff.
        :class:`NotFoundError` if unknown there."""
        body = await self.get_json(f"/historical/markets/{_seg(ticker, 'ticker')}")
        return Market.from_wire(body.get("market") if isinstance(body, dict) else body)

    async def get_orderbook(self, ticker: str, depth: int | None = None) -> Orderbook:
        """``GET /markets/{ticker}/orderbook`` (§3.6): both bid ladders, best first.
        ``depth`` 1–100 = top N levels per side; ``None``/0 = all."""
        if depth is not None and (type(depth) is not int or not 0 <= depth <= 100):
            raise ValueError(f"depth must be an integer in 0..100, got {depth!r}")
        body = await self.get_json(f"/markets/{_seg(ticker, 'ticker')}/orderbook",
                                   _params(depth=depth or None))
        return Orderbook.from_wire(body, ticker)

    # -- trades, historical tier ----------------------------------------------------------------

    def _trade_params(self, ticker: str | None, min_ts: int | None, max_ts: int | None,
                      limit: int) -> dict[str, Any]:
        for name, v in (("min_ts", min_ts), ("max_ts", max_ts)):
            if v is not None and (type(v) is not int or v < 0):
                raise ValueError(f"{name} must be a Unix time in seconds, got {v!r}")
        return _params(ticker=ticker, min_ts=min_ts, max_ts=max_ts, limit=_limit(limit))

    async def iter_trades(self, *, ticker: str | None = None, min_ts: int | None = None,
                          max_ts: int | None = None, limit: int = MAX_LIMIT) -> AsyncIterator[Trade]:
        """``GET /markets/trades`` (§3.7): the live tier of the public tape, every page, one
        :class:`Trade` at a time (Kalshi sends newest first). ``min_ts``/``max_ts`` Unix
        seconds; trades older than the historical cutoff are only in
        :meth:`iter_historical_trades`."""
        p = self._trade_params(ticker, min_ts, max_ts, limit)
        async for t in self._iter("/markets/trades", p, "trades", Trade.from_wire):
            yield t

    async def get_historical_cutoff(self) -> HistoricalCutoff:
        """``GET /historical/cutoff`` (§3.9)."""
        return HistoricalCutoff.from_wire(await self.get_json("/historical/cutoff"))

    async def iter_historical_trades(self, *, ticker: str | None = None,
                                     min_ts: int | None = None, max_ts: int | None = None,
                                     limit: int = MAX_LIMIT) -> AsyncIterator[Trade]:
        """``GET /historical/trades`` (§3.9): trades created before the cutoff; same parameters
        and :class:`Trade` shape as :meth:`iter_trades`."""
        p = self._trade_params(ticker, min_ts, max_ts, limit)
        async for t in self._iter("/historical/trades", p, "trades", Trade.from_wire):
            yield t

    async def get_candlesticks(self, series_ticker: str, ticker: str, *, start_ts: int,
                               end_ts: int, period_interval: int) -> Candlesticks:
        """``GET /series/{s}/markets/{t}/candlesticks`` (§3.8): candles whose end is in
        ``[start_ts, end_ts]`` (Unix s), ``period_interval`` 1, 60 or 1440 minutes."""
        if period_interval not in (1, 60, 1440):
            raise ValueError(f"period_interval must be 1, 60 or 1440, got {period_interval!r}")
        body = await self.get_json(
            f"/series/{_seg(series_ticker, 'series_ticker')}/markets/{_seg(ticker, 'ticker')}"
            "/candlesticks",
            _params(start_ts=start_ts, end_ts=end_ts, period_interval=period_interval))
        return Candlesticks.from_wire(body, ticker)


def _transport_text(e: httpx.TransportError, url: str) -> str:
    host = urlsplit(url).netloc
    if isinstance(e, httpx.ConnectTimeout):
        return f"connect to {host} timed out"
    if isinstance(e, httpx.TimeoutException):
        what = {httpx.ReadTimeout: "read", httpx.WriteTimeout: "write",
                httpx.PoolTimeout: "connection pool"}.get(type(e), "request")
        return f"{what} timed out talking to {host}"
    if isinstance(e, httpx.ConnectError):
        reason = str(e) or "connection failed"
        return f"cannot connect to {host}: {reason}"
    return f"transport error talking to {host}: {e or 'connection lost'}"

