"""``kalshi-platform bench``: speed against the seed-style baseline, measured in one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from kalshi_platform.tools.cli import _fail, app, console


@app.command()
def bench(
    frames: int = typer.Option(500_000, help="Frames in the synthetic recording."),
    repeat: int = typer.Option(3, help="Runs per stage; the best is kept."),
    source: Optional[Path] = typer.Option(None, help="Real capture to build the input from (default: bundled)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    hdb_rows: int = typer.Option(2_000_000, "--hdb-rows",
                                 help="Rows of the EOD chunk → Parquet writer stage (0 = skip)."),
    questdb: bool = typer.Option(True, "--questdb/--no-questdb",
                                 help="Also measure the QuestDB ILP writer against raw Sender.row() "
                                      "into a discarding loopback endpoint."),
) -> None:
    """Measure decode, book apply and the whole replay pipeline against the baseline
    (stdlib json + Decimal + SortedDict, BBO recomputed on every delta)."""
    from kalshi_platform.bench.runner import run_bench

    if frames < 1000 or repeat < 1:
        _fail("--frames must be >= 1000 and --repeat >= 1")
    if source is not None and not source.is_file():
        _fail(f"{source}: no such file")
    try:
        result = run_bench(frames=frames, repeat=repeat, source=source, ilp=questdb,
                           hdb_rows=max(hdb_rows, 0))
    except FileNotFoundError as e:
        _fail(str(e))
        return
    if as_json:
        print(json.dumps(result, indent=2))
        return
    inp = result["input"]
    t = Table(title=(f"bench: {inp['frames']:,} frames ({inp['deltas']:,} deltas, "
                     f"{inp['markets']} markets), best of {inp['repeat']}"),
              title_justify="left")
    for col in ("stage", "items", "ours /s", "baseline /s", "speed-up"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for s in result["stages"]:
        t.add_row(s["stage"], f"{s['items']:,}", f"{s['ours_per_s']:,}",
                  f"{s['baseline_per_s']:,}" if s["baseline_per_s"] else "-",
                  f"{s['speedup']:.2f}x" if s["speedup"] else "-")
    console.print(t)
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
    console.print(f"checks: final BBO of {c['markets']} markets equal to the baseline, "
                  f"{c['bbo_changes']:,} BBO changes in both, gaps {c['gaps']}; "
                  f"peak RSS {result['peak_rss_mib']} MiB")
