"""Event blocks: a run of the plant's :class:`~.events.DeltaEvent` and :class:`~.events.BBO`
events in columnar form (:class:`~kalshi_platform.ingestion._delta.EventBlock`, built by the
compiled delta path; the layout is in ``ingestion/delta_block.h``).

A replay whose only publisher is the event stream hands it one block per recording chunk
instead of one tuple per event (:meth:`EventStream.publish_block
<kalshi_platform.stream.bus.EventStream.publish_block>`): the stream counts a block as
``len(block)`` events and seqs, storage sinks read its records straight into Arrow columns
(``ParquetStore.publish_block``), and every other consumer gets the events themselves
(:func:`materialize`), the same tuples, in the same order, the plant would have emitted.
"""

from __future__ import annotations

from typing import Any, Iterable

from kalshi_platform.ingestion._delta import BlockBuilder, EventBlock
from kalshi_platform.ticker_plant.events import BBO, DeltaEvent

__all__ = ["BlockBuilder", "EventBlock", "K_DELTA", "K_BBO", "block_events", "materialize"]

#: record kinds of a block (``EventBlock.part(kind)``, ``count(kind)``)
K_DELTA = 0
K_BBO = 1


def block_events(block: EventBlock, kind: int = -1) -> list[Any]:
    """The events of ``block`` in stream order (``kind`` :data:`K_DELTA` / :data:`K_BBO`: only
    those), as :class:`DeltaEvent` and :class:`BBO` tuples."""
    return block.events(DeltaEvent, BBO, kind)


def materialize(items: Iterable[Any]) -> list[Any]:
    """``items`` (events and event blocks, in stream order) as a list of events: each block
    replaced by its events."""
    out: list[Any] = []
    for it in items:
        if type(it) is EventBlock:
            out.extend(it.events(DeltaEvent, BBO))
        else:
            out.append(it)
    return out
