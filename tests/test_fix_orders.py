"""FIX order flow against the in-process exchange core (docs/fix.md "Orders", "Reports"):
reports are checked against the core's own state (orders, fills, positions, balances)."""

from __future__ import annotations

from fix_support import TICKER, TICKER2, logon, make_hub, report, run, serving, tag

from kalshi_platform.exchange import AddMarket, CancelOrder, CreateOrder, Deposit
from kalshi_platform.fix import EngineHub
from kalshi_platform.fix import protocol as P


def test_new_order_rests_then_cross_fills_both_sides():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a, b = await logon(srv, "alice"), await logon(srv, "bob")
            cl = a.new_order(TICKER, "2", 10, 40)  # alice sells 10 YES at 40c (rests)
            new = await report(a)
            assert (tag(new, P.EXEC_TYPE), tag(new, P.ORD_STATUS)) == ("0", "0")
            oid = tag(new, P.ORDER_ID)
            core = hub.exchange.get_order(oid)
            assert core.status == "resting" and core.client_order_id == cl
            assert (core.side, core.action, core.yes_price) == ("no", "buy", 400_000)
            assert hub.exchange.book_snapshot(TICKER)["no"] == [(600_000, 1000)]
            assert tag(new, P.LEAVES_QTY) == "10" and tag(new, P.PRICE) == "40"

            b.new_order(TICKER, "1", 4, 45, tif="3")  # bob buys 4 at up to 45c, IOC
            bn, bt = await report(b), await report(b)
            assert tag(bn, P.EXEC_TYPE) == "0"
            assert (tag(bt, P.EXEC_TYPE), tag(bt, P.ORD_STATUS)) == ("F", "2")
            assert (tag(bt, P.LAST_QTY), tag(bt, P.LAST_PX)) == ("4", "40")  # maker's price
            assert tag(bt, P.AGGRESSOR_INDICATOR) == "Y"
            fill = hub.exchange.fills["bob"][-1]
            at = await report(a)  # the maker's fill reaches alice's session
            assert (tag(at, P.EXEC_TYPE), tag(at, P.ORD_STATUS)) == ("F", "1")
            assert (tag(at, P.CUM_QTY), tag(at, P.LEAVES_QTY)) == ("4", "6")
            assert tag(at, P.AGGRESSOR_INDICATOR) == "N"
            assert tag(at, P.TRD_MATCH_ID) == tag(bt, P.TRD_MATCH_ID)
            assert tag(bt, P.TRD_MATCH_ID) == fill.trade_id
            # fee: 0.07 x 4 x 0.4 x 0.6 = $0.0672 -> MiscFeeAmt
            assert tag(bt, P.MISC_FEE_AMT) == "0.0672" and tag(bt, P.MISC_FEE_TYPE) == "4"
            pos = {p.ticker: p.position for p in hub.exchange.positions("bob")}
            assert pos[TICKER] == 400
            assert {p.ticker: p.position for p in hub.exchange.positions("alice")}[TICKER] == -400
            assert hub.exchange.get_order(oid).remaining_count == 600
            assert not hub.exchange.check_invariants()
            await a.logout()
            await b.logout()
    run(body())


def test_cancel_and_cancel_reject():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a = await logon(srv, "alice")
            cl = a.new_order(TICKER, "1", 5, 30)
            oid = tag(await report(a), P.ORDER_ID)
            ccl = a.cancel(cl)
            r = await report(a)
            assert (tag(r, 35), tag(r, P.EXEC_TYPE), tag(r, P.ORD_STATUS)) == ("8", "4", "4")
            assert (tag(r, P.CL_ORD_ID), tag(r, P.ORIG_CL_ORD_ID)) == (ccl, cl)
            assert tag(r, P.LEAVES_QTY) == "0"
            assert hub.exchange.get_order(oid).status == "canceled"
            a.cancel(cl)  # already canceled: too late
            r = await report(a)
            assert (tag(r, 35), tag(r, P.CXL_REJ_REASON), tag(r, P.CXL_REJ_RESPONSE_TO)) == \
                ("9", "0", "1")
            a.cancel("never-sent")
            r = await report(a)
            assert (tag(r, 35), tag(r, P.CXL_REJ_REASON)) == ("9", "1")
    run(body())


def test_replace_priority_rule():
    """Decreasing size keeps the queue place; a new price goes to the back (docs/exchange.md
    "Amend", Kalshi's amend rule)."""
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a, b = await logon(srv, "alice"), await logon(srv, "bob")
            first = a.new_order(TICKER, "1", 10, 30)
            oid1 = tag(await report(a), P.ORDER_ID)
            b.new_order(TICKER, "1", 10, 30)
            oid2 = tag(await report(b), P.ORDER_ID)
            assert hub.exchange.queue_position(oid1) == 0
            new_cl = a.replace(first, 30, 6)  # smaller: keeps priority
            r = await report(a)
            assert (tag(r, P.EXEC_TYPE), tag(r, P.ORDER_QTY), tag(r, P.CL_ORD_ID)) == \
                ("5", "6", new_cl)
            assert hub.exchange.queue_position(oid1) == 0
            assert hub.exchange.queue_position(oid2) == 600
            third = a.replace(new_cl, 31)  # new price, then back to 30: behind bob
            assert tag(await report(a), P.PRICE) == "31"
            a.replace(third, 30)
            r = await report(a)
            assert tag(r, P.EXEC_TYPE) == "5" and hub.exchange.get_order(oid1).yes_price == 300_000
            assert hub.exchange.queue_position(oid1) == 1000  # bob's 10 contracts ahead
            a.replace("nope", 30)
            r = await report(a)
            assert (tag(r, 35), tag(r, P.CXL_REJ_RESPONSE_TO)) == ("9", "2")
    run(body())


