"""Fixed-point integers for Kalshi prices and sizes.

Inside the plant every price and size is an ``int``; floats never enter a book.

* Prices: integer **micro-dollars** (1e-6 USD). Kalshi sends prices as fixed-point dollar
  strings with up to 6 decimals (``"0.5600"``, sub-cent ``"0.0010"``; docs/kalshi-api.md §5), and
  before 2026-03-12 also as integer cents (``56``).  ``PRICE_SCALE`` covers both exactly.
* Sizes: integer **centi-contracts** (1e-2 contracts). Kalshi sends counts as ``*_fp`` strings
  with 2 decimals (``"2002.35"``; docs/kalshi-api.md §5) and before 2026-03-12 as integer contracts.

Parsing is the decoder's hottest step, and a feed repeats the same few hundred price strings
and a few thousand size strings, so results are memoised in bounded dicts.
"""

from __future__ import annotations

import re
from decimal import Decimal

PRICE_DECIMALS = 6
PRICE_SCALE = 10**PRICE_DECIMALS  # units per dollar
SIZE_DECIMALS = 2
SIZE_SCALE = 10**SIZE_DECIMALS  # units per contract
ONE_DOLLAR = PRICE_SCALE
CENT = PRICE_SCALE // 100

#: the largest size anywhere in the plant: 10^10 contracts (docs/kalshi-api.md §5 gives no bound;
#: Kalshi's largest open interest is ~10^8, so 10^10 leaves room and still fits an int64 column)
MAX_CONTRACTS = 10**10
MAX_SIZE = MAX_CONTRACTS * SIZE_SCALE  # in centi-contracts
#: longest numeric text accepted: a few dozen characters, checked *before* ``int()`` sees it,
#: so a 4,301-digit number never reaches Python's int parser (CVE-2020-10735 limit).
MAX_NUMBER_TEXT = 32

_CACHE_LIMIT = 200_000
#: the grammar of a Kalshi fixed-point string: optional ``-``, digits, optionally ``.`` and
#: digits. Deliberately strict: no whitespace, no ``+``, no ``.5``/``1.``, no exponent. Kalshi
#: always sends ``"0.5600"``-style strings (docs/kalshi-api.md §5), so anything else is a corrupt
#: frame, not a spelling to accept.
_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class FixedPointError(ValueError):
    """A price or size string is not a valid fixed-point decimal for its scale.

    Raised for empty strings, text longer than :data:`MAX_NUMBER_TEXT`, anything outside the
    grammar ``-?[0-9]+(.[0-9]+)?`` (whitespace, ``+``, ``.5``, ``1.``, exponents), and digits
    beyond the scale (``"0.1234567"`` as a price) that would be lost by rounding.
    """


def _parse(text: str, decimals: int, what: str) -> int:
    if not isinstance(text, str):
        raise FixedPointError(f"{what} must be a decimal string, got {type(text).__name__}")
    if len(text) > MAX_NUMBER_TEXT:
        raise FixedPointError(f"{what} text is {len(text)} characters long "
                              f"(at most {MAX_NUMBER_TEXT})")
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise FixedPointError(f"{what} {text!r} is not a decimal number")
    sign, whole, frac = m.groups()
    frac = frac or ""
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise FixedPointError(f"{what} {text!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    value = int(whole + frac.ljust(decimals, "0"))
    return -value if sign else value


def _cached_parser(decimals: int, what: str, cache_bound: int):
    """A parser ``text -> int`` at ``decimals`` with its own bounded memo dict (only results
    with ``abs(value) <= cache_bound`` are memoised)."""
    cache: dict[str, int] = {}

    def parse(text: str) -> int:
        if type(text) is not str:
            raise FixedPointError(f"{what} must be a decimal string, got {type(text).__name__}")
        v = cache.get(text)
        if v is None:
            v = _parse(text, decimals, what)
            if -cache_bound <= v <= cache_bound:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[text] = v
        return v

    return parse


parse_price = _cached_parser(PRICE_DECIMALS, "price", 1_000 * PRICE_SCALE)
parse_price.__name__ = "parse_price"
parse_price.__doc__ = """Parse a dollar string (``"0.5600"``) into integer micro-dollars (``560000``).

    Accepts 0-6 decimals and a leading ``-`` (REST amounts can be negative); the range a field
    allows is the caller's check (a book price must lie in (0, 1) dollars). Raises
    :class:`FixedPointError` on ``""``, text outside the grammar or longer than
    :data:`MAX_NUMBER_TEXT`, or precision beyond 1e-6. Source: docs/kalshi-api.md §5
    (``*_dollars`` fields).
    """

parse_size = _cached_parser(SIZE_DECIMALS, "size", MAX_SIZE)
parse_size.__name__ = "parse_size"
parse_size.__doc__ = """Parse a contract-count string (``"2002.35"``, ``"-54.00"``) into centi-contracts.

    Raises :class:`FixedPointError` on ``""``, text outside the grammar (``"abc"``, ``"+1"``)
    or longer than :data:`MAX_NUMBER_TEXT`, or precision beyond 0.01 contract. Range checks
    (``0 < size <= MAX_SIZE``) are the caller's. Source: docs/kalshi-api.md §5 (``*_fp`` fields).
    """


def cents_to_price(cents: int) -> int:
    """Legacy integer cents (pre-2026-03-12 ``price``/``yes_bid`` fields) → micro-dollars.

    Raises :class:`FixedPointError` if ``cents`` is not an int (bools are rejected too).
    """
    if type(cents) is not int:
        raise FixedPointError(f"legacy cent price must be an integer, got {cents!r}")
    return cents * CENT


def contracts_to_size(count: int) -> int:
    """Legacy integer contract count (pre-2026-03-12 ``count``/``delta``) → centi-contracts.

    Raises :class:`FixedPointError` if ``count`` is not an int.
    """
    if type(count) is not int:
        raise FixedPointError(f"legacy integer count must be an integer, got {count!r}")
    return count * SIZE_SCALE


def price_to_decimal(units: int | None) -> Decimal | None:
    """Micro-dollars → exact ``Decimal`` dollars (``560000`` → ``Decimal("0.560000")``)."""
    return None if units is None else Decimal(units).scaleb(-PRICE_DECIMALS)


def size_to_decimal(units: int | None) -> Decimal | None:
    """Centi-contracts → exact ``Decimal`` contracts (``200235`` → ``Decimal("2002.35")``)."""
    return None if units is None else Decimal(units).scaleb(-SIZE_DECIMALS)


def price_to_str(units: int | None) -> str | None:
    """Micro-dollars → a normalised dollar string with at least 4 decimals (``"0.5600"``)."""
    if units is None:
        return None
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), PRICE_SCALE)
    f = f"{frac:06d}".rstrip("0").ljust(4, "0")
    return f"{sign}{whole}.{f}"


def size_to_str(units: int | None) -> str | None:
    """Centi-contracts → a contract string with 2 decimals (``"2002.35"``)."""
    if units is None:
        return None
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), SIZE_SCALE)
    return f"{sign}{whole}.{frac:02d}"


def price_to_float(units: int | None) -> float | None:
    """Micro-dollars → float dollars, for storage columns only (never for book arithmetic)."""
    return None if units is None else units / PRICE_SCALE


def size_to_float(units: int | None) -> float | None:
    """Centi-contracts → float contracts, for storage columns only."""
    return None if units is None else units / SIZE_SCALE
