"""Recordings of raw Kalshi WebSocket frames: the reader (replay source).

A recording is JSON Lines, optionally gzip-compressed (detected from the magic bytes, not the
name). Every envelope found in ``shared/data/real`` is accepted, per line:

* ``{"recv_ts_ns": int, "raw": "<frame JSON text>"}`` — this project's recorder (exact bytes),
  plus its marker lines ``{"recv_ts_ns": int, "event": "connect"|"disconnect"|"resync",
  "sid": int|null, "detail": str|null, "reset"?: bool}``: :func:`feed` turns a ``disconnect``
  into ``target.reset(detail)`` (``reset: false``: a ``feed_event`` only) and any other marker
  into ``target.feed_event(...)``, so a replay reproduces the live run's resets and
  ``feed_events`` rows; :func:`iter_frames` skips them;
* ``{"received_ms": int, "frame": {...}}`` — kalshi-cockpit captures;
* ``{"channel": str, "message": {...} | "<text>"}`` — the seed project's recorder;
* a bare frame ``{"type": ..., ...}`` (no receipt time) — Fortuna / ssmd captures;
* blank lines are skipped.

A whole-document capture (``{"frames": [<envelope>, ...], ...}``, e.g. kalshi-cockpit's
``ws_orderbook_stream.json``) is read too; it is one JSON value, so it is loaded whole — fine
for fixtures, not for large files (a warning says so above 64 MiB).

Reading streams line by line in constant memory. A line that is not JSON is handed on as its
raw bytes so the plant quarantines it (counted and kept, never dropped).

What is a recording (:mod:`.sniff`, :func:`sniff_recording`): a file with at least one
recognisably Kalshi line, however many bad ones (quarantined). Anything else raises
:class:`NotARecording` before a line reaches the plant; an empty file feeds nothing. A file
whose reading fails part-way (a gzip cut by a crash) raises :class:`TruncatedRecording`
*after* every frame before the cut was fed.
"""

from __future__ import annotations

import gzip
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Protocol

import msgspec
import orjson

from kalshi_platform.ingestion.messages import AnyFrame, OrderbookDelta
from kalshi_platform.ingestion._delta import decode_line
from kalshi_platform.ingestion.sniff import (
    READ_ERRORS,
    NotARecording,
    RecordingError,
    TruncatedRecording,
    detect_envelope,
    is_frame_line,
    load_document,
    sniff_stream,
)

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_MS = 1_000_000


@dataclass
class RecordingMeta:
    """What a sidecar ``<name>.meta.json`` (Fortuna captures) or our recorder says.

    ``use_yes_price``: the orderbook subscription's flag (docs/kalshi-api.md §7.8), ``None`` if
    unknown. ``recorded_at_ns``: capture start (ns, UTC) or ``None``.
    """

    use_yes_price: bool | None = None
    recorded_at_ns: int | None = None
    raw: dict = field(default_factory=dict)


