"""The async REST client (kalshi_platform.api.rest) against real Kalshi response bodies served by
``httpx.MockTransport`` (and once over a real loopback socket): cursor pagination, typed
parsing checked against ``Decimal`` oracles, signing, retries on 429/5xx/transport errors,
404s, and the token bucket on a fake clock (no sleeping)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from api_fakes import FakeClock, FakeKalshi, bundled, iso_ns, load, manta_trades, \
    max_burst_excess, serve, shared, unused_port
from kalshi_platform.api.auth import HEADER_SIGNATURE, HEADER_TIMESTAMP, Signer, \
    verify_signature
from kalshi_platform.api.rest import BASE_URLS, NotFoundError, RestClient, RestError, \
    TokenBucket
from kalshi_platform.config import Settings

D = Decimal
BASE = "https://external-api.demo.kalshi.co/trade-api/v2"


def usd(s):
    return int(D(s) * 10**6)


def cc(s):
    return int(D(s) * 100)


def run(coro):
    return asyncio.run(coro)


def client(handler, clock: FakeClock | None = None, **kw) -> RestClient:
    clock = clock or FakeClock()
    kw.setdefault("rng", random.Random(7))
    return RestClient(BASE, transport=httpx.MockTransport(handler), clock=clock,
                      sleep=clock.sleep, **kw)


def json_response(obj, status=200):
    return httpx.Response(status, json=obj)


# -- pagination ----------------------------------------------------------------------------


def test_markets_cursor_chain_is_followed_verbatim_and_signed():
    """fortuna_demo markets page1→page2→page3 (the recorded /markets?limit=5 walk): the client
    sends the recorded cursors verbatim; page3's cursor leads to the real last page
    (``cursor: ""``) of another recorded query, which ends the walk."""
    pages = [load(bundled(f"fortuna_demo/markets__page{i}.json")) for i in (1, 2, 3)]
    metas = [load(bundled(f"fortuna_demo/markets__page{i}.meta.json")) for i in (1, 2, 3)]
    last = load(bundled("fortuna_demo/markets__single_filter_lastpage.json"))
    by_cursor = {None: pages[0], pages[0]["cursor"]: pages[1], pages[1]["cursor"]: pages[2],
                 pages[2]["cursor"]: last}
    key = ed25519.Ed25519PrivateKey.generate()
    seen = []

    def handler(req: httpx.Request):
        q = parse_qs(req.url.query.decode())
        seen.append((req.url.path, q, dict(req.headers)))
        return json_response(by_cursor[q.get("cursor", [None])[0]])

    async def go():
        async with client(handler, signer=Signer("kid", key)) as c:
            return [m async for m in c.iter_markets(limit=5)]

    markets = run(go())
    raw = [m for p in pages for m in p["markets"]] + last["markets"]
    assert [m.ticker for m in markets] == [m["ticker"] for m in raw] and len(markets) == 16
    for m, r in zip(markets, raw):
        assert m.yes_bid == usd(r["yes_bid_dollars"]) and m.volume == cc(r["volume_fp"])
    # cursors exactly as recorded in the meta files' request paths
    for (path, q, _), meta in zip(seen[1:3], metas[1:3]):
        want = parse_qs(urlsplit(meta["path"]).query)
        assert q == want and path == urlsplit(meta["path"]).path
    assert seen[0][1] == {"limit": ["5"]}
    for path, _, h in seen:
        assert h["kalshi-access-key"] == "kid"
        assert verify_signature(key.public_key(), h[HEADER_SIGNATURE.lower()],
                                int(h[HEADER_TIMESTAMP.lower()]), "GET", path)
        assert path.startswith("/trade-api/v2/")


def test_trades_pages_parse_against_oracle_and_pass_filters():
    p1, p2, last = (load(bundled(f"manta_prod/{n}.json"))
                    for n in ("trades_page1", "trades_page2", "trades_window_last"))
    by_cursor = {None: p1, p1["cursor"]: p2, p2["cursor"]: last}
    queries = []

    def handler(req):
        q = {k: v[0] for k, v in parse_qs(req.url.query.decode()).items()}
        queries.append((req.url.path, q))
        return json_response(by_cursor[q.get("cursor")])

    async def go():
        async with client(handler) as c:
            return [t async for t in c.iter_trades(ticker="T", min_ts=1, max_ts=2, limit=1000)]

    trades = run(go())
    raw = manta_trades()
    assert len(trades) == 55 == len({t.trade_id for t in trades})
    for t, r in zip(trades, raw):
        assert (t.trade_id, t.ticker) == (r["trade_id"], r["ticker"])
        assert t.yes_price == usd(r["yes_price_dollars"]) and t.count == cc(r["count_fp"])
        assert t.ts_ns == iso_ns(r["created_time"])
    assert [p for p, _ in queries] == ["/trade-api/v2/markets/trades"] * 3
    for _, q in queries:
        assert {k: q[k] for k in ("ticker", "min_ts", "max_ts", "limit")} == \
            {"ticker": "T", "min_ts": "1", "max_ts": "2", "limit": "1000"}


def test_single_object_endpoints():
    single = load(bundled("cockpit_prod/market_single.json"))
    series = load(bundled("cockpit_prod/series_fee_fields.json"))["payloads"]["KXMLBGAME"]
    book = load(bundled("fortuna_demo/orderbook__base.json"))
    cutoff = load(bundled("manta_prod/historical_cutoff.json"))
    candles = load(bundled("cockpit_prod/candlesticks_pregame_mlb.json"))["candlesticks_response"]
    t_single = single["ticker"]
    t_book = "KXWTACHALLENGERMATCH-26JUN11JIMLEP-LEP"
    routes = {
        f"/trade-api/v2/markets/{t_single}": single["single"],
        f"/trade-api/v2/markets/{t_book}/orderbook": book,
        "/trade-api/v2/series/KXMLBGAME": series,
        "/trade-api/v2/historical/cutoff": cutoff,
        "/trade-api/v2/exchange/status": {"exchange_active": True, "trading_active": True},
        f"/trade-api/v2/series/KXMLBGAME/markets/{candles['ticker']}/candlesticks": candles,
    }
    queries = {}

    def handler(req):
        queries[req.url.path] = {k: v[0] for k, v in parse_qs(req.url.query.decode()).items()}
        return json_response(routes[req.url.path])

    async def go():
        async with client(handler) as c:
            return (await c.get_market(t_single), await c.get_orderbook(t_book, depth=10),
                    await c.get_series("KXMLBGAME"), await c.get_historical_cutoff(),
                    await c.get_exchange_status(),
                    await c.get_candlesticks("KXMLBGAME", candles["ticker"], start_ts=1,
                                             end_ts=2, period_interval=1))

    m, ob, s, cut, st, cs = run(go())
    assert m.ticker == t_single and m.yes_bid == usd(single["single"]["market"]["yes_bid_dollars"])
    assert ob.ticker == t_book and ob.best_yes_bid == (470000, 300)
    assert ob.best_yes_ask == (1_000_000 - 480000, 300)
    assert queries[f"/trade-api/v2/markets/{t_book}/orderbook"] == {"depth": "10"}
    assert s.ticker == "KXMLBGAME" and s.fee_multiplier == D("0.5")
    assert cut.trades_created_ns == iso_ns(cutoff["trades_created_ts"])
    assert st.exchange_active and st.trading_active
    assert len(cs.candlesticks) == 50 and cs.ticker == candles["ticker"]
    assert queries[f"/trade-api/v2/series/KXMLBGAME/markets/{candles['ticker']}/candlesticks"] \
        == {"start_ts": "1", "end_ts": "2", "period_interval": "1"}


def test_events_paginated_and_single_shared():
    body = load(shared("cockpit_prod/events_nfl_preseason.json"))
    events = body["events"]
    pages = [events[i:i + 10] for i in range(0, len(events), 10)]

    def handler(req):
        q = {k: v[0] for k, v in parse_qs(req.url.query.decode()).items()}
        if req.url.path.endswith("/events"):
            assert q["series_ticker"] == "KXNFLGAME" and q["with_nested_markets"] == "true"
            i = int(q.get("cursor", "0"))
            return json_response({"events": pages[i],
                                  "cursor": str(i + 1) if i + 1 < len(pages) else ""})
        ev = events[0]
        return json_response({"event": {k: v for k, v in ev.items() if k != "markets"},
                              "markets": ev["markets"]})

    async def go():
        async with client(handler) as c:
            evs = [e async for e in c.iter_events(series_ticker="KXNFLGAME",
                                                  with_nested_markets=True)]
            return evs, await c.get_event(events[0]["event_ticker"])

    evs, one = run(go())
    assert [e.event_ticker for e in evs] == [e["event_ticker"] for e in events]
    assert sum(len(e.markets) for e in evs) == sum(len(e["markets"]) for e in events)
    assert [m.ticker for m in one.markets] == [m["ticker"] for m in events[0]["markets"]]


def test_series_list_without_cursor_ends_and_repeated_cursor_is_an_error():
    series = load(bundled("cockpit_prod/series_fee_fields.json"))["payloads"]

    def handler(req):
        if req.url.path.endswith("/series"):
            return json_response({"series": [p["series"] for p in series.values()]})
        return json_response({"markets": [], "cursor": "same"})

    async def go():
        async with client(handler) as c:
            got = [s.ticker async for s in c.iter_series(category="Sports")]
            with pytest.raises(RestError, match="repeated cursor"):
                async for _ in c.iter_markets():
                    pass
            return got, c.stats.requests

    got, n = run(go())
    assert got == list(series) and n == 1 + 2


# -- retries, errors -------------------------------------------------------------------------


def test_429s_are_retried_and_every_page_completes():
    """Every page is answered 429 three times before the real body: all 55 trades arrive,
    each page once, retries counted, and backoff sleeps follow full jitter under the cap."""
    p1, p2, last = (load(bundled(f"manta_prod/{n}.json"))
                    for n in ("trades_page1", "trades_page2", "trades_window_last"))
    by_cursor = {None: p1, p1["cursor"]: p2, p2["cursor"]: last}
    fails: dict = {}

    def handler(req):
        cur = parse_qs(req.url.query.decode()).get("cursor", [None])[0]
        fails[cur] = fails.get(cur, 0) + 1
        if fails[cur] <= 3:
            return httpx.Response(429, json={"error": "too many requests"})
        return json_response(by_cursor[cur])

    clock = FakeClock()

    async def go():
        async with client(handler, clock, backoff_base_s=0.5, backoff_cap_s=3.0) as c:
            ts = [t async for t in c.iter_trades()]
            return ts, c.stats

    trades, st = run(go())
    assert [t.trade_id for t in trades] == [t["trade_id"] for t in manta_trades()]
    assert st.requests == 12 and st.retries == 9
    assert st.status_counts == {429: 9, 200: 3}
    assert all(v == 4 for v in fails.values())
    backoffs = [s for s in clock.sleeps]
    assert backoffs and max(backoffs) <= 3.0 + 1.0  # backoff ≤ cap (+ token waits ≤ 0.5 s)


def test_5xx_then_success_and_persistent_5xx_gives_up():
    body = load(bundled("manta_prod/historical_cutoff.json"))
    plan = [503, 502, 200]

    def handler(req):
        st = plan.pop(0) if plan else 500
        return json_response(body if st == 200 else {"error": {"code": "x", "message": "boom"}},
                             st)

    async def go():
        async with client(handler, max_retries=4) as c:
            cut = await c.get_historical_cutoff()
            assert c.stats.retries == 2
            with pytest.raises(RestError) as ei:
                await c.get_historical_cutoff()
            return cut, ei.value, c.stats

    cut, err, st = run(go())
    assert cut.trades_created_ts == body["trades_created_ts"]
    assert err.status == 500 and err.path == "/trade-api/v2/historical/cutoff"
    assert "gave up after 5 attempts" in str(err) and "x: boom" in str(err)
    assert "\n" not in str(err)
    assert st.status_counts == {503: 1, 502: 1, 200: 1, 500: 5}


def test_connect_errors_retried_then_clear_error():
    calls = []

    def flaky(req):
        calls.append(1)
        if len(calls) <= 2:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=req)
        return json_response({"exchange_active": True, "trading_active": False})

    def down(req):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=req)

    async def go():
        async with client(flaky, max_retries=2) as c:
            s = await c.get_exchange_status()
        async with client(down, max_retries=2) as c2:
            with pytest.raises(RestError) as ei:
                await c2.get_exchange_status()
        return s, c.stats, ei.value, c2.stats

    s, st, err, st2 = run(go())
    assert s.exchange_active and st.transport_errors == 2 and st.retries == 2
    assert err.status is None and "cannot connect to external-api.demo.kalshi.co" in str(err)
    assert "gave up after 3 attempts" in str(err) and st2.requests == 3


def test_404_400_401_are_not_retried():
    def handler(req):
        if "NOPE" in req.url.path:
            return json_response({"error": {"code": "not_found", "message": "market not found"}},
                                 404)
        if "bad" in req.url.path:
            return json_response({"code": "invalid_parameters", "message": "bad depth"}, 400)
        return json_response({"error": {"code": "authentication_error"}}, 401)

    async def go():
        async with client(handler) as c:
            with pytest.raises(NotFoundError) as nf:
                await c.get_market("NOPE")
            with pytest.raises(RestError) as bad:
                await c.get_market("bad")
            with pytest.raises(RestError) as auth:
                await c.get_exchange_status()
            return nf.value, bad.value, auth.value, c.stats

    nf, bad, auth, st = run(go())
    assert str(nf) == "GET /trade-api/v2/markets/NOPE: HTTP 404: not_found: market not found"
    assert nf.status == 404 and isinstance(nf, RestError)
    assert bad.status == 400 and "invalid_parameters: bad depth" in str(bad)
    assert auth.status == 401 and "KALSHI_API_KEY_ID" in str(auth)
    assert st.retries == 0 and st.requests == 3


def test_invalid_arguments():
    async def go():
        async with client(lambda r: json_response({})) as c:
            with pytest.raises(ValueError, match="limit"):
                async for _ in c.iter_trades(limit=1001):
                    pass
            with pytest.raises(ValueError, match="depth"):
                await c.get_orderbook("T", depth=101)
            with pytest.raises(ValueError, match="period_interval"):
                await c.get_candlesticks("S", "T", start_ts=0, end_ts=1, period_interval=5)
            with pytest.raises(ValueError, match="min_ts"):
                async for _ in c.iter_trades(min_ts=-1):
                    pass
            with pytest.raises(ValueError, match="ticker"):
                await c.get_market(" ")
    run(go())
    with pytest.raises(ValueError, match="env"):
        RestClient(env="staging")
    with pytest.raises(ValueError, match="base URL"):
        RestClient("ftp://x/trade-api/v2")


def test_base_urls_and_from_settings(tmp_path):
    assert RestClient().base_url == BASE_URLS["prod"] == "https://external-api.kalshi.com/trade-api/v2"
    assert RestClient(env="demo").base_url == "https://external-api.demo.kalshi.co/trade-api/v2"
    c = RestClient.from_settings(Settings(rest_base_url="http://127.0.0.1:9/trade-api/v2/",
                                          read_tokens_per_s=50, request_cost=5, env="demo"))
    assert c.base_url == "http://127.0.0.1:9/trade-api/v2" and c.signer is None
    assert (c.bucket.rate, c.bucket.capacity, c.request_cost) == (50, 50, 5)
    key = tmp_path / "k.pem"
    from cryptography.hazmat.primitives import serialization

    key.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key.chmod(0o600)
    c2 = RestClient.from_settings(Settings(api_key_id="abc", private_key_path=key))
    assert c2.signer is not None and c2.signer.key_id == "abc"
    assert c2.base_url == BASE_URLS["prod"]
    assert "abc" not in repr(c2) and "PRIVATE" not in repr(c2)


# -- token bucket ----------------------------------------------------------------------------


def test_bucket_bounds_request_rate_on_fake_clock():
    """100 concurrent requests through a Basic-tier bucket (200 tokens/s, 10 per request →
    20 req/s, burst 20): request times (fake clock) never exceed the bucket, the first 20 go
    at once, and the last leaves at t0 + 4 s."""
    clock = FakeClock()
    t0 = clock.now
    times = []

    def handler(req):
        times.append(clock.now)
        return json_response({"exchange_active": True, "trading_active": True})

    async def go():
        async with client(handler, clock) as c:
            await asyncio.gather(*(c.get_exchange_status() for _ in range(100)))
            return c.stats

    st = run(go())
    assert len(times) == 100
    assert max_burst_excess(times, rate_req_s=20, burst=20) <= 1e-9
    assert times[:20] == [t0] * 20
    assert times[-1] == pytest.approx(t0 + 4.0)
    assert st.throttled_waits == 80 and 0 < st.throttled_s <= sum(t - t0 for t in times) + 1e-6
    # the checker itself is not vacuous: the same 100 requests at once exceed the bucket
    assert max_burst_excess([t0] * 100, 20, 20) == 80


def test_token_bucket_unit():
    clock = FakeClock(0.0)
    b = TokenBucket(200, 200, clock=clock, sleep=clock.sleep)

    async def go():
        waits = [await b.acquire(10) for _ in range(25)]
        return waits

    waits = run(go())
    assert waits[:20] == [0.0] * 20 and all(w == pytest.approx(0.05) for w in waits[20:])
    assert clock.now == pytest.approx(0.25)
    with pytest.raises(ValueError):
        run(b.acquire(201))
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_loopback_socket_with_injected_429s():
    """Over a real 127.0.0.1 socket: the fake service pages 55 real trades 7 at a time and
    answers every third request 429; the client completes every page."""
    fake = FakeKalshi(trades=manta_trades(), cutoff="2026-01-01T00:00:00Z", page_cap=7)
    fake.fail_every = 3

    async def go(base):
        async with RestClient(base, backoff_base_s=0.001, backoff_cap_s=0.01,
                              read_tokens_per_s=10_000) as c:
            return [t async for t in c.iter_trades()], c.stats

    with serve(fake) as base:
        trades, st = run(go(base))
    assert sorted(t.trade_id for t in trades) == sorted(t["trade_id"] for t in manta_trades())
    assert st.status_counts[429] == st.retries > 0 and st.status_counts[200] == 8


def test_unreachable_port_fails_fast():
    async def go():
        async with RestClient(f"http://127.0.0.1:{unused_port()}/trade-api/v2", max_retries=1,
                              backoff_base_s=0.001, timeout_s=2) as c:
            await c.get_exchange_status()

    with pytest.raises(RestError, match="cannot connect to 127.0.0.1"):
        run(go())
