"""Matching-engine rules one by one (docs/trading-api.md §4.1/§4.3, docs/exchange.md)."""

from kalshi_platform.exchange import (AddMarket, AmendOrder, BatchCancelOrders,
                                      BatchCreateOrders, CancelOrder, CreateOrder,
                                      CreateOrderGroup, Deposit,
                                      DecreaseOrder, OrderGroupAction, Tick)
from exchange_helpers import CENT, kinds, market, order
from exchange_streams import digest, stream, engine_for

S = 10**9  # one second in ns


def test_yes_no_mirror_and_trade_at_the_resting_price():
    ex = market()
    assert ex.submit(order("a", "no", "buy", 5, 45), 1).ok       # ask YES at 55
    assert ex.submit(order("b", "yes", "sell", 5, 55), 2).ok     # ask YES at 55
    assert ex.book_snapshot("M")["no"] == [(45 * CENT, 1000)]
    r = ex.submit(order("c", "yes", "buy", 7, 56), 3)             # crosses at 55
    trades = kinds(r, "Trade")
    assert [(t.yes_price, t.no_price, t.count, t.taker_side) for t in trades] == [
        (55 * CENT, 45 * CENT, 500, "yes"), (55 * CENT, 45 * CENT, 200, "yes")]
    fills = kinds(r, "Fill")
    assert [(f.user_id, f.is_taker) for f in fills] == [("c", True), ("a", False),
                                                        ("c", True), ("b", False)]
    assert ex.markets["M"].positions["c"].pos == 700
    assert ex.markets["M"].positions["a"].pos == -500     # NO is negative
    assert ex.book_snapshot("M")["no"] == [(45 * CENT, 300)]
    # sell-no at 40 (no price) is a YES bid at 60; it takes b's remaining ask at 55
    r = ex.submit(order("a", "no", "sell", 3, 40), 4)
    assert kinds(r, "Trade")[0].taker_side == "yes" and r.order.status == "executed"
    assert ex.markets["M"].positions["a"].pos == -200      # closed 3 of its 5 NO


def test_price_time_priority_and_queue_position():
    ex = market(users=("a", "b", "c", "d"))
    ids = [ex.submit(order(u, "yes", "buy", n, 50), k).order.order_id
           for k, (u, n) in enumerate([("a", 2), ("b", 3), ("c", 4)])]
    assert [ex.queue_position(i) for i in ids] == [0, 200, 500]
    assert ex.submit(DecreaseOrder(user_id="a", order_id=ids[0], reduce_by=100), 5).ok
    assert [ex.queue_position(i) for i in ids] == [0, 100, 400]   # decrease keeps the place
    r = ex.submit(order("d", "yes", "sell", 2, 50), 6)
    assert [f.order_id for f in kinds(r, "Fill") if not f.is_taker] == ids[:2]
    assert ex.queue_position(ids[2]) == 200                # b's 2 left are ahead
    assert ex.queue_position(ids[0]).code == "order_not_found"


def test_amend_keeps_priority_only_for_a_same_price_size_cut():
    ex = market()
    a = ex.submit(order("a", "yes", "buy", 5, 50), 1).order.order_id
    b = ex.submit(order("b", "yes", "buy", 5, 50), 2).order.order_id

    def amend(oid, user, cents, count=None):
        return ex.submit(AmendOrder(user_id=user, order_id=oid, ticker="M", side="yes",
                                    action="buy", yes_price=cents * CENT, count=count), 3)

    r = amend(a, "a", 50, 400)
    assert r.ok and r.old_order.remaining_count == 500 and r.order.remaining_count == 400
    assert ex.queue_position(a) == 0                        # smaller: keeps its place
    amend(a, "a", 50, 600)
    assert ex.queue_position(a) == 500                      # larger: back of the queue
    amend(b, "b", 51)
    amend(b, "b", 50)
    assert ex.queue_position(b) == 600                      # new price: back of the queue
    r = ex.submit(AmendOrder(user_id="b", order_id=b, ticker="M", side="no", action="buy",
                             yes_price=50 * CENT), 4)
    assert r.error.code == "invalid_parameter"
    ex.submit(order("c", "no", "buy", 2, 45), 5)            # ask YES at 55
    r = amend(b, "b", 56)                                   # amend through the ask: trades
    assert kinds(r, "Trade")[0].yes_price == 55 * CENT and r.order.fill_count == 200


