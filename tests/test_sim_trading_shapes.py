"""The sim's portfolio JSON parses the same way as Kalshi's real recorded responses (issue 13:
"the sim's JSON must parse the same way they do, in a test").

Real answers from ../shared/data/real/kalshi/rest/ (skipped when absent): ``/portfolio/fills``
(fortuna_demo, and the redacted cockpit_prod capture), ``/portfolio/settlements`` (cockpit_prod,
redacted) and a V2 create (fortuna_demo/orders__create_v2_taker_ioc.json). The sim's answers
come from a sim where two users trade and the market is settled. One parser reads both: each
field's kind (dollar string with its decimals, fixed-point count, RFC 3339 time, int, bool,
id string) must be the same for every key the real answer has, and the values must parse with
the plant's fixed-point parsers (yes + no price = $1 on fills).
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from conftest import SHARED_KALSHI, SHARED_MISSING
from kalshi_platform.fixedpoint import ONE_DOLLAR, parse_price, parse_size
from kalshi_platform.sim.app import SimServer
from kalshi_platform.sim.trading import attach_trading

REST = SHARED_KALSHI / "rest"
pytestmark = pytest.mark.skipif(not REST.is_dir(), reason=SHARED_MISSING)
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_NUM = re.compile(r"^-?\d+\.(\d+)$")


def kind(key: str, v) -> str:
    """The parse kind of one field value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str) and _TIME.match(v):
        return "time"
    m = _NUM.match(v) if isinstance(v, str) else None
    if m and (key.endswith("_fp") or key in ("fill_count", "remaining_count")):
        parse_size(v)
        return "count"
    if m:
        parse_price(v)
        return f"dollars.{len(m.group(1))}"
    return "str"


def shape(obj: dict) -> dict[str, str]:
    return {k: kind(k, v) for k, v in obj.items()}


def real(path: str, key: str | None) -> list[dict]:
    doc = json.loads((REST / path).read_text())
    doc = doc.get("payload", doc)
    return doc[key] if key else [doc]


def sim_answers() -> dict[str, list[dict]]:
    async def main():
        sim = SimServer(ping_interval=0)
        attach_trading(sim, starting_balance=10_000)
        async with sim, httpx.AsyncClient(base_url=sim.rest_url) as c:
            a, b = {"KALSHI-ACCESS-KEY": "a"}, {"KALSHI-ACCESS-KEY": "b"}
            await c.post("/admin/markets", json={"ticker": "KXSHAPE-1-A"})
            r = await c.post("/portfolio/events/orders", headers=a, json={
                "ticker": "KXSHAPE-1-A", "side": "ask", "count": "3", "price": "0.52",
                "time_in_force": "good_till_canceled",
                "self_trade_prevention_type": "taker_at_cross"})
            assert r.status_code == 201
            r = await c.post("/portfolio/events/orders", headers=b, json={
                "ticker": "KXSHAPE-1-A", "side": "bid", "count": "1", "price": "0.52",
                "time_in_force": "immediate_or_cancel", "client_order_id": "x-1",
                "self_trade_prevention_type": "taker_at_cross"})
            assert r.status_code == 201
            create = r.json()
            for p, body in (("close", None), ("determine", {"result": "no"}), ("settle", None)):
                assert (await c.post(f"/admin/markets/KXSHAPE-1-A/{p}", json=body)).status_code == 200
            fills = (await c.get("/portfolio/fills", headers=b)).json()["fills"]
            sets = (await c.get("/portfolio/settlements", headers=b)).json()["settlements"]
            return {"fills": fills, "settlements": sets, "create": [create]}

    return asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("what,path,key", [
    ("fills", "fortuna_demo/fills__after_taker.json", "fills"),
    ("fills", "cockpit_prod/portfolio_fills_redacted.json", "fills"),
    ("settlements", "cockpit_prod/portfolio_settlements_redacted.json", "settlements"),
    ("create", "fortuna_demo/orders__create_v2_taker_ioc.json", None),
])
def test_sim_json_parses_like_the_real_answer(what, path, key):
    if not (REST / path).is_file():
        pytest.skip(f"{path} not in ../shared")
    ours = sim_answers()[what]
    assert ours, what
    theirs = real(path, key)
    want = {}
    for obj in theirs:  # every real item has the same shape
        want.setdefault("shape", shape(obj))
        assert shape(obj) == want["shape"], obj
    for obj in ours:
        got = shape(obj)
        assert {k: got.get(k) for k in want["shape"]} == want["shape"]
        assert set(got) - set(want["shape"]) <= {"exchange_index"}
        if what == "fills":
            assert parse_price(obj["yes_price_dollars"]) + parse_price(obj["no_price_dollars"]) \
                == ONE_DOLLAR
