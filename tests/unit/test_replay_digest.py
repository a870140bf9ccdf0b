"""Rows a Parquet replay writes are the same values as before the issue 11 speed work.

Each recording is replayed the way ``kalshi-platform replay --sink parquet`` does it
(:func:`~kalshi_platform.tools.replay.run_replay`: the plant, its event stream, the store on
its consumer thread), and every table is read back and digested value by value
(``tests/replay_digest.py``: int64 µs, float64 bits). ``WANT`` was computed with the same
function on commit 85d5612 (before the plant/stream/store changes of issue 11 §2). The
synthetic recording (30,000 frames grown from the bundled capture, 3 copies of its markets,
``batch_rows`` 5,000) crosses chunk and file boundaries and resyncs.
"""

from __future__ import annotations

import pytest
from conftest import BUNDLED
from replay_digest import table_digests

from kalshi_platform.bench.synth import write_synthetic_recording
from kalshi_platform.tools.replay import run_replay

WANT = {
    "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl": {
        "bbo": (45, "f925801f8eb9bdc3d4c30b39308146bedc0c1eaf125eefc152dd55e45051181a"),
        "orderbook_deltas": (245, "5a98c5fd0e28df1b609ee80581f03c330c6a8a1022078c4575a27b0c49b72229"),
        "orderbook_snapshots": (1114, "59886eaa906c2b12455b4ef5aef8ca12a8bead8213adb713c5f3f8d2c88aa236"),
    },
    "ssmd_prod_embedded_frames.jsonl": {
        "market_lifecycle": (1, "12838d594cc660d36351421bd1ddeb8ec70d80a59d66e0c468fe2c3f4815a7c3"),
        "tickers": (2, "c0d1bc6cda3f438f61e81985e74987ebdc871cfc366c41e0c949f89294eba872"),
        "trades": (1, "99952dc803a1cf8d7b05877849519b62ff53e57047024748837e16413e1f9bd1"),
    },
    "ssmd_prod_ticker_2026-02-12.jsonl": {
        "tickers": (10, "bcf586dbb9c4b88743ad74460703f85f89a95ca374307bca14f1706bbf74d62a"),
    },
    "ssmd_prod_trade_2026-02-12.jsonl": {
        "feed_events": (1, "726b5f4ed66c7b7e2abdedd44b2833cedc5ac95ac40a2f7bcb2fec62b23ab803"),
        "trades": (10, "18903445bc4401561d5055bc4aefd091678396e969bbf86f4d5013c0ca16135e"),
    },
    "synthetic-30000.jsonl": {
        "bbo": (4073, "37bd4d810f70a4b8b46904fcb65648010d266207d87f5c2cd1f97a8d58c217b4"),
        "orderbook_deltas": (29951, "6f861c1ae2c5d2ddcf184b6b7f5384983834febc2de358e5f2663c069c955334"),
        "orderbook_snapshots": (4456, "d296056e9d5223b6632c6ad1b7639725e367fa14795442097cae0aefd9983d3d"),
    },
}

SYNTHETIC = "synthetic-30000.jsonl"


@pytest.mark.parametrize("rec", BUNDLED, ids=lambda p: p.name)
def test_bundled_replay_writes_the_rows_it_wrote_before(tmp_path, rec):
    run_replay(rec, store=tmp_path / "store", sinks=["parquet"])
    assert table_digests(tmp_path / "store") == WANT[rec.name]


def test_synthetic_replay_writes_the_rows_it_wrote_before(tmp_path):
    rec = tmp_path / SYNTHETIC
    write_synthetic_recording(BUNDLED[0], rec, 30_000, market_copies=3)
    summary = run_replay(rec, store=tmp_path / "store", sinks=["parquet"], batch_rows=5_000)
    assert summary["sink_failures"] == {}
    assert summary["files_written"] > 6  # several files per big table
    assert table_digests(tmp_path / "store") == WANT[SYNTHETIC]
