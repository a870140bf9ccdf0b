"""``kalshi-platform bench``: speed against the seed-style baseline, measured in one run;
``kalshi-platform bench fuzz``: the plant's contract under a seeded hostile feed;
``kalshi-platform bench fanout``: the distribution layer's transports against pyzmq and
``multiprocessing.Queue`` on this host."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich import box
from rich.table import Table

from kalshi_platform.tools.cli import _fail, app, console, err_console


bench_app = typer.Typer(help="Benchmarks (plain `bench`: speed against the seed-style "
                             "baseline) and `bench fuzz` (the plant's contract under fuzzing).",
                        invoke_without_command=True)
app.add_typer(bench_app, name="bench")


@bench_app.callback()
def bench(
    ctx: typer.Context,
    frames: int = typer.Option(500_000, help="Frames in the synthetic recording."),
    repeat: int = typer.Option(3, help="Runs per stage; the best is kept."),
    source: Optional[Path] = typer.Option(None, help="Real capture to build the input from (default: bundled)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    hdb_rows: int = typer.Option(2_000_000, "--hdb-rows",
                                 help="Rows of the EOD chunk → Parquet writer stage (0 = skip)."),
    questdb: bool = typer.Option(True, "--questdb/--no-questdb",
                                 help="Also measure the QuestDB ILP writer against raw Sender.row() "
                                      "into a discarding loopback endpoint."),
    memory_markets: int = typer.Option(
        10_000, "--memory-markets",
        help="Peak RSS of a replay (--sink parquet,questdb, child process) with this many "
             "live markets, against the 500 MB target (0 = skip)."),
    progress: bool = typer.Option(True, "--progress/--quiet",
                                  help="Show the stage being measured on stderr (a status line "
                                       "on a terminal, one short line per run otherwise)."),
) -> None:
    """Measure decode, book apply and the whole replay pipeline against the baseline
    (stdlib json + Decimal + SortedDict, BBO recomputed on every delta).

    Every row shows our rate, what it is compared with and its rate, the ratio and the
    issue's target for it; the Parquet pipeline is also compared with --sink none of the
    same run. --json carries the same figures."""
    if ctx.invoked_subcommand is not None:
        return
    from kalshi_platform.bench.runner import run_bench

    if frames < 1000 or repeat < 1:
        _fail("--frames must be >= 1000 and --repeat >= 1")
    if source is not None and not source.is_file():
        _fail(f"{source}: no such file")
    run_and_show(lambda report: run_bench(frames=frames, repeat=repeat, source=source,
                                           ilp=questdb, hdb_rows=max(hdb_rows, 0),
                                           progress=report,
                                           memory_markets=max(memory_markets, 0)),
                  lambda result, _console: _print_bench(result), progress=progress,
                  as_json=as_json, errors=(FileNotFoundError,), checked=False)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None] | None]:
    """A progress callback on stderr: a rich status (spinner, stage, elapsed) on a terminal,
    ``bench: <stage>`` lines otherwise; ``None`` when disabled."""
    if not enabled:
        yield None
        return
    t0 = time.perf_counter()
    if err_console.is_terminal:
        with err_console.status("bench: starting") as status:
            def report(msg: str) -> None:
                status.update(f"bench: {msg}  [dim]{time.perf_counter() - t0:.0f} s[/dim]")
            yield report
        return

    def line(msg: str) -> None:
        print(f"bench: {msg} [{time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
    yield line


def run_and_show(run: Callable[[Callable[[str], None] | None], Any],
                 render: Callable[[Any, object], None], *, progress: bool, as_json: bool,
                 errors: tuple[type[Exception], ...] = (ValueError,),
                 checked: bool = True) -> None:
    """The body every measuring subcommand shares: ``run(report)`` under :func:`_progress`
    (``report``: the stage callback or None), one ``error:`` line (exit 2) for ``errors``,
    then the result as JSON (``--json``) or ``render(result, console)``; with ``checked``,
    exit 1 when ``result["checks"]["all_ok"]`` is false."""
    try:
        with _progress(progress) as report:
            res = run(report)
    except errors as e:
        _fail(str(e))
        return
    if as_json:
        print(json.dumps(res, indent=2))
    else:
        render(res, console)
    if checked and not res["checks"]["all_ok"]:
        raise typer.Exit(1)


def _ratio(x: float | None) -> str:
    return f"{x:.2f}x" if x else "-"


def _print_bench(result: dict) -> None:
    inp = result["input"]
    t = Table(title=(f"bench: {inp['frames']:,} frames ({inp['deltas']:,} deltas, "
                     f"{inp['markets']} markets), best of {inp['repeat']}"),
              title_justify="left",
              caption="ratio = ours / baseline rate; seed = stdlib json + Decimal + SortedDict, "
                      "BBO recomputed on every delta",
              caption_justify="left", box=box.SIMPLE_HEAD)
    for col in ("stage", "items", "ours /s", "baseline", "baseline /s", "ratio",
                "vs --sink none", "target"):
        t.add_column(col, justify="left" if col in ("stage", "baseline") else "right")
    for s in result["stages"]:
        target = "-"
        if s["target"] is not None:
            of = "vs none " if s["target_of"] == "vs_sink_none" else ""
            mark = {True: " ok", False: " missed", None: ""}[s["meets_target"]]
            target = (f">= {s['target']:,.0f}/s{mark}" if s["target_of"] == "rate"
                      else f"{of}>= {s['target']:.2f}x{mark}")
        t.add_row(s["stage"], f"{s['items']:,} {s['unit']}", f"{s['ours_per_s']:,}",
                  s["baseline"],
                  f"{s['baseline_per_s']:,}" if s["baseline_per_s"] else "-",
                  _ratio(s["speedup"]),
                  (f"{_ratio(s['vs_sink_none'])} of {s['sink_none_per_s']:,}"
                   if s.get("vs_sink_none") else "-"),
                  target)
    if console.is_terminal:
        console.print(t)  # squeezed to the terminal's width
    else:  # a pipe or a file gets the table unwrapped (rich would wrap it at 80 columns)
        width = console.width
        console.width = max(width, 200)
        try:
            console.print(t, width=console.measure(t).maximum)
        finally:
            console.width = width
    c = result["checks"]
    q = result.get("ilp")
    if q:
        console.print(
            f"QuestDB ILP into a discarding loopback endpoint ({q['rows']:,} rows): writer "
            f"{q['writer_rows_per_s']:,} rows/s vs raw Sender.row() {q['raw_rows_per_s']:,} rows/s "
            f"({q['writer_vs_raw']:.2f}x); replay --sink questdb {q['pipeline_questdb_msg_per_s']:,} "
            f"msg/s vs --sink none {q['pipeline_none_msg_per_s']:,} msg/s "
            f"(+{q['overhead_pct']}% time)")
    h = result.get("hdb_writer")
    if h:
        console.print(
            f"EOD chunk → Parquet writer: {h['rows']:,} orderbook_deltas rows ({h['tickers']} "
            f"tickers, {h['compression']}, fsync) at {h['rows_per_s']:,} rows/s, "
            f"{h['file_bytes'] / 2**20:.1f} MiB in {h['files']} file(s), {h['row_groups']} row group(s)")
    m = result.get("memory")
    if m:
        console.print(
            f"memory: replay --sink {m['sinks']} of {m['frames']:,} frames, {m['markets']:,} "
            f"live markets ({m['rows']:,} rows): peak RSS {m['peak_rss_mb']:,} MB, target "
            f"< {m['target_mb']:,.0f} MB {'ok' if m['meets_target'] else 'missed'}")
    console.print(f"checks: final BBO of {c['markets']} markets equal to the baseline, "
                  f"{c['bbo_changes']:,} BBO changes in both, gaps {c['gaps']}; "
                  f"peak RSS {result['peak_rss_mib']} MiB")


@bench_app.command("fuzz")
def fuzz(
    frames: int = typer.Option(1_000_000, help="Frames to feed (real and mutated)."),
    seed: int = typer.Option(0, help="RNG seed: the same seed gives the same frames."),
    check_every: int = typer.Option(1000, help="Check every book and event every N frames."),
    shared: bool = typer.Option(True, "--shared/--no-shared",
                                help="Also mutate the captures in ../shared/data/real/kalshi/ws "
                                     "when present."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Fuzz the ticker plant's contract with a seeded hostile feed built from real recordings.

    Mutated numbers, types, keys, seqs and books, truncated, deeply nested and invalid UTF-8
    frames, mixed with the real ones, go to the ticker plant with a Parquet store. Checks: no
    exception escapes, no live book is crossed or holds an out-of-range level, quarantined
    frames are kept verbatim, rows counted equal rows written, nothing out of range is
    accepted or published. Exit 1 when any fails."""
    from kalshi_platform.bench.fuzz import default_sources, run_fuzz

    if frames < 1 or check_every < 1:
        _fail("--frames and --check-every must be >= 1")
    sources, note = default_sources(shared)
    if note:
        console.print(f"note: {note}; using the bundled recordings only", highlight=False)
    res = run_fuzz(frames, seed, sources, check_every=check_every)
    if as_json:
        print(json.dumps(res.to_dict(), indent=2, default=str))
    else:
        _print_fuzz(res)
    if any(res.failures().values()) or any(res.contract_gaps().values()):
        raise typer.Exit(1)


