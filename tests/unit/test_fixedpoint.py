"""Fixed-point parsing of Kalshi prices (µ$) and sizes (centi-contracts), kalshi-api.md §5.

The expected integers are computed independently with ``Decimal`` wherever that is possible, so
the tests do not restate the implementation.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from kalshi_platform.fixedpoint import (
    CENT,
    PRICE_SCALE,
    SIZE_SCALE,
    FixedPointError,
    cents_to_price,
    contracts_to_size,
    parse_price,
    parse_size,
    price_to_decimal,
    price_to_str,
    size_to_decimal,
    size_to_str,
)


def test_units():
    assert PRICE_SCALE == 1_000_000  # prices in micro-dollars
    assert SIZE_SCALE == 100  # sizes in centi-contracts
    assert CENT == 10_000


@pytest.mark.parametrize(
    "text, units",
    [
        ("0.5600", 560_000),  # the usual 4 decimals
        ("0.0010", 1_000),  # sub-cent tick (deci_cent markets)
        ("0.9990", 999_000),
        ("0.960", 960_000),  # 3 decimals seen in WS examples
        ("0.123456", 123_456),  # the 6 decimals the schema allows
        ("0.1234560", 123_456),  # a 7th digit that is zero loses nothing
        ("1.0000", 1_000_000),
        ("0", 0),
        ("0.0000", 0),
        ("1", 1_000_000),
        ("-0.0100", -10_000),
        ("12.5", 12_500_000),
    ],
)
def test_parse_price_valid(text, units):
    assert parse_price(text) == units
    assert units == int(Decimal(text) * PRICE_SCALE)  # independent check of the table


@pytest.mark.parametrize(
    "text, units",
    [
        ("10.00", 1_000),
        ("2002.35", 200_235),  # real fractional size from the cockpit capture
        ("966425.00", 96_642_500),
        ("-54.00", -5_400),  # signed delta_fp
        ("-3.13", -313),
        ("1", 100),
        ("0.5", 50),
        ("10909.09", 1_090_909),
        ("0.00", 0),
        ("1.000", 100),  # trailing zero beyond 2 decimals is exact
    ],
)
def test_parse_size_valid(text, units):
    assert parse_size(text) == units
    assert units == int(Decimal(text) * SIZE_SCALE)


@pytest.mark.parametrize("text", [" 0.5 ", "+0.5", ".5", "1.", "9" * 4301, "0." + "0" * 40,
                                  "", "   ", "abc", "1e-3", "1E2", "0.1234567", "0.12.3", "-",
                                  ".", "0x10", "1,5", "--1", "nan", "inf", "0.5$", "½"])
def test_parse_price_rejects(text):
    with pytest.raises(FixedPointError):
        parse_price(text)


@pytest.mark.parametrize("text", ["", "abc", "1e-3", "1.005", "0.001", "12.3.4", "-", "1_000"])
def test_parse_size_rejects(text):
    with pytest.raises(FixedPointError):
        parse_size(text)


@pytest.mark.parametrize("bad", [None, 56, 0.56, Decimal("0.56"), b"0.56"])
def test_parse_rejects_non_strings(bad):
    with pytest.raises(FixedPointError):
        parse_price(bad)
    with pytest.raises(FixedPointError):
        parse_size(bad)


def test_rejection_is_not_cached_as_a_value():
    # the memo must never turn an earlier failure into a later success (or vice versa)
    for _ in range(2):
        with pytest.raises(FixedPointError):
            parse_price("0.1234567")
        assert parse_price("0.123456") == 123_456


def test_fixed_point_error_is_a_value_error():
    assert issubclass(FixedPointError, ValueError)


def test_legacy_cents_and_counts():
    assert cents_to_price(56) == parse_price("0.56")
    assert cents_to_price(1) == parse_price("0.0100")
    assert cents_to_price(99) == parse_price("0.99")
    assert cents_to_price(0) == 0
    assert contracts_to_size(300) == parse_size("300.00")
    assert contracts_to_size(-54) == parse_size("-54.00")


@pytest.mark.parametrize("bad", [True, False, 56.0, 0.5, "56", None, Decimal(56)])
def test_legacy_converters_reject_non_ints(bad):
    with pytest.raises(FixedPointError):
        cents_to_price(bad)
    with pytest.raises(FixedPointError):
        contracts_to_size(bad)


@pytest.mark.parametrize(
    "units, text",
    [(560_000, "0.5600"), (1_000, "0.0010"), (123_456, "0.123456"), (960_000, "0.9600"),
     (1_000_000, "1.0000"), (0, "0.0000"), (-10_000, "-0.0100"), (5, "0.000005"),
     (-5, "-0.000005")],
)
def test_price_to_str(units, text):
    assert price_to_str(units) == text
    assert parse_price(text) == units


@pytest.mark.parametrize("units, text", [(200_235, "2002.35"), (-5_400, "-54.00"), (0, "0.00"),
                                         (1, "0.01"), (-1, "-0.01"), (100, "1.00")])
def test_size_to_str(units, text):
    assert size_to_str(units) == text
    assert parse_size(text) == units


def test_none_passes_through():
    assert price_to_str(None) is None and size_to_str(None) is None
    assert price_to_decimal(None) is None and size_to_decimal(None) is None


def test_round_trips_random():
    rng = random.Random(20260807)
    for _ in range(5_000):
        p = rng.randint(-2_000_000, 2_000_000)
        s = rng.randint(-10**9, 10**9)
        assert parse_price(price_to_str(p)) == p
        assert parse_size(size_to_str(s)) == s
        assert price_to_decimal(p) == Decimal(p) / PRICE_SCALE
        assert size_to_decimal(s) == Decimal(s) / SIZE_SCALE
        # the string is the exact decimal value
        assert Decimal(price_to_str(p)) == Decimal(p) / PRICE_SCALE
        assert Decimal(size_to_str(s)) == Decimal(s) / SIZE_SCALE
