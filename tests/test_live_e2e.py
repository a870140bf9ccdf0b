"""Issue #4 acceptance, end to end over loopback (no internet): the local Kalshi-compatible
server replays a real capture, the live pipeline (ingester → plant → sinks) runs against it,
and its final books equal the Decimal oracle's (``tests/kalshi_oracle.py``, no package code)
for the whole capture — every market's final BBO with sizes and every level of both ladders —
also with frame drops (each gap detected and resynced with ``get_snapshot``) and with
disconnects (reconnect, resubscribe). The sim's own books (a ``TickerPlant``) are checked
against the oracle too, never used as the reference: plant against plant proves nothing. A
recording made against the sim replays to the oracle's books and the same ``feed_events``. The CLI commands (``sim``, ``run``, ``record``,
``replay``) are exercised as a user would, and every bad input ends in one error line and a
non-zero exit within a bounded time.

Synchronisation is always on events, stream ends or output lines, with timeouts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

import kalshi_oracle
import kalshi_platform.tools.live  # noqa: F401  (registers run, record, sim)
from conftest import COCKPIT, SHARED_WS, SSMD_TRADE
from oracle_compare import (
    assert_books_match,
    assert_summary_matches,
    oracle_of_recorder_file,
    replay_recorded,
)
from sim_support import sim_thread, start_sim_process
from kalshi_platform.ingestion.recorder import Recorder
from kalshi_platform.ingestion.recording import feed, read_meta
from kalshi_platform.ingestion.ws_client import Backoff, KalshiWSClient
from kalshi_platform.live import LiveRun
from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.rest import event_of
from kalshi_platform.sim.server import SimServer
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher
from kalshi_platform.tools.cli import app

FAST = Backoff(base_s=0.005, cap_s=0.02)
CLI = [sys.executable, "-m", "kalshi_platform"]


def arun(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@lru_cache(maxsize=None)
def reference(path: Path) -> kalshi_oracle.Oracle:
    """The reference: the whole capture replayed into the Decimal oracle, on the price scale
    it was recorded with (read only, shared between tests)."""
    return replay_recorded(path)


def assert_oracle_books(*holders, path: Path = COCKPIT) -> None:
    """Each of ``holders`` (the live plant, the sim, a replay) has exactly the oracle's books."""
    for h in holders:
        assert_books_match(h, reference(path))


def captures() -> list[Path]:
    out = [COCKPIT]
    for name in ("cockpit_prod_orderbook_stream_2026-08-07.json",
                 "fortuna_demo_ws__orderbook_trade_noleg.jsonl",
                 "fortuna_demo_ws__orderbook_trade_yes.jsonl"):
        if (SHARED_WS / name).is_file():
            out.append(SHARED_WS / name)
    return out


async def live_against_sim(path: Path, faults: Faults | None = None, *, publishers=(),
                           recorder: Recorder | None = None, use_yes_price: bool = False):
    """Sim replaying ``path`` with ``faults``; LiveRun until the sim closes after playback."""
    async with SimServer(path, exit_when_done=True, faults=faults) as sim:
        plant = TickerPlant(publishers)
        client = KalshiWSClient(sim.ws_url, plant, sorted(sim.known), backoff=FAST,
                                exit_on_close=True, use_yes_price=use_yes_price,
                                taps=[recorder] if recorder else [])
        summary = await LiveRun(client, sinks=publishers, recorder=recorder,
                                status_interval=0, handle_signals=False).run()
        return sim, plant, client, summary


# -- acceptance: books equal ------------------------------------------------------------------


@pytest.mark.parametrize("path", captures(), ids=lambda p: p.name)
def test_run_against_sim_equals_oracle(path, tmp_path):
    store = ParquetStore(tmp_path / "store", "e2e")
    sim, plant, client, summary = arun(live_against_sim(path, publishers=[store]))
    ref = reference(path)
    assert_oracle_books(plant, sim, path=path)
    assert plant.books and all(b.state == "live" for b in plant.books.values())
    assert plant.stats.gaps == 0 and plant.stats.quarantined == 0
    assert summary["stopped_by"] == "server closed" and summary["reconnects"] == 0
    # every delta went through the sink and was flushed when the run ended
    rows = read_table(tmp_path / "store", "orderbook_deltas").num_rows
    assert rows == plant.stats.deltas == ref.messages["orderbook_delta"]
    assert summary["rows_written"] == sum(store.rows_written.values())


