"""The sim's HTTP layer (aiohttp, issue 13 §4) over real loopback sockets: requests with a
body get an answer, keep-alive, JSON 404/405/426, the rate limit's 429, and the extension
points the trading API builds on (``add_routes`` with per-key auth, ``feed.publish_private``).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ed25519
from websockets.asyncio.client import connect

from conftest import COCKPIT, REPO_ROOT
from kalshi_platform.api.auth import Signer
from kalshi_platform.sim.app import KALSHI_KEY, SimServer
from kalshi_platform.sim.limits import RateLimiter
from kalshi_platform.sim.rest_market import REST_PREFIX

FIXTURES = REPO_ROOT / "data" / "rest" / "fortuna_demo"


def arun(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _echo(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"user": request[KALSHI_KEY], "got": body})


def test_post_with_body_is_answered_and_unknown_paths_are_json():
    async def go():
        async with SimServer(None, rest_fixtures=FIXTURES) as sim:
            async with httpx.AsyncClient() as h:
                post = await h.post(sim.rest_url + "/markets", json={"ticker": "X", "count": 1})
                nf = await h.get(sim.rest_url + "/portfolio/nothing")
                plain_ws = await h.get(f"http://127.0.0.1:{sim.port}/trade-api/ws/v2")
            return post, nf, plain_ws

    post, nf, plain_ws = arun(go())
    assert post.status_code == 405 and post.json()["error"]["code"] == "method_not_allowed"
    assert nf.status_code == 404 and nf.json()["error"]["code"] == "not_found"
    assert plain_ws.status_code == 426


def test_keep_alive_serves_several_requests_on_one_connection():
    async def go():
        async with SimServer(None, rest_fixtures=FIXTURES) as sim:
            r, w = await asyncio.open_connection("127.0.0.1", sim.port)
            req = (f"GET {REST_PREFIX}/exchange/status HTTP/1.1\r\nHost: x\r\n\r\n").encode()
            w.write(req + req)  # pipelined on one connection
            await w.drain()
            bodies = []
            for _ in range(2):
                head = await r.readuntil(b"\r\n\r\n")
                n = int([ln for ln in head.split(b"\r\n")
                         if ln.lower().startswith(b"content-length")][0].split(b":")[1])
                bodies.append(orjson.loads(await r.readexactly(n)))
            w.close()
            return bodies, sim.stats.rest_requests

    bodies, n = arun(go())
    assert bodies == [{"exchange_active": True, "trading_active": True}] * 2 and n == 2


def test_add_routes_with_per_key_auth():
    key = ed25519.Ed25519PrivateKey.generate()
    other = ed25519.Ed25519PrivateKey.generate()
    path = REST_PREFIX + "/portfolio/echo"

    async def go():
        sim = SimServer(None, rest_fixtures=FIXTURES)
        sim.add_routes([web.post(path, _echo)])
        sim.auth.add_key("alice", key.public_key())
        sim.auth.add_key("bob", other.public_key())
        async with sim:
            url = f"http://127.0.0.1:{sim.port}{path}"
            async with httpx.AsyncClient() as h:
                unsigned = await h.post(url, json={"n": 1})
                alice = await h.post(url, json={"n": 2},
                                     headers=Signer("alice", key).headers("POST", path))
                wrong = await h.post(url, json={"n": 3},
                                     headers=Signer("bob", key).headers("POST", path))
                public = await h.get(sim.rest_url + "/exchange/status")
            return unsigned, alice, wrong, public

    unsigned, alice, wrong, public = arun(go())
    assert unsigned.status_code == 401 and "signed" in unsigned.json()["error"]["message"]
    assert alice.status_code == 200 and alice.json() == {"user": "alice", "got": {"n": 2}}
    assert wrong.status_code == 401  # bob's key id with alice's key
    assert public.status_code == 200  # public market data stays unsigned


def test_add_routes_without_keys_names_the_user_by_header():
    path = REST_PREFIX + "/portfolio/echo"

    async def go():
        sim = SimServer(None, rest_fixtures=FIXTURES)
        sim.add_routes([web.post(path, _echo)])
        async with sim:
            url = f"http://127.0.0.1:{sim.port}{path}"
            async with httpx.AsyncClient() as h:
                anon = await h.post(url, json={})
                named = await h.post(url, json={"a": 1}, headers={"KALSHI-ACCESS-KEY": "u1"})
            return anon, named

    anon, named = arun(go())
    assert anon.status_code == 401
    assert named.json() == {"user": "u1", "got": {"a": 1}}


def test_rate_limit_answers_429_per_client():
    async def go():
        async with SimServer(None, rest_fixtures=FIXTURES, rate_limit_read=5) as sim:
            async with httpx.AsyncClient() as h:
                a = [(await h.get(sim.rest_url + "/exchange/status",
                                  headers={"KALSHI-ACCESS-KEY": "a"})) for _ in range(7)]
                b = await h.get(sim.rest_url + "/exchange/status",
                                headers={"KALSHI-ACCESS-KEY": "b"})
            return a, b, sim.stats.rest_rate_limited

    a, b, limited = arun(go())
    codes = [r.status_code for r in a]
    # 7 requests well inside one second: the 1 s bucket holds 5 (refill adds < 1 token)
    assert codes[:5] == [200] * 5 and 429 in codes[5:]
    assert [r.json() for r in a if r.status_code == 429][0] == {"error": "too many requests"}
    assert "retry-after" not in {k.lower() for k in a[-1].headers}
    assert b.status_code == 200 and limited == codes.count(429)


def test_rate_limiter_buckets_refill():
    now = [0.0]
    rl = RateLimiter(read_per_s=2, write_per_s=1, clock=lambda: now[0])
    assert [rl.allow("k", False) for _ in range(3)] == [True, True, False]
    assert rl.allow("k", True) and not rl.allow("k", True)  # the write bucket is separate
    now[0] = 0.5
    assert rl.allow("k", False) and not rl.allow("k", False)  # 0.5 s × 2/s = one token
    assert RateLimiter(0.5).allow("k", False)  # a bucket always holds at least one request


def test_publish_private_reaches_only_that_keys_connections():
    key = ed25519.Ed25519PrivateKey.generate()
    ws_path = "/trade-api/ws/v2"

    async def go():
        sim = SimServer(COCKPIT)
        sim.auth.add_key("alice", key.public_key())
        sim.auth.add_key("bob", key.public_key())
        async with sim:
            a = await connect(sim.ws_url,
                              additional_headers=Signer("alice", key).headers("GET", ws_path))
            b = await connect(sim.ws_url,
                              additional_headers=Signer("bob", key).headers("GET", ws_path))
            for ws in (a, b):
                await ws.send(orjson.dumps({"id": 1, "cmd": "subscribe",
                                            "params": {"channels": ["fill"]}}).decode())
                assert orjson.loads(await ws.recv())["type"] == "subscribed"
            n = sim.feed.publish_private("alice", "fill", "fill",
                                         {"trade_id": "t1", "market_ticker": "X"})
            got = orjson.loads(await asyncio.wait_for(a.recv(), 5))
            await b.send(orjson.dumps({"id": 2, "cmd": "list_subscriptions"}).decode())
            b_next = orjson.loads(await asyncio.wait_for(b.recv(), 5))
            await a.close()
            await b.close()
            return n, got, b_next

    n, got, b_next = arun(go())
    assert n == 1 and got == {"type": "fill", "sid": 1, "msg": {"trade_id": "t1",
                                                               "market_ticker": "X"}}
    assert b_next["id"] == 2  # bob's next frame is his own ack, not alice's fill


def test_rest_times_and_stats_count_rest_not_websocket():
    async def go():
        async with SimServer(COCKPIT) as sim:
            t0 = time.monotonic()
            async with httpx.AsyncClient() as h:
                await h.get(sim.rest_url + "/markets")
            async with connect(sim.ws_url):
                pass
            return sim.stats.rest_requests, sim.rest_times, t0, sim.stats.connections

    n, times, t0, conns = arun(go())
    assert n == 1 and len(times) == 1 and times[0] >= t0 and conns == 1