def _print_fuzz(res) -> None:
    d = res.to_dict()
    console.print(f"fuzz: {res.frames:,} frames ({res.mutated:,} mutated) from "
                  f"{len(res.sources)} recording(s), seed {res.seed}, {res.elapsed_s:.1f} s "
                  f"({d['frames_per_s'] or 0:,} frames/s); {res.quarantined:,} quarantined, "
                  f"{res.live_checks:,} live-book checks, {res.resync_requests:,} resyncs",
                  highlight=False)
    t = Table(title="contract", title_justify="left")
    t.add_column("check")
    t.add_column("count", justify="right")
    for k, v in {**res.failures(), **res.contract_gaps()}.items():
        t.add_row(k, f"{v:,}")
    console.print(t)
    for title, items in (("exceptions", res.exceptions), ("internal errors", res.internal_errors),
                         ("accepted but must be quarantined", res.unquarantined),
                         ("event values out of range", res.bad_events)):
        for k, v in items.most_common(10):
            console.print(f"  {title}: {v:,} x {k}", highlight=False, markup=False)
    bad_rows = {t: r for t, r in res.rows.items() if not r["counted"] == r["written"] == r["read"]}
    if bad_rows:
        console.print(f"  rows counted/written/read differ: {bad_rows}", highlight=False,
                      markup=False)


