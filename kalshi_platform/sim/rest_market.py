"""The sim's REST market data: Kalshi's public endpoints under ``/trade-api/v2`` (docs/kalshi-api.md §3).

Transport-free: :meth:`RestApi.handle` answers ``(method, path?query)`` with ``(status,
body)``, and :meth:`RestApi.routes` lists ``(pattern, function)`` pairs that the HTTP layer
(:mod:`kalshi_platform.sim.app`) registers with aiohttp. Data: :mod:`.market_data`; books: the
sim's current books (``book_of``); candlesticks: :mod:`.candles`.

==================================================  =============================================
``/exchange/status``, ``/exchange/schedule``        always open (the sim has no trading hours)
``/series/fee_changes``, ``/events/fee_changes``,   empty: the sim has no fee schedule changes
``/events/multivariate``                            and no multivariate events
``/events/{e}/metadata``                            no images; the event's settlement sources
``/series``, ``/series/{s}``                        ``category``, ``tags``, ``include_volume``,
                                                    ``min_updated_ts``
``/events``, ``/events/{e}``                        ``status``, ``series_ticker``, ``tickers``,
                                                    ``min_close_ts``, ``min_updated_ts``,
                                                    ``with_nested_markets``, ``with_milestones``
``/markets``                                        every documented filter (§3.5), with Kalshi's
                                                    compatibility rules (400 otherwise)
``/markets/{t}``, ``/markets/{t}/orderbook``,       current book; ``depth``
``/markets/orderbooks``
``/markets/trades``, ``/historical/trades``         split at the cutoff ``trades_created_ts``
``/series/{s}/markets/{t}/candlesticks``,           computed (:mod:`.candles`)
``/series/{s}/events/{e}/candlesticks``,
``/markets/candlesticks``,
``/historical/markets/{t}/candlesticks``
``/historical/cutoff``, ``/historical/markets[/{t}]``  markets settled before ``market_settled_ts``
==================================================  =============================================

Pagination (§3.1): ``limit`` + ``cursor``; the response's ``cursor`` is ``""`` on the last
page. Cursors are opaque keyset positions (the last item returned), so items added while a
client pages do not shift pages. Trades are newest first (as observed on Kalshi), ties broken
by ``trade_id`` descending. ``min_ts``/``max_ts`` (Unix s) are both inclusive (§10.3).

Errors: ``{"error": {"code", "message", "details"}}`` with 400 (bad or unsupported parameter,
bad cursor), 404 (unknown market/event/series/path), 405 (not GET).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable
from urllib.parse import parse_qs, unquote

from kalshi_platform.fixedpoint import ONE_DOLLAR, price_to_str, size_to_str
from kalshi_platform.sim import candles
from kalshi_platform.sim.books import orderbook_fp
from kalshi_platform.sim.market_data import (
    EPOCH_ISO, RestData, complete_market, event_of, iso_s, series_of)
from kalshi_platform.ticker_plant.order_book import OrderBook

REST_PREFIX = "/trade-api/v2"
MAX_LIMIT = 1000

#: ``/markets?status=`` filter value → market object statuses (docs/kalshi-api.md §3.5, §4)
STATUS_FILTER = {
    "unopened": {"initialized"},
    "open": {"active"},
    "paused": {"inactive"},
    "closed": {"closed", "determined", "disputed", "amended"},
    "settled": {"finalized", "settled"},
}
#: ``/markets`` time filters: name → (market field, statuses it combines with; §3.5)
TIME_FILTERS = {
    "created": ("created_time", {None, "unopened", "open"}),
    "close": ("close_time", {None, "closed"}),
    "settled": ("settlement_ts", {None, "settled"}),
    "updated": ("updated_time", {None}),
}
#: the sim is always open: one weekly schedule, every day 00:00–24:00 ET (§3.2)
_DAY = [{"open_time": "00:00", "close_time": "24:00"}]
SCHEDULE = {"schedule": {"standard_hours": [{
    "start_time": EPOCH_ISO, "end_time": "2100-01-01T00:00:00Z",
    **{d: list(_DAY) for d in ("monday", "tuesday", "wednesday", "thursday", "friday",
                               "saturday", "sunday")}}], "maintenance_windows": []}}


class RestError(Exception):
    """An HTTP error answer: ``status`` (int), ``code`` (Kalshi-style string), ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON error body (docs/kalshi-api.md §3.10, wrapped form seen on live 4xx)."""
        return {"error": {"code": self.code, "message": self.message, "details": ""}}


def bad(message: str) -> RestError:
    """A 400 ``invalid_parameters`` error."""
    return RestError(400, "invalid_parameters", message)


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor holding ``parts`` (JSON, URL-safe base64)."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list:
    """The ``n`` parts of a cursor from :func:`encode_cursor`; 400 ``invalid_cursor`` else."""
    try:
        pad = "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(cursor + pad))
        if isinstance(parts, list) and len(parts) == n:
            return parts
    except (ValueError, TypeError):
        pass
    raise RestError(400, "invalid_cursor", "cursor is not valid for this endpoint")


def one(q: dict[str, list[str]], name: str) -> str | None:
    """The last value of query parameter ``name`` (``None`` when absent or empty)."""
    v = q.get(name)
    return v[-1] if v and v[-1] != "" else None


def integer(q: dict[str, list[str]], name: str, lo: int | None = None, hi: int | None = None,
            default: int | None = None) -> int | None:
    """An integer query parameter in ``[lo, hi]``; 400 otherwise."""
    v = one(q, name)
    if v is None:
        return default
    try:
        n = int(v)
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise bad(f"{name} must be in [{lo}, {hi}]" if lo is not None and hi is not None
                  else f"{name} must be >= {lo}" if lo is not None else f"{name} must be <= {hi}")
    return n


def boolean(q: dict[str, list[str]], name: str) -> bool | None:
    """A ``true``/``false`` query parameter; 400 otherwise."""
    v = one(q, name)
    if v is None:
        return None
    if v.lower() in ("true", "1"):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise bad(f"{name} must be true or false")


def required(q: dict[str, list[str]], name: str) -> int:
    """A required integer parameter (400 when missing)."""
    n = integer(q, name)
    if n is None:
        raise bad(f"{name} is required")
    return n


def csv(q: dict[str, list[str]], name: str) -> list[str] | None:
    """A comma-separated (and/or repeated) list parameter."""
    vals = [t for v in q.get(name, []) for t in v.split(",") if t]
    return vals or None


Route = tuple[str, Callable[[dict[str, str], dict[str, list[str]]], Any]]


class RestApi:
    """Answers market-data REST requests from :class:`RestData` plus the sim's current books.

    Args:
        data: markets, trades, cutoff, events, series.
        book_of: ``ticker → OrderBook | None`` (the sim's current book).
        page_cap: fault switch: at most N items per page (0 = off).
        bbo_history: ``ticker → [(unix_s, yes_bid µ$|None, yes_ask µ$|None)]`` for candles.
        last_ticker: ticker → the last ``ticker`` msg played (or ``None``): live price,
            volume and open interest of markets made up from the recording.
    """

    def __init__(self, data: RestData, book_of: Callable[[str], OrderBook | None],
                 page_cap: int = 0,
                 bbo_history: Callable[[str], list] = lambda t: [],
                 last_ticker: Callable[[str], dict | None] = lambda t: None) -> None:
        from kalshi_platform.sim.rest_lists import Listings

        self.data = data
        self.book_of = book_of
        self.page_cap = page_cap
        self.bbo_history = bbo_history
        self.last_ticker = last_ticker
        self.lists = Listings(self)
        self._compiled = [(re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", p) + "$"), f)
                          for p, f in self.routes()]

    def routes(self) -> list[Route]:
        """``(path pattern under /trade-api/v2, function(path_params, query))``, fixed
        paths before parameterised ones (aiohttp and :meth:`handle` match in this order)."""
        L = self.lists
        return [
            ("/exchange/status", lambda p, q: {"exchange_active": True, "trading_active": True}),
            ("/exchange/schedule", lambda p, q: SCHEDULE),
            ("/series", lambda p, q: L.series_list(q)),
            ("/series/fee_changes", lambda p, q: {"series_fee_change_arr": []}),
            ("/series/{series_ticker}", lambda p, q: {"series": L.one_series(
                p["series_ticker"], boolean(q, "include_volume"))}),
            ("/series/{series_ticker}/markets/{ticker}/candlesticks", self.market_candles),
            ("/series/{series_ticker}/events/{event_ticker}/candlesticks", self.event_candles),
            ("/events", lambda p, q: L.events(q)),
            ("/events/fee_changes", lambda p, q: {"event_fee_changes": [], "cursor": ""}),
            ("/events/multivariate", lambda p, q: {"events": [], "cursor": ""}),
            ("/events/{event_ticker}", lambda p, q: L.event(p["event_ticker"], q)),
            ("/events/{event_ticker}/metadata", lambda p, q: L.event_metadata(p["event_ticker"])),
            ("/markets", lambda p, q: L.markets(q, historical=False)),
            ("/markets/trades", lambda p, q: L.trades(q, historical=False)),
            ("/markets/orderbooks", lambda p, q: self.orderbooks(q)),
            ("/markets/candlesticks", self.batch_candles),
            ("/markets/{ticker}", lambda p, q: {"market": self.market(p["ticker"])}),
            ("/markets/{ticker}/orderbook", self.orderbook),
            ("/historical/cutoff", lambda p, q: dict(self.data.cutoff)),
            ("/historical/trades", lambda p, q: L.trades(q, historical=True)),
            ("/historical/markets", lambda p, q: L.markets(q, historical=True)),
            ("/historical/markets/{ticker}", lambda p, q: {"market": self.market(
                p["ticker"], historical=True)}),
            ("/historical/markets/{ticker}/candlesticks", self.historical_candles),
        ]

    def handle(self, method: str, target: str) -> tuple[int, Any]:
        """Answer ``method target`` (``target`` = path with query). Returns ``(status, body)``;
        never raises for client errors (they become 4xx bodies)."""
        path, _, query = target.partition("?")
        try:
            if not path.startswith(REST_PREFIX + "/"):
                raise RestError(404, "not_found", f"no such path {path}")
            sub = "/" + "/".join(unquote(p) for p in path[len(REST_PREFIX) + 1:].split("/") if p)
            for rx, fn in self._compiled:
                m = rx.match(sub)
                if m:
                    if method not in ("GET", "HEAD"):
                        raise RestError(405, "method_not_allowed",
                                        f"{method} is not supported here")
                    return 200, fn(m.groupdict(), parse_qs(query, keep_blank_values=True))
            raise RestError(404, "not_found", f"no such endpoint {sub}")
        except RestError as e:
            return e.status, e.body()

    # -- markets ---------------------------------------------------------------------------

    def market(self, ticker: str, *, historical: bool | None = None) -> dict[str, Any]:
        """One complete market object; for markets made up from the recording, live fields
        from the last ``ticker`` frame played and the BBO from the current book. 404 if
        unknown (or, with ``historical=True``, not settled before the cutoff)."""
        m = self.data.markets.get(ticker)
        if m is None or (historical and not self.data.is_historical(m)):
            where = "in the historical tier" if historical else ""
            raise RestError(404, "not_found", f"market {ticker} not found {where}".strip())
        out = complete_market(m)
        if not m.get("_sim"):
            return out
        tk = self.last_ticker(ticker) or {}
        for k, src in (("last_price_dollars", "price_dollars"), ("volume_fp", "volume_fp"),
                       ("open_interest_fp", "open_interest_fp"),
                       ("yes_bid_dollars", "yes_bid_dollars"),
                       ("yes_ask_dollars", "yes_ask_dollars")):
            if isinstance(tk.get(src), str) and tk[src]:
                out[k] = tk[src]
        book = self.book_of(ticker)
        if book is None:
            return out
        yb, ybs, ya, yas = book.top()
        out.update({
            "yes_bid_dollars": price_to_str(yb or 0), "yes_bid_size_fp": size_to_str(ybs or 0),
            "yes_ask_dollars": price_to_str(ONE_DOLLAR if ya is None else ya),
            "yes_ask_size_fp": size_to_str(yas or 0),
            "no_bid_dollars": price_to_str(0 if ya is None else ONE_DOLLAR - ya),
            "no_ask_dollars": price_to_str(ONE_DOLLAR - (yb or 0)),
        })
        return out

    def orderbook(self, p: dict[str, str], q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /markets/{ticker}/orderbook?depth=N`` (§3.6)."""
        self.market(p["ticker"])  # 404 for unknown
        depth = integer(q, "depth", 0, 100, 0)
        return orderbook_fp(self.book_of(p["ticker"]), depth or None)

    def orderbooks(self, q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /markets/orderbooks?tickers=A&tickers=B`` (1–100 tickers)."""
        tickers = csv(q, "tickers") or []
        if not 1 <= len(tickers) <= 100:
            raise bad("tickers: 1 to 100 market tickers")
        out = []
        for t in tickers:
            self.market(t)
            out.append({"ticker": t, **orderbook_fp(self.book_of(t))})
        return {"orderbooks": out}

    # -- candlesticks (§3.8) ---------------------------------------------------------------

    def candles_of(self, ticker: str, q: dict[str, list[str]], *,
                   latest: bool = True) -> list[dict[str, Any]]:
        """Live-shape candles of one market for the query's ``start_ts``/``end_ts``/
        ``period_interval`` (400 when missing or bad)."""
        recs = [r for r in self.data.trades if r.obj.get("ticker") == ticker]
        try:
            return candles.compute(
                recs, self.bbo_history(ticker), start_ts=required(q, "start_ts"),
                end_ts=required(q, "end_ts"), period_interval=required(q, "period_interval"),
                include_latest_before_start=bool(latest and boolean(
                    q, "include_latest_before_start")))
        except candles.CandleError as e:
            raise bad(str(e)) from None

    def _candle_market(self, ticker: str, historical: bool = False) -> str:
        """The event ticker of a market candles are asked for: a known market (with
        ``historical``, one settled before the cutoff), or a ticker the sim has trades of but
        no market object (a trade implies its market; with ``historical`` all its trades must
        be before the cutoff ``trades_created_ts``); 404 otherwise."""
        m = self.data.markets.get(ticker)
        if m is not None:
            if historical:
                self.market(ticker, historical=True)
            return m.get("event_ticker") or event_of(ticker)
        recs = [r for r in self.data.trades if r.obj.get("ticker") == ticker]
        cut = iso_s(self.data.cutoff.get("trades_created_ts")) or 0
        if recs and (not historical or all(r.created_ns // 10**9 < cut for r in recs)):
            return event_of(ticker)
        where = " in the historical tier" if historical else ""
        raise RestError(404, "not_found", f"market {ticker} not found{where}")

    def market_candles(self, p: dict[str, str], q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /series/{s}/markets/{t}/candlesticks``."""
        t = p["ticker"]
        if series_of(self._candle_market(t)) != p["series_ticker"]:
            raise RestError(404, "not_found", f"market {t} is not in series {p['series_ticker']}")
        return {"ticker": t, "candlesticks": self.candles_of(t, q)}

    def batch_candles(self, p: dict[str, str], q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /markets/candlesticks?market_tickers=A,B`` (≤ 100 markets, ≤ 10,000 candles)."""
        tickers = csv(q, "market_tickers") or []
        if not 1 <= len(tickers) <= 100:
            raise bad("market_tickers: 1 to 100 market tickers")
        out, total = [], 0
        for t in tickers:
            self._candle_market(t)
            cs = self.candles_of(t, q)
            total += len(cs)
            out.append({"market_ticker": t, "candlesticks": cs})
        if total > 10_000:
            raise bad("more than 10,000 candlesticks: narrow start_ts/end_ts")
        return {"markets": out}

    def event_candles(self, p: dict[str, str], q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /series/{s}/events/{e}/candlesticks``: per-market candles, same order as
        ``market_tickers``; ``adjusted_end_ts`` = ``end_ts`` (the sim never truncates)."""
        ev = p["event_ticker"]
        tickers = [t for t, m in sorted(self.data.markets.items())
                   if (m.get("event_ticker") or event_of(t)) == ev]
        if not tickers:
            raise RestError(404, "not_found", f"event {ev} not found")
        return {"market_tickers": tickers,
                "market_candlesticks": [self.candles_of(t, q, latest=False) for t in tickers],
                "adjusted_end_ts": required(q, "end_ts")}

    def historical_candles(self, p: dict[str, str], q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /historical/markets/{t}/candlesticks`` (historical field names)."""
        t = p["ticker"]
        self._candle_market(t, historical=True)
        return {"ticker": t, "candlesticks": [candles.historical_shape(c)
                                              for c in self.candles_of(t, q, latest=False)]}


def time_bounds(q: dict[str, list[str]], name: str) -> tuple[int | None, int | None]:
    """``min_{name}_ts`` and ``max_{name}_ts`` (Unix s, inclusive)."""
    return integer(q, f"min_{name}_ts"), integer(q, f"max_{name}_ts")


def in_bounds(value: Any, lo: int | None, hi: int | None) -> bool:
    """Whether RFC3339 ``value`` lies in ``[lo, hi]`` (a missing time matches no bound)."""
    if lo is None and hi is None:
        return True
    s = iso_s(value)
    return s is not None and (lo is None or s >= lo) and (hi is None or s <= hi)