def test_frame_drops_are_detected_and_resynced():
    pub = InMemoryPublisher()
    sim, plant, client, summary = arun(live_against_sim(COCKPIT, Faults(drop_every=25),
                                                        publishers=[pub]))
    dropped = sim.stats.frames_dropped
    assert dropped == 10  # playback frames 25, 50, ..., 250 of 257
    assert plant.stats.gaps == dropped  # each gap detected
    gaps = [e for e in pub.events["feed_events"] if e.kind == "gap"]
    assert len(gaps) == dropped and all(e.got_seq == e.expected_seq + 1 for e in gaps)
    assert client.stats.resyncs >= 1 and sim.stats.commands > 4  # get_snapshot was sent
    assert client.stats.resync_fallbacks == 0 and client.stats.reconnects == 0
    assert all(b.state == "live" for b in plant.books.values())
    assert_oracle_books(plant, sim)


def test_disconnects_reconnect_resubscribe_and_end_equal():
    sim, plant, client, summary = arun(live_against_sim(COCKPIT, Faults(disconnect_after=30)))
    assert sim.stats.disconnects_injected >= 8
    assert client.stats.reconnects == sim.stats.disconnects_injected == summary["reconnects"]
    assert sim.stats.connections == client.stats.connects
    assert_oracle_books(plant, sim)


def test_drops_and_disconnects_together_on_the_yes_scale():
    sim, plant, client, _ = arun(live_against_sim(
        COCKPIT, Faults(drop_frames={5, 33}, drop_every=41, disconnect_after=70),
        use_yes_price=True))
    assert plant.stats.gaps >= 1 and client.stats.reconnects >= 3
    assert_oracle_books(plant, sim)


def test_recording_made_against_sim_replays_to_same_books_and_feed_events(tmp_path):
    pub = InMemoryPublisher()
    rec = Recorder(tmp_path / "rec", meta={"subscribe_cmds": [{"cmd": "subscribe", "params": {
        "channels": ["orderbook_delta"], "use_yes_price": False}}]})
    sim, plant, client, _ = arun(live_against_sim(
        COCKPIT, Faults(drop_every=40, disconnect_after=100), publishers=[pub], recorder=rec))
    assert plant.stats.gaps >= 1 and client.stats.reconnects >= 1
    (path,) = rec.files
    rpub = InMemoryPublisher()
    replayed = TickerPlant([rpub])
    feed(path, replayed)
    assert_oracle_books(plant, replayed)
    assert rpub.events["feed_events"] == pub.events["feed_events"]
    assert replayed.stats.gaps == plant.stats.gaps
    # and through the CLI's replay
    out = tmp_path / "summary.json"
    r = CliRunner().invoke(app, ["replay", str(path), "--sink", "none", "--summary-json", str(out)])
    assert r.exit_code == 0, r.output
    assert_summary_matches(json.loads(out.read_text())["markets"], reference(COCKPIT))


def test_seed_channel_message_recording_replays_via_cli(tmp_path):
    seed = tmp_path / "seed.jsonl"
    with seed.open("w") as f:
        for line in COCKPIT.read_text().splitlines():
            frame = json.loads(line)["frame"]
            f.write(json.dumps({"channel": "orderbook_delta", "message": frame}) + "\n")
    out = tmp_path / "s.json"
    r = CliRunner().invoke(app, ["replay", str(seed), "--sink", "none", "--summary-json", str(out)])
    assert r.exit_code == 0, r.output
    assert_summary_matches(json.loads(out.read_text())["markets"], reference(COCKPIT))


# -- the CLI: sim, run, record --------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("KALSHI_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # no .env, ./store inside tmp


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(r) -> str:
    assert r.exit_code != 0, r.output
    text = r.stderr
    assert "Traceback" not in text and "Traceback" not in r.stdout
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1, text
    assert lines[0].startswith("error:"), text
    return lines[0]


