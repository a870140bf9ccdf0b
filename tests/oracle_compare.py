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


def assert_books_match(holder: Any, o: Oracle) -> None:
    """Strict: the same markets, every final top (BBO with sizes) and every level of both
    ladders equal the oracle's, exactly (Decimal)."""
    assert sorted(holder.books) == sorted(o.books), "markets differ from the oracle"
    assert tops_of(holder) == o.final_tops()
    assert ladders_of(holder) == oracle_ladders(o)
