"""The local Kalshi-compatible server over real loopback sockets, driven by a bare
``websockets`` client (no ingester), so every wire detail is checked as Kalshi specifies it:
acks carrying the command id, ``seq`` per sid with acks consuming seq (kalshi-api.md §7.3,
§7.10), ``update_subscription`` actions (§7.2), error codes (§7.3), ``heartbeat`` pings (§7.1),
signed handshakes (§2.4), REST over the same port with 429 injection (§6) and faults.

No sleeps are used to synchronise: every wait is on a frame, an event or a condition with a
timeout.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode

import kalshi_oracle as oracle
from conftest import COCKPIT, REPO_ROOT
from kalshi_oracle import CENTI, MICRO, D
from oracle_compare import assert_books_match, oracle_ladders
from kalshi_platform.api.auth import Signer
from kalshi_platform.api.rest import RestClient
from kalshi_platform.sim.faults import Faults, parse_indices
from kalshi_platform.sim.server import SimError, SimServer
from kalshi_platform.ticker_plant.plant import TickerPlant

REST = REPO_ROOT / "data" / "rest"
FORTUNA_MARKETS = REST / "fortuna_demo"


def arun(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def send(ws, cid: int, cmd: str, params: dict | None = None) -> None:
    obj = {"id": cid, "cmd": cmd}
    if params is not None:
        obj["params"] = params
    await ws.send(orjson.dumps(obj).decode())


async def recv(ws, timeout: float = 5.0) -> dict:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws, pred, timeout: float = 5.0) -> tuple[dict, list[dict]]:
    """Read frames until ``pred(frame)``; returns it and the frames skipped before it."""
    skipped = []
    deadline = time.monotonic() + timeout
    while True:
        f = await recv(ws, max(0.01, deadline - time.monotonic()))
        if pred(f):
            return f, skipped
        skipped.append(f)


def tickers_of(sim: SimServer, n: int) -> list[str]:
    return sorted(sim.known)[:n]


# -- subscribe, seq, playback ----------------------------------------------------------------


def test_subscribe_acks_then_snapshots_then_gapless_seq_to_final_books():
    async def go():
        async with SimServer(COCKPIT, exit_when_done=True) as sim:
            want = tickers_of(sim, 3)
            plant = TickerPlant()
            async with connect(sim.ws_url) as ws:
                await send(ws, 7, "subscribe", {"channels": ["orderbook_delta", "trade"],
                                                "market_tickers": want,
                                                "use_yes_price": False})
                frames = []
                async for text in ws:
                    frames.append(orjson.loads(text))
                    plant.process(text)
                assert ws.close_code == 1000 and ws.close_reason == "replay finished"
            return sim, want, frames, plant

    sim, want, frames, plant = arun(go())
    assert frames[0] == {"id": 7, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}}
    assert frames[1] == {"id": 7, "type": "subscribed", "msg": {"channel": "trade", "sid": 2}}
    snaps = frames[2:5]
    assert [f["type"] for f in snaps] == ["orderbook_snapshot"] * 3
    assert [f["msg"]["market_ticker"] for f in snaps] == want
    book_frames = [f for f in frames if f.get("sid") == 1]
    assert [f["seq"] for f in book_frames] == list(range(1, len(book_frames) + 1))
    assert {f["msg"]["market_ticker"] for f in book_frames} == set(want)
    assert len(book_frames) > 3 + 10  # playback deltas arrived, not just the snapshots
    assert plant.stats.gaps == 0 and plant.stats.quarantined == 0
    ref = oracle.replay(COCKPIT)  # the Decimal oracle, not another TickerPlant
    assert_books_match(plant, ref, tickers=want)
    assert_books_match(sim, ref)


def test_update_subscription_add_delete_get_snapshot_unsubscribe():
    async def go():
        async with SimServer(None, rest_fixtures=FORTUNA_MARKETS) as sim:
            a, b = tickers_of(sim, 2)
            async with connect(sim.ws_url) as ws:
                await send(ws, 1, "subscribe", {"channels": ["orderbook_delta"], "market_ticker": a})
                out = [await recv(ws) for _ in range(2)]
                await send(ws, 2, "update_subscription",
                           {"sids": [1], "market_tickers": [b], "action": "add_markets"})
                out += [await recv(ws) for _ in range(2)]
                await send(ws, 3, "update_subscription",
                           {"sid": 1, "market_tickers": [a], "action": "delete_markets"})
                out.append(await recv(ws))
                await send(ws, 4, "update_subscription",
                           {"sids": [1], "market_tickers": [b], "action": "get_snapshot"})
                out.append(await recv(ws))
                await send(ws, 5, "update_subscription",
                           {"sids": [1], "market_tickers": [a], "action": "get_snapshot"})
                out.append(await recv(ws))
                await send(ws, 6, "list_subscriptions")
                out.append(await recv(ws))
                await send(ws, 8, "unsubscribe", {"sids": [1]})
                out.append(await recv(ws))
                return a, b, out

    a, b, out = arun(go())
    assert out[0] == {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}}
    assert out[1]["type"] == "orderbook_snapshot" and out[1]["seq"] == 1
    assert out[1]["msg"]["market_ticker"] == a
    assert out[2] == {"id": 2, "sid": 1, "seq": 2, "type": "ok",
                      "msg": {"market_tickers": sorted([a, b])}}
    assert out[3]["type"] == "orderbook_snapshot" and out[3]["seq"] == 3
    assert out[4] == {"id": 3, "sid": 1, "seq": 4, "type": "ok", "msg": {"market_tickers": [b]}}
    assert out[5]["type"] == "orderbook_snapshot" and out[5]["seq"] == 5 and out[5]["id"] == 4
    assert out[5]["msg"]["market_ticker"] == b
    assert out[6]["type"] == "error" and out[6]["id"] == 5 and out[6]["msg"]["code"] == 11
    assert out[7] == {"id": 6, "type": "ok", "msg": [{"channel": "orderbook_delta", "sid": 1}]}
    assert out[8] == {"id": 8, "sid": 1, "seq": 6, "type": "unsubscribed"}


ERROR_CASES = [
    ("not json", 1),
    ('{"id": 10, "cmd": "subscribe"}', 2),
    ('{"id": 11, "cmd": "subscribe", "params": {"channels": []}}', 3),
    ('{"id": 12, "cmd": "unsubscribe", "params": {}}', 4),
    ('{"id": 13, "cmd": "dance", "params": {}}', 5),
    ('{"id": 14, "cmd": "unsubscribe", "params": {"sids": [99]}}', 7),
    ('{"id": 15, "cmd": "subscribe", "params": {"channels": ["multivariate"], "market_ticker": "A"}}', 8),
    ('{"id": 16, "cmd": "subscribe", "params": {"channels": ["ticker"], "market_ticker": "A", "market_tickers": ["B"]}}', 11),
    ('{"id": 17, "cmd": "update_subscription", "params": {"sids": [1, 2], "action": "add_markets"}}', 12),
    ('{"id": 18, "cmd": "update_subscription", "params": {"sid": 1, "action": "dance", "market_tickers": ["X"]}}', 13),
    ('{"id": 19, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}', 14),
    ('{"id": 20, "cmd": "update_subscription", "params": {"sid": 1, "market_tickers": ["X"]}}', 15),
    # values of the wrong JSON type (unhashable) are errors, not a dropped connection
    ('{"id": 22, "cmd": "unsubscribe", "params": {"sids": [[1]]}}', 7),
    ('{"id": 23, "cmd": "update_subscription", "params": {"sid": [1], "action": "add_markets", "market_tickers": ["X"]}}', 7),
    ('{"id": 24, "cmd": "subscribe", "params": {"channels": [["ticker"]]}}', 8),
    ('{"id": 21, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": ["NOPE-1"]}}', 16),
]


def test_error_codes():
    async def go():
        async with SimServer(None, rest_fixtures=FORTUNA_MARKETS) as sim:
            t = tickers_of(sim, 1)[0]
            async with connect(sim.ws_url) as ws:
                await send(ws, 1, "subscribe", {"channels": ["orderbook_delta"], "market_ticker": t})
                await recv(ws)
                await recv(ws)
                got = []
                for text, _ in ERROR_CASES:
                    await ws.send(text.replace('"X"', f'"{t}"'))
                    got.append(await recv(ws))
                return got

    got = arun(go())
    for (text, code), f in zip(ERROR_CASES, got):
        assert f["type"] == "error", (text, f)
        assert f["msg"]["code"] == code, (text, f)
        assert isinstance(f["msg"]["msg"], str) and f["msg"]["msg"]
        want_id = orjson.loads(text)["id"] if text.startswith("{") else 0
        assert f["id"] == want_id
    assert got[-1]["msg"]["market_ticker"] == "NOPE-1"


class PingRecorder(ClientConnection):
    """A client connection that records the payload of every ping it receives."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pings: list[bytes] = []
        self.got_ping = asyncio.Event()

    def process_event(self, event):
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings.append(bytes(event.data))
            self.got_ping.set()
        super().process_event(event)