def _csv(text: str) -> list[str]:
    """``"a, b,c"`` → ``["a", "b", "c"]``; ``"none"`` → ``[]``."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    return [] if items == ["none"] else items


@bench_app.command("fanout")
def fanout(
    events: int = typer.Option(100_000, help="Events per flat-out run (the publisher stops "
                                             "earlier after --cap-s)."),
    latency_events: int = typer.Option(15_000, help="Events per paced latency run."),
    rate: float = typer.Option(10_000, help="Paced rate, events/s (latency and stall runs)."),
    subscribers: str = typer.Option("1,4", help="Subscriber process counts, e.g. 1,4."),
    transports: str = typer.Option("ipc,udp,ws", help="Our transports: ipc, udp, ws."),
    baselines: str = typer.Option("zmq64,zmq,mpq",
                                  help="Baselines (or none): zmq64 (pyzmq PUB/SUB, 64-byte "
                                       "messages), zmq (pyzmq PUB/SUB, our batch messages), "
                                       "mpq (multiprocessing.Queue, our batch messages)."),
    repeat: int = typer.Option(1, help="Runs of every figure (interleaved); the median is "
                                       "shown."),
    cap_s: float = typer.Option(3.0, "--cap-s", help="Longest flat-out publishing, s."),
    stall: bool = typer.Option(True, "--stall/--no-stall",
                               help="Measure a stalled subscriber beside the readers."),
    stall_s: float = typer.Option(1.5, "--stall-s", help="How long the stalled subscriber "
                                                          "reads nothing, s."),
    loop: bool = typer.Option(True, "--loop/--no-loop",
                              help="Measure the read loop's worst stall while Parquet writes "
                                   "(inline store against the stream's consumer thread)."),
    loop_frames: int = typer.Option(100_000, help="Frames of the loop-stall replay."),
    loop_rate: float = typer.Option(25_000, help="Frames/s of the loop-stall replay."),
    loop_batch_rows: int = typer.Option(50_000, help="ParquetStore batch_rows in the "
                                                     "loop-stall replay."),
    source: Optional[Path] = typer.Option(None, help="Real capture to grow the input from "
                                                     "(default: bundled)."),
    progress: bool = typer.Option(True, "--progress/--quiet",
                                  help="One line per run on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Measure the subscriber transports against pyzmq and multiprocessing.Queue.

    Latency (paced), throughput (flat out) and a stalled subscriber for every transport, side
    by side with pyzmq PUB/SUB and multiprocessing.Queue in one run; and the read loop's
    worst stall while a Parquet store writes. Subscribers are separate processes; the events
    are real plant events. Exit 1 when a correctness check fails (a subscriber got events
    changed, duplicated or out of order, or the two store designs' rows differ); the
    issue's targets are reported, not enforced."""
    from kalshi_platform.bench.fanout import run_fanout

    try:
        subs = [int(x) for x in _csv(subscribers)]
    except ValueError:
        _fail(f"--subscribers must be numbers, e.g. 1,4: {subscribers!r}")
        return
    if source is not None and not source.is_file():
        _fail(f"{source}: no such file")
    try:
        res = run_fanout(events=events, latency_events=latency_events, rate=rate,
                         subscribers=subs, transports=_csv(transports),
                         baselines=_csv(baselines), cap_s=cap_s, stall=stall,
                         stall_s=stall_s, repeat=repeat, loop=loop, loop_frames=loop_frames,
                         loop_rate=loop_rate, loop_batch_rows=loop_batch_rows, source=source,
                         progress=progress)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
        return
    if as_json:
        print(json.dumps(res, indent=2, default=str))
    else:
        from kalshi_platform.bench.fanout_report import render

        render(res, console)
    if not res["checks"]["all_ok"]:
        raise typer.Exit(1)


