"""Trading history as storage rows: tables ``orders``, ``fills``, ``positions``, ``pnl``
(issue 14 §4; docs/trading.md "Tables").

Same conventions as kalshi_platform/storage/schema.py (``ts`` designated timestamp in UTC
µs, prices in dollars and sizes in contracts as doubles, money in dollars as doubles
(floored to $0.000001), tickers as symbols, small sets as enums). ``fills`` is the existing
table of the private fill channel: our fills become
:class:`~kalshi_platform.ticker_plant.events.FillEvent` rows (:func:`fill_events`). The other
three are :data:`TRADING_TABLES` (columns, dedup keys), whose rows are the NamedTuple records
:class:`OrderRecord`, :class:`PositionRecord`, :class:`PnlRecord` (plant units: µ$, centi-
contracts, UTC ns). :func:`register_storage_tables` registers them in storage/schema.py
(``register_table``), after which the same sinks as market data take them: the Parquet
store (``ParquetStore.publish``) and the QuestDB writer (ILP rows, DDL with the dedup keys).
:func:`records` gives every row of a node at a time; :func:`write_parquet` writes all four
under a directory (the backtest report's ``tables/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional

from kalshi_platform.ticker_plant.events import FillEvent

if TYPE_CHECKING:  # pragma: no cover
    from kalshi_platform.trading.node import TradingNode


@dataclass(frozen=True)
class TableSpec:
    """A table: ``columns`` ``(name, kind)`` in order (kinds as storage/schema.py),
    ``dedup_keys`` (including ``ts``)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    dedup_keys: tuple[str, ...]


class OrderRecord(NamedTuple):
    """An ``orders`` row: an order's latest state. Prices µ$ (``price`` on the order's side
    scale), counts centi-contracts, ``fees`` µ$, ``ts_ns`` its last update (UTC ns)."""

    ticker: str
    ts_ns: int
    client_order_id: str
    venue_order_id: Optional[str]
    side: str
    action: str
    price: int
    yes_price: int
    count: int
    filled: int
    status: str
    time_in_force: str
    fees: int
    external: bool
    reason: str


class PositionRecord(NamedTuple):
    """A ``positions`` row at ``ts_ns``: signed YES-equivalent ``position`` (centi-contracts),
    money fields in µ$ (floored), ``volume`` centi-contracts."""

    ticker: str
    ts_ns: int
    event_ticker: str
    position: int
    cost: int
    realized_pnl: int
    fees_paid: int
    settled: int
    volume: int
    turnover: int


class PnlRecord(NamedTuple):
    """A ``pnl`` row at ``ts_ns`` for ``key`` (a ticker, an event, or ``total``) of ``scope``
    market | event | total; money in µ$ (floored)."""

    key: str
    ts_ns: int
    scope: str
    realized: int
    unrealized_mid: int
    unrealized_liquidation: int
    fees: int
    net: int


#: name -> (columns, dedup keys, record type, columnar spec for storage/schema._Columnar)
_DECL = {
    "orders": ("ticker:symbol, ts:timestamp, client_order_id:varchar, venue_order_id:varchar,"
               " side:enum, action:enum, price:double, yes_price:double, count:double,"
               " filled:double, status:enum, time_in_force:enum, fees:double,"
               " external:boolean, reason:varchar",
               ("ts", "ticker", "client_order_id", "status"), OrderRecord,
               "str:ticker, us!:ts_ns, str:client_order_id, str:venue_order_id, str:side,"
               " str:action, p!:price, p!:yes_price, q!:count, q!:filled, str:status,"
               " str:time_in_force, p!:fees, bool:external, str:reason"),
    "positions": ("ticker:symbol, ts:timestamp, event_ticker:symbol, position:double,"
                  " cost:double, realized_pnl:double, fees_paid:double, settled:double,"
                  " volume:double, turnover:double",
                  ("ts", "ticker"), PositionRecord,
                  "str:ticker, us!:ts_ns, str:event_ticker, q!:position, p!:cost,"
                  " p!:realized_pnl, p!:fees_paid, p!:settled, q!:volume, p!:turnover"),
    "pnl": ("key:symbol, ts:timestamp, scope:enum, realized:double, unrealized_mid:double,"
            " unrealized_liquidation:double, fees:double, net:double",
            ("ts", "key", "scope"), PnlRecord,
            "str:key, us!:ts_ns, str:scope, p!:realized, p!:unrealized_mid,"
            " p!:unrealized_liquidation, p!:fees, p!:net"),
}


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(x.strip() for x in item.split(":")) for item in spec.split(","))


TRADING_TABLES: dict[str, TableSpec] = {
    name: TableSpec(name, _cols(d[0]), d[1]) for name, d in _DECL.items()}


def table_specs() -> dict[str, TableSpec]:
    """The trading tables for storage/schema.py to register (a copy)."""
    return dict(TRADING_TABLES)