def open_binary(path: str | Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, transparently gunzipping. Raises :class:`RecordingError`."""
    p = Path(path)
    try:
        f = open(p, "rb")
        head = f.read(2)
        f.seek(0)
    except IsADirectoryError:
        raise RecordingError(f"{p}: is a directory, not a recording") from None
    except FileNotFoundError:
        raise RecordingError(f"{p}: no such file") from None
    except PermissionError:
        raise RecordingError(f"{p}: permission denied") from None
    except OSError as e:
        raise RecordingError(f"{p}: cannot read ({e.strerror or e})") from None
    if head == _GZIP_MAGIC:
        f.close()  # GzipFile(fileobj=...) would not close it: let gzip own the file
        return gzip.open(p, "rb")  # type: ignore[return-value]
    return f


def unwrap(obj: Any) -> tuple[int | None, Any]:
    """Split one parsed recording line into ``(recv_ns, payload)``.

    ``payload`` is the frame as a ``dict`` or as JSON text (``str``) for the ``raw`` envelope.
    Anything unrecognised is returned unchanged (the plant quarantines it).
    """
    if type(obj) is dict:
        if "type" in obj:
            return None, obj
        f = obj.get("frame")
        if f is not None:
            ms = obj.get("received_ms")
            return (ms * _MS if type(ms) is int else None), f
        raw = obj.get("raw")
        if raw is not None:
            ns = obj.get("recv_ts_ns")
            return (ns if type(ns) is int else None), raw
        msg = obj.get("message")
        if msg is not None and "channel" in obj:
            ns = obj.get("recv_ts_ns")
            if type(ns) is not int:
                ms = obj.get("received_ms") or obj.get("ts_ms")
                ns = ms * _MS if type(ms) is int else None
            return ns, msg
    return None, obj


def is_marker(obj: Any) -> bool:
    """``True`` for a recorder marker line (``{"recv_ts_ns", "event", ...}``, no frame)."""
    return (type(obj) is dict and "event" in obj and "recv_ts_ns" in obj and "raw" not in obj
            and "type" not in obj)


def apply_marker(target: Any, obj: dict) -> None:
    """Replay one recorder marker into ``target``: ``disconnect`` → ``target.reset(detail)``
    (books and seq watermarks dropped, as the live run did) unless the marker says
    ``"reset": false`` (a run's final disconnect); other kinds and that one →
    ``target.feed_event(kind, sid=..., detail=..., ts_ns=recv_ts_ns)``. Targets without those
    methods ignore markers."""
    kind = obj.get("event")
    if not isinstance(kind, str):
        return
    ns = obj.get("recv_ts_ns")
    sid = obj.get("sid")
    detail = obj.get("detail")
    detail = detail if isinstance(detail, str) else None
    if kind == "disconnect" and obj.get("reset", True) is not False and hasattr(target, "reset"):
        target.reset(detail or "disconnect")
    elif hasattr(target, "feed_event"):
        target.feed_event(kind, sid=sid if type(sid) is int else None, detail=detail,
                          ts_ns=ns if type(ns) is int else None)


def iter_frames(path: str | Path) -> Iterator[tuple[int | None, Any]]:
    """Yield ``(recv_ns, payload)`` for every frame of a recording, in file order.

    ``recv_ns``: receipt time in ns (UTC) or ``None``; ``payload``: a frame ``dict``, frame
    JSON text, or the raw bytes of a line that is not JSON (for quarantine). Recorder marker
    lines (:func:`is_marker`) are not frames and are skipped. Streams; an empty file yields
    nothing. Raises :class:`NotARecording` (no recognisable frame, before yielding any),
    :class:`TruncatedRecording` (reading failed part-way, after the frames before the cut)
    or :class:`RecordingError` (cannot open).
    """
    p = Path(path)
    f = open_binary(p)
    try:
        kind = sniff_stream(f, p)
        if kind is None:
            return
        f.seek(0)
        if kind == "document":
            yield from _iter_document(p, f)
            return
        loads = orjson.loads
        n = 0
        try:
            for line in f:
                if not line.strip():
                    continue
                n += 1
                try:
                    obj = loads(line)
                except (orjson.JSONDecodeError, RecursionError):
                    yield None, line.rstrip(b"\r\n")
                    continue
                if is_marker(obj):
                    continue
                yield unwrap(obj)
        except READ_ERRORS as e:
            raise TruncatedRecording(p, n, e) from None
    finally:
        f.close()


def sniff_recording(path: str | Path) -> str | None:
    """Check that ``path`` is a recording without feeding anything: its envelope
    (``recorder``, ``cockpit``, ``seed``, ``bare``, ``unknown`` or ``document``), or ``None``
    for an empty (all-blank) file.

    Cheap for real recordings (reads up to the first recognisable line, normally line 1); a
    JSON document is loaded whole to check its frames. Raises :class:`NotARecording`,
    :class:`TruncatedRecording` (cut before its first line) or :class:`RecordingError`."""
    p = Path(path)
    with open_binary(p) as f:
        kind = sniff_stream(f, p)
        if kind == "document":
            f.seek(0)
            load_document(p, f)
    return kind


def _iter_document(p: Path, f: IO[bytes]) -> Iterator[tuple[int | None, Any]]:
    for obj in load_document(p, f):
        yield unwrap(obj)


def read_meta(path: str | Path) -> RecordingMeta:
    """Read the sidecar ``<stem>.meta.json`` of a recording, if there is one.

    Understands Fortuna's capture meta (``subscribe_cmd(s).params.use_yes_price``,
    ``recorded_at_epoch_ms``). Returns an empty :class:`RecordingMeta` when absent/unreadable.
    """
    p = Path(path)
    name = p.name
    for suffix in (".jsonl.gz", ".jsonl", ".json.gz", ".json", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    meta_path = p.with_name(name + ".meta.json")
    if not meta_path.is_file() or meta_path == p:
        return RecordingMeta()
    try:
        raw = orjson.loads(meta_path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        log.warning("ignoring unreadable sidecar %s", meta_path)
        return RecordingMeta()
    if not isinstance(raw, dict):
        return RecordingMeta()
    use_yes: bool | None = None
    cmds = raw.get("subscribe_cmds") or ([raw["subscribe_cmd"]] if raw.get("subscribe_cmd") else [])
    for cmd in cmds:
        params = cmd.get("params", {}) if isinstance(cmd, dict) else {}
        if "orderbook_delta" in (params.get("channels") or []) and "use_yes_price" in params:
            use_yes = bool(params["use_yes_price"])
    rec_ms = raw.get("recorded_at_epoch_ms")
    return RecordingMeta(use_yes_price=use_yes,
                         recorded_at_ns=rec_ms * _MS if type(rec_ms) is int else None, raw=raw)


class _CockpitEnvelope(msgspec.Struct, gc=False):
    received_ms: int
    frame: AnyFrame


class _RecorderEnvelope(msgspec.Struct, gc=False):
    recv_ts_ns: int
    raw: str


class _SeedEnvelope(msgspec.Struct, gc=False):
    channel: str
    message: AnyFrame
    recv_ts_ns: int | None = None
    received_ms: int | None = None

    @property
    def recv_ns(self) -> int | None:
        if self.recv_ts_ns is not None:
            return self.recv_ts_ns
        return None if self.received_ms is None else self.received_ms * _MS


_ENVELOPES = {
    "cockpit": msgspec.json.Decoder(_CockpitEnvelope),
    "recorder": msgspec.json.Decoder(_RecorderEnvelope),
    "seed": msgspec.json.Decoder(_SeedEnvelope),
    "bare": msgspec.json.Decoder(AnyFrame),
}
#: envelope → its code for the compiled delta path (:mod:`kalshi_platform.ingestion._delta`)
_KIND_CODE = {"bare": 0, "cockpit": 1, "recorder": 2, "seed": 3}


class FrameTarget(Protocol):
    """What :func:`feed` drives (the ticker plant): ``process_frame(frame, recv_ns, raw)`` for
    decoded frames and ``process(payload, recv_ns)`` for anything that needs the slow path.
    A target with ``process_lines(chunk, kind_code, other)`` (the plant) is handed whole
    chunks of lines instead when not paced, and gives back through ``other(line)`` each line
    its compiled delta path does not take."""

    def process_frame(self, frame: Any, recv_ns: int | None = None, raw: Any = None) -> None: ...

    def process(self, payload: Any, recv_ns: int | None = None, raw: Any = None) -> None: ...


def feed(path: str | Path, target: FrameTarget, speed: float = 0.0) -> int:
    """Replay a recording into ``target`` (a :class:`~kalshi_platform.ticker_plant.plant.TickerPlant`).

    ``speed``: 0 = as fast as possible; 1 = the recording's own pace (receipt times); 2 =
    twice as fast. Frames without receipt times are not paced. Deltas are decoded with their
    envelope by the compiled delta path (the plant's ``process_lines``), other frames by msgspec;
    a line that does not fit goes through the generic path, so an odd line is quarantined by
    the plant with its exact bytes, never dropped. Streams in constant memory. Returns the
    number of frames (non-blank lines) fed: 0 for an empty or all-blank file. A target with
    a ``commit()`` (the plant: hand its events to its stream consumers) is committed after
    every 256 KiB chunk, before every paced wait, and at the end.

    Raises :class:`NotARecording` when no line is a recognisable frame (nothing is fed: the
    file is checked first, see :func:`sniff_recording`); :class:`TruncatedRecording` when
    reading fails part-way (a gzip cut by a crash), after every frame before the cut and the
    cut last line itself (quarantined) were fed; :class:`RecordingError` if it cannot be
    opened.
    """
    p = Path(path)
    f = open_binary(p)
    commit = getattr(target, "commit", None) or _nothing
    try:
        kind = sniff_stream(f, p)
        if kind is None:
            return 0
        f.seek(0)
        if kind == "document":
            n = 0
            pacer = _Pacer(speed, commit)
            for recv_ns, payload in _iter_document(p, f):
                pacer.wait(recv_ns)
                target.process(payload, recv_ns)
                n += 1
            return n
        return _feed_lines(f, p, kind, target, speed, commit)
    finally:
        commit()
        f.close()


def _nothing() -> None:
    pass


class _Pacer:
    """Sleeps so that frames are handed on at ``speed`` × their recorded pace; what the
    target emitted so far is committed before each frame (paced, events leave per frame)."""

    def __init__(self, speed: float, commit=_nothing) -> None:
        self.speed = speed
        self.commit = commit
        self.t0: float | None = None
        self.r0: int | None = None

    def wait(self, recv_ns: int | None) -> None:
        if self.speed <= 0 or recv_ns is None:
            return
        self.commit()
        now = time.monotonic()
        if self.r0 is None:
            self.t0, self.r0 = now, recv_ns
            return
        due = self.t0 + (recv_ns - self.r0) / 1e9 / self.speed  # type: ignore[operator]
        if due > now:
            time.sleep(due - now)


#: bytes read at a time, and committed after: each commit is one batch of the event stream, and
#: each batch costs a storage sink's thread Python work holding the GIL (measured on a 500k-frame
#: replay into the Parquet store: 64 KiB chunks 0.71x of --sink none, 256 KiB 0.77x; 1 MiB the same)
_CHUNK = 1 << 18


def _feed_lines(f: IO[bytes], p: Path, kind: str, target: FrameTarget, speed: float,
                commit=_nothing) -> int:
    """Feed 256 KiB chunks of whole lines (:func:`_feed_chunk`), committing after each. Raises
    :class:`TruncatedRecording` on a read error, after feeding the partial line."""
    dec = _ENVELOPES.get(kind, _ENVELOPES["bare"])
    pacer = _Pacer(speed, commit) if speed > 0 else None
    n = 0
    rest = b""
    read = getattr(f, "read1", f.read)  # read1: a truncated gzip loses nothing already inflated
    while True:
        try:
            buf = read(_CHUNK)
        except READ_ERRORS as e:
            if rest.strip():  # the line the cut went through: quarantined like any bad line
                n += _feed_chunk(rest, dec, kind, target, pacer)
            raise TruncatedRecording(p, n, e) from None
        if not buf:
            if rest.strip():
                n += _feed_chunk(rest, dec, kind, target, pacer)
            break
        start = 0
        if rest:  # the line the last chunk cut, completed (the chunk itself is not copied)
            start = buf.find(b"\n") + 1
            if start == 0:
                rest += buf
                continue
            n += _feed_chunk(rest + buf[:start], dec, kind, target, pacer)
        cut = buf.rfind(b"\n") + 1
        if cut <= start:
            rest = buf[start:]
            commit()
            continue
        rest = buf[cut:]
        n += _feed_chunk(buf, dec, kind, target, pacer, start, cut)
        commit()
    return n


def _feed_chunk(chunk: bytes, dec: msgspec.json.Decoder, kind: str, target: FrameTarget,
                pacer: _Pacer | None, start: int = 0, end: int | None = None) -> int:
    """The whole lines of ``chunk[start:end]``: through the target's compiled delta path when
    it has one (``process_lines``; the lines it does not take come back to
    :func:`_feed_chunk_by_line` with their exact bytes), else line by line. Returns the
    frames fed."""
    code = _KIND_CODE.get(kind, 0)
    fast = getattr(target, "process_lines", None)
    if fast is not None and pacer is None:
        return fast(chunk, code, lambda line: _feed_chunk_by_line(line, dec, kind, code, target,
                                                                 None), start, end)
    return _feed_chunk_by_line(chunk[start:end], dec, kind, code, target, pacer)


def _feed_one(env: Any, kind: str, target: FrameTarget, pacer: _Pacer | None, raw: Any) -> None:
    if kind == "cockpit":
        recv_ns = env.received_ms * _MS
        if pacer is not None:
            pacer.wait(recv_ns)
        target.process_frame(env.frame, recv_ns, raw)
    elif kind == "recorder":
        if pacer is not None:
            pacer.wait(env.recv_ts_ns)
        target.process(env.raw, env.recv_ts_ns)
    elif kind == "seed":
        recv_ns = env.recv_ns
        if pacer is not None:
            pacer.wait(recv_ns)
        target.process_frame(env.message, recv_ns, raw)
    else:
        target.process_frame(env, None, raw)


_new = tuple.__new__


def _feed_chunk_by_line(chunk: bytes, dec: msgspec.json.Decoder, kind: str, code: int,
                        target: FrameTarget, pacer: _Pacer | None) -> int:
    """Each line: a delta by the compiled decoder (:func:`~kalshi_platform.ingestion._delta.
    decode_line`), another frame by its msgspec envelope decoder, anything else the generic
    way (:func:`_slow_path`); the line is the ``raw`` kept if it is quarantined."""
    slow = _slow_path(target)
    n = 0
    for line in chunk.split(b"\n"):
        if not line.strip():
            continue
        n += 1
        d = decode_line(line, 0, len(line), code)
        if d is not None:
            if pacer is not None:
                pacer.wait(d[0])
            target.process_frame(_new(OrderbookDelta, d[1:]), d[0], line)
            continue
        try:
            env = dec.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            slow(line, pacer)
            continue
        _feed_one(env, kind, target, pacer, line)
    return n


def _slow_path(target: FrameTarget):
    def slow(line: bytes, pacer: _Pacer | None) -> None:
        try:
            obj = orjson.loads(line)
        except (orjson.JSONDecodeError, RecursionError):
            target.process(line.rstrip(b"\r\n"), None)  # quarantined with the line kept
            return
        if is_marker(obj):
            apply_marker(target, obj)
            return
        recv_ns, payload = unwrap(obj)
        if pacer is not None:
            pacer.wait(recv_ns)
        target.process(payload, recv_ns, line.rstrip(b"\r\n"))  # quarantine keeps the line

    return slow


def count_lines(path: str | Path) -> int:
    """Number of non-blank lines (frames) in a JSON Lines recording; streams."""
    n = 0
    with open_binary(path) as f:
        for line in f:
            if line.strip():
                n += 1
    return n


__all__ = ["RecordingError", "NotARecording", "TruncatedRecording", "RecordingMeta",
           "iter_frames", "unwrap", "read_meta", "is_marker", "is_frame_line", "apply_marker",
           "sniff_recording",
           "open_binary", "count_lines", "feed", "detect_envelope", "FrameTarget"]
