"""The compiled ``orderbook_delta`` decoder (``kalshi_platform/ingestion/_delta.c``) against
the slow reference in ``delta_reference.py`` (orjson + plain Python checks + Decimal).

Inputs: every delta of the bundled and shared real captures, as sent and re-encoded (key
order shuffled, whitespace, ``\\u`` escapes); every field of real deltas set to a pool of
hostile values or deleted; unknown keys with nested values; random byte-level corruptions
(flips, cuts, insertions). The decoder must agree with the reference on every one: the same
tuple, or a rejection, or "not a delta" — and it must never accept text orjson rejects. The
envelope entry points (``decode_line``, the plant's ``process_lines``) are checked on real
cockpit lines and on lines carrying the mutated frames.
"""

from __future__ import annotations

import json
import random

import orjson
import pytest
from conftest import BUNDLED, COCKPIT, read_lines, shared_ws_captures
from delta_reference import OTHER, reference

from kalshi_platform.ingestion import _delta
from kalshi_platform.ingestion.recording import feed, iter_frames, unwrap
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

HOSTILE = [None, 0, -1, 1, 7, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63), 1.0, 0.5, 1e3, True,
           False, "", "x", "yes", "no", "YES", "0.5", "0.50", "0.5000000", "0.5000001", "0.",
           ".5", "+0.5", "1", "-1.00", "1e-2", " 0.5", "0.999999", "0.000001", "1.000000",
           "-0.5", "00.5", "0" * 40 + "1", "100.00", "-10000000000.00", "10000000000.01",
           "\u0661", "é", "a" * 128, "a" * 129, "é" * 128, "é" * 129, "\U0001F600",
           "2026-08-07T06:46:40.799251Z", "not a time", 946_684_800, 4_102_444_800,
           946_684_800_000, 4_102_444_800_000, [], [1], {}, {"a": [1, {"b": None}]}]
FIELDS = ["market_ticker", "side", "price_dollars", "delta_fp", "price", "delta", "ts_ms", "ts",
          "client_order_id", "subaccount", "market_id"]
TOP = ["sid", "seq", "type", "msg"]


def _real_deltas() -> list[dict]:
    out, seen = [], set()
    for path in (*BUNDLED, *shared_ws_captures()):
        for _, payload in iter_frames(path):
            f = orjson.loads(payload) if isinstance(payload, str) else payload
            if isinstance(f, dict) and f.get("type") == "orderbook_delta":
                key = orjson.dumps(f)
                if key not in seen:
                    seen.add(key)
                    out.append(f)
    return out


REAL = _real_deltas()


def _c(text):
    """The compiled decoder's answer in the reference's shape."""
    try:
        d = _delta.decode(text)
    except ValueError as e:
        return ("invalid", e.args[1], e.args[2])
    return OTHER if d is None else ("ok", d)


def _agree(text) -> tuple:
    """The same answer as the reference; one latitude: text orjson refuses but the JSON grammar
    allows (a number past a float, ``1e999``) may be rejected as a bad delta instead of left
    to the generic decoder — rejected either way, never accepted."""
    want, got = reference(text), _c(text)
    if want == OTHER and got[0] == "invalid":
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
        json.loads(text)
        return got
    assert got == want, (text[:300], got, want)
    return got


def test_the_real_captures_hold_deltas_of_both_sources():
    assert len(REAL) >= 240
    assert all(_agree(orjson.dumps(f))[0] == "ok" for f in REAL)


def test_real_delta_texts_as_sent():
    lines = [ln for ln in read_lines(COCKPIT) if b'"type":"orderbook_delta"' in ln]
    assert len(lines) == 245
    for ln in lines:
        prefix, _, rest = ln.partition(b',"frame":')
        text = rest[:-1]
        assert _agree(text)[0] == "ok"
        ms = orjson.loads(ln)["received_ms"]
        assert _delta.decode_line(ln, 0, len(ln), 1) == (ms * 1_000_000, *_delta.decode(text))


