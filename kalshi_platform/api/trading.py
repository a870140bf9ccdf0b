"""Authenticated trading calls (issue 13 §6; docs/trading-api.md §4.1): one code path for
Kalshi (demo by default) and the local sim (``base_url=http://127.0.0.1:PORT/trade-api/v2``).

Order entry uses the V2 paths Kalshi's current SDK uses (``/portfolio/events/orders…``:
create, amend, decrease, cancel, batches); reads use the V1 paths (``/portfolio/orders``,
``/fills``, ``/positions``, ``/balance``, ``/settlements``, queue positions, order groups).
Every request is signed (:class:`~kalshi_platform.api.auth.Signer`, §2 of
docs/kalshi-api.md). Reads go through :class:`~kalshi_platform.api.rest.RestClient` (its
token bucket, retries and cursor pagination). Writes are **not** retried after a transport
error or a 5xx (the order may have reached the exchange: look it up by ``client_order_id``);
only a 429 (refused before processing) is retried with the client's backoff.

Units in: prices integer micro-dollars (``560000`` = $0.56) on the side's own scale as in
Kalshi's V1 ``yes_price``/``no_price``; counts integer centi-contracts (``100`` = 1
contract), as everywhere in the platform (kalshi_platform/fixedpoint.py). Answers are
Kalshi's JSON objects (dicts) as sent.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import httpx
import orjson

from kalshi_platform.api.auth import Signer
from kalshi_platform.api.errors import error_text
from kalshi_platform.api.rest import NotFoundError, RestClient, RestError
from kalshi_platform.fixedpoint import ONE_DOLLAR, price_to_str, size_to_str

__all__ = ["TradingClient", "v2_side"]


def v2_side(side: str, action: str, price: int) -> tuple[str, int]:
    """V1 (side, action, price on the side's scale) → V2 (book side, YES-scale price):
    buy-yes/sell-no are bids, buy-no/sell-yes asks (docs/trading-api.md §4.1 "Direction
    vocabulary"). Raises ValueError for other values."""
    if side not in ("yes", "no") or action not in ("buy", "sell"):
        raise ValueError("side must be yes/no and action buy/sell")
    if not 0 < price < ONE_DOLLAR:
        raise ValueError("price must be strictly between $0 and $1 (micro-dollars)")
    bid = (side == "yes") == (action == "buy")
    return ("bid" if bid else "ask"), (price if side == "yes" else ONE_DOLLAR - price)


class TradingClient:
    """Signed trading client.

    Args:
        signer: the API key (required: every trading call is private).
        base_url: overrides ``env`` (e.g. the sim's REST URL).
        env: ``"demo"`` (default) or ``"prod"``.
        timeout_s: per request; max_429_retries: retries of a write answered 429.
        transport: an httpx transport (tests).
        **rest_kw: passed to the read :class:`RestClient` (bucket, retries, backoff).

    Methods raise :class:`~kalshi_platform.api.rest.RestError` (status attached; 404 as
    :class:`NotFoundError`) with Kalshi's error text, or ValueError for bad arguments.
    """

    def __init__(self, signer: Signer, *, base_url: str | None = None, env: str = "demo",
                 timeout_s: float = 10.0, max_429_retries: int = 5,
                 transport: httpx.AsyncBaseTransport | None = None, **rest_kw: Any) -> None:
        self.rest = RestClient(base_url, env=env, signer=signer, timeout_s=timeout_s,
                               transport=transport, **rest_kw)
        self.signer = signer
        self.base_url = self.rest.base_url
        self.max_429_retries = max_429_retries
        self._http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout_s),
                                       headers={"Accept": "application/json",
                                                "User-Agent": "kalshi-platform/0.1"})

    async def __aenter__(self) -> "TradingClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._http.aclose()
        await self.rest.aclose()

    # -- core ------------------------------------------------------------------------------

    async def write(self, method: str, path: str, body: dict | None = None) -> Any:
        """A signed POST/PUT/DELETE; the decoded JSON answer (``{}`` for 204)."""
        url = self.base_url + path
        sign_path = urlsplit(url).path
        content = orjson.dumps(body) if body is not None else None
        for attempt in range(self.max_429_retries + 1):
            if attempt:
                await asyncio.sleep(self.rest.backoff.delay(attempt - 1))
            headers = self.signer.headers(method, sign_path)
            if content is not None:
                headers["Content-Type"] = "application/json"
            try:
                resp = await self._http.request(method, url, content=content, headers=headers)
            except httpx.TransportError as e:
                raise RestError(f"{method} {sign_path}: {e or type(e).__name__} (the request "
                                "may have reached the exchange)", path=sign_path) from None
            if resp.status_code == 429 and attempt < self.max_429_retries:
                continue
            if resp.status_code == 204:
                return {}
            if resp.status_code < 300:
                return orjson.loads(resp.content) if resp.content else {}
            msg = error_text(resp.content)
            text = f"{method} {sign_path}: HTTP {resp.status_code}" + (f": {msg}" if msg else "")
            cls = NotFoundError if resp.status_code == 404 else RestError
            raise cls(text, status=resp.status_code, path=sign_path)
        raise RestError(f"{method} {sign_path}: still 429 after retries", status=429,
                        path=sign_path)

    async def _all(self, path: str, key: str, params: dict) -> AsyncIterator[dict]:
        async for page in self.rest.iter_pages(path, params, key):
            for obj in page:
                yield obj

    # -- order entry (V2) ------------------------------------------------------------------

    def order_body(self, ticker: str, side: str, action: str, count: int, price: int, *,
                   time_in_force: str = "good_till_canceled",
                   client_order_id: str | None = None, **extra: Any) -> dict:
        """A ``CreateOrderV2Request`` body (``client_order_id`` generated when absent);
        ``extra``: expiration_time, post_only, reduce_only, self_trade_prevention_type,
        order_group_id, cancel_order_on_pause, subaccount."""
        if type(count) is not int or count <= 0:
            raise ValueError("count must be a positive number of centi-contracts")
        book_side, yes_price = v2_side(side, action, price)
        body = {"ticker": ticker, "client_order_id": client_order_id or str(uuid.uuid4()),
                "side": book_side, "count": size_to_str(count), "price": price_to_str(yes_price),
                "time_in_force": time_in_force,
                "self_trade_prevention_type": extra.pop("self_trade_prevention_type",
                                                        "taker_at_cross")}
        body.update({k: v for k, v in extra.items() if v is not None})
        return body

    async def create_order(self, ticker: str, side: str, action: str, count: int, price: int,
                           **kw: Any) -> dict:
        """Place a limit order (``POST /portfolio/events/orders``) → ``{order_id,
        client_order_id, fill_count, remaining_count, average_fill_price, average_fee_paid,
        ts_ms}``. ``price`` µ$ on ``side``'s scale, ``count`` centi-contracts."""
        return await self.write("POST", "/portfolio/events/orders",
                                self.order_body(ticker, side, action, count, price, **kw))

    async def amend_order(self, order_id: str, ticker: str, side: str, action: str,
                          price: int, count: int, **kw: Any) -> dict:
        """Amend price and/or max fillable ``count`` (filled + remaining)."""
        book_side, yes_price = v2_side(side, action, price)
        body = {"ticker": ticker, "side": book_side, "price": price_to_str(yes_price),
                "count": size_to_str(count), **{k: v for k, v in kw.items() if v is not None}}
        return await self.write("POST", f"/portfolio/events/orders/{order_id}/amend", body)

    async def decrease_order(self, order_id: str, *, reduce_by: int | None = None,
                             reduce_to: int | None = None) -> dict:
        """Decrease by or to a count (centi-contracts; exactly one)."""
        if (reduce_by is None) == (reduce_to is None):
            raise ValueError("give exactly one of reduce_by and reduce_to")
        body = ({"reduce_by": size_to_str(reduce_by)} if reduce_by is not None
                else {"reduce_to": size_to_str(reduce_to)})
        return await self.write("POST", f"/portfolio/events/orders/{order_id}/decrease", body)

    async def cancel_order(self, order_id: str) -> dict:
        """Cancel → ``{order_id, client_order_id, reduced_by, ts_ms}``."""
        return await self.write("DELETE", f"/portfolio/events/orders/{order_id}")

    async def batch_create(self, orders: list[dict]) -> list[dict]:
        """Up to 20 bodies from :meth:`order_body` → per item answer or ``error``."""
        return (await self.write("POST", "/portfolio/events/orders/batched",
                                 {"orders": orders}))["orders"]

    async def batch_cancel(self, order_ids: list[str]) -> list[dict]:
        """Cancel up to 20 orders → per item ``reduced_by`` or ``error``."""
        return (await self.write("DELETE", "/portfolio/events/orders/batched",
                                 {"orders": [{"order_id": i} for i in order_ids]}))["orders"]

    # -- reads -----------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> dict:
        """``GET /portfolio/orders/{id}`` → the ``Order`` object."""
        return (await self.rest.get_json(f"/portfolio/orders/{order_id}"))["order"]

    def orders(self, **filters: Any) -> AsyncIterator[dict]:
        """Every order (ticker, event_ticker, status, min_ts, max_ts), all pages."""
        return self._all("/portfolio/orders", "orders", filters)

    def fills(self, **filters: Any) -> AsyncIterator[dict]:
        """Every fill (ticker, order_id, min_ts, max_ts), all pages."""
        return self._all("/portfolio/fills", "fills", filters)

    def settlements(self, **filters: Any) -> AsyncIterator[dict]:
        """Every settlement, all pages."""
        return self._all("/portfolio/settlements", "settlements", filters)

    async def positions(self, **filters: Any) -> dict:
        """``GET /portfolio/positions`` → ``{market_positions, event_positions}`` (all pages
        of market positions)."""
        out: dict[str, list] = {"market_positions": [], "event_positions": []}
        params = dict(filters)
        while True:
            body = await self.rest.get_json("/portfolio/positions", params)
            out["market_positions"] += body.get("market_positions") or []
            out["event_positions"] += body.get("event_positions") or []
            if not body.get("cursor"):
                return out
            params["cursor"] = body["cursor"]

    async def balance(self) -> dict:
        """``GET /portfolio/balance`` → ``{balance (cents), portfolio_value, updated_ts}``."""
        return await self.rest.get_json("/portfolio/balance")

    async def queue_position(self, order_id: str) -> dict:
        """``GET /portfolio/orders/{id}/queue_position`` → ``{queue_position_fp}``."""
        return await self.rest.get_json(f"/portfolio/orders/{order_id}/queue_position")

    # -- order groups ----------------------------------------------------------------------

    async def create_order_group(self, contracts_limit: int) -> str:
        """A group with a rolling-15 s ``contracts_limit`` (centi-contracts) → its id."""
        body = await self.write("POST", "/portfolio/order_groups/create",
                                {"contracts_limit_fp": size_to_str(contracts_limit)})
        return body["order_group_id"]

    async def order_group_action(self, group_id: str, action: str,
                                 contracts_limit: int | None = None) -> dict:
        """``reset``, ``trigger``, ``limit`` (with ``contracts_limit``) or ``delete``."""
        if action == "delete":
            return await self.write("DELETE", f"/portfolio/order_groups/{group_id}")
        if action not in ("reset", "trigger", "limit"):
            raise ValueError("action must be reset, trigger, limit or delete")
        body = ({"contracts_limit_fp": size_to_str(contracts_limit)}
                if action == "limit" and contracts_limit is not None else {})
        return await self.write("PUT", f"/portfolio/order_groups/{group_id}/{action}", body)
