"""Durability: a write-ahead log of commands, group commit, snapshots, recovery
(issue 13 §3; docs/exchange.md "Durability").

Every command given to :class:`DurableExchange` is applied to the in-memory engine, appended
to the log and fsynced before ``submit`` returns: a caller acknowledges (answers the client,
publishes the events) only after that, so an acknowledged command is never lost. The engine
is deterministic, so the log of ``(lsn, ts, command)`` records replayed on top of the last
snapshot rebuilds orders, queues, positions and balances exactly. Refused commands are logged
too (they may still expire GTD orders at their timestamp), which keeps replay trivially equal.

Files in the directory: ``snapshot-<lsn>.pkl`` (the engine pickled after record ``lsn``) and
``wal-<lsn>.log`` (records after ``lsn``). A record is ``u32 length, u32 crc32, payload``
with payload the msgpack of ``[lsn, ts, command]``; a torn or corrupt tail (a crash during a
write) ends the log and is cut off on open. Snapshots are written to a temp file, fsynced and
renamed; older segments and snapshots are deleted only after the new ones are durable.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable

import msgspec

from kalshi_platform.exchange.commands import Command
from kalshi_platform.exchange.engine import Exchange, ExchangeConfig
from kalshi_platform.exchange.events import Result
from kalshi_platform.fsync import fsync_dir

_HEAD = struct.Struct("<II")
_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(tuple[int, int, Command])


def encode_record(lsn: int, ts: int, cmd) -> bytes:
    """One log record (header + msgpack payload)."""
    payload = _ENC.encode((lsn, ts, cmd))
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(path: Path) -> tuple[list[tuple[int, int, object]], int]:
    """``(records, good_bytes)``: every intact record of a segment, in order, and the offset
    where the intact part ends (a torn or corrupt tail is not returned)."""
    data = path.read_bytes()
    out, off = [], 0
    while off + _HEAD.size <= len(data):
        n, crc = _HEAD.unpack_from(data, off)
        end = off + _HEAD.size + n
        payload = data[off + _HEAD.size:end]
        if end > len(data) or zlib.crc32(payload) != crc:
            break
        try:
            out.append(_DEC.decode(payload))
        except msgspec.DecodeError:
            break
        off = end
    return out, off


def _lsn_of(p: Path) -> int:
    return int(p.stem.split("-")[1])


class DurableExchange:
    """An :class:`Exchange` whose commands are logged and fsynced before they are answered.

    ``DurableExchange(path)`` creates the directory or recovers from it (snapshot + log).
    ``submit(cmd, ts)`` / ``submit_many([(cmd, ts), ...])`` return after the durable append
    (one fsync per call: group commit); ``exchange`` is the engine for read-only queries.
    ``snapshot_every`` records a snapshot is taken and the log truncated. ``fsync=False`` only
    for benchmarks that measure the engine without the disk. Raises OSError on I/O failure
    and RuntimeError on every later call: state in memory is then ahead of the log, and
    only a restart (recovery from the log) is consistent."""

    def __init__(self, path: str | Path, config: ExchangeConfig | None = None, *,
                 fsync: bool = True, snapshot_every: int = 100_000) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.snapshot_every = snapshot_every
        self.exchange, self.lsn, self.snapshot_lsn = self._recover(config)
        self.replayed = self.lsn - self.snapshot_lsn
        self._fd = self._open_segment()
        self._failed: str | None = None

    # -- recovery --------------------------------------------------------------------------

    def _recover(self, config) -> tuple[Exchange, int, int]:
        for tmp in self.path.glob("snapshot-*.tmp"):  # a crash during a snapshot write
            tmp.unlink()
        snaps = sorted(self.path.glob("snapshot-*.pkl"), key=_lsn_of)
        ex, base = Exchange(config), 0
        if snaps:
            with snaps[-1].open("rb") as f:
                ex = pickle.load(f)
            base = _lsn_of(snaps[-1])
        lsn = base
        for seg in sorted(self.path.glob("wal-*.log"), key=_lsn_of):
            records, good = read_records(seg)
            for rec_lsn, ts, cmd in records:
                if rec_lsn > lsn:
                    ex.submit(cmd, ts)
                    lsn = rec_lsn
            if good != seg.stat().st_size:  # torn tail: cut it so appends stay readable
                with seg.open("r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
        return ex, lsn, base

    def _open_segment(self) -> int:
        segs = sorted(self.path.glob("wal-*.log"), key=_lsn_of)
        seg = segs[-1] if segs else self.path / f"wal-{self.lsn}.log"
        fd = os.open(seg, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not segs:
            fsync_dir(self.path)
        return fd

    # -- commands --------------------------------------------------------------------------

    def submit(self, cmd, ts: int) -> Result:
        """Apply, log and fsync one command; its result once durable."""
        return self.submit_many(((cmd, ts),))[0]

    def submit_many(self, items: Iterable[tuple[object, int]]) -> list[Result]:
        """Apply commands in order, append them all, fsync once; the results once durable."""
        results, buf = self.apply(items)
        self.commit(buf)
        self.maybe_snapshot()
        return results

    def apply(self, items: Iterable[tuple[object, int]]) -> tuple[list[Result], bytes]:
        """Apply commands and encode their records, without writing (the first half of a
        group commit; :meth:`commit` is the second). Nothing may be acknowledged before
        ``commit`` returns."""
        self._check()
        results, parts = [], []
        for cmd, ts in items:
            try:
                res = self.exchange.submit(cmd, ts)
            except TypeError:
                raise  # not a command or a bad ts: nothing was applied
            except Exception as e:  # an engine bug: memory may be half-changed
                self._failed = f"the engine failed on a command ({e}); restart to recover"
                raise
            self.lsn += 1
            parts.append(encode_record(self.lsn, self.exchange.ts, cmd))
            results.append(res)
        return results, b"".join(parts)

    def _check(self) -> None:
        if self._failed:
            raise RuntimeError(self._failed)

    def commit(self, buf: bytes) -> None:
        """Write ``buf`` (records from :meth:`apply`) and fsync. Safe in a worker thread
        (touches only the file, not the engine)."""
        try:
            view = memoryview(buf)
            while view:
                view = view[os.write(self._fd, view):]
            if self.fsync:
                os.fsync(self._fd)
        except OSError as e:  # memory is now ahead of the log: refuse everything after
            self._failed = f"the write-ahead log failed ({e}); restart to recover"
            raise

    def maybe_snapshot(self) -> None:
        """Snapshot when ``snapshot_every`` records were logged since the last one. Call from
        the writer (it pickles the engine), with no record applied but not committed."""
        if self.lsn - self.snapshot_lsn >= self.snapshot_every:
            self.snapshot()

    def snapshot(self) -> None:
        """Write a snapshot at the current lsn, start a new segment, drop older files."""
        tmp = self.path / f"snapshot-{self.lsn}.tmp"
        with tmp.open("wb") as f:
            pickle.dump(self.exchange, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        final = self.path / f"snapshot-{self.lsn}.pkl"
        os.replace(tmp, final)
        os.close(self._fd)
        seg = self.path / f"wal-{self.lsn}.log"
        self._fd = os.open(seg, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_dir(self.path)
        for old in list(self.path.glob("snapshot-*.pkl")) + list(self.path.glob("wal-*.log")):
            if _lsn_of(old) < self.lsn:
                old.unlink()
        fsync_dir(self.path)
        self.snapshot_lsn = self.lsn

    def close(self) -> None:
        """Close the log (every committed record is already durable)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class GroupCommitter:
    """Async group commit over a :class:`DurableExchange` for a server's event loop (the FIX
    EngineHub, the sim's EngineHost).

    ``await submit(cmd, ts)`` applies the command at once (the loop is the single writer),
    queues its record and resolves when the batch holding it is fsynced; while one fsync runs
    in a worker thread the next commands accumulate into the next batch. ``on_durable(item)``
    is called for every queued item once its batch is fsynced, in queue order (before its
    future resolves); ``on_failed(error)`` once for a batch whose commit raised OSError (its
    futures get the error)."""

    def __init__(self, durable: DurableExchange,
                 on_durable: Callable[[Any], None] | None = None,
                 on_failed: Callable[[OSError], None] | None = None) -> None:
        self.durable = durable
        self.on_durable = on_durable
        self.on_failed = on_failed
        self._buf: list[bytes] = []
        self._waiters: list[tuple[Any, asyncio.Future | None]] = []
        self._flusher: asyncio.Task | None = None

    async def submit(self, cmd, ts: int) -> Result:
        """Apply ``cmd``; return its result once durable. Raises OSError if the log failed."""
        results, rec = self.durable.apply(((cmd, ts),))
        fut = asyncio.get_running_loop().create_future()
        self.queue(rec, results[0], fut)
        await fut
        return results[0]

    def queue(self, rec: bytes, item: Any = None, fut: asyncio.Future | None = None) -> None:
        """Queue ``rec`` (a record the caller applied with ``durable.apply``) for the next
        batch; once it is fsynced, ``on_durable(item)`` is called and ``fut`` (if any)
        resolves. Call on the running loop."""
        self._buf.append(rec)
        self._waiters.append((item, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def drained(self) -> None:
        """Wait until every queued record is durable (and handed to ``on_durable``)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._buf:
            buf, waiters = b"".join(self._buf), self._waiters
            self._buf, self._waiters = [], []
            try:
                await asyncio.to_thread(self.durable.commit, buf)
            except OSError as e:
                if self.on_failed is not None:
                    self.on_failed(e)
                for _, fut in waiters:
                    if fut is not None and not fut.done():
                        fut.set_exception(e)
                continue
            for item, fut in waiters:
                if self.on_durable is not None:
                    self.on_durable(item)
                if fut is not None and not fut.done():
                    fut.set_result(None)
        self.durable.maybe_snapshot()
