"""Backfill checkpoint: the state of one run in a JSON file replaced atomically, and the
rollback of Parquet files a crashed commit wrote but never checkpointed (step 6 of
:mod:`kalshi_platform.backfill`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

from kalshi_platform.backfill_plan import BackfillError, Window
from kalshi_platform.fsync import fsync_dir

log = logging.getLogger("kalshi_platform.backfill")  # one logger for the whole backfill

CHECKPOINT_VERSION = 1


class Checkpoint:
    """The state of one backfill run, kept in a JSON file replaced atomically on each save.

    Attributes: ``params`` (what the run is: target, range, window, base URL), ``plan`` (the
    windows, ``None`` until planned), ``cutoff_ns``, ``done`` (window key → ``{"trades",
    "pages", "duplicates", "days": {"YYYY-MM-DD": n}}``), ``files`` (Parquet files committed,
    relative to the store root, per writer id), ``runs`` (one summary per invocation), and ``resuming`` (the file
    existed when opened).
    """

    def __init__(self, path: Path, params: dict[str, Any]) -> None:
        self.path = Path(path)
        self.params = params
        self.plan: list[Window] | None = None
        self.cutoff_ns: int | None = None
        self.done: dict[str, dict[str, Any]] = {}
        self.files: dict[str, list[str]] = {}
        self.runs: list[dict[str, Any]] = []
        self.resuming = False

    @classmethod
    def open(cls, path: Path, params: dict[str, Any], *, restart: bool = False) -> "Checkpoint":
        """Load ``path`` if it exists (``resuming``), else a new checkpoint (written on first
        save). ``restart`` deletes an existing file first. Raises :class:`BackfillError` for
        an unreadable file or one made for different ``params``."""
        path = Path(path)
        ck = cls(path, params)
        if restart and path.exists():
            path.unlink()
        if not path.exists():
            return ck
        try:
            obj = json.loads(path.read_bytes())
            if obj.get("version") != CHECKPOINT_VERSION:
                raise ValueError(f"version {obj.get('version')!r}")
            if obj["params"] != params:
                diff = sorted(k for k in set(params) | set(obj["params"])
                              if params.get(k) != obj["params"].get(k))
                raise BackfillError(f"checkpoint {path} belongs to a different backfill "
                                    f"({', '.join(diff)} differ); use --restart or another "
                                    "--checkpoint")
            ck.plan = None if obj["plan"] is None else [Window(*w) for w in obj["plan"]]
            ck.cutoff_ns = obj["cutoff_ns"]
            ck.done = obj["done"]
            ck.files = obj["files"]
            ck.runs = obj["runs"]
        except BackfillError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BackfillError(f"checkpoint {path} is unreadable ({e}); use --restart") from None
        ck.resuming = True
        return ck

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename, fsync of the directory)."""
        obj = {"version": CHECKPOINT_VERSION, "params": self.params,
               "plan": None if self.plan is None else
               [[w.ticker, w.start_ns, w.end_ns, w.tier] for w in self.plan],
               "cutoff_ns": self.cutoff_ns, "done": self.done, "files": self.files,
               "runs": self.runs}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "wb") as f:
            f.write(json.dumps(obj, separators=(",", ":")).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)

    @property
    def complete(self) -> bool:
        return self.plan is not None and all(w.key in self.done for w in self.plan)

    def day_counts(self) -> dict[str, int]:
        """Trades the API returned per UTC day, over every committed window."""
        out: dict[str, int] = {}
        for d in self.done.values():
            for day, n in d["days"].items():
                out[day] = out.get(day, 0) + n
        return dict(sorted(out.items()))


def _parquet_stores(publishers: Sequence[Any]) -> list[Any]:
    from kalshi_platform.storage.parquet_store import ParquetStore

    return [p for p in publishers if isinstance(p, ParquetStore)]


def _writer_files(store: Any) -> list[str]:
    """Files of a ParquetStore's writer id, relative to its root (documented layout
    ``<root>/<table>/date=YYYY-MM-DD/<writer_id>-<n>.parquet``)."""
    pat = re.compile(re.escape(store.writer_id) + r"-\d{6,}\.parquet")
    root = Path(store.root)
    return sorted(str(f.relative_to(root)) for f in root.glob("*/date=*/*.parquet")
                  if pat.fullmatch(f.name))


def _store_key(store: Any) -> str:
    # by writer id, with paths relative to the root: a store moved between runs still matches
    return str(store.writer_id)


def rollback_uncommitted(publishers: Sequence[Any], ck: Checkpoint) -> int:
    """Delete Parquet files of this run's writer that the checkpoint does not list (written by
    a commit that never reached its checkpoint). Returns how many went."""
    n = 0
    for st in _parquet_stores(publishers):
        keep = set(ck.files.get(_store_key(st), []))
        for rel in _writer_files(st):
            if rel not in keep:
                (Path(st.root) / rel).unlink()
                n += 1
                log.info("removed uncommitted %s", rel)
    return n
