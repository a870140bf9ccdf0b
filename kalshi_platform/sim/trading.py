"""The sim as an exchange: Kalshi's trading API over the exchange core (issue 13 §4;
docs/exchange.md "Trading API on the sim").

:func:`attach_trading` puts :mod:`kalshi_platform.exchange` behind a
:class:`~kalshi_platform.sim.app.SimServer`, on the same port, signed like Kalshi:

* REST: V1 order entry (trading_rest.py), V2 (trading_v2.py), portfolio reads and order
  groups (trading_portfolio.py), and ``/admin`` (list, close, determine, settle a market;
  deposit) — all per API key: each key is one user, from ``--users FILE`` or created on first
  use with ``--starting-balance`` cents.
* WS: the public channels come from the engine's books (engine_feed.py); the private
  channels ``fill``, ``user_orders``, ``market_positions`` and ``order_group_updates`` go
  only to connections of the owning key, and a connection that did not identify itself (no
  ``KALSHI-ACCESS-KEY`` on the handshake; verified when keys are configured) is refused them.
* Durability: with ``wal_dir`` every accepted command is fsynced (group commit) before its
  answer; on start the engine recovers from the WAL.
* ``liquidity``: recorded books become a market participant's orders (trading_liquidity.py).
  Without it a recording's book frames, trades and tickers are not published (the
  engine's books are the only book data; lifecycle frames still go out).

Markets: every market the sim knows (recording, fixtures) is listed in the engine at start
(cent ticks unless its market object has ``price_ranges``; the series' ``fee_type`` and
``fee_multiplier`` when a fixture has them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from kalshi_platform.exchange import commands as C
from kalshi_platform.fixedpoint import FixedPointError, parse_price
from kalshi_platform.sim.engine_feed import EngineHost
from kalshi_platform.sim.market_data import event_of, recording_market, series_of
from kalshi_platform.sim.trading_portfolio import Portfolio
from kalshi_platform.sim.trading_rest import (BadRequest, OrdersV1, error_response,
                                              exchange_error, ok, read_json)
from kalshi_platform.sim.trading_v2 import OrdersV2

log = logging.getLogger(__name__)

PRIVATE_CHANNELS = ("fill", "user_orders", "market_positions", "order_group_updates")
E_AUTH = 9  # Kalshi WS error "Authentication required"


@dataclass(frozen=True)
class UserSpec:
    """One configured user: API key id, public key (PEM path) or None, starting cents."""

    key_id: str
    public_key: str | None
    balance_cents: int


def load_users(path: str | Path) -> list[UserSpec]:
    """Read ``--users FILE``: TOML (``[[user]] key_id, public_key, balance_cents``) or JSON
    (a list of such objects). Raises ValueError (one line) for a bad file."""
    p = Path(path)
    try:
        text = p.read_text()
        raw = tomllib.loads(text).get("user") if p.suffix == ".toml" else json.loads(text)
    except OSError as e:
        raise ValueError(f"--users {p}: {e.strerror or e}") from None
    except ValueError as e:
        raise ValueError(f"--users {p}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'}"
                         f" ({e})") from None
    if not isinstance(raw, list):
        raise ValueError(f"--users {p}: expected a list of users ([[user]] in TOML)")
    out = []
    for i, u in enumerate(raw):
        kid, bal = (u.get("key_id"), u.get("balance_cents", 0)) if isinstance(u, dict) else (None, 0)
        if not isinstance(kid, str) or not kid or type(bal) is not int or bal < 0:
            raise ValueError(f"--users {p}: user {i + 1} needs key_id and balance_cents >= 0")
        pk = u.get("public_key")
        if pk is not None:
            pk = str((p.parent / pk) if not Path(pk).is_absolute() else pk)
        out.append(UserSpec(kid, pk, bal))
    return out


class Users:
    """API key → user. A key seen for the first time is funded with ``starting_balance``
    cents (one Deposit through the engine, so the WAL replays it)."""

    def __init__(self, host: EngineHost, starting_balance: int) -> None:
        self.host = host
        self.starting_balance = starting_balance

    def user_of(self, request: web.Request) -> str:
        """The caller's user id (its key id); BadRequest without one."""
        from kalshi_platform.sim.app import KALSHI_KEY

        key = request.get(KALSHI_KEY)
        if not key:
            raise BadRequest("this endpoint needs a KALSHI-ACCESS-KEY (the user)")
        self.ensure(key)
        return key

    def ensure(self, key: str, cents: int | None = None) -> None:
        """Create (fund) the user ``key`` if the engine has no account for it."""
        if key not in self.host.exchange.accounts:
            amount = self.starting_balance if cents is None else cents
            if amount > 0:
                self.host.apply(C.Deposit(user_id=key, amount=amount))


