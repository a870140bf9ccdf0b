"""Decoding Kalshi WS frames (kalshi-api.md §7.3-§7.9b) with real frames from the bundled
recordings wherever a real one exists, spec-shaped examples for the rest.

Expected values are computed from the frame JSON with ``Decimal`` (stdlib), never with the
package's own parsers.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from conftest import COCKPIT, SSMD_EMBEDDED, SSMD_TICKER, SSMD_TRADE, read_lines
from kalshi_oracle import iso_to_ns
from kalshi_platform.ingestion.messages import (
    MESSAGE_TYPES,
    DecodeError,
    ErrorFrame,
    EventLifecycle,
    Fill,
    MarketLifecycle,
    Ok,
    OrderbookDelta,
    OrderbookSnapshot,
    Subscribed,
    Ticker,
    Trade,
    Unknown,
    Unsubscribed,
    decode_frame,
    decode_json,
)
from kalshi_platform.ingestion.units import delta_units, fill_units, lifecycle_units, snapshot_units, ticker_units, trade_units

D = Decimal
NS = 1_000_000_000


def P(text) -> int:
    """Independent price → µ$ (Decimal)."""
    v = D(text) * 1_000_000
    assert v == v.to_integral_value()
    return int(v)


def S(text) -> int:
    """Independent size → centi-contracts (Decimal)."""
    v = D(text) * 100
    assert v == v.to_integral_value()
    return int(v)


def _cockpit_frames() -> list[dict]:
    return [json.loads(ln)["frame"] for ln in read_lines(COCKPIT)]


def _cockpit_frame_text(line: bytes) -> bytes:
    prefix, _, rest = line.partition(b',"frame":')
    assert prefix.startswith(b'{"received_ms":') and rest.endswith(b"}")
    return rest[:-1]


def _first(frames, type_):
    return next(f for f in frames if f["type"] == type_)


def both_ways(frame: dict):
    """decode_json(text) and decode_frame(dict) must agree; returns the decoded frame."""
    a = decode_json(json.dumps(frame))
    b = decode_frame(copy.deepcopy(frame))
    c = decode_json(json.dumps(frame).encode())
    assert type(a) is type(b) is type(c)
    if not isinstance(a, Unknown):
        assert a == b == c
    return a


# ---------------------------------------------------------------------------------------------
# coverage of the message types


SPEC_ERROR = {"id": 127, "type": "error",
              "msg": {"code": 16, "msg": "Market not found", "market_ticker": "INVALID-MARKET"}}
SPEC_UNSUBSCRIBED = {"id": 102, "sid": 2, "seq": 7, "type": "unsubscribed"}
SPEC_EVENT_LIFECYCLE = {"type": "event_lifecycle", "sid": 13,
                        "msg": {"event_ticker": "KXQUICKSETTLE-26JAN25H2150", "title": "...",
                                "subtitle": "...", "collateral_return_type": "MECNET",
                                "series_ticker": "KXQUICKSETTLE"}}
SPEC_FILL = {"type": "fill", "sid": 13,
             "msg": {"trade_id": "d91bc706-ee49-470d-82d8-11418bda6fed",
                     "order_id": "ee587a1c-8b87-4dcf-b721-9f6f790619fa",
                     "market_ticker": "HIGHNY-22DEC23-B53.5", "is_taker": True, "side": "yes",
                     "action": "buy", "yes_price_dollars": "0.7500", "count_fp": "278.00",
                     "fee_cost": "0.0100", "post_position_fp": "500.00",
                     "purchased_side": "yes", "subaccount": 3, "ts": 1671899397,
                     "ts_ms": 1671899397000}}


#: the types the plant has always had to decode (kalshi-api.md §7.3-§7.9b)
CORE_TYPES = {
    "orderbook_snapshot", "orderbook_delta", "ticker", "trade", "market_lifecycle_v2",
    "event_lifecycle", "fill", "subscribed", "ok", "unsubscribed", "error",
}


def _examples() -> dict[str, dict]:
    """One frame per wire type: real ones from the bundled recordings where they exist,
    spec-shaped ones (kalshi-api.md) for the rest."""
    cockpit = _cockpit_frames()
    embedded = [json.loads(ln) for ln in read_lines(SSMD_EMBEDDED)]
    return {
        "subscribed": _first(cockpit, "subscribed"),
        "orderbook_snapshot": _first(cockpit, "orderbook_snapshot"),
        "ok": _first(cockpit, "ok"),
        "orderbook_delta": _first(cockpit, "orderbook_delta"),
        "ticker": json.loads(read_lines(SSMD_TICKER)[0]),
        "trade": json.loads(read_lines(SSMD_TRADE)[0]),
        "market_lifecycle_v2": embedded[3],
        "error": SPEC_ERROR,
        "unsubscribed": SPEC_UNSUBSCRIBED,
        "event_lifecycle": SPEC_EVENT_LIFECYCLE,
        "fill": SPEC_FILL,
        # §7.4 / §7.9: lifecycle-channel types newer than the core set
        "event_fee_update": {"type": "event_fee_update", "sid": 13,
                             "msg": {"event_ticker": "KXFOO-26NOV21", "fee_type_override": None,
                                     "fee_multiplier_override": None}},
        "multivariate_market_lifecycle": {
            "type": "multivariate_market_lifecycle", "sid": 14,
            "msg": {"market_ticker": "INXD-23SEP14-B4487", "event_type": "settled",
                    "settled_ts": 1694725600}},
    }


def test_every_message_type_has_an_example():
    assert CORE_TYPES <= MESSAGE_TYPES  # nothing documented was dropped
    missing = MESSAGE_TYPES - set(_examples())
    assert not missing, f"add a real or spec example for {sorted(missing)}"


@pytest.mark.parametrize("wire_type", sorted(CORE_TYPES | {"event_fee_update",
                                                           "multivariate_market_lifecycle"}))
def test_every_message_type_decodes_to_its_struct(wire_type):
    raw = _examples()[wire_type]
    f = both_ways(raw)
    if wire_type in MESSAGE_TYPES:
        assert not isinstance(f, Unknown)
        assert f.type == wire_type
        assert (f.sid, f.seq) == (raw.get("sid") if wire_type != "subscribed" else None,
                                  raw.get("seq"))
    else:  # not (yet) a known type: tolerated as Unknown, envelope kept
        assert isinstance(f, Unknown) and f.wire_type == wire_type and f.frame == raw


# ---------------------------------------------------------------------------------------------
# real order-book and control frames (kalshi-cockpit, prod 2026-08-07)


def test_real_subscribed():
    f = both_ways(_first(_cockpit_frames(), "subscribed"))
    assert isinstance(f, Subscribed) and f.type == "subscribed"
    assert f.sid is None and f.seq is None  # the sid of a subscribed ack is inside msg
    assert f.channel_sid == ("orderbook_delta", 1)
    assert f.id == 2


def test_real_ok_ack_carries_seq():
    raw = _first(_cockpit_frames(), "ok")
    f = both_ways(raw)
    assert isinstance(f, Ok) and f.type == "ok"
    assert (f.sid, f.seq, f.id) == (1, raw["seq"], raw["id"]) and f.seq == 2
    assert f.msg == raw["msg"] and "market_tickers" in f.msg


def test_real_snapshot_every_level():
    snaps = [f for f in _cockpit_frames() if f["type"] == "orderbook_snapshot"]
    assert len(snaps) == 12
    for raw in snaps:
        f = both_ways(raw)
        assert isinstance(f, OrderbookSnapshot) and f.type == "orderbook_snapshot"
        assert (f.sid, f.seq) == (raw["sid"], raw["seq"])
        m = raw["msg"]
        assert f.msg.market_ticker == m["market_ticker"]
        assert f.msg.market_id == m["market_id"]
        yes, no = snapshot_units(f.msg)
        assert yes == [(P(p), S(q)) for p, q in m.get("yes_dollars_fp", [])]
        assert no == [(P(p), S(q)) for p, q in m.get("no_dollars_fp", [])]
    # the fixture has real fractional sizes (e.g. "2002.35")
    assert any(q % 100 for f in snaps for _, q in snapshot_units(decode_frame(f).msg)[0])


def test_real_deltas_every_one():
    deltas = [f for f in _cockpit_frames() if f["type"] == "orderbook_delta"]
    assert len(deltas) == 245
    for raw in deltas:
        f = both_ways(raw)
        assert isinstance(f, OrderbookDelta) and f.type == "orderbook_delta"
        m = raw["msg"]
        assert (f.sid, f.seq, f.msg.market_ticker) == (raw["sid"], raw["seq"], m["market_ticker"])
        side, price, delta, ts = delta_units(f.msg)
        assert side == m["side"]
        assert price == P(m["price_dollars"])
        assert delta == S(m["delta_fp"])
        assert ts == m["ts_ms"] * 1_000_000
        # the wire's two timestamps agree: ISO ts floors to ts_ms
        assert iso_to_ns(m["ts"]) // 1_000_000 == m["ts_ms"]


def test_a_delta_market_id_is_not_read_so_its_type_never_quarantines_the_frame():
    """A delta's ``market_id`` is left undeclared (nothing reads it; decode speed): any
    value there decodes to the same delta as the real frame."""
    raw = _first(_cockpit_frames(), "orderbook_delta")
    want = both_ways(raw)
    assert not hasattr(want.msg, "market_id")
    for odd in (None, 7, ["x"], {"a": 1}, "not-a-uuid"):
        r = copy.deepcopy(raw)
        r["msg"]["market_id"] = odd
        assert both_ways(r) == want


def test_delta_ts_from_iso_when_ts_ms_absent():
    for raw in [f for f in _cockpit_frames() if f["type"] == "orderbook_delta"][:40]:
        raw = copy.deepcopy(raw)
        ts_ms = raw["msg"].pop("ts_ms")
        f = both_ways(raw)
        *_, ts = delta_units(f.msg)
        assert ts == iso_to_ns(raw["msg"]["ts"])  # full µs precision from the ISO string
        assert ts // 1_000_000 == ts_ms
        assert ts % 1000 == 0  # the ISO strings carry microseconds


def test_delta_without_any_timestamp_has_none():
    raw = copy.deepcopy(_first(_cockpit_frames(), "orderbook_delta"))
    del raw["msg"]["ts_ms"], raw["msg"]["ts"]
    assert delta_units(both_ways(raw).msg)[3] is None


# ---------------------------------------------------------------------------------------------
# legacy era (before 2026-03-12): integer cents / counts must give identical units


def _integral_levels(levels):
    return [(p, q) for p, q in levels if D(q) == D(q).to_integral_value()]


def test_legacy_cent_snapshot_equals_fixed_point():
    for raw in [f for f in _cockpit_frames() if f["type"] == "orderbook_snapshot"]:
        m = raw["msg"]
        yes = _integral_levels(m.get("yes_dollars_fp", []))
        no = _integral_levels(m.get("no_dollars_fp", []))
        assert all(D(p) * 100 == int(D(p) * 100) for p, _ in yes + no)  # whole cents
        current = {"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                   "msg": {"market_ticker": m["market_ticker"], "yes_dollars_fp": yes,
                           "no_dollars_fp": no}}
        cents = {"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                 "msg": {"market_ticker": m["market_ticker"],
                         "yes": [[int(D(p) * 100), int(D(q))] for p, q in yes],
                         "no": [[int(D(p) * 100), int(D(q))] for p, q in no]}}
        dollars = {"type": "orderbook_snapshot", "sid": 1, "seq": 1,
                   "msg": {"market_ticker": m["market_ticker"],
                           "yes_dollars": [[str(D(p).normalize()), int(D(q))] for p, q in yes],
                           "no_dollars": [[f"{D(p):.3f}", int(D(q))] for p, q in no]}}
        want = snapshot_units(both_ways(current).msg)
        assert want[0] and want[1]
        assert snapshot_units(both_ways(cents).msg) == want
        assert snapshot_units(both_ways(dollars).msg) == want


def test_legacy_snapshot_fixed_point_wins_when_both_present():
    # transition era frames carried both; the fixed-point string is authoritative (sub-cent)
    raw = {"type": "orderbook_snapshot", "sid": 1, "seq": 1,
           "msg": {"market_ticker": "T", "yes": [[8, 300]], "yes_dollars_fp": [["0.0810", "300.00"]]}}
    assert snapshot_units(both_ways(raw).msg)[0] == [(81_000, 30_000)]


def test_legacy_integer_delta_equals_fixed_point():
    n = 0
    for raw in [f for f in _cockpit_frames() if f["type"] == "orderbook_delta"]:
        m = raw["msg"]
        if D(m["delta_fp"]) != D(m["delta_fp"]).to_integral_value():
            continue
        legacy = copy.deepcopy(raw)
        lm = legacy["msg"]
        lm["price"] = int(D(lm.pop("price_dollars")) * 100)
        lm["delta"] = int(D(lm.pop("delta_fp")))
        assert delta_units(both_ways(legacy).msg) == delta_units(both_ways(raw).msg)
        n += 1
    assert n > 200


# ---------------------------------------------------------------------------------------------
# ticker: both eras (ssmd prod captures)


def _ticker_expect(m: dict) -> tuple:
    def price(k_dollars, k_cents):
        v = m.get(k_dollars)
        if v:
            return P(v)
        return None if m.get(k_cents) is None else m[k_cents] * 10_000

    def size(k_fp, k_int=None):
        v = m.get(k_fp)
        if v:
            return S(v)
        return None if k_int is None or m.get(k_int) is None else m[k_int] * 100

    ts = m["ts_ms"] * 1_000_000 if "ts_ms" in m else m["ts"] * NS
    return (price("price_dollars", "price"), price("yes_bid_dollars", "yes_bid"),
            price("yes_ask_dollars", "yes_ask"), size("yes_bid_size_fp"),
            size("yes_ask_size_fp"), size("volume_fp", "volume"),
            size("open_interest_fp", "open_interest"), ts)


def test_real_ticker_current_era_all_lines():
    lines = read_lines(SSMD_TICKER)
    assert len(lines) == 10
    for ln in lines:
        raw = json.loads(ln)
        f = decode_json(ln)
        assert isinstance(f, Ticker) and f.type == "ticker"
        assert f == decode_frame(raw)
        assert f.seq is None  # tickers carry no seq
        m = raw["msg"]
        assert f.msg.market_ticker == m["market_ticker"]
        # the two eras in the same frame agree (data sanity)
        assert P(m["yes_bid_dollars"]) == m["yes_bid"] * 10_000
        got = ticker_units(f.msg)
        assert got == _ticker_expect(m)
        assert got[3] is not None and got[7] == 1770897976 * NS


def test_real_ticker_older_era_without_fp_fields():
    raw = json.loads(read_lines(SSMD_EMBEDDED)[0])
    m = raw["msg"]
    assert "volume_fp" not in m and "Clock" in m  # undocumented field is ignored
    f = both_ways(raw)
    assert isinstance(f, Ticker)
    assert ticker_units(f.msg) == (120_000, 110_000, 120_000, None, None, 351_970 * 100,
                                   182_646 * 100, 1732579880 * NS)


def test_legacy_only_ticker_equals_dollar_fields():
    for ln in read_lines(SSMD_TICKER):
        raw = json.loads(ln)
        legacy = copy.deepcopy(raw)
        for k in list(legacy["msg"]):
            if k.endswith("_dollars") or k.endswith("_fp"):
                del legacy["msg"][k]
        cur = ticker_units(decode_frame(raw).msg)
        old = ticker_units(decode_frame(legacy).msg)
        # prices, volume, open interest agree; sizes only exist as *_fp
        assert old[:3] == cur[:3] and old[5:] == cur[5:]
        assert old[3] is None and old[4] is None


def test_ticker_time_fallbacks():
    base = {"type": "ticker", "sid": 1, "msg": {"market_ticker": "X"}}
    f = copy.deepcopy(base)
    f["msg"]["time"] = "2022-11-22T20:44:01Z"
    assert ticker_units(decode_frame(f).msg)[7] == 1669149841 * NS
    f["msg"]["ts"] = 1669149842
    assert ticker_units(decode_frame(f).msg)[7] == 1669149842 * NS
    f["msg"]["ts_ms"] = 1669149843001
    assert ticker_units(decode_frame(f).msg)[7] == 1669149843001 * 1_000_000
    assert ticker_units(decode_frame(base).msg)[7] is None


# ---------------------------------------------------------------------------------------------
# trade: both eras


def test_real_trades_legacy_and_dollars_all_lines():
    lines = read_lines(SSMD_TRADE)
    assert len(lines) == 10
    for ln in lines:
        raw = json.loads(ln)
        f = decode_json(ln)
        assert isinstance(f, Trade) and f.type == "trade" and f == decode_frame(raw)
        m = raw["msg"]
        assert (f.sid, f.seq) == (2, raw["seq"])
        assert P(m["yes_price_dollars"]) == m["yes_price"] * 10_000
        assert trade_units(f.msg) == (P(m["yes_price_dollars"]), P(m["no_price_dollars"]),
                                      S(m["count_fp"]), m["taker_side"], m["ts"] * NS)
        # legacy-only version of the same frame: same units
        legacy = copy.deepcopy(raw)
        for k in ("yes_price_dollars", "no_price_dollars", "count_fp"):
            del legacy["msg"][k]
        assert trade_units(decode_frame(legacy).msg) == trade_units(f.msg)


def test_real_trade_current_era():
    raw = json.loads(read_lines(SSMD_EMBEDDED)[2])
    f = both_ways(raw)
    assert isinstance(f, Trade) and (f.sid, f.seq) == (2, 2573)
    assert "yes_price" not in raw["msg"]
    assert trade_units(f.msg) == (890_000, 110_000, 300, "yes", 1773331880 * NS)


def test_trade_no_price_derived_and_outcome_side_preferred():
    raw = {"type": "trade", "sid": 12, "seq": 57,
           "msg": {"trade_id": "d91bc706-ee49-470d-82d8-11418bda6fed", "market_ticker": "HIGHNY-22DEC23-B53.5",
                   "yes_price_dollars": "0.3600", "count_fp": "136.00", "taker_side": "yes",
                   "taker_outcome_side": "no", "taker_book_side": "ask",
                   "is_block_trade": False, "ts": 1669149841, "ts_ms": 1669149841000}}
    assert trade_units(both_ways(raw).msg) == (360_000, 640_000, 13_600, "no",
                                               1669149841000 * 1_000_000)


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
def test_bad_delta_values_raise_in_delta_units(field, value):
    raw = _real_delta()
    raw["msg"][field] = value
    f = decode_frame(raw)  # the shape is fine: strings where strings belong
    with pytest.raises(DecodeError):
        delta_units(f.msg)


def test_delta_with_neither_era_of_price():
    raw = _real_delta()
    del raw["msg"]["price_dollars"]
    with pytest.raises(DecodeError):
        delta_units(decode_frame(raw).msg)
    raw = _real_delta()
    del raw["msg"]["delta_fp"]
    with pytest.raises(DecodeError):
        delta_units(decode_frame(raw).msg)


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
