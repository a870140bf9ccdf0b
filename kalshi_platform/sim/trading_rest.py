"""REST order entry of the sim (V1 paths ``/portfolio/orders…``; docs/trading-api.md §4.1).

Request parsing (Kalshi's ``CreateOrderRequest`` and friends, both price forms: integer
cents ``yes_price``/``no_price`` or ``yes_price_dollars``/``no_price_dollars``; counts as
``count`` contracts or ``count_fp`` strings, which must agree when both are sent) into
exchange commands, and the V1 handlers. Every command goes through
:meth:`EngineHost.submit <kalshi_platform.sim.engine_feed.EngineHost.submit>`, so it is
durable (WAL fsynced) before the answer is sent. Errors are Kalshi's body ``{"error":
{"code", "message", "details"}}`` with the engine's HTTP status (400/404/409).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import orjson
from aiohttp import web

from kalshi_platform.exchange import commands as C
from kalshi_platform.exchange.errors import ExchangeError
from kalshi_platform.fixedpoint import FixedPointError, parse_price, parse_size, size_to_str
from kalshi_platform.sim.trading_json import order_full


class BadRequest(ValueError):
    """A request the sim cannot turn into a command (one-line message, HTTP 400)."""


def error_response(status: int, code: str, message: str, details: str = "") -> web.Response:
    """Kalshi's error body with ``status``."""
    return web.Response(status=status, content_type="application/json", body=orjson.dumps(
        {"error": {"code": code, "message": message, "details": details}}))


def exchange_error(e: ExchangeError) -> web.Response:
    """An engine refusal as Kalshi's error body."""
    return error_response(e.http_status, e.code, e.message, e.details)


def ok(body: Any, status: int = 200) -> web.Response:
    """A JSON answer."""
    return web.Response(status=status, content_type="application/json", body=orjson.dumps(body))


