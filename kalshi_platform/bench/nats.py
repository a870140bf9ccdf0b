"""``kalshi-platform bench nats``: plant → JetStream → writer → Parquet, and → a subscriber,
on one node (R1) and on a 3-node loopback cluster (R3), against core NATS publish measured in
the same run (issue 15 §6; docs/scale-out.md "Measured here").

For each topology the bench starts its own ``nats-server`` processes (free 127.0.0.1 ports, a
temporary store), runs ``nats init``, starts a ``writer`` process (``--sink parquet``) and a
subscriber process (:mod:`kalshi_platform.bench.nats_worker`) and, once both are consuming,
replays a synthetic recording (:mod:`kalshi_platform.bench.synth`, grown from the bundled real
capture) flat out with ``--publish nats://…``. Figures, events/s of the plant's stream:

* ``publish``: replay start → every message acked (the replay's close waits for the acks);
* ``writer``: replay start → the writer's last flush that made everything durable;
* ``subscriber``: replay start → the subscriber got END with every seq;
* ``core``: core ``nc.publish`` of as many messages of the same mean size, no stream, then a
  flush (PING/PONG), as events/s at the same events per message.

Lost = events of the stream the writer (or the subscriber) did not get. Targets: ≥ 100k
events/s end to end on one node, ≥ 50k on R3, 0 lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

TARGETS = {"single": 100_000, "cluster": 50_000}
NATS_SERVER = "nats-server"


class BenchError(RuntimeError):
    """The bench cannot run (no nats-server, a process that failed): one line."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    """Poll until ``proc`` (a nats-server) listens on 127.0.0.1:``port``; raises
    :class:`BenchError` if it exits first or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"nats-server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"nats-server not listening on {port}")


def start_servers(tmp: Path, n: int) -> tuple[str, list[subprocess.Popen]]:
    """``n`` nats-server processes (1: a single node; 3: one cluster). Returns the URL with
    every server and the processes."""
    binary = shutil.which(NATS_SERVER) or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        raise BenchError("nats-server not installed (apt-get install nats-server)")
    ports = [(free_port(), free_port()) for _ in range(n)]
    procs = []
    for i, (p, r) in enumerate(ports):
        store = tmp / f"js{i}"
        if n == 1:
            args = [binary, "-js", "-a", "127.0.0.1", "-p", str(p), "-sd", str(store)]
        else:
            conf = tmp / f"n{i}.conf"
            routes = "\n".join(f"    nats-route://127.0.0.1:{rr}" for _, rr in ports)
            conf.write_text(f"server_name: n{i}\nlisten: 127.0.0.1:{p}\njetstream {{\n"
                            f"  store_dir: \"{store}\"\n}}\ncluster {{\n  name: bench\n"
                            f"  listen: 127.0.0.1:{r}\n  routes: [\n{routes}\n  ]\n}}\n")
            args = [binary, "-c", str(conf)]
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    for (p, _), proc in zip(ports, procs):
        wait_port(p, proc)
    return "nats://" + ",".join(f"127.0.0.1:{p}" for p, _ in ports), procs


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's waited-for children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kalshi_platform", *args]


def _init(url: str, replicas: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:  # a fresh cluster needs a moment to elect its meta leader
        p = subprocess.run(_cli("nats", "init", url, "--events-replicas", str(replicas),
                                "--book-replicas", str(replicas)), capture_output=True,
                           text=True)
        if p.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"nats init failed: {p.stderr.strip()[:200]}")
        time.sleep(0.5)


async def _consumer_exists(url: str, stream: str, name: str) -> bool:
    import nats

    nc = await nats.connect(url.split(",")[0])
    try:
        await nc.jetstream().consumer_info(stream, name)
        return True
    except Exception:
        return False
    finally:
        await nc.close()


async def core_publish(url: str, n: int, size: int) -> float:
    """Core NATS ``publish`` of ``n`` messages of ``size`` bytes on a subject no stream
    captures, then a flush: messages/s."""
    import nats

    nc = await nats.connect(url.split(",")[0])
    payload = os.urandom(size)
    t0 = time.perf_counter()
    for _ in range(n):
        await nc.publish("bench.core.kalshi", payload)
    await nc.flush(timeout=60)
    dt = time.perf_counter() - t0
    await nc.close()
    return n / dt


