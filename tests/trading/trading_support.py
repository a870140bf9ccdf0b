"""Helpers of the trading tests: tiny hand-made recordings and scripted strategies."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from kalshi_platform.trading import Strategy

T0_MS = 1_786_085_188_000
TK = "KXTEST-26AUG07-A"


class Rec:
    """Builds a cockpit-envelope recording (``{"received_ms", "frame"}``) frame by frame."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.seq = 0

    def _frame(self, at_ms: int, frame: dict) -> "Rec":
        self.lines.append(json.dumps({"received_ms": T0_MS + at_ms, "frame": frame}))
        return self

    def snapshot(self, at_ms: int, yes, no, ticker: str = TK) -> "Rec":
        """``yes``/``no``: bid levels ``[("0.40", "100.00"), ...]`` (dollars, contracts)."""
        self.seq += 1
        return self._frame(at_ms, {"type": "orderbook_snapshot", "sid": 1, "seq": self.seq,
                                   "msg": {"market_ticker": ticker,
                                           "yes_dollars_fp": [list(x) for x in yes],
                                           "no_dollars_fp": [list(x) for x in no]}})

    def delta(self, at_ms: int, side: str, price: str, delta: str, ticker: str = TK) -> "Rec":
        self.seq += 1
        return self._frame(at_ms, {"type": "orderbook_delta", "sid": 1, "seq": self.seq,
                                   "msg": {"market_ticker": ticker, "price_dollars": price,
                                           "delta_fp": delta, "side": side,
                                           "ts_ms": T0_MS + at_ms}})

    def trade(self, at_ms: int, yes_price: str, count: str, taker_side: str,
              ticker: str = TK) -> "Rec":
        no = f"{1 - float(yes_price):.4f}"
        return self._frame(at_ms, {"type": "trade", "sid": 2, "msg": {
            "trade_id": str(uuid.UUID(int=len(self.lines) + 1)), "market_ticker": ticker,
            "yes_price_dollars": yes_price, "no_price_dollars": no, "count_fp": count,
            "taker_side": taker_side, "ts_ms": T0_MS + at_ms}})

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines) + "\n")
        return path


def book(bid: str = "0.40", ask: str = "0.45", size: str = "100.00"):
    """A snapshot's ``(yes, no)`` with one level each side: YES bid ``bid``, YES ask ``ask``."""
    no = f"{1 - float(ask):.4f}"
    return [(bid, size)], [(no, size)]


class Script(Strategy):
    """Runs ``actions[i](ctx)`` at the i-th BBO row it sees; records every callback."""

    def __init__(self, actions: dict | None = None, config: dict | None = None) -> None:
        super().__init__(config)
        self.actions = dict(actions or {})
        self.bbos = 0
        self.seen: list[tuple] = []
        self.placed: list = []

    def on_bbo(self, bbo) -> None:
        self.seen.append(("bbo", self.ctx.now_ns, bbo.state))
        fn = self.actions.get(self.bbos)
        self.bbos += 1
        if fn is not None:
            out = fn(self.ctx)
            if out is not None:
                self.placed.append(out)

    def on_fill(self, fill) -> None:
        self.seen.append(("fill", fill.ts_ns, fill.count, fill.yes_price))

    def on_order(self, order) -> None:
        self.seen.append(("order", order.client_order_id, order.status.value))
