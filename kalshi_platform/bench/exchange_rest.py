"""REST order round trip on loopback with the WAL's fsync on (issue 13 §7; docs/exchange.md
"Trading API on the sim").

The server side runs in this process: the sim (``SimServer``) with the trading API attached
(:func:`kalshi_platform.sim.trading.attach_trading`) on a WAL with fsync on (a temporary
directory unless ``wal_dir`` is given): every order is applied, group-committed (one fsync
for every command that arrived during the previous one) and only then answered. The clients
run in a child process (its own interpreter: the two sides share no GIL): ``clients`` users,
each with its own keep-alive HTTP connection pool (aiohttp), send ``POST /portfolio/events/orders``
open loop at ``rate`` orders/s in total — even users rest 1-contract bids at 40¢ (GTC), odd
users sell 1 contract IOC at 40¢ and take them, so the mix has resting orders and fills. The
round trip of an order is measured at the client from just before the request is sent to the
arrival of its answer (201, sent after the fsync of the batch holding the order).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import tempfile
import time
from typing import Any, Callable

from kalshi_platform.bench.roundtrip import rtt_summary_us

TICKER = "KXBENCH-REST"


async def _client_main(rest_url: str, clients: int, orders: int, rate: float) -> dict:
    import aiohttp

    pools = [aiohttp.ClientSession(headers={"KALSHI-ACCESS-KEY": f"bench-{i}"},
                                   timeout=aiohttp.ClientTimeout(total=30))
             for i in range(clients)]
    rtts: list[int] = []
    errors: list[str] = []

    async def one(k: int) -> None:
        i = k % clients
        sell = i % 2 == 1
        body = {"ticker": TICKER, "side": "ask" if sell else "bid", "count": "1",
                "price": "0.40", "client_order_id": f"b{k}",
                "time_in_force": "immediate_or_cancel" if sell else "good_till_canceled",
                "self_trade_prevention_type": "taker_at_cross"}
        t0 = time.perf_counter_ns()
        async with pools[i].post(rest_url + "/portfolio/events/orders", json=body) as r:
            text = await r.read()
        rtts.append(time.perf_counter_ns() - t0)
        if r.status != 201:
            errors.append(f"HTTP {r.status}: {text[:200]!r}")

    for p in pools:  # open the connections before the clock starts
        async with p.get(rest_url + "/portfolio/balance") as r:
            await r.read()
    tasks = []
    start = time.perf_counter()
    for k in range(orders):
        wait = start + k / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(k)))
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    elapsed = time.perf_counter() - start
    for p in pools:
        await p.close()
    if errors:
        return {"error": f"client: {len(errors)} order(s) refused, first: {errors[0]}"}
    return {"rtt_ns": rtts, "elapsed_s": elapsed}


def _client_process(rest_url: str, clients: int, orders: int, rate: float, out: Any) -> None:
    try:
        out.put(asyncio.run(_client_main(rest_url, clients, orders, rate)))
    except Exception as e:  # reported by the parent as one line
        out.put({"error": f"client: {e!r}"})


async def _serve_and_measure(wal_dir: str, clients: int, orders: int, rate: float) -> dict:
    from kalshi_platform.sim.app import SimServer
    from kalshi_platform.sim.trading import attach_trading

    sim = SimServer(ping_interval=0)
    tr = attach_trading(sim, wal_dir=wal_dir, starting_balance=10**9)
    async with sim:
        tr.list_markets([TICKER])
        sim.known.add(TICKER)
        await tr.host.drained()
        lsn0 = tr.host.durable.lsn
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_client_process, args=(sim.rest_url, clients, orders, rate,
                                                         out), daemon=True)
        proc.start()
        cpu0 = time.process_time()  # this process = the server side only
        try:
            res = await asyncio.get_running_loop().run_in_executor(None, out.get, True, 600)
        finally:
            cpu = time.process_time() - cpu0
            proc.join(10)
        if "error" in res:
            raise RuntimeError(res["error"])
        res["wal_records"] = tr.host.durable.lsn - lsn0
        res["fills"] = sum(len(v) for v in tr.host.exchange.fills.values())
        res["server_cpu_us"] = round(cpu / max(1, orders) * 1e6, 1)
    return res


def run_rest_bench(orders: int = 5_000, rate: float = 1_000.0, clients: int = 4,
                   wal_dir: str | None = None,
                   progress: Callable[[str], None] | None = None) -> dict:
    """Measure; returns ``{"orders", "rate_target", "rate_achieved", "clients", "fsync":
    True, "rtt_us": {"p50", "p90", "p99", "max"}, "wal_records", "fills",
    "server_cpu_us_per_order"}`` (microseconds; the server's CPU time: HTTP, JSON, engine,
    publication, WAL).

    Raises ``ValueError`` for bad arguments, ``RuntimeError`` when the client failed."""
    if orders < 1 or rate <= 0 or clients < 2:
        raise ValueError("--orders >= 1, --rate > 0 and --clients >= 2 (makers and takers)")
    if progress:
        progress(f"REST round trip: {orders:,} orders at {rate:g}/s from {clients} clients, "
                 "WAL fsync on")
    with tempfile.TemporaryDirectory(prefix="rest-bench-wal-") as tmp:
        res = asyncio.run(_serve_and_measure(wal_dir or tmp, clients, orders, rate))
    rtt = res["rtt_ns"]
    return {"orders": len(rtt), "rate_target": rate,
            "rate_achieved": round(len(rtt) / res["elapsed_s"], 1), "clients": clients,
            "fsync": True, "wal_records": res["wal_records"], "fills": res["fills"],
            "server_cpu_us_per_order": res["server_cpu_us"],
            "rtt_us": rtt_summary_us(rtt)}


def render(res: dict, console: Any) -> None:
    """One table row per figure."""
    from rich.table import Table

    t = Table(title="REST order round trip (POST /portfolio/events/orders -> 201), loopback, "
                    "WAL fsync on")
    for col in ("orders", "clients", "rate", "got/s", "p50 µs", "p90 µs", "p99 µs", "max µs",
                "CPU µs"):
        t.add_column(col, justify="right")
    r = res["rtt_us"]
    t.add_row(f"{res['orders']:,}", str(res["clients"]), f"{res['rate_target']:g}",
              f"{res['rate_achieved']:g}", f"{r['p50']:,}", f"{r['p90']:,}", f"{r['p99']:,}",
              f"{r['max']:,}", f"{res['server_cpu_us_per_order']:,}")
    console.print(t, soft_wrap=True)
