"""A deterministic event scheduler: callbacks at simulated times (the backtest's clock).

Items run in ``(time, insertion order)`` order, so two runs of the same inputs do the same
things in the same order (issue 14 §5 determinism). Times are UTC ns.
"""

from __future__ import annotations

import heapq
from typing import Callable


class Scheduler:
    """``at(ts, fn)`` schedules; ``run_until(ts)`` runs everything due at or before ``ts``
    (including what those callbacks schedule at or before ``ts``); ``now`` is the time of the
    item running (never decreases). ``heap`` (read-only for callers: ``heap[0][0]`` is the
    next due time) lets a hot loop skip calls when nothing is due."""

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, Callable[[], None]]] = []
        self._heap = self.heap
        self._n = 0
        self.now = 0

    def at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        """Run ``fn()`` at ``ts_ns`` (a time in the past runs at ``now``)."""
        self._n += 1
        heapq.heappush(self._heap, (ts_ns if ts_ns > self.now else self.now, self._n, fn))

    def advance(self, ts_ns: int) -> None:
        """Move the clock to ``ts_ns`` (never backwards) without running anything."""
        if ts_ns > self.now:
            self.now = ts_ns

    def due(self, ts_ns: int) -> bool:
        """True when an item is due at or before ``ts_ns``."""
        return bool(self._heap) and self._heap[0][0] <= ts_ns

    def run_until(self, ts_ns: int) -> int:
        """Run every item due at or before ``ts_ns``; returns how many ran."""
        heap, n = self._heap, 0
        while heap and heap[0][0] <= ts_ns:
            t, _, fn = heapq.heappop(heap)
            if t > self.now:
                self.now = t
            fn()
            n += 1
        self.advance(ts_ns)
        return n

    def run_all(self) -> int:
        """Run everything scheduled (timers that reschedule forever are the caller's to stop:
        use :meth:`run_until`)."""
        n = 0
        while self._heap:
            n += self.run_until(self._heap[0][0])
        return n

    def pending(self) -> int:
        """Items not run yet."""
        return len(self._heap)