def _encodings(f: dict, rng: random.Random):
    yield json.dumps(f, ensure_ascii=False).encode()  # the stdlib: integers past 64 bits too
    yield json.dumps(f, indent=1).encode()  # whitespace everywhere
    yield json.dumps(f, ensure_ascii=True).encode()
    esc = json.dumps(f).replace('"market_ticker"', '"market_\\u0074icker"')
    yield esc.replace('"yes"', '"y\\u0065s"').encode()
    items = list(f.items())
    rng.shuffle(items)
    if isinstance(f.get("msg"), dict):
        body = list(f["msg"].items())
        rng.shuffle(body)
        items = [(k, dict(body) if k == "msg" else v) for k, v in items]
    yield json.dumps(dict(items)).encode()
    yield json.dumps(dict(items), separators=(",", ":")).encode().decode("utf-8")  # as str


def test_every_field_set_to_hostile_values_or_deleted():
    rng = random.Random(11)
    kinds = set()
    for f in rng.sample(REAL, 60):
        for key in FIELDS + TOP:
            for value in HOSTILE + ["<deleted>"]:
                g = json.loads(json.dumps(f))
                target = g if key in TOP else g["msg"]
                if value == "<deleted>":
                    target.pop(key, None)
                else:
                    target[key] = value
                for text in _encodings(g, rng):
                    kinds.add(_agree(text)[0])
    assert kinds == {"ok", "invalid", "other"}


def test_legacy_integer_era_and_unknown_nested_keys():
    rng = random.Random(12)
    for f in REAL[:80]:
        g = json.loads(json.dumps(f))
        m = g["msg"]
        m["price"] = rng.choice([1, 50, 99, 0, 100, -3])
        m["delta"] = rng.choice([1, -7, 0, 10**10, 10**10 + 1])
        if rng.random() < 0.5:
            m.pop("price_dollars", None)
            m.pop("delta_fp", None)
        m["future_field"] = {"deep": [[[[{"x": "\\\"\u00e9"}]]]], "n": -1.5e-3}
        g["extra"] = [None, True, {"": ""}]
        for text in _encodings(g, rng):
            _agree(text)


def _corrupt(text: bytes, rng: random.Random) -> bytes:
    b = bytearray(text)
    for _ in range(rng.randint(1, 3)):
        op, i = rng.randrange(4), rng.randrange(len(b))
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            del b[i:i + rng.randint(1, 8)]
        elif op == 2:
            b[i:i] = rng.choice([b'"', b"\\", b"{", b"}", b"[", b",", b":", b"\\u12",
                                 b"\xc3", b"\xff", b"\x00", b"0", b"-", b"e", b" "])
        else:
            b = b[:i]
        if not b:
            b = bytearray(b"{")
    return bytes(b)


def test_byte_level_corruptions_never_accept_what_the_reference_rejects():
    rng = random.Random(13)
    n_ok = 0
    for _ in range(20_000):
        text = _corrupt(orjson.dumps(rng.choice(REAL)), rng)
        n_ok += _agree(text)[0] == "ok"
    assert n_ok > 100  # some corruptions land in skipped values and still decode


def test_hostile_nesting_and_sizes():
    deep = b'{"type":"orderbook_delta","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert _c(deep) == OTHER  # too deep for the decoder: the generic path reports it
    huge = orjson.dumps({**REAL[0], "pad": "x" * 1_000_000})
    assert _agree(huge)[0] == "ok"
    for text in (b"", b"{", b"[]", b"null", b'"orderbook_delta"', b"{}", b"{} {}",
                 orjson.dumps(REAL[0]) + b" x", b"\xef\xbb\xbf" + orjson.dumps(REAL[0])):
        assert _c(text) == OTHER


def test_envelope_lines_carry_the_frame_decision():
    """decode_line (cockpit envelope) takes exactly the frames the reference accepts with a
    numeric time or none, and hands every other line back (None)."""
    rng = random.Random(14)
    for f in rng.sample(REAL, 40):
        for key in FIELDS:
            for value in rng.sample(HOSTILE, 8):
                g = json.loads(json.dumps(f))
                g["msg"][key] = value
                text = json.dumps(g).encode()
                line = b'{"received_ms":1786085188416,"frame":' + text + b"}"
                want = reference(text)
                got = _delta.decode_line(line, 0, len(line), 1)
                if want[0] == "ok" and not isinstance(want[1][6], str):
                    assert got == (1786085188416 * 1_000_000, *want[1])
                else:
                    assert got is None


