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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from kalshi_platform.api.models import Market, Trade
from kalshi_platform.api.rest import NotFoundError, RestClient
from kalshi_platform.fsync import fsync_dir
from kalshi_platform.ticker_plant.events import TradeEvent

log = logging.getLogger(__name__)

NS = 1_000_000_000
DAY_NS = 86_400 * NS
SPAN_MARGIN_NS = DAY_NS        # slack around a market's open..close when clipping windows
CHECKPOINT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

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


def _live_ts(ev: TradeEvent) -> TradeEvent:
    """The trade stamped as the WebSocket stamps it: ``ts_ms`` (docs/kalshi-api.md §7.7), i.e.
    REST ``created_time`` (µs) truncated to the millisecond. ``ts`` is part of the trades'
    dedup keys, so a backfilled trade and the same trade captured live must carry the same
    value to upsert into one row instead of two."""
    return ev._replace(ts_ns=ev.ts_ns - ev.ts_ns % 1_000_000)


class BackfillError(ValueError):
    """A backfill cannot start or continue for a reason the user can fix (unknown market,
    no markets in the event/series, a checkpoint from another run, a bad date). One line."""


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What to backfill: explicit market ``tickers``, or every market of one ``event`` or one
    ``series`` (exactly one of the three)."""

    tickers: tuple[str, ...] = ()
    event: str | None = None
    series: str | None = None

    def __post_init__(self) -> None:
        given = sum(bool(x) for x in (self.tickers, self.event, self.series))
        if given != 1:
            raise BackfillError("give exactly one of --ticker, --event, --series")

    def describe(self) -> str:
        if self.tickers:
            return "ticker " + ",".join(self.tickers)
        return f"event {self.event}" if self.event else f"series {self.series}"


def parse_time(text: str, *, end: bool = False) -> int:
    """``YYYY-MM-DD`` (UTC midnight) or an RFC3339 time (``2026-08-24T15:00:00Z``; no zone =
    UTC) → ns since the epoch. With ``end=True`` a bare date means *through* that day (the
    next midnight), so ``--start 2026-08-24 --end 2026-08-24`` is one whole day; an explicit
    time is used as given (exclusive end). Raises :class:`BackfillError`."""
    s = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            dt = datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            ns = int(dt.timestamp()) * NS
            return ns + DAY_NS if end else ns
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    except ValueError:
        raise BackfillError(f"{text!r} is not a date (YYYY-MM-DD) or RFC3339 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def parse_window(text: str) -> int:
    """``"30m"``, ``"6h"``, ``"1d"``, ``"3600s"`` → seconds (1 minute … 31 days).
    Raises :class:`BackfillError`."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text or "")
    if not m:
        raise BackfillError(f"window {text!r}: use a number and a unit s, m, h or d (e.g. 1d)")
    secs = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if not 60 <= secs <= 31 * 86400:
        raise BackfillError(f"window {text!r} must be between 1 minute and 31 days")
    return secs


def run_id(target: Target, start_ns: int, end_ns: int, window_s: int) -> str:
    """12 hex digits naming a backfill (its default checkpoint and Parquet writer id)."""
    key = json.dumps([list(target.tickers), target.event, target.series, start_ns, end_ns,
                      window_s])
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, timezone.utc).strftime("%Y-%m-%d")


