"""The seeded mutation engine of ``bench fuzz`` (runner: :mod:`kalshi_platform.bench.fuzz`).

:func:`fuzz_frames` turns the real recordings into an endless, deterministic (per seed) stream
of raw frames (``bytes``) the way a hostile feed would send them: untouched real frames, junk
*inserted* before a real frame (out-of-range and malformed numbers, wrong types, missing/extra
keys, 1,000-deep documents, truncated JSON, invalid UTF-8, control characters, seq/sid
perturbations) and seq-consistent *replacements* of a real frame (crossing, locking and
negative-driving deltas, deltas for markets with no book, snapshots with duplicate levels,
swapped sides or crossed levels, skipped seqs). Each recording is preceded by ``subscribed``
acks for the sids it uses but never acks, so every pass is a fresh subscription.

Nothing here imports the plant: the engine only knows the wire format (docs/kalshi-api.md §7) and
the contract of issue 9 §1 (``must_reject``). Units follow the plant: prices µ$
(``1_000_000`` = $1), sizes centi-contracts, times ns UTC.
"""

from __future__ import annotations

import random
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import orjson


class Raw(NamedTuple):
    """A JSON token spliced into a frame verbatim (``NaN``, ``1e-2``, ``2^64``, huge ints)."""

    token: bytes


_HUGE = "9" * 4301  # one digit past CPython's int-from-text limit
_TEXT = [(v, "text") for v in ("1e-2", "5E-1", "NaN", "Infinity", "-Infinity", "0x10", "1_0",
                               "abc", "0.5.1", "--1", "\u0661", "0,5")]
_TYPE = [(v, "type") for v in (0.5, True, False, [], {}, Raw(b"NaN"), Raw(b"Infinity"),
                               Raw(b"1e-2"))]
_BIG = [(v, "huge") for v in ("9223372036854775808", "18446744073709551616", _HUGE,
                              Raw(_HUGE.encode()), Raw(b"18446744073709551616"))]
_NONCANON_P = [(v, "noncanon") for v in (" 0.5 ", "+0.5", ".5", "1.", "0.5 ", "\t0.5")]
_NONCANON_Q = [(v, "noncanon") for v in (" 5.00 ", "+5.00", ".5", "5.", "5.00\n")]
_ALL = _TEXT + _TYPE + _BIG


def _rng(*vals: Any) -> list:
    return [(v, "range") for v in vals]


#: value class → hostile values ``(value, tag)``, every one invalid for that class
HOSTILE: dict[str, list[tuple[Any, str]]] = {
    # prices 0 < p < $1 (deltas, trades, snapshot levels)
    "price": _rng("0", "0.0000", "1", "1.0000", "1.5", "-0.01", "-0.5", "0.0000001", "-0")
    + _NONCANON_P + _ALL,
    # ticker prices / settlement value: [0, $1] (a ticker's yes_ask is "1.0000" with no asks)
    "tprice": _rng("1.5", "1.0001", "-0.01", "0.0000001") + _NONCANON_P + _ALL,
    # sizes > 0 and <= 10^10 contracts (snapshot levels, trade counts)
    "size": _rng("0", "0.00", "-5.00", "100000000000.00", "10000000000.01", "0.001")
    + _NONCANON_Q + _ALL,
    # signed delta, |delta| <= 10^10 contracts
    "delta": _rng("100000000000.00", "-100000000000.00", "10000000000.01", "0.001")
    + _NONCANON_Q + _ALL,
    # volumes, open interest, ticker sizes: 0 ..10^10 contracts
    "amount": _rng("-5.00", "100000000000.00", "0.001") + _NONCANON_Q + _ALL,
    # legacy integer cents / contracts
    "lprice": _rng(0, Raw(b"-0"), 100, -1, 101, 2**63 - 1) + _TYPE + [("56", "type")] + _BIG[3:],
    "ltprice": _rng(-1, 101, 2**63 - 1) + _TYPE + [("56", "type")] + _BIG[3:],
    "lsize": _rng(0, Raw(b"-0"), -1, 10**11, 2**63 - 1) + _TYPE + [("5", "type")] + _BIG[3:],
    "lamount": _rng(-1, 10**11, 2**63 - 1) + _TYPE + [("5", "type")] + _BIG[3:],
    "ldelta": _rng(10**11, -10**11, 2**63 - 1, -2**63) + _TYPE + [("5", "type")] + _BIG[3:],
    # times within 2000-01-01 .. 2100-01-01
    "ts_ms": _rng(0, 1, 946_684_799_999, 4_102_444_800_000, -1, 2**63 - 1)
    + [(1.7e12, "type"), (True, "type"), ("1786085188416", "type")] + _BIG[3:],
    "ts_s": _rng(0, 946_684_799, 4_102_444_800, -1, 2**63 - 1, "1999-12-31T23:59:59Z",
                 "2100-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z")
    + [(v, "text") for v in ("2026-13-01T00:00:00Z", "yesterday", "2026-08-07T06:46:28",
                             "2026-08-07T06:46:28,5Z")]
    + [(1.5, "type"), (True, "type")] + _BIG[3:],
    "ts_s_int": _rng(0, 946_684_799, 4_102_444_800, -1, 2**63 - 1)
    + [(1.5, "type"), (True, "type"), ("1784501722", "type")] + _BIG[3:],
    # sid / seq: 1 <= n < 2^63
    "counter": _rng(0, -1, -2**63, Raw(b"9223372036854775808"), Raw(b"18446744073709551616"))
    + [(1.5, "type"), (True, "type"), ("5", "type")] + _BIG[3:4],
}

