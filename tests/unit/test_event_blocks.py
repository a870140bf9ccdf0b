"""Event blocks (ticker_plant/blocks.py, ingestion/delta_block.h): the compiled delta path's
events handed to the event stream as one columnar block per chunk instead of one tuple each.

The oracle is the per-event path: the same recording through a plant whose fan-out has two
publishers (so no block is made) gives the event sequence; the block path must give the same
events, in the same order, with the same stream seqs, to a consumer that materializes them,
to one that takes the blocks, through the spool, and in the Parquet store's tables.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import BUNDLED, COCKPIT, book_capture_params, write_modified

from kalshi_platform.bench.synth import write_synthetic_recording
from kalshi_platform.ingestion import _delta
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage import _columns
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.storage.schema import TABLES
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.stream.sinks import SinkConsumer
from kalshi_platform.ticker_plant.blocks import (
    K_BBO,
    K_DELTA,
    BlockBuilder,
    EventBlock,
    block_events,
    materialize,
)
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent
from kalshi_platform.ticker_plant.order_book import LIVE
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher


class _Keep:
    """A stream consumer keeping every batch as delivered."""

    def __init__(self, takes_blocks: bool = False) -> None:
        self.takes_blocks = takes_blocks
        self.batches: list[tuple[int, list]] = []
        self.closed = False

    def on_batch(self, start, events):
        self.batches.append((start, list(events)))

    def on_gap(self, first, count):  # pragma: no cover - spill never gaps
        raise AssertionError(f"gap {first} {count}")

    def on_idle(self):
        pass

    def close(self):
        self.closed = True


def _events_per_event_path(path) -> list:
    """The oracle: every event the plant emits, one publish each (two publishers: no blocks)."""
    keep = InMemoryPublisher(keep=False)
    got: list = []
    keep.subscribe(got.append)
    plant = TickerPlant([keep, InMemoryPublisher(keep=False)])
    assert plant._blocks is None
    feed(path, plant)
    plant.close()
    return got


def _kept(rec) -> _Keep:
    """``rec`` through a plant whose only publisher is an event stream: what a consumer
    that takes blocks was delivered."""
    stream = EventStream()
    keep = _Keep(takes_blocks=True)
    stream.attach(keep, "keep")
    plant = TickerPlant([stream])
    feed(rec, plant)
    plant.close()
    return keep


def _flat(batches: list[tuple[int, list]]) -> tuple[list, list[int]]:
    """(events, seqs) of delivered batches, blocks materialized."""
    events, seqs = [], []
    for start, items in batches:
        evs = materialize(items)
        events += evs
        seqs += range(start, start + len(evs))
    return events, seqs


def _synthetic(tmp_path):
    rec = tmp_path / "synthetic.jsonl"
    write_synthetic_recording(COCKPIT, rec, 20_000, market_copies=3)
    return rec


def _gapped(tmp_path):
    """The bundled capture with delta line 100 dropped: the plant takes deltas compiled up to
    the gap, then its own events (the gap, books leaving live, deltas of stale books) follow
    in the same chunk, after the block's."""
    return write_modified(tmp_path, COCKPIT, "gapped.jsonl", drop={100})


def _recordings(tmp_path):
    return list(BUNDLED) + [_synthetic(tmp_path), _gapped(tmp_path)]


def test_the_stream_of_a_block_replay_is_the_per_event_stream(tmp_path):
    """Both kinds of consumer see exactly the oracle's events, seqs 1..N contiguous."""
    for rec in _recordings(tmp_path):
        want = _events_per_event_path(rec)
        stream = EventStream()
        plain, blocky = _Keep(), _Keep(takes_blocks=True)
        stream.attach(plain, "plain")
        stream.attach(blocky, "blocky")
        plant = TickerPlant([stream])
        feed(rec, plant)
        plant.close()
        for c in (plain, blocky):
            got, seqs = _flat(c.batches)
            assert got == want, rec.name
            assert [type(e) for e in got] == [type(e) for e in want]
            assert seqs == list(range(1, len(want) + 1))
        assert stream.seq == len(want)
        assert not any(type(i) is EventBlock for _, b in plain.batches for i in b)
        items = [i for _, b in blocky.batches for i in b]
        if rec.name.startswith("gapped"):  # a block, then the plant's own events after it
            at = next(k for k, i in enumerate(items) if type(i) is EventBlock)
            assert any(type(i) is not EventBlock for i in items[at + 1:])
        if rec.name.startswith(("synthetic", "gapped")):
            assert any(type(i) is EventBlock for i in items)


