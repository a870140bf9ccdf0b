"""Test support: the local Kalshi-compatible server on its own event loop in a thread, for
tests that drive a CLI (CliRunner) from the test thread; the sim as a process; Ed25519 key
files for the sim's signed users."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi_platform.sim.app import SimServer


async def settle_market(rest_url: str, ticker: str, result: str = "yes") -> None:
    """Close, determine (``result``) and settle ``ticker`` over the sim's ``/admin`` REST;
    every step must answer 200."""
    import httpx

    async with httpx.AsyncClient(base_url=rest_url + "/admin") as adm:
        for path, body in ((f"/markets/{ticker}/close", None),
                           (f"/markets/{ticker}/determine", {"result": result}),
                           (f"/markets/{ticker}/settle", None)):
            r = await adm.post(path, json=body)
            assert r.status_code == 200, r.text


def public_key_file(tmp_path, name: str) -> tuple[ed25519.Ed25519PrivateKey, str]:
    """A new Ed25519 key and the path of its public key (PEM, ``<tmp_path>/<name>.pub.pem``),
    as a sim user's key file (``UserSpec``)."""
    key = ed25519.Ed25519PrivateKey.generate()
    pub = tmp_path / f"{name}.pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, str(pub)


def private_key_file(tmp_path, name: str = "key"):
    """A new Ed25519 key and the path (``<tmp_path>/<name>.pem``) of its unencrypted PKCS#8
    PEM, as a client's ``private_key_pem``."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = tmp_path / f"{name}.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return key, pem


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
