"""Results and events of the exchange core → ExecutionReport 8, OrderCancelReject 9 and
OrderMassCancelReport r (docs/fix.md "Reports").

:class:`Router` is an ``EngineHub`` listener. For a command a FIX session sent (``ctx`` is a
:class:`Request`) it first answers that request — New 0 / Rejected 8 for D, Replaced 5 or a
cancel reject for G, Canceled 4 or a cancel reject for F — and then walks the result's events
in order for every FIX-entered order of any session: a ``Fill`` is a Trade F report
(LastQty, LastPx, TrdMatchID, AggressorIndicator, the fee as MiscFeeAmt with MiscFeeType 4),
an order canceled by anything but its own F (IOC remainder, FOK kill, mass cancel, market
close, GTD expiry, order-group trigger, a REST cancel) is a Canceled 4 report. Fills of a
maker caused by a REST taker therefore reach the maker's FIX session. Orders entered over
REST get no FIX reports (Kalshi's listener sessions are not modelled).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import simplefix

from kalshi_platform.exchange import MONEY_SCALE, Fill, OrderUpdate, Result
from kalshi_platform.fix import protocol as P
from kalshi_platform.fix.orders import Tracked, tracked_from_view

log = logging.getLogger(__name__)

# exchange error code → OrdRejReason 103 (docs/trading-api.md §4.2)
_ORD_REJ = {"market_not_found": P.REJ_UNKNOWN_SYMBOL, "market_closed": P.REJ_EXCHANGE_CLOSED,
            "invalid_market_state": P.REJ_EXCHANGE_CLOSED,
            "insufficient_balance": P.REJ_EXCEEDS_LIMIT,
            "open_order_limit_exceeded": P.REJ_EXCEEDS_LIMIT,
            "order_group_triggered": P.REJ_EXCEEDS_LIMIT,
            "order_already_exists": P.REJ_DUPLICATE}
# exchange error code → CxlRejReason 102
_CXL_REJ = {"order_not_found": P.CXL_UNKNOWN, "order_not_resting": P.CXL_TOO_LATE,
            "invalid_price": P.CXL_PRICE_INCREMENT}


class Sessionlike(Protocol):
    """What the router needs of a session's state (session.SessionState)."""

    user: str
    use_dollars: bool
    orders: dict[str, Tracked]
    by_clordid: dict[str, str]

    def send(self, msg: simplefix.FixMessage) -> None: ...


@dataclass
class Request:
    """The FIX message behind a command: its session, MsgType, ClOrdID, OrigClOrdID and, for
    D, the order being entered."""

    state: Any
    msg_type: str
    clordid: str | None = None
    orig_clordid: str | None = None
    tracked: Tracked | None = None
    order_id: str | None = None


def _text(code: str, message: str) -> str:
    return f"{code}: {message}"


