"""``kalshi-platform backfill``: Kalshi trade history (REST) → the plant's sinks, resumable.

The backfill engine, the REST client (httpx) and the settings are imported inside the command,
not at CLI start. See :mod:`kalshi_platform.backfill` for the method. Sinks come from ``--sink`` exactly as for
``replay`` (:func:`kalshi_platform.tools.sinks.build_sinks`), with the Parquet writer id
``backfill-<run id>``: a fresh run rewrites that writer's files (idempotent re-runs), a resumed
run keeps the committed ones and removes uncommitted leftovers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

from kalshi_platform.tools import exitcodes
from kalshi_platform.tools.cli import _fail, _setup_logging, app, console, err_console
from kalshi_platform.tools.exitcodes import plain_message
from kalshi_platform.tools.sinks import SINKS, UsageError, build_sinks, parse_sinks

if TYPE_CHECKING:  # imported in the command: httpx, pyarrow, pydantic-settings stay out of start
    from kalshi_platform.api.rest import RestClient
    from kalshi_platform.backfill import Checkpoint, Target


@app.command()
def backfill(
    ticker: Optional[list[str]] = typer.Option(None, "--ticker", help="Market ticker (repeat for several)."),
    event: Optional[str] = typer.Option(None, "--event", help="Every market of this event."),
    series: Optional[str] = typer.Option(None, "--series", help="Every market of this series."),
    start: str = typer.Option(..., "--start", help="UTC date YYYY-MM-DD or RFC3339 time (inclusive)."),
    end: str = typer.Option(..., "--end", help="UTC date (through that whole day) or RFC3339 time (exclusive)."),
    sink: str = typer.Option("parquet", help=f"Comma-separated sinks: {', '.join(SINKS)}."),
    store: Optional[Path] = typer.Option(None, help="Parquet store root (default: KALSHI_STORE_DIR or ./store)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint file (default: <store>/_backfill/backfill-<run id>.json)."),
    restart: bool = typer.Option(False, "--restart", help="Discard an existing checkpoint and start over."),
    validate: bool = typer.Option(False, "--validate", help="Compare per-day counts in storage with what the API returned."),
    window: str = typer.Option("1d", help="Time window per request chain (e.g. 6h, 1d, 7d)."),
    concurrency: int = typer.Option(8, help="Windows fetched at once (the token bucket bounds the request rate)."),
    max_retries: int = typer.Option(8, "--max-retries", help="Retries per request after 429/5xx/connection errors (full-jitter backoff, 0.25 s doubling, capped at 30 s)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="REST base URL ending in /trade-api/v2 (default: KALSHI_REST_BASE_URL, else the KALSHI_ENV host)."),
    env: Optional[str] = typer.Option(None, help="prod or demo (default: KALSHI_ENV)."),
    report_json: Optional[Path] = typer.Option(None, "--report-json", help="Also write the report as JSON here."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Backfill public trades (historical + live tiers) into the sinks; resumable."""
    from kalshi_platform.backfill import BackfillError, Checkpoint, run_id
    from kalshi_platform.config import get_settings
    from kalshi_platform.storage.parquet_store import StoreError

    _setup_logging(verbose)
    settings = get_settings()
    target, start_ns, end_ns, window_s, names, client = _prepare(
        settings, ticker=ticker, event=event, series=series, start=start, end=end,
        window=window, concurrency=concurrency, env=env, max_retries=max_retries, sink=sink,
        validate=validate, base_url=base_url)
    rid = run_id(target, start_ns, end_ns, window_s)
    store_root = store or settings.store_dir
    ck_path = checkpoint or (store_root / "_backfill" / f"backfill-{rid}.json")
    params = {"target": target.describe(), "start_ns": start_ns, "end_ns": end_ns,
              "window_s": window_s, "base_url": client.base_url, "sinks": names,
              "store": str(Path(store_root).resolve()) if "parquet" in names else None}
    try:
        ck = Checkpoint.open(ck_path, params, restart=restart)
        if ck.complete:
            _done_already(ck, validate, names, settings, store_root, rid, start_ns, end_ns,
                          report_json)
            return
        publishers = build_sinks(names, writer_id=f"backfill-{rid}", settings=settings,
                                 store=store_root, replace_existing=not ck.resuming)
    except (BackfillError, StoreError, UsageError) as e:
        _fail(str(e))
        return
    if ck.resuming:
        err_console.print(f"resuming from {ck_path} ({len(ck.done)} windows done)",
                          highlight=False)
    report = _run(client, publishers, ck, ck_path, target=target, start_ns=start_ns,
                  end_ns=end_ns, window_s=window_s, concurrency=concurrency, progress=progress)
    _close(publishers)
    if validate:
        from kalshi_platform.backfill import validate_counts

        report["validation"] = validate_counts(ck, publishers, start_ns, end_ns)
    _print_report(report)
    _write_json(report_json, report)
    if validate and not report["validation"]["ok"]:
        raise typer.Exit(exitcodes.INTERNAL)