#: wire type → msg field → value class
NUMERIC_FIELDS: dict[str, dict[str, str]] = {
    "orderbook_delta": {"price_dollars": "price", "delta_fp": "delta", "price": "lprice",
                        "delta": "ldelta", "ts_ms": "ts_ms", "ts": "ts_s"},
    "orderbook_snapshot": {"ts_ms": "ts_ms"},
    "trade": {"yes_price_dollars": "price", "no_price_dollars": "price", "count_fp": "size",
              "yes_price": "lprice", "no_price": "lprice", "count": "lsize", "ts_ms": "ts_ms",
              "ts": "ts_s"},
    "ticker": {"price_dollars": "tprice", "yes_bid_dollars": "tprice",
               "yes_ask_dollars": "tprice", "yes_bid_size_fp": "amount",
               "yes_ask_size_fp": "amount", "volume_fp": "amount", "open_interest_fp": "amount",
               "price": "ltprice", "yes_bid": "ltprice", "yes_ask": "ltprice",
               "volume": "lamount", "open_interest": "lamount", "ts_ms": "ts_ms", "ts": "ts_s"},
    "market_lifecycle_v2": {"settlement_value": "tprice", "determination_ts": "ts_s_int",
                            "settled_ts": "ts_s_int", "ts_ms": "ts_ms"},
}
#: a legacy field the decoder ignores when its fixed-point twin is present
LEGACY_TWIN = {"price": "price_dollars", "yes_price": "yes_price_dollars",
               "no_price": "no_price_dollars", "yes_bid": "yes_bid_dollars",
               "yes_ask": "yes_ask_dollars", "delta": "delta_fp", "count": "count_fp",
               "volume": "volume_fp", "open_interest": "open_interest_fp"}
#: a time field the decoder ignores when one of these is present
TS_TWIN = {"ts": ("ts_ms",), "determination_ts": ("ts_ms",), "settled_ts": ("ts_ms",)}

_REPO = Path(__file__).resolve().parents[2]
BUNDLED_DIR = _REPO / "data" / "recordings"
SHARED_WS_DIR = _REPO.parent / "shared" / "data" / "real" / "kalshi" / "ws"
BASE_RECV_NS = 1_786_085_188_416_000_000  # first receipt time of the cockpit capture
ONE = 1_000_000  # $1 in µ$
_CHANNEL = {"orderbook_snapshot": "orderbook_delta", "orderbook_delta": "orderbook_delta",
            "ok": "orderbook_delta", "trade": "trade", "ticker": "ticker",
            "market_lifecycle_v2": "market_lifecycle_v2", "fill": "fill"}


class FuzzFrame(NamedTuple):
    """One frame of the stream: ``raw`` bytes fed to ``plant.process``, ``recv_ns`` (ns UTC),
    ``kind`` (``"real"``, ``"preamble"`` or the mutation's name), ``must_reject`` (the plant's
    contract says this frame must be quarantined) and ``ticker`` (market it targets, if any)."""

    raw: bytes
    recv_ns: int
    kind: str
    must_reject: bool
    ticker: str | None


