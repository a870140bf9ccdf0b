"""The C core's own pieces (kalshi_platform/exchange/_core.c), beside the oracle streams that
check the whole engine: the book's queues and invariants, pickling, the fee formula against
fees.py's, int64/128-bit bounds and the refusals the core builds."""

from __future__ import annotations

import pickle
import random
from fractions import Fraction

import pytest

from exchange_helpers import CENT, market, order
from kalshi_platform.exchange import AmendOrder, CancelOrder, CreateOrderGroup, Deposit
from kalshi_platform.exchange._core import Account, Book, MarketBase, Order, Position
from kalshi_platform.exchange.fees import FEE_TYPES, FeeConfig, fee_functions, fee_params
from kalshi_platform.exchange.ledger import add_order
from kalshi_platform.exchange.market import Market


def _order(n: int, side: str, action: str, cents: int, count: int) -> Order:
    return Order(f"o{n}", f"u{n % 3}", "M", side, action, cents * CENT, count, n)


def test_book_keeps_price_time_queues_and_its_invariants():
    b = Book()
    orders = [_order(1, "yes", "buy", 40, 100), _order(2, "yes", "buy", 42, 200),
              _order(3, "yes", "buy", 40, 300), _order(4, "no", "buy", 50, 50),   # ask at 50
              _order(5, "yes", "sell", 55, 70)]
    for o in orders:
        b.add(o)
    assert (b.best_bid(), b.best_ask()) == (42 * CENT, 50 * CENT)
    assert b.levels(True) == [(42 * CENT, 200), (40 * CENT, 400)]
    assert b.levels(False) == [(50 * CENT, 50), (55 * CENT, 70)]
    assert [o.order_id for o in b.resting()] == ["o2", "o1", "o3", "o4", "o5"]
    assert b.queue_position(orders[2]) == 100 and b.queue_position(orders[0]) == 0
    b.reduce(orders[0], 60)
    assert b.queue_position(orders[2]) == 60 and b.levels(True)[1] == (40 * CENT, 360)
    b.remove(orders[1])
    assert b.best_bid() == 40 * CENT and not orders[1].in_book and orders[0].in_book
    with pytest.raises(KeyError):
        b.remove(orders[1])
    with pytest.raises(ValueError):
        b.add(orders[0])                    # already resting
    with pytest.raises(ValueError):
        orders[0].remaining = 5             # only through Book.reduce while it rests
    assert b.check() == []
    c = pickle.loads(pickle.dumps(b))
    assert [(o.order_id, o.remaining) for o in c.resting()] == [
        (o.order_id, o.remaining) for o in b.resting()]
    assert c.check() == []


def test_book_random_adds_and_removes_match_a_list_model():
    rng = random.Random(7)
    b, model, n = Book(), [], 0
    for _ in range(3000):
        if model and rng.random() < 0.45:
            o = model.pop(rng.randrange(len(model)))
            b.remove(o)
        else:
            n += 1
            o = _order(n, "yes", rng.choice(["buy", "sell"]), rng.randint(1, 99),
                       rng.randint(1, 500))
            b.add(o)
            model.append(o)
    for is_bid in (True, False):
        side = [o for o in model if o.is_bid == is_bid]
        prices = sorted({o.price for o in side}, reverse=is_bid)
        assert b.levels(is_bid) == [(p, sum(o.remaining for o in side if o.price == p))
                                    for p in prices]
    assert b.check() == []


def test_records_pickle_and_copy():
    o = _order(9, "no", "sell", 30, 400)
    o.client_order_id, o.taker_fees, o.post_only = "c-1", 123, True
    for x in (o, o.copy()):
        y = pickle.loads(pickle.dumps(x))
        assert (y.order_id, y.is_bid, y.price, y.remaining, y.client_order_id, y.taker_fees,
                y.post_only, y.in_book) == ("o9", True, 30 * CENT, 400, "c-1", 123, True, False)
    a = Account("u", 10**25, 5, 2, 10**25)           # cash beyond int64: 128-bit money
    b = pickle.loads(pickle.dumps(a))
    assert (b.cash, b.reserved, b.open_orders, b.deposits, b.available) == (
        10**25, 5, 2, 10**25, 10**25 - 5)
    b.cash = -(10**30)
    assert b.cash == -(10**30)
    p = Position("u", 3, 4)
    assert (pickle.loads(pickle.dumps(p)).pos, p.cost, p.reserve) == (3, 4, 0)
    with pytest.raises(OverflowError):
        p.cost = 2**63                              # position money is int64


def test_fee_parameters_give_the_fee_functions_figures():
    rng = random.Random(3)
    for _ in range(400):
        fee_type = rng.choice(FEE_TYPES)
        mult = rng.choice(["1", "0.5", "2", "0.333", "7.25", "0"])
        cfg = FeeConfig(fee_rounding=rng.choice([10**4, 10**6]))
        m = Market("T", "E", "S", [(0, 1_000_000, 10_000)], fee_type, mult, cfg)
        taker, _ = fee_functions(fee_type, mult, cfg)
        count, price = rng.randint(1, 10**12), rng.randint(1, 99) * CENT
        o = Order("x", "u", "T", "yes", "buy", price, count, 0)
        pos = Position("u")
        add_order(pos, o, m)                       # weight = cost + the C core's taker fee
        assert o.w == count * price + taker(count, price), (fee_type, mult, count, price)
    huge = Fraction(10**70 + 1, 10**70)             # too large for int64: kind 3, the closure
    assert fee_params("quadratic", huge)[0][0] == 3


