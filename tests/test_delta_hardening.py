"""Hardening of the compiled delta path (``kalshi_platform/ingestion/_delta.c``) found in review:
a repeated ``msg`` key, what an emit callback may do to the book it is fed from (rebind its
slots, raise a ``BaseException``), and Python-set book values that are not ints or are out of
range. Each test but the first emit one (a guard: that path was already safe) failed before
its fix (a wrong answer, a crash, or a swallowed interrupt).
"""

from __future__ import annotations

import orjson
import pytest
from delta_reference import reference

from kalshi_platform.ingestion import _delta
from kalshi_platform.ticker_plant.events import DeltaEvent
from kalshi_platform.ticker_plant.order_book import BBO, LIVE, OrderBook

BODY = {"market_ticker": "T", "side": "yes", "price_dollars": "0.5", "delta_fp": "1.00"}
MS = 1786085188416


def _frame(seq: int = 2, **body) -> dict:
    return {"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": {**BODY, **body}}


def test_a_repeated_msg_key_is_read_as_the_last_msg_alone():
    """Two ``msg`` objects: the last is the body (json.loads, orjson); nothing of the first is
    kept. Before: the fields of both were merged and a frame whose last body has no ticker or
    price was accepted."""
    head = b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":' + orjson.dumps(BODY)
    for last in (b'{"side":"no"}', b'{"market_ticker":"U","side":"no"}', b"{}"):
        text = head + b',"msg":' + last + b"}"
        assert reference(text)[0] == "invalid"
        with pytest.raises(ValueError):
            _delta.decode(text)
    text = head + b',"msg":' + orjson.dumps({**BODY, "side": "no"}) + b"}"
    assert _delta.decode(text) == reference(text)[1]


def _feed(book: OrderBook, frame: dict, emit, emit_failed, last_top=None):
    line = orjson.dumps({"received_ms": MS, "frame": frame})
    return _delta.feed_lines(line, 0, len(line), 1, {book.ticker: book}, {1: frame["seq"] - 1},
                             {} if last_top is None else last_top, LIVE, 0, False, emit,
                             emit_failed, DeltaEvent, BBO)


def _live_book() -> OrderBook:
    book = OrderBook("T", sid=1)
    book.apply_snapshot([(400_000, 100)], [(400_000, 100)])
    assert book.state == LIVE
    return book


def test_an_emit_that_deletes_the_book_ticker_does_not_crash_the_feed():
    """The DeltaEvent's emit unbinds the book's ticker: the apply reports the broken book
    (TypeError), nothing is emitted after it."""
    book, events = _live_book(), []

    def emit(ev):
        events.append(ev)
        if isinstance(ev, DeltaEvent):
            del book.ticker

    with pytest.raises(TypeError, match="not initialised"):
        _feed(book, _frame(), emit, lambda e: None)
    assert [type(e) for e in events] == [DeltaEvent]


def test_an_emit_that_rebinds_the_ticker_after_the_apply_keeps_the_step_whole():
    book, events = _live_book(), []

    class Sneaky(tuple):
        def __eq__(self, other):  # runs inside note_top's comparison with last_top
            del book.ticker
            return False

        __hash__ = tuple.__hash__

    out = _feed(book, _frame(), events.append, lambda e: None, last_top={"T": Sneaky()})
    assert out[1] == 1 and out[2] == 1  # the delta taken, one new top
    assert [type(e) for e in events] == [DeltaEvent, BBO]
    assert events[1].ticker == "T"


def test_a_keyboard_interrupt_in_emit_propagates_and_is_not_a_publisher_failure():
    """The plant's Python publish loop catches ``Exception`` only; the compiled path gave every
    exception to ``emit_failed`` (a Ctrl-C marked the publisher failed and was swallowed)."""
    book, failed = _live_book(), []

    def emit(ev):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _feed(book, _frame(), emit, failed.append)
    assert failed == []

    def emit_error(ev):
        raise RuntimeError("sink down")

    out = _feed(_live_book(), _frame(), emit_error, failed.append)
    assert out[4] == _delta.F_END and [type(e) for e in failed] == [RuntimeError]  # no BBO emit


