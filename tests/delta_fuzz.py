"""A coverage-free fuzz run of the compiled delta path (``kalshi_platform/ingestion/_delta.c``):
not a test (pytest does not collect it), a tool to run by hand after changing the C.

``python tests/delta_fuzz.py [seconds] [plant_seconds]`` (``SEED`` env for another stream):

* ``decode`` against ``tests/delta_reference.py`` on the real deltas of ``data/`` and
  ``../shared/data/real`` cut at every byte offset, then random mutations (byte flips, cuts,
  JSON tokens, escapes, lone surrogates, invalid UTF-8, NUL, huge numbers, repeated keys, deep
  nesting, random bytes, str input), plus ``decode_line`` on the four envelopes. Accepted
  differences: a repeated key the reference reads last-wins is rejected by C (stricter), or
  handed to the generic decoder, which must then raise ``DecodeError``; nesting past 1000
  levels goes to the generic decoder.
* the plant: ``feed`` (compiled ``feed_lines``) against one frame at a time on slices of the
  cockpit capture with hostile lines mixed in: the same events, counters and books.

Prints the counts per outcome; exits 1 on any mismatch. Run it under ASAN too (a clone
rebuilt with ``CFLAGS="-O1 -g -fsanitize=address,undefined"``, then ``LD_PRELOAD=$(gcc
-print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc``).
"""
import json, os, random, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.setrecursionlimit(20000)
import orjson
from conftest import BUNDLED, COCKPIT, read_lines, shared_ws_captures
from delta_reference import OTHER, reference
from test_delta_decoder import FIELDS, HOSTILE, _events

from kalshi_platform.ingestion import _delta
from kalshi_platform.ingestion.recording import feed, iter_frames, unwrap
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

def real():
    out, seen = [], set()
    for path in (*BUNDLED, *shared_ws_captures()):
        for _, payload in iter_frames(path):
            f = orjson.loads(payload) if isinstance(payload, str) else payload
            if isinstance(f, dict):
                k = orjson.dumps(f)
                if k not in seen:
                    seen.add(k); out.append(k)
    return out

def c_ans(text):
    try:
        d = _delta.decode(text)
    except ValueError as e:
        assert isinstance(e.args[0], str) and len(e.args) == 3, e.args
        return ("invalid", e.args[1], e.args[2])
    return OTHER if d is None else ("ok", d)

def has_dup_keys(text):
    dup = []
    def hook(pairs):
        ks = [k for k, _ in pairs]
        if len(ks) != len(set(ks)): dup.append(1)
        return dict(pairs)
    try:
        json.loads(text, object_pairs_hook=hook)
    except Exception:
        return False
    return bool(dup)

def max_depth(text):
    b = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    d = m = 0
    for ch in b:
        if ch in b"[{": d += 1; m = max(m, d)
        elif ch in b"]}": d -= 1
    return m

def dup_mutate(b, rng):
    """A repeated key: a "key":value pair of the frame or its msg appended again, altered."""
    try:
        f = orjson.loads(b)
    except orjson.JSONDecodeError:
        return b
    if not isinstance(f, dict) or not isinstance(f.get("msg"), dict):
        return b
    tgt = f if rng.random() < 0.4 else f["msg"]
    k = rng.choice(list(tgt))
    v = rng.choice([None, 0, 1, 2**63, "yes", "no", "0.5", "1.00", "", {}, {"side": "no"},
                    "orderbook_delta", "x", 1786085188416, tgt[k]])
    pair = orjson.dumps({k: v})[1:-1]
    body = orjson.dumps(tgt)
    body2 = (body[:-1] + b"," + pair + b"}") if rng.random() < 0.5 else (b"{" + pair + b"," + body[1:])
    if tgt is f:
        return body2
    return orjson.dumps({**f, "msg": None}).replace(b'"msg":null', b'"msg":' + body2)

