"""FixServer: the asyncio TCP/TLS acceptor of the FIX gateway (docs/fix.md).

One server, any number of concurrent sessions (each a :class:`~.session.Connection` bound to
a :class:`~.session.SessionState`), all submitting to one :class:`~.engine.EngineHub`, so FIX
and REST users trade against the same books. Logons are verified against the REST key
pairs (``key_lookup(key_id) -> public key | None``); application messages draw on a
per-user write budget (``limiter.allow(user, True)``, the sim's REST ``RateLimiter``:
Kalshi counts FIX against the account's rate limit), an empty budget answers
BusinessMessageReject 380=8. Plain TCP binds only to loopback; elsewhere give a TLS
certificate and key.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from typing import Any, Callable

import simplefix

from kalshi_platform.exchange import BatchCancelOrders
from kalshi_platform.fix import protocol as P
from kalshi_platform.fix.auth import verify_logon
from kalshi_platform.fix.engine import EngineHub, HostAdapter
from kalshi_platform.fix.orders import cancel_order, new_order, replace_order
from kalshi_platform.fix.reports import Request, Router
from kalshi_platform.fix.session import Connection, SessionState

log = logging.getLogger(__name__)
APP_TYPES = (P.NEW_ORDER_SINGLE, P.ORDER_CANCEL_REQUEST, P.ORDER_CANCEL_REPLACE,
             P.MASS_CANCEL_REQUEST)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal or ``localhost``) is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from PEM files (TLS 1.2+). Raises OSError/ssl.SSLError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class FixServer:
    """The FIX acceptor.

    Args:
        engine: an ``EngineHub`` (or anything with ``exchange``, ``now()``,
            ``async submit(cmd, ctx)`` and ``add_listener``), or an ``Exchange`` /
            ``DurableExchange`` to wrap in one.
        key_lookup: key id → public key (``None`` = unknown key: logon refused).
        host, port: where to listen (port 0 = any free port, see :attr:`port`).
        ssl_context: TLS; required unless ``host`` is loopback (else ``ValueError``).
        limiter: ``allow(client, write) -> bool`` (e.g. ``sim.limits.RateLimiter``) or None.
        heartbeat_unit_s: seconds per HeartBtInt unit (1; tests shrink it).
        min_heartbeat: smallest HeartBtInt accepted (Kalshi: 3).
        max_skew_s: Logon SendingTime tolerance (s).
        logon_timeout_s: time allowed for the first message (s).
        on_logon: called with the user id after each good Logon (e.g. the sim's
            ``Users.ensure``, which funds a new key with the starting balance).
    """

    def __init__(self, engine: Any, key_lookup: Callable[[str], Any], *,
                 host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None, limiter: Any = None,
                 heartbeat_unit_s: float = 1.0, min_heartbeat: int = 3,
                 max_skew_s: float = 30.0, logon_timeout_s: float = 10.0,
                 on_logon: Callable[[str], None] | None = None) -> None:
        if ssl_context is None and not is_loopback(host):
            raise ValueError(f"plain TCP FIX is served on loopback only; give a TLS "
                             f"certificate and key to listen on {host}")
        self.hub = engine if hasattr(engine, "add_listener") else EngineHub(engine)
        self.key_lookup = key_lookup
        self.host, self._port, self.ssl = host, port, ssl_context
        self.limiter = limiter
        self.heartbeat_unit_s, self.min_heartbeat = heartbeat_unit_s, min_heartbeat
        self.max_skew_s, self.logon_timeout_s = max_skew_s, logon_timeout_s
        self.on_logon = on_logon
        self.router = Router()
        self.sessions: dict[tuple[str, str], SessionState] = {}
        self.connections: set[Connection] = set()
        self._server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is not None and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    async def start(self) -> None:
        """Listen. Raises OSError when the address cannot be bound."""
        self.hub.add_listener(self.router)
        self._server = await asyncio.start_server(self._accept, self.host, self._port,
                                                  ssl=self.ssl, backlog=1024)

    async def stop(self) -> None:
        """Stop listening and close every connection (CancelOrdersOnDisconnect applies)."""
        if self._server is not None:
            self._server.close()
        for c in list(self.connections):
            c.close_transport()  # the read loop ends, the connection cleans up itself
        for _ in range(200):
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        remove = getattr(self.hub, "remove_listener", None)
        if remove is not None:
            remove(self.router)

    async def __aenter__(self) -> "FixServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)

    # -- session callbacks ------------------------------------------------------------------

    def authenticate(self, msg: simplefix.FixMessage) -> tuple[str | None, str | None]:
        """``(key id, None)`` when the Logon is signed by a known key, else ``(None, why)``."""
        import time

        try:
            sender = P.text(msg, P.SENDER, True)
            target = P.text(msg, P.TARGET, True)
            sending = P.text(msg, P.SENDING_TIME, True)
            seq = P.text(msg, P.MSG_SEQ_NUM, True)
            sig = P.text(msg, P.RAW_DATA, True)
            sent_ns = P.parse_utc(P.SENDING_TIME, sending)
        except P.FixValueError as e:
            return None, str(e)
        if abs(time.time_ns() - sent_ns) > self.max_skew_s * 1e9:
            return None, f"SendingTime must be within {self.max_skew_s:g} s of server time"
        key = self.key_lookup(sender)
        if key is None:
            return None, f"unknown API key {sender}"
        if not verify_logon(key, sig, sending, seq, sender, target):
            return None, "logon signature does not verify"
        if self.on_logon is not None:
            self.on_logon(sender)
        return sender, None

    def state_for(self, user: str, target: str) -> SessionState:
        """The process-long state of session (user, target)."""
        st = self.sessions.get((user, target))
        if st is None:
            st = self.sessions[(user, target)] = SessionState(user, target)
        return st

    async def on_disconnect(self, st: SessionState) -> None:
        """CancelOrdersOnDisconnect: cancel the session's open orders (any disconnection,
        graceful Logout included, as Kalshi says)."""
        if st.cancel_on_disconnect and st.orders:
            await self._cancel_all(st, None)

    async def on_app(self, st: SessionState, msg: simplefix.FixMessage, conn: Connection) -> None:
        """One application message (in sequence)."""
        mtype = P.text(msg, P.MSG_TYPE)
        seq = P.integer(msg, P.MSG_SEQ_NUM)
        if mtype not in APP_TYPES:
            self._business_reject(st, seq, mtype, P.BIZ_UNSUPPORTED_TYPE,
                                  f"unsupported MsgType {mtype}")
            return
        if self.limiter is not None and not self.limiter.allow(st.user, True):
            self._business_reject(st, seq, mtype, P.BIZ_RATE_LIMIT, "rate limit exceeded",
                                  P.text(msg, P.CL_ORD_ID))
            return
        try:
            if mtype == P.NEW_ORDER_SINGLE:
                cmd, tr = new_order(msg, st.user, st.use_dollars, self.hub.now())
                await self.hub.submit(cmd, Request(st, mtype, tr.clordid, tracked=tr))
            elif mtype == P.MASS_CANCEL_REQUEST:
                await self._mass_cancel(st, msg)
            else:
                await self._cancel_or_replace(st, msg, mtype)
        except P.FixValueError as e:
            conn.session_reject(seq, mtype, e.reason, str(e), e.tag)

    async def _cancel_or_replace(self, st: SessionState, msg: simplefix.FixMessage,
                                 mtype: str) -> None:
        cl, orig = P.clordid(msg), P.text(msg, P.ORIG_CL_ORD_ID)
        oid = P.text(msg, P.ORDER_ID) or st.by_clordid.get(orig or "")
        ex = self.hub.exchange
        if oid is None and orig:
            found = ex.order_by_client_id(st.user, orig)
            oid = found.order_id if found is not None else None
        req = Request(st, mtype, cl, orig, order_id=oid)
        order = ex.get_order(oid, st.user) if oid else None
        if order is None:
            self.router.cancel_reject(st, req, oid, "order_not_found",
                                      f"no order for OrigClOrdID {orig!r}")
            return
        if mtype == P.ORDER_CANCEL_REQUEST:
            cmd = cancel_order(st.user, order.order_id)
        else:
            cmd = replace_order(msg, st.user, st.use_dollars, order)
        await self.hub.submit(cmd, req)

    async def _mass_cancel(self, st: SessionState, msg: simplefix.FixMessage) -> None:
        kind = P.text(msg, P.MASS_CANCEL_REQUEST_TYPE, True)
        symbol = P.text(msg, P.SYMBOL)
        if kind not in (P.MASS_BY_SYMBOL, P.MASS_ALL) or (kind == P.MASS_BY_SYMBOL and not symbol):
            raise P.FixValueError(P.MASS_CANCEL_REQUEST_TYPE,
                                  "MassCancelRequestType must be 1 (with Symbol) or 7")
        n = await self._cancel_all(st, symbol if kind == P.MASS_BY_SYMBOL else None)
        r = P.new_message(P.MASS_CANCEL_REPORT)
        r.append_pair(P.CL_ORD_ID, P.text(msg, P.CL_ORD_ID) or "NONE")
        r.append_pair(P.ORDER_ID, "NONE")
        r.append_pair(P.MASS_CANCEL_REQUEST_TYPE, kind)
        r.append_pair(P.MASS_CANCEL_RESPONSE, kind)
        r.append_pair(P.TOTAL_AFFECTED_ORDERS, n)
        if symbol:
            r.append_pair(P.SYMBOL, symbol)
        st.send(r)

    async def _cancel_all(self, st: SessionState, symbol: str | None) -> int:
        """Cancel the session's open orders (batches of 20); the number canceled."""
        ids, n = self.router.resting(st, symbol), 0
        for i in range(0, len(ids), 20):
            res = await self.hub.submit(BatchCancelOrders(user_id=st.user,
                                                          order_ids=ids[i:i + 20]))
            n += sum(1 for it in (res.items or []) if it.error is None)
        return n

    def _business_reject(self, st: SessionState, seq: int | None, mtype: str | None,
                         reason: str, why: str, ref_id: str | None = None) -> None:
        m = P.new_message(P.BUSINESS_REJECT)
        m.append_pair(P.REF_SEQ_NUM, seq or 0)
        m.append_pair(P.REF_MSG_TYPE, mtype or "")
        if ref_id:
            m.append_pair(P.BUSINESS_REJECT_REF_ID, ref_id)
        m.append_pair(P.BUSINESS_REJECT_REASON, reason)
        m.append_pair(P.TEXT, why)
        st.send(m)