def test_self_trade_prevention_modes():
    ex = market()
    own = ex.submit(order("a", "yes", "sell", 2, 50), 1).order.order_id
    ex.submit(order("b", "yes", "sell", 2, 51), 2)
    r = ex.submit(order("a", "yes", "buy", 3, 52), 3)       # default taker_at_cross
    assert r.order.status == "canceled" and r.order.fill_count == 0
    assert ex.get_order(own).status == "resting"
    r = ex.submit(order("a", "yes", "buy", 3, 52, self_trade_prevention_type="maker"), 4)
    assert ex.get_order(own).status == "canceled"           # own maker canceled ...
    assert r.order.fill_count == 200 and r.order.status == "resting"  # ... b's ask taken


def test_time_in_force_post_only_and_buy_max_cost():
    ex = market()
    ex.submit(order("a", "yes", "sell", 2, 50), 1)
    r = ex.submit(order("b", "yes", "buy", 3, 50, time_in_force="fill_or_kill"), 2)
    assert r.order.status == "canceled" and r.order.fill_count == 0 and not kinds(r, "Fill")
    r = ex.submit(order("b", "yes", "buy", 3, 50, time_in_force="immediate_or_cancel"), 3)
    assert (r.order.status, r.order.fill_count) == ("canceled", 200)
    ex.submit(order("a", "yes", "sell", 4, 50), 4)
    r = ex.submit(order("b", "yes", "buy", 4, 50, post_only=True), 5)
    assert r.error.code == "post_only_cross"
    r = ex.submit(order("b", "yes", "buy", 4, 60, buy_max_cost=199), 6)  # 4 x 50c = 200c
    assert r.order.status == "canceled" and r.order.fill_count == 0
    r = ex.submit(order("b", "yes", "buy", 4, 60, buy_max_cost=200), 7)
    assert r.order.status == "executed"
    r = ex.submit(order("b", "yes", "sell", 1, 60, buy_max_cost=10), 8)
    assert r.error.code == "invalid_parameter"


def test_good_till_date_expires_at_its_time_and_past_dates_are_ioc():
    ex = market()
    t0 = 1_780_000_000
    oid = ex.submit(order("a", "yes", "buy", 1, 40, expiration_ts=t0 + 5), t0 * S).order.order_id
    assert ex.submit(Tick(), (t0 + 4) * S).events == []
    r = ex.submit(Tick(), (t0 + 5) * S)
    assert [u.order.order_id for u in kinds(r, "OrderUpdate")] == [oid]
    assert ex.get_order(oid).status == "canceled" and ex.accounts["a"].reserved == 0
    r = ex.submit(order("a", "yes", "buy", 1, 40, expiration_ts=t0), (t0 + 6) * S)
    assert r.order.status == "canceled"                     # in the past: IOC


def test_client_order_id_repeat_is_a_409_naming_the_first_order():
    ex = market()
    first = ex.submit(order("a", "yes", "buy", 1, 40, client_order_id="x-1"), 1).order
    r = ex.submit(order("a", "yes", "buy", 1, 41, client_order_id="x-1"), 2)
    assert (r.error.code, r.error.http_status, r.error.details) == (
        "order_already_exists", 409, first.order_id)
    assert ex.submit(order("b", "yes", "buy", 1, 41, client_order_id="x-1"), 3).ok  # per user
    assert ex.submit(order("a", "yes", "buy", 1, 41, client_order_id="bad id"), 3).error.code \
        == "invalid_parameter"


