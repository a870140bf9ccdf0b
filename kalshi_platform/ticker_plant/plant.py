"""The ticker plant: raw Kalshi frames in, exact books, BBO and normalized events out.

One pipeline for every source (live socket, recording, local server; architecture.md):

``process(payload, recv_ns)`` → decode (:mod:`kalshi_platform.ingestion.messages`) → seq check
per ``sid`` → book update → BBO on top-of-book change → ``publish`` to every publisher.

Sequencing (kalshi-api.md §7.10; field-notes "Books and sequencing"):

* ``seq`` counts per subscription (``sid``) across all its markets; ``ok``/``unsubscribed`` acks
  consume seq numbers too. The first seq seen on a sid is accepted as is.
* ``seq == last`` is a duplicate and is dropped (counted).
* any other ``seq != last + 1`` is a gap: every book on that sid becomes ``stale``, a
  ``feed_events`` row of kind ``gap`` is emitted, and deltas for those books are ignored (still
  recorded) until a fresh snapshot replaces the book. If a ``resync`` callback is set it is
  called with ``(sid, tickers)`` (the live ingester sends ``get_snapshot``) and the books are
  marked ``syncing``.
* A frame that fails to decode is quarantined (kept verbatim, counted, logged, a
  ``feed_events`` row) and never advances a watermark, so the next frame shows the gap.

The plant does no I/O and never raises for bad input.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable, Iterable

import msgspec
import orjson

from kalshi_platform.fixedpoint import ONE_DOLLAR, _price_cache, _size_cache
from kalshi_platform.ingestion.messages import (
    NEED_RAW,
    DecodeError,
    ErrorFrame,
    EventFeeUpdate,
    EventLifecycle,
    Fill,
    MarketLifecycle,
    MultivariateMarketLifecycle,
    Ok,
    OrderbookDelta,
    OrderbookSnapshot,
    RawNeeded,
    Subscribed,
    Ticker,
    Trade,
    Unknown,
    Unsubscribed,
    decode_frame,
    decode_json,
    delta_units,
    fill_units,
    lifecycle_units,
    snapshot_units,
    ticker_units,
    trade_units,
    ts_units,
)
from kalshi_platform.ticker_plant.events import (
    BBO,
    DeltaEvent,
    FeedEvent,
    FillEvent,
    LifecycleEvent,
    QuarantineRecord,
    SnapshotEvent,
    TickerEvent,
    TradeEvent,
)
from kalshi_platform.ticker_plant.order_book import LIVE, STALE, SYNCING, BookError, OrderBook
from kalshi_platform.ticker_plant.publishers import Publisher

log = logging.getLogger(__name__)

_LOG_FIRST = 20  # log the first N quarantined frames in full, then every 1000th


def _detail_json(msg: dict) -> str:
    """A lifecycle ``msg`` as compact JSON text (lossless); DecodeError if not encodable."""
    try:
        return orjson.dumps(msg).decode()
    except TypeError as e:  # e.g. integers wider than 64 bits
        raise DecodeError(f"msg not storable: {e}") from None


class PlantStats:
    """Counters of one plant run (plain ints and Counters; cheap to bump on the hot path)."""

    __slots__ = ("frames", "messages", "deltas", "bbo", "gaps", "duplicates", "quarantined",
                 "crossed", "book_errors", "deltas_ignored", "errors", "snapshot_rows", "events")

    def __init__(self) -> None:
        self.frames = 0  # frames handed to the plant
        self.messages: Counter[str] = Counter()  # accepted messages by wire type (not deltas)
        self.deltas = 0  # accepted orderbook_delta messages
        self.bbo = 0  # BBO changes (one bbo row each)
        self.gaps = 0
        self.duplicates = 0  # seq == last: dropped
        self.quarantined = 0
        self.crossed = 0  # times a book entered the crossed state
        self.book_errors = 0  # negative levels / bad snapshot levels
        self.deltas_ignored = 0  # deltas for books not live (recorded, not applied)
        self.errors = 0  # Kalshi `error` replies
        self.snapshot_rows = 0  # orderbook_snapshots rows (one per level, 1 for an empty book)
        self.events: Counter[str] = Counter()  # other events produced, by table

    def messages_by_type(self) -> dict[str, int]:
        """Accepted messages by wire type, deltas included, sorted by name."""
        out = Counter(self.messages)
        if self.deltas:
            out["orderbook_delta"] += self.deltas
        return dict(sorted(out.items()))

    def table_rows(self) -> dict[str, int]:
        """Rows the plant produced per storage table (``orderbook_snapshots`` counts levels)."""
        out = Counter(self.events)
        if self.deltas:
            out["orderbook_deltas"] += self.deltas
        if self.bbo:
            out["bbo"] += self.bbo
        if self.snapshot_rows:
            out["orderbook_snapshots"] = self.snapshot_rows
        return dict(sorted(out.items()))


class TickerPlant:
    """Routes Kalshi messages to per-market :class:`OrderBook` s and emits events.

    Args:
        publishers: fan-out targets (:class:`Publisher`), called in order for every event.
            With none, events are not materialised at all (books and BBO are still kept).
        use_yes_price: the orderbook subscription's ``use_yes_price`` flag (kalshi-api.md §7.8):
            when ``True`` NO-side levels arrive on the YES price scale and are converted to NO
            bids at ``1 − p``. Per-sid overrides via :meth:`set_use_yes_price`.
        resync: optional ``callback(sid, tickers)`` asked to fetch fresh snapshots after a gap.

    Attributes: ``books`` (ticker → :class:`OrderBook`), ``stats`` (:class:`PlantStats`),
    ``channels`` (sid → channel name from ``subscribed`` acks), ``clock_ns`` (latest time seen,
    the fallback timestamp for frames that carry none).
    """

    def __init__(
        self,
        publishers: Iterable[Publisher] = (),
        *,
        use_yes_price: bool = False,
        resync: Callable[[int, list[str]], None] | None = None,
    ) -> None:
        self.publishers: tuple[Publisher, ...] = tuple(publishers)
        self._yes_scale_sid: dict[int, bool] = {}
        self._use_yes_price = use_yes_price
        self._yes_scale_any = use_yes_price
        self.resync = resync
        self.books: dict[str, OrderBook] = {}
        self.channels: dict[int, str] = {}
        self.stats = PlantStats()
        self.clock_ns = 0
        self._seq: dict[int, int] = {}
        self._last_top: dict[str, tuple] = {}
        self._crossed: set[str] = set()
        self._unknown_logged: set[str] = set()
        self._handlers: dict[type, Callable[[Any, int | None], None]] = {
            OrderbookSnapshot: self._on_snapshot,
            Trade: self._on_trade,
            Ticker: self._on_ticker,
            MarketLifecycle: self._on_market_lifecycle,
            MultivariateMarketLifecycle: self._on_market_lifecycle,
            EventLifecycle: self._on_event_lifecycle,
            EventFeeUpdate: self._on_event_lifecycle,
            Fill: self._on_fill,
            Subscribed: self._on_subscribed,
            Ok: self._on_ack,
            Unsubscribed: self._on_unsubscribed,
            ErrorFrame: self._on_error,
            Unknown: self._on_unknown,
        }

    # -- entry points ----------------------------------------------------------------------

    def process(self, payload: bytes | str | dict, recv_ns: int | None = None,
                raw: bytes | str | None = None) -> None:
        """Take one raw frame: JSON text (``bytes``/``str``) or an already-parsed ``dict``.

        ``recv_ns``: local receipt time (ns, UTC), ``None`` when unknown (bare recordings).
        ``raw``: the exact source text to keep if the frame is quarantined (default: the
        payload itself). Never raises for bad input: malformed frames are quarantined.
        """
        try:
            if type(payload) is dict:
                f = decode_frame(payload)
            elif isinstance(payload, (bytes, str, bytearray, memoryview)):
                f = decode_json(payload)
            else:
                raise DecodeError(f"frame is not a JSON object ({type(payload).__name__})")
        except DecodeError as e:
            self.stats.frames += 1
            if recv_ns is not None and recv_ns > self.clock_ns:
                self.clock_ns = recv_ns
            self._quarantine(payload if raw is None else raw, e.reason, recv_ns, e.sid, e.seq)
            return
        self.process_frame(f, recv_ns, payload if raw is None else raw)

    def process_frame(self, f: Any, recv_ns: int | None = None, raw: Any = None) -> None:
        """Take one decoded frame (a struct from :mod:`..ingestion.messages`).

        Numbers are validated first, then the seq check, then books and events; a frame that
        fails validation is quarantined (``raw``, the source text, is what gets kept; without
        it the frame is re-encoded) and does not touch the seq watermark. Never raises for bad
        input, except :class:`RawNeeded` when ``raw is NEED_RAW`` (see there).
        """
        st = self.stats
        st.frames += 1
        if type(f) is OrderbookDelta:
            # hot path, inlined: cached fixed-point parse, seq check, book update, BBO
            m = f.msg
            side = m.side
            ts_ms = m.ts_ms
            try:
                price = _price_cache[m.price_dollars]
                delta = _size_cache[m.delta_fp]
            except KeyError:
                price = None
            if (price is None or ts_ms is None or not 0 < price < ONE_DOLLAR
                    or (side != "yes" and side != "no")):
                try:
                    side, price, delta, ts = delta_units(m)
                except DecodeError as e:
                    if raw is NEED_RAW:
                        st.frames -= 1
                        raise RawNeeded() from None
                    self._quarantine(raw if raw is not None else f, e.reason, recv_ns, f.sid,
                                     f.seq)
                    return
                if ts is None:
                    ts = self.clock_ns if recv_ns is None else recv_ns
            else:
                ts = ts_ms * 1_000_000
            sid = f.sid
            seq = f.seq
            if seq is not None and sid is not None:
                last = self._seq.get(sid)
                if last is not None and seq != last + 1:
                    if seq == last:
                        st.duplicates += 1
                        return
                    self._gap(sid, last + 1, seq, recv_ns)
                self._seq[sid] = seq
            st.deltas += 1
            if ts > self.clock_ns:
                self.clock_ns = ts
            if side == "no" and self._yes_scale_any and self._yes_scale(sid):
                price = ONE_DOLLAR - price
            ticker = m.market_ticker
            if self.publishers:
                self._emit(DeltaEvent(ticker, ts, sid, seq, side, price, delta, recv_ns))
            book = self.books.get(ticker)
            if book is None or book.state != LIVE or book.sid != sid:
                st.deltas_ignored += 1  # not live, or another sid's stream: never mix them
                return
            try:
                changed = book.apply_delta(side, price, delta)
            except BookError as e:
                self._book_error(book, e, sid, ts)
                return
            if changed:
                self._top_changed(book, ts, seq, recv_ns)
            return
        if recv_ns is not None and recv_ns > self.clock_ns:
            self.clock_ns = recv_ns
        handler = self._handlers.get(type(f))
        try:
            if handler is None:
                raise DecodeError(f"not a Kalshi frame: {type(f).__name__}")
            handler(f, recv_ns)
        except DecodeError as e:
            if raw is NEED_RAW:
                st.frames -= 1
                raise RawNeeded() from None
            self._quarantine(raw if raw is not None else f, e.reason, recv_ns,
                             getattr(f, "sid", None), getattr(f, "seq", None))
        except Exception as e:  # a bug must not take the plant down; keep the frame
            log.exception("internal error handling %s", type(f).__name__)
            self._quarantine(raw if raw is not None and raw is not NEED_RAW else f,
                             f"internal error: {type(e).__name__}: {e}", recv_ns,
                             getattr(f, "sid", None), getattr(f, "seq", None))

    def reset(self, detail: str = "reconnect") -> None:
        """Forget every book and seq watermark (call on reconnect: sids are reassigned).

        Books are cleared and left ``syncing`` until their next snapshot; a ``feed_events``
        row of kind ``disconnect`` records the reset.
        """
        for b in self.books.values():
            b.clear(SYNCING)
        self._seq.clear()
        self.channels.clear()
        self._crossed.clear()
        self._yes_scale_sid.clear()
        self._yes_scale_any = self._use_yes_price
        self.feed_event("disconnect", detail=detail)

    @property
    def use_yes_price(self) -> bool:
        """Default ``use_yes_price`` convention for orderbook sids without an override."""
        return self._use_yes_price

    @use_yes_price.setter
    def use_yes_price(self, flag: bool) -> None:
        self._use_yes_price = flag
        self._yes_scale_any = flag or any(self._yes_scale_sid.values())

    def set_use_yes_price(self, sid: int, flag: bool) -> None:
        """Record the ``use_yes_price`` flag of orderbook subscription ``sid``."""
        self._yes_scale_sid[sid] = flag
        self._yes_scale_any = self._use_yes_price or any(self._yes_scale_sid.values())

    def feed_event(self, kind: str, sid: int | None = None, expected_seq: int | None = None,
                   got_seq: int | None = None, detail: str | None = None,
                   ts_ns: int | None = None) -> None:
        """Emit a ``feed_events`` row (connect, disconnect, gap, resync, error, quarantine)."""
        self._feed(FeedEvent(self.clock_ns if ts_ns is None else ts_ns, kind, sid,
                             expected_seq, got_seq, detail))

    def flush(self) -> None:
        """Flush every publisher."""
        for p in self.publishers:
            p.flush()

    def close(self) -> None:
        """Flush and close every publisher."""
        for p in self.publishers:
            p.close()

    # -- internals -------------------------------------------------------------------------

    def _emit(self, ev: Any) -> None:
        for p in self.publishers:
            p.publish(ev)

    def _produce(self, table: str, ev: Any) -> None:
        self.stats.events[table] += 1
        if self.publishers:
            self._emit(ev)

    def _feed(self, ev: FeedEvent) -> None:
        self._produce("feed_events", ev)

    def _accept(self, sid: int | None, seq: int | None, wire_type: str,
                recv_ns: int | None) -> bool:
        """Seq check for a validated frame; False for a duplicate (drop it)."""
        if seq is not None and sid is not None:
            last = self._seq.get(sid)
            if last is not None and seq != last + 1:
                if seq == last:
                    self.stats.duplicates += 1
                    return False
                self._gap(sid, last + 1, seq, recv_ns)
            self._seq[sid] = seq
        self.stats.messages[wire_type] += 1
        return True

    def _ts(self, ts_ns: int | None, recv_ns: int | None) -> int:
        if ts_ns is None:
            return self.clock_ns if recv_ns is None else recv_ns
        if ts_ns > self.clock_ns:
            self.clock_ns = ts_ns
        return ts_ns

    def _yes_scale(self, sid: int | None) -> bool:
        if sid is None:
            return self._use_yes_price
        return self._yes_scale_sid.get(sid, self._use_yes_price)

    def _books_on(self, sid: int) -> list[OrderBook]:
        return [b for b in self.books.values() if b.sid == sid]

    def _gap(self, sid: int, expected: int, got: int, recv_ns: int | None) -> None:
        self.stats.gaps += 1
        books = self._books_on(sid)
        for b in books:
            b.state = STALE
        ts = self.clock_ns if recv_ns is None else recv_ns
        how = "went backwards" if got < expected else f"skipped {got - expected}"
        self._feed(FeedEvent(ts, "gap", sid, expected, got,
                             f"seq {how}; {len(books)} book(s) stale"))
        log.warning("seq gap on sid %s: expected %s got %s; %d book(s) stale", sid, expected,
                    got, len(books))
        if self.resync is not None and books:
            self._request_resync(sid, books, ts)

    def _request_resync(self, sid: int, books: list[OrderBook], ts: int) -> None:
        tickers = [b.ticker for b in books]
        for b in books:
            b.state = SYNCING
        self._feed(FeedEvent(ts, "resync", sid, None, None, ",".join(tickers)))
        self.resync(sid, tickers)  # type: ignore[misc]

    def _quarantine(self, raw: Any, reason: str, recv_ns: int | None, sid: int | None = None,
                    seq: int | None = None) -> None:
        st = self.stats
        st.quarantined += 1
        if isinstance(raw, bytes):
            text = raw.decode("utf-8", "replace")
        elif isinstance(raw, str):
            text = raw
        else:
            try:
                text = msgspec.json.encode(raw).decode()
            except (TypeError, msgspec.EncodeError):
                text = repr(raw)
        if st.quarantined <= _LOG_FIRST or st.quarantined % 1000 == 0:
            log.warning("quarantined frame #%d: %s: %.200s", st.quarantined, reason, text)
        if self.publishers:
            self._emit(QuarantineRecord(recv_ns, reason, text))
        self._feed(FeedEvent(self.clock_ns if recv_ns is None else recv_ns, "quarantine", sid,
                             None, seq, reason))

    def _top_changed(self, book: OrderBook, ts: int, seq: int | None, recv_ns: int | None) -> None:
        top = book.top()
        ticker = book.ticker
        if self._last_top.get(ticker) == top:
            return
        self._last_top[ticker] = top
        self.stats.bbo += 1
        if self.publishers:
            self._emit(BBO(ticker, ts, top[0], top[1], top[2], top[3], seq, recv_ns))
        yb = top[0]
        ya = top[2]
        if yb is not None and ya is not None and yb >= ya:
            if ticker not in self._crossed:
                self._crossed.add(ticker)
                self.stats.crossed += 1
                self._feed(FeedEvent(ts, "error", book.sid, None, None,
                                     f"crossed book {ticker}: yes_bid {yb} >= yes_ask {ya}"))
        elif ticker in self._crossed:
            self._crossed.discard(ticker)

    def _book_error(self, book: OrderBook, err: BookError, sid: int | None, ts: int) -> None:
        self.stats.book_errors += 1
        log.warning("%s", err)
        self._feed(FeedEvent(ts, "error", sid, None, None, str(err)))
        if self.resync is not None and sid is not None:
            self._request_resync(sid, [book], ts)

    # -- handlers: validate (DecodeError → quarantine), then _accept (seq), then act ---------

    def _on_snapshot(self, f: OrderbookSnapshot, recv_ns: int | None) -> None:
        m = f.msg
        try:
            yes, no = snapshot_units(m)
        except DecodeError:
            # the snapshot is unreadable but names its market: that book is not live any more,
            # and it must be part of the resync the next gap on this sid asks for
            book = self.books.get(m.market_ticker)
            if book is None:
                book = self.books[m.market_ticker] = OrderBook(m.market_ticker, f.sid)
            book.sid = f.sid
            if book.state == LIVE:
                book.state = STALE
            raise
        if not self._accept(f.sid, f.seq, "orderbook_snapshot", recv_ns):
            return
        ts = self._ts(m.ts_ms * 1_000_000 if m.ts_ms is not None else None, recv_ns)
        if no and self._yes_scale(f.sid):
            no = [(ONE_DOLLAR - p, q) for p, q in no]
        ticker = m.market_ticker
        self.stats.snapshot_rows += (len(yes) + len(no)) or 1
        if self.publishers:
            self._emit(SnapshotEvent(ticker, ts, f.sid, f.seq, yes, no, recv_ns))
        book = self.books.get(ticker)
        if book is None:
            book = self.books[ticker] = OrderBook(ticker, f.sid)
        book.sid = f.sid
        book.market_id = m.market_id
        try:
            book.apply_snapshot(yes, no)
        except BookError as e:
            self._book_error(book, e, f.sid, ts)
            return
        self._top_changed(book, ts, f.seq, recv_ns)

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
        if not isinstance(ticker, str) or not ticker:
            raise DecodeError(f"{f.type}: event_ticker must be a string, got {ticker!r}")
        ts_ms = m.get("ts_ms")
        ts_ns = ts_units(ts_ms) if ts_ms is not None else None
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

    def _on_subscribed(self, f: Subscribed, recv_ns: int | None) -> None:
        channel, sid = f.channel_sid
        if self._accept(None, None, "subscribed", recv_ns) and sid is not None:
            # a (re)used sid starts a new seq stream: its old books wait for fresh snapshots
            self._seq.pop(sid, None)
            for b in self._books_on(sid):
                b.state = SYNCING
            if channel:
                self.channels[sid] = channel

    def _on_ack(self, f: Ok, recv_ns: int | None) -> None:
        self._accept(f.sid, f.seq, "ok", recv_ns)

    def _on_unsubscribed(self, f: Unsubscribed, recv_ns: int | None) -> None:
        if self._accept(f.sid, f.seq, "unsubscribed", recv_ns) and f.sid is not None:
            for b in self._books_on(f.sid):
                b.state = STALE
            self._seq.pop(f.sid, None)

    def _on_error(self, f: ErrorFrame, recv_ns: int | None) -> None:
        m = f.msg or {}
        if not self._accept(f.sid, f.seq, "error", recv_ns):
            return
        self.stats.errors += 1
        detail = f"kalshi error {m.get('code')}: {m.get('msg', '')}"
        if m.get("market_ticker"):
            detail += f" ({m['market_ticker']})"
        log.warning("%s (command id %s)", detail, f.id)
        self._feed(FeedEvent(self._ts(None, recv_ns), "error", None, None, None, detail))

    def _on_unknown(self, f: Unknown, recv_ns: int | None) -> None:
        if self._accept(f.sid, f.seq, "unknown:" + f.wire_type, recv_ns):
            if f.wire_type not in self._unknown_logged:
                self._unknown_logged.add(f.wire_type)
                log.info("unknown message type %r (tolerated; not logged again)", f.wire_type)

    # -- reporting -------------------------------------------------------------------------

    def markets_summary(self) -> dict[str, dict]:
        """Per market: final state and BBO as decimal strings (dollars / contracts)."""
        return {t: self.books[t].to_dict() for t in sorted(self.books)}
