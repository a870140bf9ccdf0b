"""Decoding Kalshi WS lifecycle and control frames (market/event lifecycle, fill, error,
unsubscribed, ok; kalshi-api.md §7.3-§7.9b), unknown types and fields, and malformed frames,
with real frames from the bundled recordings wherever a real one exists, spec-shaped examples
for the rest. Moved from test_messages.py (order-book, ticker and trade frames stay there).

Expected values are computed from the frame JSON with ``Decimal`` (stdlib), never with the
package's own parsers.
"""

from __future__ import annotations

import copy
import json

import pytest

from conftest import COCKPIT, SSMD_EMBEDDED, read_lines
from kalshi_platform.ingestion.messages import (
    DecodeError,
    ErrorFrame,
    EventLifecycle,
    Fill,
    MarketLifecycle,
    Ok,
    Unknown,
    Unsubscribed,
    decode_frame,
    decode_json,
)
from kalshi_platform.ingestion.units import fill_units, lifecycle_units, snapshot_units, ticker_units, trade_units
from messages_support import NS, SPEC_ERROR, SPEC_EVENT_LIFECYCLE, SPEC_FILL, \
    SPEC_UNSUBSCRIBED, _cockpit_frame_text, _cockpit_frames, _first, both_ways


# ---------------------------------------------------------------------------------------------
# lifecycle (real determined / settled), event lifecycle, fill, error, unsubscribed


def test_real_lifecycle_determined():
    raw = json.loads(read_lines(SSMD_EMBEDDED)[3])
    f = both_ways(raw)
    assert isinstance(f, MarketLifecycle) and f.type == "market_lifecycle_v2"
    assert (f.sid, f.seq) == (1, 279597)
    assert f.msg == raw["msg"]  # kept whole
    assert lifecycle_units(f.msg) == ("KXMLBSPREAD-26JUL191605WSHATH-ATH4", "determined", "no",
                                      0, 1784501722 * NS)


def test_real_lifecycle_settled():
    raw = json.loads(read_lines(SSMD_EMBEDDED)[4])
    f = both_ways(raw)
    assert isinstance(f, MarketLifecycle) and (f.sid, f.seq) == (1, 274085)
    assert lifecycle_units(f.msg) == ("KXBNB15M-26JUL191830-30", "settled", None, None,
                                      1784500206 * NS)


