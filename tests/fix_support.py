"""Helpers of the FIX gateway tests (tests/test_fix_*.py): an in-process exchange core with
markets and funded users, a FixServer on loopback, signed clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools

from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_platform.exchange import AddMarket, Deposit, Exchange
from kalshi_platform.fix import EngineHub, FixServer
from kalshi_platform.fix import protocol as P
from kalshi_platform.tools.fix_client import FixClient

TICKER = "KXTEST-26DEC01-T50"
TICKER2 = "KXTEST-26DEC01-T60"


@functools.lru_cache(maxsize=2)
def rsa_key(n: int = 0):
    """A 2048-bit RSA key (one per ``n``, generated once per run)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_hub(users=("alice", "bob"), cents: int = 100_000, exchange=None) -> EngineHub:
    """An EngineHub over an in-memory core with TICKER and TICKER2 (cent ticks) and each
    user funded with ``cents``."""
    hub = EngineHub(exchange if exchange is not None else Exchange())
    for t in (TICKER, TICKER2):
        assert hub.submit_now(AddMarket(ticker=t, event_ticker="KXTEST-26DEC01")).ok
    for u in users:
        assert hub.submit_now(Deposit(user_id=u, amount=cents)).ok
    return hub


@contextlib.asynccontextmanager
async def serving(hub, users=("alice", "bob"), **kw):
    """A started FixServer on 127.0.0.1 accepting ``users``' signatures (key = rsa_key())."""
    pub = rsa_key().public_key()
    keys = {u: pub for u in users}
    kw.setdefault("heartbeat_unit_s", 1.0)
    server = FixServer(hub, keys.get, **kw)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def logon(server, user: str, **kw) -> FixClient:
    """A logged-on client of ``user``."""
    ssl_ctx = kw.pop("ssl_context", None)
    c = FixClient(user, kw.pop("key", rsa_key()), **kw)
    await c.connect("127.0.0.1", server.port, ssl_ctx)
    return c


def tag(msg, t: int) -> str | None:
    """Tag ``t`` of ``msg`` as str."""
    return P.text(msg, t)


async def report(c: FixClient, timeout: float = 5.0):
    """The next ExecutionReport (or cancel reject / mass cancel report / rejects)."""
    return await c.expect(("8", "9", "r", "j", "3"), timeout)


def run(coro):
    """Run an async test body."""
    return asyncio.run(asyncio.wait_for(coro, 60))
