"""FIX session layer (docs/fix.md "Session"): signed logon, heartbeats and the TestRequest
timeout, sequence gaps and resend on KalshiRT, logout, CancelOrdersOnDisconnect, rate limit."""

from __future__ import annotations

import asyncio

import pytest
from fix_support import TICKER, logon, make_hub, report, rsa_key, run, serving, tag

from conftest import until
from kalshi_platform.fix import protocol as P
from kalshi_platform.fix.auth import prehash, sign_logon, verify_logon
from kalshi_platform.sim.limits import RateLimiter
from kalshi_platform.tools.fix_client import FixClient


def test_prehash_and_signature_roundtrip():
    assert prehash("20260101-00:00:00.000", "A", 1, "key", "KalshiNR") == \
        b"20260101-00:00:00.000\x01A\x011\x01key\x01KalshiNR"
    sig = sign_logon(rsa_key(), "20260101-00:00:00.000", 1, "key", "KalshiNR")
    pub = rsa_key().public_key()
    assert verify_logon(pub, sig, "20260101-00:00:00.000", 1, "key", "KalshiNR")
    assert not verify_logon(pub, sig, "20260101-00:00:00.000", 2, "key", "KalshiNR")
    assert not verify_logon(pub, sig, "20260101-00:00:00.000", 1, "key", "KalshiRT")
    assert not verify_logon(pub, "not base64!", "x", 1, "key", "KalshiNR")


def test_logon_good_and_refused():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            c = await logon(srv, "alice", heartbeat=5)
            reply = c.received[-1]
            assert (tag(reply, 35), tag(reply, P.HEARTBT_INT), tag(reply, P.RESET_SEQ_NUM)) == \
                ("A", "5", "Y")
            assert (tag(reply, P.SENDER), tag(reply, P.TARGET)) == ("KalshiNR", "alice")
            assert tag(reply, P.MSG_SEQ_NUM) == "1"
            with pytest.raises(ConnectionError, match="already logged on"):
                await logon(srv, "alice")
            await c.logout()
            refusals = [
                (dict(key=rsa_key(1)), "signature does not verify"),
                (dict(), "unknown API key"),  # user "mallory" has no key
                (dict(target="KalshiXX"), "TargetCompID"),
                (dict(target="KalshiNR", reset=False), "ResetSeqNumFlag must be Y"),
                (dict(heartbeat=1), "HeartBtInt must be >= 3"),
            ]
            for kw, why in refusals:
                user = "mallory" if not kw else "bob"
                with pytest.raises(ConnectionError, match=why):
                    await logon(srv, user, **kw)
            # a stale SendingTime is refused (signed correctly, 10 minutes old)
            c = FixClient("bob", rsa_key())
            c.reader, c.writer = await asyncio.open_connection("127.0.0.1", srv.port)
            c._reader_task = asyncio.create_task(c._read())
            m = P.new_message(P.LOGON)
            import time
            old = P.utc_timestamp(time.time_ns() - 600 * 10**9)
            c._header(m, 1, old)
            sig = sign_logon(rsa_key(), old, 1, "bob", "KalshiNR")
            for t, v in ((98, 0), (108, 30), (95, len(sig)), (96, sig), (1137, "9"), (141, "Y")):
                m.append_pair(t, v)
            c.writer.write(m.encode())
            out = await c.expect(("5",))
            assert "SendingTime" in tag(out, P.TEXT)
            await c.close()
    run(body())


def test_test_request_heartbeats_and_timeout():
    async def body():
        hub = make_hub()
        async with serving(hub, heartbeat_unit_s=0.05) as srv:  # HeartBtInt 3 = 0.15 s
            c = await logon(srv, "alice", heartbeat=3)
            c.send(P.TEST_REQUEST, [(P.TEST_REQ_ID, "ping-1")])
            hb = await c.expect(("0",))
            assert tag(hb, P.TEST_REQ_ID) == "ping-1"
            # the client goes silent but answers TestRequests: the session stays up
            tr = await c.expect(("1",), 3)
            assert tag(tr, P.TEST_REQ_ID)
            await c.expect(("0",), 3)  # a server heartbeat on outbound silence
            await c.logout()
            # a client that answers nothing: TestRequest, then Logout and close
            d = await logon(srv, "bob", heartbeat=3, answer_test_requests=False)
            await d.expect(("1",), 3)
            out = await d.expect(("5",), 3)
            assert "heartbeat timeout" in tag(out, P.TEXT)
            with pytest.raises(ConnectionError):
                await d.expect(("8",), 3)
            await until(lambda: ("bob", "KalshiNR") in srv.sessions
                        and srv.sessions[("bob", "KalshiNR")].conn is None)
    run(body())


