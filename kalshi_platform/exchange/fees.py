"""Kalshi trading fees (docs/trading-api.md §4.4), configurable.

``fee = ceil_to($0.0001, coefficient × fee_multiplier × C × P × (1 − P))`` with C contracts
and P the trade's price in dollars (the same for the YES and the NO side, P(1−P) is
symmetric). Coefficients: taker 0.07; maker 0.0175 on ``quadratic_with_maker_fees`` series,
0 on ``quadratic``. ``fee_multiplier`` scales the coefficient: checked against real fills
(docs/exchange.md "Fees": KXMLBGAME, multiplier 0.5, 1 @ $0.52 → $0.0088). Unverified and
therefore configurable (:class:`FeeConfig`): the combo-maker series (treated as maker-fee
series), the ``flat`` fee type (a flat amount per contract, default $0.0025, the old maker
fee) and the balance precision (default $0.0001, Kalshi's direct-member precision; $0.01
for others).

Money is in 1e-8 dollar units (events.MONEY_SCALE); counts in centi-contracts; prices in
micro-dollars.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from kalshi_platform.exchange.events import MONEY_SCALE

FEE_TYPES = ("quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees",
             "flat")
#: $0.0001 in money units: trade fees are rounded up to it (docs/trading-api.md §4.4)
FEE_UNIT = MONEY_SCALE // 10_000
_P1 = 1_000_000  # $1 in micro-dollars


@dataclass(frozen=True)
class FeeConfig:
    """Exchange-wide fee settings (all Fractions of a dollar or plain coefficients).

    ``balance_precision``: money units a balance change is floored to (10**4 = $0.0001,
    10**6 = $0.01); the difference is a rounding fee that a per-order accumulator pays back
    (docs/trading-api.md §4.4 "fee_rounding")."""

    taker_coefficient: Fraction = Fraction(7, 100)
    maker_coefficient: Fraction = Fraction(175, 10_000)
    flat_fee_per_contract: Fraction = Fraction(25, 10_000)
    combo_has_maker_fees: bool = True
    balance_precision: int = FEE_UNIT
    fee_rounding: int = FEE_UNIT  # money units a trade fee is rounded up to (10**6: the cent)


FeeFn = Callable[[int, int], int]


def _quadratic(coef: Fraction, unit: int) -> FeeFn:
    # money = coef * (C/100) * (P/1e6) * ((1e6-P)/1e6) * 1e8  = coef*C*P*(1e6-P)/1e6
    # in rounding units: / unit more; ceil, then back to money
    num, den = coef.numerator, coef.denominator * 1_000_000 * unit
    if num == 0:
        return lambda count, price: 0

    def fee(count: int, price: int) -> int:
        return -(-num * count * price * (_P1 - price) // den) * unit
    return fee


def _flat(per_contract: Fraction, unit: int) -> FeeFn:
    # money = per_contract * C/100 * 1e8 = per_contract * C * 1e6
    num, den = per_contract.numerator * 1_000_000, per_contract.denominator * unit

    def fee(count: int, price: int) -> int:
        return -(-num * count // den) * unit
    return fee


def fee_functions(fee_type: str, multiplier: str | Fraction,
                  cfg: FeeConfig = FeeConfig()) -> tuple[FeeFn, FeeFn]:
    """``(taker_fee, maker_fee)``: each ``(count centi-contracts, price micro-dollars) ->
    money units``, rounded up to ``cfg.fee_rounding`` ($0.0001 by default).

    Raises ValueError for an unknown ``fee_type`` or a multiplier that is not a non-negative
    decimal. Source: docs/trading-api.md §4.4."""
    if fee_type not in FEE_TYPES:
        raise ValueError(f"fee_type must be one of {', '.join(FEE_TYPES)}, got {fee_type!r}")
    try:
        mult = Fraction(multiplier)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ValueError(f"fee_multiplier must be a decimal number, got {multiplier!r}") from None
    if mult < 0:
        raise ValueError(f"fee_multiplier must be >= 0, got {multiplier!r}")
    if fee_type == "flat":
        f = _flat(cfg.flat_fee_per_contract * mult, cfg.fee_rounding)
        return f, f
    maker = fee_type == "quadratic_with_maker_fees" or (
        fee_type == "quadratic_with_combo_maker_fees" and cfg.combo_has_maker_fees)
    return (_quadratic(cfg.taker_coefficient * mult, cfg.fee_rounding),
            _quadratic(cfg.maker_coefficient * mult if maker else Fraction(0), cfg.fee_rounding))


def fee_params(fee_type: str, multiplier: str | Fraction,
               cfg: FeeConfig = FeeConfig()) -> tuple[tuple, tuple]:
    """``(taker, maker)`` as the C core computes them (``_core.c`` ``fee_of``): each
    ``(kind, num, den, unit)``: kind 0 no fee, 1 quadratic (``ceil(num·C·P·(1e6−P) / den) ·
    unit``), 2 flat (``ceil(num·C / den) · unit``), 3 too large for int64 (the C core calls
    the fee_functions closure). The same formula and rounding as :func:`fee_functions`
    (which validates the arguments: call it first)."""
    mult = Fraction(multiplier)
    if fee_type == "flat":
        f = _params(2, cfg.flat_fee_per_contract * mult * 1_000_000, cfg.fee_rounding)
        return f, f
    maker = fee_type == "quadratic_with_maker_fees" or (
        fee_type == "quadratic_with_combo_maker_fees" and cfg.combo_has_maker_fees)
    return (_params(1, cfg.taker_coefficient * mult / 1_000_000, cfg.fee_rounding),
            _params(1, cfg.maker_coefficient * mult / 1_000_000 if maker else Fraction(0),
                    cfg.fee_rounding))


def _params(kind: int, coef: Fraction, unit: int) -> tuple[int, int, int, int]:
    num, den = coef.numerator, coef.denominator * unit
    if num == 0:
        return (0, 0, 1, unit)
    if max(num, den, unit) >= 2**62:
        return (3, 0, 1, unit)
    return (kind, num, den, unit)


def floor_to(amount: int, precision: int) -> int:
    """``amount`` (money units) floored to a multiple of ``precision`` (towards −∞: a debit
    rounds up in size, a credit down)."""
    return amount - amount % precision
