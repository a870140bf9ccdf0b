"""The sim as an exchange, end to end over REST and WS (issue 13 §4, §6 and Acceptance "End
to end").

A user (its own Ed25519 key, from a ``--users`` file) buys YES over REST, through the
platform's own trading client (kalshi_platform/api/trading.py), against the recorded
liquidity of the bundled cockpit capture (``--liquidity``); sees its fill on the ``fill``
channel and its position on ``market_positions`` and ``/portfolio/positions``; is paid $1 per
contract when the sim settles the market yes. A plant subscribed to the sim (the same
``KalshiWSClient`` + ``TickerPlant`` that ``kalshi-platform run`` uses) shows the trade and
the book change. Independent checks: before the user trades, the engine's published books
equal the Decimal oracle's replay of the recording; at the end the plant's books equal the
engine's own ``book_snapshot``; money is conserved (``check_invariants``).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import pytest

from conftest import COCKPIT, until
from oracle_compare import assert_books_match, replay_recorded
from sim_support import public_key_file, settle_market
from kalshi_platform.api.auth import Signer
from kalshi_platform.api.trading import TradingClient
from kalshi_platform.ingestion.ws_client import Backoff, KalshiWSClient
from kalshi_platform.sim.app import SimServer
from kalshi_platform.sim.protocol import WS_PATH
from kalshi_platform.sim.trading import UserSpec, attach_trading, load_users
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

P1 = 1_000_000


def arun(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class PrivateFeed:
    """A user's signed WS connection collecting private frames by type."""

    def __init__(self) -> None:
        self.frames: list[dict] = []

    def of(self, t: str) -> list[dict]:
        return [f for f in self.frames if f.get("type") == t]

    async def run(self, url: str, headers: dict, channels: list[str]) -> None:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, headers=headers) as ws:
            await ws.send_json({"id": 1, "cmd": "subscribe", "params": {"channels": channels}})
            async for m in ws:
                self.frames.append(json.loads(m.data))


