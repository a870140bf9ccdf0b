"""Trade backfill (kalshi_platform.backfill) against a fake Kalshi serving the 55 real manta_prod
trades, paginated 2 per page, with a cutoff splitting history and live tiers and injected 429s
(``httpx.MockTransport``, fake clock: no sleeping).

Oracle: the fixture JSON itself — each trade's ``Decimal`` prices/count and stdlib-parsed time.
Market *metadata* for the traded tickers was not captured, so the fake answers
``/markets/{t}`` (a third of them) and ``/historical/markets/{t}`` (another third) with minimal
stubs ``{"ticker", "event_ticker", "market_type", "status"}`` (no open/close times, so no
clipping) and 404s for the last third, which the backfill accepts because they have trades on
the tape. The trades are the real data under test.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from api_fakes import FakeClock, FakeKalshi, bundled, iso_ns, load, manta_trades, \
    max_burst_excess
from kalshi_platform.api.rest import RestClient, RestError, TokenBucket
from kalshi_platform.backfill import (
    DAY_NS,
    BackfillError,
    Checkpoint,
    Target,
    Window,
    parse_time,
    parse_window,
    plan_windows,
    resolve_markets,
    run_backfill,
    storage_trade_counts,
    validate_counts,
)
from kalshi_platform.api.models import Market
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

D = Decimal
TRADES = manta_trades()
TICKERS = sorted({t["ticker"] for t in TRADES})
START = parse_time("2026-08-24")
END = parse_time("2026-08-30", end=True)
# between trades of the same market within one second (KXBTC15M-26AUG241130-30 has trades at
# .538108 (historical) and .587693/.595587 (live)): the harshest split
CUTOFF = "2026-08-24T15:15:38.56Z"
RATE_TOKENS, COST = 200.0, 10.0   # Basic tier: 20 req/s, burst 20


def stub(t: str) -> dict:
    return {"ticker": t, "event_ticker": t.rsplit("-", 1)[0], "market_type": "binary",
            "status": "finalized"}


def make_fake(**kw) -> FakeKalshi:
    kw.setdefault("trades", TRADES)
    kw.setdefault("cutoff", CUTOFF)
    kw.setdefault("page_cap", 2)
    return FakeKalshi(markets=[stub(t) for t in TICKERS[::3]],
                      historical_markets=[stub(t) for t in TICKERS[1::3]], **kw)


def make_client(fake: FakeKalshi, clock: FakeClock) -> tuple[RestClient, list[float]]:
    """A client on the fake (MockTransport) and the fake-clock time of every request sent."""
    times: list[float] = []
    inner = fake.transport()

    async def handler(req: httpx.Request) -> httpx.Response:
        times.append(clock())
        return await inner.handle_async_request(req)

    c = RestClient("https://fake.kalshi.test/trade-api/v2", transport=httpx.MockTransport(handler),
                   read_tokens_per_s=RATE_TOKENS, request_cost=COST, clock=clock,
                   sleep=clock.sleep, rng=random.Random(3), backoff_base_s=0.05,
                   backoff_cap_s=1.0)
    return c, times


def params(target: Target) -> dict:
    return {"target": target.describe(), "start_ns": START, "end_ns": END, "window_s": 86400}


def run(fake, tmp_path: Path, *, target=Target(tickers=tuple(TICKERS)), ck_name="ck.json",
        store=None, replace=True, on_progress=None, concurrency=4, clock=None, **kw):
    clock = clock or FakeClock()
    client, times = make_client(fake, clock)
    mem = InMemoryPublisher()
    pq = ParquetStore(store or tmp_path / "store", "backfill-test", batch_rows=1_000_000,
                      replace_existing=replace, fsync=False)
    ck = Checkpoint.open(tmp_path / ck_name, params(target))

    async def go():
        async with client:
            return await run_backfill(client, [mem, pq], ck, target=target, start_ns=START,
                                      end_ns=END, concurrency=concurrency,
                                      on_progress=on_progress, **kw)

    try:
        report = asyncio.run(go())
    finally:
        pq.close()
    return report, mem, pq, ck, times, client


def stored_rows(root: Path) -> list[dict]:
    return read_table(root, "trades").to_pylist()


def assert_exactly_the_fixture(rows: list[dict]) -> None:
    """Every fixture trade exactly once, values equal to the Decimal oracle."""
    ids = Counter(r["trade_id"] for r in rows)
    assert set(ids) == {t["trade_id"] for t in TRADES} and set(ids.values()) == {1}
    by_id = {t["trade_id"]: t for t in TRADES}
    for r in rows:
        t = by_id[r["trade_id"]]
        assert r["ticker"] == t["ticker"]
        assert D(str(r["yes_price"])) == D(t["yes_price_dollars"])
        assert D(str(r["count"])) == D(t["count_fp"])
        assert r["taker_side"] == t["taker_outcome_side"]
        ts = r["ts"]
        # stamped like the WebSocket (ms) so live and backfilled copies share the dedup key
        assert int(ts.timestamp()) * 10**6 + ts.microsecond == \
            iso_ns(t["created_time"]) // 1_000_000 * 1000


# -- planning --------------------------------------------------------------------------------


def test_plan_windows_aligns_splits_at_cutoff_and_clips_to_market_span():
    cut = iso_ns(CUTOFF)
    ws = plan_windows(["A"], START, END, cut, 86400)
    assert len(ws) == 8 and ws[0] == Window("A", START, cut, "historical")
    assert ws[1] == Window("A", cut, START + DAY_NS, "live")
    assert all(w.tier == "live" for w in ws[1:]) and ws[-1].end_ns == END
    assert all(a.end_ns == b.start_ns for a, b in zip(ws, ws[1:]))
    # a real market (open/close times) only gets windows within open-1d .. close+1d
    m = Market.from_wire(load(bundled("cockpit_prod/markets_KXMLBGAME_open.json"))["markets"][0])
    lo, hi = parse_time("2026-07-01"), parse_time("2026-09-30")
    mw = plan_windows([m], lo, hi, lo, 86400)
    assert mw[0].start_ns == m.open_ns - DAY_NS and mw[-1].end_ns == m.close_ns + DAY_NS
    assert plan_windows([m], parse_time("2026-01-01"), parse_time("2026-01-05"), 0, 86400) == []
    # 6-hour windows are aligned to multiples of 6 h (UTC)
    w6 = plan_windows(["A"], START + 3600 * 10**9, START + DAY_NS, 0, 6 * 3600)
    assert [w.start_ns - START for w in w6] == [h * 3600 * 10**9 for h in (1, 6, 12, 18)]


def test_parse_time_and_window():
    assert parse_time("2026-08-24") == iso_ns("2026-08-24T00:00:00Z")
    assert parse_time("2026-08-24", end=True) == iso_ns("2026-08-25T00:00:00Z")
    assert parse_time("2026-08-24T15:15:38.56Z") == iso_ns("2026-08-24T15:15:38.56Z")
    assert parse_time("2026-08-24T17:15:38.56+02:00") == iso_ns("2026-08-24T15:15:38.56Z")
    assert parse_window("6h") == 21600 and parse_window("1d") == 86400
    for bad in ("24-08-2026", "yesterday", ""):
        with pytest.raises(BackfillError):
            parse_time(bad)
    for bad in ("1w", "30s", "32d", "d"):
        with pytest.raises(BackfillError):
            parse_window(bad)
    with pytest.raises(BackfillError, match="exactly one"):
        Target(tickers=("A",), series="S")


# -- the run ---------------------------------------------------------------------------------


def test_every_trade_lands_exactly_once_across_tiers_with_429s(tmp_path):
    fake = make_fake()
    fake.fail_every = 4
    report, mem, pq, ck, times, client = run(fake, tmp_path)
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))
    assert len(mem.events["trades"]) == 55
    assert report["trades_inserted"] == report["trades_total"] == 55
    assert report["duplicates_skipped"] == 0 and report["complete"]
    assert report["windows"]["total"] == len(TICKERS) * 7 + len(TICKERS)  # + the split day
    assert report["windows"]["historical"] == len(TICKERS)
    # both tiers were read; the KXBTC15M trades straddling the cutoff came from both
    paths = Counter(r["path"] for r in fake.log)
    assert paths["/trade-api/v2/historical/trades"] >= len(TICKERS)
    assert paths["/trade-api/v2/markets/trades"] >= len(TICKERS) * 7
    assert report["status_counts"]["429"] > 0 and report["retries"] == report["status_counts"]["429"]
    # the request rate (retries included) never exceeded the bucket
    assert len(times) == report["requests"] == len(fake.log)
    assert max_burst_excess(times, RATE_TOKENS / COST, RATE_TOKENS / COST) <= 1e-9
    assert max(times) - min(times) > (len(times) - 20) / 20 - 1e-6
    # per-day counts the API returned
    want = Counter(t["created_time"][:10] for t in TRADES)
    assert ck.day_counts() == dict(sorted(want.items()))
    v = validate_counts(ck, [pq], START, END)
    assert v["ok"] and v["sinks"][0]["mismatches"] == []


class Stop(Exception):
    pass


@pytest.mark.parametrize("stop_after_pages", [3, 40])
def test_interrupted_run_resumed_gives_the_same_result(tmp_path, stop_after_pages):
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    run(make_fake(), clean_dir)
    clean = sorted((r["trade_id"], r["ts"], r["yes_price"], r["count"])
                   for r in stored_rows(clean_dir / "store"))

    def stopper(st):
        if st.pages >= stop_after_pages:
            raise Stop(f"after {st.pages} pages")

    fake = make_fake()
    fake.fail_every = 5
    with pytest.raises(Stop):
        run(fake, tmp_path, on_progress=stopper)
    ck1 = Checkpoint.open(tmp_path / "ck.json", params(Target(tickers=tuple(TICKERS))))
    assert ck1.resuming and not ck1.complete and ck1.plan
    committed_before = len(ck1.done)
    report, *_ = run(make_fake(), tmp_path, replace=False)
    assert report["complete"] and report["windows"]["before"] == committed_before
    assert report["trades_total"] == 55
    got = sorted((r["trade_id"], r["ts"], r["yes_price"], r["count"])
                 for r in stored_rows(tmp_path / "store"))
    assert got == clean
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))


def test_crash_between_flush_and_checkpoint_is_rolled_back(tmp_path, monkeypatch):
    """Every checkpoint save after the plan fails (as if the process died right after the
    first commit's flush): those Parquet files are not in the checkpoint, so the resumed run
    deletes them and fetches their windows again."""
    real_save = Checkpoint.save
    calls = {"n": 0}

    def flaky_save(self):
        calls["n"] += 1
        if calls["n"] >= 2:  # 1 = the plan; 2 = the first commit, after its flush
            raise OSError("disk full (injected)")
        real_save(self)

    monkeypatch.setattr(Checkpoint, "save", flaky_save)
    with pytest.raises(OSError, match="injected"):
        run(make_fake(), tmp_path, commit_rows=10)
    orphans = list((tmp_path / "store" / "trades").glob("date=*/*.parquet"))
    assert orphans  # the flush happened
    monkeypatch.setattr(Checkpoint, "save", real_save)
    report, *_ = run(make_fake(), tmp_path, replace=False, commit_rows=10)
    assert report["files_rolled_back"] == len(orphans) and report["complete"]
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))


def test_duplicated_trades_in_api_pages_are_skipped(tmp_path):
    dup = TRADES + TRADES[:7]  # the API repeats 7 trades (e.g. a page boundary shifting)
    report, mem, *_ = run(make_fake(trades=dup), tmp_path)
    assert report["trades_inserted"] == 55 and report["duplicates_skipped"] == 7
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))


def test_cutoff_moving_mid_run_loses_nothing(tmp_path):
    """The cutoff starts before every trade (all live) and moves past all of them while the
    run is under way: windows read from the live tier after the move come back empty, and the
    moved part is read from the historical tier instead."""
    fake = make_fake(cutoff="2026-08-20T00:00:00Z")

    def mover(st):
        if st.pages == 5:
            fake.cutoff = "2026-09-01T00:00:00Z"

    report, *_ = run(fake, tmp_path, on_progress=mover, concurrency=2)
    assert report["cutoff_moves"] > 0
    assert report["windows"]["historical"] == 0  # planned before the move
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))


def test_fresh_rerun_rewrites_its_files(tmp_path):
    run(make_fake(), tmp_path)
    (tmp_path / "ck.json").unlink()
    run(make_fake(), tmp_path, replace=True)
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))


def test_validate_detects_missing_rows(tmp_path):
    _, mem, pq, ck, *_ = run(make_fake(), tmp_path)
    # the same trades again from another writer (e.g. the live plant) and a trade of a market
    # outside the backfill: counts are of distinct trade ids of the backfilled markets
    other = ParquetStore(tmp_path / "store", "plant-x", fsync=False)
    for ev in mem.events["trades"]:
        other.publish(ev)
    other.publish(mem.events["trades"][0]._replace(ticker="KXOTHER-1", trade_id="x-1"))
    other.close()
    assert validate_counts(ck, [pq], START, END)["ok"]
    day = tmp_path / "store" / "trades" / "date=2026-08-30"
    for f in day.glob("*.parquet"):
        f.unlink()
    v = validate_counts(ck, [pq], START, END)
    assert not v["ok"]
    assert v["sinks"][0]["mismatches"] == [{"day": "2026-08-30", "api": 45, "stored": 0}]
    assert storage_trade_counts(tmp_path / "store", TICKERS, START, END) == {"2026-08-24": 10}
    with pytest.raises(BackfillError, match="--validate"):
        validate_counts(ck, [InMemoryPublisher()], START, END)


def test_checkpoint_for_another_run_is_refused(tmp_path):
    run(make_fake(), tmp_path)
    other = dict(params(Target(tickers=tuple(TICKERS))), end_ns=END + DAY_NS)
    with pytest.raises(BackfillError, match="different backfill .*end_ns"):
        Checkpoint.open(tmp_path / "ck.json", other)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(BackfillError, match="unreadable"):
        Checkpoint.open(tmp_path / "bad.json", other)
    assert not Checkpoint.open(tmp_path / "ck.json", other, restart=True).resuming


def test_resolve_series_event_and_unknown_tickers():
    markets = load(bundled("cockpit_prod/markets_KXMLBGAME_open.json"))["markets"]
    hist = [stub("KXMLBGAME-26JUN01NYMATL-NYM")]
    fake = FakeKalshi(markets=markets, historical_markets=hist, page_cap=4)
    clock = FakeClock()
    client, _ = make_client(fake, clock)

    async def go():
        async with client:
            s = await resolve_markets(client, Target(series="KXMLBGAME"))
            e = await resolve_markets(client, Target(event="KXMLBGAME-26AUG091610TBSEA"))
            with pytest.raises(BackfillError, match="unknown market 'NOPE'"):
                await resolve_markets(client, Target(tickers=("NOPE",)))
            with pytest.raises(BackfillError, match="no markets found for series KXNONE"):
                await resolve_markets(client, Target(series="KXNONE"))
            return s, e

    s, e = asyncio.run(go())
    assert [m.ticker for m in s] == sorted([m["ticker"] for m in markets] + [hist[0]["ticker"]])
    # a server without /historical/markets (404): the live tier's markets, and a warning
    fake.routes["/trade-api/v2/historical/markets"] = lambda q: (404, {"error": "nope"})
    client2, _ = make_client(fake, clock)

    async def go2():
        async with client2:
            return await resolve_markets(client2, Target(series="KXMLBGAME"))

    assert [m.ticker for m in asyncio.run(go2())] == sorted(m["ticker"] for m in markets)
    assert [m.ticker for m in e] == ["KXMLBGAME-26AUG091610TBSEA-SEA",
                                     "KXMLBGAME-26AUG091610TBSEA-TB"]


def test_rest_failure_keeps_completed_windows(tmp_path):
    """The server starts failing for good after a while: the run stops with RestError, the
    windows that completed are committed, and a later run finishes the rest."""
    fake = make_fake()

    def breaker(st):
        if st.windows_done == 30:
            fake.fail_next = [503] * 10_000

    with pytest.raises(RestError, match="gave up"):
        run(fake, tmp_path, on_progress=breaker, concurrency=1, commit_rows=0)
    ck = Checkpoint.open(tmp_path / "ck.json", params(Target(tickers=tuple(TICKERS))))
    assert len(ck.done) >= 29
    report, *_ = run(make_fake(), tmp_path, replace=False)
    assert report["complete"] and report["windows"]["before"] == len(ck.done)
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))


def test_shared_token_bucket_instance_is_respected():
    b = TokenBucket(100, 100)
    c = RestClient("http://127.0.0.1:9/trade-api/v2", bucket=b)
    assert c.bucket is b


@pytest.mark.parametrize("cutoff", ["2026-06-25T00:00:00Z", CUTOFF])
def test_range_bounds_are_exact_to_the_microsecond(tmp_path, cutoff):
    """A range inside one second: the API is asked for whole seconds (±1 s), and only trades
    with start ≤ created_time < end are kept (oracle: the fixture filtered by the same range)."""
    lo_txt, hi_txt = "2026-08-24T15:15:38.5Z", "2026-08-24T15:15:38.59Z"
    lo, hi = parse_time(lo_txt), parse_time(hi_txt)
    target = Target(tickers=tuple(TICKERS))
    fake = make_fake(cutoff=cutoff)
    client, _ = make_client(fake, FakeClock())
    mem = InMemoryPublisher()
    ck = Checkpoint.open(tmp_path / "ck.json", {"t": 1})

    async def go():
        async with client:
            return await run_backfill(client, [mem], ck, target=target, start_ns=lo, end_ns=hi)

    report = asyncio.run(go())
    want = sorted(t["trade_id"] for t in TRADES if lo <= iso_ns(t["created_time"]) < hi)
    assert len(want) == 5
    assert sorted(e.trade_id for e in mem.events["trades"]) == want
    assert report["outside_window"] > 0 and report["duplicates_skipped"] == 0


def test_a_sink_that_cannot_make_rows_durable_stops_the_checkpoint(tmp_path):
    """A sink whose flush() returns False (the QuestDB writer: rows neither acknowledged nor
    spooled) must not be checkpointed past: the run stops, and a re-run redoes those windows."""

    class NotDurable(InMemoryPublisher):
        def flush(self):
            return False

    fake = make_fake()
    clock = FakeClock()
    client, _ = make_client(fake, clock)
    target = Target(tickers=tuple(TICKERS))
    ck = Checkpoint.open(tmp_path / "ck.json", params(target))

    async def go():
        async with client:
            return await run_backfill(client, [NotDurable()], ck, target=target,
                                      start_ns=START, end_ns=END, concurrency=2)

    with pytest.raises(BackfillError, match="could not make the rows durable"):
        asyncio.run(go())
    again = Checkpoint.open(tmp_path / "ck.json", params(target))
    assert not again.done  # nothing was marked done
    run(fake, tmp_path, ck_name="ck.json")  # a durable sink: the re-run completes
    assert_exactly_the_fixture(stored_rows(tmp_path / "store"))


def test_a_backfilled_trade_and_the_same_trade_captured_live_share_the_dedup_key():
    """QuestDB upserts only when every dedup key matches: the plant stamps a WS trade with
    ``ts_ms``, so the backfill must stamp the REST trade (µs ``created_time``) the same way."""
    from kalshi_platform.api.models import Trade
    from kalshi_platform.backfill import _live_ts
    from kalshi_platform.storage.schema import TABLES
    from kalshi_platform.ticker_plant.plant import TickerPlant

    rest = TRADES[0]
    t = Trade.from_wire(rest)
    assert t.ts_ns % 1_000_000  # the REST time has sub-millisecond digits
    ws = {"type": "trade", "sid": 1, "seq": 1, "msg": {
        "trade_id": t.trade_id, "market_ticker": t.ticker,
        "yes_price_dollars": rest["yes_price_dollars"], "no_price_dollars": rest["no_price_dollars"],
        "count_fp": rest["count_fp"], "taker_outcome_side": rest.get("taker_outcome_side", "yes"),
        "ts": t.ts_ns // 10**9, "ts_ms": t.ts_ns // 10**6}}
    mem = InMemoryPublisher()
    plant = TickerPlant([mem])
    plant.process(ws, t.ts_ns)
    tbl = TABLES["trades"]
    idx = [tbl.column_names.index(c) for c in tbl.dedup_keys]
    key = lambda ev: tuple(tbl.rows(ev)[0][i] for i in idx)  # noqa: E731
    assert key(mem.events["trades"][0]) == key(_live_ts(t.to_event(0)))
