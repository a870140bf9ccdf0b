"""The sim's V1 order REST in detail (docs/trading-api.md §4.1): both price forms, amend
(queue priority lost on a new price), decrease, cancel, batches with a bad item, queue
positions, cursor pagination, Kalshi-style errors (400/404/409) and the write rate limit's
429. Quantities are checked against the engine's own state, read independently of the JSON."""

from __future__ import annotations

import asyncio

import httpx

from kalshi_platform.sim.app import SimServer
from kalshi_platform.sim.trading import attach_trading

T = "KXREST-26DEC01-A"
A, B = {"KALSHI-ACCESS-KEY": "alice"}, {"KALSHI-ACCESS-KEY": "bob"}


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def with_sim(fn, **kw):
    sim = SimServer(ping_interval=0, **kw)
    tr = attach_trading(sim, starting_balance=10_000)
    async with sim, httpx.AsyncClient(base_url=sim.rest_url) as c:
        assert (await c.post("/admin/markets", json={"ticker": T})).status_code == 201
        await fn(c, tr.host.exchange)
        assert tr.host.exchange.check_invariants() == []


def test_v1_orders_edits_batches_queue_and_errors():
    async def body(c, ex):
        o = lambda **kw: {"ticker": T, "side": "yes", "action": "buy", "count": 2, **kw}  # noqa: E731
        r1 = await c.post("/portfolio/orders", headers=A, json=o(yes_price=40, client_order_id="a1"))
        r2 = await c.post("/portfolio/orders", headers=A, json=o(yes_price_dollars="0.4000"))
        assert r1.status_code == r2.status_code == 201
        id1, id2 = r1.json()["order"]["order_id"], r2.json()["order"]["order_id"]
        # both price forms are the same price; a repeat client_order_id is a 409
        assert r1.json()["order"]["yes_price_dollars"] == r2.json()["order"]["yes_price_dollars"]
        dup = await c.post("/portfolio/orders", headers=A, json=o(yes_price=40, client_order_id="a1"))
        assert dup.status_code == 409 and dup.json()["error"]["details"] == id1
        bad = await c.post("/portfolio/orders", headers=A, json=o(yes_price=40, no_price=60))
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"
        mism = await c.post("/portfolio/orders", headers=A, json=o(yes_price=40, count_fp="3.00"))
        assert mism.status_code == 400
        assert (await c.get("/portfolio/orders/nope", headers=A)).status_code == 404
        assert (await c.get(f"/portfolio/orders/{id1}", headers=B)).status_code == 404  # not bob's
        # queue: id2 is behind id1's 2 contracts
        q = (await c.get(f"/portfolio/orders/{id2}/queue_position", headers=A)).json()
        assert q["queue_position_fp"] == "2.00" and ex.queue_position(id2) == 200
        # amend id1 to a new price and back: it loses its place, now behind id2
        am = await c.post(f"/portfolio/orders/{id1}/amend", headers=A, json={
            "ticker": T, "side": "yes", "action": "buy", "yes_price": 41, "count": 2})
        assert am.status_code == 200 and am.json()["old_order"]["yes_price"] == 40
        await c.post(f"/portfolio/orders/{id1}/amend", headers=A, json={
            "ticker": T, "side": "yes", "action": "buy", "yes_price": 40, "count": 2})
        assert ex.queue_position(id1) == 200 and ex.queue_position(id2) == 0
        dec = await c.post(f"/portfolio/orders/{id2}/decrease", headers=A, json={"reduce_to": 1})
        assert dec.json()["order"]["remaining_count_fp"] == "1.00"
        qs = (await c.get("/portfolio/orders/queue_positions", headers=A,
                          params={"market_tickers": T})).json()["queue_positions"]
        assert {x["order_id"]: x["queue_position_fp"] for x in qs} == {id2: "0.00", id1: "1.00"}
        # batch: one bad item does not stop the others
        br = await c.post("/portfolio/orders/batched", headers=B, json={"orders": [
            {"ticker": T, "side": "no", "action": "buy", "count": 1, "no_price": 60},
            {"ticker": T, "side": "no", "action": "buy", "count": 1},
            {"ticker": "NOPE", "side": "no", "action": "buy", "count": 1, "no_price": 50}]})
        items = br.json()["orders"]
        assert items[0]["order"]["status"] == "executed" and items[0]["error"] is None
        assert items[1]["order"] is None and items[1]["error"]["code"] == "invalid_parameter"
        assert items[2]["error"]["code"] == "market_not_found"
        # bob's NO bid at 60 took alice's first YES bid at 40 (id2, first in the queue)
        assert ex.get_order(id2).fill_count == 100
        bc = await c.request("DELETE", "/portfolio/orders/batched", headers=A,
                             json={"ids": [id1, "nope"]})
        got = bc.json()["orders"]
        assert got[0]["reduced_by_fp"] == "2.00" and got[1]["error"]["code"] == "order_not_found"
        cx = await c.delete(f"/portfolio/orders/{id1}", headers=A)
        assert cx.status_code == 400  # already canceled
        # pagination: 3 orders of alice over pages of 2, newest first, then the end
        assert (await c.post("/portfolio/orders", headers=A, json=o(yes_price=5))).status_code == 201
        p1 = (await c.get("/portfolio/orders", headers=A, params={"limit": 2})).json()
        p2 = (await c.get("/portfolio/orders", headers=A,
                          params={"limit": 2, "cursor": p1["cursor"]})).json()
        ids = [x["order_id"] for x in p1["orders"] + p2["orders"]]
        assert p1["cursor"] and p2["cursor"] == "" and len(ids) == 3 and ids == [v.order_id for v in
                                              reversed(ex.user_orders("alice"))]
        assert (await c.get("/portfolio/orders", headers=A, params={"limit": 0})).status_code == 400

    arun(with_sim(body))