def _iso(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // NS, timezone.utc)
    frac = ns % NS
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


# -- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One request chain: trades of ``ticker`` with ``start_ns ≤ created < end_ns`` from
    ``tier`` (``"historical"`` → ``/historical/trades``, ``"live"`` → ``/markets/trades``)."""

    ticker: str
    start_ns: int
    end_ns: int
    tier: str

    @property
    def key(self) -> str:
        return f"{self.ticker}|{self.start_ns}|{self.end_ns}|{self.tier}"


async def resolve_markets(client: RestClient, target: Target) -> list[Market | str]:
    """The markets of ``target`` as :class:`Market` objects, from the live tier and the
    historical tier (markets settled before the cutoff). An explicit ticker with no market
    object in either tier but with trades on the tape is kept as a bare ticker (logged; its
    windows are not clipped to open..close). Raises :class:`BackfillError` for a ticker that
    is unknown everywhere, or an event/series with no markets in either tier."""
    if target.tickers:
        out: list[Market | str] = []
        for t in target.tickers:
            try:
                out.append(await client.get_market(t))
                continue
            except NotFoundError:
                pass
            try:
                out.append(await client.get_historical_market(t))
                continue
            except NotFoundError:
                pass
            if not await _has_trades(client, t):
                raise BackfillError(f"unknown market {t!r} (not in /markets, "
                                    "/historical/markets or the trade tape)")
            log.warning("no market object for %s, but it has trades: backfilling it over the "
                        "whole range", t)
            out.append(t)
        return out
    kw = {"event_ticker": target.event} if target.event else {"series_ticker": target.series}
    found: dict[str, Market] = {}
    async for m in client.iter_markets(**kw):
        found.setdefault(m.ticker, m)
    try:
        async for m in client.iter_historical_markets(**kw):
            found.setdefault(m.ticker, m)
    except NotFoundError:  # a server without the historical tier (e.g. an older local sim)
        log.warning("%s does not serve /historical/markets: markets settled before the "
                    "cutoff are not included", client.base_url)
    if not found:
        raise BackfillError(f"no markets found for {target.describe()}")
    return [found[t] for t in sorted(found)]


async def _has_trades(client: RestClient, ticker: str) -> bool:
    for path in ("/markets/trades", "/historical/trades"):
        try:
            body = await client.get_json(path, {"ticker": ticker, "limit": 1})
        except NotFoundError:
            continue
        if isinstance(body, dict) and body.get("trades"):
            return True
    return False


def plan_windows(markets: Iterable[Market | str], start_ns: int, end_ns: int, cutoff_ns: int,
                 window_s: int) -> list[Window]:
    """Windows covering ``[start_ns, end_ns)`` per market (see module docstring, step 3),
    ordered by ticker then time. A market whose open..close (± 1 day) misses the range gets
    none."""
    step = window_s * NS
    out: list[Window] = []
    for m in markets:
        ticker = m if isinstance(m, str) else m.ticker
        lo, hi = start_ns, end_ns
        if isinstance(m, Market):
            if m.open_ns is not None:
                lo = max(lo, m.open_ns - SPAN_MARGIN_NS)
            if m.close_ns is not None:
                hi = min(hi, m.close_ns + SPAN_MARGIN_NS)
        t = lo
        while t < hi:
            nxt = min(hi, (t // step + 1) * step)
            if t < cutoff_ns < nxt:
                out.append(Window(ticker, t, cutoff_ns, "historical"))
                out.append(Window(ticker, cutoff_ns, nxt, "live"))
            else:
                out.append(Window(ticker, t, nxt, "historical" if t < cutoff_ns else "live"))
            t = nxt
    return out


# -- checkpoint --------------------------------------------------------------------------------


class Checkpoint:
    """The state of one backfill run, kept in a JSON file replaced atomically on each save.

    Attributes: ``params`` (what the run is: target, range, window, base URL), ``plan`` (the
    windows, ``None`` until planned), ``cutoff_ns``, ``done`` (window key → ``{"trades",
    "pages", "duplicates", "days": {"YYYY-MM-DD": n}}``), ``files`` (Parquet files committed,
    relative to the store root, per writer id), ``runs`` (one summary per invocation), and ``resuming`` (the file
    existed when opened).
    """

    def __init__(self, path: Path, params: dict[str, Any]) -> None:
        self.path = Path(path)
        self.params = params
        self.plan: list[Window] | None = None
        self.cutoff_ns: int | None = None
        self.done: dict[str, dict[str, Any]] = {}
        self.files: dict[str, list[str]] = {}
        self.runs: list[dict[str, Any]] = []
        self.resuming = False

    @classmethod
    def open(cls, path: Path, params: dict[str, Any], *, restart: bool = False) -> "Checkpoint":
        """Load ``path`` if it exists (``resuming``), else a new checkpoint (written on first
        save). ``restart`` deletes an existing file first. Raises :class:`BackfillError` for
        an unreadable file or one made for different ``params``."""
        path = Path(path)
        ck = cls(path, params)
        if restart and path.exists():
            path.unlink()
        if not path.exists():
            return ck
        try:
            obj = json.loads(path.read_bytes())
            if obj.get("version") != CHECKPOINT_VERSION:
                raise ValueError(f"version {obj.get('version')!r}")
            if obj["params"] != params:
                diff = sorted(k for k in set(params) | set(obj["params"])
                              if params.get(k) != obj["params"].get(k))
                raise BackfillError(f"checkpoint {path} belongs to a different backfill "
                                    f"({', '.join(diff)} differ); use --restart or another "
                                    "--checkpoint")
            ck.plan = None if obj["plan"] is None else [Window(*w) for w in obj["plan"]]
            ck.cutoff_ns = obj["cutoff_ns"]
            ck.done = obj["done"]
            ck.files = obj["files"]
            ck.runs = obj["runs"]
        except BackfillError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BackfillError(f"checkpoint {path} is unreadable ({e}); use --restart") from None
        ck.resuming = True
        return ck

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename, fsync of the directory)."""
        obj = {"version": CHECKPOINT_VERSION, "params": self.params,
               "plan": None if self.plan is None else
               [[w.ticker, w.start_ns, w.end_ns, w.tier] for w in self.plan],
               "cutoff_ns": self.cutoff_ns, "done": self.done, "files": self.files,
               "runs": self.runs}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "wb") as f:
            f.write(json.dumps(obj, separators=(",", ":")).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)

    @property
    def complete(self) -> bool:
        return self.plan is not None and all(w.key in self.done for w in self.plan)

    def day_counts(self) -> dict[str, int]:
        """Trades the API returned per UTC day, over every committed window."""
        out: dict[str, int] = {}
        for d in self.done.values():
            for day, n in d["days"].items():
                out[day] = out.get(day, 0) + n
        return dict(sorted(out.items()))


