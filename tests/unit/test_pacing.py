"""`--speed`: frames are handed on at the recording's pace, checked with a fake clock."""

from __future__ import annotations

import json

import pytest

from kalshi_platform.ingestion import recording


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


class Collect:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seen: list[tuple[float, int | None]] = []

    def process_frame(self, frame, recv_ns=None, raw=None) -> None:
        self.seen.append((self.clock.now, recv_ns))

    def process(self, payload, recv_ns=None, raw=None) -> None:
        self.seen.append((self.clock.now, recv_ns))


def _write(tmp_path, recv_ms: list[int]):
    p = tmp_path / "paced.jsonl"
    frame = {"type": "ok", "sid": 1, "seq": 0, "msg": {"market_tickers": []}}
    with open(p, "w") as f:
        for i, ms in enumerate(recv_ms):
            f.write(json.dumps({"received_ms": ms, "frame": dict(frame, seq=i + 1)}) + "\n")
    return p


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_frames_are_released_at_recorded_pace(tmp_path, monkeypatch, speed):
    clock = FakeClock()
    monkeypatch.setattr(recording.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(recording.time, "sleep", clock.sleep)
    recv = [1_000, 1_000, 1_250, 3_000, 3_001]
    target = Collect(clock)
    assert recording.feed(_write(tmp_path, recv), target, speed=speed) == len(recv)
    start = target.seen[0][0]
    for (t, recv_ns), ms in zip(target.seen, recv):
        assert recv_ns == ms * 1_000_000
        assert t - start == pytest.approx((ms - recv[0]) / 1000 / speed)


def test_speed_zero_never_sleeps(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(recording.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(recording.time, "sleep", clock.sleep)
    target = Collect(clock)
    recording.feed(_write(tmp_path, [0, 5_000, 60_000]), target, speed=0)
    assert clock.sleeps == [] and len(target.seen) == 3
