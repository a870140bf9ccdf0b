"""Recorded liquidity as resting orders of a "market" participant (issue 14 §5;
docs/trading.md "Backtest: the queue model").

The follower keeps, per market, the recorded bid ladders (YES bids at YES prices, NO bids at
NO prices, as the plant's snapshot and delta events carry them) and makes the exchange
core's book hold the same size in orders of the user :data:`MARKET_USER`:

* a snapshot sets every level (orders added or reduced to match) and forgets deficits;
* a positive delta adds an order of that size at the **back** of its level's queue (kept
  as a number, the level's *tail*, until an order of ours or a replayed trade reaches the
  level, or it crosses a resting order of ours: nothing can trade with it before);
* a negative delta reduces the market's orders at that level **newest first** (a decrease
  where part of the order stays, a cancel otherwise). So an order of ours keeps everything
  that was ahead of it when it arrived, until trades or a level smaller than that size
  ahead shrink it: the risk-averse queue model (hftbacktest's ``RiskAverseQueueModel``;
  docs/trading-api.md §5);
* liquidity we took (our fills against the market's orders, including a recorded order
  that crossed one of ours) is a **deficit** of that level: the market shows
  ``recorded − deficit`` there, and a deficit never exceeds the recorded size
  (``deficit = min(deficit, recorded)`` after every change). Taken liquidity does not
  reappear;
* a recorded **trade** is replayed as an immediate-or-cancel order of a second participant
  (:data:`TAKER_USER`) at the trade's price and count on its taker side: it takes the queue
  in time priority, the market's orders ahead of ours first, then ours. What it took from
  the market is a **credit** of the level: the recorded decrease that follows the trade
  is absorbed by it instead of removing the market's orders a second time (this assumes a
  trade reaches the feed before its level's delta; a delta first means the size is taken
  twice, which only makes fills rarer);
* a book that stops being live (a ``stale``/``syncing`` BBO row) has all the market's
  orders canceled until its next snapshot.

**Lazy levels.** Only levels that can matter to our orders are kept in the core (a level is
*materialized*: it gets the market's orders at its recorded size, then follows every change):
before one of our orders (or an amend) reaches the core, its own level and every opposite
level it would cross; a recorded level that appears crossing a resting order of ours; the
levels a replayed trade would take. Every other level is only a number in the follower's
recorded ladders. Our fills are the same as with every level kept in the core
(``lazy=False``; tested), at a fraction of the core commands.

The follower talks to the core only through ``Exchange.submit`` commands and reads only
what the results say (order ids, fills).
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange.events import Fill as XFill
from kalshi_platform.exchange.events import Result
from kalshi_platform.ticker_plant.events import DeltaEvent

P1 = 1_000_000  # $1 in micro-dollars

MARKET_USER = "market"
#: the participant that replays recorded trades
TAKER_USER = "market-taker"
#: the market participant's deposit (cents): large enough for any recorded book
MARKET_DEPOSIT_CENTS = 10**15


class _Level:
    """One recorded level: ``recorded`` size, ``deficit`` taken by us, ``credit`` taken by a
    replayed trade, the market's orders ``[order_id, remaining]`` oldest first (``rest``:
    their remaining sizes summed), and ``tail``: size that joined the level after its newest
    real order and is not in the core yet (it is behind every order there, so nothing can
    trade with it before it is placed: see :meth:`Follower.prepare`)."""

    __slots__ = ("recorded", "deficit", "credit", "orders", "tail", "rest")

    def __init__(self) -> None:
        self.recorded = 0
        self.deficit = 0
        self.credit = 0
        self.tail = 0
        self.rest = 0
        self.orders: deque[list] = deque()

    def resting(self) -> int:
        """Size of the market's orders in the core at this level."""
        return self.rest


#: ``_Side.watch`` when every level is kept in the core: every price is watched
_ALL = -(1 << 62)


class _Side:
    """One side of one market: the recorded ``ladder`` (price → size, the side's own
    scale), its materialized ``levels`` (price → :class:`_Level`, also in
    ``Follower.levels``), ``cross``: the lowest price there that crosses a resting order of
    ours (``P1 + 1``: none), ``watch``: the lowest price whose recorded change must reach
    the core (``cross`` with lazy levels, every price without)."""

    __slots__ = ("ladder", "levels", "cross", "watch")

    def __init__(self, cross: int, lazy: bool) -> None:
        self.ladder: dict[int, int] = {}
        self.levels: dict[int, _Level] = {}
        self.cross = cross
        self.watch = cross if lazy else _ALL


