"""The sim's REST layer (``kalshi_platform.sim.rest``) without sockets: fixtures loading,
Kalshi cursor pagination (kalshi-api.md §3.1), the live/historical split of trades at the
cutoff (§3.9), filters, error bodies (§3.10), and the order book rendered from a book (§3.6).

Data: the real REST bodies bundled in ``data/rest`` (manta prod trade pages + cutoff, fortuna
demo trades and market pages, cockpit prod markets).
"""

from __future__ import annotations

import json

import pytest

from conftest import REPO_ROOT, SHARED_KALSHI, SSMD_TRADE
from kalshi_platform.fixedpoint import parse_price, parse_size
from kalshi_platform.ingestion.messages import iso_to_ns
from kalshi_platform.sim.books import flip_no_price, levels, orderbook_fp, snapshot_msg
from kalshi_platform.sim.rest import RestApi, RestData, event_of, series_of, trade_from_ws
from kalshi_platform.ticker_plant.order_book import OrderBook

REST = REPO_ROOT / "data" / "rest"
P = "/trade-api/v2"


def _load(rel: str) -> dict:
    return json.loads((REST / rel).read_text())


@pytest.fixture(scope="module")
def data() -> RestData:
    d = RestData()
    d.load_fixtures(REST)
    return d


def api(data: RestData, books: dict | None = None) -> RestApi:
    books = books or {}
    return RestApi(data, books.get)


def walk(a: RestApi, path: str, key: str, **params) -> list[list[dict]]:
    """Every page of a cursor endpoint, following ``cursor`` until ``""``."""
    from urllib.parse import urlencode

    pages = []
    cursor = ""
    while True:
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        status, body = a.handle("GET", f"{P}{path}?{urlencode(q)}")
        assert status == 200, body
        pages.append(body[key])
        cursor = body["cursor"]
        if cursor == "":
            return pages
        assert len(pages) < 1000


def test_fixture_loading_counts(data):
    manta = sum(len(_load(f"manta_prod/{n}")["trades"]) for n in
                ("trades_page1.json", "trades_page2.json", "trades_window_last.json"))
    fortuna = len(_load("fortuna_demo/trades__public_recorded.json")["trades"])
    assert len(data.trades) == manta + fortuna == 67
    assert data.cutoff == _load("manta_prod/historical_cutoff.json")
    fixture_markets = {m["ticker"] for n in ("markets__page1.json", "markets__page2.json",
                                              "markets__page3.json")
                       for m in _load(f"fortuna_demo/{n}")["markets"]}
    assert fixture_markets <= set(data.markets)
    # wrappers are walked: cockpit's market_single has the market nested twice
    assert _load("cockpit_prod/market_single.json")["ticker"] in data.markets
    # loading twice does not duplicate trades (trade_id is the key)
    assert data.load_fixtures(REST)["trades"] == 0


def test_trades_split_at_cutoff_and_paged_newest_first(data):
    a = api(data)
    cut = iso_to_ns(data.cutoff["trades_created_ts"])
    live = [t for page in walk(a, "/markets/trades", "trades", limit=7) for t in page]
    hist = [t for page in walk(a, "/historical/trades", "trades", limit=5) for t in page]
    assert len(live) == 55 and len(hist) == 12  # manta (Aug) live, fortuna (Jun 15) historical
    assert all(iso_to_ns(t["created_time"]) >= cut for t in live)
    assert all(iso_to_ns(t["created_time"]) < cut for t in hist)
    for tape in (live, hist):
        ids = [t["trade_id"] for t in tape]
        assert len(set(ids)) == len(ids)  # every trade exactly once across pages
        keys = [(iso_to_ns(t["created_time"]), t["trade_id"]) for t in tape]
        assert keys == sorted(keys, reverse=True)  # newest first, as Kalshi serves them
    # the served objects are the fixture objects, untouched
    orig = {t["trade_id"]: t for n in ("trades_page1.json", "trades_page2.json",
                                        "trades_window_last.json")
            for t in _load(f"manta_prod/{n}")["trades"]}
    assert {t["trade_id"]: t for t in live} == orig


def test_trade_filters_ticker_and_inclusive_seconds(data):
    a = api(data)
    _, body = a.handle("GET", f"{P}/markets/trades?ticker=KXHIGHLAX-26AUG30-B80.5&limit=1000")
    assert body["trades"] and {t["ticker"] for t in body["trades"]} == {"KXHIGHLAX-26AUG30-B80.5"}
    s = iso_to_ns("2026-08-24T15:15:38Z") // 10**9
    _, body = a.handle("GET", f"{P}/markets/trades?min_ts={s}&max_ts={s}&limit=1000")
    got = body["trades"]
    assert got and all(t["created_time"].startswith("2026-08-24T15:15:38") for t in got)
    want = [t for t in data.trades if t.obj["created_time"].startswith("2026-08-24T15:15:38")]
    assert len(got) == len(want)
    _, body = a.handle("GET", f"{P}/markets/trades?is_block_trade=true")
    assert body == {"trades": [], "cursor": ""}


