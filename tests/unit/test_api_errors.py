"""The one Kalshi error-body parser (``kalshi_platform.api.errors``): every shape Kalshi is
documented or observed to send (kalshi-api.md §3.10, §7.3), and the junk a proxy may send
instead, each read into one line; and the REST client reports it (the WS handshake's use is
in test_ws_client_layering.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kalshi_platform.api.errors import KalshiErrorBody, error_text, parse_error
from kalshi_platform.api.rest import NotFoundError, RestClient, RestError

WRAPPED = b'{"error": {"code": "not_found", "message": "market not found", "details": "NOPE"}}'


@pytest.mark.parametrize("body,want", [
    # live REST 4xx/5xx: wrapped
    (WRAPPED, KalshiErrorBody("not_found", "market not found", "NOPE")),
    (b'{"error": {"code": "authentication_error"}}', KalshiErrorBody("authentication_error")),
    # SDK ErrorResponse: flat, with the retired `service` field ignored
    ('{"code": "invalid_parameters", "message": "bad limit", "details": "", "service": "x"}',
     KalshiErrorBody("invalid_parameters", "bad limit")),
    # 429: a string
    (b'{"error": "too many requests"}', KalshiErrorBody(message="too many requests")),
    # WS error frame msg (int code, `msg`, market), as a dict and as a whole frame
    ({"code": 16, "msg": "Market not found", "market_ticker": "NOPE-1"},
     KalshiErrorBody("16", "Market not found", market_ticker="NOPE-1")),
    ('{"id": 127, "type": "error", "msg": {"code": 17, "msg": "Internal error"}}',
     KalshiErrorBody("17", "Internal error")),
    ({"code": 16, "msg": "Market not found", "market_id": "abc-123"},
     KalshiErrorBody("16", "Market not found", market_ticker="abc-123")),
    # not Kalshi's: a gateway page, plain text, a JSON string, nothing
    (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\n</html>\n",
     KalshiErrorBody(message="<html> <head><title>502 Bad Gateway</title></head> </html>")),
    (b"upstream connect error\n", KalshiErrorBody(message="upstream connect error")),
    (b'"oops"', KalshiErrorBody(message="oops")),
    (b"", KalshiErrorBody()),
    (None, KalshiErrorBody()),
    (b"   \n", KalshiErrorBody()),
    # JSON of an unknown shape: shown rather than dropped
    (b'{"detail": "no"}', KalshiErrorBody(message='{"detail":"no"}')),
    (b"[1, 2]", KalshiErrorBody(message="[1, 2]")),
])
def test_parse_error_variants(body, want):
    assert parse_error(body) == want


def test_error_text_is_one_line_in_kalshi_order():
    assert error_text(WRAPPED) == "not_found: market not found: NOPE"
    assert error_text({"code": 16, "msg": "Market not found", "market_ticker": "NOPE-1"}) == \
        "16: Market not found (NOPE-1)"
    assert error_text(b'{"error": "too many requests"}') == "too many requests"
    assert error_text(b"") == "" and not parse_error(b"")


def test_error_text_is_bounded_and_never_raises():
    long = ('{"error": {"code": "x", "message": "%s"}}' % ("m" * 5000)).encode()
    assert len(error_text(long)) <= 200 and error_text(long).endswith("…")
    assert len(error_text(b"\xff\xfe" + b"z" * 10_000, limit=50)) == 50  # not UTF-8, huge
    deep = b"[" * 5000 + b"]" * 5000  # beyond orjson's depth limit: text, not RecursionError
    assert error_text(deep, limit=10) == "[[[[[[[[[…"
    assert "\n" not in error_text(b'{"message": "a\\nb\\r\\nc"}')
    assert error_text({"error": {"code": None, "message": ["not", "text"]}}) != ""


def test_rest_client_reports_each_shape():
    bodies = {
        "/trade-api/v2/markets/A": (404, WRAPPED),
        "/trade-api/v2/markets/B": (400, b'{"code": "invalid_parameters", "message": "bad"}'),
        "/trade-api/v2/markets/C": (403, b"<html>forbidden</html>"),
    }

    def handler(req: httpx.Request) -> httpx.Response:
        st, body = bodies[req.url.path]
        return httpx.Response(st, content=body)

    async def go():
        async with RestClient("http://127.0.0.1:1/trade-api/v2",
                              transport=httpx.MockTransport(handler)) as c:
            out = []
            for t in "ABC":
                with pytest.raises(RestError) as ei:
                    await c.get_market(t)
                out.append(ei.value)
            return out

    a, b, c = asyncio.run(go())
    assert isinstance(a, NotFoundError)
    assert str(a) == "GET /trade-api/v2/markets/A: HTTP 404: not_found: market not found: NOPE"
    assert str(b) == "GET /trade-api/v2/markets/B: HTTP 400: invalid_parameters: bad"
    assert str(c).startswith("GET /trade-api/v2/markets/C: HTTP 403: <html>forbidden</html>")
