"""Cancel, decrease, amend and the batch commands (mixed into engine.Exchange).

Amend keeps the order's queue priority only when the price is unchanged and the size does
not grow; any other amend (new price, larger size) puts it at the back of the queue at its
new price, where it may trade at once (docs.kalshi.com amend-order: "Amending a resting order
preserves queue position only when the amendment decreases size. All other amendments ...
forfeit queue position"; docs/exchange.md "Amend"). ``count`` is the max fillable (filled +
new remaining), as Kalshi's amend.
"""

from __future__ import annotations

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange import errors as E
from kalshi_platform.exchange.book import Order
from kalshi_platform.exchange.commands import CLIENT_ID
from kalshi_platform.exchange.errors import ExchangeError, err, reject
from kalshi_platform.exchange.events import Result
from kalshi_platform.exchange.ledger import add_order, drop_order, refresh
from kalshi_platform.exchange.views import order_view
from kalshi_platform.fixedpoint import MAX_SIZE


class EditOps:
    """Cancel/decrease/amend/batch commands of the Exchange."""

    def _resting_order(self, user_id: str, order_id: str) -> Order | ExchangeError:
        o = self.orders.get(order_id)
        if o is None or o.user_id != user_id:
            return reject("order_not_found", order_id)
        if o.status != "resting":
            return reject("order_not_resting", order_id, o.status)
        return o

    def _decrease_cmd(self, c: C.DecreaseOrder, ts: int) -> Result:
        o = self._resting_order(c.user_id, c.order_id)
        if isinstance(o, ExchangeError):
            return Result(error=o)
        if (c.reduce_by is None) == (c.reduce_to is None):
            return Result(error=err(E.INVALID_PARAMETER,
                                    "exactly one of reduce_by, reduce_to is required"))
        n = c.reduce_by if c.reduce_to is None else c.reduce_to
        if type(n) is not int or n < 0 or (c.reduce_by is not None and n == 0):
            return Result(error=err(E.INVALID_COUNT, "reduce_by must be > 0 and reduce_to >= 0 "
                                    "(centi-contracts)"))
        new_rem = o.remaining - n if c.reduce_to is None else n
        if new_rem >= o.remaining:
            return Result(error=err(E.INVALID_COUNT, f"reduce_to {n} does not reduce the "
                                    f"remaining {o.remaining}"))
        if new_rem <= 0:
            self._cancel_resting(o, ts)
        else:
            self._reduce(o, new_rem, ts)
            self._emit_order(o)
        return Result(order=order_view(o))

    def _reduce(self, o: Order, new_rem: int, ts: int) -> None:
        """Shrink a resting order in place (it keeps its place in the queue)."""
        m = self.markets[o.ticker]
        d = o.remaining - new_rem
        p = m.positions[o.user_id]
        drop_order(p, o)
        m.book.reduce(o, new_rem)
        add_order(p, o, m)
        refresh(p, self.accounts[o.user_id])
        o.updated_ts = ts
        self._emit_delta(m, o.is_bid, o.price, -d, ts)

    def _amend_check(self, c: C.AmendOrder, o: Order):
        if (c.ticker, c.side, c.action) != (o.ticker, o.side, o.action):
            return err(E.INVALID_PARAMETER, "ticker, side and action must be the order's")
        m = self.markets[o.ticker]
        price = self._price_of(m, c.yes_price, c.no_price)
        if isinstance(price, ExchangeError):
            return price
        new_rem = o.remaining
        if c.count is not None:
            if type(c.count) is not int or not o.filled < c.count <= MAX_SIZE:
                return err(E.INVALID_COUNT, f"count is the max fillable and must exceed the "
                           f"{o.filled} already filled (at most {MAX_SIZE})")
            new_rem = c.count - o.filled
        u = c.updated_client_order_id
        if u is not None and (type(u) is not str or not CLIENT_ID.fullmatch(u)):
            return err(E.INVALID_PARAMETER, "updated_client_order_id: 1-64 of letters, digits, _-:+=/")
        if u is not None and self.client_ids.get((o.user_id, u), o.order_id) != o.order_id:
            return err(E.ORDER_ALREADY_EXISTS, f"client_order_id {u!r} is already used", 409)
        return m, price, new_rem

    def _amend_cmd(self, c: C.AmendOrder, ts: int) -> Result:
        o = self._resting_order(c.user_id, c.order_id)
        if isinstance(o, ExchangeError):
            return Result(error=o)
        v = self._amend_check(c, o)
        if isinstance(v, ExchangeError):
            return Result(error=v)
        m, price, new_rem = v
        old = order_view(o)
        if price == o.price and new_rem <= o.remaining:
            if new_rem < o.remaining:
                self._reduce(o, new_rem, ts)
            n = o
        else:
            n = self._requeue(m, o, price, new_rem, ts)
            if isinstance(n, ExchangeError):
                return Result(error=n)
        if c.updated_client_order_id is not None:
            self.client_ids[(o.user_id, c.updated_client_order_id)] = o.order_id
            n.client_order_id = c.updated_client_order_id
        n.updated_ts = ts
        self._emit_order(n)
        return Result(order=order_view(n), old_order=old)

    def _requeue(self, m, o: Order, price: int, new_rem: int, ts: int) -> Order | ExchangeError:
        """Replace ``o`` by a copy at ``price`` with ``new_rem`` at the back of the queue,
        matching it first; refused (nothing changed) when post-only crosses or collateral
        is short."""
        if o.post_only and self._crosses(m, o.is_bid, price):
            return err(E.POST_ONLY_CROSS, "post_only order would cross the book")
        p, acct = m.positions[o.user_id], self.accounts[o.user_id]
        n = o.copy()
        n.price, n.remaining = price, new_rem
        drop_order(p, o)
        try:
            add_order(p, n, m)
        except OverflowError:  # open-order sums beyond int64: more than any account
            add_order(p, o, m)
            return reject("too_large", new_rem)
        refresh(p, acct)
        if acct.cash < acct.reserved:
            drop_order(p, n)
            add_order(p, o, m)
            refresh(p, acct)
            return err(E.INSUFFICIENT_BALANCE, "insufficient balance for the amended order")
        o.w = 0
        m.book.remove(o)
        acct.open_orders -= 1
        self._emit_delta(m, o.is_bid, o.price, -o.remaining, ts)
        o.status = "canceled"  # the old object; the order lives on as ``n``
        self.orders[o.order_id] = n
        if self._match(m, n, ts):
            drop_order(p, n)
            refresh(p, acct)
            n.status = "canceled"
            if n.group_id is not None:
                self.groups[n.group_id].orders.pop(n.order_id, None)
        elif n.remaining:
            self._rest(m, n, acct, ts)
        else:
            n.status = "executed"
            if n.group_id is not None:
                self.groups[n.group_id].orders.pop(n.order_id, None)
        return n

    def _batch_create(self, c: C.BatchCreateOrders, ts: int) -> Result:
        if not 1 <= len(c.orders) <= self.cfg.max_batch:
            return Result(error=err(E.BATCH_TOO_LARGE, f"a batch holds 1..{self.cfg.max_batch} "
                                    f"orders, got {len(c.orders)}"))
        items = []
        for item in c.orders:
            if type(item) is not C.CreateOrder or item.user_id != c.user_id:
                items.append(Result(error=err(E.INVALID_PARAMETER,
                                              "batch items must be the batch user's orders")))
                continue
            items.append(self._create_cmd(item, ts))
        return Result(items=items)

    def _batch_cancel(self, c: C.BatchCancelOrders, ts: int) -> Result:
        if not 1 <= len(c.order_ids) <= self.cfg.max_batch:
            return Result(error=err(E.BATCH_TOO_LARGE, f"a batch cancels 1..{self.cfg.max_batch} "
                                    f"orders, got {len(c.order_ids)}"))
        return Result(items=[self._cancel_cmd(C.CancelOrder(user_id=c.user_id, order_id=i), ts)
                             for i in c.order_ids])

    def _mass_cancel(self, c: C.MassCancel, ts: int) -> Result:
        if c.ticker is not None and c.ticker not in self.markets:
            return Result(error=err(E.MARKET_NOT_FOUND, f"no market {c.ticker!r}", 404))
        markets = [self.markets[c.ticker]] if c.ticker is not None else self.markets.values()
        items = []
        for m in markets:
            for o in m.book.resting():
                if o.user_id == c.user_id:
                    v = self._cancel_resting(o, ts)
                    items.append(Result(order=v if v is not None else order_view(o)))
        return Result(items=items)