def _parquet_stores(publishers: Sequence[Any]) -> list[Any]:
    from kalshi_platform.storage.parquet_store import ParquetStore

    return [p for p in publishers if isinstance(p, ParquetStore)]


def _writer_files(store: Any) -> list[str]:
    """Files of a ParquetStore's writer id, relative to its root (documented layout
    ``<root>/<table>/date=YYYY-MM-DD/<writer_id>-<n>.parquet``)."""
    pat = re.compile(re.escape(store.writer_id) + r"-\d{6,}\.parquet")
    root = Path(store.root)
    return sorted(str(f.relative_to(root)) for f in root.glob("*/date=*/*.parquet")
                  if pat.fullmatch(f.name))


def _store_key(store: Any) -> str:
    # by writer id, with paths relative to the root: a store moved between runs still matches
    return str(store.writer_id)


def rollback_uncommitted(publishers: Sequence[Any], ck: Checkpoint) -> int:
    """Delete Parquet files of this run's writer that the checkpoint does not list (written by
    a commit that never reached its checkpoint). Returns how many went."""
    n = 0
    for st in _parquet_stores(publishers):
        keep = set(ck.files.get(_store_key(st), []))
        for rel in _writer_files(st):
            if rel not in keep:
                (Path(st.root) / rel).unlink()
                n += 1
                log.info("removed uncommitted %s", rel)
    return n


