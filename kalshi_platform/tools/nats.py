"""``kalshi-platform nats init`` and ``kalshi-platform writer --from nats://…``
(docs/scale-out.md).

nats-py, pyarrow and the stores are imported inside the commands: registering them costs
nothing at CLI start (tests/unit/test_cli_startup.py).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any, Optional

import typer

from kalshi_platform.tools import exitcodes
from kalshi_platform.tools.cli import _fail, _setup_logging, app, console

nats_app = typer.Typer(help="NATS JetStream (scale-out): create the streams.",
                       no_args_is_help=True)
app.add_typer(nats_app, name="nats")


def _age(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d`` or seconds → seconds (0 = forever)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        return float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected e.g. 24h, 7d, 90s") from None


@nats_app.command("init")
def nats_init(
    url: str = typer.Argument("nats://127.0.0.1:4222", help="nats://HOST:PORT[,HOST:PORT...][?env=prod]"),
    events_replicas: int = typer.Option(3, help="Replicas of the trades/lifecycle/feed_events stream (1 on a single server)."),
    events_max_age: str = typer.Option("7d", help="How long trades/lifecycle/feed_events are kept (0 = forever)."),
    book_replicas: int = typer.Option(1, help="Replicas of the bbo/deltas/tickers and snapshot streams."),
    book_max_age: str = typer.Option("24h", help="How long bbo/deltas/tickers are kept (0 = forever)."),
    book_storage: str = typer.Option("file", help="file or memory, for the book stream."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Create (or update) the JetStream streams of an env, idempotently; report whether the
    server honours multi-subject consumer filters (nats-server 2.9 silently ignores them)."""
    import asyncio

    from kalshi_platform.feed import nats_admin, nats_wire
    from kalshi_platform.feed.nats_conn import connect
    from kalshi_platform.feed.transports import TransportError

    _setup_logging(verbose)
    if book_storage not in ("file", "memory"):
        _fail(f"--book-storage must be file or memory, not {book_storage!r}")
    if min(events_replicas, book_replicas) < 1:
        _fail("replicas must be >= 1")
    r = nats_admin.Retention(events_replicas, _age(events_max_age), book_replicas,
                             _age(book_max_age), book_storage)

    async def go():
        o = nats_wire.parse_url(url)
        nc = await connect(o.servers, "kalshi-nats-init")
        try:
            js = nc.jetstream()
            done = await nats_admin.init_streams(js, o.env, r)
            name = nats_wire.stream_names(o.env)["events"]
            subj = nats_wire.stream_subjects(o.env)["events"][:2]
            return done, await nats_admin.multi_filter_supported(js, name, subj)
        finally:
            await nc.close()

    try:
        done, multi = asyncio.run(go())
    except (TransportError, nats_admin.InitError) as e:
        _fail(str(e))
        return
    for name, what in done:
        console.print(f"{name}: {what}")
    console.print("multi-subject consumer filters: " + (
        "supported" if multi else "IGNORED by this server (nats-server < 2.10); the platform "
        "uses one filter per consumer"))


