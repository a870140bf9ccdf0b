"""Example strategies for ``kalshi-platform backtest`` (docs/trading.md "Examples")."""
