"""Preview of Kalshi's public daily market-data report without loading it whole.

The report (``reporting/market_data_YYYY-MM-DD.json`` in Kalshi's public docs bucket) is one
JSON array with one object per market and day — fields seen in the wild: ``date``,
``ticker_name``, ``report_ticker`` (series), ``payout_type``, ``open_interest``,
``daily_volume``, ``block_volume``, ``high``, ``low``, ``status`` (numbers sometimes as
strings). Recent days are hundreds of MB, so the array is parsed incrementally:

:func:`iter_json_array` reads the byte stream in blocks, decodes UTF-8 incrementally and takes
one element at a time off a sliding text buffer with ``json.JSONDecoder.raw_decode`` (Python
docs "json"); memory is the buffer (a block plus the element being parsed), never the file.
gzip input is detected by its magic bytes. :class:`ReportSummary` folds the elements into
totals as they pass. Distinct tickers are counted exactly by 64-bit hash (collision odds
~n²/2⁶⁵, negligible for millions of markets) in a compact table of 8-byte slots
(:class:`DistinctCounter`), not by keeping the strings.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

BLOCK = 1 << 20
_WS = " \t\r\n"
_NON_WS = re.compile(r"[^ \t\r\n]")
_DELIM = ",]" + _WS
#: numeric report fields summed in the summary
SUM_FIELDS = ("daily_volume", "block_volume", "open_interest")


class ReportFormatError(ValueError):
    """The input is not a JSON array (or is truncated/malformed at ``offset``, in chars)."""


def _blocks(src: BinaryIO | Iterable[bytes], block: int) -> Iterator[bytes]:
    if hasattr(src, "read"):
        while True:
            b = src.read(block)
            if not b:
                return
            yield b
    else:
        for b in src:
            if b:
                yield b


def _maybe_gunzip(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Pass blocks through, gunzipping on the fly when the stream starts with gzip magic
    (concatenated members too). Output comes in pieces of at most :data:`BLOCK` bytes however
    well the input compresses. Raises :class:`ReportFormatError` for a corrupt gzip stream."""
    first = b""
    for b in blocks:  # enough bytes to see the magic
        first += b
        if len(first) >= 2:
            break
    if not first.startswith(b"\x1f\x8b"):
        if first:
            yield first
        yield from blocks
        return
    d = zlib.decompressobj(wbits=31)
    try:
        for b in _chain(first, blocks):
            data = b
            while data:
                if d.eof:  # the next gzip member
                    d = zlib.decompressobj(wbits=31)
                out = d.decompress(data, BLOCK)
                if out:
                    yield out
                data = d.unused_data if d.eof else d.unconsumed_tail
        tail = d.flush()
    except zlib.error as e:
        raise ReportFormatError(f"corrupt gzip stream: {e}") from None
    if not d.eof:
        raise ReportFormatError("truncated gzip stream")
    if tail:
        yield tail


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _maybe_cut(value: Any, buf: str, end: int) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False  # strings, objects, arrays and literals end with their own delimiter
    tail = buf[end:end + 8]
    return len(tail) < 8 and not any(c in _DELIM for c in tail)


