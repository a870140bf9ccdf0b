"""Positions and PnL per market and per event (issue 14 §4; docs/trading.md "PnL").

Positions are signed YES-equivalent centi-contracts (Kalshi ``position_fp``: NO negative;
docs/trading-api.md §4.1). A bid fill (buy-yes, sell-no) adds, an ask fill subtracts; YES
and NO net. Money in 1e-8 dollars (:data:`~.model.MONEY_SCALE`).

* ``cost``: what the held contracts cost (YES held at p cost p each; NO held at YES price p
  cost $1 − p each). Closing ``c`` of ``h`` held removes ``cost × c // h`` (average cost)
  and realizes ``proceeds − removed``, the exchange's own convention
  (kalshi_platform/exchange/ledger.py), so our figures and the venue's agree.
* ``unrealized`` marks the held contracts: to the **mid** (``mark="mid"``) or to the price
  we could get now (``mark="liquidation"``: YES held at the YES bid, NO held at $1 − the
  YES ask). No two-sided book: no mark (0 unrealized, ``marked`` False).
* Fees are kept apart (``fees``); ``net = realized + unrealized − fees``.
* Settlement pays $1 per winning net contract (void: the cost back) and closes the
  position: ``realized += revenue − cost``.

The event of a market is its ticker up to the last ``-`` (Kalshi's naming:
``KXMLBGAME-26AUG072140LADAZ-LAD`` → ``KXMLBGAME-26AUG072140LADAZ``) unless given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from kalshi_platform.fixedpoint import ONE_DOLLAR
from kalshi_platform.trading.model import Fill


def event_of(ticker: str) -> str:
    """Kalshi's event ticker of a market ticker (up to the last ``-``)."""
    head, sep, _ = ticker.rpartition("-")
    return head if sep else ticker


@dataclass
class Position:
    """One market: ``pos`` signed centi-contracts, ``cost``/``realized``/``fees``/
    ``settled`` (settlement revenue) money, ``volume`` centi-contracts traded, ``turnover``
    money traded (count × the side's price)."""

    ticker: str
    event: str
    pos: int = 0
    cost: int = 0
    realized: int = 0
    fees: int = 0
    volume: int = 0
    turnover: int = 0
    settled: int = 0
    result: Optional[str] = None

    def unrealized(self, yes_bid: int | None, yes_ask: int | None, mark: str = "mid") -> int:
        """Money: value of the held contracts at the mark minus their cost (0 when flat or
        unmarkable). ``mark`` ∈ mid | liquidation."""
        value = self.value(yes_bid, yes_ask, mark)
        return 0 if value is None else value - self.cost

    def value(self, yes_bid: int | None, yes_ask: int | None, mark: str = "mid") -> int | None:
        """Money the held contracts are worth at the mark, None if no mark is possible."""
        if self.pos == 0:
            return 0
        if mark == "mid":
            if yes_bid is None or yes_ask is None:
                return None
            yes = (yes_bid + yes_ask) // 2  # floored to the micro-dollar
        elif mark == "liquidation":
            yes = yes_bid if self.pos > 0 else yes_ask
            if yes is None:
                return None
        else:
            raise ValueError(f"mark must be mid or liquidation, got {mark!r}")
        return self.pos * yes if self.pos > 0 else -self.pos * (ONE_DOLLAR - yes)


class Portfolio:
    """Every position, plus cash flow totals. ``apply_fill`` and ``apply_settlement`` are the
    only writers."""

    def __init__(self, events: dict[str, str] | None = None) -> None:
        self.positions: dict[str, Position] = {}
        self._events = dict(events or {})

    def position(self, ticker: str) -> Position:
        """The position of ``ticker`` (created flat)."""
        p = self.positions.get(ticker)
        if p is None:
            p = self.positions[ticker] = Position(ticker, self._events.get(ticker)
                                                  or event_of(ticker))
        return p

    def pos(self, ticker: str) -> int:
        """Signed centi-contracts held in ``ticker`` (0 if never traded)."""
        p = self.positions.get(ticker)
        return 0 if p is None else p.pos

    def event_pos(self, event: str) -> int:
        """Signed YES-equivalent centi-contracts over the event's markets."""
        return sum(p.pos for p in self.positions.values() if p.event == event)

    def apply_fill(self, f: Fill) -> Position:
        """Net one fill into its position (average cost; see the module docstring)."""
        p = self.position(f.ticker)
        q, price = f.count, f.yes_price
        if f.is_bid:
            held = -p.pos if p.pos < 0 else 0
            close = min(q, held)
            proceeds, open_cost = close * (ONE_DOLLAR - price), (q - close) * price
            p.pos += q
        else:
            held = p.pos if p.pos > 0 else 0
            close = min(q, held)
            proceeds, open_cost = close * price, (q - close) * (ONE_DOLLAR - price)
            p.pos -= q
        if close:
            removed = p.cost * close // held
            p.cost -= removed
            p.realized += proceeds - removed
        p.cost += open_cost
        p.fees += f.fee
        p.volume += q
        own = price if f.side.value == "yes" else ONE_DOLLAR - price
        p.turnover += q * own
        return p

    def apply_settlement(self, ticker: str, result: str, revenue: int | None = None) -> int:
        """Settle ``ticker`` with ``result`` yes | no | void: pays $1 per winning net
        contract (void: ``revenue`` if the venue said, else the cost) and closes the
        position. Returns the revenue (money)."""
        p = self.position(ticker)
        if revenue is None:
            if result == "yes":
                revenue = max(p.pos, 0) * ONE_DOLLAR
            elif result == "no":
                revenue = max(-p.pos, 0) * ONE_DOLLAR
            elif result == "void":
                revenue = p.cost
            else:
                raise ValueError(f"result must be yes, no or void, got {result!r}")
        p.realized += revenue - p.cost
        p.settled += revenue
        p.pos = p.cost = 0
        p.result = result
        return revenue

    def totals(self, tops: dict[str, tuple], mark: str = "mid") -> dict:
        """Money totals: realized, unrealized (at ``mark``, from ``tops`` ticker →
        ``(yes_bid, yes_ask)``), fees, settled, net, plus volume and turnover."""
        out = {"realized": 0, "unrealized": 0, "fees": 0, "settled": 0, "volume": 0,
               "turnover": 0}
        for t, p in self.positions.items():
            bid, ask = tops.get(t, (None, None))
            out["realized"] += p.realized
            out["unrealized"] += p.unrealized(bid, ask, mark)
            out["fees"] += p.fees
            out["settled"] += p.settled
            out["volume"] += p.volume
            out["turnover"] += p.turnover
        out["net"] = out["realized"] + out["unrealized"] - out["fees"]
        return out

    def by_event(self, tops: dict[str, tuple], mark: str = "mid") -> dict[str, dict]:
        """Per event: ``{"pos", "realized", "unrealized", "fees", "net"}`` (money; pos in
        centi-contracts, YES-equivalent)."""
        out: dict[str, dict] = {}
        for t, p in self.positions.items():
            e = out.setdefault(p.event, {"pos": 0, "realized": 0, "unrealized": 0, "fees": 0})
            bid, ask = tops.get(t, (None, None))
            e["pos"] += p.pos
            e["realized"] += p.realized
            e["unrealized"] += p.unrealized(bid, ask, mark)
            e["fees"] += p.fees
        for e in out.values():
            e["net"] = e["realized"] + e["unrealized"] - e["fees"]
        return out
