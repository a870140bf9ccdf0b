"""Order groups: an exchange-side kill switch (docs/trading-api.md §4.1 ``order_groups``).

A group allows at most ``contracts_limit`` centi-contracts matched by its orders over a
rolling 15 s window. The engine checks the window after each command; when the total has
reached the limit and auto-cancel is on, every resting order of the group is canceled and
new orders in it are refused until a reset. The fill that reaches the limit completes (this
sim does not split a fill at the limit; Kalshi's docs do not say).
"""

from __future__ import annotations

from collections import deque

WINDOW_NS = 15 * 10**9


class Group:
    """``window``: (ts ns, centi-contracts) of recent fills; ``orders``: ids of resting
    orders in the group."""

    __slots__ = ("group_id", "user_id", "limit", "auto_cancel", "triggered", "window",
                 "matched", "orders")

    def __init__(self, group_id: str, user_id: str, limit: int, auto_cancel: bool) -> None:
        self.group_id = group_id
        self.user_id = user_id
        self.limit = limit
        self.auto_cancel = auto_cancel
        self.triggered = False
        self.window: deque[tuple[int, int]] = deque()
        self.matched = 0
        self.orders: dict[str, None] = {}

    def record(self, ts: int, qty: int) -> None:
        """Count a fill of ``qty`` at ``ts``."""
        self.window.append((ts, qty))
        self.matched += qty

    def over_limit(self, now: int, window_ns: int = WINDOW_NS) -> bool:
        """Drop fills older than the window; True when matched >= limit (auto-cancel on)."""
        w = self.window
        while w and w[0][0] <= now - window_ns:
            self.matched -= w.popleft()[1]
        return self.auto_cancel and not self.triggered and self.matched >= self.limit

    def reset(self) -> None:
        """Clear the window and the triggered state."""
        self.window.clear()
        self.matched = 0
        self.triggered = False
