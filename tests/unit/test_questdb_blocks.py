"""The QuestDB writer fed event blocks (``QuestDBWriter.publish_block``: a replay's deltas and
BBO rows in columnar form, read into Arrow columns by ``Table.read_records`` on the sender
thread) sends what it sends fed every event one by one.

The oracle is the per-event path: the same recording through a plant with two publishers (the
writer and an in-memory one, so the plant makes no block) into a writer with the same
settings. The block path is the ``replay`` command's: the plant's only publisher is the event
stream, whose storage consumer hands the writer its blocks. Requests are compared byte for
byte, request by request; where the split into requests depends on timing (spilling while
QuestDB is away), each table's lines are compared in order.
"""

from __future__ import annotations

import json
import random
import warnings
from collections import deque

import pytest
from conftest import COCKPIT

from kalshi_platform.bench.synth import write_synthetic_recording
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage import ilp_batch, ilp_queue
from kalshi_platform.storage.questdb_rdb import QuestDBWriter
from kalshi_platform.storage.schema import Table
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.stream.sinks import SinkConsumer
from kalshi_platform.ticker_plant.blocks import EventBlock, block_events, materialize
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent, SnapshotEvent
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Buffer


class Down(Exception):
    """The fake QuestDB is away (a transient error: the writer keeps the batch and retries)."""


class FakeSender:
    """Records each flushed request's ILP bytes; while ``down``, connecting fails
    (:class:`Down`, before the batch is serialized: the writer's sender is in its network
    call only briefly, so the plant's publishes spill instead of finding it busy)."""

    def __init__(self, down: bool = False) -> None:
        self.requests: list[bytes] = []
        self.down = down

    def establish(self) -> None:
        if self.down:
            raise Down("connection refused")

    def new_buffer(self) -> Buffer:
        return Buffer(protocol_version=1)

    def flush(self, buf) -> None:
        if self.down:
            raise Down("connection reset")
        self.requests.append(bytes(buf))

    def close(self) -> None:
        pass

    def lines_by_table(self) -> dict[bytes, list[bytes]]:
        out: dict[bytes, list[bytes]] = {}
        for req in self.requests:
            for ln in req.split(b"\n"):
                if ln:
                    out.setdefault(ln.split(b",", 1)[0], []).append(ln)
        return out


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rec = tmp_path_factory.mktemp("rec") / "synthetic.jsonl"
    write_synthetic_recording(COCKPIT, rec, 20_000, market_copies=3)
    return rec


def _writer(tmp_path, name, sender, **kw) -> QuestDBWriter:
    kw.setdefault("queue_rows", 10_000_000)
    kw.setdefault("flush_interval_s", 3600.0)  # only full batches, then close: deterministic
    kw.setdefault("close_timeout_s", 30.0)
    return QuestDBWriter("http::addr=127.0.0.1:1;", spool_dir=tmp_path / name,
                         sender_factory=lambda conf: sender, **kw)


def _per_event(rec, w: QuestDBWriter) -> None:
    """The oracle: ``w`` fed every event by ``publish`` (two publishers: no blocks)."""
    plant = TickerPlant([w, InMemoryPublisher(keep=False)])
    assert plant._blocks is None
    feed(rec, plant)
    plant.close()
    assert w._closed


class _CountBlocks:
    """A sink in front of the writer for the stream's consumer: counts the blocks handed
    over; ``before_close`` runs before the writer's close (QuestDB coming back)."""

    def __init__(self, w: QuestDBWriter, before_close=None) -> None:
        self.w = w
        self.blocks = 0
        self.before_close = before_close
        self.publish, self.publish_many, self.flush = w.publish, w.publish_many, w.flush

    def publish_block(self, block) -> None:
        assert type(block) is EventBlock
        self.blocks += 1
        self.w.publish_block(block)

    def close(self) -> None:
        if self.before_close is not None:
            self.before_close()
        self.w.close()


def _by_blocks(rec, w: QuestDBWriter, before_close=None) -> int:
    """``w`` fed as the replay command feeds it (event stream, blocks); returns the blocks."""
    sink = _CountBlocks(w, before_close)
    stream = EventStream()
    stream.attach(SinkConsumer(sink), "questdb")
    plant = TickerPlant([stream])
    feed(rec, plant)
    plant.close()
    assert w._closed and not plant.sink_failures
    return sink.blocks


