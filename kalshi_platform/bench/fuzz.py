"""Fuzz the ticker plant's contract with a hostile feed built from real recordings (issue 9 §8).

:func:`run_fuzz` feeds ``frames`` frames of :func:`~kalshi_platform.bench.fuzz_engine.fuzz_frames`
(seeded; real frames mixed with mutated ones) to a
:class:`~kalshi_platform.ticker_plant.plant.TickerPlant` via ``plant.process(raw, recv_ns)``,
publishing to a real :class:`~kalshi_platform.storage.parquet_store.ParquetStore` in a
temporary directory and an :class:`~kalshi_platform.ticker_plant.publishers.InMemoryPublisher`.
After every ``check_every`` frames and at the end it checks (:meth:`FuzzResult.failures`):

* no exception escapes ``process()`` (counted by type and the innermost source line, with the
  shortest frame that raised it; the run goes on);
* every book in state ``live`` (the one a frame names after each frame, all of them every
  ``check_every`` frames) is uncrossed (best YES + best NO < 1,000,000 µ$), every level
  has a price in (0, 1,000,000) µ$ and a size in (0, 10^12] centi-contracts, and its tracked
  best prices are the ladders' maxima;
* every quarantined frame is kept verbatim: ``QuarantineRecord.raw`` (text, or ``bytes`` when
  not UTF-8) gives back exactly the bytes fed, and the store's ``_quarantine/*.jsonl`` line
  (``raw``, or ``raw_b64``) holds the same; a record equal to the lossy
  ``decode("utf-8", "replace")`` (the plant before issue 9) is counted as ``quarantine_lossy``;
* rows counted equal rows written: ``plant.stats.table_rows()`` == ``ParquetStore.rows_written``
  after close == rows read back with pyarrow.

It also reports, without failing on them, how far the plant is from issue 9 §1: frames the
contract says must be quarantined that were accepted (``unquarantined``, by mutation kind),
event values out of their documented range (``bad_events``), "internal error" quarantines,
and lossy quarantine records (``quarantine_lossy``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import tempfile
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

from kalshi_platform.bench.fuzz_engine import (  # noqa: F401  (re-exported)
    ONE,
    FuzzFrame,
    default_sources,
    fuzz_frames,
)

MAX_SIZE = 10**12  # 10^10 contracts in centi-contracts
TS_LO, TS_HI = 946_684_800 * 10**9, 4_102_444_800 * 10**9  # 2000-01-01 .. 2100-01-01, ns
#: how ``plant._quarantine`` turns quarantined ``bytes`` into ``QuarantineRecord.raw`` today:
#: ``raw.decode("utf-8", "replace")`` (lossy for invalid UTF-8; see ``quarantine_lossy``)
QUARANTINE_UTF8_ERRORS = "replace"
_SAMPLES = 5


@dataclass
class FuzzResult:
    """Counts of one fuzz run. ``*_samples`` hold the shortest (exceptions) or first frames
    of each failure as ``repr(bytes)`` cut to 300 characters; ``rows`` maps table →
    ``{"counted", "written", "read"}``; ``elapsed_s`` is wall time (s)."""

    seed: int
    sources: list[str]
    frames: int = 0
    mutated: int = 0
    kinds: Counter = field(default_factory=Counter)
    exceptions: Counter = field(default_factory=Counter)
    exception_samples: dict = field(default_factory=dict)
    live_checks: int = 0  # book checks that found the book live
    crossed_live: int = 0  # episodes of a live book crossed or locked
    bad_levels: int = 0  # episodes of a live book with a level out of range
    best_mismatch: int = 0  # episodes of tracked best != ladder maximum
    book_samples: list = field(default_factory=list)
    quarantined: int = 0
    quarantine_mismatches: int = 0
    quarantine_lossy: int = 0
    quarantine_samples: list = field(default_factory=list)
    internal_errors: Counter = field(default_factory=Counter)
    internal_error_samples: dict = field(default_factory=dict)
    unquarantined: Counter = field(default_factory=Counter)
    unquarantined_samples: dict = field(default_factory=dict)
    bad_events: Counter = field(default_factory=Counter)
    bad_event_samples: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    rows_mismatch: int = 0
    resync_requests: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False  # the time budget ran out before ``frames`` were fed

    def failures(self) -> dict[str, int]:
        """The contract's hard invariants; every value must be 0."""
        return {"exceptions": sum(self.exceptions.values()), "crossed_live": self.crossed_live,
                "bad_levels": self.bad_levels, "best_mismatch": self.best_mismatch,
                "quarantine_mismatches": self.quarantine_mismatches,
                "rows_mismatch": self.rows_mismatch}

    def contract_gaps(self) -> dict[str, int]:
        """Issue 9 §1 conformance counts (reported, not part of :meth:`failures`)."""
        return {"unquarantined": sum(self.unquarantined.values()),
                "bad_events": sum(self.bad_events.values()),
                "internal_errors": sum(self.internal_errors.values()),
                "quarantine_lossy": self.quarantine_lossy}

    def to_dict(self) -> dict:
        """JSON-friendly view (Counters as dicts sorted by count)."""
        out = {}
        for k, v in self.__dict__.items():
            out[k] = dict(v.most_common()) if isinstance(v, Counter) else v
        out["failures"] = self.failures()
        out["contract_gaps"] = self.contract_gaps()
        out["frames_per_s"] = round(self.frames / self.elapsed_s) if self.elapsed_s else None
        return out


