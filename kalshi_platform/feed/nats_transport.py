"""``nats://HOST:PORT[,HOST:PORT...]``: NATS JetStream as a transport of the registry
(:mod:`kalshi_platform.feed.transports`; docs/scale-out.md). Imported only when a ``nats://``
URL is used, so nats-py loads lazily.

* publisher: :func:`attach` (:class:`~kalshi_platform.feed.nats_pub.NatsPublisher`);
* subscriber: :class:`Client` (:class:`~kalshi_platform.feed.nats_sub.Client`).
"""

from __future__ import annotations

from kalshi_platform.feed.nats_pub import NatsPublisher, attach
from kalshi_platform.feed.nats_sub import Client

__all__ = ["Client", "NatsPublisher", "attach"]
