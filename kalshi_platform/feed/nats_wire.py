"""``nats://``: URLs, subjects, stream names and JetStream payloads (docs/scale-out.md).

No nats-py here (cheap to import): the publisher, subscriber client, writer and ``nats init``
all name things through this module.

**Subjects** ``kalshi.{env}.{feed}.{series}.{ticker}`` (docs/fanout-and-scale.md §2.3): feed
one of ``bbo``, ``deltas``, ``tickers``, ``trades``, ``lifecycle``, ``fills``, ``quarantine``,
``feed_events``; series the ticker up to its first ``-``. A ticker's ``.``, ``*``, ``>`` and
whitespace become ``_`` in the subject (the true ticker stays in the payload). Events without a
ticker (``feed_events``, ``quarantine``) go to ``kalshi.{env}.{feed}._plant.{shard}``; the
publisher's END goes to ``kalshi.{env}.feed_events._control.{shard}``; book snapshots for late
joiners to ``kalshi.{env}.snapshot.{shard}`` (one kept per subject).

**Streams** (created by ``kalshi-platform nats init``): ``KALSHI_{ENV}_BOOK`` (bbo, deltas,
tickers), ``KALSHI_{ENV}_EVENTS`` (trades, lifecycle, feed_events, fills, quarantine, END) and
``KALSHI_{ENV}_SNAPSHOTS``.

**Batches → messages.** The publisher cuts the event stream into *windows*: one committed
batch (a frame live), merged with the batches already queued while it is behind, up to
``window_ms`` (1 ms) of them or ``max_window`` events. A window from stream seq ``first`` to
``last`` becomes one message per (feed, ticker) (a subject names exactly one feed and one
market), plus one message per trade (its ``Nats-Msg-Id`` is the trade id). Every message is a
versioned feed-protocol array (docs/feed-protocol.md "Messages") of kind PART::

    [1, 5, run_id, first, last, [seq, ...], [event, ...]]

events in the codec's arrays (:mod:`kalshi_platform.stream.codec`), with their stream seqs. A
subscriber holding every part of a window (the seqs ``first..last`` all present) puts its
events back in stream order; consecutive windows chain (``first`` = previous ``last`` + 1), so
a window that stays incomplete is a gap. ``Nats-Msg-Id`` = ``{run_id}:{seq of the part's first
event}`` (one per part, stable across retries), or the trade id. Header ``Kalshi-Shard`` names
the publisher's shard; ``Kalshi-Dup: 1`` marks a trade re-sent under its run id after the
server called its trade-id message a duplicate (another run stored that trade: the writer skips
it, subscribers need its seq).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from kalshi_platform.feed.protocol import PROTOCOL_VERSION
from kalshi_platform.feed.transports import TransportError
from kalshi_platform.stream import codec

PART = 5
HDR_MSG_ID = "Nats-Msg-Id"
HDR_SHARD = "Kalshi-Shard"
HDR_DUP = "Kalshi-Dup"
HDR_BOOK_SEQ = "Kalshi-Book-Stream-Seq"
HDR_EVENTS_SEQ = "Kalshi-Events-Stream-Seq"

BOOK_FEEDS = ("bbo", "deltas", "tickers")
EVENT_FEEDS = ("trades", "lifecycle", "feed_events", "fills", "quarantine")

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()
_BAD_TOKEN = re.compile(r"[.*>\s]")


@dataclass
class NatsOptions:
    """Options of a ``nats://`` URL (query string); times in seconds.

    Both sides: ``env`` (subject and stream prefix; default ``prod``), ``shard`` (the
    publisher's shard name, default ``0``). Publisher: ``max_inflight`` (unacked publishes,
    1000), ``ack_timeout_s`` (2.0: a publish not acked by then is retried), ``backoff_s``
    (0.2, doubling to ``backoff_max_s`` 2.0), ``window_ms`` (1.0), ``max_window`` (events, 4096),
    ``snapshot_s`` (a book snapshot for late joiners this often, 1.0; 0 = only at the start and
    the end), ``buffer`` (messages built and not yet acked before the publisher's thread
    waits, 20000), ``close_timeout_s`` (at the close, how long to wait for the last acks, 60),
    ``lease_s`` (0: always publish; T > 0: publish only while holding the shard's lease of
    T seconds, :mod:`kalshi_platform.feed.nats_shard`).
    Subscriber: ``reorder_s`` (how long an incomplete window may wait before it is a gap, 10),
    ``snapshot_timeout_s`` (10), ``watchdog_s`` (a consumer that has not moved this long while
    its stream holds more is recreated from the next stream seq, 5; 0 = off).
    """

    env: str = "prod"
    shard: str = "0"
    max_inflight: int = 1000
    ack_timeout_s: float = 2.0
    backoff_s: float = 0.2
    backoff_max_s: float = 2.0
    window_ms: float = 1.0
    max_window: int = 4096
    snapshot_s: float = 1.0
    buffer: int = 20000
    close_timeout_s: float = 60.0
    lease_s: float = 0.0
    reorder_s: float = 10.0
    snapshot_timeout_s: float = 10.0
    watchdog_s: float = 5.0
    servers: list[str] = field(default_factory=list)


def parse_url(url: str) -> NatsOptions:
    """``nats://HOST:PORT[,HOST:PORT...][?opt=value&...]`` → options (``servers`` as
    ``nats://HOST:PORT`` each). Raises :class:`TransportError`."""
    if not url.startswith("nats://"):
        raise TransportError(f"not a nats:// URL: {url!r}")
    hosts, _, query = url[len("nats://"):].partition("?")
    opts = NatsOptions()
    for h in hosts.split(","):
        h = h.strip().removeprefix("nats://")
        host, sep, port = h.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise TransportError(f"{url!r}: expected nats://HOST:PORT[,HOST:PORT...]")
        opts.servers.append(f"nats://{h}")
    types = {f.name: f.type for f in fields(NatsOptions) if f.name != "servers"}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in types:
            raise TransportError(f"{url!r}: unknown nats option {key!r}; known: "
                                 + ", ".join(types))
        if key in ("env", "shard"):
            if not value or _BAD_TOKEN.search(value):
                raise TransportError(f"{url!r}: {key} must be one subject token")
            setattr(opts, key, value)
            continue
        try:
            v: Any = float(value) if "float" in str(types[key]) else int(value)
        except ValueError:
            raise TransportError(f"{url!r}: option {key}={value!r} is not a number") from None
        if v < 0 or (v == 0 and key in ("max_inflight", "max_window", "buffer")):
            raise TransportError(f"{url!r}: option {key} must be > 0")
        setattr(opts, key, v)
    return opts


