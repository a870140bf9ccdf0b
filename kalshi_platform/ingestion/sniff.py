"""What counts as a Kalshi recording, decided cheaply before anything is fed.

A file is a recording when at least one of its lines is recognisably a frame
(:func:`is_frame_line`: a known envelope, or a bare frame with a string ``type``), however many
other lines are bad: those are quarantined by the plant. A file without one (a CSV, JSON Lines
of something else, binary junk) is :class:`NotARecording`; so is an empty one, for the callers
that need a recording (``replay``). A read that fails part-way (a gzip cut by a crash) is a
:class:`TruncatedRecording`. :func:`sniff_stream` reads only up to the first recognisable line
(line 1 of any real recording), so only a file that is no recording is read to its end.

The reader itself is :mod:`kalshi_platform.ingestion.recording`, which re-exports the names here.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import IO, Any

import orjson

from kalshi_platform.logfmt import escape_for_log

log = logging.getLogger("kalshi_platform.ingestion.recording")

#: what reading a (possibly crash-cut) plain or gzip file can raise
READ_ERRORS = (OSError, EOFError, zlib.error)
#: a whole-document capture above this size is loaded with a warning
DOC_WARN_BYTES = 64 << 20


class RecordingError(OSError):
    """A recording cannot be opened or read (missing, unreadable, not JSON Lines)."""


class NotARecording(RecordingError):
    """``path`` holds no recognisable Kalshi frame (empty, or every line junk).

    The message is one line: ``not a Kalshi recording: <path> (<why>)``; ``why`` quotes the
    first line escaped (:func:`~kalshi_platform.logfmt.escape_for_log`). ``empty`` tells an
    empty (or all-blank) file from a junk one."""

    def __init__(self, path: str | Path, why: str, *, empty: bool = False) -> None:
        super().__init__(f"not a Kalshi recording: {path} ({why})")
        self.path = Path(path)
        self.empty = empty


class TruncatedRecording(RecordingError):
    """Reading ``path`` failed part-way (typically a gzip recording cut by a crash).

    Raised by :func:`~kalshi_platform.ingestion.recording.feed` after everything before the
    cut was fed: ``frames`` is how many
    lines of this file were fed (0 when the cut came before the first line); ``cause`` is the
    reader's one-line error text."""

    def __init__(self, path: str | Path, frames: int, cause: BaseException | str) -> None:
        self.path = Path(path)
        self.frames = frames
        self.cause = cause if isinstance(cause, str) else (
            f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__)
        super().__init__(f"{path}: read failed after {frames} frames ({self.cause})")


def detect_envelope(first_line: bytes) -> str:
    """Name the envelope of a JSON Lines recording from its first line: ``recorder``
    (``recv_ts_ns``/``raw``), ``cockpit`` (``received_ms``/``frame``), ``seed``
    (``channel``/``message``), ``bare`` (frames) or ``unknown``."""
    try:
        obj = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return "unknown"
    if not isinstance(obj, dict):
        return "unknown"
    if "type" in obj:
        return "bare"
    if "recv_ts_ns" in obj and ("raw" in obj or "event" in obj):
        return "recorder"
    if "frame" in obj and "received_ms" in obj:
        return "cockpit"
    if "message" in obj and "channel" in obj:
        return "seed"
    return "unknown"


def _frame_text_ok(inner: Any) -> bool:
    if type(inner) is dict:
        return isinstance(inner.get("type"), str)
    if isinstance(inner, str) and inner.lstrip().startswith("{"):
        try:
            obj = orjson.loads(inner)
        except (orjson.JSONDecodeError, RecursionError):
            return False
        return type(obj) is dict and isinstance(obj.get("type"), str)
    return False


def is_frame_line(obj: Any) -> bool:
    """``True`` if one parsed recording line is recognisably a Kalshi frame or recorder line.

    Recognisable: a bare frame (an object with a string ``type``); this project's recorder
    envelope (``recv_ts_ns`` int with ``raw`` text, whatever the text, or a marker's
    ``event``); a cockpit (``received_ms``/``frame``) or seed (``channel``/``message``)
    envelope whose frame is an object, or JSON text of one, with a string ``type``. A frame
    that is frame-shaped but bad (unknown type, missing fields, out-of-range numbers) still
    counts: the plant quarantines it, and the file is still a recording."""
    if type(obj) is not dict:
        return False
    if isinstance(obj.get("type"), str):
        return True
    if type(obj.get("recv_ts_ns")) is int and (isinstance(obj.get("raw"), str)
                                               or isinstance(obj.get("event"), str)):
        return True
    if "received_ms" in obj and "frame" in obj:
        return _frame_text_ok(obj["frame"])
    if "channel" in obj and "message" in obj:
        return _frame_text_ok(obj["message"])
    return False


