"""``bench fanout`` (issue 10 §7): the output's shape and its correctness checks, never speed.

One tiny end-to-end run (every transport and baseline, one reader plus a stalled subscriber,
real plant events from the bundled recording, subscriber processes) checks that every
subscriber got the events published (digests), that subscribers reading a paced stream lose
nothing, that the stalled one is told of what it lost, and that the JSON, the tables and the
CLI hold together. The analysis is also checked on hand-made receipts (a hole, a duplicate,
a reordering, a changed event) so a wrong answer cannot pass as a result.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from kalshi_platform.bench import fanout
from kalshi_platform.bench.fanout_report import _subscriber, render
from kalshi_platform.bench.fanout_systems import BASELINES, TRANSPORTS
from kalshi_platform.tools.cli import _register_optional, app

_register_optional()  # the `bench` group, as the console script does


@pytest.fixture(scope="module")
def result() -> dict:
    return fanout.run_fanout(events=3000, latency_events=1200, rate=4000, subscribers=(1,),
                             cap_s=1.0, stall_s=0.4, stall_after_s=0.3, loop_frames=6000,
                             loop_rate=20_000, loop_batch_rows=2000, progress=False)


def test_every_system_measured_with_every_figure(result: dict) -> None:
    names = list(TRANSPORTS) + list(BASELINES)
    assert result["input"]["events"] >= 3000
    assert set(result["input"]["event_types"]) >= {"DeltaEvent", "BBO"}  # real plant events
    for kind, per_system in (("latency", 1), ("throughput", 1), ("stall", 2)):
        assert sorted(r["system"] for r in result[kind]) == sorted(names * per_system), kind
    for r in result["latency"]:
        lat = r["latency_us"]
        assert r["mode"] == "paced" and lat["n"] > 0
        assert lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    figures = {f["figure"]: f for f in result["figures"]}
    p99 = figures["latency p99, paced 4,000 ev/s, 1 sub"]
    assert set(p99["values"]) == set(names)
    assert set(p99["ratios"]) == set(TRANSPORTS)
    assert all(set(r) == {"zmq", "mpq"} for r in p99["ratios"].values())
    assert result["targets"]["systems"] == {}  # 4 subscribers were not measured
    json.dumps(result)  # --json


def test_correctness_checks(result: dict) -> None:
    c = result["checks"]
    assert c["all_ok"], c["failed_runs"]
    readers = [s for k in ("latency", "throughput", "stall") for r in result[k]
               for s in r["readers"]]
    assert c["reader_digests_equal"] == sum(1 for s in readers if s["digest_ok"] is not None)
    for r in result["latency"] + result["stall"]:
        if r["system"] in TRANSPORTS:  # a reader that keeps up with a paced stream loses none
            assert r["lost_readers"] == 0 and r["readers_ended"], r["system"]
            assert all(s["ok"] and s["order_breaks"] == 0 for s in r["readers"])
    for r in result["stall"]:
        st = r["stalled_sub"]
        assert (st is not None) == r["stalled"]
        if st is not None:
            assert st["ok"] and st["told"], r["system"]  # told of what it lost (if anything)
    loop = result["loop_stall"]
    assert loop["rows_equal"] and loop["inline"]["rows"] > 0
    assert not loop["inline"]["sink_failures"] and not loop["stream"]["sink_failures"]


def test_tables_render(result: dict) -> None:
    buf = io.StringIO()
    render(result, Console(file=buf, width=220))
    text = buf.getvalue()
    for label in ("latency p99", "flat out", "stall:", "read loop while Parquet writes",
                  "checks:"):
        assert label in text


class _Wl:
    """A stand-in workload: digests of the seq segments it is asked for."""

    def digest(self, segments: tuple) -> str:
        return repr(segments)


def _res(rows: list[tuple[int, int, int]], digest: str | None) -> dict:
    return {"records": np.array(rows, dtype=np.int64).tobytes(), "digest": digest,
            "gap_msgs": 0, "snapshots": 0, "ended": True, "end_seq": 10, "cpu_s": 0.0}


def test_analysis_flags_loss_duplicates_reordering_and_changed_events() -> None:
    commit = np.arange(1, 11, dtype=np.int64) * 1000  # seq s committed at s µs
    good = [(1, 4, 10_000), (5, 6, 20_000)]
    s = _subscriber(_res(good, repr(((1, 11),))), commit, 10, 0, 0, _Wl())
    assert (s["ok"], s["lost"], s["order_breaks"], s["digest_ok"]) == (True, 0, 0, True)
    assert s["latency_us"]["max"] == 15  # seq 5 committed at 5 µs, decoded at 20 µs
    hole = [(1, 4, 10_000), (7, 4, 20_000)]
    s = _subscriber(_res(hole, repr(((1, 5), (7, 11)))), commit, 10, 0, 0, _Wl())
    assert (s["ok"], s["lost"], s["order_breaks"]) == (True, 2, 1)  # loss is no failure
    assert not s["end_told_tail_lost"]
    dup = [(1, 4, 10_000), (3, 8, 20_000)]
    s = _subscriber(_res(dup, repr(((1, 5), (3, 11)))), commit, 10, 0, 0, _Wl())
    assert not s["ok"] and s["duplicates"] == 2 and s["backwards"] == 1
    s = _subscriber(_res(good, "another digest"), commit, 10, 0, 0, _Wl())
    assert not s["ok"] and s["digest_ok"] is False
    tail = _res([(1, 4, 10_000)], repr(((1, 5),)))
    s = _subscriber(tail, commit, 10, 0, 0, _Wl())
    assert s["lost"] == 6 and s["end_told_tail_lost"]  # END past what it got: told


def test_cli_registered_and_validates() -> None:
    r = CliRunner().invoke(app, ["bench", "fanout", "--help"])
    assert r.exit_code == 0 and "--subscribers" in r.output and "--json" in r.output
    r = CliRunner().invoke(app, ["bench", "fanout", "--transports", "tcp"])
    assert r.exit_code == 2