async def read_json(request: web.Request) -> dict:
    """The request's JSON object body (``{}`` when empty); BadRequest otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def count_of(body: dict, name: str = "count", required: bool = True) -> int | None:
    """``name`` (whole contracts) and/or ``name_fp`` (fixed-point string) → centi-contracts."""
    n, fp = body.get(name), body.get(name + "_fp")
    out = None
    if n is not None:
        if type(n) is not int:
            if isinstance(n, str):  # V2 sends counts as fixed-point strings in `count`
                fp, n = (n if fp is None else fp), None
            else:
                raise BadRequest(f"{name} must be an integer number of contracts")
        else:
            out = n * 100
    if fp is not None:
        try:
            v = parse_size(fp)
        except FixedPointError as e:
            raise BadRequest(str(e)) from None
        if out is not None and out != v:
            raise BadRequest(f"{name} and {name}_fp disagree")
        out = v
    if out is None and required:
        raise BadRequest(f"{name} or {name}_fp is required")
    return out


def price_of(body: dict, required: bool = True) -> tuple[int | None, int | None]:
    """Exactly one of ``yes_price``/``no_price`` (cents) or ``*_dollars`` → (yes µ$, no µ$)."""
    found = []
    for side in ("yes", "no"):
        cents, dollars = body.get(f"{side}_price"), body.get(f"{side}_price_dollars")
        if cents is not None:
            if type(cents) is not int:
                raise BadRequest(f"{side}_price must be integer cents")
            found.append((side, cents * 10_000))
        if dollars is not None:
            try:
                found.append((side, parse_price(dollars)))
            except FixedPointError as e:
                raise BadRequest(str(e)) from None
    sides = {s for s, _ in found}
    if len(sides) > 1 or len({v for _, v in found}) > 1:
        raise BadRequest("give exactly one of yes_price, no_price (or their _dollars forms)")
    if not found:
        if required:
            raise BadRequest("a price is required: yes_price(_dollars) or no_price(_dollars)")
        return None, None
    side, v = found[0]
    return (v, None) if side == "yes" else (None, v)


def opt(body: dict, name: str, kind: type, default: Any = None) -> Any:
    """An optional field of type ``kind`` (BadRequest when present with another type)."""
    v = body.get(name, default)
    if v is None:
        return default
    if kind is int and type(v) is not int or kind is not int and not isinstance(v, kind):
        raise BadRequest(f"{name} must be {kind.__name__}")
    return v


def create_cmd(user: str, body: dict) -> C.CreateOrder:
    """A V1 ``CreateOrderRequest`` body → CreateOrder (BadRequest on bad fields)."""
    for f in ("ticker", "side", "action"):
        if not isinstance(body.get(f), str) or not body[f]:
            raise BadRequest(f"{f} is required")
    if body["side"] not in ("yes", "no") or body["action"] not in ("buy", "sell"):
        raise BadRequest("side must be yes or no, action buy or sell")
    yes, no = price_of(body)
    if body.get("sell_position_floor") not in (None, 0):
        raise BadRequest("sell_position_floor is deprecated; only 0 is accepted")
    return C.CreateOrder(
        user_id=user, ticker=body["ticker"], side=body["side"], action=body["action"],
        count=count_of(body), yes_price=yes, no_price=no,
        client_order_id=opt(body, "client_order_id", str),
        time_in_force=opt(body, "time_in_force", str, C.GTC),
        expiration_ts=opt(body, "expiration_ts", int),
        buy_max_cost=opt(body, "buy_max_cost", int), **order_options(body))


def order_options(body: dict) -> dict:
    """The optional flags a V1 and a V2 create body share, as CreateOrder keywords:
    ``post_only``, ``reduce_only``, ``cancel_order_on_pause`` (bool, default False),
    ``self_trade_prevention_type``, ``order_group_id`` (str or None), ``subaccount`` (int,
    default 0); BadRequest on a wrong type (docs/trading-api.md §4.1)."""
    return dict(post_only=opt(body, "post_only", bool, False),
                reduce_only=opt(body, "reduce_only", bool, False),
                self_trade_prevention_type=opt(body, "self_trade_prevention_type", str),
                order_group_id=opt(body, "order_group_id", str),
                cancel_order_on_pause=opt(body, "cancel_order_on_pause", bool, False),
                subaccount=opt(body, "subaccount", int, 0))


def page(items: list, query: Any, default_limit: int = 100, max_limit: int = 1000,
         cap: int = 0) -> tuple[list, str]:
    """Cursor pagination: ``(items of this page, next cursor or "")``; the cursor is the
    offset of the next item (opaque to clients)."""
    try:
        limit = int(query.get("limit") or default_limit)
        start = int(query.get("cursor") or 0)
    except ValueError:
        raise BadRequest("limit and cursor must be integers") from None
    if not 1 <= limit <= max_limit or start < 0:
        raise BadRequest(f"limit must be in 1..{max_limit}")
    if cap:
        limit = min(limit, cap)
    chunk = items[start:start + limit]
    nxt = start + len(chunk)
    return chunk, (str(nxt) if nxt < len(items) else "")


def newest_page(rows: Iterable, query: Any, window: tuple[int | None, int | None],
                ts_of: Callable[[Any], int]) -> tuple[list, str]:
    """``rows`` (oldest first) whose ``ts_of(row)`` (UTC ns) lies in ``window`` (``(lo, hi)``
    from :func:`ts_filter`, inclusive, None = open), newest first, as one :func:`page`."""
    lo, hi = window
    out = [r for r in rows
           if (lo is None or ts_of(r) >= lo) and (hi is None or ts_of(r) <= hi)]
    out.reverse()
    return page(out, query)


def ts_filter(query: Any) -> tuple[int | None, int | None]:
    """``min_ts``/``max_ts`` (UTC s) → ns bounds."""
    try:
        lo = int(query["min_ts"]) * 10**9 if query.get("min_ts") else None
        hi = int(query["max_ts"]) * 10**9 if query.get("max_ts") else None
    except ValueError:
        raise BadRequest("min_ts and max_ts must be integer Unix seconds") from None
    return lo, hi


async def answer(host: Any, cmd: Any, body: Callable[[Any], Any],
                 status: int = 200) -> web.Response:
    """Submit ``cmd`` to ``host`` (durable before it returns) and answer: the engine's refusal
    as Kalshi's error body, else ``body(result)`` as JSON with ``status``."""
    res = await host.submit(cmd)
    if res.error:
        return exchange_error(res.error)
    return ok(body(res), status)


