"""The sim's REST API: Kalshi's market-data endpoints under ``/trade-api/v2`` (docs/kalshi-api.md §3).

Data comes from two places:

* the **recording** the sim replays: every market ticker it mentions becomes a market object
  (event = ticker without its last ``-`` part, series = event up to its first ``-``), its
  order book is the sim's *current* book, and every ``trade`` frame becomes a REST trade;
* a directory of **REST fixtures** (``--rest-fixtures``, e.g. ``shared/data/real/kalshi/rest``):
  every ``*.json`` file is walked recursively and each trade object (``trade_id`` +
  ``ticker`` + ``created_time``), market object (``ticker`` + ``event_ticker`` + ``status``),
  event, series and historical cutoff found in it is served. Capture wrappers (``note``,
  ``captured_at``, ``payload``...) are fine, ``*.meta.json`` files are skipped.

Endpoints (all ``GET``; JSON bodies):

==========================================  =====================================================
``/exchange/status``                        always active
``/markets``                                filters ``event_ticker``, ``series_ticker``,
                                            ``tickers`` (comma-separated), ``status``
                                            (``unopened|open|paused|closed|settled``),
                                            ``min/max_close_ts``; ``limit`` 1–1000 (default 100)
``/markets/{ticker}``                       ``{"market": ...}``; 404 if unknown
``/markets/{ticker}/orderbook``             ``orderbook_fp`` from the current book; ``depth``
``/markets/orderbooks``                     ``tickers`` repeated, 1–100
``/markets/trades``                         trades at/after the cutoff; ``ticker``, ``min_ts``,
                                            ``max_ts``, ``is_block_trade``; ``limit`` 1–1000
``/historical/cutoff``                      the cutoff timestamps
``/historical/trades``                      trades before the cutoff; same params
``/events/{event_ticker}``, ``/series/{s}``  minimal, from the markets known
==========================================  =====================================================

Pagination (§3.1): ``limit`` + ``cursor``; the response's ``cursor`` is ``""`` on the last
page. Cursors are opaque keyset positions (the last item returned), so trades or markets added
while a client pages do not shift pages. Trades are newest first (as observed on Kalshi,
PROVENANCE of ``manta_prod``), ties broken by ``trade_id`` descending. ``min_ts``/``max_ts``
(Unix s) are both inclusive at one-second resolution (Kalshi does not document it; §10.3).

Errors: ``{"error": {"code", "message", "details"}}`` with 400 (bad parameter, bad cursor),
404 (unknown market/event/series/path), 405 (not GET); 429 is ``{"error": "too many
requests"}`` (§3.10, §6).
"""

from __future__ import annotations

import base64
import bisect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote

from kalshi_platform.fixedpoint import ONE_DOLLAR, price_to_str, size_to_str
from kalshi_platform.ingestion.messages import DecodeError, iso_to_ns
from kalshi_platform.sim.books import orderbook_fp
from kalshi_platform.ticker_plant.order_book import OrderBook

log = logging.getLogger(__name__)

REST_PREFIX = "/trade-api/v2"
MAX_LIMIT = 1000
EPOCH_ISO = "1970-01-01T00:00:00Z"

#: ``/markets?status=`` filter value → market object statuses (docs/kalshi-api.md §3.5, §4)
STATUS_FILTER = {
    "unopened": {"initialized"},
    "open": {"active"},
    "paused": {"inactive"},
    "closed": {"closed", "determined", "disputed", "amended"},
    "settled": {"finalized", "settled"},
}


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


def event_of(ticker: str) -> str:
    """Event ticker of a market ticker: everything before the last ``-``."""
    return ticker.rsplit("-", 1)[0] if "-" in ticker else ticker


def series_of(event_ticker: str) -> str:
    """Series ticker of an event ticker: everything before the first ``-``."""
    return event_ticker.split("-", 1)[0]


def _encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, n: int) -> list:
    try:
        pad = "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(cursor + pad))
        if isinstance(parts, list) and len(parts) == n:
            return parts
    except (ValueError, TypeError):
        pass
    raise RestError(400, "invalid_cursor", "cursor is not valid for this endpoint")


