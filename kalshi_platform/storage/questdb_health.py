"""Counters and health of the QuestDB hot-tier writer (:mod:`kalshi_platform.storage.questdb_rdb`).

:class:`WriterStats` are the raw counters (metrics, the replay summary's JSON);
:class:`WriterHealth` is the snapshot a status line shows, from
:meth:`QuestDBWriter.health() <kalshi_platform.storage.questdb_rdb.QuestDBWriter.health>`:
one state and counters that say where every row is.

States (docs/field-notes.md "QuestDB writer: columnar batches"; issue 12 §7 "Status line"):

* ``up`` — the last send QuestDB answered was accepted (rows may still be draining from the
  spool: ``spool_rows_pending``);
* ``retrying`` — the last send failed (QuestDB away, refusing, 5xx, timeout); the rows wait in
  memory and are retried with backoff; nothing is on disk yet;
* ``spooling`` — the last send failed and rows are on disk in the spool, waiting for QuestDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UP = "up"
RETRYING = "retrying"
SPOOLING = "spooling"


@dataclass
class WriterStats:
    """Counters of a QuestDB writer (read from any thread; updated by its threads).

    rows_published: rows handed to the writer. rows_written: rows QuestDB acknowledged.
    rows_spooled: rows moved to the disk spool (total, over the writer's life).
    spool_depth: rows in the spool now, not yet acknowledged (this writer's and any a
    previous writer left). spool_bytes: bytes of the spool's segment files on disk.
    queue_depth: rows in memory (queue + batch in flight). rows_quarantined: rows QuestDB or
    the client rejected as invalid. frames_quarantined: malformed-frame records kept in the
    quarantine file. flush_errors: failed sends (each retried). flushes: successful sends.
    flush_latency_ms_last / _max / _total: send latency of successful sends, ms.
    state: ``up`` / ``retrying`` / ``spooling`` (module doc). last_error: one line.
    """

    rows_published: int = 0
    rows_written: int = 0
    rows_spooled: int = 0
    spool_depth: int = 0
    spool_bytes: int = 0
    queue_depth: int = 0
    rows_quarantined: int = 0
    frames_quarantined: int = 0
    flush_errors: int = 0
    flushes: int = 0
    flush_latency_ms_last: float = 0.0
    flush_latency_ms_max: float = 0.0
    flush_latency_ms_total: float = 0.0
    state: str = UP
    last_error: str = ""
    rows_by_table: dict[str, int] = field(default_factory=dict)

    def record_flush(self, ms: float) -> None:
        """Count one successful send that took ``ms`` milliseconds."""
        self.flushes += 1
        self.flush_latency_ms_last = ms
        self.flush_latency_ms_total += ms
        if ms > self.flush_latency_ms_max:
            self.flush_latency_ms_max = ms

    @property
    def flush_latency_ms_mean(self) -> float:
        return self.flush_latency_ms_total / self.flushes if self.flushes else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "rows_by_table"}
        d["flush_latency_ms_mean"] = round(self.flush_latency_ms_mean, 3)
        d["rows_by_table"] = dict(sorted(self.rows_by_table.items()))
        return d


@dataclass(frozen=True)
class WriterHealth:
    """A snapshot of a QuestDB writer's health (see the module doc for ``state``).

    rows_written: acknowledged by QuestDB. rows_spooled_total: ever moved to the disk spool.
    spool_rows_pending: in the spool now, not yet acknowledged. spool_bytes: the spool's
    segment files on disk, bytes. rows_in_memory: queued or in flight. flush_errors: failed
    sends. rows_quarantined: rejected rows. last_error: the last failure, one line ("" if
    none)."""

    state: str
    rows_written: int
    rows_spooled_total: int
    spool_rows_pending: int
    spool_bytes: int
    rows_in_memory: int
    flush_errors: int
    rows_quarantined: int
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def health_of(st: WriterStats) -> WriterHealth:
    """The :class:`WriterHealth` view of ``st``."""
    return WriterHealth(state=st.state, rows_written=st.rows_written,
                        rows_spooled_total=st.rows_spooled, spool_rows_pending=st.spool_depth,
                        spool_bytes=st.spool_bytes, rows_in_memory=st.queue_depth,
                        flush_errors=st.flush_errors, rows_quarantined=st.rows_quarantined,
                        last_error=st.last_error)


def human_bytes(n: int) -> str:
    """``n`` bytes as ``512 B`` / ``3.4 kB`` / ``58.0 MB`` / ``1.2 GB`` (SI units)."""
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n} B"


def health_text(h: WriterHealth) -> str:
    """One short phrase for a status line or summary, e.g. ``spooling: 1,234 written,
    5,000 spooled (5,000 pending, 1.2 MB on disk), 200 in memory, 3 flush errors``."""
    parts = [f"{h.rows_written:,} written",
             f"{h.rows_spooled_total:,} spooled ({h.spool_rows_pending:,} pending, "
             f"{human_bytes(h.spool_bytes)} on disk)"]
    if h.rows_in_memory:
        parts.append(f"{h.rows_in_memory:,} in memory")
    parts.append(f"{h.flush_errors:,} flush errors")
    if h.rows_quarantined:
        parts.append(f"{h.rows_quarantined:,} quarantined")
    return f"{h.state}: " + ", ".join(parts)