def test_book_values_that_are_not_ints_are_refused_not_called():
    """A best price, level size or ladder price that is not an int raises TypeError (before:
    its ``__index__`` ran while C held borrowed references into the book)."""
    calls = []

    class Index:
        def __index__(self):
            calls.append(1)
            return 400_000

    for attr in ("best_yes", "best_no"):
        book = _live_book()
        setattr(book, attr, Index())
        with pytest.raises(TypeError, match="best price"):
            book.top()
        with pytest.raises(TypeError, match="best price"):
            book.apply_delta("yes" if attr == "best_yes" else "no", 300_000, 100)
    book = _live_book()
    book.yes[300_000] = Index()
    with pytest.raises(TypeError, match="level size"):
        book.apply_delta("yes", 300_000, 100)
    book = _live_book()
    book.yes[Index()] = 5
    with pytest.raises(TypeError, match="price"):
        book.apply_delta("yes", 400_000, -100)  # the best level goes: the ladder is searched
    assert calls == []


def test_a_best_no_bid_out_of_range_raises_instead_of_wrapping():
    book = OrderBook("T")
    book.apply_delta("no", -(2**63), 5)
    with pytest.raises(OverflowError):
        book.top()  # YES ask = 1 $ - best NO bid does not fit 64 bits


class _FailingSink:
    """A publisher whose ``publish`` raises on its ``fail_at``-th DeltaEvent."""

    def __init__(self, fail_at: int) -> None:
        self.got, self.deltas, self.fail_at = [], 0, fail_at

    def publish(self, ev) -> None:
        self.got.append(ev)
        if isinstance(ev, DeltaEvent):
            self.deltas += 1
            if self.deltas == self.fail_at:
                raise RuntimeError("sink down")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_publisher_failing_on_a_delta_gets_no_bbo_of_that_delta(tmp_path):
    """The only publisher raises on a DeltaEvent: it is marked failed and gets nothing more,
    as in the frame-by-frame path (before: the compiled path still handed it that delta's BBO
    row). The plant's counts are the same either way."""
    from conftest import COCKPIT, read_lines

    from kalshi_platform.ingestion.recording import feed, unwrap
    from kalshi_platform.ticker_plant.plant import TickerPlant

    lines = read_lines(COCKPIT)
    rec = tmp_path / "r.jsonl"
    rec.write_bytes(b"\n".join(lines) + b"\n")
    for fail_at in (1, 5, 40):
        fast_sink, slow_sink = _FailingSink(fail_at), _FailingSink(fail_at)
        fast, slow = TickerPlant([fast_sink]), TickerPlant([slow_sink])
        feed(rec, fast)
        for ln in lines:
            recv_ns, payload = unwrap(orjson.loads(ln))
            slow.process(payload, recv_ns, ln)
        assert [tuple(e) for e in fast_sink.got] == [tuple(e) for e in slow_sink.got]
        assert fast.stats.bbo == slow.stats.bbo


@pytest.mark.parametrize("number, readable", [
    ("1e308", True), ("1.7976931348623158e308", True), ("1.7976931348623159e308", False),
    ("1e309", False), ("-1e99999999999999999999", False), ("1" + "0" * 308, True),
    ("2" + "0" * 308, False), ("0.000001e314", True), ("0.00001e314", False),
    ("1e-99999", True), ("0e99999", True), ("1" * 309 + "." + "9" * 5000, True), ("2" * 309 + ".5", False),
])
def test_a_number_past_a_double_anywhere_in_the_frame_is_not_json_the_plant_reads(
        number, readable):
    """orjson (the generic decoder and the frame-by-frame path) refuses a number that rounds to
    an infinite double; the delta path accepted one in an unknown or skipped field (the two
    paths then disagreed: one took the delta, the other quarantined the line)."""
    body = orjson.dumps(BODY)[:-1]
    for text in (b'{"type":"orderbook_delta","sid":1,"seq":2,"x":[%s],"msg":%s}}'
                 % (number.encode(), body),
                 b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":%s,"future":{"n":%s}}}'
                 % (body, number.encode())):
        assert (reference(text)[0] == "ok") is readable
        assert _delta.decode(text) == (reference(text)[1] if readable else None)
        line = b'{"received_ms":%d,"frame":%s}' % (MS, text)
        assert (_delta.decode_line(line, 0, len(line), 1) is not None) is readable