def test_trade_cursor_survives_new_trades(data):
    d = RestData()
    d.load_fixtures(REST / "manta_prod")
    a = api(d)
    _, p1 = a.handle("GET", f"{P}/markets/trades?limit=10")
    newest = dict(p1["trades"][0], trade_id="new-1", created_time="2026-09-01T00:00:00Z")
    assert d.add_trade(newest)
    _, p2 = a.handle("GET", f"{P}/markets/trades?limit=10&cursor={p1['cursor']}")
    ids1 = {t["trade_id"] for t in p1["trades"]}
    assert not ids1 & {t["trade_id"] for t in p2["trades"]}
    assert "new-1" not in {t["trade_id"] for t in p2["trades"]}
    _, first = a.handle("GET", f"{P}/markets/trades?limit=1")
    assert first["trades"][0]["trade_id"] == "new-1"


def test_cutoff_override(data):
    d = RestData()
    d.load_fixtures(REST / "manta_prod")
    d.set_cutoff("2026-08-30T00:00:00Z")
    a = api(d)
    _, live = a.handle("GET", f"{P}/markets/trades?limit=1000")
    _, hist = a.handle("GET", f"{P}/historical/trades?limit=1000")
    assert len(live["trades"]) == 45 and len(hist["trades"]) == 10
    assert a.handle("GET", f"{P}/historical/cutoff")[1]["trades_created_ts"] == "2026-08-30T00:00:00Z"
    with pytest.raises(ValueError):
        d.set_cutoff("yesterday")


@pytest.mark.parametrize("target,status,code", [
    ("/markets/trades?limit=0", 400, "invalid_parameters"),
    ("/markets/trades?limit=1001", 400, "invalid_parameters"),
    ("/markets/trades?limit=x", 400, "invalid_parameters"),
    ("/markets/trades?cursor=garbage!", 400, "invalid_cursor"),
    ("/markets?status=finalized", 400, "invalid_parameters"),  # Kalshi: 400 too (cockpit capture)
    ("/markets/NOPE-1", 404, "not_found"),
    ("/markets/NOPE-1/orderbook", 404, "not_found"),
    ("/events/NOPE", 404, "not_found"),
    ("/series/NOPE", 404, "not_found"),
    ("/portfolio/balance", 404, "not_found"),
])
def test_error_bodies(data, target, status, code):
    s, body = api(data).handle("GET", P + target)
    assert s == status
    assert body["error"]["code"] == code and body["error"]["message"]


def test_method_not_allowed(data):
    s, body = api(data).handle("POST", P + "/markets")
    assert s == 405 and body["error"]["code"] == "method_not_allowed"


def test_markets_pages_filters_and_event(data):
    a = api(data)
    pages = walk(a, "/markets", "markets", limit=2)
    tickers = [m["ticker"] for p in pages for m in p]
    assert tickers == sorted(data.markets) and all(len(p) <= 2 for p in pages)
    one = _load("fortuna_demo/markets__single_filter_lastpage.json")["markets"][0]
    _, body = a.handle("GET", f"{P}/markets?event_ticker={one['event_ticker']}")
    assert one["ticker"] in {m["ticker"] for m in body["markets"]}
    assert all(m["event_ticker"] == one["event_ticker"] for m in body["markets"])
    series = series_of(one["event_ticker"])
    _, body = a.handle("GET", f"{P}/markets?series_ticker={series}&status=open&limit=1000")
    assert all(m["status"] == "active" and m["event_ticker"].startswith(series)
               for m in body["markets"])
    _, body = a.handle("GET", f"{P}/markets?tickers={one['ticker']},NOPE")
    assert [m["ticker"] for m in body["markets"]] == [one["ticker"]]
    _, ev = a.handle("GET", f"{P}/events/{one['event_ticker']}")
    assert ev["event"]["event_ticker"] == one["event_ticker"]
    assert one["ticker"] in {m["ticker"] for m in ev["markets"]}


