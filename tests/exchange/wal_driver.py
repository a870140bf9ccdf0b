"""Crash-test driver (run as a subprocess by test_wal.py): submits the seeded load
(exchange_streams.load) through a DurableExchange in groups of ``group`` commands and, after each
group returns (durable), prints one JSON ack line per command to stdout, flushed. The parent
SIGKILLs it at some point and checks the recovered state against the acks.

usage: python wal_driver.py DIR SEED GROUP SNAPSHOT_EVERY
"""

import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from kalshi_platform.exchange.wal import DurableExchange  # noqa: E402
from exchange_streams import load  # noqa: E402


def main() -> None:
    path, seed, group, snap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    dx = DurableExchange(path, snapshot_every=snap)
    gen = load(seed)
    i = 0
    out = sys.stdout
    while True:
        batch = [(cmd, ts) for ts, cmd in itertools.islice(gen, group)]
        results = dx.submit_many(batch)
        lines = []
        for (cmd, ts), res in zip(batch, results):
            i += 1
            o = res.order
            lines.append(json.dumps({
                "i": i, "ok": res.error is None,
                "order_id": o.order_id if o else None,
                "client_order_id": getattr(cmd, "client_order_id", None),
                "status": o.status if o else None, "fill_count": o.fill_count if o else 0,
                "trades": sorted({e.trade_id for e in res.events if type(e).__name__ == "Fill"}),
            }))
        out.write("\n".join(lines) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
