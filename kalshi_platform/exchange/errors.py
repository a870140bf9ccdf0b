"""Kalshi-style rejections of exchange commands.

A rejected command returns a :class:`ExchangeError` (``code``, ``message``, ``http_status``),
never raises: the REST layer maps it to Kalshi's error body ``{"code", "message", "details"}``
(docs/kalshi-api.md §3.10) with ``http_status``; FIX maps it to OrdRejReason/CxlRejReason
(docs/trading-api.md §4.2). The code strings are this sim's own (Kalshi does not publish a
list); each names the rule that failed in snake_case.
"""

from __future__ import annotations

import msgspec


class ExchangeError(msgspec.Struct, frozen=True, kw_only=True):
    """Why a command was refused: ``code`` (snake_case), one-line ``message``, ``http_status``
    (400 bad request, 404 unknown object, 409 conflict), and ``details`` (e.g. the existing
    order_id of a duplicate ``client_order_id``)."""

    code: str
    message: str
    http_status: int = 400
    details: str = ""


def err(code: str, message: str, status: int = 400, details: str = "") -> ExchangeError:
    """Shorthand constructor of an :class:`ExchangeError`."""
    return ExchangeError(code=code, message=message, http_status=status, details=details)


# codes (one place, so the REST/FIX layers can map them)
INVALID_PARAMETER = "invalid_parameter"
MARKET_NOT_FOUND = "market_not_found"
MARKET_EXISTS = "market_already_exists"
MARKET_CLOSED = "market_closed"
INVALID_PRICE = "invalid_price"
INVALID_COUNT = "invalid_count"
INSUFFICIENT_BALANCE = "insufficient_balance"
ORDER_ALREADY_EXISTS = "order_already_exists"
ORDER_NOT_FOUND = "order_not_found"
ORDER_NOT_RESTING = "order_not_resting"
POST_ONLY_CROSS = "post_only_cross"
REDUCE_ONLY = "reduce_only_violation"
OPEN_ORDER_LIMIT = "open_order_limit_exceeded"
ORDER_GROUP_NOT_FOUND = "order_group_not_found"
ORDER_GROUP_EXISTS = "order_group_already_exists"
ORDER_GROUP_TRIGGERED = "order_group_triggered"
BATCH_TOO_LARGE = "batch_too_large"
INVALID_STATE = "invalid_market_state"
