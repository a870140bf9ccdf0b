"""``--publish URL[,URL…]``: the subscriber transports, by URL scheme.

==========  =================================  ===========================================
scheme      module                             what
==========  =================================  ===========================================
``ipc://``  :mod:`kalshi_platform.feed.ipc`    same host: pyzmq PUB/SUB over a unix socket,
                                               snapshots from a unix socket beside it
``udp://``  :mod:`kalshi_platform.feed.udp`    across hosts: datagrams, one stream id per
                                               feed; snapshots over TCP on the same port
``ws://``   :mod:`kalshi_platform.feed.ws`     remote subscribers, notebooks, browsers:
                                               JSON over a WebSocket, snapshots in band
``nats://`` :mod:`kalshi_platform.feed.nats_   NATS JetStream (scale-out, storage writers):
            transport`                         ``nats://H:P[,H:P...]``, docs/scale-out.md
==========  =================================  ===========================================

A transport module provides ``attach(stream, url, settings) -> Transport`` (the publisher
side: stream consumers on their own threads, never blocking the plant) and
``Client(url, feeds, tickers, depth)`` (the subscriber side, see
:class:`~kalshi_platform.feed.subscriber.TransportClient`). Modules are imported only when a
URL of their scheme is used (pyzmq, websockets load lazily).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol
from urllib.parse import urlparse

SCHEMES = {"ipc": "kalshi_platform.feed.ipc", "udp": "kalshi_platform.feed.udp",
           "ws": "kalshi_platform.feed.ws", "nats": "kalshi_platform.feed.nats_transport"}


class TransportError(ValueError):
    """A ``--publish`` / ``subscribe`` URL is invalid or its transport cannot start."""


class Transport(Protocol):
    """The publisher side of one URL: ``close()`` sends END to subscribers and stops it;
    ``stats()`` gives its counters (sent, dropped, subscribers, lag)."""

    url: str

    def close(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def scheme_of(url: str) -> str:
    """The transport scheme of ``url``; raises :class:`TransportError` for an unknown one."""
    scheme = urlparse(url).scheme
    if scheme not in SCHEMES:
        raise TransportError(f"unknown transport in {url!r}: use "
                             + ", ".join(f"{s}://" for s in SCHEMES))
    return scheme


def module_for(url: str) -> Any:
    return importlib.import_module(SCHEMES[scheme_of(url)])


def parse_publish(spec: str) -> list[str]:
    """``"ipc:///tmp/a,ws://127.0.0.1:8770"`` → validated URLs (raises TransportError)."""
    urls: list[str] = []
    for u in (u.strip() for u in spec.split(",")):
        if u and "://" not in u and urls and urls[-1].startswith("nats://"):
            urls[-1] += "," + u  # nats://H1:P1,H2:P2: one URL, several servers
        elif u:
            urls.append(u)
    if not urls:
        raise TransportError("--publish needs at least one URL")
    for u in urls:
        scheme_of(u)
    return urls


def attach_all(stream: Any, urls: list[str], settings: Any) -> list[Transport]:
    """Start the publisher side of every URL on ``stream``. Raises :class:`TransportError`
    (closing those already started) when one cannot start."""
    out: list[Transport] = []
    try:
        for u in urls:
            try:
                out.append(module_for(u).attach(stream, u, settings))
            except OSError as e:
                raise TransportError(f"cannot publish on {u}: {e.strerror or e}") from None
    except BaseException:
        for t in out:
            t.close()
        raise
    return out


def connect(url: str, *, feeds: frozenset[str] | None, tickers: frozenset[str] | None,
            depth: bool = True) -> Any:
    """The subscriber side of ``url`` (a ``TransportClient``)."""
    return module_for(url).Client(url, feeds=feeds, tickers=tickers, depth=depth)
