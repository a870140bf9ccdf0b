"""Progress of long commands (issue 12 §7 "Silent long commands"): ``replay`` and ``eod`` show
a spinner line on stderr when it is a terminal, and print nothing extra on a pipe.

``TTY_COMPATIBLE=1`` makes rich treat the captured stderr as a terminal (what a user at a
terminal gets); without it the captured stderr is a pipe. Over the bundled real recordings.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from conftest import COCKPIT, read_lines
from kalshi_platform.tools.cli import _register_optional, app
from kalshi_platform.tools.progress import ReplayProgress
from kalshi_platform.tools.replay import run_replay

_register_optional()
FRAMES = sum(1 for ln in read_lines(COCKPIT) if ln.strip())  # 269 (data/PROVENANCE.md)
PIPE = {"COLUMNS": "200", "NO_COLOR": "1", "TTY_COMPATIBLE": None, "FORCE_COLOR": None}
TERMINAL = {**PIPE, "TTY_COMPATIBLE": "1"}


def _invoke(args, env):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def test_replay_on_a_pipe_prints_no_progress(tmp_path: Path):
    r = _invoke(["replay", COCKPIT, "--store", tmp_path / "store"], PIPE)
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    assert "replay:" not in r.stdout and f"{FRAMES:,}" in r.stdout  # the summary only


def test_replay_on_a_terminal_shows_a_progress_line(tmp_path: Path):
    r = _invoke(["replay", COCKPIT, "--store", tmp_path / "store"], TERMINAL)
    assert r.exit_code == 0, r.output
    assert "replay:" in r.stderr and f"replay: {FRAMES:,} frames" in r.stderr, r.stderr
    assert "replay:" not in r.stdout  # the summary on stdout stays clean


def test_replay_progress_names_the_file_of_a_rotated_directory(tmp_path: Path):
    d = tmp_path / "rec"
    d.mkdir()
    lines = read_lines(COCKPIT)
    (d / "a.jsonl").write_bytes(b"\n".join(lines[:100]) + b"\n")
    (d / "b.jsonl").write_bytes(b"\n".join(lines[100:]) + b"\n")
    buf = io.StringIO()
    shown = ReplayProgress(Console(file=buf, force_terminal=True, width=120, color_system=None))
    s = run_replay(d, store=tmp_path / "store", sinks=[], progress=shown)
    assert s["frames"] == FRAMES
    out = buf.getvalue()
    assert f"replay: {FRAMES:,} frames" in out and "(file 2/2 b.jsonl)" in out, out


def test_eod_progress_on_a_terminal_only(tmp_path: Path):
    store = tmp_path / "store"
    run_replay(COCKPIT, store=store, sinks=["parquet"])
    copy = tmp_path / "store2"
    shutil.copytree(store, copy)
    args = ["eod", "--source", "embedded", "--date", "2026-08-07", "--tables", "bbo"]
    r = _invoke(args + ["--store", store, "--dest", tmp_path / "hdb"], PIPE)
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    r = _invoke(args + ["--store", copy, "--dest", tmp_path / "hdb2"], TERMINAL)
    assert r.exit_code == 0, r.output
    assert "eod: 2026-08-07 bbo:" in r.stderr, r.stderr
    assert "eod:" not in r.stdout


def test_log_lines_print_above_the_spinner_not_into_it(tmp_path: Path, monkeypatch):
    import logging
    import sys

    from conftest import SSMD_TRADE

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    handler = logging.StreamHandler(err)  # what basicConfig(stream=sys.stderr) makes
    logging.getLogger().addHandler(handler)
    try:
        con = Console(stderr=True, force_terminal=True, width=200, color_system=None)
        s = run_replay(SSMD_TRADE, store=tmp_path / "store", sinks=[],
                       progress=ReplayProgress(con))
    finally:
        logging.getLogger().removeHandler(handler)
    assert s["gaps"] == 1  # data/PROVENANCE.md: seq 10 then 48..56, one gap, logged
    lines = err.getvalue().replace("\r", "\n").splitlines()
    warned = [ln for ln in lines if "seq gap on sid 2" in ln]
    assert warned and all("replay:" not in ln for ln in warned), lines
    assert handler.stream is err  # pointed back after the spinner