BAD = 0
def check(text, stats):
    global BAD
    want, got = reference(text), c_ans(text)
    if got == want:
        stats[got[0]] = stats.get(got[0], 0) + 1
        return
    if want == OTHER and got[0] == "invalid":
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            stats["latitude"] = stats.get("latitude", 0) + 1
            return
    if got == OTHER and want[0] == "invalid" and max_depth(text) > 1000:
        stats["depth_to_generic"] = stats.get("depth_to_generic", 0) + 1
        return
    if got == OTHER and want != OTHER and has_dup_keys(text):
        # handed to the generic decoder: it must refuse the frame loudly, never drop it
        from kalshi_platform.ingestion.messages import DecodeError, decode_json
        try:
            r = decode_json(text)
            print("DUP-GENERIC-ACCEPTED", repr(text[:300]), r, flush=True)
        except DecodeError:
            stats["dup_to_generic"] = stats.get("dup_to_generic", 0) + 1
            return
    if got[0] == "invalid" and want[0] == "ok" and has_dup_keys(text):
        stats["dup_stricter"] = stats.get("dup_stricter", 0) + 1
        return
    BAD += 1
    if BAD < 30:
        print("MISMATCH", repr(text[:400]), got, want, flush=True)

TOK = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\\u", b"\\ud800", b"\\udc00",
       b"\\ud83d\\ude00", b"\\u0000", b"\\ud800\\u0041", b"\xc3", b"\xff", b"\xed\xa0\x80",
       b"\xf4\x90\x80\x80", b"\xe0\x80\xaf", b"\x00", b"0", b"-", b"e", b"E+", b".", b" ",
       b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
       b"18446744073709551616", b"1e999", b"null", b"true", b'"orderbook_delta"',
       b'"msg":{}', b'"sid":1', b'"seq":', b'"ts":"2026-01-01T00:00:00Z"', b'"ts_ms":',
       b'"price_dollars":"0.5"', b'"delta_fp":"-0.00"', b'"side":"no"', b"\t", b"\r\n"]

def mutate(b, rng):
    b = bytearray(b)
    for _ in range(rng.randint(1, 4)):
        if not b: b = bytearray(b"{")
        op, i = rng.randrange(7), rng.randrange(len(b) + 1)
        if op == 0 and i < len(b): b[i] = rng.randrange(256)
        elif op == 1: del b[i:i + rng.randint(1, 8)]
        elif op == 2: b[i:i] = rng.choice(TOK)
        elif op == 3: b = b[:i]
        elif op == 4:  # duplicate a slice (duplicate keys)
            j = rng.randrange(len(b) + 1); lo, hi = min(i, j), max(i, j)
            k = rng.randrange(len(b) + 1); b[k:k] = b[lo:hi][:64]
        elif op == 5 and i < len(b): b[i] ^= 1 << rng.randrange(8)
        else: b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    return bytes(b)

def envelope_check(frame, rng):
    ms = rng.choice([1786085188416, 0, -1, 2**62, 946684800000, 4102444800000, None])
    kind = rng.randrange(4)
    fr = frame.decode("utf-8", "surrogateescape") if kind == 2 else None
    if kind == 0: line = frame
    elif kind == 1: line = b'{"received_ms":%s,"frame":' % str(ms).encode() + frame + b"}"
    elif kind == 2:
        try: line = orjson.dumps({"recv_ts_ns": ms * 1000000 if ms is not None else None, "raw": frame.decode()})
        except Exception: return
    else: line = b'{"channel":"orderbook_delta","message":' + frame + b',"received_ms":%s}' % str(ms).encode()
    if rng.random() < 0.3: line = mutate(line, rng)
    pad = bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
    chunk = pad + line + b"\n" + pad
    r = _delta.decode_line(chunk, len(pad), len(pad) + len(line), kind)
    if r is not None:  # must agree with the frame decoder where the line is a plain envelope
        assert isinstance(r, tuple) and len(r) == 8
        assert r[4] in ("yes", "no") and 1 <= r[5] <= 999999 and r[6] != 0

