"""The plant's event stream (issue 10 §1-2): contiguous seqs per run, consumers on their own
threads at their own pace, spill to disk for storage sinks, gaps for transports, isolation."""

from __future__ import annotations

import json
import threading

import pytest

from conftest import COCKPIT, wait_until
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.stream import codec
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.stream.sinks import SinkConsumer
from kalshi_platform.ticker_plant.events import FeedEvent
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher


class Collect:
    """A consumer that keeps ``(seq, event)`` and can be held on its first batch."""

    def __init__(self, hold: threading.Event | None = None, fail_on: int | None = None):
        self.got: list = []
        self.gaps: list = []
        self.hold = hold
        self.fail_on = fail_on
        self.closed = False
        self.entered = threading.Event()

    def on_batch(self, start, events):
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(30)
        if self.fail_on is not None and start <= self.fail_on < start + len(events):
            raise OSError(28, "No space left on device")
        self.got.extend(enumerate(events, start))

    def on_gap(self, first, count):
        self.gaps.append((first, count))

    def on_idle(self):
        pass

    def close(self):
        self.closed = True



class Ordered(InMemoryPublisher):
    def __init__(self):
        super().__init__()
        self.all: list = []

    def publish(self, event):
        self.all.append(event)


def test_every_event_gets_a_contiguous_seq_and_each_consumer_sees_all_in_order():
    a, b = Collect(), Collect()
    stream = EventStream()
    stream.attach(a, "a")
    stream.attach(b, "b")
    ref = Ordered()
    plant = TickerPlant([stream, ref])
    feed(COCKPIT, plant)
    plant.close()
    n = len(ref.all)
    assert n > 250 and stream.seq == n
    for c in (a, b):
        assert [s for s, _ in c.got] == list(range(1, n + 1))
        assert [e for _, e in c.got] == ref.all and c.closed
    assert plant.stream is stream and len(stream.run_id) > 10


def test_a_slow_sink_spills_to_disk_and_loses_nothing(tmp_path):
    hold = threading.Event()
    slow = Collect(hold=hold)
    stream = EventStream()
    r = stream.attach(slow, "slow", max_events=50, overflow="spill", spill_dir=tmp_path)
    ref = Ordered()
    plant = TickerPlant([stream, ref])
    feed(COCKPIT, plant)  # commits per chunk; the consumer is held on its first batch
    plant.process(json.dumps({"type": "ok", "id": 1}), 1_786_085_189_000_000_000)
    for i in range(300):  # many small batches so the spiller has something to move
        plant.feed_event("error", detail=f"marker {i}")
        plant.commit()
    wait_until(lambda: r.spilled > 0 and r.lag - len(r._mem) > 0)
    assert any(tmp_path.iterdir())  # on disk, under the spill dir
    hold.set()
    plant.close()
    assert [e for _, e in slow.got] == ref.all
    assert [s for s, _ in slow.got] == list(range(1, len(ref.all) + 1))
    assert r.spilled > 0 and r.lag == 0 and not any(tmp_path.iterdir())


def test_a_slow_transport_is_told_a_gap_and_never_blocks_the_plant():
    hold = threading.Event()
    slow = Collect(hold=hold)
    fast = Collect()
    stream = EventStream()
    rs = stream.attach(slow, "slow", max_events=20, overflow="drop")
    stream.attach(fast, "fast", overflow="drop")
    plant = TickerPlant([stream])
    plant.feed_event("connect")
    plant.commit()
    slow.entered.wait(10)  # held on batch 1
    for i in range(200):
        plant.feed_event("error", detail=f"marker {i}")
        plant.commit()
    hold.set()
    plant.close()
    assert rs.dropped > 0
    assert [s for s, _ in fast.got] == list(range(1, 202))  # the other consumer got all
    seqs = [s for s, _ in slow.got]
    missing = sorted(set(range(1, 202)) - set(seqs))
    assert sum(c for _, c in slow.gaps) == len(missing) == rs.dropped
    assert seqs == sorted(seqs) and seqs[-1] == 201  # it recovers and keeps up again


def test_a_failing_consumer_is_marked_failed_and_reported_by_the_plant():
    bad, good = Collect(fail_on=3), Collect()
    stream = EventStream()
    stream.attach(bad, "parquet")
    stream.attach(good, "other")
    ref = Ordered()
    plant = TickerPlant([stream, ref])
    for i in range(5):
        plant.feed_event("error", detail=f"e{i}")
        plant.commit()
    wait_until(lambda: bool(stream._failures))
    plant.commit()  # the plant thread picks the failure up and emits its feed event
    plant.close()
    assert plant.sink_failures == {"parquet": "[Errno 28] No space left on device"}
    assert plant.stats.sink_failures == 1
    fe = [e for e in ref.all if isinstance(e, FeedEvent) and e.kind == "sink_failed"]
    assert len(fe) == 1 and fe[0].detail.startswith("parquet: [Errno 28]")
    assert [e for _, e in good.got] == ref.all  # the other consumer saw everything, the marker too
    assert bad.closed


def test_sink_consumer_flushes_by_age():
    class Sink(InMemoryPublisher):
        flushes = 0

        def flush(self):
            self.flushes += 1

    s = Sink()
    c = SinkConsumer(s, flush_s=0.0)
    c.on_batch(1, [FeedEvent(1, "connect", None, None, None, None)])
    c.on_idle()
    assert s.flushes == 2 and len(s.events["feed_events"]) == 1
    c2 = SinkConsumer(Sink(), flush_s=3600)
    c2.on_idle()
    assert c2.sink.flushes == 0


def test_codec_round_trips_every_event_of_a_real_replay():
    ref = Ordered()
    plant = TickerPlant([ref])
    feed(COCKPIT, plant)
    plant.process(b'{"type":"trade","msg":{"market_ticker":"\xff"}}')  # bytes quarantine
    assert codec.decode_events(codec.encode_events(ref.all)) == ref.all
    with pytest.raises(codec.CodecError):
        codec.from_array([99, 1])
    with pytest.raises(codec.CodecError):
        codec.decode_events(b"\xc1")
