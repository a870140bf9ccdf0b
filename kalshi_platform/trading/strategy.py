"""The strategy API (issue 14 §1; docs/trading.md "Writing a strategy").

Subclass :class:`Strategy` and override the callbacks you need; trade through
``self.ctx`` (a :class:`~.context.Context`). A strategy sees normalized events only, in the
plant's integer units: prices micro-dollars (``cents(56)`` = ``560000``), counts
centi-contracts (``contracts(10)`` = ``1000``), money 1e-8 dollars, times UTC ns.

Callbacks (all optional; called on the venue's one thread, never concurrently):

* ``on_start()`` — after reconciliation, before the first market event;
* ``on_book(book)`` — a market's book changed (a :class:`kalshi_platform.feed.books.MirrorBook`:
  ``yes``/``no`` bid ladders price → size, ``state``, ``bbo``); only called when overridden;
* ``on_bbo(bbo)`` — a BBO row (``kalshi_platform.ticker_plant.order_book.BBO``; a row whose
  ``state`` is not ``live`` has null prices: do not trade on that book);
* ``on_trade(trade)`` — a public trade (``TradeEvent``);
* ``on_fill(fill)`` — one of ours (:class:`~.model.Fill`);
* ``on_order(order)`` — one of our orders changed state or fill count (:class:`~.model.Order`);
* ``on_timer(ts_ns)`` — a timer set with ``ctx.set_timer``;
* ``on_stop()`` — the run ends (after cancel-all when the run was interrupted).

``config`` is the ``[strategy]`` table of the run's TOML file (plain values).
"""

from __future__ import annotations

from typing import Any


class Strategy:
    """Base class; ``self.ctx`` is set before ``on_start``."""

    def __init__(self, config: dict | None = None) -> None:
        self.config: dict = dict(config or {})
        self.ctx: Any = None

    def on_start(self) -> None:
        """Called once before the first market event."""

    def on_book(self, book) -> None:
        """A book changed (``MirrorBook``)."""

    def on_bbo(self, bbo) -> None:
        """A BBO row."""

    def on_trade(self, trade) -> None:
        """A public trade."""

    def on_fill(self, fill) -> None:
        """One of our fills."""

    def on_order(self, order) -> None:
        """One of our orders changed."""

    def on_timer(self, ts_ns: int) -> None:
        """A timer fired."""

    def on_stop(self) -> None:
        """The run ends."""
