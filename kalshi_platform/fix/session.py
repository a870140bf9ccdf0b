"""One FIX session: logon, sequence numbers, heartbeats, resend, logout (docs/fix.md
"Session").

:class:`SessionState` lives as long as the process, keyed by (SenderCompID, TargetCompID):
the next sequence numbers both ways, the outbound messages kept for retransmission (KalshiRT
only) and the session's open orders. :class:`Connection` is one TCP/TLS connection bound to a
state after a good Logon.

Rules (FIXT.1.1 session protocol as Kalshi describes it, docs/trading-api.md §4.2):

* the first message must be a Logon signed as in :mod:`.auth`; otherwise Logout and close;
* ``KalshiNR`` needs ResetSeqNumFlag=Y and keeps no messages: a ResendRequest is answered with
  a SequenceReset-GapFill to the next number, an inbound gap is accepted as it is;
* ``KalshiRT`` keeps its outbound messages: a ResendRequest gets them again (PossDupFlag=Y,
  OrigSendingTime; session messages become one GapFill per run); an inbound gap (MsgSeqNum
  above the expected one, also on Logon) is answered with ResendRequest(expected, 0), later
  messages wait until the gap is filled (resent messages or a GapFill);
* a MsgSeqNum below the expected one without PossDupFlag=Y is fatal (Logout, close);
* heartbeat: a Heartbeat after HeartBtInt of outbound silence; after HeartBtInt (+20 %) of
  inbound silence a TestRequest, and when nothing comes for another HeartBtInt a Logout and
  close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import simplefix
import simplefix.errors

from kalshi_platform.fix import protocol as P
from kalshi_platform.fix.orders import Tracked

log = logging.getLogger(__name__)
MAX_STORE = 200_000  # messages kept per KalshiRT session for resend (oldest dropped)


class SessionState:
    """Per (SenderCompID, TargetCompID) for the process' life. ``send`` numbers, stamps,
    encodes, keeps (KalshiRT) and writes a message; while no connection is bound it is only
    kept (KalshiRT: the client recovers it with a ResendRequest after its next Logon)."""

    def __init__(self, user: str, target: str) -> None:
        self.user = user
        self.target = target
        self.rt = target == P.TARGET_RT
        self.next_out = 1
        self.next_in = 1
        self.store: dict[int, bytes] = {}
        self.orders: dict[str, Tracked] = {}
        self.by_clordid: dict[str, str] = {}
        self.use_dollars = False
        self.cancel_on_disconnect = False
        self.conn: Connection | None = None

    def reset(self) -> None:
        """ResetSeqNumFlag=Y: both directions start again at 1, nothing kept."""
        self.next_out = self.next_in = 1
        self.store.clear()

    def send(self, msg: simplefix.FixMessage) -> None:
        """Number (34), address (49/56), stamp (52) and send ``msg``."""
        seq = self.next_out
        self.next_out += 1
        msg.append_pair(P.SENDER, self.target, header=True)
        msg.append_pair(P.TARGET, self.user, header=True)
        msg.append_pair(P.MSG_SEQ_NUM, seq, header=True)
        msg.append_pair(P.SENDING_TIME, P.utc_timestamp(time.time_ns()), header=True)
        raw = msg.encode()
        if self.rt:
            self.store[seq] = raw
            if len(self.store) > MAX_STORE:
                self.store.pop(next(iter(self.store)))
        if self.conn is not None:
            self.conn.write(raw)


class Connection:
    """One accepted connection; ``run()`` returns when it is closed.

    ``server`` provides ``authenticate(logon) -> (user, None) | (None, why)``,
    ``state_for(user, target)``, ``heartbeat_unit_s``, ``min_heartbeat``,
    ``logon_timeout_s``, ``async on_app(state, msg)`` and ``async on_disconnect(state)``."""

    def __init__(self, server: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader, self.writer = reader, writer
        self.parser = P.new_parser()
        self.state: SessionState | None = None
        self.hb_s = 30.0
        self.last_in = self.last_out = time.monotonic()
        self.test_sent: float | None = None
        self.waiting: dict[int, simplefix.FixMessage] = {}  # after an inbound gap
        self.resend_asked = False
        self.waiting_logon: simplefix.FixMessage | None = None
        self._out: list[bytes] = []
        self.closing = False

    # -- I/O --------------------------------------------------------------------------------

    def write(self, raw: bytes) -> None:
        """Queue ``raw`` for the transport (no-op once closing). Messages written during one
        event-loop step go out in one ``transport.write`` (one syscall, not one a report)."""
        if not self.closing:
            if not self._out:
                asyncio.get_running_loop().call_soon(self.flush)
            self._out.append(raw)
            self.last_out = time.monotonic()

    def flush(self) -> None:
        """Hand the queued bytes to the transport."""
        if self._out:
            data, self._out = b"".join(self._out), []
            if not self.writer.is_closing():
                self.writer.write(data)

    def close_transport(self) -> None:
        """Flush what is queued, then close (the read loop of :meth:`run` then ends)."""
        self.flush()
        self.writer.close()

    async def _next(self, timeout: float | None) -> simplefix.FixMessage | None:
        """The next parsed message, ``None`` at EOF. Raises ``TimeoutError``."""
        while True:
            msg = self.parser.get_message()
            if msg is not None and msg.encode()[-4:-1] != msg.get(10):
                # garbled (CheckSum 10 does not match the bytes: simplefix recomputes it on
                # encode): dropped unseen, as FIXT says; a missing number becomes a gap
                log.info("fix: message with a bad CheckSum dropped")
                continue
            if msg is not None:
                self.last_in = time.monotonic()
                self.test_sent = None
                return msg
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                return None
            self.parser.append_buffer(data)

    async def run(self) -> None:
        """Logon, then messages until Logout, EOF, a fatal error or a heartbeat timeout."""
        hb_task = None
        try:
            logon = await self._next(self.server.logon_timeout_s)
            if logon is None or not self._logon(logon):
                return
            hb_task = asyncio.create_task(self._heartbeats())
            while not self.closing:
                msg = await self._next(None)
                if msg is None:
                    break
                await self._sequenced(msg)
                if self.writer.transport.get_write_buffer_size() > 1 << 20:
                    await self.writer.drain()
        except (TimeoutError, asyncio.TimeoutError, ConnectionError, ValueError,
                simplefix.errors.ParsingError) as e:
            log.info("fix connection ends: %s", e)
        except Exception:  # a bug or a failed WAL: this connection ends, the server goes on
            log.exception("fix connection failed")
        finally:
            self.closing = True
            if hb_task is not None:
                hb_task.cancel()
            await self._close()

    async def _close(self) -> None:
        st, self.state = self.state, None
        if st is not None and st.conn is self:
            st.conn = None
            await self.server.on_disconnect(st)
        try:
            self.close_transport()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (ConnectionError, asyncio.TimeoutError, TimeoutError, OSError):
            pass

    def _send_raw_logout(self, why: str, st: SessionState | None = None,
                         logon: simplefix.FixMessage | None = None) -> None:
        """Logout (with Text) then close; numbered on ``st`` when bound, else addressed back
        to the refused ``logon``'s CompIDs."""
        m = P.new_message(P.LOGOUT)
        m.append_pair(P.TEXT, why)
        if st is not None:
            st.send(m)
        else:
            back = (lambda t: P.text(logon, t) or "UNKNOWN") if logon is not None else (
                lambda t: "UNKNOWN")
            m.append_pair(P.SENDER, back(P.TARGET), header=True)
            m.append_pair(P.TARGET, back(P.SENDER), header=True)
            m.append_pair(P.MSG_SEQ_NUM, 1, header=True)
            m.append_pair(P.SENDING_TIME, P.utc_timestamp(time.time_ns()), header=True)
            self.write(m.encode())
        self.closing = True

    # -- logon ------------------------------------------------------------------------------

    def _logon(self, msg: simplefix.FixMessage) -> bool:
        """Check and answer a Logon; ``False`` (after a Logout) when refused."""
        user, why = self.server.authenticate(msg)
        target = P.text(msg, P.TARGET) or ""
        if why is None:
            why = self._logon_fields(msg, target)
        if why is not None:
            log.info("fix logon refused: %s", why)
            self._send_raw_logout(why, logon=msg)
            return False
        st = self.server.state_for(user, target)
        if st.conn is not None:
            self._send_raw_logout("session already logged on", logon=msg)
            return False
        seq = P.integer(msg, P.MSG_SEQ_NUM)
        reset = P.flag(msg, P.RESET_SEQ_NUM)
        if reset:
            st.reset()
        elif seq < st.next_in:
            self._send_raw_logout(f"MsgSeqNum too low, expecting {st.next_in} but received {seq}",
                                  logon=msg)
            return False
        st.conn, self.state = self, st
        st.use_dollars = P.flag(msg, P.USE_DOLLARS)
        st.cancel_on_disconnect = P.flag(msg, P.CANCEL_ORDERS_ON_DISCONNECT)
        reply = P.new_message(P.LOGON)
        reply.append_pair(P.ENCRYPT_METHOD, 0)
        reply.append_pair(P.HEARTBT_INT, P.integer(msg, P.HEARTBT_INT))
        reply.append_pair(P.DEFAULT_APPL_VER_ID, P.APPL_VER_FIX50SP2)
        if reset:
            reply.append_pair(P.RESET_SEQ_NUM, "Y")
        st.send(reply)
        if seq > st.next_in and st.rt:
            self.waiting[seq] = self.waiting_logon = msg  # its number is used after the gap
            self._ask_resend(st)
        else:
            st.next_in = seq + 1
        return True

    def _logon_fields(self, msg: simplefix.FixMessage, target: str) -> str | None:
        """Why the Logon's session fields are unacceptable, or ``None``."""
        try:
            if P.text(msg, 8) != P.BEGIN_STRING:
                return "BeginString must be FIXT.1.1"
            if P.text(msg, P.MSG_TYPE) != P.LOGON:
                return "first message must be a Logon"
            if target not in P.SESSION_TARGETS:
                return f"TargetCompID must be one of {', '.join(P.SESSION_TARGETS)}"
            if P.text(msg, P.DEFAULT_APPL_VER_ID) != P.APPL_VER_FIX50SP2:
                return "DefaultApplVerID must be 9 (FIX50SP2)"
            if P.integer(msg, P.ENCRYPT_METHOD, True) != 0:
                return "EncryptMethod must be 0"
            hb = P.integer(msg, P.HEARTBT_INT, True)
            if hb < self.server.min_heartbeat:
                return f"HeartBtInt must be >= {self.server.min_heartbeat}"
            if P.integer(msg, P.MSG_SEQ_NUM, True) < 1:
                return "MsgSeqNum must be >= 1"
            if target == P.TARGET_NR and not P.flag(msg, P.RESET_SEQ_NUM):
                return "ResetSeqNumFlag must be Y on KalshiNR"
        except P.FixValueError as e:
            return str(e)
        self.hb_s = hb * self.server.heartbeat_unit_s
        return None

    # -- sequencing -------------------------------------------------------------------------

    def _ask_resend(self, st: SessionState) -> None:
        if not self.resend_asked:
            m = P.new_message(P.RESEND_REQUEST)
            m.append_pair(P.BEGIN_SEQ_NO, st.next_in)
            m.append_pair(P.END_SEQ_NO, 0)
            st.send(m)
            self.resend_asked = True

    async def _sequenced(self, msg: simplefix.FixMessage) -> None:
        """Apply the sequence-number rules, then :meth:`_process` in order."""
        st = self.state
        try:
            seq = P.integer(msg, P.MSG_SEQ_NUM, True)
        except P.FixValueError as e:
            self._send_raw_logout(str(e), st)
            return
        mtype = P.text(msg, P.MSG_TYPE)
        if (P.text(msg, P.SENDER), P.text(msg, P.TARGET)) != (st.user, st.target):
            self.session_reject(seq, mtype, P.SR_COMPID, "CompID problem: SenderCompID/"
                                "TargetCompID differ from the Logon's")
            self._send_raw_logout("CompID problem", st)
            return
        if mtype == P.SEQUENCE_RESET and not P.flag(msg, P.GAP_FILL):
            st.next_in = max(st.next_in, P.integer(msg, P.NEW_SEQ_NO) or st.next_in)
            return
        if seq > st.next_in:
            if st.rt:
                self.waiting[seq] = msg
                self._ask_resend(st)
                return
            log.info("fix KalshiNR %s: gap %d..%d accepted", st.user, st.next_in, seq - 1)
            st.next_in = seq
        elif seq < st.next_in:
            if not P.flag(msg, P.POSS_DUP):
                self._send_raw_logout(
                    f"MsgSeqNum too low, expecting {st.next_in} but received {seq}", st)
            return
        await self._process(msg, mtype, seq)
        while self.waiting and not self.closing:
            for s in [s for s in self.waiting if s < st.next_in]:
                del self.waiting[s]
            nxt = self.waiting.pop(st.next_in, None)
            if nxt is None:
                break
            await self._process(nxt, P.text(nxt, P.MSG_TYPE), st.next_in)
        if not self.waiting:
            self.resend_asked = False

    async def _process(self, msg: simplefix.FixMessage, mtype: str | None, seq: int) -> None:
        st = self.state
        st.next_in = seq + 1
        if mtype == P.SEQUENCE_RESET:  # GapFill
            st.next_in = max(st.next_in, P.integer(msg, P.NEW_SEQ_NO) or st.next_in)
        elif mtype == P.HEARTBEAT or mtype == P.REJECT:
            pass
        elif mtype == P.TEST_REQUEST:
            m = P.new_message(P.HEARTBEAT)
            m.append_pair(P.TEST_REQ_ID, P.text(msg, P.TEST_REQ_ID) or "")
            st.send(m)
        elif mtype == P.RESEND_REQUEST:
            self._resend(st, P.integer(msg, P.BEGIN_SEQ_NO) or 1, P.integer(msg, P.END_SEQ_NO) or 0)
        elif mtype == P.LOGOUT:
            st.send(P.new_message(P.LOGOUT))
            self.closing = True
        elif mtype == P.LOGON:
            if msg is not self.waiting_logon:
                self.session_reject(seq, mtype, P.SR_BAD_MSGTYPE, "already logged on")
        else:
            await self.server.on_app(st, msg, self)

    def session_reject(self, seq: int, mtype: str | None, reason: str, why: str,
                       tag: int | None = None) -> None:
        """Reject 3 of message ``seq`` (SessionRejectReason ``reason``)."""
        m = P.new_message(P.REJECT)
        m.append_pair(P.REF_SEQ_NUM, seq)
        if tag is not None:
            m.append_pair(P.REF_TAG_ID, tag)
        if mtype:
            m.append_pair(P.REF_MSG_TYPE, mtype)
        m.append_pair(P.SESSION_REJECT_REASON, reason)
        m.append_pair(P.TEXT, why)
        self.state.send(m)

    def _resend(self, st: SessionState, begin: int, end: int) -> None:
        """Answer a ResendRequest: kept application messages again, GapFills elsewhere."""
        last = st.next_out - 1 if end == 0 else min(end, st.next_out - 1)
        gap_from = None
        for seq in range(max(begin, 1), last + 1):
            raw = st.store.get(seq) if st.rt else None
            msg = None
            if raw is not None:
                p = P.new_parser()
                p.append_buffer(raw)
                msg = p.get_message()
                if P.text(msg, P.MSG_TYPE) in P.ADMIN_TYPES:
                    msg = None
            if msg is None:
                gap_from = seq if gap_from is None else gap_from
                continue
            if gap_from is not None:
                self._gap_fill(st, gap_from, seq)
                gap_from = None
            orig = P.text(msg, P.SENDING_TIME)
            msg.remove(P.SENDING_TIME)
            msg.append_pair(P.POSS_DUP, "Y", header=True)
            msg.append_pair(P.SENDING_TIME, P.utc_timestamp(time.time_ns()), header=True)
            msg.append_pair(P.ORIG_SENDING_TIME, orig, header=True)
            self.write(msg.encode())
        if gap_from is not None:
            self._gap_fill(st, gap_from, last + 1)

    def _gap_fill(self, st: SessionState, seq: int, new_seq: int) -> None:
        m = P.new_message(P.SEQUENCE_RESET)
        m.append_pair(P.SENDER, st.target, header=True)
        m.append_pair(P.TARGET, st.user, header=True)
        m.append_pair(P.MSG_SEQ_NUM, seq, header=True)
        m.append_pair(P.POSS_DUP, "Y", header=True)
        m.append_pair(P.SENDING_TIME, P.utc_timestamp(time.time_ns()), header=True)
        m.append_pair(P.GAP_FILL, "Y")
        m.append_pair(P.NEW_SEQ_NO, new_seq)
        self.write(m.encode())

    # -- heartbeats -------------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        """Heartbeat on outbound silence; TestRequest, then Logout on inbound silence."""
        step = max(0.01, self.hb_s / 10)
        while not self.closing:
            await asyncio.sleep(step)
            st, now = self.state, time.monotonic()
            if st is None:
                return
            if now - self.last_out >= self.hb_s:
                st.send(P.new_message(P.HEARTBEAT))
            if self.test_sent is None and now - self.last_in > self.hb_s * 1.2:
                m = P.new_message(P.TEST_REQUEST)
                m.append_pair(P.TEST_REQ_ID, f"TEST-{int(now * 1000)}")
                st.send(m)
                self.test_sent = now
            elif self.test_sent is not None and now - self.test_sent > self.hb_s:
                self._send_raw_logout("heartbeat timeout: no answer to TestRequest", st)
                self.close_transport()  # the Logout goes out; run()'s read loop ends
                return
