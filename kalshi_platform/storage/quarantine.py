"""The quarantine file: JSON Lines of what a sink could not store, kept for inspection.

One record per line, fsynced as it is written (docs/field-notes.md "Sinks and storage":
never silently drop). Records of the QuestDB writer (storage/questdb_rdb.py):

* ``{"kind": "row", "table": T, "row": {column: value}, "error": "...", "quarantined_at_ns": N}``
  — a row QuestDB rejected as invalid, or one the client cannot encode;
* ``{"kind": "frame", "recv_ns": N, "reason": "...", "raw": "..."}`` — a malformed frame the
  plant quarantined (its bytes kept exactly).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class QuarantineFile:
    """Appends quarantine records to ``path`` (created with its directory on first use).
    A write that fails is logged with the record, never raised: quarantining must not stop
    the sink."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, rec: dict[str, Any]) -> None:
        """Write one record (JSON, ``default=str``) and fsync it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(rec, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            log.error("cannot write quarantine %s: %s; record: %s", self.path, e, rec)

    def row(self, table: str, row: dict[str, Any], error: str) -> None:
        """A rejected row (column name → value) with the error."""
        self.append({"kind": "row", "table": table, "row": row, "error": error,
                     "quarantined_at_ns": time.time_ns()})
