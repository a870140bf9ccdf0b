"""A listed market: its tick grid, fee functions, book, lifecycle and positions.

Lifecycle (docs/trading-api.md §4.4, docs/kalshi-api.md §4): ``open`` (Kalshi ``active``) →
``closed`` → ``determined`` (result yes | no | void) → ``settled`` (Kalshi ``finalized``).
Only an open market takes orders. A market is owned by one writer: only commands on its
ticker touch its book, seq and positions (accounts are shared per user, docs/exchange.md).
"""

from __future__ import annotations

from kalshi_platform.exchange.book import P1, Book
from kalshi_platform.exchange.fees import FeeConfig, fee_functions
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


class Market:
    """State of one market. ``escrow`` (money) is $1 per open YES/NO pair; ``seq`` the last
    orderbook_delta seq; ``positions`` user_id → Position."""

    __slots__ = ("ticker", "event_ticker", "series_ticker", "price_ranges", "fee_type",
                 "fee_multiplier", "taker_fee", "maker_fee", "book", "status", "result",
                 "seq", "escrow", "positions", "_valid")

    def __init__(self, ticker: str, event_ticker: str, series_ticker: str, price_ranges,
                 fee_type: str, fee_multiplier: str, fees: FeeConfig) -> None:
        self.ticker = ticker
        self.event_ticker = event_ticker
        self.series_ticker = series_ticker
        self.price_ranges = check_price_ranges(price_ranges)
        self.fee_type = fee_type
        self.fee_multiplier = fee_multiplier
        self.taker_fee, self.maker_fee = fee_functions(fee_type, fee_multiplier, fees)
        self.book = Book()
        self.status = OPEN
        self.result: str | None = None
        self.seq = 0
        self.escrow = 0
        self.positions: dict[str, Position] = {}
        self._valid: dict[int, bool] = {}

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ if k not in ("taker_fee", "maker_fee")}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def restore_fees(self, fees: FeeConfig) -> None:
        """Rebuild the fee functions (they are closures, not pickled) after a snapshot load."""
        self.taker_fee, self.maker_fee = fee_functions(self.fee_type, self.fee_multiplier, fees)

    def valid_price(self, price: int) -> bool:
        """True when YES price ``price`` (micro-dollars) is strictly inside (0, $1) and on a
        tick of ``price_ranges`` (the NO price $1 − p is then valid too for symmetric grids;
        the YES scale is what is checked)."""
        ok = self._valid.get(price)
        if ok is None:
            ok = 0 < price < P1 and any(s <= price <= e and (price - s) % st == 0
                                        for s, e, st in self.price_ranges)
            if len(self._valid) < 100_000:
                self._valid[price] = ok
        return ok

    def position(self, user_id: str) -> Position:
        """The user's position (created flat on first use)."""
        p = self.positions.get(user_id)
        if p is None:
            p = self.positions[user_id] = Position(user_id)
        return p
