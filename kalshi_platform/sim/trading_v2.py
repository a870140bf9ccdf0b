"""V2 order entry (``/portfolio/events/orders…``), the paths Kalshi's current SDK uses to
place, amend, decrease and cancel (SDK 3.34 ``OrdersApi.*_v2``; docs/trading-api.md §4.1).

V2 speaks the direction vocabulary: ``side`` is the book side (``bid`` = buy YES, ``ask`` =
sell YES), ``price`` a YES-scale dollar string, ``count`` a fixed-point count string, and
answers carry counts, average fill price and fee per contract and ``ts_ms`` instead of an
order object (a real answer: data fortuna_demo/orders__create_v2_taker_ioc.json). The sim
maps a V2 order onto the same engine command as V1 (``side=yes``, ``action`` buy/sell).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kalshi_platform.exchange import commands as C
from kalshi_platform.fixedpoint import FixedPointError, parse_price, size_to_str
from kalshi_platform.sim.trading_json import ms, v2_order
from kalshi_platform.sim.trading_rest import (BadRequest, answer, batch_cancel, batch_create,
                                              count_of, decrease_cmd, err_body,
                                              exchange_error, handler, ok, opt,
                                              order_options, read_json)


def _book_side(body: dict) -> str:
    s = body.get("side")
    if s not in ("bid", "ask"):
        raise BadRequest("side must be bid or ask")
    return "buy" if s == "bid" else "sell"


def _price(body: dict) -> int:
    p = body.get("price")
    if not isinstance(p, str):
        raise BadRequest("price is required (a dollar string on the YES scale)")
    try:
        return parse_price(p)
    except FixedPointError as e:
        raise BadRequest(str(e)) from None


def create_v2_cmd(user: str, body: dict) -> C.CreateOrder:
    """A ``CreateOrderV2Request`` body → CreateOrder."""
    if not isinstance(body.get("ticker"), str) or not body["ticker"]:
        raise BadRequest("ticker is required")
    tif = body.get("time_in_force")
    if not isinstance(tif, str):
        raise BadRequest("time_in_force is required")
    if tif == "immediate_or_cancel" and body.get("expiration_time") is not None:
        raise BadRequest("immediate_or_cancel cannot be combined with expiration_time")
    return C.CreateOrder(
        user_id=user, ticker=body["ticker"], side="yes", action=_book_side(body),
        count=count_of(body), yes_price=_price(body),
        client_order_id=opt(body, "client_order_id", str), time_in_force=tif,
        expiration_ts=opt(body, "expiration_time", int), **order_options(body))


class OrdersV2:
    """The V2 handlers over an EngineHost (``host``) and the user table (``users``)."""

    def __init__(self, host: Any, users: Any) -> None:
        self.host, self.users = host, users

    def routes(self, prefix: str) -> list[web.RouteDef]:
        """The aiohttp routes under ``prefix``."""
        p = prefix + "/portfolio/events/orders"
        return [web.post(p, self.create), web.delete(p, self.cancel_all),
                web.post(p + "/batched", self.batch_create),
                web.delete(p + "/batched", self.batch_cancel),
                web.delete(p + "/{order_id}", self.cancel),
                web.post(p + "/{order_id}/amend", self.amend),
                web.post(p + "/{order_id}/decrease", self.decrease)]

    @handler
    async def create(self, request: web.Request, user: str) -> web.Response:
        """``POST /portfolio/events/orders`` → 201 ``CreateOrderV2Response``."""
        return await answer(self.host, create_v2_cmd(user, await read_json(request)),
                            lambda res: v2_order(res.order, self.host.exchange.ts), 201)

    @handler
    async def amend(self, request: web.Request, user: str) -> web.Response:
        """``POST …/{order_id}/amend`` (ticker, side, price, count = max fillable)."""
        body = await read_json(request)
        if not isinstance(body.get("ticker"), str):
            raise BadRequest("ticker is required")
        cmd = C.AmendOrder(
            user_id=user, order_id=request.match_info["order_id"], ticker=body["ticker"],
            side="yes", action=_book_side(body), yes_price=_price(body),
            count=count_of(body, required=False),
            updated_client_order_id=opt(body, "updated_client_order_id", str))
        return await answer(self.host, cmd, lambda res: v2_order(res.order, self.host.exchange.ts))

    @handler
    async def decrease(self, request: web.Request, user: str) -> web.Response:
        """``POST …/{order_id}/decrease`` → ``{order_id, client_order_id, remaining_count,
        ts_ms}``."""
        body = await read_json(request)
        return await answer(self.host, decrease_cmd(user, request.match_info["order_id"], body),
                            lambda res: {"order_id": res.order.order_id,
                                         "client_order_id": res.order.client_order_id or "",
                                         "remaining_count": size_to_str(res.order.remaining_count),
                                         "ts_ms": ms(self.host.exchange.ts)})

    @handler
    async def cancel(self, request: web.Request, user: str) -> web.Response:
        """``DELETE …/{order_id}`` → ``{order_id, client_order_id, reduced_by, ts_ms}``."""
        oid = request.match_info["order_id"]
        before = self.host.exchange.get_order(oid, user)
        return await answer(self.host, C.CancelOrder(user_id=user, order_id=oid),
                            lambda res: {"order_id": oid,
                                         "client_order_id": res.order.client_order_id or "",
                                         "reduced_by": size_to_str(before.remaining_count
                                                                   if before else 0),
                                         "ts_ms": ms(self.host.exchange.ts)})

    @handler
    async def cancel_all(self, request: web.Request, user: str) -> web.StreamResponse:
        """``DELETE /portfolio/events/orders``: every resting order of the user → 204."""
        res = await self.host.submit(C.MassCancel(user_id=user))
        if res.error:
            return exchange_error(res.error)
        return web.Response(status=204)

    @handler
    async def batch_create(self, request: web.Request, user: str) -> web.Response:
        """``POST …/batched`` → 201 ``{"orders": [CreateOrderV2 answer | error]}``."""
        out = await batch_create(self.host, user, (await read_json(request)).get("orders"),
                                 create_v2_cmd)
        ts = self.host.exchange.ts
        rows = []
        for cid, r, bad in out:
            if r is not None and r.ok:
                rows.append({**v2_order(r.order, ts), "error": None})
            else:
                rows.append({"client_order_id": cid, "error": err_body(r, bad)})
        return ok({"orders": rows}, 201)

    @handler
    async def batch_cancel(self, request: web.Request, user: str) -> web.Response:
        """``DELETE …/batched`` (``orders: [{order_id}]``) → per item reduced_by/error."""
        body = await read_json(request)
        ids = [o.get("order_id") for o in body.get("orders") or [] if isinstance(o, dict)]
        out = await batch_cancel(self.host, user, ids)
        ts = ms(self.host.exchange.ts)
        return ok({"orders": [
            {"order_id": oid, "client_order_id": (r.order.client_order_id or "") if r.ok else "",
             "reduced_by": size_to_str(red), "ts_ms": ts if r.ok else None,
             "error": err_body(r, None)} for oid, r, red in out]})