def iter_json_array(src: BinaryIO | Iterable[bytes], *, block: int = BLOCK) -> Iterator[Any]:
    """Yield the elements of a top-level JSON array read incrementally from ``src`` (a binary
    file object or an iterable of byte blocks, e.g. ``httpx.Response.iter_bytes()``).

    Raises :class:`ReportFormatError` if the input is not an array or is malformed or
    truncated (the offset is in characters from the start).
    """
    blocks = _maybe_gunzip(_blocks(src, block))
    dec = codecs.getincrementaldecoder("utf-8-sig")()
    raw = json.JSONDecoder().raw_decode
    buf = ""
    pos = 0          # parse position in buf
    base = 0         # chars dropped from the front of buf so far (for error offsets)
    eof = False

    def more() -> bool:
        nonlocal buf, pos, base, eof
        if eof:
            return False
        b = next(blocks, None)
        if b is None:
            eof = True
            buf += dec.decode(b"", final=True)
        else:
            buf += dec.decode(b)
        if pos > BLOCK:  # slide the window: drop what has been consumed
            base += pos
            buf = buf[pos:]
            pos = 0
        return True

    def skip_ws() -> bool:
        """Advance past whitespace; False at end of input."""
        nonlocal pos
        while True:
            m = _NON_WS.search(buf, pos)
            if m is not None:
                pos = m.start()
                return True
            pos = len(buf)
            if not more():
                return False

    if not skip_ws():
        raise ReportFormatError("empty input: expected a JSON array")
    if buf[pos] != "[":
        raise ReportFormatError(f"expected a JSON array, found {buf[pos]!r} at offset "
                                f"{base + pos}")
    pos += 1
    if not skip_ws():
        raise ReportFormatError(f"truncated input at offset {base + pos}")
    if buf[pos] == "]":
        pos += 1
    else:
        while True:
            while True:
                try:
                    value, end = raw(buf, pos)
                    # a number may be cut by the buffer's end ("12|3", "2.|5", "1e|-3") and
                    # still parse: accept it only once a delimiter (or the end) follows
                    if eof or not _maybe_cut(value, buf, end):
                        break
                except json.JSONDecodeError as e:
                    if eof:
                        raise ReportFormatError(f"malformed JSON at offset {base + e.pos}: "
                                                f"{e.msg}") from None
                more()  # (at the end of input this sets eof: one last attempt)
            pos = end
            yield value
            if not skip_ws():
                raise ReportFormatError(f"truncated input at offset {base + pos}: "
                                        f"missing ']'")
            c = buf[pos]
            pos += 1
            if c == "]":
                break
            if c != ",":
                raise ReportFormatError(f"expected ',' or ']' at offset {base + pos - 1}, "
                                        f"found {c!r}")
            if not skip_ws():
                raise ReportFormatError(f"truncated input at offset {base + pos}")
    if skip_ws():
        raise ReportFormatError(f"unexpected data after the array at offset {base + pos}")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class DistinctCounter:
    """Exact count of distinct hashable values by their 64-bit ``hash()``, in an
    open-addressing table of 8-byte slots (``array('q')``, load ≤ 1/2): ~16 bytes per distinct
    value, where a Python ``set`` of the strings costs ~100."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self._table = array("q", bytes(8 * capacity))
        self._mask = capacity - 1
        self.count = 0

    def add(self, value: Any) -> None:
        h = hash(value) or 1  # 0 marks an empty slot
        t, mask = self._table, self._mask
        i = h & mask
        while True:
            v = t[i]
            if v == h:
                return
            if v == 0:
                t[i] = h
                self.count += 1
                if 2 * self.count > mask:
                    self._grow()
                return
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._table
        self._table = array("q", bytes(16 * len(old)))
        self._mask = 2 * len(old) - 1
        t, mask = self._table, self._mask
        for h in old:
            if h:
                i = h & mask
                while t[i]:
                    i = (i + 1) & mask
                t[i] = h

    def __len__(self) -> int:
        return self.count


@dataclass
class ReportSummary:
    """Running summary of report rows: ``rows``; ``tickers`` (distinct ``ticker_name``) and
    ``series`` (distinct ``report_ticker``); ``date_min``/``date_max``; ``totals`` of
    :data:`SUM_FIELDS` (contracts); ``status`` counts; ``fields`` seen (first seen order);
    ``non_objects`` (array elements that are not objects)."""

    rows: int = 0
    date_min: str | None = None
    date_max: str | None = None
    totals: dict[str, float] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    fields: dict[str, None] = field(default_factory=dict)
    non_objects: int = 0
    _tickers: DistinctCounter = field(default_factory=DistinctCounter, repr=False)
    _series: DistinctCounter = field(default_factory=DistinctCounter, repr=False)

    def add(self, row: Any) -> None:
        """Fold one report element into the summary."""
        self.rows += 1
        if not isinstance(row, dict):
            self.non_objects += 1
            return
        for k in row:
            if k not in self.fields:
                self.fields[k] = None
        t = row.get("ticker_name")
        if t is not None:
            self._tickers.add(t)
        s = row.get("report_ticker")
        if s is not None:
            self._series.add(s)
        d = row.get("date")
        if isinstance(d, str):
            if self.date_min is None or d < self.date_min:
                self.date_min = d
            if self.date_max is None or d > self.date_max:
                self.date_max = d
        for f in SUM_FIELDS:
            v = _num(row.get(f))
            if v is not None:
                self.totals[f] = self.totals.get(f, 0) + v
        st = row.get("status")
        if st is not None:
            self.status[str(st)] = self.status.get(str(st), 0) + 1

    @property
    def tickers(self) -> int:
        return len(self._tickers)

    @property
    def series(self) -> int:
        return len(self._series)

    def to_json(self) -> dict:
        return {"rows": self.rows, "tickers": self.tickers, "series": self.series,
                "date_min": self.date_min, "date_max": self.date_max,
                "totals": self.totals, "status": dict(sorted(self.status.items())),
                "fields": list(self.fields), "non_objects": self.non_objects}


def open_source(file: str | Path | None = None, url: str | None = None,
                *, timeout_s: float = 60.0) -> "ReportSource":
    """A context manager yielding the byte blocks of ``file`` or ``url`` (httpx streaming,
    redirects followed). Raises ``OSError`` (file), ``httpx.HTTPError`` (url)."""
    return ReportSource(file, url, timeout_s)


class ReportSource:
    """See :func:`open_source`."""

    def __init__(self, file, url, timeout_s) -> None:
        if (file is None) == (url is None):
            raise ValueError("give exactly one of file or url")
        self.file, self.url, self.timeout_s = file, url, timeout_s
        self._cm = None

    def __enter__(self) -> Iterable[bytes] | BinaryIO:
        if self.file is not None:
            self._cm = open(self.file, "rb")
            return self._cm
        import httpx

        self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=True)
        try:
            self._cm = self._client.stream("GET", self.url)
            resp = self._cm.__enter__()
            try:
                resp.raise_for_status()
            except BaseException:
                self._cm.__exit__(None, None, None)
                raise
        except BaseException:
            self._client.close()
            raise
        return resp.iter_bytes(BLOCK)

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self._cm.close()
        else:
            self._cm.__exit__(*exc)
            self._client.close()


def summarize(src: BinaryIO | Iterable[bytes], first: int = 10) -> tuple[ReportSummary, list]:
    """Stream the whole report: its summary and its ``first`` rows."""
    s = ReportSummary()
    head: list = []
    for row in iter_json_array(src):
        s.add(row)
        if len(head) < first:
            head.append(row)
    return s, head


__all__ = ["ReportFormatError", "ReportSummary", "iter_json_array", "open_source", "summarize"]