@pytest.mark.parametrize("batch_rows", [75_000, 1_000, 777])
def test_blocks_send_the_per_event_requests(tmp_path, recording, batch_rows):
    one, blk = FakeSender(), FakeSender()
    a = _writer(tmp_path, "a", one, batch_rows=batch_rows)
    _per_event(recording, a)
    b = _writer(tmp_path, "b", blk, batch_rows=batch_rows)
    assert _by_blocks(recording, b) > 0
    assert b.stats.rows_published == a.stats.rows_published
    assert b.stats.rows_written == a.stats.rows_written == a.stats.rows_published
    assert len(blk.requests) == len(one.requests)
    for i, (x, y) in enumerate(zip(blk.requests, one.requests)):
        assert x == y, f"request {i} of {len(one.requests)}"
    assert b.spool.depth_rows == 0 and b.stats.rows_spooled == 0


def test_fallback_when_read_records_refuses_sends_the_same(tmp_path, recording, monkeypatch):
    """The deltas' records refused (as ``read_records`` refuses what it cannot convert): the
    blocks' deltas go through the events' path; the requests are still the oracle's."""
    one, blk = FakeSender(), FakeSender()
    a = _writer(tmp_path, "a", one, batch_rows=1_000)
    _per_event(recording, a)
    real = Table.read_records
    refused = []

    def read_records(self, parts):
        if self.event is DeltaEvent:
            refused.append(len(parts))
            raise ValueError("event block: string index out of range")
        return real(self, parts)

    monkeypatch.setattr(Table, "read_records", read_records)
    b = _writer(tmp_path, "b", blk, batch_rows=1_000)
    assert _by_blocks(recording, b) > 0
    assert refused
    assert blk.requests == one.requests
    assert b.stats.rows_quarantined == a.stats.rows_quarantined == 0


def test_fallback_rows_the_events_reject_are_quarantined(tmp_path, recording, monkeypatch):
    """A refused block whose events the row path cannot convert either (here one delta with
    a null price): that row is quarantined as the events' path quarantines it, the rest is
    sent, in the requests a writer fed those events by ``publish_many`` sends."""
    blocks = _blocks_of(recording)[:6]
    b0 = blocks[0]
    bad_at = b0.count(0) // 2
    orig_events = EventBlock.events

    def events_with_a_bad_price(blk, kind=-1):
        return [ev._replace(price=None) if kind == 0 and blk is b0 and i == bad_at else ev
                for i, ev in enumerate(orig_events(blk, DeltaEvent, BBO, kind))]

    events = []
    for blk in blocks:
        evs = block_events(blk)
        if blk is b0:
            at = [i for i, e in enumerate(evs) if type(e) is DeltaEvent][bad_at]
            evs[at] = evs[at]._replace(price=None)
        events += evs
    one, sent = FakeSender(), FakeSender()
    a = _writer(tmp_path, "a", one, batch_rows=1_000)
    a.publish_many(events)
    a.close()

    def refuse(self, parts):
        raise ValueError("refused")

    monkeypatch.setattr(Table, "read_records", refuse)
    monkeypatch.setattr(ilp_batch, "block_events", events_with_a_bad_price)
    b = _writer(tmp_path, "b", sent, batch_rows=1_000)
    for blk in blocks:
        b.publish_block(blk)
    b.close()
    assert b.stats.rows_quarantined == a.stats.rows_quarantined == 1
    assert b.stats.rows_written == a.stats.rows_written == len(events) - 1
    assert sent.requests == one.requests
    assert _quarantined(b) == _quarantined(a) and len(_quarantined(b)) == 1


def _quarantined(w: QuestDBWriter) -> list[dict]:
    out = []
    for ln in w.quarantine_path.read_text().splitlines():
        rec = json.loads(ln)
        rec.pop("quarantined_at_ns")
        out.append(rec)
    return out


