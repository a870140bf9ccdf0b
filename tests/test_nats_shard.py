"""Shards and their lease (issue 15 §2; docs/scale-out.md "Shards"): a stable assignment by
event, one publisher per shard through a KV lease, takeover by a standby after the lease time
with a ``feed_events`` marker, fencing of the old holder. Against a loopback nats-server;
skipped without the binary."""

from __future__ import annotations

import asyncio
import time

import pytest

from conftest import COCKPIT, wait_until
from nats_support import Server, needs_nats
from oracle_compare import assert_books_match, replay_recorded
from test_nats_traps import _events, _init, _Loop


def test_assignment_keeps_an_events_markets_together_and_is_stable():
    from kalshi_platform.feed.nats_shard import (ShardError, event_of, markets_of_shard,
                                                 parse_shard, shard_of)

    tickers = [f"KXMLBGAME-26AUG07{g:02d}-{side}" for g in range(40) for side in ("A", "B")]
    assert event_of("KXMLBGAME-26AUG071840NYMPIT-NYM") == "KXMLBGAME-26AUG071840NYMPIT"
    for n in (1, 2, 3, 5):
        parts = [markets_of_shard(tickers, k, n) for k in range(n)]
        assert sorted(sum(parts, [])) == sorted(tickers)  # a partition
        for t in tickers:  # both markets of a game on one shard
            assert shard_of(t, n) == shard_of(event_of(t) + "-OTHER", n)
    assert len({shard_of(t, 3) for t in tickers}) == 3  # 40 events spread over 3 shards
    assert shard_of("KXMLBGAME-26AUG0701-A", 7) == shard_of("KXMLBGAME-26AUG0701-A", 7)
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "1", "a/2", "-1/2", "0/0"):
        with pytest.raises(ShardError):
            parse_shard(bad)


@needs_nats
def test_one_holder_standby_takes_over_after_the_lease_time_old_holder_fenced(tmp_path):
    import nats

    from kalshi_platform.feed.nats_shard import ShardLease

    server = Server(tmp_path / "js").start()

    async def go():
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        a = ShardLease(js, "lease", "0", "plant-a", 1.0)
        b = ShardLease(js, "lease", "0", "plant-b", 1.0)
        await a.open()
        await b.open()
        assert await a.step() and not await b.step()
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:  # a renews; b watches and never leads
            assert await a.step() and not await b.step()
            await asyncio.sleep(0.3)
        last_renew = time.monotonic()
        fenced_at = took_at = None
        while took_at is None and time.monotonic() < last_renew + 5:  # a has crashed
            if fenced_at is None and not a.leader:
                fenced_at = time.monotonic()
            if await b.step():
                took_at = time.monotonic()
            await asyncio.sleep(0.05)
        assert took_at is not None and b.took_over_from == "plant-a" and b.takeovers == 1
        assert fenced_at is not None and fenced_at < took_at  # a stopped before b started
        assert not await a.step() and a.lost == 1  # a comes back: its renew is refused
        await nc.close()

    try:
        asyncio.run(go())
    finally:
        server.stop()