def _book_stats(url: str) -> tuple[int, int]:
    async def go():
        import nats

        nc = await nats.connect(url.split(",")[0])
        try:
            i = await nc.jetstream().stream_info("KALSHI_PROD_BOOK")
            return i.state.messages, i.state.bytes
        finally:
            await nc.close()

    return asyncio.run(go())


def run_topology(name: str, rec: Path, tmp: Path, report: Callable[[str], None]) -> dict:
    """One topology (``single`` or ``cluster``): see the module docstring."""
    from kalshi_platform.tools.replay import run_replay

    n = 1 if name == "single" else 3
    url, procs = start_servers(tmp, n)
    workers: list[subprocess.Popen] = []
    try:
        _init(url, n)
        wsum, ssum = tmp / "writer.json", tmp / "sub.json"
        workers.append(subprocess.Popen(
            _cli("writer", "--from", url, "--store", str(tmp / "store"), "--idle-exit", "3",
                 "--flush-s", "0.25",
                 "--summary-json", str(wsum)), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "kalshi_platform.bench.nats_worker", url, str(ssum)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while not (asyncio.run(_consumer_exists(url, "KALSHI_PROD_EVENTS", "writer-events"))
                   and (tmp / "sub.json.ready").exists()):
            if time.monotonic() > deadline:
                raise BenchError(f"{name}: writer or subscriber did not start")
            time.sleep(0.1)
        report(f"nats {name}: replaying {rec.name}")
        srv0 = sum(_proc_cpu(p.pid) for p in procs)
        kids0 = _children_cpu()
        started = [_proc_cpu(p.pid) for p in workers]  # imports, connect: not per event
        cpu0 = time.process_time()
        t0 = time.time()
        summary = run_replay(rec, store=tmp / "unused", sinks=[], publish=[url])
        t_pub = time.time()
        plant_cpu = time.process_time() - cpu0
        total = summary["stream"]["seq"]
        worker_cpu = []  # each worker's CPU from the replay's start to its exit
        for w, before in zip(workers, started):
            w.wait(300)
            kids1 = _children_cpu()
            worker_cpu.append(kids1 - kids0 - before)
            kids0 = kids1
        server_cpu = sum(_proc_cpu(p.pid) for p in procs) - srv0
        ws, ss = json.loads(wsum.read_text()), json.loads(ssum.read_text())
        msgs, nbytes = _book_stats(url)
        report(f"nats {name}: core publish baseline")
        core = asyncio.run(core_publish(url, max(msgs, 1000), max(1, nbytes // max(msgs, 1))))
        per_msg = total / max(1, ws["messages"])
        return {
            "topology": name, "replicas": n, "events": total, "messages": ws["messages"],
            "events_per_message": round(per_msg, 1),
            "publish_per_s": total / (t_pub - t0),
            "writer_per_s": total / (ws["last_flush_at"] - t0),
            "subscriber_per_s": total / (ss["end_at"] - t0),
            "writer_lost": total - ws["events"], "subscriber_lost": total - ss["events"],
            "subscriber_gaps": ss["gaps"], "redelivered": ws["redelivered"],
            "core_msgs_per_s": core, "core_events_per_s": core * per_msg,
            "cpu_us_per_event": {"plant_and_publisher": 1e6 * plant_cpu / total,
                                 "writer": 1e6 * worker_cpu[0] / total,
                                 "subscriber": 1e6 * worker_cpu[1] / total,
                                 "servers": 1e6 * server_cpu / total},
            "target": TARGETS[name],
        }
    finally:
        for p in workers + procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def run(frames: int, copies: int, topologies: list[str],
        report: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """Every topology in order; returns their result dicts."""
    from kalshi_platform.bench.synth import write_synthetic_recording

    src = Path(__file__).resolve().parents[2] / "data" / "recordings" / \
        "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
    out = []
    with tempfile.TemporaryDirectory(prefix="kalshi-bench-nats-") as d:
        rec = Path(d) / "synthetic.frames.jsonl"
        report(f"nats: writing a {frames:,}-frame synthetic recording")
        write_synthetic_recording(src, rec, frames, copies)
        for name in topologies:
            tmp = Path(d) / name
            tmp.mkdir()
            out.append(run_topology(name, rec, tmp, report))
    return out
