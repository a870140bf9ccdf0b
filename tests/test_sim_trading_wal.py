"""Crash recovery of the sim's exchange over REST (issue 13 §3 Acceptance "Crash recovery").

``kalshi-platform sim --exchange --wal DIR`` as a process; eight concurrent HTTP
connections (one user each) send orders that rest and cross (V1 and V2 paths), and record
every acknowledgement (201) on the client side. The sim is killed with SIGKILL while the
load runs, after at least 10,000 acknowledged orders; restarted on the same WAL, every
acknowledged order is there exactly once (same client_order_id, at least the acknowledged
fill count) and no fill is doubled (unique fill ids; each order's fill count equals the sum
of its fills), checked with REST GET /portfolio/orders and /portfolio/fills against the
client-side record.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys

import httpx

from conftest import REPO_ROOT

CLI = [sys.executable, "-m", "kalshi_platform"]
MARKETS = ("KXCRASH-26DEC01-A", "KXCRASH-26DEC01-B")
USERS = [f"u{i}" for i in range(8)]


def start_sim(wal) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(CLI + ["sim", "--exchange", "--wal", str(wal), "--port", "0",
                                "--starting-balance", "1000000000", "--ping-interval", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=REPO_ROOT)
    while True:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        if line.startswith("sim: REST "):
            return p, line.split()[-1]


def order_body(rng: random.Random, n: int, user: str) -> tuple[str, dict]:
    cid = f"{user}-{n}"
    t = MARKETS[n % 2]
    if n % 3 == 0:  # V2: book side and YES-scale price
        return "/portfolio/events/orders", {
            "ticker": t, "client_order_id": cid, "side": rng.choice(("bid", "ask")),
            "count": str(rng.randint(1, 5)), "price": f"0.{rng.randint(40, 60)}",
            "time_in_force": "good_till_canceled",
            "self_trade_prevention_type": "taker_at_cross"}
    side = rng.choice(("yes", "no"))
    return "/portfolio/orders", {"ticker": t, "client_order_id": cid, "side": side,
                                 "action": "buy", "count": rng.randint(1, 5),
                                 f"{side}_price": rng.randint(40, 60)}


async def load(rest: str, acks: dict, target: int, proc: subprocess.Popen) -> None:
    """Concurrent clients until ``target`` acks, then SIGKILL the sim mid-load."""
    killed = asyncio.Event()

    async def worker(user: str) -> None:
        rng = random.Random(user)
        n = 0
        async with httpx.AsyncClient(base_url=rest, headers={"KALSHI-ACCESS-KEY": user},
                                     timeout=10) as c:
            while not killed.is_set():
                path, body = order_body(rng, n, user)
                n += 1
                try:
                    r = await c.post(path, json=body)
                except httpx.HTTPError:
                    return  # the sim is gone: this request was never acknowledged
                if r.status_code == 201:
                    j = r.json()
                    o = j.get("order", j)
                    fill = o.get("fill_count_fp", o.get("fill_count"))
                    acks[o["order_id"]] = (user, body["client_order_id"], fill)
                    if len(acks) >= target and not killed.is_set():
                        proc.send_signal(signal.SIGKILL)
                        killed.set()

    await asyncio.gather(*(worker(u) for u in USERS))


async def listing(rest: str, user: str, path: str, key: str) -> list[dict]:
    out, cursor = [], ""
    async with httpx.AsyncClient(base_url=rest, headers={"KALSHI-ACCESS-KEY": user},
                                 timeout=30) as c:
        while True:
            r = await c.get(path, params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200, r.text
            out += r.json()[key]
            cursor = r.json()["cursor"]
            if not cursor:
                return out


def test_kill_9_under_rest_load_loses_no_ack_and_doubles_no_fill(tmp_path):
    wal = tmp_path / "wal"
    proc, rest = start_sim(wal)
    acks: dict[str, tuple] = {}
    try:
        for t in MARKETS:
            assert httpx.post(rest + "/admin/markets", json={"ticker": t}).status_code == 201
        asyncio.run(asyncio.wait_for(load(rest, acks, 10_000, proc), 120))
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert len(acks) >= 10_000
    proc2, rest2 = start_sim(wal)
    try:
        async def read_all():
            return {u: (await listing(rest2, u, "/portfolio/orders", "orders"),
                        await listing(rest2, u, "/portfolio/fills", "fills")) for u in USERS}
        state = asyncio.run(read_all())
    finally:
        os.kill(proc2.pid, signal.SIGKILL)
        proc2.wait(10)
    seen_fills: set[str] = set()
    total_fills = 0
    for u, (orders, fills) in state.items():
        ids = [o["order_id"] for o in orders]
        assert len(ids) == len(set(ids)), f"{u}: an order listed twice"
        fill_ids = [f["fill_id"] for f in fills]
        assert len(fill_ids) == len(set(fill_ids)), f"{u}: a fill doubled"
        sides = {(f["fill_id"], f["order_id"]) for f in fills}  # a trade's two sides share
        assert not seen_fills & sides                          # its id, never an order
        seen_fills |= sides
        total_fills += len(fills)
        by_order: dict[str, float] = {}
        for f in fills:
            by_order[f["order_id"]] = by_order.get(f["order_id"], 0) + float(f["count_fp"])
        got = {o["order_id"]: o for o in orders}
        for oid, (user, cid, acked_fill) in acks.items():
            if user != u:
                continue
            assert oid in got, f"acknowledged order {oid} ({cid}) lost"
            o = got[oid]
            assert o["client_order_id"] == cid
            assert float(o["fill_count_fp"]) >= float(acked_fill)
        for oid, o in got.items():
            assert abs(by_order.get(oid, 0) - float(o["fill_count_fp"])) < 1e-9, oid
    assert total_fills > 100  # the load crossed: fills were at stake