@app.command()
def writer(
    source: str = typer.Option(..., "--from", help="nats://HOST:PORT[,HOST:PORT...][?env=prod]"),
    sink: str = typer.Option("parquet", help="Comma-separated sinks: parquet, questdb."),
    store: Optional[Path] = typer.Option(None, help="Parquet store root (default: KALSHI_STORE_DIR or ./store)."),
    durable: str = typer.Option("writer", help="Durable consumer name prefix (writers sharing it share the work)."),
    flush_s: float = typer.Option(1.0, help="Flush the sinks and ack this often (seconds)."),
    batch: int = typer.Option(500, help="Messages per pull request."),
    ack_wait: float = typer.Option(30.0, help="Seconds before an unacked message is redelivered (set when the durable consumer is created; longer than a flush)."),
    idle_exit: Optional[float] = typer.Option(None, help="Exit after this many seconds without a message (default: run until Ctrl-C)."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Write the final counters as JSON here."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Consume the JetStream streams with a durable pull consumer into the storage sinks;
    ack only after the sinks made the rows durable (Parquet file renamed into place, QuestDB
    flush OK). Redelivery after a crash is harmless: the store's and QuestDB's dedup keys."""
    import asyncio
    import re

    from kalshi_platform.config import get_settings
    from kalshi_platform.feed.nats_writer import NatsWriter, WriterError
    from kalshi_platform.feed.transports import TransportError
    from kalshi_platform.storage.parquet_store import StoreError
    from kalshi_platform.tools.sinks import UsageError, build_sinks, parse_sinks

    _setup_logging(verbose)
    settings = get_settings()
    if not re.fullmatch(r"[A-Za-z0-9_-]+", durable):
        _fail(f"--durable {durable!r} must match [A-Za-z0-9_-]+")
    try:
        names = parse_sinks(sink)
        if not names:
            raise UsageError("writer needs a sink: parquet, questdb")
        sinks = build_sinks(names, writer_id=f"nats-{durable}", settings=settings,
                            store=store or Path(settings.store_dir))
        w = NatsWriter(source, sinks, durable=durable, batch=batch, flush_s=flush_s,
                       idle_exit_s=idle_exit, ack_wait_s=ack_wait)
    except (UsageError, StoreError, TransportError) as e:
        _fail(str(e))
        return

    async def go():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, w.stop)
        return await w.run()

    # The writer holds up to a store batch of event tuples (their cycle-free containers are
    # what the collector scans over and over): a young generation of 50k objects and the
    # startup objects frozen cut decoding from 1.17 to 0.78 µs an event (measured here,
    # 219k events kept). Cycles are still collected, only less often.
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)

    code = exitcodes.OK
    try:
        stats = asyncio.run(go())
    except TransportError as e:
        _fail(str(e))
        return
    except WriterError as e:
        stats, code = w.stats(), exitcodes.INTERNAL
        console.print(f"[bold red]error:[/] {e}")
    finally:
        for s in sinks:
            try:
                s.close()
            except Exception as e:  # noqa: BLE001 - reported, the exit code says it
                console.print(f"[bold red]error:[/] closing {getattr(s, 'sink_name', s)}: {e}")
                code = exitcodes.INTERNAL
    _report_writer(stats, summary_json)
    raise typer.Exit(code)


def _report_writer(stats: dict, summary_json: Optional[Path]) -> None:
    """The writer's final counters: one line, and the JSON file when asked."""
    line = ", ".join(f"{k} {v:,}" for k, v in stats.items() if not k.endswith("_at"))
    console.print(f"writer: {line}")
    if summary_json is not None:
        try:
            summary_json.write_text(json.dumps(stats, indent=2) + "\n")
        except OSError as e:
            _fail(f"cannot write {summary_json}: {e.strerror or e}")


def _register_bench() -> None:
    """``bench nats`` lives on the ``bench`` group (tools/bench.py, imported before this
    module by :data:`~kalshi_platform.tools.cli.COMMAND_MODULES`)."""
    from kalshi_platform.tools.bench import bench_app

    @bench_app.command("nats")
    def bench_nats(
        frames: int = typer.Option(200_000, help="Frames of the synthetic recording."),
        copies: int = typer.Option(8, help="Copies of the bundled capture's 12 markets."),
        topology: str = typer.Option("single,cluster", help="single (1 node, R1) and/or cluster (3 nodes, R3)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Events/s from plant to JetStream to writer to Parquet, and to a subscriber, on
        one node and a 3-node loopback cluster, beside core NATS publish (same run)."""
        from kalshi_platform.bench.nats import BenchError, run
        from kalshi_platform.tools.bench import run_and_show

        tops = [t.strip() for t in topology.split(",") if t.strip()]
        if not tops or set(tops) - {"single", "cluster"}:
            _fail("--topology: single and/or cluster")
        run_and_show(lambda report: run(frames, copies, tops, report=report),
                      _print_bench_nats, progress=True, as_json=as_json, errors=(BenchError,),
                      checked=False)


def _print_bench_nats(res: list[dict], out: Any) -> None:
    """One paragraph per topology: rates, core NATS publish, losses, target, CPU per event."""
    for r in res:
        e2e = min(r["writer_per_s"], r["subscriber_per_s"])
        ok = "ok" if e2e >= r["target"] and not r["writer_lost"] else "missed"
        out.print(
            f"{r['topology']} (R{r['replicas']}): {r['events']:,} events in "
            f"{r['messages']:,} messages ({r['events_per_message']} per message)\n"
            f"  publish {r['publish_per_s']:,.0f} ev/s | writer→Parquet "
            f"{r['writer_per_s']:,.0f} ev/s | subscriber {r['subscriber_per_s']:,.0f} ev/s"
            f" | core NATS publish {r['core_msgs_per_s']:,.0f} msg/s "
            f"(= {r['core_events_per_s']:,.0f} ev/s)\n"
            f"  lost: writer {r['writer_lost']}, subscriber {r['subscriber_lost']} "
            f"(gaps {r['subscriber_gaps']}); redelivered {r['redelivered']}; target "
            f"{r['target']:,} ev/s end to end: {ok}\n"
            "  CPU µs per event: " + ", ".join(
                f"{k.replace('_', ' ')} {v:.1f}" for k, v in r["cpu_us_per_event"].items()),
            soft_wrap=True)

_register_bench()