class _Real(NamedTuple):
    raw: bytes
    obj: Any  # parsed frame (dict) or None when the line is not a JSON object
    seq: int | None
    ticker: str | None
    kind: str = "real"  # or "preamble" (a subscribed ack we add)


# -- corpus ----------------------------------------------------------------------------------


def default_sources(shared: bool = True) -> tuple[list[Path], str | None]:
    """``(paths, note)``: the bundled ``data/recordings/*.jsonl`` plus, with ``shared``, the
    Kalshi WS captures in ``../shared/data/real/kalshi/ws`` not bundled (JSON Lines only; the
    cockpit ``.json`` document duplicates its ``.frames.jsonl``). ``note`` says why shared
    captures are missing, ``None`` when they were found (or not asked for)."""
    paths = sorted(BUNDLED_DIR.glob("*.jsonl"))
    if not shared:
        return paths, None
    if not SHARED_WS_DIR.is_dir():
        return paths, f"shared captures not available (expected under {SHARED_WS_DIR})"
    names = {p.name for p in paths}
    extra = [p for p in sorted(SHARED_WS_DIR.glob("*.jsonl")) if p.name not in names]
    return paths + extra, None


def _preamble(frames: list[_Real]) -> list[bytes]:
    """``subscribed`` acks for every sid the recording uses but never acks (a fresh
    subscription per pass, so a pass's seqs never read as a jump from the previous pass)."""
    acked, seen = set(), {}
    for f in frames:
        o = f.obj
        if type(o) is not dict:
            continue
        if o.get("type") == "subscribed":
            acked.add((o.get("msg") or {}).get("sid"))
        elif type(o.get("sid")) is int:
            seen.setdefault(o["sid"], _CHANNEL.get(o.get("type"), "orderbook_delta"))
    return [orjson.dumps({"type": "subscribed", "id": 9000 + sid,
                          "msg": {"channel": ch, "sid": sid}})
            for sid, ch in seen.items() if sid not in acked]


def load_corpus(sources: Sequence[Path]) -> list[list[_Real]]:
    """Every recording as a list of real frames (compact JSON bytes), its preamble first."""
    from kalshi_platform.ingestion.recording import iter_frames

    corpus = []
    for path in sources:
        frames = []
        for _, payload in iter_frames(path):
            if isinstance(payload, dict):
                raw = orjson.dumps(payload)
            else:
                raw = payload.encode() if isinstance(payload, str) else bytes(payload)
            frames.append(_real(raw))
        pre = [_real(r)._replace(kind="preamble") for r in _preamble(frames)]
        if frames:
            corpus.append(pre + frames)
    if not corpus:
        raise FileNotFoundError(f"no frames in {', '.join(map(str, sources)) or 'no sources'}")
    return corpus


def _real(raw: bytes) -> _Real:
    try:
        o = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _Real(raw, None, None, None)
    if type(o) is not dict:
        return _Real(raw, None, None, None)
    m = o.get("msg")
    t = m.get("market_ticker") if type(m) is dict else None
    s = o.get("seq")
    return _Real(raw, o, s if type(s) is int else None, t if isinstance(t, str) else None)


# -- serialisation and small helpers -----------------------------------------------------------


def _dumps(obj: Any, tokens: list[bytes]) -> bytes:
    """``orjson.dumps`` with ``tokens[i]`` spliced in raw for the marker string ``@@fz{i}@@``
    (JSON tokens orjson cannot write: NaN, 1e-2, 2^64, 4,301-digit integers)."""
    out = orjson.dumps(obj)
    for i, tok in enumerate(tokens):
        out = out.replace(b'"@@fz%d@@"' % i, tok, 1)
    return out


def _put(box: Any, key: Any, value: Any, tokens: list[bytes]) -> None:
    if isinstance(value, Raw):
        tokens.append(value.token)
        value = f"@@fz{len(tokens) - 1}@@"
    box[key] = value


def _price_text(p: int) -> str:
    return f"{p // ONE}.{p % ONE:06d}"


def _size_text(q: int) -> str:
    return f"{'-' if q < 0 else ''}{abs(q) // 100}.{abs(q) % 100:02d}"