def test_gap_on_retransmission_session_asks_resend_then_processes_in_order():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            c = await logon(srv, "alice", target="KalshiRT")
            expected = c.next_out  # 2
            c.next_out += 1  # message 2 is "lost"
            cl = c.new_order(TICKER, "1", 1, 30)  # seq 3
            rr = await c.expect(("2",))
            assert (tag(rr, P.BEGIN_SEQ_NO), tag(rr, P.END_SEQ_NO)) == (str(expected), "0")
            assert not hub.exchange.user_orders("alice")  # held until the gap is filled
            c.send(P.SEQUENCE_RESET, [(P.GAP_FILL, "Y"), (P.NEW_SEQ_NO, 3)], seq=2,
                   poss_dup=True)
            r = await report(c)
            assert (tag(r, P.EXEC_TYPE), tag(r, P.CL_ORD_ID)) == ("0", cl)
            assert len(hub.exchange.user_orders("alice")) == 1
            # a resent duplicate (PossDupFlag=Y, seq already seen) is ignored
            c.new_order(TICKER, "1", 1, 30, clordid=cl)
            c.received.clear()
            c.send(P.ORDER_CANCEL_REQUEST, [(P.CL_ORD_ID, "dup"), (P.ORIG_CL_ORD_ID, cl)],
                   seq=3, poss_dup=True)
            c.send(P.TEST_REQUEST, [(P.TEST_REQ_ID, "after-dup")])
            await c.expect(("0",))
            assert hub.exchange.get_order(tag(r, P.ORDER_ID)).status == "resting"
            # too low without PossDupFlag: fatal
            c.send(P.HEARTBEAT, seq=2)
            out = await c.expect(("5",))
            assert "MsgSeqNum too low" in tag(out, P.TEXT)
    run(body())


def test_gap_on_nr_session_is_accepted():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            c = await logon(srv, "alice")
            c.next_out += 5
            c.new_order(TICKER, "1", 1, 30)
            assert tag(await report(c), P.EXEC_TYPE) == "0"
            c.send(P.RESEND_REQUEST, [(P.BEGIN_SEQ_NO, 1), (P.END_SEQ_NO, 0)])
            gf = await c.expect(("4",))  # no retransmission on KalshiNR: one GapFill
            assert (tag(gf, P.GAP_FILL), tag(gf, P.MSG_SEQ_NUM), tag(gf, P.NEW_SEQ_NO)) == \
                ("Y", "1", "3")
    run(body())


def test_rt_session_survives_reconnect_and_resends_missed_reports():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a = await logon(srv, "alice", target="KalshiRT")
            cl = a.new_order(TICKER, "2", 2, 60)
            new = await report(a)
            seen = int(tag(new, P.MSG_SEQ_NUM))
            await a.close()  # disconnect (no CancelOrdersOnDisconnect)
            b = await logon(srv, "bob")
            b.new_order(TICKER, "1", 2, 60)  # fills alice's resting order while she is away
            assert tag(await report(b), P.EXEC_TYPE) == "0"
            a2 = FixClient("alice", rsa_key(), target="KalshiRT", reset=False,
                           next_out=a.next_out)
            reply = await a2.connect("127.0.0.1", srv.port)
            assert int(tag(reply, P.MSG_SEQ_NUM)) == seen + 2  # one report kept for her
            a2.send(P.RESEND_REQUEST, [(P.BEGIN_SEQ_NO, seen + 1), (P.END_SEQ_NO, 0)])
            again = await report(a2)
            assert (tag(again, P.EXEC_TYPE), tag(again, P.CL_ORD_ID)) == ("F", cl)
            assert tag(again, P.POSS_DUP) == "Y" and tag(again, P.ORIG_SENDING_TIME)
            assert tag(again, P.MSG_SEQ_NUM) == str(seen + 1)
            await a2.logout()
    run(body())


