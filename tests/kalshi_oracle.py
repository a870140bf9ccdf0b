"""An independent, deliberately naive reference for Kalshi order books (the tests' oracle).

Only the standard library: ``json`` to read, ``Decimal`` for every number, plain ``dict``
ladders, and ``max()``/``min()`` recomputed from scratch every time a top is asked for. It
shares no code with ``kalshi_platform`` (not even the bench baseline), so agreement between the
two is evidence, not tautology.

Semantics (kalshi-api.md §5, §7.5, §7.8, §7.10; field-notes "Books and sequencing"):

* books are bids only: a YES-bid ladder and a NO-bid ladder;
* best YES ask = 1 − best NO bid, with that NO level's size;
* with ``use_yes_price`` the NO ladder arrives already on the YES scale, i.e. its keys *are*
  YES ask prices, so the best YES ask is simply the minimum key (computed that way here on
  purpose, as a second formulation rather than a conversion);
* a snapshot replaces the book; a delta adds a signed size; a level at 0 disappears;
* ``seq`` is per ``sid``; ``subscribed`` for a sid starts a new stream.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

D = Decimal
ONE = D(1)
MICRO = D(1_000_000)
CENTI = D(100)

Top = tuple  # (yes_bid, yes_bid_size, yes_ask, yes_ask_size): Decimal | None each


# ---------------------------------------------------------------------------------------------
# reading recordings (stdlib only)


def _unwrap(obj: Any) -> tuple[int | None, dict]:
    """(recv_ns | None, frame dict) of one parsed envelope."""
    assert isinstance(obj, dict), obj
    if "type" in obj:
        return None, obj
    if "frame" in obj:
        ms = obj.get("received_ms")
        return (ms * 1_000_000 if ms is not None else None), obj["frame"]
    if "raw" in obj:
        return obj.get("recv_ts_ns"), json.loads(obj["raw"])
    if "message" in obj:
        msg = obj["message"]
        return obj.get("recv_ts_ns"), json.loads(msg) if isinstance(msg, str) else msg
    raise AssertionError(f"unknown envelope: {sorted(obj)}")


def iter_recording(path: Path) -> Iterator[tuple[int | None, dict, str | None]]:
    """Yield ``(recv_ns, frame, line_text)`` for every frame of a recording, in order.

    Accepts JSON Lines (any envelope, blank lines, gzip) and a whole-document capture
    (``{"frames": [...]}``; ``line_text`` is then ``None``).
    """
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    try:
        parsed = [json.loads(ln) for ln in lines]
    except json.JSONDecodeError:
        doc = json.loads(text)
        for obj in doc["frames"]:
            recv, frame = _unwrap(obj)
            yield recv, frame, None
        return
    for ln, obj in zip(lines, parsed):
        recv, frame = _unwrap(obj)
        yield recv, frame, ln.rstrip("\r")


# ---------------------------------------------------------------------------------------------
# wire values → Decimal


def price_of(value: Any) -> Decimal:
    """A price in dollars: fixed-point dollar string, or legacy integer cents."""
    if isinstance(value, str):
        return D(value)
    assert type(value) is int, value
    return D(value) / CENTI


def size_of(value: Any) -> Decimal:
    """A size in contracts: fixed-point string or legacy integer count."""
    if isinstance(value, str):
        return D(value)
    assert type(value) is int, value
    return D(value)


def snapshot_levels(msg: dict) -> tuple[list, list]:
    """(yes, no) bid levels ``[(price $, size)]`` of a snapshot ``msg`` (any era)."""
    out = []
    for side in ("yes", "no"):
        if msg.get(f"{side}_dollars_fp") is not None:
            levels = [(D(p), D(q)) for p, q in msg[f"{side}_dollars_fp"]]
        elif msg.get(f"{side}_dollars") is not None:
            levels = [(D(p), size_of(q)) for p, q in msg[f"{side}_dollars"]]
        elif msg.get(side) is not None:
            levels = [(price_of(p), size_of(q)) for p, q in msg[side]]
        else:
            levels = []
        out.append(levels)
    return out[0], out[1]


def delta_fields(msg: dict) -> tuple[str, Decimal, Decimal]:
    """(side, price $, signed delta) of a delta ``msg`` (any era)."""
    pd = msg.get("price_dollars")
    price = D(pd) if pd else price_of(msg["price"])
    fp = msg.get("delta_fp")
    delta = D(fp) if fp else size_of(msg["delta"])
    return msg["side"], price, delta


def iso_to_ns(text: str) -> int:
    """RFC 3339 → ns since the epoch (UTC), by hand (no shared code with the package)."""
    head, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    secs = (dt - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()
    return int(secs) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


# ---------------------------------------------------------------------------------------------
# books


class OracleBook:
    """Two plain dict ladders; the top is recomputed with max()/min() on every call."""

    def __init__(self, no_on_yes_scale: bool) -> None:
        self.no_on_yes_scale = no_on_yes_scale
        self.yes: dict[Decimal, Decimal] = {}
        self.no: dict[Decimal, Decimal] = {}  # keyed by the wire price of the NO side

    def replace(self, yes: list, no: list) -> None:
        self.yes = {}
        self.no = {}
        for ladder, levels in ((self.yes, yes), (self.no, no)):
            for p, q in levels:
                assert q >= 0, (p, q)
                if q:
                    ladder[p] = ladder.get(p, D(0)) + q

    def apply(self, side: str, price: Decimal, delta: Decimal) -> None:
        ladder = self.yes if side == "yes" else self.no
        new = ladder.get(price, D(0)) + delta
        if new < 0:
            raise AssertionError(f"oracle: level {side}@{price} would go negative ({new})")
        if new == 0:
            ladder.pop(price, None)
        else:
            ladder[price] = new

    def no_bids(self) -> dict[Decimal, Decimal]:
        """The NO ladder on the NO price scale."""
        if self.no_on_yes_scale:
            return {ONE - p: q for p, q in self.no.items()}
        return dict(self.no)

    def top(self) -> Top:
        if self.yes:
            bid = max(self.yes)
            bid_size = self.yes[bid]
        else:
            bid = bid_size = None
        if not self.no:
            ask = ask_size = None
        elif self.no_on_yes_scale:
            k = min(self.no)  # already a YES ask price
            ask, ask_size = k, self.no[k]
        else:
            k = max(self.no)  # best NO bid
            ask, ask_size = ONE - k, self.no[k]
        return bid, bid_size, ask, ask_size

    def crossed(self) -> bool:
        bid, _, ask, _ = self.top()
        return bid is not None and ask is not None and bid >= ask


class Oracle:
    """Replays frames into :class:`OracleBook` s and records every top-of-book change.

    ``changes``: ``(ticker, ts_ns | None, top, seq, recv_ns)`` each time a book's top differs
    from the last one recorded for that ticker (the first top of a ticker always counts).
    ``ts_ns`` is the exchange time (delta ``ts_ms``, else ISO ``ts``) or, for a snapshot, the
    receipt time; ``None`` when neither is known.
    """

    def __init__(self, use_yes_price: bool = False) -> None:
        self.use_yes_price = use_yes_price
        self.books: dict[str, OracleBook] = {}
        self.last_seq: dict[int, int] = {}
        self.gaps = 0
        self.duplicates = 0
        self.messages: Counter[str] = Counter()
        self.snapshot_rows = 0
        self.changes: list[tuple] = []
        self._last_top: dict[str, Top] = {}

    def apply(self, frame: dict, recv_ns: int | None = None) -> str | None:
        """Apply one frame; returns the ticker whose book it touched (or ``None``)."""
        t = frame["type"]
        sid, seq = frame.get("sid"), frame.get("seq")
        if t == "subscribed":
            self.last_seq.pop(frame["msg"]["sid"], None)
        if sid is not None and seq is not None:
            if sid in self.last_seq and seq <= self.last_seq[sid]:
                self.duplicates += 1  # at or below the watermark: dropped
                return None
            if sid in self.last_seq and seq != self.last_seq[sid] + 1:
                self.gaps += 1
            self.last_seq[sid] = seq
        self.messages[t] += 1
        msg = frame.get("msg")
        if t == "orderbook_snapshot":
            ticker = msg["market_ticker"]
            yes, no = snapshot_levels(msg)
            self.snapshot_rows += (len(yes) + len(no)) or 1
            book = self.books.setdefault(ticker, OracleBook(self.use_yes_price))
            book.replace(yes, no)
            ts = msg["ts_ms"] * 1_000_000 if msg.get("ts_ms") is not None else recv_ns
            self._maybe_change(ticker, ts, seq, recv_ns)
            return ticker
        if t == "orderbook_delta":
            ticker = msg["market_ticker"]
            side, price, delta = delta_fields(msg)
            if msg.get("ts_ms") is not None:
                ts = msg["ts_ms"] * 1_000_000
            elif isinstance(msg.get("ts"), str):
                ts = iso_to_ns(msg["ts"])
            else:
                ts = None
            self.books[ticker].apply(side, price, delta)
            self._maybe_change(ticker, ts, seq, recv_ns)
            return ticker
        return None

    def _maybe_change(self, ticker: str, ts: int | None, seq: int | None,
                      recv_ns: int | None) -> None:
        top = self.books[ticker].top()
        if ticker in self._last_top and self._last_top[ticker] == top:
            return
        self._last_top[ticker] = top
        self.changes.append((ticker, ts, top, seq, recv_ns))

    def top(self, ticker: str) -> Top:
        return self.books[ticker].top()

    def final_tops(self) -> dict[str, Top]:
        return {t: b.top() for t, b in sorted(self.books.items())}


def replay(path: Path, use_yes_price: bool = False) -> Oracle:
    """Run a whole recording through a fresh :class:`Oracle`."""
    o = Oracle(use_yes_price)
    for recv_ns, frame, _ in iter_recording(path):
        o.apply(frame, recv_ns)
    return o


# ---------------------------------------------------------------------------------------------
# comparing with the package's fixed-point integers


def dec_top(top: tuple) -> Top:
    """The plant's ``(µ$, c-contracts, µ$, c-contracts)`` top → Decimal dollars / contracts."""
    yb, ybs, ya, yas = top
    return (
        None if yb is None else D(yb) / MICRO,
        None if ybs is None else D(ybs) / CENTI,
        None if ya is None else D(ya) / MICRO,
        None if yas is None else D(yas) / CENTI,
    )


def float_or_none(v: Decimal | None) -> float | None:
    return None if v is None else float(v)