def _micro(text: str, scale: int) -> int:
    return int(Decimal(text) * scale)


def _paths(o: Any, prefix: tuple = (), depth: int = 0) -> Iterator[tuple]:
    """Every key/index path inside ``o`` (depth-first, bounded depth)."""
    if depth > 6:
        return
    items = o.items() if type(o) is dict else enumerate(o) if type(o) is list else ()
    for k, v in items:
        p = prefix + (k,)
        yield p
        yield from _paths(v, p, depth + 1)


def _get(o: Any, path: tuple) -> Any:
    for k in path:
        o = o[k]
    return o


def _parent(o: Any, path: tuple) -> Any:
    return _get(o, path[:-1])


# -- the generator ----------------------------------------------------------------------------

Out = tuple[bytes, bool, "str | None"]  # (raw, must_reject, ticker)


class _Gen:
    """State of one stream: RNG, a model of each book built from the real frames sent (to aim
    crossing and negative deltas), and the last real seq-carrying frames (for replays)."""

    def __init__(self, rng: random.Random, insert_p: float, replace_p: float,
                 snapshot_replace_p: float) -> None:
        self.rng = rng
        self.insert_p, self.replace_p, self.snap_p = insert_p, replace_p, snapshot_replace_p
        self.books: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self.history: deque[bytes] = deque(maxlen=64)
        self.n = 0
        self.tag: str | None = None  # a mutation's sub-kind, appended to its name
        self._ins = list(INSERTS)
        self._ins_w = [INSERTS[k][1] for k in self._ins]

    def step(self, f: _Real) -> Iterator[FuzzFrame]:
        """The frames sent for real frame ``f``: maybe junk, then ``f`` or its replacement."""
        rng = self.rng
        o = f.obj
        if o is not None and rng.random() < self.insert_p:
            kind = rng.choices(self._ins, self._ins_w)[0]
            yield from self._run(kind, INSERTS[kind][0], f)
        typ = o.get("type") if o is not None else None
        p = self.snap_p if typ == "orderbook_snapshot" else self.replace_p
        if typ in REPLACES and rng.random() < p:
            kind = rng.choice(REPLACES[typ])
            out = list(self._run(kind, MUTATIONS[kind], f))
            if out:
                yield from out
                return
        self._learn(o)
        if f.seq is not None:
            self.history.append(f.raw)
        yield self._frame(f.raw, f.kind, False, f.ticker)

    def _run(self, kind: str, fn: Callable, f: _Real) -> Iterator[FuzzFrame]:
        self.tag = None
        out = fn(self, f) or ()
        if self.tag:
            kind = f"{kind}:{self.tag}"
        for raw, rej, t in out:
            yield self._frame(raw, kind, rej, t)

    def _frame(self, raw: bytes, kind: str, rej: bool, ticker: str | None) -> FuzzFrame:
        self.n += 1
        return FuzzFrame(raw, BASE_RECV_NS + self.n * 1_000_000, kind, rej, ticker)

    def _learn(self, o: Any) -> None:
        """Apply a real snapshot/delta (fixed-point era) to the model books."""
        typ = o.get("type") if type(o) is dict else None
        m = o.get("msg") if typ else None
        if typ == "orderbook_snapshot":
            self.books[m["market_ticker"]] = tuple(
                {_micro(p, ONE): _micro(q, 100) for p, q in m.get(k) or ()}
                for k in ("yes_dollars_fp", "no_dollars_fp"))
        elif typ == "orderbook_delta" and m.get("price_dollars") and m.get("delta_fp"):
            b = self.books.get(m["market_ticker"])
            if b is not None:
                lad = b[0] if m["side"] == "yes" else b[1]
                p = _micro(m["price_dollars"], ONE)
                q = lad.get(p, 0) + _micro(m["delta_fp"], 100)
                if q > 0:
                    lad[p] = q
                else:
                    lad.pop(p, None)

    def fresh(self, f: _Real) -> dict:
        return orjson.loads(f.raw)


# -- insert mutations: junk sent before the real frame (which still follows) ------------------


