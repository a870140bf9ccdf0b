"""Fees (docs/trading-api.md §4.4): the quadratic formula, its documented examples, real
Kalshi fills from ../shared (fee_cost per fill for series whose fee_type and multiplier were
captured), the rounding-fee accumulator, and Kalshi's fill/settlement JSON keys."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from exchange_paths import SHARED_REST
from kalshi_platform.exchange import (AddMarket, CreateOrder, Deposit, Exchange,
                                      ExchangeConfig, FeeConfig)
from kalshi_platform.exchange.fees import fee_functions
from kalshi_platform.exchange.views import fill_json, settlement_json
from kalshi_platform.fixedpoint import parse_price, parse_size

CENT = 10**6  # money units
DOLLAR = 10**8


def test_documented_examples_round_up_to_the_cent():
    """$0.02 per contract at 50¢ and ceil(0.175) = $0.18 for 10 contracts at 50¢ (the
    third-party pages quoted in docs/trading-api.md §4.4 round to the cent)."""
    taker, _ = fee_functions("quadratic", "1", FeeConfig(fee_rounding=CENT))
    assert taker(100, 500_000) == 2 * CENT
    assert taker(1000, 500_000) == 18 * CENT


def test_formula_rounds_up_to_a_hundredth_of_a_cent_by_default():
    taker, maker = fee_functions("quadratic_with_maker_fees", "1")
    assert taker(1000, 500_000) == 1750 * 10**4          # $0.1750 exactly
    assert maker(1000, 500_000) == 438 * 10**4           # 0.0175*10*0.25 = 0.04375 -> 0.0438
    assert taker(100, 990_000) == 7 * 10**4              # 0.000693 -> $0.0007
    assert fee_functions("quadratic", "1")[1](1000, 500_000) == 0  # no maker fee
    flat_t, flat_m = fee_functions("flat", "1")
    assert flat_t(1000, 300_000) == flat_m(1000, 300_000) == 250 * 10**4  # 10 x $0.0025
    with pytest.raises(ValueError):
        fee_functions("nope", "1")
    with pytest.raises(ValueError):
        fee_functions("quadratic", "-1")


def _load(name):
    path = SHARED_REST / name
    if not path.is_file():
        pytest.skip(f"{path} not found: real captures in ../shared not available")
    return json.loads(path.read_text())


def test_real_fills_fee_cost_matches_the_formula():
    """Every real fill of a series whose fee fields were captured: our taker fee for its
    count and price equals Kalshi's fee_cost (multiplier 0.5 and 1, with and without maker
    fees): this is what shows fee_multiplier scales the 0.07 coefficient."""
    fills = _load("cockpit_prod/portfolio_fills_redacted.json")["payload"]["fills"]
    series = {k: v["series"] for k, v in
              _load("cockpit_prod/series_fee_fields.json")["payloads"].items()}
    checked = 0
    for f in fills:
        s = series.get(f["ticker"].split("-")[0])
        if s is None:
            continue
        taker, _ = fee_functions(s["fee_type"], str(s["fee_multiplier"]))
        assert f["is_taker"]
        got = taker(parse_size(f["count_fp"]), parse_price(f["yes_price_dollars"]))
        assert got == parse_price(f["fee_cost"]) * 100, f
        checked += 1
    assert checked >= 10


def _market(ex, precision_fee_type="quadratic"):
    ex.submit(AddMarket(ticker="M", fee_type=precision_fee_type,
                        price_ranges=[(0, 1_000_000, 1_000)]), 0)
    for u in ("a", "b"):
        ex.submit(Deposit(user_id=u, amount=100_000), 0)


def test_rounding_accumulator_converges_to_one_fill():
    """At cent balance precision, 100 fills of 0.01 contract at $0.123 each round the
    debit up, and the per-order accumulator pays the whole cents back: the total equals one
    fill of 1 contract (cost $0.123 + fee), floored to the cent once."""
    ex = Exchange(ExchangeConfig(fees=FeeConfig(balance_precision=CENT)))
    _market(ex)
    ex.submit(CreateOrder(user_id="a", ticker="M", side="yes", action="buy", count=100,
                          yes_price=123_000), 1)
    start = ex.accounts["a"].cash
    roundings = []
    for k in range(100):
        r = ex.submit(CreateOrder(user_id="b", ticker="M", side="yes", action="sell", count=1,
                                  yes_price=123_000), 2 + k)
        roundings += [f.rounding_fee for f in r.events if type(f).__name__ == "Fill"
                      and f.user_id == "a"]
    paid = start - ex.accounts["a"].cash
    assert paid == 13 * CENT  # ceil to the cent of $0.123 (maker fee 0 on quadratic)
    assert any(x > 0 for x in roundings) and any(x < 0 for x in roundings)  # rebates happen
    assert ex.check_invariants() == []


def test_fill_and_settlement_json_have_kalshis_keys():
    real_fill = _load("cockpit_prod/portfolio_fills_redacted.json")["payload"]["fills"][0]
    real_settle = _load("cockpit_prod/portfolio_settlements_redacted.json")["payload"][
        "settlements"][0]
    ex = Exchange()
    _market(ex)
    ex.submit(CreateOrder(user_id="a", ticker="M", side="yes", action="buy", count=100,
                          yes_price=520_000), 1)
    r = ex.submit(CreateOrder(user_id="b", ticker="M", side="no", action="buy", count=100,
                              no_price=480_000), 2 * 10**9)
    fill = next(e for e in r.events if type(e).__name__ == "Fill")
    ours = fill_json(fill)
    assert set(ours) == set(real_fill)
    assert ours["fee_cost"] == "0.017500" and ours["yes_price_dollars"] == "0.5200"
    for k in ("count_fp", "yes_price_dollars", "no_price_dollars"):
        parse_size(ours[k]) if k == "count_fp" else parse_price(ours[k])
    from kalshi_platform.exchange import CloseMarket, DetermineMarket, SettleMarket
    for c in (CloseMarket(ticker="M"), DetermineMarket(ticker="M", result="yes"),
              SettleMarket(ticker="M")):
        assert ex.submit(c, 3 * 10**9).ok
    s = settlement_json(ex.settlements["b"][0])
    assert set(s) == set(real_settle)
    assert s["market_result"] == "yes" and s["revenue"] == 0 and s["no_count_fp"] == "1.00"
    assert settlement_json(ex.settlements["a"][0])["revenue"] == 100
    assert Fraction(s["no_total_cost_dollars"]) == Fraction(48, 100)
