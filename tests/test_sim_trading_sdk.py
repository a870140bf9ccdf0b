"""The sim's trading API driven by Kalshi's official SDK (``kalshi-python-sync`` 3.34.0;
issue 13 Acceptance "Official SDK"): every trading call the SDK offers that the sim serves
validates against the SDK's models (tests/sim_sdk/trading_calls.py run by the driver under
Python 3.13), against the recorded liquidity of the bundled cockpit capture.

Independent checks here: the queue position the SDK read equals the size resting at that
price in the engine's book before the order; the taker's fill price is the best ask of the
Decimal oracle's replay of the recording. Skips like tests/test_sim_sdk.py when no 3.13
interpreter or SDK is available.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from decimal import Decimal

from conftest import COCKPIT, wait_until
from oracle_compare import oracle_ladders, replay_recorded
from sim_support import private_key_file
from test_sim_sdk import DRIVER, _sdk_venv
from kalshi_platform.fixedpoint import price_to_str, size_to_str
from kalshi_platform.sim.app import SimServer
from kalshi_platform.sim.trading import attach_trading


def run_sim(box: dict, ready: threading.Event, stop: threading.Event, **kw) -> None:
    async def main():
        sim = SimServer(COCKPIT, start="now", ping_interval=0, **kw)
        box["trading"] = attach_trading(sim, starting_balance=100_000, liquidity=True)
        async with sim:
            box["sim"] = sim
            await sim.done.wait()
            await box["trading"].host.drained()
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.01)
    asyncio.run(main())


def test_official_sdk_validates_every_trading_call(tmp_path):
    vpy = _sdk_venv()
    key, pem = private_key_file(tmp_path)
    box: dict = {}
    ready, stop = threading.Event(), threading.Event()
    th = threading.Thread(target=run_sim, args=(box, ready, stop),
                          kwargs={"public_key": key.public_key()}, daemon=True)
    th.start()
    try:
        wait_until(ready.is_set, 30, "sim with recorded liquidity")
        sim, ex = box["sim"], box["trading"].host.exchange
        ladders = oracle_ladders(replay_recorded(COCKPIT))
        t = next(tk for tk in sorted(ex.markets)
                 if ex.book_snapshot(tk)["no"] and ex.book_snapshot(tk)["no"][0][1] >= 200
                 and ex.book_snapshot(tk)["yes"])
        snap = ex.book_snapshot(t)
        ask = 1_000_000 - snap["no"][0][0]
        bid, bid_size = snap["yes"][0]
        yes, no = ladders[t]
        assert Decimal(price_to_str(ask)) == Decimal(1) - max(no)  # the recording's ask
        cfg = {"base_url": sim.rest_url, "key_id": "sdk-trader", "private_key_pem": str(pem),
               "trading": True, "ticker": t, "ask": price_to_str(ask),
               "rest_price": price_to_str(bid), "admin_url": sim.rest_url + "/admin"}
        (tmp_path / "cfg.json").write_text(json.dumps(cfg))
        r = subprocess.run([str(vpy), str(DRIVER), str(tmp_path / "cfg.json")],
                           capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        th.join(10)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    failed = [f"{x['call']}: {x['detail']}" for x in out["results"] if not x["ok"]]
    assert not failed, "\n".join(failed)
    res = {x["call"]: x["data"] for x in out["results"]}
    assert len(res) == 13
    qp = res["OrdersApi.create_order_v2 (resting) + get_order + queue positions"]
    assert qp["queue_position_fp"] == size_to_str(bid_size)
    assert Decimal(res["OrdersApi.create_order_v2 (taker IOC)"]["avg_price"]) == \
        Decimal(1) - max(no)
    assert res["PortfolioApi.get_settlements"]["revenue"] == 200
