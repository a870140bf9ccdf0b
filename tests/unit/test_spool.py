"""Disk spool: append/peek/ack order, persistence across reopen, torn-record recovery."""

from __future__ import annotations

import os

import pytest

from kalshi_platform.storage.spool import HEADER_SIZE, Spool, SpoolError, encode_record


def _batch(i: int, n: int = 3) -> list:
    return [("bbo", (f"MKT-{i}", 1_700_000_000_000_000 + i * 10 + k, 0.5, 10.0, None, k))
            for k in range(n)]


def _drain(sp: Spool) -> list:
    out = []
    while (rec := sp.peek()) is not None:
        out.append(rec.rows)
        sp.ack(rec)
    return out


def test_fifo_order_and_depth(tmp_path):
    sp = Spool(tmp_path)
    for i in range(5):
        sp.append(_batch(i))
    assert sp.depth_rows == 15 and sp.depth_records == 5
    got = _drain(sp)
    assert got == [_batch(i) for i in range(5)]
    assert sp.depth_rows == 0 and sp.peek() is None


def test_interleaved_append_and_ack_keeps_order(tmp_path):
    sp = Spool(tmp_path, segment_bytes=200)  # forces several segments
    expected, got = [], []
    for i in range(20):
        sp.append(_batch(i))
        expected.append(_batch(i))
        if i % 3 == 2:
            rec = sp.peek()
            got.append(rec.rows)
            sp.ack(rec)
    got += _drain(sp)
    assert got == expected
    # fully delivered segments are deleted, at most the tail one remains
    assert len(list(tmp_path.glob("seg-*.spool"))) <= 1


def test_reopen_resumes_after_last_ack(tmp_path):
    sp = Spool(tmp_path, segment_bytes=300)
    for i in range(10):
        sp.append(_batch(i))
    for _ in range(4):
        rec = sp.peek()
        sp.ack(rec)
    sp.close()
    sp2 = Spool(tmp_path, segment_bytes=300)
    assert sp2.depth_records == 6 and sp2.depth_rows == 18
    sp2.append(_batch(99))
    assert _drain(sp2) == [_batch(i) for i in range(4, 10)] + [_batch(99)]


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 5])
def test_torn_last_record_is_detected_and_skipped(tmp_path, cut):
    sp = Spool(tmp_path)
    for i in range(4):
        sp.append(_batch(i))
    sp.close()
    seg = next(tmp_path.glob("seg-*.spool"))
    # a crash mid-write: the 5th record is only partly on disk
    with open(seg, "ab") as f:
        f.write(encode_record(_batch(4))[:cut])
    size_before = seg.stat().st_size
    sp2 = Spool(tmp_path)
    assert sp2.torn_records == 1
    assert seg.stat().st_size <= size_before - cut  # recovery cut the torn tail off
    assert _drain(sp2) == [_batch(i) for i in range(4)]
    torn = seg.with_name(seg.name + ".torn")
    assert torn.stat().st_size == cut  # the partial bytes are kept, not deleted
    assert not seg.exists() and sp2.bytes_on_disk() == 0  # drained: no segment left


def test_corrupt_crc_ends_segment_but_keeps_prefix(tmp_path):
    sp = Spool(tmp_path)
    for i in range(3):
        sp.append(_batch(i))
    sp.close()
    seg = next(tmp_path.glob("seg-*.spool"))
    data = bytearray(seg.read_bytes())
    rec_len = len(encode_record(_batch(0)))
    data[2 * rec_len + HEADER_SIZE + 2] ^= 0xFF  # flip a payload byte of the 3rd record
    seg.write_bytes(bytes(data))
    sp2 = Spool(tmp_path)
    assert sp2.torn_records == 1
    assert _drain(sp2) == [_batch(0), _batch(1)]


def test_append_after_torn_recovery_is_readable(tmp_path):
    sp = Spool(tmp_path)
    sp.append(_batch(0))
    sp.close()
    seg = next(tmp_path.glob("seg-*.spool"))
    with open(seg, "ab") as f:
        f.write(b"KSP1\x10\x00")
    sp2 = Spool(tmp_path)
    sp2.append(_batch(1))
    sp2.close()
    sp3 = Spool(tmp_path)
    assert _drain(sp3) == [_batch(0), _batch(1)]


def test_ack_out_of_order_is_refused(tmp_path):
    sp = Spool(tmp_path)
    sp.append(_batch(0))
    sp.append(_batch(1))
    first = sp.peek()
    sp.ack(first)
    with pytest.raises(SpoolError):
        sp.ack(first)


def test_unusable_directory_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SpoolError, match="cannot create spool directory"):
        Spool(f / "spool")


def test_fsync_none_policy_still_round_trips(tmp_path):
    sp = Spool(tmp_path, fsync="none")
    sp.append(_batch(0))
    sp.close()
    assert _drain(Spool(tmp_path, fsync="none")) == [_batch(0)]
    with pytest.raises(ValueError):
        Spool(tmp_path, fsync="sometimes")  # type: ignore[arg-type]
    assert os.path.exists(tmp_path / "head")
