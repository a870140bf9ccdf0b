"""The plant's pass-through messages: trades, tickers, lifecycle, fills, Kalshi errors and
unknown types. Each is range-checked (:mod:`kalshi_platform.ingestion.units`; a
``DecodeError`` becomes a quarantine record in :meth:`TickerPlant.process_frame`), seq-checked
(``_accept``) and turned into one normalized event; none touches a book.

A mixin of :class:`~kalshi_platform.ticker_plant.plant.TickerPlant`, which provides
``_accept``, ``_produce``, ``_ts``, ``_feed`` and ``stats``.
"""

from __future__ import annotations

import logging

import orjson

from kalshi_platform.api.errors import error_text
from kalshi_platform.ingestion.messages import (
    DecodeError,
    ErrorFrame,
    EventFeeUpdate,
    EventLifecycle,
    Fill,
    MarketLifecycle,
    MultivariateMarketLifecycle,
    Ticker,
    Trade,
    Unknown,
)
from kalshi_platform.ingestion.units import (
    fill_units,
    lifecycle_units,
    ticker_units,
    trade_units,
    ts_units,
)
from kalshi_platform.logfmt import escape_for_log
from kalshi_platform.ticker_plant.events import (
    FeedEvent,
    FillEvent,
    LifecycleEvent,
    TickerEvent,
    TradeEvent,
)

log = logging.getLogger("kalshi_platform.ticker_plant.plant")


def _detail_json(msg: dict) -> str:
    """A lifecycle ``msg`` as compact JSON text (lossless); DecodeError if not encodable."""
    try:
        return orjson.dumps(msg).decode()
    except TypeError as e:  # integers wider than 64 bits, nesting deeper than orjson allows
        raise DecodeError(f"msg not storable: {e}") from None


class PassThroughHandlers:
    """Handlers for the messages that pass through the plant without touching a book."""

    def _on_trade(self, f: Trade, recv_ns: int | None) -> None:
        m = f.msg
        yes, no, count, taker, ts_ns = trade_units(m)
        if self._accept(f.sid, f.seq, "trade", recv_ns):
            self._produce("trades", TradeEvent(m.market_ticker, self._ts(ts_ns, recv_ns),
                                               m.trade_id, yes, no, count, taker, recv_ns))

    def _on_ticker(self, f: Ticker, recv_ns: int | None) -> None:
        m = f.msg
        price, yb, ya, ybs, yas, vol, oi, ts_ns = ticker_units(m)
        if self._accept(f.sid, f.seq, "ticker", recv_ns):
            self._produce("tickers", TickerEvent(m.market_ticker, self._ts(ts_ns, recv_ns), price,
                                                 yb, ya, ybs, yas, vol, oi, recv_ns))

    def _on_market_lifecycle(self, f: MarketLifecycle | MultivariateMarketLifecycle,
                             recv_ns: int | None) -> None:
        ticker, event_type, result, value, ts_ns = lifecycle_units(f.msg)
        detail = _detail_json(f.msg)
        if self._accept(f.sid, f.seq, f.type, recv_ns):
            self._produce("market_lifecycle", LifecycleEvent(
                ticker, self._ts(ts_ns, recv_ns), event_type, result, value, detail, recv_ns))

    def _on_event_lifecycle(self, f: EventLifecycle | EventFeeUpdate,
                            recv_ns: int | None) -> None:
        """``event_lifecycle`` / ``event_fee_update``: a ``market_lifecycle`` row keyed by the
        event ticker, ``event_type`` = the wire type, ``detail`` = the whole msg."""
        m = f.msg
        ticker = m.get("event_ticker")
        if not isinstance(ticker, str) or not 0 < len(ticker) <= 128:
            raise DecodeError(f"{f.type}: event_ticker must be a string of 1..128 characters")
        ts_ns = ts_units(m.get("ts_ms"))
        detail = _detail_json(m)
        if self._accept(f.sid, f.seq, f.type, recv_ns):
            self._produce("market_lifecycle", LifecycleEvent(
                ticker, self._ts(ts_ns, recv_ns), f.type, None, None, detail, recv_ns))

    def _on_fill(self, f: Fill, recv_ns: int | None) -> None:
        (ticker, trade_id, order_id, side, action, is_taker, yes, count, fee, post,
         ts_ns) = fill_units(f.msg)
        if self._accept(f.sid, f.seq, "fill", recv_ns):
            self._produce("fills", FillEvent(ticker, self._ts(ts_ns, recv_ns), trade_id, order_id,
                                             side, action, is_taker, yes, count, fee, post,
                                             recv_ns))

    def _on_error(self, f: ErrorFrame, recv_ns: int | None) -> None:
        m = f.msg or {}
        if not self._accept(f.sid, f.seq, "error", recv_ns):
            return
        self.stats.errors += 1
        detail = f"kalshi error {error_text(m, limit=400)}"
        log.warning("%s (command id %s)", escape_for_log(detail), f.id)
        self._feed(FeedEvent(self._ts(None, recv_ns), "error", None, None, None, detail))

    def _on_unknown(self, f: Unknown, recv_ns: int | None) -> None:
        if self._accept(f.sid, f.seq, "unknown:" + f.wire_type, recv_ns):
            if f.wire_type not in self._unknown_logged and len(self._unknown_logged) < 100:
                self._unknown_logged.add(f.wire_type)
                log.info("unknown message type %s (tolerated; not logged again)",
                         escape_for_log(f.wire_type))
