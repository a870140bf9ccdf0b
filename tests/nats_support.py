"""nats-server processes on loopback for the JetStream tests (tests/test_nats_*.py).

Each test starts its own servers on free 127.0.0.1 ports with ``-js`` and a store directory
under its ``tmp_path``; tests skip with a reason when Debian's ``nats-server`` is absent
(``.ci/run`` installs it).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from kalshi_platform.bench.nats import free_port, wait_port

NATS_SERVER = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)

needs_nats = pytest.mark.skipif(NATS_SERVER is None, reason="nats-server not installed "
                                "(apt-get install nats-server; .ci/run installs it)")


class Server:
    """One nats-server process (``start``/``kill9``/``stop``); ``url`` nats://127.0.0.1:PORT."""

    def __init__(self, store: Path, port: int | None = None, conf: Path | None = None) -> None:
        self.store, self.port, self.conf = store, port or free_port(), conf
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = store.with_suffix(".log")

    def start(self) -> "Server":
        args = [NATS_SERVER, "-c", str(self.conf)] if self.conf else [
            NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        wait_port(self.port, self.proc)
        return self

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()


def cluster(tmp: Path, n: int = 3) -> list[Server]:
    """``n`` servers in one JetStream cluster (configs written under ``tmp``), started."""
    ports = [(free_port(), free_port()) for _ in range(n)]
    routes = "\n".join(f"    nats-route://127.0.0.1:{r}" for _, r in ports)
    servers = []
    for i, (p, r) in enumerate(ports):
        store = tmp / f"c{i}"
        conf = tmp / f"n{i}.conf"
        conf.write_text(f"""server_name: n{i}
listen: 127.0.0.1:{p}
jetstream {{
  store_dir: "{store}"
  max_memory_store: 256M
  max_file_store: 2G
}}
cluster {{
  name: kalshi
  listen: 127.0.0.1:{r}
  routes: [
{routes}
  ]
}}
""")
        servers.append(Server(store, p, conf))
    for s in servers:
        s.start()
    return servers


def servers_url(servers: list[Server]) -> str:
    return "nats://" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
