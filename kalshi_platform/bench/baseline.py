"""Seed-style reference pipeline: the yardstick (and oracle) for the fast ticker plant.

This module is deliberately *not* optimised.  It is what a first, careful implementation
looks like, and the ``bench`` command measures the fast plant against it:

* stdlib :mod:`json` for every line (no orjson),
* :class:`decimal.Decimal` for every price and size (no fixed-point integers),
* :class:`sortedcontainers.SortedDict` ladders, one per side,
* the BBO recomputed from the ladders after every snapshot and every delta (no caching).

It must also be *correct*, because tests use it as an oracle:

* Kalshi books are bids only: a YES-bid ladder and a NO-bid ladder.  A NO bid at price ``q``
  is a YES ask at ``1 - q``; the best YES ask is ``1 - best NO bid`` with that NO level's size.
* New level size = old size + delta; the level is removed when it reaches 0; a negative size
  is an error (:class:`ValueError`).
* A snapshot replaces both sides of the book (never merges).
* ``seq`` is counted per subscription (``sid``) across all markets and all message types that
  carry it (``ok`` acks included).  ``seq != last + 1`` is a gap; after a gap every book of that
  sid is stale and its deltas are skipped until a fresh snapshot for that market arrives.

Units everywhere in this module: prices are dollars as ``Decimal`` (``Decimal("0.5600")``),
sizes are contracts as ``Decimal`` (``Decimal("2002.35")``).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Iterator

from sortedcontainers import SortedDict

__all__ = [
    "BBO",
    "EMPTY_BBO",
    "BaselineBook",
    "BaselineResult",
    "decode_frame",
    "decode_lines",
    "iter_lines",
    "replay",
    "unwrap",
]

#: ``(yes_bid, yes_bid_size, yes_ask, yes_ask_size)``: dollars / contracts as Decimal, or None.
BBO = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]

#: The BBO of a market that has no book yet (the "previous" BBO of a new market).
EMPTY_BBO: BBO = (None, None, None, None)

_ONE = Decimal(1)
_ZERO = Decimal(0)

SNAPSHOT = "orderbook_snapshot"
DELTA = "orderbook_delta"


# --------------------------------------------------------------------------------------------
# Envelopes
# --------------------------------------------------------------------------------------------


def unwrap(line: bytes | str) -> dict | None:
    """Return the Kalshi WebSocket frame carried by one recording line.

    ``line`` is one line of a recording (bytes or str, trailing newline allowed).  A blank line
    gives ``None``.  Accepted shapes (parsed with stdlib :func:`json.loads`):

    * ``{"received_ms": int, "frame": {...}}`` -> the ``frame`` dict;
    * ``{"recv_ts_ns": int, "raw": "<frame JSON text>"}`` -> ``json.loads(raw)``;
    * ``{"channel": str, "message": {...}}`` -> the ``message`` dict;
    * a bare frame (an object with a ``"type"`` key) -> itself.

    Raises :class:`ValueError` for invalid JSON or an unrecognised shape.
    """
    if isinstance(line, (bytes, bytearray, memoryview)):
        line = bytes(line)
        if not line.strip():
            return None
    elif not line.strip():
        return None
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid JSON line: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"recording line is not a JSON object: {type(obj).__name__}")

    if "frame" in obj:
        frame = obj["frame"]
    elif "raw" in obj:
        frame = obj["raw"]
        if isinstance(frame, (str, bytes, bytearray)):
            try:
                frame = json.loads(frame)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"invalid JSON in 'raw': {exc}") from exc
    elif "message" in obj and "channel" in obj:
        frame = obj["message"]
        if isinstance(frame, (str, bytes, bytearray)):
            frame = json.loads(frame)
    elif "type" in obj:
        frame = obj
    else:
        raise ValueError(f"unrecognised recording envelope with keys {sorted(obj)}")

    if not isinstance(frame, dict):
        raise ValueError(f"frame is not a JSON object: {type(frame).__name__}")
    return frame


# --------------------------------------------------------------------------------------------
# Frame decoding
# --------------------------------------------------------------------------------------------


def _dec(value: Any, what: str) -> Decimal:
    """Parse a fixed-point string (or legacy int) into a finite Decimal."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: boolean is not a number")
    if isinstance(value, str):
        try:
            out = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"{what}: not a decimal string: {value!r}") from exc
    elif isinstance(value, int):
        out = Decimal(value)
    elif isinstance(value, float):
        out = Decimal(repr(value))
    else:
        raise ValueError(f"{what}: unsupported value {value!r}")
    if not out.is_finite():
        raise ValueError(f"{what}: not finite: {value!r}")
    return out