class Router:
    """Turns results into reports for the sessions that own the orders."""

    def __init__(self) -> None:
        self.owner: dict[str, Any] = {}  # order_id → session state
        self._exec_ids = itertools.count(1)

    # -- building ---------------------------------------------------------------------------

    def report(self, st: Sessionlike, tr: Tracked, exec_type: str, *, orig: str | None = None,
               fill: Fill | None = None, ts: int = 0) -> simplefix.FixMessage:
        """An ExecutionReport for ``tr`` as it is now (after ``fill`` when given)."""
        m = P.new_message(P.EXECUTION_REPORT)
        m.append_pair(P.ORDER_ID, tr.order_id or "NONE")
        m.append_pair(P.CL_ORD_ID, tr.clordid)
        if orig:
            m.append_pair(P.ORIG_CL_ORD_ID, orig)
        m.append_pair(P.EXEC_ID, f"{next(self._exec_ids)}")
        m.append_pair(P.EXEC_TYPE, exec_type)
        m.append_pair(P.ORD_STATUS, self._status(tr, exec_type))
        m.append_pair(P.SYMBOL, tr.symbol)
        m.append_pair(P.SIDE, tr.side)
        m.append_pair(P.ORD_TYPE, P.ORD_TYPE_LIMIT)
        m.append_pair(P.PRICE, P.format_price(tr.price, st.use_dollars))
        m.append_pair(P.ORDER_QTY, P.format_qty(tr.qty))
        m.append_pair(P.TIME_IN_FORCE, tr.tif)
        m.append_pair(P.CUM_QTY, P.format_qty(tr.cum))
        done = exec_type in (P.EXEC_CANCELED, P.EXEC_REJECTED)
        m.append_pair(P.LEAVES_QTY, P.format_qty(0 if done else tr.leaves))
        avg = (tr.cost + tr.cum // 2) // tr.cum if tr.cum else 0  # micro-dollars, rounded
        m.append_pair(P.AVG_PX, P.format_price(avg, st.use_dollars) if tr.cum else "0")
        if fill is not None:
            m.append_pair(P.LAST_QTY, P.format_qty(fill.count))
            m.append_pair(P.LAST_PX, P.format_price(fill.yes_price, st.use_dollars))
            m.append_pair(P.TRD_MATCH_ID, fill.trade_id)
            m.append_pair(P.AGGRESSOR_INDICATOR, "Y" if fill.is_taker else "N")
            if fill.fee_cost:
                m.append_pair(P.NO_MISC_FEES, 1)
                m.append_pair(P.MISC_FEE_AMT, P.format_money(fill.fee_cost, MONEY_SCALE))
                m.append_pair(P.MISC_FEE_TYPE, 4)  # EXCHANGE_FEES
        if ts:
            m.append_pair(P.TRANSACT_TIME, P.utc_timestamp(ts))
        return m

    @staticmethod
    def _status(tr: Tracked, exec_type: str) -> str:
        if exec_type == P.EXEC_REJECTED:
            return P.ORD_REJECTED
        if exec_type == P.EXEC_CANCELED:
            return P.ORD_CANCELED
        if tr.cum and not tr.leaves:
            return P.ORD_FILLED
        return P.ORD_PARTIAL if tr.cum else P.ORD_NEW

    def reject(self, st: Sessionlike, tr: Tracked, code: str, message: str,
               reason: str | None = None) -> None:
        """A Rejected (8) ExecutionReport for a D the core (or the gateway) refused."""
        m = self.report(st, tr, P.EXEC_REJECTED)
        m.append_pair(P.ORD_REJ_REASON, reason or _ORD_REJ.get(code, P.REJ_OTHER))
        m.append_pair(P.TEXT, _text(code, message))
        st.send(m)

    def cancel_reject(self, st: Sessionlike, req: Request, order_id: str | None, code: str,
                      message: str, status: str = P.ORD_REJECTED) -> None:
        """OrderCancelReject 9 for an F or G."""
        m = P.new_message(P.ORDER_CANCEL_REJECT)
        m.append_pair(P.ORDER_ID, order_id or "NONE")
        m.append_pair(P.CL_ORD_ID, req.clordid or "NONE")
        m.append_pair(P.ORIG_CL_ORD_ID, req.orig_clordid or "NONE")
        m.append_pair(P.ORD_STATUS, status)
        m.append_pair(P.CXL_REJ_RESPONSE_TO, P.CXL_RESPONSE_REPLACE
                      if req.msg_type == P.ORDER_CANCEL_REPLACE else P.CXL_RESPONSE_CANCEL)
        m.append_pair(P.CXL_REJ_REASON, _CXL_REJ.get(code, P.CXL_OTHER))
        m.append_pair(P.TEXT, _text(code, message))
        st.send(m)

    # -- listener ---------------------------------------------------------------------------

    def __call__(self, cmd: Any, res: Result, ctx: Any) -> None:
        """``EngineHub`` listener: answer a FIX request, then report the events. Never raises
        (it runs inside the engine owner's publishing: a bug here must not stop the feed)."""
        try:
            subject = None
            if isinstance(ctx, Request):
                subject = self._answer(ctx, res)
            if res.error is None:
                self._walk(res.events, subject)
        except Exception:
            log.exception("fix reports failed for a result")

    def _answer(self, req: Request, res: Result) -> str | None:
        st = req.state
        if req.msg_type == P.NEW_ORDER_SINGLE:
            tr = req.tracked
            if res.error is not None:
                self.reject(st, tr, res.error.code, res.error.message)
                return None
            tr.order_id = res.order.order_id
            st.orders[tr.order_id] = tr
            st.by_clordid[tr.clordid] = tr.order_id
            self.owner[tr.order_id] = st
            st.send(self.report(st, tr, P.EXEC_NEW, ts=res.order.created_ts))
            return None
        order_id = res.order.order_id if res.order is not None else None
        if res.error is not None:
            self.cancel_reject(st, req, order_id or req.order_id, res.error.code,
                               res.error.message)
            return None
        prev = self.owner.get(order_id)
        tr = prev.orders.pop(order_id) if prev is not None else None  # (maybe another session)
        if tr is None:  # entered over REST: tracked from now on
            tr = tracked_from_view(res.old_order or res.order, req.orig_clordid or "")
        elif prev is not st:
            prev.by_clordid.pop(tr.clordid, None)
        st.orders[order_id] = tr
        self.owner[order_id] = st
        st.by_clordid.pop(tr.clordid, None)
        tr.clordid = req.clordid
        st.by_clordid[tr.clordid] = order_id
        if req.msg_type == P.ORDER_CANCEL_REQUEST:
            st.send(self.report(st, tr, P.EXEC_CANCELED, orig=req.orig_clordid,
                                ts=res.order.last_update_ts))
            self._forget(tr)
            return order_id
        # Replaced: the new terms; CumQty as before this command (its fills are reported next)
        tr.price = res.order.yes_price
        tr.qty = res.order.fill_count + res.order.remaining_count
        st.send(self.report(st, tr, P.EXEC_REPLACED, orig=req.orig_clordid,
                            ts=res.order.last_update_ts))
        return None

    def _walk(self, events: list, subject: str | None) -> None:
        for ev in events:
            if type(ev) is Fill:
                st = self.owner.get(ev.order_id)
                if st is None:
                    continue
                tr = st.orders[ev.order_id]
                tr.cum += ev.count
                tr.cost += ev.count * ev.yes_price
                st.send(self.report(st, tr, P.EXEC_TRADE, fill=ev, ts=ev.ts))
                if not tr.leaves:
                    self._forget(tr)
            elif type(ev) is OrderUpdate:
                o = ev.order
                st = self.owner.get(o.order_id)
                if st is None or o.order_id == subject or o.status != "canceled":
                    continue
                tr = st.orders[o.order_id]
                st.send(self.report(st, tr, P.EXEC_CANCELED, ts=o.last_update_ts))
                self._forget(tr)

    def _forget(self, tr: Tracked) -> None:
        """Stop tracking a finished order (its ClOrdID stays known to its session)."""
        st = self.owner.pop(tr.order_id, None)
        if st is not None:
            st.orders.pop(tr.order_id, None)

    def resting(self, st: Sessionlike, symbol: str | None = None) -> list[str]:
        """Ids of ``st``'s open FIX orders (in ``symbol`` only, when given)."""
        return [oid for oid, tr in st.orders.items() if symbol is None or tr.symbol == symbol]
