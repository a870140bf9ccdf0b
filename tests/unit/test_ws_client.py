"""The WebSocket ingester (``kalshi_platform.ingestion.ws_client``) over loopback: taps see the
exact text before decoding, handshakes are re-signed per attempt, resync falls back to
resubscribing, the stale watchdog reconnects, markets are added and removed without
reconnecting, and each fatal condition (401, unknown market, unreachable host) ends the run
with one clear error instead of retrying forever.

Servers are the sim (:class:`~kalshi_platform.sim.server.SimServer`) or tiny scripted
``websockets`` servers. Final books are judged by the Decimal oracle (tests/kalshi_oracle.py),
not by the sim's own books (a TickerPlant too). Waits are on events or conditions, always with
a timeout.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from websockets.asyncio.server import serve

import kalshi_oracle as oracle
from conftest import COCKPIT, REPO_ROOT
from oracle_compare import assert_books_match
from kalshi_platform.api.auth import Signer, verify_signature
from kalshi_platform.ingestion.ws_client import (
    Backoff,
    FeedAuthError,
    FeedConnectError,
    FeedSubscribeError,
    KalshiWSClient,
)
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.server import SimServer
from kalshi_platform.ticker_plant.order_book import LIVE
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

FORTUNA_MARKETS = REPO_ROOT / "data" / "rest" / "fortuna_demo"
FAST = Backoff(base_s=0.005, cap_s=0.02)


def arun(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(cond, timeout: float = 5.0, what: str = "condition") -> None:
    """Wait for ``cond()`` to hold, re-checking as the loop runs; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


def assert_oracle_books(*holders) -> None:
    """Each of ``holders`` (plant, sim) has exactly the books of the whole COCKPIT capture
    replayed into the Decimal oracle: every market, final top and level."""
    ref = oracle.replay(COCKPIT)
    for h in holders:
        assert_books_match(h, ref)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tap:
    """A FrameTap that records what it sees and checks it runs before the plant decodes."""

    def __init__(self, plant: TickerPlant) -> None:
        self.plant = plant
        self.frames: list[tuple[str, int]] = []
        self.events: list[tuple] = []
        self.plant_frames_at_tap: list[int] = []

    def frame(self, raw, recv_ns):
        self.plant_frames_at_tap.append(self.plant.stats.frames)
        self.frames.append((raw, recv_ns))

    def event(self, kind, recv_ns, sid=None, detail=None, reset=None):
        self.events.append((kind, sid, detail, reset))


# -- taps: exact text, before decoding ------------------------------------------------------

SCRIPT = [
    '{"id":1,"type":"subscribed","msg":{"channel":"orderbook_delta","sid":1}}',
    '{"type": "orderbook_snapshot", "sid": 1, "seq": 1, "msg": {"market_ticker": "M-1", '
    '"market_id": "x", "yes_dollars_fp": [["0.4000", "10.00"]]}}',
    '{not json at all',
    '{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"M-1","market_id":"x",'
    '"price_dollars":"0.4000","delta_fp":"-4.00","side":"yes","ts_ms":1786085188416}}',
]


def test_taps_get_exact_text_before_decode_and_bad_frames_are_quarantined():
    async def handler(ws):
        await ws.recv()  # subscribe orderbook_delta
        for text in SCRIPT:
            await ws.send(text)
        await ws.close(1000, "done")

    async def go():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            plant = TickerPlant()
            tap = Tap(plant)
            c = KalshiWSClient(f"ws://127.0.0.1:{port}/trade-api/ws/v2", plant, ["M-1"],
                               channels=["orderbook_delta"], taps=[tap], exit_on_close=True,
                               backoff=FAST)
            t0 = time.time_ns()
            await c.run()
            return plant, tap, t0, c

    plant, tap, t0, c = arun(go())
    assert [raw for raw, _ in tap.frames] == SCRIPT
    assert tap.plant_frames_at_tap == [0, 1, 2, 3]  # the tap saw each frame before the plant
    ns = [n for _, n in tap.frames]
    assert ns == sorted(ns) and t0 <= ns[0] <= time.time_ns()
    assert plant.stats.quarantined == 1 and plant.stats.gaps == 0
    assert plant.books["M-1"].yes == {400_000: 600}
    assert [e[0] for e in tap.events] == ["connect", "disconnect"]
    assert tap.events[-1][3] is False  # the final disconnect keeps the books
    assert plant.books["M-1"].state == LIVE and not c.connected


