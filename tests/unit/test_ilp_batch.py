"""The columnar ILP path sends the same rows as the row path it replaced (issue 11 acceptance:
"rows written to the ILP endpoint are byte-for-byte the same values as before").

Two oracles: digests of what the loopback endpoint received when the bundled recordings were
replayed through the *previous* writer (``Sender.row()`` per row; computed once at commit
85d5612, before the change), and the row mapping that writer used
(:func:`~kalshi_platform.storage.ilp_rows.add_ilp_row`), line for line on a larger synthetic
replay. Lines are compared as parsed records (tests/ilp_lines.py), so order within a request
does not matter but every value's text does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from conftest import BUNDLED, COCKPIT
from ilp_lines import digest, parse_line, records
from kalshi_platform.bench.ilp_endpoint import ILPEndpoint
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.ilp_batch import IlpBatch
from kalshi_platform.storage.ilp_rows import add_ilp_row
from kalshi_platform.storage.questdb_rdb import QuestDBWriter
from kalshi_platform.storage.schema import TABLE_FOR_EVENT
from kalshi_platform.ticker_plant.events import FeedEvent, FillEvent
from kalshi_platform.ticker_plant.plant import TickerPlant

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb.ingress import Buffer

#: (rows, sha256 of the sorted parsed lines) the previous writer sent for each recording
GOLDEN = {
    "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl":
        (1404, "2197b769c83d46f052a60dc3ea488fe92d2fe7ffbba7af6068f38e7c0ce3d7f3"),
    "ssmd_prod_ticker_2026-02-12.jsonl":
        (10, "58077c2066463bd7fd4e2716ff088822b79f8e5f6dbc9e6f9f50072ea780d11d"),
    "ssmd_prod_trade_2026-02-12.jsonl":
        (11, "ada06094805736a3c323320056886b3a37943e1a5f4688873925763b376896a8"),
    "ssmd_prod_embedded_frames.jsonl":
        (4, "dc973e2953b9d39a65ad82414b220f710d92279ce8a0cc0c8040dd2babbd8518"),
}
#: the cockpit recording with its 72nd frame dropped (a gap: stale books, BBO rows with null
#: prices, a feed event) plus the twelve fills of :func:`_fills` (nulls in every column kind)
GOLDEN_GAP_AND_FILLS = (1407, "005ad4b79ee1fbb69dfdf565a145ccb90aaeca6135e5387d17b4dae51fafffb9")


def _fills() -> list[FillEvent]:
    return [FillEvent("KXT-1", 1_786_085_188_416_123_456 + i * 1_000_001,
                      f"0721192a-a359-a8e8-a4b7-6c27ff12f6{i:02d}",
                      f"1721192a-a359-a8e8-a4b7-6c27ff12f6{i:02d}", ("yes", "no", None)[i % 3],
                      ("buy", "sell", None)[i % 3], (True, False, None)[i % 3], 10_000 * (i + 1),
                      100 * i + 1, None if i % 2 else 1234 * i, None if i % 4 == 3 else -50 * i,
                      None if i % 5 == 4 else 1_786_085_188_500_000_000 + i) for i in range(12)]


def _replay(rec: Path, spool: Path, extra=()) -> tuple[list[bytes], QuestDBWriter]:
    with ILPEndpoint() as ep:
        w = QuestDBWriter(ep.conf, spool_dir=spool, batch_rows=500)
        p = TickerPlant([w])
        feed(rec, p)
        for e in extra:
            w.publish(e)
        p.close()
        return list(ep.lines), w


@pytest.mark.parametrize("rec", BUNDLED, ids=lambda p: p.name.split("_2026")[0])
def test_replay_sends_what_the_row_writer_sent(tmp_path, rec):
    lines, w = _replay(rec, tmp_path / "spool")
    assert digest(lines) == GOLDEN[rec.name]
    assert w.stats.rows_written == len(lines) and w.stats.rows_quarantined == 0


def test_gap_nulls_and_fills_send_what_the_row_writer_sent(tmp_path):
    frames = [ln for ln in COCKPIT.read_bytes().split(b"\n") if ln]
    del frames[72]
    rec = tmp_path / "gap.jsonl"
    rec.write_bytes(b"\n".join(frames) + b"\n")
    lines, _ = _replay(rec, tmp_path / "spool", _fills())
    assert any(b"state=stale" in ln and b"yes_bid=" not in ln for ln in lines)  # null prices
    assert digest(lines) == GOLDEN_GAP_AND_FILLS


def _events(rec: Path) -> list:
    out: list = []

    class _C:
        def publish(self, e):
            if type(e) in TABLE_FOR_EVENT:
                out.append(e)

        def flush(self):
            pass

        def close(self):
            pass

    p = TickerPlant([_C()])
    feed(rec, p)
    p.close()
    return out


@pytest.fixture(scope="module")
def synth_events(tmp_path_factory) -> list:
    from kalshi_platform.bench.synth import write_synthetic_recording

    rec = tmp_path_factory.mktemp("synth") / "synth.jsonl"
    write_synthetic_recording(COCKPIT, rec, 6_000, market_copies=3, resync_every=2_000)
    return _events(rec)


def test_columns_serialize_line_for_line_as_the_row_mapping(synth_events):
    row_buf, col_buf = Buffer(protocol_version=1), Buffer(protocol_version=1)
    for e in synth_events:
        t = TABLE_FOR_EVENT[type(e)]
        for r in t.rows(e):
            add_ilp_row(row_buf, t.name, r)
    batch, bad = IlpBatch.from_events(synth_events)
    assert not bad and not batch.write_to(col_buf)
    row_lines = bytes(row_buf).split(b"\n")
    col_lines = bytes(col_buf).split(b"\n")
    assert len(row_lines) > 6_000
    assert sorted(row_lines) == sorted(col_lines)  # the same bytes, line for line
    assert records(row_lines) == records(col_lines)


def test_spool_rows_round_trip_and_split(synth_events):
    batch, _ = IlpBatch.from_events(synth_events)
    rows = [(TABLE_FOR_EVENT[type(e)].name, r) for e in synth_events
            for r in TABLE_FOR_EVENT[type(e)].rows(e)]
    assert sorted(batch.to_rows(), key=repr) == sorted(rows, key=repr)
    again, bad = IlpBatch.from_rows(batch.to_rows())
    assert not bad and again.to_rows() == batch.to_rows()
    a, b = batch.split()
    assert len(a) == len(batch) // 2 and a.to_rows() + b.to_rows() == batch.to_rows()


def test_an_event_the_columns_cannot_hold_is_rejected_alone():
    def gap(i: int, got: int) -> FeedEvent:
        return FeedEvent(1_700_000_000_000_000_000 + i, "gap", 1, i, got, f"g{i}")

    batch, bad = IlpBatch.from_events([gap(1, 1), gap(2, 2 ** 63), gap(3, 3)])  # > LONG max
    assert len(batch) == 2 and [(r.table, r.rows) for r in bad] == [("feed_events", 1)]
    assert bad[0].record()["got_seq"] == 2 ** 63 and "int" in bad[0].error.lower()
    buf = Buffer(protocol_version=1)
    assert batch.write_to(buf) == []
    assert [dict(parse_line(ln)[2])["got_seq"] for ln in bytes(buf).split(b"\n") if ln] \
        == ["1i", "3i"]


def test_null_booleans_are_left_out_as_the_row_path_does():
    fills = _fills()
    buf, ref = Buffer(protocol_version=1), Buffer(protocol_version=1)
    batch, _ = IlpBatch.from_events(fills)
    assert batch.write_to(buf) == []
    for e in fills:
        for r in TABLE_FOR_EVENT[FillEvent].rows(e):
            add_ilp_row(ref, "fills", r)
    assert records(bytes(buf).split(b"\n")) == records(bytes(ref).split(b"\n"))
    assert sum(b"is_taker" not in ln for ln in bytes(buf).split(b"\n") if ln) == 4
