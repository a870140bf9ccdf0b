"""One market's order book on the YES scale (docs/trading-api.md §4.3).

Every order is a bid or an ask for YES: buy-yes@p and sell-no@(1−p) are bids at p; buy-no@q
and sell-yes@(1−q) are asks at 1−q. Levels are FIFO queues (price-time priority) with lazy
removal: a canceled order is flagged ``dead`` and dropped when it reaches the front, so a
cancel is O(1). Best prices come from sorted key lists (bids ascending, asks as negated
prices ascending: the best of both is the last element). Prices are micro-dollars, sizes
centi-contracts; the book does no accounting and no I/O.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

P1 = 1_000_000  # $1 in micro-dollars


class Order:
    """A live or finished order (internal; the public view is events.OrderView).

    ``price`` is on the YES scale; ``is_bid`` says which book side it rests on. ``w`` is the
    collateral weight it currently adds to its position (ledger.py); ``cum``/``applied`` are
    the per-order rounding accumulator (exact vs. applied balance change, money units)."""

    __slots__ = ("order_id", "user_id", "client_order_id", "ticker", "side", "action",
                 "is_bid", "price", "initial", "remaining", "filled", "tif",
                 "expiration_ts", "post_only", "reduce_only", "stp", "group_id", "status",
                 "created_ts", "updated_ts", "taker_fill_cost", "maker_fill_cost",
                 "taker_fees", "maker_fees", "dead", "w", "cum", "applied",
                 "cancel_on_pause")

    def __init__(self, order_id: str, user_id: str, ticker: str, side: str, action: str,
                 price: int, count: int, ts: int) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.client_order_id = None
        self.ticker = ticker
        self.side = side
        self.action = action
        self.is_bid = (side == "yes") == (action == "buy")
        self.price = price
        self.initial = count
        self.remaining = count
        self.filled = 0
        self.tif = "good_till_canceled"
        self.expiration_ts = None
        self.post_only = False
        self.reduce_only = False
        self.stp = "taker_at_cross"
        self.group_id = None
        self.status = "resting"
        self.created_ts = ts
        self.updated_ts = ts
        self.taker_fill_cost = 0
        self.maker_fill_cost = 0
        self.taker_fees = 0
        self.maker_fees = 0
        self.dead = False
        self.w = 0
        self.cum = 0
        self.applied = 0
        self.cancel_on_pause = False


class Level:
    """The FIFO queue at one price: ``orders`` (may hold dead ones), ``qty`` live total,
    ``live`` count of live orders."""

    __slots__ = ("orders", "qty", "live")

    def __init__(self) -> None:
        self.orders: deque[Order] = deque()
        self.qty = 0
        self.live = 0


class Book:
    """Bids and asks of one market. Mutations return nothing; the caller emits deltas."""

    __slots__ = ("bids", "asks", "bid_keys", "ask_keys")

    def __init__(self) -> None:
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_keys: list[int] = []  # ascending prices; best bid last
        self.ask_keys: list[int] = []  # ascending negated prices; best ask last

    def best_bid(self) -> int | None:
        """Highest bid price (micro-dollars) or None."""
        return self.bid_keys[-1] if self.bid_keys else None

    def best_ask(self) -> int | None:
        """Lowest ask price (micro-dollars, YES scale) or None."""
        return -self.ask_keys[-1] if self.ask_keys else None

    def add(self, o: Order) -> None:
        """Append ``o`` at the back of its level (creating the level)."""
        if o.is_bid:
            levels, keys, key = self.bids, self.bid_keys, o.price
        else:
            levels, keys, key = self.asks, self.ask_keys, -o.price
        lv = levels.get(o.price)
        if lv is None:
            lv = levels[o.price] = Level()
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        lv.orders.append(o)
        lv.qty += o.remaining
        lv.live += 1

    def remove(self, o: Order) -> None:
        """Take ``o`` (live, resting) out of the book: flagged dead, level total reduced, the
        level dropped when it has no live order."""
        levels = self.bids if o.is_bid else self.asks
        lv = levels[o.price]
        o.dead = True
        lv.qty -= o.remaining
        lv.live -= 1
        if lv.live == 0:
            self._drop(o.is_bid, o.price)
        elif lv.orders[0] is o:
            lv.orders.popleft()

    def _drop(self, is_bid: bool, price: int) -> None:
        if is_bid:
            del self.bids[price]
            keys, key = self.bid_keys, price
        else:
            del self.asks[price]
            keys, key = self.ask_keys, -price
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def pop_front(self, lv: Level, o: Order, is_bid: bool) -> None:
        """``o`` (the front of ``lv``) is fully filled: remove it."""
        lv.orders.popleft()
        o.dead = True
        lv.live -= 1
        if lv.live == 0:
            self._drop(is_bid, o.price)

    def queue_position(self, o: Order) -> int:
        """Centi-contracts resting ahead of ``o`` at its price (0 at the front)."""
        lv = (self.bids if o.is_bid else self.asks)[o.price]
        ahead = 0
        for x in lv.orders:
            if x is o:
                return ahead
            if not x.dead:
                ahead += x.remaining
        raise KeyError(o.order_id)

    def levels(self, is_bid: bool) -> list[tuple[int, int]]:
        """``[(price, qty)]`` of one side, best first (YES-scale prices)."""
        if is_bid:
            return [(p, self.bids[p].qty) for p in reversed(self.bid_keys)]
        return [(-k, self.asks[-k].qty) for k in reversed(self.ask_keys)]

    def resting(self) -> list[Order]:
        """Every live order, bids then asks, each side best level first, in queue order."""
        out = []
        for is_bid in (True, False):
            levels = self.bids if is_bid else self.asks
            for p, _ in self.levels(is_bid):
                out.extend(o for o in levels[p].orders if not o.dead)
        return out
