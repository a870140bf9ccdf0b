"""Playback of a recording through the sim: index it, replay it into the sim's books and feed.

The recording is replayed through the sim's own
:class:`~kalshi_platform.ticker_plant.plant.TickerPlant` (its books answer ``get_snapshot`` and
REST), and each data frame is handed to :meth:`MarketFeed.publish
<kalshi_platform.sim.feed.MarketFeed.publish>`, which re-sends it to every matching
subscription with that connection's own ``sid``/``seq``. Snapshots in the recording are
re-rendered from the sim's book after it applied them. NO-side prices are converted when a
subscription's ``use_yes_price`` differs from the recording's (docs/kalshi-api.md §7.8).

Playback starts with the first ``orderbook_delta`` subscription (or the first subscription if
the recording has no book frames) and pauses while nobody is subscribed — or, with
``start="now"``, plays at once regardless of clients, like a live exchange — and runs as fast
as possible (``speed=0``) or at ``speed`` × the recording's pace (receipt times).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Iterator

import orjson

from kalshi_platform.ingestion.recording import iter_frames, read_meta
from kalshi_platform.sim.books import flip_no_price
from kalshi_platform.sim.feed import MarketFeed
from kalshi_platform.sim.market_data import RestData, recording_market, trade_from_ws
from kalshi_platform.sim.protocol import CHANNEL_OF
from kalshi_platform.ticker_plant.plant import TickerPlant

log = logging.getLogger(__name__)


class PlaybackError(Exception):
    """The recording cannot be read (message is one line)."""


class Playback:
    """Index and replay one recording.

    Args:
        path: the recording (any format :mod:`kalshi_platform.ingestion.recording` reads).
        feed: where data frames are published.
        data: REST data; every market the recording mentions is added (with a made-up market
            object unless a fixture has it) and every ``trade`` frame becomes a REST trade.
        stats: the server's counters (``frames_read``, ``frames_played``).
        use_yes_price: the recording's convention (``None`` = its ``.meta.json``, else no).
        speed: 0 = as fast as possible, else × the recording's pace.
        start: ``"subscribe"`` or ``"now"`` (see the module doc).
    """

    def __init__(self, path: Path, feed: MarketFeed, data: RestData, stats: Any, *,
                 use_yes_price: bool | None = None, speed: float = 0.0,
                 start: str = "subscribe") -> None:
        self.path = path
        self.feed = feed
        self.data = data
        self.stats = stats
        self.use_yes_price = use_yes_price
        self.speed = speed
        self.start_mode = start
        self.plant = TickerPlant()
        self.market_ids: dict[str, str] = {}
        self.done = asyncio.Event()
        self._bbo: dict[str, list[tuple[int, int | None, int | None]]] | None = None

    # -- index -----------------------------------------------------------------------------

    def index(self) -> None:
        """One pass over the recording: markets it mentions (their first/last frame times),
        REST trades, its convention. Raises :class:`PlaybackError`."""
        from kalshi_platform.ingestion.recording import RecordingError

        if not self.path.is_file():
            raise PlaybackError(f"{self.path}: no such file")
        if self.use_yes_price is None:
            self.use_yes_price = bool(read_meta(self.path).use_yes_price)
        self.plant = TickerPlant(use_yes_price=self.use_yes_price)
        span: dict[str, list[int | None]] = {}
        try:
            for recv_ns, f in self.frames():
                t = f.get("type")
                msg = f.get("msg")
                if t not in CHANNEL_OF or not isinstance(msg, dict):
                    continue
                ticker = msg.get("market_ticker")
                if not isinstance(ticker, str) or not ticker:
                    continue
                if t in ("orderbook_snapshot", "orderbook_delta"):
                    self.feed.book_frames = True
                if isinstance(msg.get("market_id"), str):
                    self.market_ids.setdefault(ticker, msg["market_id"])
                s = span.setdefault(ticker, [recv_ns, recv_ns])
                if recv_ns is not None:
                    s[0] = recv_ns if s[0] is None else min(s[0], recv_ns)
                    s[1] = recv_ns if s[1] is None else max(s[1], recv_ns)
                if t == "trade":
                    rt = trade_from_ws(msg)
                    if rt is not None:
                        self.data.add_trade(rt)
        except RecordingError as e:
            raise PlaybackError(str(e)) from None
        for ticker, (first, last) in span.items():
            self.feed.known.add(ticker)
            self.data.add_market(recording_market(ticker, first, last, self.path.name),
                                 replace=False)

    def frames(self) -> Iterator[tuple[int | None, dict[str, Any]]]:
        """(recv_ns, frame dict) for every frame of the recording (markers/junk skipped)."""
        for recv_ns, payload in iter_frames(self.path):
            if isinstance(payload, (str, bytes)):
                try:
                    payload = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    continue
            if isinstance(payload, dict) and isinstance(payload.get("type"), str):
                yield recv_ns, payload

    def bbo_history(self, ticker: str) -> list[tuple[int, int | None, int | None]]:
        """``[(recv_s, yes_bid µ$|None, yes_ask µ$|None), ...]`` of ``ticker`` over the whole
        recording (one entry per book frame, receipt time in Unix s), for candlesticks.
        Computed once, lazily, by a separate plant pass (the playback's books are not
        touched)."""
        if self._bbo is None:
            plant = TickerPlant(use_yes_price=bool(self.use_yes_price))
            hist: dict[str, list[tuple[int, int | None, int | None]]] = {}
            for recv_ns, f in self.frames():
                plant.process(f, recv_ns)
                msg = f.get("msg")
                if (recv_ns is None or f.get("type") not in ("orderbook_snapshot",
                                                              "orderbook_delta")
                        or not isinstance(msg, dict)):
                    continue
                tk = msg.get("market_ticker")
                book = plant.books.get(tk) if isinstance(tk, str) else None
                if book is not None:
                    yb, _, ya, _ = book.top()
                    hist.setdefault(tk, []).append((recv_ns // 1_000_000_000, yb, ya))
            self._bbo = hist
        return self._bbo.get(ticker, [])

    # -- playback --------------------------------------------------------------------------

    async def run(self) -> None:
        """Replay the recording (see the module doc); sets :attr:`done` at the end."""
        feed = self.feed
        try:
            await feed.started.wait()
            t0: float | None = None
            r0: int | None = None
            n = 0
            for recv_ns, f in self.frames():
                self.stats.frames_read += 1
                if self.start_mode == "subscribe" and not feed.subscribed.is_set():
                    await feed.subscribed.wait()
                    t0 = None  # re-anchor pacing after a pause
                if self.speed > 0 and recv_ns is not None:
                    now = time.monotonic()
                    if t0 is None or r0 is None:
                        t0, r0 = now, recv_ns
                    else:
                        due = t0 + (recv_ns - r0) / 1e9 / self.speed
                        if due > now:
                            await asyncio.sleep(due - now)
                self.apply(f, recv_ns)
                n += 1
                await self._backpressure()
                if n % 16 == 0 or self.speed > 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception:  # a sim bug must not hang clients silently
            log.exception("sim playback failed")
        finally:
            self.done.set()
        log.info("sim playback finished: %d frames played", self.stats.frames_played)

    async def _backpressure(self) -> None:
        for c in list(self.feed.conns):
            if c.q.qsize() > 10_000:
                await self.feed.drained(c)

    def apply(self, f: dict[str, Any], recv_ns: int | None) -> None:
        """Apply one frame to the sim's books and publish it."""
        t = f["type"]
        self.plant.process(f, recv_ns)
        msg = f.get("msg")
        if t not in CHANNEL_OF or not isinstance(msg, dict):
            return
        self.stats.frames_played += 1
        ticker = msg.get("market_ticker")
        if t == "market_lifecycle_v2" and isinstance(ticker, str):
            self.data.apply_lifecycle(ticker, msg)
        flip = None
        if t == "orderbook_delta" and msg.get("side") == "no":
            rec_yes = self.use_yes_price
            flip = (lambda sub, m: flip_no_price(m) if sub.use_yes_price != rec_yes else m)
        self.feed.publish(t, msg, flip_no=flip)
