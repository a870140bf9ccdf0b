"""Issue 9 §7, recording input: what is (not) a Kalshi recording, bad frames inside one, and a
rotated ``record`` directory whose files were cut by a crash.

All inputs are built in ``tmp_path`` from the bundled real cockpit capture (269 frames, 12
markets). The CLI is run as a subprocess where its exact stderr and exit code matter, and
``run_replay`` in-process elsewhere (the CLI maps its exceptions 1:1, see ``tools/cli.py``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pytest

from conftest import COCKPIT, REPO_ROOT, frame_of_line, read_lines, write_lines
from kalshi_platform.ingestion.recording import (
    NotARecording,
    TruncatedRecording,
    feed,
    is_frame_line,
    iter_frames,
    sniff_recording,
)
from kalshi_platform.ingestion.sniff import sniff_stream
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.tools.replay import run_replay

LINES = read_lines(COCKPIT)
CLI = ["-c", "import sys; sys.argv[0] = 'kalshi-platform'; "
             "from kalshi_platform.tools.cli import main; main()"]


def run_cli(args, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["KALSHI_STORE_DIR"] = str(tmp_path / "default_store")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, *CLI, *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def replay(path: Path, tmp_path: Path, **kw) -> dict:
    return run_replay(path, store=tmp_path / "store", sinks=["parquet"], **kw)


def types_of(lines) -> Counter:
    return Counter(frame_of_line(ln)["type"] for ln in lines)


@pytest.fixture(scope="module")
def ref_markets() -> dict:
    """Final tops of every market of the intact capture."""
    plant = TickerPlant()
    feed(COCKPIT, plant)
    return plant.markets_summary()


# -- not a recording -----------------------------------------------------------------------

#: name → file bytes; none of them holds a line that is a Kalshi frame
NOT_RECORDINGS = {
    "trades.csv": b"ts,ticker,price,size\n1786085188416,KXMLB-X,0.55,10\n" * 50,
    "empty.jsonl": b"",
    "blank.jsonl": b"\n   \n\t\n",
    "events.jsonl": b'{"hello": "world"}\n{"id": 1, "kind": "x"}\n[1, 2]\n"text"\n' * 10,
    "chat.jsonl": b'{"channel": "general", "message": "hi"}\n' * 5,  # seed-like, no frame
    "cockpit_no_frame.jsonl": b'{"received_ms": 1786085188416, "frame": "x"}\n',
    "junk.bin": bytes(range(256)) * 40,
    "junk_brace.bin": b"{" + bytes(range(256)) + b"\n\xff\xfe\x00\n\x80" * 30,
    "config.json": json.dumps({"a": 1, "b": [1, 2]}, indent=2).encode(),
    "frames_not_frames.json": json.dumps({"frames": [{"a": 1}, 2]}, indent=2).encode(),
}


def _write(tmp_path: Path, name: str, data: bytes, gz: bool = False) -> Path:
    p = tmp_path / (name + (".gz" if gz else ""))
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


@pytest.mark.parametrize("name", sorted(NOT_RECORDINGS))
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_not_a_recording_is_refused_before_any_sink(tmp_path, name, gz):
    path = _write(tmp_path, name, NOT_RECORDINGS[name], gz)
    with pytest.raises(NotARecording) as ei:
        replay(path, tmp_path)
    msg = str(ei.value)
    assert msg.startswith(f"not a Kalshi recording: {path} (")
    assert "\n" not in msg and all(" " <= ch <= "~" for ch in msg.replace(str(path), ""))
    assert not (tmp_path / "store").exists()  # nothing built, nothing written
    plant = TickerPlant()  # the reader itself refuses before feeding a line
    if name in ("empty.jsonl", "blank.jsonl"):
        assert feed(path, plant) == 0  # feeds nothing; the caller (replay) refuses it
    else:
        with pytest.raises(NotARecording):
            feed(path, plant)
    assert plant.stats.frames == 0


@pytest.mark.parametrize("name", ["trades.csv", "empty.jsonl", "junk.bin"])
def test_cli_not_a_recording_exits_2_with_one_line(tmp_path, name):
    path = _write(tmp_path, name, NOT_RECORDINGS[name])
    store = tmp_path / "store"
    r = run_cli(["replay", path, "--store", store, "--summary-json", tmp_path / "s.json"],
                tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"not a Kalshi recording: {path}" in lines[0]
    assert not store.exists() and not (tmp_path / "s.json").exists()


def test_the_refusal_quotes_the_first_line_escaped(tmp_path):
    """ANSI escapes, NULs and invalid UTF-8 in the offending line are quoted as escapes."""
    evil = b"\x1b[31mRED\x1b[0m\x00\xff\xfe," + b"A" * 500 + b"\n" + b"2,3\n"
    path = _write(tmp_path, "evil.csv", evil)
    with pytest.raises(NotARecording) as ei:
        sniff_recording(path)
    msg = str(ei.value)
    assert "\\x1b[31mRED\\x1b[0m\\x00\\xff\\xfe," in msg
    assert "\x1b" not in msg and "\x00" not in msg and "A" * 100 not in msg  # cut short


def test_iter_frames_refuses_too(tmp_path):
    """The sim server reads through ``iter_frames``: a CSV is refused, not served."""
    path = _write(tmp_path, "t.csv", NOT_RECORDINGS["trades.csv"])
    with pytest.raises(NotARecording):
        next(iter_frames(path))
    assert list(iter_frames(_write(tmp_path, "e.jsonl", b""))) == []


@pytest.mark.parametrize("obj, ok", [
    ({"type": "orderbook_delta"}, True),
    ({"type": "no_such_type", "junk": 1}, True),  # frame-shaped: quarantined, still counts
    ({"recv_ts_ns": 1, "raw": "garbage"}, True),  # our recorder's envelope
    ({"recv_ts_ns": 1, "event": "connect", "sid": None}, True),  # its marker
    ({"received_ms": 1, "frame": {"type": "ok"}}, True),
    ({"channel": "orderbook_delta", "message": '{"type": "ok", "id": 1}'}, True),
    ({"type": 42}, False),
    ({"recv_ts_ns": "1", "raw": "x"}, False),
    ({"received_ms": 1, "frame": {"kind": "ok"}}, False),
    ({"channel": "general", "message": "hello"}, False),
    ({"channel": "general", "message": "{not json"}, False),
    ([{"type": "ok"}], False),
    ("text", False),
    (None, False),
])
def test_is_frame_line(obj, ok):
    assert is_frame_line(obj) is ok


def test_sniff_reads_only_up_to_the_first_frame():
    """Deciding costs one line for a real recording, not a read of the file."""
    data = COCKPIT.read_bytes()
    f = io.BytesIO(data)
    assert sniff_stream(f, COCKPIT) == "cockpit"
    assert f.tell() == len(LINES[0]) + 1
    f = io.BytesIO(b"a,b\n" * 30 + data)  # a long junk head: read up to the first frame only
    assert sniff_stream(f, COCKPIT) == "cockpit"
    assert f.tell() == 4 * 30 + len(LINES[0]) + 1


# -- bad frames inside a recording -----------------------------------------------------------

BAD = {
    5: LINES[5][: len(LINES[5]) // 3],  # a truncated frame
    40: b"ts,ticker,price\x1b[2J",  # a CSV line with an ANSI clear-screen
    77: b"\xff\xfe\x00\x01 binary",  # invalid UTF-8
    150: b'{"type": "orderbook_delta", "sid": "one", "seq": -1, "msg": {}}',  # frame-shaped
}


def test_cli_recording_with_bad_frames_exits_0_and_counts_them(tmp_path):
    lines = [BAD.get(i, ln) for i, ln in enumerate(LINES)]
    path = write_lines(tmp_path / "bad.jsonl", lines)
    out = tmp_path / "s.json"
    r = run_cli(["replay", path, "--store", tmp_path / "store", "--summary-json", out], tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads(out.read_text())
    assert s["frames"] == 269 and s["quarantined"] == len(BAD)
    assert s["partial_files"] == [] and s["sink_failures"] == {}
    kept = [ln for i, ln in enumerate(LINES) if i not in BAD]
    assert Counter(s["messages_by_type"]) == types_of(kept)


@pytest.mark.parametrize("bad", [
    pytest.param(b'{"type": "orderbook_delta", "sid": "x"}', id="bare-frame-shaped"),
    pytest.param(json.dumps({"recv_ts_ns": 1786085188416000000, "raw": "not json"}).encode(),
                 id="recorder-envelope-junk-raw"),
])
def test_a_recording_of_only_bad_frames_is_still_a_recording(tmp_path, bad):
    path = write_lines(tmp_path / "allbad.jsonl", [bad] * 25)
    s = replay(path, tmp_path)
    assert s["frames"] == 25 and s["quarantined"] == 25 and s["market_count"] == 0


def test_a_long_junk_head_does_not_hide_the_recording(tmp_path, ref_markets):
    """30 CSV lines (more than the envelope probe) before the real frames: still a
    recording, the junk quarantined, the books those of the capture."""
    path = write_lines(tmp_path / "head.jsonl", [b"a,b,c"] * 30 + LINES)
    s = replay(path, tmp_path)
    assert s["quarantined"] == 30 and s["frames"] == 299 and s["gaps"] == 0
    assert s["markets"] == ref_markets


def test_plain_file_cut_mid_frame_quarantines_the_last_line_only(tmp_path):
    path = write_lines(tmp_path / "crash.jsonl", LINES[:-1] + [LINES[-1][:60]],
                       final_newline=False)
    s = replay(path, tmp_path)
    assert s["quarantined"] == 1 and s["partial_files"] == [] and s["frames"] == 269


# -- a rotated record directory cut by a crash -----------------------------------------------


def inflatable(gz: bytes) -> bytes:
    """Everything a cut gzip stream still inflates to (an independent oracle: zlib)."""
    return zlib.decompressobj(wbits=31).decompress(gz)


def cut_gz(path: Path, lines: list[bytes], keep: float | int) -> tuple[list[bytes], bytes]:
    """Write ``lines`` gzipped to ``path`` and cut the file at ``keep`` (a fraction of its
    bytes, or a byte count); returns (the complete lines still readable, the partial line
    after them)."""
    write_lines(path, lines, gz=True)
    data = path.read_bytes()
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    text = inflatable(path.read_bytes())
    *complete, partial = text.split(b"\n")
    return complete, partial


def rotated_dir(tmp_path: Path, keep: float = 0.5):
    d = tmp_path / "rec"
    d.mkdir()
    complete, partial = cut_gz(d / "kalshi-20260807T10Z-000.jsonl.gz", LINES[:120], keep)
    write_lines(d / "kalshi-20260807T10Z-001.jsonl", LINES[120:200])
    write_lines(d / "kalshi-20260807T11Z-002.jsonl.gz", LINES[200:], gz=True)
    return d, complete, partial


def test_cli_replay_dir_whose_first_file_was_cut(tmp_path):
    d, complete, partial = rotated_dir(tmp_path)
    assert 5 < len(complete) < 120 and partial  # cut mid-stream and mid-line
    out = tmp_path / "s.json"
    r = run_cli(["replay", d, "--store", tmp_path / "store", "--summary-json", out], tmp_path)
    assert r.returncode == 0, r.stderr
    warned = [ln for ln in r.stderr.splitlines() if "kalshi-20260807T10Z-000.jsonl.gz" in ln]
    assert len(warned) == 1 and "cut short" in warned[0] and "next file" in warned[0], r.stderr
    s = json.loads(out.read_text())
    assert s["partial_files"] == ["kalshi-20260807T10Z-000.jsonl.gz"]
    assert s["frames"] == len(complete) + 1 + 80 + 69  # + the cut line, quarantined
    assert s["quarantined"] == 1
    want = types_of(complete + LINES[120:])
    assert Counter(s["messages_by_type"]) == want
    assert s["rows_written"]["orderbook_deltas"] == want["orderbook_delta"]


def test_dir_with_a_file_cut_before_its_first_line(tmp_path, caplog, ref_markets):
    """A crash right after rotation: the new gzip holds its header and a few bytes, the
    plain one nothing. Both are partial and skipped; the rest replays as one run."""
    d = tmp_path / "rec"
    d.mkdir()
    write_lines(d / "k-000.jsonl", LINES)
    complete, partial = cut_gz(d / "k-001.jsonl.gz", LINES[:3], 12)  # the gzip header
    assert complete == [] and partial == b""
    (d / "k-002.jsonl").write_bytes(b"")
    caplog.set_level("WARNING")
    s = replay(d, tmp_path)
    assert s["partial_files"] == ["k-001.jsonl.gz", "k-002.jsonl"]
    assert s["frames"] == 269 and s["quarantined"] == 0 and s["markets"] == ref_markets
    assert sum("k-001.jsonl.gz" in r.getMessage() for r in caplog.records) == 1


def test_dir_with_nothing_to_feed_is_not_a_recording(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    (d / "k-000.jsonl").write_bytes(b"")
    cut_gz(d / "k-001.jsonl.gz", LINES[:3], 12)
    with pytest.raises(NotARecording, match="not a Kalshi recording: .*rec"):
        replay(d, tmp_path)
    assert not (tmp_path / "store").exists()


def test_dir_holding_a_file_that_is_not_a_recording_is_refused(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    write_lines(d / "k-000.jsonl", LINES)
    bad = _write(d, "k-001.jsonl", NOT_RECORDINGS["trades.csv"])
    with pytest.raises(NotARecording, match=f"not a Kalshi recording: {bad}"):
        replay(d, tmp_path)
    assert not (tmp_path / "store").exists()


def test_single_cut_gzip_replays_up_to_the_cut(tmp_path, caplog):
    """One file cut by a crash: replayed up to the cut and reported partial, exit 0 (the
    reader itself still raises ``TruncatedRecording`` after feeding, for other callers)."""
    path = tmp_path / "k.jsonl.gz"
    complete, partial = cut_gz(path, LINES, 0.6)
    caplog.set_level("WARNING")
    s = replay(path, tmp_path)
    assert s["partial_files"] == ["k.jsonl.gz"]
    assert s["frames"] == len(complete) + (1 if partial else 0)
    assert Counter(s["messages_by_type"]) == types_of(complete)
    assert sum("cut short" in r.getMessage() for r in caplog.records) == 1
    plant = TickerPlant()
    with pytest.raises(TruncatedRecording) as ei:
        feed(path, plant)
    assert ei.value.frames == plant.stats.frames == s["frames"]


def test_single_file_cut_before_its_first_line_is_bad_input(tmp_path):
    """Nothing to replay at all: a one-line error (exit 2 at the CLI), no store."""
    path = tmp_path / "k.jsonl.gz"
    cut_gz(path, LINES, 12)
    with pytest.raises(TruncatedRecording, match="read failed after 0 frames"):
        replay(path, tmp_path)
    assert not (tmp_path / "store").exists()


def test_partial_files_are_listed_in_file_order(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    cut_gz(d / "k-000.jsonl.gz", LINES, 0.5)  # cut part-way: found while feeding
    (d / "k-001.jsonl").write_bytes(b"")  # empty: found by the check before feeding
    write_lines(d / "k-002.jsonl", LINES)
    s = replay(d, tmp_path)
    assert s["partial_files"] == ["k-000.jsonl.gz", "k-001.jsonl"]
