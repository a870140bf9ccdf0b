"""What the sim's REST market data serves: markets, events, series, trades, the cutoff.

Data comes from two places:

* the **recording** the sim replays (:mod:`.playback`): every market ticker it mentions becomes
  a market object (:func:`recording_market`; event = ticker without its last ``-`` part,
  series = event up to its first ``-``), and every ``trade`` frame a REST trade
  (:func:`trade_from_ws`);
* a directory of **REST fixtures** (``--rest-fixtures``, e.g. ``data/rest``): every ``*.json``
  file is walked recursively and each trade object (``trade_id`` + ``ticker`` +
  ``created_time``), market object (``ticker`` + ``event_ticker`` + ``status``), event
  (``event_ticker`` + ``series_ticker`` + ``title``), series and historical cutoff found in it
  is kept. Capture wrappers (``note``, ``captured_at``, ``payload``...) are fine, ``*.meta.json``
  files are skipped.

Objects are completed on the way out (:func:`complete_market`, :func:`complete_event`,
:func:`complete_series`) with the fields the official SDK's models require (SDK 3.34
``Market``, ``EventData``, ``Series``; docs/kalshi-api.md §3.3, §3.4, §4) and the recording
or fixture lacks, so every object validates; the fixture text itself is kept verbatim.
"""

from __future__ import annotations

import bisect
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kalshi_platform.fixedpoint import price_to_str
from kalshi_platform.ingestion.messages import DecodeError, iso_to_ns

log = logging.getLogger(__name__)

EPOCH_ISO = "1970-01-01T00:00:00Z"
DAY_NS = 86_400 * 1_000_000_000

#: fields every SDK ``Market`` requires that a fixture may lack, with the value the sim uses
MARKET_DEFAULTS: dict[str, Any] = {
    "market_type": "binary", "yes_sub_title": "", "no_sub_title": "",
    "settlement_timer_seconds": 0, "result": "", "can_close_early": False,
    "yes_bid_dollars": "0.0000", "yes_bid_size_fp": "0.00", "yes_ask_dollars": "1.0000",
    "yes_ask_size_fp": "0.00", "no_bid_dollars": "0.0000", "no_ask_dollars": "1.0000",
    "last_price_dollars": "0.0000", "volume_fp": "0.00", "volume_24h_fp": "0.00",
    "open_interest_fp": "0.00", "notional_value_dollars": "1.0000",
    "previous_yes_bid_dollars": "0.0000", "previous_yes_ask_dollars": "0.0000",
    "previous_price_dollars": "0.0000", "settlement_bounds_type": "default",
    "expiration_value": "", "rules_primary": "", "rules_secondary": "",
    "price_level_structure": "linear_cent",
    "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
}
#: time fields a market needs; missing ones fall back to ``created_time``/``close_time``
_MARKET_TIMES = ("created_time", "updated_time", "open_time", "close_time",
                 "latest_expiration_time")


def event_of(ticker: str) -> str:
    """Event ticker of a market ticker: everything before the last ``-``."""
    return ticker.rsplit("-", 1)[0] if "-" in ticker else ticker


def series_of(event_ticker: str) -> str:
    """Series ticker of an event ticker: everything before the first ``-``."""
    return event_ticker.split("-", 1)[0]


