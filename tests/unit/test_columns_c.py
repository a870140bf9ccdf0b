"""The C column reader (kalshi_platform/storage/_columns.c) against a Python oracle: every
op's values (floor division, ``int / int`` at the 2^53 edge, mid/spread, nulls at any
position, UTF-8), its (min, max), and what it refuses. The oracle is the obvious per-value
Python; ``schema.Table.rows`` agreement is tested in test_parquet_columnar.py."""

from __future__ import annotations

import random
import struct

import pytest

from kalshi_platform.storage import _columns

E53 = 2**53


def oracle(code, a, b, k):
    if a is None or (code in "md" and b is None):
        return None
    return {"s": lambda: a, "b": lambda: a, "q": lambda: a, "u": lambda: a // k,
            "f": lambda: a / k, "m": lambda: (a + b) / k, "d": lambda: (b - a) / k}[code]()


def decode(code, n, col):
    """The C output buffers back to Python values (the oracle's form)."""
    nulls, valid, *bufs = col

    def ok(i):
        return valid is None or valid[i >> 3] >> (i & 7) & 1

    if code == "s":
        offs = struct.unpack(f"<{n + 1}i", bufs[0])
        vals = [bufs[1][offs[i]:offs[i + 1]].decode() for i in range(n)]
    elif code == "b":
        vals = [bool(bufs[0][i >> 3] >> (i & 7) & 1) for i in range(n)]
    else:
        vals = list(struct.unpack(f"<{n}{'q' if code in 'qu' else 'd'}", bufs[0]))
    out = [v if ok(i) else None for i, v in enumerate(vals)]
    assert nulls == out.count(None)
    assert valid is None or nulls  # a bitmap only when there is a null
    return out


def check(code, values, k=0, pair=None):
    rows = [(v, w) for v, w in zip(values, pair or values)]
    (col,) = _columns.read(rows, 2, ((code, 0, 1 if code in "md" else -1, False, k),))
    want = [oracle(code, a, b, k) for a, b in rows]
    got = decode(code, len(rows), col)
    assert got == want
    if code in "fmd":  # bit for bit (a -0.0 or another rounding would differ)
        assert [None if g is None else struct.pack("<d", g) for g in got] == \
               [None if w is None else struct.pack("<d", w) for w in want]
    if code in "qu":
        present = [w for w in want if w is not None]
        assert col[3:] == ((min(present), max(present)) if present else (None, None))


EDGE = [0, 1, -1, 999, 1000, 1001, -999, -1000, -1001, E53, -E53, E53 - 1, 2**62, -(2**62),
        2**63 - 1, -(2**63), None]


@pytest.mark.parametrize("k", [1, 1000, 86_400_000_000])
def test_floor_division_and_int64(k):
    check("u", EDGE, k)
    check("q", EDGE)


@pytest.mark.parametrize("k", [100, 1_000_000, 2_000_000])
def test_true_division_up_to_2_53(k):
    rnd = random.Random(k)
    vals = [v for v in EDGE if v is None or abs(v) <= E53]
    vals += [rnd.randrange(-E53, E53 + 1) for _ in range(2_000)] + [None] * 50
    rnd.shuffle(vals)
    check("f", vals, k)
    pair = [None if v is None else rnd.randrange(-2**52, 2**52) for v in vals]
    halves = [None if v is None else v // 2 for v in vals]
    check("m", halves, k, pair)
    check("d", halves, k, pair)


@pytest.mark.parametrize("first_null", [0, 1, 7, 8, 9, 63])
def test_nulls_anywhere_and_strings(first_null):
    vals = ["é✓", "", "KXBTC-26AUG07-T1", "a" * 5000] * 20
    for i in range(first_null, len(vals), 11):
        vals[i] = None
    check("s", vals)
    check("b", [None if v is None else len(v) % 2 == 0 for v in vals])
    check("q", [None if v is None else len(v) for v in vals])


@pytest.mark.parametrize("code,bad", [
    ("q", 1.0), ("q", True), ("q", 2**63), ("q", "1"), ("f", E53 + 1), ("f", -E53 - 1),
    ("s", b"x"), ("s", "\ud800"), ("b", 1), ("u", 2**64)])
def test_refuses_what_it_does_not_take(code, bad):
    with pytest.raises((TypeError, ValueError, OverflowError, UnicodeEncodeError)):
        _columns.read([(1, 1), (bad, 1)], 2, ((code, 0, -1, False, 1000),))


def test_refuses_a_null_in_a_strict_field_and_malformed_calls():
    with pytest.raises(ValueError):
        _columns.read([(1,), (None,)], 1, (("u", 0, -1, True, 1000),))
    with pytest.raises(ValueError):
        _columns.read([(None, 1)], 2, (("m", 0, 1, True, 2),))
    with pytest.raises(TypeError):
        _columns.read([(1, 2, 3)], 2, (("q", 0, -1, False, 0),))  # wrong width
    with pytest.raises(TypeError):
        _columns.read([[1, 2]], 2, (("q", 0, -1, False, 0),))  # not a tuple
    with pytest.raises(ValueError):
        _columns.read([(1, 2)], 2, (("q", 5, -1, False, 0),))  # field out of range
    with pytest.raises(ValueError):
        _columns.read([(1, 2)], 2, (("f", 0, -1, False, 0),))  # no divisor
    with pytest.raises(ValueError):
        _columns.read([(1, 2)], 2, (("x", 0, -1, False, 0),))
    (col,) = _columns.read([], 1, (("s", 0, -1, False, 0),))
    assert col == (0, None, b"\0\0\0\0", b"")


def test_split_by_exact_type_in_order_with_first_positions():
    class Sub(int):
        pass

    evs = [1, "a", 2.0, 3, None, Sub(4), "b"]
    parts, first = _columns.split(evs, (int, str, bytes))
    assert parts == [[1, 3], ["a", "b"], [], [2.0, None, Sub(4)]]
    assert [type(e) for e in parts[3]] == [float, type(None), Sub]  # exact types only
    assert first == [0, 1, -1, 2]
    assert _columns.split((), ()) == ([[]], [-1])


def test_positions_of_exact_types():
    class Sub(int):
        pass

    assert _columns.positions([1, "a", Sub(2), 3, b"x", "b"], (int, bytes)) == [0, 3, 4]
    assert _columns.positions([], (int,)) == [] == _columns.positions([1], ())


def test_refuses_malformed_ops():
    """An op that is not a tuple is a TypeError (not the SystemError of PyArg_ParseTuple);
    the code is one character (``"qq"`` is not read as ``"q"``)."""
    with pytest.raises(TypeError):
        _columns.read([(1, 2)], 2, (["q", 0, -1, False, 0],))
    for code in ("qq", ""):
        with pytest.raises((TypeError, ValueError)):
            _columns.read([(1, 2)], 2, ((code, 0, -1, False, 0),))


@pytest.mark.parametrize("code", ["f", "m", "d"])
def test_refuses_a_divisor_beyond_2_53(code):
    """``(double)k`` rounds beyond 2^53, and the quotient then is not Python's: 1 / (2^53+1)
    is 2^-53 - 2^-106 in Python, 2^-53 with a rounded divisor."""
    with pytest.raises(ValueError):
        _columns.read([(1, 0)], 2, ((code, 0, 1, False, E53 + 1),))
    check(code, [1, -3, None, E53 // 2], E53)  # 2^53 itself is exact


def test_empty_strings_before_any_character():
    """Empty strings first: no character buffer yet (the sanitizer build checks that no
    memcpy reaches a NULL buffer)."""
    check("s", ["", "", None, "", "ab", ""])
    check("s", ["", ""])
