"""Feed protocol messages (docs/feed-protocol.md): what ipc and udp subscribers receive.

Every message is one msgpack array whose first two items are the protocol version and the
message kind; events inside are :mod:`kalshi_platform.stream.codec` arrays (integer units:
prices micro-dollars, sizes centi-contracts, times ns UTC):

* ``[1, EVENTS, run_id, start_seq, [event, ...]]``: consecutive stream events from
  ``start_seq`` (the i-th has seq ``start_seq + i``);
* ``[1, SNAPSHOT, run_id, seq, [book, ...]]``: the books valid at stream ``seq`` (every event
  up to and including ``seq`` is reflected); a book is
  ``[ticker, state, sid, yes_levels, no_levels, bbo]`` with levels ``[[price, size], ...]``
  best first (YES bids high to low, NO bids high to low, NO at NO prices) or ``nil`` when
  only the BBO was asked for, and ``bbo`` the last BBO event array or ``nil``;
* ``[1, END, run_id, last_seq]``: the publisher closed its stream after ``last_seq``;
* ``[1, HEARTBEAT, run_id, last_seq]``: sent when idle (every second), so a subscriber sees
  a lost tail and knows the publisher is alive.

Decoded messages are :class:`Message` tuples.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from kalshi_platform.stream import codec

PROTOCOL_VERSION = 1
EVENTS, SNAPSHOT, END, HEARTBEAT = 1, 2, 3, 4
KIND_NAMES = {EVENTS: "events", SNAPSHOT: "snapshot", END: "end", HEARTBEAT: "heartbeat"}

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


class ProtocolError(ValueError):
    """A message is not a feed protocol message of a version this code reads."""


class Message(NamedTuple):
    """A decoded feed message. ``kind``: ``events``/``snapshot``/``end``/``heartbeat``;
    ``seq``: ``start_seq`` for events, the valid-at seq for a snapshot, the last seq for end
    and heartbeat; ``body``: events (plant NamedTuples) or books (:class:`BookState` list)."""

    kind: str
    run_id: str
    seq: int
    body: list


class BookState(NamedTuple):
    """One book of a snapshot: ``yes``/``no`` bid levels ``[(price µ$, size c-contracts)]``
    best first, ``None`` for a BBO-only snapshot; ``bbo`` the last BBO event or ``None``."""

    ticker: str
    state: str
    sid: int | None
    yes: list[tuple[int, int]] | None
    no: list[tuple[int, int]] | None
    bbo: Any


def encode_events(run_id: str, start_seq: int, events: list) -> bytes:
    """An EVENTS message."""
    return _enc.encode([PROTOCOL_VERSION, EVENTS, run_id, start_seq,
                        [codec.to_array(e) for e in events]])


def encode_snapshot(run_id: str, seq: int, books: list[BookState]) -> bytes:
    """A SNAPSHOT message."""
    return _enc.encode([PROTOCOL_VERSION, SNAPSHOT, run_id, seq, [
        [b.ticker, b.state, b.sid, b.yes, b.no,
         None if b.bbo is None else codec.to_array(b.bbo)] for b in books]])


def encode_control(kind: int, run_id: str, last_seq: int) -> bytes:
    """An END or HEARTBEAT message."""
    return _enc.encode([PROTOCOL_VERSION, kind, run_id, last_seq])


def decode(data: bytes) -> Message:
    """Any message → :class:`Message`. Raises :class:`ProtocolError`."""
    try:
        a = _dec.decode(data)
        version, kind, run_id, seq = a[0], a[1], a[2], a[3]
    except (msgspec.DecodeError, TypeError, IndexError, KeyError) as e:
        raise ProtocolError(f"not a feed message: {e}") from None
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"feed protocol version {version!r}; this code reads "
                            f"{PROTOCOL_VERSION}")
    name = KIND_NAMES.get(kind)
    if name is None or not isinstance(run_id, str) or type(seq) is not int:
        raise ProtocolError(f"bad feed message header {str(a[:4])[:80]}")
    try:
        if kind == EVENTS:
            body = _events(a[4])
        elif kind == SNAPSHOT:
            body = [BookState(t, st, sid, _levels(y), _levels(n),
                              None if bbo is None else codec.from_array(bbo))
                    for t, st, sid, y, n, bbo in a[4]]
        else:
            body = []
    except (codec.CodecError, TypeError, ValueError, IndexError) as e:
        raise ProtocolError(f"bad {name} body: {e}") from None
    return Message(name, run_id, seq, body)


#: code → (event type, its ``_make``, 1 + number of fields)
_MAKERS = {c: (t, t._make, len(t._fields) + 1) for c, t in codec.EVENT_TYPES.items()}
_SNAPSHOT_EVENT = codec.EVENT_TYPES[5]


def _events(arrays: list) -> list:
    """Event arrays → events: what :func:`codec.from_array` gives for each (extra trailing
    fields ignored, levels of a book snapshot as tuples), ~15 % faster on the hot path of
    every subscriber. Raises :class:`~kalshi_platform.stream.codec.CodecError`."""
    out = []
    append = out.append
    makers = _MAKERS
    for x in arrays:
        try:
            t, make, n = makers[x[0]]
        except (TypeError, IndexError, KeyError):
            raise codec.CodecError(f"unknown event code in {str(x)[:60]}") from None
        if len(x) != n:
            if len(x) < n:
                raise codec.CodecError(f"{t.__name__}: {len(x) - 1} fields, need {n - 1}")
            x = x[:n]
        ev = make(x[1:])
        if t is _SNAPSHOT_EVENT:
            ev = ev._replace(yes=[tuple(lv) for lv in ev.yes], no=[tuple(lv) for lv in ev.no])
        append(ev)
    return out


def _levels(x: Any) -> list[tuple[int, int]] | None:
    return None if x is None else [(int(p), int(q)) for p, q in x]
