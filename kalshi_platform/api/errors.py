"""The one parser of Kalshi error bodies (REST responses, WebSocket handshakes, WS ``error``).

Shapes seen, all accepted by :func:`parse_error` (docs/kalshi-api.md §3.10, §7.3):

==============================================================  ==============================
body                                                            where
==============================================================  ==============================
``{"error": {"code": str, "message": str, "details": str}}``    live REST 4xx/5xx (wrapped)
``{"code": str, "message": str, "details": str}``               SDK 3.34 ``ErrorResponse``
                                                                (flat; ``service`` removed
                                                                2026-08-06)
``{"error": "too many requests"}``                              REST 429 (a string)
``{"code": int, "msg": str, "market_ticker"?: str}``            WS ``error`` frame's ``msg``
``{"id": n, "type": "error", "msg": {...}}``                    a whole WS ``error`` frame
text or HTML, empty body                                        proxies, gateways, 502 pages
==============================================================  ==============================

Nothing here raises: any input yields a :class:`KalshiErrorBody` (possibly empty), and the text
forms are one line of at most ``limit`` characters, safe to put in a log or a user message.
Imports only the standard library and ``orjson`` (the ingestion layer uses it without pulling
the REST client or the ticker plant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import orjson

__all__ = ["KalshiErrorBody", "parse_error", "error_text"]

#: bodies longer than this are not parsed as JSON (the text fallback still shows their start)
_MAX_PARSE = 64 << 10
_LIMIT = 200


@dataclass(frozen=True)
class KalshiErrorBody:
    """A Kalshi error, its fields as text (``""`` when absent).

    ``code``: REST codes are strings (``"not_found"``), WS codes integers (``16``), both kept as
    ``str``. ``message``: the human text (REST ``message``, WS ``msg``, the 429 string, or the
    first line of a non-JSON body). ``details``: REST ``details``. ``market_ticker``: the market
    a WS error names, if any (or its ``market_id``).
    """

    code: str = ""
    message: str = ""
    details: str = ""
    market_ticker: str = ""

    def __str__(self) -> str:
        """``code: message: details (market)``, empty parts left out."""
        text = ": ".join(p for p in (self.code, self.message, self.details) if p)
        if self.market_ticker:
            text = f"{text} ({self.market_ticker})" if text else self.market_ticker
        return text

    def __bool__(self) -> bool:
        return bool(self.code or self.message or self.details or self.market_ticker)


def _one_line(text: str, limit: int) -> str:
    """Whitespace (newlines, tabs) collapsed to single spaces, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _field(obj: Mapping[str, Any], *keys: str) -> str:
    for k in keys:
        v = obj.get(k)
        if v is not None and v != "" and not isinstance(v, (dict, list)):
            return str(v)
    return ""


def _from_mapping(obj: Mapping[str, Any], limit: int) -> KalshiErrorBody:
    if obj.get("type") == "error" and isinstance(obj.get("msg"), Mapping):
        obj = obj["msg"]  # a whole WS error frame
    err = obj.get("error", obj)
    if isinstance(err, str):
        return KalshiErrorBody(message=_one_line(err, limit))
    if not isinstance(err, Mapping):
        err = obj
    found = KalshiErrorBody(
        code=_one_line(_field(err, "code"), limit),
        message=_one_line(_field(err, "message", "msg"), limit),
        details=_one_line(_field(err, "details"), limit),
        market_ticker=_one_line(_field(err, "market_ticker", "market_id"), limit))
    if found:
        return found
    # an unknown JSON shape: show it rather than nothing
    return KalshiErrorBody(message=_one_line(orjson.dumps(obj, default=str).decode(), limit))


def parse_error(body: bytes | bytearray | str | Mapping[str, Any] | None, *,
                limit: int = _LIMIT) -> KalshiErrorBody:
    """Read a Kalshi error body into a :class:`KalshiErrorBody`.

    ``body``: the raw response bytes or text (REST, handshake), or an already decoded mapping
    (a WS ``error`` frame or its ``msg``). Every field is one line of at most ``limit``
    characters. Never raises: an unparseable or non-object body becomes ``message`` = its first
    characters on one line; ``None``/empty gives an empty (falsy) result.
    """
    if body is None:
        return KalshiErrorBody()
    if isinstance(body, Mapping):
        return _from_mapping(body, limit)
    if isinstance(body, (bytes, bytearray, memoryview)):
        text = bytes(body[: _MAX_PARSE + 1]).decode("utf-8", "replace")
    else:
        text = str(body)[: _MAX_PARSE + 1]
    if not text.strip():
        return KalshiErrorBody()
    if len(text) <= _MAX_PARSE:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, Mapping):
            return _from_mapping(obj, limit)
        if isinstance(obj, str):
            return KalshiErrorBody(message=_one_line(obj, limit))
    return KalshiErrorBody(message=_one_line(text, limit))


def error_text(body: bytes | bytearray | str | Mapping[str, Any] | None, *,
               limit: int = _LIMIT) -> str:
    """``str(parse_error(body))`` cut to ``limit`` characters: one line, ``""`` for an empty
    body. E.g. ``not_found: market not found``, ``too many requests``,
    ``16: Market not found (NOPE-1)``."""
    return _one_line(str(parse_error(body, limit=limit)), limit)
