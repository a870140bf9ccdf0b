"""Backfill report: the summary of a run and of its checkpoint, and its printable rows."""

from __future__ import annotations

import time
from typing import Any

from kalshi_platform.api.rest import RestClient
from kalshi_platform.backfill_checkpoint import Checkpoint
from kalshi_platform.backfill_fetch import BackfillStats
from kalshi_platform.backfill_plan import Window, _iso


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
