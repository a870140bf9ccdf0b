"""Drive the local sim with Kalshi's official SDK (``kalshi-python-sync``, Python >= 3.13).

Run by tests/test_sim_sdk.py under a 3.13 venv that has the SDK installed:

    python3.13 driver.py CONFIG.json

CONFIG: ``{"base_url", "key_id", "private_key_pem" (path), "market", "fixture_market",
"trade_market", "series", "event", "historical_market", "start_ts", "end_ts"}``.

Every call goes through the SDK's own API classes, so each response is deserialised into (and
validated by) the SDK's pydantic models; a call is ``ok`` when that succeeds and the driver's
own checks on the content hold. Every request is signed with the SDK's ``KalshiAuth``. Prints
one JSON document: ``{"sdk_version", "results": [{"call", "ok", "detail", "data"}], "todo"}``.
"""

from __future__ import annotations

import json
import sys
import traceback
from types import SimpleNamespace
from typing import Any, Callable

import kalshi_python_sync as k
from kalshi_python_sync.auth import KalshiAuth
from checks import CheckFailed, check

#: Trading calls the sim does not serve yet (the trading suite, ``cfg["trading"]``, runs the
#: ones it serves: TRADING_CALLS in trading_calls.py; tests/test_sim_trading_sdk.py).
TODO_TRADING = [
    ("ExchangeApi.get_user_data_timestamp", "GET /exchange/user_data_timestamp"),
    ("HistoricalApi.get_fills_historical", "GET /historical/fills"),
    ("HistoricalApi.get_historical_orders", "GET /historical/orders"),
    ("HistoricalApi.get_historical_positions", "GET /historical/positions"),
]


def client(cfg: dict[str, Any]) -> k.ApiClient:
    conf = k.Configuration(host=cfg["base_url"])
    api = k.ApiClient(conf)
    with open(cfg["private_key_pem"]) as f:
        api.kalshi_auth = KalshiAuth(cfg["key_id"], f.read())
    return api


def pages(fetch: Callable[[str | None], Any], items: str, limit_pages: int = 50) -> list:
    """Every item of a cursor-paginated call; checks the cursor ends with ``""``."""
    out, cursor = [], None
    for _ in range(limit_pages):
        r = fetch(cursor)
        out.extend(getattr(r, items))
        cursor = r.cursor
        if not cursor:
            return out
    raise CheckFailed(f"more than {limit_pages} pages")


CALLS = [
    ("get_exchange_status", "status"),
    ("get_exchange_schedule", "schedule"),
    ("get_markets (paged)", "markets_paged"),
    ("get_markets (filters)", "markets_filtered"),
    ("get_market", "market_one"),
    ("get_market_orderbook(s)", "book"),
    ("get_trades", "trades"),
    ("get_series / get_series_list", "series"),
    ("get_events", "events"),
    ("get_event (+metadata, fee changes, multivariate)", "event_one"),
    ("candlesticks (market, batch, event)", "candles"),
    ("historical (cutoff, markets, market, candlesticks, trades)", "historical"),
]


def context(cfg: dict[str, Any], api: k.ApiClient) -> SimpleNamespace:
    """The SDK API objects and the config's names, for the checks below."""
    return SimpleNamespace(
        cfg=cfg, ex=k.ExchangeApi(api), mk=k.MarketApi(api), ev=k.EventsApi(api),
        hi=k.HistoricalApi(api), m=cfg["market"], fm=cfg["fixture_market"],
        tm=cfg["trade_market"], s=cfg["series"], e=cfg["event"], hm=cfg["historical_market"],
        win={"start_ts": cfg["start_ts"], "end_ts": cfg["end_ts"]})


