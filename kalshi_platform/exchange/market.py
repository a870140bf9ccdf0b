"""A listed market: its tick grid, fee functions, book, lifecycle and positions.

Lifecycle (docs/trading-api.md §4.4, docs/kalshi-api.md §4): ``open`` (Kalshi ``active``) →
``closed`` → ``determined`` (result yes | no | void) → ``settled`` (Kalshi ``finalized``).
Only an open market takes orders. A market is owned by one writer: only commands on its
ticker touch its book, seq and positions (accounts are shared per user, docs/exchange.md).
"""

from __future__ import annotations

from kalshi_platform.exchange._core import MarketBase
from kalshi_platform.exchange.book import P1
from kalshi_platform.exchange.fees import FeeConfig, fee_functions, fee_params
from kalshi_platform.exchange.ledger import Position

OPEN, CLOSED, DETERMINED, SETTLED = "open", "closed", "determined", "settled"
RESULTS = ("yes", "no", "void")


def check_price_ranges(ranges) -> list[tuple[int, int, int]]:
    """Validate ``[(start, end, step)]`` micro-dollar ranges (0 <= start < end <= $1, step
    > 0 dividing end − start). Raises ValueError with a one-line reason."""
    out = []
    if not ranges:
        raise ValueError("price_ranges must list at least one range")
    for r in ranges:
        if len(r) != 3 or not all(type(x) is int for x in r):
            raise ValueError(f"price range {r!r} must be three integers (micro-dollars)")
        start, end, step = r
        if not (0 <= start < end <= P1) or step <= 0 or (end - start) % step:
            raise ValueError(f"price range {r!r} is not 0 <= start < end <= 1000000 with a "
                             "step dividing end - start")
        out.append((start, end, step))
    return out


class Market(MarketBase):
    """State of one market. From the C core (MarketBase): ``ticker``, ``status``, ``book``,
    ``positions`` (user_id → Position), ``seq`` (the last orderbook_delta seq), ``escrow``
    (money: $1 per open YES/NO pair), ``taker_fee``/``maker_fee`` (fees.fee_functions) and
    ``valid_price``; here: the series/event, the tick grid, the fee settings and the result."""

    __slots__ = ("event_ticker", "series_ticker", "price_ranges", "fee_type",
                 "fee_multiplier", "result")
    _CORE = ("ticker", "status", "positions", "book", "seq", "escrow")

    def __init__(self, ticker: str, event_ticker: str, series_ticker: str, price_ranges,
                 fee_type: str, fee_multiplier: str, fees: FeeConfig) -> None:
        self.ticker = ticker
        self.event_ticker = event_ticker
        self.series_ticker = series_ticker
        self.price_ranges = check_price_ranges(price_ranges)
        self._set_ranges(self.price_ranges)
        self.fee_type = fee_type
        self.fee_multiplier = fee_multiplier
        self.restore_fees(fees)
        self.result: str | None = None

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ + self._CORE}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._set_ranges(self.price_ranges)

    def restore_fees(self, fees: FeeConfig) -> None:
        """(Re)build the fee functions and the C core's fee parameters (they are not pickled:
        a snapshot load calls this). Raises ValueError for a bad fee_type or multiplier."""
        taker, maker = fee_functions(self.fee_type, self.fee_multiplier, fees)
        self._set_fees(taker, maker, *fee_params(self.fee_type, self.fee_multiplier, fees))

    def position(self, user_id: str) -> Position:
        """The user's position (created flat on first use)."""
        p = self.positions.get(user_id)
        if p is None:
            p = self.positions[user_id] = Position(user_id)
        return p
