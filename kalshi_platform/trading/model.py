"""Normalized trading objects: sides, order states, orders, fills and venue reports.

What a strategy and the trading layer see (docs/trading.md "Units"): prices integer
**micro-dollars** and counts integer **centi-contracts** (the plant's units,
kalshi_platform/fixedpoint.py), money (costs, fees, PnL, balances) integer **1e-8 dollars**
(:data:`MONEY_SCALE`: a micro-dollar price times a centi-contract count is exact), times UTC
nanoseconds. Never wire JSON: the venues translate (docs/trading-api.md §4.1 field names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from kalshi_platform.fixedpoint import ONE_DOLLAR, PRICE_SCALE, SIZE_SCALE

#: money units per dollar (price µ$ x count c-contracts), as kalshi_platform.exchange.events
MONEY_SCALE = PRICE_SCALE * SIZE_SCALE


class Side(str, Enum):
    """The contract an order is about (Kalshi ``side``)."""

    YES = "yes"
    NO = "no"


class Action(str, Enum):
    """Kalshi ``action``."""

    BUY = "buy"
    SELL = "sell"


class TimeInForce(str, Enum):
    """Kalshi ``time_in_force`` (docs/trading-api.md §4.1)."""

    GTC = "good_till_canceled"
    IOC = "immediate_or_cancel"
    FOK = "fill_or_kill"


class OrderStatus(str, Enum):
    """The client-side order state machine (docs/trading.md "Order states"; issue 14 §2)."""

    PENDING_NEW = "pending_new"
    RESTING = "resting"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    PENDING_CANCEL = "pending_cancel"
    PENDING_AMEND = "pending_amend"

    @property
    def terminal(self) -> bool:
        """True for filled, canceled and rejected: nothing but late fill counts changes."""
        return self in _TERMINAL

    @property
    def open(self) -> bool:
        """True while the order may still trade at the venue (not terminal)."""
        return self not in _TERMINAL


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED})


class TradingState(str, Enum):
    """nautilus semantics (docs/trading-api.md §5): ACTIVE trades freely; REDUCING accepts
    only orders that reduce a position (and cancels); HALTED accepts cancels only."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


def is_bid(side: Side, action: Action) -> bool:
    """Buy-yes and sell-no are YES-book bids; buy-no and sell-yes are asks (§4.3)."""
    return (side is Side.YES) == (action is Action.BUY)


def yes_price_of(side: Side, price: int) -> int:
    """The YES-scale price of a ``side`` price (NO at q is YES at $1 − q), micro-dollars."""
    return price if side is Side.YES else ONE_DOLLAR - price


@dataclass
class Order:
    """One order as the client tracks it.

    ``price`` is on the order's own side scale (a NO order at its NO price), micro-dollars;
    ``count``/``filled`` centi-contracts; ``status`` an :class:`OrderStatus`; ``blocked``
    set (with its reason) after an unknown outcome until reconciliation; ``external`` for an
    order imported from the venue that this process did not place."""

    client_order_id: str
    ticker: str
    side: Side
    action: Action
    price: int
    count: int
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    status: OrderStatus = OrderStatus.PENDING_NEW
    venue_order_id: Optional[str] = None
    filled: int = 0
    fees: int = 0
    created_ns: int = 0
    updated_ns: int = 0
    reason: str = ""
    blocked: str = ""
    external: bool = False
    pending_price: Optional[int] = None
    pending_count: Optional[int] = None

    @property
    def remaining(self) -> int:
        """Centi-contracts still open (0 once terminal)."""
        return 0 if self.status.terminal else max(self.count - self.filled, 0)

    @property
    def yes_price(self) -> int:
        """The price on the YES scale (micro-dollars)."""
        return yes_price_of(self.side, self.price)

    @property
    def is_bid(self) -> bool:
        """True when the order rests on the YES-book bid side."""
        return is_bid(self.side, self.action)

    @property
    def signed_remaining(self) -> int:
        """Remaining count in YES-equivalent terms: + for bids, − for asks."""
        return self.remaining if self.is_bid else -self.remaining


@dataclass(frozen=True)
class Fill:
    """One fill of one of our orders: ``count`` centi-contracts at ``yes_price`` (YES scale,
    micro-dollars; ``yes_price + no_price = $1``), ``fee`` money, ``ts_ns`` UTC. ``fill_id``
    is unique per fill (Kalshi's ``trade_id``)."""

    fill_id: str
    venue_order_id: str
    ticker: str
    side: Side
    action: Action
    count: int
    yes_price: int
    is_taker: bool
    fee: int
    ts_ns: int

    @property
    def is_bid(self) -> bool:
        """True when the fill adds YES-equivalent contracts (buy-yes or sell-no)."""
        return is_bid(self.side, self.action)

    @property
    def signed_count(self) -> int:
        """YES-equivalent signed count: + for bids, − for asks."""
        return self.count if self.is_bid else -self.count


@dataclass(frozen=True)
class OrderReport:
    """What a venue says about an order.

    ``kind``: ``accepted`` (the venue took it; ``venue_order_id`` known), ``rejected``,
    ``update`` (its state after a fill, cancel, expiry or amend), ``cancel_rejected``,
    ``amend_rejected``, or ``unknown`` (a timeout or an answer that did not say: the order is
    blocked until reconciled). ``venue_status`` is Kalshi's ``resting`` | ``canceled`` |
    ``executed`` (or ``""``). Counts centi-contracts, ``price`` on the order's side scale."""

    kind: str
    client_order_id: Optional[str]
    venue_order_id: Optional[str] = None
    venue_status: str = ""
    filled: int = 0
    count: int = 0
    price: Optional[int] = None
    reason: str = ""
    code: str = ""
    ts_ns: int = 0


@dataclass(frozen=True)
class Settlement:
    """A market's settlement as paid to us: ``result`` yes | no | void, ``revenue`` money paid
    (``$1`` per winning net contract; void returns cost), ``ts_ns``."""

    ticker: str
    result: str
    revenue: int
    ts_ns: int


@dataclass
class VenueState:
    """What reconciliation reads from a venue (docs/trading.md "Reconciliation"): open orders
    as :class:`OrderReport` ``update`` items carrying ticker/side/action in ``orders``,
    every fill so far, signed positions per ticker (centi-contracts), balance (money)."""

    orders: list["VenueOrder"] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    balance: int = 0


@dataclass(frozen=True)
class VenueOrder:
    """An order as the venue holds it (reconciliation input)."""

    venue_order_id: str
    client_order_id: Optional[str]
    ticker: str
    side: Side
    action: Action
    price: int
    count: int
    filled: int
    venue_status: str
    tif: TimeInForce = TimeInForce.GTC


def dollars(text: str) -> int:
    """``"0.56"`` → ``560000`` micro-dollars (exact; raises FixedPointError on bad text)."""
    from kalshi_platform.fixedpoint import parse_price

    return parse_price(text)


def cents(n: int) -> int:
    """Whole cents → micro-dollars (``56`` → ``560000``)."""
    return n * (PRICE_SCALE // 100)


def contracts(n: int) -> int:
    """Whole contracts → centi-contracts (``10`` → ``1000``)."""
    return n * SIZE_SCALE