def _loads_or_none(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except (orjson.JSONDecodeError, RecursionError):
        return None


def _fallback_kind(first: bytes, probe_lines: list[bytes]) -> str:
    """No object line among the first probe lines: a pretty-printed JSON document (text
    starting with ``{``/``[`` over several lines), else ``unknown``."""
    if first.lstrip().startswith((b"{", b"[")) and len(probe_lines) > 1:
        try:
            for ln in probe_lines:
                ln.decode("utf-8")
        except UnicodeDecodeError:  # binary junk that happens to start with "{"
            return "unknown"
        return "document"
    return "unknown"


def sniff_stream(f: IO[bytes], p: Path, probe: int = 20) -> str | None:
    """Envelope of an open recording, read from its start; ``None`` if it has no non-blank
    line (the caller rewinds ``f``).

    The envelope is that of the first parseable object line among the first ``probe``
    non-blank ones (a malformed first line must not condemn the rest), upgraded to the first
    recognisable line's when that one is ``unknown``; ``document`` for one JSON value spread
    over lines or a single-line ``{"frames": [...]}`` (checked when loaded). Reading stops at
    the first recognisable line (:func:`is_frame_line`), which is line 1 of any real
    recording: only a file without one is read to its end. Raises :class:`NotARecording`
    when no line is recognisable, :class:`TruncatedRecording` when reading fails before the
    first line."""
    lines: list[bytes] = []
    kind: str | None = None
    try:
        for line in f:
            if not line.strip():
                continue
            if len(lines) < probe:
                lines.append(line)
            obj = _loads_or_none(line)
            if kind is None and type(obj) is dict:
                if "type" not in obj and isinstance(obj.get("frames"), list):
                    return "document"
                kind = detect_envelope(line)
            elif kind is None and len(lines) >= probe:
                kind = _fallback_kind(lines[0], lines)
                if kind == "document":
                    return kind
            if is_frame_line(obj):
                return detect_envelope(line) if kind in (None, "unknown") else kind
    except READ_ERRORS as e:
        if not lines:
            raise TruncatedRecording(p, 0, e) from None
        raise NotARecording(p, f"no Kalshi frame before the file is cut "
                            f"({escape_for_log(str(e), 120)}); first line: "
                            + escape_for_log(lines[0].rstrip(b"\r\n"), 80)) from None
    if not lines:
        return None
    if kind is None and _fallback_kind(lines[0], lines) == "document":
        return "document"
    raise NotARecording(p, "no line of it is a Kalshi WebSocket frame; first line: "
                        + escape_for_log(lines[0].rstrip(b"\r\n"), 80))


def load_document(p: Path, f: IO[bytes]) -> list:
    """The frame list of a whole-document capture; raises :class:`NotARecording` when it is
    not one (not JSON, no ``frames`` list, no recognisable frame)."""
    try:
        data = f.read()
    except READ_ERRORS as e:
        raise TruncatedRecording(p, 0, e) from None
    if len(data) > DOC_WARN_BYTES:
        log.warning("%s is a single JSON document (%d MiB): loaded whole", p, len(data) >> 20)
    try:
        doc = orjson.loads(data)
    except (orjson.JSONDecodeError, RecursionError) as e:
        raise NotARecording(p, f"neither JSON Lines nor a JSON document: {e}; starts with "
                            + escape_for_log(data[:80], 80)) from None
    frames = doc.get("frames") if isinstance(doc, dict) else doc
    if not isinstance(frames, list):
        raise NotARecording(p, "a JSON document without a 'frames' list")
    if not any(is_frame_line(obj) for obj in frames):
        raise NotARecording(p, f"a JSON document whose {len(frames)} frames hold no Kalshi frame")
    return frames


__all__ = ["RecordingError", "NotARecording", "TruncatedRecording", "READ_ERRORS",
           "detect_envelope", "is_frame_line", "sniff_stream", "load_document"]
