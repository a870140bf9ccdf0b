"""One ILP/HTTP connection of the QuestDB writer (:mod:`kalshi_platform.storage.questdb_rdb`):
connect (creating the tables first), send one columnar batch per request, and isolate the rows
QuestDB refuses as invalid by bisecting the batch.

The writer's queue, spool and retry policy live in the writer; this module knows only how a
batch reaches QuestDB. Transport: the official ``questdb`` client (``Sender.from_conf``,
docs/field-notes.md "Sinks and storage"); an HTTP 400 ``code: invalid`` is an invalid row
(:func:`~kalshi_platform.storage.ilp_conf.is_invalid_data_error`), anything else transient.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable

from kalshi_platform.storage.ilp_batch import IlpBatch, Rejected
from kalshi_platform.storage.ilp_conf import is_invalid_data_error

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import QuestDBError, Sender


class IlpConnection:
    """The writer's connection to QuestDB (used from the sender thread only).

    Args:
        conf: a complete client conf string (:func:`~kalshi_platform.storage.ilp_conf.ilp_conf`).
        sender_factory: ``conf -> Sender`` (tests inject fakes); default ``Sender.from_conf``.
        ensure_schema: called once before the first request (raises while QuestDB is away:
            the send fails and is retried by the writer, this call with it).
        quarantine_row: ``(table, row dict, error text)``, called for each row QuestDB or the
            client refuses.
        record_flush: called with each request's latency, milliseconds.
    """

    def __init__(self, conf: str, *, sender_factory: Callable[[str], Any] | None,
                 ensure_schema: Callable[[], Any] | None,
                 quarantine_row: Callable[[str, dict, str], None],
                 record_flush: Callable[[float], None]) -> None:
        self.conf = conf
        self._factory = sender_factory or Sender.from_conf
        self._ensure_schema = ensure_schema
        self._quarantine_row = quarantine_row
        self._record_flush = record_flush
        self._sender: Any = None

    def send(self, batch: IlpBatch) -> tuple[int, list[Rejected]]:
        """Send ``batch``; if QuestDB rejects the data, bisect until each invalid row is
        isolated and quarantined, sending the rest. Returns (rows written, rows rejected).
        A transient error anywhere (``QuestDBError``, ``OSError``, the schema call's) propagates:
        the whole batch is retried later, and rows already acknowledged are absorbed by the
        tables' dedup keys."""
        try:
            rejected = self._send_batch(batch)
            return len(batch) - len(rejected), rejected
        except QuestDBError as e:
            if not is_invalid_data_error(e):
                raise
            if len(batch) == 1:
                ((table, values),) = batch.to_rows()
                r = Rejected(table, values, 1, str(e))
                self._quarantine_row(table, r.record(), str(e))
                return 0, [r]
        a, b = batch.split()
        w1, r1 = self.send(a)
        w2, r2 = self.send(b)
        return w1 + w2, r1 + r2

    def drop(self) -> None:
        """Close the client after a failed request (the next send reconnects)."""
        s, self._sender = self._sender, None
        if s is not None:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    close = drop

    def _connect(self) -> Any:
        if self._ensure_schema is not None:
            self._ensure_schema()  # raises while QuestDB is away: retried with the batch
            self._ensure_schema = None
        if self._sender is None:
            s = self._factory(self.conf)
            if hasattr(s, "establish"):
                s.establish()
            self._sender = s
        return self._sender

    def _send_batch(self, batch: IlpBatch) -> list[Rejected]:
        """One ILP request for ``batch``. A row the client itself cannot encode (e.g. a LONG
        beyond 2^63) is quarantined and left out; returns those rows."""
        sender = self._connect()
        buf = sender.new_buffer()
        refused = batch.write_to(buf)
        for r in refused:
            self._quarantine_row(r.table, r.record(), f"client cannot encode the row: {r.error}")
        t0 = time.perf_counter()
        if len(batch) > len(refused):
            sender.flush(buf)
        self._record_flush((time.perf_counter() - t0) * 1e3)
        return refused