def attach_to_sim(sim: Any, engine: Any, port: int, *, host: str | None = None,
                  tls_cert: str | None = None, tls_key: str | None = None,
                  **kw: Any) -> FixServer:
    """A :class:`FixServer` started and stopped with the sim's aiohttp app (its
    ``cleanup_ctx``; call before ``sim.start()``): logons checked against ``sim.auth``'s keys,
    rate limit shared with REST (``sim.limiter``). ``engine``: the sim's ``Trading`` (from
    ``attach_trading``: its ``EngineHost`` is shared, a new key is funded as over REST), an
    ``EngineHub``, or an ``Exchange``/``DurableExchange``. Raises ``ValueError`` (plain TCP
    off loopback) or OSError/ssl.SSLError (certificate files)."""
    ctx = tls_context(tls_cert, tls_key) if tls_cert else None

    def lookup(key_id: str) -> Any:
        auth = sim.auth  # read at logon: the sim may replace its authenticator on load
        return auth.keys.get(key_id, auth.default)

    limiter = sim.limiter if getattr(sim.limiter, "active", False) else None
    if hasattr(engine, "host") and hasattr(engine, "users"):  # sim.trading.Trading
        kw.setdefault("on_logon", engine.users.ensure)
        engine = HostAdapter(engine.host)
    fix = FixServer(engine, lookup, host=host or sim.host, port=port, ssl_context=ctx,
                    limiter=limiter, **kw)

    async def serve_fix(_app: Any):
        await fix.start()
        yield
        await fix.stop()

    sim.app.cleanup_ctx.append(serve_fix)
    return fix
