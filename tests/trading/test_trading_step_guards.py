"""The compiled frame step's (kalshi_platform/trading/_step.c) guards against arguments that
would make it read outside its objects: a negative ``start``/``end`` of ``lines`` (memchr
before the chunk), event types that are not tuples (PyTuple_GET_ITEM on another object), a
``stopped_exc`` that is not an exception class, and a frame count from ``process_lines``
that does not fit (signed overflow of the count)."""

from __future__ import annotations

import pytest

from kalshi_platform.trading._step import FrameStep


class Clock:
    def __init__(self) -> None:
        self.heap: list = []
        self.now = 0


def _step(**over):
    kw = dict(plant_frame=print, events=[], clock=Clock(), yes={}, no={}, known=set(),
              delta=print, follow=print, start_clock=print, late=print,
              stopped_exc=RuntimeError, decoded=None, delta_type=tuple, on_market=print,
              bbo_type=tuple, plant_lines=None, feed_latency=0)
    kw.update(over)
    return FrameStep(**kw)


def test_lines_refuses_a_negative_start_or_end():
    calls = []

    def plant_lines(chunk, kind, other, start, end):
        calls.append((start, end))
        return 0

    step = _step(plant_lines=plant_lines)
    for bad in ((-64,), (0, -1), (-1, None)):
        with pytest.raises(ValueError):
            step.lines(b"{}\n{}\n", 1, print, *bad)
    assert calls == []
    assert step.lines(b"{}\n{}\n", 1, print, 3) == 0 and calls == [(3, 6)]
    assert step.lines(b"{}\n{}\n", 1, print, 0, 100) == 0 and calls[1:] == [(0, 3), (3, 6)]


@pytest.mark.parametrize("took", [-1, 2**62])
def test_lines_refuses_a_frame_count_that_does_not_fit(took):
    step = _step(plant_lines=lambda *a: took)
    with pytest.raises(ValueError):
        step.lines(b"{}\n" * 4, 1, print)


@pytest.mark.parametrize("field", ["delta_type", "bbo_type"])
def test_event_types_must_be_tuple_types(field):
    with pytest.raises(TypeError):
        _step(**{field: bytes})  # bytes of 8: its hash would be read as a ticker
    class Ev(tuple):
        pass

    _step(**{field: Ev})


def test_stopped_exc_must_be_an_exception_class():
    with pytest.raises(TypeError):
        _step(stopped_exc=42)
    step = _step(stopped_exc=KeyError)
    step.stopped = True
    with pytest.raises(KeyError):
        step(None)


def test_a_failing_late_path_propagates_its_error():
    """The frame time plus the feed latency fails: that error, not another one."""
    class Now(int):
        def __add__(self, other):
            raise ZeroDivisionError("no add")

    clock = Clock()
    evs = [("T", 5)]
    seen = []
    step = _step(clock=clock, events=evs, feed_latency=7, follow=seen.append,
                 late=lambda *a: seen.append(a))
    step.timed = True
    clock.now = Now(9)
    with pytest.raises(ZeroDivisionError):
        step(None, None)
    assert seen == [("T", 5)] and evs == [("T", 5)]
