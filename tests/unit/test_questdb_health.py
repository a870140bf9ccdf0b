"""The QuestDB writer's health API (issue 12 §7 "Status line"): up / retrying / spooling and
counters that say where the rows are, against a loopback ILP endpoint that refuses for a while
(503, then connection refused) and comes back. Every wait polls a condition (conftest
``wait_until``); none sleeps."""

from __future__ import annotations

import json
from types import SimpleNamespace

from conftest import COCKPIT, wait_until
from typer.testing import CliRunner

from kalshi_platform.bench.ilp_endpoint import ILPEndpoint
from kalshi_platform.live import status_line
from kalshi_platform.storage.questdb_rdb import QuestDBWriter
from kalshi_platform.ticker_plant.events import FeedEvent
from kalshi_platform.ticker_plant.plant import TickerPlant


def _ev(i: int) -> FeedEvent:
    return FeedEvent(1_700_000_000_000_000_000 + i * 1000, "resync", 1, i, i, f"r{i}")


def _client(connected: bool = True):
    return SimpleNamespace(connected=connected,
                           stats=SimpleNamespace(resyncs=0, reconnects=0))


def test_refusing_then_back_up_states_and_counters(tmp_path):
    ep = ILPEndpoint(mode="refuse").start()
    w = QuestDBWriter(ep.conf, spool_dir=tmp_path / "spool", batch_rows=50, queue_rows=100,
                      flush_interval_s=0.01, retry_base_s=0.001, retry_cap_s=0.01,
                      close_timeout_s=5.0)
    try:
        assert w.health().state == "up" and w.health().flush_errors == 0
        for i in range(50):
            w.publish(_ev(i))
        # a full batch the endpoint answers 503: kept in memory, retried, nothing on disk
        wait_until(lambda: w.health().state == "retrying", what="retrying")
        h = w.health()
        assert h.flush_errors >= 1 and h.rows_in_memory == 50 and h.rows_written == 0
        assert h.spool_rows_pending == 0 and h.rows_spooled_total == 0 and h.spool_bytes == 0
        assert "503" in h.last_error or "refused" in h.last_error
        assert "Error:" not in h.last_error  # the message, not the client's class name
        line = status_line(TickerPlant([]), _client(), [w])
        assert "questdb retrying: 0 written" in line and "50 in memory" in line

        ep.stop()  # QuestDB gone: connection refused
        for i in range(50, 400):
            w.publish(_ev(i))
        wait_until(lambda: (w.flush(timeout_s=0.0), w.health().spool_rows_pending >= 300)[1],
                   what="rows on disk")
        h = w.health()
        assert h.state == "spooling" and h.rows_written == 0
        assert h.rows_spooled_total >= h.spool_rows_pending >= 300
        assert h.spool_bytes == sum(p.stat().st_size for p in (tmp_path / "spool").glob("seg-*"))
        assert h.spool_bytes > 0
        line = status_line(TickerPlant([]), _client(), [w])
        assert f"questdb spooling: 0 written, {h.rows_spooled_total:,} spooled " \
               f"({h.spool_rows_pending:,} pending" in line
        assert "| spool " not in line  # the writer's own health replaces the bare spool depth

        ep.mode = "accept"
        ep.start()  # back on the same port: the spool drains, then the memory rows
        # a drained spool leaves no segment behind
        wait_until(lambda: w.health().rows_written == 400 and w.health().spool_bytes == 0,
                   what="all rows written, spool drained")
        h = w.health()
        assert h.state == "up" and h.spool_rows_pending == 0 and h.rows_in_memory == 0
        assert h.rows_spooled_total >= 300 and h.flush_errors >= 2  # history stays true
    finally:
        w.close()
        ep.stop()
    assert len(ep.lines) == 400 and len(set(ep.lines)) == 400


def _replay(tmp_path, conf: str, name: str) -> tuple[dict, str]:
    from kalshi_platform.tools.cli import _register_optional, app

    _register_optional()
    out = tmp_path / f"{name}.json"
    env = {"KALSHI_QUESTDB_ILP_CONF": conf, "KALSHI_QUESTDB_SPOOL_DIR": str(tmp_path / "spool"),
           "KALSHI_QUESTDB_CLOSE_TIMEOUT_S": "0.3", "KALSHI_QUESTDB_AUTO_INIT": "false",
           "KALSHI_STORE_DIR": str(tmp_path / "store")}
    r = CliRunner().invoke(app, ["replay", str(COCKPIT), "--sink", "questdb", "--summary-json",
                                 str(out)], env=env)
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text()), r.output


def test_replay_summary_row_tells_where_the_rows_are(tmp_path):
    ep = ILPEndpoint().start()
    conf = ep.conf
    ep.stop()
    s, out = _replay(tmp_path, conf, "down")  # QuestDB away for the whole run
    q = s["questdb"]
    total = sum(s["rows_by_table"].values())
    assert q["state"] == "spooling" and q["rows_spooled"] == q["spool_depth"] == total
    assert q["spool_bytes"] > 0
    flat = " ".join(out.split())
    assert f"spooling: 0 written, {total:,} spooled ({total:,} pending" in flat
    ep.start()
    try:
        s2, out2 = _replay(tmp_path, conf, "up")  # back: the old spool drains first
    finally:
        ep.stop()
    q2 = s2["questdb"]
    assert q2["state"] == "up" and q2["spool_depth"] == 0 and q2["spool_bytes"] == 0
    assert q2["rows_written"] == 2 * total and q2["rows_spooled"] == 0
    assert f"up: {2 * total:,} written, 0 spooled (0 pending, 0 B on disk)" in " ".join(out2.split())
