"""QuestDB ILP writer: row mapping (the client's Buffer bytes), batching, spool, quarantine,
and the fault test against a loopback endpoint that accepts, refuses, then accepts."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest

from kalshi_platform.bench.ilp_endpoint import ILPEndpoint
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.storage.questdb_rdb import (
    QuestDBWriter,
    WriterError,
    add_ilp_row,
    ilp_conf,
    is_invalid_data_error,
)
from kalshi_platform.storage.schema import TABLES
from kalshi_platform.ticker_plant.events import FeedEvent, QuarantineRecord, TradeEvent
from kalshi_platform.ticker_plant.order_book import BBO
from kalshi_platform.ticker_plant.plant import TickerPlant

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import QuestDBError, QuestDBErrorCode
    from questdb.ingress import Buffer

DATA = Path(__file__).resolve().parents[2] / "data" / "recordings"
COCKPIT = DATA / "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
TRADES = DATA / "ssmd_prod_trade_2026-02-12.jsonl"


def _buf() -> Buffer:
    return Buffer(protocol_version=1)


# -- ILP row mapping ----------------------------------------------------------------------

def test_trade_row_bytes():
    ev = TradeEvent(ticker="KXBTC-26NOV20-B100", ts_ns=1_763_600_000_123_456_789,
                    trade_id="0721192a-a359-a8e8-a4b7-6c27ff12f630", yes_price=430_000,
                    no_price=570_000, count=1250, taker_side="yes",
                    recv_ns=1_763_600_000_200_000_000)
    (row,) = TABLES["trades"].rows(ev)
    b = _buf()
    add_ilp_row(b, "trades", row)
    assert bytes(b) == (
        b"trades,ticker=KXBTC-26NOV20-B100,taker_side=yes "
        b'trade_id="0721192a-a359-a8e8-a4b7-6c27ff12f630",yes_price=0.43,no_price=0.57,'
        b"count=12.5,recv_ts=1763600000200000t 1763600000123456000\n")


def test_bbo_row_nulls_are_omitted_and_longs_are_integers():
    bbo = BBO("MKT", 1_700_000_000_000_001_000, 430_000, 1000, None, None, 42, None)
    (row,) = TABLES["bbo"].rows(bbo)
    b = _buf()
    add_ilp_row(b, "bbo", row)
    assert bytes(b) == (b"bbo,ticker=MKT,state=live yes_bid=0.43,yes_bid_size=10.0,seq=42i "
                        b"1700000000000001000\n")


def test_feed_event_row_has_no_ticker_symbol():
    ev = FeedEvent(1_700_000_000_000_000_000, "gap", 3, 10, 12, "lost 2")
    (row,) = TABLES["feed_events"].rows(ev)
    b = _buf()
    add_ilp_row(b, "feed_events", row)
    assert bytes(b) == (b'feed_events,kind=gap sid=3i,expected_seq=10i,got_seq=12i,'
                        b'detail="lost 2" 1700000000000000000\n')


def test_every_table_maps_every_column_once():
    for name, t in TABLES.items():
        values = []
        for c in t.columns:
            values.append({"symbol": "s", "enum": "e", "varchar": "v", "uuid": "0721192a-a359-a8e8-a4b7-6c27ff12f630",
                           "timestamp": 1_700_000_000_000_000, "double": 1.5, "long": 7,
                           "boolean": True}[c.kind])
        b = _buf()
        add_ilp_row(b, name, tuple(values))
        line = bytes(b).decode()
        head, fields, ts = line.rstrip("\n").split(" ")
        names = [kv.split("=")[0] for kv in head.split(",")[1:]] + \
                [kv.split("=")[0] for kv in fields.split(",")]
        assert sorted(names + ["ts"]) == sorted(t.column_names), name
        assert ts == "1700000000000000000"


def test_conf_completion():
    c = ilp_conf("http::addr=h:9000")
    assert c.startswith("http::addr=h:9000;")
    assert "protocol_version=1;" in c and "retry_timeout=0;" in c and "auto_flush=off;" in c
    assert ilp_conf("http::addr=h:9000;protocol_version=2;").count("protocol_version") == 1
    assert "retry_timeout" not in ilp_conf("tcp::addr=h:9009;")
    with pytest.raises(WriterError):
        ilp_conf("addr=h:9000")


# -- a fake sender for batching tests -----------------------------------------------------

class FakeSender:
    """Records each flushed request's lines; fails while ``fail`` is set."""

    def __init__(self) -> None:
        self.requests: list[list[bytes]] = []
        self.fail: Exception | None = None
        self.flushed = threading.Event()

    def establish(self) -> None:
        pass

    def new_buffer(self):
        return _buf()

    def flush(self, buf) -> None:
        if self.fail is not None:
            raise self.fail
        self.requests.append([ln for ln in bytes(buf).split(b"\n") if ln])
        self.flushed.set()

    def close(self) -> None:
        pass