def market_checks(x: SimpleNamespace) -> dict[str, Callable[[], Any]]:
    """Checks by name (closures over the context)."""
    ex, mk, cfg, m, fm, tm, hm = x.ex, x.mk, x.cfg, x.m, x.fm, x.tm, x.hm

    def status():
        r = ex.get_exchange_status()
        check(r.exchange_active and r.trading_active, "exchange not active")

    def schedule():
        r = ex.get_exchange_schedule()
        check(len(r.schedule.standard_hours) == 1, "one weekly schedule")

    def markets_paged():
        got = pages(lambda c: mk.get_markets(limit=3, cursor=c), "markets")
        tickers = [x.ticker for x in got]
        check(len(tickers) == len(set(tickers)), "a market repeated across pages")
        check(m in tickers and fm in tickers, "known markets missing")
        check(hm not in tickers, "a historical market listed by /markets")
        return {"n": len(tickers)}

    def markets_filtered():
        op = pages(lambda c: mk.get_markets(limit=100, cursor=c, status="open"), "markets")
        check(all(x.status == "active" for x in op), "status=open returned non-active")
        upd = mk.get_markets(min_updated_ts=0, mve_filter="exclude", limit=1000).markets
        new = mk.get_markets(min_created_ts=cfg["end_ts"] + 10**8, limit=1000).markets
        check(new == [], "min_created_ts in the future matched markets")
        only = mk.get_markets(mve_filter="only", limit=1000).markets
        check(all(x.mve_collection_ticker for x in only), "mve_filter=only")
        return {"open": len(op), "updated": len(upd)}

    def market_one():
        for t in (m, fm):
            r = mk.get_market(t)
            check(r.market.ticker == t, f"asked {t}, got {r.market.ticker}")
        return {"yes_bid": mk.get_market(m).market.yes_bid_dollars}

    def book():
        r = mk.get_market_orderbook(m, depth=3)
        check(len(r.orderbook_fp.yes_dollars) <= 3, "depth not applied")
        rs = mk.get_market_orderbooks(tickers=[m, fm])
        check([x.ticker for x in rs.orderbooks] == [m, fm], "orderbooks order")
        return {"yes": r.orderbook_fp.yes_dollars, "no": r.orderbook_fp.no_dollars}

    def trades():
        got = pages(lambda c: mk.get_trades(limit=7, cursor=c), "trades")
        one = pages(lambda c: mk.get_trades(ticker=tm, limit=1000, cursor=c), "trades")
        check(one and all(t.ticker == tm for t in one), "ticker filter")
        return {"n": len(got), "n_ticker": len(one)}

    return {"status": status, "schedule": schedule, "markets_paged": markets_paged,
            "markets_filtered": markets_filtered, "market_one": market_one, "book": book,
            "trades": trades}


def event_checks(x: SimpleNamespace) -> dict[str, Callable[[], Any]]:
    """Checks by name (closures over the context)."""
    ex, mk, ev, cfg, s, e = x.ex, x.mk, x.ev, x.cfg, x.s, x.e

    def series():
        r = mk.get_series(s, include_volume=True)
        check(r.series.ticker == s, "series ticker")
        lst = mk.get_series_list().series
        check(s in [x.ticker for x in lst], "series missing from the list")
        return {"n": len(lst)}

    def events():
        got = pages(lambda c: ev.get_events(limit=2, cursor=c), "events")
        ets = [x.event_ticker for x in got]
        check(e in ets and len(ets) == len(set(ets)), "events pages")
        nested = ev.get_events(with_nested_markets=True, series_ticker=s, limit=200).events
        check(all(x.series_ticker == s and x.markets is not None for x in nested), "nested")
        return {"n": len(ets)}

    def event_one():
        r = ev.get_event(e, with_nested_markets=True)
        check(r.event.event_ticker == e and r.markets, "event and its markets")
        h = ev.get_event(cfg["historical_event"])
        check(h.event.event_ticker == cfg["historical_event"], "historical market's event")
        ev.get_event_metadata(e)
        ev.get_event_fee_changes()
        ev.get_multivariate_events()
        ex.get_series_fee_changes()
        return {"markets": len(r.markets)}

    return {"series": series, "events": events, "event_one": event_one}


