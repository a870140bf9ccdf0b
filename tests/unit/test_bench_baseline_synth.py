"""Baseline (seed-style oracle) and synthetic-recording generator of the `bench` command."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from kalshi_platform.bench.baseline import (
    EMPTY_BBO,
    BaselineBook,
    decode_frame,
    decode_lines,
    replay,
    unwrap,
)
from kalshi_platform.bench.synth import write_synthetic_recording

REPO = Path(__file__).resolve().parents[2]
CAPTURE_NAME = "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
_CANDIDATES = [
    REPO.parent / "shared" / "data" / "real" / "kalshi" / "ws" / CAPTURE_NAME,
    REPO / "data" / "recordings" / CAPTURE_NAME,
]
REAL = next((p for p in _CANDIDATES if p.is_file()), None)
needs_real = pytest.mark.skipif(
    REAL is None,
    reason="real Kalshi capture not found; looked in: " + ", ".join(str(p) for p in _CANDIDATES),
)

D = Decimal


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _real_parts() -> tuple[list[dict], int]:
    """(snapshot frames of the real capture, number of its deltas)."""
    snaps, n_deltas = [], 0
    with open(REAL, "rb") as fh:
        for line in fh:
            frame = unwrap(line)
            if frame and frame["type"] == "orderbook_snapshot":
                snaps.append(frame)
            elif frame and frame["type"] == "orderbook_delta":
                n_deltas += 1
    return snaps, n_deltas


def _snapshot_books() -> dict[str, BaselineBook]:
    books = {}
    for frame in _real_parts()[0]:
        msg = decode_frame(frame)
        book = books[msg["ticker"]] = BaselineBook()
        book.apply_snapshot(msg["yes"], msg["no"])
    return books


def _ts_us(ts: str) -> int:
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _walk(path: Path) -> dict:
    """Independent strict check of a synthetic file; returns the final books and counters.

    Asserts: compact envelope, sid 1, seq gapless from 1, received_ms / ts_ms non-decreasing,
    ts floors to ts_ms, no negative level (BaselineBook raises), and every re-sent snapshot of
    a known market equals that market's book at that moment (a resync must be a no-op).
    """
    books: dict[str, BaselineBook] = {}
    opener = gzip.open if path.name.endswith(".gz") else open
    lines = last_seq = last_recv = last_ts_ms = 0
    resync_checked = 0
    with opener(path, "rb") as fh:
        for line in fh:
            lines += 1
            assert line.endswith(b"\n")
            env = json.loads(line)
            assert set(env) == {"received_ms", "frame"}
            assert env["received_ms"] >= last_recv
            last_recv = env["received_ms"]
            frame = env["frame"]
            if frame["type"] == "subscribed":
                assert lines == 1 and frame["msg"]["sid"] == 1
                continue
            assert frame["sid"] == 1
            assert frame["seq"] == last_seq + 1, f"seq gap at line {lines}"
            last_seq = frame["seq"]
            msg = decode_frame(frame)
            if msg["type"] == "orderbook_snapshot":
                new = BaselineBook()
                new.apply_snapshot(msg["yes"], msg["no"])
                old = books.get(msg["ticker"])
                if old is not None:
                    assert (dict(old.yes), dict(old.no)) == (dict(new.yes), dict(new.no)), (
                        f"resync snapshot of {msg['ticker']} at seq {last_seq} differs from the book"
                    )
                    resync_checked += 1
                books[msg["ticker"]] = new
            else:
                assert msg["type"] == "orderbook_delta"
                raw = frame["msg"]
                assert raw["ts_ms"] >= last_ts_ms
                last_ts_ms = raw["ts_ms"]
                assert _ts_us(raw["ts"]) // 1000 == raw["ts_ms"]
                assert msg["ticker"] in books, "delta before its market's snapshot"
                books[msg["ticker"]].apply_delta(msg["side"], msg["price"], msg["delta"])
    return {"lines": lines, "books": books, "last_seq": last_seq, "resyncs_checked": resync_checked}


# --------------------------------------------------------------------------------------------
# baseline: unit level (no data needed)
# --------------------------------------------------------------------------------------------


def test_unwrap_envelopes_and_blank_lines():
    frame = {"type": "ok", "sid": 1, "seq": 7, "msg": {}}
    text = json.dumps(frame)
    assert unwrap(b"\n") is None and unwrap("   ") is None
    assert unwrap(json.dumps({"received_ms": 1, "frame": frame}).encode()) == frame
    assert unwrap(json.dumps({"recv_ts_ns": 1, "raw": text})) == frame
    assert unwrap(json.dumps({"channel": "orderbook_delta", "message": frame})) == frame
    assert unwrap(text + "\n") == frame
    with pytest.raises(ValueError):
        unwrap(b'{"foo": 1}')
    assert decode_lines([b"", json.dumps({"received_ms": 1, "frame": frame}).encode(), b"\n"]) == 1


def test_decode_current_and_legacy_frames():
    snap = decode_frame({"type": "orderbook_snapshot", "sid": 2, "seq": 1,
                         "msg": {"market_ticker": "T", "yes_dollars_fp": [["0.0800", "300.00"]]}})
    assert snap == {"type": "orderbook_snapshot", "sid": 2, "seq": 1, "ticker": "T",
                    "yes": [(D("0.08"), D("300"))], "no": []}
    legacy = decode_frame({"type": "orderbook_snapshot", "sid": 2, "seq": 1,
                           "msg": {"market_ticker": "T", "yes": [[8, 300]], "no": [[54, 20]]}})
    assert legacy["yes"] == [(D("0.08"), D(300))] and legacy["no"] == [(D("0.54"), D(20))]
    delta = decode_frame({"type": "orderbook_delta", "sid": 2, "seq": 3,
                          "msg": {"market_ticker": "T", "price_dollars": "0.9600",
                                  "delta_fp": "-54.00", "side": "yes"}})
    assert delta == {"type": "orderbook_delta", "sid": 2, "seq": 3, "ticker": "T",
                     "side": "yes", "price": D("0.96"), "delta": D("-54")}
    old = decode_frame({"type": "orderbook_delta", "sid": 2, "seq": 3,
                        "msg": {"market_ticker": "T", "price": 96, "delta": -54, "side": "no"}})
    assert (old["price"], old["delta"], old["side"]) == (D("0.96"), D(-54), "no")
    assert decode_frame({"type": "subscribed", "msg": {"sid": 1}}) == {
        "type": "subscribed", "sid": None, "seq": None}


def test_book_semantics_bids_only():
    book = BaselineBook()
    assert book.bbo() == EMPTY_BBO
    book.apply_snapshot([(D("0.40"), D("10")), (D("0.41"), D("5"))], [(D("0.55"), D("7"))])
    # best YES ask = 1 - best NO bid, with that NO level's size
    assert book.bbo() == (D("0.41"), D("5"), D("0.45"), D("7"))
    book.apply_delta("no", D("0.57"), D("3.50"))
    assert book.bbo() == (D("0.41"), D("5"), D("0.43"), D("3.50"))
    book.apply_delta("yes", D("0.41"), D("-5"))  # level reaches 0 -> removed
    assert D("0.41") not in book.yes and book.bbo()[0] == D("0.40")
    with pytest.raises(ValueError):
        book.apply_delta("yes", D("0.40"), D("-10.01"))
    assert book.yes[D("0.40")] == D("10")  # unchanged after the rejected delta
    book.apply_snapshot([], [(D("0.10"), D("1"))])  # replace, never merge
    assert book.bbo() == (None, None, D("0.90"), D("1")) and not book.yes


# --------------------------------------------------------------------------------------------
# baseline on the real capture
# --------------------------------------------------------------------------------------------


@needs_real
def test_baseline_replay_of_real_capture():
    res = replay(REAL)
    assert res.frames == 269
    assert res.messages_by_type == {
        "subscribed": 1, "orderbook_snapshot": 12, "ok": 11, "orderbook_delta": 245}
    assert res.gaps == 0
    assert res.skipped_deltas == 0
    assert len(res.final_bbo) == 12
    for ticker, (bid, bid_size, ask, ask_size) in res.final_bbo.items():
        assert (bid is None) == (bid_size is None) and (ask is None) == (ask_size is None)
        if bid is not None and ask is not None:
            assert bid < ask, f"crossed final book for {ticker}: {bid} >= {ask}"
    assert res.bbo_changes >= 12  # every market's first BBO is a change


@needs_real
def test_baseline_counts_gaps(tmp_path):
    lines = REAL.read_bytes().splitlines(keepends=True)
    dropped = [ln for ln in lines if b'"seq":100,' not in ln]
    assert len(dropped) == len(lines) - 1
    path = tmp_path / "gap.jsonl"
    path.write_bytes(b"".join(dropped))
    res = replay(path)
    assert res.gaps == 1
    assert res.messages_by_type["orderbook_delta"] == 244


# --------------------------------------------------------------------------------------------
# synthetic recordings
# --------------------------------------------------------------------------------------------


@needs_real
def test_synthetic_20k_is_valid_and_gapless(tmp_path):
    dst = tmp_path / "synth.jsonl"
    stats = write_synthetic_recording(REAL, dst, 20_000, market_copies=8, resync_every=5_000)
    assert stats["frames"] == 20_000
    assert stats["markets"] == 96
    assert stats["snapshots"] + stats["deltas"] + 1 == 20_000
    assert stats["snapshots"] > 96  # resyncs happened inside this file

    walked = _walk(dst)  # strict: seq, timestamps, no negative level, resync == book
    assert walked["lines"] == 20_000
    assert walked["last_seq"] == 19_999
    assert walked["resyncs_checked"] == stats["snapshots"] - 96 > 0

    res = replay(dst)
    assert res.frames == 20_000
    assert res.gaps == 0
    assert res.skipped_deltas == 0
    assert res.messages_by_type == {
        "subscribed": 1,
        "orderbook_snapshot": stats["snapshots"],
        "orderbook_delta": stats["deltas"],
    }
    tickers = set(res.final_bbo)
    assert len(tickers) == 96
    real = set(_snapshot_books())
    assert tickers == real | {f"{t}-C{k}" for t in real for k in range(1, 8)}
    for bid, _, ask, _ in res.final_bbo.values():
        if bid is not None and ask is not None:
            assert bid < ask


@needs_real
def test_synthetic_inverse_pass_restores_snapshot_state(tmp_path):
    snaps, n_deltas = _real_parts()
    copies = 2
    header = 1 + len(snaps) * copies  # subscribed + every copy's snapshots
    pass_len = n_deltas * copies  # one pass: every real delta, once per copy
    at_snapshot = {t: b.bbo() for t, b in _snapshot_books().items()}
    real_final = replay(REAL).final_bbo

    # Ends right after the 3rd inverse pass (no resync: resync_every is out of reach).
    end_cycle = tmp_path / "cycle.jsonl"
    n = header + 3 * 2 * pass_len
    write_synthetic_recording(REAL, end_cycle, n, market_copies=copies, resync_every=10**9)
    walked = _walk(end_cycle)
    assert walked["lines"] == n
    res = replay(end_cycle)
    copy0 = {t: v for t, v in res.final_bbo.items() if t in at_snapshot}
    assert copy0 == at_snapshot
    # the whole ladders, not only the BBO, are back at the snapshot (for every copy)
    snap_books = _snapshot_books()
    for ticker, book in walked["books"].items():
        base = snap_books[ticker.rsplit("-C", 1)[0] if ticker not in snap_books else ticker]
        assert (dict(book.yes), dict(book.no)) == (dict(base.yes), dict(base.no)), ticker

    # Non-trivial: right after a forward pass the books are the real capture's final state,
    # which differs from the snapshot state.
    end_fwd = tmp_path / "forward.jsonl"
    write_synthetic_recording(REAL, end_fwd, header + 3 * pass_len, market_copies=copies,
                              resync_every=10**9)
    fwd = replay(end_fwd).final_bbo
    assert {t: v for t, v in fwd.items() if t in at_snapshot} == real_final
    assert real_final != at_snapshot


@needs_real
def test_synthetic_gzip_and_exact_truncation(tmp_path):
    for n in (0, 1, 13, 777):
        dst = tmp_path / f"s{n}.jsonl.gz"
        stats = write_synthetic_recording(REAL, dst, n, market_copies=3)
        assert stats["frames"] == n
        with gzip.open(dst, "rb") as fh:
            assert sum(1 for _ in fh) == n
        if n:
            res = replay(dst)
            assert res.frames == n and res.gaps == 0
    assert not list(tmp_path.glob("*.tmp"))
