"""What ``kalshi-platform bench`` prints (issue 11, "Bench output"), on tiny runs.

Only the shape is checked: progress on stderr, every row with its rate, baseline and ratio,
the Parquet row also against ``--sink none``, the same figures in ``--json``. Speed is never
asserted here (the figures of a 2,000-frame run on a shared machine mean nothing).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

SCRIPT = [sys.executable, "-c", "from kalshi_platform.tools.cli import main; main()"]
TINY = ["bench", "--frames", "2000", "--repeat", "1", "--no-questdb", "--hdb-rows", "0",
        "--memory-markets", "0"]

#: keys every stage of --json carries (the first five predate the output rework)
STAGE_KEYS = {"stage", "items", "ours_per_s", "baseline_per_s", "speedup", "ours_s",
              "baseline_s", "baseline", "unit", "target", "target_of", "meets_target"}


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    r = subprocess.run(SCRIPT + args, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    return r


def test_table_rows_and_progress_on_a_pipe() -> None:
    r = _run(TINY)
    # progress: short lines on stderr (not a TTY), naming the stages in order
    progress = r.stderr.splitlines()
    assert progress and all(ln.startswith("bench: ") for ln in progress)
    text = "\n".join(progress)
    order = ["generating", "pipeline --sink none", "seed baseline", "--sink parquet",
             "decode: ours", "book apply: ours"]
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    out = r.stdout
    assert "bench:" not in r.stdout.split("\n", 1)[1]  # progress never on stdout
    header = next(ln for ln in out.splitlines() if "stage" in ln and "ratio" in ln)
    for col in ("ours /s", "baseline", "baseline /s", "ratio", "vs --sink none", "target"):
        assert col in header
    rows = {ln.split("  ")[1].strip(): ln for ln in out.splitlines()
            if ln.startswith("  ") and ln != header
            and any(f" {u} " in ln for u in ("msg", "line", "op"))}
    assert set(rows) == {"pipeline (replay --sink none)", "pipeline+parquet (--sink parquet)",
                         "decode", "book apply + BBO"}, out
    for name, ln in rows.items():  # not wrapped on a pipe: rate, baseline rate, ratio on one line
        assert "seed" in ln and ln.count("x") >= 1, ln
        nums = [tok for tok in ln.split() if tok.replace(",", "").isdigit()]
        assert len(nums) >= 3, ln  # items, ours /s, baseline /s
    assert " of " in rows["pipeline+parquet (--sink parquet)"]  # vs --sink none of N msg/s
    assert "vs none >= 0.70x" in rows["pipeline+parquet (--sink parquet)"]
    assert ">= 10.00x" in rows["pipeline (replay --sink none)"]
    assert "checks: final BBO" in out


def test_quiet_prints_nothing_on_stderr() -> None:
    r = _run(TINY + ["--quiet"])
    assert r.stderr == ""
    assert "pipeline+parquet" in r.stdout


def test_json_carries_the_same_figures() -> None:
    r = _run(TINY + ["--json"])
    res = json.loads(r.stdout)  # progress went to stderr, stdout is JSON only
    assert r.stderr.startswith("bench: ")
    stages = {s["stage"]: s for s in res["stages"]}
    assert list(stages) == ["pipeline (replay --sink none)", "pipeline+parquet (--sink parquet)",
                            "decode", "book apply + BBO"]
    for s in stages.values():
        assert STAGE_KEYS <= set(s), s
        assert s["ours_per_s"] > 0 and s["baseline_per_s"] > 0 and s["speedup"] > 0
        assert s["baseline"] == "seed" or s["baseline"].startswith("seed")
    none = stages["pipeline (replay --sink none)"]
    pq = stages["pipeline+parquet (--sink parquet)"]
    assert none["target"] == 10.0 and isinstance(none["meets_target"], bool)
    # the Parquet row: against the seed baseline (which writes nothing) and --sink none
    assert pq["baseline_s"] == none["baseline_s"]
    assert pq["sink_none_s"] == none["ours_s"]
    assert pq["sink_none_per_s"] == none["ours_per_s"]
    assert pq["vs_sink_none"] == pytest.approx(none["ours_s"] / pq["ours_s"], abs=0.01)
    assert pq["target_of"] == "vs_sink_none" and pq["target"] == 0.7
    assert "vs_sink_none" not in none
    assert res["ilp"] is None and res["hdb_writer"] is None and res["memory"] is None


@pytest.mark.skipif(importlib.util.find_spec("questdb") is None, reason="questdb not installed")
def test_questdb_and_eod_rows() -> None:
    args = ["bench", "--frames", "2000", "--repeat", "1", "--hdb-rows", "20000",
            "--memory-markets", "24"]
    res = json.loads(_run(args + ["--json", "--quiet"]).stdout)
    stages = {s["stage"]: s for s in res["stages"]}
    w = stages["questdb writer (loopback, discarding)"]
    assert w["baseline"] == "raw Sender.row()" and w["items"] == res["ilp"]["rows"]
    assert w["baseline_per_s"] == res["ilp"]["raw_rows_per_s"]
    q = stages["pipeline+questdb (--sink questdb)"]
    assert q["baseline_per_s"] == res["ilp"]["pipeline_none_msg_per_s"]
    h = next(s for n, s in stages.items() if n.startswith("EOD chunk"))
    assert h["baseline"].startswith("pyarrow ParquetWriter")
    assert h["baseline_per_s"] == res["hdb_writer"]["baseline_rows_per_s"]
    assert h["target"] == 2_000_000 and h["target_of"] == "rate"
    assert h["meets_target"] == (h["ours_per_s"] >= 2_000_000)
    assert abs(h["ours_per_s"] - res["hdb_writer"]["rows_per_s"]) <= 1
    for s in (w, q, h):
        assert STAGE_KEYS <= set(s) and s["speedup"] > 0 and s["target"] is not None
    m = res["memory"]  # a 24-market replay in a child process: shape only
    assert m["markets"] == 24 and m["peak_rss_bytes"] > 0 and m["target_mb"] == 500
    assert m["meets_target"] == (m["peak_rss_bytes"] < 500_000_000)
    table = _run(args + ["--quiet"]).stdout
    for name in ("questdb writer", "raw Sender.row()", "pipeline+questdb", "pyarrow ParquetWriter",
                 ">= 2,000,000/s", "memory: replay --sink parquet,questdb", "target < 500 MB"):
        assert name in table
