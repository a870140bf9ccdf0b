"""Small builders for the exchange unit tests (prices in cents here, for readability)."""

from kalshi_platform.exchange import AddMarket, CreateOrder, Deposit, Exchange, ExchangeConfig

CENT = 10_000        # micro-dollars
MONEY_CENT = 10**6   # money units
DOLLAR = 10**8


def market(ex=None, ticker="M", users=("a", "b", "c"), cents=100_000, **kw) -> Exchange:
    ex = ex or Exchange(ExchangeConfig(**kw))
    assert ex.submit(AddMarket(ticker=ticker, event_ticker="E", fee_type="quadratic"), 0).ok
    for u in users:
        ex.submit(Deposit(user_id=u, amount=cents), 0)
    return ex


def order(user, side, action, count, cents, ticker="M", **kw) -> CreateOrder:
    """``count`` whole contracts; price in cents on the order's own side."""
    price = {"yes_price": cents * CENT} if side == "yes" else {"no_price": cents * CENT}
    return CreateOrder(user_id=user, ticker=ticker, side=side, action=action,
                       count=count * 100, **price, **kw)


def kinds(res, name):
    return [e for e in res.events if type(e).__name__ == name]
