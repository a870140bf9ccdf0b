"""Fault injection for the local Kalshi-compatible server (:mod:`kalshi_platform.sim.server`).

Faults exist so that the ingester's recovery paths (gap → ``get_snapshot``, reconnect →
resubscribe, REST 429 → backoff) are exercised over real sockets. Counting rules:

* WebSocket faults count **playback frames per connection**: frames derived from the
  recording (snapshots, deltas, trades, tickers, lifecycle) that this connection was sent,
  starting at 1. Acks, errors and snapshots answering a command are never dropped or counted.
* A dropped frame still consumes its ``seq`` on its ``sid`` (that is what makes it a gap a
  client can see, docs/kalshi-api.md §7.10); a dropped ``ticker`` frame (no ``seq``) is invisible.
* REST faults count REST requests (not WebSocket handshakes) over the server's lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Faults:
    """Which faults the sim injects.

    Attributes:
        drop_frames: 1-based indices of playback frames to drop on every connection.
        drop_every: drop every N-th playback frame on every connection (0 = off).
        disconnect_after: abort each connection (TCP reset, no close frame, like a network
            failure) right after its N-th playback frame was sent (0 = off).
        rest_429: answer the first N REST requests with HTTP 429 ``{"error": "too many
            requests"}`` and no ``Retry-After`` (docs/kalshi-api.md §6) (0 = off).
        delay_s: seconds added before every outbound WebSocket frame and REST response.
        page_cap: at most N items per REST page whatever ``limit`` asks (0 = off), so small
            fixtures still exercise cursor pagination.
    """

    drop_frames: frozenset[int] = field(default_factory=frozenset)
    drop_every: int = 0
    disconnect_after: int = 0
    rest_429: int = 0
    delay_s: float = 0.0
    page_cap: int = 0

    def __post_init__(self) -> None:
        self.drop_frames = frozenset(self.drop_frames)
        for name in ("drop_every", "disconnect_after", "rest_429", "page_cap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        if any(i < 1 for i in self.drop_frames):
            raise ValueError("drop_frames indices start at 1")

    def drops(self, n: int) -> bool:
        """Whether the ``n``-th (1-based) playback frame of a connection is dropped."""
        return n in self.drop_frames or (self.drop_every > 0 and n % self.drop_every == 0)

    def disconnects(self, n: int) -> bool:
        """Whether a connection is aborted right after its ``n``-th playback frame."""
        return self.disconnect_after > 0 and n >= self.disconnect_after

    @property
    def active(self) -> bool:
        """``True`` when any fault is configured."""
        return bool(self.drop_frames or self.drop_every or self.disconnect_after
                    or self.rest_429 or self.delay_s)


def parse_indices(spec: str) -> frozenset[int]:
    """``"3,17,40"`` → ``frozenset({3, 17, 40})``; ``""`` → empty.

    Raises :class:`ValueError` on anything that is not a comma-separated list of integers ≥ 1.
    """
    out = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            i = int(part)
        except ValueError:
            raise ValueError(f"not a frame index: {part!r}") from None
        if i < 1:
            raise ValueError(f"frame indices start at 1, got {i}")
        out.add(i)
    return frozenset(out)
