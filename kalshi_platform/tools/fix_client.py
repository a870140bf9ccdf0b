"""``kalshi-platform fix-client``: a FIX initiator for the sim's gateway (and Kalshi's shape of
it), for manual use, tests and the FIX benchmark (docs/fix.md "Client").

:class:`FixClient` (asyncio) logs on with a signed Logon (kalshi_platform/fix/auth.py), numbers
its messages, answers TestRequests (unless told not to, for tests of the server's timeout)
and queues everything it receives; ``new_order``/``cancel``/``replace``/``mass_cancel`` send
D/F/G/q. The CLI sends the orders given as options and prints each message received as one
JSON line (``--json``) or one ``tag=value|`` line.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from kalshi_platform.tools.cli import app

_NAMES = {"8": "ExecutionReport", "9": "OrderCancelReject", "r": "OrderMassCancelReport",
          "j": "BusinessMessageReject", "3": "Reject", "5": "Logout", "A": "Logon",
          "0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "4": "SequenceReset"}


class FixClient:
    """One FIX session from the client side.

    Args:
        key_id: API key id (SenderCompID).
        private_key: RSA/Ed25519 private key object (``api.auth.load_private_key``).
        target: ``KalshiNR`` or ``KalshiRT``.
        heartbeat: HeartBtInt sent (server units).
        reset: ResetSeqNumFlag (required on KalshiNR).
        cancel_on_disconnect, use_dollars: Logon flags 8013 / 21005.
        answer_test_requests: answer TestRequest with Heartbeat (default yes).
    """

    def __init__(self, key_id: str, private_key: Any, *, target: str = "KalshiNR",
                 heartbeat: int = 30, reset: bool = True, cancel_on_disconnect: bool = False,
                 use_dollars: bool = False, answer_test_requests: bool = True,
                 next_out: int = 1) -> None:
        from kalshi_platform.fix import protocol as P

        self.P = P
        self.key_id, self.key, self.target = key_id, private_key, target
        self.heartbeat, self.reset = heartbeat, reset
        self.cod, self.use_dollars = cancel_on_disconnect, use_dollars
        self.answer_test_requests = answer_test_requests
        self.next_out = next_out
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.received: list = []
        self._ids = itertools.count(1)
        self._reader_task: asyncio.Task | None = None
        self.writer: asyncio.StreamWriter | None = None

    # -- connection -------------------------------------------------------------------------

    async def connect(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                      timeout: float = 10.0) -> Any:
        """Connect and log on; returns the server's Logon. Raises ``ConnectionError`` with
        the server's Logout text when refused, ``TimeoutError`` when nothing comes."""
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_context,
                                    server_hostname=host if ssl_context else None), timeout)
        self._reader_task = asyncio.create_task(self._read())
        self.send_logon()
        msg = await self.expect(("A", "5"), timeout)
        if self.P.text(msg, 35) == "5":
            raise ConnectionError(self.P.text(msg, 58) or "logon refused")
        return msg

    def send_logon(self, seq: int | None = None) -> None:
        """Send a signed Logon (with MsgSeqNum ``seq``, default the next)."""
        from kalshi_platform.fix.auth import sign_logon

        P = self.P
        if self.reset:
            self.next_out = 1
        m = P.new_message(P.LOGON)
        seq = self.next_out if seq is None else seq
        sending = P.utc_timestamp(time.time_ns())
        self._header(m, seq, sending)
        m.append_pair(P.ENCRYPT_METHOD, 0)
        m.append_pair(P.HEARTBT_INT, self.heartbeat)
        sig = sign_logon(self.key, sending, seq, self.key_id, self.target)
        m.append_pair(P.RAW_DATA_LENGTH, len(sig))
        m.append_pair(P.RAW_DATA, sig)
        m.append_pair(P.DEFAULT_APPL_VER_ID, P.APPL_VER_FIX50SP2)
        if self.reset:
            m.append_pair(P.RESET_SEQ_NUM, "Y")
        if self.cod:
            m.append_pair(P.CANCEL_ORDERS_ON_DISCONNECT, "Y")
        if self.use_dollars:
            m.append_pair(P.USE_DOLLARS, "Y")
        self.next_out = seq + 1
        self.writer.write(m.encode())

    def _header(self, m: Any, seq: int, sending: str | None = None) -> None:
        P = self.P
        m.append_pair(P.SENDER, self.key_id, header=True)
        m.append_pair(P.TARGET, self.target, header=True)
        m.append_pair(P.MSG_SEQ_NUM, seq, header=True)
        m.append_pair(P.SENDING_TIME, sending or P.utc_timestamp(time.time_ns()), header=True)

    async def _read(self) -> None:
        P = self.P
        parser = P.new_parser()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                parser.append_buffer(data)
                while (msg := parser.get_message()) is not None:
                    self.received.append(msg)
                    if P.text(msg, 35) == "1" and self.answer_test_requests:
                        self.send("0", [(P.TEST_REQ_ID, P.text(msg, P.TEST_REQ_ID) or "")])
                    self.inbox.put_nowait(msg)
        except (ConnectionError, OSError):
            pass
        self.inbox.put_nowait(None)

    async def close(self) -> None:
        """Close the connection without a Logout (a disconnection)."""
        if self.writer is not None:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 2)
            except (ConnectionError, OSError, asyncio.TimeoutError, TimeoutError):
                pass
        if self._reader_task is not None:
            await asyncio.wait_for(self._reader_task, 5)

    async def logout(self, timeout: float = 5.0) -> Any:
        """Send Logout, wait for the server's Logout, close."""
        self.send("5")
        msg = await self.expect(("5",), timeout)
        await self.close()
        return msg

    # -- messages ---------------------------------------------------------------------------

    def send(self, msg_type: str, fields: list[tuple[int, Any]] = (), *,
             seq: int | None = None, poss_dup: bool = False) -> int:
        """Send one message; returns its MsgSeqNum (``seq`` overrides, to make gaps)."""
        P = self.P
        m = P.new_message(msg_type)
        seq = self.next_out if seq is None else seq
        self._header(m, seq)
        if poss_dup:
            m.append_pair(P.POSS_DUP, "Y", header=True)
        for tag, value in fields:
            if value is not None:
                m.append_pair(tag, value)
        self.next_out = max(self.next_out, seq + 1)
        self.writer.write(m.encode())
        return seq

    async def expect(self, types: tuple[str, ...] = ("8",), timeout: float = 10.0) -> Any:
        """The next received message of one of ``types`` (others are skipped, still in
        :attr:`received`). Raises ``TimeoutError``, or ``ConnectionError`` at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no message of type {types} in {timeout} s")
            msg = await asyncio.wait_for(self.inbox.get(), left)
            if msg is None:
                self.inbox.put_nowait(None)
                raise ConnectionError("connection closed")
            if self.P.text(msg, 35) in types:
                return msg

    def new_clordid(self) -> str:
        """A fresh ClOrdID."""
        return f"{self.key_id[:20]}-{int(time.time() * 1000)}-{next(self._ids)}"

    def new_order(self, symbol: str, side: str, qty: Any, price: Any, *, tif: str = "1",
                  clordid: str | None = None, post_only: bool = False,
                  extra: list[tuple[int, Any]] = ()) -> str:
        """Send a NewOrderSingle; ``side`` "1" buy YES / "2" sell YES, ``price`` in the
        session's format (cents or dollars), ``tif`` TimeInForce. Returns the ClOrdID."""
        P = self.P
        cl = clordid or self.new_clordid()
        self.send(P.NEW_ORDER_SINGLE, [(P.CL_ORD_ID, cl), (P.SYMBOL, symbol), (P.SIDE, side),
                                       (P.ORDER_QTY, qty), (P.ORD_TYPE, "2"), (P.PRICE, price),
                                       (P.TIME_IN_FORCE, tif),
                                       (P.EXEC_INST, "6" if post_only else None), *extra])
        return cl

    def cancel(self, orig_clordid: str, symbol: str | None = None) -> str:
        """Send an OrderCancelRequest for ``orig_clordid``; returns the new ClOrdID."""
        P = self.P
        cl = self.new_clordid()
        self.send(P.ORDER_CANCEL_REQUEST, [(P.CL_ORD_ID, cl), (P.ORIG_CL_ORD_ID, orig_clordid),
                                           (P.SYMBOL, symbol)])
        return cl

    def replace(self, orig_clordid: str, price: Any, qty: Any = None,
                symbol: str | None = None) -> str:
        """Send an OrderCancelReplaceRequest (new Price, OrderQty); returns the new ClOrdID."""
        P = self.P
        cl = self.new_clordid()
        self.send(P.ORDER_CANCEL_REPLACE, [(P.CL_ORD_ID, cl), (P.ORIG_CL_ORD_ID, orig_clordid),
                                           (P.SYMBOL, symbol), (P.ORD_TYPE, "2"),
                                           (P.PRICE, price), (P.ORDER_QTY, qty)])
        return cl

    def mass_cancel(self, symbol: str | None = None) -> str:
        """Send an OrderMassCancelRequest (7 = all of the session's orders, 1 = ``symbol``)."""
        P = self.P
        cl = self.new_clordid()
        self.send(P.MASS_CANCEL_REQUEST, [(P.CL_ORD_ID, cl),
                                          (P.MASS_CANCEL_REQUEST_TYPE, "1" if symbol else "7"),
                                          (P.SYMBOL, symbol)])
        return cl


