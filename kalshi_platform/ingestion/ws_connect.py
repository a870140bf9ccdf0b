"""Kalshi WebSocket connection: the URLs, the signed handshake (docs/kalshi-api.md §2.4, §7.1)
and the feed's errors; a failed handshake becomes a one-line :class:`FeedError` where retrying
cannot help, and :func:`_describe` words the others for the retry log.

Used by :class:`~kalshi_platform.ingestion.ws_client.KalshiWSClient`, which owns the retry loop.
"""

from __future__ import annotations

from typing import Mapping

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from kalshi_platform.api.errors import error_text

#: Kalshi WebSocket URLs by environment (docs/kalshi-api.md §1)
WS_URLS = {
    "prod": "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
    "demo": "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
}
#: largest accepted message, bytes (Kalshi's reported frame limit, §7.1)
MAX_SIZE = 64 << 20


class FeedError(RuntimeError):
    """The feed cannot run; the message is one line meant for the user."""


class FeedAuthError(FeedError):
    """The server rejected the handshake's credentials (HTTP 401/403)."""


class FeedConnectError(FeedError):
    """No connection could be made before the first success (``connect_attempts`` tries)."""


async def open_connection(url: str, headers: Mapping[str, str] | None, *, max_size: int,
                          open_timeout: float, ping_interval: float | None,
                          ever_connected: bool) -> ClientConnection:
    """Open one WebSocket connection to ``url`` with the handshake ``headers`` (``None`` =
    unsigned); ``max_size`` bytes, ``open_timeout`` / ``ping_interval`` seconds (the pong
    timeout equals the ping interval). Raises :class:`FeedAuthError` on HTTP 401/403,
    :class:`FeedConnectError` on an invalid URL or (before any connection succeeded,
    ``ever_connected`` false) HTTP 404; any other failure propagates for the caller to retry."""
    hdrs = dict(headers) if headers is not None else None
    try:
        return await connect(url, additional_headers=hdrs, max_size=max_size,
                             open_timeout=open_timeout, ping_interval=ping_interval,
                             ping_timeout=ping_interval, close_timeout=2.0)
    except InvalidStatus as e:
        code = e.response.status_code
        why = error_text(e.response.body)
        if code in (401, 403):
            raise FeedAuthError(
                f"{url} rejected the credentials (HTTP {code}"
                f"{': ' + why if why else ''}); check KALSHI_API_KEY_ID "
                "and KALSHI_PRIVATE_KEY_PATH") from None
        if code == 404 and not ever_connected:
            raise FeedConnectError(f"{url}: HTTP 404, not a Kalshi WebSocket URL") from None
        raise
    except InvalidURI as e:
        raise FeedConnectError(f"invalid WebSocket URL {url!r}: {e}") from None


def _describe(e: BaseException) -> str:
    """One line for a connection failure."""
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, ConnectionClosed):
        rcvd = e.rcvd
        return f"code {rcvd.code} {rcvd.reason}".strip() if rcvd else "no close frame"
    if isinstance(e, InvalidStatus):
        return f"HTTP {e.response.status_code}"
    if isinstance(e, InvalidHandshake):
        return f"handshake failed: {e}"
    if isinstance(e, OSError):
        return e.strerror or str(e) or type(e).__name__
    return f"{type(e).__name__}: {e}"
