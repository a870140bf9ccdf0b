"""Counters of one ticker-plant run (plain ints and Counters; cheap to bump on the hot path)."""

from __future__ import annotations

from collections import Counter


class PlantStats:
    """Counters of one plant run.

    ``frames`` handed in; ``messages`` accepted by wire type (deltas counted in ``deltas``);
    ``bbo`` rows (top-of-book changes plus validity changes); ``gaps``; ``duplicates`` (seq at
    or below the watermark: dropped); ``quarantined``; ``crossed`` (a book found crossed or
    locked: marked stale); ``book_errors`` (a level driven negative or past 10^10 contracts);
    ``deltas_ignored`` (deltas for books not live: recorded, not applied); ``resyncs``
    requested; ``errors`` (Kalshi ``error`` replies); ``snapshot_rows``; ``sink_failures``;
    ``events`` (other rows produced, by table).
    """

    __slots__ = ("frames", "messages", "deltas", "bbo", "gaps", "duplicates", "quarantined",
                 "crossed", "book_errors", "deltas_ignored", "resyncs", "errors",
                 "snapshot_rows", "sink_failures", "events")

    def __init__(self) -> None:
        self.frames = 0
        self.messages: Counter[str] = Counter()
        self.deltas = 0
        self.bbo = 0
        self.gaps = 0
        self.duplicates = 0
        self.quarantined = 0
        self.crossed = 0
        self.book_errors = 0
        self.deltas_ignored = 0
        self.resyncs = 0
        self.errors = 0
        self.snapshot_rows = 0
        self.sink_failures = 0
        self.events: Counter[str] = Counter()

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
