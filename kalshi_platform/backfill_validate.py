"""Backfill validation: per-day trade counts the API returned (the checkpoint) against what
the sinks hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from kalshi_platform.backfill_checkpoint import Checkpoint
from kalshi_platform.backfill_plan import DAY_NS, BackfillError, _day


def storage_trade_counts(root: str | Path, tickers: Iterable[str], start_ns: int,
                         end_ns: int) -> dict[str, int]:
    """Distinct ``trade_id``\\ s per UTC day in a Parquet store's ``trades`` table, for
    ``tickers`` and ``start_ns ≤ ts < end_ns``. Reads only the day partitions in range."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    tickers = sorted(set(tickers))
    base = Path(root) / "trades"
    files = []
    day = start_ns - start_ns % DAY_NS
    while day < end_ns:
        files.extend(sorted((base / f"date={_day(day)}").glob("*.parquet")))
        day += DAY_NS
    if not files or not tickers:
        return {}
    tbl = ds.dataset([str(f) for f in files], format="parquet").to_table(
        columns=["ticker", "ts", "trade_id"])
    ts_us = pc.cast(tbl["ts"], pa.int64())
    mask = pc.and_(pc.and_(pc.greater_equal(ts_us, start_ns // 1000),
                           pc.less(ts_us, -(-end_ns // 1000))),
                   pc.is_in(tbl["ticker"], value_set=pa.array(tickers, pa.string())))
    day_no = pc.divide(pc.filter(ts_us, mask), pa.scalar(DAY_NS // 1000, pa.int64()))
    grouped = pa.table({"day": day_no, "trade_id": pc.filter(tbl["trade_id"], mask)}).group_by(
        "day").aggregate([("trade_id", "count_distinct")])
    return {_day(d * DAY_NS): n for d, n in sorted(zip(grouped["day"].to_pylist(),
                                                        grouped["trade_id_count_distinct"].to_pylist()))}


def validate_counts(ck: Checkpoint, publishers: Sequence[Any], start_ns: int,
                    end_ns: int) -> dict[str, Any]:
    """Compare per-day trade counts the API returned (the checkpoint) with each countable sink:
    a Parquet store (read back) or any publisher with ``count_trades_by_day(tickers, start_ns,
    end_ns) -> {day: n}``. Returns ``{"ok", "api": {...}, "sinks": [{"sink", "ok",
    "mismatches": [{"day", "api", "stored"}]}]}``; raises :class:`BackfillError` when no
    publisher can be counted."""
    from kalshi_platform.storage.parquet_store import ParquetStore

    tickers = sorted({w.ticker for w in ck.plan or []})
    api = ck.day_counts()
    sinks = []
    for p in publishers:
        if isinstance(p, ParquetStore):
            got, name = storage_trade_counts(p.root, tickers, start_ns, end_ns), f"parquet {p.root}"
        elif hasattr(p, "count_trades_by_day"):
            got, name = p.count_trades_by_day(tickers, start_ns, end_ns), type(p).__name__
        else:
            continue
        bad = [{"day": d, "api": api.get(d, 0), "stored": got.get(d, 0)}
               for d in sorted(set(api) | set(got)) if api.get(d, 0) != got.get(d, 0)]
        sinks.append({"sink": name, "ok": not bad, "mismatches": bad})
    if not sinks:
        raise BackfillError("--validate needs a sink that can be read back (parquet)")
    return {"ok": all(s["ok"] for s in sinks), "api": api, "sinks": sinks}