def ns_to_iso(ns: int) -> str:
    """Unix ns → RFC3339 UTC with microseconds (``2026-08-07T18:00:00.123456Z``)."""
    sec, us = divmod(ns // 1000, 1_000_000)
    dt = datetime.fromtimestamp(sec, tz=timezone.utc).replace(microsecond=us)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_s(value: Any) -> int | None:
    """RFC3339 → Unix seconds, ``None`` when absent or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return iso_to_ns(value) // 1_000_000_000
    except DecodeError:
        return None


def recording_market(ticker: str, first_ns: int | None, last_ns: int | None,
                     source: str) -> dict[str, Any]:
    """A market object for a ticker known only from a recording (``_sim`` marks it, so its
    prices are filled in from the live book and last ``ticker`` frame).

    The recording holds no market metadata: ``created_time``/``open_time``/``updated_time`` are
    the ticker's first frame (receipt time), ``close_time``/``latest_expiration_time`` one day
    after its last frame (so the market is open throughout playback); ``rules_primary`` names
    the recording. Missing receipt times fall back to the epoch.
    """
    first = first_ns or 0
    last = (last_ns or first) + DAY_NS
    m = dict(MARKET_DEFAULTS)
    m.update({
        "ticker": ticker, "event_ticker": event_of(ticker), "title": ticker, "status": "active",
        "created_time": ns_to_iso(first), "updated_time": ns_to_iso(first),
        "open_time": ns_to_iso(first), "close_time": ns_to_iso(last),
        "latest_expiration_time": ns_to_iso(last), "expected_expiration_time": ns_to_iso(last),
        "rules_primary": f"Replayed by the local sim from the recording {source}.",
        "_sim": True})
    return m


def complete_market(m: dict[str, Any]) -> dict[str, Any]:
    """A copy of market ``m`` with every SDK-required field present (:data:`MARKET_DEFAULTS`;
    time fields fall back to ``created_time``, then ``close_time``, then the epoch)."""
    out = {k: v for k, v in m.items() if k != "_sim"}
    for k, v in MARKET_DEFAULTS.items():
        if out.get(k) is None:
            out[k] = list(v) if isinstance(v, list) else v
    fallback = out.get("created_time") or out.get("open_time") or out.get("close_time") \
        or EPOCH_ISO
    for k in _MARKET_TIMES:
        if not out.get(k):
            out[k] = out.get("close_time") if k == "latest_expiration_time" and \
                out.get("close_time") else fallback
    return out


def complete_event(ev: dict[str, Any]) -> dict[str, Any]:
    """A copy of event ``ev`` with the SDK ``EventData`` required fields present."""
    out = {k: v for k, v in ev.items() if k != "markets"}
    et = out.get("event_ticker", "")
    out.setdefault("series_ticker", series_of(et))
    for k, v in (("title", et), ("sub_title", ""), ("collateral_return_type", ""),
                 ("mutually_exclusive", False)):
        if out.get(k) is None:
            out[k] = v
    out.setdefault("settlement_sources", [])
    return out


def complete_series(s: dict[str, Any]) -> dict[str, Any]:
    """A copy of series ``s`` with the SDK ``Series`` required fields present
    (``categories`` = ``[category]`` when missing)."""
    out = dict(s)
    t = out.get("ticker", "")
    cat = out.get("category") or ""
    for k, v in (("title", t), ("frequency", "custom"), ("category", cat),
                 ("categories", [cat] if cat else []), ("contract_url", ""),
                 ("contract_terms_url", ""), ("fee_type", "quadratic"),
                 ("fee_multiplier", 1)):
        if out.get(k) is None:
            out[k] = v
    return out


@dataclass
class TradeRecord:
    """One REST trade (docs/kalshi-api.md §3.7) with its sort key (``created_ns``, ``trade_id``)."""

    created_ns: int
    trade_id: str
    obj: dict[str, Any]

    @property
    def key(self) -> tuple[int, str]:
        return (self.created_ns, self.trade_id)


@dataclass
class RestData:
    """Everything the REST endpoints serve, except books.

    ``markets``: ticker → market object (as loaded; completed when served); ``trades``: sorted
    ascending by key (served newest first); ``cutoff``: the ``/historical/cutoff`` body;
    ``events``/``series``: fixture objects by ticker.
    """

    markets: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: list[TradeRecord] = field(default_factory=list)
    cutoff: dict[str, str] = field(default_factory=lambda: {
        "market_settled_ts": EPOCH_ISO, "trades_created_ts": EPOCH_ISO,
        "orders_updated_ts": EPOCH_ISO})
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    _trade_ids: set[str] = field(default_factory=set)

    # -- loading ---------------------------------------------------------------------------

    def add_trade(self, obj: dict[str, Any]) -> bool:
        """Add a REST trade object; ``False`` if its ``trade_id`` is known or it is unusable."""
        tid = obj.get("trade_id")
        if not isinstance(tid, str) or tid in self._trade_ids:
            return False
        try:
            ns = iso_to_ns(obj.get("created_time"))  # type: ignore[arg-type]
        except DecodeError:
            return False
        bisect.insort(self.trades, TradeRecord(ns, tid, obj), key=lambda r: r.key)
        self._trade_ids.add(tid)
        return True

    def add_market(self, obj: dict[str, Any], *, replace: bool = True) -> None:
        """Add (or replace) a market object keyed by its ``ticker``."""
        t = obj.get("ticker")
        if isinstance(t, str) and (replace or t not in self.markets):
            self.markets[t] = obj

    def set_cutoff(self, iso: str) -> None:
        """Set every cutoff timestamp to ``iso`` (RFC3339, UTC). Raises ``ValueError``."""
        try:
            iso_to_ns(iso)
        except DecodeError as e:
            raise ValueError(str(e)) from None
        self.cutoff = {"market_settled_ts": iso, "trades_created_ts": iso,
                       "orders_updated_ts": iso}

    def load_fixtures(self, root: str | Path) -> dict[str, int]:
        """Load every ``*.json`` under ``root`` (recursively; ``*.meta.json`` skipped).

        Returns counts ``{"files", "trades", "markets", "events", "series", "cutoff"}``.
        Raises ``OSError`` if ``root`` is not a readable directory; unparseable files are
        logged and skipped.
        """
        root = Path(root)
        if not root.is_dir():
            raise OSError(f"{root}: not a directory")
        counts = {"files": 0, "trades": 0, "markets": 0, "events": 0, "series": 0, "cutoff": 0}
        for path in sorted(root.rglob("*.json")):
            if path.name.endswith(".meta.json"):
                continue
            try:
                doc = json.loads(path.read_bytes())
            except (OSError, ValueError) as e:
                log.warning("skipping REST fixture %s: %s", path, e)
                continue
            counts["files"] += 1
            self._walk(doc, counts, 0)
        return counts

    def _walk(self, x: Any, counts: dict[str, int], depth: int) -> None:
        if depth > 12:
            return
        if isinstance(x, list):
            for v in x:
                self._walk(v, counts, depth + 1)
            return
        if not isinstance(x, dict):
            return
        if "trades_created_ts" in x and "market_settled_ts" in x:
            self.cutoff = {k: v for k, v in x.items() if isinstance(v, str)}
            counts["cutoff"] += 1
            return
        if ("trade_id" in x and "ticker" in x and "created_time" in x
                and "order_id" not in x):
            counts["trades"] += self.add_trade(x)
            return
        if isinstance(x.get("ticker"), str) and "event_ticker" in x and "status" in x:
            self.add_market(x)
            counts["markets"] += 1
            return
        if (isinstance(x.get("event_ticker"), str) and "series_ticker" in x and "ticker" not in x
                and isinstance(x.get("title"), str)
                and ("mutually_exclusive" in x or "sub_title" in x)):
            self.events[x["event_ticker"]] = {k: v for k, v in x.items() if k != "markets"}
            counts["events"] += 1
        elif isinstance(x.get("ticker"), str) and ("frequency" in x or "fee_type" in x):
            self.series[x["ticker"]] = x
            counts["series"] += 1
            return
        for v in x.values():
            self._walk(v, counts, depth + 1)

    # -- state -----------------------------------------------------------------------------

    def apply_lifecycle(self, ticker: str, msg: dict[str, Any]) -> None:
        """Move a recording-made market's ``status``/``result`` along a
        ``market_lifecycle_v2`` msg (docs/kalshi-api.md §7.9); fixture markets are left as
        recorded."""
        m = self.markets.get(ticker)
        if m is None or not m.get("_sim"):
            return
        et = msg.get("event_type")
        status = {"determined": "determined", "settled": "finalized",
                  "activated": "active"}.get(et)  # type: ignore[arg-type]
        if et == "deactivated":
            status = "inactive" if msg.get("is_deactivated", True) else "active"
        if status:
            m["status"] = status
        if et == "determined" and isinstance(msg.get("result"), str):
            m["result"] = msg["result"]

    def is_historical(self, m: dict[str, Any]) -> bool:
        """Whether market ``m`` settled before the cutoff ``market_settled_ts`` (so it is
        served by ``/historical/markets`` only; docs/kalshi-api.md §3.9)."""
        if m.get("status") not in ("finalized", "settled"):
            return False
        settled = iso_s(m.get("settlement_ts")) or iso_s(m.get("close_time"))
        cut = iso_s(self.cutoff.get("market_settled_ts")) or 0
        return settled is not None and settled < cut


def trade_from_ws(msg: dict[str, Any]) -> dict[str, Any] | None:
    """A WebSocket ``trade`` msg (docs/kalshi-api.md §7.7) as a REST trade object (§3.7), or
    ``None`` when it lacks an id, a ticker or a time. ``created_time`` is built from ``ts_ms``
    (else ``ts`` seconds) as RFC3339 UTC with microseconds."""
    tid = msg.get("trade_id")
    ticker = msg.get("market_ticker")
    ts_ms = msg.get("ts_ms")
    if type(ts_ms) is not int:
        ts = msg.get("ts")
        ts_ms = ts * 1000 if type(ts) is int else None
    if not isinstance(tid, str) or not isinstance(ticker, str) or ts_ms is None:
        return None
    count = msg.get("count_fp") or (f"{msg['count']}.00" if type(msg.get("count")) is int
                                    else None)
    out: dict[str, Any] = {
        "trade_id": tid, "ticker": ticker, "count_fp": count,
        "yes_price_dollars": msg.get("yes_price_dollars"),
        "no_price_dollars": msg.get("no_price_dollars"),
        "created_time": ns_to_iso(ts_ms * 1_000_000),
        "is_block_trade": bool(msg.get("is_block_trade", False)),
    }
    for k in ("taker_side", "taker_outcome_side", "taker_book_side"):
        if k in msg:
            out[k] = msg[k]
    if "taker_outcome_side" not in out and msg.get("taker_side") in ("yes", "no"):
        out["taker_outcome_side"] = msg["taker_side"]
        out["taker_book_side"] = "bid" if msg["taker_side"] == "yes" else "ask"
    for k in ("yes_price_dollars", "no_price_dollars"):
        if out[k] is None:
            cents = msg.get(k.replace("_dollars", ""))
            out[k] = price_to_str(cents * 10_000) if type(cents) is int else None
    return out
