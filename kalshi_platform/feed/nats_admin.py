"""``kalshi-platform nats init``: the JetStream streams of one env, created idempotently
(docs/scale-out.md "Streams and retention").

=========================  ===========================================  =====================
stream                     subjects                                     retention (defaults)
=========================  ===========================================  =====================
``KALSHI_{ENV}_EVENTS``    trades, lifecycle, feed_events, fills,       file, R3, max_age 7 d
                           quarantine (and the publishers' END)
``KALSHI_{ENV}_BOOK``      bbo, deltas, tickers                         file, R1 (``--book-
                                                                        replicas``), max_age
                                                                        24 h (``--book-max-
                                                                        age``); rebuildable
                                                                        from the raw recording
``KALSHI_{ENV}_SNAPSHOTS`` snapshot (one kept per shard)                file, the book's
                                                                        replicas, 1 per subject
=========================  ===========================================  =====================

Every stream keeps ``duplicate_window`` 120 s (``Nats-Msg-Id`` dedup; docs/fanout-and-scale.md:
"caution against large windows"), discards the oldest. Running ``init`` again creates what is
missing and updates what differs (max_age, duplicate window, subjects); the replica count or
storage of an existing stream is not changed by nats-server 2.9 (an error says so).

:func:`multi_filter_supported` checks the nats-server 2.9.10 trap: a consumer with several
``filter_subjects`` is accepted and silently gets every subject. Nothing in this package
relies on multi-filter consumers; ``init`` reports the server's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import (ConsumerConfig, DiscardPolicy, StorageType, StreamConfig)

from kalshi_platform.feed import nats_wire as w

DUPLICATE_WINDOW_S = 120.0


class InitError(RuntimeError):
    """A stream cannot be created or updated (one line)."""


@dataclass
class Retention:
    """Retention of ``init``'s streams: replicas (1 or 3 in practice), ``max_age`` seconds
    (0 = forever), storage ``file`` or ``memory`` for the book stream."""

    events_replicas: int = 3
    events_max_age_s: float = 7 * 86400
    book_replicas: int = 1
    book_max_age_s: float = 86400
    book_storage: str = "file"


def stream_configs(env: str, r: Retention) -> list[StreamConfig]:
    """The three stream configurations for ``env``."""
    names, subjects = w.stream_names(env), w.stream_subjects(env)
    book_storage = StorageType.MEMORY if r.book_storage == "memory" else StorageType.FILE
    common = dict(discard=DiscardPolicy.OLD, duplicate_window=DUPLICATE_WINDOW_S)
    return [
        StreamConfig(name=names["events"], subjects=subjects["events"],
                     storage=StorageType.FILE, num_replicas=r.events_replicas,
                     max_age=r.events_max_age_s or None, **common),
        StreamConfig(name=names["book"], subjects=subjects["book"], storage=book_storage,
                     num_replicas=r.book_replicas, max_age=r.book_max_age_s or None, **common),
        StreamConfig(name=names["snapshots"], subjects=subjects["snapshots"],
                     storage=StorageType.FILE, num_replicas=r.book_replicas,
                     max_msgs_per_subject=1, **common),
    ]


async def init_streams(js: Any, env: str, r: Retention) -> list[tuple[str, str]]:
    """Create or update ``env``'s streams. Returns ``(name, "created"|"updated"|"unchanged")``
    per stream. Raises :class:`InitError`."""
    out = []
    for cfg in stream_configs(env, r):
        try:
            info = await js.stream_info(cfg.name)
        except nats.js.errors.NotFoundError:
            info = None
        except nats.js.errors.ServiceUnavailableError:
            from kalshi_platform.feed.nats_conn import NO_JETSTREAM

            raise InitError(NO_JETSTREAM) from None
        except (nats.errors.Error, TimeoutError) as e:
            raise InitError(f"stream {cfg.name}: "
                            f"{str(e) or 'no answer from JetStream'}") from None
        try:
            if info is None:
                await js.add_stream(cfg)
                out.append((cfg.name, "created"))
                continue
            have = info.config
            if (have.num_replicas or 1) != cfg.num_replicas or have.storage != cfg.storage:
                raise InitError(f"stream {cfg.name} exists with {have.num_replicas} replicas, "
                                f"{have.storage.value} storage; delete it to change those")
            if (sorted(have.subjects or []) == sorted(cfg.subjects)
                    and (have.max_age or 0) == (cfg.max_age or 0)
                    and have.duplicate_window == cfg.duplicate_window
                    and have.max_msgs_per_subject == cfg.max_msgs_per_subject):
                out.append((cfg.name, "unchanged"))
                continue
            await js.update_stream(cfg)
            out.append((cfg.name, "updated"))
        except nats.js.errors.APIError as e:
            text = e.description or "refused"
            if "non-clustered" in text:
                text += " (on a single server: --events-replicas 1 --book-replicas 1)"
            raise InitError(f"stream {cfg.name}: {text}") from None
    return out


async def multi_filter_supported(js: Any, stream: str, subjects: list[str]) -> bool:
    """Create a throw-away consumer on ``stream`` with ``filter_subjects`` = ``subjects``
    (two or more) and report whether the server kept them (2.10+) or silently dropped them
    (2.9.10: the consumer then gets every subject). The consumer is deleted."""
    cfg = ConsumerConfig(filter_subjects=list(subjects), inactive_threshold=5.0)
    ci = await js.add_consumer(stream, cfg)
    try:
        got = ci.config.filter_subjects or []
        return sorted(got) == sorted(subjects)
    finally:
        try:
            await js.delete_consumer(stream, ci.name)
        except nats.js.errors.NotFoundError:
            pass
