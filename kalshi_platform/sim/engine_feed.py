"""The exchange core on the sim's event loop: commands in, WAL group commit, events out to
the WebSocket feed (issue 13 §3, §4; docs/exchange.md "Trading API on the sim").

:class:`EngineHost` owns the engine (:class:`~kalshi_platform.exchange.Exchange`, or a
:class:`~kalshi_platform.exchange.wal.DurableExchange` with ``wal_dir``). The event loop is
its single writer. :meth:`EngineHost.apply` applies one command at once (synchronously, so
the recorded-liquidity follower can run its commands in line); :meth:`EngineHost.submit`
also waits until the command is durable. With a WAL, commands applied while an fsync runs
go into the next group (one fsync per group, in a worker thread), and **nothing is published
or answered before its group is fsynced**: events are published in the order the engine
produced them, batch after batch, so the public feed is exactly the engine's history.

Published (docs/kalshi-api.md §7): every ``BookDelta`` as an ``orderbook_delta`` (prices on
each side's own scale, flipped for ``use_yes_price`` subscriptions), every ``Trade`` as a
``trade``, a ``ticker`` when a market's BBO or last price moved, lifecycle changes as
``market_lifecycle_v2``; privately (to the API key = user id): ``fill``, ``user_order``
(channel ``user_orders``), ``market_position`` (``market_positions``) and
``order_group_updates``. The feed's snapshots (and REST ``/orderbook``) are rendered from
:attr:`EngineHost.books`, the books as **published** (a plant ``OrderBook`` per market kept
from the published deltas), never from engine state that is not out yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Callable

from kalshi_platform.exchange import Exchange, ExchangeConfig
from kalshi_platform.exchange.events import (BookDelta, Fill, MarketStatus, OrderGroupUpdate,
                                             OrderUpdate, PositionUpdate, Result, Trade)
from kalshi_platform.exchange.views import market_position_ws
from kalshi_platform.fixedpoint import ONE_DOLLAR, price_to_str, size_to_str
from kalshi_platform.sim.books import flip_no_price
from kalshi_platform.sim.trading_json import ms, rfc3339_of, user_order_ws
from kalshi_platform.ticker_plant.order_book import OrderBook

log = logging.getLogger(__name__)


class EngineHost:
    """The engine, its WAL and its publisher.

    Args:
        feed: the sim's :class:`~kalshi_platform.sim.feed.MarketFeed` (``publish``,
            ``publish_private``).
        wal_dir: WAL directory (recovered on start; ``None`` = in memory).
        config: :class:`~kalshi_platform.exchange.ExchangeConfig`.
        clock: UTC nanoseconds (tests pass a fake).
        market_id_of: ``ticker -> market_id | None`` for the published frames.

    Raises OSError when the WAL directory cannot be read or written.
    """

    def __init__(self, feed: Any, wal_dir: str | Path | None = None,
                 config: ExchangeConfig | None = None, *,
                 clock: Callable[[], int] = time.time_ns,
                 market_id_of: Callable[[str], str | None] = lambda t: None) -> None:
        self.feed = feed
        self.clock = clock
        self.market_id_of = market_id_of
        self.durable = None
        self._committer = None
        if wal_dir is not None:
            from kalshi_platform.exchange.wal import DurableExchange, GroupCommitter

            self.durable = DurableExchange(wal_dir, config)
            self.exchange: Exchange = self.durable.exchange
            self._committer = GroupCommitter(
                self.durable, on_durable=self._publish,
                on_failed=lambda e: log.error("write-ahead log failed: %s", e))
        else:
            self.exchange = Exchange(config)
        #: ticker -> the book as published (snapshots and REST render from it)
        self.books: dict[str, OrderBook] = {}
        for t in self.exchange.markets:
            self._rebuild_book(t)
        #: called with every result once it is published
        self.listeners: list[Callable[[Result], None]] = []
        #: called with every result as soon as it is applied (the liquidity follower)
        self.on_applied: list[Callable[[Result], None]] = []
        #: called with ``(type, msg)`` of every public frame published (REST data upkeep)
        self.on_public: list[Callable[[str, dict], None]] = []
        self._last: dict[str, tuple] = {}  # ticker -> the last ticker msg's (bid, ask, ...)
        self._last_price: dict[str, int] = {}
        self._volume: dict[str, int] = {}
        self.commands = 0

    # -- commands --------------------------------------------------------------------------

    def apply(self, cmd: Any) -> Result:
        """Apply ``cmd`` now; its events are published once durable (at once without a
        WAL). Raises OSError/RuntimeError when the WAL failed (then restart)."""
        return self._apply(cmd, None)

    async def submit(self, cmd: Any) -> Result:
        """Apply ``cmd`` and return its result once it is durable and published."""
        if self.durable is None:
            return self._apply(cmd, None)
        fut = asyncio.get_running_loop().create_future()
        res = self._apply(cmd, fut)
        await fut
        return res

    def _apply(self, cmd: Any, fut: asyncio.Future | None) -> Result:
        ts = self.clock()
        self.commands += 1
        if self.durable is None:
            res = self.exchange.submit(cmd, ts)
            for fn in self.on_applied:
                fn(res)
            self._publish(res)
            return res
        results, rec = self.durable.apply(((cmd, ts),))
        res = results[0]
        self._committer.queue(rec, res, fut)  # published once durable (group commit)
        for fn in self.on_applied:
            fn(res)
        return res

    async def drained(self) -> None:
        """Wait until every applied command is durable and published."""
        if self._committer is not None:
            await self._committer.drained()

    async def expire_loop(self, every_s: float = 0.25) -> None:
        """Run forever: apply a ``Tick`` when a GTD order's expiration has passed (the engine
        expires orders only when a command reaches their time; docs/exchange.md)."""
        from kalshi_platform.exchange.commands import Tick

        while True:
            await asyncio.sleep(every_s)
            exp = self.exchange.expiry
            if exp and exp[0][0] <= self.clock():
                self.apply(Tick())

    def close(self) -> None:
        """Close the WAL file (every committed record is durable already)."""
        if self.durable is not None:
            self.durable.close()

    # -- publishing ------------------------------------------------------------------------

    def _rebuild_book(self, ticker: str) -> None:
        snap = self.exchange.book_snapshot(ticker)
        b = self.books[ticker] = OrderBook(ticker)
        b.market_id = self.market_id_of(ticker)
        if snap is not None:
            b.apply_snapshot(snap["yes"], snap["no"])

    def book_of(self, ticker: str) -> OrderBook | None:
        """The published book of ``ticker`` (``None`` for a market the engine lacks)."""
        return self.books.get(ticker)

    def _publish(self, res: Result) -> None:
        touched: set[str] = set()
        for ev in res.events:
            t = type(ev)
            if t is BookDelta:
                self._delta(ev)
                touched.add(ev.ticker)
            elif t is Trade:
                self._trade(ev)
                touched.add(ev.ticker)
            elif t is Fill:
                self._private(ev.user_id, "fill", "fill", _fill_ws(ev))
            elif t is OrderUpdate:
                self._private(ev.order.user_id, "user_orders", "user_order",
                              user_order_ws(ev.order))
            elif t is PositionUpdate:
                self._private(ev.user_id, "market_positions", "market_position",
                              market_position_ws(ev))
            elif t is OrderGroupUpdate:
                self._private(ev.user_id, "order_group_updates", "order_group_updates",
                              {"event_type": ev.event_type, "order_group_id": ev.order_group_id,
                               "contracts_limit_fp": size_to_str(ev.contracts_limit)})
            elif t is MarketStatus:
                self._status(ev)
        for ticker in touched:
            self._ticker(ticker)
        for fn in self.listeners:
            fn(res)

    def _private(self, user: str, channel: str, t: str, msg: dict) -> None:
        self.feed.publish_private(user, channel, t, msg)

    def _delta(self, d: BookDelta) -> None:
        book = self.books.get(d.ticker)
        if book is None:
            book = self.books[d.ticker] = OrderBook(d.ticker)
            book.market_id = self.market_id_of(d.ticker)
            book.apply_snapshot([], [])
        book.apply_delta(d.side, d.price, d.delta)
        msg = {"market_ticker": d.ticker, "market_id": book.market_id or "",
               "price_dollars": price_to_str(d.price), "delta_fp": size_to_str(d.delta),
               "side": d.side, "ts": rfc3339_of(d.ts), "ts_ms": ms(d.ts)}
        flip = None
        if d.side == "no":
            flip = (lambda sub, m: flip_no_price(m) if sub.use_yes_price else m)
        self.feed.publish("orderbook_delta", msg, flip_no=flip, playback=False)

    def _trade(self, tr: Trade) -> None:
        self._volume[tr.ticker] = self._volume.get(tr.ticker, 0) + tr.count
        self._last_price[tr.ticker] = tr.yes_price
        self._public("trade", {
            "trade_id": tr.trade_id, "market_ticker": tr.ticker,
            "yes_price_dollars": price_to_str(tr.yes_price),
            "no_price_dollars": price_to_str(tr.no_price), "count_fp": size_to_str(tr.count),
            "taker_side": tr.taker_side, "taker_outcome_side": tr.taker_side,
            "taker_book_side": "bid" if tr.taker_side == "yes" else "ask",
            "is_block_trade": False, "ts": tr.ts // 10**9, "ts_ms": ms(tr.ts)})

    def _ticker(self, ticker: str) -> None:
        book = self.books.get(ticker)
        if book is None:
            return
        yb, _, ya, _ = book.top()
        last = self._last_price.get(ticker)
        cur = (yb, ya, last, self._volume.get(ticker, 0))
        if self._last.get(ticker) == cur:
            return
        self._last[ticker] = cur
        now = self.exchange.ts
        self.feed.publish("ticker", {
            "market_ticker": ticker, "market_id": book.market_id or "",
            "price_dollars": price_to_str(last or 0),
            "yes_bid_dollars": price_to_str(yb or 0),
            "yes_ask_dollars": price_to_str(ONE_DOLLAR if ya is None else ya),
            "volume_fp": size_to_str(self._volume.get(ticker, 0)),
            "ts": now // 10**9, "ts_ms": ms(now)}, playback=False)

    def _status(self, s: MarketStatus) -> None:
        if s.status == "open":
            self._rebuild_book(s.ticker)
            return
        kind = {"closed": "deactivated", "determined": "determined", "settled": "settled"}
        msg: dict[str, Any] = {"market_ticker": s.ticker, "event_type": kind.get(s.status,
                                                                                 s.status)}
        if s.status == "closed":
            msg["is_deactivated"] = True
        elif s.status == "determined":
            msg.update(result=s.result, determination_ts=s.ts // 10**9,
                       settlement_value={"yes": "1.0000", "no": "0.0000"}.get(s.result or "",
                                                                               None))
        elif s.status == "settled":
            msg["settled_ts"] = s.ts // 10**9
        self._public("market_lifecycle_v2", msg)

    def _public(self, t: str, msg: dict) -> None:
        self.feed.publish(t, msg, playback=False)
        for fn in self.on_public:
            fn(t, msg)


def _fill_ws(f: Fill) -> dict:
    """Kalshi WS ``fill`` msg (docs/kalshi-api.md §7.9b); ``post_position_fp`` is omitted
    (the position update follows on ``market_positions``)."""
    return {"trade_id": f.trade_id, "order_id": f.order_id, "market_ticker": f.ticker,
            "is_taker": f.is_taker, "side": f.side, "action": f.action,
            "outcome_side": "yes" if f.book_side == "bid" else "no", "book_side": f.book_side,
            "yes_price_dollars": price_to_str(f.yes_price), "count_fp": size_to_str(f.count),
            "fee_cost": price_to_str(f.fee_cost // 100),
            "purchased_side": f.side if f.action == "buy" else ("no" if f.side == "yes" else "yes"),
            "subaccount": 0, "exchange_index": 0, "ts": f.ts // 10**9, "ts_ms": ms(f.ts)}