def message_dict(msg: Any) -> dict:
    """A received message as ``{"type": name, "tag": value, ...}`` (header and checksum
    fields dropped)."""
    out: dict = {"type": _NAMES.get(msg.get(35, 1).decode(), msg.get(35).decode())}
    for tag, value in msg:
        if tag not in (8, 9, 10, 35):
            out[str(tag)] = value.decode("utf-8", "replace")
    return out


def message_line(msg: Any) -> str:
    """A received message as one ``tag=value|`` line."""
    return "|".join(f"{t}={v.decode('utf-8', 'replace')}" for t, v in msg)


async def _run_cli(client: FixClient, host: str, port: int, ctx: Any, orders: list[str],
                   cancels: list[str], mass: bool, wait: float, as_json: bool) -> None:
    def show(m: Any) -> None:
        print(json.dumps(message_dict(m)) if as_json else message_line(m), flush=True)

    show(await client.connect(host, port, ctx))
    for spec in orders:
        symbol, side, qty, price, *rest = spec.split(":")
        client.new_order(symbol, {"buy": "1", "sell": "2"}.get(side, side), qty, price,
                         tif=rest[0] if rest else "1")
    for cl in cancels:
        client.cancel(cl)
    if mass:
        client.mass_cancel()
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            m = await client.expect(("8", "9", "r", "j", "3", "5"), max(0.01, end - time.monotonic()))
        except TimeoutError:
            break
        show(m)
    await client.logout()


