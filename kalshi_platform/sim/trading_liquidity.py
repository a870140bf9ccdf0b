"""``sim --replay FILE --liquidity``: the recorded books as resting orders of a "market"
participant in the exchange core (issue 13 §4 "Liquidity from a recording").

The recorded frames do not go out as they are: the playback's book frames and trades are
consumed here (:meth:`MarketFeed.playback_sink <kalshi_platform.sim.feed.MarketFeed>`) and
turned into engine commands by the backtest's follower
(:class:`kalshi_platform.trading.follower.Follower`, one implementation shared with the
backtest, with every level kept in the core: ``lazy=False``, so the engine's book is the
whole recorded book): a snapshot sets every level, a delta adds an order at the back of its
level or reduces the market's orders there newest first, a recorded trade is replayed as an
IOC order of a second participant, and liquidity a user took stays taken (a deficit of the
level). The public feed then shows the engine's own book changes (engine_feed.py), so a
user's orders trade against real recorded liquidity and every client sees the result.

Recorded levels are read from the playback's plant after it applied the frame (so both
``use_yes_price`` conventions and bad frames are handled by the plant, not here): a delta
is the difference between the plant's ladders and the follower's.
"""

from __future__ import annotations

from typing import Any

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange.events import Fill, Result
from kalshi_platform.fixedpoint import FixedPointError, parse_price, parse_size
from kalshi_platform.trading.follower import (MARKET_DEPOSIT_CENTS, MARKET_USER, TAKER_USER,
                                              Follower)

BOOK_TYPES = ("orderbook_snapshot", "orderbook_delta")
CONSUMED = BOOK_TYPES + ("trade", "ticker")


class Liquidity:
    """Recorded liquidity for the engine.

    Args:
        host: the :class:`~kalshi_platform.sim.engine_feed.EngineHost`.
        plant: the playback's :class:`~kalshi_platform.ticker_plant.plant.TickerPlant`
            (its books are the recorded books after each frame).
    """

    def __init__(self, host: Any, plant_of: Any) -> None:
        self.host = host
        self.plant_of = plant_of
        self._inside = False
        self.follower = Follower(self._submit, self._route, lazy=False)
        host.on_applied.append(self._on_applied)

    def setup(self) -> None:
        """Fund the two participants (first start) and cancel the market's orders a WAL
        recovered (the follower starts from the recording's first snapshot again)."""
        ex = self.host.exchange
        for u in (MARKET_USER, TAKER_USER):
            if u not in ex.accounts:
                self.host.apply(C.Deposit(user_id=u, amount=MARKET_DEPOSIT_CENTS))
        if ex.user_orders(MARKET_USER, status="resting"):
            self.host.apply(C.MassCancel(user_id=MARKET_USER))

    # -- the follower's side -----------------------------------------------------------------

    def _submit(self, cmd: Any) -> Result:
        self._inside = True
        try:
            return self.host.apply(cmd)
        finally:
            self._inside = False

    def _route(self, res: Result) -> None:
        for e in res.events:
            if type(e) is Fill and e.user_id == MARKET_USER:
                self.follower.on_fill(e)

    def _on_applied(self, res: Result) -> None:
        if not self._inside:  # users' commands: the market's fills in them
            self._route(res)

    # -- recorded frames ---------------------------------------------------------------------

    def on_frame(self, t: str, msg: dict) -> bool:
        """A recorded frame of the playback: book frames and trades become engine commands,
        recorded tickers are dropped (the engine publishes its own); ``True`` when consumed
        (not to be published as recorded)."""
        if t not in CONSUMED:
            return False
        ticker = msg.get("market_ticker")
        if not isinstance(ticker, str) or ticker not in self.host.exchange.markets:
            return True
        if self.host.exchange.markets[ticker].status != "open":
            return True
        if t in BOOK_TYPES:
            self._book(t, ticker)
        elif t == "trade":
            self._trade(ticker, msg)
        return True

    def _book(self, t: str, ticker: str) -> None:
        book = self.plant_of().books.get(ticker)
        if book is None or book.state != "live":
            self.follower.clear(ticker)
            return
        if t == "orderbook_snapshot":
            self.follower.snapshot(ticker, list(book.yes.items()), list(book.no.items()))
            return
        rec = self.follower.recorded.get(ticker) or {"yes": {}, "no": {}}
        for side, now in (("yes", book.yes), ("no", book.no)):
            had = rec.get(side, {})
            for price in set(had) | set(now):
                d = now.get(price, 0) - had.get(price, 0)
                if d:
                    self.follower.delta(ticker, side, price, d)

    def _trade(self, ticker: str, msg: dict) -> None:
        try:
            if isinstance(msg.get("yes_price_dollars"), str):
                price = parse_price(msg["yes_price_dollars"])
            else:
                price = int(msg["yes_price"]) * 10_000
            count = (parse_size(msg["count_fp"]) if isinstance(msg.get("count_fp"), str)
                     else int(msg["count"]) * 100)
        except (KeyError, TypeError, ValueError, FixedPointError):
            return
        self.follower.trade(ticker, price, count, msg.get("taker_side"))
