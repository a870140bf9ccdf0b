"""The raw-frame recorder: every WebSocket message exactly as it arrived, as JSON Lines.

One line per frame::

    {"recv_ts_ns": 1786085188416123456, "raw": "<the frame's exact text>"}

``recv_ts_ns`` is the local receipt time (ns since epoch, UTC) taken before decoding;
``raw`` is the text Kalshi sent, byte for byte once JSON-unescaped. Connection events are
marker lines that the replay reader (:mod:`kalshi_platform.ingestion.recording`) turns back
into the same ``feed_events`` rows and plant resets the live run produced::

    {"recv_ts_ns": ..., "event": "connect" | "disconnect" | "resync", "sid": int | null,
     "detail": str | null, "reset"?: bool}

(``reset`` on disconnects: ``false`` for the last one of a run, which kept its books.)

Files: ``<out>/<prefix>-<YYYYMMDD>T<HH>Z-<NNN>.jsonl`` (``.jsonl.gz`` with ``gzip``), a new file
when the UTC hour of the receipt time changes and when the current file reaches
``rotate_mb``; ``NNN`` never overwrites an existing file. Each data file gets a sidecar
``<stem>.meta.json`` with the subscribe commands (so ``replay`` knows ``use_yes_price``,
docs/kalshi-api.md §7.8) and the start time.

Durability: lines are buffered and flushed to the OS at least every ``flush_interval_s``
(default 1 s) by :meth:`Recorder.frame` and by :meth:`Recorder.maybe_flush` (call it from a
timer when the feed is quiet), so a crashed process loses at most the last second. Gzip
output is sync-flushed at the same points (readable up to there; a gzip file cut by a crash
has no trailer and is read up to the cut, then reported as truncated). Files are fsynced when
rotated and closed.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger(__name__)

_HOUR_NS = 3_600 * 1_000_000_000


class RecorderError(OSError):
    """The output directory cannot be created or written."""


class Recorder:
    """Writes raw frames and connection markers to rotating JSON Lines files.

    Args:
        out_dir: directory for the files (created if missing).
        prefix: file name prefix.
        gzip: write ``.jsonl.gz`` (compresslevel 6).
        rotate_mb: start a new file once the current one reaches this many MiB on disk
            (0 = no size rotation).
        rotate_hourly: start a new file when the UTC hour of ``recv_ns`` changes.
        flush_interval_s: longest time a written line may sit in a buffer.
        meta: extra keys for every sidecar ``.meta.json`` (e.g. ``subscribe_cmds``, ``ws_url``).

    Attributes: ``frames``, ``events``, ``bytes_written`` (uncompressed), ``files`` (paths
    opened, in order), ``errors`` and ``frames_lost`` (after a write failure; ``failed`` holds
    the reason). Raises :class:`RecorderError` if ``out_dir`` cannot be created.
    """

    def __init__(self, out_dir: str | Path, *, prefix: str = "kalshi", gzip: bool = False,
                 rotate_mb: float = 256.0, rotate_hourly: bool = True,
                 flush_interval_s: float = 1.0, meta: dict[str, Any] | None = None) -> None:
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecorderError(f"cannot create {self.out_dir}: {e.strerror or e}") from None
        if not os.access(self.out_dir, os.W_OK):
            raise RecorderError(f"{self.out_dir}: not writable")
        self.prefix = prefix
        self.gzip = gzip
        self.rotate_bytes = int(rotate_mb * (1 << 20)) if rotate_mb > 0 else 0
        self.rotate_hourly = rotate_hourly
        self.flush_interval_s = flush_interval_s
        self.meta = dict(meta or {})
        self.frames = 0
        self.events = 0
        self.bytes_written = 0
        self.files: list[Path] = []
        self.errors = 0
        self.frames_lost = 0
        self.failed: str | None = None
        self._raw: IO[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._hour: int | None = None
        self._last_flush = time.monotonic()
        self._dirty = False

    # -- FrameTap --------------------------------------------------------------------------

    def frame(self, raw: str | bytes, recv_ns: int) -> None:
        """Record one frame: ``raw`` text (bytes are decoded as UTF-8) received at ``recv_ns``."""
        if isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw).decode("utf-8", "replace")
        self.frames += 1
        self._write(orjson.dumps({"recv_ts_ns": recv_ns, "raw": raw}), recv_ns)

    def event(self, kind: str, recv_ns: int, sid: int | None = None,
              detail: str | None = None, reset: bool | None = None) -> None:
        """Record a marker line for a connection event (``connect``/``disconnect``/``resync``).

        ``reset`` (disconnects): whether the live plant dropped its books here (``False`` for
        the final disconnect of a run, whose books are its result)."""
        self.events += 1
        obj: dict[str, Any] = {"recv_ts_ns": recv_ns, "event": kind, "sid": sid, "detail": detail}
        if reset is not None:
            obj["reset"] = reset
        self._write(orjson.dumps(obj), recv_ns)

    # -- housekeeping ----------------------------------------------------------------------

    def maybe_flush(self) -> None:
        """Flush if something was written and ``flush_interval_s`` has passed."""
        if self._dirty and time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Push buffered lines to the OS (gzip: a sync flush, readable up to here)."""
        self._last_flush = time.monotonic()
        self._dirty = False
        if self._out is None:
            return
        try:
            self._out.flush()
            if self._raw is not self._out:
                self._raw.flush()  # type: ignore[union-attr]
        except OSError as e:
            self._fail(e)

    def close(self) -> None:
        """Flush, fsync and close the current file. Idempotent."""
        self._close_file()

    @property
    def current(self) -> Path | None:
        """The file being written, if any."""
        return self.files[-1] if self._out is not None and self.files else None

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _write(self, line: bytes, recv_ns: int) -> None:
        if self.failed is not None:
            self.frames_lost += 1
            return
        try:
            hour = recv_ns // _HOUR_NS
            if (self._out is None or (self.rotate_hourly and hour != self._hour)
                    or (self.rotate_bytes and self._raw.tell() >= self.rotate_bytes)):  # type: ignore[union-attr]
                self._open(recv_ns)
            self._out.write(line + b"\n")  # type: ignore[union-attr]
        except OSError as e:
            self._fail(e)
            self.frames_lost += 1
            return
        self.bytes_written += len(line) + 1
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def _open(self, recv_ns: int) -> None:
        self._close_file()
        stamp = datetime.fromtimestamp(recv_ns / 1e9, tz=timezone.utc).strftime("%Y%m%dT%HZ")
        ext = ".jsonl.gz" if self.gzip else ".jsonl"
        n = 0
        while True:
            stem = f"{self.prefix}-{stamp}-{n:03d}"
            path = self.out_dir / (stem + ext)
            try:
                raw = open(path, "xb", buffering=1 << 20)
                break
            except FileExistsError:
                n += 1
        self._raw = raw
        self._out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if self.gzip else raw
        self._hour = recv_ns // _HOUR_NS
        self.files.append(path)
        meta = {"recorder": "kalshi-platform", "recorded_at_epoch_ms": recv_ns // 1_000_000,
                "file": path.name, **self.meta}
        try:
            (self.out_dir / (stem + ".meta.json")).write_text(json.dumps(meta, indent=2) + "\n")
        except (OSError, TypeError, ValueError) as e:
            log.warning("cannot write sidecar for %s: %s", path, e)
        log.info("recording to %s", path)

    def _close_file(self) -> None:
        out, raw = self._out, self._raw
        self._out = self._raw = None
        if out is None:
            return
        try:
            if out is not raw:
                out.close()  # writes the gzip trailer, does not close raw
            raw.flush()  # type: ignore[union-attr]
            os.fsync(raw.fileno())  # type: ignore[union-attr]
        except OSError as e:
            self._fail(e)
        finally:
            try:
                raw.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def _fail(self, e: OSError) -> None:
        self.errors += 1
        if self.failed is None:
            self.failed = f"recording stopped: {e.strerror or e}"
            log.error("%s (%s)", self.failed, self.current)