class Follower:
    """Turns recorded book events into commands for the market participant.

    ``submit(cmd) -> Result`` is the exchange core's ``submit`` at the current time;
    ``route(result)`` hands every result on (our fills and order updates in it); ``lazy``
    (default) keeps only the levels that matter in the core (module docstring).
    ``levels``: ``(ticker, side, price)`` → :class:`_Level` of the materialized levels.
    ``stats``: orders added/reduced/canceled, replayed trades, ``off_grid`` (recorded prices
    the market's tick grid refuses), ``refused``, ``materialized`` levels."""

    def __init__(self, submit: Callable[[object], Result],
                 route: Callable[[Result], None], lazy: bool = True) -> None:
        self._submit, self._route, self.lazy = submit, route, lazy
        self._sides: dict[str, dict[str, _Side]] = {"yes": {}, "no": {}}
        #: ticker → {"yes": ladder, "no": ladder}: the recorded ladders (the sides' own dicts)
        self.recorded: dict[str, dict[str, dict[int, int]]] = {}
        self.levels: dict[tuple[str, str, int], _Level] = {}
        self._by_ticker: dict[str, set[tuple[str, str, int]]] = {}
        self._where: dict[str, tuple[str, str, int]] = {}
        self._ours: dict[str, dict[str, tuple[bool, int]]] = {}
        self._best: dict[str, tuple[int, int]] = {}  # our best bid, best ask (YES scale)
        self._trading = False
        self.stats = {"adds": 0, "reduces": 0, "cancels": 0, "off_grid": 0, "refused": 0,
                      "trades": 0, "materialized": 0}

    def side_maps(self) -> tuple[dict[str, _Side], dict[str, _Side]]:
        """The YES and NO ticker → side maps, for the compiled frame step (trading/_step.c
        adds a delta kept as a number to ``ladder`` itself: no level at its price in
        ``levels``, the price below ``watch``; every other delta comes to
        :meth:`delta_event`)."""
        return self._sides["yes"], self._sides["no"]

    def _side(self, ticker: str, side: str) -> _Side:
        """``side``'s state in ``ticker`` (both sides created empty, crossing what we rest
        there)."""
        s = self._sides[side].get(ticker)
        if s is None:
            bid, ask = self._best.get(ticker, (-1, P1 + 1))
            ys = self._sides["yes"][ticker] = _Side(ask, self.lazy)
            ns = self._sides["no"][ticker] = _Side(P1 - bid, self.lazy)
            self.recorded[ticker] = {"yes": ys.ladder, "no": ns.ladder}
            s = ys if side == "yes" else ns
        return s

    # -- recorded events -------------------------------------------------------------------

    def snapshot(self, ticker: str, yes: list, no: list) -> None:
        """A recorded snapshot: the ladders replaced, materialized levels set to them (their
        deficits and credits forgotten)."""
        ys, ns = self._side(ticker, "yes"), self._side(ticker, "no")
        ys.ladder.clear()
        ys.ladder.update(yes)
        ns.ladder.clear()
        ns.ladder.update(no)
        lad = self.recorded[ticker]
        keys = set(self._by_ticker.get(ticker, ()))
        if not self.lazy:
            keys |= {(ticker, s, p) for s in ("yes", "no") for p in lad[s]}
        for key in sorted(keys):  # a set's order follows the hash seed: not a process's
            self._set(key, lad[key[1]].get(key[2], 0), reset=True)
        for key in self._crossing_ours(ticker):
            self._set(key, lad[key[1]].get(key[2], 0), reset=True)

    def delta(self, ticker: str, side: str, price: int, delta: int) -> None:
        """A recorded delta (signed size change at ``price`` on ``side``'s own scale)."""
        self.delta_event((ticker, None, None, None, side, price, delta, None))

    def delta_event(self, ev: DeltaEvent) -> None:
        """A recorded :class:`~kalshi_platform.ticker_plant.events.DeltaEvent` (or a tuple
        of its fields): as :meth:`delta`, the backtest's hot path."""
        ticker, _ts, _sid, _seq, side, price, delta, _recv = ev
        s = self._sides[side].get(ticker)
        if s is None:
            s = self._side(ticker, side)
        ladder = s.ladder
        lv = s.levels.get(price)
        if lv is not None and delta < 0 and lv.credit:
            used = min(-delta, lv.credit)
            lv.credit -= used
            lv.recorded = max(lv.recorded - used, 0)
            left = ladder.get(price, 0) - used
            if left > 0:
                ladder[price] = left
            else:
                ladder.pop(price, None)
            delta += used
            if not delta:
                return
        q = ladder.get(price, 0) + delta
        if q > 0:
            ladder[price] = q
        else:
            q = 0
            ladder.pop(price, None)
        if lv is not None:
            self._retarget((ticker, side, price), s, lv, q)
        elif price >= s.watch:
            self._set((ticker, side, price), q)

    def trade(self, ticker: str, yes_price: int, count: int, taker_side: str | None) -> None:
        """A recorded trade: replayed by :data:`TAKER_USER` (see the module docstring);
        trades without a taker side are not replayed."""
        if taker_side not in ("yes", "no"):
            return
        buy_yes = taker_side == "yes"
        self.prepare(ticker, buy_yes, yes_price, own_level=False)
        cmd = C.CreateOrder(user_id=TAKER_USER, ticker=ticker, side="yes",
                            action="buy" if buy_yes else "sell", count=count,
                            yes_price=yes_price, time_in_force=C.IOC)
        self._trading = True
        try:
            res = self._submit(cmd)
        finally:
            self._trading = False
        if res.ok:
            self.stats["trades"] += 1
            self._route(res)

    def clear(self, ticker: str) -> None:
        """The recorded book is not trustworthy: cancel all the market's orders there."""
        self._side(ticker, "yes").ladder.clear()
        self._side(ticker, "no").ladder.clear()
        for key in sorted(self._by_ticker.get(ticker, ())):
            self._set(key, 0, reset=True)

    # -- our orders ------------------------------------------------------------------------

    def prepare(self, ticker: str, is_bid: bool, yes_price: int, own_level: bool = True) -> None:
        """Before an order (ours, or a replayed trade) at YES price ``yes_price`` reaches the
        core: materialize its own level (``own_level``) and every opposite level it crosses."""
        self._side(ticker, "yes")
        lad = self.recorded[ticker]
        if is_bid:  # NO bids at or above $1 - yes_price
            other, lim, own = "no", P1 - yes_price, ("yes", yes_price)
        else:  # YES bids at or above yes_price
            other, lim, own = "yes", yes_price, ("no", P1 - yes_price)
        ladder = lad[other]
        cross = (sorted((other, p) for p in ladder if p >= lim)
                 if ladder and max(ladder) >= lim else [])
        for side, price in cross + ([own] if own_level else []):
            key = (ticker, side, price)
            lv = self.levels.get(key)
            if lv is None:
                self._set(key, lad[side].get(price, 0))
                lv = self.levels[key]
            if lv.tail:  # placed now: the order arriving queues behind it, or takes it
                self._flush(key, lv)

    def note_ours(self, ticker: str, order_id: str, is_bid: bool, yes_price: int,
                  resting: bool) -> None:
        """Track our resting orders (the levels that can fill them are kept in the core)."""
        mine = self._ours.setdefault(ticker, {})
        if resting:
            mine[order_id] = (is_bid, yes_price)
        elif mine.pop(order_id, None) is None:
            return
        bids = [y for b, y in mine.values() if b]
        asks = [y for b, y in mine.values() if not b]
        bid = max(bids) if bids else -1
        ask = min(asks) if asks else P1 + 1
        self._best[ticker] = (bid, ask)
        # a YES bid at p crosses our asks at or below p; a NO bid at q our bids at or
        # above $1 - q
        for s, cross in ((self._side(ticker, "yes"), ask), (self._side(ticker, "no"), P1 - bid)):
            s.cross = cross
            if self.lazy:
                s.watch = cross

    def _crosses_ours(self, ticker: str, side: str, price: int) -> bool:
        return price >= self._side(ticker, side).cross

    def _crossing_ours(self, ticker: str) -> list[tuple[str, str, int]]:
        out = []
        for side in ("yes", "no"):
            s = self._side(ticker, side)
            out += [(ticker, side, p) for p in s.ladder
                    if (ticker, side, p) not in self.levels and p >= s.cross]
        return out

    def on_fill(self, f: XFill) -> None:
        """A fill of one of the market's orders (from any result): its level's deficit
        grows by what was taken (a credit when a replayed trade took it)."""
        key = self._where.get(f.order_id)
        if key is None:
            return
        lv = self.levels[key]
        for o in lv.orders:
            if o[0] == f.order_id:
                left = o[1] - f.count
                if left <= 0:
                    lv.rest -= o[1]
                    lv.orders.remove(o)
                    del self._where[f.order_id]
                else:
                    lv.rest -= f.count
                o[1] = left
                break
        if self._trading:
            lv.credit += f.count
        else:
            lv.deficit = min(lv.deficit + f.count, lv.recorded)

    # -- keeping the book at the target ----------------------------------------------------

    def _set(self, key: tuple[str, str, int], recorded: int, reset: bool = False) -> None:
        """Level ``key`` (materialized if needed) follows ``recorded`` size."""
        lv = self.levels.get(key)
        s = self._side(key[0], key[1])
        if lv is None:
            lv = self.levels[key] = s.levels[key[2]] = _Level()
            self._by_ticker.setdefault(key[0], set()).add(key)
            self.stats["materialized"] += 1
        self._retarget(key, s, lv, recorded, reset)

    def _retarget(self, key: tuple[str, str, int], s: _Side, lv: _Level, recorded: int,
                  reset: bool = False) -> None:
        """The materialized level ``lv`` (``key``, on side ``s``) follows ``recorded``:
        the market shows ``recorded − deficit − credit`` there (never below 0)."""
        lv.recorded = recorded
        if reset:
            lv.deficit = lv.credit = 0
        elif lv.deficit > recorded:
            lv.deficit = recorded
        have = lv.rest + lv.tail
        target = recorded - lv.deficit - lv.credit
        if target < 0:
            target = 0
        if target > have:
            lv.tail += target - have  # joins at the back: kept as a number until needed
            if key[2] >= s.watch:  # every level kept, or it crosses an order of ours
                self._flush(key, lv)
        elif target < have:
            cut = min(lv.tail, have - target)  # newest first: the tail goes first
            lv.tail -= cut
            if have - target - cut:
                self._reduce(lv, have - target - cut)

    def _flush(self, key: tuple[str, str, int], lv: _Level) -> None:
        qty, lv.tail = lv.tail, 0
        self._add(key, lv, qty)

    def _add(self, key: tuple[str, str, int], lv: _Level, qty: int) -> None:
        ticker, side, price = key
        cmd = C.CreateOrder(user_id=MARKET_USER, ticker=ticker, side=side, action="buy",
                            count=qty, yes_price=price if side == "yes" else None,
                            no_price=price if side == "no" else None)
        res = self._submit(cmd)
        if not res.ok:
            self.stats["off_grid" if res.error.code == "invalid_price" else "refused"] += 1
            return
        self.stats["adds"] += 1
        self._route(res)  # our maker fills (the new order is not registered yet: its own
        o = res.order     # fills are counted here, from the result, not by on_fill)
        if o.status == "resting" and o.remaining_count:
            lv.orders.append([o.order_id, o.remaining_count])
            lv.rest += o.remaining_count
            self._where[o.order_id] = key
        if o.fill_count:
            lv.deficit = min(lv.deficit + o.fill_count, lv.recorded)

    def _reduce(self, lv: _Level, qty: int) -> None:
        while qty > 0 and lv.orders:
            oid, rem = lv.orders[-1]
            if rem <= qty:
                res = self._submit(C.CancelOrder(user_id=MARKET_USER, order_id=oid))
                lv.orders.pop()
                lv.rest -= rem
                del self._where[oid]
                qty -= rem
                self.stats["cancels"] += 1
            else:
                res = self._submit(C.DecreaseOrder(user_id=MARKET_USER, order_id=oid,
                                                   reduce_by=qty))
                lv.orders[-1][1] = rem - qty
                lv.rest -= qty
                qty = 0
                self.stats["reduces"] += 1
            self._route(res)
