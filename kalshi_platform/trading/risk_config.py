"""Pre-trade risk settings, read from a ``risk.toml`` (issue 14 §3; docs/trading.md "Risk").

Every check is configurable and off when its limit is absent or 0. Values are written in the
units a trader thinks in (dollars as strings or numbers, whole or fractional contracts,
seconds) and held as the plant's integers. Example (the ``[risk]`` table; a file holding only
these keys at the top level works too)::

    [risk]
    price_min = "0.01"          # market price range (YES scale, dollars)
    price_max = "0.99"
    tick = "0.01"               # for the collar
    collar_ticks = 10           # within N ticks of the opposite best
    max_order_size = 500        # contracts
    max_order_notional = "200"  # dollars (count x the order's own price)
    max_position = 1000         # contracts per market, signed YES-equivalent, |pos|
    max_event_position = 2000   # contracts per event
    max_open_notional = "1000"  # dollars over all open orders
    daily_loss_limit = "100"    # dollars, realized + unrealized (mid) - fees
    max_orders_per_s = 10       # below Kalshi's write limit for the tier
    kill_reject_count = 20      # kill switch: this many rejects ...
    kill_reject_window_s = 10   # ... within this window
    kill_on_stale_book = true   # kill switch on a non-live book of a traded market
    require_live_book = true    # refuse orders on a market whose book is not live

Defaults follow the anchors of docs/trading-api.md §5 (ssmd Harman: $25 fat finger, $100
open notional, $50 daily loss; KalshiMonorepo: 10 rejects a minute) where one exists.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path

from kalshi_platform.fixedpoint import PRICE_SCALE, SIZE_SCALE
from kalshi_platform.trading.model import MONEY_SCALE


class RiskConfigError(ValueError):
    """A risk.toml that cannot be read or holds a bad value (one-line message)."""


@dataclass(frozen=True)
class RiskConfig:
    """Limits in fixed point: prices micro-dollars, sizes centi-contracts, money 1e-8
    dollars, windows ns. 0 (or None for ``price_min``/``price_max``) disables a check."""

    price_min: int = 10_000
    price_max: int = 990_000
    tick: int = 10_000
    collar_ticks: int = 10
    max_order_size: int = 500 * SIZE_SCALE
    max_order_notional: int = 25 * MONEY_SCALE
    max_position: int = 1_000 * SIZE_SCALE
    max_event_position: int = 2_000 * SIZE_SCALE
    max_open_notional: int = 100 * MONEY_SCALE
    daily_loss_limit: int = 50 * MONEY_SCALE
    max_orders_per_s: int = 10
    kill_reject_count: int = 10
    kill_reject_window_ns: int = 60 * 10**9
    kill_on_stale_book: bool = True
    require_live_book: bool = True

    @classmethod
    def unlimited(cls) -> "RiskConfig":
        """Every check off (the kill switch too): for tests and benchmarks."""
        return cls(price_min=0, price_max=0, tick=0, collar_ticks=0, max_order_size=0,
                   max_order_notional=0, max_position=0, max_event_position=0,
                   max_open_notional=0, daily_loss_limit=0, max_orders_per_s=0,
                   kill_reject_count=0, kill_on_stale_book=False, require_live_book=False)


#: toml key -> (field, scale) ; scale None = integer/bool as is
_KEYS = {
    "price_min": ("price_min", PRICE_SCALE), "price_max": ("price_max", PRICE_SCALE),
    "tick": ("tick", PRICE_SCALE), "collar_ticks": ("collar_ticks", 1),
    "max_order_size": ("max_order_size", SIZE_SCALE),
    "max_order_notional": ("max_order_notional", MONEY_SCALE),
    "max_position": ("max_position", SIZE_SCALE),
    "max_event_position": ("max_event_position", SIZE_SCALE),
    "max_open_notional": ("max_open_notional", MONEY_SCALE),
    "daily_loss_limit": ("daily_loss_limit", MONEY_SCALE),
    "max_orders_per_s": ("max_orders_per_s", 1),
    "kill_reject_count": ("kill_reject_count", 1),
    "kill_reject_window_s": ("kill_reject_window_ns", 10**9),
    "kill_on_stale_book": ("kill_on_stale_book", None),
    "require_live_book": ("require_live_book", None),
}


def _scaled(key: str, value, scale: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RiskConfigError(f"risk.{key} must be a number, got {value!r}")
    try:
        d = Decimal(str(value)) * scale
    except InvalidOperation:
        raise RiskConfigError(f"risk.{key} must be a number, got {value!r}") from None
    if d < 0 or d != d.to_integral_value():
        raise RiskConfigError(f"risk.{key} = {value!r} must be >= 0 and within the "
                              f"precision of its unit")
    return int(d)


def risk_config_from_dict(table: dict, base: RiskConfig | None = None) -> RiskConfig:
    """A RiskConfig from a parsed ``[risk]`` table (unknown keys refused, one line)."""
    values = {f.name: getattr(base or RiskConfig(), f.name) for f in fields(RiskConfig)}
    for key, value in table.items():
        if key not in _KEYS:
            raise RiskConfigError(f"unknown risk setting {key!r} (known: {', '.join(_KEYS)})")
        name, scale = _KEYS[key]
        if scale is None:
            if not isinstance(value, bool):
                raise RiskConfigError(f"risk.{key} must be true or false, got {value!r}")
            values[name] = value
        else:
            values[name] = _scaled(key, value, scale)
    return RiskConfig(**values)


def load_toml(path: str | Path) -> dict:
    """Parse a TOML file; RiskConfigError (one line) if it cannot be read or parsed."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise RiskConfigError(f"{p}: no such file") from None
    except OSError as e:
        raise RiskConfigError(f"{p}: cannot read ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise RiskConfigError(f"{p}: not valid TOML ({e})") from None


def load_risk_config(path: str | Path) -> RiskConfig:
    """The ``[risk]`` table of a TOML file (or its top level when it has no such table)."""
    doc = load_toml(path)
    table = doc.get("risk", doc if "strategy" not in doc else {})
    if not isinstance(table, dict):
        raise RiskConfigError(f"{path}: [risk] must be a table")
    return risk_config_from_dict(table)
