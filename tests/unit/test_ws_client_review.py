"""Regressions from a review of the live path: a crashed gzip recording keeps every flushed
frame; add_markets while subscribes are unacknowledged; a subscribe error that names no
market is retried; a rejected market on a reconnect does not stop the other markets."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kalshi_platform.ingestion.recorder import Recorder
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.ingestion.ws_client import Backoff, KalshiWSClient
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.server import SimServer
from kalshi_platform.ticker_plant.plant import TickerPlant
from test_ws_client import arun, wait_until

ROOT = Path(__file__).resolve().parents[2]
REC = ROOT / "data" / "recordings" / "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
FIXTURES = ROOT / "data" / "rest" / "fortuna_demo"


def test_gzip_recording_cut_by_a_crash_keeps_every_flushed_frame(tmp_path):
    n = 3000
    pid = os.fork()
    if pid == 0:  # the recorder process: flush, then die without closing the gzip stream
        r = Recorder(tmp_path, gzip=True, flush_interval_s=3600)
        for i in range(1, n + 1):
            r.frame('{"type":"ticker","sid":2,"msg":{"market_ticker":"M-%d",'
                    '"price_dollars":"0.5000","ts_ms":1786085188416}}' % i,
                    1786085188416000000 + i)
        r.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    (f,) = tmp_path.glob("*.jsonl.gz")
    plant = TickerPlant()
    try:
        feed(f, plant)
    except Exception:  # noqa: BLE001 - the truncated tail may be reported; frames must not be lost
        pass
    assert plant.stats.frames == n


def _server_channels(sim, ticker=None):
    conn = max(sim._conns, key=lambda x: x.n)
    return {s.channel for s in conn.subs.values()
            if ticker is None or s.tickers is None or ticker in s.tickers}


def test_add_markets_while_subscribes_are_unacknowledged():
    async def main():
        # acks delayed 0.2 s, so add_markets certainly runs before they arrive
        async with SimServer(None, rest_fixtures=FIXTURES, faults=Faults(delay_s=0.2)) as sim:
            a, b = sorted(sim.known)[:2]
            c = KalshiWSClient(sim.ws_url, TickerPlant(), [a], backoff=Backoff(0.005, 0.02))
            task = asyncio.create_task(c.run())
            await wait_until(lambda: c.connected, what="connected")
            await c.add_markets([b])  # the first subscribes may not be acked yet
            await wait_until(lambda: "orderbook_delta" in _server_channels(sim, b),
                             what="b subscribed on the server")
            c.request_stop()
            await task

    arun(main())


class _FlakySim(SimServer):
    failed = False

    def _subscribe(self, c, cid, params):
        if c.n == 2 and "orderbook_delta" in params.get("channels", []) and not self.failed:
            self.failed = True
            return self._error(c, cid, 18, text="Command timeout")  # transient, once
        super()._subscribe(c, cid, params)


def test_subscribe_error_naming_no_market_is_retried():
    async def main():
        async with _FlakySim(REC, faults=Faults(disconnect_after=60)) as sim:
            c = KalshiWSClient(sim.ws_url, TickerPlant(), sorted(sim.known),
                               backoff=Backoff(0.005, 0.02))
            task = asyncio.create_task(c.run())
            await wait_until(lambda: c.stats.connects >= 2, what="second connection")
            sim.faults.disconnect_after = 0  # connection 2 stays up
            await wait_until(lambda: sim.failed and "orderbook_delta" in _server_channels(sim),
                             timeout=10, what="orderbook_delta resubscribed after error 18")
            c.request_stop()
            await task

    arun(main())
