"""Kalshi WebSocket frames: each received frame to the taps, decoded, to the plant, then the
control frames (``subscribed``, ``ok``, ``unsubscribed``, ``error``) applied to the session
(docs/kalshi-api.md §7; docs/field-notes.md "Feed handling").

:class:`FramesMixin` is part of :class:`~kalshi_platform.ingestion.ws_client.KalshiWSClient`
(it uses the client's attributes and its subscription methods).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from kalshi_platform.api.errors import error_text
from kalshi_platform.ingestion.messages import (
    DecodeError,
    ErrorFrame,
    Ok,
    OrderbookDelta,
    OrderbookSnapshot,
    Subscribed,
    Unsubscribed,
    decode_json,
)
from kalshi_platform.ingestion.ws_connect import FeedError
from kalshi_platform.ingestion.ws_session import MAX_SUBSCRIBE_RETRIES, Session, Subscription
from kalshi_platform.ingestion.ws_subscriptions import UNFILTERED, FeedSubscribeError

log = logging.getLogger("kalshi_platform.ingestion.ws_client")  # one logger for the client


class FramesMixin:
    """Frame handling: methods of the client."""

    tickers: list[str]
    use_yes_price: bool
    connected: bool
    backoff: Any
    _sess: Session | None
    _cur_ns: int
    _last_frame: float
    _ever_subscribed: bool
    _fatal: FeedError | None
    _frame_observer: Callable[[int], None] | None
    plant: Any
    taps: list[Any]
    stats: Any

    def _on_raw(self, s: Session, raw: str | bytes) -> None:
        """One frame: taps, decode, plant, session bookkeeping; then the plant's events of
        this frame go to its stream consumers (``commit``: queue appends, no I/O)."""
        try:
            self._handle_raw(s, raw)
        finally:
            self.plant.commit()
            obs = self._frame_observer
            if obs is not None:
                obs(time.time_ns() - self._cur_ns)

    def set_frame_observer(self, fn: Callable[[int], None] | None) -> None:
        """Call ``fn(ns)`` after every frame with the time from its receipt to its events
        handed to the plant's stream (``commit``), in ns; ``None`` removes it. Used by the
        ``kalshi_processing_latency_seconds`` histogram (kalshi_platform/metrics.py)."""
        self._frame_observer = fn

    def _handle_raw(self, s: Session, raw: str | bytes) -> None:
        ns = time.time_ns()
        self._cur_ns = ns
        self._last_frame = time.monotonic()
        st = self.stats
        st.frames += 1
        st.bytes += len(raw)
        st.last_frame_ns = ns
        for tap in self.taps:
            tap.frame(raw, ns)
        try:
            f = decode_json(raw)
        except DecodeError:
            self.plant.process(raw, ns)  # quarantined there, with the exact text
            return
        self.plant.process_frame(f, ns, raw)
        tf = type(f)
        if tf is OrderbookDelta:
            return
        if tf is OrderbookSnapshot:
            s.snapshot_arrived(f.sid, f.msg.market_ticker)  # type: ignore[arg-type]
        elif tf is Subscribed:
            self._on_subscribed(s, f)
        elif tf is Ok:
            cmd = s.pending.pop(f.id, None) if f.id is not None else None
            if cmd is not None and f.sid in s.subs and isinstance(f.msg, dict):
                mt = f.msg.get("market_tickers")
                if isinstance(mt, list) and s.subs[f.sid].tickers is not None:
                    s.subs[f.sid].tickers = set(mt)
        elif tf is Unsubscribed:
            if f.id is not None:
                s.pending.pop(f.id, None)
            if f.sid is not None:
                s.subs.pop(f.sid, None)
                s.resyncs.pop(f.sid, None)
        elif tf is ErrorFrame:
            self._on_error(s, f)

    def _on_subscribed(self, s: Session, f: Subscribed) -> None:
        channel, sid = f.channel_sid
        cmd = s.pending.get(f.id) if f.id is not None else None
        if sid is None or channel is None:
            return
        params = (cmd or {}).get("params") or {}
        tickers = params.get("market_tickers")
        s.subs[sid] = Subscription(sid, channel, None if channel in UNFILTERED or not tickers
                           else set(tickers))
        if channel == "orderbook_delta":
            self.plant.set_use_yes_price(sid, bool(params.get("use_yes_price",
                                                              self.use_yes_price)))
        sub = s.subs[sid]
        if sub.tickers is not None:  # add/remove_markets may have run while this was in flight
            want = set(self.tickers)
            for action, ts in (("add_markets", want - sub.tickers),
                               ("delete_markets", sub.tickers - want)):
                if ts:
                    s.update_markets(sid, sorted(ts), action)
        if f.id is not None and s.acked(f.id, channel):  # type: ignore[arg-type]
            self._ever_subscribed = True

    def _on_error(self, s: Session, f: ErrorFrame) -> None:
        self.stats.errors += 1
        m = f.msg or {}
        text = f"kalshi error {error_text(m)}"
        cmd = s.pending.pop(f.id, None) if f.id is not None else None
        if cmd is None:
            log.warning("%s", text)
            return
        s.awaiting.pop(f.id, None)  # type: ignore[arg-type]
        name = cmd.get("cmd")
        params = cmd.get("params") or {}
        if name == "subscribe":
            if not self._ever_subscribed:
                self._fatal = FeedSubscribeError(f"subscription rejected: {text}")
                return
            bad = m.get("market_ticker")
            log.warning("subscribe failed: %s", text)
            cmd_tickers = params.get("market_tickers") or []
            if isinstance(bad, str) and bad in cmd_tickers:
                if bad in self.tickers:
                    self.tickers.remove(bad)
                rest = [t for t in cmd_tickers if t != bad]
                if rest:
                    self._subscribe_markets(s, rest, channels=params.get("channels"))
            elif s.subscribe_retries < MAX_SUBSCRIBE_RETRIES:
                # no market named (17 internal, 18 timeout, ...): retry the same command a few
                # times on this connection, backing off; beyond that the next reconnect does
                s.subscribe_retries += 1
                asyncio.get_running_loop().call_later(
                    self.backoff.delay(s.subscribe_retries),
                    lambda: self._sess is s and self.connected and s.send("subscribe", params))
            return
        if name == "update_subscription" and params.get("action") == "get_snapshot":
            sid = (params.get("sids") or [None])[0]
            log.warning("get_snapshot failed (%s); resubscribing sid %s", text, sid)
            if sid is not None:
                self._resubscribe(s, sid)
            return
        log.warning("%s (command %s)", text, name)
