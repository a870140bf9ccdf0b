"""Test support for the Prometheus tests: a sim process with a dropped-frame fault and a
``run`` process against it serving ``/metrics`` on loopback, plus a text-format parser.

Synchronisation is on output lines and on scraped values, with deadlines; never sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from prometheus_client.parser import text_string_to_metric_families

from conftest import COCKPIT
from sim_support import start_sim_process

CLI = [sys.executable, "-m", "kalshi_platform"]
SERIES = ("KXMLBGAME", "KXWNBAGAME")  # every market of the bundled cockpit capture


def scrape(url: str, timeout: float = 5.0) -> dict[tuple[str, tuple], float]:
    """``/metrics`` at ``url`` as ``{(sample name, sorted label items): value}``."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        text = r.read().decode()
    out: dict[tuple[str, tuple], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wait_for(fn: Callable[[], object], timeout: float, what: str, step: float = 0.05):
    """Poll ``fn`` until it returns a truthy value (returned) or ``timeout`` s pass (fail)."""
    deadline = time.monotonic() + timeout
    last_err: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got:
                return got
        except OSError as e:  # endpoint not up yet, connection refused
            last_err = e
        time.sleep(step)  # poll interval only: the condition is re-checked
    raise AssertionError(f"timed out waiting for {what} (last error: {last_err})")


def _read_until(stream, prefix: str, proc: subprocess.Popen) -> str:
    """The first line of ``stream`` starting with ``prefix`` (fails if ``proc`` ends first)."""
    while True:
        line = stream.readline()
        if not line:
            raise AssertionError(f"process exited {proc.wait()} before printing {prefix!r}")
        if line.startswith(prefix):
            return line.strip()


@contextmanager
def run_with_metrics(tmp_path: Path, *, drop_every: int = 25,
                     env: dict | None = None) -> Iterator[dict]:
    """A sim process (playback as fast as possible, every ``drop_every``-th frame dropped,
    connection kept open after playback) and ``run --sink none --publish ipc://…
    --metrics-port 0`` against it.
    Yields ``{"url", "run", "sim", "summary_path"}``; on exit both processes are stopped
    (``run`` by SIGINT, so its summary is written) and ``summary_path`` holds the summary."""
    sim, ws, rest = start_sim_process(CLI, COCKPIT, tmp_path, "--speed", "0",
                                      "--drop-every", str(drop_every), "--ping-interval", "0")
    summary = tmp_path / "summary.json"
    args = ["run", "--sink", "none", "--ws-url", ws, "--base-url", rest, "--status-interval",
            "0", "--metrics-port", "0", "--summary-json", str(summary),
            "--publish", f"ipc://{tmp_path}/feed.ipc"]  # a subscriber transport: its lag
    for s in SERIES:
        args += ["--series", s]
    run = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=tmp_path, env={**os.environ, **(env or {})})
    try:
        url = _read_until(run.stderr, "metrics: ", run).split()[-1]
        yield {"url": url, "run": run, "sim": sim, "summary_path": summary}
    finally:
        for p, sig in ((run, signal.SIGINT), (sim, signal.SIGTERM)):
            if p.poll() is None:
                p.send_signal(sig)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