def test_batches_limits_and_per_item_results():
    ex = market(max_open_orders=3)
    r = ex.submit(BatchCreateOrders(user_id="a", orders=[order("a", "yes", "buy", 1, 30)] * 21), 1)
    assert r.error.code == "batch_too_large"
    r = ex.submit(BatchCreateOrders(user_id="a", orders=[
        order("a", "yes", "buy", 1, 30 + k) for k in range(4)] + [order("b", "yes", "buy", 1, 30)]), 1)
    assert [i.error.code if i.error else None for i in r.items] == [
        None, None, None, "open_order_limit_exceeded", "invalid_parameter"]
    ids = [i.order.order_id for i in r.items[:3]]
    r = ex.submit(BatchCancelOrders(user_id="a", order_ids=ids[:2] + ["nope"]), 2)
    assert [i.error.code if i.error else None for i in r.items] == [None, None, "order_not_found"]
    assert ex.accounts["a"].open_orders == 1


def test_collateral_buy_needs_cost_and_selling_held_yes_needs_none():
    ex = market(cents=1000)                                  # $10 each
    r = ex.submit(order("a", "yes", "buy", 25, 40), 1)       # $10 + fee > $10
    assert r.error.code == "insufficient_balance"
    assert r.error.message == "insufficient balance: the order needs $0.4200 more collateral"
    assert ex.submit(order("a", "yes", "buy", 20, 40), 1).ok
    assert ex.accounts["a"].reserved == 20 * 40 * 10**6 + 336 * 10**5  # cost + taker fee bound
    ex.submit(Deposit(user_id="b", amount=100_000), 2)
    assert ex.submit(order("b", "no", "buy", 20, 60), 2).order.status == "executed"  # a: 20 YES
    assert ex.accounts["a"].reserved == 0
    ex.submit(order("a", "yes", "sell", 20, 90), 3)          # closing: no collateral
    assert ex.accounts["a"].reserved == 0
    r = ex.submit(order("a", "yes", "sell", 40, 10), 4)      # 40 beyond the holding = NO
    assert r.error.code == "insufficient_balance"            # ~$38 - $20 credit > cash
    ex.submit(order("c", "yes", "sell", 10, 30), 4)          # c holds nothing: buys NO at 70
    assert ex.accounts["c"].reserved == 10 * 70 * 10**6 + 1470 * 10**4  # + fee 0.07*10*.21
    assert ex.submit(order("a", "yes", "sell", 5, 60, reduce_only=True), 5).error.code == \
        "invalid_parameter"                                   # reduce_only must be IOC/FOK
    assert ex.submit(order("a", "yes", "sell", 30, 60, reduce_only=True,
                           time_in_force="immediate_or_cancel"), 5).error.code == \
        "reduce_only_violation"
    assert ex.check_invariants() == []


def test_order_group_rolling_limit_triggers_and_resets():
    ex = market()
    assert ex.submit(CreateOrderGroup(user_id="a", order_group_id="g", contracts_limit=500), 0).ok
    g1 = ex.submit(order("a", "yes", "buy", 3, 40, order_group_id="g"), 1 * S).order.order_id
    g2 = ex.submit(order("a", "yes", "buy", 9, 30, order_group_id="g"), 1 * S).order.order_id
    ex.submit(order("b", "no", "buy", 3, 60), 2 * S)             # 3 matched: under the limit
    assert ex.get_order(g2).status == "resting"
    ex.submit(order("b", "no", "buy", 1, 70), 20 * S)            # 17 s later: window rolled
    assert ex.get_order(g2).status == "resting"
    r = ex.submit(order("b", "no", "buy", 4, 70), 21 * S)        # 1 + 4 = 5 in 15 s: trigger
    assert [e.event_type for e in kinds(r, "OrderGroupUpdate")] == ["triggered"]
    assert ex.get_order(g2).status == "canceled" and ex.get_order(g1).status == "executed"
    assert ex.submit(order("a", "yes", "buy", 1, 30, order_group_id="g"), 22 * S).error.code == \
        "order_group_triggered"
    assert ex.submit(OrderGroupAction(user_id="a", order_group_id="g", action="reset"), 23 * S).ok
    assert ex.submit(order("a", "yes", "buy", 1, 30, order_group_id="g"), 24 * S).ok
    assert ex.submit(OrderGroupAction(user_id="b", order_group_id="g", action="reset"),
                     25 * S).error.code == "order_group_not_found"