def _show(raw: bytes) -> str:
    r = repr(raw)
    return r if len(r) <= 300 else r[:300] + f"... ({len(raw)} bytes)"


def _where(e: BaseException) -> str:
    """``Type at file:line in function`` of the innermost traceback entry in this package
    (path from the package root), then the innermost entry overall when it is elsewhere."""
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return type(e).__name__

    def at(fr: traceback.FrameSummary) -> str:
        path = fr.filename.replace("\\", "/")
        i = path.rfind("kalshi_platform/")
        return f"{path[i:] if i >= 0 else path.rsplit('/', 1)[-1]}:{fr.lineno} in {fr.name}"

    ours = [fr for fr in tb if "kalshi_platform" in fr.filename and "/bench/fuzz" not in
            fr.filename.replace("\\", "/")]
    where = at(ours[-1]) if ours else at(tb[-1])
    if ours and ours[-1] is not tb[-1]:
        where += f" (raised at {at(tb[-1])})"
    return f"{type(e).__name__} at {where}"


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the package's loggers for the run (a hostile feed logs on every gap)."""
    lg = logging.getLogger("kalshi_platform")
    old = lg.level
    lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        lg.setLevel(old)


# -- checks ---------------------------------------------------------------------------------


def _book_problems(b: Any) -> dict[str, str]:
    """Broken invariants of one ``live`` book: ``{"crossed"|"bad_levels"|"best_mismatch":
    detail}`` (empty when it is sound)."""
    yes, no = b.yes, b.no
    by = max(yes) if yes else None
    bn = max(no) if no else None
    out = {}
    if by != b.best_yes or bn != b.best_no:
        out["best_mismatch"] = f"best ({b.best_yes}, {b.best_no}) != max ({by}, {bn})"
    if by is not None and bn is not None and by + bn >= ONE:
        out["crossed"] = f"best_yes {by} + best_no {bn} >= {ONE}"
    for lad in (yes, no):
        for p, q in lad.items():
            if not (type(p) is int and 0 < p < ONE and type(q) is int and 0 < q <= MAX_SIZE):
                out["bad_levels"] = f"level price {p!r} size {q!r}"
                break
    return out


def _check_book(ticker: str, b: Any, res: FuzzResult, bad: dict, last_mut: dict) -> None:
    """Check one book; a broken invariant counts once per episode (from the check that
    first sees it until the book is sound again or leaves ``live``)."""
    probs = _book_problems(b) if b.state == "live" else {}
    if b.state == "live":
        res.live_checks += 1
    was = bad.get(ticker)
    if not probs:
        if was:
            del bad[ticker]
        return
    new = [k for k in probs if not was or k not in was]
    bad[ticker] = set(probs)
    for k in new:
        setattr(res, _COUNTER[k], getattr(res, _COUNTER[k]) + 1)
    if new and len(res.book_samples) < _SAMPLES:
        kind, raw = last_mut.get(ticker, (None, b""))
        res.book_samples.append({"frame_no": res.frames, "ticker": ticker, "problems": probs,
                                 "last_mutation": kind, "last_mutated_frame": _show(raw)})