def test_orderbook_from_current_book():
    book = OrderBook("KX-EV-A")
    book.apply_snapshot([(parse_price("0.0800"), parse_size("300.00")),
                         (parse_price("0.2200"), parse_size("333.00"))],
                        [(parse_price("0.5400"), parse_size("20.00")),
                         (parse_price("0.5600"), parse_size("146.25"))])
    d = RestData()
    d.add_market({"ticker": "KX-EV-A", "event_ticker": "KX-EV", "status": "active", "_sim": True})
    a = api(d, {"KX-EV-A": book})
    s, body = a.handle("GET", f"{P}/markets/KX-EV-A/orderbook")
    assert s == 200 and body == {"orderbook_fp": {
        "yes_dollars": [["0.0800", "300.00"], ["0.2200", "333.00"]],
        "no_dollars": [["0.5400", "20.00"], ["0.5600", "146.25"]]}}
    _, top = a.handle("GET", f"{P}/markets/KX-EV-A/orderbook?depth=1")
    assert top == {"orderbook_fp": {"yes_dollars": [["0.2200", "333.00"]],
                                    "no_dollars": [["0.5600", "146.25"]]}}
    _, m = a.handle("GET", f"{P}/markets/KX-EV-A")
    assert m["market"]["yes_bid_dollars"] == "0.2200" and m["market"]["yes_ask_dollars"] == "0.4400"
    assert m["market"]["yes_ask_size_fp"] == "146.25" and "_sim" not in m["market"]
    book.apply_delta("yes", book.best_yes, -book.yes[book.best_yes])  # REST follows the book
    _, top = a.handle("GET", f"{P}/markets/KX-EV-A/orderbook?depth=1")
    assert top["orderbook_fp"]["yes_dollars"] == [["0.0800", "300.00"]]
    _, many = a.handle("GET", f"{P}/markets/orderbooks?tickers=KX-EV-A&tickers=KX-EV-A")
    assert [o["ticker"] for o in many["orderbooks"]] == ["KX-EV-A", "KX-EV-A"]


def test_snapshot_rendering_and_yes_scale():
    book = OrderBook("T")
    book.apply_snapshot([(parse_price("0.4700"), 300)], [(parse_price("0.4800"), 200),
                                                         (parse_price("0.0010"), 5)])
    msg = snapshot_msg("T", book, market_id="m")
    assert msg == {"market_ticker": "T", "market_id": "m",
                   "yes_dollars_fp": [["0.4700", "3.00"]],
                   "no_dollars_fp": [["0.0010", "0.05"], ["0.4800", "2.00"]]}
    yes_scale = snapshot_msg("T", book, use_yes_price=True, market_id="m")
    assert yes_scale["no_dollars_fp"] == [["0.5200", "2.00"], ["0.9990", "0.05"]]
    empty = snapshot_msg("T", None, market_id="m")
    assert empty == {"market_ticker": "T", "market_id": "m"}  # empty sides omitted (§7.5)
    assert levels({}, depth=3) == [] and orderbook_fp(None)["orderbook_fp"]["yes_dollars"] == []
    d = {"market_ticker": "T", "side": "no", "price_dollars": "0.4800", "price": 48}
    assert flip_no_price(d) == {"market_ticker": "T", "side": "no", "price_dollars": "0.5200",
                                "price": 52}
    assert d["price_dollars"] == "0.4800"  # input untouched (shared between connections)


def test_trade_from_ws_real_frames():
    frames = [json.loads(ln) for ln in SSMD_TRADE.read_text().splitlines() if ln.strip()]
    for f in frames:
        t = trade_from_ws(f["msg"])
        assert t is not None and t["ticker"] == f["msg"]["market_ticker"]
        assert parse_price(t["yes_price_dollars"]) + parse_price(t["no_price_dollars"]) == 10**6
        assert iso_to_ns(t["created_time"]) // 10**9 == f["msg"]["ts"]
        assert t["taker_outcome_side"] in ("yes", "no")
    assert trade_from_ws({"market_ticker": "X"}) is None


def test_ticker_helpers():
    assert event_of("KXMLBGAME-26AUG071840NYMPIT-NYM") == "KXMLBGAME-26AUG071840NYMPIT"
    assert series_of("KXMLBGAME-26AUG071840NYMPIT") == "KXMLBGAME"


def test_shared_rest_fixtures_load():
    root = SHARED_KALSHI / "rest"
    if not root.is_dir():
        pytest.skip("../shared REST fixtures not available")
    d = RestData()
    counts = d.load_fixtures(root)
    assert counts["trades"] >= 67 and counts["markets"] > 100 and counts["cutoff"] == 1
    a = api(d)
    live = [t for p in walk(a, "/markets/trades", "trades", limit=1000) for t in p]
    hist = [t for p in walk(a, "/historical/trades", "trades", limit=1000) for t in p]
    assert len(live) + len(hist) == len(d.trades)
