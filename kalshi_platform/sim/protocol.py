"""Kalshi WebSocket v2 protocol constants the sim's feed uses (docs/kalshi-api.md §7)."""

from __future__ import annotations

WS_PATH = "/trade-api/ws/v2"

#: wire type of a data frame → the channel that carries it (docs/kalshi-api.md §7.4)
CHANNEL_OF = {
    "orderbook_snapshot": "orderbook_delta",
    "orderbook_delta": "orderbook_delta",
    "ticker": "ticker",
    "trade": "trade",
    "market_lifecycle_v2": "market_lifecycle_v2",
    "event_lifecycle": "market_lifecycle_v2",
    "event_fee_update": "market_lifecycle_v2",
}
#: channels whose frames (and acks) carry ``seq`` (docs/kalshi-api.md §7.5, §7.7, §7.9;
#: ``order_group_updates``: docs/trading-api.md §4.1, "seq required")
SEQ_CHANNELS = {"orderbook_delta", "trade", "market_lifecycle_v2", "order_group_updates"}
#: channels a client may subscribe to; the ones outside CHANNEL_OF's values carry no data
#: unless a trading API publishes on them (:meth:`MarketFeed.publish_private`)
KNOWN_CHANNELS = {
    "orderbook_delta", "ticker", "trade", "market_lifecycle_v2", "multivariate_market_lifecycle",
    "fill", "user_orders", "market_positions", "order_group_updates", "communications",
    "cfbenchmarks_value", "cfbenchmarks_value_5hz", "pyth_value"}
#: channels that take no market filter (§7.4)
UNFILTERED = {"market_lifecycle_v2", "multivariate_market_lifecycle"}

# Kalshi WebSocket error codes (docs/kalshi-api.md §7.3)
E_UNPROCESSABLE, E_PARAMS, E_CHANNELS, E_SIDS, E_UNKNOWN_CMD = 1, 2, 3, 4, 5
E_UNKNOWN_SID, E_UNKNOWN_CHANNEL, E_INVALID_PARAM, E_ONE_SID = 7, 8, 11, 12
E_UNSUPPORTED_ACTION, E_TICKER_REQUIRED, E_ACTION_REQUIRED, E_MARKET_NOT_FOUND = 13, 14, 15, 16
ERROR_TEXT = {
    1: "Unable to process message", 2: "Params required", 3: "Channels required",
    4: "Subscription IDs required", 5: "Unknown command", 7: "Unknown subscription ID",
    8: "Unknown channel name", 11: "Invalid parameter", 12: "Exactly one subscription ID is required",
    13: "Unsupported action", 14: "Market Ticker required", 15: "Action required",
    16: "Market not found",
}
