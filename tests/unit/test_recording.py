"""Recording reader: every envelope gives the same books, bad lines are quarantined verbatim,
reading streams in constant memory.

All variants are written into ``tmp_path`` from the bundled real cockpit capture; the
whole-document ``.json`` capture and the Fortuna sidecars come from ../shared (skipped when
absent).
"""

from __future__ import annotations

import gc
import json
import tracemalloc

import pytest

import kalshi_oracle as oracle
from conftest import (
    COCKPIT,
    SHARED_WS,
    SSMD_TRADE,
    PERPS_CAPTURE,
    frame_text_of_cockpit_line,
    read_lines,
    require_shared,
    write_lines,
)
from kalshi_platform.bench.synth import write_synthetic_recording
from kalshi_platform.ingestion.recording import (
    RecordingError,
    count_lines,
    feed,
    iter_frames,
    read_meta,
)
from kalshi_platform.ticker_plant.events import QuarantineRecord
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

COCKPIT_COUNTS = {"ok": 11, "orderbook_delta": 245, "orderbook_snapshot": 12, "subscribed": 1}


def replay(path, **kw) -> tuple[TickerPlant, InMemoryPublisher, int]:
    pub = InMemoryPublisher()
    plant = TickerPlant([pub], **kw)
    n = feed(path, plant)
    return plant, pub, n


def books_state(plant: TickerPlant) -> dict:
    return {t: (dict(b.yes), dict(b.no), b.state, b.sid) for t, b in sorted(plant.books.items())}


@pytest.fixture(scope="module")
def cockpit_reference():
    """(plant, publisher) of the original cockpit recording, plus the oracle's final tops."""
    plant, pub, n = replay(COCKPIT)
    assert n == 269
    return plant, pub, oracle.replay(COCKPIT).final_tops()


def _cockpit_variants(tmp_path) -> dict:
    lines = read_lines(COCKPIT)
    envs = [json.loads(ln) for ln in lines]
    texts = [frame_text_of_cockpit_line(ln) for ln in lines]
    for env, text in zip(envs, texts):
        assert json.loads(text) == env["frame"]  # exact frame bytes extracted
    out = {}
    out["cockpit"] = COCKPIT
    out["recorder"] = write_lines(tmp_path / "recorder.jsonl", [
        json.dumps({"recv_ts_ns": e["received_ms"] * 1_000_000 + 789, "raw": t.decode()})
        for e, t in zip(envs, texts)])
    out["seed"] = write_lines(tmp_path / "seed.jsonl", [
        json.dumps({"channel": "orderbook_delta", "message": e["frame"]}) for e in envs])
    out["seed_text"] = write_lines(tmp_path / "seed_text.jsonl", [
        json.dumps({"channel": "orderbook_delta", "message": t.decode()})
        for t in texts])
    out["bare"] = write_lines(tmp_path / "bare.jsonl", texts)
    blank = []
    for i, t in enumerate(texts):
        blank += [t, b"", b"   " if i % 3 == 0 else b""]  # Fortuna-style blank lines
    out["bare_blank_lines"] = write_lines(tmp_path / "blank.jsonl", [b"", b" \t"] + blank)
    out["crlf"] = write_lines(tmp_path / "crlf.jsonl", [ln + b"\r" for ln in lines])
    out["cockpit_gz"] = write_lines(tmp_path / "cockpit.jsonl.gz", lines, gz=True)
    out["bare_gz_no_suffix"] = write_lines(tmp_path / "bare_gz.jsonl", texts, gz=True)  # by magic
    out["no_final_newline"] = write_lines(tmp_path / "nofinal.jsonl", lines, final_newline=False)
    return out


