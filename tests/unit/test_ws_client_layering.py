"""Layering of the WebSocket ingester (issue 9 §6): it imports nothing from
``kalshi_platform.ticker_plant`` and talks to the plant only through the plant's public API
(``set_resync_handler``, ``remove_market``, ``book_state``, ``process``/``process_frame``,
``feed_event``, ``reset``, ``set_use_yes_price``). A plant wrapper that exposes nothing else,
and refuses attribute assignment, runs a gap-and-resync session against the sim; its books
equal the Decimal oracle's."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

import kalshi_oracle as oracle
import oracle_compare
from conftest import COCKPIT
from kalshi_platform.ingestion.feed_api import BOOK_LIVE
from kalshi_platform.ingestion.ws_client import Backoff, FeedAuthError, KalshiWSClient
from kalshi_platform.retry import Backoff as SharedBackoff
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.server import SimServer
from kalshi_platform.ticker_plant.order_book import LIVE
from kalshi_platform.ticker_plant.plant import TickerPlant

FAST = Backoff(base_s=0.005, cap_s=0.02)


def arun(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.parametrize("module", ["kalshi_platform.ingestion.ws_client",
                                    "kalshi_platform.ingestion.ws_session",
                                    "kalshi_platform.ingestion.feed_api",
                                    "kalshi_platform.api.errors",
                                    "kalshi_platform.retry"])
def test_importing_the_ingester_does_not_import_the_plant(module):
    code = (f"import sys, {module}; "
            "bad = sorted(m for m in sys.modules if m.startswith('kalshi_platform.ticker_plant'));"
            " assert not bad, bad")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_shared_constants_match_the_plant():
    assert BOOK_LIVE == LIVE  # the client compares plain strings
    assert Backoff is SharedBackoff  # one backoff policy (kalshi_platform.retry)


class PublicOnlyPlant:
    """A TickerPlant seen through its public API only: no ``books``, no ``resync``, and no
    attribute can be set on it (``__slots__``), so any reach into internals raises."""

    __slots__ = ("_p", "removed", "handlers")

    def __init__(self, plant: TickerPlant) -> None:
        self._p = plant
        self.removed: list[str] = []
        self.handlers: list = []

    def process(self, payload, recv_ns=None, raw=None):
        self._p.process(payload, recv_ns, raw)

    def process_frame(self, f, recv_ns=None, raw=None):
        self._p.process_frame(f, recv_ns, raw)

    def feed_event(self, kind, sid=None, expected_seq=None, got_seq=None, detail=None,
                   ts_ns=None):
        self._p.feed_event(kind, sid, expected_seq, got_seq, detail, ts_ns)

    def reset(self, detail="reconnect"):
        self._p.reset(detail)

    def commit(self):
        self._p.commit()

    def set_use_yes_price(self, sid, flag):
        self._p.set_use_yes_price(sid, flag)

    def set_resync_handler(self, fn):
        self.handlers.append(fn)
        self._p.set_resync_handler(fn)

    def remove_market(self, ticker):
        self.removed.append(ticker)  # recorded only: the plant's own test covers its effect
        return True

    def book_state(self, ticker):
        return self._p.book_state(ticker)


def test_client_uses_only_the_plant_public_api():
    inner = TickerPlant()
    plant = PublicOnlyPlant(inner)

    async def go():
        async with SimServer(COCKPIT, exit_when_done=True,
                             faults=Faults(drop_frames={40, 150}, disconnect_after=120)) as sim:
            c = KalshiWSClient(sim.ws_url, plant, sorted(sim.known), exit_on_close=True,
                               backoff=FAST)
            await c.run()
            assert await c.remove_markets(sorted(sim.known)[:1]) == sorted(sim.known)[:1]
            return c, sim

    c, sim = arun(go())
    assert plant.handlers == [c._on_gap]  # registered once, through the API
    assert inner.stats.gaps >= 1 and c.stats.resyncs >= 1 and c.stats.reconnects >= 1
    assert plant.removed == sorted(sim.known)[:1]
    oracle_compare.assert_books_match(inner, oracle.replay(COCKPIT))
    assert set(inner.book_states().values()) == {BOOK_LIVE}


def test_ws_handshake_401_reports_the_wrapped_error_body():
    """The handshake's error body goes through the one parser (kalshi_platform.api.errors)."""
    body = b'{"error": {"code": "authentication_error", "message": "bad signature", "details": ""}}'

    def refuse(conn, request):
        return Response(401, "Unauthorized", Headers([("Content-Length", str(len(body)))]), body)

    async def go():
        async with serve(lambda ws: None, "127.0.0.1", 0, process_request=refuse) as server:
            port = server.sockets[0].getsockname()[1]
            c = KalshiWSClient(f"ws://127.0.0.1:{port}/trade-api/ws/v2",
                               PublicOnlyPlant(TickerPlant()), ["M"])
            await c.run()

    with pytest.raises(FeedAuthError) as ei:
        arun(go(), 10)
    assert "HTTP 401: authentication_error: bad signature)" in str(ei.value)