_COUNTER = {"crossed": "crossed_live", "bad_levels": "bad_levels",
            "best_mismatch": "best_mismatch"}


def _check_books(plant: Any, res: FuzzResult, bad: dict, last_mut: dict) -> None:
    """Every book the plant holds (see :func:`_check_book`)."""
    books = plant.books
    for ticker in [t for t in bad if t not in books]:
        del bad[ticker]
    for ticker, b in books.items():
        _check_book(ticker, b, res, bad, last_mut)


def _p(v): return type(v) is int and 0 < v < ONE  # noqa: E704
def _po(v): return v is None or (type(v) is int and 0 < v < ONE)  # noqa: E704
def _pc(v): return v is None or (type(v) is int and 0 <= v <= ONE)  # noqa: E704
def _q(v): return type(v) is int and 0 < v <= MAX_SIZE  # noqa: E704
def _qo(v): return v is None or _q(v)  # noqa: E704
def _ao(v): return v is None or (type(v) is int and 0 <= v <= MAX_SIZE)  # noqa: E704
def _d(v): return type(v) is int and -MAX_SIZE <= v <= MAX_SIZE  # noqa: E704
def _co(v): return v is None or (type(v) is int and 1 <= v < 2**63)  # noqa: E704
def _t(v): return type(v) is int and TS_LO <= v < TS_HI  # noqa: E704


#: table → (attribute, predicate) of every value with a documented range (issue 9 §1)
_EVENT_RANGES = {
    "orderbook_deltas": (("ts_ns", _t), ("sid", _co), ("seq", _co), ("price", _p),
                         ("delta", _d)),
    "bbo": (("ts_ns", _t), ("yes_bid", _po), ("yes_ask", _po), ("yes_bid_size", _qo),
            ("yes_ask_size", _qo), ("seq", _co)),
    "orderbook_snapshots": (("ts_ns", _t), ("sid", _co), ("seq", _co)),
    "trades": (("ts_ns", _t), ("yes_price", _p), ("no_price", _p), ("count", _q)),
    "tickers": (("ts_ns", _t), ("price", _pc), ("yes_bid", _pc), ("yes_ask", _pc),
                ("yes_bid_size", _ao), ("yes_ask_size", _ao), ("volume", _ao),
                ("open_interest", _ao)),
    "market_lifecycle": (("ts_ns", _t), ("settlement_value", _pc)),
    "fills": (("ts_ns", _t), ("yes_price", _p), ("count", _q)),
    "feed_events": (("ts_ns", _t), ("sid", _co), ("expected_seq", _co), ("got_seq", _co)),
}


def _check_events(events: dict, res: FuzzResult) -> None:
    """Values of every event published since the last check against their ranges; then the
    in-memory publisher's lists are emptied (in place) to bound memory."""
    for table, evs in events.items():
        spec = _EVENT_RANGES.get(table)
        for ev in evs if spec else ():
            for name, ok in spec:
                v = getattr(ev, name, None)
                if not ok(v):
                    _bad_event(res, f"{table}.{name}", v, ev)
            if table == "orderbook_snapshots":
                for p, q in list(ev.yes) + list(ev.no):
                    if not (_p(p) and _q(q)):
                        _bad_event(res, "orderbook_snapshots.level", (p, q), ev)
        evs.clear()


def _bad_event(res: FuzzResult, key: str, value: Any, ev: Any) -> None:
    res.bad_events[key] += 1
    if key not in res.bad_event_samples:
        res.bad_event_samples[key] = f"{value!r} in {repr(ev)[:240]}"


def _kept_bytes(raw: Any) -> bytes:
    """The bytes a kept quarantine text stands for (``bytes`` kept as is, text as UTF-8)."""
    return raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogatepass")


