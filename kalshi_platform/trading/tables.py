"""Trading history as storage rows: tables ``orders``, ``fills``, ``positions``, ``pnl``
(issue 14 §4; docs/trading.md "Tables").

Same conventions as kalshi_platform/storage/schema.py (``ts`` designated timestamp in UTC
µs, prices in dollars and sizes in contracts as doubles, money in dollars as doubles,
tickers as symbols, small sets as enums) and the same column kinds, so that registering
them there is one declaration each. ``fills`` is the existing table of the private fill
channel: our fills become :class:`~kalshi_platform.ticker_plant.events.FillEvent` rows
(:func:`fill_events`), so they go through the sinks unchanged. The other three are declared
in :data:`TRADING_TABLES` (columns, dedup keys) with their row builders; :func:`write_parquet`
writes all four under a directory (the backtest report's ``tables/``). Not yet registered
in ``storage/schema.TABLES`` (its ``Table`` needs a columnar converter per table): see
:func:`table_specs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kalshi_platform.ticker_plant.events import FillEvent
from kalshi_platform.trading.model import MONEY_SCALE

if TYPE_CHECKING:  # pragma: no cover
    from kalshi_platform.trading.node import TradingNode


@dataclass(frozen=True)
class TableSpec:
    """A table: ``columns`` ``(name, kind)`` in order (kinds as storage/schema.py),
    ``dedup_keys`` (including ``ts``)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    dedup_keys: tuple[str, ...]


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(x.strip() for x in item.split(":")) for item in spec.split(","))


TRADING_TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("orders", _cols("ticker:symbol, ts:timestamp, client_order_id:varchar,"
                              " venue_order_id:varchar, side:enum, action:enum, price:double,"
                              " yes_price:double, count:double, filled:double, status:enum,"
                              " time_in_force:enum, fees:double, external:boolean,"
                              " reason:varchar"),
              ("ts", "ticker", "client_order_id", "status")),
    TableSpec("positions", _cols("ticker:symbol, ts:timestamp, event_ticker:symbol,"
                                 " position:double, cost:double, realized_pnl:double,"
                                 " fees_paid:double, settled:double, volume:double,"
                                 " turnover:double"),
              ("ts", "ticker")),
    TableSpec("pnl", _cols("key:symbol, ts:timestamp, scope:enum, realized:double,"
                           " unrealized_mid:double, unrealized_liquidation:double,"
                           " fees:double, net:double"),
              ("ts", "key", "scope")),
)}


def table_specs() -> dict[str, TableSpec]:
    """The trading tables for storage/schema.py to register (a copy)."""
    return dict(TRADING_TABLES)


def _m(units: int) -> float:
    return units / MONEY_SCALE


def order_rows(node: "TradingNode") -> list[tuple]:
    """One row per order, its latest state (``orders`` columns)."""
    return [(o.ticker, o.updated_ns // 1000, o.client_order_id, o.venue_order_id,
             o.side.value, o.action.value, o.price / 1e6, o.yes_price / 1e6, o.count / 100,
             o.filled / 100, o.status.value, o.tif.value, _m(o.fees), o.external, o.reason)
            for o in node.oms.all_orders()]


def position_rows(node: "TradingNode", ts_ns: int) -> list[tuple]:
    """One row per market at ``ts_ns`` (``positions`` columns)."""
    return [(p.ticker, ts_ns // 1000, p.event, p.pos / 100, _m(p.cost), _m(p.realized),
             _m(p.fees), _m(p.settled), p.volume / 100, _m(p.turnover))
            for p in node.portfolio.positions.values()]


def pnl_rows(node: "TradingNode", ts_ns: int) -> list[tuple]:
    """PnL at ``ts_ns`` per market, per event and in total (``pnl`` columns)."""
    tops = node.tops()
    mid, liq = node.portfolio.by_event(tops, "mid"), node.portfolio.by_event(tops, "liquidation")
    ts = ts_ns // 1000
    rows = []
    for t, p in node.portfolio.positions.items():
        bid, ask = tops.get(t, (None, None))
        um, ul = p.unrealized(bid, ask, "mid"), p.unrealized(bid, ask, "liquidation")
        rows.append((t, ts, "market", _m(p.realized), _m(um), _m(ul), _m(p.fees),
                     _m(p.realized + um - p.fees)))
    for e, d in mid.items():
        rows.append((e, ts, "event", _m(d["realized"]), _m(d["unrealized"]),
                     _m(liq[e]["unrealized"]), _m(d["fees"]), _m(d["net"])))
    tm, tl = node.pnl("mid"), node.pnl("liquidation")
    rows.append(("total", ts, "total", _m(tm["realized"]), _m(tm["unrealized"]),
                 _m(tl["unrealized"]), _m(tm["fees"]), _m(tm["net"])))
    return rows


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
    """Write ``orders``/``fills``/``positions``/``pnl`` Parquet files under ``out_dir``
    (pyarrow; fills through storage/schema.py's own ``fills`` table). Returns the paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kalshi_platform.storage.schema import TABLES

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    rows = {"orders": order_rows(node), "positions": position_rows(node, ts_ns),
            "pnl": pnl_rows(node, ts_ns)}
    for name, spec in TRADING_TABLES.items():
        schema = pa.schema([(c, _arrow_type(k)) for c, k in spec.columns])
        cols = list(zip(*rows[name])) if rows[name] else [[] for _ in spec.columns]
        table = pa.table([pa.array(list(v), type=schema.field(i).type)
                          for i, v in enumerate(cols)], schema=schema)
        pq.write_table(table, out / f"{name}.parquet")
        paths.append(out / f"{name}.parquet")
    pq.write_table(TABLES["fills"].to_arrow(fill_events(node)), out / "fills.parquet")
    paths.append(out / "fills.parquet")
    return paths


def _arrow_type(kind: str):
    import pyarrow as pa

    if kind == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return {"symbol": pa.string(), "enum": pa.string(), "varchar": pa.string(),
            "double": pa.float64(), "long": pa.int64(), "boolean": pa.bool_(),
            "uuid": pa.string()}[kind]
