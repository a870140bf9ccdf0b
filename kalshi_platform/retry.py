"""The one backoff policy of the platform: capped exponential delays with jitter.

Used by every retry loop that talks to something remote:

* the WebSocket client's reconnects and subscribe retries
  (:mod:`kalshi_platform.ingestion.ws_client`; default ``jitter=0.5``, so a reconnect storm
  still waits at least half the nominal delay);
* the REST client's retries after 429/5xx/transport errors (:mod:`kalshi_platform.api.rest`;
  ``jitter=1.0``, "full jitter": Kalshi sends no ``Retry-After``, docs/kalshi-api.md §6);
* the QuestDB writer's retries while QuestDB is away
  (:mod:`kalshi_platform.storage.questdb_rdb`; full jitter).

Only the *delay* is shared, not the loop: each caller's loop has its own rules (forever once
connected, a bounded number of attempts, a thread woken early by ``flush()``), its own sleep
(``asyncio.sleep``, an injected fake, ``threading.Event.wait``) and its own reset. A retry
library (tenacity, stamina) would own the loop and need an adapter for each of those, so this
module stays a ~40-line value object. Jitter follows "Exponential Backoff And Jitter" (AWS
Architecture Blog, 2015): spreading retries over the interval keeps clients that failed
together from retrying together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]

#: exponent ceiling: ``factor ** n`` stays a finite float for any attempt count (a loop that
#: retries forever reaches attempt 1024 after a few hours, and ``0.2 * 2 ** 1100`` overflows)
_MAX_EXPONENT = 64


@dataclass
class Backoff:
    """Capped exponential backoff with jitter.

    Retry number ``attempt`` (0-based) waits ``d * uniform(1 - jitter, 1)`` seconds, where
    ``d = min(cap_s, base_s * factor ** attempt)``. ``jitter`` is the fraction of ``d`` that is
    randomised: ``0`` = no jitter, ``0.5`` = uniform in ``[d/2, d]``, ``1`` = full jitter,
    uniform in ``[0, d]``. The delay never exceeds ``cap_s``.

    Args:
        base_s: nominal delay of the first retry, seconds (≥ 0).
        cap_s: largest delay, seconds (≥ 0). Callers also use it as "a healthy interval":
            the WS client resets its attempt count once a session outlives ``cap_s``.
        factor: growth per attempt (≥ 1).
        jitter: fraction in ``[0, 1]``.
        rng: source of the jitter (``random.Random``; tests inject a seeded one); ``None`` =
            the module-level ``random`` generator.

    Raises:
        ValueError: a parameter outside the ranges above.
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    rng: random.Random | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.base_s >= 0 and self.cap_s >= 0 and self.factor >= 1
                and 0 <= self.jitter <= 1):
            raise ValueError(f"backoff needs base_s >= 0, cap_s >= 0, factor >= 1 and "
                             f"0 <= jitter <= 1, got {self.base_s}, {self.cap_s}, "
                             f"{self.factor}, {self.jitter}")

    def nominal(self, attempt: int) -> float:
        """The un-jittered delay of retry ``attempt`` (0-based; negative counts as 0), s."""
        n = min(max(0, attempt), _MAX_EXPONENT)
        try:
            return min(self.cap_s, self.base_s * self.factor ** n)
        except OverflowError:  # a huge factor: the cap is the answer
            return self.cap_s

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), jittered."""
        u = (self.rng or random).uniform(1.0 - self.jitter, 1.0)
        return self.nominal(attempt) * u
