"""Running a strategy on a network venue, paper (``sim``) or live (``kalshi``)
(issue 14 §5-§6; docs/trading.md "Paper and live").

:func:`venue_config` builds the :class:`~.venue_rest.RestVenueConfig` (URLs, key, markets);
:func:`run_live` runs a strategy on it until the venue ends, :meth:`LiveRun.stop` is called,
or Ctrl-C / SIGTERM: then every open order is canceled, the answers are awaited and a report
(:func:`~.report.build_report`, ``"interrupted": true``) is returned. A status line
(positions, open orders, PnL, risk state) is written to ``status`` every ``status_s``.
"""

from __future__ import annotations

import signal
import time
from typing import Callable, Optional, TextIO
from urllib.parse import urlsplit, urlunsplit

from kalshi_platform.trading.node import TradingNode
from kalshi_platform.trading.report import Recorder, build_report, money_str
from kalshi_platform.trading.risk_config import RiskConfig
from kalshi_platform.trading.strategy import Strategy
from kalshi_platform.trading.venue_rest import RestVenue, RestVenueConfig, kalshi_endpoints

#: default REST URL of a local ``kalshi-platform sim`` (its default port)
SIM_REST_URL = "http://127.0.0.1:8765/trade-api/v2"
PROD_CONFIRM_FLAG = "--i-understand-this-is-real-money"


class LiveConfigError(ValueError):
    """Bad or unsafe venue options (one-line message)."""


def ws_url_of(rest_url: str) -> str:
    """``http(s)://H/trade-api/v2`` → ``ws(s)://H/trade-api/ws/v2`` (Kalshi's and the sim's
    layout, docs/kalshi-api.md §1)."""
    u = urlsplit(rest_url)
    scheme = {"http": "ws", "https": "wss"}.get(u.scheme)
    if scheme is None or not u.netloc:
        raise LiveConfigError(f"--base-url must be http(s)://host/..., got {rest_url!r}")
    path = u.path.rstrip("/")
    path = path[:-len("/v2")] + "/ws/v2" if path.endswith("/trade-api/v2") else path + "/ws/v2"
    return urlunsplit((scheme, u.netloc, path, "", ""))


def endpoints(venue: str, env: str, confirm_prod: bool, base_url: Optional[str],
              ws_url: Optional[str]) -> tuple[str, str]:
    """``(rest_url, ws_url)`` for ``venue`` ``sim`` | ``kalshi``. Kalshi is ``demo`` unless
    ``env="prod"`` *and* ``confirm_prod``; raises :class:`LiveConfigError`."""
    if venue == "sim":
        rest = base_url or SIM_REST_URL
    elif venue == "kalshi":
        if env not in ("demo", "prod"):
            raise LiveConfigError(f"--env must be demo or prod, got {env!r}")
        if env == "prod" and not confirm_prod:
            raise LiveConfigError(f"--env prod trades real money: add {PROD_CONFIRM_FLAG}")
        rest_k, ws_k = kalshi_endpoints(env)
        rest = base_url or rest_k
        if ws_url is None and base_url is None:
            ws_url = ws_k
    else:
        raise LiveConfigError(f"--venue must be sim or kalshi, got {venue!r}")
    return rest, ws_url or ws_url_of(rest)