@pytest.mark.parametrize("wal", [False, True], ids=["memory", "wal"])
def test_buy_yes_against_recorded_liquidity_fill_position_settlement_and_plant(tmp_path, wal):
    key, pub = public_key_file(tmp_path, "alice")
    users = tmp_path / "users.toml"
    users.write_text(f'[[user]]\nkey_id = "alice"\npublic_key = "{pub}"\n'
                     f'balance_cents = 100000\n')
    specs = load_users(users)
    assert specs == [UserSpec("alice", pub, 100000)]
    oracle = replay_recorded(COCKPIT)

    async def main():
        sim = SimServer(COCKPIT, start="subscribe", ping_interval=0)
        tr = attach_trading(sim, users=specs, liquidity=True,
                            wal_dir=tmp_path / "wal" if wal else None)
        async with sim:
            signer = Signer("alice", key)
            pub_events = InMemoryPublisher()
            plant = TickerPlant([pub_events])
            client = KalshiWSClient(sim.ws_url, plant, sorted(sim.known),
                                    headers=lambda: signer.headers("GET", WS_PATH),
                                    backoff=Backoff(base_s=0.005, cap_s=0.02))
            yes_plant = TickerPlant(use_yes_price=True)  # NO side sent on the YES scale
            yes_client = KalshiWSClient(sim.ws_url, yes_plant, sorted(sim.known),
                                        headers=lambda: signer.headers("GET", WS_PATH),
                                        use_yes_price=True,
                                        backoff=Backoff(base_s=0.005, cap_s=0.02))
            stop = asyncio.Event()
            plant_task = asyncio.create_task(client.run(stop))
            yes_task = asyncio.create_task(yes_client.run(stop))
            mine = PrivateFeed()
            priv = asyncio.create_task(mine.run(sim.ws_url, signer.headers("GET", WS_PATH),
                                                ["fill", "market_positions", "user_orders"]))
            await sim.done.wait()
            await tr.host.drained()
            # the engine's books are the recording's books (the oracle's replay)
            assert_books_match(tr.host, oracle)
            await until(lambda: mine.of("subscribed") and len(mine.of("subscribed")) == 3)

            ex = tr.host.exchange
            t = sorted(ex.markets)[0]
            before = ex.book_snapshot(t)
            best_no, no_size = before["no"][0]
            ask = P1 - best_no
            async with TradingClient(signer, base_url=sim.rest_url) as tc:
                bal0 = (await tc.balance())["balance"]
                ans = await tc.create_order(t, "yes", "buy", 200, ask,
                                            time_in_force="immediate_or_cancel")
                assert ans["fill_count"] == "2.00" and ans["remaining_count"] == "0.00"
                assert ans["average_fill_price"] == f"{ask / P1:.4f}"
                oid = ans["order_id"]
                await until(lambda: mine.of("fill"), what="fill on the fill channel")
                f = mine.of("fill")[0]["msg"]
                assert (f["order_id"], f["market_ticker"], f["count_fp"], f["is_taker"]) == \
                    (oid, t, "2.00", True)
                assert f["yes_price_dollars"] == f"{ask / P1:.4f}"
                await until(lambda: mine.of("market_position"))
                assert mine.of("market_position")[-1]["msg"]["position_fp"] == "2.00"
                pos = await tc.positions()
                assert [(p["ticker"], p["position_fp"]) for p in pos["market_positions"]] == \
                    [(t, "2.00")]
                fills = [x async for x in tc.fills()]
                assert [x["order_id"] for x in fills] == [oid]
                order = await tc.get_order(oid)
                assert order["status"] == "executed" and order["book_side"] == "bid"
                paid = (bal0 - (await tc.balance())["balance"])
                # the plant shows the trade and the book change at the ask
                await until(lambda: any(e.trade_id and e.ticker == t
                                        for e in pub_events.events["trades"]), what="trade")
                tr_ev = [e for e in pub_events.events["trades"] if e.ticker == t][-1]
                assert (tr_ev.yes_price, tr_ev.count, tr_ev.taker_side) == (ask, 200, "yes")
                # the engine's ticker: last price = the trade, volume 2 contracts
                await until(lambda: any(e.ticker == t and e.price == ask
                                        for e in pub_events.events["tickers"]), what="ticker")
                tk_ev = [e for e in pub_events.events["tickers"] if e.ticker == t][-1]
                assert (tk_ev.price, tk_ev.volume) == (ask, 200)
                await until(lambda: plant.books[t].no.get(best_no) == no_size - 200
                            if no_size > 200 else best_no not in plant.books[t].no,
                            what="book change in the plant")
                # independent: the plant's books are the engine's own state
                for p in (plant, yes_plant):
                    await until(lambda: all(p.books[tk].no == dict(ex.book_snapshot(tk)["no"])
                                            for tk in ex.markets), what="plant caught up")
                    for tk in ex.markets:
                        snap = ex.book_snapshot(tk)
                        assert p.books[tk].yes == dict(snap["yes"]), tk
                        assert p.books[tk].no == dict(snap["no"]), tk
                # settle yes: $1 per contract
                await settle_market(sim.rest_url, t, "yes")
                async with httpx.AsyncClient(base_url=sim.rest_url) as pub:
                    trades = (await pub.get("/markets/trades", params={"ticker": t})).json()
                    assert [x["trade_id"] for x in trades["trades"]] == [tr_ev.trade_id]
                    mkt = (await pub.get(f"/markets/{t}")).json()["market"]
                    assert (mkt["status"], mkt["result"]) == ("finalized", "yes")
                bal2 = (await tc.balance())["balance"]
                assert bal2 - (bal0 - paid) == 200  # cents: 2 contracts x $1
                sets = [x async for x in tc.settlements()]
                assert [(s["ticker"], s["market_result"], s["revenue"], s["yes_count_fp"])
                        for s in sets] == [(t, "yes", 200, "2.00")]
            assert ex.check_invariants() == []
            stop.set()
            priv.cancel()
            await asyncio.wait_for(asyncio.gather(plant_task, yes_task), 10)

    arun(main())


def test_private_channels_only_to_the_owning_key_and_refused_without_one():
    """No keys configured: the KALSHI-ACCESS-KEY header names the user; a connection without
    one is refused private channels (error 9); bob's fills never reach alice's connection."""

    async def main():
        sim = SimServer(ping_interval=0)
        tr = attach_trading(sim, starting_balance=10_000)
        async with sim:
            async with httpx.AsyncClient(base_url=sim.rest_url) as c:
                assert (await c.post("/admin/markets", json={"ticker": "KXT-1-A"})).status_code == 201
                feeds = {n: PrivateFeed() for n in ("anon", "alice", "bob")}
                tasks = [asyncio.create_task(f.run(sim.ws_url, {} if n == "anon" else
                                                   {"KALSHI-ACCESS-KEY": n}, ["fill"]))
                         for n, f in feeds.items()]
                await until(lambda: feeds["anon"].of("error"), what="refusal")
                assert feeds["anon"].of("error")[0]["msg"]["code"] == 9
                await until(lambda: feeds["alice"].of("subscribed") and feeds["bob"].of("subscribed"))
                order = {"ticker": "KXT-1-A", "count": 3, "time_in_force": "good_till_canceled"}
                r = await c.post("/portfolio/orders", headers={"KALSHI-ACCESS-KEY": "alice"},
                                 json={**order, "side": "yes", "action": "buy", "yes_price": 40})
                assert r.status_code == 201, r.text
                r = await c.post("/portfolio/orders", headers={"KALSHI-ACCESS-KEY": "bob"},
                                 json={**order, "side": "no", "action": "buy",
                                       "no_price_dollars": "0.6000"})
                assert r.status_code == 201 and r.json()["order"]["status"] == "executed"
                await until(lambda: feeds["alice"].of("fill") and feeds["bob"].of("fill"))
                a, b = feeds["alice"].of("fill"), feeds["bob"].of("fill")
                assert [(f["msg"]["is_taker"], f["msg"]["side"]) for f in a] == [(False, "yes")]
                assert [(f["msg"]["is_taker"], f["msg"]["side"]) for f in b] == [(True, "no")]
                ids = {f["msg"]["order_id"] for f in a} & {f["msg"]["order_id"] for f in b}
                assert not ids
                # unsigned REST trading is refused (no user)
                assert (await c.get("/portfolio/balance")).status_code == 401
            for t in tasks:
                t.cancel()
            assert tr.host.exchange.check_invariants() == []

    arun(main())


