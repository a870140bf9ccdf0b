"""Admin commands (markets, deposits, lifecycle, settlement) and order groups (mixed into
engine.Exchange).

Settlement (docs/trading-api.md §4.4): only net positions exist (YES and NO net on every
fill), so settling pays $1 per net winning contract from the market's escrow; ``void``
returns each holder's position cost (floored to the balance precision). A void refund is not
what the escrow holds (costs drift from $1 per pair as contracts change hands), so the
exchange funds the difference, counted in ``void_adjustment``. Trade fees are not refunded
on void (Kalshi's docs do not say; docs/exchange.md).
"""

from __future__ import annotations

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange import errors as E
from kalshi_platform.exchange.book import P1
from kalshi_platform.exchange.errors import err
from kalshi_platform.exchange.events import (MarketStatus, OrderGroupUpdate, Result,
                                             SettlementRecord)
from kalshi_platform.exchange.fees import floor_to
from kalshi_platform.exchange.groups import Group
from kalshi_platform.exchange.ledger import Account
from kalshi_platform.exchange.market import CLOSED, DETERMINED, OPEN, RESULTS, SETTLED, Market

CENT_MONEY = 10**6
#: the most money (1e-8 $: $10^22) deposited in all; the C core keeps an account's cash in
#: 128 bits (the backtest funds its market participant with $10^13)
MAX_MONEY = 10**30