def _feed_events(n: int, start: int = 0) -> list[FeedEvent]:
    return [FeedEvent(1_700_000_000_000_000_000 + i * 1000, "resync", 1, i, i, f"r{i}")
            for i in range(start, start + n)]


def _writer(tmp_path, sender, **kw) -> QuestDBWriter:
    kw.setdefault("batch_rows", 10)
    kw.setdefault("flush_interval_s", 60.0)
    kw.setdefault("close_timeout_s", 2.0)
    return QuestDBWriter("http::addr=127.0.0.1:1;", spool_dir=tmp_path / "spool",
                         sender_factory=lambda conf: sender, **kw)


def test_batching_by_rows(tmp_path):
    s = FakeSender()
    w = _writer(tmp_path, s)
    for ev in _feed_events(25):
        w.publish(ev)
    w.close()
    assert [len(r) for r in s.requests] == [10, 10, 5]
    assert w.stats.rows_written == 25 and w.stats.flushes == 3


def test_batching_by_time(tmp_path):
    s = FakeSender()
    w = _writer(tmp_path, s, flush_interval_s=0.05)
    for ev in _feed_events(3):
        w.publish(ev)
    # no flush() call: the sender thread must send the partial batch on its timer
    assert s.flushed.wait(5.0), "partial batch was not sent on the flush interval"
    assert [len(r) for r in s.requests] == [3]
    w.close()


def test_rows_keep_publish_order_through_spool(tmp_path):
    s = FakeSender()
    s.fail = QuestDBError(QuestDBErrorCode.SocketError, "connection refused")
    w = _writer(tmp_path, s, queue_rows=20, retry_base_s=0.001, retry_cap_s=0.01)
    for ev in _feed_events(95):
        w.publish(ev)
    _wait_until(lambda: w.stats.flush_errors >= 1)  # the sender is retrying meanwhile
    # beyond the 20-row bound rows spill (not while a send is in progress; flush(0) spills)
    _wait_until(lambda: (w.flush(timeout_s=0.0), w.stats.rows_spooled >= 70)[1])
    s.fail = None
    assert w.flush(timeout_s=10.0)
    w.close()  # QuestDB is back: close drains the spool within its timeout
    sent = [ln for r in s.requests for ln in r]
    assert len(sent) == 95 and len(set(sent)) == 95
    seqs = [int(ln.split(b"expected_seq=")[1].split(b"i")[0]) for ln in sent]
    assert seqs == list(range(95))
    assert w.stats.spool_depth == 0 and w.stats.flush_errors >= 1


def test_close_while_down_spools_everything_and_next_writer_drains(tmp_path):
    s = FakeSender()
    s.fail = QuestDBError(QuestDBErrorCode.SocketError, "connection refused")
    w = _writer(tmp_path, s, close_timeout_s=0.2, retry_base_s=0.001, retry_cap_s=0.01)
    for ev in _feed_events(33):
        w.publish(ev)
    w.close()
    assert w.stats.spool_depth == 33 and w.stats.rows_written == 0
    s2 = FakeSender()
    w2 = _writer(tmp_path, s2)
    for ev in _feed_events(2, start=33):
        w2.publish(ev)
    w2.close()
    sent = [ln for r in s2.requests for ln in r]
    seqs = [int(ln.split(b"expected_seq=")[1].split(b"i")[0]) for ln in sent]
    assert seqs == list(range(35))  # the old run's rows first, then the new ones
    assert w2.stats.spool_depth == 0


def test_malformed_frames_go_to_the_quarantine_file(tmp_path):
    s = FakeSender()
    w = _writer(tmp_path, s)
    w.publish(QuarantineRecord(123, "bad json", '{"type": "orderbook_delta", '))
    w.close()
    rec = json.loads((tmp_path / "spool" / "quarantine.jsonl").read_text())
    assert rec == {"kind": "frame", "recv_ns": 123, "reason": "bad json",
                   "raw": '{"type": "orderbook_delta", '}
    assert w.stats.frames_quarantined == 1 and s.requests == []