def _drop_recorded_books(t: str, msg: dict) -> bool:
    """Playback sink without ``--liquidity``: recorded books/trades/tickers are consumed."""
    from kalshi_platform.sim.trading_liquidity import CONSUMED

    return t in CONSUMED


def _price_ranges(market: dict) -> list[tuple[int, int, int]] | None:
    pr = market.get("price_ranges")
    if not isinstance(pr, list) or not pr:
        return None
    try:
        return [(parse_price(r["start"]), parse_price(r["end"]), parse_price(r["step"]))
                for r in pr]
    except (KeyError, TypeError, FixedPointError):
        return None


class Trading:
    """The trading API of one sim (see the module doc); built by :func:`attach_trading`."""

    def __init__(self, sim: Any, *, wal_dir: str | Path | None, starting_balance: int,
                 users: list[UserSpec], liquidity: bool) -> None:
        self.sim = sim
        self.host = EngineHost(sim.feed, wal_dir, market_id_of=lambda t: (
            sim.playback.market_ids.get(t) if sim.playback is not None else None))
        self.users = Users(self.host, starting_balance)
        self.specs = users
        self._expirer: asyncio.Task | None = None
        self.liquidity = None
        if liquidity:
            from kalshi_platform.sim.trading_liquidity import Liquidity

            if sim.playback is None:
                raise ValueError("--liquidity needs --replay FILE")
            self.liquidity = Liquidity(self.host, lambda: sim.playback.plant)

    def attach(self) -> None:
        """Register routes, keys, the private-channel guard, the book source, start hook."""
        from kalshi_platform.sim.rest_market import REST_PREFIX

        sim = self.sim
        for u in self.specs:
            if u.public_key:
                sim.auth.add_key(u.key_id, u.public_key)
        portfolio = Portfolio(self.host, self.users, event_of)
        sim.add_routes(portfolio.routes(REST_PREFIX) +
                       OrdersV1(self.host, self.users, event_of).routes(REST_PREFIX) +
                       OrdersV2(self.host, self.users).routes(REST_PREFIX), auth_required=True)
        sim.add_routes(self.admin_routes(REST_PREFIX + "/admin"), auth_required=False)
        sim.book_source = self.host.book_of
        guarded = sim.feed.commands["subscribe"]
        sim.feed.commands["subscribe"] = lambda c, cid, p: self._subscribe(guarded, c, cid, p)
        # the engine is the only source of book data: recorded book frames, trades and
        # tickers drive the follower (--liquidity) or are not published at all
        sim.feed.playback_sink = (self.liquidity.on_frame if self.liquidity is not None
                                  else _drop_recorded_books)
        sim.before_done.append(self.host.drained)
        self.host.on_public.append(self._rest_upkeep)
        sim.app.on_startup.append(self._on_startup)
        sim.app.on_cleanup.append(self._on_cleanup)

    def _rest_upkeep(self, t: str, msg: dict) -> None:
        """Engine trades become REST trades (``/markets/trades``), lifecycle changes move the
        REST market's status (as the playback does for recorded ones)."""
        from kalshi_platform.sim.market_data import trade_from_ws

        if t == "trade":
            rt = trade_from_ws(msg)
            if rt is not None:
                self.sim.data.add_trade(rt)
        elif t == "market_lifecycle_v2":
            self.sim.data.apply_lifecycle(msg["market_ticker"], msg)

    def _subscribe(self, inner: Any, c: Any, cid: int, params: dict) -> None:
        chans = params.get("channels")
        if isinstance(chans, list) and c.key_id is None and any(
                ch in PRIVATE_CHANNELS for ch in chans):
            self.sim.feed.error(c, cid, E_AUTH, text="private channels need a connection "
                                "signed with an API key")
            return
        inner(c, cid, params)

    async def _on_startup(self, app: web.Application) -> None:
        self.list_markets(sorted(self.sim.known))
        for u in self.specs:
            self.users.ensure(u.key_id, u.balance_cents)
        if self.liquidity is not None:
            self.liquidity.setup()
        await self.host.drained()
        self._expirer = asyncio.get_running_loop().create_task(self.host.expire_loop())
        ex = self.host.exchange
        log.info("exchange: %d market(s), %d account(s)%s", len(ex.markets), len(ex.accounts),
                 f", WAL replayed {self.host.durable.replayed} record(s)"
                 if self.host.durable is not None else "")

    async def _on_cleanup(self, app: web.Application) -> None:
        if self._expirer is not None:
            self._expirer.cancel()
        await self.host.drained()
        self.host.close()

    def list_markets(self, tickers: list[str]) -> None:
        """AddMarket for every ticker the engine does not list yet."""
        data = self.sim.data
        for t in tickers:
            if t in self.host.exchange.markets:
                continue
            m = data.markets.get(t) or {}
            ev = m.get("event_ticker") or event_of(t)
            series = series_of(ev)
            s = data.series.get(series) or {}
            kw: dict[str, Any] = {}
            pr = _price_ranges(m)
            if pr:
                kw["price_ranges"] = pr
            if isinstance(s.get("fee_type"), str):
                kw["fee_type"] = s["fee_type"]
            if s.get("fee_multiplier") is not None:
                kw["fee_multiplier"] = str(s["fee_multiplier"])
            res = self.host.apply(C.AddMarket(ticker=t, event_ticker=ev, series_ticker=series,
                                              **kw))
            if res.error and kw:  # a fixture the engine refuses: fall back to cents
                res = self.host.apply(C.AddMarket(ticker=t, event_ticker=ev,
                                                  series_ticker=series))
            if res.error:
                log.warning("market %s not listed in the exchange: %s", t, res.error.message)

    # -- admin -------------------------------------------------------------------------------

    def admin_routes(self, p: str) -> list[web.RouteDef]:
        """``/admin`` REST: markets (GET list, POST add), ``/markets/{ticker}/close``,
        ``/determine`` (``{"result": yes|no|void}``), ``/settle``, ``/deposit``."""
        return [web.get(p + "/markets", self.admin_markets),
                web.post(p + "/markets", self.admin_add),
                web.post(p + "/markets/{ticker}/close", self.admin_close),
                web.post(p + "/markets/{ticker}/determine", self.admin_determine),
                web.post(p + "/markets/{ticker}/settle", self.admin_settle),
                web.post(p + "/deposit", self.admin_deposit)]

    async def admin_markets(self, request: web.Request) -> web.Response:
        """``GET /admin/markets``: every engine market with status and result."""
        return ok({"markets": [{"ticker": m.ticker, "status": m.status, "result": m.result}
                               for m in self.host.exchange.markets.values()]})

    async def admin_add(self, request: web.Request) -> web.Response:
        """``POST /admin/markets`` ``{"ticker"}``: list a new market (cent ticks)."""
        try:
            body = await read_json(request)
        except BadRequest as e:
            return error_response(400, "invalid_parameter", str(e))
        t = body.get("ticker")
        if not isinstance(t, str) or not t:
            return error_response(400, "invalid_parameter", "ticker is required")
        if t in self.host.exchange.markets:
            return error_response(409, "market_already_exists", f"market {t} exists")
        self.sim.data.add_market(recording_market(t, None, None, "admin"), replace=False)
        self.sim.known.add(t)
        self.list_markets([t])
        await self.host.drained()
        return ok({"ticker": t, "status": self.host.exchange.markets[t].status}, 201)

    async def _admin(self, cmd: Any) -> web.Response:
        res = await self.host.submit(cmd)
        if res.error:
            return exchange_error(res.error)
        m = self.host.exchange.markets.get(getattr(cmd, "ticker", "") or "")
        return ok({"ticker": m.ticker, "status": m.status, "result": m.result} if m else {})

    async def admin_close(self, request: web.Request) -> web.Response:
        """Close a market: its resting orders are canceled."""
        return await self._admin(C.CloseMarket(ticker=request.match_info["ticker"]))

    async def admin_determine(self, request: web.Request) -> web.Response:
        """Determine a closed market: ``{"result": "yes" | "no" | "void"}``."""
        try:
            body = await read_json(request)
        except BadRequest as e:
            return error_response(400, "invalid_parameter", str(e))
        result = body.get("result")
        if result not in ("yes", "no", "void"):
            return error_response(400, "invalid_parameter", "result must be yes, no or void")
        return await self._admin(C.DetermineMarket(ticker=request.match_info["ticker"],
                                                   result=result))

    async def admin_settle(self, request: web.Request) -> web.Response:
        """Settle a determined market: $1 per winning contract (void returns cost)."""
        return await self._admin(C.SettleMarket(ticker=request.match_info["ticker"]))

    async def admin_deposit(self, request: web.Request) -> web.Response:
        """``{"user_id", "amount"}`` cents (negative = withdraw)."""
        try:
            body = await read_json(request)
        except BadRequest as e:
            return error_response(400, "invalid_parameter", str(e))
        uid, amount = body.get("user_id"), body.get("amount")
        if not isinstance(uid, str) or type(amount) is not int:
            return error_response(400, "invalid_parameter", "give user_id and amount (cents)")
        return await self._admin(C.Deposit(user_id=uid, amount=amount))


def attach_trading(sim: Any, *, wal_dir: str | Path | None = None, starting_balance: int = 0,
                   users: list[UserSpec] | None = None, liquidity: bool = False) -> Trading:
    """Make ``sim`` (a SimServer, before ``start``) an exchange; returns the :class:`Trading`
    (``.host.exchange`` is the engine). Raises ValueError (``--liquidity`` without a
    recording) and OSError (an unreadable WAL directory)."""
    t = Trading(sim, wal_dir=wal_dir, starting_balance=starting_balance, users=users or [],
                liquidity=liquidity)
    t.attach()
    return t

