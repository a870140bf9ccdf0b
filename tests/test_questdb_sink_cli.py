"""`replay --sink questdb` and `--sink parquet,questdb` end to end against a loopback ILP
endpoint: every table row arrives once, both sinks agree, and rows written while QuestDB is
away are spooled and delivered by the next run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from kalshi_platform.bench.ilp_endpoint import ILPEndpoint
from kalshi_platform.storage.parquet_store import read_table
from kalshi_platform.tools.cli import _register_optional, app

REC = Path(__file__).resolve().parents[1] / "data" / "recordings" / \
    "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
_register_optional()


def _env(tmp_path, conf: str) -> dict:
    return {"KALSHI_QUESTDB_ILP_CONF": conf, "KALSHI_QUESTDB_SPOOL_DIR": str(tmp_path / "spool"),
            "KALSHI_QUESTDB_CLOSE_TIMEOUT_S": "0.5", "KALSHI_STORE_DIR": str(tmp_path / "store"),
            "KALSHI_QUESTDB_AUTO_INIT": "false"}  # the loopback endpoint has no PG wire


def _replay(tmp_path, env, sink: str, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    r = CliRunner().invoke(app, ["replay", str(REC), "--sink", sink, "--summary-json", str(out)],
                           env=env)
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text())


def test_parquet_and_questdb_sinks_receive_the_same_rows(tmp_path):
    with ILPEndpoint() as ep:
        s = _replay(tmp_path, _env(tmp_path, ep.conf), "parquet,questdb", "both")
    expected = s["rows_by_table"]
    assert s["questdb"]["rows_written"] == sum(expected.values()) == len(ep.lines)
    assert s["questdb"]["spool_depth"] == 0 and s["questdb"]["rows_quarantined"] == 0
    by_table = Counter(ln.split(b",", 1)[0].split(b" ", 1)[0].decode() for ln in ep.lines)
    assert dict(by_table) == expected
    for table, n in expected.items():
        assert read_table(tmp_path / "store", table).num_rows == n
    assert len(set(ep.lines)) == len(ep.lines)


def test_questdb_away_rows_are_spooled_then_delivered_by_the_next_run(tmp_path):
    ep = ILPEndpoint().start()
    conf = ep.conf
    ep.stop()  # nothing listens on that port now
    s1 = _replay(tmp_path, _env(tmp_path, conf), "questdb", "down")
    total = sum(s1["rows_by_table"].values())
    assert s1["questdb"]["rows_written"] == 0 and s1["questdb"]["spool_depth"] == total
    ep.start()  # QuestDB is back on the same port
    try:
        s2 = _replay(tmp_path, _env(tmp_path, conf), "questdb", "up")
    finally:
        ep.stop()
    # the spooled first run and the second run both land; nothing stays behind
    assert s2["questdb"]["spool_depth"] == 0
    assert len(ep.lines) == 2 * total
    assert Counter(ep.lines) == Counter({ln: 2 for ln in set(ep.lines)})


def test_bad_questdb_conf_is_one_line(tmp_path):
    env = _env(tmp_path, "mysql::addr=x;")
    r = CliRunner().invoke(app, ["replay", str(REC), "--sink", "questdb"], env=env)
    assert r.exit_code == 2
    assert "QuestDB sink" in r.output and "Traceback" not in r.output


def _wait_until(pred, timeout_s: float = 20.0) -> None:
    import threading
    import time

    ev, deadline = threading.Event(), time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        ev.wait(0.01)


def test_sigterm_flushes_every_processed_row(tmp_path):
    """A paced replay killed with SIGTERM delivers every row of the frames it processed (a
    prefix of a clean run's rows, longer than what had arrived when the signal was sent),
    spools nothing, and exits 130."""
    import os
    import signal
    import subprocess
    import sys

    with ILPEndpoint() as clean:
        _replay(tmp_path, _env(tmp_path, clean.conf), "questdb", "clean")
    expected = list(clean.lines)
    with ILPEndpoint() as ep:
        env = {**os.environ, **_env(tmp_path, ep.conf), "KALSHI_QUESTDB_FLUSH_INTERVAL_MS": "20",
               "KALSHI_QUESTDB_SPOOL_DIR": str(tmp_path / "spool2")}
        proc = subprocess.Popen([sys.executable, "-m", "kalshi_platform", "replay", str(REC),
                                 "--sink", "questdb", "--speed", "4"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_until(lambda: len(ep.lines) > 0)
            seen = len(ep.lines)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        got = list(ep.lines)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert 0 < seen <= len(got) < len(expected)
    assert got == expected[:len(got)]  # in order, nothing lost, nothing doubled
    assert not any((tmp_path / "spool2").glob("seg-*.spool")) or \
        all(p.stat().st_size == 0 for p in (tmp_path / "spool2").glob("seg-*.spool"))