def test_error_classification():
    bad = QuestDBError(QuestDBErrorCode.ServerFlushError,
                       "Could not flush buffer: cast error [id: x, code: invalid, line: 2]")
    down = QuestDBError(QuestDBErrorCode.ServerFlushError, "Could not flush buffer: ")
    assert is_invalid_data_error(bad) and not is_invalid_data_error(down)
    assert not is_invalid_data_error(OSError("refused"))


# -- against a loopback ILP/HTTP endpoint -------------------------------------------------

def _replay_into(conf: str, spool: Path, recording: Path, **kw) -> tuple[QuestDBWriter, TickerPlant]:
    w = QuestDBWriter(conf, spool_dir=spool, **kw)
    plant = TickerPlant([w])
    feed(recording, plant)
    plant.close()
    return w, plant


def test_invalid_rows_are_quarantined_and_the_rest_lands(tmp_path):
    bad_price = b"price=0.44,"
    with ILPEndpoint(reject=lambda ln: ln.startswith(b"orderbook_deltas") and bad_price in ln) as ep:
        w, plant = _replay_into(ep.conf, tmp_path / "spool", COCKPIT, batch_rows=500)
    expected_rows = sum(plant.stats.table_rows().values())
    q = [json.loads(x) for x in (tmp_path / "spool" / "quarantine.jsonl").read_text().splitlines()]
    assert q and all(r["kind"] == "row" and r["table"] == "orderbook_deltas" and
                     r["row"]["price"] == 0.44 and "code: invalid" in r["error"] for r in q)
    assert w.stats.rows_quarantined == len(q)
    assert len(ep.lines) == expected_rows - len(q) == w.stats.rows_written
    assert not any(bad_price in ln and ln.startswith(b"orderbook_deltas") for ln in ep.lines)
    assert len(set(ep.lines)) == len(ep.lines)


class _FlakyPlant(TickerPlant):
    """Calls ``hook(frame_index)`` after each frame: lets the test flip the endpoint's state
    at exact points of the replay (no sleeps)."""

    def __init__(self, *a, hook, **kw):
        super().__init__(*a, **kw)
        self._hook = hook
        self._n = 0

    def process_frame(self, f, recv_ns=None, raw=None):
        super().process_frame(f, recv_ns, raw)
        self._n += 1
        self._hook(self._n)


@pytest.mark.parametrize("recording", [COCKPIT, TRADES], ids=["cockpit", "ssmd-trades"])
def test_accept_refuse_accept_loses_and_duplicates_nothing(tmp_path, recording):
    if not recording.exists():
        pytest.skip(f"{recording.name} not bundled")
    # oracle: the lines a healthy server receives in one clean pass
    with ILPEndpoint() as clean:
        w0, p0 = _replay_into(clean.conf, tmp_path / "spool0", recording, batch_rows=50)
    expected = Counter(clean.lines)
    assert sum(expected.values()) == sum(p0.stats.table_rows().values()) > 0

    ep = ILPEndpoint().start()
    n_frames = p0.stats.frames
    a, b = n_frames // 3, 2 * n_frames // 3
    w = QuestDBWriter(ep.conf, spool_dir=tmp_path / "spool", batch_rows=50, queue_rows=100,
                      flush_interval_s=0.01, retry_base_s=0.001, retry_cap_s=0.02,
                      close_timeout_s=10.0)
    phases = []

    def hook(i):
        if i == a:  # QuestDB goes away: the listener is gone (connection refused)
            assert w.flush(timeout_s=5.0)
            ep.stop()
            phases.append("down")
        elif i == (a + b) // 2:  # it listens again but answers 503
            w.flush(timeout_s=0.0)  # pending rows go to the spool; the sender keeps trying
            _wait_until(lambda: w.stats.flush_errors > 0)
            ep.mode = "refuse"
            ep.start()
            w.flush(timeout_s=0.0)
            _wait_until(lambda: ep.refused > 0)
            phases.append("refuse")
        elif i == b:  # back
            ep.mode = "accept"
            phases.append("up")

    plant = _FlakyPlant([w], hook=hook)
    feed(recording, plant)
    plant.close()
    ep.stop()
    got = Counter(ep.lines)
    assert got == expected  # nothing lost, nothing duplicated
    assert w.stats.rows_written == sum(expected.values())
    assert w.stats.flush_errors > 0 and w.stats.rows_spooled > 0 and w.stats.spool_depth == 0
    assert ep.refused > 0 and phases == ["down", "refuse", "up"]


