"""Sink isolation (issue 9 §2): a failing sink is marked failed; the books and the other
sinks go on; a Parquet store that hits a full disk still writes its other tables.

The disk-full case uses a ParquetStore subclass whose file write for one table raises
``OSError(ENOSPC)``, as a full filesystem would, on the real bundled recording."""

from __future__ import annotations

import errno
import json

from conftest import COCKPIT
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.parquet_store import ParquetStore, read_table
from kalshi_platform.ticker_plant.events import DeltaEvent
from kalshi_platform.ticker_plant.fanout import FanOut
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher


class DiskFullFor(ParquetStore):
    """A store whose file writes for ``table`` fail with ENOSPC."""

    def __init__(self, *a, table: str, **kw) -> None:
        super().__init__(*a, **kw)
        self.full_table = table

    def _write_file(self, t, date, rows):
        if t.name == self.full_table:
            raise OSError(errno.ENOSPC, "No space left on device")
        super()._write_file(t, date, rows)


def test_disk_full_on_one_table_leaves_no_other_table_unwritten(tmp_path):
    mem = InMemoryPublisher()
    store = DiskFullFor(tmp_path, "w", table="orderbook_deltas", batch_rows=50, fsync=False)
    plant = TickerPlant([store, mem])
    feed(COCKPIT, plant)
    plant.close()
    assert plant.sink_failures == {"parquet": "[Errno 28] No space left on device"}
    assert plant.stats.quarantined == 0 and plant.stats.sink_failures == 1
    # the in-memory sink saw everything, including the sink_failed marker
    rows = plant.stats.table_rows()
    assert len(mem.events["orderbook_deltas"]) == rows["orderbook_deltas"]
    assert [e.kind for e in mem.events["feed_events"]] == ["sink_failed"]
    # the store wrote every other table it had taken before it failed, at close
    assert read_table(tmp_path, "orderbook_deltas").num_rows == 0
    assert read_table(tmp_path, "orderbook_snapshots").num_rows == rows["orderbook_snapshots"]
    assert read_table(tmp_path, "bbo").num_rows > 0
    # and the books are exactly what a run without the failing sink builds
    clean = TickerPlant([])
    feed(COCKPIT, clean)
    assert plant.markets_summary() == clean.markets_summary()


def test_value_the_sink_type_cannot_hold_fails_only_that_sink(tmp_path):
    """A sid beyond int64 cannot go into the ``orderbook_deltas.sid`` LONG column: the store
    raises, the fan-out marks it failed and hands the event on to the others."""
    store = ParquetStore(tmp_path, "w", batch_rows=1, fsync=False)
    mem = InMemoryPublisher()
    failures = []
    out = FanOut([store, mem], on_failure=lambda name, text: failures.append((name, text)))
    ev = DeltaEvent("KX-A", 1_786_085_189_148_000_000, 2**64, 1, "yes", 400_000, 100, None)
    out.publish(ev)
    assert [name for name, _ in failures] == ["parquet"] and "int" in failures[0][1].lower()
    assert mem.events["orderbook_deltas"] == [ev] and out.active == (mem,)
    out.publish(ev)  # the failed sink gets nothing more
    assert len(failures) == 1 and len(mem.events["orderbook_deltas"]) == 2
    out.close()  # closes the failed store too, never raises


def test_flush_and_close_errors_are_isolated(tmp_path):
    class BadFlush(InMemoryPublisher):
        sink_name = "badflush"

        def flush(self):
            raise OSError(errno.EIO, "I/O error")

    bad, good = BadFlush(), InMemoryPublisher()
    plant = TickerPlant([bad, good])
    plant.process(json.dumps({"type": "ok", "id": 1, "sid": 1, "seq": 1}))
    plant.flush()
    plant.close()
    assert plant.sink_failures == {"badflush": "[Errno 5] I/O error"}
    assert good.closed and bad.closed
