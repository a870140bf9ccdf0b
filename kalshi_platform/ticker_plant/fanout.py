"""The plant's fan-out to its publishers, with every publisher isolated from the others.

A publisher (a storage sink, a transport) that raises is *marked failed*: it gets no further
events, its error is kept as one line (``failures``: sink name → ``"[Errno 28] No space
left on device"``, :func:`kalshi_platform.logfmt.error_line`), and the plant is told so that it can count it and emit a
``feed_events`` row. The books and the other publishers go on; the exception never reaches
the plant's frame handling, so a valid frame is never turned into a quarantine record after
some sinks already took it. ``close()`` still closes a failed publisher (a Parquet store that
hit a full disk on one table still writes its other tables).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from kalshi_platform.logfmt import error_line

log = logging.getLogger(__name__)


def sink_name(p: Any) -> str:
    """A publisher's name for reports: its ``sink_name`` attribute, else its class name."""
    return getattr(p, "sink_name", None) or type(p).__name__


class FanOut:
    """Ordered fan-out of plant events to publishers.

    Args:
        publishers: the targets, called in order for every event.
        on_failure: ``fn(name, error_text)`` called once per publisher when it first raises
            (after it has been taken out of the fan-out).

    Attributes: ``active`` (tuple of publishers still fed), ``failures`` (name → error line).
    """

    __slots__ = ("active", "failed", "failures", "_on_failure", "emit")

    def __init__(self, publishers: Iterable[Any],
                 on_failure: Callable[[str, str], None] | None = None) -> None:
        self.active: tuple[Any, ...] = tuple(publishers)
        self.failed: list[Any] = []
        self.failures: dict[str, str] = {}
        self._on_failure = on_failure
        self.emit: Callable[[Any], None] = self.publish
        self._bind()

    def _bind(self) -> None:
        """``emit``: the one active publisher's own ``publish`` (no loop, no extra call: the
        hot path), else :meth:`publish`. A caller of a bare publisher's ``emit`` must catch
        what it raises and hand it to :meth:`emit_failed`."""
        self.emit = self.active[0].publish if len(self.active) == 1 else self.publish

    def emit_failed(self, err: Exception) -> None:
        """``emit`` raised ``err``: only a single active publisher's ``publish`` can (the
        loop of :meth:`publish` catches for each), so that one is marked failed."""
        if len(self.active) == 1:
            self._fail(self.active[0], err, "publish")

    def publish(self, ev: Any) -> None:
        """Hand ``ev`` to every active publisher; a raising one is marked failed."""
        for p in self.active:
            try:
                p.publish(ev)
            except Exception as e:  # isolation is the point: any error of any sink
                self._fail(p, e, "publish")

    def flush(self) -> None:
        """Flush every active publisher (a raising one is marked failed)."""
        for p in self.active:
            try:
                p.flush()
            except Exception as e:
                self._fail(p, e, "flush")

    def close(self) -> None:
        """Close every publisher, failed ones included (they may still hold other tables'
        rows); errors are recorded, never raised."""
        for p in self.active + tuple(self.failed):
            try:
                p.close()
            except Exception as e:
                if p in self.active:
                    self._fail(p, e, "close")
                else:
                    log.warning("failed sink %s: close also failed: %s: %s", sink_name(p),
                                type(e).__name__, e)

    def _fail(self, p: Any, err: Exception, during: str) -> None:
        if p not in self.active:
            return
        self.active = tuple(x for x in self.active if x is not p)
        self._bind()
        self.failed.append(p)
        name = sink_name(p)
        text = error_line(err)
        self.failures.setdefault(name, text)
        log.error("sink %s failed during %s and is stopped: %s", name, during, text)
        if self._on_failure is not None:
            self._on_failure(name, text)
