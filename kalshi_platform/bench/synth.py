"""Large, realistic and *valid* synthetic order-book recordings, grown from a real capture.

Benchmarks need millions of frames; real captures are short.  :func:`write_synthetic_recording`
turns a real ``orderbook_delta`` capture into an arbitrarily long recording that is still a
correct Kalshi stream, so the fast plant and the baseline oracle must agree on it.

How the stream is built (all frames in the ``{"received_ms": int, "frame": {...}}`` envelope,
compact JSON, one per line):

1. The source is read once: its snapshots (one per market) and its deltas, in order.  The deltas
   are applied to the snapshots with :class:`~kalshi_platform.bench.baseline.BaselineBook` to
   prove the source itself is valid (no level ever goes negative).
2. ``market_copies`` copies of the markets are made.  Copy 0 keeps the real tickers; copy
   ``k > 0`` renames ticker ``T`` to ``f"{T}-C{k}"`` (and derives a stable fake ``market_id``).
3. Output: one ``subscribed`` frame, then every copy's real snapshot (copy 0 first), then an
   endless *cycle*:

   * a forward pass: the real deltas in order;
   * the exact inverse pass: the same deltas in reverse order with ``delta_fp`` negated
     (``"54.00"`` <-> ``"-54.00"``).  It walks every book back through the very states the
     forward pass went through, so no level is ever negative, and at the end of the inverse
     pass every book is exactly its snapshot again.

   Within each pass the copies are interleaved delta by delta (step ``i`` emits delta ``i`` of
   copy 0, copy 1, ...), so ``12 * market_copies`` markets are active at once.
4. Resync: at the end of a cycle (all books back at their snapshot state), once at least
   ``resync_every`` frames have gone by since the last resync, the snapshots of one copy are
   re-sent (copies in turn), exactly as a ``get_snapshot`` reply would land.
5. Everything is on ``sid`` 1 with one gapless ``seq`` counter starting at 1 (the
   ``subscribed`` frame carries no seq, as on the wire).
6. Time: pass ``p`` reuses the real capture's delta timing (in forward order, also for the
   inverse pass) shifted by ``p * span`` where ``span`` is the capture's duration + 1 ms, so
   ``received_ms`` and ``ts_ms`` never decrease and the delta ``ts`` (RFC 3339, microseconds,
   trailing zeros dropped as Kalshi does) always floors to ``ts_ms``.

The output is streamed in chunks (never held in memory) to ``dst + ".tmp"`` and renamed into
place; a ``.gz`` destination is gzip-compressed.  The file has exactly ``n_frames`` lines.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

from kalshi_platform.bench.baseline import BaselineBook, decode_frame, iter_lines, unwrap

__all__ = ["DEFAULT_RESYNC_EVERY", "write_synthetic_recording"]

#: Frames between two resyncs (a resync only ever happens at the end of a cycle).
DEFAULT_RESYNC_EVERY = 20_000

_SID = 1
_CHUNK_LINES = 8192
_COMPACT = {"separators": (",", ":")}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, **_COMPACT)


def _parse_ts_us(ts: str) -> int:
    """RFC 3339 UTC string -> Unix microseconds (sub-microsecond digits are truncated)."""
    s = ts.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    # fromisoformat (3.11) accepts 1-6 fractional digits; trim anything beyond microseconds.
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tail = rest[:i], rest[i:]
        s = head + ("." + frac[:6] if frac else "") + tail
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _format_ts(ts_us: int) -> str:
    """Unix microseconds -> ``2026-08-07T06:46:28.97871Z`` (Kalshi style: no trailing zeros)."""
    secs, us = divmod(ts_us, 1_000_000)
    base = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{us:06d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def _negate_fp(value: str) -> str:
    """``"54.00"`` -> ``"-54.00"``, ``"-3.13"`` -> ``"3.13"`` (same number of decimals)."""
    d = Decimal(value)
    if d == 0:
        return value
    return str(-d)


class _Source:
    """The parts of a real capture the generator needs."""

    def __init__(self, src: Path) -> None:
        self.subscribed: dict | None = None
        self.snapshots: list[tuple[int | None, dict]] = []  # (received_ms, msg)
        self.deltas: list[tuple[int | None, dict]] = []
        seen: set[str] = set()
        books: dict[str, BaselineBook] = {}
        for raw in iter_lines(src):
            frame = unwrap(raw)
            if frame is None:
                continue
            env = json.loads(raw)
            received_ms = env.get("received_ms")
            if received_ms is None and "recv_ts_ns" in env:
                received_ms = int(env["recv_ts_ns"]) // 1_000_000
            ftype = frame.get("type")
            if ftype == "subscribed" and self.subscribed is None:
                self.subscribed = frame
            elif ftype == "orderbook_snapshot":
                msg = frame["msg"]
                dec = decode_frame(frame)
                ticker = dec["ticker"]
                if ticker in seen:
                    raise ValueError(f"source re-snapshots {ticker}: need one snapshot per market")
                if self.deltas:
                    raise ValueError("source has a snapshot after the first delta")
                seen.add(ticker)
                books[ticker] = BaselineBook()
                books[ticker].apply_snapshot(dec["yes"], dec["no"])
                self.snapshots.append((received_ms, msg))
            elif ftype == "orderbook_delta":
                msg = frame["msg"]
                if "price_dollars" not in msg or "delta_fp" not in msg:
                    raise ValueError("source delta lacks price_dollars/delta_fp (legacy era)")
                dec = decode_frame(frame)
                book = books.get(dec["ticker"])
                if book is None:
                    raise ValueError(f"source delta for {dec['ticker']} before its snapshot")
                book.apply_delta(dec["side"], dec["price"], dec["delta"])  # proves validity
                self.deltas.append((received_ms, msg))
        if not self.snapshots:
            raise ValueError(f"{src}: no orderbook_snapshot frames")
        if not self.deltas:
            raise ValueError(f"{src}: no orderbook_delta frames")


def _copy_names(msg: dict, k: int) -> tuple[str, str | None]:
    ticker = msg["market_ticker"]
    market_id = msg.get("market_id")
    if k == 0:
        return ticker, market_id
    new_id = None
    if market_id is not None:
        new_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"kalshi-synth:{market_id}:C{k}"))
    return f"{ticker}-C{k}", new_id


def _renamed(msg: dict, k: int) -> dict:
    out = dict(msg)
    out["market_ticker"], new_id = _copy_names(msg, k)
    if "market_id" in out:
        out["market_id"] = new_id
    return out


def _generate(source: _Source, copies: int, resync_every: int) -> Iterator[tuple[str, str | None, str]]:
    """Endless stream of ``(kind, ticker, line)``; kind is "H" (subscribed), "S" or "D"."""
    seq = 0

    # --- delta timing template (forward order), forced non-decreasing -----------------------
    rec: list[int] = []
    tus: list[int] = []
    r_prev = t_prev = None
    for received_ms, msg in source.deltas:
        if "ts" in msg and isinstance(msg["ts"], str) and msg["ts"]:
            t = _parse_ts_us(msg["ts"])
        elif msg.get("ts_ms") is not None:
            t = int(msg["ts_ms"]) * 1000
        elif received_ms is not None:
            t = int(received_ms) * 1000
        else:
            t = t_prev if t_prev is not None else 0
        r = int(received_ms) if received_ms is not None else t // 1000
        if r_prev is not None:
            r = max(r, r_prev)
            t = max(t, t_prev)
        rec.append(r)
        tus.append(t)
        r_prev, t_prev = r, t
    span_ms = max(rec[-1] - rec[0], tus[-1] // 1000 - tus[0] // 1000) + 1

    # --- per-copy line pieces ------------------------------------------------------------------
    snap_pre = '{"received_ms":'
    snap_mid = ',"frame":{"type":"orderbook_snapshot","sid":%d,"seq":' % _SID
    snap_msgs: list[list[tuple[str, str]]] = []  # [copy][market] -> (ticker, ',"msg":{...}}}\n')
    for k in range(copies):
        row = []
        for _, msg in source.snapshots:
            m = _renamed(msg, k)
            row.append((m["market_ticker"], ',"msg":' + _dumps(m) + "}}\n"))
        snap_msgs.append(row)

    delta_mid = ',"frame":{"type":"orderbook_delta","sid":%d,"seq":' % _SID

    def delta_piece(msg: dict, k: int, inverse: bool) -> str:
        m = _renamed(msg, k)
        if inverse:
            m["delta_fp"] = _negate_fp(m["delta_fp"])
        m.pop("ts", None)
        m.pop("ts_ms", None)
        return ',"msg":' + _dumps(m)[:-1] + ',"ts":"'

    fwd = [[delta_piece(msg, k, False) for k in range(copies)] for _, msg in source.deltas]
    inv = [[delta_piece(msg, k, True) for k in range(copies)] for _, msg in source.deltas]
    tickers = [[_copy_names(msg, k)[0] for k in range(copies)] for _, msg in source.deltas]
    n = len(source.deltas)

    # --- header: subscribed + every copy's snapshots ------------------------------------------
    sub = dict(source.subscribed) if source.subscribed else {"type": "subscribed", "id": 1}
    sub.pop("seq", None)
    sub.pop("sid", None)
    sub_msg = dict(sub.get("msg") or {})
    sub_msg.setdefault("channel", "orderbook_delta")
    sub_msg["sid"] = _SID
    sub["msg"] = sub_msg
    t_start = min([rec[0]] + [r for r, _ in source.snapshots if r is not None])
    yield "H", None, '{"received_ms":%d,"frame":%s}\n' % (t_start, _dumps(sub))
    since_resync = 1

    r_last = t_start
    for k in range(copies):
        for j, (ticker, body) in enumerate(snap_msgs[k]):
            r = source.snapshots[j][0]
            r = t_start if r is None else min(max(int(r), r_last), rec[0])
            r_last = r
            seq += 1
            since_resync += 1
            yield "S", ticker, snap_pre + str(r) + snap_mid + str(seq) + body

    # --- cycles: forward pass, inverse pass, maybe a resync -----------------------------------
    pass_idx = 0
    resyncs = 0
    copy_range = range(copies)
    while True:
        for inverse in (False, True):
            shift_ms = pass_idx * span_ms
            pieces = inv if inverse else fwd
            for step in range(n):
                i = n - 1 - step if inverse else step
                r = rec[step] + shift_ms
                t = tus[step] + shift_ms * 1000
                pre = '{"received_ms":' + str(r) + delta_mid
                post = _format_ts(t) + '","ts_ms":' + str(t // 1000) + "}}}\n"
                row = pieces[i]
                trow = tickers[i]
                for k in copy_range:
                    seq += 1
                    yield "D", trow[k], pre + str(seq) + row[k] + post
            since_resync += n * copies
            pass_idx += 1
        if since_resync >= resync_every:
            # Every book is back at its snapshot state: re-send one copy's snapshots.
            k = resyncs % copies
            resyncs += 1
            r_str = str(rec[-1] + (pass_idx - 1) * span_ms)
            for ticker, body in snap_msgs[k]:
                seq += 1
                yield "S", ticker, snap_pre + r_str + snap_mid + str(seq) + body
            since_resync = 0


def write_synthetic_recording(
    src: Path,
    dst: Path,
    n_frames: int,
    market_copies: int = 8,
    *,
    resync_every: int = DEFAULT_RESYNC_EVERY,
) -> dict:
    """Write exactly ``n_frames`` lines of a valid synthetic recording grown from ``src``.

    ``src`` is a real capture (any envelope :func:`~kalshi_platform.bench.baseline.unwrap`
    accepts; ``.gz`` allowed) with one snapshot per market followed by deltas (current
    ``_dollars``/``_fp`` fields).  ``dst`` receives ``{"received_ms","frame"}`` lines (gzip if it
    ends in ``.gz``).  ``market_copies`` (>= 1) copies of the source's markets are interleaved;
    ``resync_every`` is the minimum number of frames between two snapshot resyncs, which only
    happen at the end of a forward+inverse cycle.  See the module docstring for the layout.

    Returns ``{"frames", "deltas", "snapshots", "markets", "resyncs", "last_seq"}``:
    counts of lines, delta frames and snapshot frames written, distinct market tickers
    snapshotted, snapshot batches re-sent after the initial ones, and the last ``seq`` used.
    """
    if n_frames < 0:
        raise ValueError("n_frames must be >= 0")
    if market_copies < 1:
        raise ValueError("market_copies must be >= 1")
    if resync_every < 1:
        raise ValueError("resync_every must be >= 1")
    src, dst = Path(src), Path(dst)
    source = _Source(src)
    n_markets = len(source.snapshots)

    frames = deltas = snapshots = 0
    markets: set[str] = set()
    tmp = dst.with_name(dst.name + ".tmp")
    gz = dst.name.endswith(".gz")
    fh = gzip.open(tmp, "wb", compresslevel=1) if gz else open(tmp, "wb")
    try:
        buf: list[str] = []
        for kind, ticker, line in islice(_generate(source, market_copies, resync_every), n_frames):
            buf.append(line)
            if kind == "D":
                deltas += 1
            elif kind == "S":
                snapshots += 1
                markets.add(ticker)
            if len(buf) >= _CHUNK_LINES:
                fh.write("".join(buf).encode("utf-8"))
                frames += len(buf)
                buf.clear()
        if buf:
            fh.write("".join(buf).encode("utf-8"))
            frames += len(buf)
        fh.close()
        os.replace(tmp, dst)
    except BaseException:
        fh.close()
        tmp.unlink(missing_ok=True)
        raise
    initial = min(snapshots, n_markets * market_copies)
    return {
        "frames": frames,
        "deltas": deltas,
        "snapshots": snapshots,
        "markets": len(markets),
        "resyncs": (snapshots - initial + n_markets - 1) // n_markets,
        "last_seq": deltas + snapshots,
    }
