"""Issue 9 §2, the command side: a sink that failed during a run (full disk, …) makes
``replay`` and ``run`` print their summary as usual, then exactly one line naming the failed
sink(s) and error(s), and exit 1; the summary JSON has ``sink_failures``.

Two kinds of test:

* against the plant's contract (``plant.sink_failures``: sink name → one-line error), with a
  plant whose ``sink_failures`` is preset, so the CLI side is tested on its own;
* end to end, with a publisher whose disk is full (``OSError(ENOSPC)`` on every event) next
  to the real Parquet sink: the plant must isolate it (skipped while ``TickerPlant`` has no
  ``sink_failures``).

The live ``run`` goes over loopback to the local sim serving the bundled real capture.
"""

from __future__ import annotations

import errno
import functools
import json
import os

import pytest
from typer.testing import CliRunner

import kalshi_platform.tools.cli as cli
import kalshi_platform.tools.live as live_cli
import kalshi_platform.tools.replay as replay_mod
from conftest import COCKPIT
from sim_support import sim_thread
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.sim.rest import event_of
from kalshi_platform.storage.parquet_store import read_table
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.tools.cli import app
from kalshi_platform.tools.sinks import build_sinks

ENOSPC_TEXT = f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}"
FAILED = {"parquet": ENOSPC_TEXT}
ONE_LINE = f"error: sink parquet failed: {ENOSPC_TEXT}"

PLANT_ISOLATES_SINKS = hasattr(TickerPlant(), "sink_failures")
needs_isolation = pytest.mark.skipif(
    not PLANT_ISOLATES_SINKS,
    reason="TickerPlant.sink_failures (issue 9 §2, plant side) has not landed yet")


class PlantWithFailedSink(TickerPlant):
    """A real plant that reports its ``parquet`` sink failed (the contract the CLI reads)."""

    @property
    def sink_failures(self) -> dict[str, str]:
        return dict(FAILED)

    @sink_failures.setter
    def sink_failures(self, value) -> None:  # a plant that assigns it in __init__
        pass


class FullDisk:
    """A sink on a full disk: every ``publish`` raises ``OSError(ENOSPC)``."""

    sink_name = "fakedisk"

    def __init__(self) -> None:
        self.calls = 0

    def publish(self, ev) -> None:
        self.calls += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("KALSHI_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def error_lines(r) -> list[str]:
    assert "Traceback" not in r.stdout + r.stderr
    return [ln for ln in r.stderr.splitlines() if ln.strip()]


# -- replay ----------------------------------------------------------------------------------


def test_replay_prints_the_summary_then_one_line_and_exits_1(tmp_path, monkeypatch):
    monkeypatch.setattr(replay_mod, "TickerPlant", PlantWithFailedSink)
    out = tmp_path / "s.json"
    r = invoke("replay", COCKPIT, "--store", tmp_path / "store", "--summary-json", out)
    assert r.exit_code == 1, r.stdout + r.stderr
    assert "frames" in r.stdout and "269" in r.stdout  # the summary, as usual
    assert error_lines(r) == [ONE_LINE]
    s = json.loads(out.read_text())
    assert s["sink_failures"] == FAILED
    assert s["rows_written"]["orderbook_deltas"] == 245  # what was written stays written


@needs_isolation
def test_replay_with_a_full_disk_sink(tmp_path, monkeypatch):
    """The failing sink is named, the Parquet sink beside it writes everything, and no
    valid frame is turned into a quarantine record."""
    disk = FullDisk()
    monkeypatch.setattr(cli, "run_replay",
                        functools.partial(replay_mod.run_replay, publishers=[disk]))
    out = tmp_path / "s.json"
    r = invoke("replay", COCKPIT, "--store", tmp_path / "store", "--summary-json", out)
    assert r.exit_code == 1, r.stdout + r.stderr
    (line,) = error_lines(r)
    assert line == f"error: sink fakedisk failed: {ENOSPC_TEXT}"
    s = json.loads(out.read_text())
    assert s["sink_failures"] == {"fakedisk": ENOSPC_TEXT}
    assert s["quarantined"] == 0 and s["frames"] == 269
    assert s["rows_written"] == s["rows_by_table"]  # the Parquet sink went on
    assert read_table(tmp_path / "store", "orderbook_deltas").num_rows == 245
    assert disk.calls >= 1


def test_summary_without_failures_says_so(tmp_path):
    s = replay_mod.run_replay(COCKPIT, store=tmp_path / "store", sinks=[])
    assert s["sink_failures"] == {} and s["partial_files"] == []


# -- run (live, against the local sim over loopback) --------------------------------------------


def _run_args(sim, tmp_path) -> list:
    plant = TickerPlant()
    feed(COCKPIT, plant)
    args = ["run", "--sink", "parquet", "--store", tmp_path / "store", "--ws-url", sim.ws_url,
            "--base-url", sim.rest_url, "--exit-on-close", "--status-interval", "0",
            "--summary-json", tmp_path / "s.json"]
    for e in sorted({event_of(t) for t in plant.books}):
        args += ["--event", e]
    return args


def test_run_prints_the_summary_then_one_line_and_exits_1(tmp_path, monkeypatch):
    monkeypatch.setattr(live_cli, "TickerPlant", PlantWithFailedSink)
    with sim_thread(recording=COCKPIT, exit_when_done=True) as sim:
        r = invoke(*_run_args(sim, tmp_path))
    assert r.exit_code == 1, r.stdout + r.stderr
    assert "stopped by" in r.stdout and "server closed" in r.stdout  # the summary, as usual
    assert error_lines(r) == [ONE_LINE]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["sink_failures"] == FAILED and s["market_count"] == 12


@needs_isolation
def test_run_with_a_full_disk_sink(tmp_path, monkeypatch):
    disk = FullDisk()

    def sinks_and_a_full_disk(*a, **kw):
        return build_sinks(*a, **kw) + [disk]

    monkeypatch.setattr(live_cli, "build_sinks", sinks_and_a_full_disk)
    with sim_thread(recording=COCKPIT, exit_when_done=True) as sim:
        r = invoke(*_run_args(sim, tmp_path))
    assert r.exit_code == 1, r.stdout + r.stderr
    assert error_lines(r) == [f"error: sink fakedisk failed: {ENOSPC_TEXT}"]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["sink_failures"] == {"fakedisk": ENOSPC_TEXT}
    assert s["quarantined"] == 0 and s["market_count"] == 12
    assert read_table(tmp_path / "store", "orderbook_deltas").num_rows == 245
