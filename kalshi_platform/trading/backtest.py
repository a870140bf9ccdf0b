"""The ``backtest`` venue: a recording replayed through the exchange core in-process
(issue 14 §5; docs/trading.md "Backtest").

Pipeline per recorded frame at time T (its receipt time, else its exchange time; never
decreasing):

1. the ticker plant (:class:`~kalshi_platform.ticker_plant.plant.TickerPlant`) turns it into
   normalized events (snapshots, deltas, BBO rows, trades, lifecycle);
2. the :class:`~.follower.Follower` makes the core's book follow the recorded book at T
   (orders of the "market" participant; the queue model is documented there);
3. every event reaches the strategy at T + ``feed_latency_ns`` (its local books are a
   :class:`~kalshi_platform.feed.books.BookMirror` of what it has seen);
4. a command the strategy sends at t reaches the core at t + ``order_latency_ns``; the answer,
   fills and order updates come back ``order_latency_ns`` later (maker fills caused by a
   recorded change at T come back at T + ``order_latency_ns``).

Everything runs on one :class:`~.scheduler.Scheduler`: the same recording, strategy and seed
give the same fills. Lifecycle events with a result settle the market in the core
(close, determine, settle); ``settle`` in the config settles markets at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from kalshi_platform.exchange import Exchange, ExchangeConfig
from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange.events import Fill as XFill
from kalshi_platform.exchange.events import OrderUpdate, Result, SettlementRecord
from kalshi_platform.ingestion.recording import feed, read_meta
from kalshi_platform.ticker_plant.events import (DeltaEvent, LifecycleEvent, SnapshotEvent,
                                                TradeEvent)
from kalshi_platform.ticker_plant.order_book import BBO
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.trading.follower import (MARKET_DEPOSIT_CENTS, MARKET_USER, TAKER_USER,
                                             Follower)
from kalshi_platform.trading.model import (Action, Fill, Order, OrderReport, Settlement, Side,
                                           TimeInForce, VenueOrder, VenueState)
from kalshi_platform.trading._step import FrameStep
from kalshi_platform.trading.portfolio import event_of
from kalshi_platform.trading.venue import Venue, VenueListener

MS = 1_000_000
P1 = 1_000_000  # $1 in micro-dollars


@dataclass(frozen=True)
class BacktestConfig:
    """``order_latency_ns`` one way (command to core, answer back), ``feed_latency_ns``
    (recorded event to strategy), ``deposit_cents`` of the strategy's account,
    ``price_ranges`` of every market (micro-dollars ``[(start, end, step)]``; default the
    cent grid), ``settle`` ticker → result (yes | no | void) applied at the end,
    ``user_id`` of the strategy at the core, ``lazy_levels``: keep only the levels that can
    matter to our orders in the core (follower.py; same fills, far fewer core commands)."""

    order_latency_ns: int = 0
    feed_latency_ns: int = 0
    deposit_cents: int = 100_000_00
    price_ranges: tuple = ((0, 1_000_000, 10_000),)
    settle: dict = field(default_factory=dict)
    user_id: str = "strategy"
    lazy_levels: bool = True


class _Driver:
    """What recording.feed drives: the plant, then the backtest's per-frame step
    ``frame_step`` (trading/_step.c): ``frame_step(frame, recv_ns, raw)`` takes a decoded
    frame whole (plant included), ``frame_step(_DECODED, recv_ns)`` steps a frame the plant
    already took. When the plant has its compiled delta path, the reader's chunks go to
    ``frame_step.lines``: one line (one frame) at a time through ``plant.process_lines``,
    each followed by the step — the same frames, in the same order, as one ``process_frame``
    call per line."""

    def __init__(self, plant: TickerPlant, frame_step) -> None:
        self._plant, self._step = plant, frame_step
        self.process_frame = frame_step
        if getattr(plant, "process_lines", None) is not None:
            self.process_lines = frame_step.lines

    def process(self, payload, recv_ns=None, raw=None) -> None:
        self._plant.process(payload, recv_ns, raw)
        self._step(_DECODED, recv_ns)

    def reset(self, detail: str) -> None:
        self._plant.reset(detail)
        self._step(_DECODED, None)

    def feed_event(self, kind: str, **kw) -> None:
        self._plant.feed_event(kind, **kw)
        self._step(_DECODED, kw.get("ts_ns"))


#: the frame step's ``frame`` when the plant already took the frame
_DECODED = object()
#: ``BacktestVenue._route``'s ``skip`` for "no order update at all"
_EVERY = object()


class _Stopped(Exception):
    """Raised out of the recording reader when the venue was asked to stop."""


class _Collect:
    """A plant publisher that keeps the events of the current frame in ``events`` (always
    the same list: ``publish`` is its ``append``, bound once; the frame step empties it)."""

    def __init__(self) -> None:
        self.events: list = []
        self.publish = self.events.append

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class BacktestVenue(Venue):
    """The recording at ``path`` through :class:`kalshi_platform.exchange.Exchange`."""

    name = "backtest"

    def __init__(self, path: str | Path, config: BacktestConfig | None = None,
                 exchange: Exchange | None = None) -> None:
        from kalshi_platform.trading.scheduler import Scheduler

        self.path = Path(path)
        self.cfg = config or BacktestConfig()
        self.core = exchange or Exchange(ExchangeConfig())
        self.clock = Scheduler()
        self._collect = _Collect()
        meta = read_meta(self.path)
        self.plant = TickerPlant([self._collect], use_yes_price=bool(meta.use_yes_price))
        self.follower = Follower(self._core_submit, self._route_now, self.cfg.lazy_levels)
        self.listener: Optional[VenueListener] = None
        self._lose_answers = 0
        self._early: list[tuple[int, Callable[[], None]]] = []  # scheduled before the clock ran
        self.unknown_settle: list[str] = []  # --settle tickers the recording never listed
        self._events = self._collect.events
        self._known: set[str] = set()  # tickers seen listed at the core (never unlisted)
        yes, no = self.follower.side_maps()
        self._step = FrameStep(
            plant_frame=self.plant.process_frame, events=self._events, clock=self.clock,
            yes=yes, no=no, known=self._known, delta=self.follower.delta_event,
            follow=self._follow, start_clock=self._start_clock, late=self._deliver_later,
            stopped_exc=_Stopped, decoded=_DECODED, delta_type=DeltaEvent,
            on_market=lambda _seq, _ev: None, bbo_type=BBO,
            plant_lines=getattr(self.plant, "process_lines", None),
            feed_latency=self.cfg.feed_latency_ns)

    # -- Venue API ------------------------------------------------------------------------

    def start(self, listener: VenueListener) -> None:
        self.listener = listener
        self._step.on_market = listener.on_market
        if self.cfg.user_id not in self.core.accounts:
            self.core.submit(C.Deposit(user_id=self.cfg.user_id, amount=self.cfg.deposit_cents), 0)
            for u in (MARKET_USER, TAKER_USER):
                self.core.submit(C.Deposit(user_id=u, amount=MARKET_DEPOSIT_CENTS), 0)

    @property
    def frames(self) -> int:
        """Recorded frames stepped so far."""
        return self._step.frames

    @property
    def seq(self) -> int:
        """The stream seq of the last recorded event handed on."""
        return self._step.seq

    @property
    def events(self) -> int:
        """Recorded events handed on so far (each one gets the next stream seq)."""
        return self._step.seq

    def now_ns(self) -> int:
        return self.clock.now

    def call_at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        """Run ``fn`` at ``ts_ns``. Before the first recorded time (``on_start``) times
        count from it: a timer set then first fires one interval after the first frame."""
        if self._step.timed:
            self.clock.at(ts_ns, fn)
        else:
            self._early.append((ts_ns, fn))

    def submit(self, order: Order) -> None:
        self.call_at(self.clock.now + self.cfg.order_latency_ns, lambda: self._arrive_new(order))

    def cancel(self, order: Order) -> None:
        self.call_at(self.clock.now + self.cfg.order_latency_ns,
                     lambda: self._arrive_cancel(order))

    def amend(self, order: Order, price: int, count: int) -> None:
        self.call_at(self.clock.now + self.cfg.order_latency_ns,
                     lambda: self._arrive_amend(order, price, count))

    def stop(self) -> None:
        """The replay ends after the current frame (what is due still runs)."""
        self._step.stopped = True

    def lose_answers(self, n: int = 1) -> None:
        """Fault injection: the next ``n`` command answers are lost (the command is applied
        at the core; the client gets an ``unknown`` report instead)."""
        self._lose_answers += n

    def run(self) -> None:
        """Replay the whole recording, then settle (``settle``) and drain what is due."""
        self._step.stopped = False
        self._events.clear()  # what an interrupted run left
        try:
            feed(self.path, _Driver(self.plant, self._step))
        except _Stopped:
            pass
        end = self.clock.now + self.cfg.order_latency_ns * 2 + self.cfg.feed_latency_ns
        self.clock.run_until(end)
        for ticker, result in sorted(self.cfg.settle.items()):
            if ticker in self.core.markets:
                self.settle(ticker, result)
            else:
                self.unknown_settle.append(ticker)
        self.clock.run_until(self.clock.now + self.cfg.order_latency_ns)

    def settle(self, ticker: str, result: str) -> None:
        """Close, determine and settle ``ticker`` at the core now; the payouts and the
        resting orders' cancels reach the strategy ``order_latency_ns`` later."""
        now = self.clock.now
        for cmd in (C.CloseMarket(ticker=ticker), C.DetermineMarket(ticker=ticker, result=result),
                    C.SettleMarket(ticker=ticker)):
            self._route(self.core.submit(cmd, now), now)

    def state(self) -> VenueState:
        uid = self.cfg.user_id
        orders = [_venue_order(v) for v in self.core.user_orders(uid)]
        fills = [_fill(f) for f in self.core.fills.get(uid, [])]
        positions = {p.ticker: p.position for p in self.core.positions(uid) if p.position}
        return VenueState(orders, fills, positions, self.core.balance(uid)["cash"])

    # -- the recording ---------------------------------------------------------------------

    def _deliver_later(self, at: int, first: int, evs: list) -> None:
        """The frame's events reach the strategy at ``at`` (feed latency, or items due
        first), stream seqs from ``first``."""
        for seq, ev in enumerate(evs, first):
            self.clock.at(at, lambda s=seq, e=ev: self.listener.on_market(s, e))

    def _start_clock(self, t: int) -> None:
        """The clock starts at the first recorded time: what was scheduled before it
        (``on_start``) counts from it."""
        self._step.timed = True
        self.clock.advance(t)
        for ts, fn in self._early:
            self.clock.at(t + ts, fn)
        self._early = []

    def _follow(self, ev) -> None:
        """Make the core follow one recorded event (at the clock's now)."""
        t = type(ev)
        if t is DeltaEvent:
            self._listed(ev.ticker)
            self.follower.delta_event(ev)
        elif t is SnapshotEvent:
            self._listed(ev.ticker)
            self.follower.snapshot(ev.ticker, ev.yes, ev.no)
        elif t is BBO:
            if ev.state != "live":
                self.follower.clear(ev.ticker)
        elif t is TradeEvent:
            if ev.ticker in self.core.markets:
                self.follower.trade(ev.ticker, ev.yes_price, ev.count, ev.taker_side)
        elif t is LifecycleEvent and ev.result in ("yes", "no", "void"):
            if ev.ticker in self.core.markets:
                self.settle(ev.ticker, ev.result)

    def _listed(self, ticker: str) -> None:
        """List ``ticker`` at the core unless it is there (``_known`` remembers it is)."""
        if ticker in self._known:
            return
        if ticker not in self.core.markets:
            self.core.submit(C.AddMarket(ticker=ticker, event_ticker=event_of(ticker),
                                         price_ranges=[tuple(r) for r in self.cfg.price_ranges]),
                             self.clock.now)
        if ticker in self.core.markets:
            self._known.add(ticker)

    # -- the core --------------------------------------------------------------------------

    def _core_submit(self, cmd) -> Result:
        return self.core.submit(cmd, self.clock.now)

    def _route_now(self, res: Result) -> None:
        self._route(res, self.clock.now)

    def _route(self, res: Result, now: int, skip: object = None, tracked: bool = False) -> None:
        """Hand a result's events on: the market's fills to the follower, ours back to the
        strategy ``order_latency_ns`` later; not the update of order id ``skip`` (the
        answer carries it; :data:`_EVERY`: no update, the answer was lost). ``tracked``:
        :meth:`_track` already saw ``res``."""
        if not tracked:
            self._track(res)
        uid, back = self.cfg.user_id, now + self.cfg.order_latency_ns
        for e in res.events:
            t = type(e)
            if t is XFill:
                if e.user_id == MARKET_USER:
                    self.follower.on_fill(e)
                elif e.user_id == uid:
                    self.clock.at(back, lambda f=_fill(e): self.listener.on_fill(f))
            elif (t is OrderUpdate and e.order.user_id == uid and skip is not _EVERY
                  and e.order.order_id != skip):
                r = _report("update", e.order, now)
                self.clock.at(back, lambda r=r: self.listener.on_order_report(r))
            elif t is SettlementRecord and e.user_id == uid:
                s = Settlement(e.ticker, e.market_result, e.revenue, now)
                self.clock.at(back, lambda s=s: self.listener.on_settlement(s))

    def _track(self, res: Result) -> None:
        """Tell the follower where our orders rest (every update of ours in ``res``)."""
        uid = self.cfg.user_id
        for e in res.events:
            if type(e) is OrderUpdate and e.order.user_id == uid:
                v = e.order
                self.follower.note_ours(v.ticker, v.order_id, (v.side == "yes") == (
                    v.action == "buy"), v.yes_price, v.status == "resting")

    def _answer(self, order: Order, report: OrderReport, res: Result | None,
                skip: object = None) -> None:
        """The answer to a command of ours back ``order_latency_ns`` later, then the rest of
        ``res`` (already tracked; ``skip`` as in :meth:`_route`)."""
        now = self.clock.now
        if self._lose_answers:
            self._lose_answers -= 1
            report = OrderReport("unknown", order.client_order_id, None,
                                 reason="no answer (timeout)", ts_ns=now)
            skip = _EVERY
        back = now + self.cfg.order_latency_ns
        self.clock.at(back, lambda: self.listener.on_order_report(report))
        if res is not None:
            self._route(res, now, skip, tracked=True)

    def _arrive_new(self, o: Order) -> None:
        is_yes = o.side is Side.YES
        if o.ticker in self.core.markets:
            self.follower.prepare(o.ticker, o.is_bid, o.yes_price)
        cmd = C.CreateOrder(user_id=self.cfg.user_id, ticker=o.ticker, side=o.side.value,
                            action=o.action.value, count=o.count,
                            yes_price=o.price if is_yes else None,
                            no_price=None if is_yes else o.price,
                            client_order_id=o.client_order_id, time_in_force=o.tif.value,
                            post_only=o.post_only, reduce_only=o.reduce_only)
        res = self.core.submit(cmd, self.clock.now)
        self._track(res)
        if not res.ok:
            e = res.error
            self._answer(o, OrderReport("rejected", o.client_order_id, e.details or None,
                                        reason=e.message, code=e.code, ts_ns=self.clock.now), None)
            return
        ack = OrderReport("accepted", o.client_order_id, res.order.order_id,
                          venue_status="resting", ts_ns=self.clock.now)
        self._answer(o, ack, res)

    def _arrive_cancel(self, o: Order) -> None:
        res = self.core.submit(C.CancelOrder(user_id=self.cfg.user_id,
                                             order_id=o.venue_order_id), self.clock.now)
        self._edit_answer(o, res, "cancel_rejected")

    def _arrive_amend(self, o: Order, price: int, count: int) -> None:
        is_yes = o.side is Side.YES
        if o.ticker in self.core.markets:
            self.follower.prepare(o.ticker, o.is_bid, price if is_yes else P1 - price)
        res = self.core.submit(C.AmendOrder(
            user_id=self.cfg.user_id, order_id=o.venue_order_id, ticker=o.ticker,
            side=o.side.value, action=o.action.value, yes_price=price if is_yes else None,
            no_price=None if is_yes else price, count=count), self.clock.now)
        self._edit_answer(o, res, "amend_rejected")

    def _edit_answer(self, o: Order, res: Result, reject_kind: str) -> None:
        now = self.clock.now
        self._track(res)
        if res.ok:
            self._answer(o, _report("update", res.order, now), res, o.venue_order_id)
            return
        e = res.error
        cur = self.core.get_order(o.venue_order_id) if o.venue_order_id else None
        self._answer(o, OrderReport(reject_kind, o.client_order_id, o.venue_order_id,
                                    venue_status=cur.status if cur else "", reason=e.message,
                                    code=e.code, ts_ns=now), None)


def _fill(f: XFill) -> Fill:
    return Fill(f.fill_id, f.order_id, f.ticker, Side(f.side), Action(f.action), f.count,
                f.yes_price, f.is_taker, f.fee_cost + f.rounding_fee, f.ts)


def _side_price(v) -> int:
    return v.yes_price if v.side == "yes" else v.no_price


def _report(kind: str, v, now: int) -> OrderReport:
    count = v.fill_count + v.remaining_count if v.status == "resting" else v.initial_count
    return OrderReport(kind, v.client_order_id, v.order_id, venue_status=v.status,
                       filled=v.fill_count, count=count, price=_side_price(v), ts_ns=now)


def _venue_order(v) -> VenueOrder:
    count = v.fill_count + v.remaining_count if v.status == "resting" else v.initial_count
    return VenueOrder(v.order_id, v.client_order_id, v.ticker, Side(v.side), Action(v.action),
                      _side_price(v), count, v.fill_count, v.status, TimeInForce(v.time_in_force))
