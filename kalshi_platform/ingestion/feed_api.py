"""What the WebSocket ingester needs from its neighbours, as typing Protocols.

:class:`~kalshi_platform.ingestion.ws_client.KalshiWSClient` depends on these interfaces, not
on :mod:`kalshi_platform.ticker_plant`, so ``ingestion`` never imports the plant (the plant
imports ``ingestion.messages``; the other direction would be a cycle). The ticker plant
(:class:`kalshi_platform.ticker_plant.plant.TickerPlant`) implements :class:`PlantAPI`; the
recorder (:class:`kalshi_platform.ingestion.recorder.Recorder`) implements :class:`FrameTap`.
Both are structural: anything with these methods will do (tests pass fakes).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

__all__ = ["BOOK_LIVE", "PlantAPI", "FrameTap"]

#: the book state in which a book is trustworthy (the plant's ``order_book.LIVE``; the other
#: states are ``stale`` and ``syncing``). A plain string so the client need not import the plant.
BOOK_LIVE = "live"


class PlantAPI(Protocol):
    """The ticker plant's public API, as the WebSocket client uses it.

    * ``process(payload, recv_ns, raw)``: one raw frame (text/bytes) the client could not
      decode; the plant quarantines it with the exact text.
    * ``process_frame(frame, recv_ns, raw)``: one frame decoded by
      :func:`kalshi_platform.ingestion.messages.decode_json`; ``raw`` is its source text.
    * ``feed_event(kind, detail=..., ts_ns=...)``: a ``feed_events`` row (``connect``,
      ``disconnect``, ``error``); ``ts_ns`` ns since the epoch, UTC.
    * ``reset(detail)``: forget every book and seq watermark (on reconnect: sids are reassigned).
    * ``set_use_yes_price(sid, flag)``: the ``use_yes_price`` flag of orderbook subscription
      ``sid`` (docs/kalshi-api.md §7.8).
    * ``set_resync_handler(fn)``: register ``fn(sid, tickers)``, called when books on ``sid``
      need fresh snapshots.
    * ``remove_market(ticker) -> bool``: forget a market's book (unsubscribed).
    * ``book_state(ticker) -> str | None``: ``live``/``stale``/``syncing``, ``None`` if no book.

    ``recv_ns`` is the local receipt time, ns since the epoch (UTC).
    """

    def process(self, payload: bytes | str | dict, recv_ns: int | None = None,
                raw: bytes | str | None = None) -> None: ...

    def process_frame(self, f: Any, recv_ns: int | None = None, raw: Any = None) -> None: ...

    def feed_event(self, kind: str, sid: int | None = None, expected_seq: int | None = None,
                   got_seq: int | None = None, detail: str | None = None,
                   ts_ns: int | None = None) -> None: ...

    def reset(self, detail: str = "reconnect") -> None: ...

    def commit(self) -> None: ...

    def set_use_yes_price(self, sid: int, flag: bool) -> None: ...

    def set_resync_handler(self, fn: Callable[[int, list[str]], None] | None) -> None: ...

    def remove_market(self, ticker: str) -> bool: ...

    def book_state(self, ticker: str) -> str | None: ...


class FrameTap(Protocol):
    """Receives every raw frame before it is decoded, and connection events.

    ``frame(raw, recv_ns)``: the exact text (or bytes) of one WebSocket message and its
    receipt time (ns since epoch, UTC). ``event(kind, recv_ns, sid, detail, reset)``:
    ``connect``, ``disconnect`` (``reset``: whether the plant dropped its books) or ``resync``.
    Implemented by :class:`~kalshi_platform.ingestion.recorder.Recorder`.
    """

    def frame(self, raw: str | bytes, recv_ns: int) -> None: ...

    def event(self, kind: str, recv_ns: int, sid: int | None = None,
              detail: str | None = None, reset: bool | None = None) -> None: ...
