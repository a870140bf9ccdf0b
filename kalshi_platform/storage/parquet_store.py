"""Embedded Parquet store: the no-services default sink (and the historical-tier layout).

Layout (hive partitioning, one layout for the embedded store and the EOD output)::

    <root>/<table>/date=YYYY-MM-DD/<writer_id>-<n:06d>.parquet
    <root>/_quarantine/<writer_id>.jsonl        frames that failed to decode, verbatim

Read it back with ``pyarrow.dataset.dataset(root / table, partitioning="hive")`` (or
:func:`read_table`). Rows are buffered per table and written in batches of ``batch_rows``
(and on ``flush``/``close``), split by the UTC date of ``ts``. Every file is written to a
hidden ``.<name>.tmp`` in its final directory, fsynced, then atomically renamed (readers never
see a partial file; dataset discovery ignores dot-files).

The buffer is columnar (issue 11 §1). ``publish`` only appends the plant's event (a
reference to its NamedTuple) to its table's pending list. Every ``CHUNK_ROWS`` rows the
pending events are read in one C pass into Arrow columns, unit conversions included (µs,
dollars, contracts, BBO mid and spread: :meth:`~kalshi_platform.storage.schema.Table.
read_events`), and freed. Values are the same as from the row mapping ``Table.rows``. A replay's
deltas and BBO rows arrive as event blocks instead (``publish_block``,
:mod:`kalshi_platform.ticker_plant.blocks`): their records are read a row group's worth at a
time, in one C pass without the GIL (:meth:`~kalshi_platform.storage.schema.Table.
read_records`), and no tuple is ever made of them. Once a
batch holds ``ROW_GROUP_ROWS`` rows not yet written, they are written ahead as a row group of
the batch's hidden tmp file (:mod:`~kalshi_platform.storage.parquet_ahead`: the encoding and
compression run with the GIL released, beside the plant, instead of all at the end); a
smaller batch is written whole when it completes. Why this shape, measured on replays with
the store on its own consumer thread: per-column ``array`` appends cost ~480 ns a row of
Python on that thread against ~70-200 ns for the C pass; every call that lets go of the GIL
(an Arrow kernel, a file write) makes the thread wait to get it back (up to the 5 ms switch
interval while the plant runs), so the conversions are done in C, not by kernels; and events
held until a write keep ~250k GC-tracked tuples alive per table (NamedTuples are never
untracked), which slows the plant's own garbage collections.

Files are named by ``writer_id`` and a counter, so a writer with a deterministic id (a replay
names itself after the recording's fingerprint) rewrites the same file names on a re-run;
``replace_existing=True`` first removes that writer's earlier files, making a replay of the
same recording into the same store idempotent.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import defaultdict
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path
from typing import Any, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kalshi_platform.fsync import fsync_dir
from kalshi_platform.storage import _columns
from kalshi_platform.storage.parquet_ahead import ROW_GROUP_ROWS, BatchFiles
from kalshi_platform.storage.schema import TABLE_FOR_EVENT, TABLES, Chunk, Table, floor_divide
from kalshi_platform.ticker_plant.blocks import K_BBO, K_DELTA, block_events
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent, QuarantineRecord

log = logging.getLogger(__name__)

_DAY_US = 86_400_000_000
#: the tables an event block's rows go to, by record kind
_BLOCK_TABLES = ((K_DELTA, TABLE_FOR_EVENT[DeltaEvent]), (K_BBO, TABLE_FOR_EVENT[BBO]))
QUARANTINE_DIR = "_quarantine"
#: rows of pending events read into Arrow columns at a time: bounds the events held per
#: table (measured: 2k-64k rows cost the same within noise; 16k was the best of those runs)
CHUNK_ROWS = 16_384


def _dictionary_columns(t: Table) -> list[str]:
    """The columns written dictionary-encoded: the symbol and enum ones (tickers, sides,
    kinds, states: few distinct values). Times, prices, sizes and seqs are written plain:
    near-unique values overflow a dictionary page and fall back anyway, after the work
    (a 200k-row ``orderbook_deltas`` file: 30 ms, 661 kB with every column tried; 20 ms,
    453 kB like this; same values)."""
    return [c.name for c in t.columns if c.kind in ("symbol", "enum")]


def _day_str(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=timezone.utc).strftime("%Y-%m-%d")


class _TableBuffer:
    """One table's buffered rows: ``chunks`` (:class:`~kalshi_platform.storage.schema.Chunk`
    s of ``t.arrow_schema()`` rows: :meth:`Table.read_events` output, rows the row path
    converted, rows written ahead or kept after a failed write) in arrival order,
    ``chunk_rows`` rows in all, then
    ``events`` (plant events not yet read, making ``pending_rows`` rows; counted only for
    tables with ``rows_per_event``, the others make one row each), or ``parts`` (rows of
    event blocks not yet read). ``len()`` is every buffered row."""

    __slots__ = ("table", "chunks", "chunk_rows", "events", "pending_rows", "ahead",
                 "ahead_chunks", "ahead_rows", "parts", "part_rows")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.chunks: list[Chunk] = []
        self.chunk_rows = 0
        self.events: list[Any] = []
        self.pending_rows = 0
        #: the batch's write-ahead files (None: off for this batch after a failure); the
        #: first ``ahead_chunks`` chunks (``ahead_rows`` rows) are in them
        self.ahead: BatchFiles | None = None
        self.ahead_chunks = 0
        self.ahead_rows = 0
        #: rows of event blocks not yet read, ``(block, kind, lo, hi)`` each, ``part_rows``
        #: rows in all; never pending together with ``events`` (each is read before the
        #: other is appended: the table's rows stay in stream order)
        self.parts: list[tuple] = []
        self.part_rows = 0

    def __len__(self) -> int:
        pending = len(self.events) if self.table.rows_per_event is None else self.pending_rows
        return self.chunk_rows + pending + self.part_rows


def _finished(chunks: list[Chunk], combine: bool = True) -> Chunk:
    """The buffered ``chunks`` (see :class:`_TableBuffer`) as one chunk holding a
    ``pa.Table``, rows in order. ``combine``: every column one contiguous array (the Parquet
    writer then makes one run of pages, as from arrays built in one go; ~4 ms for 250k
    rows); without it the columns stay chunked (the same values)."""
    data = pa.concat_tables([c.data if isinstance(c.data, pa.Table)
                             else pa.Table.from_batches([c.data]) for c in chunks])
    ranges = [c.ts_us for c in chunks if c.ts_us is not None]
    ts = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
    return Chunk(data.combine_chunks() if combine else data, ts)


def _chunk_of(data: pa.Table) -> Chunk:
    """A table of rows made another way (the row path) as a chunk: its ts range from Arrow
    kernels (``TypeError`` for a null ts: never written silently)."""
    ts = data.column("ts").cast(pa.int64())
    if ts.null_count:  # to_arrow never lets a null ts through; never write one silently
        raise TypeError(f"{ts.null_count} rows without ts")
    mm = pc.min_max(ts)
    return Chunk(data, None if not len(ts) else (mm["min"].as_py(), mm["max"].as_py()))


def _split_by_day(chunk: Chunk) -> list[tuple[int, pa.Table]]:
    """The chunk's rows split by the UTC day of ``ts`` (days since the epoch): ``[(day, rows
    of that day in their order)]``, days ascending. No kernel call when all rows share a
    day (known from the chunk's ts range)."""
    data = chunk.data
    if chunk.ts_us is None:
        return []
    lo, hi = chunk.ts_us[0] // _DAY_US, chunk.ts_us[1] // _DAY_US
    if lo == hi:
        return [(lo, data)]
    days = floor_divide(data.column("ts").cast(pa.int64()), _DAY_US)
    return [(d, data.filter(pc.equal(days, d))) for d in sorted(pc.unique(days).to_pylist())]


class StoreError(OSError):
    """The store root cannot be created or written."""


class ParquetStore:
    """A :class:`~kalshi_platform.ticker_plant.publishers.Publisher` writing Parquet files.

    Args:
        root: store directory (created).
        writer_id: file-name prefix; unique per writer (``[A-Za-z0-9_.-]``).
        batch_rows: rows buffered per table before a write (bounded memory: at most
            ``CHUNK_ROWS`` events per table are held as events, the rest as Arrow columns).
        compression: Parquet codec (``zstd`` default; ``snappy``, ``none``).
        replace_existing: delete this ``writer_id``'s files from an earlier run first.
        fsync: fsync each file before the rename (durability over speed).

    Counters: ``rows_written`` (per table), ``files_written``, ``bytes_written``,
    ``quarantined``, ``write_seconds`` (joining the chunks and writing the files). Raises
    :class:`StoreError` if ``root`` is not writable.
    """

    #: the name a failure is reported under (``--sink parquet``)
    sink_name = "parquet"

    def __init__(self, root: str | Path, writer_id: str, *, batch_rows: int = 250_000,
                 compression: str = "zstd", replace_existing: bool = False,
                 fsync: bool = True) -> None:
        self.root = Path(root)
        self.writer_id = writer_id
        self.batch_rows = batch_rows
        self.compression = compression
        self.fsync = fsync
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create store {self.root}: {e.strerror or e}") from None
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"store {self.root} is not writable")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", writer_id):
            raise StoreError(f"writer id {writer_id!r} must match [A-Za-z0-9_.-]+")
        self._name_re = re.compile(re.escape(writer_id) + r"-(\d{6,})\.parquet")
        if replace_existing:
            self.remove_writer_files()
        # one-row-per-event tables: pending events by event type (the publish hot path);
        # every table: its converted chunks (see _TableBuffer)
        self._tb = {name: _TableBuffer(t) for name, t in TABLES.items()}
        for b in self._tb.values():
            self._reset_ahead(b)
        self._pending = {t.event: self._tb[t.name].events for t in TABLES.values()
                         if t.rows_per_event is None}
        self._types = tuple(self._pending)
        self._parts_pending = False  # some table has event-block rows not yet read
        self._limit: dict[type, int] = {}  # pending rows at which a table converts
        #: the same for block rows: a row group's worth (their records hold no GC-tracked
        #: objects; each chunk costs the sink's thread Python work holding the GIL)
        self._block_limit: dict[type, int] = {}
        for t in TABLES.values():
            self._set_limit(t)
        # continue numbering after this writer's existing files: never overwrite them
        self._file_no = 1 + max((int(m.group(1)) for _, m in self._own_files()), default=-1)
        self._qfile = None
        self.rows_written: dict[str, int] = defaultdict(int)
        self.files_written = 0
        self.bytes_written = 0
        self.quarantined = 0
        self.write_seconds = 0.0

    # -- Publisher -------------------------------------------------------------------------

    def publish(self, event: Any) -> None:
        """Buffer one plant event (a QuarantineRecord goes to the quarantine file; other types
        are ignored). Writes the table once ``batch_rows`` rows are buffered; raises what
        that write raises (the rows stay buffered)."""
        typ = type(event)
        pend = self._pending.get(typ)
        if pend is None:
            self._publish_other(event)
            return
        if self._parts_pending and not pend:
            self._parts_first(typ)
        pend.append(event)
        if len(pend) >= self._limit[typ]:
            self._convert(TABLE_FOR_EVENT[typ])

    def publish_many(self, events: Sequence[Any]) -> None:
        """:meth:`publish` of each of ``events`` in order, in one call (the stream consumer's
        batch). A batch in which no table converts (most: a chunk is 16k rows) is split by
        table in one C pass and appended; otherwise runs of one type are appended to their
        pending list a slice at a time, each cut where a table converts, so chunks, files and
        errors are those of ``publish``. After an error the rest of the batch is not taken
        (as a loop of ``publish``)."""
        pending = self._pending
        limit = self._limit
        types = self._types
        parts, _ = _columns.split(events, types)  # one C pass: the events of each table
        if self._parts_pending:  # block rows of a table come before its events here
            for ty, part in zip(types, parts):
                if part:
                    self._parts_first(ty)
        if all(len(pending[ty]) + len(part) < limit[ty] for ty, part in zip(types, parts)):
            for ty, part in zip(types, parts):  # no table converts in this batch (the usual
                if part:                          # case): the order across tables is moot
                    pending[ty].extend(part)
            for ev in parts[-1]:
                self._publish_other(ev)
            return
        for typ, run in groupby(events, type):
            pend = pending.get(typ)
            if pend is None:
                for ev in run:
                    self._publish_other(ev)
                continue
            pend.extend(run)
            while len(pend) >= limit[typ]:  # publish converts at the limit-th event: so here
                rest = pend[limit[typ]:]
                del pend[limit[typ]:]
                self._convert(TABLE_FOR_EVENT[typ])  # empties pend (the table's events list)
                pend.extend(rest)

    def publish_block(self, block: Any) -> None:
        """Buffer an event block's deltas and BBO rows (:mod:`kalshi_platform.ticker_plant.
        blocks`) after the events published before it: the same files, rows and values as
        :meth:`publish` of each of its events (a batch limit inside the block cuts it there).
        Its records are read into Arrow columns in one C pass per row group's worth
        (:meth:`Table.read_records`), no tuple per event. Raises what a write raises; the
        rest of the block is then not buffered (the sink is failed, as after ``publish``)."""
        for kind, t in _BLOCK_TABLES:
            n = block.count(kind)
            if not n:
                continue
            b = self._tb[t.name]
            if b.events:  # this table's events came first: read before the block's rows
                self._convert(t)
            lo = 0
            while lo < n:
                hi = min(n, lo + self._block_limit[t.event] - b.part_rows)
                b.parts.append((block, kind, lo, hi))
                b.part_rows += hi - lo
                self._parts_pending = True
                lo = hi
                if b.part_rows >= self._block_limit[t.event]:
                    self._convert(t)

    def _parts_first(self, typ: type) -> None:
        """Read the block rows pending for ``typ``'s table before one of its events."""
        t = TABLE_FOR_EVENT[typ]
        if self._tb[t.name].parts:
            self._convert(t)
        self._parts_pending = any(b.parts for b in self._tb.values())

    def _publish_other(self, event: Any) -> None:
        t = TABLE_FOR_EVENT.get(type(event))
        if t is None:
            if isinstance(event, QuarantineRecord):
                self._write_quarantine(event)
            return
        b = self._tb[t.name]  # a table whose events make several rows (snapshots)
        b.events.append(event)
        b.pending_rows += t.rows_per_event(event)
        if b.pending_rows >= self._limit[t.event]:
            self._convert(t)

    def _set_limit(self, t: Table) -> None:
        """Pending rows at which ``t`` converts: a chunk (block rows: a row group), or what
        completes a batch (so a file holds exactly the rows it held when rows were buffered
        one by one)."""
        b = self._tb[t.name]
        self._limit[t.event] = max(1, min(CHUNK_ROWS, self.batch_rows - b.chunk_rows))
        self._block_limit[t.event] = max(1, min(ROW_GROUP_ROWS, self.batch_rows - b.chunk_rows))

    def _convert(self, t: Table) -> None:
        """Read ``t``'s pending events (:meth:`_read_pending`) and write the table once
        ``batch_rows`` rows are buffered; then raise the error of an event the row mapping
        rejected, if any (where the row-by-row buffer raised it at that event's publish)."""
        rejected = self._read_pending(t)
        b = self._tb[t.name]
        if b.chunk_rows >= self.batch_rows:
            self._flush_table(t)
        elif b.ahead is not None and b.chunk_rows - b.ahead_rows >= ROW_GROUP_ROWS:
            self._write_ahead(t)
        if rejected is not None:
            raise rejected

    def _read_pending(self, t: Table) -> BaseException | None:
        """Read ``t``'s pending events into an Arrow chunk (:meth:`Table.read_events`: one
        C pass, no kernel call; the events are freed). A batch it refuses goes through the
        row path, event by event: an event ``rows()`` rejects (a ``None`` price) is dropped
        and its error returned, as the row-by-row buffer never took it; an error building
        the columns (a value a column cannot hold) propagates and leaves every event
        pending, as the row-by-row buffer kept such rows and failed each write."""
        b = self._tb[t.name]
        rejected = None
        if b.parts:
            parts, b.parts, b.part_rows = b.parts, [], 0
            try:
                chunk = t.read_records([blk.part(k) + (lo, hi) for blk, k, lo, hi in parts])
            except Exception as e:  # refused: the block's events take the events' path
                log.debug("parquet store: %s: block rows through the events' path (%s: %s)",
                          t.name, type(e).__name__, e)
                b.events[:0] = [ev for blk, k, lo, hi in parts
                                for ev in block_events(blk, k)[lo:hi]]
            else:
                b.chunks.append(chunk)
                b.chunk_rows += chunk.data.num_rows
        if b.events:
            try:
                chunk = t.read_events(b.events)
            except Exception as e:
                log.debug("parquet store: %s: %d events through the row path (%s: %s)",
                          t.name, len(b.events), type(e).__name__, e)
                rows: list[tuple] = []
                for ev in b.events:
                    try:
                        rows.extend(t.rows(ev))
                    except Exception as bad:
                        rejected = rejected or bad
                chunk = _chunk_of(t.rows_to_arrow(rows))
            b.chunks.append(chunk)
            b.chunk_rows += chunk.data.num_rows
            b.events.clear()
            b.pending_rows = 0
        self._set_limit(t)
        return rejected

    def flush(self) -> None:
        """Write every table's buffer and sync the quarantine file. Every table is tried even
        when one fails (a full disk on one table leaves no other table unwritten); the first
        error is raised after all were tried, and the failed table keeps its rows."""
        first: BaseException | None = None
        for name in sorted(self._tb):
            if self._tb[name]:
                try:
                    self._flush_table(TABLES[name])
                except Exception as e:
                    log.error("parquet store: writing %s failed: %s: %s", name,
                              type(e).__name__, e)
                    first = first or e
        if self._qfile is not None:
            try:
                self._qfile.flush()
                if self.fsync:
                    os.fsync(self._qfile.fileno())
            except OSError as e:
                first = first or e
        if first is not None:
            raise first

    def close(self) -> None:
        """Flush (see :meth:`flush`; its error is raised) and close the quarantine file."""
        try:
            self.flush()
        finally:
            if self._qfile is not None:
                try:
                    self._qfile.close()
                except OSError:
                    pass
                self._qfile = None

    def buffered_rows(self, table: str) -> int:
        """Rows of ``table`` buffered and not yet in a file."""
        return len(self._tb[table])

    # -- internals -------------------------------------------------------------------------

    def _flush_table(self, t: Table) -> None:
        """Write the table's buffer, one file per UTC day. Rows leave the buffer only once
        their file is renamed into place: a failed write (disk full) loses nothing and the
        error propagates to the caller. An event the row mapping rejected is not written;
        its error is raised after the others were (see :meth:`_read_pending`)."""
        rejected = self._read_pending(t)
        b = self._tb[t.name]
        if b.chunk_rows and b.ahead:  # row groups written ahead: the rest, then rename
            if b.ahead_chunks < len(b.chunks):
                self._write_ahead(t)
            if b.ahead is not None:
                self._finish_ahead(t)
        self._reset_ahead(b)
        if b.chunk_rows:  # a small batch, or the write-ahead failed: one file per day
            t0 = time.perf_counter()
            groups = _split_by_day(_finished(b.chunks))
            self.write_seconds += time.perf_counter() - t0
            try:
                while groups:
                    self._write_file(t, _day_str(groups[0][0]), groups[0][1])
                    groups.pop(0)
            finally:
                b.chunks = [_chunk_of(g) for _, g in groups]
                b.chunk_rows = sum(g.num_rows for _, g in groups)
                self._set_limit(t)
        if rejected is not None:
            raise rejected

    def _reset_ahead(self, b: _TableBuffer) -> None:
        """A fresh write-ahead for ``b``'s next batch (its rows are all in ``chunks``)."""
        if b.ahead is not None:
            b.ahead.abort()
        t = b.table
        b.ahead = BatchFiles(self.root / t.name, t.arrow_schema(), self._tmp_name,
                             {"compression": self.compression,
                              "use_dictionary": _dictionary_columns(t)}, self.fsync)
        b.ahead_chunks = b.ahead_rows = 0

    def _tmp_name(self) -> str:
        return f".{self.writer_id}-{self._file_no:06d}.parquet.tmp"

    def _write_ahead(self, t: Table) -> None:
        """Write ``t``'s chunks not yet written ahead as row groups of the batch's tmp files
        (:mod:`~kalshi_platform.storage.parquet_ahead`; they become one finished table in the
        buffer). A failure turns the write-ahead off for this batch (logged): the rows are
        still buffered, and completing the batch writes them one file per day and raises
        what that raises."""
        b = self._tb[t.name]
        if b.ahead is None:
            return
        t0 = time.perf_counter()
        try:
            done = _finished(b.chunks[b.ahead_chunks:], combine=False)
            b.chunks[b.ahead_chunks:] = [done]
            b.ahead_chunks = len(b.chunks)
            b.ahead_rows = b.chunk_rows
            b.ahead.write([(_day_str(d), g) for d, g in _split_by_day(done)])
        except Exception as e:
            log.warning("parquet store: writing %s ahead failed (%s: %s); the batch is kept "
                        "and written when complete", t.name, type(e).__name__, e)
            self._abort_ahead(b)
        self.write_seconds += time.perf_counter() - t0

    def _abort_ahead(self, b: _TableBuffer) -> None:
        if b.ahead is not None:
            b.ahead.abort()
        b.ahead = None

    def _finish_ahead(self, t: Table) -> None:
        """Rename the batch's written-ahead files into place, days ascending, each the next
        file of this writer; the buffer is emptied. On a failure the rows of the days not
        renamed stay buffered (the caller writes them) and the failure is logged."""
        b = self._tb[t.name]
        ahead = b.ahead
        assert ahead is not None
        t0 = time.perf_counter()
        done: set[str] = set()
        try:
            for date in ahead.dates():
                final, rows = ahead.finish(date, f"{self.writer_id}-{self._file_no:06d}.parquet")
                self._file_no += 1
                self._count_file(t, final, rows)
                done.add(date)
        except Exception as e:
            log.warning("parquet store: finishing %s failed (%s: %s); writing the rest again",
                        t.name, type(e).__name__, e)
            self._abort_ahead(b)
            rest = [g for d, g in _split_by_day(_finished(b.chunks))
                    if _day_str(d) not in done]  # the rows of the days not in place
            b.chunks = [_chunk_of(g) for g in rest]
            b.chunk_rows = sum(g.num_rows for g in rest)
        else:
            b.chunks, b.chunk_rows = [], 0
        self.write_seconds += time.perf_counter() - t0

    def _count_file(self, t: Table, final: Path, rows: int) -> None:
        self.rows_written[t.name] += rows
        self.files_written += 1
        self.bytes_written += final.stat().st_size

    def _write_file(self, t: Table, date: str, rows: pa.Table) -> None:
        """Write ``rows`` (an Arrow table of ``t.arrow_schema()``, one UTC day) as the next
        file of this writer under ``date=<date>``: tmp file, fsync, rename, fsync the dir."""
        t0 = time.perf_counter()
        d = self.root / t.name / f"date={date}"
        d.mkdir(parents=True, exist_ok=True)
        name = f"{self.writer_id}-{self._file_no:06d}.parquet"
        self._file_no += 1
        final = d / name
        tmp = d / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                pq.write_table(rows, f, compression=self.compression,
                               use_dictionary=_dictionary_columns(t))
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            self._file_no -= 1
            raise
        if self.fsync:  # make the rename itself durable
            fsync_dir(d)
        self._count_file(t, final, rows.num_rows)
        self.write_seconds += time.perf_counter() - t0

    def _write_quarantine(self, rec: QuarantineRecord) -> None:
        if self._qfile is None:
            qd = self.root / QUARANTINE_DIR
            qd.mkdir(parents=True, exist_ok=True)
            self._qfile = open(qd / f"{self.writer_id}.jsonl", "ab")
        self._qfile.write(orjson.dumps(rec.as_json()) + b"\n")
        self.quarantined += 1

    def _own_files(self):
        """``(path, match)`` for every Parquet file this ``writer_id`` wrote (exact names)."""
        for t in TABLES:
            for f in (self.root / t).glob("date=*/*.parquet"):
                m = self._name_re.fullmatch(f.name)
                if m:
                    yield f, m

    def remove_writer_files(self) -> int:
        """Delete every file an earlier run of this ``writer_id`` left (and its leftover
        ``.tmp`` files and quarantine file); returns how many Parquet files went."""
        n = 0
        for f, _ in list(self._own_files()):
            f.unlink()
            n += 1
        for t in TABLES:
            for tmp in (self.root / t).glob(f"date=*/.{self.writer_id}-*.parquet.tmp"):
                if self._name_re.fullmatch(tmp.name[1:-4]):
                    tmp.unlink()
        q = self.root / QUARANTINE_DIR / f"{self.writer_id}.jsonl"
        if q.exists():
            q.unlink()
        return n


def read_table(root: str | Path, table: str, columns: list[str] | None = None, *,
               dedup: bool = False) -> pa.Table:
    """Read one table of a store (all date partitions) into an Arrow table.

    The hive ``date`` partition is dropped from the result (it duplicates ``ts``). Returns an
    empty table with the declared schema when nothing was written. ``dedup=True`` keeps one
    row per dedup-key tuple of the table (NULL keys equal; the copy kept is the one
    ``kalshi-platform query`` and the EOD job keep: latest ``recv_ts``, then the greatest file
    name, then the last row of that file; ``historical.query.latest_row_sql``), read through
    DuckDB and sorted by the dedup keys; raises
    :class:`~kalshi_platform.historical.query.QueryError` on an unreadable file. The default
    (``dedup=False``) returns every stored row.
    """
    t = TABLES[table]
    path = Path(root) / table
    names = columns or t.column_names
    if not path.is_dir() or not any(path.glob("date=*/*.parquet")):
        empty = t.arrow_schema().empty_table()
        return empty.select(names) if dedup else empty
    if dedup:
        from kalshi_platform.historical.query import read_deduped

        return read_deduped(path, table, names)
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    return dataset.to_table(columns=names)