@bench_app.command("exchange")
def exchange(
    ops: int = typer.Option(200_000, help="Commands in the mix (adds, cancels, crossing IOC)."),
    repeat: int = typer.Option(3, help="Runs per stage; the best CPU time is kept."),
    seed: int = typer.Option(0, help="RNG seed of the mix."),
    progress: bool = typer.Option(True, "--progress/--quiet", help="Stage lines on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Matching engine ops/s in-process against a naive sortedcontainers engine, measured in
    the same run (issue 13 §7; kalshi_platform/bench/exchange.py). Exit 1 when the engines
    disagree on the trades."""
    from kalshi_platform.bench.exchange import render, run_exchange_bench

    run_and_show(lambda report: run_exchange_bench(ops=ops, repeat=repeat, seed=seed,
                                                    progress=report),
                  render, progress=progress, as_json=as_json)


@bench_app.command("backtest")
def backtest_bench(
    frames: int = typer.Option(200_000, help="Frames of the synthetic recording."),
    copies: int = typer.Option(8, help="Copies of the bundled capture's 12 markets."),
    repeat: int = typer.Option(3, help="Runs per stage; the best CPU time is kept."),
    progress: bool = typer.Option(True, "--progress/--quiet", help="Stage lines on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Events/s through a backtest with the example market maker on every market, against
    the ticker plant alone on the same recording (issue 14 §8; kalshi_platform/bench/backtest.py)."""
    from kalshi_platform.bench.backtest import render, run_backtest_bench

    run_and_show(lambda report: run_backtest_bench(frames=frames, copies=copies,
                                                    repeat=repeat, progress=report),
                  render, progress=progress, as_json=as_json)


@bench_app.command("exchange-fix")
def exchange_fix(
    orders: int = typer.Option(5_000, help="NewOrderSingles sent (half resting bids, half IOC sells that take them)."),
    rate: float = typer.Option(1_000.0, help="Orders/s in total, open loop."),
    sessions: int = typer.Option(4, help="FIX sessions (client side in a child process)."),
    fsync: bool = typer.Option(True, "--fsync/--no-fsync", help="WAL fsync (on: the issue's condition)."),
    progress: bool = typer.Option(True, "--progress/--quiet", help="Stage lines on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """FIX round trip p50/p99 on loopback (NewOrderSingle -> first ExecutionReport) with the
    WAL's fsync on and group commit (issue 13 §7; kalshi_platform/bench/exchange_fix.py)."""
    from kalshi_platform.bench.exchange_fix import render, run_fix_bench

    run_and_show(lambda report: run_fix_bench(orders=orders, rate=rate, sessions=sessions,
                                               fsync=fsync, progress=report),
                  render, progress=progress, as_json=as_json,
                  errors=(ValueError, RuntimeError, OSError), checked=False)


@bench_app.command("exchange-rest")
def exchange_rest(
    orders: int = typer.Option(5_000, help="Orders sent (half resting bids, half IOC sells that take them)."),
    rate: float = typer.Option(1_000.0, help="Orders/s in total, open loop."),
    clients: int = typer.Option(4, help="HTTP clients, one user each (client side in a child process)."),
    progress: bool = typer.Option(True, "--progress/--quiet", help="Stage lines on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """REST order round trip p50/p99 on loopback (POST /portfolio/events/orders -> 201) against
    the sim's trading API with the WAL's fsync on (issue 13 §7; kalshi_platform/bench/exchange_rest.py)."""
    from kalshi_platform.bench.exchange_rest import render, run_rest_bench

    run_and_show(lambda report: run_rest_bench(orders=orders, rate=rate, clients=clients,
                                                progress=report),
                  render, progress=progress, as_json=as_json,
                  errors=(ValueError, RuntimeError, OSError), checked=False)