def _num_field(g: _Gen, f: _Real) -> list[Out] | None:
    """A numeric field (envelope, msg or a snapshot level) set to a hostile value of its
    class; must be rejected unless the decoder ignores that field (a legacy or ``ts`` twin
    of a field that is present wins)."""
    o = g.fresh(f)
    m = o.get("msg") if type(o.get("msg")) is dict else {}
    cands = [((k,), "counter") for k in ("sid", "seq") if k in o]
    if o.get("type") == "subscribed" and "sid" in m:
        cands.append((("msg", "sid"), "counter"))
    for k, cls in NUMERIC_FIELDS.get(o.get("type"), {}).items():
        if k in m:
            cands.append((("msg", k), cls))
    for side in ("yes_dollars_fp", "no_dollars_fp"):
        for i in range(len(m.get(side) or ())):
            cands += [(("msg", side, i, 0), "price"), (("msg", side, i, 1), "size")]
    if not cands:
        return None
    path, cls = g.rng.choice(cands)
    value, tag = g.rng.choice(HOSTILE[cls])
    g.tag = f"{tag}:{path[-1] if type(path[-1]) is str else cls}"
    tokens: list[bytes] = []
    _put(_parent(o, path), path[-1], value, tokens)
    key = path[-1] if len(path) == 2 else None
    ignored = (key in LEGACY_TWIN and LEGACY_TWIN[key] in m) or (key in TS_TWIN and any(
        t in m for t in TS_TWIN[key]))
    return [(_dumps(o, tokens), not ignored, f.ticker)]


_TYPES = (0, -1, 1.5, "x", "", True, None, [], {}, [["0.5000", "1.00"]], {"a": 1})


def _wrong_type(g: _Gen, f: _Real) -> list[Out] | None:
    """Any field set to a value of another JSON type (no contract verdict: checked for
    exceptions and invariants only)."""
    o = g.fresh(f)
    paths = list(_paths(o))
    path = g.rng.choice(paths)
    box = _parent(o, path)
    cur = box[path[-1]]
    box[path[-1]] = g.rng.choice([v for v in _TYPES if type(v) is not type(cur)])
    return [(orjson.dumps(o), False, f.ticker)]


def _missing_key(g: _Gen, f: _Real) -> list[Out] | None:
    o = g.fresh(f)
    path = g.rng.choice([p for p in _paths(o) if type(_parent(o, p)) is dict])
    del _parent(o, path)[path[-1]]
    return [(orjson.dumps(o), path == ("type",), f.ticker)]


def _extra_key(g: _Gen, f: _Real) -> list[Out] | None:
    o = g.fresh(f)
    boxes = [o] + [_get(o, p) for p in _paths(o) if type(_get(o, p)) is dict]
    g.rng.choice(boxes)["fuzz_" + g.rng.choice("abcxyz")] = g.rng.choice(_TYPES)
    return [(orjson.dumps(o), False, f.ticker)]


def _truncate(g: _Gen, f: _Real) -> list[Out] | None:
    return [(f.raw[:g.rng.randrange(1, len(f.raw))], True, f.ticker)]


_BAD_UTF8 = (b"\xff", b"\xfe", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
             b"\x80", b"\xe2\x82")


def _in_string(g: _Gen, f: _Real, junk: bytes) -> bytes:
    """``junk`` spliced into a string value of the frame (the ticker when there is one)."""
    raw = f.raw
    i = raw.find(b'"market_ticker":"')
    i = i + 17 if i >= 0 else raw.find(b'":"') + 3
    end = raw.find(b'"', i)  # the string's closing quote (real strings hold no escapes here)
    j = g.rng.randrange(i, min(end, i + 4) + 1)
    return raw[:j] + junk + raw[j:]


def _bad_utf8(g: _Gen, f: _Real) -> list[Out] | None:
    return [(_in_string(g, f, g.rng.choice(_BAD_UTF8)), True, f.ticker)]


def _control_char(g: _Gen, f: _Real) -> list[Out] | None:
    """A raw control byte inside a string (invalid JSON), or an escaped one (valid JSON)."""
    c = g.rng.choice((0, 1, 8, 10, 13, 27, 31))
    if g.rng.random() < 0.5:
        return [(_in_string(g, f, bytes([c])), True, f.ticker)]
    return [(_in_string(g, f, b"\\u%04x" % c), False, None)]


