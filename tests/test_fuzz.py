"""The plant's contract under a seeded hostile feed (issue 9 §8).

One run of :func:`kalshi_platform.bench.fuzz.run_fuzz` over the bundled real recordings
(100k frames, about a third of them mutated) is shared by the tests below, one per invariant:
no exception escapes ``process()``, every live book is uncrossed with in-range levels, every
quarantined frame is kept verbatim, rows counted equal rows written, and nothing out of range
is accepted or reaches an event. ``kalshi-platform bench fuzz --frames N`` runs millions.
"""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_MISSING, SHARED_WS

from kalshi_platform.bench.fuzz import (
    FuzzResult,
    _book_problems,
    _check_quarantine,
    default_sources,
    fuzz_frames,
    run_fuzz,
)
from kalshi_platform.ticker_plant.order_book import OrderBook

FRAMES = 100_000
SEED = 20260807
BUDGET_S = 40  # the run stops (and test_the_run_is_complete fails) past this wall time


def _why(res: FuzzResult, *keys: str) -> str:
    d = res.to_dict()
    return json.dumps({k: d[k] for k in keys}, indent=1, default=str)[:4000]


@pytest.fixture(scope="module")
def fuzz() -> FuzzResult:
    return run_fuzz(FRAMES, seed=SEED, max_seconds=BUDGET_S)


def test_the_run_is_complete_and_hostile(fuzz):
    assert fuzz.frames == FRAMES and not fuzz.stopped_early, (
        f"only {fuzz.frames} frames in {fuzz.elapsed_s} s")
    assert fuzz.mutated >= 0.25 * FRAMES
    assert len([k for k in fuzz.kinds if k not in ("real", "preamble")]) >= 30
    assert fuzz.live_checks >= 5_000  # books spend enough time live for the book checks
    assert fuzz.quarantined >= 0.15 * FRAMES


def test_no_exception_escapes_process(fuzz):
    assert not fuzz.exceptions, _why(fuzz, "exceptions", "exception_samples")


def test_every_live_book_is_uncrossed_with_levels_in_range(fuzz):
    assert (fuzz.crossed_live, fuzz.bad_levels, fuzz.best_mismatch) == (0, 0, 0), (
        _why(fuzz, "crossed_live", "bad_levels", "best_mismatch", "book_samples"))


def test_every_quarantined_frame_is_kept_verbatim(fuzz):
    assert (fuzz.quarantine_mismatches, fuzz.quarantine_lossy) == (0, 0), (
        _why(fuzz, "quarantine_mismatches", "quarantine_lossy", "quarantine_samples"))


def test_rows_counted_equal_rows_written_and_read_back(fuzz):
    assert fuzz.rows_mismatch == 0, _why(fuzz, "rows", "exceptions")
    assert fuzz.rows["orderbook_deltas"]["read"] > 0 and fuzz.rows["bbo"]["read"] > 0


def test_nothing_out_of_range_is_accepted_or_published(fuzz):
    """Issue 9 §1: a frame with an out-of-range or malformed value is quarantined (never a
    "internal error"), and no event carries a value outside its documented range."""
    assert not fuzz.bad_events, _why(fuzz, "bad_events", "bad_event_samples")
    assert not fuzz.internal_errors, _why(fuzz, "internal_errors", "internal_error_samples")
    assert not fuzz.unquarantined, _why(fuzz, "unquarantined", "unquarantined_samples")


# -- the harness itself ----------------------------------------------------------------------


def test_the_stream_is_deterministic_per_seed():
    a = list(fuzz_frames(7, 3_000))
    assert a == list(fuzz_frames(7, 3_000))
    assert a != list(fuzz_frames(8, 3_000))
    assert len(a) == 3_000 and all(type(f.raw) is bytes for f in a)


def test_the_real_recordings_alone_pass_every_check():
    res = run_fuzz(5_000, seed=1, insert_p=0, replace_p=0, snapshot_replace_p=0)
    assert res.mutated == 0 and res.quarantined == 0
    assert not any(res.failures().values()), _why(res, "failures", "book_samples")
    assert not any(res.contract_gaps().values()), _why(res, "contract_gaps")
    assert res.live_checks > 1_000


def test_the_checks_see_a_broken_book_and_a_lossy_record():
    b = OrderBook("T", 1)
    b.apply_snapshot([(600_000, 100)], [(400_000, 100)])  # locked: 0.60 + 0.40 = $1
    b.yes[700_000] = 10**13  # a level of 10^11 contracts, best not updated
    assert set(_book_problems(b)) == {"crossed", "bad_levels", "best_mismatch"}

    class Rec:
        reason, raw = "bad", '{"a":"\ufffd"}'

    res, frame = FuzzResult(seed=0, sources=[]), b'{"a":"\xff"}'
    _check_quarantine(fuzz_frames(0, 1).__next__()._replace(raw=frame), [Rec()], 0, res, [])
    assert (res.quarantine_lossy, res.quarantine_mismatches) == (1, 0)
    Rec.raw = frame[:-1]
    _check_quarantine(fuzz_frames(0, 1).__next__()._replace(raw=frame), [Rec()], 0, res, [])
    assert res.quarantine_mismatches == 1


def test_the_shared_captures_too():
    sources, note = default_sources(shared=True)
    if note or not any(SHARED_WS in p.parents for p in sources):
        pytest.skip(note or f"no extra captures in {SHARED_WS}: {SHARED_MISSING}")
    res = run_fuzz(30_000, seed=SEED, sources=sources, max_seconds=BUDGET_S)
    assert res.frames == 30_000
    assert not any(res.failures().values()), _why(res, "failures", "exception_samples",
                                                   "book_samples", "quarantine_samples")
