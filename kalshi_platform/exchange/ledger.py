"""Accounts, positions, collateral and the money of a fill (docs/exchange.md "Accounts").

The types and the arithmetic are the C core's (``_core.c``, core_types.h and core_ledger.h):
this module names them and states the rules they follow.

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

from kalshi_platform.exchange._core import Account, Position, add_order, drop_order, refresh
from kalshi_platform.exchange.book import P1

__all__ = ["Account", "Position", "add_order", "drop_order", "refresh", "reserve_of"]


def reserve_of(p: Position) -> int:
    """The collateral formula above for one position (money units): the reference the
    engine's invariant check compares the C core's running ``reserve`` with."""
    pos = p.pos
    rb = p.bid_w - (min(p.bid_q, -pos) * P1 if pos < 0 else 0)
    ra = p.ask_w - (min(p.ask_q, pos) * P1 if pos > 0 else 0)
    return (rb if rb > 0 else 0) + (ra if ra > 0 else 0)