def test_spilled_blocks_arrive_in_order_once(tmp_path, recording):
    """QuestDB away during the replay with a small queue: blocks spill to the spool (cut at
    the spool record's rows); when it returns, every row arrives, in order, once."""
    one, blk = FakeSender(), FakeSender(down=True)
    a = _writer(tmp_path, "a", one, batch_rows=500)
    _per_event(recording, a)
    kw = dict(batch_rows=500, queue_rows=1_000, retry_base_s=0.001, retry_cap_s=0.01)
    b = _writer(tmp_path, "b", blk, **kw)

    def back():
        assert b.stats.rows_spooled > 0
        blk.down = False

    assert _by_blocks(recording, b, before_close=back) > 0
    assert b.stats.rows_written == a.stats.rows_written
    assert b.spool.depth_rows == 0
    assert blk.lines_by_table() == one.lines_by_table()


def test_closed_while_away_spools_every_row_and_the_next_writer_sends_them(tmp_path, recording):
    one, down = FakeSender(), FakeSender(down=True)
    a = _writer(tmp_path, "a", one, batch_rows=1_000)
    _per_event(recording, a)
    b = _writer(tmp_path, "b", down, batch_rows=1_000, queue_rows=5_000, retry_base_s=0.001,
                retry_cap_s=0.01, close_timeout_s=0.2)
    assert _by_blocks(recording, b) > 0
    assert b.stats.rows_written == 0
    assert b.spool.depth_rows == b.stats.rows_published == a.stats.rows_published
    up = FakeSender()
    c = _writer(tmp_path, "b", up, batch_rows=1_000)  # same spool directory
    c.close()
    assert c.stats.rows_written == a.stats.rows_published
    assert up.lines_by_table() == one.lines_by_table()


# -- the queue-slicing helpers against a per-event walk ---------------------------------------

def _blocks_of(rec) -> list[EventBlock]:
    class Keep:
        takes_blocks = True

        def __init__(self):
            self.items = []

        def on_batch(self, start, events):
            self.items += events

        def on_gap(self, first, count):  # pragma: no cover
            raise AssertionError

        def on_idle(self):
            pass

        def close(self):
            pass

    keep = Keep()
    stream = EventStream()
    stream.attach(keep, "keep")
    plant = TickerPlant([stream])
    feed(rec, plant)
    plant.close()
    return [i for i in keep.items if type(i) is EventBlock]


def _random_queue(rnd, blocks) -> deque:
    q: deque = deque()
    for _ in range(rnd.randrange(1, 8)):
        r = rnd.random()
        if r < 0.5:
            b = rnd.choice(blocks)
            lo = rnd.randrange(len(b))
            q.append(b.slice(lo, rnd.randrange(lo + 1, len(b) + 1)))
        elif r < 0.75:
            q.append(SnapshotEvent("A", 1, 1, 1, [(1, 1)] * rnd.randrange(0, 4), [], None))
        else:
            q.append(DeltaEvent("A", 1, 1, 1, "yes", 1, 1, None))
    return q


def _walk(items) -> list[tuple]:
    """Per table row: (event, level) in stream order, blocks materialized."""
    out = []
    for e in materialize(items):
        out += [(e, k) for k in range(ilp_queue.rows_of(e))]
    return out


def test_take_blocks_and_spill_take_cut_where_the_events_would(recording):
    blocks = _blocks_of(recording)
    rnd = random.Random(7)
    for _ in range(300):
        q = _random_queue(rnd, blocks)
        before = list(q)
        whole = _walk(before)
        limit = rnd.randrange(1, len(whole) + 3)
        # spill_take: a copy, q untouched; rows reach `want` at the event a walk stops at
        items, rows, rest = ilp_queue.spill_take(q, limit)
        assert list(q) == before
        taken = _walk(items)
        assert rows == len(taken)
        k = 0
        for e in materialize(before):  # the per-event walk: events until rows >= limit
            if k >= limit:
                break
            k += ilp_queue.rows_of(e)
        assert rows == k
        after = before[len(items):] if rest is None else [rest] + before[len(items):]
        assert taken + _walk(after) == whole
        # take_blocks: pops the blocks at the head up to limit rows
        got, n = ilp_queue.take_blocks(q, limit)
        head = []
        for it in before:
            if type(it) is not EventBlock:
                break
            head.append(it)
        assert n == min(limit, sum(map(len, head)))
        assert len(_walk(got)) == n
        assert _walk(got) + _walk(list(q)) == whole