def test_replace_that_crosses_fills():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a, b = await logon(srv, "alice"), await logon(srv, "bob")
            a.new_order(TICKER, "2", 3, 50)
            await report(a)
            cl = b.new_order(TICKER, "1", 3, 40)
            await report(b)
            b.replace(cl, 50)
            rep, trade = await report(b), await report(b)
            assert tag(rep, P.EXEC_TYPE) == "5" and tag(rep, P.CUM_QTY) == "0"
            assert (tag(trade, P.EXEC_TYPE), tag(trade, P.ORD_STATUS), tag(trade, P.LAST_PX)) == \
                ("F", "2", "50")
            assert tag(await report(a), P.EXEC_TYPE) == "F"
    run(body())


def test_mass_cancel_session_orders_only():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a = await logon(srv, "alice")
            for t, p in ((TICKER, 20), (TICKER, 21), (TICKER2, 22)):
                a.new_order(t, "1", 1, p)
                await report(a)
            rest = hub.submit_now(CreateOrder(user_id="alice", ticker=TICKER, side="yes",
                                              action="buy", count=100, yes_price=100_000))
            a.mass_cancel(TICKER)
            got = [await report(a) for _ in range(3)]
            kinds = sorted(tag(m, 35) for m in got)
            assert kinds == ["8", "8", "r"]
            r = next(m for m in got if tag(m, 35) == "r")
            assert (tag(r, P.MASS_CANCEL_RESPONSE), tag(r, P.TOTAL_AFFECTED_ORDERS)) == ("1", "2")
            open_ = hub.exchange.user_orders("alice", status="resting")
            assert sorted(o.ticker for o in open_) == [TICKER, TICKER2]  # REST order + TICKER2
            assert rest.order.order_id in {o.order_id for o in open_}
            a.mass_cancel()
            got = [await report(a) for _ in range(2)]
            assert sorted(tag(m, 35) for m in got) == ["8", "r"]
    run(body())


def test_reject_codes():
    async def body():
        hub = make_hub(cents=1_000)  # $10
        async with serving(hub) as srv:
            a = await logon(srv, "alice")
            cases = [((TICKER, "1", 100, 50), "3"),       # $50 > balance: ORDER_EXCEEDS_LIMIT
                     (("KXNOPE", "1", 1, 50), "1")]       # unknown symbol
            for args, reason in cases:
                a.new_order(*args)
                r = await report(a)
                assert (tag(r, P.EXEC_TYPE), tag(r, P.ORD_STATUS)) == ("8", "8")
                assert tag(r, P.ORD_REJ_REASON) == reason, tag(r, P.TEXT)
            cl = a.new_order(TICKER, "1", 1, 50)
            await report(a)
            a.new_order(TICKER, "1", 1, 50, clordid=cl)  # duplicate ClOrdID
            r = await report(a)
            assert tag(r, P.ORD_REJ_REASON) == "6"
            a.new_order(TICKER, "1", 1, 150)  # price out of 1-99: session Reject 3
            r = await report(a)
            assert (tag(r, 35), tag(r, P.REF_TAG_ID), tag(r, P.SESSION_REJECT_REASON)) == \
                ("3", "44", "5")
            a.send("D", [(P.CL_ORD_ID, "x1"), (P.SIDE, "1")])  # missing tags
            r = await report(a)
            assert (tag(r, 35), tag(r, P.SESSION_REJECT_REASON)) == ("3", "1")
            a.new_order(TICKER, "1", 1, 50, post_only=True)
            assert tag(await report(a), P.EXEC_TYPE) == "0"
            a.send("AE", [(P.CL_ORD_ID, "x2")])  # unsupported message type
            r = await report(a)
            assert (tag(r, 35), tag(r, P.BUSINESS_REJECT_REASON)) == ("j", "3")
    run(body())


def test_rest_cancel_reaches_the_fix_session_and_dollars_format():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a = await logon(srv, "alice", use_dollars=True)
            a.new_order(TICKER, "1", "2.5", "0.33")
            r = await report(a)
            assert (tag(r, P.PRICE), tag(r, P.ORDER_QTY)) == ("0.3300", "2.50")
            oid = tag(r, P.ORDER_ID)
            assert hub.exchange.get_order(oid).remaining_count == 250
            hub.submit_now(CancelOrder(user_id="alice", order_id=oid))  # e.g. over REST
            r = await report(a)
            assert (tag(r, P.EXEC_TYPE), tag(r, P.ORD_STATUS)) == ("4", "4")
    run(body())


