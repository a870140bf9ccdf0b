"""Kalshi WebSocket subscriptions: what is subscribed per connection, markets added and
removed at runtime, and the resync of a seq gap (docs/kalshi-api.md §7.2, §7.4, §7.8, §7.10).

:class:`SubscriptionsMixin` is part of
:class:`~kalshi_platform.ingestion.ws_client.KalshiWSClient` (it uses the client's attributes:
``tickers``, ``channels``, ``use_yes_price``, ``plant``, ``taps``, ``stats``, the current
session); per-connection bookkeeping is :mod:`.ws_session`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

from kalshi_platform.ingestion.feed_api import BOOK_LIVE
from kalshi_platform.ingestion.ws_connect import FeedError
from kalshi_platform.ingestion.ws_session import PendingResync, Session

log = logging.getLogger("kalshi_platform.ingestion.ws_client")  # one logger for the client

#: channels subscribed by default (issue #4 item 3)
DEFAULT_CHANNELS = ("orderbook_delta", "ticker", "trade", "market_lifecycle_v2")
#: channels that take no market filter (docs/kalshi-api.md §7.4)
UNFILTERED = frozenset({"market_lifecycle_v2", "multivariate_market_lifecycle"})


class FeedSubscribeError(FeedError):
    """The server rejected the initial subscription (e.g. error 16, unknown market)."""


class SubscriptionsMixin:
    """Subscribe, add/remove markets, resync a gap: methods of the client."""

    tickers: list[str]
    channels: tuple[str, ...]
    use_yes_price: bool
    connected: bool
    resync_timeout: float
    _sess: Session | None
    _cur_ns: int
    plant: Any
    taps: list[Any]
    stats: Any

    async def add_markets(self, tickers: Iterable[str]) -> list[str]:
        """Add markets to every market-filtered subscription without reconnecting
        (``update_subscription`` ``add_markets``, docs/kalshi-api.md §7.2). Returns the tickers that
        were new. Takes effect on the next connection if none is up."""
        new = [t for t in dict.fromkeys(tickers) if t not in self.tickers]
        if not new:
            return []
        had = bool(self.tickers)
        self.tickers.extend(new)
        s = self._sess
        if s is not None and self.connected:
            if not had:  # nothing market-filtered was subscribed yet
                self._subscribe_markets(s, new)
            else:
                for sub in list(s.subs.values()):
                    if sub.tickers is not None:
                        s.update_markets(sub.sid, new, "add_markets")
        return new

    async def remove_markets(self, tickers: Iterable[str]) -> list[str]:
        """Remove markets from every market-filtered subscription (``delete_markets``) and drop
        their books from the plant. Returns the tickers that were subscribed."""
        gone = [t for t in dict.fromkeys(tickers) if t in self.tickers]
        if not gone:
            return []
        self.tickers = [t for t in self.tickers if t not in gone]
        s = self._sess
        if s is not None and self.connected:
            for sub in list(s.subs.values()):
                if sub.tickers is not None:
                    s.update_markets(sub.sid, gone, "delete_markets")
        for t in gone:
            self.plant.remove_market(t)
        return gone

    # -- subscriptions ---------------------------------------------------------------------

    def _subscribe_all(self, s: Session) -> None:
        unfiltered = [c for c in self.channels if c in UNFILTERED]
        if unfiltered:
            s.initial.add(s.send("subscribe", {"channels": unfiltered}))
        if self.tickers:
            self._subscribe_markets(s, self.tickers, initial=True)

    def _subscribe_markets(self, s: Session, tickers: list[str], initial: bool = False,
                           channels: Iterable[str] | None = None) -> None:
        chans = [c for c in (channels or self.channels) if c not in UNFILTERED]
        other = [c for c in chans if c != "orderbook_delta"]
        ids = []
        if other:
            ids.append(s.send("subscribe", {"channels": other, "market_tickers": list(tickers)}))
        if "orderbook_delta" in chans:
            ids.append(s.send("subscribe", {"channels": ["orderbook_delta"],
                                            "market_tickers": list(tickers),
                                            "use_yes_price": self.use_yes_price}))
        if initial:
            s.initial.update(ids)

    def _resubscribe(self, s: Session, sid: int) -> None:
        """Fallback resync: unsubscribe ``sid`` and subscribe its channel again."""
        s.resyncs.pop(sid, None)
        sub = s.subs.pop(sid, None)
        if sub is None:
            return
        self.stats.resync_fallbacks += 1
        s.send("unsubscribe", {"sids": [sid]})
        if sub.tickers:
            self._subscribe_markets(s, sorted(sub.tickers), channels=[sub.channel])

    def _on_gap(self, sid: int, tickers: list[str]) -> None:
        """The plant's resync callback: a seq gap on ``sid`` left ``tickers`` stale.

        The plant has already emitted its ``resync`` feed event; the taps get the matching
        marker first (whether or not a command is sent) so a replay emits the same row."""
        for tap in self.taps:
            tap.event("resync", self._cur_ns, sid, ",".join(tickers))
        s = self._sess
        if s is None or not self.connected:
            return
        sub = s.subs.get(sid)
        if sub is None or sub.channel != "orderbook_delta":
            return
        state = self.plant.book_state
        want = set(tickers)
        want.update(t for t in (sub.tickers or ()) if state(t) != BOOK_LIVE)
        pending = s.resyncs.get(sid)
        if pending is not None and want <= pending.tickers:
            return  # the snapshots already asked for supersede everything before them
        self.stats.resyncs += 1
        cid = s.update_markets(sid, sorted(want), "get_snapshot")
        s.resyncs[sid] = PendingResync(cid, want, time.monotonic() + self.resync_timeout)
        log.info("gap on sid %s: get_snapshot for %d market(s)", sid, len(want))
