"""The feed's client commands: ``subscribe``, ``unsubscribe``, ``update_subscription``,
``list_subscriptions`` (docs/kalshi-api.md §7.2), answered with Kalshi's acks and error codes
(§7.3). ``feed`` is the :class:`~kalshi_platform.sim.feed.MarketFeed`, ``c`` a connection."""

from __future__ import annotations

from typing import Any

import orjson

from kalshi_platform.sim.protocol import (
    E_ACTION_REQUIRED, E_CHANNELS, E_INVALID_PARAM, E_MARKET_NOT_FOUND, E_ONE_SID, E_PARAMS,
    E_SIDS, E_TICKER_REQUIRED, E_UNKNOWN_CHANNEL, E_UNKNOWN_CMD, E_UNKNOWN_SID,
    E_UNPROCESSABLE, E_UNSUPPORTED_ACTION, KNOWN_CHANNELS, UNFILTERED)


def dispatch(feed: Any, c: Any, text: str | bytes) -> None:
    """Parse one command frame and run its handler from ``feed.commands`` (name →
    ``handler(conn, id, params)``); malformed frames get error 1 (id 0)."""
    try:
        cmd = orjson.loads(text)
    except orjson.JSONDecodeError:
        feed.error(c, 0, E_UNPROCESSABLE)
        return
    if not isinstance(cmd, dict):
        feed.error(c, 0, E_UNPROCESSABLE)
        return
    cid = cmd.get("id", 0)
    if type(cid) is not int:
        feed.error(c, 0, E_UNPROCESSABLE, text="id must be an integer")
        return
    name = cmd.get("cmd")
    params = cmd.get("params")
    if name == "list_subscriptions":
        c.enqueue({"id": cid, "type": "ok",
                   "msg": [{"channel": s.channel, "sid": s.sid} for s in c.subs.values()]})
        return
    handler = feed.commands.get(name)
    if handler is None:
        feed.error(c, cid, E_UNKNOWN_CMD)
        return
    if not isinstance(params, dict):
        feed.error(c, cid, E_PARAMS)
        return
    handler(c, cid, params)


def _tickers(feed: Any, c: Any, cid: int, params: dict[str, Any]) -> list[str] | None:
    """Market tickers of a command (``market_ticker`` xor ``market_tickers``); ``None`` after
    sending an error. Unknown markets → error 16."""
    one = params.get("market_ticker")
    many = params.get("market_tickers")
    if one is not None and many is not None:
        feed.error(c, cid, E_INVALID_PARAM, text="market_ticker and market_tickers are exclusive")
        return None
    if one is not None:
        many = [one]
    if many is None:
        return []
    if not isinstance(many, list) or not all(isinstance(t, str) and t for t in many):
        feed.error(c, cid, E_INVALID_PARAM, text="market_tickers must be a list of strings")
        return None
    for t in many:
        if t not in feed.known:
            feed.error(c, cid, E_MARKET_NOT_FOUND, ticker=t)
            return None
    return list(dict.fromkeys(many))


def subscribe(feed: Any, c: Any, cid: int, params: dict[str, Any]) -> None:
    """``subscribe``: one sid per channel, acks, then the initial snapshots."""
    from kalshi_platform.sim.feed import Sub, frame

    channels = params.get("channels")
    if not isinstance(channels, list) or not channels:
        feed.error(c, cid, E_CHANNELS)
        return
    for ch in channels:
        if not isinstance(ch, str) or ch not in KNOWN_CHANNELS:
            feed.error(c, cid, E_UNKNOWN_CHANNEL, text=f"Unknown channel name: {ch}")
            return
    tickers = _tickers(feed, c, cid, params)
    if tickers is None:
        return
    if "orderbook_delta" in channels and not tickers:
        feed.error(c, cid, E_TICKER_REQUIRED)
        return
    use_yes = params.get("use_yes_price", False)
    if type(use_yes) is not bool:
        feed.error(c, cid, E_INVALID_PARAM, text="use_yes_price must be a boolean")
        return
    new = []
    for ch in dict.fromkeys(channels):
        sub = Sub(c.next_sid, ch, None if ch in UNFILTERED or not tickers else set(tickers),
                  use_yes)
        c.next_sid += 1
        c.subs[sub.sid] = sub
        new.append(sub)
        c.enqueue({"id": cid, "type": "subscribed", "msg": {"channel": ch, "sid": sub.sid}})
    for sub in new:
        hook = feed.snapshot_hooks.get(sub.channel)
        if sub.channel == "orderbook_delta":
            for t in tickers:
                feed.send_snapshot(c, sub, t, None)
        elif sub.channel == "ticker" and params.get("send_initial_snapshot") is True:
            for t in tickers or sorted(feed.last_ticker):
                if t in feed.last_ticker:
                    c.enqueue(frame("ticker", sub.sid, None, feed.last_ticker[t]))
        elif hook is not None:
            hook(c, sub, tickers)
    if not feed.started.is_set() and ("orderbook_delta" in channels or not feed.book_frames):
        feed.started.set()


