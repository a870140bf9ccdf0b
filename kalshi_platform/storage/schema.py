"""Every storage table declared once: columns, designated timestamp, dedup keys, row mapping.

The same declaration drives the Parquet store (Arrow schema) and the QuestDB hot tier (DDL and
ILP rows), so the historical tier and the embedded store share one layout (architecture.md
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

Deviation from architecture.md: ``bbo`` carries ``seq`` (the message that moved the top), so
two BBO changes in one millisecond are distinct rows under the dedup keys, and ``state`` (the
book's state: a ``stale``/``syncing`` row with null prices marks where a book stopped being
trustworthy; docs/plant-contract.md); ``fills`` is an extra table for the private fill
channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa

from kalshi_platform.fixedpoint import PRICE_SCALE, SIZE_SCALE
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
    the plant ``event`` type it stores, and ``rows(event) -> list[tuple]`` in column order."""

    name: str
    columns: tuple[Column, ...]
    dedup_keys: tuple[str, ...]
    event: type
    rows: Callable[[Any], list[tuple]]

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
        return pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in self.columns])


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
              ("ts", "ticker", "trade_id"), TradeEvent, _trade_rows),
        Table("orderbook_deltas", _cols("ticker:symbol, ts:timestamp, sid:long, seq:long,"
                                        " side:enum, price:double, delta:double,"
                                        " recv_ts:timestamp"),
              ("ts", "ticker", "sid", "seq", "side", "price"), DeltaEvent, _delta_rows),
        Table("orderbook_snapshots", _cols("ticker:symbol, ts:timestamp, sid:long, seq:long,"
                                           " side:enum, price:double, size:double,"
                                           " recv_ts:timestamp"),
              ("ts", "ticker", "sid", "seq", "side", "price"), SnapshotEvent, _snapshot_rows),
        Table("bbo", _cols("ticker:symbol, ts:timestamp, yes_bid:double, yes_bid_size:double,"
                           " yes_ask:double, yes_ask_size:double, mid:double, spread:double,"
                           " seq:long, recv_ts:timestamp, state:enum"),
              ("ts", "ticker", "seq", "state"), BBO, _bbo_rows),
        Table("tickers", _cols("ticker:symbol, ts:timestamp, price:double, yes_bid:double,"
                               " yes_ask:double, yes_bid_size:double, yes_ask_size:double,"
                               " volume:double, open_interest:double, recv_ts:timestamp"),
              ("ts", "ticker", "recv_ts"), TickerEvent, _ticker_rows),
        Table("market_lifecycle", _cols("ticker:symbol, ts:timestamp, event_type:enum,"
                                        " result:enum, settlement_value:double,"
                                        " detail:varchar, recv_ts:timestamp"),
              ("ts", "ticker", "event_type"), LifecycleEvent, _lifecycle_rows),
        Table("fills", _cols("ticker:symbol, ts:timestamp, trade_id:uuid, order_id:uuid,"
                             " side:enum, action:enum, is_taker:boolean, yes_price:double,"
                             " count:double, fee_cost:double, post_position:double,"
                             " recv_ts:timestamp"),
              ("ts", "ticker", "trade_id", "order_id"), FillEvent, _fill_rows),
        Table("feed_events", _cols("ts:timestamp, kind:enum, sid:long, expected_seq:long,"
                                   " got_seq:long, detail:varchar"),
              ("ts", "kind", "sid", "expected_seq", "got_seq"), FeedEvent, _feed_rows),
    )
}

#: plant event type → table (the plant's own map, events.TABLE_OF, must name the same tables)
TABLE_FOR_EVENT: dict[type, Table] = {t.event: t for t in TABLES.values()}
assert {e: t.name for e, t in TABLE_FOR_EVENT.items()} == TABLE_OF, "events.TABLE_OF out of sync"