def test_write_rate_limit_answers_429():
    async def body(c, ex):
        codes = []
        for i in range(6):
            r = await c.post("/portfolio/orders", headers=A, json={
                "ticker": T, "side": "yes", "action": "buy", "count": 1, "yes_price": 10 + i})
            codes.append(r.status_code)
        assert codes[:3] == [201] * 3 and 429 in codes[3:]
        assert len(ex.user_orders("alice")) == codes.count(201)  # a 429 placed nothing

    arun(with_sim(body, rate_limit_write=3))


def test_gtd_order_expires_without_further_commands():
    """An order with expiration_ts rests until then; the sim's expiry loop (a Tick once it
    is due) cancels it with no other command arriving."""
    import time

    async def body(c, ex):
        exp = int(time.time()) + 1
        r = await c.post("/portfolio/orders", headers=A, json={
            "ticker": T, "side": "yes", "action": "buy", "count": 1, "yes_price": 30,
            "expiration_ts": exp})
        assert r.status_code == 201 and r.json()["order"]["status"] == "resting"
        oid = r.json()["order"]["order_id"]
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while ex.get_order(oid).status == "resting":
            assert loop.time() < end, "GTD order not expired"
            await asyncio.sleep(0.02)
        assert time.time() >= exp
        got = (await c.get(f"/portfolio/orders/{oid}", headers=A)).json()["order"]
        assert got["status"] == "canceled" and got["expiration_time"] is not None

    arun(with_sim(body))


def test_sim_trading_options_bad_input_one_line_exit_2(tmp_path):
    from typer.testing import CliRunner

    import kalshi_platform.tools.exchange  # noqa: F401  (registers sim-admin)
    import kalshi_platform.tools.live  # noqa: F401  (registers sim)
    from kalshi_platform.tools.cli import app

    bad = tmp_path / "users.toml"
    bad.write_text('[[user]]\nkey_id = "a"\nbalance_cents = -5\n')
    for args in (["sim", "--users", str(bad)], ["sim", "--exchange", "--liquidity"],
                 ["sim", "--users", str(tmp_path / "missing.json")],
                 ["sim", "--exchange", "--starting-balance", "-1"],
                 ["sim-admin", "markets", "--base-url", "http://127.0.0.1:9/trade-api/v2"],
                 ["sim-admin", "determine", "KX-1", "maybe"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1, (args, r.output)
