"""End to end over FIX (issue 13 Acceptance "End to end", docs/fix.md): the sim with the
exchange (``attach_trading``, recorded liquidity of the bundled cockpit capture) and the FIX
gateway on the same engine (``attach_to_sim``). A user with its own Ed25519 key logs on over
FIX, buys YES at the recorded ask and gets the ExecutionReport fill; the same fill shows on
its signed WS ``fill`` channel and the position on REST ``/portfolio/positions``; a plant
subscribed to the sim shows the trade and the book change (its books equal the engine's);
settling the market yes pays $1 per contract. Also the ``sim --fix-port`` command with ``fix-client``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import aiohttp
import httpx
from cryptography.hazmat.primitives import serialization
from fix_support import report, tag
from sim_support import public_key_file, settle_market

from conftest import COCKPIT, until
from kalshi_platform.api.auth import Signer
from kalshi_platform.api.trading import TradingClient
from kalshi_platform.fix import protocol as P
from kalshi_platform.fix.server import attach_to_sim
from kalshi_platform.ingestion.ws_client import Backoff, KalshiWSClient
from kalshi_platform.sim.app import SimServer
from kalshi_platform.sim.protocol import WS_PATH
from kalshi_platform.sim.trading import UserSpec, attach_trading
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher
from kalshi_platform.tools.fix_client import FixClient

P1 = 1_000_000


async def _private(url, headers, frames):
    async with aiohttp.ClientSession() as s, s.ws_connect(url, headers=headers) as ws:
        await ws.send_json({"id": 1, "cmd": "subscribe", "params": {"channels": ["fill"]}})
        async for m in ws:
            frames.append(json.loads(m.data))


def test_buy_yes_over_fix_against_recorded_liquidity_fill_position_settlement(tmp_path):
    key, pub = public_key_file(tmp_path, "alice")

    async def main():
        sim = SimServer(COCKPIT, start="subscribe", ping_interval=0)
        tr = attach_trading(sim, users=[UserSpec("alice", pub, 100_000)], liquidity=True)
        fix = attach_to_sim(sim, tr, 0)
        async with sim:
            signer = Signer("alice", key)
            frames: list = []
            ws = asyncio.create_task(_private(sim.ws_url, signer.headers("GET", WS_PATH), frames))
            await until(lambda: any(f.get("type") == "subscribed" for f in frames))
            # the plant's subscription starts playback: the recorded books become liquidity
            events = InMemoryPublisher()
            plant = TickerPlant([events])
            client = KalshiWSClient(sim.ws_url, plant, sorted(sim.known),
                                    headers=lambda: signer.headers("GET", WS_PATH),
                                    backoff=Backoff(base_s=0.005, cap_s=0.02))
            stop = asyncio.Event()
            plant_task = asyncio.create_task(client.run(stop))
            await asyncio.wait_for(sim.done.wait(), 30)
            await tr.host.drained()
            ex = tr.host.exchange
            t = next(tk for tk in sorted(ex.markets) if ex.book_snapshot(tk)["no"])
            best_no, _ = ex.book_snapshot(t)["no"][0]
            ask = P1 - best_no  # the recorded best YES ask
            c = FixClient("alice", key, use_dollars=True)
            await c.connect("127.0.0.1", fix.port)
            async with TradingClient(signer, base_url=sim.rest_url) as tc:
                bal0 = (await tc.balance())["balance"]
                cl = c.new_order(t, "1", 2, P.format_price(ask, True), tif="3")
                new, fill = await report(c), await report(c)
                assert (tag(new, P.EXEC_TYPE), tag(new, P.CL_ORD_ID)) == ("0", cl)
                assert (tag(fill, P.EXEC_TYPE), tag(fill, P.ORD_STATUS)) == ("F", "2")
                assert (tag(fill, P.LAST_QTY), tag(fill, P.LAST_PX)) == \
                    ("2", P.format_price(ask, True))
                oid = tag(fill, P.ORDER_ID)
                await until(lambda: any(f.get("type") == "fill" for f in frames), what="WS fill")
                f = next(x for x in frames if x.get("type") == "fill")["msg"]
                assert (f["order_id"], f["trade_id"], f["count_fp"]) == \
                    (oid, tag(fill, P.TRD_MATCH_ID), "2.00")
                pos = await tc.positions()
                assert [(p["ticker"], p["position_fp"]) for p in pos["market_positions"]] == \
                    [(t, "2.00")]
                paid = bal0 - (await tc.balance())["balance"]
                await settle_market(sim.rest_url, t, "yes")
                # the plant subscribed to the sim shows the FIX trade and the book change
                await until(lambda: any(e.ticker == t for e in events.events["trades"]),
                             what="trade in the plant")
                last = [e for e in events.events["trades"] if e.ticker == t][-1]
                assert (last.yes_price, last.count, last.taker_side) == (ask, 200, "yes")
                await until(lambda: plant.books[t].no == dict(ex.book_snapshot(t)["no"]),
                             what="plant book = engine book")
                assert plant.books[t].yes == dict(ex.book_snapshot(t)["yes"])
                assert (await tc.balance())["balance"] - (bal0 - paid) == 200  # 2 x $1
            await c.logout()
            assert ex.check_invariants() == []
            ws.cancel()
            stop.set()
            await asyncio.wait_for(plant_task, 10)

    asyncio.run(asyncio.wait_for(main(), 90))


def test_sim_fix_port_and_fix_client_cli(tmp_path):
    """``sim --exchange --fix-port 0`` + ``fix-client``: an order rests, the report prints."""
    key, pub = public_key_file(tmp_path, "bob")
    pem = tmp_path / "bob.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    os.chmod(pem, 0o600)
    users = tmp_path / "users.toml"
    users.write_text(f'[[user]]\nkey_id = "bob"\npublic_key = "{pub}"\nbalance_cents = 5000\n')
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    sim = subprocess.Popen([sys.executable, "-m", "kalshi_platform.tools.cli", "sim",
                            "--users", str(users), "--port", "0", "--fix-port", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        while not any(x.startswith("sim: FIX ") for x in lines):
            line = sim.stdout.readline()
            assert line, sim.stderr.read()
            lines.append(line.strip())
        rest = next(x for x in lines if x.startswith("sim: REST ")).split()[-1]
        fix_port = next(x for x in lines if x.startswith("sim: FIX ")).split(":")[-1]
        r = httpx.post(rest + "/admin/markets", json={"ticker": "KXCLI-1"})
        assert r.status_code == 201, r.text
        out = subprocess.run([sys.executable, "-m", "kalshi_platform.tools.cli", "fix-client",
                              "--port", fix_port, "--key-id", "bob", "--private-key", str(pem),
                              "--order", "KXCLI-1:buy:3:25", "--json", "--wait", "1"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        msgs = [json.loads(x) for x in out.stdout.splitlines()]
        er = [m for m in msgs if m["type"] == "ExecutionReport"]
        assert [(m["150"], m["39"], m["55"], m["38"], m["44"]) for m in er] == \
            [("0", "0", "KXCLI-1", "3", "25")]
        bad = subprocess.run([sys.executable, "-m", "kalshi_platform.tools.cli", "fix-client",
                              "--port", fix_port, "--key-id", "mallory", "--private-key",
                              str(pem)], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "unknown API key" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    finally:
        sim.terminate()
        sim.wait(10)
