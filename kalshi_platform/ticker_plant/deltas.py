"""The plant's delta path: ``orderbook_delta`` frames into books, BBO rows out.

The common case runs compiled (:func:`kalshi_platform.ingestion._delta.feed_lines`, fed whole
recording chunks by :meth:`DeltaHandlers.process_lines`): decode, seq, ``DeltaEvent``, book
apply, BBO. What it does not take comes back here, to the one rule for a delta
(:meth:`DeltaHandlers._on_delta`), or to the rest of a delta it took (a crossed top, a broken
book). A mixin of :class:`~kalshi_platform.ticker_plant.plant.TickerPlant`, which provides
``books``, ``stats``, ``clock_ns``, ``publishers``, ``_out``, ``_seq``, ``_last_top``,
``_snapshot_sids``, ``_yes_scale_any``, ``_block_target`` (the publisher that takes event
blocks, or None), ``_blocks`` (its :class:`~.blocks.BlockBuilder`), ``_block_open`` (events
are in it) and the helpers ``_seq_ok``, ``_publish``, ``_feed``,
``_set_state``, ``_request_resync``, ``_unknown_market``, ``_yes_scale``, ``_internal_error``.
"""

from __future__ import annotations

import logging
from typing import Callable

from kalshi_platform.fixedpoint import ONE_DOLLAR
from kalshi_platform.ingestion._delta import (
    F_BOOK_ERROR,
    F_CROSSED,
    F_DELTA,
    F_END,
    F_OTHER,
    feed_lines,
)
from kalshi_platform.logfmt import escape_for_log
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent, FeedEvent
from kalshi_platform.ticker_plant.order_book import LIVE, STALE, BookError, OrderBook

log = logging.getLogger("kalshi_platform.ticker_plant.plant")

#: a plant event from its field tuple in one C call
_new = tuple.__new__

_DETAIL_MAX = 500  # feed_events.detail taken from the wire is cut to this many characters


