"""The ticker plant: raw Kalshi frames in, exact books, BBO and normalized events out.

One pipeline for every source (live socket, recording, local server; docs/architecture.md):

``process(payload, recv_ns)`` → decode and range-check (:mod:`kalshi_platform.ingestion.messages`,
:mod:`kalshi_platform.ingestion.units`) → seq check per ``sid`` → book update → BBO on a
top-of-book or validity change → every publisher (:class:`~.fanout.FanOut`).
A recording's deltas take the same steps compiled, whole chunks at a time
(:meth:`~.deltas.DeltaHandlers.process_lines`, :mod:`kalshi_platform.ingestion._delta`).

The contract (docs/plant-contract.md):

* **Bounded values.** Every number is range-checked before it reaches a book, an event or a
  sink; a frame with a value out of range is quarantined with a reason.
* **Quarantine.** A frame that fails to decode is kept as received (text, or the exact bytes
  when they are not UTF-8), counted, logged escaped and cut to 200 characters, and reported
  as a ``feed_events`` row; it never advances a seq watermark.
* **Seq per sid** (docs/kalshi-api.md §7.10): ``seq`` counts per subscription across its markets;
  ``ok``/``unsubscribed`` acks consume seq numbers too. The first seq seen on a sid is taken
  as is. ``seq <= watermark`` is a duplicate: dropped, counted, the watermark never moves
  back. ``seq > watermark + 1`` is a gap: every book on the sid leaves ``live`` and a resync
  is requested (``set_resync_handler``).
* **Book validity in the BBO stream.** A BBO row carries the book's ``state``. A book leaving
  ``live`` (gap, crossed or locked top, book error, reset, unsubscribe) emits one BBO row with
  the new state and null prices; its first top after a fresh snapshot is always emitted. A
  crossed or locked book means a missed delete: it is marked stale and resynced.
* **Sink isolation.** A publisher that raises is marked failed (``sink_failures``, a counter,
  a ``feed_events`` row of kind ``sink_failed``, a log line); the others and the books go on.

The plant does no I/O and never raises for bad input.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from kalshi_platform.fixedpoint import ONE_DOLLAR
from kalshi_platform.ingestion.messages import (
    MAX_COUNTER,
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
    Subscribed,
    Ticker,
    Trade,
    Unknown,
    Unsubscribed,
    decode_frame,
    decode_json,
)
from kalshi_platform.ingestion.units import MAX_EPOCH_NS, MIN_EPOCH_NS, snapshot_units
from kalshi_platform.logfmt import escape_for_log
from kalshi_platform.ticker_plant.events import (
    BBO,
    FeedEvent,
    QuarantineRecord,
    SnapshotEvent,
    kept_text,
)
from kalshi_platform.ticker_plant.blocks import BlockBuilder
from kalshi_platform.ticker_plant.fanout import FanOut
from kalshi_platform.ticker_plant.deltas import DeltaHandlers
from kalshi_platform.ticker_plant.passthrough import PassThroughHandlers
from kalshi_platform.ticker_plant.order_book import LIVE, STALE, SYNCING, BookError, OrderBook
from kalshi_platform.ticker_plant.publishers import Publisher
from kalshi_platform.ticker_plant.stats import PlantStats

log = logging.getLogger(__name__)

_LOG_FIRST = 20  # log the first N quarantined frames, then every 1000th
_DETAIL_MAX = 500  # feed_events.detail taken from the wire is cut to this many characters

__all__ = ["TickerPlant", "PlantStats"]


class TickerPlant(DeltaHandlers, PassThroughHandlers):
    """Routes Kalshi messages to per-market :class:`OrderBook` s and emits events.

    Args:
        publishers: fan-out targets (:class:`Publisher`), called in order for every event.
            With none, events are not materialised at all (books and BBO are still kept).
        use_yes_price: the orderbook subscription's ``use_yes_price`` flag (docs/kalshi-api.md §7.8):
            when ``True`` NO-side levels arrive on the YES price scale and are converted to NO
            bids at ``1 − p``. Per-sid overrides via :meth:`set_use_yes_price`.
        resync: optional ``callback(sid, tickers)`` asked to fetch fresh snapshots (see
            :meth:`set_resync_handler`).

    Attributes: ``books`` (ticker → :class:`OrderBook`; read-only for callers), ``stats``
    (:class:`PlantStats`), ``channels`` (sid → channel name from ``subscribed`` acks),
    ``clock_ns`` (latest time seen, ns UTC: the timestamp of frames that carry none),
    ``sink_failures`` (sink name → one-line error of every publisher that failed).
    """

    def __init__(
        self,
        publishers: Iterable[Publisher] = (),
        *,
        use_yes_price: bool = False,
        resync: Callable[[int, list[str]], None] | None = None,
    ) -> None:
        self._out = FanOut(publishers, on_failure=self._on_sink_failure)
        self.publishers: tuple[Publisher, ...] = self._out.active
        self._streams = [p for p in self.publishers if hasattr(p, "take_failures")]
        # a sole event stream gets the compiled delta path's events as blocks
        # (ticker_plant/blocks.py); any other fan-out, a bare sink included, gets events
        sole = self.publishers[0] if len(self.publishers) == 1 else None
        self._block_target = sole if sole in self._streams and hasattr(
            sole, "publish_block") else None
        self._blocks = BlockBuilder(LIVE) if self._block_target is not None else None
        self._block_open = False
        self._yes_scale_sid: dict[int, bool] = {}
        self._use_yes_price = use_yes_price
        self._yes_scale_any = use_yes_price
        self._resync = resync
        self.books: dict[str, OrderBook] = {}
        self.channels: dict[int, str] = {}
        self.stats = PlantStats()
        self.clock_ns = 0
        self._seq: dict[int, int] = {}
        self._snapshot_sids: set[int] = set()  # sids that delivered a snapshot: in use
        self._last_top: dict[str, tuple] = {}
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

    def __init_subclass__(cls, **kw: Any) -> None:
        """A subclass that overrides :meth:`process_frame` (to watch every frame) is fed frame
        by frame: it gets no :meth:`process_lines`, which takes deltas without that call."""
        super().__init_subclass__(**kw)
        if cls.process_frame is not TickerPlant.process_frame and "process_lines" not in vars(cls):
            cls.process_lines = None  # type: ignore[assignment]

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
            self._quarantine(payload if raw is None else raw, e.reason, recv_ns, e.sid, e.seq)
            return
        self.process_frame(f, recv_ns, payload if raw is None else raw)

    def process_frame(self, f: Any, recv_ns: int | None = None, raw: Any = None) -> None:
        """Take one decoded frame (a struct from :mod:`..ingestion.messages`).

        Values are range-checked first, then the seq check, then books and events; a frame
        that fails is quarantined (``raw``, the source text, is what is kept) and does not
        touch the seq watermark. Never raises for bad input.
        """
        self.stats.frames += 1
        try:
            if recv_ns is not None and not MIN_EPOCH_NS <= recv_ns < MAX_EPOCH_NS:
                raise DecodeError(f"receipt time {recv_ns} ns outside 2000..2100")
            if type(f) is OrderbookDelta:
                self._on_delta(f.sid, f.seq, f.market_ticker, f.side, f.price, f.delta,
                               f.ts_ns, recv_ns)
            else:
                self._dispatch(f, recv_ns)
        except DecodeError as e:
            self._quarantine(raw if raw is not None else f, e.reason, recv_ns,
                             getattr(f, "sid", None), getattr(f, "seq", None))
        except Exception as e:  # a bug must not take the plant down; keep the frame
            self._internal_error(e, type(f).__name__, raw if raw is not None else f, recv_ns,
                                 getattr(f, "sid", None), getattr(f, "seq", None))

    def _internal_error(self, e: Exception, what: str, raw: Any, recv_ns: int | None,
                        sid: int | None = None, seq: int | None = None) -> None:
        log.exception("internal error handling %s", what)
        self._quarantine(raw, f"internal error: {type(e).__name__}: {e}", recv_ns, sid, seq)

    def _dispatch(self, f: Any, recv_ns: int | None) -> None:
        """Every frame but a delta: its handler (DecodeError for what is not a frame)."""
        if recv_ns is not None and recv_ns > self.clock_ns:
            self.clock_ns = recv_ns
        handler = self._handlers.get(type(f))
        if handler is None:
            raise DecodeError(f"not a Kalshi frame: {type(f).__name__}")
        handler(f, recv_ns)

    def reset(self, detail: str = "reconnect") -> None:
        """Forget every book and seq watermark (call on reconnect: sids are reassigned).

        Books are cleared and left ``syncing`` until their next snapshot (a live one emits a
        null ``bbo`` row in state ``syncing``); a ``feed_events`` row of kind ``disconnect``
        records the reset.
        """
        ts = self.clock_ns
        for b in self.books.values():
            self._set_state(b, SYNCING, ts, None, None)
            b.clear(SYNCING)
        self._seq.clear()
        self._snapshot_sids.clear()
        self._last_top.clear()
        self.channels.clear()
        self._yes_scale_sid.clear()
        self._yes_scale_any = self._use_yes_price
        self.feed_event("disconnect", detail=detail)

    # -- public API for the ingester (it never touches ``books`` or attributes directly) ----

    def set_resync_handler(self, fn: Callable[[int, list[str]], None] | None) -> None:
        """Register ``fn(sid, tickers)``, called when books on ``sid`` need fresh snapshots
        (a seq gap, a book error, a crossed book, a delta for a market with no book). The
        plant has already marked those books ``syncing`` and emitted a ``resync`` feed
        event. ``None`` unregisters (books then stay ``stale`` until a snapshot arrives)."""
        self._resync = fn

    def remove_market(self, ticker: str) -> bool:
        """Forget ``ticker``'s book (the market was unsubscribed). A live book first emits a
        null ``bbo`` row in state ``stale``. Returns whether a book existed."""
        book = self.books.get(ticker)
        if book is None:
            return False
        self._set_state(book, STALE, self.clock_ns, None, None)
        del self.books[ticker]
        self._last_top.pop(ticker, None)
        return True

    def book_state(self, ticker: str) -> str | None:
        """State of ``ticker``'s book (``live``/``stale``/``syncing``), ``None`` if none."""
        b = self.books.get(ticker)
        return None if b is None else b.state

    def book_states(self) -> dict[str, str]:
        """``ticker → state`` for every book the plant holds."""
        return {t: b.state for t, b in self.books.items()}

    @property
    def sink_failures(self) -> dict[str, str]:
        """Sink name → one-line error, for every publisher that raised (and was stopped)."""
        return dict(self._out.failures)

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
        """Emit a ``feed_events`` row (connect, disconnect, gap, resync, error, quarantine,
        sink_failed)."""
        self._feed(FeedEvent(self.clock_ns if ts_ns is None else ts_ns, kind, sid,
                             expected_seq, got_seq, detail))

    def commit(self) -> None:
        """End of a frame (live) or of a chunk (replay): hand the events emitted so far to the
        consumers of the plant's event stream (:class:`~kalshi_platform.stream.bus.EventStream`
        publishers), and report stream consumers that failed since the last call (a counter, a
        ``sink_failed`` feed event, :attr:`sink_failures`). No I/O: queue appends only."""
        if self._block_open:
            self._take_block()
        for s in self._streams:
            s.commit()
            self._take_stream_failures(s)

    def _take_stream_failures(self, s: Any) -> None:
        for name, text in s.take_failures():
            if name not in self._out.failures:
                self._out.failures[name] = text
                self._on_sink_failure(name, text)

    @property
    def stream(self) -> Any | None:
        """The plant's event stream (the first :class:`EventStream` publisher), if any: it
        stamps every event with a contiguous stream seq under its ``run_id``."""
        return self._streams[0] if self._streams else None

    def flush(self) -> None:
        """Flush every publisher (a failing one is marked failed, never raised)."""
        if self._block_open:
            self._take_block()
        self._out.flush()
        for s in self._streams:
            self._take_stream_failures(s)

    def close(self) -> None:
        """Flush and close every publisher, failed ones too (a stream waits for its consumers
        to drain and close); errors are recorded in :attr:`sink_failures`, never raised."""
        if self._block_open:
            self._take_block()
        self._out.close()
        for s in self._streams:
            self._take_stream_failures(s)

    def markets_summary(self) -> dict[str, dict]:
        """Per market: final state and BBO as decimal strings (dollars / contracts)."""
        return {t: self.books[t].to_dict() for t in sorted(self.books)}

    # -- internals ---------------------------------------------------------------------------

    def _on_sink_failure(self, name: str, text: str) -> None:
        self.publishers = self._out.active
        self.stats.sink_failures += 1
        self._feed(FeedEvent(self.clock_ns, "sink_failed", None, None, None,
                             f"{name}: {text}"))

    def _produce(self, table: str, ev: Any) -> None:
        self.stats.events[table] += 1
        if self.publishers:
            self._publish(ev)

    def _publish(self, ev: Any) -> None:  # a publisher that raises is marked failed
        if self._block_open:  # the compiled path's events first: stream order
            self._take_block()
        try:
            self._out.emit(ev)
        except Exception as e:
            self._out.emit_failed(e)

    def _feed(self, ev: FeedEvent) -> None:
        self._produce("feed_events", ev)

    def _seq_ok(self, sid: int, seq: int, last: int | None, recv_ns: int | None) -> bool:
        """The seq rule, in one place: the first seq on a sid and ``last + 1`` are taken,
        ``seq <= last`` is a duplicate (dropped, counted; the watermark never moves back),
        ``seq > last + 1`` is a gap (books on the sid leave ``live``, resync). True to
        accept the frame."""
        if last is not None and seq != last + 1:
            if seq <= last:
                self.stats.duplicates += 1
                return False
            self._gap(sid, last + 1, seq, recv_ns)  # last < seq <= MAX_COUNTER: no overflow
        self._seq[sid] = seq
        return True

    def _accept(self, sid: int | None, seq: int | None, wire_type: str,
                recv_ns: int | None) -> bool:
        """Seq check for a validated frame; False for a duplicate (drop it)."""
        if seq is not None and sid is not None and not self._seq_ok(
                sid, seq, self._seq.get(sid), recv_ns):
            return False
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

    def _set_state(self, book: OrderBook, state: str, ts: int, seq: int | None,
                   recv_ns: int | None, was_live: bool | None = None) -> None:
        """Move ``book`` to ``state``; leaving ``live`` emits a null BBO row with the new
        state and forgets the last top, so the next live top is always emitted."""
        if was_live is None:
            was_live = book.state == LIVE
        book.state = state
        if was_live and state != LIVE:
            self._last_top.pop(book.ticker, None)
            self.stats.bbo += 1
            if self.publishers:
                self._publish(BBO(book.ticker, ts, None, None, None, None, seq, recv_ns,
                                      state))

    def _gap(self, sid: int, expected: int, got: int, recv_ns: int | None) -> None:
        self.stats.gaps += 1
        books = self._books_on(sid)
        ts = self.clock_ns if recv_ns is None else recv_ns
        for b in books:
            self._set_state(b, STALE, ts, None, recv_ns)
        self._feed(FeedEvent(ts, "gap", sid, expected, got,
                             f"seq skipped {got - expected}; {len(books)} book(s) stale"))
        log.warning("seq gap on sid %s: expected %s got %s; %d book(s) stale", sid, expected,
                    got, len(books))
        if books:
            self._request_resync(sid, books, ts)

    def _request_resync(self, sid: int, books: list[OrderBook], ts: int) -> None:
        """Books that need a snapshot: ``syncing`` and the handler asked, or ``stale`` when
        there is no handler (a replay). Callers have already taken them out of ``live``."""
        if self._resync is None:
            return
        tickers = [b.ticker for b in books]
        for b in books:
            b.state = SYNCING
        self.stats.resyncs += 1
        self._feed(FeedEvent(ts, "resync", sid, None, None, ",".join(tickers)[:_DETAIL_MAX]))
        self._resync(sid, tickers)

    def _unknown_market(self, ticker: str, sid: int, ts: int) -> None:
        """A delta for a market with no book on a sid in use: ask for its snapshot once."""
        book = self.books[ticker] = OrderBook(ticker, sid)
        book.state = STALE
        self._feed(FeedEvent(ts, "error", sid, None, None,
                             f"delta for {ticker} with no book on sid {sid}"[:_DETAIL_MAX]))
        self._request_resync(sid, [book], ts)

    def _quarantine(self, raw: Any, reason: str, recv_ns: int | None, sid: int | None = None,
                    seq: int | None = None) -> None:
        st = self.stats
        st.quarantined += 1
        kept = kept_text(raw)
        if st.quarantined <= _LOG_FIRST or st.quarantined % 1000 == 0:
            log.warning("quarantined frame #%d: %s: %s", st.quarantined,
                        escape_for_log(reason), escape_for_log(kept))
        ok_recv = recv_ns if recv_ns is not None and MIN_EPOCH_NS <= recv_ns < MAX_EPOCH_NS \
            else None
        if self.publishers:
            self._publish(QuarantineRecord(ok_recv, reason, kept))
        if ok_recv is not None and ok_recv > self.clock_ns:
            self.clock_ns = ok_recv
        self._feed(FeedEvent(self.clock_ns if ok_recv is None else ok_recv, "quarantine",
                             sid, None, seq, reason[:_DETAIL_MAX]))

    # -- handlers: validate (DecodeError → quarantine), then _accept (seq), then act ---------

    def _on_snapshot(self, f: OrderbookSnapshot, recv_ns: int | None) -> None:
        m = f.msg
        try:
            yes, no = snapshot_units(m)
        except DecodeError:
            # unreadable but it names its market: that book is not live any more, and it
            # must be part of the resync the next gap on this sid asks for
            book = self.books.get(m.market_ticker)
            if book is None:
                book = self.books[m.market_ticker] = OrderBook(m.market_ticker, f.sid)
            book.sid = f.sid
            if book.state == LIVE:
                self._set_state(book, STALE, self._ts(None, recv_ns), f.seq, recv_ns)
            raise
        if not self._accept(f.sid, f.seq, "orderbook_snapshot", recv_ns):
            return
        ts = self._ts(m.ts_ms * 1_000_000 if m.ts_ms is not None else None, recv_ns)
        if no and self._yes_scale(f.sid):
            no = [(ONE_DOLLAR - p, q) for p, q in no]
        ticker = m.market_ticker
        self.stats.snapshot_rows += (len(yes) + len(no)) or 1
        if self.publishers:
            self._publish(SnapshotEvent(ticker, ts, f.sid, f.seq, yes, no, recv_ns))
        book = self.books.get(ticker)
        if book is None:
            book = self.books[ticker] = OrderBook(ticker, f.sid)
        if f.sid is not None:
            self._snapshot_sids.add(f.sid)
        if book.sid != f.sid and book.state == LIVE:
            self._set_state(book, SYNCING, ts, f.seq, recv_ns)  # moves to another stream
        book.sid = f.sid
        book.market_id = m.market_id
        was_live = book.state == LIVE
        try:
            book.apply_snapshot(yes, no)
        except BookError as e:  # the decoder's checks make this unreachable; kept as a guard
            self._book_error(book, e, f.sid, ts, f.seq, recv_ns, was_live)
            return
        self._top_changed(book, ts, f.seq, recv_ns)

    def _on_subscribed(self, f: Subscribed, recv_ns: int | None) -> None:
        channel, sid = f.channel_sid
        raw_sid = (f.msg or {}).get("sid", f.sid)
        if raw_sid is not None and type(raw_sid) is not int:
            raise DecodeError(f"subscribed: sid must be an integer, got {str(raw_sid)[:40]!r}")
        if sid is not None and not 1 <= sid <= MAX_COUNTER:
            raise DecodeError(f"subscribed: sid {str(sid)[:40]} outside [1, 2^63)")
        if channel is not None and (not isinstance(channel, str) or len(channel) > 64):
            raise DecodeError("subscribed: channel must be a short string")
        if self._accept(None, None, "subscribed", recv_ns) and sid is not None:
            # a (re)used sid starts a new seq stream: its old books wait for fresh snapshots
            self._seq.pop(sid, None)
            self._snapshot_sids.discard(sid)
            ts = self._ts(None, recv_ns)
            for b in self._books_on(sid):
                self._set_state(b, SYNCING, ts, None, recv_ns)
            if channel:
                self.channels[sid] = channel

    def _on_ack(self, f: Ok, recv_ns: int | None) -> None:
        self._accept(f.sid, f.seq, "ok", recv_ns)

    def _on_unsubscribed(self, f: Unsubscribed, recv_ns: int | None) -> None:
        if self._accept(f.sid, f.seq, "unsubscribed", recv_ns) and f.sid is not None:
            ts = self._ts(None, recv_ns)
            for b in self._books_on(f.sid):
                self._set_state(b, STALE, ts, f.seq, recv_ns)
            self._seq.pop(f.sid, None)
            self._snapshot_sids.discard(f.sid)