# -- reconnects, signing, fallbacks -----------------------------------------------------------


def test_reconnects_resubscribe_and_every_attempt_is_freshly_signed():
    key = ed25519.Ed25519PrivateKey.generate()
    signer = Signer("kid", key)
    issued: list[dict] = []

    def headers():
        h = signer.headers("GET", "/trade-api/ws/v2")
        issued.append(h)
        return h

    async def go():
        async with SimServer(COCKPIT, exit_when_done=True, public_key=key.public_key(),
                             faults=Faults(disconnect_after=60)) as sim:
            pub = InMemoryPublisher()
            plant = TickerPlant([pub])
            c = KalshiWSClient(sim.ws_url, plant, sorted(sim.known), headers=headers,
                               exit_on_close=True, backoff=FAST)
            await c.run()
            return sim, plant, c, pub

    sim, plant, c, pub = arun(go())
    assert c.stats.reconnects == sim.stats.disconnects_injected >= 4
    assert len(issued) == c.stats.connects == sim.stats.connections
    for h in issued:
        assert verify_signature(key.public_key(), h["KALSHI-ACCESS-SIGNATURE"],
                                int(h["KALSHI-ACCESS-TIMESTAMP"]), "GET", "/trade-api/ws/v2")
    assert_oracle_books(plant, sim)
    kinds = [e.kind for e in pub.events["feed_events"]]
    assert kinds.count("connect") == c.stats.connects
    assert kinds.count("disconnect") == c.stats.disconnects == c.stats.connects


class NoSnapshotSim(SimServer):
    """A server whose ``get_snapshot`` fails: with an error (``mode="error"``) or silence."""

    def __init__(self, *a, mode: str, **kw):
        super().__init__(*a, **kw)
        self.mode = mode
        self.refused = 0

    def _update(self, c, cid, params):
        if params.get("action") == "get_snapshot":
            self.refused += 1
            if self.mode == "error":
                self._error(c, cid, 13)
            return
        super()._update(c, cid, params)


@pytest.mark.parametrize("mode", ["error", "silence"])
def test_resync_falls_back_to_resubscribe(mode):
    async def go():
        async with NoSnapshotSim(COCKPIT, mode=mode, exit_when_done=True,
                                 faults=Faults(drop_frames={40, 150})) as sim:
            plant = TickerPlant()
            c = KalshiWSClient(sim.ws_url, plant, sorted(sim.known), exit_on_close=True,
                               backoff=FAST, resync_timeout=0.1)
            await c.run()
            return sim, plant, c

    sim, plant, c = arun(go())
    assert sim.refused >= 1 and plant.stats.gaps >= 1
    assert c.stats.resync_fallbacks >= 1 and c.stats.reconnects == 0
    assert all(b.state == LIVE for b in plant.books.values())
    assert_oracle_books(plant, sim)


def test_stale_watchdog_reconnects():
    connections = 0
    second = asyncio.Event()

    async def handler(ws):
        nonlocal connections
        connections += 1
        if connections >= 2:
            second.set()
        await ws.recv()
        await ws.send('{"id":1,"type":"subscribed","msg":{"channel":"ticker","sid":1}}')
        await ws.wait_closed()  # then silence: alive at TCP level, no data

    async def go():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            pub = InMemoryPublisher()
            c = KalshiWSClient(f"ws://127.0.0.1:{port}/", TickerPlant([pub]), ["M-1"],
                               channels=["ticker"], stale_after=0.15, backoff=FAST)
            task = asyncio.create_task(c.run())
            await asyncio.wait_for(second.wait(), 5)
            c.request_stop()
            await asyncio.wait_for(task, 5)
            return c, pub

    c, pub = arun(go())
    assert c.stats.stale_timeouts >= 1 and c.stats.connects >= 2
    details = [e.detail for e in pub.events["feed_events"] if e.kind == "error"]
    assert any("stale feed" in d for d in details)


