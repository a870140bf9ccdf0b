"""The row-by-row ILP mapping of a storage row onto the ``questdb`` client's ``row()`` call.

The writer sends columnar batches (:mod:`kalshi_platform.storage.ilp_batch`); this mapping is
the reference they are checked against (tests) and what ``bench`` feeds the raw client's
``Sender.row()`` with, so both paths send the same rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

from kalshi_platform.storage.schema import TABLE_LISTENERS, TABLES, Table

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import TimestampMicros


@dataclass(frozen=True)
class _Plan:
    symbols: tuple[tuple[int, str], ...]
    columns: tuple[tuple[int, str, bool], ...]  # (index, name, is_timestamp)
    ts_index: int


def _plan(t: Table) -> _Plan:
    syms, cols, ts = [], [], -1
    for i, c in enumerate(t.columns):
        if c.name == "ts":
            ts = i
        elif c.kind in ("symbol", "enum"):
            syms.append((i, c.name))
        else:
            cols.append((i, c.name, c.kind == "timestamp"))
    assert ts >= 0, t.name
    return _Plan(tuple(syms), tuple(cols), ts)


def _compile_row_fn(table: str, plan: _Plan) -> Callable[[Any, tuple], None]:
    """A straight-line ``fn(buf, values)`` for one table: no per-row loop over the schema, one
    ``is not None`` test per nullable column (generated once per table, at import)."""
    lines = ["def fn(buf, v, TM=TimestampMicros):", "    s = {}", "    c = {}"]
    for i, name in plan.symbols:
        lines += [f"    x = v[{i}]", f"    if x is not None: s[{name!r}] = x"]
    for i, name, is_ts in plan.columns:
        lines += [f"    x = v[{i}]",
                  f"    if x is not None: c[{name!r}] = {'TM(x)' if is_ts else 'x'}"]
    lines.append(f"    buf.row({table!r}, symbols=s, columns=c, at=TM(v[{plan.ts_index}]))")
    ns: dict[str, Any] = {"TimestampMicros": TimestampMicros}
    exec("\n".join(lines), ns)  # noqa: S102 - code built from our own schema names only
    return ns["fn"]


_ROW_FNS: dict[str, Callable[[Any, tuple], None]] = {
    name: _compile_row_fn(name, _plan(t)) for name, t in TABLES.items()}
# tables registered after this import (trading tables) get their row function too
TABLE_LISTENERS.append(lambda t: _ROW_FNS.__setitem__(t.name, _compile_row_fn(t.name, _plan(t))))


def add_ilp_row(buf: Any, table: str, values: tuple) -> None:
    """Append one storage row (``values`` in the column order of ``schema.TABLES[table]``) to
    a ``questdb`` Buffer (or Sender, or anything with its ``row()``): SYMBOL columns as ILP
    symbols, ``ts`` as the designated timestamp (µs), other timestamps as
    ``TimestampMicros``, ``None`` omitted (ILP null), UUID and VARCHAR as strings, DOUBLE as
    float, LONG as int.

    Raises ``questdb.QuestDBError`` (or ``OverflowError``) for a value the client cannot
    encode (e.g. a LONG beyond 2^63); ``KeyError`` for an unknown table.
    """
    _ROW_FNS[table](buf, values)