@pytest.mark.parametrize("rec", book_capture_params())
def test_block_stream_equals_per_event_stream_on_real_captures(rec):
    want = _events_per_event_path(rec)
    got, seqs = _flat(_kept(rec).batches)
    assert got == want
    assert seqs == list(range(1, len(want) + 1))


def test_spilled_blocks_come_back_as_their_events_in_order(tmp_path):
    """A consumer over its bound spills: blocks are written to the spool as events."""
    rec = _synthetic(tmp_path)
    want = _events_per_event_path(rec)
    stream = EventStream()
    keep = _Keep(takes_blocks=True)
    runner = stream.attach(keep, "slow", max_events=500, overflow="spill",
                           spill_dir=tmp_path / "spill", wake_events=10**9)
    plant = TickerPlant([stream])
    feed(rec, plant)
    plant.close()
    assert runner.spilled > 0
    got, seqs = _flat(keep.batches)
    assert got == want
    assert seqs == list(range(1, len(want) + 1))


def _store_tables(root) -> dict[str, pa.Table]:
    return {name: read_table(root, name) for name in TABLES}


@pytest.mark.parametrize("batch_rows", [250_000, 1_000, 777])
def test_parquet_store_writes_the_same_tables_and_files_from_blocks(tmp_path, batch_rows):
    """The store fed blocks writes the values, files and rows per file that it writes fed
    every event one by one (a batch limit inside a block splits it where publish would)."""
    rec = _synthetic(tmp_path)
    a = ParquetStore(tmp_path / "a", "w", batch_rows=batch_rows, fsync=False)
    plant = TickerPlant([a, InMemoryPublisher(keep=False)])  # per event
    feed(rec, plant)
    plant.close()
    b = ParquetStore(tmp_path / "b", "w", batch_rows=batch_rows, fsync=False)
    stream = EventStream()
    stream.attach(SinkConsumer(b), "parquet")
    plant = TickerPlant([stream])
    feed(rec, plant)
    plant.close()
    assert dict(b.rows_written) == dict(a.rows_written)
    assert b.files_written == a.files_written
    for name, ta in _store_tables(tmp_path / "a").items():
        assert _store_tables(tmp_path / "b")[name].equals(ta), name
    # each table's files in name order hold the same rows (the numbers interleave across
    # tables differently: a block's deltas are taken before its BBO rows)
    assert _files_by_table(tmp_path / "a") == _files_by_table(tmp_path / "b")


def _files_by_table(root) -> dict[str, list[tuple[str, int]]]:
    """Per table, its files in name order as (date partition, rows)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for f in sorted(root.rglob("*.parquet"), key=lambda p: p.name):
        table = f.relative_to(root).parts[0]
        out.setdefault(table, []).append((f.parent.name, pq.read_metadata(f).num_rows))
    return out


def _one_block() -> EventBlock:
    """The first block feed_lines made of the bundled capture's deltas."""
    blocks = [i for _, b in _kept(COCKPIT).batches for i in b if type(i) is EventBlock]
    assert blocks, "the bundled capture's deltas came as no block"
    return blocks[0]


def test_block_events_filter_by_kind_and_parts_match_counts():
    block = _one_block()
    every = block_events(block)
    assert len(every) == len(block) == block.count(K_DELTA) + block.count(K_BBO)
    deltas = block_events(block, K_DELTA)
    bbos = block_events(block, K_BBO)
    assert deltas == [e for e in every if type(e) is DeltaEvent]
    assert bbos == [e for e in every if type(e) is BBO]
    assert all(e.state == LIVE for e in bbos)
    n, rec, soff, sdata = block.part(K_DELTA)
    assert n == len(deltas) and len(rec) == n * 9 * 8
    with pytest.raises(ValueError):
        block.part(2)