class AdminOps:
    """Markets, money and order groups."""

    def _add_market(self, c: C.AddMarket, ts: int) -> Result:
        if c.ticker in self.markets:
            return Result(error=err(E.MARKET_EXISTS, f"market {c.ticker} already exists", 409))
        if type(c.ticker) is not str or not c.ticker:
            return Result(error=err(E.INVALID_PARAMETER, "ticker must be a non-empty string"))
        try:
            m = Market(c.ticker, c.event_ticker, c.series_ticker, c.price_ranges, c.fee_type,
                       c.fee_multiplier, self.cfg.fees)
        except ValueError as e:
            return Result(error=err(E.INVALID_PARAMETER, str(e)))
        self.markets[c.ticker] = m
        self._emit_status(m, ts)
        return Result()

    def _deposit(self, c: C.Deposit, ts: int) -> Result:
        if type(c.amount) is not int or c.amount == 0:
            return Result(error=err(E.INVALID_PARAMETER, "amount must be a non-zero integer (cents)"))
        a = self.accounts.get(c.user_id)
        if a is None:
            a = self.accounts[c.user_id] = Account(c.user_id)
        money = c.amount * CENT_MONEY
        if self.deposits + money > MAX_MONEY:
            return Result(error=err(E.INVALID_PARAMETER, "deposit too large: the exchange "
                                    f"holds at most ${MAX_MONEY // 10**8:,} in all"))
        if a.available + money < 0:
            return Result(error=err(E.INSUFFICIENT_BALANCE, "withdrawal exceeds the available "
                                    "balance"))
        a.cash += money
        a.deposits += money
        self.deposits += money
        return Result()

    def _emit_status(self, m: Market, ts: int) -> None:
        if self._ev is not None:
            self._ev.append(MarketStatus(ticker=m.ticker, status=m.status, result=m.result, ts=ts))

    def _lifecycle(self, ticker: str, want: str):
        m = self.markets.get(ticker)
        if m is None:
            return err(E.MARKET_NOT_FOUND, f"no market {ticker!r}", 404)
        if m.status != want:
            return err(E.INVALID_STATE, f"market {ticker} is {m.status}, expected {want}")
        return m

    def _close_market(self, c: C.CloseMarket, ts: int) -> Result:
        m = self._lifecycle(c.ticker, OPEN)
        if isinstance(m, E.ExchangeError):
            return Result(error=m)
        for o in m.book.resting():
            self._cancel_resting(o, ts)
        m.status = CLOSED
        self._emit_status(m, ts)
        return Result()

    def _determine_market(self, c: C.DetermineMarket, ts: int) -> Result:
        if c.result not in RESULTS:
            return Result(error=err(E.INVALID_PARAMETER, "result must be yes, no or void"))
        m = self._lifecycle(c.ticker, CLOSED)
        if isinstance(m, E.ExchangeError):
            return Result(error=m)
        m.status, m.result = DETERMINED, c.result
        self._emit_status(m, ts)
        return Result()

    def _settle_market(self, c: C.SettleMarket, ts: int) -> Result:
        m = self._lifecycle(c.ticker, DETERMINED)
        if isinstance(m, E.ExchangeError):
            return Result(error=m)
        for uid, p in m.positions.items():
            if p.pos or p.cost:
                self._settle_position(m, uid, p, ts)
        self.void_adjustment -= m.escrow  # zero unless void
        m.escrow = 0
        m.status = SETTLED
        self._emit_status(m, ts)
        return Result()

    def _settle_position(self, m: Market, uid: str, p, ts: int) -> None:
        yes, no = max(p.pos, 0), max(-p.pos, 0)
        if m.result == "yes":
            payout, value = yes * P1, 100
        elif m.result == "no":
            payout, value = no * P1, 0
        else:
            payout, value = floor_to(p.cost, self.cfg.fees.balance_precision), None
        self.accounts[uid].cash += payout
        m.escrow -= payout
        rec = SettlementRecord(
            user_id=uid, ticker=m.ticker, event_ticker=m.event_ticker, market_result=m.result,
            yes_count=yes, no_count=no, yes_total_cost=p.cost if yes else 0,
            no_total_cost=p.cost if no else 0, revenue=payout, value=value, fee_cost=p.fees,
            settled_ts=ts)
        p.realized += payout - p.cost
        p.pos = p.cost = 0
        if self.cfg.keep_history:
            self.settlements.setdefault(uid, []).append(rec)
        if self._ev is not None:
            self._ev.append(rec)
        self._emit_position(m, uid, ts)

    # -- order groups ---------------------------------------------------------------------

    def _create_group(self, c: C.CreateOrderGroup, ts: int) -> Result:
        if c.order_group_id in self.groups:
            return Result(error=err(E.ORDER_GROUP_EXISTS,
                                    f"order group {c.order_group_id} exists", 409))
        if type(c.contracts_limit) is not int or c.contracts_limit <= 0:
            return Result(error=err(E.INVALID_PARAMETER, "contracts_limit must be > 0 "
                                    "(centi-contracts)"))
        g = self.groups[c.order_group_id] = Group(c.order_group_id, c.user_id,
                                                  c.contracts_limit, c.is_auto_cancel_enabled)
        self._emit_group(g, "created", ts)
        return Result()

    def _emit_group(self, g: Group, event_type: str, ts: int) -> None:
        if self._ev is not None:
            self._ev.append(OrderGroupUpdate(user_id=g.user_id, order_group_id=g.group_id,
                                             event_type=event_type, contracts_limit=g.limit, ts=ts))

    def _group_action(self, c: C.OrderGroupAction, ts: int) -> Result:
        g = self.groups.get(c.order_group_id)
        if g is None or g.user_id != c.user_id:
            return Result(error=err(E.ORDER_GROUP_NOT_FOUND,
                                    f"no order group {c.order_group_id!r}", 404))
        if c.action == "reset":
            g.reset()
            self._emit_group(g, "reset", ts)
        elif c.action in ("trigger", "delete"):
            self._trigger(g, ts)
            if c.action == "delete":
                del self.groups[g.group_id]
                self._emit_group(g, "deleted", ts)
        elif c.action == "limit":
            if type(c.contracts_limit) is not int or c.contracts_limit <= 0:
                return Result(error=err(E.INVALID_PARAMETER, "contracts_limit must be > 0"))
            g.limit = c.contracts_limit
            self._emit_group(g, "limit_updated", ts)
        else:
            return Result(error=err(E.INVALID_PARAMETER,
                                    "action must be reset, trigger, delete or limit"))
        return Result()

    def _trigger(self, g: Group, ts: int) -> None:
        g.triggered = True
        for oid in list(g.orders):
            o = self.orders[oid]
            if o.status == "resting":
                self._cancel_resting(o, ts)
        g.orders.clear()
        self._emit_group(g, "triggered", ts)

    def _check_groups(self, ts: int) -> None:
        for gid in self._touched:
            g = self.groups.get(gid)
            if g is not None and g.over_limit(ts):
                self._trigger(g, ts)
        self._touched.clear()