@app.command("fix-client")
def fix_client(
    port: int = typer.Option(..., "--port", help="FIX port of the sim (`sim --fix-port`)."),
    host: str = typer.Option("127.0.0.1", "--host", help="FIX host."),
    key_id: str = typer.Option(..., "--key-id", help="API key id (SenderCompID)."),
    private_key: Path = typer.Option(..., "--private-key", help="PEM private key (the REST key pair)."),
    target: str = typer.Option("KalshiNR", "--target", help="TargetCompID: KalshiNR or KalshiRT."),
    order: Optional[list[str]] = typer.Option(None, "--order", help="SYMBOL:buy|sell:QTY:PRICE[:TIF] (price in cents, or dollars with --use-dollars; TIF 0/1/3/4/6). Repeatable."),
    cancel: Optional[list[str]] = typer.Option(None, "--cancel", help="ClOrdID to cancel (repeatable)."),
    mass_cancel: bool = typer.Option(False, "--mass-cancel", help="Cancel every order of the session."),
    wait: float = typer.Option(2.0, "--wait", help="Seconds to print what arrives before the Logout."),
    tls: bool = typer.Option(False, "--tls", help="Connect over TLS."),
    ca_file: Optional[Path] = typer.Option(None, "--ca-file", help="Trust this PEM (a self-signed sim certificate)."),
    use_dollars: bool = typer.Option(False, "--use-dollars", help="Logon UseDollars=Y: prices in dollars."),
    cancel_on_disconnect: bool = typer.Option(False, "--cancel-on-disconnect", help="Logon CancelOrdersOnDisconnect=Y."),
    as_json: bool = typer.Option(False, "--json", help="Print messages as JSON lines."),
) -> None:
    """Log on to a FIX gateway, send orders, print what comes back (one line per message)."""
    from kalshi_platform.api.auth import AuthError, load_private_key
    from kalshi_platform.tools.exitcodes import USAGE

    try:
        key = load_private_key(private_key)
    except AuthError as e:  # one line, exit 2: bad key file
        print(f"fix-client: {e}", file=sys.stderr)
        raise typer.Exit(USAGE)
    ctx = None
    if tls:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    client = FixClient(key_id, key, target=target, use_dollars=use_dollars,
                       cancel_on_disconnect=cancel_on_disconnect)
    try:
        asyncio.run(_run_cli(client, host, port, ctx, order or [], cancel or [], mass_cancel,
                             wait, as_json))
    except (ConnectionError, OSError, TimeoutError, ValueError) as e:
        print(f"fix-client: {e}", file=sys.stderr)
        raise typer.Exit(USAGE)


def attach_sim_fix(server: Any, trading: Any, port: int, cert: Optional[Path],
                   key: Optional[Path], fail: Any) -> Any:
    """``sim --fix-port``: the FIX gateway on the sim's engine (``trading`` from
    ``attach_sim_exchange``); bad options are one line through ``fail`` (exit 2)."""
    from kalshi_platform.fix.server import attach_to_sim

    if not 0 <= port <= 65535:
        fail("--fix-port must be in 0..65535")
    if (cert is None) != (key is None):
        fail("give both --fix-tls-cert and --fix-tls-key (or neither)")
    try:
        return attach_to_sim(server, trading, port, tls_cert=str(cert) if cert else None,
                             tls_key=str(key) if key else None)
    except (ValueError, OSError) as e:
        fail(f"FIX gateway: {e}")