@dataclass
class TradeRecord:
    """One REST trade (docs/kalshi-api.md §3.7) with its sort key (``created_ns``, ``trade_id``)."""

    created_ns: int
    trade_id: str
    obj: dict[str, Any]

    @property
    def key(self) -> tuple[int, str]:
        return (self.created_ns, self.trade_id)


@dataclass
class RestData:
    """Everything the REST endpoints serve, except books (asked for through ``book_of``).

    ``markets``: ticker → market object; ``trades``: sorted ascending by key (served newest
    first); ``cutoff``: the ``/historical/cutoff`` body; ``events``/``series``: fixture objects
    by ticker.
    """

    markets: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: list[TradeRecord] = field(default_factory=list)
    cutoff: dict[str, str] = field(default_factory=lambda: {
        "market_settled_ts": EPOCH_ISO, "trades_created_ts": EPOCH_ISO,
        "orders_updated_ts": EPOCH_ISO})
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    _trade_ids: set[str] = field(default_factory=set)

    # -- loading ---------------------------------------------------------------------------

    def add_trade(self, obj: dict[str, Any]) -> bool:
        """Add a REST trade object; ``False`` if its ``trade_id`` is known or it is unusable."""
        tid = obj.get("trade_id")
        if not isinstance(tid, str) or tid in self._trade_ids:
            return False
        try:
            ns = iso_to_ns(obj.get("created_time"))  # type: ignore[arg-type]
        except DecodeError:
            return False
        rec = TradeRecord(ns, tid, obj)
        bisect.insort(self.trades, rec, key=lambda r: r.key)
        self._trade_ids.add(tid)
        return True

    def add_market(self, obj: dict[str, Any], *, replace: bool = True) -> None:
        """Add (or replace) a market object keyed by its ``ticker``."""
        t = obj.get("ticker")
        if isinstance(t, str) and (replace or t not in self.markets):
            self.markets[t] = obj

    def set_cutoff(self, iso: str) -> None:
        """Set every cutoff timestamp to ``iso`` (RFC3339, UTC). Raises ``ValueError``."""
        try:
            iso_to_ns(iso)
        except DecodeError as e:
            raise ValueError(str(e)) from None
        self.cutoff = {"market_settled_ts": iso, "trades_created_ts": iso,
                       "orders_updated_ts": iso}

    def load_fixtures(self, root: str | Path) -> dict[str, int]:
        """Load every ``*.json`` under ``root`` (recursively; ``*.meta.json`` skipped).

        Returns counts ``{"files", "trades", "markets", "events", "series", "cutoff"}``.
        Raises ``OSError`` if ``root`` is not a readable directory; unparseable files are
        logged and skipped.
        """
        root = Path(root)
        if not root.is_dir():
            raise OSError(f"{root}: not a directory")
        counts = {"files": 0, "trades": 0, "markets": 0, "events": 0, "series": 0, "cutoff": 0}
        for path in sorted(root.rglob("*.json")):
            if path.name.endswith(".meta.json"):
                continue
            try:
                doc = json.loads(path.read_bytes())
            except (OSError, ValueError) as e:
                log.warning("skipping REST fixture %s: %s", path, e)
                continue
            counts["files"] += 1
            self._walk(doc, counts, 0)
        return counts

    def _walk(self, x: Any, counts: dict[str, int], depth: int) -> None:
        if depth > 12:
            return
        if isinstance(x, list):
            for v in x:
                self._walk(v, counts, depth + 1)
            return
        if not isinstance(x, dict):
            return
        if "trades_created_ts" in x and "market_settled_ts" in x:
            self.cutoff = {k: v for k, v in x.items() if isinstance(v, str)}
            counts["cutoff"] += 1
            return
        if ("trade_id" in x and "ticker" in x and "created_time" in x
                and "order_id" not in x):
            counts["trades"] += self.add_trade(x)
            return
        if isinstance(x.get("ticker"), str) and "event_ticker" in x and "status" in x:
            self.add_market(x)
            counts["markets"] += 1
            return
        if isinstance(x.get("event_ticker"), str) and "series_ticker" in x and "ticker" not in x:
            self.events[x["event_ticker"]] = {k: v for k, v in x.items() if k != "markets"}
            counts["events"] += 1
        elif isinstance(x.get("ticker"), str) and ("frequency" in x or "fee_type" in x):
            self.series[x["ticker"]] = x
            counts["series"] += 1
            return
        for v in x.values():
            self._walk(v, counts, depth + 1)


