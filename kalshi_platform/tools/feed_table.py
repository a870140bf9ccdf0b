"""The live market table of ``kalshi-platform subscribe`` (rich): one row per market."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from kalshi_platform.fixedpoint import price_to_str, size_to_str
from kalshi_platform.ticker_plant.events import BBO, TradeEvent
from kalshi_platform.tools.tables import add_num_column, add_text_column


class MarketTable:
    """Per ticker: book state, YES bid/ask with sizes, spread, last trade and updates seen.
    ``update(item, subscriber)`` takes each :class:`~kalshi_platform.feed.subscriber.Item`;
    ``render()`` builds the table (at most ``limit`` rows, busiest first)."""

    def __init__(self, limit: int = 40) -> None:
        self.limit = limit
        self.rows: dict[str, dict[str, Any]] = {}
        self.seq = 0
        self.gaps = 0

    def update(self, item: Any, sub: Any) -> None:
        self.seq = max(self.seq, item.seq)
        self.gaps = sub.gaps
        ev = item.event
        if item.feed == "snapshot":
            for b in ev:
                r = self._row(b.ticker)
                r["state"] = b.state
                r["bbo"] = b.bbo if b.state == "live" else None  # a stale book has no top
            return
        t = type(ev)
        if t is BBO:
            r = self._row(ev.ticker)
            r["state"] = ev.state
            r["bbo"] = ev if ev.state == "live" else None
            r["updates"] += 1
        elif t is TradeEvent:
            r = self._row(ev.ticker)
            r["trade"] = f"{price_to_str(ev.yes_price)} × {size_to_str(ev.count)}"
            r["updates"] += 1

    def _row(self, ticker: str) -> dict[str, Any]:
        r = self.rows.get(ticker)
        if r is None:
            r = self.rows[ticker] = {"state": "?", "bbo": None, "trade": "", "updates": 0}
        return r

    def render(self) -> Table:
        t = Table(title=f"stream seq {self.seq:,}  gaps {self.gaps}", title_justify="left")
        add_text_column(t, "ticker")  # a long ticker folds in its cell, never cut
        add_text_column(t, "state", no_wrap=True)
        for name in ("bid", "bid size", "ask", "ask size", "spread"):
            add_num_column(t, name)
        add_text_column(t, "last trade")  # "price × count": may wrap on a narrow terminal
        add_num_column(t, "updates")
        busiest = sorted(self.rows.items(), key=lambda kv: (-kv[1]["updates"], kv[0]))
        for ticker, r in busiest[: self.limit]:
            b = r["bbo"]
            cells = ["", "", "", "", ""]
            if b is not None:
                cells = [price_to_str(b.yes_bid) or "", size_to_str(b.yes_bid_size) or "",
                         price_to_str(b.yes_ask) or "", size_to_str(b.yes_ask_size) or "",
                         price_to_str(b.yes_ask - b.yes_bid)
                         if b.yes_bid is not None and b.yes_ask is not None else ""]
            t.add_row(ticker, r["state"], *cells, r["trade"], f"{r['updates']:,}")
        return t
