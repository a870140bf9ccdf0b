"""FIX application messages → exchange-core commands (docs/fix.md "Orders").

* NewOrderSingle D → ``CreateOrder``. Side 1 (buy YES) at Price p is ``side=yes, action=buy,
  yes_price=p``; Side 2 (sell YES, "buying No contracts", docs/trading-api.md §4.3) is
  ``side=no, action=buy, no_price=$1-p`` — the same ask at p on the core's YES book, with the
  same collateral and netting, and a buy so ``MaxExecutionCost`` applies to both sides.
  TimeInForce 0 DAY (expiry 23:59:59 America/New_York), 1 GTC, 3 IOC, 4 FOK, 6 GTD
  (ExpireTime 126; a past time is IOC, as Kalshi says); ExecInst 6 post-only;
  SelfTradePreventionType 2964; SecondaryClOrdID 526 = order group; CancelOrderOnPause 21006;
  MaxExecutionCost 21009 (dollars → ``buy_max_cost`` cents, rounded down).
* OrderCancelReplaceRequest G → ``AmendOrder`` (new Price and OrderQty = CumQty + LeavesQty,
  the core's ``count``; ClOrdID becomes ``updated_client_order_id``).
* OrderCancelRequest F → ``CancelOrder``.

The order referred to by F/G is found by OrderID 37 or else by OrigClOrdID 41 (the latest
ClOrdID of the order; Kalshi keys orders by ClOrdID).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import simplefix

from kalshi_platform.exchange import AmendOrder, CancelOrder, CreateOrder
from kalshi_platform.exchange.commands import FOK, GTC, IOC
from kalshi_platform.fix import protocol as P

_ET = ZoneInfo("America/New_York")
ONE = P.MICRO  # $1 in micro-dollars


@dataclass
class Tracked:
    """A FIX-entered order as its session sees it: ``price`` on the YES scale (micro-dollars),
    ``qty``/``cum`` centi-contracts, ``cost`` Σ fill count × YES price (for AvgPx)."""

    order_id: str
    clordid: str
    symbol: str
    side: str
    price: int
    qty: int
    cum: int = 0
    cost: int = 0
    tif: str = P.TIF_GTC

    @property
    def leaves(self) -> int:
        """Centi-contracts still open (0 once done)."""
        return max(0, self.qty - self.cum)


def day_expiry(now_ns: int) -> int:
    """UTC seconds of the next 23:59:59 America/New_York (Kalshi's DAY orders expire at
    11:59:59.999pm ET; the core's ``expiration_ts`` is whole seconds)."""
    now = _dt.datetime.fromtimestamp(now_ns / 1e9, _ET)
    end = now.replace(hour=23, minute=59, second=59, microsecond=0)
    return int(end.timestamp()) + 1


def _tif(msg: simplefix.FixMessage, now_ns: int) -> tuple[str, int | None]:
    """``(time_in_force, expiration_ts)`` of TimeInForce 59 (+ ExpireTime 126)."""
    tif = P.text(msg, P.TIME_IN_FORCE) or P.TIF_GTC
    if tif == P.TIF_GTC:
        return GTC, None
    if tif == P.TIF_IOC:
        return IOC, None
    if tif == P.TIF_FOK:
        return FOK, None
    if tif == P.TIF_DAY:
        return GTC, day_expiry(now_ns)
    if tif == P.TIF_GTD:
        exp = P.parse_utc(P.EXPIRE_TIME, P.text(msg, P.EXPIRE_TIME, True))
        return GTC, -(-exp // 1_000_000_000)
    raise P.FixValueError(P.TIME_IN_FORCE, f"TimeInForce {tif!r} is not 0, 1, 3, 4 or 6")


def _side(msg: simplefix.FixMessage) -> str:
    side = P.text(msg, P.SIDE, True)
    if side not in (P.SIDE_BUY_YES, P.SIDE_SELL_YES):
        raise P.FixValueError(P.SIDE, f"Side {side!r} is not 1 (buy yes) or 2 (sell yes)")
    return side


def new_order(msg: simplefix.FixMessage, user: str, use_dollars: bool,
              now_ns: int) -> tuple[CreateOrder, Tracked]:
    """D → ``(CreateOrder, Tracked)`` (the tracked order has no id yet).

    Raises :class:`~kalshi_platform.fix.protocol.FixValueError` for a missing or bad field."""
    cl = P.clordid(msg)
    symbol = P.text(msg, P.SYMBOL, True)
    side = _side(msg)
    if (P.text(msg, P.ORD_TYPE) or P.ORD_TYPE_LIMIT) != P.ORD_TYPE_LIMIT:
        raise P.FixValueError(P.ORD_TYPE, "OrdType must be 2 (limit)")
    qty = P.parse_qty(msg, P.ORDER_QTY)
    price = P.parse_price(msg, P.PRICE, use_dollars)
    if not 0 < price < ONE:
        raise P.FixValueError(P.PRICE, "Price must be strictly between $0 and $1")
    tif, expiration = _tif(msg, now_ns)
    stp = P.text(msg, P.SELF_TRADE_PREVENTION_TYPE)
    if stp is not None and stp not in P.STP:
        raise P.FixValueError(P.SELF_TRADE_PREVENTION_TYPE, "SelfTradePreventionType is 1 or 2")
    max_cost = P.text(msg, P.MAX_EXECUTION_COST)
    kw = dict(user_id=user, ticker=symbol, count=qty, client_order_id=cl,
              time_in_force=tif, expiration_ts=expiration,
              post_only=P.text(msg, P.EXEC_INST) == P.EXEC_INST_POST_ONLY,
              self_trade_prevention_type=P.STP.get(stp) if stp else None,
              order_group_id=P.text(msg, P.SECONDARY_CL_ORD_ID),
              cancel_order_on_pause=P.flag(msg, P.CANCEL_ORDER_ON_PAUSE),
              buy_max_cost=(P._decimal_units(P.MAX_EXECUTION_COST, max_cost, 10**6) // 10**4
                            if max_cost is not None else None))
    if side == P.SIDE_BUY_YES:
        cmd = CreateOrder(side="yes", action="buy", yes_price=price, **kw)
    else:
        cmd = CreateOrder(side="no", action="buy", no_price=ONE - price, **kw)
    return cmd, Tracked("", cl, symbol, side, price, qty, tif=P.text(msg, P.TIME_IN_FORCE)
                        or P.TIF_GTC)


def cancel_order(user: str, order_id: str) -> CancelOrder:
    """F → ``CancelOrder``."""
    return CancelOrder(user_id=user, order_id=order_id)


def replace_order(msg: simplefix.FixMessage, user: str, use_dollars: bool, order) -> AmendOrder:
    """G → ``AmendOrder`` for ``order`` (the core's ``OrderView``): Price 44 on the YES scale,
    OrderQty 38 = the new total (CumQty + LeavesQty). Raises ``FixValueError``."""
    cl = P.clordid(msg)
    price = P.parse_price(msg, P.PRICE, use_dollars)
    if not 0 < price < ONE:
        raise P.FixValueError(P.PRICE, "Price must be strictly between $0 and $1")
    qty = P.parse_qty(msg, P.ORDER_QTY, required=False)
    symbol = P.text(msg, P.SYMBOL)
    if symbol is not None and symbol != order.ticker:
        raise P.FixValueError(P.SYMBOL, f"Symbol {symbol!r} is not the order's market")
    side = P.text(msg, P.SIDE)
    if side is not None and side != fix_side(order.side, order.action):
        raise P.FixValueError(P.SIDE, "Side cannot change on a replace")
    prices = ({"yes_price": price} if order.side == "yes" else {"no_price": ONE - price})
    return AmendOrder(user_id=user, order_id=order.order_id, ticker=order.ticker,
                      side=order.side, action=order.action, count=qty,
                      updated_client_order_id=cl, **prices)


def fix_side(side: str, action: str) -> str:
    """The FIX Side of a core order: bids (buy YES, sell NO) are 1, asks are 2."""
    return P.SIDE_BUY_YES if (side == "yes") == (action == "buy") else P.SIDE_SELL_YES


def tracked_from_view(order, clordid: str) -> Tracked:
    """A :class:`Tracked` for an order the core already knows (``OrderView``; e.g. entered
    over REST). Its fill cost in money units (1e-8 $) equals Σ count × price in centi-contract
    × micro-dollar units, so the YES-scale cost for AvgPx is exact."""
    tr = Tracked(order.order_id, clordid, order.ticker, fix_side(order.side, order.action),
                 order.yes_price, order.fill_count + order.remaining_count)
    tr.cum = order.fill_count
    paid = order.taker_fill_cost + order.maker_fill_cost
    tr.cost = paid if order.side == "yes" else tr.cum * ONE - paid
    return tr