def test_cli_run_against_sim_exchange_with_liquidity_and_wal(tmp_path):
    """`sim --replay --liquidity --wal --exit-when-done` as a process and `kalshi-platform
    run` against it: the run's books (the plant rebuilding the engine's feed) end on the
    oracle's books of the recording; `sim-admin` reads the markets of the WAL restarted."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    import kalshi_platform.tools.exchange  # noqa: F401  (registers sim-admin)
    import kalshi_platform.tools.live  # noqa: F401  (registers run, sim)
    from conftest import REPO_ROOT
    from oracle_compare import assert_summary_matches
    from sim_support import start_sim_process
    from kalshi_platform.tools.cli import app

    cli = [sys.executable, "-m", "kalshi_platform"]
    wal = tmp_path / "wal"
    p, ws, rest = start_sim_process(cli, COCKPIT, REPO_ROOT, "--speed", "0",
                                    "--exit-when-done", "--liquidity", "--wal", str(wal))
    try:
        r = CliRunner().invoke(app, ["run", "--sink", "none", "--series", "KXMLBGAME",
                                     "--series", "KXWNBAGAME", "--ws-url", ws, "--base-url",
                                     rest, "--exit-on-close", "--status-interval", "0",
                                     "--summary-json", str(tmp_path / "s.json")])
        assert r.exit_code == 0, r.output
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    s = json.loads((tmp_path / "s.json").read_text())
    assert_summary_matches(s["markets"], replay_recorded(COCKPIT))
    p2 = subprocess.Popen(cli + ["sim", "--exchange", "--wal", str(wal), "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=REPO_ROOT)
    try:
        line = ""
        while not line.startswith("sim: REST "):
            line = p2.stdout.readline()
            assert line, p2.stderr.read()
        r = CliRunner().invoke(app, ["sim-admin", "markets", "--base-url", line.split()[-1]])
        assert r.exit_code == 0, r.output
        got = json.loads(r.output)["markets"]
        assert sorted(m["ticker"] for m in got) == sorted(s["markets"])
        assert {m["status"] for m in got} == {"open"}
    finally:
        p2.kill()
        p2.wait()


def test_order_group_updates_frames_carry_a_contiguous_seq():
    """``order_group_updates`` is a seq'd private channel (docs/trading-api.md §4.1, "seq
    required"): created, reset and deleted reach the owner as frames with seq 1, 2, 3."""

    async def main():
        sim = SimServer(ping_interval=0)
        attach_trading(sim, starting_balance=10_000)
        async with sim:
            async with httpx.AsyncClient(base_url=sim.rest_url) as c:
                feed = PrivateFeed()
                task = asyncio.create_task(feed.run(sim.ws_url, {"KALSHI-ACCESS-KEY": "alice"},
                                                    ["order_group_updates"]))
                await until(lambda: feed.of("subscribed"), what="subscription")
                h = {"KALSHI-ACCESS-KEY": "alice"}
                r = await c.post("/portfolio/order_groups/create", headers=h,
                                 json={"contracts_limit": 5})
                assert r.status_code == 201, r.text
                gid = r.json()["order_group_id"]
                assert (await c.put(f"/portfolio/order_groups/{gid}/reset", headers=h)).status_code == 200
                assert (await c.delete(f"/portfolio/order_groups/{gid}", headers=h)).status_code == 200
                await until(lambda: len(feed.of("order_group_updates")) >= 3, what="3 updates")
                task.cancel()
        frames = feed.of("order_group_updates")
        assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
        kinds = [f["msg"]["event_type"] for f in frames]
        assert [k for k in kinds if k in ("created", "reset", "deleted")] == \
            ["created", "reset", "deleted"], kinds

    arun(main())
