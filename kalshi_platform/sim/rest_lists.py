"""The sim's REST list endpoints: markets, events, series and trades, with their filters and
cursor pagination (docs/kalshi-api.md §3.1, §3.3–§3.5, §3.7, §3.9).

Used through :class:`~kalshi_platform.sim.rest_market.RestApi` (``api``), which serves single
objects and books. Filters Kalshi documents are implemented; combinations Kalshi documents as
incompatible are refused with 400 saying which, never ignored.
"""

from __future__ import annotations

import bisect
from typing import Any

from kalshi_platform.fixedpoint import FixedPointError, parse_size, size_to_str
from kalshi_platform.ingestion.messages import DecodeError, iso_to_ns
from kalshi_platform.sim.market_data import (
    EPOCH_ISO, complete_event, complete_series, event_of, series_of)
from kalshi_platform.sim.rest_market import (
    MAX_LIMIT, STATUS_FILTER, TIME_FILTERS, RestError, bad, boolean, csv, decode_cursor,
    encode_cursor, in_bounds, integer, one, time_bounds)

EVENT_STATUS = ("unopened", "open", "closed", "settled")


class Listings:
    """List endpoints over ``api.data`` (see the module doc)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.data = api.data

    def _limit(self, q: dict[str, list[str]], hi: int, default: int) -> int:
        limit = integer(q, "limit", 1, hi, default)
        assert limit is not None
        return min(limit, self.api.page_cap) if self.api.page_cap else limit

    # -- markets (§3.5, §3.9) --------------------------------------------------------------

    def _market_filters(self, q: dict[str, list[str]], historical: bool) -> dict[str, Any]:
        status = one(q, "status")
        if status is not None and (historical or status not in STATUS_FILTER):
            raise bad("status must be one of " + ", ".join(STATUS_FILTER) if not historical
                      else "status is not a filter of /historical/markets")
        mve = one(q, "mve_filter")
        if mve is not None and mve not in (("exclude",) if historical else ("only", "exclude")):
            raise bad("mve_filter must be 'only' or 'exclude'" if not historical
                      else "mve_filter must be 'exclude'")
        f: dict[str, Any] = {"status": status, "mve": mve, "event": one(q, "event_ticker"),
                             "series": one(q, "series_ticker"), "tickers": csv(q, "tickers"),
                             "times": {}}
        if historical:
            given = [k for k in ("event", "series", "tickers") if f[k]]
            if len(given) > 1:
                raise bad("tickers, event_ticker and series_ticker are mutually exclusive here")
            return f
        for name, (fld, statuses) in TIME_FILTERS.items():
            lo, hi = time_bounds(q, name)
            if lo is None and hi is None:
                continue
            if status not in statuses:
                raise bad(f"min/max_{name}_ts cannot be combined with status={status}")
            f["times"][fld] = (lo, hi)
        if "updated_time" in f["times"]:
            others = [k for k in ("status", "event", "tickers") if f[k]] + [
                k for k in f["times"] if k != "updated_time"]
            if others:
                raise bad("min/max_updated_ts can only be combined with mve_filter=exclude "
                          "(and series_ticker)")
            if f["series"] and mve != "exclude":
                raise bad("min/max_updated_ts with series_ticker requires mve_filter=exclude")
        return f

    def _market_matches(self, t: str, m: dict[str, Any], f: dict[str, Any]) -> bool:
        if f["tickers"] is not None and t not in f["tickers"]:
            return False
        ev_t = m.get("event_ticker") or event_of(t)
        if f["event"] is not None and ev_t != f["event"]:
            return False
        if f["series"] is not None and (m.get("series_ticker") or series_of(ev_t)) != f["series"]:
            return False
        if f["status"] is not None and m.get("status") not in STATUS_FILTER[f["status"]]:
            return False
        is_mve = bool(m.get("mve_collection_ticker"))
        if (f["mve"] == "only" and not is_mve) or (f["mve"] == "exclude" and is_mve):
            return False
        return all(in_bounds(m.get(fld) or (m.get("created_time") if fld == "updated_time"
                                            else None), lo, hi)
                   for fld, (lo, hi) in f["times"].items())

    def markets(self, q: dict[str, list[str]], *, historical: bool) -> dict[str, Any]:
        """``GET /markets`` (markets not settled before the cutoff) or
        ``GET /historical/markets`` (those settled before it); keyset cursor on the ticker."""
        limit = self._limit(q, MAX_LIMIT, 100)
        f = self._market_filters(q, historical)
        cursor = one(q, "cursor")
        after = decode_cursor(cursor, 1)[0] if cursor else None
        keys = sorted(self.data.markets)
        i = bisect.bisect_right(keys, after) if after is not None else 0
        page: list[dict[str, Any]] = []
        more = False
        for t in keys[i:]:
            m = self.data.markets[t]
            if self.data.is_historical(m) != historical or not self._market_matches(t, m, f):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(self.api.market(t))
        return {"markets": page, "cursor": encode_cursor(page[-1]["ticker"]) if more else ""}

    # -- events (§3.4) ---------------------------------------------------------------------

    def _event_tickers(self) -> dict[str, list[str]]:
        """event ticker → its market tickers (sorted), fixture events included."""
        out: dict[str, list[str]] = {e: [] for e in self.data.events}
        for t, m in sorted(self.data.markets.items()):
            out.setdefault(m.get("event_ticker") or event_of(t), []).append(t)
        return out

    def _event_obj(self, et: str, tickers: list[str], nested: bool) -> dict[str, Any]:
        ev = self.data.events.get(et) or {"event_ticker": et, "series_ticker": series_of(et),
                                          "title": et}
        out = complete_event(ev)
        if nested:
            out["markets"] = [self.api.market(t) for t in tickers]
        return out

    def event(self, et: str, q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /events/{e}``: ``{"event", "markets"}`` (markets settled before the cutoff
        omitted); 404 if neither a fixture event nor a market names it."""
        tickers = self._event_tickers().get(et)
        if tickers is None:
            raise RestError(404, "not_found", f"event {et} not found")
        live = [t for t in tickers if not self.data.is_historical(self.data.markets[t])]
        nested = bool(boolean(q, "with_nested_markets"))
        return {"event": self._event_obj(et, live, nested),
                "markets": [self.api.market(t) for t in live]}

    def event_metadata(self, et: str) -> dict[str, Any]:
        """``GET /events/{e}/metadata``: no images (``""``), one market detail per market,
        the event's settlement sources; 404 for an unknown event."""
        tickers = self._event_tickers().get(et)
        if tickers is None:
            raise RestError(404, "not_found", f"event {et} not found")
        ev = self._event_obj(et, [], False)
        return {"image_url": "", "market_details": [
            {"market_ticker": t, "image_url": "", "color_code": ""} for t in tickers],
            "settlement_sources": ev.get("settlement_sources") or []}

    def events(self, q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /events``: keyset cursor on the event ticker; an event matches ``status`` /
        ``min_close_ts`` / ``min_updated_ts`` when one of its markets does."""
        limit = self._limit(q, 200, 200)
        status = one(q, "status")
        if status is not None and status not in EVENT_STATUS:
            raise bad("status must be one of " + ", ".join(EVENT_STATUS))
        series, wanted = one(q, "series_ticker"), csv(q, "tickers")
        min_close, min_upd = integer(q, "min_close_ts"), integer(q, "min_updated_ts")
        nested = bool(boolean(q, "with_nested_markets"))
        cursor = one(q, "cursor")
        after = decode_cursor(cursor, 1)[0] if cursor else None
        page, more = [], False
        for et, tickers in sorted(self._event_tickers().items()):
            if after is not None and et <= after:
                continue
            ev = complete_event(self.data.events.get(et) or {"event_ticker": et})
            if (series is not None and ev["series_ticker"] != series) or (
                    wanted is not None and et not in wanted):
                continue
            ms = [self.data.markets[t] for t in tickers]
            if ms and all(m.get("mve_collection_ticker") for m in ms):
                continue  # multivariate events are not listed here (§3.4)
            if status is not None and not any(m.get("status") in STATUS_FILTER[status]
                                              for m in ms):
                continue
            if min_close is not None and not any(in_bounds(m.get("close_time"), min_close, None)
                                                 for m in ms):
                continue
            if min_upd is not None and not (
                    in_bounds(ev.get("last_updated_ts"), min_upd, None)
                    or any(in_bounds(m.get("updated_time"), min_upd, None) for m in ms)):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(self._event_obj(et, tickers, nested))
        out: dict[str, Any] = {"events": page,
                               "cursor": encode_cursor(page[-1]["event_ticker"]) if more else ""}
        if boolean(q, "with_milestones"):
            out["milestones"] = []  # the sim has no milestones
        return out

    # -- series (§3.3) ---------------------------------------------------------------------

    def _series_tickers(self) -> set[str]:
        return set(self.data.series) | {
            series_of(m.get("event_ticker") or event_of(t)) for t, m in self.data.markets.items()}

    def one_series(self, ticker: str, include_volume: bool | None = None) -> dict[str, Any]:
        """One complete series object (fixture or made up from its markets); 404 if none."""
        if ticker not in self._series_tickers():
            raise RestError(404, "not_found", f"series {ticker} not found")
        s = complete_series(self.data.series.get(ticker) or {
            "ticker": ticker, "tags": [], "settlement_sources": []})
        if include_volume:
            s["volume_fp"] = size_to_str(self._series_volume(ticker))
        return s

    def _series_volume(self, ticker: str) -> int:
        total = 0
        for t, m in self.data.markets.items():
            if series_of(m.get("event_ticker") or event_of(t)) == ticker:
                try:
                    total += parse_size(m.get("volume_fp") or "0")
                except FixedPointError:
                    pass
        return total

    def series_list(self, q: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /series`` (no pagination): ``category`` matches any entry of ``categories``,
        ``tags`` (comma-separated) any tag, ``min_updated_ts`` the ``last_updated_ts``."""
        category, tags = one(q, "category"), csv(q, "tags")
        min_upd = integer(q, "min_updated_ts")
        vol = boolean(q, "include_volume")
        out = []
        for t in sorted(self._series_tickers()):
            s = self.one_series(t, vol)
            if category is not None and category not in s["categories"]:
                continue
            if tags is not None and not set(tags) & set(s.get("tags") or ()):
                continue
            if min_upd is not None and not in_bounds(s.get("last_updated_ts"), min_upd, None):
                continue
            out.append(s)
        return {"series": out}

    # -- trades (§3.7, §3.9) ---------------------------------------------------------------

    def trades(self, q: dict[str, list[str]], *, historical: bool) -> dict[str, Any]:
        """``GET /markets/trades`` (trades created at or after the cutoff
        ``trades_created_ts``) or ``GET /historical/trades`` (before it), newest first."""
        limit = self._limit(q, MAX_LIMIT, 100)
        ticker = one(q, "ticker")
        min_ts, max_ts = integer(q, "min_ts", 0), integer(q, "max_ts", 0)
        block = boolean(q, "is_block_trade")
        cursor = one(q, "cursor")
        try:
            cut_ns = iso_to_ns(self.data.cutoff.get("trades_created_ts", EPOCH_ISO))
        except DecodeError:
            cut_ns = 0
        recs = self.data.trades
        hi = len(recs)
        if cursor:
            ns, tid = decode_cursor(cursor, 2)
            if not isinstance(ns, int) or not isinstance(tid, str):
                raise RestError(400, "invalid_cursor", "cursor is not valid for this endpoint")
            hi = bisect.bisect_left(recs, (ns, tid), key=lambda r: r.key)
        page: list[Any] = []
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
                "cursor": encode_cursor(*page[-1].key) if more else ""}