def _cents(value: Any, what: str) -> Decimal:
    """Legacy integer cents -> dollars as Decimal (56 -> Decimal('0.56'))."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what}: legacy cents must be an int, got {value!r}")
    return Decimal(value).scaleb(-2)


def _levels(msg: dict, side: str) -> list[tuple[Decimal, Decimal]]:
    """Levels of one snapshot side as ``[(price_dollars, size_contracts), ...]``.

    Preference: ``<side>_dollars_fp`` (current), then ``<side>_dollars`` (2025 era, dollar
    strings with integer counts), then ``<side>`` (legacy integer cents / integer counts).
    A missing side is an empty side.
    """
    raw = msg.get(f"{side}_dollars_fp")
    if raw is not None:
        return [(_dec(p, "price"), _dec(q, "size")) for p, q in raw]
    raw = msg.get(f"{side}_dollars")
    if raw is not None:
        return [(_dec(p, "price"), _dec(q, "size")) for p, q in raw]
    raw = msg.get(side)
    if raw is not None:
        return [(_cents(p, "price"), _dec(q, "size")) for p, q in raw]
    return []


def decode_frame(frame: dict) -> dict:
    """Decode one Kalshi WebSocket frame into a plain dict with Decimal prices and sizes.

    * ``orderbook_snapshot`` -> ``{"type", "sid", "seq", "ticker", "yes": [(price, size)...],
      "no": [(price, size)...]}``; a side missing from the frame is ``[]``.
    * ``orderbook_delta`` -> ``{"type", "sid", "seq", "ticker", "side", "price", "delta"}``;
      ``delta`` is the signed change in resting contracts.
    * anything else -> ``{"type", "sid", "seq"}``.

    Prices are dollars (``Decimal("0.5600")``), sizes/deltas are contracts
    (``Decimal("2002.35")``).  ``sid``/``seq`` are ints or ``None`` when absent.  Legacy frames
    (integer cents ``price``/``yes``/``no`` and integer ``delta``/counts) are accepted when the
    ``_dollars``/``_fp`` fields are absent.  Raises :class:`ValueError` on malformed input.
    """
    ftype = frame.get("type")
    sid = frame.get("sid")
    seq = frame.get("seq")
    msg = frame.get("msg")
    if ftype in (SNAPSHOT, DELTA):
        if not isinstance(msg, dict):
            raise ValueError(f"{ftype} without a msg object")
        ticker = msg.get("market_ticker")
        if not isinstance(ticker, str) or not ticker:
            raise ValueError(f"{ftype} without market_ticker")
        if ftype == SNAPSHOT:
            return {
                "type": ftype,
                "sid": sid,
                "seq": seq,
                "ticker": ticker,
                "yes": _levels(msg, "yes"),
                "no": _levels(msg, "no"),
            }
        side = msg.get("side")
        if side not in ("yes", "no"):
            raise ValueError(f"orderbook_delta with bad side {side!r}")
        if "price_dollars" in msg:
            price = _dec(msg["price_dollars"], "price_dollars")
        elif "price" in msg:
            price = _cents(msg["price"], "price")
        else:
            raise ValueError("orderbook_delta without price_dollars/price")
        if "delta_fp" in msg:
            delta = _dec(msg["delta_fp"], "delta_fp")
        elif "delta" in msg:
            delta = _dec(msg["delta"], "delta")
        else:
            raise ValueError("orderbook_delta without delta_fp/delta")
        return {
            "type": ftype,
            "sid": sid,
            "seq": seq,
            "ticker": ticker,
            "side": side,
            "price": price,
            "delta": delta,
        }
    return {"type": ftype, "sid": sid, "seq": seq}


def decode_lines(lines: Iterable[bytes | str]) -> int:
    """Unwrap and decode every line; return the number of messages decoded.

    Blank lines are skipped (not counted).  This is the benchmark's "decode" stage: it does the
    JSON parsing and the Decimal conversion of every price/size, but no book work.
    """
    n = 0
    for line in lines:
        frame = unwrap(line)
        if frame is None:
            continue
        decode_frame(frame)
        n += 1
    return n


# --------------------------------------------------------------------------------------------
# Book
# --------------------------------------------------------------------------------------------


class BaselineBook:
    """One market's order book: a YES-bid ladder and a NO-bid ladder.

    ``yes`` and ``no`` are ``SortedDict[price_dollars: Decimal, size_contracts: Decimal]``
    holding only strictly positive sizes.  Both are bid ladders (best = highest price).
    """

    def __init__(self) -> None:
        self.yes: SortedDict = SortedDict()
        self.no: SortedDict = SortedDict()

    def apply_snapshot(
        self,
        yes_levels: Iterable[tuple[Decimal, Decimal]],
        no_levels: Iterable[tuple[Decimal, Decimal]],
    ) -> None:
        """Replace both sides with the snapshot levels ``[(price_dollars, size_contracts)]``.

        Zero-size levels are dropped; a negative size or a price repeated within one side
        raises :class:`ValueError` (and leaves the book unchanged).
        """
        new_sides = []
        for name, levels in (("yes", yes_levels), ("no", no_levels)):
            ladder = SortedDict()
            for price, size in levels:
                if size < _ZERO:
                    raise ValueError(f"snapshot {name} level {price} has negative size {size}")
                if price in ladder:
                    raise ValueError(f"snapshot {name} side repeats price {price}")
                if size > _ZERO:
                    ladder[price] = size
            new_sides.append(ladder)
        self.yes, self.no = new_sides

    def apply_delta(self, side: str, price: Decimal, delta: Decimal) -> None:
        """Add ``delta`` contracts to the ``side`` ("yes"/"no") level at ``price`` dollars.

        The level is created if absent and removed when it reaches 0.  A result below 0 raises
        :class:`ValueError` and leaves the book unchanged.
        """
        if side == "yes":
            ladder = self.yes
        elif side == "no":
            ladder = self.no
        else:
            raise ValueError(f"bad side {side!r}")
        new = ladder.get(price, _ZERO) + delta
        if new < _ZERO:
            raise ValueError(f"{side} level {price} would go negative: {new}")
        if new == _ZERO:
            ladder.pop(price, None)
        else:
            ladder[price] = new

    def bbo(self) -> BBO:
        """Best bid/offer, recomputed from the ladders on every call.

        Returns ``(yes_bid, yes_bid_size, yes_ask, yes_ask_size)``: ``yes_bid`` is the highest
        YES bid (dollars) and its size (contracts); ``yes_ask = 1 - best NO bid`` (dollars) with
        that NO level's size.  Each pair is ``(None, None)`` when its side is empty.
        """
        if self.yes:
            yes_bid, yes_bid_size = self.yes.peekitem(-1)
        else:
            yes_bid = yes_bid_size = None
        if self.no:
            no_bid, no_bid_size = self.no.peekitem(-1)
            yes_ask, yes_ask_size = _ONE - no_bid, no_bid_size
        else:
            yes_ask = yes_ask_size = None
        return (yes_bid, yes_bid_size, yes_ask, yes_ask_size)

    def is_crossed(self) -> bool:
        """True when both sides are present and ``yes_bid >= yes_ask`` (a missed delete)."""
        yes_bid, _, yes_ask, _ = self.bbo()
        return yes_bid is not None and yes_ask is not None and yes_bid >= yes_ask


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------


@dataclass
class BaselineResult:
    """What :func:`replay` saw.

    * ``frames``: non-blank lines (frames) read;
    * ``messages_by_type``: frame count per ``type``;
    * ``gaps``: number of times ``seq != last_seq + 1`` on a sid (first seq of a sid is free);
    * ``bbo_changes``: number of snapshots/deltas after which a market's BBO tuple differed
      from its previous BBO (a new market's previous BBO is ``EMPTY_BBO``);
    * ``final_bbo``: ``ticker -> (yes_bid, yes_bid_size, yes_ask, yes_ask_size)``, Decimal
      dollars / contracts or None, for every market that received a snapshot;
    * ``skipped_deltas``: deltas not applied because their market had no snapshot yet or was
      stale after a gap (always 0 on a clean recording).
    """

    frames: int = 0
    messages_by_type: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    bbo_changes: int = 0
    final_bbo: dict[str, BBO] = field(default_factory=dict)
    skipped_deltas: int = 0


def iter_lines(path: str | Path) -> Iterator[bytes]:
    """Yield the raw lines of a recording, one at a time (``.gz`` paths are gunzipped)."""
    p = Path(path)
    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rb") as fh:
        yield from fh


def replay(path: str | Path) -> BaselineResult:
    """Replay a recording (``.jsonl`` or ``.jsonl.gz``) through the baseline pipeline.

    Streams line by line (memory is bounded by the books, not by the file).  Per line:
    :func:`unwrap`, :func:`decode_frame`, seq check per sid, then snapshot -> replace the
    market's :class:`BaselineBook`, delta -> apply; after each applied snapshot/delta the BBO is
    recomputed from scratch and compared with that market's previous BBO.  On a gap every book
    of that sid turns stale; a stale market's deltas are skipped until its next snapshot.
    Invalid frames and negative levels raise :class:`ValueError`.
    """
    result = BaselineResult()
    by_type: dict[str, int] = {}
    last_seq: dict[Any, int] = {}
    books: dict[str, BaselineBook] = {}
    book_sid: dict[str, Any] = {}
    stale: set[str] = set()
    prev_bbo: dict[str, BBO] = {}

    for line in iter_lines(path):
        frame = unwrap(line)
        if frame is None:
            continue
        msg = decode_frame(frame)
        result.frames += 1
        mtype = msg["type"]
        key = mtype if isinstance(mtype, str) else str(mtype)
        by_type[key] = by_type.get(key, 0) + 1

        sid, seq = msg["sid"], msg["seq"]
        if sid is not None and seq is not None:
            last = last_seq.get(sid)
            if last is not None and seq != last + 1:
                result.gaps += 1
                for ticker, s in book_sid.items():
                    if s == sid:
                        stale.add(ticker)
            last_seq[sid] = seq

        if mtype == SNAPSHOT:
            ticker = msg["ticker"]
            book = books.get(ticker)
            if book is None:
                book = books[ticker] = BaselineBook()
            book.apply_snapshot(msg["yes"], msg["no"])
            book_sid[ticker] = sid
            stale.discard(ticker)
        elif mtype == DELTA:
            ticker = msg["ticker"]
            book = books.get(ticker)
            if book is None or ticker in stale:
                result.skipped_deltas += 1
                continue
            book.apply_delta(msg["side"], msg["price"], msg["delta"])
        else:
            continue

        new_bbo = book.bbo()
        if new_bbo != prev_bbo.get(ticker, EMPTY_BBO):
            result.bbo_changes += 1
        prev_bbo[ticker] = new_bbo

    result.messages_by_type = by_type
    result.final_bbo = dict(prev_bbo)
    return result
