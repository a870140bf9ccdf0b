"""EngineHub: the one writer in front of the exchange core, shared by FIX and REST.

The core takes no lock: one owner submits commands in order (docs/exchange.md "One writer").
``EngineHub`` is that owner on an asyncio loop. Over an in-memory ``Exchange`` a command is
applied at once; over a ``DurableExchange`` it goes through a ``GroupCommitter`` so the answer
comes only after the fsynced append (docs/exchange.md "Durability"). After that, every
listener is called with ``(cmd, result, ctx)`` — so a FIX session learns about a maker fill of
its order caused by a REST taker, and events are published only once durable.

If the sim already has its own owner of the engine, anything with ``exchange`` (the core for
queries), ``async submit(cmd, ctx=None) -> Result`` and ``add_listener(fn)`` can stand in
for this class.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from kalshi_platform.exchange import Exchange, Result
from kalshi_platform.exchange.wal import DurableExchange, GroupCommitter

Listener = Callable[[Any, Result, Any], None]


class EngineHub:
    """Owner of one exchange core on the running event loop.

    Args:
        target: an ``Exchange`` (in memory) or a ``DurableExchange`` (WAL, group commit).
        clock: UTC nanoseconds (``time.time_ns``); timestamps passed to the core never go
            backwards (the core requires it).
    """

    def __init__(self, target: Exchange | DurableExchange,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.target = target
        self.durable = isinstance(target, DurableExchange)
        self.exchange: Exchange = target.exchange if self.durable else target
        self._committer = GroupCommitter(target) if self.durable else None
        self._clock = clock
        self._last_ts = 0
        self._listeners: list[Listener] = []

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(cmd, result, ctx)`` after every command (accepted or refused), once the
        command is durable; ``ctx`` is what the submitter passed."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn``."""
        if fn in self._listeners:
            self._listeners.remove(fn)

    def now(self) -> int:
        """The next command timestamp: the clock, never earlier than the previous one (ns)."""
        ts = max(self._clock(), self._last_ts)
        self._last_ts = ts
        return ts

    async def submit(self, cmd: Any, ctx: Any = None) -> Result:
        """Apply ``cmd`` at :meth:`now`, wait for durability (``DurableExchange``), tell the
        listeners, return the ``Result``. Raises OSError when the WAL failed."""
        ts = self.now()
        if self._committer is not None:
            res = await self._committer.submit(cmd, ts)
        else:
            res = self.target.submit(cmd, ts)
        for fn in tuple(self._listeners):
            fn(cmd, res, ctx)
        return res

    def submit_now(self, cmd: Any, ctx: Any = None) -> Result:
        """Synchronous :meth:`submit` for an in-memory core (admin commands, tests).
        Raises ``RuntimeError`` over a ``DurableExchange`` (use :meth:`submit`)."""
        if self.durable:
            raise RuntimeError("a durable exchange is written through await submit()")
        res = self.target.submit(cmd, self.now())
        for fn in tuple(self._listeners):
            fn(cmd, res, ctx)
        return res


class HostAdapter:
    """The EngineHub interface over the sim's ``EngineHost`` (kalshi_platform/sim/engine_feed.py,
    the engine owner of ``sim --exchange``), so FIX and REST share one engine, one WAL and
    one publication order.

    Uses the host's public hooks only: ``on_applied`` (called with each result as it is
    applied: the command being submitted here gets its ``ctx``) and ``listeners`` (called
    once the result is durable and published: the FIX reports go out then)."""

    def __init__(self, host) -> None:
        self.host = host
        self.exchange = host.exchange
        self._next_ctx: Any = None
        self._ctx: dict[int, Any] = {}
        self._listeners: list[Listener] = []
        host.on_applied.append(self._applied)
        host.listeners.append(self._published)

    def now(self) -> int:
        """UTC nanoseconds of the host's clock."""
        return self.host.clock()

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(None, result, ctx)`` for every published result."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn``."""
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _applied(self, res: Result) -> None:
        if self._next_ctx is not None:
            self._ctx[id(res)] = self._next_ctx
            self._next_ctx = None

    def _published(self, res: Result) -> None:
        ctx = self._ctx.pop(id(res), None)
        for fn in tuple(self._listeners):
            fn(None, res, ctx)

    async def submit(self, cmd: Any, ctx: Any = None) -> Result:
        """Submit through the host (durable and published when it returns)."""
        self._next_ctx = ctx
        try:
            return await self.host.submit(cmd)
        finally:
            self._next_ctx = None
