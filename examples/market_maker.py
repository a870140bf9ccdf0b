"""An inventory-skewed market maker (issue 14 §7; docs/trading.md "Examples").

Quotes both sides of every live market (or of ``tickers``) around the mid: a YES bid at
``fair − half_spread`` and a NO bid at ``$1 − (fair + half_spread)`` (a YES ask), where
``fair = mid − skew × position`` moves the quotes away from the inventory it holds. It
always keeps ``bid_yes + bid_no < $1`` (the YES ask above the YES bid), never crosses the
book it sees (a YES bid below the ask, a YES ask above the bid), and stops bidding the side
that would grow a position past ``max_position``. It requotes with ``amend`` when a quote
moved (a BBO row where only the sizes at the top changed is skipped) and cancels both
quotes when a book stops being live.

Config (``[strategy]`` of the TOML, all optional): ``half_spread_ticks`` (1), ``size``
contracts (5), ``skew_ticks_per_10`` (1: ticks of skew per 10 contracts held),
``max_position`` contracts (50), ``tick`` dollars ("0.01"), ``tickers`` (all).

Run: ``kalshi-platform backtest --strategy examples.market_maker:MarketMaker RECORDING``.
"""

from __future__ import annotations

from kalshi_platform.fixedpoint import ONE_DOLLAR
from kalshi_platform.trading import Strategy, contracts, dollars


class MarketMaker(Strategy):
    """Two-sided quotes skewed by inventory (see the module docstring)."""

    def on_start(self) -> None:
        c = self.config
        self.tick = dollars(str(c.get("tick", "0.01")))
        self.half = int(c.get("half_spread_ticks", 1)) * self.tick
        self.size = contracts(int(c.get("size", 5)))
        self.skew = int(c.get("skew_ticks_per_10", 1)) * self.tick
        self.max_pos = contracts(int(c.get("max_position", 50)))
        self.tickers = set(c["tickers"]) if c.get("tickers") else None
        self.quotes: dict[str, dict[str, object]] = {}
        self.last: dict[str, tuple] = {}  # ticker -> (bid, ask, position) last quoted on

    def quote_prices(self, bid: int, ask: int, pos: int) -> tuple[int, int]:
        """``(yes_bid, yes_ask)`` to quote (micro-dollars) for the book's ``bid``/``ask``
        and our signed ``pos`` (centi-contracts)."""
        t = self.tick
        fair = (bid + ask) // 2 - self.skew * pos // contracts(10)
        qb = min((fair - self.half) // t * t, ask - t)
        qa = max(-((-(fair + self.half)) // t) * t, bid + t)
        qb, qa = max(qb, t), min(qa, ONE_DOLLAR - t)
        if qa <= qb:  # keep bid_yes + bid_no < $1
            qa = qb + t
        return qb, qa

    def on_bbo(self, bbo) -> None:
        tk = bbo.ticker
        if self.tickers is not None and tk not in self.tickers:
            return
        if bbo.state != "live" or bbo.yes_bid is None or bbo.yes_ask is None:
            self.ctx.cancel_all(tk)
            self.quotes.pop(tk, None)
            self.last.pop(tk, None)
            return
        pos = self.ctx.position(tk)
        key = (bbo.yes_bid, bbo.yes_ask, pos)
        if self.last.get(tk) == key:  # only the sizes at the top moved: quotes stand
            return
        self.last[tk] = key
        qb, qa = self.quote_prices(bbo.yes_bid, bbo.yes_ask, pos)
        if qa >= ONE_DOLLAR or qb <= 0:
            return
        assert qb + (ONE_DOLLAR - qa) < ONE_DOLLAR
        q = self.quotes.setdefault(tk, {})
        self._quote(q, "bid", tk, qb, pos < self.max_pos)
        self._quote(q, "ask", tk, ONE_DOLLAR - qa, pos > -self.max_pos)

    def _quote(self, q: dict, key: str, tk: str, price: int, allowed: bool) -> None:
        """Keep one quote: YES bid (``bid``, price = YES price) or NO bid (``ask``, price =
        NO price)."""
        o = q.get(key)
        live = o is not None and o.status.open
        if not allowed:
            if live:
                self.ctx.cancel(o)
            q.pop(key, None)
            return
        if live:
            if o.price != price and o.status.value in ("resting", "partially_filled"):
                self.ctx.amend(o, price=price)
            return
        place = self.ctx.buy_yes if key == "bid" else self.ctx.buy_no
        q[key] = place(tk, price, self.size)

    def on_order(self, order) -> None:
        if order.status.terminal:  # a quote is gone: requote at the next BBO row
            self.last.pop(order.ticker, None)

    def on_stop(self) -> None:
        self.ctx.cancel_all()