def test_heartbeat_pings():
    async def go():
        async with SimServer(None, rest_fixtures=FORTUNA_MARKETS, ping_interval=0.05) as sim:
            async with connect(sim.ws_url, create_connection=PingRecorder) as ws:
                await asyncio.wait_for(ws.got_ping.wait(), 5)
                return ws.pings

    assert arun(go())[0] == b"heartbeat"


# -- auth ------------------------------------------------------------------------------------


def test_signed_handshake_and_rest():
    key = ed25519.Ed25519PrivateKey.generate()
    other = ed25519.Ed25519PrivateKey.generate()
    good = Signer("key-1", key)
    bad = Signer("key-1", other)

    async def go():
        async with SimServer(None, rest_fixtures=FORTUNA_MARKETS, public_key=key.public_key()) as sim:
            path = "/trade-api/ws/v2"
            statuses = []
            for hdrs in (None, bad.headers("GET", path),
                         good.headers("GET", path, ts_ms=int(time.time() * 1000) - 3_600_000),
                         good.headers("GET", "/trade-api/v2")):
                with pytest.raises(InvalidStatus) as ei:
                    async with connect(sim.ws_url, additional_headers=hdrs):
                        pass
                statuses.append(ei.value.response.status_code)
                body = orjson.loads(ei.value.response.body)
                assert body["error"]["code"] == "authentication_error"
            async with connect(sim.ws_url, additional_headers=good.headers("GET", path)) as ws:
                await send(ws, 1, "list_subscriptions")
                assert (await recv(ws)) == {"id": 1, "type": "ok", "msg": []}
            async with httpx.AsyncClient() as h:
                p = "/trade-api/v2/markets"
                r_none = await h.get(sim.rest_url + "/markets")
                r_good = await h.get(sim.rest_url + "/markets", headers=good.headers("GET", p))
                r_bad = await h.get(sim.rest_url + "/markets", headers=bad.headers("GET", p))
            return statuses, sim.stats.handshakes_rejected, (r_none.status_code,
                                                            r_good.status_code, r_bad.status_code)

    statuses, rejected, rest = arun(go())
    assert statuses == [401, 401, 401, 401] and rejected == 4
    assert rest == (200, 200, 401)  # public REST works unsigned; a bad signature is refused