def _check_quarantine(ff: FuzzFrame, qlist: list, nq: int, res: FuzzResult,
                      digests: list) -> None:
    """The record(s) the plant emitted for ``ff`` must be one, keeping ``ff.raw`` exactly, or
    (lossy, counted apart) its ``decode("utf-8", QUARANTINE_UTF8_ERRORS)`` text."""
    recs = qlist[nq:]
    res.quarantined += 1
    reason = str(getattr(recs[0], "reason", ""))
    if reason.startswith("internal error"):
        key = reason[:120]
        res.internal_errors[key] += 1
        old = res.internal_error_samples.get(key)
        if old is None or len(ff.raw) < old[0]:
            res.internal_error_samples[key] = (len(ff.raw), ff.kind, _show(ff.raw))
    for rec in recs:
        digests.append(hashlib.blake2b(_kept_bytes(rec.raw), digest_size=16).digest())
    if len(recs) == 1 and _kept_bytes(recs[0].raw) == ff.raw:
        return
    if len(recs) == 1 and recs[0].raw == ff.raw.decode("utf-8", QUARANTINE_UTF8_ERRORS):
        res.quarantine_lossy += 1
        return
    res.quarantine_mismatches += 1
    if len(res.quarantine_samples) < _SAMPLES:
        res.quarantine_samples.append({"frame": _show(ff.raw), "kind": ff.kind,
                                       "records": len(recs),
                                       "raw_kept": [repr(r.raw)[:200] for r in recs]})


def _check_quarantine_file(root: Path, digests: list, res: FuzzResult) -> None:
    """The store's quarantine file(s): one line per record, in order, holding what the
    record held (``raw`` text, or ``raw_b64`` for bytes that are not UTF-8)."""
    n = 0
    for path in sorted((root / "_quarantine").glob("*.jsonl")):
        with open(path, "rb") as f:
            for line in f:
                rec = orjson.loads(line)
                kept = (base64.b64decode(rec["raw_b64"]) if "raw_b64" in rec
                        else _kept_bytes(rec.get("raw", "")))
                d = hashlib.blake2b(kept, digest_size=16).digest()
                if n >= len(digests) or d != digests[n]:
                    res.quarantine_mismatches += 1
                    if len(res.quarantine_samples) < _SAMPLES:
                        res.quarantine_samples.append({"file_line": n, "kept": repr(kept)[:200]})
                n += 1
    if len(digests) > n:
        res.quarantine_mismatches += len(digests) - n
        res.quarantine_samples.append({"file_lines": n, "records": len(digests)})


def _check_rows(plant: Any, store: Any, root: Path, res: FuzzResult) -> None:
    """Rows the plant counted == rows the store wrote == rows pyarrow reads back."""
    from kalshi_platform.storage.parquet_store import read_table
    from kalshi_platform.storage.schema import TABLES

    counted = plant.stats.table_rows()
    written = dict(store.rows_written)
    for t in sorted(set(counted) | set(written) | set(TABLES)):
        try:
            read = read_table(root, t).num_rows if t in TABLES else None
        except Exception as e:  # a file pyarrow cannot read back is a mismatch too
            _note_exception(res, e, b"", f"read_table({t})")
            read = None
        row = {"counted": counted.get(t, 0), "written": written.get(t, 0), "read": read}
        if row["counted"] or row["written"] or read:
            res.rows[t] = row
            if not row["counted"] == row["written"] == (read or 0):
                res.rows_mismatch += 1


def _note_exception(res: FuzzResult, e: BaseException, raw: bytes, kind: str) -> None:
    key = _where(e)
    res.exceptions[key] += 1
    s = res.exception_samples.get(key)
    if s is None or len(raw) < s["len"]:
        res.exception_samples[key] = {"len": len(raw), "kind": kind, "frame": _show(raw),
                                      "message": str(e)[:200]}


# -- the runner -----------------------------------------------------------------------------


