"""``kalshi-platform eod | query | preview | bench-hdb``: the historical tier's commands.

* ``eod`` — migrate a finished UTC day from the hot tier (QuestDB or the embedded store) to
  Parquet (local and S3), verified, then drop it from the hot tier
  (:mod:`kalshi_platform.storage.eod`);
* ``query`` — SQL over the Parquet tier with DuckDB (:mod:`kalshi_platform.historical.query`);
* ``preview`` — stream Kalshi's public daily market-data report
  (:mod:`kalshi_platform.historical.report_preview`);
* ``bench-hdb`` — the chunk → Parquet writer's rate (:mod:`kalshi_platform.bench.hdb_writer`).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table as RichTable

from kalshi_platform.tools import exitcodes
from kalshi_platform.tools.cli import _fail, _setup_logging, app, console, err_console
from kalshi_platform.tools.exitcodes import plain_message
from kalshi_platform.tools.tables import add_num_column, add_text_column, print_table


def _die(msg: str, code: int = exitcodes.USAGE) -> None:
    """One-line error and exit (``cli._fail``, which escapes rich markup, so text such as
    ``s3://bucket[/prefix]`` or a DuckDB message prints as is)."""
    _fail(msg, code)


def _parse_day(s: str | None) -> date:
    from kalshi_platform.storage.eod import utc_yesterday

    if s is None:
        return utc_yesterday()
    try:
        return date.fromisoformat(s)
    except ValueError:
        pass
    _die(f"--date {s!r}: expected YYYY-MM-DD")
    raise AssertionError("unreachable")


def _parse_tables(values: list[str] | None) -> list[str]:
    from kalshi_platform.storage.schema import TABLES

    if not values:
        return list(TABLES)
    out: list[str] = []
    for v in values:
        out += [t.strip() for t in v.split(",") if t.strip()]
    unknown = [t for t in out if t not in TABLES]
    if unknown:
        _die(f"--tables: unknown table(s) {', '.join(unknown)} (known: {', '.join(TABLES)})")
    return list(dict.fromkeys(out))


def _questdb_client(settings: Any) -> Any:
    try:
        from kalshi_platform.storage.questdb_hdb import QuestDBClient
    except ModuleNotFoundError as e:
        if e.name == "kalshi_platform.storage.questdb_hdb":
            _die("--source questdb needs kalshi_platform.storage.questdb_hdb, which this "
                 "build does not have; use --source embedded")
        raise
    try:
        return QuestDBClient(settings)
    except Exception as e:  # noqa: BLE001 - any connect failure is one line
        _die(f"cannot connect to QuestDB at {settings.pg_host}:{settings.questdb_pg_port}: "
             f"{plain_message(str(e)) or 'connection failed'}")


def _hdb_error() -> type[Exception]:
    """QuestDB's error class (unreachable server, refused SQL), or a class nothing raises on
    a build without the QuestDB client."""
    try:
        from kalshi_platform.storage.questdb_hdb import HDBError
    except ModuleNotFoundError:
        class _NoHDB(Exception):
            pass
        return _NoHDB
    return HDBError


def _engine_errors() -> tuple[type[Exception], ...]:
    """DuckDB's and Arrow's errors (a file in the store that is not Parquet, a bad
    schema): bad input, reported as one line."""
    import duckdb
    import pyarrow as pa

    return (duckdb.Error, pa.ArrowException)


@app.command()
def eod(
    date_: Optional[str] = typer.Option(None, "--date", help="UTC day YYYY-MM-DD (default: yesterday UTC)."),
    tables: Optional[List[str]] = typer.Option(None, "--tables", help="Tables (comma-separated or repeated) (default: all)."),
    dest: Optional[Path] = typer.Option(None, help="Local historical root (default: KALSHI_HDB_DIR or ./hdb)."),
    s3: Optional[str] = typer.Option(None, "--s3", help="Upload to s3://bucket/prefix (default: KALSHI_S3_URI; none if empty)."),
    s3_endpoint: Optional[str] = typer.Option(None, "--s3-endpoint", help="S3-compatible endpoint http(s)://host:port (default: KALSHI_S3_ENDPOINT_URL)."),
    drop: bool = typer.Option(True, "--drop/--no-drop", help="Drop the source day after verification."),
    source: str = typer.Option("questdb", help="Hot tier to migrate from: questdb or embedded."),
    store: Optional[Path] = typer.Option(None, help="Embedded store root for --source embedded (default: KALSHI_STORE_DIR)."),
    keep_days: Optional[int] = typer.Option(None, "--keep-days", help="Keep N local days ending at --date; older local days verified in S3 are deleted (0 = keep all) (default: KALSHI_EOD_KEEP_DAYS)."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", help="Rows per streamed chunk."),
    compression: Optional[str] = typer.Option(None, help="Parquet codec: zstd, snappy, gzip, lz4 or none (default: KALSHI_PARQUET_COMPRESSION)."),
    max_rows_per_file: Optional[int] = typer.Option(None, "--max-rows-per-file", help="Split a day into files of at most N rows."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Move one finished UTC day from the hot tier to Parquet (local + S3), verify rows and
    checksums, then drop it from the hot tier. Re-running a finished day is a no-op; a
    failed or interrupted run resumes. Without QuestDB, on the store `replay` wrote (the
    bundled recording is 2026-08-07): eod --source embedded --store store --date 2026-08-07"""
    from kalshi_platform.config import get_settings
    from kalshi_platform.storage import eod as eodmod
    from kalshi_platform.storage.hdb_writer import CODECS
    from kalshi_platform.storage.s3 import S3Error
    from kalshi_platform.tools.progress import eod_progress

    _setup_logging(verbose)
    settings = get_settings()
    day = _parse_day(date_)
    names = _parse_tables(tables)
    dest = dest or settings.hdb_dir
    s3_uri = s3 if s3 is not None else settings.s3_uri
    endpoint = s3_endpoint if s3_endpoint is not None else settings.s3_endpoint_url
    keep = settings.eod_keep_days if keep_days is None else keep_days
    codec = compression or settings.parquet_compression
    if source not in ("questdb", "embedded"):
        _die(f"--source {source!r}: expected questdb or embedded")
    if codec not in CODECS:
        _die(f"--compression {codec!r}: expected one of {', '.join(CODECS)}")
    if keep < 0 or chunk_rows < 1 or (max_rows_per_file is not None and max_rows_per_file < 1):
        _die("--keep-days must be >= 0, --chunk-rows and --max-rows-per-file >= 1")
    target = None
    if s3_uri:
        try:
            target = eodmod.S3Target.from_uri(s3_uri, endpoint or None, settings.s3_region)
        except S3Error as e:
            _die(str(e))
    client = None
    try:
        if source == "embedded":
            store = store or settings.store_dir
            src, control = _embedded_backend(store, Path(dest))
        else:
            client = _questdb_client(settings)
            src, control = eodmod.QuestDBSource(client), eodmod.QuestDBControl(client)
        shown = eod_progress()  # a spinner on stderr if a terminal, None on a pipe
        job = eodmod.EodJob(src, control, dest, s3=target, drop=drop, chunk_rows=chunk_rows,
                            compression=codec, max_rows_per_file=max_rows_per_file,
                            progress=shown)
        # the scheduled run (no --date): also retry earlier days left unfinished
        days = _unfinished_days(control, day, names) + [day] if date_ is None else [day]
        reports = []
        try:
            with shown or nullcontext():
                for d in days:
                    reports.append(job.run(d, names, keep_days=keep if d == day else 0))
        except (eodmod.EodError, OSError) as e:
            _die(eodmod.error_text(e))  # "<path>: <reason>", no class name
            return
    except _hdb_error() as e:  # QuestDB down or refusing: a service problem, exit 2 (as db status)
        _die(plain_message(str(e)))
        return
    finally:
        if client is not None:
            client.close()
    _finish_eod(reports, as_json, src if source == "embedded" else None, store, day)


def _finish_eod(reports: list, as_json: bool, embedded: Any, store: Any, day: date) -> None:
    """Print ``reports`` (a table each, or JSON); a note when the ``embedded`` store held no
    row of ``day``; exit 1 (one line) when a table failed."""
    from kalshi_platform.storage import eod as eodmod

    if as_json:
        out = [r.to_json() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        for report in reports:
            _print_eod(report)
    if embedded is not None and all(r.status == eodmod.EMPTY for r in reports[-1].results):
        held = ", ".join(d.isoformat() for d in embedded.days()) or "none"
        err_console.print(f"note: {store} has no rows for {day}; days it holds: {held}",
                          highlight=False, soft_wrap=True)
    failed = [(rep.day, r) for rep in reports for r in rep.failed]
    if failed:
        _die("; ".join(f"{d} {r.table}: {plain_message(r.error)}" for d, r in failed),
             code=exitcodes.INTERNAL)

def _embedded_backend(store: Path, dest: Path) -> tuple[Any, Any]:
    """``(source, control)`` of ``--source embedded``: the store's day files, the control
    records in ``<dest>/_eod_migrations.jsonl``. Exits 2 (one line) for a missing store or a
    ``--dest`` that is the store itself."""
    from kalshi_platform.storage import eod as eodmod

    if not store.is_dir():
        _die(f"--store {store}: no such directory")
    if store.resolve() == dest.resolve():
        _die("--dest must differ from the embedded --store")
    return eodmod.EmbeddedSource(store), eodmod.JsonlControl(dest / eodmod.CONTROL_FILE)


def _unfinished_days(control: Any, day: date, names: list[str]) -> list[date]:
    """Days before ``day`` whose migration of one of ``names`` is failed, running or verified
    (not dropped) in ``control``'s records, oldest first; none when there is no control table
    yet."""
    from kalshi_platform.storage import eod as eodmod

    try:
        recs = control.records()
    except Exception:  # noqa: BLE001 - no control table yet: nothing to retry
        return []
    return sorted({d for (d, t), r in recs.items() if d < day and t in names and
                   r.status in (eodmod.FAILED, eodmod.RUNNING, eodmod.VERIFIED)})


def _print_eod(rep: Any) -> None:
    t = RichTable(title=_cell(f"eod {rep.day} from {rep.source} → {rep.dest}"
                              + (f" + {rep.s3_uri}" if rep.s3_uri else "")),
                  title_justify="left")
    for col in ("table", "status", "rows", "files", "bytes", "checksum", "s3", "dropped", "s",
                "note"):
        (add_num_column if col in ("rows", "files", "bytes", "s3", "s") else
         add_text_column)(t, col)
    for r in rep.results:
        t.add_row(r.table, r.status, f"{r.rows:,}", str(r.files), f"{r.bytes:,}", r.checksum,
                  str(r.s3_objects), "yes" if r.dropped else "no", f"{r.seconds:.2f}",
                  _cell(plain_message(r.error) if r.error else r.note))
    print_table(t, console)
    if rep.retention_deleted or rep.retention_kept:
        console.print(f"retention: deleted {len(rep.retention_deleted)} local partition(s)"
                      + (f"; kept {len(rep.retention_kept)} with no verified S3 copy"
                         if rep.retention_kept else ""))


def _numeric(arrow_type: Any) -> bool:
    """True for an Arrow integer, floating-point or decimal type (a right-aligned column)."""
    import pyarrow.types as pat

    return bool(pat.is_integer(arrow_type) or pat.is_floating(arrow_type)
                or pat.is_decimal(arrow_type))


def _cell(v: Any) -> str:
    """A value as table-cell text (rich markup escaped: data such as ``[1, 2]`` prints as is)."""
    from rich.markup import escape

    if v is None:
        return "null"
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    return escape(str(v))


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL; each table is a view, with the partition `date` as a column."),
    hdb: Optional[Path] = typer.Option(None, help="Local historical root (default: KALSHI_HDB_DIR or ./hdb)."),
    s3: Optional[str] = typer.Option(None, "--s3", help="Query s3://bucket/prefix instead of the local root."),
    s3_endpoint: Optional[str] = typer.Option(None, "--s3-endpoint", help="S3-compatible endpoint (default: KALSHI_S3_ENDPOINT_URL)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write the result to this CSV file."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="Write the result to this Parquet file."),
    limit: Optional[int] = typer.Option(None, help="At most N rows (printing shows 100 by default)."),
) -> None:
    """SQL over the Parquet historical tier (DuckDB; one view per table, the partition
    `date` is a column), e.g. daily OHLC bars per ticker:
    SELECT ticker, date, first(yes_price ORDER BY ts) open, max(yes_price) high,
    min(yes_price) low, last(yes_price ORDER BY ts) close, sum("count") volume
    FROM trades GROUP BY ALL ORDER BY ALL"""
    from kalshi_platform.config import get_settings
    from kalshi_platform.historical.query import QueryError, open_local, open_s3, take, write_result
    from kalshi_platform.storage.s3 import S3Error

    settings = get_settings()
    if csv is not None and parquet is not None:
        _die("give at most one of --csv and --parquet")
    if limit is not None and limit < 0:
        _die("--limit must be >= 0")
    try:
        if s3:
            h = open_s3(s3, s3_endpoint if s3_endpoint is not None else
                        (settings.s3_endpoint_url or None), settings.s3_region)
        else:
            h = open_local(hdb or settings.hdb_dir)
    except (QueryError, S3Error) as e:
        _die(str(e))
        return
    except Exception as e:  # noqa: BLE001 - a store file DuckDB cannot read: one line, exit 2
        if not isinstance(e, _engine_errors()):
            raise
        _die(plain_message(str(e)) or "cannot read the store")
        return
    try:
        reader = h.query(sql)
        if reader is None:
            console.print("ok (no result)")
            return
        out = csv or parquet
        if out is not None:
            try:
                n = write_result(reader, out, "csv" if csv else "parquet", limit)
            except OSError as e:
                _die(f"cannot write {out}: {e.strerror or e}")
                return
            console.print(f"{n:,} rows → {out}")
            return
        show = 100 if limit is None else limit
        batches = list(take(reader, show + (1 if limit is None else 0)))
        # by position, not by name: ``SELECT ticker, ticker`` has two columns of one name
        rows = [r for b in batches
                for r in zip(*(b.column(i).to_pylist() for i in range(b.num_columns)))]
        more = limit is None and len(rows) > show
        rows = rows[:show]
        t = RichTable(title_justify="left")
        for f in reader.schema:
            (add_num_column if _numeric(f.type) else add_text_column)(t, _cell(f.name))
        for r in rows:
            t.add_row(*(_cell(v) for v in r))
        print_table(t, console)
        console.print(f"{len(rows):,} row(s)" + (" shown; more available (--limit N, --csv, "
                                                  "--parquet)" if more else ""))
    except QueryError as e:
        _die(str(e))
    except Exception as e:  # noqa: BLE001 - an engine error while the rows stream: one line
        if not isinstance(e, _engine_errors()):
            raise
        _die(plain_message(str(e)) or "the query failed while reading its rows")
    finally:
        h.close()


@app.command()
def preview(
    file: Optional[Path] = typer.Option(None, "--file", help="A market_data_YYYY-MM-DD.json report (gzip ok)."),
    url: Optional[str] = typer.Option(None, "--url", help="Stream the report from this URL."),
    rows: int = typer.Option(10, help="Rows to show (per page with --interactive)."),
    interactive: bool = typer.Option(False, "--interactive", help="Page through the rows (Enter: next page, q: quit)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and first rows as JSON."),
) -> None:
    """Stream Kalshi's public daily market-data report (hundreds of MB; never loaded whole):
    a summary (rows, tickers, series, dates, volume and open-interest totals, statuses) and
    the first rows."""
    import zlib

    import httpx

    from kalshi_platform.historical.report_preview import (
        ReportFormatError, ReportSummary, iter_json_array, open_source)

    if (file is None) == (url is None):
        _die("give exactly one of --file and --url")
    if rows < 1:
        _die("--rows must be >= 1")
    if file is not None and not file.is_file():
        _die(f"{file}: no such file")
    summary = ReportSummary()
    head: list = []
    complete = True
    try:
        with open_source(file, url) as src:
            it = iter_json_array(src)
            if interactive:
                complete = _page(it, summary, rows)
            else:
                for row in it:
                    summary.add(row)
                    if len(head) < rows:
                        head.append(row)
    except ReportFormatError as e:
        _die(f"{file or url}: {e}")
    except UnicodeDecodeError as e:
        _die(f"{file or url}: not UTF-8 text (invalid byte "
             f"0x{e.object[e.start]:02x}); expected Kalshi's market_data JSON report")
    except (EOFError, zlib.error) as e:
        _die(f"{file or url}: truncated or corrupt gzip data ({plain_message(str(e))})")
    except httpx.HTTPStatusError as e:
        _die(f"{url}: HTTP {e.response.status_code}")
    except httpx.HTTPError as e:
        _die(f"{url}: cannot fetch: {plain_message(str(e)) or 'connection failed'}")
    except OSError as e:
        _die(f"{file}: {e.strerror or e}")
    if as_json:
        print(json.dumps({"summary": summary.to_json(), "complete": complete,
                          "first_rows": head}, indent=2, default=str))
        return
    if not interactive:
        _print_rows(head, f"first {len(head)} row(s)")
    _print_summary(summary, complete)


def _print_rows(rows: list, title: str) -> None:
    cols: dict[str, None] = {}
    for r in rows:
        for k in (r if isinstance(r, dict) else {"value": r}):
            cols.setdefault(k, None)
    t = RichTable(title=title, title_justify="left")
    numeric = {c: _numbers_only([(r if isinstance(r, dict) else {"value": r}).get(c)
                                 for r in rows]) for c in cols}
    for c in cols:
        (add_num_column if numeric[c] else add_text_column)(t, _cell(c))
    for r in rows:
        d = r if isinstance(r, dict) else {"value": r}
        t.add_row(*(_cell(d.get(c)) for c in cols))
    print_table(t, console)


def _numbers_only(values: list) -> bool:
    """True when every non-null value is a JSON number (not a bool) and there is one."""
    vals = [v for v in values if v is not None]
    return bool(vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                              for v in vals)


def _page(it: Any, summary: Any, per_page: int) -> bool:
    """Show ``per_page`` rows at a time; True when the whole report was read."""
    page: list = []
    shown = 0
    for row in it:
        summary.add(row)
        page.append(row)
        if len(page) == per_page:
            _print_rows(page, f"rows {shown + 1}-{shown + len(page)}")
            shown += len(page)
            page = []
            answer = typer.prompt("Enter: next page, q: quit", default="", show_default=False)
            if answer.strip().lower().startswith("q"):
                return False
    if page:
        _print_rows(page, f"rows {shown + 1}-{shown + len(page)}")
    return True


def _print_summary(s: Any, complete: bool) -> None:
    t = RichTable(title="report summary" + ("" if complete else " (rows read so far)"),
                  show_header=False, title_justify="left")
    add_text_column(t, style="bold", no_wrap=True)
    add_text_column(t)
    t.add_row("rows", f"{s.rows:,}")
    t.add_row("distinct tickers", f"{s.tickers:,}")
    t.add_row("distinct series", f"{s.series:,}")
    t.add_row("dates", _cell(f"{s.date_min} .. {s.date_max}") if s.date_min else "-")
    for k, v in s.totals.items():
        t.add_row(f"total {k}", f"{v:,.2f}".rstrip("0").rstrip("."))
    t.add_row("status", _cell(", ".join(f"{k} {v:,}" for k, v in sorted(s.status.items())))
              or "-")
    t.add_row("fields", _cell(", ".join(s.fields)) or "-")
    if s.non_objects:
        t.add_row("non-object rows", f"{s.non_objects:,}")
    print_table(t, console)


@app.command("bench-hdb")
def bench_hdb(
    rows: int = typer.Option(2_000_000, help="Rows in the synthetic orderbook_deltas day."),
    repeat: int = typer.Option(3, help="Runs; the best is kept."),
    compression: str = typer.Option("zstd", help="Parquet codec: zstd, snappy, gzip, lz4 or none."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Measure the chunk → Parquet writer (rows/s) on a synthetic orderbook_deltas day grown
    from the bundled real capture (96 tickers)."""
    from kalshi_platform.bench.hdb_writer import bench_chunk_writer
    from kalshi_platform.storage.hdb_writer import CODECS

    if rows < 1 or repeat < 1:
        _die("--rows and --repeat must be >= 1")
    if compression not in CODECS:
        _die(f"--compression {compression!r}: expected one of {', '.join(CODECS)}")
    try:
        r = bench_chunk_writer(rows, repeat, compression=compression)
    except FileNotFoundError as e:
        _die(str(e))
        return
    if as_json:
        print(json.dumps(r, indent=2))
        return
    t = RichTable(title=f"bench-hdb: {r['rows']:,} {r['table']} rows ({r['tickers']} tickers), "
                        f"{r['compression']}, best of {r['repeat']}",
                  show_header=False, title_justify="left")
    add_text_column(t, style="bold", no_wrap=True)
    add_num_column(t)
    t.add_row("rows/s", f"{r['rows_per_s']:,}")
    t.add_row("Arrow MB/s", f"{r['mb_per_s']:,}")
    t.add_row("best run", f"{r['best_s']:.3f} s")
    t.add_row("Parquet bytes", f"{r['file_bytes']:,} ({r['files']} file, "
                               f"{r['row_groups']} row groups)")
    t.add_row("peak RSS", f"{r['peak_rss_mib']} MiB")
    print_table(t, console)