# -- REST over HTTP ---------------------------------------------------------------------------


def test_rest_client_pages_through_429s_and_reads_current_books():
    async def go():
        async with SimServer(COCKPIT, rest_fixtures=REST / "manta_prod", start="now",
                             faults=Faults(rest_429=3)) as sim:
            await asyncio.wait_for(sim.done.wait(), 10)
            async with RestClient(sim.rest_url, max_retries=5, backoff_base_s=0.001,
                                  backoff_cap_s=0.01, read_tokens_per_s=1e6) as rc:
                trades = [t async for t in rc.iter_trades(limit=7)]
                markets = [m async for m in rc.iter_markets(limit=5)]
                books = {m.ticker: await rc.get_orderbook(m.ticker) for m in markets}
                retries = rc.stats
            return sim, trades, markets, books, retries

    sim, trades, markets, books, rstats = arun(go())
    assert sim.stats.rest_429 == 3
    assert rstats.status_counts[429] == 3 and rstats.retries == 3  # backed off, then completed
    assert len(trades) == 55 and len({t.trade_id for t in trades}) == 55
    assert sorted(m.ticker for m in markets) == sorted(sim.known)
    ladders = oracle_ladders(oracle.replay(COCKPIT))  # playback done: the capture's end
    for t, ob in books.items():
        assert ({D(p) / MICRO: D(q) / CENTI for p, q in ob.yes},
                {D(p) / MICRO: D(q) / CENTI for p, q in ob.no}) == ladders[t]


