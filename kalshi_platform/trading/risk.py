"""Pre-trade risk checks and the trading state (issue 14 §3; docs/trading-api.md §5).

:meth:`RiskEngine.check_new` runs every configured check on an order before it is sent and
returns ``None`` or a :class:`Rejection` (``code``, one-line ``message``); every rejection
is counted per code (``counters``). Checks, in order:

``halted`` / ``reducing`` (trading state: HALTED takes cancels only, REDUCING only orders
that shrink a position, nautilus semantics), ``book_not_live``, ``price_range`` and
``price_collar`` (inside the market's range; a bid at most ``collar_ticks`` ticks above the
YES ask, an ask at most that far below the YES bid), ``max_order_size``,
``max_order_notional``, ``max_position`` and ``max_event_position`` (signed YES-equivalent,
counting the open orders on the same side: the position if all of them filled),
``max_open_notional``, ``daily_loss_limit`` (net PnL: realized + unrealized at the mid −
fees), ``order_rate`` (new orders and amends per rolling second; cancels are counted but
never refused).

Units: prices micro-dollars (YES scale for the collar), counts centi-contracts, money
1e-8 dollars, times UTC ns.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

from kalshi_platform.trading.model import Action, Order, Side, TradingState, is_bid, yes_price_of
from kalshi_platform.trading.risk_config import RiskConfig

SECOND_NS = 10**9


class Rejection(NamedTuple):
    """Why an order was refused before it was sent: ``code`` (a check name) and ``message``."""

    code: str
    message: str


@dataclass(frozen=True)
class OrderIntent:
    """An order a strategy asks for (not yet an :class:`~.model.Order`): ``price`` on its
    side's scale, micro-dollars; ``count`` centi-contracts."""

    ticker: str
    side: Side
    action: Action
    price: int
    count: int
    reduce_only: bool = False

    @property
    def signed(self) -> int:
        """YES-equivalent signed count (+ bid, − ask)."""
        return self.count if is_bid(self.side, self.action) else -self.count

    @property
    def notional(self) -> int:
        """Money at stake at the order's own price (count × price)."""
        return self.count * self.price


class MarketView(NamedTuple):
    """What risk needs of a market's book: ``state`` and the YES top (None when empty)."""

    state: str
    yes_bid: Optional[int]
    yes_ask: Optional[int]


