"""Peak memory of a replay with many live markets (issue 11 §2 "Memory": 10,000 markets at
< 500 MB RSS).

The input is a synthetic recording from the bench generator (:mod:`kalshi_platform.bench.synth`)
with enough market copies for ``markets`` live books (the bundled capture has 12 markets, so
10,000 markets are 834 copies: 10,008 books, every one of them snapshotted and updated).
The replay is the real command, ``kalshi-platform replay FILE --sink parquet,questdb`` (both
storage sinks: the heaviest configuration; the QuestDB sink writes to the discarding
loopback ILP endpoint of :mod:`kalshi_platform.bench.ilp`), run in a child process that
reports its own peak resident set size: ``VmHWM`` of ``/proc/self/status``, the high-water
mark of the memory the replay itself mapped. Not ``ru_maxrss``: Linux carries the parent's
resident size across fork and exec into the child's ``ru_maxrss``, so a child of an 860 MB
bench would report 860 MB whatever it did.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: issue 11's bound on the replay's peak RSS, bytes (500 MB)
RSS_TARGET_BYTES = 500_000_000
#: markets in the bundled capture (copies of them make the synthetic markets)
_SOURCE_MARKETS = 12
#: environment variable naming the file the child writes its peak RSS (bytes) to
_RSS_OUT = "KALSHI_BENCH_RSS_OUT"


def peak_rss_bytes() -> int:
    """This process's own peak resident set size, bytes (``VmHWM``; ``ru_maxrss`` where
    ``/proc`` is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def replay_peak_rss(recording: Path, sinks: str, workdir: Path, conf: str) -> dict:
    """Run ``kalshi-platform replay recording --sink sinks`` in a child process (store and
    spool under ``workdir``, QuestDB ILP to ``conf``); return its summary figures and peak
    RSS. Raises ``RuntimeError`` if the replay fails."""
    rss_out = workdir / "peak_rss"
    env = {**os.environ, "KALSHI_QUESTDB_ILP_CONF": conf, "KALSHI_QUESTDB_AUTO_INIT": "false",
           "KALSHI_QUESTDB_SPOOL_DIR": str(workdir / "spool"),
           "KALSHI_STORE_DIR": str(workdir / "store"), _RSS_OUT: str(rss_out)}
    summary = workdir / "summary.json"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "kalshi_platform.bench.memory", "replay",
                        str(recording), "--sink", sinks, "--summary-json", str(summary)],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"replay for the memory bench failed (exit {r.returncode}): {last}")
    s = json.loads(summary.read_text())
    rss = int(rss_out.read_text())
    return {"sinks": sinks, "frames": s["frames"], "markets": s["market_count"],
            "rows": sum(s["rows_by_table"].values()), "elapsed_s": round(wall, 3),
            "peak_rss_bytes": rss, "peak_rss_mb": round(rss / 1e6, 1),
            "target_mb": RSS_TARGET_BYTES / 1e6, "meets_target": rss < RSS_TARGET_BYTES}


def run_memory_bench(source: Path, *, markets: int = 10_000, frames: int | None = None,
                     sinks: str = "parquet,questdb", workdir: Path | None = None,
                     progress=None) -> dict:
    """Generate a ``frames``-frame recording (default 20 per market: 200,000 for 10,000
    markets) with at least ``markets`` live markets and measure the peak RSS of its replay
    (see the module doc). Returns :func:`replay_peak_rss`'s dict plus ``generate_s``."""
    from kalshi_platform.bench.ilp import DiscardEndpoint
    from kalshi_platform.bench.synth import write_synthetic_recording

    copies = math.ceil(markets / _SOURCE_MARKETS)
    frames = frames or max(1_000, 20 * markets)
    with tempfile.TemporaryDirectory(prefix="kalshi-mem-", dir=workdir) as tmp:
        wd = Path(tmp)
        rec = wd / "markets.jsonl"
        if progress:
            progress(f"memory: generating {frames:,} frames over {copies * _SOURCE_MARKETS:,} "
                     "markets")
        t0 = time.perf_counter()
        write_synthetic_recording(source, rec, frames, market_copies=copies)
        gen_s = time.perf_counter() - t0
        if progress:
            progress(f"memory: replay --sink {sinks} in a child process")
        with DiscardEndpoint() as ep:
            out = replay_peak_rss(rec, sinks, wd, ep.conf)
    out["generate_s"] = round(gen_s, 3)
    return out


def _child_main() -> None:  # pragma: no cover - run as the memory bench's child process
    """``python -m kalshi_platform.bench.memory <kalshi-platform args>``: the CLI in this
    process, then its peak RSS written to ``$KALSHI_BENCH_RSS_OUT``."""
    from kalshi_platform.tools.cli import main

    sys.argv = ["kalshi-platform", *sys.argv[1:]]
    code: object = 0
    try:
        main()
    except SystemExit as e:
        code = e.code
    out = os.environ.get(_RSS_OUT)
    if out:
        Path(out).write_text(str(peak_rss_bytes()))
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    _child_main()
