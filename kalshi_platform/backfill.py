"""Trade backfill: Kalshi's public trade history → the plant's sinks (issue #5 item 1).

How (docs/kalshi-api.md §3.7, §3.9, §6):

1. ``GET /historical/cutoff`` gives ``trades_created_ts`` (T). Trades created before T are
   served only by ``/historical/trades``, later ones by ``/markets/trades``.
2. The markets to fetch come from ``--ticker`` (checked with ``/markets/{t}``, then
   ``/historical/markets/{t}``, then the trade tape), ``--event`` or ``--series`` (``/markets`` plus
   ``/historical/markets``, so markets settled before the cutoff are found too).
3. The requested range is cut into **windows** per market: aligned to multiples of the window
   length (UTC), clipped to the range and to the market's open..close time (± 1 day), and split
   at T; each window goes to the tier T assigns it. The plan is stored in the checkpoint, so a
   resumed run walks exactly the same windows.
4. Each window walks its endpoint with ``limit=1000`` and the cursor until ``""``. The query
   asks ``min_ts = start − 1 s``, ``max_ts = end + 1 s`` (inclusivity is undocumented, §10.3)
   and keeps only trades with ``start ≤ created_time < end`` for the window's ticker, so
   windows are disjoint by construction; repeated ``trade_id``\\ s inside a window are counted
   as duplicates and dropped. Before live windows are committed the cutoff is read again
   (after they were fetched): if it moved into a window, the moved part is also read from the
   historical tier and merged by ``trade_id`` (the cutoff only ever advances, so a trade that
   left the live tier before our read of it is below the new cutoff).
5. Windows run concurrently (``concurrency`` workers) through **one** REST client, whose token
   bucket bounds the request rate for all of them (retries included).
6. Completed windows are committed in batches: their trades are published as
   :class:`~kalshi_platform.ticker_plant.events.TradeEvent` to every publisher (the
   ``Publisher`` protocol: Parquet store, QuestDB writer, …), the publishers are flushed, and
   only then is the checkpoint (done windows, per-day counts, the Parquet files written so
   far) replaced atomically. A run interrupted between a flush and its checkpoint leaves
   Parquet files the checkpoint does not list; a resumed run deletes them before continuing
   (:func:`rollback_uncommitted`), and QuestDB's dedup keys absorb the re-sent rows.

Units: times are ns since the epoch (UTC) unless named ``_s``; prices µ$ and sizes
centi-contracts inside :class:`TradeEvent` (:mod:`kalshi_platform.fixedpoint`).

Modules: inputs and planning :mod:`.backfill_plan`, checkpoint and rollback
:mod:`.backfill_checkpoint`, fetching a window :mod:`.backfill_fetch`, writing through the
sinks :mod:`.backfill_sinks`, validation :mod:`.backfill_validate`, the report
:mod:`.backfill_report`; this module runs them (concurrent windows, batched commits).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Sequence

from kalshi_platform.api.models import Trade
from kalshi_platform.api.rest import RestClient

# every name of the former single module stays importable from here (tests, tools/backfill.py)
from kalshi_platform.backfill_checkpoint import (
    CHECKPOINT_VERSION,
    Checkpoint,
    _parquet_stores,
    _store_key,
    _writer_files,
    rollback_uncommitted,
)
from kalshi_platform.backfill_fetch import BackfillStats, _walk
from kalshi_platform.backfill_plan import (
    _EPOCH,
    DAY_NS,
    NS,
    SPAN_MARGIN_NS,
    BackfillError,
    Target,
    Window,
    _day,
    _has_trades,
    _iso,
    parse_time,
    parse_window,
    plan_windows,
    resolve_markets,
    run_id,
)
from kalshi_platform.backfill_report import _gaps, _report, report_lines
from kalshi_platform.backfill_sinks import _live_ts, write_batch
from kalshi_platform.backfill_validate import storage_trade_counts, validate_counts

log = logging.getLogger(__name__)

__all__ = [
    "BackfillError",
    "Target",
    "Window",
    "BackfillStats",
    "Checkpoint",
    "parse_time",
    "parse_window",
    "run_id",
    "resolve_markets",
    "plan_windows",
    "rollback_uncommitted",
    "run_backfill",
    "storage_trade_counts",
    "validate_counts",
    "report_lines",
]


async def run_backfill(client: RestClient, publishers: Sequence[Any], ck: Checkpoint, *,
                       target: Target, start_ns: int, end_ns: int, window_s: int = 86_400,
                       concurrency: int = 8, commit_rows: int = 100_000,
                       commit_interval_s: float = 30.0,
                       on_progress: Callable[[BackfillStats], None] | None = None,
                       ) -> dict[str, Any]:
    """Run (or resume) the backfill described by ``ck`` and return the report (see
    :func:`_report`).

    ``publishers`` follow the ``Publisher`` protocol; they are flushed at every commit, not
    closed. A commit happens once ``commit_rows`` trades (0 = after every window) or
    ``commit_interval_s`` seconds have accumulated, and at the end. Before committing live
    windows the cutoff is read again; any live window it has moved into also gets the moved
    part from the historical tier (merged by ``trade_id``).

    ``on_progress(stats)`` is called after every page and commit; an exception it raises stops
    the run like any failure: completed historical-tier windows are committed (live ones need
    a fresh cutoff read first, so they are left to the next run), then the exception
    propagates. A later run with the same checkpoint resumes.

    Raises :class:`BackfillError`, :class:`~kalshi_platform.api.rest.RestError` (after the
    client's retries), or a publisher's error.
    """
    if end_ns <= start_ns:
        raise BackfillError("the end of the range must be after its start")
    if not 1 <= concurrency <= 64:
        raise BackfillError("concurrency must be in 1..64")
    stats = BackfillStats()
    t_wall = time.time_ns()
    if ck.resuming:
        stats.files_rolled_back = rollback_uncommitted(publishers, ck)
    await _ensure_plan(client, ck, target, start_ns, end_ns, window_s)
    plan = ck.plan
    pending = [w for w in plan if w.key not in ck.done]
    stats.windows_total = len(plan)
    stats.windows_skipped = len(plan) - len(pending)
    run = _Run(client, publishers, ck, stats, concurrency=concurrency, commit_rows=commit_rows,
               commit_interval_s=commit_interval_s, on_progress=on_progress)
    await run.run(pending, t_wall)
    return _report(ck, stats, client, start_ns, end_ns)


async def _ensure_plan(client: RestClient, ck: Checkpoint, target: Target, start_ns: int,
                       end_ns: int, window_s: int) -> None:
    """Plan the windows (cutoff read, markets resolved) and save, unless ``ck`` has a plan."""
    if ck.plan is None:
        cutoff = await client.get_historical_cutoff()
        markets = await resolve_markets(client, target)
        ck.cutoff_ns = cutoff.trades_created_ns
        ck.plan = plan_windows(markets, start_ns, end_ns, ck.cutoff_ns, window_s)
        ck.save()


class _Run:
    """One invocation's windows: ``concurrency`` workers fetch them through the one client
    (its token bucket bounds the rate), completed windows are committed in batches.

    ``completed`` holds fetched, not yet committed windows as ``[window, trades by id, pages,
    duplicates]``. Windows are fetched with this module's ``_walk``."""

    def __init__(self, client: RestClient, publishers: Sequence[Any], ck: Checkpoint,
                 stats: BackfillStats, *, concurrency: int, commit_rows: int,
                 commit_interval_s: float,
                 on_progress: Callable[[BackfillStats], None] | None) -> None:
        self.client = client
        self.publishers = publishers
        self.ck = ck
        self.stats = stats
        self.concurrency = concurrency
        self.commit_rows = commit_rows
        self.commit_interval_s = commit_interval_s
        self.progress = on_progress or (lambda s: None)
        self.completed: list[list[Any]] = []
        self.rows = 0
        self.last_commit = time.monotonic()
        self.commit_failed = False
        self.cutoff_ns = ck.cutoff_ns or 0
        self.commit_lock = asyncio.Lock()

    def page_cb(self) -> None:
        self.progress(self.stats)

    def commit(self, batch: list[list[Any]], notify: bool = True) -> None:
        """Publish, flush, then checkpoint ``batch`` (synchronous: nothing interleaves)."""
        if not batch:
            return
        try:
            n_events = write_batch(self.publishers, self.ck, batch)
        except BaseException:
            self.commit_failed = True
            raise
        ids = {id(b) for b in batch}
        self.completed[:] = [b for b in self.completed if id(b) not in ids]
        self.stats.windows_committed += len(batch)
        self.stats.trades_inserted += n_events
        self.rows = sum(len(b[1]) for b in self.completed)
        self.last_commit = time.monotonic()
        if notify:
            self.progress(self.stats)

    def due(self) -> bool:
        return bool(self.completed) and (
            self.rows >= self.commit_rows
            or time.monotonic() - self.last_commit >= self.commit_interval_s)

    async def verify_and_commit(self, force: bool = False) -> None:
        """Re-read the cutoff (after every window of the batch was fetched), merge the moved
        part of live windows from the historical tier, then commit the batch."""
        async with self.commit_lock:
            if not (force or self.due()):  # another worker committed while this one waited
                return
            batch = list(self.completed)
            live = [b for b in batch if b[0].tier == "live"]
            if live:
                await self._merge_moved(live)
            self.commit(batch)

    async def _merge_moved(self, live: list[list[Any]]) -> None:
        """Read the cutoff again; for each live window it moved into, fetch the moved part
        from the historical tier into the window's trades (merged by ``trade_id``)."""
        cut = (await self.client.get_historical_cutoff()).trades_created_ns
        self.cutoff_ns = cut = max(self.cutoff_ns, cut)
        moved = [b for b in live if cut > b[0].start_ns]
        sem = asyncio.Semaphore(self.concurrency)

        async def merge(b: list[Any]) -> None:
            async with sem:
                w = b[0]
                pages, dups = await _walk(self.client, "historical", w.ticker, w.start_ns,
                                          min(cut, w.end_ns), b[1], self.stats, self.page_cb)
                b[2] += pages
                b[3] += dups
                self.stats.duplicates += dups

        self.stats.cutoff_moves += len(moved)
        await asyncio.gather(*(merge(b) for b in moved))

    async def worker(self, queue: asyncio.Queue[Window]) -> None:
        while True:
            try:
                w = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            trades: dict[str, Trade] = {}
            pages, dups = await _walk(self.client, w.tier, w.ticker, w.start_ns, w.end_ns,
                                      trades, self.stats, self.page_cb)
            self.stats.duplicates += dups
            self.stats.windows_done += 1
            self.completed.append([w, trades, pages, dups])
            self.rows += len(trades)
            if self.due():
                await self.verify_and_commit()

    async def run(self, pending: list[Window], t_wall: int) -> None:
        """Fetch and commit ``pending``; on any exit, commit what is safe and record the run
        in the checkpoint (``t_wall``: the run's start, ns UTC)."""
        queue: asyncio.Queue[Window] = asyncio.Queue()
        for w in pending:
            queue.put_nowait(w)
        tasks = [asyncio.ensure_future(self.worker(queue))
                 for _ in range(min(self.concurrency, len(pending)))]
        try:
            if tasks:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for t in done:
                    if t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
            await self.verify_and_commit(force=True)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._finish(t_wall)

    def _finish(self, t_wall: int) -> None:
        """Commit the completed historical windows (no network here; live ones need a fresh
        cutoff read) unless a commit failed, then append this run's summary and save."""
        ck, stats = self.ck, self.stats
        safe = [b for b in self.completed if b[0].tier == "historical"]
        if safe and not self.commit_failed:
            try:  # keep what finished before the failure or interrupt (no network here)
                self.commit(safe, notify=False)
            except Exception:  # the original error matters more
                log.exception("commit after failure failed")
        ck.runs.append({"started": _iso(t_wall),
                        "duration_s": round(time.monotonic() - stats.started, 3),
                        "windows": stats.windows_committed,
                        "trades_inserted": stats.trades_inserted,
                        "duplicates": stats.duplicates, "requests": self.client.stats.requests,
                        "complete": ck.complete})
        if not self.commit_failed:
            try:
                ck.save()
            except OSError:
                log.exception("could not save checkpoint %s", ck.path)
