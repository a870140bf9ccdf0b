"""The transport-free exchange core: matching, accounts, settlement, WAL (docs/exchange.md).

``Exchange().submit(cmd, ts_ns) -> Result`` applies one command (commands.py) and returns the
order(s) and events (events.py); ``DurableExchange(path).submit`` does the same after a
durable WAL append (wal.py). REST, WS and FIX layers build on these, nothing here knows a
transport.
"""

from kalshi_platform.exchange.commands import (AddMarket, AmendOrder, BatchCancelOrders,
                                               BatchCreateOrders, CancelOrder, CloseMarket,
                                               Command, CreateOrder, CreateOrderGroup,
                                               DecreaseOrder, Deposit, DetermineMarket,
                                               MassCancel, OrderGroupAction, SettleMarket, Tick)
from kalshi_platform.exchange.engine import Exchange, ExchangeConfig
from kalshi_platform.exchange.errors import ExchangeError
from kalshi_platform.exchange.events import (MONEY_SCALE, BookDelta, Fill, MarketStatus,
                                             OrderGroupUpdate, OrderUpdate, OrderView,
                                             PositionUpdate, Result, SettlementRecord, Trade)
from kalshi_platform.exchange.fees import FeeConfig

__all__ = [
    "AddMarket", "AmendOrder", "BatchCancelOrders", "BatchCreateOrders", "BookDelta",
    "CancelOrder", "CloseMarket", "Command", "CreateOrder", "CreateOrderGroup",
    "DecreaseOrder", "Deposit", "DetermineMarket", "Exchange", "ExchangeConfig",
    "ExchangeError", "FeeConfig", "Fill", "MONEY_SCALE", "MarketStatus", "MassCancel", "OrderGroupAction",
    "OrderGroupUpdate", "OrderUpdate", "OrderView", "PositionUpdate", "Result",
    "SettleMarket", "SettlementRecord", "Tick", "Trade",
]
