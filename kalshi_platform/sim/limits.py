"""The sim's REST rate limit: Kalshi-style token buckets per client (docs/kalshi-api.md §6).

Two budgets, **read** (GET) and **write** (everything else: order entry, amend, cancel), each a
bucket that refills at ``rate`` requests/s and holds one second of budget (at least one
request) (Kalshi's Basic
capacity; §6). A client is its API key (``KALSHI-ACCESS-KEY``) or, unsigned, its address. An
empty bucket answers HTTP 429 ``{"error": "too many requests"}`` with no ``Retry-After``, as
Kalshi does. The sim counts requests, not Kalshi's per-endpoint token costs.
"""

from __future__ import annotations

import time
from typing import Callable


class RateLimiter:
    """Per-client token buckets.

    Args:
        read_per_s: GET requests/s per client (0 = unlimited).
        write_per_s: other requests/s per client (0 = unlimited).
        clock: monotonic seconds (tests pass a fake).

    Raises ``ValueError`` for a negative rate.
    """

    def __init__(self, read_per_s: float = 0.0, write_per_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if read_per_s < 0 or write_per_s < 0:
            raise ValueError("rate limits must be >= 0 requests/s")
        self.rates = {False: read_per_s, True: write_per_s}
        self.clock = clock
        self._buckets: dict[tuple[str, bool], tuple[float, float]] = {}  # → (tokens, at)

    @property
    def active(self) -> bool:
        """Whether any budget is limited."""
        return any(self.rates.values())

    def allow(self, client: str, write: bool) -> bool:
        """Take one token from ``client``'s read or write bucket; ``False`` when empty."""
        rate = self.rates[write]
        if not rate:
            return True
        cap = max(rate, 1.0)
        now = self.clock()
        tokens, at = self._buckets.get((client, write), (cap, now))
        tokens = min(cap, tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[(client, write)] = (tokens, now)
            return False
        self._buckets[(client, write)] = (tokens - 1, now)
        return True
