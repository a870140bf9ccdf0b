"""Every storage table declared once: columns, designated timestamp, dedup keys, row mapping.

The same declaration drives the Parquet store (Arrow schema) and the QuestDB hot tier (DDL and
ILP rows), so the historical tier and the embedded store share one layout (docs/architecture.md
"Tables"). Storage units, chosen for what users query:

* ``ts`` — designated timestamp: the exchange event time, UTC, **microseconds** (QuestDB 8.x
  ``TIMESTAMP`` resolution); ``recv_ts`` — local receipt time, UTC, µs (null when unknown);
* prices in **dollars** and sizes in **contracts** as ``DOUBLE``. The plant's integers convert
  exactly (every µ$ / c-contract value round-trips through a float64);
* tickers and small enumerations as ``SYMBOL`` (QuestDB) / string (Parquet);
* Kalshi ``trade_id`` / ``order_id`` as ``UUID`` in QuestDB (string in Parquet): a fixed-size
  column can be a dedup key on every 8.x server (VARCHAR keys need 8.1.1+, questdb PR #4915),
  and ILP casts a string into an existing UUID column (QuestDB docs "ILP columnset types",
  Cast to UUID). A non-UUID id is rejected by the server and lands in the writer's quarantine.

Dedup keys (QuestDB docs "Deduplication") make every write idempotent: a replay, a resend
after a lost acknowledgement, or a re-run backfill upserts the same rows instead of doubling
them. ``tickers`` keys on ``recv_ts`` too, because legacy ticker ``ts`` is in whole seconds and
two updates of one market in one second are distinct; ``feed_events`` keys on both seqs.

Deviation from docs/architecture.md: ``bbo`` carries ``seq`` (the message that moved the top), so
two BBO changes in one millisecond are distinct rows under the dedup keys, and ``state`` (the
book's state: a ``stale``/``syncing`` row with null prices marks where a book stopped being
trustworthy; docs/plant-contract.md); ``fills`` is an extra table for the private fill
channel.

Two conversions of the same mapping: ``Table.rows(event)`` (row tuples: the QuestDB writer's
spool rows and reference) and the columnar one (``Table.read_events``: one C pass,
:mod:`kalshi_platform.storage._columns`, reads a batch of NamedTuples into Arrow columns with
the unit conversions done; ``Table.to_arrow``: the same as a table). They give the same values
bit for bit: µs are floor divisions of ns, a price or size is ``float64(units) /
float64(scale)`` as Python's ``int / int`` is (both correctly rounded; the C pass refuses an
integer beyond 2^53 instead of rounding it), and a batch the columnar path does not take as it
is (a ``None`` where ``rows`` would fail, an odd type such as a ``float`` or a ``bool`` in an
integer field, a huge value) is converted through ``rows`` instead, so it fails or succeeds
exactly as before.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from kalshi_platform.fixedpoint import PRICE_SCALE, SIZE_SCALE
from kalshi_platform.storage import _columns
from kalshi_platform.ticker_plant.events import (
    BBO,
    DeltaEvent,
    FeedEvent,
    FillEvent,
    LifecycleEvent,
    TABLE_OF,
    SnapshotEvent,
    TickerEvent,
    TradeEvent,
)

log = logging.getLogger(__name__)

#: SYMBOL capacity: thousands of markets (Kalshi lists ~10k+ open markets); QuestDB sizes the
#: symbol table to this hint and caches it in memory (QuestDB docs "Symbol", "CREATE TABLE").
SYMBOL_CAPACITY = 65_536
#: SYMBOL capacity for small enumerations (side, taker_side, kind, event_type, result, action)
ENUM_CAPACITY = 256

#: column kinds → QuestDB column type
_QDB = {
    "symbol": f"SYMBOL CAPACITY {SYMBOL_CAPACITY} CACHE",
    "enum": f"SYMBOL CAPACITY {ENUM_CAPACITY} CACHE",
    "varchar": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "double": "DOUBLE",
    "long": "LONG",
    "boolean": "BOOLEAN",
    "uuid": "UUID",
}

#: column kinds → Arrow type
_ARROW = {
    "symbol": pa.string(),
    "enum": pa.string(),
    "varchar": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "double": pa.float64(),
    "long": pa.int64(),
    "boolean": pa.bool_(),
    "uuid": pa.string(),
}


@dataclass(frozen=True)
class Column:
    """One column: ``name`` and ``kind`` (symbol, enum — a SYMBOL of few values —, varchar,
    uuid, timestamp, double, long, boolean)."""

    name: str
    kind: str


@dataclass(frozen=True)
class Table:
    """A table: ``columns`` in order, designated timestamp ``ts``, ``PARTITION BY DAY``,
    ``dedup_keys`` (must include ``ts``; a replay or re-run upserts instead of doubling),
    the plant ``event`` type it stores, ``rows(event) -> list[tuple]`` in column order, and
    its columnar twin ``columnar`` (:meth:`read_events`, :meth:`to_arrow`: the same rows,
    built column by column). ``rows_per_event``: how many rows an event
    makes (``None``: exactly one)."""

    name: str
    columns: tuple[Column, ...]
    dedup_keys: tuple[str, ...]
    event: type
    rows: Callable[[Any], list[tuple]]
    columnar: "_Columnar"
    rows_per_event: Callable[[Any], int] | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @staticmethod
    def questdb_type(c: Column) -> str:
        """The QuestDB column type of ``c`` (``SYMBOL CAPACITY … CACHE``, ``DOUBLE``, …)."""
        return _QDB[c.kind]

    def questdb_ddl(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for QuestDB 8.x: designated timestamp ``ts``,
        ``PARTITION BY DAY WAL`` and ``DEDUP UPSERT KEYS`` (QuestDB docs "CREATE TABLE
        reference", "Deduplication"); idempotent."""
        cols = ",\n  ".join(f"{c.name} {self.questdb_type(c)}" for c in self.columns)
        return (f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n) TIMESTAMP(ts) "
                f"PARTITION BY DAY WAL DEDUP UPSERT KEYS({', '.join(self.dedup_keys)});")

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of the table (Parquet files are written with exactly this)."""
        return self._arrow_schema

    @functools.cached_property
    def _arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in self.columns])

    def read_events(self, events: Sequence[Any]) -> Chunk:
        """``events`` (this table's plant events, in order) as a :class:`Chunk` of
        :meth:`arrow_schema` rows, the values ``rows()`` gives: one C pass over the Python
        objects, unit conversions included (µs, dollars, contracts, BBO mid and spread), and
        no kernel call (a kernel call lets go of the GIL, and on a busy process getting it
        back can take the 5 ms switch interval).
        Raises (``TypeError``, ``ValueError``, ``OverflowError``) for a batch it does not
        take as it is (a ``None`` where ``rows`` would fail, an odd type, a value beyond
        int64 or 2^53); :meth:`rows` then decides (see :meth:`to_arrow`)."""
        return self.columnar.read(events, self.arrow_schema())

    def read_records(self, parts: list[tuple]) -> Chunk:
        """Rows of the plant's event blocks (:mod:`kalshi_platform.ticker_plant.blocks`):
        ``parts`` ``[(n, records, str_offsets, str_data, lo, hi)]``, each rows ``lo..hi`` of
        an ``EventBlock.part(kind)``, in order, as a :class:`Chunk` of :meth:`arrow_schema`
        rows, the values :meth:`read_events` gives for the same events. Raises as
        :meth:`read_events` (the caller then converts the block's events instead)."""
        return self.columnar.read_records(parts, self.arrow_schema())

    def to_arrow(self, events: Sequence[Any]) -> pa.Table:
        """``events`` as one Arrow table of :meth:`arrow_schema`: the rows ``rows()`` gives
        for each event, in order (:meth:`read_events`). A batch the columnar path refuses
        goes through :meth:`rows_to_arrow` (same values; its error, if any, is the row
        path's: ``TypeError`` for a ``None`` price, ``OverflowError`` or
        ``pa.ArrowInvalid`` for a value the column cannot hold)."""
        try:
            chunk = self.read_events(events)
        except Exception as e:  # refused: the row path decides (and raises as it always did)
            log.debug("%s: %d events through the row path (%s: %s)", self.name, len(events),
                      type(e).__name__, e)
            return self.rows_to_arrow([r for ev in events for r in self.rows(ev)])
        return pa.Table.from_batches([chunk.data])

    def rows_to_arrow(self, rows: Sequence[tuple]) -> pa.Table:
        """Row tuples (``rows()`` output) as an Arrow table of :meth:`arrow_schema`."""
        schema = self.arrow_schema()
        if not rows:
            return schema.empty_table()
        return pa.Table.from_arrays([pa.array(col, type=f.type)
                                     for col, f in zip(zip(*rows), schema)], schema=schema)


def _us(ns: int | None) -> int | None:
    return None if ns is None else ns // 1000


def _p(units: int | None) -> float | None:
    return None if units is None else units / PRICE_SCALE


def _q(units: int | None) -> float | None:
    return None if units is None else units / SIZE_SCALE


def _trade_rows(e: TradeEvent) -> list[tuple]:
    return [(e.ticker, e.ts_ns // 1000, e.trade_id, e.yes_price / PRICE_SCALE,
             e.no_price / PRICE_SCALE, e.count / SIZE_SCALE, e.taker_side, _us(e.recv_ns))]


def _delta_rows(e: DeltaEvent) -> list[tuple]:
    # unpacking the NamedTuple (C) is ~2x faster than eight attribute lookups: hot path
    ticker, ts, sid, seq, side, price, delta, recv = e
    return [(ticker, ts // 1000, sid, seq, side, price / PRICE_SCALE, delta / SIZE_SCALE,
             None if recv is None else recv // 1000)]


def _snapshot_rows(e: SnapshotEvent) -> list[tuple]:
    ts = e.ts_ns // 1000
    recv = _us(e.recv_ns)
    out = [(e.ticker, ts, e.sid, e.seq, "yes", p / PRICE_SCALE, q / SIZE_SCALE, recv)
           for p, q in e.yes]
    out += [(e.ticker, ts, e.sid, e.seq, "no", p / PRICE_SCALE, q / SIZE_SCALE, recv)
            for p, q in e.no]
    if not out:  # an empty book is still a snapshot: keep it as one null-level row
        out.append((e.ticker, ts, e.sid, e.seq, None, None, None, recv))
    return out


def _bbo_rows(e: BBO) -> list[tuple]:
    ticker, ts, yb, ybs, ya, yas, seq, recv, state = e
    both = yb is not None and ya is not None
    return [(ticker, ts // 1000, _p(yb), _q(ybs), _p(ya), _q(yas),
             (yb + ya) / (2 * PRICE_SCALE) if both else None,
             (ya - yb) / PRICE_SCALE if both else None, seq, _us(recv), state)]


def _ticker_rows(e: TickerEvent) -> list[tuple]:
    return [(e.ticker, e.ts_ns // 1000, _p(e.price), _p(e.yes_bid), _p(e.yes_ask),
             _q(e.yes_bid_size), _q(e.yes_ask_size), _q(e.volume), _q(e.open_interest),
             _us(e.recv_ns))]


def _lifecycle_rows(e: LifecycleEvent) -> list[tuple]:
    return [(e.ticker, e.ts_ns // 1000, e.event_type, e.result, _p(e.settlement_value),
             e.detail, _us(e.recv_ns))]


def _fill_rows(e: FillEvent) -> list[tuple]:
    return [(e.ticker, e.ts_ns // 1000, e.trade_id, e.order_id, e.side, e.action, e.is_taker,
             _p(e.yes_price), _q(e.count), _p(e.fee_cost), _q(e.post_position), _us(e.recv_ns))]


def _feed_rows(e: FeedEvent) -> list[tuple]:
    return [(e.ts_ns // 1000, e.kind, e.sid, e.expected_seq, e.got_seq, e.detail)]


# -- columnar conversion (Table.read_events / to_arrow) -------------------------------------

_I64 = pa.int64()
_F64 = pa.float64()
_STR = pa.string()
_BOOL = pa.bool_()
_TS = _ARROW["timestamp"]


def floor_divide(a: pa.Array, k: int) -> pa.Array:
    """``a // k`` per element, Python's floor division (``k > 0``; nulls stay null). Arrow's
    integer ``divide`` truncates toward zero, so inexact negative quotients are lowered by 1."""
    q = pc.divide(a, k)
    lo = pc.min(a).as_py()
    if lo is None or lo >= 0:
        return q
    low = pc.and_(pc.less(a, 0), pc.not_equal(pc.multiply(q, k), a))
    return pc.subtract(q, pc.cast(low, _I64))


#: op → (type of the raw field(s) it reads, C op code and divisor of
#: :func:`kalshi_platform.storage._columns.read`). ``!`` marks a field ``rows`` needs
#: non-null (it computes with it unguarded): a null there is refused.
_OPS: dict[str, tuple[str, str, int]] = {
    "str": ("str", "s", 0),
    "i64": ("int", "q", 0),
    "bool": ("bool", "b", 0),
    "us": ("int", "u", 1000),                  # ns → µs, floor division
    "p": ("int", "f", PRICE_SCALE),            # µ$ → $
    "q": ("int", "f", SIZE_SCALE),             # centi-contracts → contracts
    # BBO (yes_bid, yes_ask) → mid, spread; null unless both sides are present
    "mid": ("int", "m", 2 * PRICE_SCALE),
    "spread": ("int", "d", PRICE_SCALE),
}


class Chunk(NamedTuple):
    """Rows of one table as Arrow: ``data`` (a ``pa.RecordBatch`` or ``pa.Table`` of the
    table's :meth:`Table.arrow_schema`) and ``ts_us``, the ``(min, max)`` of its ``ts``
    column in µs (``None`` when it has no rows)."""

    data: Any
    ts_us: tuple[int, int] | None


class _Columnar:
    """A table's columnar conversion, from ``spec``: per column, in order,
    ``op[!]:field[+field]`` over the raw fields (ops in :data:`_OPS`), done by one C pass
    over the events (:mod:`kalshi_platform.storage._columns`).

    ``fields``: the raw fields, in order (default: the NamedTuple ``event``'s own fields;
    every one must be used); ``reader``: a custom ``events -> list of tuples of fields``
    (snapshots, which make one raw row per level)."""

    def __init__(self, event: type, spec: str, fields: tuple[str, ...] | None = None,
                 reader: Callable[[Sequence[Any]], list[tuple]] | None = None) -> None:
        fields = fields or event._fields
        types: dict[str, str] = {}
        ops = []
        for item in spec.split(","):
            op, src = item.strip().split(":")
            strict = op.endswith("!")
            op = op.rstrip("!")
            kind, code, k = _OPS[op]
            srcs = src.split("+")
            for f in srcs:
                if types.setdefault(f, kind) != kind:
                    raise ValueError(f"{event.__name__}.{f}: read as two types")
            idx = [fields.index(f) for f in srcs] + [-1]
            ops.append((code, idx[0], idx[1], strict, k))
        if set(types) != set(fields):
            raise ValueError(f"{event.__name__}: the spec must read every raw field")
        self._ops = tuple(ops)
        self._width = len(fields)
        self._reader = reader

    def read(self, events: Sequence[Any], schema: pa.Schema) -> Chunk:
        """Events → a chunk of ``schema`` (see :meth:`Table.read_events`)."""
        rows = events if self._reader is None else self._reader(events)
        return _buffers_chunk(schema, len(rows), _columns.read(rows, self._width, self._ops))

    def read_records(self, parts: list[tuple], schema: pa.Schema) -> Chunk:
        """Event-block records → a chunk of ``schema`` (see :meth:`Table.read_records`)."""
        if self._reader is not None:
            raise TypeError("a table whose events make several rows has no records")
        n = sum(p[5] - p[4] for p in parts)
        return _buffers_chunk(schema, n, _columns.read_records(parts, self._width, self._ops))


def _buffers_chunk(schema: pa.Schema, n: int, columns: list[tuple]) -> Chunk:
    """``_columns`` output (per column: null count, validity, buffers[, min, max]) for ``n``
    rows as a chunk of ``schema`` (zero-copy ``pa.Array.from_buffers``); the ts range from
    the ``ts`` column's min and max. Raises ``ValueError`` for a null ts."""
    arrays = []
    ts = None
    for f, (nulls, valid, *bufs) in zip(schema, columns):
        if len(bufs) == 3:  # int64 columns carry (min, max)
            lo, hi = bufs[1:]
            bufs = bufs[:1]
            if f.name == "ts":
                if nulls:  # never written silently: the row path decides
                    raise ValueError("null ts")
                ts = None if lo is None else (lo, hi)
        vb = None if valid is None else pa.py_buffer(valid)
        arrays.append(pa.Array.from_buffers(f.type, n, [vb, *map(pa.py_buffer, bufs)],
                                            null_count=nulls))
    return Chunk(pa.RecordBatch.from_arrays(arrays, schema=schema), ts)


def _read_snapshots(events: Sequence[SnapshotEvent]) -> list[tuple]:
    """Snapshot events → raw level rows ``(ticker, ts_ns, sid, seq, side, price, size,
    recv_ns)`` (yes levels, then no levels; an empty book is one row with null
    side/price/size). Raises ValueError for a level with a null price or size (``rows()``
    raises TypeError for it)."""
    out: list[tuple] = []
    for ticker, ts_ns, s, q, yes, no, r in events:
        if not yes and not no:
            out.append((ticker, ts_ns, s, q, None, None, None, r))
            continue
        for levels, name in ((yes, "yes"), (no, "no")):
            for p, z in levels:
                if p is None or z is None:
                    raise ValueError("null level")
                out.append((ticker, ts_ns, s, q, name, p, z, r))
    return out


_SNAPSHOT_SPEC = ("str:ticker, us!:ts_ns, i64:sid, i64:seq, str:side, p:price, q:size,"
                  " us:recv_ns")
_SNAPSHOT_FIELDS = ("ticker", "ts_ns", "sid", "seq", "side", "price", "size", "recv_ns")


def _snapshot_rows_per_event(e: SnapshotEvent) -> int:
    return len(e.yes) + len(e.no) or 1


def _cols(spec: str) -> tuple[Column, ...]:
    out = []
    for item in spec.split(","):
        name, kind = item.split(":")
        out.append(Column(name.strip(), kind.strip()))
    return tuple(out)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("trades", _cols("ticker:symbol, ts:timestamp, trade_id:uuid, yes_price:double,"
                              " no_price:double, count:double, taker_side:enum,"
                              " recv_ts:timestamp"),
              ("ts", "ticker", "trade_id"), TradeEvent, _trade_rows,
              _Columnar(TradeEvent, "str:ticker, us!:ts_ns, str:trade_id, p!:yes_price,"
                                    " p!:no_price, q!:count, str:taker_side, us:recv_ns")),
        Table("orderbook_deltas", _cols("ticker:symbol, ts:timestamp, sid:long, seq:long,"
                                        " side:enum, price:double, delta:double,"
                                        " recv_ts:timestamp"),
              ("ts", "ticker", "sid", "seq", "side", "price"), DeltaEvent, _delta_rows,
              _Columnar(DeltaEvent, "str:ticker, us!:ts_ns, i64:sid, i64:seq, str:side,"
                                    " p!:price, q!:delta, us:recv_ns")),
        Table("orderbook_snapshots", _cols("ticker:symbol, ts:timestamp, sid:long, seq:long,"
                                           " side:enum, price:double, size:double,"
                                           " recv_ts:timestamp"),
              ("ts", "ticker", "sid", "seq", "side", "price"), SnapshotEvent, _snapshot_rows,
              _Columnar(SnapshotEvent, _SNAPSHOT_SPEC, _SNAPSHOT_FIELDS, _read_snapshots),
              _snapshot_rows_per_event),
        Table("bbo", _cols("ticker:symbol, ts:timestamp, yes_bid:double, yes_bid_size:double,"
                           " yes_ask:double, yes_ask_size:double, mid:double, spread:double,"
                           " seq:long, recv_ts:timestamp, state:enum"),
              ("ts", "ticker", "seq", "state"), BBO, _bbo_rows,
              _Columnar(BBO, "str:ticker, us!:ts_ns, p:yes_bid, q:yes_bid_size, p:yes_ask,"
                             " q:yes_ask_size, mid:yes_bid+yes_ask, spread:yes_bid+yes_ask,"
                             " i64:seq, us:recv_ns, str:state")),
        Table("tickers", _cols("ticker:symbol, ts:timestamp, price:double, yes_bid:double,"
                               " yes_ask:double, yes_bid_size:double, yes_ask_size:double,"
                               " volume:double, open_interest:double, recv_ts:timestamp"),
              ("ts", "ticker", "recv_ts"), TickerEvent, _ticker_rows,
              _Columnar(TickerEvent, "str:ticker, us!:ts_ns, p:price, p:yes_bid, p:yes_ask,"
                                     " q:yes_bid_size, q:yes_ask_size, q:volume,"
                                     " q:open_interest, us:recv_ns")),
        Table("market_lifecycle", _cols("ticker:symbol, ts:timestamp, event_type:enum,"
                                        " result:enum, settlement_value:double,"
                                        " detail:varchar, recv_ts:timestamp"),
              ("ts", "ticker", "event_type"), LifecycleEvent, _lifecycle_rows,
              _Columnar(LifecycleEvent, "str:ticker, us!:ts_ns, str:event_type, str:result,"
                                        " p:settlement_value, str:detail, us:recv_ns")),
        Table("fills", _cols("ticker:symbol, ts:timestamp, trade_id:uuid, order_id:uuid,"
                             " side:enum, action:enum, is_taker:boolean, yes_price:double,"
                             " count:double, fee_cost:double, post_position:double,"
                             " recv_ts:timestamp"),
              ("ts", "ticker", "trade_id", "order_id"), FillEvent, _fill_rows,
              _Columnar(FillEvent, "str:ticker, us!:ts_ns, str:trade_id, str:order_id,"
                                   " str:side, str:action, bool:is_taker, p:yes_price,"
                                   " q:count, p:fee_cost, q:post_position, us:recv_ns")),
        Table("feed_events", _cols("ts:timestamp, kind:enum, sid:long, expected_seq:long,"
                                   " got_seq:long, detail:varchar"),
              ("ts", "kind", "sid", "expected_seq", "got_seq"), FeedEvent, _feed_rows,
              _Columnar(FeedEvent, "us!:ts_ns, str:kind, i64:sid, i64:expected_seq,"
                                   " i64:got_seq, str:detail")),
    )
}

#: plant event type → table (the plant's own map, events.TABLE_OF, must name the same tables)
TABLE_FOR_EVENT: dict[type, Table] = {t.event: t for t in TABLES.values()}
assert {e: t.name for e, t in TABLE_FOR_EVENT.items()} == TABLE_OF, "events.TABLE_OF out of sync"


# -- tables declared outside the plant (issue 14 §4: trading history) -----------------------


def register_table(name: str, columns: str, dedup_keys: tuple[str, ...], event: type,
                   rows: Callable[[Any], list[tuple]], columnar_spec: str) -> Table:
    """Register a table whose rows are not plant events (kalshi_platform/trading/tables.py:
    ``orders``, ``positions``, ``pnl``) with the sinks: ``columns`` ``"name:kind, ..."`` as in
    :data:`TABLES`, ``dedup_keys`` (including ``ts``), ``event`` the NamedTuple type whose
    instances are published like plant events, ``rows`` and ``columnar_spec`` as for the plant
    tables (:class:`_Columnar`). Sinks see the tables registered before they are created;
    modules with per-table lookups are told through :data:`TABLE_LISTENERS`. Idempotent for the same ``name`` and
    ``event``; raises ValueError for a name or event type taken by another table."""
    old = TABLES.get(name)
    if old is not None:
        if old.event is not event:
            raise ValueError(f"table {name!r} is already registered")
        return old
    if event in TABLE_FOR_EVENT:
        raise ValueError(f"{event.__name__} already has table {TABLE_FOR_EVENT[event].name!r}")
    t = Table(name, _cols(columns), tuple(dedup_keys), event, rows, _Columnar(event, columnar_spec))
    TABLES[name] = t
    TABLE_FOR_EVENT[event] = t
    for listener in TABLE_LISTENERS:
        listener(t)
    return t


#: called with each table :func:`register_table` adds, so that modules which keep per-table
#: lookups built at import (the QuestDB writer's rows-per-event and timestamp-column maps) see
#: tables registered after they were imported
TABLE_LISTENERS: list[Callable[[Table], None]] = []