def test_spec_lifecycle_created_and_unknown_event_type():
    created = {"type": "market_lifecycle_v2", "sid": 13,
               "msg": {"market_ticker": "INXD-23SEP14-B4487", "event_type": "created",
                       "open_ts": 1694635200, "close_ts": 1694721600,
                       "price_level_structure": "linear_cent",
                       "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]}}
    assert lifecycle_units(both_ways(created).msg) == ("INXD-23SEP14-B4487", "created", None,
                                                       None, None)
    future = copy.deepcopy(created)
    future["msg"]["event_type"] = "some_future_event"
    assert lifecycle_units(both_ways(future).msg)[1] == "some_future_event"
    det = {"type": "market_lifecycle_v2", "sid": 13,
           "msg": {"market_ticker": "INXD-23SEP14-B4487", "event_type": "determined",
                   "result": "yes", "determination_ts": 1694722000,
                   "settlement_value": "1.0000"}}
    assert lifecycle_units(both_ways(det).msg) == ("INXD-23SEP14-B4487", "determined", "yes",
                                                   1_000_000, 1694722000 * NS)


@pytest.mark.parametrize("msg", [{"event_type": "settled"},
                                 {"market_ticker": "", "event_type": "settled"},
                                 {"market_ticker": "X"},
                                 {"market_ticker": "X", "event_type": "determined",
                                  "settlement_value": "abc"},
                                 {"market_ticker": "X", "event_type": "settled",
                                  "settled_ts": "yesterday"}])
def test_bad_lifecycle_raises_decode_error(msg):
    f = decode_frame({"type": "market_lifecycle_v2", "sid": 1, "msg": msg})
    with pytest.raises(DecodeError):
        lifecycle_units(f.msg)


def test_spec_event_lifecycle():
    f = both_ways(SPEC_EVENT_LIFECYCLE)
    assert isinstance(f, EventLifecycle) and f.type == "event_lifecycle"
    assert f.sid == 13 and f.msg == SPEC_EVENT_LIFECYCLE["msg"]


def test_spec_fill():
    f = both_ways(SPEC_FILL)
    assert isinstance(f, Fill) and f.type == "fill" and f.seq is None
    assert fill_units(f.msg) == (
        "HIGHNY-22DEC23-B53.5", "d91bc706-ee49-470d-82d8-11418bda6fed",
        "ee587a1c-8b87-4dcf-b721-9f6f790619fa", "yes", "buy", True, 750_000, 27_800, 10_000,
        50_000, 1671899397000 * 1_000_000)


def test_spec_fill_missing_price_is_decode_error():
    raw = copy.deepcopy(SPEC_FILL)
    del raw["msg"]["yes_price_dollars"]
    with pytest.raises(DecodeError):
        fill_units(decode_frame(raw).msg)


def test_spec_error():
    f = both_ways(SPEC_ERROR)
    assert isinstance(f, ErrorFrame) and f.type == "error"
    assert f.id == 127 and f.msg == SPEC_ERROR["msg"]


def test_spec_unsubscribed():
    f = both_ways(SPEC_UNSUBSCRIBED)
    assert isinstance(f, Unsubscribed) and f.type == "unsubscribed"
    assert (f.id, f.sid, f.seq) == (102, 2, 7)


def test_spec_ok_variants():
    f = both_ways({"id": 3, "type": "ok", "msg": [{"channel": "orderbook_delta", "sid": 1},
                                                  {"channel": "ticker", "sid": 2}]})
    assert isinstance(f, Ok) and f.sid is None and len(f.msg) == 2
    f = both_ways({"id": 123, "sid": 456, "seq": 222, "type": "ok",
                   "msg": {"market_tickers": ["MARKET-1"]}})
    assert (f.sid, f.seq) == (456, 222)


# ---------------------------------------------------------------------------------------------
# unknown types and fields


def test_unknown_type_is_kept_with_its_envelope():
    raw = {"type": "cfbenchmarks_value", "sid": 9, "seq": 41, "msg": {"index_id": "BRTI", "value": "1"}}
    for f in (decode_json(json.dumps(raw)), decode_frame(copy.deepcopy(raw))):
        assert isinstance(f, Unknown)
        assert (f.type, f.wire_type, f.sid, f.seq) == ("unknown", "cfbenchmarks_value", 9, 41)
        assert f.frame == raw


def test_unknown_fields_are_ignored():
    lines = read_lines(COCKPIT)
    for idx in (0, 1, 2, 24, 100):  # subscribed, snapshot, ok, deltas
        raw = json.loads(lines[idx])["frame"]
        noisy = copy.deepcopy(raw)
        noisy["brand_new_envelope_field"] = {"x": [1, 2]}
        if raw["type"] in ("orderbook_snapshot", "orderbook_delta"):  # typed bodies
            noisy["msg"]["brand_new_msg_field"] = "0.1234"
            noisy["msg"]["Clock"] = 123
        assert decode_frame(noisy) == decode_frame(raw)
        assert decode_json(json.dumps(noisy)) == decode_json(_cockpit_frame_text(lines[idx]))


# ---------------------------------------------------------------------------------------------
# malformed frames


def _real_delta() -> dict:
    return copy.deepcopy(_first(_cockpit_frames(), "orderbook_delta"))


@pytest.mark.parametrize("text", [
    b"",
    b"not json",
    b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"KX',  # truncated
    b"[]",
    b"42",
    b'"orderbook_delta"',
    b"null",
    b'{"sid":1,"seq":2,"msg":{}}',  # no type
    b'{"type":"","sid":1}',
])
def test_decode_json_rejects_garbage(text):
    with pytest.raises(DecodeError):
        decode_json(text)


def test_truncated_real_line_is_decode_error():
    text = _cockpit_frame_text(read_lines(COCKPIT)[100])
    for cut in (1, 10, len(text) // 2, len(text) - 1):
        with pytest.raises(DecodeError):
            decode_json(text[:cut])


def test_missing_market_ticker():
    raw = _real_delta()
    del raw["msg"]["market_ticker"]
    with pytest.raises(DecodeError) as ei:
        decode_frame(raw)
    # the envelope was readable: reported (never used to advance a watermark)
    assert (ei.value.msg_type, ei.value.sid, ei.value.seq) == ("orderbook_delta", 1, raw["seq"])
    with pytest.raises(DecodeError):
        decode_json(json.dumps(raw))


def test_missing_msg_and_wrong_envelope_types():
    raw = _real_delta()
    del raw["msg"]
    with pytest.raises(DecodeError):
        decode_frame(raw)
    raw = _real_delta()
    raw["seq"] = "25"
    with pytest.raises(DecodeError):
        decode_frame(raw)
    raw = _real_delta()
    raw["msg"]["yes_dollars_fp"] = 5  # unknown to deltas: ignored
    decode_frame(raw)
    snap = copy.deepcopy(_first(_cockpit_frames(), "orderbook_snapshot"))
    snap["msg"]["yes_dollars_fp"] = "0.5"
    with pytest.raises(DecodeError):
        decode_frame(snap)


@pytest.mark.parametrize("field, value", [
    ("side", "bid"),  # Kalshi perps wording, not an event-contract side
    ("side", "YES"),
    ("side", ""),
    ("price_dollars", ""),
    ("price_dollars", "abc"),
    ("price_dollars", "1e-1"),
    ("price_dollars", "0.1234567"),
    ("price_dollars", "0.0000"),  # outside (0, 1)
    ("price_dollars", "1.0000"),
    ("price_dollars", "-0.5000"),
    ("delta_fp", ""),
    ("delta_fp", "abc"),
    ("delta_fp", "1.005"),
])
def test_bad_delta_values_raise_while_decoding(field, value):
    raw = _real_delta()
    raw["msg"][field] = value  # the shape is fine: strings where strings belong
    for decode in (lambda: decode_frame(raw), lambda: decode_json(json.dumps(raw))):
        with pytest.raises(DecodeError) as ei:
            decode()
        assert (ei.value.msg_type, ei.value.sid, ei.value.seq) == ("orderbook_delta", 1,
                                                                     raw["seq"])


def test_delta_with_neither_era_of_price():
    raw = _real_delta()
    del raw["msg"]["price_dollars"]
    with pytest.raises(DecodeError):
        decode_frame(raw)
    raw = _real_delta()
    del raw["msg"]["delta_fp"]
    with pytest.raises(DecodeError):
        decode_frame(raw)


@pytest.mark.parametrize("level", [["0.5000", "abc"], ["abc", "1.00"], ["", "1.00"],
                                   ["0.5000", "-1.00"], ["1.5000", "1.00"], ["0.5000", ""]])
def test_bad_snapshot_level_raises_in_snapshot_units(level):
    snap = copy.deepcopy(_first(_cockpit_frames(), "orderbook_snapshot"))
    snap["msg"]["no_dollars_fp"] = snap["msg"]["no_dollars_fp"][:3] + [level]
    with pytest.raises(DecodeError):
        snapshot_units(decode_frame(snap).msg)


def test_snapshot_missing_side_is_empty():
    snap = copy.deepcopy(_first(_cockpit_frames(), "orderbook_snapshot"))
    del snap["msg"]["no_dollars_fp"]
    yes, no = snapshot_units(both_ways(snap).msg)
    assert yes and no == []


def test_bad_ticker_and_trade_values():
    t = {"type": "ticker", "sid": 1, "msg": {"market_ticker": "X", "yes_bid_dollars": "abc"}}
    with pytest.raises(DecodeError):
        ticker_units(decode_frame(t).msg)
    tr = json.loads(read_lines(SSMD_EMBEDDED)[2])
    tr["msg"]["yes_price_dollars"] = ""
    with pytest.raises(DecodeError):
        trade_units(decode_frame(tr).msg)
    tr = json.loads(read_lines(SSMD_EMBEDDED)[2])
    tr["msg"]["count_fp"] = "x"
    with pytest.raises(DecodeError):
        trade_units(decode_frame(tr).msg)
