"""The kill switch: cancel every open order and halt (issue 14 §3; docs/trading-api.md §5).

It trips on
* a **reject spike**: ``kill_reject_count`` rejects (the venue's and the risk checks') within
  ``kill_reject_window_ns`` (KalshiMonorepo's ``MM_MAX_REJECTS_PER_MIN``);
* a **stale or non-live book** of a market the strategy trades (an open order or a position
  there; ``kill_on_stale_book``, KalshiMonorepo's ``MM_KILL_ON_STALE``);
* the **daily loss limit** (net PnL at or below −``daily_loss_limit``);
* a **manual** trip (:meth:`KillSwitch.trip`, from a signal handler or the CLI).

Tripping calls ``on_trip(reason)`` once (the trading node cancels all and sets HALTED);
``reason`` is kept in :attr:`KillSwitch.reason`.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from kalshi_platform.trading.risk_config import RiskConfig


class KillSwitch:
    """Watches rejects, book states and PnL; trips once."""

    def __init__(self, cfg: RiskConfig, on_trip: Callable[[str], None]) -> None:
        self.cfg = cfg
        self._on_trip = on_trip
        self._rejects: deque[int] = deque()
        self.reason = ""

    @property
    def tripped(self) -> bool:
        """True once the switch has tripped."""
        return bool(self.reason)

    def trip(self, reason: str) -> None:
        """Trip now (manual or from a rule below); later trips are ignored."""
        if self.reason:
            return
        self.reason = reason
        self._on_trip(reason)

    def on_reject(self, ts_ns: int) -> None:
        """Count one reject at ``ts_ns``; trips on a spike."""
        c = self.cfg
        if not c.kill_reject_count:
            return
        q = self._rejects
        q.append(ts_ns)
        while q and q[0] <= ts_ns - c.kill_reject_window_ns:
            q.popleft()
        if len(q) >= c.kill_reject_count:
            self.trip(f"reject spike: {len(q)} rejects within "
                      f"{c.kill_reject_window_ns / 1e9:g} s")

    def on_book_state(self, ticker: str, state: str, traded: bool) -> None:
        """A book changed state; trips when a traded market's book is not live."""
        if self.cfg.kill_on_stale_book and traded and state != "live":
            self.trip(f"book of traded market {ticker} is {state}")

    def on_pnl(self, net: int) -> None:
        """Net PnL (money) now; trips at the daily loss limit."""
        lim = self.cfg.daily_loss_limit
        if lim and -net >= lim:
            self.trip(f"daily loss ${-net / 1e8:.2f} reached the limit ${lim / 1e8:.2f}")
