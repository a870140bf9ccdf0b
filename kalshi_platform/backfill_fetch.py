"""Backfill fetching: one window's trades from one tier, page by page with the cursor, kept
to the window and deduplicated by ``trade_id`` (step 4 of :mod:`kalshi_platform.backfill`;
docs/kalshi-api.md §3.7, §3.9). The request rate is bounded by the shared
:class:`~kalshi_platform.api.rest.RestClient`'s token bucket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from kalshi_platform.api.models import Trade
from kalshi_platform.api.rest import RestClient
from kalshi_platform.backfill_plan import NS


@dataclass
class BackfillStats:
    """Live counters (passed to the progress callback). ``windows_skipped``: done by an
    earlier run; ``outside_window``: returned by the API but outside the window (the ±1 s query
    padding, or another ticker) and left to the window they belong to."""

    windows_total: int = 0
    windows_done: int = 0
    windows_skipped: int = 0
    windows_committed: int = 0
    pages: int = 0
    trades_fetched: int = 0
    trades_inserted: int = 0
    duplicates: int = 0
    outside_window: int = 0
    cutoff_moves: int = 0
    files_rolled_back: int = 0
    started: float = field(default_factory=time.monotonic)


async def _walk(client: RestClient, tier: str, ticker: str, lo_ns: int, hi_ns: int,
                trades: dict[str, Trade], stats: BackfillStats,
                on_page: Callable[[], None]) -> tuple[int, int]:
    """Fetch one tier for ``[lo_ns, hi_ns)`` into ``trades`` (by id); returns (pages, dups)."""
    path = "/historical/trades" if tier == "historical" else "/markets/trades"
    params = {"ticker": ticker, "min_ts": max(0, lo_ns // NS - 1),
              "max_ts": -(-hi_ns // NS) + 1, "limit": 1000}
    pages = dups = 0
    async for page in client.iter_pages(path, params, "trades"):
        pages += 1
        stats.pages += 1
        for obj in page:
            t = Trade.from_wire(obj)
            stats.trades_fetched += 1
            if t.ticker != ticker or not lo_ns <= t.ts_ns < hi_ns:
                stats.outside_window += 1
            elif t.trade_id in trades:
                dups += 1
            else:
                trades[t.trade_id] = t
        on_page()
    return pages, dups
