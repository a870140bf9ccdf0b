"""Columnar ILP batches: plant events → one Arrow table per storage table → ILP text, written
by the official ``questdb`` client's columnar serializer (``Buffer.dataframe``).

Why this path: the client's per-row ``Buffer.row()`` takes a dict of Python values per row, so
a writer built on it pays for building those dicts *and* for the client's per-value
conversion. ``Buffer.dataframe()`` reads whole Arrow-backed columns in C, without the GIL
(questdb client docs, "Pandas to ILP datatype mappings"), and the events become Arrow columns
in one C pass (:meth:`schema.Table.to_arrow`, the same conversion the Parquet store uses:
bit-for-bit the values of ``Table.rows``). Measured on 424k bench rows, serialization alone:
``row()`` from pre-built dicts 0.31 s, the writer's old row path 0.61 s, this path 0.28 s
(0.11 s events → Arrow, 0.01 s Arrow → pandas, 0.15 s ``dataframe()``).

The client's ILP ``dataframe()`` only takes a pandas ``DataFrame`` (QWP/WebSocket, QuestDB
10+, takes Arrow directly; the hot tier is QuestDB 8.x over ILP/HTTP), so the Arrow tables
are handed over as pandas frames with ``pd.ArrowDtype`` columns: a zero-copy view, nulls kept
as nulls, so a null column is left out of the line exactly as ``row()`` leaves out ``None``.
The ILP bytes are the same as the row path's (tests/unit/test_ilp_batch.py; why pandas is a
dependency: docs/field-notes.md "QuestDB writer: columnar batches").

A replay's deltas and BBO rows arrive as event blocks (:mod:`kalshi_platform.ticker_plant.
blocks`): :meth:`BatchBuilder.add_blocks` reads their records into the same columns
(:meth:`schema.Table.read_records`, one C pass without the GIL), no Python object per row.

An :class:`IlpBatch` is one ILP request: ``(table, pa.Table)`` parts, rows in publish order
within each table. It converts to and from the disk spool's row tuples (``[(table,
values), ...]``, :mod:`kalshi_platform.storage.spool`) and splits in two for the writer's
bisection of rows QuestDB rejects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kalshi_platform.logfmt import error_line
from kalshi_platform.storage.schema import TABLE_FOR_EVENT, TABLE_LISTENERS, TABLES
from kalshi_platform.ticker_plant.blocks import K_BBO, K_DELTA, EventBlock, block_events
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent

log = logging.getLogger(__name__)

#: per table: the SYMBOL columns (``symbol`` and ``enum`` kinds), sent as ILP symbols
SYMBOLS: dict[str, list[str]] = {}
#: per table: indices of its timestamp columns (Arrow ``timestamp[us]`` → int µs for rows)
_TS_COLS: dict[str, list[int]] = {}


def _index_table(t: Any) -> None:
    SYMBOLS[t.name] = [c.name for c in t.columns if c.kind in ("symbol", "enum")]
    _TS_COLS[t.name] = [i for i, c in enumerate(t.columns) if c.kind == "timestamp"]


for _t in TABLES.values():
    _index_table(_t)
TABLE_LISTENERS.append(_index_table)  # tables registered later (trading tables) too

_I64 = pa.int64()
#: the table an event block's records of each kind go to (K_DELTA, K_BBO)
_BLOCK_TABLES = {K_DELTA: TABLE_FOR_EVENT[DeltaEvent], K_BBO: TABLE_FOR_EVENT[BBO]}


@dataclass(frozen=True)
class Rejected:
    """Rows that could not be put into a batch or a buffer: ``table``; ``values`` (the row
    tuple, or ``None`` when even the row mapping failed, then ``event`` is set); ``rows``:
    how many table rows this stands for (a snapshot event is one row per level);
    ``error``: one line."""

    table: str
    values: tuple | None
    rows: int
    error: str
    event: Any = None

    def record(self) -> dict:
        """The quarantine file's ``row`` field: column name → value (or the event's
        fields when no row could be made)."""
        if self.values is not None:
            return dict(zip(TABLES[self.table].column_names, self.values))
        ev = self.event
        return ev._asdict() if hasattr(ev, "_asdict") else {"event": repr(ev)}


def _bisect(items: Sequence[Any], convert: Callable[[Sequence[Any]], pa.Table],
            reject: Callable[[Any, BaseException], None]) -> list[pa.Table]:
    """``convert(items)``; when it raises, halve until each item that fails alone is
    isolated (``reject(item, error)``) and the rest converts. Returns the converted pieces,
    in order."""
    try:
        return [convert(items)]
    except Exception as e:  # noqa: BLE001 - isolated below, each failure reported
        if len(items) == 1:
            reject(items[0], e)
            return []
    mid = len(items) // 2
    return _bisect(items[:mid], convert, reject) + _bisect(items[mid:], convert, reject)


def _concat(pieces: list[pa.Table]) -> pa.Table | None:
    pieces = [p for p in pieces if p.num_rows]
    if not pieces:
        return None
    return pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)


class IlpBatch:
    """One ILP request's rows: ``parts`` = ``[(table name, pa.Table of that table's
    arrow_schema), ...]``, one part per table, rows in publish order within a table.

    ``len(batch)`` is its row count. Build with :meth:`from_events` (plant events) or
    :meth:`from_rows` (spool rows); both return the batch and the rows they could not
    convert (:class:`Rejected`), which the writer quarantines."""

    __slots__ = ("parts", "rows")

    def __init__(self, parts: list[tuple[str, pa.Table]]) -> None:
        self.parts = [(n, t) for n, t in parts if t.num_rows]
        self.rows = sum(t.num_rows for _, t in self.parts)

    def __len__(self) -> int:
        return self.rows

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_events(cls, events: Iterable[Any]) -> tuple["IlpBatch", list[Rejected]]:
        """Plant events (any mix of tables, each a type in ``schema.TABLE_FOR_EVENT``) →
        batch. An event whose rows cannot be made (``Table.rows`` raises, or a value no
        Arrow column holds, e.g. a LONG beyond 2^63) is rejected alone, with its error."""
        groups: dict[type, list] = {}
        for e in events:
            g = groups.get(type(e))
            if g is None:
                g = groups[type(e)] = []
            g.append(e)
        return cls.from_groups(groups)

    @classmethod
    def from_groups(cls, groups: dict[type, list]) -> tuple["IlpBatch", list[Rejected]]:
        """:meth:`from_events` of events already grouped by type (each list in publish
        order)."""
        parts, rejected = [], []
        for ty, evs in groups.items():
            t = TABLE_FOR_EVENT[ty]

            def reject(ev: Any, err: BaseException, t=t) -> None:
                rejected.extend(_reject_event(t.name, ev, err))

            table = _concat(_bisect(evs, t.to_arrow, reject))
            if table is not None:
                parts.append((t.name, table))
        return cls(parts), rejected

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, tuple]]) -> tuple["IlpBatch", list[Rejected]]:
        """Spool rows (``(table, values)`` in column order, as ``Table.rows`` makes them) →
        batch; a row no Arrow column holds is rejected alone."""
        groups: dict[str, list] = {}
        for name, values in rows:
            groups.setdefault(name, []).append(values)
        parts, rejected = [], []
        for name, vals in groups.items():
            t = TABLES.get(name)
            if t is None:
                rejected += [Rejected(name, tuple(v), 1, "unknown table") for v in vals]
                continue

            def reject(v: tuple, err: BaseException, name=name) -> None:
                rejected.append(Rejected(name, tuple(v), 1, error_line(err)))

            table = _concat(_bisect(vals, t.rows_to_arrow, reject))
            if table is not None:
                parts.append((name, table))
        return cls(parts), rejected

    # -- using ------------------------------------------------------------------------------

    def to_rows(self) -> list[tuple[str, tuple]]:
        """The rows as ``[(table, values), ...]`` (the spool's form; values equal to
        ``Table.rows``': timestamps int µs, prices/sizes float, ``None`` for null)."""
        out: list[tuple[str, tuple]] = []
        for name, table in self.parts:
            cols = []
            ts = _TS_COLS[name]
            for i, col in enumerate(table.columns):
                cols.append((col.cast(_I64) if i in ts else col).to_pylist())
            out += [(name, v) for v in zip(*cols)]
        return out

    def rows_by_table(self) -> dict[str, int]:
        """Rows per table."""
        out: dict[str, int] = {}
        for name, t in self.parts:
            out[name] = out.get(name, 0) + t.num_rows
        return out

    def split(self) -> tuple["IlpBatch", "IlpBatch"]:
        """The first ⌊n/2⌋ rows and the rest (n ≥ 2), parts in order."""
        k = self.rows // 2
        a: list[tuple[str, pa.Table]] = []
        b: list[tuple[str, pa.Table]] = []
        for name, t in self.parts:
            if k >= t.num_rows:
                a.append((name, t))
                k -= t.num_rows
            elif k > 0:
                a.append((name, t.slice(0, k)))
                b.append((name, t.slice(k)))
                k = 0
            else:
                b.append((name, t))
        return IlpBatch(a), IlpBatch(b)

    def write_to(self, buf: Any) -> list[Rejected]:
        """Serialize every row into ``buf`` (a ``questdb`` Buffer, ILP): SYMBOL columns as
        symbols, ``ts`` the designated timestamp, nulls left out. A row the client refuses
        to encode is isolated (halving: the client rewinds the buffer after a failed
        frame) and returned, the rest is written."""
        rejected: list[Rejected] = []
        for name, table in self.parts:
            syms = SYMBOLS[name]

            def put(t: pa.Table, name=name, syms=syms) -> pa.Table:
                buf.dataframe(t.to_pandas(types_mapper=pd.ArrowDtype), table_name=name,
                              symbols=syms, at="ts")
                return t

            def reject(row: pa.Table, err: BaseException, name=name) -> None:
                ((_, values),) = IlpBatch([(name, row)]).to_rows()
                rejected.append(Rejected(name, values, 1, error_line(err)))

            for frame in _without_null_bools(table):
                if not _bisect_rows(frame, put, reject):
                    log.debug("%s: %d rows the client refused", name, len(rejected))
        return rejected


def _without_null_bools(table: pa.Table) -> list[pa.Table]:
    """``table`` as frames whose BOOLEAN columns hold no nulls: the client's ``dataframe()``
    refuses a null boolean ("Cannot insert null values into a boolean column") where
    ``row()`` leaves a ``None`` out, so rows with a null boolean go in a frame without that
    column (the same line). Rows keep their order within each frame."""
    for f in table.schema:
        if pa.types.is_boolean(f.type) and table.column(f.name).null_count:
            null = pc.is_null(table.column(f.name))
            return (_without_null_bools(table.filter(pc.invert(null)))
                    + _without_null_bools(table.filter(null).drop_columns([f.name])))
    return [table] if table.num_rows else []


class BatchBuilder:
    """Accumulates the next batch's events as Arrow batches (:meth:`Table.read_events`: one
    C pass over the events, unit conversions included, no kernel call, so the GIL is taken
    once and briefly, and the Python events can be freed at once; event blocks' records:
    :meth:`add_blocks`, without the GIL); :meth:`build` joins them per table. A group
    ``read_events`` refuses goes through :meth:`Table.to_arrow` (the row path) at once,
    rejected events isolated.

    ``rows``: table rows held."""

    def __init__(self) -> None:
        self._items: dict[str, list[pa.Table]] = {}  # table -> its rows, in order
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def add(self, groups: dict[type, list]) -> list[Rejected]:
        """Add events grouped by type (each list in publish order); returns the rejected."""
        rejected: list[Rejected] = []
        for ty, evs in groups.items():
            t = TABLE_FOR_EVENT[ty]
            items = self._items.setdefault(t.name, [])
            try:
                done = pa.Table.from_batches([t.read_events(evs).data])
            except Exception:  # noqa: BLE001 - refused as it is: the row path decides
                def reject(ev: Any, err: BaseException, t=t) -> None:
                    rejected.extend(_reject_event(t.name, ev, err))

                done = _concat(_bisect(evs, t.to_arrow, reject))
                if done is None:
                    continue
            items.append(done)
            self.rows += done.num_rows
        return rejected

    def add_blocks(self, blocks: Sequence[EventBlock]) -> list[Rejected]:
        """Add the rows of event blocks (:mod:`kalshi_platform.ticker_plant.blocks`, in
        stream order): per table one :meth:`Table.read_records` over all their records (one
        C pass without the GIL, no Python object per row), the tables in order of first
        appearance as :meth:`add` of their events would put them. A table's records
        ``read_records`` refuses are converted as the blocks' events through :meth:`add`
        (the events path: the same values, or the row path's rejections). Returns the
        rejected."""
        rejected: list[Rejected] = []
        nonempty = [b for b in blocks if len(b)]
        if not nonempty:
            return rejected
        first = K_DELTA if nonempty[0].slice(0, 1).count(K_DELTA) else K_BBO
        for kind in (first, K_BBO if first == K_DELTA else K_DELTA):
            t = _BLOCK_TABLES[kind]
            parts = [b.part(kind) + (0, n) for b in nonempty if (n := b.count(kind))]
            if not parts:
                continue
            items = self._items.setdefault(t.name, [])
            try:
                done = pa.Table.from_batches([t.read_records(parts).data])
            except Exception as e:  # noqa: BLE001 - refused as it is: the events decide
                log.debug("%s: block records through the events' path (%s: %s)", t.name,
                          type(e).__name__, e)
                rejected += self.add({t.event: [ev for b in nonempty
                                                for ev in block_events(b, kind)]})
                continue
            items.append(done)
            self.rows += done.num_rows
        return rejected

    def build(self) -> IlpBatch:
        """The rows added so far as one batch (and the builder empty again)."""
        parts = []
        for name, items in self._items.items():
            table = _concat(items)
            if table is not None:
                parts.append((name, table))
        self._items, self.rows = {}, 0
        return IlpBatch(parts)


def _bisect_rows(table: pa.Table, put: Callable[[pa.Table], pa.Table],
                 reject: Callable[[pa.Table, BaseException], None]) -> bool:
    """:func:`_bisect` over an Arrow table's rows (slices, no copies). True if all went."""
    try:
        put(table)
        return True
    except Exception as e:  # noqa: BLE001 - isolated below
        if table.num_rows == 1:
            reject(table, e)
            return False
    mid = table.num_rows // 2
    ok1 = _bisect_rows(table.slice(0, mid), put, reject)
    ok2 = _bisect_rows(table.slice(mid), put, reject)
    return ok1 and ok2


def _reject_event(table: str, ev: Any, err: BaseException) -> list[Rejected]:
    """An event ``to_arrow`` refused: its rows with the error, or the event itself when even
    ``Table.rows`` fails on it."""
    t = TABLES[table]
    try:
        rows = t.rows(ev)
    except Exception as e:  # noqa: BLE001 - the event cannot become rows at all
        n = t.rows_per_event(ev) if t.rows_per_event else 1
        return [Rejected(table, None, n, error_line(e), ev)]
    return [Rejected(table, tuple(r), 1, error_line(err)) for r in rows]


def event_rows(events: Iterable[Any]) -> tuple[list[tuple[str, tuple]], list[Rejected]]:
    """Plant events → spool rows ``[(table, values), ...]`` through ``Table.rows`` (the
    writer spills its queue with this: cheaper than a batch when the rows go to disk);
    events whose rows cannot be made are returned as :class:`Rejected`."""
    out: list[tuple[str, tuple]] = []
    bad: list[Rejected] = []
    for e in events:
        t = TABLE_FOR_EVENT[type(e)]
        try:
            rows = t.rows(e)
        except Exception as err:  # noqa: BLE001 - quarantined by the caller
            bad += _reject_event(t.name, e, err)
            continue
        name = t.name
        out += [(name, r) for r in rows]
    return out, bad
