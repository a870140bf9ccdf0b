"""The ``kalshi-platform`` command (Typer). One module per command group under ``tools/``.

Exit codes are defined once, in :mod:`kalshi_platform.tools.exitcodes`: errors a user can
cause (missing file, bad option, bad ``KALSHI_*`` value, unwritable store) and a service that
cannot be reached (QuestDB, S3, Kalshi) are one line on stderr and exit code 2; an unexpected
failure is one line and exit code 1 (``KALSHI_DEBUG=1`` shows the traceback). No exception
class name is printed: the line says what went wrong.

Start-up stays cheap (``--help`` of any command loads no pyarrow, duckdb, pydantic-settings,
httpx, websockets, questdb or zmq): this module and every command module import only typer,
rich, the standard library and the plant's own light modules at the top; settings, stores,
clients and their exception types are imported inside the command bodies that use them.
``tests/unit/test_cli_startup.py`` holds that line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kalshi_platform.feed.transports import TransportError, parse_publish
from kalshi_platform.ingestion.recording import RecordingError
from kalshi_platform.logfmt import sink_failures_line
from kalshi_platform.tools import exitcodes
from kalshi_platform.tools.replay import run_replay
from kalshi_platform.tools.sinks import UsageError, parse_sinks

app = typer.Typer(
    name="kalshi-platform",
    help="Kalshi market data: replay recordings into exact books/BBO, store, benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

def _user_errors() -> tuple[type[Exception], ...]:
    """The exceptions ``replay`` reports as one line and exit 2. A function, not a constant,
    so that :class:`~kalshi_platform.storage.parquet_store.StoreError` (pyarrow) is imported
    only when an exception is being matched, never at start-up."""
    from kalshi_platform.storage.parquet_store import StoreError

    return (RecordingError, StoreError, UsageError, TransportError)


def _fail(msg: str, code: int = exitcodes.USAGE) -> None:
    """One line ``error: msg`` on stderr (rich markup escaped), then exit ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    """Root logging on stderr at INFO (``--verbose``) or ``KALSHI_LOG_LEVEL``."""
    from kalshi_platform.config import get_settings

    level = "INFO" if verbose else get_settings().log_level.upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@app.command()
