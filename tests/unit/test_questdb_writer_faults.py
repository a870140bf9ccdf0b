"""QuestDB writer and spool under the faults a review found: disk full mid-append, a failed
segment rotation, a failed head write, a batch held in memory while the queue spills, a send
still in progress at flush(), rows the client cannot encode, two writers on one spool."""

from __future__ import annotations

import builtins
import errno
import logging
import os
import re
import resource
import signal
import threading

import pytest

from kalshi_platform.storage import spool as spool_mod
from kalshi_platform.storage.questdb_rdb import QuestDBWriter, WriterError
from kalshi_platform.storage.spool import Spool, SpoolError
from kalshi_platform.ticker_plant.events import FeedEvent
from test_questdb_writer import FakeSender, _wait_until

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import QuestDBError, QuestDBErrorCode

DOWN = QuestDBError(QuestDBErrorCode.SocketError, "connection refused")


class SlowSender(FakeSender):
    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.delay = delay
        self.in_flush = threading.Event()
        self.release = threading.Event()

    def flush(self, buf):
        self.in_flush.set()
        if self.delay:
            self.release.wait(self.delay)
        super().flush(buf)


def ev(i: int) -> FeedEvent:
    return FeedEvent(1_700_000_000_000_000_000 + i * 1000, "resync", 1, i, i, f"r{i}")


def seqs(sender) -> list[int]:
    return [int(ln.split(b"expected_seq=")[1].split(b"i")[0]) for r in sender.requests for ln in r]


def writer(d, s, **kw) -> QuestDBWriter:
    kw.setdefault("batch_rows", 10)
    kw.setdefault("flush_interval_s", 60.0)
    kw.setdefault("close_timeout_s", 1.0)
    return QuestDBWriter("http::addr=127.0.0.1:1;", spool_dir=d, sender_factory=lambda c: s, **kw)


def drain_with_new_writer(d) -> list[int]:
    s2 = FakeSender()
    w2 = writer(d, s2, flush_interval_s=0.01)
    _wait_until(lambda: w2.spool.depth_rows == 0)
    w2.close()
    return seqs(s2)


def test_batch_held_in_memory_stays_ahead_of_spilled_rows(tmp_path):
    s = FakeSender()
    s.fail = DOWN
    w = writer(tmp_path, s, queue_rows=20, retry_base_s=5.0, retry_cap_s=5.0)
    for i in range(10):
        w.publish(ev(i))  # taken into flight by the sender, whose send fails
    _wait_until(lambda: w.stats.flush_errors >= 1)
    for i in range(10, 35):
        w.publish(ev(i))  # the queue overflows while rows 0-9 wait in memory
    w.close()
    assert drain_with_new_writer(tmp_path) == list(range(35))


def test_flush_while_a_send_is_in_progress_neither_double_counts_nor_lies(tmp_path):
    s = SlowSender(delay=30.0)
    w = writer(tmp_path, s, close_timeout_s=5.0)
    for i in range(10):
        w.publish(ev(i))  # a full batch: the sender starts a (slow) send
    assert s.in_flush.wait(5)
    assert w.flush(timeout_s=0.0) is False  # still in flight: not safe yet, and not spooled
    assert w.stats.rows_spooled == 0
    s.release.set()  # the send completes
    _wait_until(lambda: w.stats.rows_written == 10)
    s.delay, s.fail = 0.0, DOWN
    for i in range(10, 19):
        w.publish(ev(i))  # below batch_rows: only in memory
    assert w.flush(timeout_s=0.0) is True  # QuestDB down: spooled now, so safe
    assert w._settled == 19 and w.spool.depth_rows == 9
    w.close()
    assert seqs(s) == list(range(10)) and drain_with_new_writer(tmp_path) == list(range(10, 19))


def test_rows_the_client_cannot_encode_are_quarantined_not_retried(tmp_path):
    s = FakeSender()
    w = writer(tmp_path, s, retry_base_s=0.001, retry_cap_s=0.01)
    w.publish(FeedEvent(1_700_000_000_000_000_000, "gap", 1, 2 ** 63, 2 ** 63 - 1, "LONG max"))
    for i in range(20):
        w.publish(ev(i))
    assert w.flush(timeout_s=5.0)
    w.close()
    assert seqs(s) == list(range(20)) and w.stats.rows_quarantined == 1
    text = (tmp_path / "quarantine.jsonl").read_text()
    assert "client cannot encode" in text
    assert not re.search(r"\b[A-Z]\w*(Error|Invalid):", text)  # the message, no class name


