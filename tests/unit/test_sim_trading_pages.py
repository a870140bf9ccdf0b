"""The sim's trading lists (orders, fills, settlements): rows inside the min_ts/max_ts window,
newest first, cursor pages (kalshi_platform.sim.trading_rest.newest_page; docs/trading-api.md
§4.1). Checked against a plain filter-and-sort oracle over every window and page size."""

from __future__ import annotations

import random

import pytest

from kalshi_platform.sim.trading_rest import BadRequest, newest_page, ts_filter


def _all_pages(rows, query, window):
    out, cursor = [], None
    while True:
        q = dict(query, **({"cursor": cursor} if cursor else {}))
        chunk, cursor = newest_page(iter(rows), q, window, lambda r: r[0])
        out.append(chunk)
        if not cursor:
            return out


def test_window_newest_first_and_pages_match_an_oracle():
    rng = random.Random(7)
    rows = sorted((rng.randrange(0, 50) * 10**9, i) for i in range(40))  # (ts ns, id), oldest first
    for min_s, max_s in ((None, None), (10, None), (None, 30), (10, 30), (31, 30), (49, 49)):
        q = {k: str(v) for k, v in (("min_ts", min_s), ("max_ts", max_s)) if v is not None}
        window = ts_filter(q)
        want = sorted((r for r in rows if (min_s is None or r[0] >= min_s * 10**9)
                       and (max_s is None or r[0] <= max_s * 10**9)), reverse=True)
        for limit in (1, 3, 100):
            pages = _all_pages(rows, {**q, "limit": str(limit)}, window)
            assert [r for p in pages for r in p] == want
            assert all(len(p) <= limit for p in pages)


def test_bad_window_and_limit_are_one_line_errors():
    with pytest.raises(BadRequest, match="min_ts and max_ts must be integer"):
        ts_filter({"min_ts": "yesterday"})
    with pytest.raises(BadRequest, match=r"limit must be in 1\.\.1000"):
        newest_page([], {"limit": "0"}, (None, None), lambda r: r)
