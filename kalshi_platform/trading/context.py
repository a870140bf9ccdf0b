"""What a strategy trades and reads through: ``self.ctx`` (issue 14 §1).

Orders: :meth:`Context.buy_yes` / ``sell_yes`` / ``buy_no`` / ``sell_no`` (price on the
order's own side scale, micro-dollars; count centi-contracts) return the
:class:`~.model.Order`, already ``rejected`` with its reason when a pre-trade risk check
refused it (nothing was sent then). ``cancel``, ``cancel_all`` and ``amend`` return whether
a command was sent (not when the order is blocked awaiting reconciliation, terminal, or not
acknowledged yet: ``cancel`` of an unacknowledged order is sent once the ack arrives).

State: ``position(ticker)`` (signed YES-equivalent centi-contracts), ``positions``,
``open_orders(ticker)``, ``balance`` (money at the venue, 1e-8 dollars, as of the last
reconciliation), ``book(ticker)`` (the local :class:`~kalshi_platform.feed.books.MirrorBook`
as of the feed the strategy has seen), ``bbo(ticker)``, ``now_ns`` (the venue clock),
``state`` (the trading state), ``pnl()``, ``random`` (seeded), ``set_timer``.
"""

from __future__ import annotations

import random as _random
from typing import TYPE_CHECKING, Optional

from kalshi_platform.trading.model import Action, Order, Side, TimeInForce

if TYPE_CHECKING:  # pragma: no cover
    from kalshi_platform.trading.node import TradingNode


class Context:
    """The strategy's handle on its trading node (see the module docstring)."""

    def __init__(self, node: "TradingNode", seed: int = 0) -> None:
        self._node = node
        self.random = _random.Random(seed)

    # -- orders ----------------------------------------------------------------------------

    def _order(self, side: Side, action: Action, ticker: str, price: int, count: int,
               tif: TimeInForce | str, post_only: bool, reduce_only: bool) -> Order:
        return self._node.place(ticker, side, action, price, count, TimeInForce(tif),
                                post_only, reduce_only)

    def buy_yes(self, ticker: str, price: int, count: int, tif: TimeInForce | str = "good_till_canceled",
                post_only: bool = False, reduce_only: bool = False) -> Order:
        """Bid for YES at ``price`` (micro-dollars) for ``count`` centi-contracts."""
        return self._order(Side.YES, Action.BUY, ticker, price, count, tif, post_only, reduce_only)

    def sell_yes(self, ticker: str, price: int, count: int, tif: TimeInForce | str = "good_till_canceled",
                 post_only: bool = False, reduce_only: bool = False) -> Order:
        """Offer YES at ``price`` (a YES-book ask; selling YES you do not hold buys NO)."""
        return self._order(Side.YES, Action.SELL, ticker, price, count, tif, post_only,
                           reduce_only)

    def buy_no(self, ticker: str, price: int, count: int, tif: TimeInForce | str = "good_till_canceled",
               post_only: bool = False, reduce_only: bool = False) -> Order:
        """Bid for NO at NO price ``price`` (a YES ask at $1 − price)."""
        return self._order(Side.NO, Action.BUY, ticker, price, count, tif, post_only, reduce_only)

    def sell_no(self, ticker: str, price: int, count: int, tif: TimeInForce | str = "good_till_canceled",
                post_only: bool = False, reduce_only: bool = False) -> Order:
        """Offer NO at NO price ``price`` (a YES bid at $1 − price)."""
        return self._order(Side.NO, Action.SELL, ticker, price, count, tif, post_only,
                           reduce_only)

    def cancel(self, order: Order | str) -> bool:
        """Cancel an order (object or client_order_id)."""
        return self._node.cancel(order)

    def retry(self, order: Order | str) -> bool:
        """Resend an unanswered new order with the same client_order_id (idempotent)."""
        return self._node.retry(order)

    def cancel_all(self, ticker: str | None = None) -> int:
        """Cancel every open order (of ``ticker``); returns how many cancels were sent or
        queued."""
        return self._node.cancel_all(ticker)

    def amend(self, order: Order | str, price: int | None = None, count: int | None = None) -> bool:
        """Amend price (side scale) and/or max fillable count of a resting order."""
        return self._node.amend(order, price, count)

    # -- state -----------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        """The venue clock, UTC ns."""
        return self._node.venue.now_ns()

    def position(self, ticker: str) -> int:
        """Signed YES-equivalent centi-contracts held in ``ticker``."""
        p = self._node.portfolio.positions.get(ticker)
        return 0 if p is None else p.pos

    @property
    def positions(self) -> dict[str, int]:
        """Ticker → signed position, non-flat markets only."""
        return {t: p.pos for t, p in self._node.portfolio.positions.items() if p.pos}

    def open_orders(self, ticker: str | None = None) -> list[Order]:
        """Our open orders (of ``ticker``), oldest first."""
        return self._node.oms.open_orders(ticker)

    @property
    def balance(self) -> int:
        """Money at the venue (1e-8 dollars) at the last reconciliation, moved by fills."""
        return self._node.balance()

    def book(self, ticker: str):
        """The local book of ``ticker`` (``MirrorBook``) or None."""
        return self._node.books.books.get(ticker)

    def bbo(self, ticker: str):
        """The last live BBO row of ``ticker`` or None."""
        b = self._node.books.books.get(ticker)
        return None if b is None else b.bbo

    @property
    def state(self):
        """The trading state (:class:`~.model.TradingState`)."""
        return self._node.risk.state

    def pnl(self, mark: str = "mid") -> dict:
        """Totals (money): realized, unrealized, fees, settled, net, volume, turnover."""
        return self._node.pnl(mark)

    def set_timer(self, interval_ns: int, repeat: bool = True) -> None:
        """Call the strategy's ``on_timer`` every ``interval_ns`` (once when not
        ``repeat``). Raises ValueError for an interval <= 0."""
        self._node.set_timer(interval_ns, repeat)

    def set_state(self, state) -> None:
        """Set the trading state (``TradingState`` or its value: active | reducing |
        halted)."""
        self._node.set_trading_state(state)

    def kill(self, reason: str = "manual") -> None:
        """Trip the kill switch: cancel all and halt."""
        self._node.kill.trip(reason)

    def get_order(self, client_order_id: str) -> Optional[Order]:
        """One of our orders by client_order_id."""
        return self._node.oms.get(client_order_id)
