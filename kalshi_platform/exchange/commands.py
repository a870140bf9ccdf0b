"""The exchange's command API: every state change is one of these structs.

``Exchange.submit(cmd, ts)`` applies one command at UTC time ``ts`` (integer nanoseconds) and
returns a :class:`~kalshi_platform.exchange.events.Result`. Commands are plain msgspec structs,
so the WAL encodes them as they are (tagged msgpack) and replay is the same sequence of
``submit`` calls (docs/exchange.md "Durability").

Units (the plant's fixed point, kalshi_platform/fixedpoint.py): prices are integer
micro-dollars (``yes_price=560000`` is $0.56), counts are integer centi-contracts
(``count=1000`` is 10 contracts). ``buy_max_cost`` and ``Deposit.amount`` are integer cents
like Kalshi's fields. Field names follow Kalshi's ``CreateOrderRequest`` and friends
(docs/trading-api.md §4.1).
"""

from __future__ import annotations

import re
from typing import Optional, Union

import msgspec

GTC = "good_till_canceled"
IOC = "immediate_or_cancel"
FOK = "fill_or_kill"
TIME_IN_FORCE = (GTC, IOC, FOK)
STP_TAKER = "taker_at_cross"
STP_MAKER = "maker"
#: Kalshi's ClOrdID rule (docs/trading-api.md §4.2): at most 64 of ``[-\w:+=/]``
CLIENT_ID = re.compile(r"[\-\w:+=/]{1,64}")


class _Cmd(msgspec.Struct, kw_only=True, tag_field="cmd", omit_defaults=True):
    pass


class CreateOrder(_Cmd, tag="create_order"):
    """A limit order (docs/trading-api.md §4.1 ``POST /portfolio/orders``).

    Exactly one of ``yes_price``/``no_price`` (micro-dollars). ``count`` in centi-contracts.
    ``time_in_force`` ∈ good_till_canceled | immediate_or_cancel | fill_or_kill; an
    ``expiration_ts`` (UTC seconds) makes a GTC order GTD (in the past: treated as IOC, as
    Kalshi's FIX doc says). ``buy_max_cost`` (cents) implies fill-or-kill with a cost cap.
    ``self_trade_prevention_type`` ∈ taker_at_cross (default) | maker."""

    user_id: str
    ticker: str
    side: str
    action: str
    count: int
    yes_price: Optional[int] = None
    no_price: Optional[int] = None
    client_order_id: Optional[str] = None
    time_in_force: str = GTC
    expiration_ts: Optional[int] = None
    buy_max_cost: Optional[int] = None
    post_only: bool = False
    reduce_only: bool = False
    self_trade_prevention_type: Optional[str] = None
    order_group_id: Optional[str] = None
    cancel_order_on_pause: bool = False
    subaccount: int = 0


class CancelOrder(_Cmd, tag="cancel_order"):
    """Cancel = reduce to zero (``DELETE /portfolio/orders/{order_id}``)."""

    user_id: str
    order_id: str


class AmendOrder(_Cmd, tag="amend_order"):
    """``POST /portfolio/orders/{id}/amend``: new price (exactly one of yes/no price) and
    optionally ``count`` = max fillable (filled + new remaining). Keeps queue priority only when
    the price is unchanged and the size decreases (docs/exchange.md "Amend")."""

    user_id: str
    order_id: str
    ticker: str
    side: str
    action: str
    yes_price: Optional[int] = None
    no_price: Optional[int] = None
    count: Optional[int] = None
    updated_client_order_id: Optional[str] = None


class DecreaseOrder(_Cmd, tag="decrease_order"):
    """``POST /portfolio/orders/{id}/decrease``: exactly one of ``reduce_by``/``reduce_to``
    (centi-contracts). Keeps queue priority."""

    user_id: str
    order_id: str
    reduce_by: Optional[int] = None
    reduce_to: Optional[int] = None


class BatchCreateOrders(_Cmd, tag="batch_create"):
    """Up to 20 orders (``POST /portfolio/orders/batched``), each applied in turn with its own
    result; items must carry the batch's ``user_id``."""

    user_id: str
    orders: list[CreateOrder]


class BatchCancelOrders(_Cmd, tag="batch_cancel"):
    """Up to 20 cancels (``DELETE /portfolio/orders/batched``), each with its own result."""

    user_id: str
    order_ids: list[str]


class MassCancel(_Cmd, tag="mass_cancel"):
    """Cancel every resting order of the user (in ``ticker`` only, when given): FIX
    OrderMassCancelRequest q and ``CancelOrdersOnDisconnect`` (docs/trading-api.md §4.2)."""

    user_id: str
    ticker: Optional[str] = None


class CreateOrderGroup(_Cmd, tag="create_order_group"):
    """An order group: at most ``contracts_limit`` centi-contracts matched over a rolling 15 s
    window; when reached, every order of the group is canceled and new ones are refused until
    a reset (when ``is_auto_cancel_enabled``)."""

    user_id: str
    order_group_id: str
    contracts_limit: int
    is_auto_cancel_enabled: bool = True


class OrderGroupAction(_Cmd, tag="order_group_action"):
    """``action`` ∈ reset | trigger | delete | limit (then ``contracts_limit`` is the new
    limit); delete and trigger cancel the group's orders."""

    user_id: str
    order_group_id: str
    action: str
    contracts_limit: Optional[int] = None


class AddMarket(_Cmd, tag="add_market"):
    """Admin: list a market. ``price_ranges``: ``[(start, end, step)]`` micro-dollars, as
    Kalshi's ``price_ranges`` (docs/kalshi-api.md §4); ``fee_type`` and ``fee_multiplier``
    (decimal string) as the series' fields (docs/trading-api.md §4.4)."""

    ticker: str
    event_ticker: str = ""
    series_ticker: str = ""
    price_ranges: list[tuple[int, int, int]] = msgspec.field(
        default_factory=lambda: [(0, 1_000_000, 10_000)])
    fee_type: str = "quadratic"
    fee_multiplier: str = "1"


class Deposit(_Cmd, tag="deposit"):
    """Admin: credit (or with a negative ``amount``, debit) ``amount`` cents; creates the user."""

    user_id: str
    amount: int


class CloseMarket(_Cmd, tag="close_market"):
    """Admin: open -> closed; every resting order is canceled."""

    ticker: str


class DetermineMarket(_Cmd, tag="determine_market"):
    """Admin: closed -> determined with ``result`` ∈ yes | no | void."""

    ticker: str
    result: str


class SettleMarket(_Cmd, tag="settle_market"):
    """Admin: determined -> settled: $1 per winning net contract, void returns cost."""

    ticker: str


class Tick(_Cmd, tag="tick"):
    """Advance time only: expires GTD orders whose ``expiration_ts`` has passed."""


Command = Union[CreateOrder, CancelOrder, AmendOrder, DecreaseOrder, BatchCreateOrders,
                BatchCancelOrders, MassCancel, CreateOrderGroup, OrderGroupAction, AddMarket, Deposit,
                CloseMarket, DetermineMarket, SettleMarket, Tick]
