"""Order management: the client-side order state machine (issue 14 §2; docs/trading.md).

States (:class:`~.model.OrderStatus`)::

    pending_new ──> resting ──> partially_filled ──> filled
         │             │  ↘ pending_cancel ─> canceled      (any open state -> canceled)
         └> rejected   └──> pending_amend ─> resting / partially_filled

Every order gets a unique ``client_order_id`` (``{prefix}-{n}``, deterministic); the venue's
duplicate answer to a retry with the same id (Kalshi: 409 with the first order's id) is taken
as the acknowledgement it missed, so a retry never places a second order. After a timeout or
an answer that does not say what happened (``unknown``), the order is **blocked**: no
cancel or amend is sent for it until reconciliation (:mod:`.reconcile`) resolves it, as the
nautilus Kalshi adapter does (docs/trading-api.md §5). Fills are deduplicated by
``fill_id``; a fill for an order the venue has not acknowledged yet waits for the ack.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from kalshi_platform.trading.model import Fill, Order, OrderReport, OrderStatus as S

#: allowed transitions of the state machine (late fill counts on terminal orders aside)
TRANSITIONS: dict[S, frozenset[S]] = {
    S.PENDING_NEW: frozenset({S.RESTING, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED}),
    S.RESTING: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.PENDING_CANCEL,
                          S.PENDING_AMEND}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.PENDING_CANCEL,
                                   S.PENDING_AMEND}),
    S.PENDING_CANCEL: frozenset({S.CANCELED, S.FILLED, S.RESTING, S.PARTIALLY_FILLED,
                                 S.PENDING_CANCEL}),
    S.PENDING_AMEND: frozenset({S.RESTING, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED,
                                S.PENDING_AMEND, S.PENDING_CANCEL}),
    S.FILLED: frozenset(), S.CANCELED: frozenset(), S.REJECTED: frozenset(),
}

DUPLICATE_CODE = "order_already_exists"


class TransitionError(ValueError):
    """An order state change the machine does not allow (a bug in a venue adapter)."""


class OrderManager:
    """Tracks our orders by ``client_order_id`` and by venue order id.

    ``on_change(order)`` is called after every state or fill-count change (the trading node
    forwards it to the strategy's ``on_order``). Not thread-safe: one owner."""

    def __init__(self, prefix: str = "kp", on_change: Callable[[Order], None] | None = None):
        self.prefix = prefix
        self.orders: dict[str, Order] = {}
        self.by_venue_id: dict[str, str] = {}
        self.fill_ids: set[str] = set()
        self._waiting_fills: dict[str, list[Fill]] = {}
        self._n = 0
        self._on_change = on_change or (lambda o: None)

    # -- ids and lookups -------------------------------------------------------------------

    def next_client_id(self) -> str:
        """A fresh ``client_order_id`` (Kalshi's ClOrdID alphabet, ≤ 64 characters)."""
        self._n += 1
        return f"{self.prefix}-{self._n}"

    def get(self, client_order_id: str) -> Optional[Order]:
        """The order with this client id, or None."""
        return self.orders.get(client_order_id)

    def by_venue(self, venue_order_id: str) -> Optional[Order]:
        """The order the venue calls ``venue_order_id``, or None."""
        cid = self.by_venue_id.get(venue_order_id)
        return None if cid is None else self.orders.get(cid)

    def open_orders(self, ticker: str | None = None) -> list[Order]:
        """Orders that may still trade (oldest first), optionally of one market."""
        return [o for o in self.orders.values()
                if o.status.open and (ticker is None or o.ticker == ticker)]

    # -- local commands --------------------------------------------------------------------

    def add(self, order: Order) -> Order:
        """Register a new order in ``pending_new`` (or an imported one in its state).
        Raises ValueError on a reused ``client_order_id``."""
        if order.client_order_id in self.orders:
            raise ValueError(f"client_order_id {order.client_order_id} already used")
        self.orders[order.client_order_id] = order
        if order.venue_order_id:
            vid, order.venue_order_id = order.venue_order_id, None
            self._acknowledge(order, vid)
        return order

    def command_blocked(self, order: Order) -> str:
        """Why no cancel/amend may be sent for ``order`` now ("" when one may)."""
        if order.blocked:
            return f"order {order.client_order_id} awaits reconciliation ({order.blocked})"
        if order.status.terminal:
            return f"order {order.client_order_id} is {order.status.value}"
        if order.venue_order_id is None:
            return f"order {order.client_order_id} is not acknowledged yet"
        return ""

    def mark(self, order: Order, status: S, ts_ns: int, reason: str = "") -> None:
        """Move ``order`` to ``status``. Raises :class:`TransitionError` if not allowed."""
        if status is not order.status and status not in TRANSITIONS[order.status]:
            raise TransitionError(f"{order.client_order_id}: {order.status.value} -> "
                                  f"{status.value} is not a valid transition")
        order.status = status
        order.updated_ns = ts_ns
        if reason:
            order.reason = reason
        self._on_change(order)

    def force(self, order: Order, status: S, ts_ns: int, reason: str = "") -> None:
        """Set ``status`` whatever the machine says: reconciliation adopting the venue's
        state (the venue is the truth); clears ``blocked``."""
        order.status, order.updated_ns, order.blocked = status, ts_ns, ""
        if reason:
            order.reason = reason
        self._on_change(order)

    def note_used_id(self, client_order_id: str) -> None:
        """A client id of ours found at the venue: never hand it out again."""
        head = self.prefix + "-"
        if client_order_id.startswith(head) and client_order_id[len(head):].isdigit():
            self._n = max(self._n, int(client_order_id[len(head):]))

    def link(self, order: Order, venue_order_id: str) -> None:
        """Record the venue's id of ``order``; fills waiting for it are counted."""
        self._acknowledge(order, venue_order_id)

    def block(self, order: Order, reason: str) -> None:
        """Block commands on ``order`` until reconciliation (unknown outcome)."""
        order.blocked = reason or "unknown outcome"
        self._on_change(order)

    # -- venue reports ---------------------------------------------------------------------

    def on_report(self, r: OrderReport) -> Optional[Order]:
        """Apply a venue report. Returns the order it concerned (None if unknown to us)."""
        o = self.orders.get(r.client_order_id) if r.client_order_id else None
        if o is None and r.venue_order_id:
            o = self.by_venue(r.venue_order_id)
        if o is None:
            return None
        handler = _REPORTS.get(r.kind)
        if handler is None:
            raise ValueError(f"unknown order report kind {r.kind!r}")
        handler(self, o, r)
        return o

    def _acknowledge(self, o: Order, venue_order_id: Optional[str]) -> None:
        if venue_order_id and o.venue_order_id != venue_order_id:
            o.venue_order_id = venue_order_id
            self.by_venue_id[venue_order_id] = o.client_order_id
            for f in self._waiting_fills.pop(venue_order_id, ()):
                self._count_fill(o, f)

    def _accepted(self, o: Order, r: OrderReport) -> None:
        self._acknowledge(o, r.venue_order_id)
        if o.status is S.PENDING_NEW:
            self.mark(o, self._live_status(o), r.ts_ns)
        self._apply_venue_status(o, r)

    def _rejected(self, o: Order, r: OrderReport) -> None:
        if r.code == DUPLICATE_CODE and r.venue_order_id:
            # a retry of an order the venue already has: the ack we missed (idempotent)
            self._acknowledge(o, r.venue_order_id)
            o.blocked = o.blocked or "duplicate answer: state from reconciliation"
            self._on_change(o)
            return
        if o.status is S.PENDING_NEW:
            self.mark(o, S.REJECTED, r.ts_ns, r.reason or r.code)

    def _update(self, o: Order, r: OrderReport) -> None:
        self._acknowledge(o, r.venue_order_id)
        if r.price is not None and o.status is S.PENDING_AMEND:
            o.price, o.pending_price = r.price, None
        if r.count and o.status is S.PENDING_AMEND:
            o.count, o.pending_count = r.count, None
        if o.status in (S.PENDING_NEW, S.PENDING_AMEND) and r.venue_status == "resting":
            self.mark(o, self._live_status(o), r.ts_ns)
        self._apply_venue_status(o, r)

    def _apply_venue_status(self, o: Order, r: OrderReport) -> None:
        if o.status.terminal:
            return
        if r.venue_status == "canceled":
            self.mark(o, S.CANCELED, r.ts_ns, r.reason or o.reason)
        elif r.venue_status == "executed":
            self.mark(o, S.FILLED, r.ts_ns)

    def _cancel_rejected(self, o: Order, r: OrderReport) -> None:
        if o.status is S.PENDING_CANCEL:
            self.mark(o, self._live_status(o), r.ts_ns, r.reason)
        self._apply_venue_status(o, r)

    def _amend_rejected(self, o: Order, r: OrderReport) -> None:
        if o.status is S.PENDING_AMEND:
            o.pending_price = o.pending_count = None
            self.mark(o, self._live_status(o), r.ts_ns, r.reason)
        self._apply_venue_status(o, r)

    def _unknown(self, o: Order, r: OrderReport) -> None:
        self._acknowledge(o, r.venue_order_id)
        self.block(o, r.reason or "no answer from the venue")

    def _live_status(self, o: Order) -> S:
        if o.filled >= o.count:
            return S.FILLED
        return S.PARTIALLY_FILLED if o.filled else S.RESTING

    # -- fills -----------------------------------------------------------------------------

    def on_fill(self, f: Fill) -> tuple[bool, Optional[Order]]:
        """Count a fill once. Returns ``(new, order)``: ``new`` False for a repeat
        ``fill_id``; ``order`` None while its order is not acknowledged (the fill waits and
        is counted on the ack) or for an order not ours."""
        if f.fill_id in self.fill_ids:
            return False, None
        self.fill_ids.add(f.fill_id)
        o = self.by_venue(f.venue_order_id)
        if o is None:
            self._waiting_fills.setdefault(f.venue_order_id, []).append(f)
            return True, None
        self._count_fill(o, f)
        return True, o

    def _count_fill(self, o: Order, f: Fill) -> None:
        o.filled += f.count
        o.fees += f.fee
        o.updated_ns = f.ts_ns
        if o.status.terminal:
            self._on_change(o)
            return
        if o.filled >= o.count:
            self.mark(o, S.FILLED, f.ts_ns)
        elif o.status in (S.RESTING, S.PENDING_NEW):
            self.mark(o, S.PARTIALLY_FILLED, f.ts_ns)
        else:
            self._on_change(o)

    def waiting_fills(self) -> list[Fill]:
        """Fills still waiting for their order's acknowledgement (reconciliation imports)."""
        return [f for fs in self._waiting_fills.values() for f in fs]

    def all_orders(self) -> Iterable[Order]:
        """Every order, oldest first."""
        return self.orders.values()


_REPORTS = {
    "accepted": OrderManager._accepted,
    "rejected": OrderManager._rejected,
    "update": OrderManager._update,
    "cancel_rejected": OrderManager._cancel_rejected,
    "amend_rejected": OrderManager._amend_rejected,
    "unknown": OrderManager._unknown,
}
