"""Reconciliation with the venue, on start and on every reconnect (issue 14 §2;
docs/trading.md "Reconciliation").

Input: a :class:`~.model.VenueState` (the venue's orders of the session, open or not, every
fill, signed positions, balance). In order:

1. **Orders.** Each venue order is matched to ours by venue order id, else by
   ``client_order_id``; a match takes the venue's id, fill count and status and is
   unblocked. An order we do not know is **imported** (``external`` when its client id is
   not one of ours), so its fills and its cancel work like any other.
2. **Fills.** Every venue fill whose ``fill_id`` we have not counted is counted now (into
   its order and the portfolio); repeats are skipped, so a restart doubles nothing.
3. **Our orders the venue does not list.** An order blocked on an unknown outcome, or still
   ``pending_new``, that the venue never saw is rejected ("not at the venue"); an open one
   that the venue no longer lists as resting takes the venue's final state.
4. **Positions.** Ours (from fills) are compared with the venue's; a difference is a note
   (returned, and kept in ``node.reconcile_notes``), never silently overwritten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalshi_platform.trading.model import Order, OrderStatus as S, VenueOrder, VenueState

if TYPE_CHECKING:  # pragma: no cover
    from kalshi_platform.trading.node import TradingNode


def _status_of(v: VenueOrder) -> S:
    if v.venue_status == "resting":
        return S.PARTIALLY_FILLED if v.filled else S.RESTING
    if v.venue_status == "executed" or v.filled >= v.count:
        return S.FILLED
    return S.CANCELED


def _import(node: "TradingNode", v: VenueOrder) -> Order:
    prefix = node.oms.prefix + "-"
    cid = v.client_order_id or f"ext-{v.venue_order_id}"
    o = Order(cid, v.ticker, v.side, v.action, v.price, v.count, tif=v.tif,
              status=_status_of(v), venue_order_id=v.venue_order_id,
              external=not cid.startswith(prefix))
    node.oms.note_used_id(cid)  # never hand out a client id the venue already holds
    node.oms.add(o)
    return o


def _merge_order(node: "TradingNode", o: Order, v: VenueOrder, ts: int) -> None:
    oms = node.oms
    if o.venue_order_id != v.venue_order_id:
        oms.link(o, v.venue_order_id)
    o.price, o.count = v.price, v.count
    o.pending_price = o.pending_count = None
    want = _status_of(v)
    if o.status.terminal:
        o.blocked = ""
    elif o.status is not want or o.blocked:
        oms.force(o, want, ts)


def reconcile(node: "TradingNode", state: VenueState) -> list[str]:
    """Apply the steps above to ``node``; returns notes on what did not agree."""
    oms, ts = node.oms, node.venue.now_ns()
    notes: list[str] = []
    seen: set[str] = set()
    for v in state.orders:
        o = oms.by_venue(v.venue_order_id) or (oms.get(v.client_order_id)
                                               if v.client_order_id else None)
        if o is None:
            o = _import(node, v)
            if o.external:
                notes.append(f"imported order {v.venue_order_id} ({o.client_order_id}) "
                             "not placed by this strategy")
        else:
            _merge_order(node, o, v, ts)
        seen.add(o.client_order_id)
    for f in state.fills:
        node.on_fill(f)
    for o in list(oms.all_orders()):
        if o.client_order_id in seen or o.status.terminal:
            continue
        if o.venue_order_id is None or o.blocked:
            oms.force(o, S.REJECTED, ts, "not at the venue (reconciliation)")
    for t in set(state.positions) | set(node.portfolio.positions):
        ours, theirs = node.portfolio.pos(t), state.positions.get(t, 0)
        if ours != theirs:
            notes.append(f"{t}: position {ours / 100:g} here, {theirs / 100:g} at the venue")
    return notes
