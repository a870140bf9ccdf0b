"""Parse ILP text lines (QuestDB docs "ILP overview", line protocol syntax) into comparable
records, for tests that check what a writer sent, independent of line and column order.

``table,sym=v,... col=val,... ts`` with ``\\`` escapes of ``,`` `` `` ``=`` in names and
symbol values, and ``"..."`` string fields (``\\"`` and ``\\\\`` escaped inside). A record is
``(table, symbols, columns, ts)``: ``symbols`` and ``columns`` are sorted tuples of
``(name, raw value text)`` (``1i``, ``0.43``, ``"abc"``, ``123t`` as sent), ``ts`` the
designated timestamp text as sent (nanoseconds in ILP v1).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Iterable


def _split_unescaped(s: str, sep: str) -> list[str]:
    out, cur, i, in_str = [], [], 0, False
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c == '"':
            in_str = not in_str
        if c == sep and not in_str:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def parse_line(line: bytes | str) -> tuple:
    """One ILP line → ``(table, symbols, columns, ts)`` (see module doc). Raises
    ``ValueError`` for a line that is not ``series fields [timestamp]``."""
    s = line.decode() if isinstance(line, bytes) else line
    parts = _split_unescaped(s, " ")
    if len(parts) not in (2, 3):
        raise ValueError(f"not an ILP line: {s!r}")
    series = _split_unescaped(parts[0], ",")
    table, syms = series[0], series[1:]

    def kv(items: list[str]) -> tuple:
        pairs = []
        for it in items:
            k, _, v = it.partition("=")
            pairs.append((k, v))
        return tuple(sorted(pairs))

    cols = _split_unescaped(parts[1], ",")
    return (table, kv(syms), kv(cols), parts[2] if len(parts) == 3 else None)


def records(lines: Iterable[bytes]) -> Counter:
    """The multiset of parsed records of ``lines``."""
    return Counter(parse_line(ln) for ln in lines if ln)


def digest(lines: Iterable[bytes]) -> tuple[int, str]:
    """``(rows, sha256)`` of the sorted multiset of records: the same values in any order
    give the same digest."""
    recs = sorted(parse_line(ln) for ln in lines if ln)
    h = hashlib.sha256()
    for r in recs:
        h.update(repr(r).encode())
        h.update(b"\n")
    return len(recs), h.hexdigest()