def handler(fn: Callable) -> Callable:
    """Wrap a handler ``fn(self, request, user)``: the caller's user (created on first use)
    and BadRequest → 400."""
    async def wrapped(self, request: web.Request) -> web.StreamResponse:
        try:
            user = self.users.user_of(request)
            return await fn(self, request, user)
        except BadRequest as e:
            return error_response(400, "invalid_parameter", str(e))
    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


class OrdersV1:
    """V1 order entry and reads. ``host``: EngineHost; ``users``: the key → user table
    (:class:`~kalshi_platform.sim.trading.Users`); ``event_of``: ticker → event ticker."""

    def __init__(self, host: Any, users: Any, event_of: Callable[[str], str]) -> None:
        self.host, self.users, self.event_of = host, users, event_of

    def routes(self, prefix: str) -> list[web.RouteDef]:
        """The aiohttp routes under ``prefix`` (``/trade-api/v2``)."""
        p = prefix + "/portfolio/orders"
        return [web.post(p, self.create), web.get(p, self.list),
                web.post(p + "/batched", self.batch_create),
                web.delete(p + "/batched", self.batch_cancel),
                web.get(p + "/{order_id}", self.get),
                web.delete(p + "/{order_id}", self.cancel),
                web.post(p + "/{order_id}/amend", self.amend),
                web.post(p + "/{order_id}/decrease", self.decrease)]

    @handler
    async def create(self, request: web.Request, user: str) -> web.Response:
        """``POST /portfolio/orders`` → 201 ``{"order"}``."""
        return await answer(self.host, create_cmd(user, await read_json(request)),
                            lambda res: {"order": order_full(res.order)}, 201)

    @handler
    async def list(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/orders`` (ticker, event_ticker, status, min_ts, max_ts, limit,
        cursor), newest first."""
        q = request.query
        window = ts_filter(q)
        status = q.get("status") or None
        if status not in (None, "resting", "canceled", "executed"):
            raise BadRequest("status must be resting, canceled or executed")
        ev = q.get("event_ticker") or None
        rows = (v for v in self.host.exchange.user_orders(user, q.get("ticker") or None, status)
                if ev is None or self.event_of(v.ticker) == ev)
        chunk, cursor = newest_page(rows, q, window, lambda v: v.created_ts)
        return ok({"orders": [order_full(v) for v in chunk], "cursor": cursor})

    @handler
    async def get(self, request: web.Request, user: str) -> web.Response:
        """``GET /portfolio/orders/{order_id}``."""
        v = self.host.exchange.get_order(request.match_info["order_id"], user)
        if v is None:
            return error_response(404, "order_not_found", "no such order")
        return ok({"order": order_full(v)})

    @handler
    async def cancel(self, request: web.Request, user: str) -> web.Response:
        """``DELETE /portfolio/orders/{order_id}`` → the zeroed order and ``reduced_by``."""
        oid = request.match_info["order_id"]
        before = self.host.exchange.get_order(oid, user)
        reduced = before.remaining_count if before is not None else 0
        return await answer(self.host, C.CancelOrder(user_id=user, order_id=oid),
                            lambda res: {"order": order_full(res.order),
                                         "reduced_by": reduced // 100,
                                         "reduced_by_fp": size_to_str(reduced)})

    @handler
    async def amend(self, request: web.Request, user: str) -> web.Response:
        """``POST …/{order_id}/amend`` → ``{"old_order", "order"}``."""
        body = await read_json(request)
        for f in ("ticker", "side", "action"):
            if not isinstance(body.get(f), str):
                raise BadRequest(f"{f} is required")
        yes, no = price_of(body)
        cmd = C.AmendOrder(
            user_id=user, order_id=request.match_info["order_id"], ticker=body["ticker"],
            side=body["side"], action=body["action"], yes_price=yes, no_price=no,
            count=count_of(body, required=False),
            updated_client_order_id=opt(body, "updated_client_order_id", str))
        return await answer(self.host, cmd, lambda res: {"old_order": order_full(res.old_order),
                                                         "order": order_full(res.order)})

    @handler
    async def decrease(self, request: web.Request, user: str) -> web.Response:
        """``POST …/{order_id}/decrease`` (exactly one of reduce_by(_fp), reduce_to(_fp))."""
        body = await read_json(request)
        return await answer(self.host, decrease_cmd(user, request.match_info["order_id"], body),
                            lambda res: {"order": order_full(res.order)})

    @handler
    async def batch_create(self, request: web.Request, user: str) -> web.Response:
        """``POST /portfolio/orders/batched`` → per item ``{client_order_id, order, error}``."""
        items = (await read_json(request)).get("orders")
        out = await batch_create(self.host, user, items, create_cmd)
        return ok({"orders": [
            {"client_order_id": cid, "order": order_full(r.order) if r and r.ok else None,
             "error": err_body(r, e)} for cid, r, e in out]}, 201)

    @handler
    async def batch_cancel(self, request: web.Request, user: str) -> web.Response:
        """``DELETE /portfolio/orders/batched`` (``ids`` or ``orders: [{order_id}]``)."""
        body = await read_json(request)
        ids = body.get("ids") or [o.get("order_id") for o in body.get("orders") or []
                                  if isinstance(o, dict)]
        out = await batch_cancel(self.host, user, ids)
        return ok({"orders": [
            {"order_id": oid, "order": order_full(r.order) if r.ok else None,
             "reduced_by": red // 100, "reduced_by_fp": size_to_str(red),
             "error": err_body(r, None)} for oid, r, red in out]})


def decrease_cmd(user: str, order_id: str, body: dict) -> C.DecreaseOrder:
    """A decrease body (``reduce_by``/``reduce_to``, contracts or ``_fp``) → DecreaseOrder."""
    by, to = count_of(body, "reduce_by", False), count_of(body, "reduce_to", False)
    if (by is None) == (to is None):
        raise BadRequest("give exactly one of reduce_by and reduce_to")
    return C.DecreaseOrder(user_id=user, order_id=order_id, reduce_by=by, reduce_to=to)


def err_body(res: Any, bad: str | None) -> dict | None:
    """The per-item ``error`` of a batch answer (None when the item was accepted)."""
    if bad is not None:
        return {"code": "invalid_parameter", "message": bad, "details": ""}
    if res is not None and res.error is not None:
        e = res.error
        return {"code": e.code, "message": e.message, "details": e.details}
    return None


async def batch_create(host: Any, user: str, items: Any, parse: Callable) -> list:
    """Apply a batch of create bodies (≤ the engine's max_batch): ``[(client_order_id,
    result | None, parse error | None)]`` in request order; items that do not parse get an
    error and the rest go to the engine as one BatchCreateOrders."""
    if not isinstance(items, list) or not items:
        raise BadRequest("orders must be a non-empty list")
    if len(items) > host.exchange.cfg.max_batch:
        raise BadRequest(f"at most {host.exchange.cfg.max_batch} orders per batch")
    parsed: list = []
    for it in items:
        try:
            if not isinstance(it, dict):
                raise BadRequest("each order must be an object")
            parsed.append((it.get("client_order_id"), parse(user, it), None))
        except BadRequest as e:
            parsed.append((it.get("client_order_id") if isinstance(it, dict) else None,
                           None, str(e)))
    cmds = [c for _, c, _ in parsed if c is not None]
    results = iter([])
    if cmds:
        res = await host.submit(C.BatchCreateOrders(user_id=user, orders=cmds))
        if res.error:
            raise BadRequest(res.error.message)
        results = iter(res.items)
    return [(cid, next(results) if c is not None else None, e) for cid, c, e in parsed]


async def batch_cancel(host: Any, user: str, ids: Any) -> list:
    """Cancel up to max_batch orders: ``[(order_id, result, reduced_by centi)]``."""
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise BadRequest("give the order ids to cancel")
    if len(ids) > host.exchange.cfg.max_batch:
        raise BadRequest(f"at most {host.exchange.cfg.max_batch} orders per batch")
    before = {i: host.exchange.get_order(i, user) for i in ids}
    res = await host.submit(C.BatchCancelOrders(user_id=user, order_ids=ids))
    if res.error:
        raise BadRequest(res.error.message)
    return [(i, r, (before[i].remaining_count if before[i] is not None and r.ok else 0))
            for i, r in zip(ids, res.items)]