# -- running -----------------------------------------------------------------------------------


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
    if ck.plan is None:
        cutoff = await client.get_historical_cutoff()
        markets = await resolve_markets(client, target)
        ck.cutoff_ns = cutoff.trades_created_ns
        ck.plan = plan_windows(markets, start_ns, end_ns, ck.cutoff_ns, window_s)
        ck.save()
    plan = ck.plan
    pending = [w for w in plan if w.key not in ck.done]
    stats.windows_total = len(plan)
    stats.windows_skipped = len(plan) - len(pending)
    progress = on_progress or (lambda s: None)
    page_cb = lambda: progress(stats)  # noqa: E731

    # completed, not yet committed: [window, trades by id, pages, duplicates]
    completed: list[list[Any]] = []
    state: dict[str, Any] = {"rows": 0, "last_commit": time.monotonic(),
                             "commit_failed": False, "cutoff_ns": ck.cutoff_ns or 0}
    commit_lock = asyncio.Lock()

    def commit(batch: list[list[Any]], notify: bool = True) -> None:
        """Publish, flush, then checkpoint ``batch`` (synchronous: nothing interleaves)."""
        if not batch:
            return
        try:
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
        except BaseException:
            state["commit_failed"] = True
            raise
        ids = {id(b) for b in batch}
        completed[:] = [b for b in completed if id(b) not in ids]
        stats.windows_committed += len(batch)
        stats.trades_inserted += len(events)
        state["rows"] = sum(len(b[1]) for b in completed)
        state["last_commit"] = time.monotonic()
        if notify:
            progress(stats)

    def due() -> bool:
        return bool(completed) and (
            state["rows"] >= commit_rows
            or time.monotonic() - state["last_commit"] >= commit_interval_s)

    async def verify_and_commit(force: bool = False) -> None:
        """Re-read the cutoff (after every window of the batch was fetched), merge the moved
        part of live windows from the historical tier, then commit the batch."""
        async with commit_lock:
            if not (force or due()):  # another worker committed while this one waited
                return
            batch = list(completed)
            live = [b for b in batch if b[0].tier == "live"]
            if live:
                cut = (await client.get_historical_cutoff()).trades_created_ns
                state["cutoff_ns"] = cut = max(state["cutoff_ns"], cut)
                moved = [b for b in live if cut > b[0].start_ns]
                sem = asyncio.Semaphore(concurrency)

                async def merge(b: list[Any]) -> None:
                    async with sem:
                        w = b[0]
                        pages, dups = await _walk(client, "historical", w.ticker, w.start_ns,
                                                  min(cut, w.end_ns), b[1], stats, page_cb)
                        b[2] += pages
                        b[3] += dups
                        stats.duplicates += dups

                stats.cutoff_moves += len(moved)
                await asyncio.gather(*(merge(b) for b in moved))
            commit(batch)

    queue: asyncio.Queue[Window] = asyncio.Queue()
    for w in pending:
        queue.put_nowait(w)

    async def worker() -> None:
        while True:
            try:
                w = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            trades: dict[str, Trade] = {}
            pages, dups = await _walk(client, w.tier, w.ticker, w.start_ns, w.end_ns, trades,
                                      stats, page_cb)
            stats.duplicates += dups
            stats.windows_done += 1
            completed.append([w, trades, pages, dups])
            state["rows"] += len(trades)
            if due():
                await verify_and_commit()

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(pending)))]
    try:
        if tasks:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        await verify_and_commit(force=True)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        safe = [b for b in completed if b[0].tier == "historical"]
        if safe and not state["commit_failed"]:
            try:  # keep what finished before the failure or interrupt (no network here)
                commit(safe, notify=False)
            except Exception:  # the original error matters more
                log.exception("commit after failure failed")
        ck.runs.append({"started": _iso(t_wall),
                        "duration_s": round(time.monotonic() - stats.started, 3),
                        "windows": stats.windows_committed,
                        "trades_inserted": stats.trades_inserted,
                        "duplicates": stats.duplicates, "requests": client.stats.requests,
                        "complete": ck.complete})
        if not state["commit_failed"]:
            try:
                ck.save()
            except OSError:
                log.exception("could not save checkpoint %s", ck.path)
    return _report(ck, stats, client, start_ns, end_ns)


def _gaps(ck: Checkpoint) -> list[dict[str, Any]]:
    """Merged time ranges, per ticker, whose windows returned no trades."""
    out: list[dict[str, Any]] = []
    by_ticker: dict[str, list[Window]] = {}
    for w in ck.plan or []:
        by_ticker.setdefault(w.ticker, []).append(w)
    for ticker, ws in sorted(by_ticker.items()):
        cur: list[int] | None = None
        for w in sorted(ws, key=lambda w: w.start_ns):
            d = ck.done.get(w.key)
            empty = d is not None and d["trades"] == 0
            if empty and cur is not None and cur[1] == w.start_ns:
                cur[1] = w.end_ns
            elif empty:
                if cur:
                    out.append({"ticker": ticker, "start": _iso(cur[0]), "end": _iso(cur[1])})
                cur = [w.start_ns, w.end_ns]
            elif cur:
                out.append({"ticker": ticker, "start": _iso(cur[0]), "end": _iso(cur[1])})
                cur = None
        if cur:
            out.append({"ticker": ticker, "start": _iso(cur[0]), "end": _iso(cur[1])})
    return out