def test_read_records_gives_the_columns_read_gives_for_the_same_events():
    block = _one_block()
    for kind, ev_type in ((K_DELTA, DeltaEvent), (K_BBO, BBO)):
        table = next(t for t in TABLES.values() if t.event is ev_type)
        n = block.count(kind)
        events = block_events(block, kind)
        whole = table.read_records([block.part(kind) + (0, n)]).data
        assert whole.equals(table.read_events(events).data)
        split = table.read_records([block.part(kind) + (0, n // 2),
                                    block.part(kind) + (n // 2, n)]).data
        assert split.equals(whole)
        assert table.read_records([block.part(kind) + (1, 1)]).data.num_rows == 0


def test_read_records_refuses_what_does_not_fit():
    block = _one_block()
    table = next(t for t in TABLES.values() if t.event is DeltaEvent)
    n, rec, soff, sdata = block.part(K_DELTA)
    ops = table.columnar._ops
    with pytest.raises(ValueError, match="sizes"):
        _columns.read_records([(n + 1, rec, soff, sdata, 0, n)], 8, ops)
    with pytest.raises(ValueError, match="sizes"):
        _columns.read_records([(n, rec, soff, sdata, 0, n + 1)], 8, ops)
    bad = bytearray(rec)
    bad[0:8] = (10**6).to_bytes(8, "little")  # row 0's ticker: past the string table
    with pytest.raises(ValueError, match="string index"):
        _columns.read_records([(n, bytes(bad), soff, sdata, 0, n)], 8, ops)
    nulled = bytearray(rec)
    nulled[8 * 8:9 * 8] = (1 << 1).to_bytes(8, "little")  # row 0: a null ts (strict)
    with pytest.raises(ValueError, match="null"):
        _columns.read_records([(n, bytes(nulled), soff, sdata, 0, n)], 8, ops)
    with pytest.raises(ValueError, match="offsets"):
        _columns.read_records([(n, rec, (10**6).to_bytes(4, "little") * (len(soff) // 4),
                                sdata, 0, n)], 8, ops)


def test_feed_lines_takes_a_builder_only_without_emit():
    chunk = COCKPIT.read_bytes()
    with pytest.raises(TypeError):
        _delta.feed_lines(chunk, 0, len(chunk), 1, {}, {}, {}, LIVE, 0, False, print,
                          print, DeltaEvent, BBO, BlockBuilder(LIVE))
    with pytest.raises(TypeError):
        _delta.feed_lines(chunk, 0, len(chunk), 1, {}, {}, {}, LIVE, 0, False, None,
                          print, DeltaEvent, BBO, object())
    b = BlockBuilder(LIVE)
    assert len(b) == 0 and len(b.take()) == 0


def test_a_slice_of_a_block_holds_those_events():
    block = _one_block()
    every = block_events(block)
    n = len(block)
    for lo, hi in ((0, n), (0, 0), (n, n), (1, n - 1), (n // 3, 2 * n // 3), (0, 1)):
        part = block.slice(lo, hi)
        assert len(part) == hi - lo
        assert block_events(part) == every[lo:hi]
        assert part.count(K_DELTA) == sum(type(e) is DeltaEvent for e in every[lo:hi])
        assert materialize([part]) == every[lo:hi]
    for lo, hi in ((-1, 2), (2, 1), (0, n + 1)):
        with pytest.raises(ValueError):
            block.slice(lo, hi)


def test_only_the_event_stream_takes_blocks_and_a_raising_one_is_failed(tmp_path):
    """A bare sink as the only publisher gets events (its errors are the fan-out's to
    isolate); a stream whose publish_block raises is marked failed, the replay goes on."""
    assert TickerPlant([ParquetStore(tmp_path / "s", "w", fsync=False)])._blocks is None

    class Broken(EventStream):
        def publish_block(self, block):
            raise OSError(28, "No space left on device")

    plant = TickerPlant([Broken()])
    assert plant._blocks is not None
    feed(_gapped(tmp_path), plant)
    plant.close()
    assert "stream" in plant.sink_failures and "No space" in plant.sink_failures["stream"]
    assert plant.publishers == ()
    assert plant.stats.deltas > 200  # every frame was still taken


def test_block_calls_refuse_bad_arguments():
    block = _one_block()
    with pytest.raises(ValueError):
        block.events(DeltaEvent, BBO, 2)
    with pytest.raises(TypeError):
        block.events(BBO, DeltaEvent)  # widths swapped
    with pytest.raises(ValueError, match="sizes"):  # n * 64 * 8 would wrap around
        _columns.read_records([(2**55 + 1, bytes(512), b"\0" * 4, b"", 0, 1000)], 63,
                              (("q", 0, 0, False, 1),))
    with pytest.raises(TypeError):
        BlockBuilder(type("S", (str,), {})("live"))
