"""The nats-py / nats-server 2.9.10 traps the publisher must survive (issue 15 §1;
docs/fanout-and-scale.md "NATS JetStream from Python"):

* a ``publish_async`` future never times out by itself (a request nobody answers);
* while no stream answers (a leader election; here: the stream deleted), publishes fail at once
  with "no responders": buffer, back off, retry with the same ``Nats-Msg-Id``;
* (the multi-filter trap is in test_nats_single.py.)

Each test runs its own nats-server on loopback; skipped without the binary.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import COCKPIT, wait_until
from nats_support import Server, needs_nats

pytestmark = needs_nats


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "js").start()
    yield s
    s.stop()


def _events(n: int) -> list:
    """The first ``n`` events the plant makes of the bundled recording."""
    from kalshi_platform.ingestion.recording import feed
    from kalshi_platform.ticker_plant.plant import TickerPlant

    class Collect:  # a publisher keeping the plant's events in stream order
        def __init__(self) -> None:
            self.events: list = []

        def publish(self, ev) -> None:
            self.events.append(ev)

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    mem = Collect()
    plant = TickerPlant([mem])
    feed(COCKPIT, plant)
    plant.close()
    return mem.events[:n]


class _Loop:
    """An asyncio loop on a thread, for a second nats connection the test drives."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_all() -> None:
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _init(js, env: str):
    from kalshi_platform.feed import nats_admin

    return nats_admin.init_streams(js, env, nats_admin.Retention(events_replicas=1))


def test_publish_async_future_never_times_out_but_the_publisher_retries_it(server):
    """A request that reaches a plain subscriber (no stream) is never answered: nats-py's
    future is still pending after 1 s. The publisher's wrapper cancels it after
    ``ack_timeout_s`` and retries with the same msg id; once the stream is back every message
    is stored exactly once."""
    import nats

    from kalshi_platform.feed import nats_wire
    from kalshi_platform.feed.nats_pub import NatsPublisher

    helper = _Loop()
    nc = helper.run(nats.connect(server.url))
    js = nc.jetstream()
    helper.run(_init(js, "trap"))
    silent: list = []

    async def swallow(msg):  # a subscriber that takes every request and never replies
        silent.append(msg.subject)

    async def raw_future_pending() -> bool:
        sub = await nc.subscribe("kalshi.trap.silent.>", cb=swallow)
        fut = await js.publish_async("kalshi.trap.silent.X.X-1", b"x")
        done, _ = await asyncio.wait({fut}, timeout=1.0)
        fut.cancel()
        await sub.unsubscribe()
        return not done

    assert helper.run(raw_future_pending())  # the trap: no ack, no error, no timeout

    book = nats_wire.stream_names("trap")["book"]
    pub = NatsPublisher(server.url + "?env=trap&ack_timeout_s=0.3&backoff_max_s=0.2", "run1")
    helper.run(js.delete_stream(book))
    sub = helper.run(nc.subscribe("kalshi.trap.bbo.>", cb=swallow))
    evs = _events(60)
    pub.on_batch(1, evs)
    wait_until(lambda: pub.retries["timeout"] >= 1, 10, "a timed-out publish retried")
    helper.run(sub.unsubscribe())
    helper.run(_init(js, "trap"))  # the stream is back
    pub.close()
    s = pub.stats()
    assert s["unacked"] == 0 and s["failed"] is None, s
    info = helper.run(js.stream_info(book))
    from kalshi_platform.stream.codec import FEED_OF

    parts = len({(FEED_OF[type(e)], getattr(e, "ticker", None)) for e in evs
                 if FEED_OF[type(e)] in nats_wire.BOOK_FEEDS})
    assert info.state.messages == parts  # each part once, whatever the retries
    helper.run(nc.close())
    helper.stop()


