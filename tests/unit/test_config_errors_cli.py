"""A bad ``KALSHI_*`` value is one line naming the variable, exit 2 (issue 12 §7,
"Configuration errors"). Run as the console script in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import COCKPIT, REPO_ROOT

SCRIPT = [sys.executable, "-c", "import sys; sys.argv[0] = 'kalshi-platform'; "
                                "from kalshi_platform.tools.cli import main; main()"]


def _run(args, tmp_path, **env_extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env.update(PYTHONPATH=str(REPO_ROOT), COLUMNS="200", NO_COLOR="1",
               KALSHI_STORE_DIR=str(tmp_path / "store"), **env_extra)
    return subprocess.run(SCRIPT + [str(a) for a in args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


REPLAY = ["replay", COCKPIT, "--sink", "none"]


def test_bad_integer_is_one_line_naming_the_variable(tmp_path):
    r = _run(REPLAY, tmp_path, KALSHI_PARQUET_BATCH_ROWS="abc")
    assert r.returncode == 2, r.stderr
    assert r.stderr == "error: KALSHI_PARQUET_BATCH_ROWS: expected an integer, got 'abc'\n"


def test_unknown_log_level_is_rejected(tmp_path):
    r = _run(REPLAY, tmp_path, KALSHI_LOG_LEVEL="LOUD")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: KALSHI_LOG_LEVEL: expected one of DEBUG, INFO, WARNING")
    assert "'LOUD'" in r.stderr


@pytest.mark.parametrize("var,value,want", [
    ("KALSHI_QUESTDB_ILP_PROTOCOL", "udp", "expected 'http' or 'tcp', got 'udp'"),
    ("KALSHI_QUESTDB_AUTO_INIT", "maybe", "expected true or false, got 'maybe'"),
    ("KALSHI_PARQUET_FLUSH_S", "soon", "expected a number, got 'soon'"),
])
def test_other_bad_values(tmp_path, var, value, want):
    r = _run(REPLAY, tmp_path, **{var: value})
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"error: {var}: {want}\n"


def test_bad_value_in_dot_env_is_named_too(tmp_path):
    (tmp_path / ".env").write_text("KALSHI_STREAM_QUEUE_EVENTS=lots\n")
    r = _run(["query", "SELECT 1", "--hdb", tmp_path], tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr == "error: KALSHI_STREAM_QUEUE_EVENTS: expected an integer, got 'lots'\n"


def test_log_level_any_case_is_accepted(tmp_path):
    r = _run(REPLAY, tmp_path, KALSHI_LOG_LEVEL="debug")
    assert r.returncode == 0, r.stderr
