"""Test support: the local Kalshi-compatible server on its own event loop in a thread, for
tests that drive a CLI (CliRunner) from the test thread."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager

from kalshi_platform.sim.app import SimServer


@contextmanager
def sim_thread(**kw):
    """A SimServer on its own event loop in a thread (for CliRunner tests in this thread)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict = {}

    def main():
        asyncio.set_event_loop(loop)
        try:
            sim = SimServer(**kw)
            loop.run_until_complete(sim.start())
            box["sim"] = sim
        except BaseException as e:  # noqa: BLE001 - reported to the test thread
            box["error"] = e
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(sim.stop())
        loop.close()

    t = threading.Thread(target=main, daemon=True)
    t.start()
    assert ready.wait(10)
    if "error" in box:
        raise box["error"]
    try:
        yield box["sim"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


def start_sim_process(cli: list[str], recording, cwd, *args: str):
    """``kalshi-platform sim`` as a process on a free loopback port; returns ``(process,
    ws_url, rest_url)`` once it printed both URLs. The caller kills it."""
    import subprocess

    p = subprocess.Popen(cli + ["sim", "--replay", str(recording), "--port", "0", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    urls: dict = {}
    while len(urls) < 2:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        if line.startswith("sim: WebSocket "):
            urls["ws"] = line.split()[-1]
        elif line.startswith("sim: REST "):
            urls["rest"] = line.split()[-1]
    return p, urls["ws"], urls["rest"]