def _prepare(settings: Any, *, ticker: Optional[list[str]], event: Optional[str],
             series: Optional[str], start: str, end: str, window: str, concurrency: int,
             env: Optional[str], max_retries: int, sink: str, validate: bool,
             base_url: Optional[str]) -> tuple[Target, int, int, int, list[str], RestClient]:
    """Check the options: ``(target, start_ns, end_ns, window_s, sink names, REST client)``;
    a bad one is one line and exit 2."""
    from kalshi_platform.api.auth import AuthError
    from kalshi_platform.api.rest import RestClient
    from kalshi_platform.backfill import BackfillError, Target, parse_time, parse_window

    try:
        target = Target(tickers=tuple(t.strip() for t in ticker or () if t.strip()),
                        event=(event or "").strip() or None, series=(series or "").strip() or None)
        start_ns, end_ns = parse_time(start), parse_time(end, end=True)
        if end_ns <= start_ns:
            raise BackfillError(f"--end {end} is not after --start {start}")
        window_s = parse_window(window)
        if not 1 <= concurrency <= 64:
            raise BackfillError("--concurrency must be in 1..64")
        if env is not None and env not in ("prod", "demo"):
            raise BackfillError(f"--env must be prod or demo, got {env!r}")
        if not 0 <= max_retries <= 20:
            raise BackfillError("--max-retries must be in 0..20")
        names = parse_sinks(sink)
        if validate and "parquet" not in names:
            raise BackfillError("--validate needs a sink that can be read back (--sink parquet)")
        client = RestClient.from_settings(settings, base_url=base_url or None,
                                          env=env or settings.env, max_retries=max_retries)
    except (BackfillError, UsageError, AuthError, ValueError) as e:
        _fail(str(e))
        raise AssertionError("unreachable") from None
    return target, start_ns, end_ns, window_s, names, client


def _run(client: RestClient, publishers: list[Any], ck: Checkpoint, ck_path: Path, *,
         target: Target, start_ns: int, end_ns: int, window_s: int, concurrency: int,
         progress: bool) -> dict[str, Any]:
    """Fetch every window into ``publishers`` with a progress bar on stderr; the report.
    Ctrl-C exits 130 and a failure exits with one line, the sinks closed and the committed
    windows kept for a resume."""
    import asyncio

    from kalshi_platform.api.models import ModelError
    from kalshi_platform.api.rest import RestError
    from kalshi_platform.backfill import BackfillError, run_backfill
    from kalshi_platform.storage.parquet_store import StoreError

    bar, on_progress = _progress(client, progress)

    async def go() -> dict[str, Any]:
        async with client:
            return await run_backfill(client, publishers, ck, target=target,
                                      start_ns=start_ns, end_ns=end_ns, window_s=window_s,
                                      concurrency=concurrency, on_progress=on_progress)

    try:
        with bar:
            return asyncio.run(go())
    except KeyboardInterrupt:
        _close(publishers)
        err_console.print(f"interrupted: {len(ck.done)} windows committed; run the same command "
                          f"to resume (checkpoint {ck_path})", highlight=False)
        raise typer.Exit(exitcodes.INTERRUPTED)
    except (BackfillError, StoreError) as e:
        _close(publishers)
        _fail(str(e))
    except RestError as e:
        _close(publishers)
        _fail(f"{e}; {len(ck.done)} windows committed, run again to resume",
              e.exit_code)
    except ModelError as e:
        _close(publishers)
        _fail(f"unexpected response: {e}; run again to resume", exitcodes.INTERNAL)
    raise AssertionError("unreachable")


