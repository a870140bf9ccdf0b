"""Kalshi-style rejections of exchange commands.

A rejected command returns a :class:`ExchangeError` (``code``, ``message``, ``http_status``),
never raises: the REST layer maps it to Kalshi's error body ``{"code", "message", "details"}``
(docs/kalshi-api.md §3.10) with ``http_status``; FIX maps it to OrdRejReason/CxlRejReason
(docs/trading-api.md §4.2). The code strings are this sim's own (Kalshi does not publish a
list); each names the rule that failed in snake_case.
"""

from __future__ import annotations

import msgspec

from kalshi_platform.fixedpoint import MAX_SIZE


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


def _insufficient(need: int) -> ExchangeError:
    up = -(-need // 10**4)  # money units -> $0.0001, rounded up: never "$0.0000"
    return err(INSUFFICIENT_BALANCE, f"insufficient balance: the order needs "
               f"${up // 10**4}.{up % 10**4:04d} more collateral")


def _price_grid(yes_price, no_price) -> ExchangeError:
    price = yes_price if no_price is None else 1_000_000 - no_price
    return err(INVALID_PRICE, f"yes price {price / 1_000_000:.6f} is outside the market's "
               "price_ranges or off its tick")


_BAD = INVALID_PARAMETER
_REJECTS = {
    "market_not_found": lambda t: err(MARKET_NOT_FOUND, f"no market {t!r}", 404),
    "market_closed": lambda t, status: err(MARKET_CLOSED, f"market {t} is {status}, not open"),
    "side": lambda side, action: err(_BAD, "side must be yes|no and action buy|sell, got "
                                     f"{side!r}/{action!r}"),
    "count": lambda count: err(INVALID_COUNT, f"count must be 1..{MAX_SIZE} centi-contracts, "
                               f"got {count!r}"),
    "one_price": lambda: err(_BAD, "exactly one of yes_price, no_price is required"),
    "price_type": lambda p: err(INVALID_PRICE, f"price must be an integer in micro-dollars, "
                                f"got {p!r}"),
    "price_grid": _price_grid,
    "tif": lambda: err(_BAD, "time_in_force must be one of good_till_canceled, "
                       "immediate_or_cancel, fill_or_kill"),
    "stp": lambda: err(_BAD, "self_trade_prevention_type must be taker_at_cross or maker"),
    "expiration": lambda: err(_BAD, "expiration_ts must be a non-negative integer (UTC seconds)"),
    "buy_max_cost": lambda: err(_BAD, "buy_max_cost must be a positive integer (cents) on a "
                                "buy order"),
    "post_only_tif": lambda: err(_BAD, "post_only needs time_in_force good_till_canceled"),
    "reduce_only_tif": lambda: err(_BAD, "reduce_only orders must be immediate_or_cancel or "
                                   "fill_or_kill"),
    "client_id": lambda: err(_BAD, "client_order_id must be 1-64 characters of letters, digits, "
                             "_-:+=/"),
    "subaccount": lambda: err(_BAD, "subaccount must be 0..32"),
    "duplicate": lambda coid, prior: err(ORDER_ALREADY_EXISTS, f"client_order_id {coid!r} was "
                                         f"already used by order {prior}", 409, details=prior),
    "open_orders": lambda n: err(OPEN_ORDER_LIMIT, f"at most {n} open orders"),
    "group_not_found": lambda g: err(ORDER_GROUP_NOT_FOUND, f"no order group {g!r}", 404),
    "group_triggered": lambda g: err(ORDER_GROUP_TRIGGERED, f"order group {g} was triggered; "
                                     "reset it to place orders"),
    "reduce_only": lambda count, held: err(REDUCE_ONLY, f"reduce_only order of {count / 100} "
                                           f"contracts exceeds the {max(held, 0) / 100} held "
                                           "on the side it closes"),
    "too_large": lambda count: err(INVALID_COUNT, f"an order of {count!r} centi-contracts "
                                   "takes the account's open orders beyond the exchange's "
                                   "64-bit collateral sums"),
    "post_only_cross": lambda: err(POST_ONLY_CROSS, "post_only order would cross the book"),
    "insufficient": _insufficient,
    "order_not_found": lambda oid: err(ORDER_NOT_FOUND, f"no order {oid!r}", 404),
    "order_not_resting": lambda oid, status: err(ORDER_NOT_RESTING, f"order {oid} is {status}, "
                                                 "not resting"),
}


def reject(kind: str, *args) -> ExchangeError:
    """The refusal named ``kind`` (a key of ``_REJECTS``: one rule of order entry or cancel,
    e.g. ``reject("count", 0)``) with its Kalshi-style code and message; the C core
    (``_core.c``) and edits.py build their errors here. Raises KeyError for an unknown kind."""
    return _REJECTS[kind](*args)
