"""One market's order book on the YES scale (docs/trading-api.md §4.3), from the C core.

Every order is a bid or an ask for YES: buy-yes@p and sell-no@(1−p) are bids at p; buy-no@q
and sell-yes@(1−q) are asks at 1−q. :class:`Book` (``_core.c``, core_book.h) keeps each side
as price levels of FIFO queues (price-time priority): ``add``, ``remove``, ``reduce``,
``best_bid``/``best_ask``, ``levels(is_bid)`` ``[(price, qty)]`` best first, ``resting()``,
``queue_position(order)`` and ``check()`` (its invariants). :class:`Order` is one order
(price on the YES scale, ``is_bid`` its side of the book). Prices are micro-dollars, sizes
centi-contracts; the book does no accounting and no I/O.
"""

from kalshi_platform.exchange._core import Book, Order

P1 = 1_000_000  # $1 in micro-dollars

__all__ = ["Book", "Order", "P1"]