def test_market_grid_and_state_survive_pickling():
    m = Market("T", "E", "S", [(0, 100_000, 1_000), (100_000, 1_000_000, 10_000)], "quadratic",
               "1", FeeConfig())
    assert isinstance(m, MarketBase)
    assert m.valid_price(1_000) and m.valid_price(110_000) and not m.valid_price(101_000)
    assert not m.valid_price(0) and not m.valid_price(1_000_000) and not m.valid_price(10**30)
    m.seq, m.escrow = 5, 7
    n = pickle.loads(pickle.dumps(m))
    n.restore_fees(FeeConfig())
    assert (n.ticker, n.seq, n.escrow, n.valid_price(2_000)) == ("T", 5, 7, True)


def test_refusals_are_results_never_exceptions():
    ex = market()
    bad = [order("a", "yes", "buy", 1, 40, ticker="NOPE"), order("a", "maybe", "buy", 1, 40),
           order("a", "yes", "buy", 0, 40), order("a", "yes", "buy", 1, 40, no_price=1),
           order("a", "yes", "buy", 1, 40, time_in_force="day"),
           order("a", "yes", "buy", 1, 40, client_order_id="bad id!"),
           order("a", "yes", "buy", 1, 40, expiration_ts=-1),
           order("a", "yes", "buy", 1, 40, subaccount=99),
           order("a", "yes", "buy", 10**11, 40)]          # 10^13 centi-contracts > MAX_SIZE
    codes = [ex.submit(c, 1).error.code for c in bad]
    assert codes == ["market_not_found", "invalid_parameter", "invalid_count", "invalid_parameter",
                     "invalid_parameter", "invalid_parameter", "invalid_parameter",
                     "invalid_parameter", "invalid_count"]
    r = ex.submit(order("a", "yes", "buy", 10**9, 40), 2)     # $400M: no such balance
    assert r.error.code == "insufficient_balance" and "more collateral" in r.error.message
    assert ex.submit(CancelOrder(user_id="a", order_id="x"), 3).error.http_status == 404
    assert ex.check_invariants() == [] and ex.next_order == 0
    oid = ex.submit(order("a", "yes", "buy", 1, 40), 4).order.order_id
    r = ex.submit(AmendOrder(user_id="a", order_id=oid, ticker="M", side="yes", action="buy",
                             yes_price=41 * CENT, count=10**30), 5)         # beyond int64
    assert r.error.code == "invalid_count" and ex.get_order(oid).yes_price == 40 * CENT


def test_deposits_are_capped_where_the_core_stays_exact():
    ex = market()
    assert ex.submit(Deposit(user_id="whale", amount=10**15), 0).ok     # the backtest's figure
    assert ex.accounts["whale"].cash == 10**21
    r = ex.submit(Deposit(user_id="whale", amount=10**25), 0)
    assert r.error.code == "invalid_parameter" and "too large" in r.error.message
    r = ex.submit(order("whale", "yes", "buy", 10**9, 40), 1)             # rests: 128-bit cash
    assert r.ok and r.order.status == "resting" and ex.check_invariants() == []


def test_submit_raises_only_for_programming_errors():
    ex = market()
    with pytest.raises(TypeError):
        ex.submit(object(), 1)
    with pytest.raises(TypeError):
        ex.submit(order("a", "yes", "buy", 1, 40), 1.5)
    assert ex._ev is None                                  # reset after every call


def test_group_membership_follows_the_order_through_the_core():
    ex = market()
    assert ex.submit(CreateOrderGroup(user_id="a", order_group_id="g",
                                      contracts_limit=10**6), 0).ok
    rest = ex.submit(order("a", "yes", "buy", 3, 40, order_group_id="g"), 1).order.order_id
    gone = ex.submit(order("a", "yes", "buy", 2, 41, order_group_id="g"), 1).order.order_id
    drop = ex.submit(order("a", "yes", "buy", 1, 30, order_group_id="g"), 1).order.order_id
    assert list(ex.groups["g"].orders) == [rest, gone, drop]
    ex.submit(order("b", "no", "buy", 2, 59), 2)                   # fills `gone` as maker
    assert ex.submit(CancelOrder(user_id="a", order_id=drop), 3).ok
    assert list(ex.groups["g"].orders) == [rest] and ex.groups["g"].matched == 200
    r = ex.submit(order("a", "yes", "buy", 1, 40, order_group_id="nope"), 4)
    assert r.error.code == "order_group_not_found"
    ex2 = pickle.loads(pickle.dumps(ex))
    assert list(ex2.groups["g"].orders) == [rest] and ex2.check_invariants() == []
    assert ex2.markets["M"].book.queue_position(ex2.orders[rest]) == 0