def _report(ck: Checkpoint, stats: BackfillStats, client: RestClient, start_ns: int,
            end_ns: int) -> dict[str, Any]:
    """The final report: this run's counters plus totals over every run of the checkpoint."""
    done = ck.done.values()
    total_trades = sum(d["trades"] for d in done)
    first = last = None
    days = ck.day_counts()
    if days:
        first, last = min(days), max(days)
    el = time.monotonic() - stats.started
    return {
        "requested": {"start": _iso(start_ns), "end": _iso(end_ns)},
        "cutoff": _iso(ck.cutoff_ns) if ck.cutoff_ns is not None else None,
        "complete": ck.complete,
        "windows": {"total": stats.windows_total, "this_run": stats.windows_committed,
                    "before": stats.windows_skipped,
                    "historical": sum(1 for w in ck.plan or [] if w.tier == "historical"),
                    "live": sum(1 for w in ck.plan or [] if w.tier == "live")},
        "trades_inserted": stats.trades_inserted,
        "trades_total": total_trades,
        "duplicates_skipped": stats.duplicates,
        "outside_window": stats.outside_window,
        "pages": stats.pages,
        "requests": client.stats.requests,
        "retries": client.stats.retries,
        "status_counts": {str(k): v for k, v in sorted(client.stats.status_counts.items())},
        "throttled_waits": client.stats.throttled_waits,
        "cutoff_moves": stats.cutoff_moves,
        "files_rolled_back": stats.files_rolled_back,
        "days_with_trades": {"first": first, "last": last, "count": len(days)},
        "gaps": _gaps(ck),
        "duration_s": round(el, 3),
        "requests_per_s": round(client.stats.requests / el, 1) if el > 0 else None,
        "checkpoint": str(ck.path),
    }


# -- validation --------------------------------------------------------------------------------


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


def report_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows for printing a report."""
    w = report["windows"]
    rows = [
        ("range", f"{report['requested']['start']} → {report['requested']['end']}"),
        ("cutoff", str(report["cutoff"])),
        ("windows", f"{w['this_run'] + w['before']}/{w['total']} done ({w['this_run']} this run,"
                    f" {w['before']} before; {w['historical']} historical, {w['live']} live)"),
        ("trades inserted", f"{report['trades_inserted']:,} this run, "
                            f"{report['trades_total']:,} in total"),
        ("duplicates skipped", f"{report['duplicates_skipped']:,}"),
        ("days with trades", (f"{report['days_with_trades']['first']} … "
                              f"{report['days_with_trades']['last']} "
                              f"({report['days_with_trades']['count']} days)")
         if report["days_with_trades"]["count"] else "none"),
        ("gaps (empty windows)", f"{len(report['gaps'])} ranges" + (
            ": " + "; ".join(f"{g['ticker']} {g['start']}→{g['end']}" for g in report["gaps"][:5])
            + (" …" if len(report["gaps"]) > 5 else "") if report["gaps"] else "")),
        ("requests", f"{report['requests']:,} ({report['pages']:,} pages, "
                     f"{report['retries']:,} retries, statuses "
                     + (", ".join(f"{k}×{v}" for k, v in report["status_counts"].items()) or "-")
                     + ")"),
        ("duration", f"{report['duration_s']:.2f} s"
                     + (f" ({report['requests_per_s']} req/s)" if report["requests_per_s"] else "")),
        ("status", "complete" if report["complete"] else "incomplete: run again to resume"),
        ("checkpoint", report["checkpoint"]),
    ]
    if report["files_rolled_back"]:
        rows.insert(-2, ("rolled back", f"{report['files_rolled_back']} uncommitted files"))
    return rows

