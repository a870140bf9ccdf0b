"""One interface for every venue: ``backtest`` (backtest.py), ``sim`` and ``kalshi``
(venue_rest.py) (issue 14 §5; docs/trading.md "Architecture", "Paper and live").

A venue carries our commands to an exchange and brings back, in order, through a
:class:`VenueListener`: market events (the plant's normalized events with their stream
seq: snapshots, deltas, BBO rows, trades, lifecycle), order reports, fills and settlements.
It owns the clock the strategy runs on (recording time in a backtest, UTC wall time live)
and the timers. Everything is in the plant's integer units (:mod:`.model`); a network venue
translates Kalshi's JSON at its edge (``kalshi_platform.exchange.views`` has the sim's
forms), so no wire format reaches the trading node.

What a network venue (``sim``, ``kalshi``: :class:`~.venue_rest.RestVenue`) adds behind the
same methods:
* ``submit``/``cancel``/``amend`` send REST (or FIX) requests asynchronously and report each
  answer as an :class:`~.model.OrderReport`; a timeout or a 5xx is ``kind="unknown"``
  (the order is blocked until :meth:`Venue.state` reconciles it);
* the private WS channels ``fill``/``user_orders``/``market_positions`` become
  :meth:`VenueListener.on_fill` / ``on_order_report`` calls;
* a reconnect calls :meth:`VenueListener.on_reconnect` (the node reconciles);
* :meth:`Venue.state` reads ``/portfolio/orders``, ``/portfolio/fills``,
  ``/portfolio/positions`` and ``/portfolio/balance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Protocol

from kalshi_platform.trading.model import Fill, Order, OrderReport, Settlement, VenueState


class VenueListener(Protocol):
    """What a venue calls (the trading node), always from the venue's one driving thread."""

    def on_market(self, seq: int, event: Any) -> None:
        """A plant event (``SnapshotEvent``, ``DeltaEvent``, ``BBO``, ``TradeEvent``,
        ``LifecycleEvent``) with its stream seq (contiguous from 1)."""

    def on_order_report(self, report: OrderReport) -> None:
        """An answer to a command, or an order's state change."""

    def on_fill(self, fill: Fill) -> None:
        """One of our fills (may repeat after a reconnect: deduplicated by ``fill_id``)."""

    def on_settlement(self, settlement: Settlement) -> None:
        """A market we hold settled."""

    def on_reconnect(self) -> None:
        """The venue reconnected: reconcile (open orders, fills, positions)."""


class Venue(ABC):
    """A venue. ``name`` is what the CLI's ``--venue`` says."""

    name = "venue"

    @abstractmethod
    def start(self, listener: VenueListener) -> None:
        """Connect and remember ``listener``; no callback before :meth:`run`."""

    @abstractmethod
    def now_ns(self) -> int:
        """The venue clock (UTC ns): recording time in a backtest."""

    @abstractmethod
    def call_at(self, ts_ns: int, fn: Callable[[], None]) -> None:
        """Run ``fn()`` at ``ts_ns`` on the venue clock (a timer)."""

    @abstractmethod
    def submit(self, order: Order) -> None:
        """Send a new order (``order.client_order_id`` is its idempotency key)."""

    @abstractmethod
    def cancel(self, order: Order) -> None:
        """Cancel an acknowledged order."""

    @abstractmethod
    def amend(self, order: Order, price: int, count: int) -> None:
        """Amend price (on the order's side scale) and max fillable count."""

    @abstractmethod
    def state(self) -> VenueState:
        """Orders, fills, positions and balance as the venue holds them now."""

    @abstractmethod
    def run(self) -> None:
        """Drive the venue until it is done (end of a recording) or :meth:`stop`."""

    @abstractmethod
    def stop(self) -> None:
        """Ask :meth:`run` to return soon (safe from a callback)."""