def test_cli_run_with_parquet_and_record(tmp_path):
    events = sorted({event_of(t) for t in reference(COCKPIT).books})
    with sim_thread(recording=COCKPIT, exit_when_done=True) as sim:
        args = ["run", "--sink", "parquet", "--store", tmp_path / "store",
                "--record", tmp_path / "rec", "--ws-url", sim.ws_url, "--base-url", sim.rest_url,
                "--exit-on-close", "--status-interval", "0", "--summary-json", tmp_path / "s.json"]
        for e in events:
            args += ["--event", e]
        r = invoke(*args)
    assert r.exit_code == 0, r.stdout + r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert_summary_matches(s["markets"], reference(COCKPIT))
    assert s["market_count"] == 12
    assert s["stopped_by"] == "server closed" and s["gaps"] == 0
    assert read_table(tmp_path / "store", "orderbook_deltas").num_rows == 245
    (rec_file,) = s["recording"]["files"]
    replayed = TickerPlant()
    feed(rec_file, replayed)
    assert_oracle_books(replayed)
    assert read_meta(Path(rec_file)).use_yes_price is False


def test_cli_sim_subprocess_record_then_replay(tmp_path):
    """`kalshi-platform sim` as a process, `record` against it, `replay` of the recording."""
    p, ws, rest = start_sim_process(CLI, COCKPIT, tmp_path, "--speed", "0", "--exit-when-done",
                                    "--drop-every", "50")
    urls = {"ws": ws, "rest": rest}
    try:
        r = invoke("record", "--out", tmp_path / "rec", "--series", "KXMLBGAME",
                   "--series", "KXWNBAGAME", "--gzip", "--ws-url", urls["ws"],
                   "--base-url", urls["rest"], "--exit-on-close", "--status-interval", "0",
                   "--summary-json", tmp_path / "s.json")
        assert r.exit_code == 0, r.stdout + r.stderr
        assert p.wait(timeout=15) == 0  # the sim exits once the client was closed
        sim_err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["gaps"] == 5 and s["resyncs"] >= 1  # drops at 50, 100, ..., 250
    assert "dropped 5" in sim_err
    (rec_file,) = s["recording"]["files"]
    assert rec_file.endswith(".jsonl.gz")
    r = invoke("replay", rec_file, "--sink", "none", "--summary-json", tmp_path / "r.json")
    assert r.exit_code == 0, r.stdout + r.stderr
    replay_summary = json.loads((tmp_path / "r.json").read_text())
    assert_summary_matches(s["markets"], reference(COCKPIT))
    assert_summary_matches(replay_summary["markets"], reference(COCKPIT))
    assert replay_summary["gaps"] == 5


