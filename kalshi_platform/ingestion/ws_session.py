"""Bookkeeping of one Kalshi WebSocket connection: commands in flight, subscriptions, resyncs.

Used by :class:`~kalshi_platform.ingestion.ws_client.KalshiWSClient`; one :class:`Session`
per connection (sids and command ids are per connection, docs/kalshi-api.md §7.2–§7.3), dropped
when the connection ends. Commands are queued as JSON text for the client's writer task; no I/O
happens here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

__all__ = ["Subscription", "PendingResync", "Session", "MAX_SUBSCRIBE_RETRIES"]

#: subscribes re-sent on one connection after an error that named no market (17 internal,
#: 18 timeout, ...); beyond that the next reconnect subscribes again
MAX_SUBSCRIBE_RETRIES = 5


@dataclass
class Subscription:
    """An acknowledged subscription: ``sid`` (server's id), ``channel``, and the market set
    (``None`` = every market: the unfiltered lifecycle channels, §7.4)."""

    sid: int
    channel: str
    tickers: set[str] | None


@dataclass
class PendingResync:
    """A ``get_snapshot`` in flight: command ``cmd_id``, the ``tickers`` whose snapshots have
    not arrived yet, and the ``deadline`` (``time.monotonic()`` seconds) after which the client
    falls back to unsubscribe + subscribe."""

    cmd_id: int
    tickers: set[str]
    deadline: float


@dataclass
class Session:
    """State of one connection.

    ``out``: queue of command texts for the writer task. ``pending``: command id → the command
    dict sent (``{"id", "cmd", "params"?}``) until its ack or error. ``awaiting``: subscribe
    id → channels not yet acknowledged (one ``subscribed`` per channel). ``subs``: sid →
    :class:`Subscription`. ``resyncs``: sid → :class:`PendingResync`. ``initial``: ids of the
    connection's first subscribes (all acked = the subscription is complete).
    ``subscribe_retries``: subscribes re-sent after an error that named no market.
    """

    ws: ClientConnection
    out: asyncio.Queue = field(default_factory=asyncio.Queue)
    next_id: int = 1
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    awaiting: dict[int, set[str]] = field(default_factory=dict)
    subs: dict[int, Subscription] = field(default_factory=dict)
    resyncs: dict[int, PendingResync] = field(default_factory=dict)
    initial: set[int] = field(default_factory=set)
    subscribe_retries: int = 0

    def send(self, cmd: str, params: dict[str, Any] | None = None) -> int:
        """Queue command ``cmd`` with ``params`` (docs/kalshi-api.md §7.2); returns its id."""
        cid = self.next_id
        self.next_id += 1
        obj: dict[str, Any] = {"id": cid, "cmd": cmd}
        if params is not None:
            obj["params"] = params
        self.pending[cid] = obj
        if cmd == "subscribe" and params is not None:
            self.awaiting[cid] = set(params.get("channels") or ())
        self.out.put_nowait(orjson.dumps(obj).decode())
        return cid

    def update_markets(self, sid: int, tickers: list[str], action: str) -> int:
        """``update_subscription`` ``action`` (``add_markets``/``delete_markets``/
        ``get_snapshot``) of ``tickers`` on ``sid``; returns the command id."""
        return self.send("update_subscription", {"sids": [sid], "market_tickers": tickers,
                                                 "action": action})

    def acked(self, cid: int, channel: str) -> bool:
        """Record the ``subscribed`` ack of ``channel`` for subscribe ``cid``. Returns True when
        this completes the command and none of the connection's initial subscribes is still
        unacknowledged (the subscription is complete)."""
        left = self.awaiting.get(cid)
        if left is None:
            return False
        left.discard(channel)
        if left:
            return False
        del self.awaiting[cid]  # one `subscribed` per channel of the command: all acked
        self.pending.pop(cid, None)
        self.initial.discard(cid)
        return not self.initial

    def snapshot_arrived(self, sid: int, ticker: str) -> None:
        """A snapshot of ``ticker`` on ``sid``: one fewer awaited by a pending resync."""
        r = self.resyncs.get(sid)
        if r is not None:
            r.tickers.discard(ticker)
            if not r.tickers:
                del self.resyncs[sid]
