"""Helpers of the paper-trading tests: the exchange simulator on a background thread (the same
``SimServer`` + ``attach_trading`` that ``kalshi-platform sim --replay FILE --liquidity
--speed 0`` runs) and a trading node on a ``RestVenue`` on another thread."""

from __future__ import annotations

import asyncio
import threading

from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import wait_until
from kalshi_platform.api.auth import Signer
from kalshi_platform.sim.app import SimServer
from kalshi_platform.sim.trading import attach_trading
from kalshi_platform.trading.node import TradingNode
from kalshi_platform.trading.venue_rest import RestVenue, RestVenueConfig


class SimThread:
    """``sim --exchange`` (optionally ``--replay rec --liquidity --speed 0``) on a thread.
    Attributes once started: ``rest_url``, ``ws_url``, ``exchange`` (the engine: read it only
    through :meth:`call`), ``sim``."""

    def __init__(self, recording=None, liquidity: bool = True,
                 starting_balance: int = 1_000_000) -> None:
        self.recording, self.liquidity, self.balance = recording, liquidity, starting_balance
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._err: BaseException | None = None
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # surfaced by __enter__/__exit__
            self._err = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.sim = SimServer(self.recording, start="subscribe", ping_interval=0, speed=0.0)
        self.trading = attach_trading(self.sim, starting_balance=self.balance,
                                      liquidity=self.liquidity and self.recording is not None)
        async with self.sim:
            self.rest_url, self.ws_url = self.sim.rest_url, self.sim.ws_url
            self.exchange = self.trading.host.exchange
            self._ready.set()
            await self._stop.wait()

    def call(self, fn, timeout: float = 10.0):
        """Run ``fn()`` on the sim's loop (the engine is not thread-safe) and return it."""

        async def go():
            return fn()

        return asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout)

    def replay_done(self) -> bool:
        return self.call(lambda: self.sim.done.is_set())

    def resting(self, user: str) -> list:
        """The user's resting orders at the engine (``OrderView``)."""
        return self.call(lambda: list(self.exchange.user_orders(user, None, "resting")))

    def __enter__(self) -> "SimThread":
        self._t.start()
        self._ready.wait(30)
        if self._err is not None:
            raise self._err
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._t.join(15)


def signer(name: str = "alice") -> Signer:
    """A fresh Ed25519 key for ``name`` (the sim without ``--users`` takes the key id)."""
    return Signer(name, ed25519.Ed25519PrivateKey.generate())


class NodeThread:
    """A :class:`TradingNode` for ``strategy`` on a ``RestVenue`` to ``sim``, run on a thread
    (``node.start`` there too, so every callback is on the venue's loop)."""

    def __init__(self, sim: SimThread, strategy, tickers, *, key: Signer, risk=None,
                 cancel_on_stop: bool = True, timeout_s: float = 5.0) -> None:
        cfg = RestVenueConfig(sim.rest_url, sim.ws_url, key, tuple(tickers), timeout_s=timeout_s)
        self.venue = RestVenue(cfg, before_close=self._close)
        self.node = TradingNode(strategy, self.venue, risk)
        self.cancel_on_stop = cancel_on_stop
        self.error: BaseException | None = None
        self._t = threading.Thread(target=self._run, daemon=True)

    def _close(self) -> None:
        self.node.stop(cancel_all=self.cancel_on_stop)

    def _run(self) -> None:
        try:
            self.node.start()
            self.venue.run()
        except BaseException as e:
            self.error = e

    def on_loop(self, fn, timeout: float = 10.0):
        """Run ``fn()`` on the venue's loop (where the node lives) and return its value."""
        out: list = []
        err: list = []
        done = threading.Event()

        def go():
            try:
                out.append(fn())
            except BaseException as e:  # re-raised on the test's thread
                err.append(e)
            finally:
                done.set()

        self.venue.call_soon(go)
        assert done.wait(timeout), "venue loop did not run the call"
        if err:
            raise err[0]
        return out[0]

    def __enter__(self) -> "NodeThread":
        self._t.start()
        wait_until(lambda: self.error is not None or self.venue.private_connected.is_set(),
                   20, "venue connected")
        if self.error is not None:
            raise self.error
        return self

    def close(self) -> None:
        self.venue.stop()
        self._t.join(20)
        if self.error is not None:
            raise self.error

    def __exit__(self, *exc) -> None:
        self.close()