def test_no_responders_are_retried_with_backoff_and_the_same_msg_id(server):
    """With the streams gone, every publish fails at once with no responders; the publisher
    counts them, backs off (so it does not spin: far fewer attempts than a tight loop would
    make in the outage) and, once the streams are back, stores every part exactly once."""
    import nats

    from kalshi_platform.feed import nats_wire
    from kalshi_platform.feed.nats_pub import NatsPublisher

    helper = _Loop()
    nc = helper.run(nats.connect(server.url))
    js = nc.jetstream()
    helper.run(_init(js, "nr"))
    pub = NatsPublisher(server.url + "?env=nr&backoff_s=0.05&backoff_max_s=0.4", "run2")
    names = nats_wire.stream_names("nr")
    for n in names.values():
        helper.run(js.delete_stream(n))
    evs = _events(300)
    pub.on_batch(1, evs[:150])
    wait_until(lambda: pub.retries["no_responders"] >= 5, 10, "no-responder retries")
    outage_start = pub.retries["no_responders"]
    wait_until(lambda: pub.retries["no_responders"] >= outage_start + 3, 10, "backoff retries")
    pub.on_batch(151, evs[150:])  # buffered meanwhile
    helper.run(_init(js, "nr"))
    pub.close()
    s = pub.stats()
    assert s["unacked"] == 0 and s["failed"] is None, s
    assert s["retries"]["no_responders"] < 2000  # backoff, not a spin
    # every part stored once; the last snapshot and END went through too
    book = helper.run(js.stream_info(names["book"])).state.messages
    events = helper.run(js.stream_info(names["events"])).state.messages
    assert book + events == s["acked"] + 1  # + END (acked separately)
    assert s["duplicates"] == 0
    helper.run(nc.close())
    helper.stop()


def test_a_window_that_never_completes_is_a_gap_after_reorder_s(server):
    """A window whose part never arrives (seq 2 of window 1..2), while a later window is
    complete, is reported as a gap once reorder_s has passed, and the subscriber resyncs from
    the shard's snapshot; a part that is merely late (a retried publish) is not a gap."""
    import nats

    from kalshi_platform.feed import nats_wire as w
    from kalshi_platform.feed import protocol
    from kalshi_platform.feed.subscriber import Subscriber
    from kalshi_platform.stream import codec

    helper = _Loop()
    nc = helper.run(nats.connect(server.url))
    js = nc.jetstream()
    helper.run(_init(js, "prod"))
    evs = [codec.to_array(e) for e in _events(5)]
    h = {w.HDR_SHARD: "0"}

    def part(first, last, seqs, subject="kalshi.prod.deltas.X.X-1"):
        data = w.encode_part("r1", first, last, seqs, [evs[s - 1] for s in seqs])
        helper.run(js.publish(subject, data, headers={**h, w.HDR_MSG_ID: f"r1:{seqs[0]}"}))

    sub = Subscriber(server.url + "?reorder_s=0.5", idle_timeout=20)
    items: list = []
    th = threading.Thread(target=lambda: items.extend(sub), daemon=True)
    th.start()
    part(1, 2, [1])  # seq 2 of this window is never published
    part(3, 3, [3])
    snap = protocol.encode_snapshot("r1", 3, [])
    helper.run(js.publish("kalshi.prod.snapshot.0", snap, headers=h))
    wait_until(lambda: any(it.feed == "gap" for it in items), 10, "the gap")
    part(5, 5, [5], "kalshi.prod.deltas.X.X-2")  # window 4 is late ...
    part(4, 4, [4])  # ... and arrives within reorder_s: no gap for it
    end = protocol.encode_control(protocol.END, "r1", 5)
    helper.run(js.publish("kalshi.prod.feed_events._control.0", end, headers=h))
    th.join(20)
    kinds = [it.feed for it in items]
    assert kinds[0] == "gap" and items[0].event == (1, 2)
    assert kinds[1] == "snapshot" and items[1].seq == 3
    assert sub.gaps == 1 and kinds[-1] == "end"
    assert [it.seq for it in items if it.feed not in ("gap", "snapshot", "end")] == [4, 5]
    helper.run(nc.close())
    helper.stop()
