"""Order entry, matching and fills (mixed into engine.Exchange; cancel/amend are edits.py).

Matching is price-time priority on the YES book (docs/trading-api.md §4.3): an incoming
order takes the best opposite level while it crosses (a bid at p crosses an ask at a <= p),
each trade printing at the resting order's price. Self-trade prevention is the taker's
``self_trade_prevention_type``: ``taker_at_cross`` (default) cancels the taker's remainder
when the next maker is its own; ``maker`` cancels that resting order and matching goes on
(docs/exchange.md "Self-trade prevention": Kalshi's text does not confirm either).
"""

from __future__ import annotations

import heapq
import re

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange import errors as E
from kalshi_platform.exchange.book import P1, Order
from kalshi_platform.exchange.errors import ExchangeError, err
from kalshi_platform.exchange.events import Fill, Result, Trade
from kalshi_platform.exchange.ledger import (Account, Position, add_order, drop_order, fill_money,
                                             refresh, reweigh)
from kalshi_platform.exchange.market import OPEN
from kalshi_platform.exchange.views import order_view
from kalshi_platform.fixedpoint import MAX_SIZE

#: Kalshi's ClOrdID rule (docs/trading-api.md §4.2): at most 64 of ``[-\w:+=/]``
CLIENT_ID = re.compile(r"[\-\w:+=/]{1,64}")
STP = (C.STP_TAKER, C.STP_MAKER)
CENT_MONEY = 10**6  # one cent in money units


def order_id_of(n: int) -> str:
    """Deterministic UUID-shaped order id of the n-th order."""
    return f"00000000-0000-4000-8000-{n:012x}"


def clone(o: Order) -> Order:
    """A live copy of ``o`` (amend re-queues a copy: the old object stays dead in its queue)."""
    n = Order.__new__(Order)
    for s in Order.__slots__:
        setattr(n, s, getattr(o, s))
    n.dead = False
    return n


