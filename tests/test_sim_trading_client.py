"""kalshi_platform/api/trading.py against a scripted transport (issue 13 §6): Kalshi demo by
default, every request signed over its path, V2 bodies in Kalshi's form (book side, YES-scale
price), a 429 retried, a 5xx or transport error never retried (the order may have reached
the exchange). The same client against the sim is in tests/test_sim_trading.py."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi_platform.api.auth import Signer, verify_signature
from kalshi_platform.api.rest import RestError
from kalshi_platform.api.trading import TradingClient, v2_side


def test_v2_side_maps_the_direction_vocabulary():
    assert v2_side("yes", "buy", 560_000) == ("bid", 560_000)
    assert v2_side("no", "sell", 440_000) == ("bid", 560_000)
    assert v2_side("no", "buy", 440_000) == ("ask", 560_000)
    assert v2_side("yes", "sell", 560_000) == ("ask", 560_000)
    with pytest.raises(ValueError):
        v2_side("yes", "buy", 1_000_000)


def test_signed_v2_writes_429_retried_5xx_not():
    key = ed25519.Ed25519PrivateKey.generate()
    seen: list[httpx.Request] = []
    script = [429, 201, 500]

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        ts = int(req.headers["KALSHI-ACCESS-TIMESTAMP"])
        assert verify_signature(key.public_key(), req.headers["KALSHI-ACCESS-SIGNATURE"], ts,
                                req.method, req.url.path)
        code = script.pop(0)
        return httpx.Response(code, json={"order_id": "o1", "fill_count": "0.00",
                                          "remaining_count": "1.00", "ts_ms": 1}
                              if code == 201 else {"error": {"code": "x", "message": "boom"}})

    async def main():
        tc = TradingClient(Signer("k1", key), transport=httpx.MockTransport(handle),
                           backoff_base_s=0.0)
        assert tc.base_url == "https://external-api.demo.kalshi.co/trade-api/v2"
        ans = await tc.create_order("KX-1", "no", "buy", 150, 440_000, client_order_id="c1")
        assert ans["order_id"] == "o1"
        body = json.loads(seen[-1].content)
        assert (seen[-1].url.path, body["side"], body["price"], body["count"]) == \
            ("/trade-api/v2/portfolio/events/orders", "ask", "0.5600", "1.50")
        with pytest.raises(RestError, match="HTTP 500: x: boom"):
            await tc.cancel_order("o1")
        await tc.aclose()

    asyncio.run(main())
    assert len(seen) == 3  # 429 + 201 for the create, one attempt only for the 500
    assert seen[2].method == "DELETE" and seen[2].url.path.endswith("/events/orders/o1")