def test_time_in_force_day_gtd_and_max_execution_cost():
    import datetime as dt
    import time
    from zoneinfo import ZoneInfo

    from kalshi_platform.fix.orders import day_expiry

    # DAY: the next 23:59:59.999 America/New_York, as whole seconds (rounded up)
    t0 = int(dt.datetime(2026, 7, 1, 15, 0, tzinfo=ZoneInfo("America/New_York")).timestamp())
    assert day_expiry(t0 * 10**9) == int(dt.datetime(
        2026, 7, 2, 0, 0, tzinfo=ZoneInfo("America/New_York")).timestamp())

    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a, b = await logon(srv, "alice"), await logon(srv, "bob")
            a.new_order(TICKER, "1", 1, 20, tif="0")
            oid = tag(await report(a), P.ORDER_ID)
            assert hub.exchange.get_order(oid).expiration_ts == day_expiry(time.time_ns())
            past = P.utc_timestamp(time.time_ns() - 3600 * 10**9)
            a.new_order(TICKER, "1", 1, 21, tif="6", extra=[(P.EXPIRE_TIME, past)])
            new, gone = await report(a), await report(a)  # a past GTD is IOC: nothing rests
            assert (tag(new, P.EXEC_TYPE), tag(gone, P.EXEC_TYPE)) == ("0", "4")
            b.new_order(TICKER, "2", 5, 60)  # asks 5 at 60c
            await report(b)
            # MaxExecutionCost $2.00 cannot buy 5 at 60c ($3.00): FOK killed, no fill
            a.new_order(TICKER, "1", 5, 60, extra=[(P.MAX_EXECUTION_COST, "2.00")])
            new, gone = await report(a), await report(a)
            assert (tag(gone, P.EXEC_TYPE), tag(gone, P.CUM_QTY)) == ("4", "0")
            a.new_order(TICKER, "1", 5, 60, extra=[(P.MAX_EXECUTION_COST, "3.00")])
            new, fill = await report(a), await report(a)
            assert (tag(fill, P.EXEC_TYPE), tag(fill, P.ORD_STATUS), tag(fill, P.CUM_QTY)) == \
                ("F", "2", "5")
    run(body())


def test_orders_acked_over_fix_survive_a_restart_of_the_wal(tmp_path):
    from kalshi_platform.exchange.wal import DurableExchange

    async def body():
        dx = DurableExchange(tmp_path / "wal")
        hub = EngineHub(dx)
        await hub.submit(AddMarket(ticker=TICKER))
        for u in ("alice", "bob"):
            await hub.submit(Deposit(user_id=u, amount=100_000))
        acked = {}
        async with serving(hub) as srv:
            a, b = await logon(srv, "alice"), await logon(srv, "bob")
            a.new_order(TICKER, "2", 3, 55)
            r = await report(a)
            acked[tag(r, P.ORDER_ID)] = "resting"
            lsn_at_ack = dx.lsn
            b.new_order(TICKER, "1", 2, 55, tif="3")
            await report(b)
            fill = await report(b)
            acked[tag(fill, P.ORDER_ID)] = "executed"
        dx.close()
        return acked, lsn_at_ack

    acked, lsn = run(body())
    again = DurableExchange(tmp_path / "wal")
    assert again.lsn >= lsn
    for oid, status in acked.items():
        assert again.exchange.get_order(oid).status == status
    assert {p.ticker: p.position for p in again.exchange.positions("bob")}[TICKER] == 200
    again.close()


def test_replace_of_a_rest_order_reports_its_fills_so_far():
    async def body():
        hub = make_hub()
        async with serving(hub) as srv:
            a = await logon(srv, "alice")
            # over REST: bob rests NO bids (YES asks at 40c and 42c); alice buys 3 YES at 45c,
            # 2 fill at 40c and 1 at 42c... then 5 more rest at 45c
            for p, n in ((600_000, 200), (580_000, 100)):
                assert hub.submit_now(CreateOrder(user_id="bob", ticker=TICKER, side="no",
                                                  action="buy", count=n, no_price=p)).ok
            res = hub.submit_now(CreateOrder(user_id="alice", ticker=TICKER, side="yes",
                                             action="buy", count=800, yes_price=450_000,
                                             client_order_id="rest-1"))
            assert res.order.fill_count == 300
            new_cl = a.replace("rest-1", 44)
            r = await report(a)
            assert (tag(r, P.EXEC_TYPE), tag(r, P.CL_ORD_ID), tag(r, P.ORIG_CL_ORD_ID)) == \
                ("5", new_cl, "rest-1")
            assert (tag(r, P.CUM_QTY), tag(r, P.LEAVES_QTY), tag(r, P.ORDER_QTY)) == \
                ("3", "5", "8")
            assert tag(r, P.AVG_PX) == "40.6667"  # (2 x 40 + 1 x 42) / 3 cents
            assert hub.exchange.get_order(res.order.order_id).yes_price == 440_000
    run(body())
