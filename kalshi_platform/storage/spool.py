"""Durable on-disk spool: an append-only FIFO of row batches for the QuestDB writer.

While QuestDB is away, batches that no longer fit the writer's in-memory queue are appended
here, and drained (oldest first) when it returns. It survives a crash or a restart: a new
writer on the same directory drains what the previous one left.

Layout: ``<dir>/seg-<12 digits>.spool`` segment files, each a sequence of records::

    magic  b"KSP1"   4 bytes
    length u32 LE    payload bytes
    rows   u32 LE    rows in the payload
    crc32  u32 LE    zlib.crc32 of the payload
    payload          msgpack: [[table_name, [col values...]], ...]

and ``<dir>/head`` = ``"<segment number> <byte offset>"`` of the first record not yet
acknowledged, replaced atomically (write ``head.tmp``, fsync, rename) after each ack. A
segment is deleted once every record in it is acknowledged (the tail segment too: a drained
spool takes no disk, and the next append starts a new segment, where the head points).

Fsync policy (``fsync``):

* ``"batch"`` (default) and ``"always"``: every appended record is fsynced before
  :meth:`Spool.append` returns, and so is every head update. A record is one batch of rows,
  so this is one fsync per spilled batch, not per row. After ``append`` returns, the rows
  survive a power loss.
* ``"none"``: no fsync; the rows survive a process crash (they are in the page cache) but
  not a power loss.

Crash recovery (:meth:`Spool.open`): each segment is scanned record by record; the first
record that is torn (short header or payload, typically the last one written before a crash)
or fails its CRC ends the segment. Its bytes from there on are moved to
``<segment>.torn`` (kept for inspection, never deleted) and the segment is truncated, so all
complete records drain. Acknowledged records re-sent after a crash between the send and the
head update are absorbed by the tables' dedup keys (at-least-once into an idempotent table).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from kalshi_platform.fsync import fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"KSP1"
_HDR = struct.Struct("<4sIII")  # magic, length, rows, crc32
HEADER_SIZE = _HDR.size
SEGMENT_BYTES = 64 << 20

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class SpoolError(OSError):
    """The spool directory cannot be created, read or written."""


@dataclass(frozen=True)
class SpoolRecord:
    """One spooled batch: ``rows`` as ``[(table_name, values), ...]`` and its position."""

    segment: int
    offset: int
    end: int
    rows: list


def _seg_name(n: int) -> str:
    return f"seg-{n:012d}.spool"


def encode_record(rows: list) -> bytes:
    """Serialise ``rows`` (``[(table, values), ...]``) into one spool record (header+payload)."""
    payload = _encode(rows)
    return _HDR.pack(MAGIC, len(payload), len(rows), zlib.crc32(payload)) + payload


class Spool:
    """Append-only, crash-safe FIFO of row batches on disk. Thread-safe.

    Args:
        directory: spool directory (created if missing).
        fsync: ``"batch"``, ``"always"`` or ``"none"`` (see the module docstring).
        segment_bytes: a new segment is started once the current one exceeds this size.

    Attributes:
        depth_rows: rows spooled and not yet acknowledged.
        depth_records: records (batches) spooled and not yet acknowledged.
        torn_records: torn or corrupt tails found at open (each kept in a ``.torn`` file).

    Raises:
        SpoolError: the directory cannot be created or a segment cannot be read/written.
    """

    def __init__(self, directory: str | Path, *,
                 fsync: Literal["batch", "always", "none"] = "batch",
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        if fsync not in ("batch", "always", "none"):
            raise ValueError(f"fsync must be batch, always or none, not {fsync!r}")
        self.dir = Path(directory)
        self.fsync = fsync != "none"
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self.depth_rows = 0
        self.depth_records = 0
        self.torn_records = 0
        # per segment: list of (offset, end, rows) of unacknowledged records
        self._index: dict[int, list[tuple[int, int, int]]] = {}
        self._head: tuple[int, int] = (0, 0)
        self._tail_seg = 0
        self._tail_fh = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpoolError(f"cannot create spool directory {self.dir}: {e.strerror or e}") from None
        self._lock_fh = self._take_dir_lock()
        self._recover()

    def _take_dir_lock(self):
        """One process per spool directory: two writers appending to and acknowledging the
        same segments would corrupt each other's view of them."""
        import fcntl

        path = self.dir / "lock"
        try:
            fh = open(path, "a+")
        except OSError as e:
            raise SpoolError(f"cannot open {path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            fh.close()
            raise SpoolError(f"spool directory {self.dir} is in use by pid {owner}; give each "
                             "writer its own KALSHI_QUESTDB_SPOOL_DIR") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        return fh

    # -- recovery --------------------------------------------------------------------------

    def _read_head(self) -> tuple[int, int]:
        try:
            seg, off = (self.dir / "head").read_text().split()
            return int(seg), int(off)
        except (OSError, ValueError):
            return (0, 0)

    def _recover(self) -> None:
        head_seg, head_off = self._read_head()
        segs = sorted(int(p.name[4:16]) for p in self.dir.glob("seg-*.spool")
                      if p.name[4:16].isdigit())
        for n in segs:
            path = self.dir / _seg_name(n)
            try:
                data = path.read_bytes()
            except OSError as e:
                raise SpoolError(f"cannot read spool segment {path}: {e.strerror or e}") from None
            recs, good_end = self._scan(data)
            if good_end < len(data):
                self.torn_records += 1
                torn = path.with_name(path.name + ".torn")
                with open(torn, "ab") as f:
                    f.write(data[good_end:])
                    f.flush()
                    os.fsync(f.fileno())
                with open(path, "r+b") as f:
                    f.truncate(good_end)
                    os.fsync(f.fileno())
                log.warning("spool %s: torn/corrupt record at byte %d of %d; %d complete "
                            "records kept, the tail saved to %s", path, good_end, len(data),
                            len(recs), torn.name)
            if n < head_seg:
                recs = []
            elif n == head_seg:
                recs = [r for r in recs if r[0] >= head_off]
            if recs:
                self._index[n] = recs
                self.depth_records += len(recs)
                self.depth_rows += sum(r[2] for r in recs)
            elif n < segs[-1]:
                path.unlink(missing_ok=True)  # fully acknowledged before the crash
        self._tail_seg = segs[-1] if segs else 0
        if self._index:
            first = min(self._index)
            self._head = (first, self._index[first][0][0])

    @staticmethod
    def _scan(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
        """Complete, CRC-valid records of one segment and where the valid prefix ends."""
        recs = []
        pos, n = 0, len(data)
        while pos < n:
            if n - pos < HEADER_SIZE:
                break
            magic, length, rows, crc = _HDR.unpack_from(data, pos)
            end = pos + HEADER_SIZE + length
            if magic != MAGIC or end > n or zlib.crc32(data[pos + HEADER_SIZE:end]) != crc:
                break
            recs.append((pos, end, rows))
            pos = end
        return recs, pos

    # -- append ----------------------------------------------------------------------------

    def append(self, rows: list) -> None:
        """Append one batch (``[(table, values), ...]``) durably (per the fsync policy).

        Raises :class:`SpoolError` when the write fails (disk full, permissions); nothing is
        half-recorded, because a torn record is discarded at the next open.
        """
        if not rows:
            return
        rec = encode_record(rows)
        with self._lock:
            off = None
            try:
                fh = self._tail()
                off = fh.tell()
                fh.write(rec)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            except (OSError, ValueError) as e:
                self._abort_append(off)
                raise SpoolError(f"cannot append to spool {self.dir}: "
                                 f"{getattr(e, 'strerror', None) or e}") from None
            self._index.setdefault(self._tail_seg, []).append((off, off + len(rec), len(rows)))
            self.depth_records += 1
            self.depth_rows += len(rows)
            if len(self._index) == 1 and self.depth_records == 1:
                self._head = (self._tail_seg, off)

    def _abort_append(self, off: int | None) -> None:
        """After a failed append: cut the segment back to ``off`` so no torn bytes sit before
        later records; if that fails too, the next append starts a new segment."""
        fh, self._tail_fh = self._tail_fh, None
        path = self.dir / _seg_name(self._tail_seg)
        try:
            if fh is not None:
                fh.close()
        except OSError:
            pass
        try:
            if off is not None and path.exists():
                os.truncate(path, off)
                return
        except OSError:
            pass
        if path.exists() and path.stat().st_size > 0:
            if self._tail_seg not in self._index:
                path.unlink(missing_ok=True)
            self._tail_seg += 1

    def _tail(self):
        fh = self._tail_fh
        if fh is not None and fh.tell() < self.segment_bytes:
            return fh
        if fh is not None:  # rotate
            self._tail_fh = None
            fh.close()
            old = self._tail_seg
            self._tail_seg += 1
            if old not in self._index:  # every record in it already delivered
                (self.dir / _seg_name(old)).unlink(missing_ok=True)
        self._tail_seg = max(self._tail_seg, 1)
        path = self.dir / _seg_name(self._tail_seg)
        new = not path.exists()
        self._tail_fh = open(path, "ab")
        if new and self.fsync:
            fsync_dir(self.dir, best_effort=True)
        return self._tail_fh

    # -- drain -----------------------------------------------------------------------------

    def peek(self) -> SpoolRecord | None:
        """The oldest unacknowledged record, or ``None`` when the spool is empty.

        Raises :class:`SpoolError` if its bytes cannot be read or no longer decode.
        """
        with self._lock:
            if not self._index:
                return None
            seg = min(self._index)
            off, end, _ = self._index[seg][0]
            path = self.dir / _seg_name(seg)
            try:
                if self._tail_fh is not None and seg == self._tail_seg:
                    self._tail_fh.flush()
                with open(path, "rb") as f:
                    f.seek(off + HEADER_SIZE)
                    payload = f.read(end - off - HEADER_SIZE)
                rows = [(t, tuple(v)) for t, v in _decode(payload)]
            except (OSError, msgspec.DecodeError) as e:
                raise SpoolError(f"cannot read spool record {path}@{off}: {e}") from None
            return SpoolRecord(seg, off, end, rows)

    def ack(self, rec: SpoolRecord) -> None:
        """Mark ``rec`` (from :meth:`peek`) delivered; persists the new head."""
        with self._lock:
            recs = self._index.get(rec.segment)
            if not recs or recs[0][0] != rec.offset:
                raise SpoolError(f"ack out of order: {rec.segment}@{rec.offset}")
            recs.pop(0)
            self.depth_records -= 1
            self.depth_rows -= len(rec.rows)
            if not recs:
                del self._index[rec.segment]
            drop_tail = False
            if self._index:
                seg = min(self._index)
                self._head = (seg, self._index[seg][0][0])
            else:
                # everything delivered: the tail segment goes too (a drained spool takes no
                # disk); the next append starts a new segment, where the head now points
                drop_tail = self._tail_seg > 0
                if drop_tail:
                    self._close_tail()
                    self._tail_seg += 1
                self._head = (self._tail_seg, 0)
            try:
                self._write_head()
                if rec.segment not in self._index and rec.segment != self._tail_seg:
                    (self.dir / _seg_name(rec.segment)).unlink(missing_ok=True)
                if drop_tail:
                    (self.dir / _seg_name(self._tail_seg - 1)).unlink(missing_ok=True)
            except OSError as e:
                # memory state moved on; after a restart the record is delivered again and
                # the tables' dedup keys absorb the repeat
                raise SpoolError(f"cannot persist spool head in {self.dir}: "
                                 f"{e.strerror or e}") from None

    def discard_head(self, reason: str) -> None:
        """Set the oldest record aside (its bytes appended to ``<segment>.bad`` with the
        reason logged) and acknowledge it: an unreadable record must not block the spool."""
        with self._lock:
            if not self._index:
                return
            seg = min(self._index)
            off, end, rows = self._index[seg][0]
            path = self.dir / _seg_name(seg)
            try:
                with open(path, "rb") as f:
                    f.seek(off)
                    data = f.read(end - off)
                with open(path.with_name(path.name + ".bad"), "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                raise SpoolError(f"cannot set aside spool record {path}@{off}: "
                                 f"{e.strerror or e}") from None
        log.error("spool record %s@%d (%d rows) set aside in %s.bad: %s", path, off, rows,
                  path.name, reason)
        self.ack(SpoolRecord(seg, off, end, [None] * rows))

    def _close_tail(self) -> None:
        fh, self._tail_fh = self._tail_fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass

    def bytes_on_disk(self) -> int:
        """Bytes of the segment files (``seg-*.spool``) now on disk: what the spool takes,
        delivered records of the tail segment included until it is dropped."""
        total = 0
        try:
            with os.scandir(self.dir) as it:
                for d in it:
                    if d.name.startswith("seg-") and d.name.endswith(".spool"):
                        try:
                            total += d.stat().st_size
                        except OSError:
                            pass
        except OSError:
            return 0
        return total

    def _write_head(self) -> None:
        tmp = self.dir / "head.tmp"
        with open(tmp, "w") as f:
            f.write(f"{self._head[0]} {self._head[1]}\n")
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        os.replace(tmp, self.dir / "head")

    def close(self) -> None:
        """Close the tail segment and release the directory lock (the spool stays on disk
        for the next writer)."""
        with self._lock:
            if self._tail_fh is not None:
                self._tail_fh.close()
                self._tail_fh = None
            if self._lock_fh is not None:
                self._lock_fh.close()  # releases the flock
                self._lock_fh = None

    def __len__(self) -> int:
        return self.depth_rows
