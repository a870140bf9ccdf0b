"""FIX order round trip on loopback with the WAL's fsync on (issue 13 §7; docs/fix.md
"Benchmark").

The server side runs in this process: a :class:`~kalshi_platform.exchange.wal.DurableExchange`
(fsync on, in a temporary directory unless ``wal_dir`` is given) behind an ``EngineHub``
(asyncio group commit: one fsync for every command that arrived during the previous one) and
a ``FixServer`` on 127.0.0.1. The clients run in a child process (its own interpreter, so the
two sides do not share a GIL): ``sessions`` FIX sessions send NewOrderSingles open-loop at
``rate`` orders/s in total — even sessions rest bids at 40¢ (GTC), odd ones sell 1 contract
IOC at 40¢ and take them, so the mix has both resting orders and fills. The round trip of an
order is measured at the client from just before its bytes are written to the arrival of its
first ExecutionReport (New, sent only after the fsync of the batch holding the order).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import tempfile
import time
from typing import Any, Callable

from kalshi_platform.bench.roundtrip import rtt_summary_us

TICKER = "KXBENCH-FIX"


async def _client_main(port: int, pem: bytes, sessions: int, orders: int, rate: float) -> dict:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from kalshi_platform.fix import protocol as P
    from kalshi_platform.tools.fix_client import FixClient

    key = load_pem_private_key(pem, None)
    clients = [FixClient(f"bench-{i}", key) for i in range(sessions)]
    await asyncio.gather(*(c.connect("127.0.0.1", port) for c in clients))
    sent: dict[str, int] = {}
    rtts: list[int] = []
    done = asyncio.Event()

    async def collect(c) -> None:
        while len(rtts) < orders:
            m = await c.expect(("8", "j", "3"), 60)
            cl = P.text(m, P.CL_ORD_ID)
            t0 = sent.pop(cl, None)
            if t0 is not None:
                rtts.append(time.perf_counter_ns() - t0)
                if P.text(m, 35) != "8" or P.text(m, P.EXEC_TYPE) == "8":
                    raise RuntimeError(f"order refused: {P.text(m, P.TEXT)}")
        done.set()

    readers = [asyncio.create_task(collect(c)) for c in clients]
    start = time.perf_counter()
    for k in range(orders):
        due = start + k / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        c = clients[k % sessions]
        cl = f"b{k}"
        sell = (k % sessions) % 2 == 1
        sent[cl] = time.perf_counter_ns()
        c.new_order(TICKER, "2" if sell else "1", 1, 40, tif="3" if sell else "1", clordid=cl)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    for r in readers:
        r.cancel()
    await asyncio.gather(*(c.logout() for c in clients), return_exceptions=True)
    return {"rtt_ns": rtts, "elapsed_s": elapsed}


def _client_process(port: int, pem: bytes, sessions: int, orders: int, rate: float,
                    out: Any) -> None:
    try:
        out.put(asyncio.run(_client_main(port, pem, sessions, orders, rate)))
    except Exception as e:  # reported by the parent as one line
        out.put({"error": f"client: {e}"})


async def _serve_and_measure(wal_dir: str, sessions: int, orders: int, rate: float,
                             fsync: bool) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from kalshi_platform.exchange import AddMarket, Deposit
    from kalshi_platform.exchange.wal import DurableExchange
    from kalshi_platform.fix import EngineHub, FixServer

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    dx = DurableExchange(wal_dir, fsync=fsync)
    hub = EngineHub(dx)
    await hub.submit(AddMarket(ticker=TICKER))
    for i in range(sessions):
        await hub.submit(Deposit(user_id=f"bench-{i}", amount=10**9))
    pub = key.public_key()
    server = FixServer(hub, lambda k: pub if k.startswith("bench-") else None)
    await server.start()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_client_process,
                       args=(server.port, pem, sessions, orders, rate, out), daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    lsn0 = dx.lsn
    cpu0 = time.process_time()
    try:
        res = await loop.run_in_executor(None, out.get, True, 300)
        cpu = time.process_time() - cpu0
    finally:
        proc.join(10)
        await server.stop()
        dx.close()
    if "error" in res:
        raise RuntimeError(res["error"])
    res["wal_records"] = dx.lsn - lsn0
    res["server_cpu_s"] = cpu
    return res


def run_fix_bench(orders: int = 5_000, rate: float = 1_000.0, sessions: int = 4,
                  fsync: bool = True, wal_dir: str | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Measure; returns ``{"orders", "rate_target", "rate_achieved", "sessions", "fsync",
    "rtt_us": {"p50", "p90", "p99", "max"}, "wal_records", "server_cpu_us_per_order"}``
    (microseconds; the server's CPU time includes its logons and the fsync thread's share).

    Raises ``ValueError`` for bad arguments, ``RuntimeError`` when the client failed."""
    if orders < 1 or rate <= 0 or sessions < 2:
        raise ValueError("--orders >= 1, --rate > 0 and --sessions >= 2 (makers and takers)")
    if progress:
        progress(f"FIX round trip: {orders:,} orders at {rate:g}/s over {sessions} sessions, "
                 f"fsync {'on' if fsync else 'off'}")
    with tempfile.TemporaryDirectory(prefix="fix-bench-wal-") as tmp:
        res = asyncio.run(_serve_and_measure(wal_dir or tmp, sessions, orders, rate, fsync))
    rtt = res["rtt_ns"]
    return {"orders": len(rtt), "rate_target": rate,
            "rate_achieved": round(len(rtt) / res["elapsed_s"], 1), "sessions": sessions,
            "fsync": fsync, "wal_records": res["wal_records"],
            "server_cpu_us_per_order": round(res["server_cpu_s"] * 1e6 / max(1, len(rtt)), 1),
            "rtt_us": rtt_summary_us(rtt)}


def render(res: dict, console: Any) -> None:
    """One table row per figure."""
    from rich.table import Table

    t = Table(title=f"FIX round trip (NewOrderSingle -> ExecutionReport), loopback, WAL fsync "
                    f"{'on' if res['fsync'] else 'off'}")
    for col in ("orders", "sess", "rate", "got/s", "p50 µs", "p90 µs", "p99 µs", "max µs",
                "CPU µs"):  # CPU: the server's CPU time per order
        t.add_column(col, justify="right")
    r = res["rtt_us"]
    t.add_row(f"{res['orders']:,}", str(res["sessions"]), f"{res['rate_target']:g}",
              f"{res['rate_achieved']:.0f}", *(f"{r[k]:,.0f}" for k in ("p50", "p90", "p99",
                                                                     "max")),
              f"{res['server_cpu_us_per_order']:.0f}")
    console.print(t, soft_wrap=True)
