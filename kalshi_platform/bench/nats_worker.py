"""The subscriber process of ``bench nats``: ``python -m kalshi_platform.bench.nats_worker
URL OUT.json`` subscribes to ``URL`` (every feed, local books kept), touches ``OUT.json.ready``
once connected, and at END writes ``{"events", "gaps", "snapshots", "end_at"}`` (``end_at``
epoch seconds) to ``OUT.json``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(url: str, out: str) -> int:
    """Run one subscriber until END (or 60 s without a message); returns an exit code."""
    from kalshi_platform.feed.subscriber import Subscriber

    sub = Subscriber(url, idle_timeout=60)
    Path(out + ".ready").touch()
    events = 0
    for item in sub:
        if item.feed not in ("snapshot", "gap", "end"):
            events += 1
    Path(out).write_text(json.dumps({"events": events, "gaps": sub.gaps,
                                     "snapshots": sub.snapshots, "end_at": time.time()}))
    return 0 if sub.ended else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