def _events(pub: InMemoryPublisher) -> dict:
    out = {}
    for table, evs in pub.events.items():
        out[table] = [tuple(e) if table != "quarantine" else (e.recv_ns, e.raw) for e in evs]
    return out


def test_the_compiled_feed_path_emits_what_the_frame_by_frame_path_emits(tmp_path):
    """The cockpit capture with hostile lines mixed in (bad deltas, gaps, duplicates, a
    crossing delta, other types): ``feed`` (compiled ``process_lines``) and a plant fed one
    decoded frame at a time emit the same events, counters and books."""
    rng = random.Random(15)
    lines = read_lines(COCKPIT)
    out = []
    for i, ln in enumerate(lines):
        env = orjson.loads(ln)
        f = env["frame"]
        r = rng.random()
        if f["type"] != "orderbook_delta" or r > 0.4:
            out.append(ln)
            continue
        g = json.loads(json.dumps(f))
        if r < 0.1:  # a valid delta replaced by one that crosses its book (no bid at 0.99)
            g["msg"]["price_dollars"], g["msg"]["side"] = "0.9900", "no"
        elif r < 0.2:  # its time from the RFC3339 ts: the generic path
            del g["msg"]["ts_ms"]
        elif i == len(lines) * 9 // 10:
            g["seq"] += 3  # a gap: every book on the sid leaves live
        else:
            out.append(ln)
            if r < 0.25:
                g["seq"] -= rng.choice([0, 5])  # a duplicate
            elif r < 0.35:  # a bad delta (quarantined, the watermark stays)
                g["msg"][rng.choice(FIELDS)] = rng.choice(
                    [v for v in HOSTILE if not (type(v) is int and v >= 2**64)])
            else:
                out.append(_corrupt(ln, rng))
                continue
        out.append(orjson.dumps({"received_ms": env["received_ms"], "frame": g}))
    rec = tmp_path / "hostile.jsonl"
    rec.write_bytes(b"\n".join(out) + b"\n")

    fast_pub, slow_pub = InMemoryPublisher(), InMemoryPublisher()
    fast, slow = TickerPlant([fast_pub]), TickerPlant([slow_pub])
    assert feed(rec, fast) == len(out)
    for ln in out:  # the generic entry point, one line at a time
        try:
            obj = orjson.loads(ln)
        except orjson.JSONDecodeError:
            slow.process(ln)
            continue
        recv_ns, payload = unwrap(obj)
        slow.process(payload, recv_ns, ln)
    assert fast.stats.quarantined > 10 and fast.stats.crossed > 0 and fast.stats.duplicates > 0
    for attr in ("frames", "deltas", "bbo", "gaps", "duplicates", "quarantined", "crossed",
                 "book_errors", "deltas_ignored"):
        assert getattr(fast.stats, attr) == getattr(slow.stats, attr), attr
    fe, se = _events(fast_pub), _events(slow_pub)
    assert fe.keys() == se.keys()
    for table in fe:
        assert fe[table] == se[table], table  # quarantine records: the exact line kept
    assert {t: (b.state, b.yes, b.no) for t, b in fast.books.items()} == \
        {t: (b.state, b.yes, b.no) for t, b in slow.books.items()}


@pytest.mark.parametrize("kind, wrap", [
    (0, lambda f, ms: orjson.dumps(f)),
    (2, lambda f, ms: orjson.dumps({"recv_ts_ns": ms * 1_000_000,
                                    "raw": orjson.dumps(f).decode()})),
    (3, lambda f, ms: orjson.dumps({"channel": "orderbook_delta", "message": f,
                                    "received_ms": ms})),
])
def test_other_envelopes(kind, wrap):
    for f in REAL[:50]:
        line = wrap(f, 1786085188416)
        got = _delta.decode_line(line, 0, len(line), kind)
        want = _delta.decode(orjson.dumps(f))
        assert got == ((None if kind == 0 else 1786085188416 * 1_000_000), *want)
