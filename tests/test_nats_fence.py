"""Fencing of a shard's previous lease holder (issue 15 §2; docs/scale-out.md "Fencing").

nats-server 2.9.10 has no publish header that ties a message to another subject's sequence
(``Nats-Expected-Last-Subject-Sequence-Subject`` came with nats-server 2.11), so JetStream
itself stores what a zombie holder publishes after a takeover; the writer fences it by the
takeover markers, which the new holder puts on both streams. Against a loopback nats-server
and the bundled real recording; skipped without the binary.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import wait_until
from nats_support import Server, needs_nats
from test_nats_traps import _events, _init, _Loop

pytestmark = needs_nats


def _table_rows(store, table: str) -> list:
    from kalshi_platform.storage.parquet_store import read_table

    return sorted((tuple(r.values()) for r in read_table(store, table).to_pylist()), key=repr)


def test_a_zombie_holder_publishing_after_the_takeover_is_not_stored(tmp_path):
    """Plant A holds shard 0, B stands by. A's lease renewals stop while A goes on
    publishing (a stalled host that never noticed: the worst case, its own fence never
    fires). B takes over, announces; A's later windows (a marked ticker) are stored by
    JetStream, and the writer stores none of them: every table equals a direct store of the
    events once (A's before the takeover, B's after), plus the takeover markers."""
    from kalshi_platform.feed import nats_wire
    from kalshi_platform.feed.nats_pub import NatsPublisher
    from kalshi_platform.storage.parquet_store import ParquetStore
    from kalshi_platform.storage.schema import TABLES
    from kalshi_platform.ticker_plant.events import TradeEvent

    server = Server(tmp_path / "js").start()
    helper = _Loop()
    try:
        import nats

        nc = helper.run(nats.connect(server.url))
        js = nc.jetstream()
        helper.run(_init(js, "prod"))
        url = server.url + "?lease_s=2&snapshot_s=0.2"

        def leading(p) -> bool:  # the test thread is the publishers' consumer thread
            p.on_idle()
            return p.leading

        a = NatsPublisher(url, "run-a")
        wait_until(lambda: leading(a), 10, "A leading")
        b = NatsPublisher(url, "run-b")
        evs = _events(10_000)
        half = 160
        for start in range(0, half, 20):
            a.on_batch(start + 1, evs[start:start + 20])
            b.on_batch(start + 1, evs[start:start + 20])
        wait_until(lambda: a.stats()["unacked"] == 0, 10, "A's acks")
        a._loop.call_soon_threadsafe(a._leaser.cancel)  # A stalls: no renew, still leading
        wait_until(lambda: leading(b), 15, "B's takeover")
        wait_until(lambda: b.stats()["unacked"] == 0, 10, "B's takeover marker stored")
        zombie = [e._replace(ticker="KXZOMBIE-26DEC01-Z") for e in evs[half:half + 200]
                  if type(e) is not TradeEvent and getattr(e, "ticker", None)]
        a.on_batch(half + 1, zombie)  # A keeps publishing after the takeover
        a.on_idle()
        wait_until(lambda: a.stats()["unacked"] == 0, 10, "A's late windows acked")
        names = nats_wire.stream_names("prod")
        late = helper.run(js.get_last_msg(names["book"], "kalshi.prod.bbo.KXZOMBIE.>"))
        assert nats_wire.decode_part(late.data)[0].run_id == "run-a"  # in JetStream
        a._loop.call_soon_threadsafe(a._loop.stop)
        for start in range(half, len(evs), 20):
            b.on_batch(start + 1, evs[start:start + 20])
        b.close()

        out, summary = tmp_path / "store", tmp_path / "w.json"
        p = subprocess.run([sys.executable, "-m", "kalshi_platform", "writer", "--from",
                            server.url, "--store", str(out), "--idle-exit", "0.5",
                            "--summary-json", str(summary)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        stats = json.loads(summary.read_text())
        assert stats["fenced"] > 0
        direct = ParquetStore(tmp_path / "direct", "oracle")
        direct.publish_many(evs)
        direct.flush()
        direct.close()
        for t in TABLES:
            got = _table_rows(out, t)
            assert not any("KXZOMBIE-26DEC01-Z" in map(str, r) for r in got), t
            if t == "feed_events":
                got = [r for r in got if r[1] != "takeover"]
            assert got == _table_rows(tmp_path / "direct", t), t
        kinds = [r[1] for r in _table_rows(out, "feed_events")]
        assert kinds.count("takeover") == 2  # A's first take, B's takeover
        helper.run(nc.close())
    finally:
        helper.stop()
        server.stop()


def test_a_holder_that_loses_its_lease_drops_its_unstored_windows(tmp_path):
    """A's BOOK publishes fail (the stream is gone: no responders, retried with the same msg
    id); meanwhile another plant takes the shard's lease. A's next renew is refused: it stops
    publishing and drops what it has not had stored, so when the stream is back none of its
    windows lands after the takeover (without the drop, its retries would)."""
    import nats

    from kalshi_platform.feed import nats_wire
    from kalshi_platform.feed.nats_pub import NatsPublisher

    server = Server(tmp_path / "js").start()
    helper = _Loop()
    try:
        nc = helper.run(nats.connect(server.url))
        js = nc.jetstream()
        helper.run(_init(js, "prod"))
        a = NatsPublisher(server.url + "?lease_s=1.5&backoff_s=0.05&backoff_max_s=0.2",
                          "run-a")
        wait_until(lambda: (a.on_idle(), a.leading)[1], 10, "A leading")
        book = nats_wire.stream_names("prod")["book"]
        helper.run(js.delete_stream(book))
        a.on_batch(1, _events(100))
        wait_until(lambda: a.retries["no_responders"] >= 3, 10, "A retrying")

        async def steal():
            kv = await js.key_value("KALSHI_PROD_SHARDS")
            await kv.put("shard-0", json.dumps({"holder": "run-b", "ttl_s": 1.5}).encode())

        helper.run(steal())
        wait_until(lambda: not a.leading and a.stats()["unacked"] == 0, 10,
                   "A fenced, its unstored windows dropped")
        assert a.stats()["fenced"] > 0 and a.stats()["lease"]["lost"] == 1
        helper.run(_init(js, "prod"))  # the stream is back
        a.close()
        assert helper.run(js.stream_info(book)).state.messages == 0
        helper.run(nc.close())
    finally:
        helper.stop()
        server.stop()
