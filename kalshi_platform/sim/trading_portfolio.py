"""Portfolio reads and order groups of the sim (docs/trading-api.md §4.1).

``GET /portfolio/fills``, ``/positions``, ``/balance``, ``/settlements``,
``/summary/total_resting_order_value``, ``/portfolio/orders/queue_positions`` and
``/portfolio/orders/{id}/queue_position``; ``/portfolio/order_groups`` (list, ``create``,
get, delete, ``reset``, ``trigger``, ``limit``). Lists are newest first with cursor
pagination (:func:`~kalshi_platform.sim.trading_rest.page`); reads answer from the engine's
state (every acknowledged command is applied; a read never waits for the WAL).
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from aiohttp import web

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange.views import money_to_str
from kalshi_platform.fixedpoint import size_to_str
from kalshi_platform.sim.trading_json import (balance_full, event_positions, fill_full,
                                              position_full, settlement_full)
from kalshi_platform.sim.trading_rest import (BadRequest, answer, count_of, error_response,
                                              exchange_error, handler, newest_page, ok, opt,
                                              page, read_json, ts_filter)


class Portfolio:
    """Reads and order groups over an EngineHost (``host``), the user table (``users``) and
    ``event_of`` (ticker → event ticker)."""

    def __init__(self, host: Any, users: Any, event_of: Callable[[str], str]) -> None:
        self.host, self.users, self.event_of = host, users, event_of

    def routes(self, prefix: str) -> list[web.RouteDef]:
        """The aiohttp routes under ``prefix`` (register before the ``/orders/{id}`` ones)."""
        p, g = prefix + "/portfolio", prefix + "/portfolio/order_groups"
        return [web.get(p + "/fills", self.fills), web.get(p + "/positions", self.positions),
                web.get(p + "/balance", self.balance),
                web.get(p + "/settlements", self.settlements),
                web.get(p + "/summary/total_resting_order_value", self.resting_value),
                web.get(p + "/orders/queue_positions", self.queue_positions),
                web.get(p + "/orders/{order_id}/queue_position", self.queue_position),
                web.get(g, self.groups), web.post(g + "/create", self.create_group),
                web.get(g + "/{group_id}", self.group),
                web.delete(g + "/{group_id}", self.delete_group),
                web.put(g + "/{group_id}/reset", self.reset_group),
                web.put(g + "/{group_id}/trigger", self.trigger_group),
                web.put(g + "/{group_id}/limit", self.limit_group)]

    # -- reads -----------------------------------------------------------------------------

    @handler
    async def fills(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/fills`` (ticker, order_id, min_ts, max_ts, limit, cursor)."""
        q = request.query
        window = ts_filter(q)
        tk, oid = q.get("ticker") or None, q.get("order_id") or None
        rows = (f for f in self.host.exchange.fills.get(user, ())
                if (tk is None or f.ticker == tk) and (oid is None or f.order_id == oid))
        chunk, cursor = newest_page(rows, q, window, lambda f: f.ts)
        return ok({"fills": [fill_full(f) for f in chunk], "cursor": cursor})

    @handler
    async def positions(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/positions`` (ticker, event_ticker, count_filter, limit, cursor)."""
        q = request.query
        tk, ev = q.get("ticker") or None, q.get("event_ticker") or None
        cf = set((q.get("count_filter") or "").split(",")) - {""}
        if cf - {"position", "total_traded"}:
            raise BadRequest("count_filter takes position and/or total_traded")
        rows = [p for p in self.host.exchange.positions(user)
                if (tk is None or p.ticker == tk) and (ev is None or self.event_of(p.ticker) == ev)
                and ("position" not in cf or p.position)
                and ("total_traded" not in cf or p.total_traded)]
        chunk, cursor = page(rows, q)
        return ok({"market_positions": [position_full(p) for p in chunk],
                   "event_positions": event_positions(chunk, self.event_of), "cursor": cursor})

    @handler
    async def balance(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/balance`` (cents, ``balance_dollars``, ``updated_ts``)."""
        ex = self.host.exchange
        return ok(balance_full(ex.balance(user), ex.ts))

    @handler
    async def settlements(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/settlements`` (ticker, event_ticker, min_ts, max_ts, cursor)."""
        q = request.query
        window = ts_filter(q)
        tk, ev = q.get("ticker") or None, q.get("event_ticker") or None
        rows = (s for s in self.host.exchange.settlements.get(user, ())
                if (tk is None or s.ticker == tk) and (ev is None or s.event_ticker == ev))
        chunk, cursor = newest_page(rows, q, window, lambda s: s.settled_ts)
        return ok({"settlements": [settlement_full(s) for s in chunk], "cursor": cursor})

    @handler
    async def resting_value(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/summary/total_resting_order_value``: the collateral reserved by
        the user's resting orders (cents)."""
        reserved = self.host.exchange.balance(user)["reserved"]
        return ok({"total_resting_order_value": reserved // 10**6,
                   "resting_order_value_breakdown": [
                       {"exchange_index": 0, "balance": money_to_str(reserved)}]})

    @handler
    async def queue_positions(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/orders/queue_positions`` (market_tickers, event_ticker): every
        resting order's contracts ahead of it at its price."""
        q = request.query
        tickers = set((q.get("market_tickers") or "").split(",")) - {""}
        ev = q.get("event_ticker") or None
        if not tickers and ev is None:
            raise BadRequest("give market_tickers or event_ticker")
        ex = self.host.exchange
        out = []
        for v in ex.user_orders(user, status="resting"):
            if (v.ticker in tickers) or (ev is not None and self.event_of(v.ticker) == ev):
                qp = ex.queue_position(v.order_id, user)
                out.append({"order_id": v.order_id, "market_ticker": v.ticker,
                            "queue_position": qp // 100, "queue_position_fp": size_to_str(qp)})
        return ok({"queue_positions": out})

    @handler
    async def queue_position(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/orders/{order_id}/queue_position``."""
        qp = self.host.exchange.queue_position(request.match_info["order_id"], user)
        if not isinstance(qp, int):
            return exchange_error(qp)
        return ok({"queue_position": qp // 100, "queue_position_fp": size_to_str(qp)})

    # -- order groups ----------------------------------------------------------------------

    def _group_json(self, g: Any) -> dict:
        return {"id": g.group_id, "order_group_id": g.group_id,
                "contracts_limit": g.limit // 100, "contracts_limit_fp": size_to_str(g.limit),
                "is_auto_cancel_enabled": g.auto_cancel, "exchange_index": 0}

    @handler
    async def groups(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/order_groups``."""
        gs = [g for g in self.host.exchange.groups.values() if g.user_id == user]
        return ok({"order_groups": [self._group_json(g) for g in gs]})

    @handler
    async def group(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/order_groups/{id}`` (with the ids of its resting orders)."""
        g = self.host.exchange.groups.get(request.match_info["group_id"])
        if g is None or g.user_id != user:
            return error_response(404, "order_group_not_found", "no such order group")
        return ok({**self._group_json(g), "orders": list(g.orders)})

    @handler
    async def create_group(self, request: web.Request, user: str) -> web.Response:
        """``POST /portfolio/order_groups/create`` (contracts_limit(_fp)) → 201 id."""
        body = await read_json(request)
        gid = str(uuid.uuid4())
        cmd = C.CreateOrderGroup(
            user_id=user, order_group_id=gid, contracts_limit=count_of(body, "contracts_limit"),
            is_auto_cancel_enabled=opt(body, "is_auto_cancel_enabled", bool, True))
        return await answer(self.host, cmd, lambda res: {"order_group_id": gid, "subaccount": 0,
                                                         "exchange_index": 0}, 201)

    async def _action(self, request: web.Request, user: str, action: str,
                      limit: int | None = None) -> web.Response:
        return await answer(self.host, C.OrderGroupAction(
            user_id=user, order_group_id=request.match_info["group_id"], action=action,
            contracts_limit=limit), lambda res: {})

    @handler
    async def delete_group(self, request: web.Request, user: str) -> web.Response:
        """``DELETE /portfolio/order_groups/{id}`` (cancels its orders)."""
        return await self._action(request, user, "delete")

    @handler
    async def reset_group(self, request: web.Request, user: str) -> web.Response:
        """``PUT …/{id}/reset``: clears the rolling window and the triggered state."""
        return await self._action(request, user, "reset")

    @handler
    async def trigger_group(self, request: web.Request, user: str) -> web.Response:
        """``PUT …/{id}/trigger``: cancels the group's orders, refuses new ones."""
        return await self._action(request, user, "trigger")

    @handler
    async def limit_group(self, request: web.Request, user: str) -> web.Response:
        """``PUT …/{id}/limit`` (contracts_limit(_fp))."""
        body = await read_json(request)
        return await self._action(request, user, "limit", count_of(body, "contracts_limit"))
