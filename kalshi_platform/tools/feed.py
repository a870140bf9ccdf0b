"""``kalshi-platform subscribe URL``: a subscriber of the plant's event stream.

By default a live table of the subscribed markets (state, YES bid/ask with sizes, last trade,
updates); ``--jsonl PATH|-`` writes one JSON object per event instead
(:mod:`kalshi_platform.feed.jsonfmt`). ``--until-end`` exits 0 when the publisher ends its
stream. A subscriber started before its publisher waits for it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any, Optional

import orjson
import typer

from kalshi_platform.tools.cli import _fail, _setup_logging, app, err_console

_FEEDS_HELP = ("Comma-separated feeds: bbo, trades, deltas, tickers, lifecycle, fills, "
               "feed_events, quarantine (default: all but quarantine).")


def _split(v: str | None) -> list[str] | None:
    if not v:
        return None
    return [x.strip() for x in v.split(",") if x.strip()] or None


@app.command()
def subscribe(
    url: str = typer.Argument(..., help="The publisher: ipc://PATH, udp://HOST:PORT, ws://HOST:PORT or nats://HOST:PORT[,HOST:PORT…] (JetStream, docs/scale-out.md)."),
    feed: Optional[str] = typer.Option(None, "--feed", help=_FEEDS_HELP),
    tickers: Optional[str] = typer.Option(None, "--tickers", help="Comma-separated market tickers (default: all)."),
    jsonl: Optional[str] = typer.Option(None, "--jsonl", help="Write one JSON object per event to PATH ('-' = stdout) instead of the table."),
    until_end: bool = typer.Option(False, "--until-end", help="Exit 0 when the publisher ends its stream."),
    bbo_only: bool = typer.Option(False, "--bbo-only", help="Keep only the BBO of each book (smaller snapshots)."),
    idle_timeout: Optional[float] = typer.Option(None, "--idle-timeout", help="Exit 1 after this many seconds without any message (default: wait forever)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Subscribe to a plant's event stream (docs/feed-protocol.md): snapshot on a late join
    or a gap, then every event in stream order."""
    _setup_logging(verbose)
    from kalshi_platform.feed.snapshots import SnapshotError
    from kalshi_platform.feed.subscriber import Subscriber
    from kalshi_platform.feed.transports import TransportError

    try:
        sub = Subscriber(url, feeds=_split(feed), tickers=_split(tickers), depth=not bbo_only,
                         idle_timeout=idle_timeout)
    except (TransportError, OSError) as e:
        _fail(str(e))
        return
    out: IO[bytes] | None = None
    try:
        if jsonl is not None:
            out = sys.stdout.buffer if jsonl == "-" else _open(Path(jsonl))
            ended = _write_jsonl(sub, out)
        else:
            ended = _show_table(sub)
    except (SnapshotError, OSError) as e:
        _fail(f"{url}: {e}")
        return
    except KeyboardInterrupt:
        ended = False
    finally:
        if out is not None and out is not sys.stdout.buffer:
            out.close()
        sub.close()
    err_console.print(f"\nsubscribe {url}: {'end of stream' if ended else 'stopped'}; "
                      f"{sub.gaps} gap(s), {sub.snapshots} snapshot(s)", highlight=False)
    if not ended and (until_end or idle_timeout is not None):
        raise typer.Exit(1)


def _open(path: Path) -> IO[bytes]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")
    except OSError as e:
        _fail(f"cannot write {path}: {e.strerror or e}")
        raise


def _write_jsonl(sub: Any, out: IO[bytes]) -> bool:
    from kalshi_platform.feed.jsonfmt import event_objects, snapshot_bbo_objects

    dumps = orjson.dumps
    for item in sub:
        if item.feed == "end":
            out.flush()
            return True
        if item.feed == "gap":
            continue  # its repair (a snapshot) follows
        if item.feed == "snapshot":
            for obj in snapshot_bbo_objects(item.seq, item.event, sub.feeds):
                out.write(dumps(obj) + b"\n")
            continue
        for obj in event_objects(item.seq, item.event):
            out.write(dumps(obj) + b"\n")
    out.flush()
    return sub.ended


def _show_table(sub: Any) -> bool:
    from rich.console import Console
    from rich.live import Live

    from kalshi_platform.tools.feed_table import MarketTable

    table = MarketTable()
    # a terminal shows the table live; a pipe gets the final table at full width
    console = err_console if err_console.is_terminal else Console(stderr=True, width=160)
    with Live(table.render(), console=console, refresh_per_second=4,
              transient=False) as live:
        last = 0.0
        for item in sub:
            table.update(item, sub)
            now = time.monotonic()
            if now - last >= 0.25:
                live.update(table.render())
                last = now
            if item.feed == "end":
                live.update(table.render())
                return True
    return sub.ended