def test_plain_http_routes_and_405():
    async def go():
        async with SimServer(COCKPIT) as sim:
            async with httpx.AsyncClient() as h:
                ok = await h.get(sim.rest_url + "/exchange/status")
                nf = await h.get(f"http://127.0.0.1:{sim.port}/elsewhere")
                bad = await h.delete(sim.rest_url + "/markets")
                cut = await h.get(sim.rest_url + "/historical/cutoff")
            return ok, nf, bad, cut

    ok, nf, bad, cut = arun(go())
    assert ok.json() == {"exchange_active": True, "trading_active": True}
    assert ok.headers["content-type"] == "application/json"
    assert nf.status_code == 404 and bad.status_code == 405
    assert cut.json()["trades_created_ts"] == "1970-01-01T00:00:00Z"


# -- faults -----------------------------------------------------------------------------------


def test_drop_consumes_seq_and_disconnect_aborts():
    async def go():
        async with SimServer(COCKPIT, faults=Faults(drop_frames={3}, disconnect_after=6)) as sim:
            async with connect(sim.ws_url) as ws:
                await send(ws, 1, "subscribe", {"channels": ["orderbook_delta"],
                                                "market_tickers": sorted(sim.known)})
                frames = []
                with pytest.raises(ConnectionClosedError) as ei:
                    async for text in ws:
                        frames.append(orjson.loads(text))
                return sim, frames, ei.value

    sim, frames, exc = arun(go())
    assert exc.rcvd is None  # aborted: no close frame, like a network failure
    seqs = [f["seq"] for f in frames if "seq" in f]
    n_snap = 12  # the initial snapshots are answers to the command, never dropped or counted
    played = seqs[n_snap:]
    assert played == [n_snap + 1, n_snap + 2, n_snap + 4, n_snap + 5, n_snap + 6]
    assert sim.stats.frames_dropped == 1 and sim.stats.disconnects_injected == 1


def test_faults_parsing_and_validation():
    assert parse_indices(" 3, 17,,40") == frozenset({3, 17, 40})
    with pytest.raises(ValueError):
        parse_indices("0")
    with pytest.raises(ValueError):
        parse_indices("x")
    with pytest.raises(ValueError):
        Faults(drop_every=-1)
    f = Faults(drop_frames={2}, drop_every=5, disconnect_after=7)
    assert [n for n in range(1, 12) if f.drops(n)] == [2, 5, 10]
    assert not f.disconnects(6) and f.disconnects(7) and f.active and not Faults().active


def test_start_errors(tmp_path):
    async def start(**kw):
        sim = SimServer(**kw)
        try:
            await sim.start()
        finally:
            await sim.stop()

    with pytest.raises(SimError, match="no such file"):
        arun(start(recording=tmp_path / "missing.jsonl"))
    with pytest.raises(SimError, match="REST fixtures"):
        arun(start(recording=None, rest_fixtures=tmp_path / "nope"))
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(SimError, match="public key"):
        arun(start(recording=COCKPIT, public_key=bad))

    async def busy():
        async with SimServer(COCKPIT) as a:
            await start(recording=COCKPIT, port=a.port)

    with pytest.raises(SimError, match="cannot listen"):
        arun(busy())