def history_checks(x: SimpleNamespace) -> dict[str, Callable[[], Any]]:
    """Checks by name (closures over the context)."""
    mk, ev, hi, cfg, m = x.mk, x.ev, x.hi, x.cfg, x.m
    tm, s, e, hm, win = x.tm, x.s, x.e, x.hm, x.win

    def candles():
        r = mk.get_market_candlesticks(s, m, period_interval=1, **win)
        check(r.candlesticks, "no candles for a market with book history")
        ends = [c.end_period_ts for c in r.candlesticks]
        check(ends == sorted(ends) and all(x % 60 == 0 for x in ends), "period ends")
        b = mk.batch_get_market_candlesticks(market_tickers=f"{m},{tm}", period_interval=60,
                                             start_ts=0, end_ts=4_000_000_000)
        check([x.market_ticker for x in b.markets] == [m, tm], "batch order")
        check(b.markets[1].candlesticks, "no candles for a market with trades")
        evc = ev.get_market_candlesticks_by_event(e, s, period_interval=1440, **win)
        check(m in evc.market_tickers, "event candles")
        last = r.candlesticks[-1]
        return {"last": {"end": last.end_period_ts, "bid": last.yes_bid.close_dollars,
                         "ask": last.yes_ask.close_dollars},
                "trade_volume": [c.volume_fp for c in b.markets[1].candlesticks]}

    def historical():
        cut = hi.get_historical_cutoff()
        hms = pages(lambda c: hi.get_historical_markets(limit=1, cursor=c), "markets")
        check(hm in [x.ticker for x in hms], "historical market missing")
        one = hi.get_historical_market(hm)
        check(one.market.ticker == hm and one.market.status == "finalized", "historical one")
        hc = hi.get_market_candlesticks_historical(hm, period_interval=60, start_ts=0,
                                                   end_ts=4_000_000_000)
        ht = pages(lambda c: hi.get_trades_historical(limit=5, cursor=c), "trades")
        check(all(t.created_time < cut.trades_created_ts for t in ht), "historical trades")
        htm = cfg["historical_trade_market"]
        hct = hi.get_market_candlesticks_historical(htm, period_interval=1, start_ts=0,
                                                    end_ts=4_000_000_000)
        check(hct.candlesticks and all(c.price.close is not None for c in hct.candlesticks),
              "historical candles of a market with historical trades")
        return {"markets": len(hms), "trades": len(ht), "candles": len(hc.candlesticks),
                "trade_volume": [c.volume for c in hct.candlesticks]}

    return {"candles": candles, "historical": historical}


def calls(cfg: dict[str, Any], api: k.ApiClient) -> list[tuple[str, Callable[[], Any]]]:
    """``(call name, check)`` in the order they run (the trading suite with
    ``cfg["trading"]``, else the market-data suite)."""
    if cfg.get("trading"):
        from trading_calls import TRADING_CALLS, trading_checks

        fns = trading_checks(cfg, api)
        return [(name, fns[fn]) for name, fn in TRADING_CALLS]
    x = context(cfg, api)
    fns = {**market_checks(x), **event_checks(x), **history_checks(x)}
    return [(name, fns[fn]) for name, fn in CALLS]


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    api = client(cfg)
    results = []
    for name, fn in calls(cfg, api):
        try:
            data = fn()
            results.append({"call": name, "ok": True, "detail": "", "data": data})
        except Exception as e:  # noqa: BLE001 - reported per call
            tb = traceback.format_exception_only(type(e), e)
            results.append({"call": name, "ok": False, "detail": "".join(tb)[-2000:],
                            "data": None})
    print(json.dumps({"sdk_version": k.__version__, "results": results,
                      "todo": [f"{a}: {b}" for a, b in TODO_TRADING]}))


if __name__ == "__main__":
    main()