class RiskEngine:
    """The checks above over live state read through callables.

    Args: ``cfg``; ``position(ticker)`` and ``event_position(event)`` signed centi-contracts;
    ``event_of(ticker)``; ``open_orders()`` the open :class:`~.model.Order` s; ``market(ticker)``
    a :class:`MarketView`; ``net_pnl()`` money."""

    def __init__(self, cfg: RiskConfig, *, position: Callable[[str], int],
                 event_position: Callable[[str], int], event_of: Callable[[str], str],
                 open_orders: Callable[[], list[Order]], market: Callable[[str], MarketView],
                 net_pnl: Callable[[], int]) -> None:
        self.cfg = cfg
        self.state = TradingState.ACTIVE
        self.counters: Counter = Counter()
        self._position, self._event_position, self._event_of = position, event_position, event_of
        self._open, self._market, self._pnl = open_orders, market, net_pnl
        self._sent: deque[int] = deque()
        self.commands = 0

    def reject(self, code: str, message: str) -> Rejection:
        """Count and return a rejection."""
        self.counters[code] += 1
        return Rejection(code, message)

    def check_new(self, o: OrderIntent, ts_ns: int) -> Optional[Rejection]:
        """Every check on a new order (see the module docstring); None when it may go."""
        for check in (self._check_state, self._check_book, self._check_size,
                      self._check_position, self._check_open_notional, self._check_loss):
            r = check(o)
            if r is not None:
                return r
        return self._check_rate(ts_ns)

    def check_amend(self, order: Order, price: int, count: int, ts_ns: int) -> Optional[Rejection]:
        """Checks on an amend: the order as it would be after it (state, book, size,
        position with the extra count, loss, rate)."""
        extra = max(count - order.count, 0)
        o = OrderIntent(order.ticker, order.side, order.action, price, count)
        for check in (self._check_state, self._check_book, self._check_size, self._check_loss):
            r = check(o)
            if r is not None:
                return r
        if extra:
            r = self._check_position(OrderIntent(order.ticker, order.side, order.action,
                                                 price, extra))
            if r is not None:
                return r
        return self._check_rate(ts_ns)

    def note_cancel(self, ts_ns: int) -> None:
        """A cancel was sent: counted against the venue's rate, never refused."""
        if self.cfg.max_orders_per_s:
            self._sent.append(ts_ns)
        self.commands += 1

    # -- the checks ------------------------------------------------------------------------

    def _reduces(self, o: OrderIntent) -> bool:
        pos = self._position(o.ticker)
        return pos != 0 and (pos > 0) != (o.signed > 0) and o.count <= abs(pos)

    def _check_state(self, o: OrderIntent) -> Optional[Rejection]:
        if self.state is TradingState.HALTED:
            return self.reject("halted", "trading is halted: only cancels are accepted")
        if self.state is TradingState.REDUCING and not self._reduces(o):
            return self.reject("reducing", f"trading is reducing: the order would not reduce "
                               f"the {o.ticker} position")
        return None

    def _check_book(self, o: OrderIntent) -> Optional[Rejection]:
        c = self.cfg
        m = self._market(o.ticker)
        if c.require_live_book and m.state != "live":
            return self.reject("book_not_live", f"{o.ticker}: the book is {m.state}, not live")
        yes = yes_price_of(o.side, o.price)
        if (c.price_min and yes < c.price_min) or (c.price_max and yes > c.price_max):
            return self.reject("price_range", f"{o.ticker}: YES price {yes / 1e6:.4f} is "
                               f"outside {c.price_min / 1e6:.4f}..{c.price_max / 1e6:.4f}")
        if c.collar_ticks and c.tick:
            band = c.collar_ticks * c.tick
            bid = is_bid(o.side, o.action)
            if bid and m.yes_ask is not None and yes > m.yes_ask + band:
                return self.reject("price_collar", f"{o.ticker}: bid {yes / 1e6:.4f} is more "
                                   f"than {c.collar_ticks} ticks above the ask "
                                   f"{m.yes_ask / 1e6:.4f}")
            if not bid and m.yes_bid is not None and yes < m.yes_bid - band:
                return self.reject("price_collar", f"{o.ticker}: ask {yes / 1e6:.4f} is more "
                                   f"than {c.collar_ticks} ticks below the bid "
                                   f"{m.yes_bid / 1e6:.4f}")
        return None

    def _check_size(self, o: OrderIntent) -> Optional[Rejection]:
        c = self.cfg
        if c.max_order_size and o.count > c.max_order_size:
            return self.reject("max_order_size", f"{o.count / 100:g} contracts is more than "
                               f"the {c.max_order_size / 100:g} allowed per order")
        if c.max_order_notional and o.notional > c.max_order_notional:
            return self.reject("max_order_notional", f"order notional ${o.notional / 1e8:.2f} "
                               f"is more than ${c.max_order_notional / 1e8:.2f}")
        return None

    def _open_same_side(self, keep: Callable[[Order], bool], bid: bool) -> int:
        return sum(x.signed_remaining for x in self._open() if keep(x) and x.is_bid == bid)

    def _check_position(self, o: OrderIntent) -> Optional[Rejection]:
        c = self.cfg
        bid = o.signed > 0
        if c.max_position:
            pos = self._position(o.ticker)
            after = pos + self._open_same_side(lambda x: x.ticker == o.ticker, bid) + o.signed
            if abs(after) > c.max_position and abs(after) > abs(pos):
                return self.reject("max_position", f"{o.ticker}: position would reach "
                                   f"{after / 100:g} contracts (limit {c.max_position / 100:g})")
        if c.max_event_position:
            ev = self._event_of(o.ticker)
            pos = self._event_position(ev)
            after = pos + self._open_same_side(lambda x: self._event_of(x.ticker) == ev,
                                               bid) + o.signed
            if abs(after) > c.max_event_position and abs(after) > abs(pos):
                return self.reject("max_event_position", f"event {ev}: position would reach "
                                   f"{after / 100:g} contracts (limit "
                                   f"{c.max_event_position / 100:g})")
        return None

    def _check_open_notional(self, o: OrderIntent) -> Optional[Rejection]:
        c = self.cfg
        if not c.max_open_notional:
            return None
        total = sum(x.remaining * x.price for x in self._open()) + o.notional
        if total > c.max_open_notional:
            return self.reject("max_open_notional", f"open notional would be "
                               f"${total / 1e8:.2f} (limit ${c.max_open_notional / 1e8:.2f})")
        return None

    def _check_loss(self, o: OrderIntent) -> Optional[Rejection]:
        c = self.cfg
        if c.daily_loss_limit and -self._pnl() >= c.daily_loss_limit and not self._reduces(o):
            return self.reject("daily_loss_limit", f"the day's loss ${-self._pnl() / 1e8:.2f} "
                               f"reached the limit ${c.daily_loss_limit / 1e8:.2f}")
        return None

    def _check_rate(self, ts_ns: int) -> Optional[Rejection]:
        c = self.cfg
        self.commands += 1
        if not c.max_orders_per_s:
            return None
        sent = self._sent
        while sent and sent[0] <= ts_ns - SECOND_NS:
            sent.popleft()
        if c.max_orders_per_s and len(sent) >= c.max_orders_per_s:
            return self.reject("order_rate", f"more than {c.max_orders_per_s} orders in the "
                               "last second")
        sent.append(ts_ns)
        return None