def token(text: str) -> str:
    """A ticker or series as one subject token (``.``, ``*``, ``>``, whitespace → ``_``)."""
    return _BAD_TOKEN.sub("_", text) or "_"


def subject(env: str, feed: str, ticker: str | None, shard: str) -> str:
    """The subject of ``feed``'s events of ``ticker`` (``None``: the plant's own events)."""
    if ticker is None:
        return f"kalshi.{env}.{feed}._plant.{shard}"
    t = token(ticker)
    return f"kalshi.{env}.{feed}.{token(ticker.split('-', 1)[0])}.{t}"


def control_subject(env: str, shard: str) -> str:
    return f"kalshi.{env}.feed_events._control.{shard}"


def snapshot_subject(env: str, shard: str) -> str:
    return f"kalshi.{env}.snapshot.{shard}"


def stream_names(env: str) -> dict[str, str]:
    """``{"book": ..., "events": ..., "snapshots": ...}`` stream names for ``env``."""
    e = env.upper()
    return {"book": f"KALSHI_{e}_BOOK", "events": f"KALSHI_{e}_EVENTS",
            "snapshots": f"KALSHI_{e}_SNAPSHOTS"}


def stream_subjects(env: str) -> dict[str, list[str]]:
    """Subjects each stream captures."""
    return {"book": [f"kalshi.{env}.{f}.>" for f in BOOK_FEEDS],
            "events": [f"kalshi.{env}.{f}.>" for f in EVENT_FEEDS],
            "snapshots": [f"kalshi.{env}.snapshot.>"]}


def encode_part(run_id: str, first: int, last: int, seqs: list[int], arrays: list) -> bytes:
    """A PART message (see the module docstring); ``arrays`` are codec event arrays."""
    return _enc.encode([PROTOCOL_VERSION, PART, run_id, first, last, seqs, arrays])


class Part(msgspec.Struct, array_like=True):
    """A decoded PART: ``first``/``last`` the window's stream seqs, ``seqs`` and ``events``
    (plant events) of this part."""

    version: int
    kind: int
    run_id: str
    first: int
    last: int
    seqs: list[int]
    arrays: list


_part_dec = msgspec.msgpack.Decoder(Part)


def kind_of(data: bytes) -> int:
    """The feed-protocol kind of a payload (PART, or protocol SNAPSHOT/END). Raises
    :class:`~kalshi_platform.stream.codec.CodecError` on a payload that is not one."""
    if len(data) < 3 or data[0] & 0xF0 != 0x90 or data[1] != PROTOCOL_VERSION:
        raise codec.CodecError("not a version-1 feed message")
    return data[2]


def decode_part(data: bytes) -> tuple[Part, list]:
    """PART payload → ``(part, events)``. Raises
    :class:`~kalshi_platform.stream.codec.CodecError`."""
    try:
        p = _part_dec.decode(data)
    except msgspec.DecodeError as e:
        raise codec.CodecError(f"not a PART message: {e}") from None
    if p.version != PROTOCOL_VERSION or p.kind != PART or len(p.seqs) != len(p.arrays):
        raise codec.CodecError("bad PART header")
    return p, _events(p.arrays)


#: code → (the event type, 1 + number of fields, is a book snapshot)
_MAKERS = {c: (t, len(t._fields) + 1, t.__name__ == "SnapshotEvent")
           for c, t in codec.EVENT_TYPES.items()}


def _events(arrays: list) -> list:
    """Codec arrays → events, as :func:`codec.from_array` each (extra trailing fields
    ignored, book levels as tuples). The writer's and subscriber's hot path: one dict lookup
    and one ``tuple.__new__`` per event (a NamedTuple's ``_make`` is a Python call on top;
    0.76 µs against 1.41 µs an event with the decode, measured here)."""
    out = []
    append = out.append
    makers = _MAKERS
    new = tuple.__new__
    for x in arrays:
        try:
            typ, n, snap = makers[x[0]]
        except (TypeError, IndexError, KeyError):
            raise codec.CodecError(f"unknown event code in {str(x)[:60]}") from None
        if len(x) < n:
            raise codec.CodecError(f"event code {x[0]}: {len(x) - 1} fields, need {n - 1}")
        ev = new(typ, x[1:n])
        if snap:
            ev = ev._replace(yes=[tuple(lv) for lv in ev.yes], no=[tuple(lv) for lv in ev.no])
        append(ev)
    return out