def _progress(client: RestClient, enabled: bool) -> tuple[Any, Any]:
    """The progress bar (stderr; inert when not ``enabled``) and the callback that updates it
    from :class:`~kalshi_platform.backfill.BackfillStats`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
        TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]backfill[/]"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("windows · {task.fields[trades]:,} trades · {task.fields[pages]:,}"
                              " pages · {task.fields[rate]} req/s"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                   console=err_console, disable=not enabled, transient=False)
    task = bar.add_task("backfill", total=None, trades=0, pages=0, rate="-")

    def on_progress(st: Any) -> None:
        el = time.monotonic() - st.started
        bar.update(task, total=st.windows_total or None,
                   completed=st.windows_done + st.windows_skipped,
                   trades=st.trades_fetched, pages=st.pages,
                   rate=f"{client.stats.requests / el:.1f}" if el > 0 else "-")

    return bar, on_progress


def _close(publishers: list[Any]) -> None:
    """Close every publisher; a failing close is a warning and the others still close."""
    for p in publishers:
        try:
            p.close()
        except Exception as e:  # noqa: BLE001 - report and keep closing the others
            err_console.print(f"warning: closing a sink failed: {plain_message(str(e))}",
                              highlight=False)


def _done_already(ck: Checkpoint, validate: bool, names: list[str], settings, store_root: Path,
                  rid: str, start_ns: int, end_ns: int, report_json: Optional[Path]) -> None:
    """A finished checkpoint: say so and, with ``--validate``, compare the stored counts."""
    console.print(f"backfill already complete ({len(ck.done)} windows, "
                  f"{sum(d['trades'] for d in ck.done.values()):,} trades); "
                  f"checkpoint {ck.path}; use --restart to run it again", highlight=False)
    if validate:  # read back the Parquet store only; nothing is written
        from kalshi_platform.backfill import validate_counts

        pubs = build_sinks(["parquet"], writer_id=f"backfill-{rid}", settings=settings,
                           store=store_root, replace_existing=False)
        v = validate_counts(ck, pubs, start_ns, end_ns)
        _close(pubs)
        _print_validation(v)
        _write_json(report_json, {"complete": True, "validation": v})
        if not v["ok"]:
            raise typer.Exit(exitcodes.INTERNAL)


def _write_json(path: Optional[Path], obj: dict) -> None:
    """Write ``obj`` as JSON to ``path`` (nothing for ``None``); failure is one line."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2) + "\n")
    except OSError as e:
        _fail(f"cannot write {path}: {e.strerror or e}")


def _print_validation(v: dict) -> None:
    """One line per sink: its per-day counts match the API's, or the days that differ."""
    for s in v["sinks"]:
        if s["ok"]:
            console.print(f"validate {s['sink']}: per-day counts match the API "
                          f"({len(v['api'])} days, {sum(v['api'].values()):,} trades)",
                          highlight=False)
        else:
            console.print(f"validate {s['sink']}: [bold red]{len(s['mismatches'])} days differ[/]: "
                          + ", ".join(f"{m['day']} api {m['api']} stored {m['stored']}"
                                      for m in s["mismatches"][:10]), highlight=False)


def _print_report(report: dict) -> None:
    """The backfill report as a table, then the validation lines when there are any."""
    from kalshi_platform.backfill import report_lines

    t = Table(title="backfill", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for k, v in report_lines(report):
        t.add_row(k, v)
    console.print(t)
    if "validation" in report:
        _print_validation(report["validation"])