def _row(rec: tuple) -> list[tuple]:
    """The storage row of a record (schema ``Table.rows``): µs, dollars, contracts."""
    kinds = _KINDS[type(rec)]
    return [tuple(_conv(k, v) for k, v in zip(kinds, rec))]


def _conv(op: str, v):
    if v is None:
        return None
    if op == "us":
        return v // 1000
    if op == "p":
        return v / 1e6
    if op == "q":
        return v / 100
    return v


_KINDS = {d[2]: [item.split(":")[0].strip().rstrip("!") for item in d[3].split(",")]
          for d in _DECL.values()}


def register_storage_tables() -> dict:
    """Register ``orders``, ``positions``, ``pnl`` in storage/schema.py (idempotent; imports
    pyarrow). Call before creating a sink that should take them. Returns name -> Table."""
    from kalshi_platform.storage.schema import register_table

    return {name: register_table(name, d[0], d[1], d[2], _row, d[3])
            for name, d in _DECL.items()}


def _u(money: int) -> int:
    """Money (1e-8 $) → µ$, floored."""
    return money // 100


def order_records(node: "TradingNode") -> list[OrderRecord]:
    """One record per order, its latest state."""
    return [OrderRecord(o.ticker, o.updated_ns, o.client_order_id, o.venue_order_id,
                        o.side.value, o.action.value, o.price, o.yes_price, o.count, o.filled,
                        o.status.value, o.tif.value, _u(o.fees), o.external, o.reason)
            for o in node.oms.all_orders()]


def position_records(node: "TradingNode", ts_ns: int) -> list[PositionRecord]:
    """One record per market at ``ts_ns``."""
    return [PositionRecord(p.ticker, ts_ns, p.event, p.pos, _u(p.cost), _u(p.realized),
                           _u(p.fees), _u(p.settled), p.volume, _u(p.turnover))
            for p in node.portfolio.positions.values()]


def pnl_records(node: "TradingNode", ts_ns: int) -> list[PnlRecord]:
    """PnL at ``ts_ns`` per market, per event and in total."""
    tops = node.tops()
    mid, liq = node.portfolio.by_event(tops, "mid"), node.portfolio.by_event(tops, "liquidation")
    rows = []
    for t, p in node.portfolio.positions.items():
        bid, ask = tops.get(t, (None, None))
        um, ul = p.unrealized(bid, ask, "mid"), p.unrealized(bid, ask, "liquidation")
        rows.append(PnlRecord(t, ts_ns, "market", _u(p.realized), _u(um), _u(ul), _u(p.fees),
                              _u(p.realized + um - p.fees)))
    for e, d in mid.items():
        rows.append(PnlRecord(e, ts_ns, "event", _u(d["realized"]), _u(d["unrealized"]),
                              _u(liq[e]["unrealized"]), _u(d["fees"]), _u(d["net"])))
    tm, tl = node.pnl("mid"), node.pnl("liquidation")
    rows.append(PnlRecord("total", ts_ns, "total", _u(tm["realized"]), _u(tm["unrealized"]),
                          _u(tl["unrealized"]), _u(tm["fees"]), _u(tm["net"])))
    return rows


def records(node: "TradingNode", ts_ns: int) -> list[tuple]:
    """Every trading row of ``node`` at ``ts_ns``, to publish to any sink (after
    :func:`register_storage_tables`): orders, our fills, positions, PnL."""
    return [*order_records(node), *fill_events(node), *position_records(node, ts_ns),
            *pnl_records(node, ts_ns)]


def fill_events(node: "TradingNode") -> list[FillEvent]:
    """Our fills as rows of the existing ``fills`` table (fee in micro-dollars, floored;
    ``post_position`` the signed position after the fill)."""
    pos: dict[str, int] = {}
    out = []
    for f in node.fills:
        pos[f.ticker] = pos.get(f.ticker, 0) + f.signed_count
        out.append(FillEvent(f.ticker, f.ts_ns, f.fill_id, f.venue_order_id, f.side.value,
                             f.action.value, f.is_taker, f.yes_price, f.count, f.fee // 100,
                             pos[f.ticker], None))
    return out


def write_parquet(node: "TradingNode", out_dir: str | Path, ts_ns: int) -> list[Path]:
    """Write ``orders``/``fills``/``positions``/``pnl`` Parquet files under ``out_dir``, each
    through its storage/schema.py table (the Parquet store's conversion). Returns the
    paths."""
    import pyarrow.parquet as pq

    tables = register_storage_tables()
    from kalshi_platform.storage.schema import TABLES

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {"orders": order_records(node), "positions": position_records(node, ts_ns),
            "pnl": pnl_records(node, ts_ns), "fills": fill_events(node)}
    tables["fills"] = TABLES["fills"]
    paths = []
    for name in ("orders", "positions", "pnl", "fills"):
        pq.write_table(tables[name].to_arrow(rows[name]), out / f"{name}.parquet")
        paths.append(out / f"{name}.parquet")
    return paths