def _one(q: dict[str, list[str]], name: str) -> str | None:
    v = q.get(name)
    return v[-1] if v else None


def _int(q: dict[str, list[str]], name: str, lo: int | None = None, hi: int | None = None,
         default: int | None = None) -> int | None:
    v = _one(q, name)
    if v is None or v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        raise RestError(400, "invalid_parameters", f"{name} must be an integer") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise RestError(400, "invalid_parameters", f"{name} must be in [{lo}, {hi}]")
    return n


def _bool(q: dict[str, list[str]], name: str) -> bool | None:
    v = _one(q, name)
    if v is None or v == "":
        return None
    if v.lower() in ("true", "1"):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise RestError(400, "invalid_parameters", f"{name} must be true or false")


class RestApi:
    """Answers REST requests from :class:`RestData` plus the sim's current books.

    Args:
        data: markets, trades, cutoff, events, series.
        book_of: ``ticker → OrderBook | None`` (the sim's current book).
    """

    def __init__(self, data: RestData, book_of: Callable[[str], OrderBook | None],
                 page_cap: int = 0) -> None:
        self.data = data
        self.book_of = book_of
        self.page_cap = page_cap  # fault switch: at most N items per page (0 = off)

    def handle(self, method: str, target: str) -> tuple[int, Any]:
        """Answer ``method target`` (``target`` = path with query). Returns ``(status, body)``;
        never raises for client errors (they become 4xx bodies)."""
        path, _, query = target.partition("?")
        try:
            if method != "GET":
                raise RestError(405, "method_not_allowed", f"{method} is not supported here")
            if not path.startswith(REST_PREFIX + "/"):
                raise RestError(404, "not_found", f"no such path {path}")
            parts = [unquote(p) for p in path[len(REST_PREFIX) + 1:].split("/") if p]
            return 200, self._route(parts, parse_qs(query, keep_blank_values=True))
        except RestError as e:
            return e.status, e.body()

    def _route(self, parts: list[str], q: dict[str, list[str]]) -> Any:
        n = len(parts)
        if parts == ["exchange", "status"]:
            return {"exchange_active": True, "trading_active": True}
        if parts == ["markets"]:
            return self.markets(q)
        if parts == ["markets", "trades"]:
            return self.trades(q, historical=False)
        if parts == ["markets", "orderbooks"]:
            return self.orderbooks(q)
        if n == 2 and parts[0] == "markets":
            return {"market": self.market(parts[1])}
        if n == 3 and parts[0] == "markets" and parts[2] == "orderbook":
            self.market(parts[1])  # 404 for unknown
            depth = _int(q, "depth", 0, 100, 0)
            return orderbook_fp(self.book_of(parts[1]), depth or None)
        if parts == ["historical", "cutoff"]:
            return dict(self.data.cutoff)
        if parts == ["historical", "trades"]:
            return self.trades(q, historical=True)
        if n == 2 and parts[0] == "events":
            return self.event(parts[1])
        if n == 2 and parts[0] == "series":
            return {"series": self.one_series(parts[1])}
        raise RestError(404, "not_found", "no such endpoint /" + "/".join(parts))

    # -- markets ---------------------------------------------------------------------------

    def market(self, ticker: str) -> dict[str, Any]:
        """One market object with live BBO fields from the current book; 404 if unknown."""
        m = self.data.markets.get(ticker)
        if m is None:
            raise RestError(404, "not_found", f"market {ticker} not found")
        book = self.book_of(ticker)
        if book is None or not m.get("_sim"):
            return {k: v for k, v in m.items() if k != "_sim"}
        out = {k: v for k, v in m.items() if k != "_sim"}
        yb, ybs, ya, yas = book.top()
        out.update({
            "yes_bid_dollars": price_to_str(yb or 0), "yes_bid_size_fp": size_to_str(ybs or 0),
            "yes_ask_dollars": price_to_str(ONE_DOLLAR if ya is None else ya),
            "yes_ask_size_fp": size_to_str(yas or 0),
            "no_bid_dollars": price_to_str(0 if ya is None else ONE_DOLLAR - ya),
            "no_ask_dollars": price_to_str(ONE_DOLLAR - (yb or 0)),
        })
        return out

    def markets(self, q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /markets`` (docs/kalshi-api.md §3.5)."""
        limit = _int(q, "limit", 1, MAX_LIMIT, 100)
        if self.page_cap:
            limit = min(limit, self.page_cap)
        status = _one(q, "status") or None
        if status is not None and status not in STATUS_FILTER:
            raise RestError(400, "invalid_parameters",
                            f"status must be one of {', '.join(STATUS_FILTER)}")
        ev = _one(q, "event_ticker") or None
        se = _one(q, "series_ticker") or None
        tickers_s = _one(q, "tickers")
        tickers = {t for t in tickers_s.split(",") if t} if tickers_s else None
        min_close = _int(q, "min_close_ts")
        max_close = _int(q, "max_close_ts")
        cursor = _one(q, "cursor") or ""
        after = _decode_cursor(cursor, 1)[0] if cursor else None
        keys = sorted(self.data.markets)
        i = bisect.bisect_right(keys, after) if after is not None else 0
        page: list[dict[str, Any]] = []
        more = False
        for t in keys[i:]:
            m = self.data.markets[t]
            if tickers is not None and t not in tickers:
                continue
            ev_t = m.get("event_ticker") or event_of(t)
            if ev is not None and ev_t != ev:
                continue
            if se is not None and (m.get("series_ticker") or series_of(ev_t)) != se:
                continue
            if status is not None and m.get("status") not in STATUS_FILTER[status]:
                continue
            if min_close is not None or max_close is not None:
                try:
                    close_s = iso_to_ns(m.get("close_time")) // 1_000_000_000  # type: ignore[arg-type]
                except DecodeError:
                    continue
                if (min_close is not None and close_s < min_close) or (
                        max_close is not None and close_s > max_close):
                    continue
            if len(page) == limit:
                more = True
                break
            page.append(self.market(t))
        return {"markets": page,
                "cursor": _encode_cursor(page[-1]["ticker"]) if more else ""}

    def orderbooks(self, q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /markets/orderbooks?tickers=A&tickers=B`` (1–100 tickers)."""
        tickers = [t for v in q.get("tickers", []) for t in v.split(",") if t]
        if not 1 <= len(tickers) <= 100:
            raise RestError(400, "invalid_parameters", "tickers: 1 to 100 market tickers")
        out = []
        for t in tickers:
            self.market(t)
            out.append({"ticker": t, **orderbook_fp(self.book_of(t))})
        return {"orderbooks": out}

    def event(self, event_ticker: str) -> dict[str, Any]:
        """``GET /events/{event_ticker}``: ``{"event": ..., "markets": [...]}``; 404 if none."""
        markets = [self.market(t) for t, m in sorted(self.data.markets.items())
                   if (m.get("event_ticker") or event_of(t)) == event_ticker]
        ev = self.data.events.get(event_ticker)
        if ev is None and not markets:
            raise RestError(404, "not_found", f"event {event_ticker} not found")
        if ev is None:
            ev = {"event_ticker": event_ticker, "series_ticker": series_of(event_ticker),
                  "title": event_ticker, "sub_title": "", "mutually_exclusive": False,
                  "collateral_return_type": ""}
        return {"event": ev, "markets": markets}

    def one_series(self, ticker: str) -> dict[str, Any]:
        """``GET /series/{ticker}`` from fixtures or synthesised from the markets; 404 if none."""
        s = self.data.series.get(ticker)
        if s is not None:
            return s
        if any(series_of(m.get("event_ticker") or event_of(t)) == ticker
               for t, m in self.data.markets.items()):
            return {"ticker": ticker, "title": ticker, "frequency": "custom", "category": "",
                    "tags": [], "settlement_sources": [], "fee_type": "quadratic",
                    "fee_multiplier": 1}
        raise RestError(404, "not_found", f"series {ticker} not found")

    # -- trades ----------------------------------------------------------------------------

    def trades(self, q: dict[str, list[str]], *, historical: bool) -> dict[str, Any]:
        """``GET /markets/trades`` (``historical=False``: trades created at or after the
        cutoff ``trades_created_ts``) or ``GET /historical/trades`` (before it), newest first
        (docs/kalshi-api.md §3.7, §3.9)."""
        limit = _int(q, "limit", 1, MAX_LIMIT, 100)
        if self.page_cap:
            limit = min(limit, self.page_cap)
        ticker = _one(q, "ticker") or None
        min_ts = _int(q, "min_ts", 0)
        max_ts = _int(q, "max_ts", 0)
        block = _bool(q, "is_block_trade")
        cursor = _one(q, "cursor") or ""
        try:
            cut_ns = iso_to_ns(self.data.cutoff.get("trades_created_ts", EPOCH_ISO))
        except DecodeError:
            cut_ns = 0
        recs = self.data.trades
        hi = len(recs)
        if cursor:
            ns, tid = _decode_cursor(cursor, 2)
            if not isinstance(ns, int) or not isinstance(tid, str):
                raise RestError(400, "invalid_cursor", "cursor is not valid for this endpoint")
            hi = bisect.bisect_left(recs, (ns, tid), key=lambda r: r.key)
        page: list[dict[str, Any]] = []
        more = False
        for j in range(hi - 1, -1, -1):
            r = recs[j]
            if historical != (r.created_ns < cut_ns):
                continue
            o = r.obj
            if ticker is not None and o.get("ticker") != ticker:
                continue
            s = r.created_ns // 1_000_000_000
            if (min_ts is not None and s < min_ts) or (max_ts is not None and s > max_ts):
                continue
            if block is not None and bool(o.get("is_block_trade")) != block:
                continue
            if len(page) == limit:
                more = True
                break
            page.append(r)
        return {"trades": [r.obj for r in page],
                "cursor": _encode_cursor(*page[-1].key) if more else ""}


def trade_from_ws(msg: dict[str, Any]) -> dict[str, Any] | None:
    """A WebSocket ``trade`` msg (docs/kalshi-api.md §7.7) as a REST trade object (§3.7), or
    ``None`` when it lacks an id, a ticker or a time. ``created_time`` is built from ``ts_ms``
    (else ``ts`` seconds) as RFC3339 UTC with microseconds."""
    from datetime import datetime, timezone

    tid = msg.get("trade_id")
    ticker = msg.get("market_ticker")
    ts_ms = msg.get("ts_ms")
    if type(ts_ms) is not int:
        ts = msg.get("ts")
        ts_ms = ts * 1000 if type(ts) is int else None
    if not isinstance(tid, str) or not isinstance(ticker, str) or ts_ms is None:
        return None
    created = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)
    out: dict[str, Any] = {
        "trade_id": tid, "ticker": ticker,
        "count_fp": msg.get("count_fp") or (f"{msg['count']}.00" if type(msg.get("count")) is int else None),
        "yes_price_dollars": msg.get("yes_price_dollars"),
        "no_price_dollars": msg.get("no_price_dollars"),
        "created_time": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "is_block_trade": bool(msg.get("is_block_trade", False)),
    }
    for k in ("taker_side", "taker_outcome_side", "taker_book_side"):
        if k in msg:
            out[k] = msg[k]
    if "taker_outcome_side" not in out and msg.get("taker_side") in ("yes", "no"):
        out["taker_outcome_side"] = msg["taker_side"]
        out["taker_book_side"] = "bid" if msg["taker_side"] == "yes" else "ask"
    for k in ("yes_price_dollars", "no_price_dollars"):
        if out[k] is None:
            cents = msg.get(k.replace("_dollars", ""))
            out[k] = price_to_str(cents * 10_000) if type(cents) is int else None
    return out