@needs_nats
def test_standby_publisher_takes_over_marker_stored_subscriber_follows(tmp_path):
    """Two publishers of one shard fed the same events (two plants on one feed): only the
    lease holder publishes. The holder dies (its loop stops: no renew, no END); the standby
    takes over after the lease time, publishes a takeover marker and a snapshot, then its
    windows. A subscriber follows the switch and ends with the oracle's books; the writer
    stores the marker in feed_events."""
    import subprocess
    import sys

    import nats

    from kalshi_platform.feed.nats_pub import NatsPublisher
    from kalshi_platform.feed.subscriber import Subscriber

    server = Server(tmp_path / "js").start()
    helper = _Loop()
    try:
        nc = helper.run(nats.connect(server.url))
        helper.run(_init(nc.jetstream(), "prod"))
        url = server.url + "?lease_s=2&snapshot_s=0.2"  # 2 s: a loaded box renews in time
        a = NatsPublisher(url, "run-a")
        def leading(p) -> bool:  # the test thread is the publishers' consumer thread
            p.on_idle()  # (a stream runner calls it every 50 ms when idle)
            return p.leading

        wait_until(lambda: leading(a), 10, "the first plant leading")
        b = NatsPublisher(url, "run-b")
        sub = Subscriber(server.url, idle_timeout=30)
        items: list = []
        import threading

        th = threading.Thread(target=lambda: items.extend(sub), daemon=True)
        th.start()
        evs = _events(10_000)
        half = 160  # a multiple of the batch size
        for start in range(0, half, 20):
            batch = evs[start:start + 20]
            a.on_batch(start + 1, batch)
            b.on_batch(start + 1, batch)
        wait_until(lambda: a.stats()["unacked"] == 0, 10, "a's acks")
        assert not b.leading and b.withheld == half
        a._loop.call_soon_threadsafe(a._loop.stop)  # a crashes: no renew, no END
        wait_until(lambda: leading(b), 10, "the standby's takeover")
        for start in range(half, len(evs), 20):
            b.on_batch(start + 1, evs[start:start + 20])
        b.close()
        th.join(30)
        assert b.stats()["lease"]["took_over_from"] == "run-a"
        runs = [it for it in items if it.feed == "snapshot"]
        assert runs and sub.run_id == "run-b" and items[-1].feed == "end"
        assert_books_match(sub.books, replay_recorded(COCKPIT))
        out = tmp_path / "store"
        p = subprocess.run([sys.executable, "-m", "kalshi_platform", "writer", "--from",
                            server.url, "--store", str(out), "--idle-exit", "0.5"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        from kalshi_platform.storage.parquet_store import read_table

        fe = read_table(out, "feed_events").to_pylist()
        marks = [r for r in fe if r["kind"] == "takeover"]
        assert len(marks) == 2 and any("taking over from run-a" in r["detail"] for r in marks)
        helper.run(nc.close())
        a._loop.run_until_complete(a._nc.close())  # the crashed plant's connection, at last
    finally:
        helper.stop()
        server.stop()


@needs_nats
def test_plant_failover_against_the_sim_kill_9_the_leader(tmp_path):
    """Two `run --shard 0/1 --publish nats://…?lease_s=2` plants against the local sim: one
    leads, one stands by. kill -9 of the leader mid-playback: the standby takes over within the
    lease time (plus polling), publishes the takeover marker, and a nats:// subscriber ends
    with the oracle's books (the sim's feed) on the standby's run."""
    import signal
    import subprocess
    import sys
    import threading

    import nats

    from kalshi_platform.feed.subscriber import Subscriber
    from kalshi_platform.storage.parquet_store import read_table
    from sim_support import start_sim_process

    cli = [sys.executable, "-m", "kalshi_platform"]
    server = Server(tmp_path / "js").start()
    helper = _Loop()
    sim = leader = standby = None
    try:
        nc = helper.run(nats.connect(server.url))
        helper.run(_init(nc.jetstream(), "prod"))
        sim, ws, rest = start_sim_process(cli, COCKPIT, tmp_path, "--speed", "10",
                                          "--exit-when-done")  # ~5.6 s of playback
        sub = Subscriber(server.url, idle_timeout=60)
        items: list = []
        th = threading.Thread(target=lambda: items.extend(sub), daemon=True)
        th.start()
        url = server.url + "?lease_s=2&snapshot_s=0.2"
        run = cli + ["run", "--series", "KXMLBGAME", "--series", "KXWNBAGAME", "--ws-url", ws,
                     "--base-url", rest, "--sink", "none", "--publish", url, "--shard", "0/1",
                     "--exit-on-close", "--status-interval", "0"]
        leader = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, cwd=tmp_path)
        try:
            wait_until(lambda: sum(it.feed == "deltas" for it in items) > 0, 30,
                       "the leader publishing")
        except AssertionError as e:  # say which side stalled: the leader, the subscriber
            rc = leader.poll()
            if rc is None:
                leader.kill()
            raise AssertionError(f"{e}; leader rc {rc}, subscriber alive {th.is_alive()}, "
                                 f"items {len(items)} {[it.feed for it in items][:20]}, sim rc {sim.poll()}; "
                                 f"subscriber run {sub.run_id}, leader stderr: "
                                 f"{leader.stderr.read()[-3000:]}") from None
        standby = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True, cwd=tmp_path)
        wait_until(lambda: sum(it.feed == "deltas" for it in items) > 60, 30,
                   "the leader well into the feed")
        leader.send_signal(signal.SIGKILL)
        killed_ns = time.time_ns()
        leader.wait(10)
        assert standby.wait(60) == 0, standby.stderr.read()
        th.join(30)
        assert items[-1].feed == "end"
        assert_books_match(sub.books, replay_recorded(COCKPIT))
        out = tmp_path / "store"
        p = subprocess.run(cli + ["writer", "--from", server.url, "--store", str(out),
                                  "--idle-exit", "0.5"], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        marks = [r for r in read_table(out, "feed_events").to_pylist()
                 if r["kind"] == "takeover" and "taking over from" in (r["detail"] or "")]
        assert len(marks) == 1
        took = marks[0]["ts"]
        took_ns = took.timestamp() * 1e9 if hasattr(took, "timestamp") else took
        assert 0 < (took_ns - killed_ns) / 1e9 < 2.0 + 2.0  # lease 2 s, renew/poll 2/3 s
        helper.run(nc.close())
    finally:
        for proc in (leader, standby, sim):
            if proc is not None and proc.poll() is None:
                proc.kill()
        helper.stop()
        server.stop()


def test_a_new_runs_later_window_first_on_the_other_stream_loses_nothing(tmp_path):
    """Each JetStream stream has its own consumer, so a new run's window 2 (its deltas, on
    the BOOK stream) can reach a subscriber before window 1 (a feed event, on the EVENTS
    stream). The subscriber then follows the run from window 1 with window 2 kept: every
    event, in order, no gap, no snapshot needed (it used to wait for a snapshot that a young
    run has not published yet, and lose window 2)."""
    import nats

    from kalshi_platform.feed import nats_wire as w
    from kalshi_platform.feed import protocol
    from kalshi_platform.feed.subscriber import Subscriber
    from kalshi_platform.stream import codec
    from kalshi_platform.ticker_plant.events import DeltaEvent, FeedEvent

    server = Server(tmp_path / "js").start()
    helper = _Loop()
    try:
        nc = helper.run(nats.connect(server.url))
        js = nc.jetstream()
        helper.run(_init(js, "prod"))
        sub = Subscriber(server.url + "?shard=0", idle_timeout=10)
        run, tk = "20261201T000000Z-0000abcd", "KXT-26DEC01-A"
        feed_ev = FeedEvent(1_786_000_000_000_000_000, "connect", None, None, None, "hello")
        deltas = [DeltaEvent(tk, 1_786_000_000_000_000_000 + i, 1, i, "yes", 500_000, 100, None)
                  for i in (1, 2)]

        async def publish() -> None:
            h = {w.HDR_SHARD: "0"}
            await js.publish(w.subject("prod", "deltas", tk, "0"), w.encode_part(
                run, 2, 3, [2, 3], [codec.to_array(d) for d in deltas]),
                headers={**h, w.HDR_MSG_ID: f"{run}:2"})
            await js.publish(w.subject("prod", "feed_events", None, "0"), w.encode_part(
                run, 1, 1, [1], [codec.to_array(feed_ev)]), headers={**h, w.HDR_MSG_ID: f"{run}:1"})
            await js.publish(w.control_subject("prod", "0"),
                             protocol.encode_control(protocol.END, run, 3), headers=h)

        helper.run(publish())
        items = list(sub)
        assert [it.feed for it in items] == ["feed_events", "deltas", "deltas", "end"]
        assert [it.seq for it in items] == [1, 2, 3, 3]
        assert sub.gaps == 0 and sub.snapshots == 0
        helper.run(nc.close())
    finally:
        helper.stop()
        server.stop()
