"""The plant → stream → sink event path after the issue 11 speed work keeps its contract.

* a plant with a single publisher hands it each event directly (``FanOut.emit``), and that
  publisher raising is still isolated: marked failed once, reported, the books go on;
* a consumer woken only by size (``wake_events``) still gets every event, in order, through
  the idle tick and at close, and a storage sink attached by ``attach_sinks`` spills and
  loses nothing when it falls behind (the spiller is woken by the bound, never polls);
* ``ParquetStore.publish_many`` writes the same files, with the same rows per file and the
  same values, as ``publish`` of each event;
* ``replay_gc`` restores the collector's thresholds and unfreezes.
"""

from __future__ import annotations

import gc
import threading

import pyarrow.parquet as pq
import pytest
from conftest import COCKPIT, wait_until

import kalshi_platform.storage.parquet_store as ps
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.parquet_store import ParquetStore
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.stream.sinks import SINK_WAKE_EVENTS, attach_sinks
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent, FeedEvent, SnapshotEvent
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher
from kalshi_platform.tools.replay import replay_gc

NS = 1_786_085_189_148_000_000  # 2026-08-07 (ns)
DAY_NS = 86_400 * 10**9


class FailsAfter(InMemoryPublisher):
    """Keeps events; raises on the ``n``-th publish."""

    sink_name = "flaky"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.calls = 0

    def publish(self, event):
        self.calls += 1
        if self.calls == self.n:
            raise OSError(28, "No space left on device")
        super().publish(event)


def test_a_single_publisher_that_raises_is_isolated_and_the_books_go_on():
    bad = FailsAfter(40)
    plant = TickerPlant([bad])
    feed(COCKPIT, plant)
    plant.close()
    clean = TickerPlant([InMemoryPublisher()])
    feed(COCKPIT, clean)
    assert plant.sink_failures == {"flaky": "[Errno 28] No space left on device"}
    assert plant.stats.sink_failures == 1 and plant.stats.quarantined == 0
    assert bad.calls == 40  # nothing after the failure
    assert plant.markets_summary() == clean.markets_summary()
    assert plant.stats.bbo == clean.stats.bbo and plant.stats.deltas == clean.stats.deltas


def test_single_publisher_events_equal_a_fan_out_of_two():
    one, a, b = InMemoryPublisher(), InMemoryPublisher(), InMemoryPublisher()
    for pubs in ([one], [a, b]):
        p = TickerPlant(pubs)
        feed(COCKPIT, p)
        p.close()
    assert one.events == a.events == b.events
    deltas = one.events["orderbook_deltas"]
    assert deltas and all(type(e) is DeltaEvent and e.side in ("yes", "no") for e in deltas)
    assert all(type(e) is BBO for e in one.events["bbo"])


class Collect:
    def __init__(self) -> None:
        self.got: list = []
        self.closed = False

    def on_batch(self, start, events):
        self.got.extend(enumerate(events, start))

    def on_gap(self, first, count):  # pragma: no cover - spill/no overflow here
        raise AssertionError("gap")

    def on_idle(self):
        pass

    def close(self):
        self.closed = True


def test_a_consumer_woken_by_size_gets_every_event_by_the_idle_tick_and_at_close():
    c = Collect()
    stream = EventStream()
    stream.attach(c, "sized", wake_events=10**9)  # never woken by a commit
    plant = TickerPlant([stream])
    for i in range(5):
        plant.feed_event("error", detail=f"e{i}")
        plant.commit()
    wait_until(lambda: len(c.got) == 5)  # taken at the idle tick, without a wake-up
    for i in range(5, 300):
        plant.feed_event("error", detail=f"e{i}")
        plant.commit()
    plant.close()
    assert [s for s, _ in c.got] == list(range(1, 301)) and c.closed
    assert [e.detail for _, e in c.got] == [f"e{i}" for i in range(300)]


class HeldSink(InMemoryPublisher):
    """A storage sink held on its first event until ``hold`` is set."""

    sink_name = "held"

    def __init__(self, hold: threading.Event) -> None:
        super().__init__()
        self.hold = hold
        self.all: list = []

    def publish(self, event):
        self.hold.wait(30)
        self.all.append(event)


def test_a_storage_sink_behind_its_bound_spills_and_loses_nothing(tmp_path):
    hold = threading.Event()
    sink = HeldSink(hold)
    stream = EventStream()
    (r,) = attach_sinks(stream, [sink], max_events=100, spill_dir=tmp_path)
    assert r.wake_events == 50  # half the bound: woken before anything spills
    (big,) = attach_sinks(EventStream(), [InMemoryPublisher()], max_events=10**6)
    assert big.wake_events == SINK_WAKE_EVENTS
    big.close()
    ref = InMemoryPublisher()
    plant = TickerPlant([stream, ref])
    feed(COCKPIT, plant)
    for i in range(3000):  # more than the wake threshold too: the sink is woken, then held
        plant.feed_event("error", detail=f"m{i}")
        if i % 10 == 0:
            plant.commit()
    plant.commit()
    wait_until(lambda: r.spilled > 0)
    assert any(tmp_path.iterdir())
    hold.set()
    plant.close()
    want = [e for evs in ref.events.values() for e in evs]
    assert len(sink.all) == len(want) == stream.seq
    assert sorted(map(repr, sink.all)) == sorted(map(repr, want))
    assert [e.detail for e in sink.all if type(e) is FeedEvent][-3000:] == [
        f"m{i}" for i in range(3000)]
    assert r.lag == 0 and r.failed is None and not any(tmp_path.iterdir())


def _mixed_events() -> list:
    """Deltas, BBO, snapshots (several rows each) and feed events, interleaved, over two UTC
    days, in runs of different lengths."""
    out: list = []
    for i in range(400):
        ts = NS + (i // 250) * DAY_NS + i
        for k in range(1 + i % 5):
            out.append(DeltaEvent("A", ts, 1, i * 8 + k, "yes" if k % 2 else "no",
                                  10_000 + k, 100 * (k + 1), ts + 1))
        if i % 3 == 0:
            out.append(BBO("A", ts, 430_000, 1, 440_000, 2, i, None))
        if i % 7 == 0:
            out.append(SnapshotEvent("A", ts, 1, i, [(10_000, 1)] * (i % 4),
                                     [(20_000, 2)] * (i % 3), None))
        if i % 50 == 0:
            out.append(FeedEvent(ts, "gap", 1, i, i + 2, "seq skipped 2"))
    return out


@pytest.mark.parametrize("chunk", [1, 7, 64, 16_384])
def test_publish_many_writes_what_publish_wrote(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(ps, "CHUNK_ROWS", chunk)
    events = _mixed_events()
    one = ParquetStore(tmp_path / "one", "w", batch_rows=97, fsync=False)
    for e in events:
        one.publish(e)
    one.close()
    many = ParquetStore(tmp_path / "many", "w", batch_rows=97, fsync=False)
    for k in range(0, len(events), 113):  # batches cut anywhere, as commits cut them
        many.publish_many(events[k:k + 113])
    many.close()
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.parquet"))
    assert len(files) > 10
    assert files == sorted(p.relative_to(tmp_path / "many")
                           for p in (tmp_path / "many").rglob("*.parquet"))
    for f in files:
        a, b = pq.read_table(tmp_path / "one" / f), pq.read_table(tmp_path / "many" / f)
        assert a.equals(b), f
    assert one.rows_written == many.rows_written


def test_replay_gc_restores_the_collector():
    before = gc.get_threshold()
    with replay_gc(12_345):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError):
        with replay_gc():
            raise RuntimeError("x")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
