"""Fan-out targets of the ticker plant, behind one small protocol.

The plant calls ``publish(event)`` for every event it emits (see
:mod:`kalshi_platform.ticker_plant.events`), in order, on its own thread; ``flush()`` when a
batch boundary is useful (end of a replay, a timer in the live run) and ``close()`` once at
shutdown. A publisher must not raise for ordinary back-pressure: it queues or spools and
reports through its own counters.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Protocol, runtime_checkable

from kalshi_platform.ticker_plant.events import TABLE_OF, QuarantineRecord


@runtime_checkable
class Publisher(Protocol):
    """Anything that takes plant events: sinks (Parquet, QuestDB) and live subscribers."""

    def publish(self, event: Any) -> None:
        """Take one event (a ``NamedTuple`` from :mod:`..events`). Called on the hot path."""

    def flush(self) -> None:
        """Write or hand on whatever is buffered."""

    def close(self) -> None:
        """Flush and release resources; no ``publish`` follows."""


class InMemoryPublisher:
    """Keeps every event in memory, grouped by table, and calls in-process subscribers.

    ``events[table]`` is a list of events in arrival order (``"quarantine"`` for
    :class:`QuarantineRecord`). ``subscribe(fn, types=...)`` registers a callback run
    synchronously for each matching event type (e.g. ``BBO`` for a strategy). Meant for tests,
    notebooks and small in-process consumers; it grows without bound.
    """

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._subs: list[tuple[Callable[[Any], None], tuple[type, ...] | None]] = []
        self.closed = False

    def subscribe(self, fn: Callable[[Any], None], types: tuple[type, ...] | None = None) -> None:
        """Call ``fn(event)`` for each published event whose type is in ``types`` (all if None)."""
        self._subs.append((fn, types))

    def publish(self, event: Any) -> None:
        if self.keep:
            table = TABLE_OF.get(type(event))
            if table is None and isinstance(event, QuarantineRecord):
                table = "quarantine"
            self.events[table or type(event).__name__].append(event)
        for fn, types in self._subs:
            if types is None or isinstance(event, types):
                fn(event)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def counts(self) -> dict[str, int]:
        """Events kept per table."""
        return {k: len(v) for k, v in self.events.items()}
