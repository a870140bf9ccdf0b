"""The distribution layer: the plant's event stream to subscribers on this host and others.

``Subscriber(url, feeds=…, tickers=…)`` (:mod:`.subscriber`) is the client; the transports
(:mod:`.transports`: ``ipc://``, ``udp://``, ``ws://``) are chosen with ``--publish`` on ``run``
and ``replay``. The wire format is docs/feed-protocol.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Subscriber", "Item"]


def __getattr__(name: str) -> Any:  # lazy: importing the package stays cheap
    if name in ("Subscriber", "Item"):
        from kalshi_platform.feed import subscriber

        return getattr(subscriber, name)
    raise AttributeError(name)
