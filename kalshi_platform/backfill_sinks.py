"""Backfill writing: a batch of completed windows published as
:class:`~kalshi_platform.ticker_plant.events.TradeEvent` to every publisher, flushed, and only
then recorded in the checkpoint and saved (step 6 of :mod:`kalshi_platform.backfill`).

Units: ``ts_ns`` ns since the epoch (UTC); prices µ$ and sizes centi-contracts inside
:class:`TradeEvent` (:mod:`kalshi_platform.fixedpoint`).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from kalshi_platform.backfill_checkpoint import Checkpoint, _parquet_stores, _store_key, \
    _writer_files
from kalshi_platform.backfill_plan import BackfillError, _day
from kalshi_platform.ticker_plant.events import TradeEvent


def _live_ts(ev: TradeEvent) -> TradeEvent:
    """The trade stamped as the WebSocket stamps it: ``ts_ms`` (docs/kalshi-api.md §7.7), i.e.
    REST ``created_time`` (µs) truncated to the millisecond. ``ts`` is part of the trades'
    dedup keys, so a backfilled trade and the same trade captured live must carry the same
    value to upsert into one row instead of two."""
    return ev._replace(ts_ns=ev.ts_ns - ev.ts_ns % 1_000_000)


def write_batch(publishers: Sequence[Any], ck: Checkpoint, batch: list[list[Any]]) -> int:
    """Publish the trades of ``batch`` (``[window, trades by id, pages, duplicates]`` each) to
    every publisher in (ts, trade_id) order, flush them, then record the windows in ``ck``
    (``done`` with per-day counts, the Parquet files written) and save it. Returns the number
    of events published. Raises :class:`BackfillError` when a publisher's flush reports
    ``False`` (rows not durable), or the publisher's / the checkpoint's own error."""
    recv = time.time_ns()
    events: list[TradeEvent] = []
    for _, trades, _, _ in batch:
        events.extend(_live_ts(t.to_event(recv)) for t in trades.values())
    events.sort(key=lambda e: (e.ts_ns, e.trade_id))
    for p in publishers:
        for ev in events:
            p.publish(ev)
    for p in publishers:
        # a sink that reports False (the QuestDB writer: rows neither acknowledged nor
        # spooled yet) must not be checkpointed past; the next run redoes the windows
        if p.flush() is False:
            raise BackfillError(f"{type(p).__name__} could not make the rows durable "
                                "(QuestDB busy and spool unavailable); re-run to resume")
    for w, trades, pages, dups in batch:
        days: dict[str, int] = {}
        for t in trades.values():
            d = _day(t.ts_ns)
            days[d] = days.get(d, 0) + 1
        ck.done[w.key] = {"trades": len(trades), "pages": pages, "duplicates": dups,
                          "days": dict(sorted(days.items()))}
    for st in _parquet_stores(publishers):
        ck.files[_store_key(st)] = _writer_files(st)
    ck.save()
    return len(events)
