"""The trading node: strategy ↔ order manager ↔ risk ↔ venue, positions and PnL
(issue 14; docs/trading.md "Architecture").

One code path for every venue: the node is the :class:`~.venue.VenueListener`; it keeps the
local books (:class:`kalshi_platform.feed.books.BookMirror`, fed by the venue's market
events as the strategy sees them), the :class:`~.orders.OrderManager`, the
:class:`~.portfolio.Portfolio`, the :class:`~.risk.RiskEngine` and the
:class:`~.killswitch.KillSwitch`, and calls the strategy's callbacks. A strategy callback
that raises is not caught: a bug stops the run (the CLI cancels all and reports).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from kalshi_platform.feed.books import BookMirror
from kalshi_platform.ticker_plant.events import DeltaEvent, SnapshotEvent, TradeEvent
from kalshi_platform.ticker_plant.order_book import BBO
from kalshi_platform.trading.context import Context
from kalshi_platform.trading.killswitch import KillSwitch
from kalshi_platform.trading.model import (Action, Fill, Order, OrderReport, OrderStatus, Settlement,
                                           Side, TimeInForce, TradingState)
from kalshi_platform.trading.orders import OrderManager
from kalshi_platform.trading.portfolio import Portfolio, event_of
from kalshi_platform.trading.reconcile import reconcile
from kalshi_platform.trading.risk import MarketView, OrderIntent, RiskEngine
from kalshi_platform.trading.risk_config import RiskConfig
from kalshi_platform.trading.strategy import Strategy
from kalshi_platform.trading.venue import Venue

log = logging.getLogger(__name__)


class TradingNode:
    """Runs one strategy on one venue.

    Args: ``strategy``; ``venue``; ``risk`` (:class:`RiskConfig`, default limits);
    ``seed`` (the strategy's ``ctx.random``); ``prefix`` of client order ids;
    ``recorder``: optional observer with ``on_fill(node, fill)`` and ``on_market(node, ts)``
    (the backtest report)."""

    def __init__(self, strategy: Strategy, venue: Venue, risk: RiskConfig | None = None, *,
                 seed: int = 0, prefix: str = "kp", recorder: Any = None) -> None:
        self.strategy, self.venue = strategy, venue
        self.books = BookMirror()
        self._apply = self.books.apply
        self.portfolio = Portfolio()
        self.oms = OrderManager(prefix, on_change=self._order_changed)
        self.risk = RiskEngine(risk or RiskConfig(), position=self.portfolio.pos,
                               event_position=self.portfolio.event_pos, event_of=event_of,
                               open_orders=self.oms.open_orders, market=self._market_view,
                               net_pnl=lambda: self.pnl()["net"])
        self.kill = KillSwitch(self.risk.cfg, self._on_kill)
        self.ctx = Context(self, seed)
        self.recorder = recorder
        self.fills: list[Fill] = []
        self.rejections: list[dict] = []
        self.reconcile_notes: list[str] = []
        self._cash_delta = 0
        self._venue_balance = 0
        self._cancel_on_ack: set[str] = set()
        self._wants_book = type(strategy).on_book is not Strategy.on_book
        self._started = False
        self._kill_request = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, reconcile with the venue, call ``on_start``."""
        self.strategy.ctx = self.ctx
        self.venue.start(self)
        self.reconcile()
        self._started = True
        self.strategy.on_start()

    def run(self) -> None:
        """``start`` (if needed), drive the venue to its end, then :meth:`stop`."""
        if not self._started:
            self.start()
        try:
            self.venue.run()
        finally:
            self.stop()

    def stop(self, cancel_all: bool = False) -> None:
        """End of run: optionally cancel all open orders, then ``on_stop`` (once)."""
        if not self._started:
            return
        self._started = False
        if cancel_all:
            self.cancel_all()
        self.strategy.on_stop()

    def reconcile(self) -> list[str]:
        """Merge the venue's orders, fills and positions (see :mod:`.reconcile`)."""
        state = self.venue.state()
        notes = reconcile(self, state)
        self._venue_balance, self._cash_delta = state.balance, 0  # it holds those fills
        self.reconcile_notes.extend(notes)
        return notes

    # -- commands (from the strategy's context) ---------------------------------------------

    def place(self, ticker: str, side: Side, action: Action, price: int, count: int,
              tif: TimeInForce, post_only: bool, reduce_only: bool) -> Order:
        """Risk-check and send a new order; returns it (``rejected`` if risk refused)."""
        now = self.venue.now_ns()
        o = Order(self.oms.next_client_id(), ticker, side, action, price, count, tif=tif,
                  post_only=post_only, reduce_only=reduce_only, created_ns=now, updated_ns=now)
        rej = self.risk.check_new(OrderIntent(ticker, side, action, price, count, reduce_only),
                                  now)
        self.oms.add(o)
        if rej is not None:
            self._note_reject(o, rej.code, rej.message, "risk", now)
            self.oms.mark(o, OrderStatus.REJECTED, now, f"{rej.code}: {rej.message}")
            self.kill.on_reject(now)
            return o
        self.venue.submit(o)
        return o

    def retry(self, order: Order | str) -> bool:
        """Send a new order again with the same ``client_order_id`` (idempotent: a venue that
        has it answers "duplicate" and the node reconciles). Only for an order still
        ``pending_new`` or blocked on an unknown outcome."""
        o = self._resolve(order)
        if o is None or not (o.status is OrderStatus.PENDING_NEW or o.blocked):
            return False
        self.venue.submit(o)
        return True

    def _resolve(self, order: Order | str) -> Optional[Order]:
        return self.oms.get(order) if isinstance(order, str) else order

    def cancel(self, order: Order | str) -> bool:
        """Send a cancel (or queue it until the ack); False when blocked or terminal."""
        o = self._resolve(order)
        if o is None or o.status.terminal or o.blocked:
            return False
        if o.status is OrderStatus.PENDING_CANCEL:
            return True
        if o.venue_order_id is None:
            self._cancel_on_ack.add(o.client_order_id)
            return True
        self.oms.mark(o, OrderStatus.PENDING_CANCEL, self.venue.now_ns())
        self.risk.note_cancel(self.venue.now_ns())
        self.venue.cancel(o)
        return True

    def cancel_all(self, ticker: str | None = None) -> int:
        """Cancel every open order (of ``ticker``); returns how many were sent or queued."""
        return sum(self.cancel(o) for o in self.oms.open_orders(ticker))

    def amend(self, order: Order | str, price: int | None, count: int | None) -> bool:
        """Risk-check and send an amend; False when blocked, not resting, or refused."""
        o = self._resolve(order)
        if o is None or self.oms.command_blocked(o) or o.status not in (
                OrderStatus.RESTING, OrderStatus.PARTIALLY_FILLED):
            return False
        price = o.price if price is None else price
        count = o.count if count is None else count
        now = self.venue.now_ns()
        rej = self.risk.check_amend(o, price, count, now)
        if rej is not None:
            self._note_reject(o, rej.code, rej.message, "risk", now)
            self.kill.on_reject(now)
            return False
        o.pending_price, o.pending_count = price, count
        self.oms.mark(o, OrderStatus.PENDING_AMEND, now)
        self.venue.amend(o, price, count)
        return True

    def set_trading_state(self, state: TradingState) -> None:
        """Set ACTIVE / REDUCING / HALTED by hand (the kill switch sets HALTED itself)."""
        self.risk.state = TradingState(state)

    def set_timer(self, interval_ns: int, repeat: bool = True) -> None:
        """Schedule the strategy's ``on_timer`` on the venue clock."""
        if interval_ns <= 0:
            raise ValueError("timer interval must be > 0 ns")

        def fire() -> None:
            if not self._started:
                return
            now = self.venue.now_ns()
            self.strategy.on_timer(now)
            if repeat:
                self.venue.call_at(now + interval_ns, fire)

        self.venue.call_at(self.venue.now_ns() + interval_ns, fire)

    # -- venue callbacks ------------------------------------------------------------------

    def request_kill(self, reason: str) -> None:
        """Trip the kill switch at the next market event or report (safe from a signal
        handler: only a flag is set here)."""
        self._kill_request = reason

    def _take_kill_request(self) -> None:
        reason, self._kill_request = self._kill_request, ""
        self.kill.trip(reason)

    def on_market(self, seq: int, ev: Any) -> None:
        """A market event: local books, kill-switch watch, strategy callbacks."""
        if self._kill_request:
            self._take_kill_request()
        self._apply(seq, ev)
        t = type(ev)
        if t is DeltaEvent or t is SnapshotEvent:
            if self._wants_book:
                b = self.books.books.get(ev.ticker)
                if b is not None:
                    self.strategy.on_book(b)
        elif t is BBO:
            if ev.state != "live":
                self.kill.on_book_state(ev.ticker, ev.state, self._traded(ev.ticker))
            elif self.risk.cfg.daily_loss_limit and self.portfolio.pos(ev.ticker):
                self.kill.on_pnl(self.pnl()["net"])  # a held market moved: mark to it
            if self.recorder is not None:
                self.recorder.on_market(self, ev.ts_ns)
            self.strategy.on_bbo(ev)
        elif t is TradeEvent:
            self.strategy.on_trade(ev)

    def on_order_report(self, r: OrderReport) -> None:
        """A venue report: order state, rejects counted for the kill switch."""
        if self._kill_request:
            self._take_kill_request()
        o = self.oms.on_report(r)
        if o is None:
            return
        if r.kind == "rejected" and r.code == "order_already_exists":
            self.reconcile()  # a retry the venue already had: take its state
            return
        if r.kind in ("rejected", "cancel_rejected", "amend_rejected"):
            self._note_reject(o, r.code, r.reason, "venue", r.ts_ns)
            self.kill.on_reject(r.ts_ns)
        if o.client_order_id in self._cancel_on_ack and o.venue_order_id and not o.blocked:
            self._cancel_on_ack.discard(o.client_order_id)
            if o.status.open:
                self.cancel(o)

    def on_fill(self, f: Fill) -> None:
        """A fill: counted once into the order and the portfolio, then ``on_fill``."""
        new, _ = self.oms.on_fill(f)
        if not new:
            return
        self._book_fill(f)

    def _book_fill(self, f: Fill) -> None:
        self.portfolio.apply_fill(f)
        self.fills.append(f)
        own = f.yes_price if f.side is Side.YES else 1_000_000 - f.yes_price
        self._cash_delta += (-f.count * own if f.action is Action.BUY else f.count * own) - f.fee
        if self.recorder is not None:
            self.recorder.on_fill(self, f)
        self.strategy.on_fill(f)
        self.kill.on_pnl(self.pnl()["net"])

    def on_settlement(self, s: Settlement) -> None:
        """A market settled: positions closed at the payout."""
        self.portfolio.apply_settlement(s.ticker, s.result, s.revenue)
        self._cash_delta += s.revenue
        if self.recorder is not None:
            self.recorder.on_market(self, s.ts_ns)

    def on_reconnect(self) -> None:
        """Reconcile after a reconnect."""
        self.reconcile()

    # -- helpers -------------------------------------------------------------------------

    def _order_changed(self, o: Order) -> None:
        if self._started:
            self.strategy.on_order(o)

    def _note_reject(self, o: Order, code: str, message: str, source: str, ts: int) -> None:
        self.rejections.append({"ts_ns": ts, "client_order_id": o.client_order_id,
                                "source": source, "code": code, "reason": message})
        if source == "venue":
            self.risk.counters[f"venue:{code}"] += 1

    def _on_kill(self, reason: str) -> None:
        log.warning("kill switch: %s; canceling all and halting", reason)
        self.risk.state = TradingState.HALTED
        self.cancel_all()

    def _traded(self, ticker: str) -> bool:
        return bool(self.portfolio.pos(ticker) or self.oms.open_orders(ticker))

    def _market_view(self, ticker: str) -> MarketView:
        b = self.books.books.get(ticker)
        if b is None:
            return MarketView("syncing", None, None)
        bbo = b.bbo
        if bbo is None:
            return MarketView(b.state, None, None)
        return MarketView(b.state, bbo.yes_bid, bbo.yes_ask)

    def tops(self) -> dict[str, tuple]:
        """Ticker → ``(yes_bid, yes_ask)`` from the last live BBO of each traded market."""
        out = {}
        for t in self.portfolio.positions:
            b = self.books.books.get(t)
            bbo = b.bbo if b is not None else None
            out[t] = (bbo.yes_bid, bbo.yes_ask) if bbo is not None else (None, None)
        return out

    def pnl(self, mark: str = "mid") -> dict:
        """Portfolio totals (money) at ``mark`` (mid | liquidation)."""
        return self.portfolio.totals(self.tops(), mark)

    def balance(self) -> int:
        """Venue balance at the last reconciliation plus the cash our fills moved since."""
        return self._venue_balance + self._cash_delta
