"""Comparing the package's books with the Decimal oracle (``tests/kalshi_oracle.py``).

The end-to-end tests judge a live run (client → plant, against the sim) by the oracle, not by
another ``TickerPlant``: the sim keeps its books in a plant, so plant-vs-sim or plant-vs-direct
replay would compare the code with itself (issue 9 §6). These helpers only *read* the
package's books (``.books`` → integer ladders, ``top()``) and convert them to ``Decimal``; the
reference itself stays in ``kalshi_oracle`` and shares no code with the package.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from kalshi_oracle import CENTI, MICRO, D, Oracle, Top, dec_top, replay


def tops_of(holder: Any) -> dict[str, Top]:
    """``ticker → Decimal top`` of every book of ``holder`` (a plant or the sim: anything with
    ``.books`` of integer books whose ``top()`` is ``(µ$, c-contracts, µ$, c-contracts)``)."""
    return {t: dec_top(b.top()) for t, b in sorted(holder.books.items())}


def ladders_of(holder: Any) -> dict[str, tuple[dict, dict]]:
    """``ticker → (YES bids, NO bids)`` of ``holder``'s integer books, as Decimal dollars →
    Decimal contracts (the NO ladder on the NO price scale, as the package keeps it)."""
    return {t: ({D(p) / MICRO: D(q) / CENTI for p, q in b.yes.items()},
                {D(p) / MICRO: D(q) / CENTI for p, q in b.no.items()})
            for t, b in sorted(holder.books.items())}


def oracle_ladders(o: Oracle) -> dict[str, tuple[dict, dict]]:
    """The oracle's books in the shape of :func:`ladders_of`."""
    return {t: (dict(b.yes), b.no_bids()) for t, b in sorted(o.books.items())}


def summary_tops(markets: dict[str, dict]) -> dict[str, Top]:
    """A run summary's ``markets`` (``ticker → {"yes_bid": "0.41", ...}``, decimal strings or
    ``None``) as Decimal tops."""
    def dec(v: Any) -> Decimal | None:
        assert v is None or isinstance(v, str), v  # decimal strings, never floats
        return None if v is None else D(v)

    return {t: tuple(dec(m[k]) for k in ("yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size"))
            for t, m in sorted(markets.items())}


def recorded_use_yes_price(path: Path) -> bool:
    """The ``use_yes_price`` a capture was recorded with, read from its sidecar
    ``<stem>.meta.json`` (``subscribe_cmd(s)[].params`` of the ``orderbook_delta`` subscribe);
    ``False`` without one. Read here with ``json`` so the oracle needs nothing of the package."""
    name = Path(path).name
    for suffix in (".jsonl.gz", ".jsonl", ".json.gz", ".json", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    meta = Path(path).with_name(name + ".meta.json")
    if not meta.is_file() or meta == Path(path):
        return False
    raw = json.loads(meta.read_text())
    cmds = raw.get("subscribe_cmds") or ([raw["subscribe_cmd"]] if raw.get("subscribe_cmd") else [])
    flag = False
    for cmd in cmds:
        params = cmd.get("params", {})
        if "orderbook_delta" in (params.get("channels") or []) and "use_yes_price" in params:
            flag = bool(params["use_yes_price"])
    return flag


def replay_recorded(path: Path) -> Oracle:
    """:func:`replay` on the price scale the capture was recorded with."""
    return replay(path, recorded_use_yes_price(path))


def assert_books_match(holder: Any, o: Oracle, tickers: Any = None) -> None:
    """Strict: the same markets, every final top (BBO with sizes) and every level of both
    ladders equal the oracle's, exactly (Decimal). ``tickers``: compare only these markets
    (a client subscribed to a subset); they must all have books on both sides."""
    if tickers is None:
        assert sorted(holder.books) == sorted(o.books), "markets differ from the oracle"
        want_tops, want_ladders = o.final_tops(), oracle_ladders(o)
    else:
        tickers = sorted(tickers)
        assert set(tickers) <= set(holder.books) and set(tickers) <= set(o.books), tickers
        want_tops = {t: o.top(t) for t in tickers}
        want_ladders = {t: v for t, v in oracle_ladders(o).items() if t in want_tops}
    got_tops = {t: v for t, v in tops_of(holder).items() if t in want_tops}
    got_ladders = {t: v for t, v in ladders_of(holder).items() if t in want_tops}
    assert got_tops == want_tops
    assert got_ladders == want_ladders


def assert_summary_matches(markets: dict[str, dict], o: Oracle) -> None:
    """A run summary's ``markets`` (``plant.markets_summary()`` as JSON): the oracle's markets,
    each ``live`` with the oracle's final top."""
    assert summary_tops(markets) == o.final_tops()
    assert {m["state"] for m in markets.values()} == {"live"}


def oracle_of_recorder_file(path: Path) -> Oracle:
    """The oracle over a file written by the package's recorder: frame lines
    ``{"recv_ts_ns", "raw"}`` applied in order; marker lines ``{"event": ...}`` skipped, except
    a ``disconnect`` with ``"reset": true``, which drops every book and seq watermark (what the
    live plant did at that point). For runs without injected drops: a dropped delta would make
    the naive oracle apply later deltas to a book missing it."""
    import gzip

    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    o = Oracle(recorded_use_yes_price(path))
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if "event" in obj:
            if obj["event"] == "disconnect" and obj.get("reset"):
                o.books.clear()
                o.last_seq.clear()
            continue
        o.apply(json.loads(obj["raw"]), obj.get("recv_ts_ns"))
    return o
