"""Text from the wire, made safe to put in a log line or a one-line CLI message.

A bad frame can hold anything: newlines (a forged second log line), ANSI escape sequences (a
terminal that changes colour or title), NULs, invalid UTF-8, Unicode bidi overrides. Log
lines that quote such input go through :func:`escape_for_log`, which returns printable ASCII
only, so what reaches a terminal, a log file or a log shipper is exactly one inert line.
"""

from __future__ import annotations

from typing import Any

__all__ = ["error_line", "escape_for_log", "one_line", "sink_failures_line"]

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MARK = "..."


def _escape_char(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): show the byte
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x100:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def escape_for_log(text: Any, limit: int = 200) -> str:
    """``text`` as printable ASCII of at most ``limit`` characters, for a log line.

    ``text``: ``str``, or ``bytes``/``bytearray``/``memoryview`` (decoded as UTF-8; a byte
    that is not UTF-8 comes out as ``\\xNN``); anything else is quoted as its ``repr()``.
    Printable ASCII (space to ``~``) is kept as is; a backslash is doubled; ``\\n``, ``\\r``
    and ``\\t`` are written as such; every other character as ``\\xNN``, ``\\uNNNN`` or
    ``\\UNNNNNNNN`` (control characters, ESC of ANSI sequences, DEL, and all non-ASCII). So
    the result never contains a raw control byte or a line break, and the original text can
    be read back unambiguously. When the escaped text is longer than ``limit`` it is cut on a
    character boundary (never inside an escape) and ends with ``...``, the whole staying
    within ``limit`` characters. Only the first ``limit`` characters (``4 * limit`` bytes) of
    the input are looked at, so quoting a 10 MB frame costs no more than quoting a short one.
    Never raises (``limit`` < 0 counts as 0).
    """
    limit = max(0, limit)
    if isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text[: 4 * limit + 4])  # a UTF-8 character is at most 4 bytes
        cut_input = len(text) > len(raw)
        s = raw.decode("utf-8", "surrogateescape")
    else:
        if not isinstance(text, str):
            try:
                text = repr(text)
            except Exception as e:  # noqa: BLE001 - a log helper must not raise
                text = f"<unrepresentable {type(text).__name__}: {type(e).__name__}>"
        s = text[: limit + 1]
        cut_input = len(text) > len(s)
    if not cut_input and len(s) <= limit and s.isascii() and s.isprintable() and "\\" not in s:
        return s  # the common case: nothing to escape, nothing to cut
    out: list[str] = []
    n = 0
    for ch in s:
        piece = ch if " " <= ch <= "~" and ch != "\\" else _escape_char(ch)
        n += len(piece)
        out.append(piece)
        if n > limit:
            break
    if n <= limit and not cut_input:
        return "".join(out)
    keep = max(0, limit - len(_MARK))
    while out and n > keep:
        n -= len(out.pop())
    return "".join(out) + _MARK[: limit - n]


def one_line(text: Any, limit: int = 300) -> str:
    """An error or detail text as one log line: runs of whitespace (line breaks included)
    become one space, then :func:`escape_for_log` (printable ASCII, at most ``limit``
    characters). For exception messages, which are ours and mostly readable already."""
    return escape_for_log(" ".join(str(text).split()), limit)


def error_line(err: BaseException, limit: int = 500) -> str:
    """An exception as the one line a user reads: its message, without its class name
    (``"[Errno 28] No space left on device"``), on one escaped line (:func:`one_line`); an
    exception with an empty message gives ``"an error without a message"``. Used for failed
    sinks, the QuestDB writer's warnings, health and quarantine records (issue 12 §7: no
    exception class names reach users)."""
    text = str(err).strip()
    return one_line(text if text else "an error without a message", limit)


def sink_failures_line(failures: dict[str, str]) -> str:
    """``{"parquet": "[Errno 28] No space left on device"}`` → the one line a command prints
    before exiting 1: ``sink parquet failed: [Errno 28] No space left on device`` (several
    sinks joined with ``; ``, in the dict's order). ``""`` if none."""
    return "; ".join(f"sink {one_line(name, 60)} failed: {one_line(err)}"
                     for name, err in failures.items())
