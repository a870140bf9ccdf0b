"""The raw-frame recorder (``kalshi_platform.ingestion.recorder``) and its round trip through the
replay reader: exact text, hourly and size rotation, gzip, the flush guarantee, sidecar meta,
marker lines that reproduce the live run's resets and ``feed_events``, and write failures.

Frames are the real bundled capture (cockpit prod, 269 frames), re-serialised compactly so
each is a realistic wire text.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import orjson
import pytest

from conftest import COCKPIT
from kalshi_platform.ingestion import recorder as recorder_mod
from kalshi_platform.ingestion.recorder import Recorder, RecorderError
from kalshi_platform.ingestion.recording import feed, iter_frames, read_meta
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

HOUR = 3_600 * 10**9
T0 = 1_786_085_188_416_000_000  # 2026-08-07T06:46:28.416Z, the capture's first receipt


def cockpit_frames() -> list[tuple[int, str]]:
    """(recv_ns, exact frame text) of the bundled capture."""
    out = []
    for line in COCKPIT.read_text().splitlines():
        env = json.loads(line)
        out.append((env["received_ms"] * 1_000_000, orjson.dumps(env["frame"]).decode()))
    return out


def books(plant: TickerPlant) -> dict:
    return {t: (b.state, dict(b.yes), dict(b.no)) for t, b in plant.books.items()}


def direct_plant() -> TickerPlant:
    p = TickerPlant()
    feed(COCKPIT, p)
    return p


def replay(paths: list[Path], publishers=()) -> TickerPlant:
    p = TickerPlant(publishers)
    for path in paths:
        feed(path, p)
    return p


def test_lines_keep_the_exact_text(tmp_path):
    odd = ['{"type":"ticker","sid":3,"msg":{"market_ticker":"X-1","price_dollars":"0.5000",'
           '"note":"caf\\u00e9 ☕ \\"q\\""}}',
           '{ "type" : "subscribed" , "id":1, "msg":{"channel":"ticker","sid":3} }',
           '{broken']
    with Recorder(tmp_path) as rec:
        for i, text in enumerate(odd):
            rec.frame(text, T0 + i)
        rec.frame(odd[0].encode(), T0 + 9)  # bytes frames are decoded as UTF-8
    (path,) = rec.files
    lines = [orjson.loads(ln) for ln in path.read_bytes().splitlines()]
    assert [ln["raw"] for ln in lines] == odd + [odd[0]]
    assert [ln["recv_ts_ns"] for ln in lines] == [T0, T0 + 1, T0 + 2, T0 + 9]
    assert list(lines[0]) == ["recv_ts_ns", "raw"]
    assert path.name == "kalshi-20260807T06Z-000.jsonl"
    # and the reader hands the same text back
    assert [(n, raw) for n, raw in iter_frames(path)] == [(ln["recv_ts_ns"], ln["raw"]) for ln in lines]


def test_hourly_rotation_and_replay_equals_direct(tmp_path):
    frames = cockpit_frames()
    with Recorder(tmp_path, meta={"subscribe_cmds": [{"cmd": "subscribe", "params": {
            "channels": ["orderbook_delta"], "use_yes_price": False}}]}) as rec:
        for i, (ns, text) in enumerate(frames):
            rec.frame(text, ns + (HOUR if i >= 100 else 0))  # frames 100.. an hour later
    assert [p.name for p in rec.files] == ["kalshi-20260807T06Z-000.jsonl",
                                           "kalshi-20260807T07Z-000.jsonl"]
    assert sum(1 for p in rec.files for _ in iter_frames(p)) == len(frames)
    for p in rec.files:
        meta = read_meta(p)
        assert meta.use_yes_price is False and meta.raw["file"] == p.name
    assert books(replay(rec.files)) == books(direct_plant())


def test_size_rotation_never_overwrites(tmp_path):
    frames = cockpit_frames()
    with Recorder(tmp_path, rotate_mb=16 / 1024) as rec:  # 16 KiB
        for ns, text in frames:
            rec.frame(text, ns)
    assert len(rec.files) >= 5
    assert [p.name for p in rec.files] == [f"kalshi-20260807T06Z-{i:03d}.jsonl"
                                           for i in range(len(rec.files))]
    for p in rec.files[:-1]:
        assert p.stat().st_size < 16 * 1024 + 8 * 1024  # one line past the limit at most
    texts = [raw for p in rec.files for _, raw in iter_frames(p)]
    assert texts == [t for _, t in frames]
    with Recorder(tmp_path) as again:  # a second run in the same hour: next free number
        again.frame(frames[0][1], frames[0][0])
    assert again.files[0].name == f"kalshi-20260807T06Z-{len(rec.files):03d}.jsonl"


def test_gzip_is_readable_after_each_flush_and_replays(tmp_path):
    frames = cockpit_frames()
    rec = Recorder(tmp_path, gzip=True, flush_interval_s=3600)
    for ns, text in frames[:50]:
        rec.frame(text, ns)
    rec.flush()
    # while the file is still open, everything up to the flush decompresses
    data = rec.current.read_bytes()
    text = zlib.decompressobj(wbits=31).decompress(data)
    assert text.count(b"\n") == 50
    for ns, t in frames[50:]:
        rec.frame(t, ns)
    rec.close()
    (path,) = rec.files
    assert path.name.endswith(".jsonl.gz")
    assert gzip.decompress(path.read_bytes()).count(b"\n") == len(frames)
    assert books(replay([path])) == books(direct_plant())


def test_flushed_within_the_interval(tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(recorder_mod.time, "monotonic", lambda: now[0])
    rec = Recorder(tmp_path, flush_interval_s=1.0)
    frames = cockpit_frames()
    rec.frame(frames[0][1], frames[0][0])
    path = rec.current
    assert path.read_bytes() == b""  # buffered
    now[0] += 0.5
    rec.maybe_flush()
    assert path.read_bytes() == b""  # not yet a second
    now[0] += 0.6
    rec.maybe_flush()  # the live loop calls this every second
    assert path.read_bytes().count(b"\n") == 1
    rec.frame(frames[1][1], frames[1][0])
    now[0] += 1.1
    rec.frame(frames[2][1], frames[2][0])  # a write after the interval flushes too
    assert path.read_bytes().count(b"\n") == 3
    rec.close()


def test_markers_replay_to_the_same_feed_events_and_books(tmp_path):
    """Drive a plant exactly as the ingester does (connect, frames, a mid-run disconnect that
    resets, reconnect, a gap resync marker, the final disconnect that keeps the books) while
    recording; the replay of the recording produces the same feed_events rows and books."""
    frames = cockpit_frames()
    live_pub = InMemoryPublisher()
    live = TickerPlant([live_pub])
    rec = Recorder(tmp_path)

    def connect(ns):
        live.feed_event("connect", detail="ws://x", ts_ns=ns)
        rec.event("connect", ns, None, "ws://x")

    def frame(ns, text):
        rec.frame(text, ns)
        live.process(text, ns)

    connect(frames[0][0])
    for ns, text in frames[:120]:
        frame(ns, text)
    ns = frames[119][0] + 1
    rec.event("disconnect", ns, None, "connection lost", reset=True)
    live.reset("connection lost")
    connect(ns + 1)
    for ns, text in frames:  # the new connection starts over: subscribed, snapshots, deltas
        frame(ns + HOUR // 2, text)
    rec.event("resync", ns, 1, "A,B")
    live.feed_event("resync", sid=1, detail="A,B", ts_ns=ns)
    rec.event("disconnect", ns + 5, None, "stopped", reset=False)
    live.feed_event("disconnect", detail="stopped", ts_ns=ns + 5)
    rec.close()

    pub = InMemoryPublisher()
    rp = replay(rec.files, [pub])
    assert pub.events["feed_events"] == live_pub.events["feed_events"]
    assert [e.kind for e in pub.events["feed_events"]] == [
        "connect", "disconnect", "connect", "resync", "disconnect"]
    assert books(rp) == books(live) == books(direct_plant())
    assert rp.stats.quarantined == 0


def test_unwritable_directory_and_write_failures(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RecorderError, match="cannot create"):
        Recorder(blocker / "sub")
    rec = Recorder(tmp_path / "out")
    frames = cockpit_frames()
    rec.frame(frames[0][1], frames[0][0])

    class Full:
        def write(self, b):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    real = rec._out
    rec._out = Full()  # the disk fills up
    rec.frame(frames[1][1], frames[1][0])
    rec.frame(frames[2][1], frames[2][0])
    assert rec.failed == "recording stopped: No space left on device"
    assert rec.errors == 1 and rec.frames_lost == 2 and rec.frames == 3
    rec._out = real
    rec.close()


def test_a_rotated_recording_replays_as_one_run_from_its_directory(tmp_path):
    """`replay DIR` feeds a rotated recording's files in order into one plant: the books equal
    a direct replay of the source (each file alone starts mid-stream, without snapshots)."""
    import orjson

    from kalshi_platform.ingestion.recording import feed, iter_frames
    from kalshi_platform.tools.replay import run_replay

    src = Path(__file__).resolve().parents[2] / "data" / "recordings" / \
        "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
    r = Recorder(tmp_path / "rec", rotate_mb=0.02)
    for i, (_, payload) in enumerate(iter_frames(src)):
        r.frame(payload if isinstance(payload, str) else orjson.dumps(payload).decode(),
                1786085188416000000 + i)
    r.close()
    assert len(r.files) > 2
    ref = TickerPlant()
    feed(src, ref)
    s = run_replay(tmp_path / "rec", store=tmp_path / "store", sinks=[])
    assert s["markets"] == ref.markets_summary() and s["gaps"] == 0
