"""Compatibility names for the sim's REST layer, which now lives in :mod:`.market_data` (data,
fixtures, object completion) and :mod:`.rest_market` (endpoints)."""

from kalshi_platform.sim.market_data import (
    EPOCH_ISO, RestData, TradeRecord, event_of, series_of, trade_from_ws)
from kalshi_platform.sim.rest_market import (
    MAX_LIMIT, REST_PREFIX, STATUS_FILTER, RestApi, RestError)

__all__ = ["EPOCH_ISO", "MAX_LIMIT", "REST_PREFIX", "STATUS_FILTER", "RestApi", "RestData",
           "RestError", "TradeRecord", "event_of", "series_of", "trade_from_ws"]
