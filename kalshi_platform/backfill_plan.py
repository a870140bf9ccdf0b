"""Backfill inputs and planning: the target, the range and window parsing, the run id, the
markets to fetch and the windows per market, split at the historical cutoff
(docs/kalshi-api.md §3.7, §3.9, §6; steps 1–3 of :mod:`kalshi_platform.backfill`).

Units: times are ns since the epoch (UTC) unless named ``_s``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

from kalshi_platform.api.models import Market
from kalshi_platform.api.rest import NotFoundError, RestClient

log = logging.getLogger("kalshi_platform.backfill")  # one logger for the whole backfill

NS = 1_000_000_000
DAY_NS = 86_400 * NS
SPAN_MARGIN_NS = DAY_NS        # slack around a market's open..close when clipping windows
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class BackfillError(ValueError):
    """A backfill cannot start or continue for a reason the user can fix (unknown market,
    no markets in the event/series, a checkpoint from another run, a bad date). One line."""


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What to backfill: explicit market ``tickers``, or every market of one ``event`` or one
    ``series`` (exactly one of the three)."""

    tickers: tuple[str, ...] = ()
    event: str | None = None
    series: str | None = None

    def __post_init__(self) -> None:
        given = sum(bool(x) for x in (self.tickers, self.event, self.series))
        if given != 1:
            raise BackfillError("give exactly one of --ticker, --event, --series")

    def describe(self) -> str:
        if self.tickers:
            return "ticker " + ",".join(self.tickers)
        return f"event {self.event}" if self.event else f"series {self.series}"


def parse_time(text: str, *, end: bool = False) -> int:
    """``YYYY-MM-DD`` (UTC midnight) or an RFC3339 time (``2026-08-24T15:00:00Z``; no zone =
    UTC) → ns since the epoch. With ``end=True`` a bare date means *through* that day (the
    next midnight), so ``--start 2026-08-24 --end 2026-08-24`` is one whole day; an explicit
    time is used as given (exclusive end). Raises :class:`BackfillError`."""
    s = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            dt = datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            ns = int(dt.timestamp()) * NS
            return ns + DAY_NS if end else ns
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    except ValueError:
        raise BackfillError(f"{text!r} is not a date (YYYY-MM-DD) or RFC3339 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def parse_window(text: str) -> int:
    """``"30m"``, ``"6h"``, ``"1d"``, ``"3600s"`` → seconds (1 minute … 31 days).
    Raises :class:`BackfillError`."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text or "")
    if not m:
        raise BackfillError(f"window {text!r}: use a number and a unit s, m, h or d (e.g. 1d)")
    secs = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if not 60 <= secs <= 31 * 86400:
        raise BackfillError(f"window {text!r} must be between 1 minute and 31 days")
    return secs


def run_id(target: Target, start_ns: int, end_ns: int, window_s: int) -> str:
    """12 hex digits naming a backfill (its default checkpoint and Parquet writer id)."""
    key = json.dumps([list(target.tickers), target.event, target.series, start_ns, end_ns,
                      window_s])
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, timezone.utc).strftime("%Y-%m-%d")


def _iso(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // NS, timezone.utc)
    frac = ns % NS
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


# -- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One request chain: trades of ``ticker`` with ``start_ns ≤ created < end_ns`` from
    ``tier`` (``"historical"`` → ``/historical/trades``, ``"live"`` → ``/markets/trades``)."""

    ticker: str
    start_ns: int
    end_ns: int
    tier: str

    @property
    def key(self) -> str:
        return f"{self.ticker}|{self.start_ns}|{self.end_ns}|{self.tier}"


async def resolve_markets(client: RestClient, target: Target) -> list[Market | str]:
    """The markets of ``target`` as :class:`Market` objects, from the live tier and the
    historical tier (markets settled before the cutoff). An explicit ticker with no market
    object in either tier but with trades on the tape is kept as a bare ticker (logged; its
    windows are not clipped to open..close). Raises :class:`BackfillError` for a ticker that
    is unknown everywhere, or an event/series with no markets in either tier."""
    if target.tickers:
        out: list[Market | str] = []
        for t in target.tickers:
            try:
                out.append(await client.get_market(t))
                continue
            except NotFoundError:
                pass
            try:
                out.append(await client.get_historical_market(t))
                continue
            except NotFoundError:
                pass
            if not await _has_trades(client, t):
                raise BackfillError(f"unknown market {t!r} (not in /markets, "
                                    "/historical/markets or the trade tape)")
            log.warning("no market object for %s, but it has trades: backfilling it over the "
                        "whole range", t)
            out.append(t)
        return out
    kw = {"event_ticker": target.event} if target.event else {"series_ticker": target.series}
    found: dict[str, Market] = {}
    async for m in client.iter_markets(**kw):
        found.setdefault(m.ticker, m)
    try:
        async for m in client.iter_historical_markets(**kw):
            found.setdefault(m.ticker, m)
    except NotFoundError:  # a server without the historical tier (e.g. an older local sim)
        log.warning("%s does not serve /historical/markets: markets settled before the "
                    "cutoff are not included", client.base_url)
    if not found:
        raise BackfillError(f"no markets found for {target.describe()}")
    return [found[t] for t in sorted(found)]


async def _has_trades(client: RestClient, ticker: str) -> bool:
    for path in ("/markets/trades", "/historical/trades"):
        try:
            body = await client.get_json(path, {"ticker": ticker, "limit": 1})
        except NotFoundError:
            continue
        if isinstance(body, dict) and body.get("trades"):
            return True
    return False


def plan_windows(markets: Iterable[Market | str], start_ns: int, end_ns: int, cutoff_ns: int,
                 window_s: int) -> list[Window]:
    """Windows covering ``[start_ns, end_ns)`` per market (see :mod:`kalshi_platform.backfill`,
    step 3), ordered by ticker then time. A market whose open..close (± 1 day) misses the
    range gets none."""
    step = window_s * NS
    out: list[Window] = []
    for m in markets:
        ticker = m if isinstance(m, str) else m.ticker
        lo, hi = start_ns, end_ns
        if isinstance(m, Market):
            if m.open_ns is not None:
                lo = max(lo, m.open_ns - SPAN_MARGIN_NS)
            if m.close_ns is not None:
                hi = min(hi, m.close_ns + SPAN_MARGIN_NS)
        t = lo
        while t < hi:
            nxt = min(hi, (t // step + 1) * step)
            if t < cutoff_ns < nxt:
                out.append(Window(ticker, t, cutoff_ns, "historical"))
                out.append(Window(ticker, cutoff_ns, nxt, "live"))
            else:
                out.append(Window(ticker, t, nxt, "historical" if t < cutoff_ns else "live"))
            t = nxt
    return out