class OrderOps:
    """Order commands of :class:`~kalshi_platform.exchange.engine.Exchange`."""

    # -- create -------------------------------------------------------------------------

    def _create_cmd(self, c: C.CreateOrder, ts: int) -> Result:
        o = self._create(c, ts)
        if type(o) is ExchangeError:
            return Result(error=o)
        v = self._view
        self._view = None
        return Result(order=v if v is not None else order_view(o))

    def _price_of(self, m, yes_price, no_price):
        if (yes_price is None) == (no_price is None):
            return err(E.INVALID_PARAMETER, "exactly one of yes_price, no_price is required")
        price = yes_price if no_price is None else no_price
        if type(price) is not int:
            return err(E.INVALID_PRICE, f"price must be an integer in micro-dollars, got {price!r}")
        if no_price is not None:
            price = P1 - price
        if not m.valid_price(price):
            return err(E.INVALID_PRICE, f"yes price {price / P1:.6f} is outside the market's "
                       f"price_ranges or off its tick")
        return price

    def _validate(self, c: C.CreateOrder):
        m = self.markets.get(c.ticker)
        if m is None:
            return err(E.MARKET_NOT_FOUND, f"no market {c.ticker!r}", 404)
        if m.status != OPEN:
            return err(E.MARKET_CLOSED, f"market {c.ticker} is {m.status}, not open")
        if c.side not in ("yes", "no") or c.action not in ("buy", "sell"):
            return err(E.INVALID_PARAMETER, "side must be yes|no and action buy|sell, got "
                       f"{c.side!r}/{c.action!r}")
        if type(c.count) is not int or not 0 < c.count <= MAX_SIZE:
            return err(E.INVALID_COUNT, f"count must be 1..{MAX_SIZE} centi-contracts, got "
                       f"{c.count!r}")
        price = self._price_of(m, c.yes_price, c.no_price)
        if isinstance(price, ExchangeError):
            return price
        return self._validate_options(c) or (m, price)

    def _validate_options(self, c: C.CreateOrder) -> ExchangeError | None:
        bad = E.INVALID_PARAMETER
        if c.time_in_force not in C.TIME_IN_FORCE:
            return err(bad, f"time_in_force must be one of {', '.join(C.TIME_IN_FORCE)}")
        if c.self_trade_prevention_type not in (None, *STP):
            return err(bad, "self_trade_prevention_type must be taker_at_cross or maker")
        if c.expiration_ts is not None and (type(c.expiration_ts) is not int
                                            or c.expiration_ts < 0):
            return err(bad, "expiration_ts must be a non-negative integer (UTC seconds)")
        if c.buy_max_cost is not None and (c.action != "buy" or type(c.buy_max_cost) is not int
                                           or c.buy_max_cost <= 0):
            return err(bad, "buy_max_cost must be a positive integer (cents) on a buy order")
        if c.post_only and (c.time_in_force != C.GTC or c.buy_max_cost is not None):
            return err(bad, "post_only needs time_in_force good_till_canceled")
        if c.reduce_only and c.time_in_force == C.GTC and c.buy_max_cost is None:
            return err(bad, "reduce_only orders must be immediate_or_cancel or fill_or_kill")
        if c.client_order_id is not None and (type(c.client_order_id) is not str
                                              or not CLIENT_ID.fullmatch(c.client_order_id)):
            return err(bad, "client_order_id must be 1-64 characters of letters, digits, _-:+=/")
        if type(c.subaccount) is not int or not 0 <= c.subaccount <= 32:
            return err(bad, "subaccount must be 0..32")
        return None

    def _admit(self, c: C.CreateOrder, m) -> ExchangeError | Account:
        uid = c.user_id
        if c.client_order_id is not None:
            prior = self.client_ids.get((uid, c.client_order_id))
            if prior is not None:
                return err(E.ORDER_ALREADY_EXISTS, f"client_order_id {c.client_order_id!r} "
                           f"was already used by order {prior}", 409, details=prior)
        acct = self.accounts.get(uid) or Account(uid)  # stored once an order is accepted
        if acct.open_orders >= self.cfg.max_open_orders:
            return err(E.OPEN_ORDER_LIMIT, f"at most {self.cfg.max_open_orders} open orders")
        if c.order_group_id is not None:
            g = self.groups.get(c.order_group_id)
            if g is None or g.user_id != uid:
                return err(E.ORDER_GROUP_NOT_FOUND, f"no order group {c.order_group_id!r}", 404)
            if g.triggered:
                return err(E.ORDER_GROUP_TRIGGERED, f"order group {c.order_group_id} was "
                           "triggered; reset it to place orders")
        return acct

    def _create(self, c: C.CreateOrder, ts: int) -> Order | ExchangeError:
        v = self._validate(c)
        if isinstance(v, ExchangeError):
            return v
        m, price = v
        acct = self._admit(c, m)
        if isinstance(acct, ExchangeError):
            return acct
        o = Order("", c.user_id, c.ticker, c.side, c.action, price, c.count, ts)
        p = m.positions.get(c.user_id) or Position(c.user_id)  # stored once accepted
        if c.reduce_only:
            held = -p.pos if o.is_bid else p.pos
            if c.count > held:
                return err(E.REDUCE_ONLY, f"reduce_only order of {c.count / 100} contracts "
                           f"exceeds the {max(held, 0) / 100} held on the side it closes")
        if c.post_only and self._crosses(m, o.is_bid, price):
            return err(E.POST_ONLY_CROSS, "post_only order would cross the book")
        add_order(p, o, m.taker_fee)
        refresh(p, acct)
        if acct.cash < acct.reserved:
            need = acct.reserved - acct.cash
            drop_order(p, o)
            refresh(p, acct)
            up = -(-need // 10**4)  # money units -> $0.0001, rounded up: never "$0.0000"
            return err(E.INSUFFICIENT_BALANCE, f"insufficient balance: the order needs "
                       f"${up // 10**4}.{up % 10**4:04d} more collateral")
        self.accounts[c.user_id] = acct
        m.positions[c.user_id] = p
        self._fill_in(o, c, ts)
        return self._execute(m, o, p, acct, c, ts)

    def _fill_in(self, o: Order, c: C.CreateOrder, ts: int) -> None:
        self.next_order += 1
        o.order_id = order_id_of(self.next_order)
        o.client_order_id = c.client_order_id
        o.tif = C.FOK if c.buy_max_cost is not None else c.time_in_force
        o.expiration_ts = c.expiration_ts
        o.post_only, o.reduce_only = c.post_only, c.reduce_only
        o.stp = c.self_trade_prevention_type or C.STP_TAKER
        o.group_id = c.order_group_id
        o.cancel_on_pause = c.cancel_order_on_pause
        if c.expiration_ts is not None and c.expiration_ts * 10**9 <= ts:
            o.tif = C.IOC  # "any date in the past is treated as IOC" (docs/trading-api.md §4.2)
        self.orders[o.order_id] = o
        if c.client_order_id is not None:
            self.client_ids[(c.user_id, c.client_order_id)] = o.order_id

    def _execute(self, m, o: Order, p, acct: Account, c: C.CreateOrder, ts: int) -> Order:
        stopped = False
        if o.tif == C.FOK and not self._fok_ok(m, o, c.buy_max_cost):
            stopped = True
        else:
            stopped = self._match(m, o, ts)
        if o.remaining:
            if stopped or o.tif != C.GTC:
                drop_order(p, o)
                refresh(p, acct)
                o.status = "canceled"
            else:
                self._rest(m, o, acct, ts)
        else:
            o.status = "executed"
        self._view = self._emit_order(o)
        return o

    def _crosses(self, m, is_bid: bool, price: int) -> bool:
        if is_bid:
            best = m.book.best_ask()
            return best is not None and best <= price
        best = m.book.best_bid()
        return best is not None and best >= price

    def _fok_ok(self, m, t: Order, max_cost_cents) -> bool:
        """Would ``t`` fill completely (within ``max_cost_cents``)? A dry run of _match."""
        book, need, cost = m.book, t.remaining, 0
        keys = book.ask_keys if t.is_bid else book.bid_keys
        levels = book.asks if t.is_bid else book.bids
        for k in reversed(keys):
            price = -k if t.is_bid else k
            if (price > t.price) if t.is_bid else (price < t.price):
                break
            for mk in levels[price].orders:
                if mk.dead:
                    continue
                if mk.user_id == t.user_id:
                    if t.stp == C.STP_MAKER:
                        continue
                    return False
                q = min(need, mk.remaining)
                cost += q * (price if t.side == "yes" else P1 - price)
                need -= q
                if need == 0:
                    return max_cost_cents is None or cost <= max_cost_cents * CENT_MONEY
        return False

    def _rest(self, m, o: Order, acct: Account, ts: int) -> None:
        m.book.add(o)
        acct.open_orders += 1
        self._emit_delta(m, o.is_bid, o.price, o.remaining, ts)
        if o.expiration_ts is not None:
            heapq.heappush(self.expiry, (o.expiration_ts * 10**9, self.next_order, o.order_id))
        if o.group_id is not None:
            self.groups[o.group_id].orders[o.order_id] = None

    # -- matching -------------------------------------------------------------------------

    def _match(self, m, t: Order, ts: int) -> bool:
        """Match ``t`` against the opposite side; True when STP stopped it. The taker's
        collateral sums and position event are brought up to date once, after the sweep."""
        before = t.filled
        stopped = self._sweep(m, t, ts)
        if t.filled != before:
            p = m.positions[t.user_id]
            reweigh(p, t, t.filled - before, m.taker_fee)
            refresh(p, self.accounts[t.user_id])
            self._emit_position(m, t.user_id, ts)
        return stopped

    def _sweep(self, m, t: Order, ts: int) -> bool:
        book = m.book
        if t.is_bid:
            levels, keys = book.asks, book.ask_keys
        else:
            levels, keys = book.bids, book.bid_keys
        limit, is_bid = t.price, t.is_bid
        while t.remaining and keys:
            price = -keys[-1] if is_bid else keys[-1]
            if (price > limit) if is_bid else (price < limit):
                break
            lv = levels[price]
            orders = lv.orders
            while t.remaining and lv.live:
                mk = orders[0]
                if mk.dead:
                    orders.popleft()
                    continue
                if mk.user_id == t.user_id:
                    if t.stp != C.STP_MAKER:
                        return True
                    self._cancel_resting(mk, ts)
                    continue
                self._trade(m, t, mk, lv, price, ts)
        return False

    def _trade(self, m, t: Order, mk: Order, lv, price: int, ts: int) -> None:
        qty = t.remaining if t.remaining < mk.remaining else mk.remaining
        self.next_trade += 1
        trade_id = (f"00000000-0000-4000-9000-{self.next_trade:012x}"
                    if self._ev is not None or self._history else "")
        self._party(m, t, price, qty, m.taker_fee(qty, price), True, ts, trade_id)
        self._party(m, mk, price, qty, m.maker_fee(qty, price), False, ts, trade_id)
        lv.qty -= qty
        if mk.remaining == 0:
            m.book.pop_front(lv, mk, mk.is_bid)
            mk.status = "executed"
            self.accounts[mk.user_id].open_orders -= 1
            if mk.group_id is not None:
                self.groups[mk.group_id].orders.pop(mk.order_id, None)
        self._emit_delta(m, mk.is_bid, price, -qty, ts)
        if self._ev is not None:
            self._ev.append(Trade(trade_id, m.ticker, qty, price, P1 - price,
                                  "yes" if t.is_bid else "no", ts))
        self._emit_order(mk)

    def _party(self, m, o: Order, price: int, qty: int, fee: int, is_taker: bool, ts: int,
               trade_id: str) -> None:
        uid = o.user_id
        p = m.positions[uid]
        acct = self.accounts[uid]
        cash, rounding = fill_money(p, acct, o, price, qty, fee, self._precision)
        m.escrow -= cash
        self.fees_collected += fee
        self.rounding_collected += rounding
        o.remaining -= qty
        o.filled += qty
        o.updated_ts = ts
        cost = qty * price if o.side == "yes" else qty * (P1 - price)
        if is_taker:
            o.taker_fill_cost += cost
            o.taker_fees += fee
        else:
            o.maker_fill_cost += cost
            o.maker_fees += fee
        if not is_taker:  # the taker's are updated once per sweep (_match)
            reweigh(p, o, qty, m.taker_fee)
            refresh(p, acct)
        if o.group_id is not None:
            self.groups[o.group_id].record(ts, qty)
            self._touched.add(o.group_id)
        if self._ev is not None or self._history:
            f = Fill(trade_id, trade_id, o.order_id, uid, m.ticker, o.side, o.action,
                     "bid" if o.is_bid else "ask", qty, price, P1 - price, is_taker, fee,
                     rounding, ts)
            if self._history:
                self.fills.setdefault(uid, []).append(f)
            if self._ev is not None:
                self._ev.append(f)
        if not is_taker:
            self._emit_position(m, uid, ts)