def _deep(g: _Gen, f: _Real) -> list[Out] | None:
    """A 1,000-deep document: the whole frame, the ``msg``, or an unknown ``msg`` key."""
    d = 1000
    arr = b"[" * d + b"]" * d
    obj = b'{"a":' * d + b"1" + b"}" * d
    how = g.rng.randrange(3)
    if how == 0:
        return [(g.rng.choice((arr, obj)), True, None)]
    raw = f.raw
    i = raw.find(b'"msg":{')
    if i < 0:
        return [(b'{"type":"ok","sid":1,"msg":' + arr + b"}", False, None)]
    if how == 1:
        j = raw.rfind(b"}")
        return [(raw[:i] + b'"msg":' + obj + raw[j:], True, f.ticker)]
    return [(raw[:i + 7] + b'"fuzz_deep":' + arr + b"," + raw[i + 7:], False, f.ticker)]


def _seq_dup(g: _Gen, f: _Real) -> list[Out] | None:
    """The last real seq-carrying frame again, byte for byte (a duplicate: drop it)."""
    return [(g.history[-1], False, None)] if g.history else None


def _seq_back(g: _Gen, f: _Real) -> list[Out] | None:
    """A real frame from 2..64 frames back (seq below the watermark: a duplicate)."""
    if len(g.history) < 2:
        return None
    return [(g.history[-g.rng.randrange(2, len(g.history) + 1)], False, None)]


def _seq_extreme(g: _Gen, f: _Real) -> list[Out] | None:
    """A copy of the frame with seq or sid out of 1..2^63-1, or seq 2^63-1 then 2^63."""
    if f.seq is None:
        return None
    o = g.fresh(f)
    if g.rng.random() < 0.25:
        o["seq"] = 2**63 - 1
        first = orjson.dumps(o)
        o["seq"] = "@@fz0@@"
        return [(first, False, f.ticker), (_dumps(o, [b"9223372036854775808"]), True, f.ticker)]
    key = g.rng.choice(("seq", "seq", "sid"))
    tokens: list[bytes] = []
    _put(o, key, g.rng.choice(HOSTILE["counter"])[0], tokens)
    return [(_dumps(o, tokens), True, f.ticker)]


# -- replace mutations: seq-consistent frames sent instead of the real one ---------------------


def _delta_msg(g: _Gen, f: _Real, ticker: str, side: str, price: int, delta: int) -> bytes:
    o = g.fresh(f)
    m = o["msg"]
    for k in ("price", "delta", "price_dollars", "delta_fp", "market_id"):
        m.pop(k, None)
    m.update(market_ticker=ticker, side=side, price_dollars=_price_text(price),
             delta_fp=_size_text(delta))
    return orjson.dumps(o)


def _delta_cross(g: _Gen, f: _Real) -> list[Out] | None:
    """A bid at or through the opposite best (YES bid >= 1 - best NO bid, or the mirror):
    locked at exactly the boundary half the time, else a random crossing price."""
    b = g.books.get(f.ticker)
    if b is None or not (b[0] or b[1]):
        return None
    side, opp = ("yes", b[1]) if b[1] and (not b[0] or g.rng.random() < 0.5) else ("no", b[0])
    edge = ONE - max(opp)
    price = edge if g.rng.random() < 0.5 else g.rng.randrange(edge, ONE)
    if not 0 < price < ONE:
        return None
    return [(_delta_msg(g, f, f.ticker, side, price, g.rng.choice((1, 100, 5_000))), False,
             f.ticker)]


def _delta_negative(g: _Gen, f: _Real) -> list[Out] | None:
    """A delta taking a resting level (or an empty price) below zero."""
    b = g.books.get(f.ticker)
    if b is None:
        return None
    side = g.rng.choice(("yes", "no"))
    lad = b[0] if side == "yes" else b[1]
    if lad and g.rng.random() < 0.7:
        price = g.rng.choice(list(lad))
        delta = -(lad[price] + g.rng.choice((1, 100)))
    else:
        price, delta = g.rng.randrange(10_000, ONE, 10_000), -100
    return [(_delta_msg(g, f, f.ticker, side, price, delta), False, f.ticker)]


