"""Decoding Kalshi WS frames (kalshi-api.md §7.3-§7.9b) with real frames from the bundled
recordings wherever a real one exists, spec-shaped examples for the rest.

Expected values are computed from the frame JSON with ``Decimal`` (stdlib), never with the
package's own parsers.
"""

from __future__ import annotations

import copy
import json

import pytest

from conftest import SSMD_EMBEDDED, SSMD_TICKER, SSMD_TRADE, read_lines
from kalshi_oracle import iso_to_ns
from kalshi_platform.ingestion.messages import (
    MESSAGE_TYPES,
    Ok,
    OrderbookDelta,
    OrderbookSnapshot,
    Subscribed,
    Ticker,
    Trade,
    Unknown,
    decode_frame,
    decode_json,
)
from kalshi_platform.ingestion.units import snapshot_units, ticker_units, trade_units
from messages_support import D, NS, P, S, SPEC_ERROR, SPEC_EVENT_LIFECYCLE, SPEC_FILL, \
    SPEC_UNSUBSCRIBED, _cockpit_frames, _first, both_ways, delta_units


# ---------------------------------------------------------------------------------------------
# coverage of the message types


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
        assert (f.sid, f.seq, f.market_ticker) == (raw["sid"], raw["seq"], m["market_ticker"])
        side, price, delta, ts = delta_units(f)
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
    assert not hasattr(want, "market_id")
    for odd in (None, 7, ["x"], {"a": 1}, "not-a-uuid"):
        r = copy.deepcopy(raw)
        r["msg"]["market_id"] = odd
        assert both_ways(r) == want


def test_delta_ts_from_iso_when_ts_ms_absent():
    for raw in [f for f in _cockpit_frames() if f["type"] == "orderbook_delta"][:40]:
        raw = copy.deepcopy(raw)
        ts_ms = raw["msg"].pop("ts_ms")
        f = both_ways(raw)
        *_, ts = delta_units(f)
        assert ts == iso_to_ns(raw["msg"]["ts"])  # full µs precision from the ISO string
        assert ts // 1_000_000 == ts_ms
        assert ts % 1000 == 0  # the ISO strings carry microseconds


def test_delta_without_any_timestamp_has_none():
    raw = copy.deepcopy(_first(_cockpit_frames(), "orderbook_delta"))
    del raw["msg"]["ts_ms"], raw["msg"]["ts"]
    assert delta_units(both_ways(raw))[3] is None


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
        assert delta_units(both_ways(legacy)) == delta_units(both_ways(raw))
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
