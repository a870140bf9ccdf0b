"""The JetStream writer's QuestDB sink against a loopback ILP/HTTP endpoint
(kalshi_platform/bench/ilp_endpoint.py; issue 15 §3: ack only after QuestDB's ILP/HTTP
flush returned OK; docs/scale-out.md "The writer").

The oracle is a direct ``replay --sink questdb`` of the bundled real recording into a second
endpoint: the ILP lines the writer sends must be those, each at least once (redelivered
copies are what QuestDB's DEDUP UPSERT KEYS absorb), and nothing else.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

from conftest import COCKPIT, wait_until
from nats_support import Server, needs_nats

pytestmark = needs_nats

CLI = [sys.executable, "-m", "kalshi_platform"]


def _env(tmp_path, conf: str) -> dict:
    return {**os.environ, "KALSHI_QUESTDB_ILP_CONF": conf,
            "KALSHI_QUESTDB_SPOOL_DIR": str(tmp_path / "oracle-spool"),
            "KALSHI_QUESTDB_CLOSE_TIMEOUT_S": "5", "KALSHI_STORE_DIR": str(tmp_path / "store"),
            "KALSHI_QUESTDB_AUTO_INIT": "false"}  # the loopback endpoint has no PG wire


def _run(args: list[str], env: dict | None = None) -> None:
    p = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                       env=env or os.environ)
    assert p.returncode == 0, p.stderr + p.stdout


async def _ack_state(url: str) -> tuple[int, int]:
    """(unacked, undelivered) messages of the writer's two durable consumers."""
    import nats

    from kalshi_platform.feed import nats_wire

    nc = await nats.connect(url)
    try:
        js, names = nc.jetstream(), nats_wire.stream_names("prod")
        infos = [await js.consumer_info(names[k], f"writer-{k}") for k in ("book", "events")]
        return sum(i.num_ack_pending for i in infos), sum(i.num_pending for i in infos)
    finally:
        await nc.close()


def test_writer_acks_only_after_questdb_took_the_rows(tmp_path):
    """QuestDB answers 503 for a while: the writer's flushes do not ack (its QuestDB writer
    keeps the rows), JetStream redelivers after ack_wait, nothing reaches QuestDB. Once it
    accepts again, every row of the direct replay arrives, every message is acked, and the
    only extra lines are copies of those rows (redeliveries, absorbed by the dedup keys)."""
    from kalshi_platform.bench.ilp_endpoint import ILPEndpoint
    from kalshi_platform.feed.nats_writer import NatsWriter
    from kalshi_platform.storage.questdb_rdb import QuestDBWriter

    with ILPEndpoint() as oracle:
        _run(["replay", str(COCKPIT), "--sink", "questdb"], _env(tmp_path, oracle.conf))
        want = set(oracle.lines)
    assert len(want) == len(oracle.lines) > 1000  # the oracle itself holds no copies

    server = Server(tmp_path / "js").start()
    ep = ILPEndpoint(mode="refuse").start()
    try:
        _run(["nats", "init", server.url, "--events-replicas", "1"])
        _run(["replay", str(COCKPIT), "--sink", "none", "--publish", server.url])
        qdb = QuestDBWriter(ep.conf, spool_dir=tmp_path / "spool", close_timeout_s=0.3,
                            retry_base_s=0.05, retry_cap_s=0.2)
        writer = NatsWriter(server.url, [qdb], flush_s=0.2, ack_wait_s=2.0)
        loop = asyncio.new_event_loop()
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(stats=loop.run_until_complete(
            writer.run())), daemon=True)
        t.start()
        try:
            wait_until(lambda: writer.redelivered > 0 and ep.refused >= 3, 30,
                       "QuestDB refusing, messages redelivered after ack_wait")
            assert writer.acks == 0 and writer.unacked_flushes > 0 and not ep.lines
            ep.mode = "accept"  # QuestDB is back
            wait_until(lambda: asyncio.run(_ack_state(server.url)) == (0, 0), 60,
                       "every message acked once QuestDB took the rows")
        finally:
            loop.call_soon_threadsafe(writer.stop)
            t.join(30)
            qdb.close()
        stats = result["stats"]
        assert stats["acks"] >= stats["messages"] - stats["redelivered"] > 0
        got = ep.lines
        assert set(got) == want  # every row, nothing else
        assert len(got) >= len(want)  # copies only from redelivery
    finally:
        ep.close()
        server.stop()
