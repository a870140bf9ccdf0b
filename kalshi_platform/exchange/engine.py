"""The exchange core: ``Exchange.submit(cmd, ts) -> Result`` (docs/exchange.md).

Deterministic: the state after a sequence of ``submit(cmd, ts)`` calls depends only on the
commands and their timestamps (UTC ns, passed in; no wall clock, no randomness, ids from
counters), which is what lets the WAL rebuild it by replay. Single writer: one owner thread
or task calls ``submit``; nothing here takes a lock. The C core (``_core.Core``, the base
class: ``_core.c``) holds the state order entry touches and does the dispatch (``submit``),
order entry, cancel, matching, fills and events; decrease/amend/batches live in edits.py,
admin and order-group commands in admin.py (mixed in); this module holds the set-up, expiry,
pickling and the read-only queries the REST/WS/FIX layers serve.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange._core import Core
from kalshi_platform.exchange.admin import AdminOps
from kalshi_platform.exchange.edits import EditOps
from kalshi_platform.exchange.errors import ORDER_NOT_FOUND, err
from kalshi_platform.exchange.events import OrderView, PositionUpdate, Result, SettlementRecord
from kalshi_platform.exchange.fees import FeeConfig
from kalshi_platform.exchange.ledger import Account, reserve_of
from kalshi_platform.exchange.views import order_view

#: the C core's attributes (not in the instance __dict__): what a pickle must carry besides it
_CORE_STATE = ("markets", "accounts", "orders", "client_ids", "groups", "fills", "expiry",
               "next_order", "next_trade", "fees_collected", "rounding_collected", "ts")


@dataclass(frozen=True)
class ExchangeConfig:
    """Engine settings. ``max_open_orders`` per user (Kalshi: 200 000), ``max_batch`` (20),
    ``events``: build event structs (off only for benchmarks of the bare core),
    ``keep_history``: keep every fill/settlement per user for the portfolio queries."""

    fees: FeeConfig = field(default_factory=FeeConfig)
    max_open_orders: int = 200_000
    max_batch: int = 20
    events: bool = True
    keep_history: bool = True


class Exchange(Core, EditOps, AdminOps):
    """All markets, accounts, orders and groups of one exchange (one writer).

    ``submit(cmd, ts) -> Result`` (the C core's) applies one command at UTC time ``ts`` (ns;
    an earlier ts than the last is taken as the last, so time never runs backwards). Expired
    GTD orders are canceled first (their updates lead the result's events). It never raises
    for bad input: a refused command returns ``Result(error=...)`` and changes nothing;
    TypeError only for a non-command object or a non-integer ts.

    State (C core attributes): ``markets`` ticker → Market, ``accounts`` user → Account,
    ``orders`` order_id → Order, ``client_ids`` (user, client_order_id) → order_id,
    ``groups``, ``fills``/``settlements`` per user (with ``keep_history``), ``expiry`` (heap
    of (ns, n, order_id)), counters ``next_order``/``next_trade``, ``fees_collected``/
    ``rounding_collected`` (money), ``ts`` (the last command's time)."""

    def __init__(self, config: ExchangeConfig | None = None) -> None:
        self.cfg = config or ExchangeConfig()
        self.void_adjustment = 0
        self.deposits = 0
        self.settlements: dict[str, list[SettlementRecord]] = {}
        self._configure()

    def _configure(self) -> None:
        self._precision = self.cfg.fees.balance_precision
        self._history = self.cfg.keep_history
        self._events = self.cfg.events
        self._max_open_orders = self.cfg.max_open_orders
        self._handlers = {
            C.CreateOrder: self._create_cmd, C.CancelOrder: self._cancel_cmd,
            C.AmendOrder: self._amend_cmd, C.DecreaseOrder: self._decrease_cmd,
            C.BatchCreateOrders: self._batch_create, C.BatchCancelOrders: self._batch_cancel,
            C.MassCancel: self._mass_cancel,
            C.CreateOrderGroup: self._create_group, C.OrderGroupAction: self._group_action,
            C.AddMarket: self._add_market, C.Deposit: self._deposit,
            C.CloseMarket: self._close_market, C.DetermineMarket: self._determine_market,
            C.SettleMarket: self._settle_market, C.Tick: self._tick,
        }

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update({k: getattr(self, k) for k in _CORE_STATE})
        return state

    def __setstate__(self, state: dict) -> None:
        for k in _CORE_STATE:
            setattr(self, k, state.pop(k))
        self.__dict__.update(state)
        self._configure()
        for m in self.markets.values():  # fee closures are rebuilt, not pickled
            m.restore_fees(self.cfg.fees)

    def _tick(self, cmd: C.Tick, ts: int) -> Result:
        return Result()

    def _expire(self, ts: int) -> None:
        """Cancel the GTD orders whose expiry is at or before ``ts`` (called by submit)."""
        while self.expiry and self.expiry[0][0] <= ts:
            _, _, oid = heapq.heappop(self.expiry)
            o = self.orders[oid]
            if o.status == "resting":
                self._cancel_resting(o, ts)

    # -- queries (read-only; for the REST/WS/FIX layers) -----------------------------------

    def get_order(self, order_id: str, user_id: str | None = None) -> OrderView | None:
        """The order's view, or None if unknown (or not ``user_id``'s when given)."""
        o = self.orders.get(order_id)
        if o is None or (user_id is not None and o.user_id != user_id):
            return None
        return order_view(o)

    def order_by_client_id(self, user_id: str, client_order_id: str) -> OrderView | None:
        """The user's order with that ``client_order_id`` (FIX OrigClOrdID), or None."""
        oid = self.client_ids.get((user_id, client_order_id))
        return None if oid is None else order_view(self.orders[oid])

    def user_orders(self, user_id: str, ticker: str | None = None,
                    status: str | None = None) -> list[OrderView]:
        """The user's orders, oldest first, optionally filtered by ticker and status."""
        return [order_view(o) for o in self.orders.values()
                if o.user_id == user_id and (ticker is None or o.ticker == ticker)
                and (status is None or o.status == status)]

    def queue_position(self, order_id: str, user_id: str | None = None):
        """``queue_position_fp`` in centi-contracts: contracts resting ahead of the order at
        its price (docs/trading-api.md §4.1), or an ExchangeError (404) for an unknown or
        non-resting order."""
        o = self.orders.get(order_id)
        if o is None or o.status != "resting" or (user_id and o.user_id != user_id):
            return err(ORDER_NOT_FOUND, f"no resting order {order_id}", 404)
        return self.markets[o.ticker].book.queue_position(o)

    def balance(self, user_id: str) -> dict:
        """``{"balance", "cash", "reserved", "portfolio_value"}`` in money units: balance is
        the available cash (cash minus collateral of resting orders); portfolio_value marks
        positions at cost."""
        a = self.accounts.get(user_id) or Account(user_id)
        value = sum(m.positions[user_id].cost for m in self.markets.values()
                    if user_id in m.positions)
        return {"balance": a.available, "cash": a.cash, "reserved": a.reserved,
                "portfolio_value": value}

    def positions(self, user_id: str) -> list[PositionUpdate]:
        """The user's positions in every market where it traded (``market_position`` shape)."""
        out = []
        for m in self.markets.values():
            p = m.positions.get(user_id)
            if p is not None and (p.volume or p.pos):
                out.append(PositionUpdate(user_id=user_id, ticker=m.ticker, position=p.pos,
                                          position_cost=p.cost, realized_pnl=p.realized,
                                          fees_paid=p.fees, volume=p.volume, ts=p.updated_ts,
                                          total_traded=p.traded))
        return out

    def book_snapshot(self, ticker: str) -> dict | None:
        """``{"seq", "yes": [(price, qty)], "no": [(price, qty)]}``, best first, in Kalshi's
        yes/no bid form (no prices = $1 − YES ask), or None for an unknown market."""
        m = self.markets.get(ticker)
        if m is None:
            return None
        return {"seq": m.seq, "yes": m.book.levels(True),
                "no": [(1_000_000 - p, q) for p, q in m.book.levels(False)]}

    def totals(self) -> dict:
        """Money totals for the conservation check: deposits = cash + fees + rounding +
        escrow − void adjustment, where cash includes collateral reserved by orders."""
        cash = sum(a.cash for a in self.accounts.values())
        escrow = sum(m.escrow for m in self.markets.values())
        return {"deposits": self.deposits, "cash": cash, "escrow": escrow,
                "reserved": sum(a.reserved for a in self.accounts.values()),
                "fees": self.fees_collected, "rounding": self.rounding_collected,
                "void_adjustment": self.void_adjustment}

    def check_invariants(self) -> list[str]:
        """Internal consistency: conservation of money, reserves equal to their formula,
        escrow = $1 per open pair, level totals. Returns the violations (empty when sound)."""
        bad = []
        t = self.totals()
        lhs = t["cash"] + t["fees"] + t["rounding"] + t["escrow"] - t["void_adjustment"]
        if lhs != t["deposits"]:
            bad.append(f"money not conserved: {lhs} != deposits {t['deposits']}")
        reserved: dict[str, int] = {}
        for m in self.markets.values():
            long = sum(p.pos for p in m.positions.values() if p.pos > 0)
            short = -sum(p.pos for p in m.positions.values() if p.pos < 0)
            if long != short or (m.status != "settled" and m.escrow != long * 1_000_000):
                bad.append(f"{m.ticker}: escrow {m.escrow} for {long}/{short} open")
            for u, p in m.positions.items():
                if p.reserve != reserve_of(p):
                    bad.append(f"{m.ticker}/{u}: reserve {p.reserve} != {reserve_of(p)}")
                reserved[u] = reserved.get(u, 0) + p.reserve
            bad.extend(f"{m.ticker}: {v}" for v in m.book.check())
        for u, a in self.accounts.items():
            if a.reserved != reserved.get(u, 0):
                bad.append(f"{u}: reserved {a.reserved} != {reserved.get(u, 0)}")
        return bad
