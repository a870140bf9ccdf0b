"""The QuestDB writer's sender takes its queue a slice at a time (storage/ilp_queue.py take_rows: one
C split by type instead of a Python loop per event): the same events, the same cut (the event
at which the rows reach the limit; a snapshot is a row per level) and the same order of the
tables (first appearance, so the ILP request's lines come in the same order) as the loop it
replaced, kept here as the oracle."""

from __future__ import annotations

import random

import pytest

from kalshi_platform.storage import ilp_queue as q
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent, SnapshotEvent, TradeEvent


def loop_slice(head: list, limit: int):
    """The replaced per-event loop (``_convert_slice`` before), on a list."""
    groups: dict[type, list] = {}
    rows = k = 0
    while k < len(head) and rows < limit:
        e = head[k]
        groups.setdefault(type(e), []).append(e)
        rows += q.rows_of(e)
        k += 1
    return groups, k, rows


def random_head(rnd: random.Random, n: int) -> list:
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.2:
            out.append(SnapshotEvent("A", 1, 1, 1, [(1, 1)] * rnd.randrange(0, 5),
                                     [(2, 2)] * rnd.randrange(0, 3), None))
        elif r < 0.4:
            out.append(BBO("A", 1, 1, 1, 2, 2, 1, None))
        elif r < 0.45:
            out.append(TradeEvent("A", 1, "t", 1, 1, 1, None, None))
        else:
            out.append(DeltaEvent("A", 1, 1, 1, "yes", 1, 1, None))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_take_rows_is_the_per_event_loop(seed):
    rnd = random.Random(seed)
    for _ in range(1_000):
        limit = rnd.randrange(1, 45)
        head = random_head(rnd, rnd.randrange(0, 40))[:limit]  # as islice(queue, limit)
        groups, taken, rows = q.take_rows(head, limit)
        want, w_taken, w_rows = loop_slice(head, limit)
        assert (taken, rows) == (w_taken, w_rows)
        assert list(groups) == list(want)  # tables in order of first appearance
        for ty, evs in want.items():
            assert len(groups[ty]) == len(evs) and all(a is b for a, b in zip(groups[ty], evs))
