"""Test doubles for the REST client, the demo and the backfill: a tiny Kalshi-like REST service
fed with real response bodies, reachable through ``httpx.MockTransport`` or a real loopback
HTTP server (a thread running ``http.server`` on 127.0.0.1), plus a fake clock.

:class:`FakeKalshi` is deliberately small and independent of ``kalshi_platform``: it serves the
wire objects it is given, with Kalshi's cursor pagination (kalshi-api.md §3.1), the
historical/live split of trades at a cutoff (§3.9), newest-first trades, 404 bodies in the
``{"error": {...}}`` envelope (§3.10) and fault injection (statuses for the next N requests,
or every k-th request). It logs every request with its arrival time.

Real bodies: ``data/rest`` (bundled copies, see ``data/PROVENANCE.md``) and the wider set in
``../shared/data/real/kalshi/rest`` (tests needing it skip when absent).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from conftest import REPO_ROOT, SHARED_KALSHI, require_shared

PREFIX = "/trade-api/v2"
REST_BUNDLED = REPO_ROOT / "data" / "rest"
REST_SHARED = SHARED_KALSHI / "rest"


def bundled(rel: str) -> Path:
    """A bundled REST fixture (always present in the repo)."""
    p = REST_BUNDLED / rel
    assert p.is_file(), f"bundled fixture {p} missing"
    return p


def shared(rel: str) -> Path:
    """A REST fixture from ../shared; skips the test when the shared corpus is absent."""
    return require_shared(REST_SHARED / rel)


def load(path: Path) -> Any:
    return json.loads(path.read_bytes())


def manta_trades() -> list[dict]:
    """The 55 real prod trades of manta_prod (two consecutive pages and a window's last page)."""
    out: list[dict] = []
    for n in ("trades_page1.json", "trades_page2.json", "trades_window_last.json"):
        out.extend(load(bundled(f"manta_prod/{n}"))["trades"])
    return out


def iso_ns(text: str) -> int:
    """RFC3339 → ns, with the standard library only (independent of the platform's parser)."""
    head, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0")[:9])


class FakeClock:
    """A monotonic clock with an ``async sleep`` that advances it instantly (exact as long as
    one task sleeps at a time, which the token bucket's lock guarantees)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        import asyncio

        self.sleeps.append(s)
        self.now += max(0.0, s)
        await asyncio.sleep(0)


def _status_filter(status: str) -> set[str]:
    # kalshi-api.md §3.5: filter value → market statuses
    return {"unopened": {"initialized"}, "open": {"active"}, "paused": {"inactive"},
            "closed": {"closed"}, "settled": {"finalized", "determined"}}.get(status, {status})


class FakeKalshi:
    """State and request handler of the fake service (thread-safe)."""

    def __init__(self, *, trades: list[dict] | None = None, cutoff: str | None = None,
                 markets: list[dict] | None = None, historical_markets: list[dict] | None = None,
                 series: dict[str, dict] | None = None, orderbooks: dict[str, Any] | None = None,
                 events: dict[str, dict] | None = None, page_cap: int = 1000,
                 ts_inclusive: bool = False) -> None:
        self.trades = sorted(trades or [], key=lambda t: iso_ns(t["created_time"]), reverse=True)
        self.cutoff = cutoff or "2026-06-25T00:00:00Z"
        self.markets = markets or []
        self.historical_markets = historical_markets or []
        self.series = series or {}
        self.orderbooks = orderbooks or {}
        self.events = events or {}
        self.page_cap = page_cap
        self.ts_inclusive = ts_inclusive
        self.fail_next: list[int] = []       # statuses to answer for the next requests
        self.fail_every = 0                  # every k-th request answers 429 (0 = never)
        self.routes: dict[str, Callable[[dict], tuple[int, Any]]] = {}  # exact path overrides
        self.log: list[dict] = []
        self._lock = threading.Lock()
        self._n = 0

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _cursor(offset: int, filters: dict) -> str:
        key = hashlib.sha1(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:8]
        return base64.urlsafe_b64encode(f"{offset}:{key}".encode()).decode().rstrip("=")

    def _page(self, items: list, q: dict, key: str, default_limit: int = 100) -> tuple[int, Any]:
        filters = {k: v for k, v in q.items() if k != "cursor"}
        limit = int(q.get("limit", default_limit))
        if not 1 <= limit <= 1000:
            return 400, {"error": {"code": "invalid_parameters", "message": "bad limit"}}
        offset = 0
        if q.get("cursor"):
            raw = q["cursor"] + "=" * (-len(q["cursor"]) % 4)
            off, _, k = base64.urlsafe_b64decode(raw).decode().partition(":")
            if self._cursor(int(off), filters) != q["cursor"]:
                return 400, {"error": {"code": "invalid_cursor", "message": "filters changed"}}
            offset = int(off) if k else 0
        n = min(limit, self.page_cap)
        page = items[offset:offset + n]
        nxt = offset + n
        return 200, {key: page, "cursor": self._cursor(nxt, filters) if nxt < len(items) else ""}

    def _trades(self, q: dict, historical: bool) -> tuple[int, Any]:
        cut = iso_ns(self.cutoff)
        lo = int(q["min_ts"]) * 10**9 if "min_ts" in q else None
        hi = int(q["max_ts"]) * 10**9 if "max_ts" in q else None
        out = []
        for t in self.trades:
            ns = iso_ns(t["created_time"])
            if (ns < cut) != historical:
                continue
            if q.get("ticker") and t["ticker"] != q["ticker"]:
                continue
            if self.ts_inclusive:
                if (lo is not None and ns < lo) or (hi is not None and ns > hi):
                    continue
            else:  # strictly "after" min_ts and "before" max_ts (the harshest reading)
                if (lo is not None and ns <= lo) or (hi is not None and ns >= hi):
                    continue
            out.append(t)
        return self._page(out, q, "trades")

    def _markets(self, pool: list[dict], q: dict) -> tuple[int, Any]:
        out = pool
        if q.get("series_ticker"):
            out = [m for m in out if m["event_ticker"].split("-")[0] == q["series_ticker"]]
        if q.get("event_ticker"):
            out = [m for m in out if m["event_ticker"] == q["event_ticker"]]
        if q.get("tickers"):
            want = set(q["tickers"].split(","))
            out = [m for m in out if m["ticker"] in want]
        if q.get("status"):
            st = _status_filter(q["status"])
            out = [m for m in out if m.get("status") in st]
        return self._page(out, q, "markets")

    @staticmethod
    def _404(what: str) -> tuple[int, Any]:
        return 404, {"error": {"code": "not_found", "message": f"{what} not found"}}

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
        parts = urlsplit(target)
        path = unquote(parts.path)
        q = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self._n += 1
            n = self._n
            self.log.append({"t": time.monotonic(), "path": path, "query": q,
                             "headers": dict(headers), "n": n})
            fail = self.fail_next.pop(0) if self.fail_next else None
            if fail is None and self.fail_every and n % self.fail_every == 0:
                fail = 429
        if fail is not None:
            body = {"error": "too many requests"} if fail == 429 else \
                {"error": {"code": "internal", "message": "injected"}}
            return fail, json.dumps(body).encode()
        status, body = self._route(method, path, q)
        return status, (body if isinstance(body, bytes) else json.dumps(body).encode())

    def _route(self, method: str, path: str, q: dict) -> tuple[int, Any]:
        if method != "GET":
            return 405, {"error": {"code": "method_not_allowed", "message": method}}
        if path in self.routes:
            return self.routes[path](q)
        if not path.startswith(PREFIX + "/"):
            return self._404(path)
        seg = path[len(PREFIX) + 1:].split("/")
        match seg:
            case ["historical", "cutoff"]:
                return 200, {"market_positions_last_updated_ts": self.cutoff,
                             "market_settled_ts": self.cutoff, "orders_updated_ts": self.cutoff,
                             "trades_created_ts": self.cutoff}
            case ["markets", "trades"]:
                return self._trades(q, historical=False)
            case ["historical", "trades"]:
                return self._trades(q, historical=True)
            case ["markets"]:
                return self._markets(self.markets, q)
            case ["historical", "markets"]:
                return self._markets(self.historical_markets, q)
            case ["markets", ticker]:
                for m in self.markets:
                    if m["ticker"] == ticker:
                        return 200, {"market": m}
                return self._404(f"market {ticker}")
            case ["historical", "markets", ticker]:
                for m in self.historical_markets:
                    if m["ticker"] == ticker:
                        return 200, {"market": m}
                return self._404(f"market {ticker}")
            case ["markets", ticker, "orderbook"]:
                if ticker in self.orderbooks:
                    return 200, self.orderbooks[ticker]
                return self._404(f"market {ticker}")
            case ["series", s]:
                if s in self.series:
                    return 200, {"series": self.series[s]}
                return self._404(f"series {s}")
            case ["events", e]:
                if e in self.events:
                    return 200, self.events[e]
                return self._404(f"event {e}")
        return self._404(path)

    # -- adapters ----------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """An ``httpx.MockTransport`` answering from this fake."""

        def handler(request: httpx.Request) -> httpx.Response:
            target = request.url.raw_path.decode()
            status, body = self.handle(request.method, target, dict(request.headers))
            return httpx.Response(status, content=body,
                                  headers={"Content-Type": "application/json"})

        return httpx.MockTransport(handler)

    def request_times(self, path_suffix: str = "") -> list[float]:
        return [r["t"] for r in self.log if r["path"].endswith(path_suffix)]


@contextmanager
def serve(fake: FakeKalshi) -> Iterator[str]:
    """Run ``fake`` on a real loopback HTTP server; yields its base URL (``…/trade-api/v2``)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def do_GET(self) -> None:  # noqa: N802
            status, body = fake.handle("GET", self.path, dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}{PREFIX}"
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)


def unused_port() -> int:
    """A loopback TCP port with nothing listening (bound then released)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def max_burst_excess(times: list[float], rate_req_s: float, burst: float) -> float:
    """max over i ≤ j of (j − i + 1) − (burst + rate·(t_j − t_i)): ≤ 0 when the request times
    respect a token bucket of ``burst`` requests refilled at ``rate_req_s`` requests/s."""
    ts = sorted(times)
    worst = float("-inf")
    for i in range(len(ts)):
        for j in range(i, len(ts)):
            worst = max(worst, (j - i + 1) - (burst + rate_req_s * (ts[j] - ts[i])))
    return worst
