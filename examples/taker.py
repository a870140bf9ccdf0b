"""A simple taker reacting to BBO changes (issue 14 §7; docs/trading.md "Examples").

Momentum on the mid: when a market's bid + ask rises by at least ``min_move_ticks`` ticks
(the mid by half that) since the last BBO row it saw, it buys YES at the ask (immediate-or-cancel); when it falls that much,
it sells YES at the bid (which buys NO when it holds no YES). It stays within
``max_position`` contracts either way and does nothing on a book that is not live.

Config: ``size`` contracts (2), ``min_move_ticks`` (1), ``max_position`` contracts (10),
``tick`` dollars ("0.01").
"""

from __future__ import annotations

from kalshi_platform.trading import Strategy, contracts, dollars


class Taker(Strategy):
    """Buys up-moves, sells down-moves, IOC at the touch."""

    def on_start(self) -> None:
        c = self.config
        self.size = contracts(int(c.get("size", 2)))
        self.move = int(c.get("min_move_ticks", 1)) * dollars(str(c.get("tick", "0.01")))
        self.max_pos = contracts(int(c.get("max_position", 10)))
        self.last_mid: dict[str, int] = {}

    def on_bbo(self, bbo) -> None:
        if bbo.state != "live" or bbo.yes_bid is None or bbo.yes_ask is None:
            self.last_mid.pop(bbo.ticker, None)
            return
        mid2 = bbo.yes_bid + bbo.yes_ask
        prev = self.last_mid.get(bbo.ticker)
        self.last_mid[bbo.ticker] = mid2
        if prev is None:
            return
        pos = self.ctx.position(bbo.ticker)
        if mid2 - prev >= self.move and pos + self.size <= self.max_pos:
            self.ctx.buy_yes(bbo.ticker, bbo.yes_ask, self.size, tif="immediate_or_cancel")
        elif prev - mid2 >= self.move and pos - self.size >= -self.max_pos:
            self.ctx.sell_yes(bbo.ticker, bbo.yes_bid, self.size, tif="immediate_or_cancel")