def test_cli_sigint_stops_cleanly_with_everything_flushed(tmp_path):
    """A paced sim (the capture's own speed, ~56 s) and `run` as processes; SIGINT after the
    first status line with live books; exit 0, Parquet written, recording closed."""
    sim = subprocess.Popen(CLI + ["sim", "--replay", str(COCKPIT), "--port", "0", "--speed", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           cwd=tmp_path)
    run = None
    try:
        urls = {}
        while len(urls) < 2:
            line = sim.stdout.readline()
            assert line
            if line.startswith("sim: WebSocket "):
                urls["ws"] = line.split()[-1]
            elif line.startswith("sim: REST "):
                urls["rest"] = line.split()[-1]
        run = subprocess.Popen(
            CLI + ["run", "--series", "KXMLBGAME", "--ws-url", urls["ws"], "--base-url",
                   urls["rest"], "--sink", "parquet", "--store", str(tmp_path / "store"),
                   "--record", str(tmp_path / "rec"), "--status-interval", "0.2",
                   "--summary-json", str(tmp_path / "s.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        deadline = time.monotonic() + 20
        while True:
            line = run.stderr.readline()
            assert line and time.monotonic() < deadline, "no status line"
            if "| up |" in line and " 11 live " in line:
                break
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=15)
        assert run.returncode == 0, err
    finally:
        for proc in (run, sim):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["stopped_by"] == "SIGINT" and s["market_count"] == 11
    assert "Traceback" not in err
    assert read_table(tmp_path / "store", "orderbook_snapshots").num_rows > 0
    (rec_file,) = s["recording"]["files"]
    last = json.loads(Path(rec_file).read_text().splitlines()[-1])
    assert last["event"] == "disconnect" and last["reset"] is False and last["detail"] == "stopped"
    # stopped mid-playback: the reference is the oracle over the frames the run received
    orc = oracle_of_recorder_file(Path(rec_file))
    assert_summary_matches(s["markets"], orc)
    replayed = TickerPlant()
    feed(rec_file, replayed)
    assert_books_match(replayed, orc)


# -- bad input: one line, non-zero exit, bounded time ---------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_cli_wrong_key_is_one_line(tmp_path):
    server_key = ed25519.Ed25519PrivateKey.generate()
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(pem(ed25519.Ed25519PrivateKey.generate()))
    wrong.chmod(0o600)
    with sim_thread(recording=COCKPIT, public_key=server_key.public_key()) as sim:
        t = sorted(sim.known)[0]
        r = invoke("run", "--markets", t, "--key-id", "kid", "--private-key", wrong,
                   "--ws-url", sim.ws_url, "--base-url", sim.rest_url, "--sink", "none")
    line = one_error_line(r)
    assert "401" in line and r.exit_code == 2


def test_cli_wrong_key_on_websocket_is_one_line(tmp_path, monkeypatch):
    """REST accepts the key but the WebSocket handshake is refused (HTTP 401)."""
    server_key = ed25519.Ed25519PrivateKey.generate()
    key = tmp_path / "k.pem"
    key.write_bytes(pem(ed25519.Ed25519PrivateKey.generate()))
    key.chmod(0o600)
    with sim_thread(recording=COCKPIT, public_key=server_key.public_key()) as sim, \
            sim_thread(recording=COCKPIT) as rest_only:
        t = sorted(sim.known)[0]
        r = invoke("run", "--markets", t, "--key-id", "kid", "--private-key", key,
                   "--ws-url", sim.ws_url, "--base-url", rest_only.rest_url, "--sink", "none")
    line = one_error_line(r)
    assert "rejected the credentials (HTTP 401" in line and r.exit_code == 2


def test_cli_malformed_pem_is_one_line(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    bad.chmod(0o600)
    r = invoke("run", "--markets", "X", "--key-id", "kid", "--private-key", bad,
               "--ws-url", "ws://127.0.0.1:9/trade-api/ws/v2",
               "--base-url", "http://127.0.0.1:9/trade-api/v2")
    assert "not a valid PEM private key" in one_error_line(r) and r.exit_code == 2


@pytest.mark.parametrize("args,needle", [
    (["--markets", "NOPE-1"], "unknown market: NOPE-1"),
    (["--event", "NOPE-26AUG07"], "event NOPE-26AUG07: no open markets"),
    (["--series", "NOPE"], "series NOPE: no open markets"),
])
def test_cli_unknown_market_is_one_line(args, needle):
    with sim_thread(recording=COCKPIT) as sim:
        r = invoke("run", *args, "--ws-url", sim.ws_url, "--base-url", sim.rest_url,
                   "--sink", "none")
    assert needle in one_error_line(r) and r.exit_code == 2


def test_cli_unreachable_websocket_is_one_line():
    with sim_thread(recording=COCKPIT) as sim:
        t = sorted(sim.known)[0]
        t0 = time.monotonic()
        r = invoke("run", "--markets", t, "--ws-url", f"ws://127.0.0.1:{free_port()}/trade-api/ws/v2",
                   "--base-url", sim.rest_url, "--sink", "none", "--open-timeout", "2")
    line = one_error_line(r)
    assert "cannot connect" in line and "3 attempts" in line and r.exit_code == 2
    assert time.monotonic() - t0 < 15


def test_cli_unreachable_host_subprocess_does_not_hang(tmp_path):
    port = free_port()
    p = subprocess.run(CLI + ["run", "--markets", "X", "--ws-url",
                              f"ws://127.0.0.1:{port}/trade-api/ws/v2", "--base-url",
                              f"http://127.0.0.1:{port}/trade-api/v2", "--sink", "none",
                              "--open-timeout", "2"],
                       capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert p.returncode == 2  # an unreachable service (tools/exitcodes.py)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in p.stderr
    assert str(port) in lines[0]


@pytest.mark.parametrize("args,needle", [
    (["run"], "give at least one of --markets, --event, --series"),
    (["run", "--markets", "X", "--sink", "nope"], "unknown sink"),
    (["run", "--markets", "X", "--ws-url", "http://x"], "--ws-url must be a ws://"),
    (["run", "--markets", "X", "--duration", "0"], "--duration must be > 0"),
    (["record", "--out", "o", "--markets", "X", "--key-id", "k"], "set both the API key id"),
    (["sim"], "give --replay FILE"),
    (["sim", "--replay", "missing.jsonl", "--port", "0"], "missing.jsonl: no such file"),
    (["sim", "--replay", str(COCKPIT), "--drop-frames", "0"], "frame indices start at 1"),
])
def test_cli_bad_options_are_one_line(args, needle):
    r = invoke(*args)
    assert needle in one_error_line(r) and r.exit_code == 2


def test_sim_serves_trades_from_the_recording():
    async def go():
        from kalshi_platform.api.rest import RestClient

        async with SimServer(SSMD_TRADE) as sim:
            async with RestClient(sim.rest_url, read_tokens_per_s=1e6) as rc:
                return [t async for t in rc.iter_trades(limit=3)]

    trades = arun(go())
    frames = [json.loads(ln) for ln in SSMD_TRADE.read_text().splitlines() if ln.strip()]
    assert sorted(t.trade_id for t in trades) == sorted(f["msg"]["trade_id"] for f in frames)


def test_cli_duration_stops_a_paced_run(tmp_path):
    with sim_thread(recording=COCKPIT, speed=1.0) as sim:  # ~56 s of capture at its own pace
        t0 = time.monotonic()
        r = invoke("run", "--series", "KXMLBGAME", "--ws-url", sim.ws_url, "--base-url",
                   sim.rest_url, "--sink", "none", "--duration", "0.5", "--status-interval", "0",
                   "--summary-json", tmp_path / "s.json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert time.monotonic() - t0 < 10
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["stopped_by"] == "duration 0.5s" and s["market_count"] == 11


def test_status_line_reports_books_feed_and_sink_counters():
    class SpoolingSink:  # duck-typed like a QuestDB writer with a disk spool
        def __init__(self):
            self.stats = type("S", (), {"rows_written": 7, "spool_depth": 3})()

        def publish(self, ev):
            pass

        def flush(self):
            pass

        def close(self):
            pass

    sink = SpoolingSink()
    sim, plant, client, _ = arun(live_against_sim(COCKPIT, Faults(drop_frames={9}),
                                                  publishers=[sink]))
    from kalshi_platform.live import status_line

    line = status_line(plant, client, [sink], elapsed_s=1.5, rate=100.0)
    assert "DOWN" in line and f"msgs {plant.stats.frames:,} (100/s)" in line
    assert "markets 12: 12 live 0 stale 0 syncing" in line
    assert f"gaps 1 resyncs {client.stats.resyncs} reconnects 0" in line
    assert f"rows written 7 of {sum(plant.stats.table_rows().values()):,}" in line
    assert "spool 3" in line and "\n" not in line


def test_cli_run_with_questdb_sink_delivers_every_row(tmp_path, monkeypatch):
    """`run --sink parquet,questdb` against the sim: the ILP endpoint (standing in for QuestDB)
    receives exactly the rows the Parquet sink wrote, once each."""
    from collections import Counter

    from kalshi_platform.bench.ilp_endpoint import ILPEndpoint

    events = sorted({event_of(t) for t in reference(COCKPIT).books})
    with ILPEndpoint() as ep, sim_thread(recording=COCKPIT, exit_when_done=True) as sim:
        monkeypatch.setenv("KALSHI_QUESTDB_ILP_CONF", ep.conf)
        monkeypatch.setenv("KALSHI_QUESTDB_AUTO_INIT", "false")
        monkeypatch.setenv("KALSHI_QUESTDB_SPOOL_DIR", str(tmp_path / "spool"))
        args = ["run", "--sink", "parquet,questdb", "--store", tmp_path / "store",
                "--ws-url", sim.ws_url, "--base-url", sim.rest_url, "--exit-on-close",
                "--status-interval", "0", "--summary-json", tmp_path / "s.json"]
        for e in events:
            args += ["--event", e]
        r = invoke(*args)
        lines = list(ep.lines)
    assert r.exit_code == 0, r.stdout + r.stderr
    by_table = Counter(ln.split(b" ", 1)[0].split(b",", 1)[0].decode() for ln in lines)
    for table, n in by_table.items():
        assert read_table(tmp_path / "store", table).num_rows == n, table
    assert by_table["orderbook_deltas"] == 245 and len(set(lines)) == len(lines)
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["spool_depth"] == 0
