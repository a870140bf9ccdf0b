"""The trading layer: strategies, order management, pre-trade risk, positions and PnL, and
venues behind one interface (issue 14; docs/trading.md).

Write a :class:`Strategy`, run it with :func:`run_backtest` (or ``kalshi-platform backtest``).
Units everywhere: prices micro-dollars, counts centi-contracts, money 1e-8 dollars, UTC ns
(:mod:`.model`).
"""

from kalshi_platform.trading.model import (MONEY_SCALE, Action, Fill, Order, OrderReport,
                                           OrderStatus, Side, TimeInForce, TradingState,
                                           cents, contracts, dollars)
from kalshi_platform.trading.risk_config import RiskConfig, load_risk_config
from kalshi_platform.trading.strategy import Strategy

__all__ = ["Action", "Fill", "MONEY_SCALE", "Order", "OrderReport", "OrderStatus",
           "RiskConfig", "Side", "Strategy", "TimeInForce", "TradingState", "cents",
           "contracts", "dollars", "load_risk_config", "run_backtest"]


def __getattr__(name):  # run_backtest pulls in the exchange core and the plant: lazily
    if name == "run_backtest":
        from kalshi_platform.trading.run import run_backtest

        return run_backtest
    raise AttributeError(name)
