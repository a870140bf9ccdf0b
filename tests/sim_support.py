"""Test support: the local Kalshi-compatible server on its own event loop in a thread, for
tests that drive a CLI (CliRunner) from the test thread."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager

from kalshi_platform.sim.server import SimServer


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
