"""The ``kalshi-platform replay`` command, run as a real subprocess (exit codes, stderr).

User errors must be exactly one line on stderr, exit code 2, and never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

import kalshi_oracle as oracle
from conftest import COCKPIT, REPO_ROOT

D = Decimal


#: How the ``kalshi-platform`` console script runs (pyproject: kalshi_platform.tools.cli:main).
CONSOLE_SCRIPT = ["-c", "import sys; sys.argv[0] = 'kalshi-platform'; "
                        "from kalshi_platform.tools.cli import main; main()"]
DASH_M = ["-m", "kalshi_platform.tools.cli"]


def run_cli(args, tmp_path, how=CONSOLE_SCRIPT, **env_extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["KALSHI_STORE_DIR"] = str(tmp_path / "default_store")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    env.update(env_extra)
    return subprocess.run([sys.executable, *how, *map(str, args)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _dec(s):
    return None if s is None else D(s)


@pytest.fixture(scope="module")
def replay_summary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    out = tmp / "out" / "summary.json"
    store = tmp / "store"
    r = run_cli(["replay", COCKPIT, "--store", store, "--summary-json", out], tmp)
    return r, out, store, tmp


def test_replay_summary_json_matches_oracle(replay_summary):
    r, out, store, _ = replay_summary
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    s = json.loads(out.read_text())
    assert s["gaps"] == 0 and s["quarantined"] == 0
    assert s["frames"] == 269
    want = oracle.replay(COCKPIT).final_tops()
    markets = s["markets"]
    assert set(markets) == set(want) and len(markets) == 12
    for ticker, m in markets.items():
        assert m["state"] == "live"
        for k in ("yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size"):
            assert m[k] is None or isinstance(m[k], str)  # decimal strings, never floats
        got = (_dec(m["yes_bid"]), _dec(m["yes_bid_size"]), _dec(m["yes_ask"]),
               _dec(m["yes_ask_size"]))
        assert got == want[ticker], ticker
    # the parquet sink (default) wrote the store it reports
    assert s["store"] == str(store)
    assert (store / "bbo").is_dir() and (store / "orderbook_deltas").is_dir()
    assert s["rows_written"]["orderbook_deltas"] == 245


def test_replay_prints_a_summary(replay_summary):
    r, *_ = replay_summary
    assert "269" in r.stdout and "gaps" in r.stdout


def test_python_dash_m_runs_the_same_cli(tmp_path):
    """``python -m kalshi_platform.tools.cli replay FILE`` (the module has a ``__main__``
    guard for this) must behave like the console script."""
    out = tmp_path / "s.json"
    r = run_cli(["replay", COCKPIT, "--sink", "none", "--summary-json", out], tmp_path, how=DASH_M)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["frames"] == 269
    r = run_cli(["--help"], tmp_path, how=DASH_M)
    assert "replay" in r.stdout and "bench" in r.stdout


def test_sink_none_writes_no_store(tmp_path):
    out = tmp_path / "s.json"
    explicit = tmp_path / "explicit_store"
    r = run_cli(["replay", COCKPIT, "--sink", "none", "--summary-json", out], tmp_path)
    assert r.returncode == 0, r.stderr
    r2 = run_cli(["replay", COCKPIT, "--sink", "none", "--store", explicit], tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert not (tmp_path / "default_store").exists()
    assert not explicit.exists()
    assert not (tmp_path / "store").exists()
    s = json.loads(out.read_text())
    assert s["store"] is None and s["rows_written"] == {} and s["files_written"] == 0
    assert s["gaps"] == 0 and len(s["markets"]) == 12


def _assert_one_line_error(r):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_missing_file(tmp_path):
    line = _assert_one_line_error(run_cli(["replay", tmp_path / "nope.jsonl"], tmp_path))
    assert "nope.jsonl" in line
    assert not (tmp_path / "default_store").exists()


def test_directory(tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    line = _assert_one_line_error(run_cli(["replay", d], tmp_path))
    assert "adir" in line


def test_unreadable_file(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("running as root: root can read a chmod-000 file")
    f = tmp_path / "secret.jsonl"
    f.write_bytes(COCKPIT.read_bytes())
    f.chmod(0)
    try:
        _assert_one_line_error(run_cli(["replay", f], tmp_path))
    finally:
        f.chmod(0o600)


@pytest.mark.parametrize("sink", ["bogus", "parquet,bogus", "none,parquet", ""])
def test_bad_sink(tmp_path, sink):
    line = _assert_one_line_error(run_cli(["replay", COCKPIT, "--sink", sink], tmp_path))
    assert "sink" in line
    assert not (tmp_path / "default_store").exists()