def _delta_no_book(g: _Gen, f: _Real) -> list[Out] | None:
    t = f"KXFUZZ-NOBOOK-{g.rng.randrange(100)}"
    return [(_delta_msg(g, f, t, g.rng.choice(("yes", "no")), 500_000, 100), False, t)]


def _snap_levels(g: _Gen, f: _Real, how: str) -> list[Out] | None:
    """A snapshot with a repeated price level (``dup``: must be rejected), its sides
    swapped (``swap``), or a YES bid at/through 1 - best NO bid added (``cross``)."""
    o = g.fresh(f)
    m = o["msg"]
    yes, no = m.get("yes_dollars_fp") or [], m.get("no_dollars_fp") or []
    if how == "dup":
        side = yes if yes and (not no or g.rng.random() < 0.5) else no
        if not side:
            return None
        lvl = g.rng.choice(side)
        side.insert(g.rng.randrange(len(side) + 1), [lvl[0], g.rng.choice((lvl[1], "1.00"))])
    elif how == "swap":
        m["yes_dollars_fp"], m["no_dollars_fp"] = no, yes
    else:
        if not no:
            return None
        edge = ONE - max(_micro(p, ONE) for p, _ in no)
        yes.append([_price_text(edge if g.rng.random() < 0.5 else g.rng.randrange(edge, ONE)),
                    "3.00"])
        m["yes_dollars_fp"] = yes
    return [(orjson.dumps(o), how == "dup", f.ticker)]


def _seq_skip(g: _Gen, f: _Real) -> list[Out] | None:
    o = g.fresh(f)
    o["seq"] = f.seq + g.rng.randrange(2, 6)
    return [(orjson.dumps(o), False, f.ticker)]


#: name → (mutation, weight) for junk inserted before a real frame
INSERTS: dict[str, tuple[Callable[[_Gen, _Real], list[Out] | None], int]] = {
    "num_field": (_num_field, 40), "wrong_type": (_wrong_type, 12),
    "missing_key": (_missing_key, 8), "extra_key": (_extra_key, 6),
    "truncate": (_truncate, 8), "bad_utf8": (_bad_utf8, 5), "control_char": (_control_char, 5),
    "deep_nesting": (_deep, 2), "seq_duplicate": (_seq_dup, 5),
    "seq_backwards": (_seq_back, 3), "seq_sid_extreme": (_seq_extreme, 2),
}
MUTATIONS: dict[str, Callable[[_Gen, _Real], list[Out] | None]] = {
    "delta_cross": _delta_cross, "delta_negative": _delta_negative,
    "delta_no_book": _delta_no_book, "seq_skip": _seq_skip,
    "snapshot_dup_levels": lambda g, f: _snap_levels(g, f, "dup"),
    "snapshot_swapped": lambda g, f: _snap_levels(g, f, "swap"),
    "snapshot_crossed": lambda g, f: _snap_levels(g, f, "cross"),
}
#: wire type → replace mutations that apply to it
REPLACES = {
    "orderbook_delta": ["delta_cross", "delta_cross", "delta_negative", "delta_no_book",
                        "seq_skip"],
    "orderbook_snapshot": ["snapshot_dup_levels", "snapshot_swapped", "snapshot_crossed"],
}


def fuzz_frames(seed: int, n: int, sources: Sequence[Path] | None = None, *,
                insert_p: float = 0.45, replace_p: float = 0.01,
                snapshot_replace_p: float = 0.1) -> Iterator[FuzzFrame]:
    """Yield ``n`` :class:`FuzzFrame` s, deterministic for ``seed``.

    The recordings (``sources``, default: the bundled ones) are replayed pass after pass;
    before each real frame a junk frame is inserted with probability ``insert_p``, and a
    delta (snapshot) is replaced by a hostile one with probability ``replace_p``
    (``snapshot_replace_p``). ``insert_p=replace_p=snapshot_replace_p=0`` gives the real
    recordings only (plus ``subscribed`` preambles). ``recv_ns`` is a synthetic local clock:
    1 ms per frame from :data:`BASE_RECV_NS`.
    """
    corpus = load_corpus(sources if sources is not None else default_sources(False)[0])
    g = _Gen(random.Random(seed), insert_p, replace_p, snapshot_replace_p)
    while True:
        for rec in corpus:
            for f in rec:
                for ff in g.step(f):
                    yield ff
                    if g.n >= n:
                        return