def test_logout_and_cancel_orders_on_disconnect():
    async def body():
        hub = make_hub(users=("alice", "bob", "carol"))
        async with serving(hub, users=("alice", "bob", "carol")) as srv:
            keep = await logon(srv, "alice")
            keep.new_order(TICKER, "1", 1, 20)
            await report(keep)
            await keep.close()  # no COD: stays
            cod = await logon(srv, "bob", cancel_on_disconnect=True)
            for p in (20, 21):
                cod.new_order(TICKER, "1", 1, p)
                await report(cod)
            await cod.close()  # abrupt disconnection
            await until(lambda: not hub.exchange.user_orders("bob", status="resting"),
                        what="bob's orders canceled")
            graceful = await logon(srv, "carol", cancel_on_disconnect=True)
            graceful.new_order(TICKER, "1", 1, 22)
            await report(graceful)
            out = await graceful.logout()
            assert tag(out, 35) == "5"
            await until(lambda: not hub.exchange.user_orders("carol", status="resting"),
                        what="carol's orders canceled")
            assert len(hub.exchange.user_orders("alice", status="resting")) == 1
            assert not hub.exchange.check_invariants()
    run(body())


def test_rate_limit_business_reject():
    async def body():
        hub = make_hub()
        now = [0.0]
        limiter = RateLimiter(write_per_s=2, clock=lambda: now[0])
        async with serving(hub, limiter=limiter) as srv:
            c = await logon(srv, "alice")
            cls = [c.new_order(TICKER, "1", 1, 20 + i) for i in range(3)]
            got = [await report(c) for _ in range(3)]
            assert [tag(m, 35) for m in got] == ["8", "8", "j"]
            assert (tag(got[2], P.BUSINESS_REJECT_REASON), tag(got[2], P.BUSINESS_REJECT_REF_ID),
                    tag(got[2], P.REF_MSG_TYPE)) == ("8", cls[2], "D")
            assert len(hub.exchange.user_orders("alice")) == 2
            now[0] = 1.0  # the bucket refills
            c.new_order(TICKER, "1", 1, 30)
            assert tag(await report(c), P.EXEC_TYPE) == "0"
    run(body())


def test_rt_logon_above_expected_seq_asks_resend():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a = await logon(srv, "alice", target="KalshiRT")
            await a.logout()  # the server now expects alice's message 3
            b = FixClient("alice", rsa_key(), target="KalshiRT", reset=False, next_out=7)
            await b.connect("127.0.0.1", srv.port)  # Logon is message 7: 3..6 are missing
            rr = await b.expect(("2",))
            assert (tag(rr, P.BEGIN_SEQ_NO), tag(rr, P.END_SEQ_NO)) == ("3", "0")
            b.send(P.SEQUENCE_RESET, [(P.GAP_FILL, "Y"), (P.NEW_SEQ_NO, 7)], seq=3,
                   poss_dup=True)
            b.new_order(TICKER, "1", 1, 30)  # message 8, in sequence after the gap fill
            assert tag(await report(b), P.EXEC_TYPE) == "0"
            assert srv.sessions[("alice", "KalshiRT")].next_in == 9
            assert not [m for m in b.received if tag(m, 35) == "3"]  # no session reject
    run(body())


def test_garbled_message_is_dropped():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            c = await logon(srv, "alice", target="KalshiRT")
            m = P.new_message(P.TEST_REQUEST)
            c._header(m, c.next_out)
            m.append_pair(P.TEST_REQ_ID, "garbled")
            raw = m.encode()
            c.writer.write(raw[:-4] + b"000\x01" if not raw.endswith(b"=000\x01")
                           else raw[:-4] + b"001\x01")
            c.next_out += 1
            c.send(P.TEST_REQUEST, [(P.TEST_REQ_ID, "good")])
            rr = await c.expect(("2",))  # the dropped message is a gap on KalshiRT
            assert tag(rr, P.BEGIN_SEQ_NO) == "2"
            assert not [x for x in c.received if tag(x, P.TEST_REQ_ID) == "garbled"]
    run(body())


def test_other_compids_after_logon_are_rejected_and_logged_out():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            c = await logon(srv, "alice")
            c.key_id = "bob"  # messages now claim to come from bob
            c.send(P.TEST_REQUEST, [(P.TEST_REQ_ID, "x")])
            rj = await c.expect(("3",))
            assert tag(rj, P.SESSION_REJECT_REASON) == "9"
            assert "CompID" in tag(await c.expect(("5",)), P.TEXT)
    run(body())