def one(seed, tmp):
    rng = random.Random(seed)
    lines = read_lines(COCKPIT)
    lo = rng.randrange(len(lines)); lines = lines[lo:lo + rng.randint(50, 600)]
    out = list(read_lines(COCKPIT)[:3])
    for ln in lines:
        env = orjson.loads(ln); f = env["frame"]; r = rng.random()
        if f["type"] != "orderbook_delta" or r > 0.5:
            out.append(ln); continue
        g = json.loads(json.dumps(f))
        if r < 0.05: g["msg"]["price_dollars"], g["msg"]["side"] = rng.choice(["0.99", "0.01", "0.5"]), rng.choice(["yes", "no"])
        elif r < 0.1: g["msg"].pop("ts_ms", None)
        elif r < 0.13: g["seq"] += rng.choice([1, 2, 3])
        elif r < 0.2: out.append(ln); g["seq"] -= rng.choice([0, 1, 5])
        elif r < 0.3: g["msg"][rng.choice(FIELDS)] = rng.choice([v for v in HOSTILE if not (type(v) is int and v >= 2**64)])
        elif r < 0.35: g["msg"]["delta_fp"] = rng.choice(["-99999.00", "10000000000.00", "-1.00", "5000000000.00"])
        elif r < 0.45: out.append(mutate(ln, rng).replace(b"\n", b" ")); continue
        else: out.append(b"   "); out.append(ln); continue
        out.append(orjson.dumps({"received_ms": env["received_ms"], "frame": g}))
    rec = Path(tmp) / f"h{seed}.jsonl"
    rec.write_bytes(b"\n".join(out) + b"\n")
    fp, sp = InMemoryPublisher(), InMemoryPublisher()
    fast, slow = TickerPlant([fp]), TickerPlant([sp])
    feed(rec, fast)
    for ln in out:
        if not ln.strip(): continue
        ln = ln.rstrip(b"\r\n")  # as the recording reader keeps a line
        try: obj = orjson.loads(ln)
        except orjson.JSONDecodeError:
            slow.process(ln); continue
        recv_ns, payload = unwrap(obj)
        slow.process(payload, recv_ns, ln)
    for a in ("frames", "deltas", "bbo", "gaps", "duplicates", "quarantined", "crossed", "book_errors", "deltas_ignored"):
        assert getattr(fast.stats, a) == getattr(slow.stats, a), (seed, a, getattr(fast.stats, a), getattr(slow.stats, a))
    assert _events(fp) == _events(sp), seed
    assert {t: (b.state, b.yes, b.no) for t, b in fast.books.items()} == {t: (b.state, b.yes, b.no) for t, b in slow.books.items()}, seed

def plant(seconds):
    t0, n, bad = time.time(), 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        while time.time() - t0 < seconds:
            try:
                one(1000 + n, tmp)
            except AssertionError as e:
                bad += 1
                if bad < 10:
                    print("PLANT MISMATCH", str(e)[:500], flush=True)
            n += 1
    print("plant runs", n, "mismatches", bad, flush=True)
    return bad

def main(seconds):
    rng = random.Random(int(os.environ.get("SEED", "1")))
    frames = real()
    deltas = [f for f in frames if b'"orderbook_delta"' in f]
    print("frames", len(frames), "deltas", len(deltas), flush=True)
    stats = {}
    # truncation at every byte offset of a sample of real deltas (also as str)
    for f in rng.sample(deltas, min(60, len(deltas))):
        for i in range(len(f) + 1):
            check(f[:i], stats)
            check(f[i:], stats)
        s = f.decode()
        for i in range(0, len(s) + 1, 3):
            check(s[:i], stats)
    print("truncations done", stats, flush=True)
    t0 = time.time(); n = 0
    while time.time() - t0 < seconds:
        r = rng.random()
        if r < 0.1:
            text = dup_mutate(rng.choice(deltas), rng)
            if rng.random() < 0.3: text = mutate(text, rng)
        elif r < 0.75:
            base = rng.choice(deltas if rng.random() < 0.9 else frames)
            text = mutate(base, rng)
        elif r < 0.85:
            text = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        elif r < 0.9:
            d = rng.randint(1, 1200)
            text = b'{"type":"orderbook_delta","x":' + b"[" * d + b"]" * d + b',"msg":{}}'
        else:
            text = mutate(rng.choice(deltas), rng)
            try: text = text.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError: text = text.decode("latin-1")
        check(text, stats)
        if isinstance(text, bytes) and rng.random() < 0.3:
            envelope_check(text, rng)
        n += 1
    print("cases", n, "stats", stats, "mismatches", BAD, flush=True)
    return BAD

if __name__ == "__main__":
    import logging
    logging.disable(logging.CRITICAL)  # the plant's quarantine/gap lines
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    bad = main(secs) + plant(float(sys.argv[2]) if len(sys.argv) > 2 else secs / 2)
    sys.exit(1 if bad else 0)
