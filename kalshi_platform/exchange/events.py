"""What a command produces: a :class:`Result` with the order(s) touched and the events.

Units as in commands.py: prices micro-dollars, counts centi-contracts; money (costs, fees,
PnL, balances) in integer **1e-8 dollars** (``MONEY_SCALE`` units per dollar: a micro-dollar
price times a centi-contract count is exact in them). Timestamps are UTC nanoseconds. The hot-path events are built positionally and untracked by
the GC (``gc=False``: they hold only scalars), which is most of what an event costs.
Field names follow Kalshi's ``Order``, ``Fill``, ``Trade``, ``orderbook_delta``,
``market_position`` and ``Settlement`` objects (docs/trading-api.md §4.1,
docs/kalshi-api.md §7); views.py turns them into Kalshi's JSON (``*_dollars``/``*_fp``).
"""

from __future__ import annotations

from typing import Optional, Union

import msgspec

from kalshi_platform.exchange.errors import ExchangeError

MONEY_SCALE = 10**8  # money units per dollar (micro-dollar price x centi-contract count)


class OrderView(msgspec.Struct, gc=False):
    """An order as Kalshi's ``Order`` object (``status`` ∈ resting | canceled | executed)."""

    order_id: str
    user_id: str
    client_order_id: Optional[str]
    ticker: str
    side: str
    action: str
    type: str
    status: str
    yes_price: int
    no_price: int
    initial_count: int
    fill_count: int
    remaining_count: int
    taker_fill_cost: int
    maker_fill_cost: int
    taker_fees: int
    maker_fees: int
    expiration_ts: Optional[int]
    created_ts: int
    last_update_ts: int
    self_trade_prevention_type: str
    order_group_id: Optional[str]
    post_only: bool
    reduce_only: bool
    time_in_force: str


class OrderUpdate(msgspec.Struct, gc=False):
    """Private ``user_orders`` event: the order after the change."""

    order: OrderView


class Fill(msgspec.Struct, gc=False):
    """Private ``fill``: one side of a trade (``fill_id`` = ``trade_id``). ``fee_cost`` is the
    trade fee (rounded up to $0.0001); ``rounding_fee`` the balance-precision rounding (can be
    negative: the per-order accumulator's rebate). ``book_side`` bid ≡ YES, ask ≡ NO."""

    fill_id: str
    trade_id: str
    order_id: str
    user_id: str
    ticker: str
    side: str
    action: str
    book_side: str
    count: int
    yes_price: int
    no_price: int
    is_taker: bool
    fee_cost: int
    rounding_fee: int
    ts: int


class Trade(msgspec.Struct, gc=False):
    """Public ``trade``: prints at the resting order's price, ``yes_price + no_price = $1``;
    ``taker_side`` yes (taker on the bid) or no."""

    trade_id: str
    ticker: str
    count: int
    yes_price: int
    no_price: int
    taker_side: str
    ts: int


class BookDelta(msgspec.Struct, gc=False):
    """Public ``orderbook_delta`` in Kalshi's form: ``side`` yes (YES bids at ``price``) or no
    (NO bids at ``price`` = $1 - the YES ask), signed ``delta`` centi-contracts, per-market
    ``seq`` starting at 1 and without gaps."""

    ticker: str
    seq: int
    side: str
    price: int
    delta: int
    ts: int


class PositionUpdate(msgspec.Struct, gc=False):
    """Private ``market_position``: ``position`` signed centi-contracts (NO negative),
    ``position_cost`` money of the held contracts, realized PnL, fees paid and
    ``total_traded`` (money), ``volume`` centi-contracts traded."""

    user_id: str
    ticker: str
    position: int
    position_cost: int
    realized_pnl: int
    fees_paid: int
    volume: int
    ts: int
    total_traded: int = 0


class SettlementRecord(msgspec.Struct, kw_only=True):
    """``/portfolio/settlements`` item: ``revenue`` money paid, ``value`` payout of one YES
    contract in cents (100, 0, or None for void)."""

    user_id: str
    ticker: str
    event_ticker: str
    market_result: str
    yes_count: int
    no_count: int
    yes_total_cost: int
    no_total_cost: int
    revenue: int
    value: Optional[int]
    fee_cost: int
    settled_ts: int


class OrderGroupUpdate(msgspec.Struct, kw_only=True):
    """Private ``order_group_updates``: ``event_type`` ∈ created | triggered | reset |
    deleted | limit_updated."""

    user_id: str
    order_group_id: str
    event_type: str
    contracts_limit: int
    ts: int


class MarketStatus(msgspec.Struct, kw_only=True):
    """Lifecycle change: ``status`` ∈ open | closed | determined | settled."""

    ticker: str
    status: str
    result: Optional[str]
    ts: int


Event = Union[OrderUpdate, Fill, Trade, BookDelta, PositionUpdate, SettlementRecord,
              OrderGroupUpdate, MarketStatus]


class Result(msgspec.Struct, kw_only=True):
    """The answer to one command. ``error`` is set when the command was refused (then nothing
    changed); ``order`` is the order created/changed (``old_order`` before an amend);
    ``items`` the per-item results of a batch; ``events`` everything that happened, in order."""

    error: Optional[ExchangeError] = None
    order: Optional[OrderView] = None
    old_order: Optional[OrderView] = None
    items: Optional[list["Result"]] = None
    events: list = []

    @property
    def ok(self) -> bool:
        """True when the command was accepted."""
        return self.error is None
