"""``kalshi-platform board URL``: a live terminal board of the markets on a plant's feed
(issue 12 §5), a subscriber of the distribution layer (docs/feed-protocol.md).

The subscriber's items go into a :class:`~kalshi_platform.board.model.BoardModel` on this
thread; on a terminal, ``rich.live`` redraws the board from the model on its own thread at a
fixed rate (``--refresh``, 4 a second by default), never per message, so 10k msg/s costs
one model update per message and a handful of redraws a second. The model and the drawing
share one lock: an update, or one sample-and-build of the board (the cells are plain text,
printed after the lock is released). On a pipe the board is printed once, at the end.

Exit codes (:mod:`kalshi_platform.tools.exitcodes`): 0 at the stream's END with
``--until-end`` or ``--once``, and on Ctrl-C; 2 for a bad URL or option, a snapshot service
that cannot be reached, or no message for ``--timeout`` seconds (no publisher reached, or
one gone silent); each error is one line.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Optional

import typer

from kalshi_platform.tools.cli import _fail, _setup_logging, app, err_console

#: the feeds the board reads: BBO rows for the tops, the exchange's messages for the updates
BOARD_FEEDS = ("bbo", "deltas", "trades", "tickers", "lifecycle", "feed_events")
SORTS = ("ticker", "updates", "total", "spread", "state", "trades", "recent")


@dataclass(frozen=True)
class BoardOptions:
    """What the command was asked (validated): ``tickers`` to subscribe to (``None``: all),
    ``patterns`` of ``--filter``, ``sort``/``reverse``, ``max_rows`` (``None``: what fits),
    ``refresh`` (redraws per second), ``window_s`` (rate window), ``until_end``, ``once``,
    ``timeout_s`` (``None``: wait forever), ``width`` (``None``: the terminal's)."""

    tickers: tuple[str, ...] | None = None
    patterns: tuple[str, ...] | None = None
    sort: str = "updates"
    reverse: bool = False
    max_rows: int | None = None
    refresh: float = 4.0
    window_s: float = 5.0
    until_end: bool = False
    once: bool = False
    timeout_s: float | None = None
    width: int | None = None


def _split(v: str | None) -> tuple[str, ...] | None:
    items = tuple(x.strip() for x in (v or "").split(",") if x.strip())
    return items or None


@app.command()
def board(
    url: str = typer.Argument(..., help="The publisher: ipc://PATH, udp://HOST:PORT, ws://HOST:PORT or nats://HOST:PORT[,HOST:PORT…] (JetStream, docs/scale-out.md)."),
    tickers: Optional[str] = typer.Option(None, "--tickers", help="Comma-separated market tickers to subscribe to, exactly (default: all)."),
    filter_: Optional[str] = typer.Option(None, "--filter", help="Show tickers containing this text, or matching this glob (* ? [...]); comma-separated for several; case-insensitive."),
    sort: str = typer.Option("updates", "--sort", help="Row order: " + ", ".join(SORTS) + " (updates: busiest first)."),
    reverse: bool = typer.Option(False, "--reverse", help="Reverse the row order."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", help="At most this many rows (default: what fits the terminal; all on a pipe)."),
    refresh: float = typer.Option(4.0, "--refresh", help="Redraws per second, 1 to 30 (never one per message)."),
    window: float = typer.Option(5.0, "--window", help="Seconds of counts behind each rate (msg/s, upd/s)."),
    until_end: bool = typer.Option(False, "--until-end", help="Exit 0 when the publisher ends its stream (default: keep the last board on screen until Ctrl-C)."),
    once: bool = typer.Option(False, "--once", "--snapshot", help="Exit 0 as soon as the board holds the publisher's current books (its first snapshot, or the stream's END), printing it."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Exit 2 after this many seconds without any message from the publisher (default: wait for it forever)."),
    width: Optional[int] = typer.Option(None, "--width", help="Columns (default: the terminal's; unlimited on a pipe)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """A live board of the markets on a plant's feed: state, YES bid/ask with sizes, spread,
    last trade and updates per second per market; feed msg/s, gaps, resyncs and stale books
    in the header. Ctrl-C exits 0."""
    _setup_logging(verbose)
    if sort not in SORTS:
        _fail(f"--sort {sort!r}: choose from {', '.join(SORTS)}")
    if not 1 <= refresh <= 30:
        _fail(f"--refresh {refresh:g}: give 1 to 30 redraws per second")
    for name, v in (("--window", window), ("--timeout", timeout)):
        if v is not None and not v > 0:
            _fail(f"{name} {v:g}: must be > 0 seconds")
    for name, n in (("--max-rows", max_rows), ("--width", width)):
        if n is not None and n < 1:
            _fail(f"{name} {n}: must be >= 1")
    opts = BoardOptions(tickers=_split(tickers), patterns=_split(filter_), sort=sort,
                        reverse=reverse, max_rows=max_rows, refresh=refresh, window_s=window,
                        until_end=until_end, once=once, timeout_s=timeout, width=width)
    outcome, model = run_board(url, opts)
    if outcome in ("unreachable", "silent"):
        what = "no publisher reached" if outcome == "unreachable" else "no message"
        _fail(f"{url}: {what} in {timeout:g} s")
    how = ("end of stream" if model.ended else
           f"the books at seq {model.seq:,}" if outcome == "once" else "stopped")
    err_console.print(
        f"board {url}: {how}; "
        f"{model.events:,} events, {len(model.rows):,} markets, {model.stream_gaps} gap(s), "
        f"{model.snapshots} snapshot(s)", highlight=False, soft_wrap=True)


def run_board(url: str, opts: BoardOptions, console: Any = None,
              clock: Callable[[], int] = time.monotonic_ns) -> tuple[str, Any]:
    """Subscribe to ``url`` and show the board on ``console`` (default: stdout) until the
    stream ends (``--until-end``/``--once``), Ctrl-C or the timeout. Returns the outcome
    (``end``, ``once``, ``stopped``, ``unreachable``, ``silent``) and the model. Exits 2 (one
    line) for a bad URL or an unreachable snapshot service. ``clock``: ns, monotonic."""
    from rich.console import Console
    from rich.live import Live

    from kalshi_platform.board.model import BoardModel, ticker_matcher
    from kalshi_platform.board.view import CHROME_LINES, render_board

    if console is None:
        console = Console(width=opts.width) if opts.width else Console()
        if not console.is_terminal and not opts.width:
            console = Console(width=100_000)  # a pipe: the whole board, never cut
    model = BoardModel(ticker_matcher(opts.patterns), opts.window_s)
    lock = threading.Lock()
    terminal = console.is_terminal

    def draw() -> Any:
        rows = opts.max_rows
        if terminal:  # fit the terminal's height too (it may be resized)
            fit = max(1, console.size.height - CHROME_LINES)
            rows = fit if rows is None else min(rows, fit)
        with lock:
            model.sample(clock())
            return render_board(model, source=url, sort=opts.sort, reverse=opts.reverse,
                                max_rows=rows, width=opts.width or console.size.width)

    model.sample(clock())
    live = Live(get_renderable=draw, console=console, refresh_per_second=opts.refresh,
                transient=False, redirect_stderr=False) if terminal else nullcontext()
    with live:
        try:
            outcome = _consume(url, opts, model, lock, clock)
            if outcome == "end" and not (opts.until_end or opts.once):
                _wait_for_interrupt()
        except KeyboardInterrupt:
            outcome = "stopped"
    if not terminal and outcome not in ("unreachable", "silent"):
        console.print(draw())
    return outcome, model


def _consume(url: str, opts: BoardOptions, model: Any, lock: threading.Lock,
             clock: Callable[[], int]) -> str:
    """Feed the subscriber's items into ``model`` until END (``end``), the first snapshot
    with ``--once`` (``once``) or ``--timeout`` (``unreachable``/``silent``)."""
    from kalshi_platform.feed.snapshots import SnapshotError
    from kalshi_platform.feed.subscriber import Subscriber
    from kalshi_platform.feed.transports import TransportError

    try:
        sub = Subscriber(url, feeds=BOARD_FEEDS, tickers=opts.tickers, depth=False,
                         idle_timeout=opts.timeout_s)
    except (TransportError, OSError) as e:
        _fail(str(e))
        raise  # not reached: _fail exits
    try:
        for item in sub:
            if sub.run_id != model.run_id:  # a new stream (the first, or a restarted plant)
                with lock:
                    model.start_run(sub.run_id)
                    model.sample(clock())
            with lock:
                model.apply(item)
            if opts.once and item.feed == "snapshot":
                return "once"
    except SnapshotError as e:
        _fail(f"{url}: {e}")
    finally:
        sub.close()
    if sub.ended:
        return "end"
    return "silent" if sub.run_id is not None else "unreachable"


def _wait_for_interrupt() -> None:
    """Keep the final board on screen until Ctrl-C (raises ``KeyboardInterrupt``)."""
    done = threading.Event()
    while not done.wait(3600):
        pass
