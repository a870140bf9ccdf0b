"""Typed REST records (kalshi_platform.api.models) against real Kalshi responses.

Oracle: ``Decimal`` of the wire strings scaled by hand (µ$ = dollars × 10^6, centi-contracts
= contracts × 100) and a standard-library RFC3339 parser (``api_fakes.iso_ns``); no platform
code is used to compute expected values.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from api_fakes import bundled, iso_ns, load, manta_trades, shared
from conftest import SSMD_TRADE
from kalshi_platform.api.models import (
    Candlestick,
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

D = Decimal
MICRO = D(10) ** 6


def usd(s: str | None) -> int | None:
    if s is None or s == "":
        return None
    v = D(s) * MICRO
    assert v == v.to_integral_value()
    return int(v)


def cc(s: str | None) -> int | None:
    if s is None or s == "":
        return None
    v = D(s) * 100
    assert v == v.to_integral_value()
    return int(v)


MARKET_PRICE_FIELDS = {
    "yes_bid": "yes_bid_dollars", "yes_ask": "yes_ask_dollars", "no_bid": "no_bid_dollars",
    "no_ask": "no_ask_dollars", "last_price": "last_price_dollars",
    "settlement_value": "settlement_value_dollars",
}
MARKET_SIZE_FIELDS = {
    "yes_bid_size": "yes_bid_size_fp", "yes_ask_size": "yes_ask_size_fp", "volume": "volume_fp",
    "volume_24h": "volume_24h_fp", "open_interest": "open_interest_fp",
}


def check_market(raw: dict) -> Market:
    m = Market.from_wire(raw)
    assert m.ticker == raw["ticker"] and m.event_ticker == raw["event_ticker"]
    assert m.status == raw["status"] and m.result == raw.get("result", "")
    for attr, key in MARKET_PRICE_FIELDS.items():
        assert getattr(m, attr) == usd(raw.get(key)), (m.ticker, attr)
    for attr, key in MARKET_SIZE_FIELDS.items():
        assert getattr(m, attr) == cc(raw.get(key)), (m.ticker, attr)
    assert m.open_ns == iso_ns(raw["open_time"]) and m.close_ns == iso_ns(raw["close_time"])
    if raw.get("settlement_ts"):
        assert m.settlement_ns == iso_ns(raw["settlement_ts"])
    assert [(r.start, r.end, r.step) for r in m.price_ranges] == [
        (usd(r["start"]), usd(r["end"]), usd(r["step"])) for r in raw["price_ranges"]]
    for k in ("floor_strike", "cap_strike"):
        v = getattr(m, k)
        assert not isinstance(v, float)
        if raw.get(k) is not None:
            assert v == D(repr(raw[k])) if isinstance(raw[k], float) else v == raw[k]
    assert m.raw is raw
    return m


def test_markets_pages_parse_against_decimal_oracle():
    n = 0
    for i in (1, 2, 3):
        body = decode_json(bundled(f"fortuna_demo/markets__page{i}.json").read_bytes())
        raw_json = load(bundled(f"fortuna_demo/markets__page{i}.json"))
        for obj, raw in zip(body["markets"], raw_json["markets"]):
            m = check_market(raw)
            # the client's decoder keeps fractions exact (Decimal, never float)
            m2 = Market.from_wire(obj)
            assert isinstance(obj.get("floor_strike", D(0)), (D, int))
            assert m2.floor_strike == m.floor_strike and m2.yes_bid == m.yes_bid
            n += 1
    assert n == 15


def test_market_single_and_its_orderbook_agree():
    """market_single.json: the market object and the order book were captured together; the
    market's top of book must equal the sorted book's best levels."""
    raw = load(bundled("cockpit_prod/market_single.json"))
    m = check_market(raw["single"]["market"])
    check_market(raw["nested"])
    ob = Orderbook.from_wire(raw["orderbook"], m.ticker)
    yes = raw["orderbook"]["orderbook_fp"]["yes_dollars"]
    no = raw["orderbook"]["orderbook_fp"]["no_dollars"]
    assert yes[0][0] < yes[-1][0]  # the wire sends ascending: sorting is needed
    assert ob.yes == tuple(sorted(((usd(p), cc(q)) for p, q in yes), reverse=True))
    assert ob.no == tuple(sorted(((usd(p), cc(q)) for p, q in no), reverse=True))
    best_yes = max(yes, key=lambda lv: D(lv[0]))
    best_no = max(no, key=lambda lv: D(lv[0]))
    assert ob.best_yes_bid == (usd(best_yes[0]), cc(best_yes[1])) == (m.yes_bid, m.yes_bid_size)
    assert ob.best_yes_ask == (usd(str(1 - D(best_no[0]))), cc(best_no[1]))
    assert ob.best_yes_ask == (m.yes_ask, m.yes_ask_size)
    assert [p for p, _ in ob.yes_asks] == sorted(p for p, _ in ob.yes_asks)


def test_orderbook_fixtures_and_legacy_shape():
    base = load(bundled("fortuna_demo/orderbook__base.json"))
    ob = Orderbook.from_wire(base, "KXWTACHALLENGERMATCH-26JUN11JIMLEP-LEP")
    assert ob.yes == ((470000, 300),) and ob.no == ((480000, 300),)
    # the same book in the pre-2026-03-12 shape (kalshi-api.md §3.6): cents and integer counts
    legacy = {"orderbook": {"yes": [[47, 3]], "no": [[48, 3]]}}
    assert Orderbook.from_wire(legacy, ob.ticker) == ob
    legacy_d = {"orderbook": {"yes_dollars": [["0.4700", 3]], "no_dollars": [["0.4800", 3]],
                              "yes": [[47, 3]], "no": [[48, 3]]}}
    assert Orderbook.from_wire(legacy_d, ob.ticker) == ob
    assert Orderbook.from_wire({"orderbook": {"yes": None, "no": None}}).yes == ()
    for book in load(bundled("cockpit_prod/combo_orderbooks.json")):
        o = Orderbook.from_wire(book)
        assert o.ticker == book["ticker"]
        fp = book["orderbook_fp"]
        for side, key in (("yes", "yes_dollars"), ("no", "no_dollars")):
            want = sorted(((usd(p), cc(q)) for p, q in fp[key] or []), reverse=True)
            assert list(getattr(o, side)) == want


def test_trades_against_decimal_oracle():
    raws = manta_trades() + load(bundled("fortuna_demo/trades__public_recorded.json"))["trades"]
    assert len(raws) == 67
    for raw in raws:
        t = Trade.from_wire(raw)
        assert t.trade_id == raw["trade_id"] and t.ticker == raw["ticker"]
        assert t.yes_price == usd(raw["yes_price_dollars"])
        assert t.no_price == usd(raw["no_price_dollars"])
        assert t.yes_price + t.no_price == 1_000_000
        assert t.count == cc(raw["count_fp"])
        assert t.ts_ns == iso_ns(raw["created_time"]) and t.created_time == raw["created_time"]
        assert t.taker_side == raw["taker_outcome_side"]
        assert t.taker_book_side == raw["taker_book_side"]
        assert t.is_block_trade is raw["is_block_trade"]
        assert (t.yes_price_dollars, t.count_fp) == (raw["yes_price_dollars"], raw["count_fp"])
        ev = t.to_event(recv_ns=5)
        assert (ev.ticker, ev.ts_ns, ev.trade_id, ev.yes_price, ev.no_price, ev.count,
                ev.taker_side, ev.recv_ns) == (t.ticker, t.ts_ns, t.trade_id, t.yes_price,
                                               t.no_price, t.count, t.taker_side, 5)
    sub_cent = [Trade.from_wire(r) for r in raws if r["yes_price_dollars"] == "0.0010"]
    assert sub_cent and all(t.yes_price == 1000 for t in sub_cent)


def test_legacy_integer_trades_match_their_dollar_strings():
    """Real Feb-2026 trades carry both eras; the legacy cents/int path alone must give the same
    numbers as the fixed-point strings."""
    lines = [json.loads(x) for x in SSMD_TRADE.read_text().splitlines() if x.strip()]
    assert len(lines) == 10
    for fr in lines:
        msg = fr["msg"]
        created = datetime.fromtimestamp(msg["ts"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        common = {"trade_id": msg["trade_id"], "ticker": msg["market_ticker"],
                  "taker_side": msg["taker_side"], "created_time": created}
        legacy = Trade.from_wire({**common, "yes_price": msg["yes_price"],
                                  "no_price": msg["no_price"], "count": msg["count"]})
        modern = Trade.from_wire({**common, "yes_price_dollars": msg["yes_price_dollars"],
                                  "no_price_dollars": msg["no_price_dollars"],
                                  "count_fp": msg["count_fp"]})
        assert (legacy.yes_price, legacy.no_price, legacy.count, legacy.taker_side) == \
            (modern.yes_price, modern.no_price, modern.count, modern.taker_side)
        assert legacy.yes_price == usd(msg["yes_price_dollars"])
        assert legacy.yes_price_dollars is None and legacy.ts_ns == msg["ts"] * 10**9
        oldest = Trade.from_wire({**common, "price": msg["yes_price"], "count": msg["count"]})
        assert (oldest.yes_price, oldest.no_price) == (modern.yes_price, modern.no_price)


def test_historical_cutoff():
    raw = load(bundled("manta_prod/historical_cutoff.json"))
    c = HistoricalCutoff.from_wire(raw)
    assert c.trades_created_ts == "2026-06-25T00:00:00Z"
    assert c.trades_created_ns == iso_ns("2026-06-25T00:00:00Z") == 1782345600 * 10**9
    assert c.market_settled_ns == c.orders_updated_ns == c.trades_created_ns
    with pytest.raises(ModelError, match="trades_created_ts"):
        HistoricalCutoff.from_wire({"market_settled_ts": "2026-06-25T00:00:00Z"})


def _check_candle(raw: dict, c: Candlestick) -> None:
    assert c.end_period_ts == raw["end_period_ts"]
    for side in ("yes_bid", "yes_ask"):
        for f in ("open", "high", "low", "close"):
            assert getattr(getattr(c, side), f) == usd(raw[side].get(f"{f}_dollars"))
    for f in ("open", "high", "low", "close", "mean", "previous"):
        assert getattr(c.price, f) == usd(raw["price"].get(f"{f}_dollars"))
    assert c.volume == cc(raw["volume_fp"]) and c.open_interest == cc(raw["open_interest_fp"])


def test_candlesticks_live_and_historical_names():
    body = load(bundled("cockpit_prod/candlesticks_pregame_mlb.json"))["candlesticks_response"]
    cs = Candlesticks.from_wire(body)
    assert cs.ticker == body["ticker"] and len(cs.candlesticks) == len(body["candlesticks"]) == 50
    for raw, c in zip(body["candlesticks"], cs.candlesticks):
        _check_candle(raw, c)
        # the historical endpoint's names (kalshi-api.md §3.8): no _dollars / _fp suffixes
        hist = {"end_period_ts": raw["end_period_ts"],
                "volume": raw["volume_fp"], "open_interest": raw["open_interest_fp"]}
        for side in ("yes_bid", "yes_ask", "price"):
            hist[side] = {k.removesuffix("_dollars"): v for k, v in raw[side].items()}
        assert Candlestick.from_wire(hist) == c


def test_candlesticks_mlb_shared():
    body = load(shared("cockpit_prod/candlesticks_mlb.json"))
    n = 0
    for ticker, resp in body["markets"].items():
        cs = Candlesticks.from_wire(resp, ticker)
        assert cs.ticker == ticker
        for raw, c in zip(resp["candlesticks"], cs.candlesticks):
            _check_candle(raw, c)
            n += 1
    assert n == 48
    no_trades = [c for c in (Candlestick.from_wire(r) for m in body["markets"].values()
                             for r in m["candlesticks"]) if c.price.close is None]
    assert len(no_trades) == 2 and all(c.price.previous is not None for c in no_trades)


def test_series_fee_multiplier_is_exact():
    payloads = load(bundled("cockpit_prod/series_fee_fields.json"))["payloads"]
    raw_bytes = bundled("cockpit_prod/series_fee_fields.json").read_bytes()
    decoded = decode_json(raw_bytes)["payloads"]
    assert len(payloads) == 4
    for name, p in decoded.items():
        s = Series.from_wire(p["series"])
        assert s.ticker == name and s.fee_type == payloads[name]["series"]["fee_type"]
        assert not isinstance(s.fee_multiplier, float)
        assert s.fee_multiplier == D(repr(payloads[name]["series"]["fee_multiplier"]))
        assert s.category == payloads[name]["series"]["category"]
    assert Series.from_wire(decoded["KXMLBGAME"]["series"]).fee_multiplier == D("0.5")


def test_every_shared_market_object_parses():
    """All market objects in the shared REST corpus (settled, closed, active, nested in events,
    MVE combos) parse and agree with the Decimal oracle."""
    import glob

    root = shared("cockpit_prod/markets_settled.json").parents[1]
    n = 0

    def walk(x):
        nonlocal n
        if isinstance(x, dict):
            if "ticker" in x and "event_ticker" in x and "market_type" in x:
                check_market(x)
                n += 1
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for f in sorted(glob.glob(str(root / "*" / "*.json"))):
        walk(json.loads(open(f, "rb").read()))
    assert n >= 600
    settled = load(root / "cockpit_prod" / "markets_settled.json")["markets"]
    fin = [Market.from_wire(m) for m in settled if m["status"] == "finalized"]
    assert len(fin) == 42 and {m.result for m in fin} == {"yes", "no"}
    assert all(m.settlement_value == (1_000_000 if m.result == "yes" else 0) for m in fin)


def test_events_nested_markets_shared():
    body = load(shared("cockpit_prod/events_nfl_preseason.json"))
    evs = [Event.from_wire(e) for e in body["events"]]
    assert len(evs) == 32
    for e, raw in zip(evs, body["events"]):
        assert e.event_ticker == raw["event_ticker"] and e.series_ticker == "KXNFLGAME"
        assert [m.ticker for m in e.markets] == [m["ticker"] for m in raw["markets"]]
        assert all(m.event_ticker == e.event_ticker for m in e.markets)


def test_exchange_status():
    s = ExchangeStatus.from_wire({"exchange_active": True, "trading_active": False,
                                  "exchange_estimated_resume_time": None})
    assert s.exchange_active and not s.trading_active and s.resume_time is None
    with pytest.raises(ModelError):
        ExchangeStatus.from_wire({"exchange_active": "yes"})


@pytest.mark.parametrize("mutate,match", [
    (lambda t: t.update(yes_price_dollars="abc"), "yes_price_dollars"),
    (lambda t: t.update(yes_price_dollars="1.5000"), "outside"),
    (lambda t: t.pop("trade_id"), "trade_id"),
    (lambda t: t.update(count_fp="1.001"), "count_fp"),
    (lambda t: t.update(count_fp="-1.00"), "negative"),
    (lambda t: t.update(created_time="yesterday"), "created_time"),
    (lambda t: t.pop("created_time"), "created_time"),
])
def test_bad_trades_raise_model_error(mutate, match):
    raw = dict(manta_trades()[0])
    mutate(raw)
    with pytest.raises(ModelError, match=match):
        Trade.from_wire(raw)


def test_bad_orderbooks_and_json_raise_model_error():
    with pytest.raises(ModelError, match="outside"):
        Orderbook.from_wire({"orderbook_fp": {"yes_dollars": [["1.0000", "1.00"]]}})
    with pytest.raises(ModelError, match="two levels"):
        Orderbook.from_wire({"orderbook_fp": {"yes_dollars": [["0.5", "1"], ["0.5000", "2"]]}})
    for size in ("0.00", "-1.00", "10000000000.01"):  # the WebSocket snapshot's size rule too
        with pytest.raises(ModelError, match="outside"):
            Orderbook.from_wire({"orderbook_fp": {"yes_dollars": [["0.5000", size]]}})
    with pytest.raises(ModelError, match="neither"):
        Orderbook.from_wire({"something": 1})
    with pytest.raises(ModelError, match="invalid JSON"):
        decode_json(b"{not json")
    with pytest.raises(ModelError, match="ticker"):
        Market.from_wire({"event_ticker": "E"})