def replay(
    file: Path = typer.Argument(..., help="Recording: JSON Lines (optionally gzip), a JSON capture, or a directory of rotated `record` files."),
    store: Optional[Path] = typer.Option(None, help="Parquet store root (default: KALSHI_STORE_DIR or ./store)."),
    sink: str = typer.Option("parquet", help="Comma-separated sinks: parquet, questdb, none."),
    publish: str = typer.Option("", "--publish", help="Also publish the event stream to subscribers: comma-separated ipc://PATH, udp://HOST:PORT, ws://HOST:PORT (docs/feed-protocol.md), nats://HOST:PORT[,HOST:PORT…] (JetStream, docs/scale-out.md)."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the summary as JSON here."),
    speed: float = typer.Option(0.0, help="0 = as fast as possible; 1 = the recording's own pace."),
    use_yes_price: Optional[bool] = typer.Option(
        None, "--use-yes-price/--no-use-yes-price",
        help="NO levels on the YES price scale (docs/kalshi-api.md §7.8) (default: from .meta.json, else no)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Replay a recorded Kalshi feed: decode → books → BBO → sinks, then print a summary.

    Exit 2 (one line) for bad input, including a file that is not a Kalshi recording; exit
    1 after the summary when a sink failed during the run (one line naming it)."""
    from kalshi_platform.config import get_settings

    _setup_logging(verbose)
    settings = get_settings()
    try:
        sinks = parse_sinks(sink)
        urls = parse_publish(publish) if publish else []
        summary = run_replay(file, store=store or settings.store_dir, sinks=sinks, speed=speed,
                             use_yes_price=use_yes_price, publish=urls,
                             batch_rows=settings.parquet_batch_rows,
                             compression=settings.parquet_compression, settings=settings,
                             progress=_replay_progress())
    except _user_errors() as e:  # evaluated only when an exception is raised
        _fail(str(e))
        return
    if summary_json is not None:
        try:
            summary_json.parent.mkdir(parents=True, exist_ok=True)
            summary_json.write_text(json.dumps(summary, indent=2) + "\n")
        except OSError as e:
            _fail(f"cannot write {summary_json}: {e.strerror or e}")
    _print_summary(summary)
    if summary.get("sink_failures"):  # the run went on without them: say so, exit 1
        _fail(sink_failures_line(summary["sink_failures"]), exitcodes.INTERNAL)


def _replay_progress():
    """The replay spinner on stderr when it is a terminal, else ``None`` (tools/progress)."""
    from kalshi_platform.tools.progress import replay_progress

    return replay_progress()


def _print_summary(s: dict) -> None:
    """The replay summary as a two-column table on stdout."""
    from kalshi_platform.tools.tables import add_text_column, print_table

    t = Table(title=f"replay {s['file']}", show_header=False, title_justify="left")
    add_text_column(t, style="bold", no_wrap=True)
    add_text_column(t)
    t.add_row("frames", f"{s['frames']:,}")
    t.add_row("messages", ", ".join(f"{k} {v:,}" for k, v in s["messages_by_type"].items()) or "0")
    states = ", ".join(f"{k} {v}" for k, v in s["market_states"].items())
    t.add_row("markets", f"{s['market_count']:,}" + (f" ({states})" if states else ""))
    t.add_row("gaps", str(s["gaps"]))
    t.add_row("quarantined", str(s["quarantined"]))
    t.add_row("duplicates / crossed / book errors",
              f"{s['duplicates']} / {s['crossed']} / {s['book_errors']}")
    t.add_row("rows by table", ", ".join(f"{k} {v:,}" for k, v in s["rows_by_table"].items()))
    if s["store"]:
        t.add_row("rows written", ", ".join(f"{k} {v:,}" for k, v in s["rows_written"].items())
                  + f" ({s['files_written']} files in {s['store']})")
    q = s.get("questdb")
    if q:
        from kalshi_platform.storage.questdb_health import health_text, WriterHealth

        h = WriterHealth(q.get("state", "up"), q["rows_written"], q["rows_spooled"],
                         q["spool_depth"], q.get("spool_bytes", 0), q.get("queue_depth", 0),
                         q["flush_errors"], q["rows_quarantined"])
        t.add_row("questdb", f"{health_text(h)}, flush {q['flush_latency_ms_mean']} ms mean")
    if not s["store"] and not q:
        t.add_row("rows written", "none (--sink none)")
    t.add_row("elapsed", f"{s['elapsed_s']:.3f} s")
    t.add_row("msg/s", f"{s['msg_per_s']:,}" if s["msg_per_s"] else "-")
    print_table(t, console)


#: command modules under ``tools/``; importing one registers its commands on ``app``.
COMMAND_MODULES = (
    "bench",       # bench
    "db",          # db init / db status (QuestDB)
    "live",        # run, record, sim
    "rest_demo",   # demo
    "backfill",    # backfill (REST trade history → sinks)
    "historical",  # eod, query, preview
    "feed",        # subscribe
    "board",       # board (live market board, a feed subscriber)
    "plot",        # plot (one market's day as a PNG)
    "exchange",    # exchange-side commands: fix-client, sim admin
    "trading",     # trade, backtest
    "nats",        # nats init, writer (JetStream scale-out)
)


def _register_optional() -> None:
    """Import every module in :data:`COMMAND_MODULES` (each registers its commands on
    ``app``); a module missing on this branch is skipped."""
    import importlib

    for name in COMMAND_MODULES:
        mod = f"kalshi_platform.tools.{name}"
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a command group not built yet on this branch
            if e.name != mod:
                raise


def _sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, systemd) takes the same clean path as Ctrl-C: commands close their
    sinks (flush, or spool what QuestDB has not acknowledged) before exiting."""
    import signal

    try:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread (embedded use)
        pass


def main() -> None:
    """Console-script entry point."""
    _register_optional()
    _sigterm_as_interrupt()
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(exitcodes.INTERRUPTED)
    except Exception as e:  # one line, not a traceback
        if os.environ.get("KALSHI_DEBUG"):
            raise
        code, msg = _uncaught(e)
        err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
        sys.exit(code)


def _uncaught(e: Exception) -> tuple[int, str]:
    """Exit code and one line (no exception class name) for an exception no command
    handled: a bad ``KALSHI_*`` value is bad input (2); anything else is internal (1)."""
    if "kalshi_platform.config" in sys.modules:  # only then can a ConfigError exist
        from kalshi_platform.config import ConfigError

        if isinstance(e, ConfigError):
            return exitcodes.USAGE, str(e)
    text = str(e).strip().splitlines()[0] if str(e).strip() else "an unexpected failure gave no message"
    return exitcodes.INTERNAL, f"internal error: {text} (KALSHI_DEBUG=1 shows the traceback)"


if __name__ == "__main__":  # pragma: no cover
    # run the package module, not this __main__ copy, so every command registers on one app
    from kalshi_platform.tools.cli import main as _main

    _main()