def _wait_until(pred, timeout_s: float = 10.0) -> None:
    """Wait for a condition the writer's thread brings about (bounded; fails the test)."""
    ev = threading.Event()
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        ev.wait(0.002)


def test_ilp_bench_delivers_every_row_on_both_paths(tmp_path):
    """`bench`'s ILP stage: raw Sender.row() and the writer push the same rows into the
    discarding endpoint subprocess; the writer asserts every row was acknowledged."""
    from kalshi_platform.bench.ilp import run_ilp_bench

    r = run_ilp_bench(COCKPIT, repeat=1, batch_rows=200)
    assert r["rows"] == 1404 and r["frames"] == 269
    assert r["raw_rows_per_s"] > 0 and r["writer_rows_per_s"] > 0


def test_schema_is_ensured_before_the_first_row_and_retried(tmp_path):
    """The writer creates the tables (PG wire) before any ILP row; while that fails (QuestDB
    away) rows wait, and nothing is sent until it succeeds."""
    s = FakeSender()
    calls = []

    def ensure():
        calls.append(len(s.requests))
        if len(calls) < 3:
            raise RuntimeError("cannot connect to QuestDB PG wire")

    w = _writer(tmp_path, s, ensure_schema=ensure, retry_base_s=0.001, retry_cap_s=0.01)
    for ev in _feed_events(12):
        w.publish(ev)
    assert w.flush(timeout_s=10.0)
    w.close()
    assert calls == [0, 0, 0]  # tried until it worked, always before the first request
    assert sum(len(r) for r in s.requests) == 12 and w.stats.flush_errors == 2


def test_batching_follows_the_clients_documented_auto_flush_keys(tmp_path):
    """Defaults are the client's documented HTTP auto-flush (75,000 rows, 1,000 ms); a conf
    string that sets auto_flush_rows / auto_flush_interval sets the writer's batching."""
    s = FakeSender()
    w = QuestDBWriter("http::addr=127.0.0.1:1;auto_flush_rows=7;auto_flush_interval=250;",
                      spool_dir=tmp_path / "spool", sender_factory=lambda conf: s)
    assert w.batch_rows == 7 and w.flush_interval_s == 0.25
    for ev in _feed_events(15):
        w.publish(ev)
    w.close()
    assert [len(r) for r in s.requests] == [7, 7, 1]
    d = QuestDBWriter("http::addr=127.0.0.1:1;", spool_dir=tmp_path / "spool2",
                      sender_factory=lambda conf: FakeSender())
    assert (d.batch_rows, d.flush_interval_s) == (75_000, 1.0)
    d.close()
    with pytest.raises(WriterError, match="auto_flush_rows"):
        QuestDBWriter("http::addr=127.0.0.1:1;auto_flush_rows=lots;", spool_dir=tmp_path / "s3")


def test_publish_many_queues_and_counts_as_publish_does(tmp_path):
    """The stream's storage consumer hands batches to publish_many: the same rows go out, the
    same counts, snapshots counted per level, a quarantined frame set aside."""
    events = []

    class _C:
        def publish(self, e):
            events.append(e)

        def flush(self):
            pass

        def close(self):
            pass

    p = TickerPlant([_C()])
    feed(COCKPIT, p)
    p.close()
    events.insert(5, QuarantineRecord(123, "bad json", '{"type": '))
    one, many = FakeSender(), FakeSender()
    w1 = _writer(tmp_path / "a", one, batch_rows=100)
    for e in events:
        w1.publish(e)
    w1.close()
    w2 = _writer(tmp_path / "b", many, batch_rows=100)
    for i in range(0, len(events), 37):
        w2.publish_many(events[i:i + 37])
    w2.close()
    assert w2.stats.rows_published == w1.stats.rows_published == 1404
    assert w2.stats.frames_quarantined == w1.stats.frames_quarantined == 1
    assert Counter(ln for r in many.requests for ln in r) == \
        Counter(ln for r in one.requests for ln in r)
    assert w2.stats.rows_written == 1404