def test_add_and_remove_markets_without_reconnecting():
    async def go():
        async with SimServer(None, rest_fixtures=FORTUNA_MARKETS) as sim:
            a, b = sorted(sim.known)[:2]
            plant = TickerPlant()
            c = KalshiWSClient(sim.ws_url, plant, [a], backoff=FAST)
            task = asyncio.create_task(c.run())
            await wait_until(lambda: a in plant.books and plant.books[a].state == LIVE,
                             what="first market live")
            assert await c.add_markets([b, a]) == [b]
            await wait_until(lambda: b in plant.books and plant.books[b].state == LIVE,
                             what="added market live")
            (conn,) = sim._conns
            filtered = [s for s in conn.subs.values() if s.tickers is not None]
            assert {s.channel for s in filtered} == {"orderbook_delta", "ticker", "trade"}
            await wait_until(lambda: all(s.tickers == {a, b} for s in filtered), what="added")
            assert await c.remove_markets([a]) == [a]
            await wait_until(lambda: all(s.tickers == {b} for s in filtered), what="removed")
            assert a not in plant.books and c.tickers == [b]
            c.request_stop()
            await asyncio.wait_for(task, 5)
            return c, sim

    c, sim = arun(go())
    assert c.stats.connects == 1 and sim.stats.connections == 1


# -- fatal conditions: one clear error, bounded time ------------------------------------------


def test_unreachable_host_fails_after_bounded_attempts():
    port = free_port()
    c = KalshiWSClient(f"ws://127.0.0.1:{port}/trade-api/ws/v2", TickerPlant(), ["M-1"],
                       backoff=FAST, connect_attempts=3, open_timeout=2)
    t0 = time.monotonic()
    with pytest.raises(FeedConnectError) as ei:
        arun(c.run())
    assert time.monotonic() - t0 < 5
    msg = str(ei.value)
    assert "cannot connect" in msg and "3 attempts" in msg and "\n" not in msg
    assert c.stats.connect_failures == 3


def test_wrong_key_is_fatal_at_once():
    key = ed25519.Ed25519PrivateKey.generate()
    wrong = Signer("kid", ed25519.Ed25519PrivateKey.generate())

    async def go():
        async with SimServer(COCKPIT, public_key=key.public_key()) as sim:
            c = KalshiWSClient(sim.ws_url, TickerPlant(), ["X"], backoff=FAST,
                               headers=lambda: wrong.headers("GET", "/trade-api/ws/v2"))
            await c.run()

    with pytest.raises(FeedAuthError, match="HTTP 401"):
        arun(go())


def test_unknown_market_is_fatal_on_first_subscribe():
    async def go():
        async with SimServer(COCKPIT) as sim:
            c = KalshiWSClient(sim.ws_url, TickerPlant(), ["NOPE-1"], backoff=FAST)
            await c.run()

    with pytest.raises(FeedSubscribeError, match=r"error 16: Market not found \(NOPE-1\)"):
        arun(go())


def test_backoff_is_capped_exponential_with_jitter():
    b = Backoff(base_s=1.0, cap_s=8.0, factor=2.0, jitter=0.5)
    for n in range(12):
        top = min(8.0, 2.0 ** n)
        for _ in range(20):
            assert top * 0.5 <= b.delay(n) <= top


def test_use_yes_price_subscription_matches_books():
    """A client on the YES price scale (§7.8) still builds the same NO-bid books: the sim
    converts the recording's NO prices, the plant converts them back per sid."""
    async def go():
        async with SimServer(COCKPIT, exit_when_done=True, faults=Faults(drop_frames={77})) as sim:
            plant = TickerPlant()
            c = KalshiWSClient(sim.ws_url, plant, sorted(sim.known), use_yes_price=True,
                               exit_on_close=True, backoff=FAST)
            await c.run()
            return sim, plant

    sim, plant = arun(go())
    assert_oracle_books(plant, sim)  # the oracle replays the capture on its own (NO) scale
    assert plant.stats.gaps == 1
