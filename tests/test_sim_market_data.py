"""The sim's REST market data beyond the basics (issue 13 §4): candlesticks computed from the
recording against a brute-force Decimal computation over the oracle's books and the recorded
trades; every ``/markets`` filter (or a 400 naming the conflict); the historical tier; events
and series lists; fixture events, not their capture wrappers.

Driven through :meth:`RestApi.handle` of a started sim (no sockets needed for the logic; the
HTTP layer is tests/test_sim_http.py, the SDK's validation tests/test_sim_sdk.py).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from urllib.parse import urlencode

import pytest

import kalshi_oracle as oracle
from conftest import (COCKPIT, REPO_ROOT, SHARED_KALSHI, SHARED_MISSING, SSMD_TICKER,
                      SSMD_TRADE)
from kalshi_platform.sim.app import SimServer

REST = REPO_ROOT / "data" / "rest"
P = "/trade-api/v2"
CUTOFF = "2026-08-10T00:00:00Z"
HIST = "KXMLBGAME-26AUG091340LAAMIA-LAA"


def started(**kw) -> SimServer:
    sim = SimServer(**kw)
    sim.load()  # index the recording and fixtures without listening
    return sim


def get(sim: SimServer, path: str, **q) -> tuple[int, dict]:
    return sim.rest.handle("GET", f"{P}{path}?{urlencode(q)}" if q else P + path)


# -- candlesticks ----------------------------------------------------------------------------


def brute_candles(points: dict[str, list], trades: list, period: int) -> dict[int, dict]:
    """Candles by the definition (docs in sim/candles.py), Decimal, period by period."""
    ends = sorted({-(-t // period) * period for t, *_ in points["bbo"]}
                  | {-(-t // period) * period for t, *_ in trades})
    out = {}
    prev = None
    for e in ends:
        before = [b for b in points["bbo"] if b[0] <= e - period]
        inside = [b for b in points["bbo"] if e - period < b[0] <= e]
        vals = (before[-1:] if before else []) + inside
        bids = [b[1] for b in vals] or [Decimal(0)]
        asks = [b[2] for b in vals] or [Decimal(1)]
        tr = [t for t in trades if e - period < t[0] <= e]
        c = {"bid": (bids[0], max(bids), min(bids), bids[-1]),
             "ask": (asks[0], max(asks), min(asks), asks[-1]),
             "vol": sum((t[2] for t in tr), Decimal(0)), "prev": prev}
        if tr:
            px = [t[1] for t in tr]
            c["px"] = (px[0], max(px), min(px), px[-1])
            prev = px[-1]
        else:
            c["px"] = None
        out[e] = c
    return out


def as_dec(c: dict) -> dict:
    def ohlc(d):
        return tuple(None if d[f"{k}_dollars"] is None else Decimal(d[f"{k}_dollars"])
                     for k in ("open", "high", "low", "close"))
    px = ohlc(c["price"])
    prev = c["price"]["previous_dollars"]
    return {"bid": ohlc(c["yes_bid"]), "ask": ohlc(c["yes_ask"]), "vol": Decimal(c["volume_fp"]),
            "px": None if px[0] is None else px, "prev": None if prev is None else Decimal(prev)}


def test_candles_from_recorded_books_match_brute_force_over_the_oracle():
    o = oracle.Oracle()
    hist: dict[str, list] = {}
    for recv_ns, frame, _ in oracle.iter_recording(COCKPIT):
        t = o.apply(frame, recv_ns)
        if t is not None and frame.get("type") in ("orderbook_snapshot", "orderbook_delta"):
            bid, _, ask, _ = o.top(t)
            hist.setdefault(t, []).append((recv_ns // 10**9, bid or Decimal(0),
                                           Decimal(1) if ask is None else ask))
    sim = started(recording=COCKPIT)
    ticker = max(sorted(hist), key=lambda t: len(hist[t]))  # the busiest book
    series = ticker.split("-")[0]
    for period in (1, 60):
        s, body = get(sim, f"/series/{series}/markets/{ticker}/candlesticks", start_ts=0,
                      end_ts=4_000_000_000, period_interval=period)
        assert s == 200
        got = {c["end_period_ts"]: as_dec(c) for c in body["candlesticks"]}
        want = brute_candles({"bbo": hist[ticker]}, [], period * 60)
        assert got == want and len(got) >= (2 if period == 1 else 1)  # a 2-minute capture
    # the window keeps candles whose end lies in [start_ts, end_ts]; latest-before-start
    ends = sorted(got)
    s, body = get(sim, f"/series/{series}/markets/{ticker}/candlesticks", start_ts=ends[-1],
                  end_ts=ends[-1], period_interval=60)
    assert [c["end_period_ts"] for c in body["candlesticks"]] == [ends[-1]]


def test_candles_from_recorded_trades_match_brute_force():
    trades = []
    for _, frame, _ in oracle.iter_recording(SSMD_TRADE):
        m = frame.get("msg") or {}
        if frame.get("type") == "trade":
            trades.append((m["market_ticker"], m["ts"], Decimal(m["yes_price_dollars"]),
                           Decimal(m["count_fp"])))
    assert trades
    sim = started(recording=SSMD_TRADE)
    ticker = max(sorted({t[0] for t in trades}), key=lambda x: sum(t[0] == x for t in trades))
    mine = sorted((t[1], t[2], t[3]) for t in trades if t[0] == ticker)
    s, body = get(sim, "/markets/candlesticks", market_tickers=ticker, start_ts=0,
                  end_ts=4_000_000_000, period_interval=1)
    assert s == 200
    got = {c["end_period_ts"]: as_dec(c) for c in body["markets"][0]["candlesticks"]}
    assert got == brute_candles({"bbo": []}, mine, 60)
    assert sum(c["vol"] for c in got.values()) == sum(t[2] for t in mine)
    # a volume-weighted mean lies within the period's low and high
    for c in body["markets"][0]["candlesticks"]:
        if c["price"]["mean_dollars"] is not None:
            p = c["price"]
            assert Decimal(p["low_dollars"]) <= Decimal(p["mean_dollars"]) <= Decimal(
                p["high_dollars"])


@pytest.mark.parametrize("q, why", [
    ({"start_ts": 0, "end_ts": 10, "period_interval": 5}, "period_interval"),
    ({"start_ts": 10, "end_ts": 0, "period_interval": 1}, "end_ts"),
    ({"end_ts": 10, "period_interval": 1}, "start_ts is required"),
])
def test_candle_parameter_errors(q, why):
    sim = started(recording=SSMD_TRADE)
    t = sorted(sim.known)[0]
    s, body = get(sim, f"/series/{t.split('-')[0]}/markets/{t}/candlesticks", **q)
    assert s == 400 and why in body["error"]["message"]


def test_a_one_sided_bound_says_its_bound():
    """``min_ts`` has a lower bound only: the 400 names it (not ``[0, None]``)."""
    sim = started(recording=SSMD_TRADE)
    s, body = get(sim, "/markets/trades", min_ts=-1)
    assert s == 400 and body["error"]["message"] == "min_ts must be >= 0"


# -- markets filters and the historical tier -----------------------------------------------


def test_market_time_and_mve_filters_and_conflicts():
    sim = started(recording=COCKPIT, rest_fixtures=REST, cutoff=CUTOFF)
    _, all_ = get(sim, "/markets", limit=1000)
    ms = all_["markets"]
    created = sorted({m["created_time"] for m in ms})
    mid = created[len(created) // 2]
    from kalshi_platform.ingestion.messages import iso_to_ns
    mid_s = iso_to_ns(mid) // 10**9
    _, newer = get(sim, "/markets", min_created_ts=mid_s, limit=1000)
    want = {m["ticker"] for m in ms if iso_to_ns(m["created_time"]) // 10**9 >= mid_s}
    assert {m["ticker"] for m in newer["markets"]} == want and 0 < len(want) < len(ms)
    _, upd = get(sim, "/markets", min_updated_ts=mid_s, mve_filter="exclude", limit=1000)
    assert {m["ticker"] for m in upd["markets"]} == {
        m["ticker"] for m in ms if iso_to_ns(m["updated_time"]) // 10**9 >= mid_s}
    assert get(sim, "/markets", mve_filter="only")[1]["markets"] == []
    for q, why in [({"min_created_ts": 1, "status": "closed"}, "min/max_created_ts"),
                   ({"min_close_ts": 1, "status": "open"}, "min/max_close_ts"),
                   ({"min_updated_ts": 1, "status": "open"}, "min/max_updated_ts"),
                   ({"min_updated_ts": 1, "series_ticker": "KXMLBGAME"}, "mve_filter=exclude"),
                   ({"mve_filter": "all"}, "mve_filter"),
                   ({"min_settled_ts": "x"}, "integer")]:
        s, body = get(sim, "/markets", **q)
        assert s == 400 and why in body["error"]["message"], (q, body)


def test_historical_tier_split_at_market_settled_ts():
    sim = started(recording=COCKPIT, rest_fixtures=REST, cutoff=CUTOFF)
    live = {m["ticker"] for m in get(sim, "/markets", limit=1000)[1]["markets"]}
    hist = {m["ticker"] for m in get(sim, "/historical/markets", limit=1000)[1]["markets"]}
    assert hist == {HIST} and HIST not in live and live
    assert get(sim, f"/historical/markets/{HIST}")[1]["market"]["result"] == "no"
    assert get(sim, f"/historical/markets/{sorted(live)[0]}")[0] == 404
    _, ev = get(sim, "/events/" + HIST.rsplit("-", 1)[0])
    assert ev["markets"] == []  # its only market settled before the cutoff
    sim2 = started(recording=COCKPIT, rest_fixtures=REST)  # the fixture's cutoff (June)
    assert HIST in {m["ticker"] for m in get(sim2, "/markets", limit=1000)[1]["markets"]}


# -- events and series -------------------------------------------------------------------


def test_events_pages_filters_and_nested_markets():
    sim = started(recording=COCKPIT, rest_fixtures=REST, cutoff=CUTOFF)
    ms = get(sim, "/markets", limit=1000)[1]["markets"]
    seen, cursor = [], ""
    while True:
        q = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        s, body = get(sim, "/events", **q)
        assert s == 200 and len(body["events"]) <= 3
        seen += [e["event_ticker"] for e in body["events"]]
        cursor = body["cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and set(seen) >= {m["event_ticker"] for m in ms}
    _, mlb = get(sim, "/events", series_ticker="KXMLBGAME", with_nested_markets="true",
                 status="open")
    for e in mlb["events"]:
        assert e["series_ticker"] == "KXMLBGAME" and e["markets"]
        assert any(m["status"] == "active" for m in e["markets"])
    assert get(sim, "/events", status="paused")[0] == 400


def test_series_list_has_categories_and_filters():
    sim = started(recording=COCKPIT, rest_fixtures=REST)
    _, body = get(sim, "/series")
    assert body["series"] and all(isinstance(s["categories"], list) for s in body["series"])
    tickers = {s["ticker"] for s in body["series"]}
    assert "KXMLBGAME" in tickers
    _, vol = get(sim, "/series/KXMLBGAME", include_volume="true")
    assert "volume_fp" in vol["series"]
    _, none = get(sim, "/series", category="no-such-category")
    assert none["series"] == []


@pytest.mark.skipif(not SHARED_KALSHI.is_dir(), reason=SHARED_MISSING)
def test_fixture_events_are_events_not_capture_wrappers():
    rest = SHARED_KALSHI / "rest"
    sim = started(rest_fixtures=rest)
    s, body = get(sim, "/events/KXMLBGAME-26AUG091340LAAMIA")
    assert s == 200 and body["event"]["event_ticker"] == "KXMLBGAME-26AUG091340LAAMIA"
    assert not {"candlesticks_response", "captured_utc", "market"} & set(body["event"])
    doc = json.loads((rest / "cockpit_prod" / "events_nfl_preseason.json").read_bytes())
    ev = doc["events"][0]
    s, got = get(sim, "/events/" + ev["event_ticker"])
    assert s == 200 and got["event"]["title"] == ev["title"]
    assert got["event"]["series_ticker"] == ev["series_ticker"]


def test_schedule_is_always_open():
    sim = started(recording=COCKPIT)
    s, body = get(sim, "/exchange/schedule")
    week = body["schedule"]["standard_hours"][0]
    assert s == 200 and body["schedule"]["maintenance_windows"] == []
    assert all(week[d] == [{"open_time": "00:00", "close_time": "24:00"}]
               for d in ("monday", "sunday"))


def test_recording_market_times_follow_the_recording():
    frames = [(r, f) for r, f, _ in oracle.iter_recording(COCKPIT)
              if isinstance(f.get("msg"), dict) and f["msg"].get("market_ticker")]
    t = frames[0][1]["msg"]["market_ticker"]
    first = min(r for r, f in frames if f["msg"]["market_ticker"] == t)
    sim = started(recording=COCKPIT)
    m = get(sim, f"/markets/{t}")[1]["market"]
    from kalshi_platform.ingestion.messages import iso_to_ns
    assert iso_to_ns(m["open_time"]) // 1000 == first // 1000
    assert iso_to_ns(m["close_time"]) > iso_to_ns(m["open_time"])
    assert m["settlement_bounds_type"] == "default" and m["can_close_early"] is False


def test_recording_market_live_fields_follow_the_last_ticker_frame_played():
    last: dict[str, dict] = {}
    for _, frame, _ in oracle.iter_recording(SSMD_TICKER):
        if frame.get("type") == "ticker":
            last[frame["msg"]["market_ticker"]] = frame["msg"]

    async def go():
        async with SimServer(SSMD_TICKER, start="now") as sim:
            await asyncio.wait_for(sim.done.wait(), 20)
            return {t: get(sim, f"/markets/{t}")[1]["market"] for t in sorted(last)}

    got = asyncio.run(go())
    for t, msg in last.items():
        m = got[t]
        assert (m["last_price_dollars"], m["volume_fp"], m["open_interest_fp"]) == (
            msg["price_dollars"], msg["volume_fp"], msg["open_interest_fp"]), t
        assert (m["yes_bid_dollars"], m["yes_ask_dollars"]) == (
            msg["yes_bid_dollars"], msg["yes_ask_dollars"])  # no book frames: the ticker's


def test_include_latest_before_start_prepends_a_projected_candle():
    sim = started(recording=SSMD_TRADE)
    t = max(sorted(sim.known), key=lambda x: sum(r.obj["ticker"] == x for r in sim.data.trades))
    path = f"/series/{t.split('-')[0]}/markets/{t}/candlesticks"
    _, full = get(sim, path, start_ts=0, end_ts=4_000_000_000, period_interval=1)
    last = full["candlesticks"][-1]
    start = last["end_period_ts"] + 1  # after every real candle
    _, body = get(sim, path, start_ts=start, end_ts=start + 600, period_interval=1,
                  include_latest_before_start="true")
    (c,) = body["candlesticks"]
    assert c["end_period_ts"] == last["end_period_ts"] + 60  # the next period boundary
    assert c["price"]["open_dollars"] is None and c["price"]["close_dollars"] is None
    closes = [x["price"]["close_dollars"] for x in full["candlesticks"]
              if x["price"]["close_dollars"]]
    assert c["price"]["previous_dollars"] == closes[-1] and c["volume_fp"] == "0.00"
    _, plain = get(sim, path, start_ts=start, end_ts=start + 600, period_interval=1)
    assert plain["candlesticks"] == []
