"""Taking rows off the QuestDB writer's in-memory queue (:mod:`kalshi_platform.storage.
questdb_rdb`), a slice at a time.

The queue holds, oldest first, plant events (each a table's rows: one, or a row per level for a
snapshot) and event blocks (:class:`~kalshi_platform.ticker_plant.blocks.EventBlock`: a run of
deltas and BBO rows in columnar form, ``len(block)`` rows, one per event). The sender takes a
run of events (:func:`take_rows`, which stops before a block) or a run of blocks
(:func:`take_blocks`, which stops before an event); a limit that falls inside a block cuts it
(``block.slice``), the rest staying at the queue's head, so a batch ends at the row it would
end at if every event had been queued on its own. :func:`spill_take` is the spill's copy of
the queue's oldest rows.

Callers hold the writer's queue lock; only the lock holder pops or replaces the head (the
plant thread only appends).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from kalshi_platform.storage import _columns
from kalshi_platform.storage.schema import TABLE_FOR_EVENT, TABLE_LISTENERS
from kalshi_platform.ticker_plant.blocks import EventBlock

#: plant event type → its table's rows-per-event function (None: one row per event)
ROWS_PER: dict[type, Any] = {ty: t.rows_per_event for ty, t in TABLE_FOR_EVENT.items()}
TABLE_LISTENERS.append(lambda t: ROWS_PER.__setitem__(t.event, t.rows_per_event))


def take_rows(head: list, limit: int) -> tuple[dict[type, list], int, int]:
    """``(events by type, events taken, rows)``: the first events of ``head`` (queued plant
    events, oldest first) up to the one at which their rows reach ``limit`` (all of them if
    they never do), stopping before the first event block in ``head``. Split by type in one
    C pass, the types in order of first appearance (the order of the tables in the ILP
    request, as before); only when events of several rows (snapshots) are among them is
    ``head`` walked, to find the cut."""
    types = tuple(ROWS_PER)
    parts, first = _columns.split(head, types)
    if first[-1] >= 0:  # a block (the only non-table item queued): the run ends before it
        head = head[:first[-1]]
        parts, first = _columns.split(head, types)
    multi = tuple(ty for ty, p in zip(types, parts) if p and ROWS_PER[ty] is not None)
    taken, extra = min(len(head), limit), 0  # extra: rows beyond one per event taken
    if multi:
        taken, extra = cut(head, limit, _columns.positions(head, multi))
        if taken < len(head):
            parts, first = _columns.split(head[:taken], types)
    order = sorted((f, i) for i, f in enumerate(first[:-1]) if f >= 0)
    return {types[i]: parts[i] for _, i in order}, taken, taken + extra


def cut(head: list, limit: int, multi: list[int]) -> tuple[int, int]:
    """``(k, extra)``: the fewest first events of ``head`` whose rows reach ``limit`` (all
    of ``head`` if they never do), and their rows beyond one per event; ``multi``: the
    positions (ascending) of the events that make several rows (snapshots)."""
    extra = 0
    for i in multi:
        if limit - extra <= i:  # the one-row event at limit - extra - 1 made it
            return limit - extra, extra
        extra += rows_of(head[i]) - 1
        if i + 1 + extra >= limit:
            return i + 1, extra
    return min(len(head), limit - extra), extra


def rows_of(item: Any) -> int:
    """Table rows of a queued item: a plant event's, or an event block's ``len``."""
    if type(item) is EventBlock:
        return len(item)
    per = ROWS_PER[type(item)]
    return 1 if per is None else per(item)


def take_blocks(q: deque, limit: int) -> tuple[list[EventBlock], int]:
    """``(blocks, rows)``: pop the event blocks at the head of ``q`` (oldest first) until
    they make ``limit`` rows or an event comes; a block that would pass ``limit`` is cut,
    its first rows taken and the rest left at the head. ``rows`` = the taken blocks' rows
    (``limit`` at most)."""
    out: list[EventBlock] = []
    rows = 0
    while q and rows < limit and type(q[0]) is EventBlock:
        b = q[0]
        n = len(b)
        if rows + n > limit:
            k = limit - rows
            out.append(b.slice(0, k))
            q[0] = b.slice(k, n)
            return out, limit
        out.append(q.popleft())
        rows += n
    return out, rows


def spill_take(q: deque, want: int) -> tuple[list, int, EventBlock | None]:
    """``(items, rows, rest)``: a copy of the oldest items of ``q`` up to the one at which
    their rows reach ``want`` (a block that would pass it cut: its first rows are the last
    item, and ``rest``, its other rows, is what replaces it at the head once ``items`` are
    durable; ``None`` when no block was cut). ``q`` itself is not changed: the caller pops
    ``len(items)`` items (``len(items) - 1`` and then sets ``q[0] = rest`` when cut)."""
    items: list = []
    rows = 0
    for e in q:
        if rows >= want:
            break
        if type(e) is EventBlock:
            n = len(e)
            if rows + n > want:
                k = want - rows
                items.append(e.slice(0, k))
                return items, want, e.slice(k, n)
            rows += n
        else:
            rows += rows_of(e)
        items.append(e)
    return items, rows, None
