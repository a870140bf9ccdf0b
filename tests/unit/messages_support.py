"""Shared helpers of the WS frame decoding tests (test_messages.py,
test_messages_control.py): independent Decimal unit converters, the bundled cockpit frames and
spec-shaped example frames (kalshi-api.md §7.3-§7.9b)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

from conftest import COCKPIT, read_lines
from kalshi_platform.ingestion.messages import Unknown, decode_frame, decode_json

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


def delta_units(f) -> tuple:
    """``(side, price, delta, ts_ns)`` of a decoded :class:`OrderbookDelta`."""
    return f.side, f.price, f.delta, f.ts_ns


def both_ways(frame: dict):
    """decode_json(text) and decode_frame(dict) must agree; returns the decoded frame."""
    a = decode_json(json.dumps(frame))
    b = decode_frame(copy.deepcopy(frame))
    c = decode_json(json.dumps(frame).encode())
    assert type(a) is type(b) is type(c)
    if not isinstance(a, Unknown):
        assert a == b == c
    return a


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