def test_failed_head_write_does_not_stop_the_sender(tmp_path, monkeypatch, caplog):
    s = FakeSender()
    s.fail = DOWN
    w = writer(tmp_path, s, queue_rows=10, retry_base_s=0.001, retry_cap_s=0.01,
               flush_interval_s=0.01)
    for i in range(30):
        w.publish(ev(i))
    _wait_until(lambda: w.stats.flush_errors >= 2)
    orig = Spool._write_head
    calls = [0]

    def full(self):
        calls[0] += 1
        if calls[0] <= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return orig(self)

    monkeypatch.setattr(Spool, "_write_head", full)
    with caplog.at_level(logging.ERROR):
        s.fail = None
        for i in range(30, 60):
            w.publish(ev(i))
        assert w.flush(timeout_s=10.0)
    assert w.healthy and seqs(s) == list(range(60))
    w.close()


def test_append_failing_half_way_leaves_no_torn_bytes_before_later_records(tmp_path):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    sp = Spool(tmp_path)
    row = lambda i: ("feed_events", (i, "gap", 1, i, i, "x" * 200))  # noqa: E731
    sp.append([row(i) for i in range(10)])
    seg = tmp_path / "seg-000000000001.spool"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (seg.stat().st_size + 3000, hard))  # "disk full"
    try:
        with pytest.raises(SpoolError):
            sp.append([row(i) for i in range(10, 100)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    sp.append([row(i) for i in range(100, 110)])  # reported durable: must survive a restart
    sp.close()
    sp2 = Spool(tmp_path)
    got = []
    while (r := sp2.peek()) is not None:
        got += [v[0] for _, v in r.rows]
        sp2.ack(r)
    assert got == list(range(10)) + list(range(100, 110)) and sp2.torn_records == 0


def test_failed_segment_rotation_loses_nothing(tmp_path, monkeypatch):
    s = FakeSender()
    s.fail = DOWN
    w = writer(tmp_path, s, queue_rows=10, retry_base_s=5, retry_cap_s=5)
    w.spool.segment_bytes = 300
    failed = [0]

    def flaky_open(path, mode="r", *a, **k):
        if "seg-000000000002" in str(path) and not failed[0]:
            failed[0] = 1
            raise OSError(errno.EMFILE, "Too many open files")
        return builtins.open(path, mode, *a, **k)

    monkeypatch.setattr(spool_mod, "open", flaky_open, raising=False)
    for i in range(10):
        w.publish(ev(i))  # taken into flight; the send fails (spills wait while it runs)
    _wait_until(lambda: w.stats.flush_errors >= 1)
    for i in range(10, 60):
        w.publish(ev(i))
    monkeypatch.setattr(spool_mod, "open", builtins.open, raising=False)
    in_mem = len(w._queue) + (len(w._inflight or []) if w._inflight_from is None else 0)
    assert failed[0] and w.spool.depth_rows + in_mem == 60
    w.close()
    assert drain_with_new_writer(tmp_path) == list(range(60))


def test_one_spool_directory_per_process(tmp_path):
    a = Spool(tmp_path)
    with pytest.raises(SpoolError, match="in use by pid"):
        Spool(tmp_path)
    with pytest.raises(WriterError, match="in use by pid"):
        writer(tmp_path, FakeSender())
    a.close()
    Spool(tmp_path).close()  # free again once the first closed


def test_unreadable_spool_record_is_set_aside_not_blocking(tmp_path):
    sp = Spool(tmp_path)
    sp.append([("feed_events", (1, "gap", 1, 1, 1, "a"))])
    sp.append([("feed_events", (2, "gap", 1, 2, 2, "b"))])
    sp.close()
    real_decode = spool_mod._decode
    calls = [0]

    def bad_once(payload):
        calls[0] += 1
        if calls[0] == 1:
            raise spool_mod.msgspec.DecodeError("MessagePack data is malformed")
        return real_decode(payload)

    spool_mod._decode = bad_once
    try:
        s = FakeSender()
        w = writer(tmp_path, s, flush_interval_s=0.01)
        _wait_until(lambda: w.spool.depth_rows == 0)
        w.close()
    finally:
        spool_mod._decode = real_decode
    assert seqs(s) == [2]
    assert any(p.name.endswith(".bad") for p in tmp_path.iterdir())


def test_spill_is_batched_not_one_fsync_per_row(tmp_path):
    s = FakeSender()
    s.fail = DOWN
    w = writer(tmp_path, s, batch_rows=100, queue_rows=100, retry_base_s=5, retry_cap_s=5)
    for i in range(1000):
        w.publish(ev(i))
    assert w.spool.depth_records <= 1000 // 100 + 1
    w.close()
    os.sync()
