"""Seeded random command streams for the exchange tests, and the engine/oracle comparison.

``stream(seed, n)`` → ``(setup, [(ts_ns, command)])``: 2-4 users with small balances (so
collateral refusals happen), 1-2 markets (cent ticks or a tapered sub-penny grid, fee types
and multipliers from the series Kalshi lists), prices clustered near the middle so orders
cross, fractional sizes (rounding), every order option, cancels/amends/decreases of live and
dead ids, a few invalid commands, and sometimes a close/determine/settle at the end.
"""

from __future__ import annotations

import random

from kalshi_platform.exchange import (AddMarket, AmendOrder, BatchCancelOrders,
                                      BatchCreateOrders, CancelOrder, CloseMarket, CreateOrder,
                                      DecreaseOrder, Deposit, DetermineMarket, Exchange,
                                      ExchangeConfig, FeeConfig, SettleMarket, Tick)

CENT_GRID = [(0, 1_000_000, 10_000)]
TAPERED = [(0, 100_000, 1_000), (100_000, 900_000, 10_000), (900_000, 1_000_000, 1_000)]
FEE_TYPES = ["quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat"]


def _price(rng: random.Random, grid) -> int:
    if grid is TAPERED and rng.random() < 0.3:
        return rng.choice([rng.randrange(1, 100) * 1_000, rng.randrange(901, 1000) * 1_000])
    return rng.randint(35, 65) * 10_000


def _create(rng, users, tickers, grids, seen_ids, ts) -> CreateOrder:
    t = rng.choice(tickers)
    side, action = rng.choice(["yes", "no"]), rng.choice(["buy", "sell"])
    price = _price(rng, grids[t])
    kw = {"yes_price": price} if rng.random() < 0.5 else {"no_price": 1_000_000 - price}
    r = rng.random()
    tif = ("good_till_canceled" if r < 0.7 else "immediate_or_cancel" if r < 0.85
           else "fill_or_kill")
    extra = {}
    if rng.random() < 0.1:
        extra["post_only"] = True
    if rng.random() < 0.08:
        extra["reduce_only"] = True
    if rng.random() < 0.3:
        extra["self_trade_prevention_type"] = rng.choice(["taker_at_cross", "maker"])
    if rng.random() < 0.05 and action == "buy":
        extra["buy_max_cost"] = rng.randint(1, 400)
    if rng.random() < 0.1:
        extra["expiration_ts"] = ts // 10**9 + rng.randint(-1, 3)
    if rng.random() < 0.2:
        extra["client_order_id"] = f"c{rng.randint(0, 30)}"
    count = rng.choice([100, 200, 500, 1000, rng.randint(1, 1500)])
    if rng.random() < 0.02:
        count = 0
    return CreateOrder(user_id=rng.choice(users), ticker=t, side=side, action=action,
                       count=count, time_in_force=tif, **kw, **extra)


def stream(seed: int, n: int = 30):
    """A reproducible stream (see module doc)."""
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(rng.randint(2, 4))]
    tickers = [f"M{i}" for i in range(rng.randint(1, 2))]
    grids = {t: TAPERED if rng.random() < 0.3 else CENT_GRID for t in tickers}
    precision = rng.choice([10**4, 10**6])
    setup = []
    for t in tickers:
        setup.append(AddMarket(ticker=t, event_ticker="E", series_ticker="S",
                               price_ranges=grids[t], fee_type=rng.choice(FEE_TYPES),
                               fee_multiplier=rng.choice(["1", "0.5", "2"])))
    for u in users:
        setup.append(Deposit(user_id=u, amount=rng.choice([500, 2000, 100_000])))
    ts = 1_780_000_000 * 10**9
    cmds = []
    for _ in range(n):
        ts += rng.randint(0, 800_000_000)
        r = rng.random()
        u = rng.choice(users)
        oid = f"00000000-0000-4000-8000-{rng.randint(1, max(1, len(cmds) // 2 + 1)):012x}"
        if r < 0.58:
            cmd = _create(rng, users, tickers, grids, None, ts)
        elif r < 0.72:
            cmd = CancelOrder(user_id=u, order_id=oid)
        elif r < 0.82:
            t = rng.choice(tickers)
            price = _price(rng, grids[t])
            cmd = AmendOrder(user_id=u, order_id=oid, ticker=t, side=rng.choice(["yes", "no"]),
                             action=rng.choice(["buy", "sell"]), yes_price=price,
                             count=rng.choice([None, rng.randint(1, 1500)]))
        elif r < 0.9:
            cmd = (DecreaseOrder(user_id=u, order_id=oid, reduce_by=rng.randint(1, 600))
                   if rng.random() < 0.5 else
                   DecreaseOrder(user_id=u, order_id=oid, reduce_to=rng.randint(0, 600)))
        elif r < 0.93:
            cmd = Tick()
        elif r < 0.95:
            cmd = Deposit(user_id=u, amount=rng.choice([100, 1000, -200]))
        elif r < 0.98:
            cmd = BatchCreateOrders(user_id=u, orders=[
                _create(rng, [u], tickers, grids, None, ts) for _ in range(rng.randint(1, 4))])
        else:
            cmd = BatchCancelOrders(user_id=u, order_ids=[oid, oid[:-1] + "1"])
        cmds.append((ts, cmd))
    if rng.random() < 0.3:
        t = rng.choice(tickers)
        ts += 10**9
        cmds += [(ts, CloseMarket(ticker=t)),
                 (ts, DetermineMarket(ticker=t, result=rng.choice(["yes", "no", "void"]))),
                 (ts, SettleMarket(ticker=t))]
    return setup, cmds, precision