def resolve_markets(rest_url: str, markets: list[str], event: Optional[str],
                    series: Optional[str], venue: str, timeout_s: float = 10.0) -> list[str]:
    """The tickers to trade: ``markets`` as given, else the open markets of ``event`` or
    ``series`` (``GET /markets``, all pages); on the sim with none of them, every market
    it lists. Raises :class:`LiveConfigError` (none found) or ConnectionError."""
    import httpx

    if markets:
        return sorted(set(markets))
    if event is None and series is None and venue != "sim":
        raise LiveConfigError("give --markets, --event or --series")
    params: dict = {"limit": 1000}
    if event:
        params["event_ticker"] = event
    if series:
        params["series_ticker"] = series
    if venue != "sim":
        params["status"] = "open"
    out: list[str] = []
    try:
        with httpx.Client(base_url=rest_url, timeout=timeout_s) as c:
            while True:
                r = c.get("/markets", params=params)
                if r.status_code != 200:
                    raise ConnectionError(f"GET /markets: HTTP {r.status_code}")
                body = r.json()
                out += [m["ticker"] for m in body.get("markets") or []]
                if not body.get("cursor"):
                    break
                params["cursor"] = body["cursor"]
    except httpx.HTTPError as e:
        raise ConnectionError(f"cannot reach {rest_url}: {e or type(e).__name__}") from None
    if not out:
        raise LiveConfigError("no markets match (--markets, --event or --series)")
    return sorted(set(out))


def status_line(node: TradingNode) -> str:
    """``positions … | open orders N | PnL $net (fees $f) | state`` (one line)."""
    pos = {t: p.pos for t, p in node.portfolio.positions.items() if p.pos}
    shown = ", ".join(f"{t} {v / 100:+g}" for t, v in sorted(pos.items())[:3])
    more = f" +{len(pos) - 3} more" if len(pos) > 3 else ""
    pnl = node.pnl()
    state = node.risk.state.value + (f" ({node.kill.reason})" if node.kill.reason else "")
    return (f"positions {len(pos)}{': ' + shown + more if pos else ''} | open orders "
            f"{len(node.oms.open_orders())} | fills {len(node.fills)} | PnL "
            f"${money_str(pnl['net'])} (fees ${money_str(pnl['fees'])}) | {state}")


class LiveRun:
    """One strategy on one :class:`RestVenue` (see the module docstring)."""

    def __init__(self, strategy: Strategy, cfg: RestVenueConfig, risk: RiskConfig | None = None,
                 *, seed: int = 0, status: Optional[TextIO] = None, status_s: float = 1.0,
                 prefix: str = "kp") -> None:
        self.venue = RestVenue(cfg, before_close=self._close)
        self.recorder = Recorder()
        self.node = TradingNode(strategy, self.venue, risk, seed=seed, recorder=self.recorder,
                                prefix=prefix)
        self.status, self.status_s = status, status_s
        self.interrupted = False

    def _close(self) -> None:
        self.node.stop(cancel_all=True)

    def _tick(self) -> None:
        if self.status is not None:
            self.status.write("\r\x1b[2K" + status_line(self.node))
            self.status.flush()
        self.venue.call_at(time.time_ns() + int(self.status_s * 1e9), self._tick)

    def interrupt(self, *_: object) -> None:
        """Ctrl-C / SIGTERM: cancel all, drain, stop (safe from a signal handler)."""
        self.interrupted = True
        self.venue.stop()

    def run(self, handle_signals: bool = True) -> dict:
        """Start, run until stopped, return the report dict."""
        restore = _install(self.interrupt) if handle_signals else (lambda: None)
        t0 = time.perf_counter()
        try:
            self.node.start()
            self.venue.call_at(time.time_ns(), self._tick)
            self.venue.run()
        finally:
            restore()
            if self.status is not None:
                self.status.write("\n")
        meta = {"strategy": type(self.node.strategy).__name__, "venue": self.venue.name,
                "rest_url": self.venue.cfg.rest_url, "markets": len(self.venue.cfg.tickers),
                "events": self.venue.events, "interrupted": self.interrupted,
                "reconnects": self.venue.reconnects}
        rep = build_report(self.node, self.recorder, meta)
        rep["elapsed_s"] = round(time.perf_counter() - t0, 3)
        return rep


def _install(fn: Callable) -> Callable[[], None]:
    """SIGINT and SIGTERM call ``fn``; returns a function restoring the old handlers (main
    thread only; elsewhere a no-op)."""
    old = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            old[s] = signal.signal(s, fn)
    except ValueError:
        return lambda: None
    return lambda: [signal.signal(s, h) for s, h in old.items()]
