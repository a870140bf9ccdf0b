"""A brute-force reference exchange for the matching oracle test (shares no code with
kalshi_platform/exchange).

Deliberately naive: resting orders are one flat list scanned in full on every step; the best
maker is ``min`` over it by (price, arrival); fees are computed with ``Fraction`` dollars and
``math.ceil``; collateral is recomputed from scratch from every open order. It implements
the rules written in docs/exchange.md: price-time matching on the YES scale at the resting
price, STP (taker_at_cross / maker), GTC/IOC/FOK/GTD, post_only, reduce_only (IOC/FOK),
buy_max_cost, decrease, amend (priority kept only for a same-price size cut), per-order
rounding accumulator, netting, average cost, settlement.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

ONE = 10**6          # $1 in micro-dollars
MONEY = 10**8        # money units per dollar


@lru_cache(maxsize=None)
def fee_money(coef: Fraction, count: int, price: int) -> int:
    """ceil to $0.0001 of coef × contracts × P × (1 − P), in money units."""
    p = Fraction(price, ONE)
    dollars = coef * Fraction(count, 100) * p * (1 - p)
    return math.ceil(dollars * 10_000) * (MONEY // 10_000)


@lru_cache(maxsize=None)
def flat_money(per_contract: Fraction, count: int) -> int:
    """ceil to $0.0001 of a flat fee per contract × contracts, in money units."""
    return math.ceil(per_contract * Fraction(count, 100) * 10_000) * (MONEY // 10_000)


class Oracle:
    def __init__(self, precision: int = 10**4, max_open: int = 200_000):
        self.precision = precision
        self.max_open = max_open
        self.markets = {}
        self.cash = {}
        self.pos = {}       # (user, ticker) -> dict(pos, cost, realized, fees)
        self.orders = {}    # id -> dict
        self.resting = []   # ids
        self.client = {}
        self.n_orders = 0
        self.n_trades = 0
        self.arrival = 0
        self.now = 0
        self.deposits = 0
        self.fees = 0
        self.rounding = 0
        self.escrow = {}
        self.void_adj = 0
        self.fills = []     # fills of the current command

    # -- setup ---------------------------------------------------------------------------
    def add_market(self, ticker, ranges, fee_type, mult):
        m = Fraction(mult)
        taker = Fraction(7, 100) * m
        maker = Fraction(175, 10_000) * m if fee_type in (
            "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees") else Fraction(0)
        self.markets[ticker] = dict(ranges=ranges, taker=taker, maker=maker,
                                    flat=Fraction(25, 10_000) * m if fee_type == "flat" else None,
                                    status="open", result=None)
        self.escrow[ticker] = 0

    def fee(self, ticker, count, price, taker):
        mk = self.markets[ticker]
        if mk["flat"] is not None:
            return flat_money(mk["flat"], count)
        return fee_money(mk["taker"] if taker else mk["maker"], count, price)

    def deposit(self, user, cents):
        money = cents * 10**6
        if self.available(user) + money < 0:
            return "insufficient_balance"
        self.cash[user] = self.cash.get(user, 0) + money
        self.deposits += money
        return None

    # -- accounting ----------------------------------------------------------------------
    def position(self, user, ticker):
        return self.pos.setdefault((user, ticker), dict(pos=0, cost=0, realized=0, fees=0))

    def reserve(self, user, ticker, extra=None):
        live = [self.orders[i] for i in self.resting]
        if extra is not None:
            live.append(extra)
        nb = qb = na = qa = 0
        for o in live:
            if o["user"] != user or o["ticker"] != ticker or o["rem"] == 0:
                continue
            f = self.fee(ticker, o["rem"], o["price"], True)
            if o["bid"]:
                nb += o["rem"] * o["price"] + f
                qb += o["rem"]
            else:
                na += o["rem"] * (ONE - o["price"]) + f
                qa += o["rem"]
        p = self.position(user, ticker)["pos"]
        rb = nb - min(qb, max(-p, 0)) * ONE
        ra = na - min(qa, max(p, 0)) * ONE
        return max(rb, 0) + max(ra, 0)

    def reserved(self, user, extra=None):
        tickers = {o["ticker"] for o in self.orders.values() if o["user"] == user}
        return sum(self.reserve(user, t, extra if extra and extra["ticker"] == t else None)
                   for t in tickers | ({extra["ticker"]} if extra else set()))

    def available(self, user, extra=None):
        return self.cash.get(user, 0) - self.reserved(user, extra)

    def valid(self, ticker, price):
        return 0 < price < ONE and any(s <= price <= e and (price - s) % st == 0
                                       for s, e, st in self.markets[ticker]["ranges"])

    # -- time ----------------------------------------------------------------------------
    def advance(self, ts):
        self.now = max(self.now, ts)
        for i in list(self.resting):
            o = self.orders[i]
            if o["exp"] is not None and o["exp"] * 10**9 <= self.now:
                self.cancel_resting(i)

    def cancel_resting(self, i):
        self.resting.remove(i)
        self.orders[i]["status"] = "canceled"

    def open_count(self, user):
        return sum(1 for i in self.resting if self.orders[i]["user"] == user)

    # -- orders --------------------------------------------------------------------------
    def check_create(self, c):
        mk = self.markets.get(c.ticker)
        if mk is None:
            return "market_not_found"
        if mk["status"] != "open":
            return "market_closed"
        if c.side not in ("yes", "no") or c.action not in ("buy", "sell"):
            return "invalid_parameter"
        if not 0 < c.count <= 10**12:
            return "invalid_count"
        if (c.yes_price is None) == (c.no_price is None):
            return "invalid_parameter"
        price = c.yes_price if c.no_price is None else ONE - c.no_price
        if not self.valid(c.ticker, price):
            return "invalid_price"
        gtc = c.time_in_force == "good_till_canceled"
        if c.post_only and (not gtc or c.buy_max_cost is not None):
            return "invalid_parameter"
        if c.reduce_only and gtc and c.buy_max_cost is None:
            return "invalid_parameter"
        if c.buy_max_cost is not None and c.action != "buy":
            return "invalid_parameter"
        if c.client_order_id is not None and (c.user_id, c.client_order_id) in self.client:
            return "order_already_exists"
        if self.open_count(c.user_id) >= self.max_open:
            return "open_order_limit_exceeded"
        return price

    def crosses(self, ticker, bid, price):
        for i in self.resting:
            o = self.orders[i]
            if o["ticker"] == ticker and o["bid"] != bid and (
                    o["price"] <= price if bid else o["price"] >= price):
                return True
        return False

    def create(self, c):
        price = self.check_create(c)
        if isinstance(price, str):
            return price, None
        bid = (c.side == "yes") == (c.action == "buy")
        p = self.position(c.user_id, c.ticker)["pos"]
        if c.reduce_only and c.count > (-p if bid else p):
            return "reduce_only_violation", None
        if c.post_only and self.crosses(c.ticker, bid, price):
            return "post_only_cross", None
        o = dict(id=None, user=c.user_id, ticker=c.ticker, side=c.side, bid=bid, price=price,
                 rem=c.count, filled=0, status="resting", cum=0, applied=0,
                 stp=c.self_trade_prevention_type or "taker_at_cross", exp=c.expiration_ts,
                 tif=c.time_in_force, post_only=c.post_only, t=None)
        if self.available(c.user_id, o) < 0:
            return "insufficient_balance", None
        self.n_orders += 1
        o["id"] = f"00000000-0000-4000-8000-{self.n_orders:012x}"
        self.orders[o["id"]] = o
        if c.client_order_id is not None:
            self.client[(c.user_id, c.client_order_id)] = o["id"]
        if c.buy_max_cost is not None:
            o["tif"] = "fill_or_kill"
        if o["exp"] is not None and o["exp"] * 10**9 <= self.now:
            o["tif"] = "immediate_or_cancel"
        if o["tif"] == "fill_or_kill" and not self.fok_fills(o, c.buy_max_cost):
            o["status"] = "canceled"
            return None, o
        self.run(o)
        return None, o

    def fok_fills(self, o, max_cost):
        import copy
        trial = copy.deepcopy(self)
        t = trial.orders[o["id"]]
        t["tif"] = "immediate_or_cancel"
        trial.fills = []
        trial.match(t)
        if t["rem"]:
            return False
        cost = sum(q * (pr if o["side"] == "yes" else ONE - pr)
                   for oid, _, pr, q, *_ in trial.fills if oid == o["id"])
        return max_cost is None or cost <= max_cost * 10**6

    def run(self, o):
        stopped = self.match(o)
        if o["rem"]:
            if stopped or o["tif"] != "good_till_canceled":
                o["status"] = "canceled"
            else:
                self.arrival += 1
                o["t"] = self.arrival
                self.resting.append(o["id"])
        else:
            o["status"] = "executed"

    def best_maker(self, o):
        cands = [self.orders[i] for i in self.resting]
        cands = [m for m in cands if m["ticker"] == o["ticker"] and m["bid"] != o["bid"] and (
            m["price"] <= o["price"] if o["bid"] else m["price"] >= o["price"])]
        if not cands:
            return None
        if o["bid"]:
            return min(cands, key=lambda m: (m["price"], m["t"]))
        return min(cands, key=lambda m: (-m["price"], m["t"]))

    def match(self, o):
        while o["rem"]:
            mk = self.best_maker(o)
            if mk is None:
                return False
            if mk["user"] == o["user"]:
                if o["stp"] != "maker":
                    return True
                self.cancel_resting(mk["id"])
                continue
            self.trade(o, mk)
        return False

    def trade(self, t, mk):
        qty = min(t["rem"], mk["rem"])
        price = mk["price"]
        self.n_trades += 1
        for o, taker in ((t, True), (mk, False)):
            fee = self.fee(o["ticker"], qty, price, taker)
            rounding = self.money(o, price, qty, fee)
            o["rem"] -= qty
            o["filled"] += qty
            self.fills.append((o["id"], o["user"], price, qty, taker, fee, rounding))
        if mk["rem"] == 0:
            self.resting.remove(mk["id"])
            mk["status"] = "executed"

    def money(self, o, price, qty, fee):
        p = self.position(o["user"], o["ticker"])
        if o["bid"]:
            held = max(-p["pos"], 0)
            close = min(qty, held)
            proceeds, open_cost = close * (ONE - price), (qty - close) * price
            p["pos"] += qty
        else:
            held = max(p["pos"], 0)
            close = min(qty, held)
            proceeds, open_cost = close * price, (qty - close) * (ONE - price)
            p["pos"] -= qty
        if close:
            removed = p["cost"] * close // held
            p["cost"] -= removed
            p["realized"] += proceeds - removed
        p["cost"] += open_cost
        flow = proceeds - open_cost
        self.escrow[o["ticker"]] -= flow
        exact = flow - fee
        o["cum"] += exact
        applied = (o["cum"] // self.precision) * self.precision
        delta = applied - o["applied"]
        o["applied"] = applied
        self.cash[o["user"]] = self.cash.get(o["user"], 0) + delta
        self.fees += fee
        p["fees"] += fee
        self.rounding += exact - delta
        return exact - delta

    def resting_order(self, user, oid):
        o = self.orders.get(oid)
        if o is None or o["user"] != user:
            return "order_not_found"
        if o["status"] != "resting":
            return "order_not_resting"
        return o

    def cancel(self, c):
        o = self.resting_order(c.user_id, c.order_id)
        if isinstance(o, str):
            return o, None
        self.cancel_resting(o["id"])
        return None, o

    def decrease(self, c):
        o = self.resting_order(c.user_id, c.order_id)
        if isinstance(o, str):
            return o, None
        if (c.reduce_by is None) == (c.reduce_to is None):
            return "invalid_parameter", None
        if c.reduce_by is not None:
            if c.reduce_by <= 0:
                return "invalid_count", None
            new = o["rem"] - c.reduce_by
        else:
            if c.reduce_to < 0:
                return "invalid_count", None
            new = c.reduce_to
        if new >= o["rem"]:
            return "invalid_count", None
        if new <= 0:
            self.cancel_resting(o["id"])
        else:
            o["rem"] = new
        return None, o

    def amend(self, c):
        o = self.resting_order(c.user_id, c.order_id)
        if isinstance(o, str):
            return o, None
        if (c.ticker, c.side) != (o["ticker"], o["side"]) or o["bid"] != (
                (c.side == "yes") == (c.action == "buy")):
            return "invalid_parameter", None
        if (c.yes_price is None) == (c.no_price is None):
            return "invalid_parameter", None
        price = c.yes_price if c.no_price is None else ONE - c.no_price
        if not self.valid(o["ticker"], price):
            return "invalid_price", None
        new = o["rem"]
        if c.count is not None:
            if c.count <= o["filled"]:
                return "invalid_count", None
            new = c.count - o["filled"]
        if price == o["price"] and new <= o["rem"]:
            o["rem"] = new
            return None, o
        if o["post_only"] and self.crosses(o["ticker"], o["bid"], price):
            return "post_only_cross", None
        old = (o["price"], o["rem"])
        o["price"], o["rem"] = price, new
        if self.available(o["user"]) < 0:
            o["price"], o["rem"] = old
            return "insufficient_balance", None
        self.resting.remove(o["id"])
        self.run(o)
        return None, o

    # -- lifecycle -----------------------------------------------------------------------
    def close(self, ticker):
        for i in list(self.resting):
            if self.orders[i]["ticker"] == ticker:
                self.cancel_resting(i)
        self.markets[ticker]["status"] = "closed"

    def settle(self, ticker, result):
        mk = self.markets[ticker]
        mk["status"], mk["result"] = "settled", result
        for (user, t), p in self.pos.items():
            if t != ticker or not (p["pos"] or p["cost"]):
                continue
            if result == "yes":
                pay = max(p["pos"], 0) * ONE
            elif result == "no":
                pay = max(-p["pos"], 0) * ONE
            else:
                pay = (p["cost"] // self.precision) * self.precision
            self.cash[user] = self.cash.get(user, 0) + pay
            self.escrow[ticker] -= pay
            p["realized"] += pay - p["cost"]
            p["pos"] = p["cost"] = 0
        self.void_adj -= self.escrow[ticker]
        self.escrow[ticker] = 0

    def conserved(self):
        return (sum(self.cash.values()) + self.fees + self.rounding + sum(self.escrow.values())
                - self.void_adj) == self.deposits

    def book(self):
        """[(ticker, bid, queue index, id, price, rem)]: each side best first, queue order."""
        out = []
        for t in self.markets:
            live = [self.orders[i] for i in self.resting if self.orders[i]["ticker"] == t]
            bids = sorted((o for o in live if o["bid"]), key=lambda o: (-o["price"], o["t"]))
            asks = sorted((o for o in live if not o["bid"]), key=lambda o: (o["price"], o["t"]))
            out += [(t, True, i, o["id"], o["price"], o["rem"]) for i, o in enumerate(bids)]
            out += [(t, False, i, o["id"], o["price"], o["rem"]) for i, o in enumerate(asks)]
        return sorted(out)
