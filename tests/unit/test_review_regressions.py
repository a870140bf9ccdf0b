"""Regression tests for defects found in review (each failed before its fix)."""

from __future__ import annotations

import json

import pytest

from kalshi_platform.ingestion.recording import RecordingError, feed
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.ticker_plant.events import DeltaEvent
from kalshi_platform.ticker_plant.order_book import LIVE, SYNCING
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

T = "KXTEST-MKT"


def snap(seq, sid=1, yes=(("0.4000", "10.00"),), no=(("0.5000", "5.00"),)):
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq,
            "msg": {"market_ticker": T, "yes_dollars_fp": [list(x) for x in yes],
                    "no_dollars_fp": [list(x) for x in no]}}


def delta(seq, price="0.4000", d="1.00", side="yes", sid=1):
    return {"type": "orderbook_delta", "sid": sid, "seq": seq,
            "msg": {"market_ticker": T, "price_dollars": price, "delta_fp": d, "side": side,
                    "ts_ms": 1_786_085_189_148}}


def sub(sid=1):
    return {"type": "subscribed", "id": 1, "msg": {"channel": "orderbook_delta", "sid": sid}}


def test_two_frames_on_one_line_then_a_bad_frame_loses_nothing(tmp_path):
    p = tmp_path / "r.jsonl"
    bad = json.dumps(delta(3, price=""))
    p.write_text(json.dumps(sub()) + "\n" + json.dumps(snap(1)) + " " + json.dumps(delta(2))
                 + "\n" + bad + "\n" + json.dumps(delta(4)) + "\n")
    pub = InMemoryPublisher()
    plant = TickerPlant([pub])
    feed(p, plant)
    # line 2 holds two values: not a frame → quarantined whole; line 3 quarantined verbatim
    raws = [q.raw for q in pub.events["quarantine"]]
    assert bad in raws and len(raws) == 2
    assert plant.stats.frames == 4  # one per non-blank line, each accepted or quarantined


def test_resubscribed_sid_does_not_apply_new_stream_to_old_book():
    plant = TickerPlant([])
    for f in (sub(), snap(1), delta(2, d="5.00"), sub()):
        plant.process(f)
    assert plant.books[T].state == SYNCING
    plant.process(delta(2, d="1.00"))  # new stream, its snapshot lost: must not be applied
    assert plant.books[T].yes == {400_000: 1500} and plant.books[T].state == SYNCING
    plant.process(snap(3))
    assert plant.books[T].state == LIVE and plant.books[T].yes == {400_000: 1000}


def test_delta_from_another_sid_never_touches_the_book():
    plant = TickerPlant([])
    plant.process(snap(1, sid=1))
    plant.process(delta(1, sid=2, d="7.00"))
    assert plant.books[T].yes == {400_000: 1000}
    assert plant.stats.deltas_ignored == 1


def test_use_yes_price_set_after_construction_applies_to_deltas_too():
    plant = TickerPlant([])
    plant.use_yes_price = True
    # NO side on the YES scale: 0.5000 there is a NO bid at 0.5000 (1 - 0.5)
    plant.process(snap(1, no=(("0.6000", "5.00"),)))
    plant.process(delta(2, price="0.6000", d="-5.00", side="no"))
    assert plant.books[T].no == {} and plant.stats.book_errors == 0


def test_store_numbering_continues_and_quarantine_appends(tmp_path):
    for n in (3, 2):
        store = ParquetStore(tmp_path, "w1", fsync=False)
        for i in range(n):
            store.publish(DeltaEvent(T, 1_786_085_189_148_000_000 + i, 1, i, "yes", 400_000,
                                     100, None))
        store.close()
    assert read_table(tmp_path, "orderbook_deltas").num_rows == 5


def test_replace_existing_only_removes_its_own_files(tmp_path):
    ev = DeltaEvent(T, 1_786_085_189_148_000_000, 1, 1, "yes", 400_000, 100, None)
    for wid in ("replay-a", "replay-a-b"):
        s = ParquetStore(tmp_path, wid, fsync=False)
        s.publish(ev)
        s.close()
    s = ParquetStore(tmp_path, "replay-a", replace_existing=True, fsync=False)
    s.close()
    names = [f.name for f in tmp_path.glob("orderbook_deltas/date=*/*.parquet")]
    assert names == ["replay-a-b-000000.parquet"]


def test_failed_write_keeps_rows_buffered(tmp_path, monkeypatch):
    store = ParquetStore(tmp_path, "w", fsync=False)
    store.publish(DeltaEvent(T, 1_786_085_189_148_000_000, 1, 1, "yes", 400_000, 100, None))
    import kalshi_platform.storage.parquet_store as ps

    real = ps.pq.write_table
    monkeypatch.setattr(ps.pq, "write_table", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        store.flush()
    assert not list(tmp_path.glob("orderbook_deltas/date=*/.*.tmp"))
    monkeypatch.setattr(ps.pq, "write_table", real)
    store.close()
    assert read_table(tmp_path, "orderbook_deltas").num_rows == 1


def test_sink_oserror_is_isolated_not_reported_as_a_read_error(tmp_path):
    """A sink's OSError is the sink's failure (issue 9 §2), not the recording's: the feed
    goes on, the book is built, and the failure is named."""
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(snap(1)) + "\n" + json.dumps(delta(2)) + "\n")

    class Full:
        sink_name = "full"

        def publish(self, ev):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

        def close(self):
            pass

    plant = TickerPlant([Full()])
    feed(p, plant)
    assert plant.books[T].state == LIVE and plant.books[T].yes == {400_000: 1100}
    assert plant.sink_failures == {"full": "[Errno 28] No space left on device"}
    assert plant.stats.quarantined == 0


def test_seed_envelope_keeps_receipt_time(tmp_path):
    p = tmp_path / "seed.jsonl"
    p.write_text(json.dumps({"channel": "orderbook_delta", "message": snap(1),
                             "recv_ts_ns": 1_786_085_188_416_000_123}) + "\n")
    pub = InMemoryPublisher()
    feed(p, TickerPlant([pub]))
    (ev,) = pub.events["orderbook_snapshots"]
    assert ev.recv_ns == 1_786_085_188_416_000_123 and ev.ts_ns == ev.recv_ns


@pytest.mark.parametrize("line", [b"null", b"5", b"[1,2]", b'{"raw":5,"recv_ts_ns":1}',
                                  b'{"type":"ok","msg":' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_hostile_lines_are_quarantined_not_fatal(tmp_path, line):
    p = tmp_path / "h.jsonl"
    p.write_bytes(json.dumps(snap(1)).encode() + b"\n" + line + b"\n")
    pub = InMemoryPublisher()
    plant = TickerPlant([pub])
    feed(p, plant)
    assert plant.stats.quarantined == 1 and plant.books[T].state == LIVE
