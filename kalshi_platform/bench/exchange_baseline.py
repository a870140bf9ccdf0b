"""The naive matching engine `bench exchange` measures against (issue 13 §7).

What a first, careful price-time engine looks like with :mod:`sortedcontainers`: one
``SortedDict`` per side mapping price → ``list`` of resting orders (FIFO), a dict of order
id → order, cancel by scanning the level's list, matching at the resting price. It does only
matching: no accounts, collateral, fees, validation or events, so it is a generous yardstick
for our engine, which does all of those. It reads the same command structs
(kalshi_platform/exchange/commands.py) so both run one input; YES-scale prices in
micro-dollars, sizes in centi-contracts. Self-trades are not prevented (the bench's mix has
none).
"""

from __future__ import annotations

from sortedcontainers import SortedDict

from kalshi_platform.exchange.commands import CancelOrder, CreateOrder

P1 = 1_000_000


class NaiveEngine:
    """``submit(cmd)``: CreateOrder (GTC rests, IOC/FOK-less: IOC remainder dropped) and
    CancelOrder. Order ids are ``str(n)`` of the n-th create (the bench maps ours to them).
    ``trades`` / ``volume`` count the matches."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[SortedDict, SortedDict]] = {}
        self.orders: dict[str, list] = {}
        self.n = 0
        self.trades = 0
        self.volume = 0

    def submit(self, cmd) -> None:
        """Apply one command (other command types are ignored)."""
        if type(cmd) is CreateOrder:
            self._create(cmd)
        elif type(cmd) is CancelOrder:
            self._cancel(cmd.order_id)

    def _create(self, c: CreateOrder) -> None:
        self.n += 1
        oid = str(self.n)
        price = c.yes_price if c.no_price is None else P1 - c.no_price
        is_bid = (c.side == "yes") == (c.action == "buy")
        bids, asks = self.books.setdefault(c.ticker, (SortedDict(), SortedDict()))
        qty = c.count
        opposite = asks if is_bid else bids
        while qty and opposite:
            best = opposite.keys()[0] if is_bid else opposite.keys()[-1]
            if (best > price) if is_bid else (best < price):
                break
            level = opposite[best]
            while qty and level:
                maker = level[0]
                q = min(qty, maker[2])
                qty -= q
                maker[2] -= q
                self.trades += 1
                self.volume += q
                if maker[2] == 0:
                    level.pop(0)
                    del self.orders[maker[0]]
            if not level:
                del opposite[best]
        if qty and c.time_in_force == "good_till_canceled":
            order = [oid, is_bid, qty, price, c.ticker]
            (bids if is_bid else asks).setdefault(price, []).append(order)
            self.orders[oid] = order

    def _cancel(self, oid: str) -> None:
        order = self.orders.pop(oid, None)
        if order is None:
            return
        bids, asks = self.books[order[4]]
        side = bids if order[1] else asks
        level = side[order[3]]
        level.remove(order)
        if not level:
            del side[order[3]]