def unsubscribe(feed: Any, c: Any, cid: int, params: dict[str, Any]) -> None:
    """``unsubscribe``: an ``unsubscribed`` frame per sid (consuming a seq on seq'd channels)."""
    sids = params.get("sids")
    if not isinstance(sids, list) or not sids:
        feed.error(c, cid, E_SIDS)
        return
    for sid in sids:
        if type(sid) is not int or sid not in c.subs:
            feed.error(c, cid, E_UNKNOWN_SID, text=f"Unknown subscription ID: {sid}")
            return
    for sid in sids:
        sub = c.subs.pop(sid)
        c.pending_resync.discard(sid)
        out: dict[str, Any] = {"id": cid, "sid": sid, "type": "unsubscribed"}
        seq = sub.next_seq()
        if seq is not None:
            out["seq"] = seq
        c.enqueue(out)
    if not c.pending_resync:
        c.resynced.set()


def _one_sid(feed: Any, c: Any, cid: int, params: dict[str, Any]) -> Any:
    """The subscription an ``update_subscription`` names (``sid`` or a one-element ``sids``),
    or ``None`` after sending error 12 or 7."""
    sid = params.get("sid")
    sids = params.get("sids")
    if sid is None and isinstance(sids, list) and len(sids) == 1:
        sid = sids[0]
    elif sid is None or sids is not None:  # none, several, or both forms
        feed.error(c, cid, E_ONE_SID)
        return None
    sub = c.subs.get(sid) if type(sid) is int else None
    if sub is None:
        feed.error(c, cid, E_UNKNOWN_SID, text=f"Unknown subscription ID: {sid}")
    return sub


def update(feed: Any, c: Any, cid: int, params: dict[str, Any]) -> None:
    """``update_subscription``: ``add_markets``, ``delete_markets`` or ``get_snapshot``."""
    sub = _one_sid(feed, c, cid, params)
    if sub is None:
        return
    action = params.get("action")
    if not action:
        feed.error(c, cid, E_ACTION_REQUIRED)
        return
    if action not in ("add_markets", "delete_markets", "get_snapshot") or (
            action == "get_snapshot" and sub.channel != "orderbook_delta") or (
            sub.channel in UNFILTERED):
        feed.error(c, cid, E_UNSUPPORTED_ACTION)
        return
    tickers = _tickers(feed, c, cid, params)
    if tickers is None:
        return
    if not tickers:
        feed.error(c, cid, E_TICKER_REQUIRED)
        return
    if action == "get_snapshot":
        _get_snapshot(feed, c, cid, sub, tickers)
        return
    added: list[str] = []
    if action == "add_markets":
        if sub.tickers is not None:
            added = [t for t in tickers if t not in sub.tickers]
            sub.tickers.update(added)
    else:
        if sub.tickers is None:
            feed.error(c, cid, E_UNSUPPORTED_ACTION)
            return
        sub.tickers.difference_update(tickers)
    ack: dict[str, Any] = {"id": cid, "sid": sub.sid, "type": "ok",
                           "msg": {"market_tickers": sorted(sub.tickers or ())}}
    seq = sub.next_seq()
    if seq is not None:
        ack["seq"] = seq
    c.enqueue(ack)
    if sub.channel == "orderbook_delta":
        for t in added:
            feed.send_snapshot(c, sub, t, None)


def _get_snapshot(feed: Any, c: Any, cid: int, sub: Any, tickers: list[str]) -> None:
    for t in tickers:
        if sub.tickers is not None and t not in sub.tickers:
            feed.error(c, cid, E_INVALID_PARAM, ticker=t,
                       text="market is not part of this subscription")
            continue
        feed.send_snapshot(c, sub, t, cid)
    if sub.sid in c.pending_resync:
        c.pending_resync.discard(sub.sid)
        if not c.pending_resync:
            c.resynced.set()
