"""Accounts, positions, collateral and the money of a fill (docs/exchange.md "Accounts").

Money is in 1e-8 dollar units (events.MONEY_SCALE). A user's ``cash`` includes the collateral
``reserved`` by resting orders; ``available = cash - reserved`` is what a new order may use.

Collateral (Kalshi: "a buy needs its cost covered"; selling YES you do not hold is buying
NO). Per (user, market), with ``NB`` the bid orders' weights (remaining × price + the taker
fee of one fill at the limit), ``QB`` their remaining count, ``NA``/``QA`` the same for asks
(price $1 − p) and the signed position::

    reserve = max(0, NB − min(QB, NO held) × $1) + max(0, NA − min(QA, YES held) × $1)

Closing a held contract pays instead of costing, by exactly $1 per contract whatever the
price, so the credit does not depend on which orders fill first.

A fill moves cash between the two users and the market's escrow ($1 per open YES/NO pair):
``escrow − cash`` is conserved per fill; fees and rounding fees go to the exchange's account.
Position cost is average cost: closing ``c`` of ``h`` held removes ``cost × c // h``.
"""

from __future__ import annotations

from kalshi_platform.exchange.book import P1, Order


class Account:
    """One user: ``cash`` and ``reserved`` (money), ``open_orders`` (resting count)."""

    __slots__ = ("user_id", "cash", "reserved", "open_orders", "deposits")

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.cash = 0
        self.reserved = 0
        self.open_orders = 0
        self.deposits = 0

    @property
    def available(self) -> int:
        """Cash not reserved by resting orders (money units)."""
        return self.cash - self.reserved


class Position:
    """A user's position in one market: ``pos`` signed centi-contracts (YES > 0, NO < 0),
    ``cost`` money paid for the held contracts, ``realized`` PnL, ``fees`` trade fees,
    ``rounding`` rounding fees, ``volume`` centi-contracts traded, ``traded`` money traded;
    ``bid_w``/``bid_q``/``ask_w``/``ask_q`` the open orders' collateral sums, ``reserve``
    the collateral currently counted in the account."""

    __slots__ = ("user_id", "pos", "cost", "realized", "fees", "rounding", "volume", "traded",
                 "bid_w", "bid_q", "ask_w", "ask_q", "reserve", "updated_ts")

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.pos = self.cost = self.realized = self.fees = self.rounding = 0
        self.volume = self.traded = 0
        self.bid_w = self.bid_q = self.ask_w = self.ask_q = self.reserve = 0
        self.updated_ts = 0


def reserve_of(p: Position) -> int:
    """The collateral formula above for one position (money units)."""
    pos = p.pos
    rb = p.bid_w - (min(p.bid_q, -pos) * P1 if pos < 0 else 0)
    ra = p.ask_w - (min(p.ask_q, pos) * P1 if pos > 0 else 0)
    return (rb if rb > 0 else 0) + (ra if ra > 0 else 0)


def order_weight(o: Order, taker_fee) -> int:
    """Collateral weight of ``o``'s remaining count: cost at its limit plus the taker fee."""
    rem = o.remaining
    if rem <= 0:
        return 0
    cost = rem * o.price if o.is_bid else rem * (P1 - o.price)
    return cost + taker_fee(rem, o.price)


def refresh(p: Position, acct: Account) -> None:
    """Bring ``acct.reserved`` up to date with the position's collateral (reserve_of,
    inlined: this runs on every order change)."""
    pos = p.pos
    rb = p.bid_w - (min(p.bid_q, -pos) * P1 if pos < 0 else 0)
    ra = p.ask_w - (min(p.ask_q, pos) * P1 if pos > 0 else 0)
    r = (rb if rb > 0 else 0) + (ra if ra > 0 else 0)
    acct.reserved += r - p.reserve
    p.reserve = r


def reweigh(p: Position, o: Order, qty: int, taker_fee) -> None:
    """``o`` just lost ``qty`` of its remaining (already subtracted): update the open-order
    sums to its new weight (order_weight, inlined)."""
    rem, price = o.remaining, o.price
    if o.is_bid:
        w = rem * price + taker_fee(rem, price) if rem > 0 else 0
        p.bid_w += w - o.w
        p.bid_q -= qty
    else:
        w = rem * (P1 - price) + taker_fee(rem, price) if rem > 0 else 0
        p.ask_w += w - o.w
        p.ask_q -= qty
    o.w = w


def add_order(p: Position, o: Order, taker_fee) -> None:
    """Count ``o`` (remaining, weight) in the position's open-order sums (order_weight,
    inlined)."""
    rem, price = o.remaining, o.price
    if o.is_bid:
        w = o.w = rem * price + taker_fee(rem, price) if rem > 0 else 0
        p.bid_w += w
        p.bid_q += rem
    else:
        w = o.w = rem * (P1 - price) + taker_fee(rem, price) if rem > 0 else 0
        p.ask_w += w
        p.ask_q += rem


def drop_order(p: Position, o: Order) -> None:
    """Stop counting ``o`` in the position's open-order sums."""
    if o.is_bid:
        p.bid_w -= o.w
        p.bid_q -= o.remaining
    else:
        p.ask_w -= o.w
        p.ask_q -= o.remaining
    o.w = 0


def fill_money(p: Position, acct: Account, o: Order, price: int, qty: int, fee: int,
               precision: int) -> tuple[int, int]:
    """Apply one fill of ``qty`` at YES price ``price`` to ``o``'s owner.

    Moves the position (netting YES against NO), its cost and realized PnL, and the cash
    (through ``o``'s rounding accumulator). Returns ``(cash, rounding)``: the exact cash flow
    of the contracts (positive = received; the market's escrow changes by ``-cash``) and the
    rounding fee kept by the exchange (``fee`` is charged besides). Does not touch the
    open-order sums."""
    pos = p.pos
    if o.is_bid:
        held = -pos if pos < 0 else 0
        close = qty if qty < held else held
        opened = qty - close
        proceeds = close * (P1 - price)
        open_cost = opened * price
        p.pos = pos + qty
    else:
        held = pos if pos > 0 else 0
        close = qty if qty < held else held
        opened = qty - close
        proceeds = close * price
        open_cost = opened * (P1 - price)
        p.pos = pos - qty
    if close:
        removed = p.cost * close // held
        p.cost -= removed
        p.realized += proceeds - removed
    p.cost += open_cost
    cash = proceeds - open_cost
    exact = cash - fee
    cum = o.cum = o.cum + exact
    applied = cum - cum % precision  # fees.floor_to, inlined
    delta = applied - o.applied
    o.applied = applied
    acct.cash += delta
    p.fees += fee
    rounding = exact - delta
    p.rounding += rounding
    p.volume += qty
    p.traded += qty * (price if o.is_bid else P1 - price)
    return cash, rounding