def engine_for(precision: int, **kw) -> Exchange:
    """An Exchange with the stream's balance precision."""
    return Exchange(ExchangeConfig(fees=FeeConfig(balance_precision=precision), **kw))


def load(seed: int):
    """An endless reproducible load for the crash tests: ``(ts_ns, command)`` pairs, setup
    first (two markets, four funded users), then orders that often cross, cancels and amends
    of earlier ids."""
    rng = random.Random(seed)
    ts = 1_780_000_000 * 10**9
    for t in ("K1", "K2"):
        yield ts, AddMarket(ticker=t, fee_type="quadratic_with_maker_fees", fee_multiplier="1")
    for u in range(4):
        yield ts, Deposit(user_id=f"u{u}", amount=10**9)
    k = 0
    while True:
        ts += rng.randint(0, 2_000_000)
        r = rng.random()
        u = f"u{rng.randrange(4)}"
        oid = f"00000000-0000-4000-8000-{rng.randint(1, k + 1):012x}"
        if r < 0.7:
            k += 1
            yield ts, CreateOrder(user_id=u, ticker=rng.choice(("K1", "K2")),
                                  side=rng.choice(("yes", "no")),
                                  action=rng.choice(("buy", "sell")),
                                  count=rng.randint(1, 20) * 100,
                                  yes_price=rng.randint(40, 60) * 10_000,
                                  client_order_id=f"{u}-{k}")
        elif r < 0.9:
            yield ts, CancelOrder(user_id=u, order_id=oid)
        else:
            yield ts, AmendOrder(user_id=u, order_id=oid, ticker="K1", side="yes",
                                 action="buy", yes_price=rng.randint(40, 60) * 10_000)


def digest(ex: Exchange) -> tuple:
    """Everything replay must rebuild: books in queue order, seqs, orders, accounts,
    positions, fills and settlements per user, counters and exchange money."""
    books = tuple((t, m.seq, m.status, m.escrow,
                   tuple((o.order_id, o.is_bid, o.price, o.remaining) for o in m.book.resting()))
                  for t, m in sorted(ex.markets.items()))
    orders = tuple((i, o.status, o.filled, o.remaining, o.price, o.cum, o.applied)
                   for i, o in sorted(ex.orders.items()))
    accts = tuple((u, a.cash, a.reserved, a.open_orders) for u, a in sorted(ex.accounts.items()))
    pos = tuple((t, u, p.pos, p.cost, p.realized, p.fees, p.reserve)
                for t, m in sorted(ex.markets.items()) for u, p in sorted(m.positions.items()))
    fills = tuple((u, tuple(f.trade_id for f in fs)) for u, fs in sorted(ex.fills.items()))
    return (books, orders, accts, pos, fills, ex.next_order, ex.next_trade, ex.fees_collected,
            ex.rounding_collected, ex.ts, tuple(sorted(ex.client_ids.items())))