VARIANTS = ["cockpit", "recorder", "seed", "seed_text", "bare", "bare_blank_lines", "crlf",
            "cockpit_gz", "bare_gz_no_suffix", "no_final_newline"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_envelope_gives_identical_books(tmp_path, cockpit_reference, variant):
    ref_plant, ref_pub, want_tops = cockpit_reference
    path = _cockpit_variants(tmp_path)[variant]
    plant, pub, n = replay(path)
    assert n == 269
    st = plant.stats
    assert (st.frames, st.gaps, st.quarantined, st.duplicates, st.book_errors) == (269, 0, 0, 0, 0)
    assert st.messages_by_type() == COCKPIT_COUNTS
    assert books_state(plant) == books_state(ref_plant)
    assert {t: oracle.dec_top(b.top()) for t, b in plant.books.items()} == want_tops
    # the same BBO changes in the same order (times aside)
    strip = [(b.ticker, b.top(), b.seq) for b in pub.events["bbo"]]
    assert strip == [(b.ticker, b.top(), b.seq) for b in ref_pub.events["bbo"]]
    assert len(strip) == st.bbo > 12


def test_receipt_times_are_kept(tmp_path, cockpit_reference):
    envs = [json.loads(ln) for ln in read_lines(COCKPIT)]
    recv_by_seq = {e["frame"].get("seq"): e["received_ms"] * 1_000_000 for e in envs}
    _, ref_pub, _ = cockpit_reference
    for b in ref_pub.events["bbo"]:
        assert b.recv_ns == recv_by_seq[b.seq]
    plant, pub, _ = replay(_cockpit_variants(tmp_path)["recorder"])
    for b in pub.events["bbo"]:
        assert b.recv_ns == recv_by_seq[b.seq] + 789
    for b in replay(_cockpit_variants(tmp_path)["bare"])[1].events["bbo"]:
        assert b.recv_ns is None


def test_whole_document_capture(cockpit_reference):
    path = require_shared(SHARED_WS / "cockpit_prod_orderbook_stream_2026-08-07.json")
    ref_plant, ref_pub, want_tops = cockpit_reference
    plant, pub, n = replay(path)
    assert n == 269
    assert plant.stats.messages_by_type() == COCKPIT_COUNTS
    assert (plant.stats.gaps, plant.stats.quarantined) == (0, 0)
    assert books_state(plant) == books_state(ref_plant)
    assert [b.top() for b in pub.events["bbo"]] == [b.top() for b in ref_pub.events["bbo"]]
    assert [b.recv_ns for b in pub.events["bbo"]] == [b.recv_ns for b in ref_pub.events["bbo"]]
    # iter_frames reads it too
    assert sum(1 for _ in iter_frames(path)) == 269


def test_iter_frames_matches_file_order():
    got = list(iter_frames(COCKPIT))
    want = [(r, f) for r, f, _ in oracle.iter_recording(COCKPIT)]
    assert got == want
    assert count_lines(COCKPIT) == 269


# ---------------------------------------------------------------------------------------------
# corrupt lines: quarantined verbatim, never dropped, the rest replays


def _quarantined(pub) -> list[QuarantineRecord]:
    return pub.events["quarantine"]


@pytest.mark.parametrize("index", [1, 2, 50, 130, 268])  # first line: see below
def test_truncated_line_is_quarantined_verbatim(tmp_path, index):
    lines = read_lines(COCKPIT)
    bad = lines[index][: len(lines[index]) // 2]
    lines[index] = bad
    path = write_lines(tmp_path / "trunc.jsonl", lines)
    plant, pub, n = replay(path)
    assert n == 269 and plant.stats.frames == 269
    assert plant.stats.quarantined == 1
    (rec,) = _quarantined(pub)
    assert rec.raw == bad.decode()
    accepted = sum(plant.stats.messages_by_type().values())
    assert accepted + plant.stats.quarantined == 269
    kinds = [e.kind for e in pub.events["feed_events"]]
    assert kinds.count("quarantine") == 1


def test_truncated_last_line_without_newline(tmp_path):
    """A recorder killed mid-write leaves a partial last line with no newline."""
    lines = read_lines(COCKPIT)
    bad = lines[-1][:37]
    path = write_lines(tmp_path / "crash.jsonl", lines[:-1] + [bad], final_newline=False)
    plant, pub, n = replay(path)
    assert n == 269 and plant.stats.quarantined == 1
    assert _quarantined(pub)[0].raw == bad.decode()
    assert plant.stats.messages_by_type()["orderbook_delta"] == 244


def _replay_with_inserted_line(tmp_path, junk: bytes):
    lines = read_lines(COCKPIT)
    lines.insert(30, junk)
    return replay(write_lines(tmp_path / "junk.jsonl", lines))


@pytest.mark.parametrize("junk", [
    pytest.param(b"[1, 2]", id="array"),
    pytest.param(b"42", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"received_ms": 1786085188416, "frame": 42}', id="cockpit-frame-number"),
    pytest.param(b'{"received_ms": 1786085188416, "frame": [1]}', id="cockpit-frame-array"),
])
def test_json_line_that_is_not_an_object_does_not_crash_the_replay(tmp_path, junk):
    """Valid JSON that is not a frame object is bad input like any other: quarantined with
    the line kept, the rest replayed (the plant "never raises for bad input")."""
    plant, pub, n = _replay_with_inserted_line(tmp_path, junk)
    assert n == 270
    assert plant.stats.quarantined == 1
    assert _quarantined(pub)[0].raw == junk.decode()
    assert plant.stats.messages_by_type() == COCKPIT_COUNTS
    assert plant.stats.gaps == 0  # a junk line carries no seq


@pytest.mark.parametrize("junk", [
    pytest.param(b'"text"', id="json-string"),
    pytest.param(b'{"hello": "world"}', id="object-without-type"),
])
def test_json_line_that_is_not_a_frame_is_quarantined_verbatim(tmp_path, junk):
    """The quarantine keeps the recording line exactly as it was, not a re-encoding of what
    the reader parsed out of it."""
    plant, pub, n = _replay_with_inserted_line(tmp_path, junk)
    assert n == 270
    assert plant.stats.quarantined == 1
    assert plant.stats.messages_by_type() == COCKPIT_COUNTS
    assert _quarantined(pub)[0].raw == junk.decode()


def test_first_line_truncated_is_quarantined_not_fatal(tmp_path):
    """A JSON Lines recording whose *first* line is damaged is still a JSON Lines recording:
    that line is quarantined and the other 268 replay (it must not be mistaken for a
    pretty-printed single JSON document and rejected as a whole)."""
    lines = read_lines(COCKPIT)
    bad = lines[0][:50]
    lines[0] = bad
    path = write_lines(tmp_path / "first.jsonl", lines)
    plant, pub, n = replay(path)
    assert n == 269
    assert plant.stats.quarantined == 1 and _quarantined(pub)[0].raw == bad.decode()
    assert plant.stats.messages_by_type()["orderbook_delta"] == 245
    assert plant.stats.gaps == 0


def test_line_longer_than_a_read_chunk(tmp_path):
    """A 150 KB snapshot line (> the reader's 64 KiB chunk) between ordinary lines."""
    lines = read_lines(COCKPIT)
    ticker = "KXBIG-TEST"
    yes = [[f"0.{i:06d}", "1.00"] for i in range(1, 6001)]
    no = [[f"0.{i:06d}", f"{i}.25"] for i in range(10, 400_000, 97)]
    big = json.dumps({"type": "orderbook_snapshot", "sid": 7, "seq": 1,
                      "msg": {"market_ticker": ticker, "yes_dollars_fp": yes,
                              "no_dollars_fp": no}}).encode()
    assert len(big) > 150_000
    lines.insert(100, big)
    path = write_lines(tmp_path / "big.jsonl", lines)
    plant, pub, n = replay(path)
    assert n == 270 and plant.stats.quarantined == 0 and plant.stats.gaps == 0
    b = plant.books[ticker]
    assert len(b.yes) == 6000 and len(b.no) == len(no)
    best_no = max(no, key=lambda lv: oracle.D(lv[0]))
    assert oracle.dec_top(b.top()) == (oracle.D("0.006000"), oracle.D(1),
                                       1 - oracle.D(best_no[0]), oracle.D(best_no[1]))
    assert plant.stats.messages_by_type()["orderbook_delta"] == 245


def test_empty_and_blank_recordings(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    blank = write_lines(tmp_path / "blank.jsonl", [b"", b"   ", b"\t"])
    for p in (empty, blank):
        plant, pub, n = replay(p)
        assert n == 0 and plant.stats.frames == 0 and not plant.books


def test_unreadable_paths_raise_recording_error(tmp_path):
    with pytest.raises(RecordingError):
        feed(tmp_path / "missing.jsonl", TickerPlant())
    with pytest.raises(RecordingError):
        feed(tmp_path, TickerPlant())


def test_truncated_gzip_raises_recording_error(tmp_path):
    gz = write_lines(tmp_path / "c.jsonl.gz", read_lines(COCKPIT), gz=True)
    data = gz.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(RecordingError):
        feed(cut, TickerPlant())


# ---------------------------------------------------------------------------------------------
# sidecar metadata


def test_read_meta_fortuna_flags():
    yes = require_shared(SHARED_WS / "fortuna_demo_ws__orderbook_trade_yes.jsonl")
    noleg = require_shared(SHARED_WS / "fortuna_demo_ws__orderbook_trade_noleg.jsonl")
    assert read_meta(yes).use_yes_price is True
    assert read_meta(noleg).use_yes_price is False
    assert read_meta(yes).recorded_at_ns == 1781159385771 * 1_000_000


def test_read_meta_absent_or_silent():
    assert read_meta(COCKPIT).use_yes_price is None
    assert read_meta(SSMD_TRADE).recorded_at_ns is None
    if PERPS_CAPTURE.is_file():
        assert read_meta(PERPS_CAPTURE).use_yes_price is None  # its subscribe cmd has no flag


# ---------------------------------------------------------------------------------------------
# streaming: memory does not grow with the file


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    out = {}
    for n in (50_000, 200_000):
        p = d / f"synth_{n}.jsonl"
        stats = write_synthetic_recording(COCKPIT, p, n, market_copies=4)
        assert stats["frames"] == n
        out[n] = p
    return out


def _peak_while_feeding(path) -> tuple[int, TickerPlant]:
    plant = TickerPlant()  # no publishers: nothing is kept but the books
    gc.collect()
    tracemalloc.start()
    try:
        feed(path, plant)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, plant


def test_feed_streams_in_constant_memory(synthetic_files):
    small, big = synthetic_files[50_000], synthetic_files[200_000]
    peak_small, plant_small = _peak_while_feeding(small)
    peak_big, plant_big = _peak_while_feeding(big)
    for plant, n in ((plant_small, 50_000), (plant_big, 200_000)):
        st = plant.stats
        assert (st.frames, st.gaps, st.quarantined, st.book_errors, st.crossed) == (n, 0, 0, 0, 0)
        assert len(plant.books) == 48
    size_big = big.stat().st_size
    assert size_big > 40_000_000
    assert peak_big < size_big / 4, (peak_big, size_big)
    # 4x the frames, (almost) the same peak: memory does not scale with the file
    assert peak_big < 1.5 * peak_small + 2_000_000, (peak_small, peak_big)
