"""A slow, obviously-correct reference for the compiled ``orderbook_delta`` decoder
(``kalshi_platform/ingestion/_delta.c``), written from the contract, not from the C:
orjson parses the JSON, plain Python checks every field, ``Decimal`` converts the numbers.

``reference(text)`` returns ``("ok", (sid, seq, ticker, side, price µ$, delta c-contracts,
ts))``, ``("invalid", sid, seq)`` (an ``orderbook_delta`` frame the plant must quarantine;
``sid``/``seq`` the envelope counters when they are readable) or ``("other",)`` (not one
JSON object with ``type == "orderbook_delta"``: the generic decoder's business).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import orjson

MAX_COUNTER = 2**63 - 1
MIN_S, MAX_S = 946_684_800, 4_102_444_800  # 2000-01-01, 2100-01-01
MAX_SIZE = 10**10 * 100
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
OTHER = ("other",)


class Bad(Exception):
    pass


def _is_int(v) -> bool:
    return type(v) is int


def _opt(m: dict, key: str, ok) -> object:
    v = m.get(key)
    if v is not None and not ok(v):
        raise Bad(key)
    return v


def _counter(v):
    return v if _is_int(v) and 1 <= v <= MAX_COUNTER else None


def _fixed(text: str, decimals: int) -> int:
    if len(text) > 32 or not NUMBER.fullmatch(text):
        raise Bad(text)
    d = Decimal(text) * 10**decimals
    if d != d.to_integral_value():
        raise Bad(text)
    return int(d)


def _value(text, legacy, decimals: int, cents_scale: int) -> int:
    if text is not None:
        if text == "":
            raise Bad("empty")
        return _fixed(text, decimals)
    if legacy is not None:
        return legacy * cents_scale
    raise Bad("missing")


def _loads(text: bytes | str):
    """orjson decides what is JSON (UTF-8, escapes, no NaN); the stdlib gives the values with
    integers exact at any size (orjson turns those past 64 bits into floats)."""
    try:
        orjson.loads(text)
        return json.loads(text)
    except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        return OTHER


def reference(text: bytes | str) -> tuple:
    obj = _loads(text)
    if obj is OTHER or type(obj) is not dict or obj.get("type") != "orderbook_delta":
        return OTHER
    sid, seq = _counter(obj.get("sid")), _counter(obj.get("seq"))
    try:
        for key in ("sid", "seq"):
            _opt(obj, key, lambda v: _is_int(v) and 1 <= v <= MAX_COUNTER)
        m = obj.get("msg")
        if type(m) is not dict:
            raise Bad("msg")
        ticker = m.get("market_ticker")
        if type(ticker) is not str or not 1 <= len(ticker) <= 128:
            raise Bad("market_ticker")
        side = m.get("side")
        if type(side) is not str:
            raise Bad("side")
        pd = _opt(m, "price_dollars", lambda v: type(v) is str)
        df = _opt(m, "delta_fp", lambda v: type(v) is str)
        pc = _opt(m, "price", _is_int)
        dn = _opt(m, "delta", _is_int)
        ts_ms = _opt(m, "ts_ms", lambda v: _is_int(v) and MIN_S * 1000 <= v < MAX_S * 1000)
        ts = _opt(m, "ts", lambda v: type(v) is str or (_is_int(v) and MIN_S <= v < MAX_S))
        _opt(m, "client_order_id", lambda v: type(v) is str)
        _opt(m, "subaccount", _is_int)
        if side not in ("yes", "no"):
            raise Bad("side value")
        price = _value(pd, pc, 6, 10_000)
        if not 1 <= price <= 999_999:
            raise Bad("price range")
        delta = _value(df, dn, 2, 100)
        if delta == 0 or not -MAX_SIZE <= delta <= MAX_SIZE:
            raise Bad("delta range")
    except Bad:
        return ("invalid", sid, seq)
    if ts_ms is not None:
        t = ts_ms * 1_000_000
    elif _is_int(ts):
        t = ts * 1_000_000_000
    else:
        t = ts  # a string (parsed by the caller) or None
    return ("ok", (obj.get("sid"), obj.get("seq"), ticker, side, price, delta, t))
