"""3-node JetStream cluster on loopback, R3 streams: kill -9 the stream leader while a replay
publishes, restart it (issue 15 §5; docs/scale-out.md "Failover of a NATS node").

Measured on this machine (2 shared cores): the leader election stalls publishing 5-8 s
(docs/fanout-and-scale.md "Fault test"), so the whole test takes ~25-40 s. Issue 15 asks for
it in CI, so it is part of the default run (``.ci/run`` installs nats-server); it skips with a
reason only when nats-server is absent.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

from conftest import COCKPIT, wait_until
from nats_support import cluster, needs_nats, servers_url

pytestmark = [needs_nats]

CLI = [sys.executable, "-m", "kalshi_platform"]


def _cli(*args: str, timeout: float = 120) -> str:
    p = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "COLUMNS": "200"})
    assert p.returncode == 0, p.stderr + p.stdout
    return p.stdout


async def _leader(url: str, stream: str) -> str:
    import nats

    nc = await nats.connect(url.split(",")[0])
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.cluster.leader
    finally:
        await nc.close()


def test_kill_9_the_stream_leader_mid_replay_loses_nothing_doubles_nothing(tmp_path):
    from kalshi_platform.bench.synth import write_synthetic_recording
    from kalshi_platform.config import Settings
    from kalshi_platform.ingestion.recording import feed
    from kalshi_platform.stream.sinks import plant_outputs
    from kalshi_platform.ticker_plant.plant import TickerPlant

    from test_nats_single import _assert_same_store, _direct_store

    nodes = cluster(tmp_path)
    try:
        url = servers_url(nodes)
        wait_until(lambda: _try_init(url), 30, "a cluster accepting R3 streams")
        rec = tmp_path / "syn.jsonl"
        write_synthetic_recording(COCKPIT, rec, 30_000, 4)  # ~1,675 s of recorded time
        settings = Settings(store_dir=str(tmp_path / "unused"))
        outputs, started = plant_outputs([], settings, publish=[url + "?ack_timeout_s=1"])
        pub = started[0]
        plant = TickerPlant(outputs)
        th = threading.Thread(target=feed, args=(rec, plant), kwargs={"speed": 150},
                              daemon=True)  # ~11 s of publishing
        th.start()
        wait_until(lambda: pub.stats()["acked"] > 200, 20, "publishing under way")
        leader = asyncio.run(_leader(url, "KALSHI_PROD_BOOK"))
        victim = next(n for i, n in enumerate(nodes) if f"n{i}" == leader)
        victim.kill9()
        killed_at = time.monotonic()
        wait_until(lambda: time.monotonic() - killed_at > 3, 10, "3 s of downtime")
        victim.start()
        th.join(120)
        plant.close()  # waits for every ack (retrying through the election)
        s = pub.stats()
        print("publisher:", json.dumps(s))
        assert s["unacked"] == 0 and s["failed"] is None
        assert sum(s["retries"].values()) > 0 and s["max_stall_s"] > 1.0  # the stall showed
        out = tmp_path / "writer"
        summary = tmp_path / "w.json"
        _cli("writer", "--from", url, "--store", str(out), "--idle-exit", "2",
             "--summary-json", str(summary))
        direct = _direct_store(rec, tmp_path)
        n = _assert_same_store(out, direct)  # raw rows: 0 lost, 0 doubled
        assert n > 30_000
        print("writer:", summary.read_text())
    finally:
        for n in nodes:
            n.stop()


def _try_init(url: str) -> bool:
    p = subprocess.run([*CLI, "nats", "init", url, "--events-replicas", "3", "--book-replicas",
                        "3"], capture_output=True, text=True, timeout=60)
    return p.returncode == 0