class DeltaHandlers:
    """The delta path of the plant (see the module docstring)."""

    def process_lines(self, chunk: bytes, kind: int, other: Callable[[bytes], int],
                      start: int = 0, end: int | None = None) -> int:
        """Take the recording lines of ``chunk[start:end]`` (whole lines, envelope ``kind``: 0
        bare, 1 cockpit, 2 recorder, 3 seed) through the compiled delta path
        (:func:`~._delta.feed_lines`: decode, seq, book, ``DeltaEvent``; when the plant's
        only publisher takes event blocks, the event stream, its events go to it as one
        :class:`~.blocks.EventBlock` per run instead, handed on by :meth:`_take_block`
        before the plant's next other event or at ``commit``); each line it does
        not take whole (another frame type, a bad or odd delta) is handed to ``other(line)``
        with its exact bytes, which feeds it the generic way and returns the frames it fed.
        Returns the number of frames (non-blank lines) fed. Never raises for bad input."""
        st = self.stats
        books, seqs, last_top = self.books, self._seq, self._last_top
        size = len(chunk) if end is None else end
        pos, n = start, 0
        while pos < size:
            out = self._out
            pubs = self.publishers
            blk = self._blocks if pubs and pubs[0] is self._block_target else None
            try:
                pos, done, tops, self.clock_ns, code, info = feed_lines(
                    chunk, pos, size, kind, books, seqs, last_top, LIVE, self.clock_ns,
                    self._yes_scale_any, out.emit if pubs and blk is None else None,
                    out.emit_failed, DeltaEvent, BBO, blk)
            finally:  # taken before the plant's next event or at commit (a raise included)
                if blk is not None and len(blk):
                    self._block_open = True
            n += done
            st.frames += done
            st.deltas += done
            st.bbo += tops
            if code == F_END:
                continue
            if code == F_OTHER:
                n += other(chunk[info[0]:info[1]])
            elif code == F_DELTA:
                n += 1
                self._delta_line(chunk, info)
            else:
                self._delta_taken(code, info)
        return n

    def _take_block(self) -> None:
        """Hand the open event block to its publisher (before any other event of the plant,
        and at every commit: the stream keeps the plant's order); a publisher no longer
        active (failed) gets nothing."""
        if self._blocks is not None and len(self._blocks):
            block = self._blocks.take()  # (a raise leaves the events, and the flag, for later)
            self._block_open = False
            if self._block_target in self.publishers:
                try:
                    self._block_target.publish_block(block)
                except Exception as e:  # a publisher that raises is marked failed
                    self._out.emit_failed(e)
        self._block_open = False

    def _delta_line(self, chunk: bytes, info: tuple) -> None:
        """A valid delta the compiled path left untouched (its seq is not the next one, its
        book is not live on that sid, a yes-scale NO side, no seq): the whole delta rule."""
        start, end, recv_ns, sid, seq, ticker, side, price, delta, ts = info
        self.stats.frames += 1
        try:
            self._on_delta(sid, seq, ticker, side, price, delta, ts, recv_ns)
        except Exception as e:  # a bug must not take the plant down; keep the frame
            self._internal_error(e, "OrderbookDelta", chunk[start:end], recv_ns, sid, seq)

    def _delta_taken(self, code: int, info: tuple) -> None:
        """The rest of a delta the compiled path took: its top is crossed or locked
        (``F_CROSSED``), or it would have broken the book (``F_BOOK_ERROR``: the book is
        already stale)."""
        book = info[0]
        try:
            if code == F_CROSSED:
                self._top_changed(*info)
            elif code == F_BOOK_ERROR:
                _, msg, sid, ts, seq, recv_ns = info
                self._book_error(book, BookError(msg), sid, ts, seq, recv_ns)
        except Exception as e:  # a bug must not take the plant down
            self._internal_error(e, "OrderbookDelta", f"<delta of {book.ticker}>", None)

    def _on_delta(self, sid: int | None, seq: int | None, ticker: str, side: str, price: int,
                  delta: int, ts: int | None, recv_ns: int | None) -> None:
        """One decoded delta (already range-checked): seq, ``DeltaEvent``, book, BBO. The
        compiled path (:func:`~._delta.feed_lines`) takes the common case of this rule
        itself (next seq, live book on its sid, no yes-scale conversion)."""
        st = self.stats
        if ts is None:
            ts = self.clock_ns if recv_ns is None else recv_ns
        if seq is not None and sid is not None and not self._seq_ok(
                sid, seq, self._seq.get(sid), recv_ns):
            return
        st.deltas += 1
        if ts > self.clock_ns:
            self.clock_ns = ts
        if side == "no" and self._yes_scale_any and self._yes_scale(sid):
            price = ONE_DOLLAR - price
        book = self.books.get(ticker)
        if self.publishers:  # the book's own ticker string: queued events keep no copy
            self._publish(_new(DeltaEvent, (ticker if book is None else book.ticker,
                                            ts, sid, seq, side, price, delta, recv_ns)))
        if book is None or book.state != LIVE or book.sid != sid:
            st.deltas_ignored += 1  # not live, or another sid's stream: never mix them
            if book is None and sid in self._snapshot_sids:
                self._unknown_market(ticker, sid, ts)
            return
        try:
            changed = book.apply_delta(side, price, delta)
        except BookError as e:
            self._book_error(book, e, sid, ts, seq, recv_ns)
            return
        if changed:
            self._top_changed(book, ts, seq, recv_ns)

    def _top_changed(self, book: OrderBook, ts: int, seq: int | None, recv_ns: int | None) -> None:
        """The top of ``book`` may have moved: a BBO row when it did (the rule in
        ``BookCore.note_top``, which the compiled delta path applies too); a crossed or locked
        top marks the book stale and asks for a resync."""
        top = book.note_top(self._last_top)
        if top is None:
            return
        if top is False:
            # crossed or locked: Kalshi would have matched these, so a delete was missed
            yb, _, ya, _ = book.top()
            self.stats.crossed += 1
            self._set_state(book, STALE, ts, seq, recv_ns)
            self._feed(FeedEvent(ts, "error", book.sid, None, None,
                                 f"crossed book {book.ticker}: yes_bid {yb} >= yes_ask {ya}"))
            if book.sid is not None:
                self._request_resync(book.sid, [book], ts)
            return
        self.stats.bbo += 1
        if self.publishers:
            self._publish(_new(BBO, (book.ticker, ts, top[0], top[1], top[2], top[3], seq,
                                     recv_ns, LIVE)))

    def _book_error(self, book: OrderBook, err: BookError, sid: int | None, ts: int,
                    seq: int | None, recv_ns: int | None, was_live: bool = True) -> None:
        """A delta drove a level negative or past 10^10 contracts (the book already marked
        itself stale): count, report, leave live, resync."""
        self.stats.book_errors += 1
        log.warning("%s", escape_for_log(str(err)))
        self._set_state(book, STALE, ts, seq, recv_ns, was_live=was_live)
        self._feed(FeedEvent(ts, "error", sid, None, None, str(err)[:_DETAIL_MAX]))
        if sid is not None:
            self._request_resync(sid, [book], ts)