def test_sub_penny_ticks_from_price_ranges():
    ex = market()
    ex.submit(AddMarket(ticker="T", price_ranges=[(0, 100_000, 1_000), (100_000, 900_000, 10_000),
                                                  (900_000, 1_000_000, 1_000)]), 0)

    def buy(yes_price, ticker="T"):
        return ex.submit(CreateOrder(user_id="a", ticker=ticker, side="yes", action="buy",
                                     count=100, yes_price=yes_price), 1)

    assert buy(3_000).ok                                     # $0.003 on the edge grid
    assert buy(505_000).error.code == "invalid_price"        # $0.505: the middle grid is 1c
    assert buy(1_000_000, "M").error.code == "invalid_price"  # $1 is not a price
    assert buy(3_000, "M").error.code == "invalid_price"     # cent market: no sub-penny
    assert ex.submit(AddMarket(ticker="U", price_ranges=[(0, 1_000_000, 3)]), 0).error.code == \
        "invalid_parameter"


def test_book_deltas_rebuild_the_book_with_contiguous_seq():
    """An independent check of the public feed: applying every BookDelta of 200 random
    streams to a dict gives the engine's book snapshot, and seq has no gaps."""
    for seed in range(200):
        setup, cmds, precision = stream(seed, 40)
        ex = engine_for(precision)
        books, seqs = {}, {}
        for c in setup:
            ex.submit(c, 0)
        for ts, c in cmds:
            for e in ex.submit(c, ts).events:
                if type(e).__name__ == "BookDelta":
                    assert e.seq == seqs.get(e.ticker, 0) + 1
                    seqs[e.ticker] = e.seq
                    side = books.setdefault((e.ticker, e.side), {})
                    side[e.price] = side.get(e.price, 0) + e.delta
                    if side[e.price] == 0:
                        del side[e.price]
        for t in ex.markets:
            snap = ex.book_snapshot(t)
            for side in ("yes", "no"):
                assert sorted(books.get((t, side), {}).items()) == sorted(snap[side])


def test_deterministic_and_refusals_change_nothing():
    setup, cmds, precision = stream(42, 60)
    runs = []
    for _ in range(2):
        ex = engine_for(precision)
        for c in setup:
            ex.submit(c, 0)
        for ts, c in cmds:
            before = digest(ex)
            r = ex.submit(c, ts)
            if r.error is not None and not ex.expiry:
                assert digest(ex)[:5] == before[:5], c
        runs.append(digest(ex))
    assert runs[0] == runs[1]
    ex = market()
    assert ex.submit(order("a", "yes", "buy", 1, 40, ticker="X"), 1).error.http_status == 404
    assert ex.submit(CancelOrder(user_id="b", order_id="nope"), 1).error.code == "order_not_found"


def test_mass_cancel_and_lookup_by_client_order_id():
    from kalshi_platform.exchange import MassCancel

    ex = market()
    ex.submit(AddMarket(ticker="N"), 0)
    ex.submit(order("a", "yes", "buy", 1, 40, client_order_id="k"), 1)
    ex.submit(order("a", "no", "buy", 1, 40), 1)
    ex.submit(order("a", "yes", "buy", 1, 40, ticker="N"), 1)
    keep = ex.submit(order("b", "yes", "buy", 1, 40), 1).order.order_id
    assert ex.order_by_client_id("a", "k").status == "resting"
    assert ex.order_by_client_id("b", "k") is None
    r = ex.submit(MassCancel(user_id="a", ticker="M"), 2)
    assert [i.order.status for i in r.items] == ["canceled", "canceled"]
    assert ex.order_by_client_id("a", "k").status == "canceled"
    r = ex.submit(MassCancel(user_id="a"), 3)
    assert [i.order.ticker for i in r.items] == ["N"] and ex.accounts["a"].reserved == 0
    assert ex.get_order(keep).status == "resting"
    assert ex.submit(MassCancel(user_id="a", ticker="X"), 4).error.code == "market_not_found"
