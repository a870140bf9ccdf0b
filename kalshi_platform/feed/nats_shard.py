"""Shards of the market universe, and the lease that makes one plant per shard the publisher
(docs/scale-out.md "Shards"; docs/fanout-and-scale.md §2.3).

**Assignment.** A market belongs to shard ``crc32(event) % N``, its event being the ticker up
to its last ``-`` (``KXMLBGAME-26AUG071840NYMPIT-NYM`` → ``KXMLBGAME-26AUG071840NYMPIT``): an
event's markets stay together, and the same on every host and run (no state to share).

**Lease.** Every plant of shard K (a leader and its standbys) runs its WebSocket client and
plant; only the holder of the lease publishes. The lease is key ``shard-K`` of the KV bucket
``KALSHI_{ENV}_SHARDS`` (created on first use, R1 or as many replicas as asked): value
``{"holder": run_id, "ttl_s": T}``. The holder renews it every T/3 with a compare-and-set on
its revision. A standby watches the key; when the revision has not changed for T seconds of
its own clock it takes the lease with a compare-and-set on that revision (one standby wins).

**Fencing.** The holder counts the lease valid until T - T/4 after its last successful renew
(its own monotonic clock) and stops publishing then, or at once when a renew finds another
holder; a standby takes over only after T of its own clock without a renew. No shared clock is
needed: the old leader stops at least T/4 before anyone can take over.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import nats.errors
import nats.js.errors


class ShardError(ValueError):
    """A ``--shard`` spec is not ``K/N`` with ``0 <= K < N``."""


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)``. Raises :class:`ShardError`."""
    k, sep, n = spec.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise ShardError(f"--shard {spec!r}: expected K/N, e.g. 0/2")
    ki, ni = int(k), int(n)
    if ni < 1 or not 0 <= ki < ni:
        raise ShardError(f"--shard {spec!r}: need 0 <= K < N")
    return ki, ni


def event_of(ticker: str) -> str:
    """The event ticker of a market ticker (up to its last ``-``; the ticker itself when it
    has no ``-``)."""
    head, sep, _ = ticker.rpartition("-")
    return head if sep and head else ticker


def shard_of(ticker: str, n: int) -> int:
    """The shard (0..n-1) of market ``ticker``: stable across hosts and runs."""
    return zlib.crc32(event_of(ticker).encode()) % n


def markets_of_shard(tickers: list[str], k: int, n: int) -> list[str]:
    """The tickers of shard ``k`` of ``n``, in their order."""
    return [t for t in tickers if shard_of(t, n) == k]


class ShardLease:
    """The lease of one shard (module docstring), driven from an asyncio loop.

    Args:
        js: a nats-py JetStream context.
        env: subject/stream env (bucket ``KALSHI_{ENV}_SHARDS``).
        shard: the shard name.
        holder: this plant's id (its run id).
        ttl_s: the lease time T.

    :meth:`step` is called every ``ttl_s / 3`` s; :attr:`leader` says whether to publish now;
    :attr:`took_over_from` names the holder the lease was taken from (``None`` for a fresh
    key). Counters: ``renewals``, ``takeovers``, ``lost``.
    """

    def __init__(self, js: Any, env: str, shard: str, holder: str, ttl_s: float) -> None:
        self.js, self.env, self.shard, self.holder, self.ttl_s = js, env, shard, holder, ttl_s
        self.key = f"shard-{shard}"
        self.kv: Any = None
        self.revision: int | None = None
        self._renewed_at = 0.0
        self._seen: tuple[int, float] | None = None  # (revision, first seen) as a standby
        self.took_over_from: str | None = None
        self.renewals = self.takeovers = self.lost = 0

    @property
    def leader(self) -> bool:
        return (self.revision is not None
                and time.monotonic() < self._renewed_at + self.ttl_s * 0.75)

    async def open(self, replicas: int = 1) -> None:
        bucket = f"KALSHI_{self.env.upper()}_SHARDS"
        try:
            self.kv = await self.js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            from nats.js.api import KeyValueConfig

            self.kv = await self.js.create_key_value(KeyValueConfig(
                bucket=bucket, history=1, replicas=replicas))

    def _value(self) -> bytes:
        return json.dumps({"holder": self.holder, "ttl_s": self.ttl_s}).encode()

    async def step(self) -> bool:
        """Renew (leader) or watch and maybe take over (standby); returns :attr:`leader`.
        Errors reaching NATS leave the state as it is (the lease then lapses by time)."""
        try:
            if self.revision is not None:
                await self._renew()
            else:
                await self._try_take()
        except (nats.errors.Error, OSError, TimeoutError):
            pass
        return self.leader

    async def _renew(self) -> None:
        t = time.monotonic()
        try:
            self.revision = await self.kv.update(self.key, self._value(), last=self.revision)
            self._renewed_at = t
            self.renewals += 1
        except nats.js.errors.KeyWrongLastSequenceError:
            self.revision = None  # someone took it: fenced from now on
            self.lost += 1

    async def _try_take(self) -> None:
        try:
            entry = await self.kv.get(self.key)
        except nats.js.errors.NotFoundError:  # never created, or deleted by a clean stop
            t = time.monotonic()
            try:
                self.revision = await self.kv.create(self.key, self._value())
                self._renewed_at, self.took_over_from = t, None
            except nats.js.errors.KeyWrongLastSequenceError:
                pass  # another plant created it first
            return
        now = time.monotonic()
        if self._seen is None or self._seen[0] != entry.revision:
            self._seen = (entry.revision, now)
            return
        if now - self._seen[1] < self.ttl_s:
            return
        prev = json.loads(entry.value or b"{}").get("holder")
        try:
            self.revision = await self.kv.update(self.key, self._value(), last=entry.revision)
            self._renewed_at = now
            self.took_over_from = prev
            self.takeovers += 1
        except nats.js.errors.KeyWrongLastSequenceError:
            self._seen = None  # another standby won