def run_fuzz(frames: int = 100_000, seed: int = 0, sources: Sequence[Path] | None = None, *,
             check_every: int = 256, workdir: Path | None = None, batch_rows: int = 20_000,
             max_seconds: float | None = None, **rates: float) -> FuzzResult:
    """Feed ``frames`` fuzz frames (``seed``; ``sources`` default: bundled recordings; ``rates``
    go to :func:`fuzz_frames`) to a plant with a Parquet store (in ``workdir``, default a
    temporary directory removed afterwards; ``batch_rows`` rows per file) and an in-memory
    publisher; check after every ``check_every`` frames and at the end. With
    ``max_seconds`` the feed stops at the first check past that wall time
    (``stopped_early``; the end checks still run)."""
    if sources is None:
        sources = default_sources(False)[0]
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="kalshi-fuzz-") as tmp:
            return run_fuzz(frames, seed, sources, check_every=check_every,
                            workdir=Path(tmp), batch_rows=batch_rows,
                            max_seconds=max_seconds, **rates)
    from kalshi_platform.storage.parquet_store import ParquetStore
    from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

    res = FuzzResult(seed=seed, sources=[str(p) for p in sources])
    root = Path(workdir) / "store"
    store = ParquetStore(root, "fuzz", batch_rows=batch_rows, fsync=False, replace_existing=True)
    pub = InMemoryPublisher()
    plant = _make_plant([store, pub], res)
    t0 = time.perf_counter()
    with _quiet():
        deadline = None if max_seconds is None else t0 + max_seconds
        digests = _feed(plant, pub, fuzz_frames(seed, frames, sources, **rates), res,
                        check_every, deadline)
        try:
            plant.close()
        except Exception as e:
            _note_exception(res, e, b"", "close")
        _check_events(pub.events, res)
        _check_quarantine_file(root, digests, res)
        _check_rows(plant, store, root, res)
    res.elapsed_s = round(time.perf_counter() - t0, 3)
    return res


def _make_plant(publishers: list, res: FuzzResult) -> Any:
    from kalshi_platform.ticker_plant.plant import TickerPlant

    def resync(sid: int, tickers: list[str]) -> None:
        res.resync_requests += 1

    plant = TickerPlant(publishers)
    if hasattr(plant, "set_resync_handler"):
        plant.set_resync_handler(resync)
    else:
        plant = TickerPlant(publishers, resync=resync)
    return plant


def _feed(plant: Any, pub: Any, stream: Iterator[FuzzFrame], res: FuzzResult,
          check_every: int, deadline: float | None) -> list:
    """The hot loop: process each frame, check its quarantine record and the book it names,
    check every book and event every ``check_every`` frames.
    Returns the digests of the expected quarantine texts, in order."""
    process = plant.process
    qlist = pub.events["quarantine"]
    digests: list[bytes] = []
    last_mut: dict[str, tuple[str, bytes]] = {}
    bad: dict[str, set] = {}  # ticker → invariants broken now
    books = plant.books
    kinds = res.kinds
    for ff in stream:
        res.frames += 1
        kind = ff.kind
        kinds[kind] += 1
        if kind != "real" and kind != "preamble":
            res.mutated += 1
            if ff.ticker is not None:
                last_mut[ff.ticker] = (kind, ff.raw)
        nq = len(qlist)
        raised = False
        try:
            process(ff.raw, ff.recv_ns)
        except Exception as e:
            raised = True
            _note_exception(res, e, ff.raw, kind)
        if len(qlist) != nq:
            _check_quarantine(ff, qlist, nq, res, digests)
        elif ff.must_reject and not raised:
            res.unquarantined[kind] += 1
            if kind not in res.unquarantined_samples:
                res.unquarantined_samples[kind] = _show(ff.raw)
        b = books.get(ff.ticker) if ff.ticker is not None else None
        if b is not None:
            _check_book(ff.ticker, b, res, bad, last_mut)
        if res.frames % check_every == 0:
            _check_books(plant, res, bad, last_mut)
            _check_events(pub.events, res)
            if deadline is not None and time.perf_counter() > deadline:
                res.stopped_early = True
                break
    _check_books(plant, res, bad, last_mut)
    return digests
