"""Acceptance tests of the ticker plant's Parquet output on real Kalshi recordings (item d,
moved from test_acceptance_plant.py, which keeps a, b, c and e): the output is deterministic,
idempotent and row-for-row what the independent Decimal oracle expects.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

import kalshi_oracle as oracle
from conftest import (
    BUNDLED,
    COCKPIT,
    SSMD_EMBEDDED,
    SSMD_TICKER,
    SSMD_TRADE,
    frame_of_line,
    read_lines,
)
from kalshi_oracle import D, ONE, float_or_none
from kalshi_platform.tools.replay import run_replay

COCKPIT_LINES = read_lines(COCKPIT)


# =============================================================================================
# d. Parquet: deterministic, idempotent, row-for-row as the oracle expects


def _table_rows(root: Path, table: str) -> list[tuple]:
    path = root / table
    if not path.is_dir():
        return []
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    cols = []
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_timestamp(col.type):
            assert col.type == pa.timestamp("us", tz="UTC"), (table, name, col.type)
            col = col.cast(pa.int64())
        elif pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        cols.append((name, col.to_pylist()))
    names = [n for n, _ in cols]
    rows = [dict(zip(names, vals)) for vals in zip(*(v for _, v in cols))]
    return sorted((tuple(sorted(r.items())) for r in rows), key=repr)


def _store_contents(root: Path) -> dict:
    tables = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    return {t: _table_rows(root, t) for t in tables}


def _store_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _replay_all(store: Path) -> list[dict]:
    return [run_replay(p, store=store, sinks=["parquet"]) for p in BUNDLED]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    a = tmp_path_factory.mktemp("store_a")
    b = tmp_path_factory.mktemp("store_b")
    sa = _replay_all(a)
    once = _store_contents(a)
    files_once = _store_files(a)
    _replay_all(a)  # again, into the same store
    twice = _store_contents(a)
    files_twice = _store_files(a)
    sb = _replay_all(b)
    return {"a": a, "b": b, "summaries": sa, "summaries_b": sb, "once": once, "twice": twice,
            "files_once": files_once, "files_twice": files_twice, "b_contents": _store_contents(b)}


def test_d_two_fresh_stores_are_identical(stores):
    assert stores["once"] and stores["once"] == stores["b_contents"]
    assert stores["files_once"] == _store_files(stores["b"])
    strip = lambda s: {k: v for k, v in s.items() if k not in ("elapsed_s", "msg_per_s", "store", "stream")}
    assert [strip(s) for s in stores["summaries"]] == [strip(s) for s in stores["summaries_b"]]


def test_d_replaying_into_the_same_store_is_idempotent(stores):
    assert stores["twice"] == stores["once"]
    assert stores["files_twice"] == stores["files_once"]


@pytest.fixture(scope="module")
def oracles():
    return {p: oracle.replay(p) for p in BUNDLED}


def test_d_row_counts(stores, oracles):
    c = stores["once"]
    msgs = Counter()
    for o in oracles.values():
        msgs.update(o.messages)
    n = {t: len(rows) for t, rows in c.items()}
    assert n["trades"] == msgs["trade"] == 11
    assert n["tickers"] == msgs["ticker"] == 12
    # the excerpt's second lifecycle frame goes back in seq: a duplicate, dropped (section e)
    assert n["market_lifecycle"] == msgs["market_lifecycle_v2"] + msgs["event_lifecycle"] == 1
    assert n["orderbook_deltas"] == msgs["orderbook_delta"] == 245
    bbo_changes = sum(len(o.changes) for o in oracles.values())
    plant_bbo = sum(s["rows_by_table"].get("bbo", 0) for s in stores["summaries"])
    assert n["bbo"] == plant_bbo == bbo_changes
    assert n["orderbook_snapshots"] == sum(o.snapshot_rows for o in oracles.values())
    assert n["orderbook_snapshots"] == sum(
        len(lv) for ln in COCKPIT_LINES if frame_of_line(ln)["type"] == "orderbook_snapshot"
        for lv in oracle.snapshot_levels(frame_of_line(ln)["msg"]))
    assert n["feed_events"] == 1  # the one real forward seq jump (section e)
    assert "fills" not in n
    written = Counter()
    for s in stores["summaries"]:
        written.update(s["rows_written"])
        assert s["rows_written"] == s["rows_by_table"]
    assert dict(written) == n


def test_d_bbo_rows_equal_oracle(stores, oracles):
    orc = oracles[COCKPIT]
    want = []
    for ticker, ts, (yb, ybs, ya, yas), seq, recv in orc.changes:
        both = yb is not None and ya is not None
        want.append(tuple(sorted({
            "ticker": ticker, "ts": ts // 1000, "yes_bid": float_or_none(yb),
            "yes_bid_size": float_or_none(ybs), "yes_ask": float_or_none(ya),
            "yes_ask_size": float_or_none(yas),
            "mid": float((yb + ya) / 2) if both else None,
            "spread": float(ya - yb) if both else None, "seq": seq, "recv_ts": recv // 1000,
            "state": "live",
            "date": datetime.fromtimestamp(ts / 1e9, tz=timezone.utc).strftime("%Y-%m-%d"),
        }.items())))
    assert stores["once"]["bbo"] == sorted(want, key=repr)


def test_d_bbo_yes_ask_is_one_minus_best_no_bid(stores, oracles):
    orc = oracles[COCKPIT]
    rows = [dict(r) for r in stores["once"]["bbo"]]
    last = {}
    for r in rows:
        if r["ticker"] not in last or r["seq"] > last[r["ticker"]]["seq"]:
            last[r["ticker"]] = r
    assert len(last) == 12
    for ticker, r in last.items():
        no = orc.books[ticker].no
        best_no = max(no)
        assert r["yes_ask"] == float(ONE - best_no)
        assert r["yes_ask_size"] == float(no[best_no])
        assert r["yes_bid"] == float(max(orc.books[ticker].yes))


def test_d_delta_and_snapshot_rows_equal_the_frames(stores):
    want_d, want_s = [], []
    for ln in COCKPIT_LINES:
        env = json.loads(ln)
        f, recv_us = env["frame"], env["received_ms"] * 1000
        m = f.get("msg")
        if f["type"] == "orderbook_delta":
            ts = m["ts_ms"] * 1000  # UTC microseconds
            want_d.append({"ticker": m["market_ticker"], "ts": ts, "sid": f["sid"], "seq": f["seq"],
                           "side": m["side"], "price": float(D(m["price_dollars"])),
                           "delta": float(D(m["delta_fp"])), "recv_ts": recv_us,
                           "date": "2026-08-07"})
        elif f["type"] == "orderbook_snapshot":
            yes, no = oracle.snapshot_levels(m)
            for side, levels in (("yes", yes), ("no", no)):
                for p, q in levels:
                    want_s.append({"ticker": m["market_ticker"], "ts": recv_us, "sid": f["sid"],
                                   "seq": f["seq"], "side": side, "price": float(p),
                                   "size": float(q), "recv_ts": recv_us, "date": "2026-08-07"})
    canon = lambda rows: sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    assert stores["once"]["orderbook_deltas"] == canon(want_d)
    assert stores["once"]["orderbook_snapshots"] == canon(want_s)


def test_d_trade_lifecycle_ticker_rows(stores):
    trades, tickers, life = [], [], []
    for path in (SSMD_TRADE, SSMD_EMBEDDED):
        watermark: dict[int, int] = {}
        for ln in read_lines(path):
            f = json.loads(ln)
            m = f["msg"]
            sid, seq = f.get("sid"), f.get("seq")
            if seq is not None:
                if seq <= watermark.get(sid, 0):
                    continue  # at or below the watermark: a duplicate, never stored
                watermark[sid] = seq
            if f["type"] == "trade":
                ts = m["ts"] * 1_000_000
                trades.append({"ticker": m["market_ticker"], "ts": ts, "trade_id": m["trade_id"],
                               "yes_price": float(D(m["yes_price_dollars"])),
                               "no_price": float(D(m["no_price_dollars"])),
                               "count": float(D(m["count_fp"])), "taker_side": m["taker_side"],
                               "recv_ts": None, "date": datetime.fromtimestamp(
                                   m["ts"], tz=timezone.utc).strftime("%Y-%m-%d")})
            elif f["type"] == "market_lifecycle_v2":
                secs = m.get("determination_ts") or m.get("settled_ts")
                sv = m.get("settlement_value")
                life.append({"ticker": m["market_ticker"], "ts": secs * 1_000_000,
                             "event_type": m["event_type"], "result": m.get("result"),
                             "settlement_value": None if sv is None else float(D(sv)),
                             "detail": json.dumps(m, separators=(",", ":")), "recv_ts": None,
                             "date": datetime.fromtimestamp(secs, tz=timezone.utc).strftime(
                                 "%Y-%m-%d")})
    for ln in read_lines(SSMD_TICKER):
        m = json.loads(ln)["msg"]
        tickers.append({"ticker": m["market_ticker"], "ts": m["ts"] * 1_000_000,
                        "price": float(D(m["price_dollars"])),
                        "yes_bid": float(D(m["yes_bid_dollars"])),
                        "yes_ask": float(D(m["yes_ask_dollars"])),
                        "yes_bid_size": float(D(m["yes_bid_size_fp"])),
                        "yes_ask_size": float(D(m["yes_ask_size_fp"])),
                        "volume": float(D(m["volume_fp"])),
                        "open_interest": float(D(m["open_interest_fp"])), "recv_ts": None,
                        "date": "2026-02-12"})
    canon = lambda rows: sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    assert stores["once"]["trades"] == canon(trades)
    assert stores["once"]["market_lifecycle"] == canon(life)
    ssmd = {t["ticker"] for t in tickers}
    got = [r for r in stores["once"]["tickers"] if dict(r)["ticker"] in ssmd]
    assert got == canon(tickers)


def test_d_partitions_are_the_utc_date_of_ts(stores):
    root = stores["a"]
    for table_dir in (p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for part in table_dir.iterdir():
            assert part.name.startswith("date="), part
            day = part.name[5:]
            t = ds.dataset(part, format="parquet").to_table(columns=["ts"])
            for ts in t.column("ts").cast(pa.int64()).to_pylist():
                assert datetime.fromtimestamp(ts / 1e6, tz=timezone.utc).strftime(
                    "%Y-%m-%d") == day
