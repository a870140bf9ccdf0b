"""``ipc://`` transport (issue 10 §3 ipc, §4, §6): pyzmq XPUB/SUB on a unix socket plus the
snapshot service at ``PATH.snap``, judged against the Decimal oracle on the real recording.

Late joiner (snapshot, then contiguous events), a subscriber started before its publisher
(every seq once, in order), a stalled subscriber (the plant and the other subscriber go on; it
gets a gap, a snapshot and the oracle's books), and the CLI (``replay --publish`` with
``subscribe --until-end --jsonl``). Only unix sockets under /tmp; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import COCKPIT, REPO_ROOT, nonblank_lines, write_lines, wait_until
from kalshi_oracle import Oracle, iter_recording
from oracle_compare import assert_books_match, replay_recorded
from kalshi_platform.feed import ipc, protocol
from kalshi_platform.feed.subscriber import Subscriber
from kalshi_platform.feed.transports import TransportError, parse_publish
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.ticker_plant.plant import TickerPlant

FAST = 1e9  # "paced" at 10^9x: one commit (one batch) per frame, as live, no real waiting
CLI = [sys.executable, "-m", "kalshi_platform.tools.cli"]
CONTROL = ("snapshot", "gap", "end")


@pytest.fixture
def sock_dir():
    """A short directory for unix sockets (``sun_path`` holds 107 bytes)."""
    d = tempfile.mkdtemp(prefix="kipc", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)



class Reader:
    """Iterates a Subscriber on a thread, keeping every item."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self.items: list = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.sub:
                self.items.append(item)
        except BaseException as e:  # reported by join()
            self.error = e

    def join(self, timeout=20.0) -> list:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "subscriber did not finish"
        if self.error is not None:
            raise self.error
        return self.items


def events_of(items) -> list[int]:
    return [i.seq for i in items if i.feed not in CONTROL]


def plant_on(url: str) -> tuple[TickerPlant, EventStream, ipc.IpcPublisher]:
    stream = EventStream()
    transport = ipc.attach(stream, url)
    return TickerPlant([stream]), stream, transport


def split_recording(tmp: Path, cuts: list[float]) -> list[Path]:
    """The bundled recording cut into consecutive parts at these fractions of its frames."""
    lines = nonblank_lines(COCKPIT)
    at = [0] + [int(len(lines) * c) for c in cuts] + [len(lines)]
    return [write_lines(tmp / f"part{i}.jsonl", lines[a:b])
            for i, (a, b) in enumerate(zip(at, at[1:]))]


def assert_live_books_equal_oracle(sub: Subscriber, oracle: Oracle) -> None:
    assert_books_match(sub.books, oracle)
    assert {b.state for b in sub.books.books.values()} == {"live"}


# -- URLs ---------------------------------------------------------------------------------------


def test_url_options_and_errors():
    path, o = ipc.parse_url("ipc:///tmp/x.feed?hwm=5&heartbeat_s=0.5&wait_subscribers=2")
    assert path == "/tmp/x.feed" and (o.hwm, o.heartbeat_s, o.wait_subscribers) == (5, 0.5, 2)
    assert ipc.parse_url("ipc://rel/feed")[0] == "rel/feed"
    assert parse_publish("ipc:///tmp/a?hwm=1,ipc:///tmp/b") == ["ipc:///tmp/a?hwm=1",
                                                                 "ipc:///tmp/b"]
    for bad, why in (("ipc://", "needs a path"), ("ipc:///tmp/a?nope=1", "unknown ipc option"),
                     ("ipc:///tmp/a?hwm=x", "not a number"), ("ipc://@abstract", "abstract"),
                     ("ipc:///" + "d" * 120, "too long"), ("ipc:///tmp/a?max_batch=0", ">= 1")):
        with pytest.raises(TransportError, match=why):
            ipc.parse_url(bad)


def test_a_second_publisher_on_a_live_path_is_refused_and_a_stale_one_replaced(sock_dir):
    url = f"ipc://{sock_dir}/feed"
    first = ipc.IpcPublisher(url, "run-a")
    try:
        with pytest.raises(TransportError, match="another publisher"):
            ipc.IpcPublisher(url, "run-b")
    finally:
        first.close()
    assert not (sock_dir / "feed").exists()  # removed at close
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_dir / "feed"))  # a socket file left by a crash: nobody listens
    stale.close()
    ipc.IpcPublisher(url, "run-c").close()
    assert not (sock_dir / "feed").exists()


# -- late joiner ------------------------------------------------------------------------------


def test_late_joiner_takes_a_snapshot_then_gets_contiguous_events_and_the_oracle_books(
        sock_dir, tmp_path):
    url = f"ipc://{sock_dir}/feed"
    first, middle, rest = split_recording(tmp_path, [0.5, 0.75])
    plant, stream, transport = plant_on(url)
    feed(first, plant, speed=FAST)
    wait_until(lambda: transport.stats()["sent"] == stream.seq, what="first half sent")
    half = stream.seq
    sub = Subscriber(url)
    reader = Reader(sub)
    wait_until(lambda: transport.stats()["subscribers"] == 1, what="subscription")
    feed(middle, plant, speed=FAST)
    wait_until(lambda: sub.snapshots == 1, what="the late joiner's snapshot")
    feed(rest, plant, speed=FAST)
    plant.close()
    items = reader.join()

    n = stream.seq
    assert items[0].feed == "snapshot" and sub.snapshots == 1 and sub.gaps == 0
    snap_seq = items[0].seq
    assert half <= snap_seq < n
    seqs = events_of(items)
    assert seqs == list(range(snap_seq + 1, n + 1))  # contiguous after the snapshot, once
    assert items[-1] == (n, "end", None)
    assert_live_books_equal_oracle(sub, replay_recorded(COCKPIT))
    st = transport.stats()
    assert (st["sent"], st["dropped"], st["hwm_full"], st["lag"]) == (n, 0, 0, 0)


@pytest.mark.parametrize("first", ["heartbeat", "end"])
def test_joiner_of_an_idle_publisher_takes_a_snapshot_on_its_first_message(sock_dir, first):
    """The first message a late joiner sees is a HEARTBEAT (an idle publisher) or END (it
    joined after the last event): either gets it the current books."""
    heartbeat = "0.05" if first == "heartbeat" else "60"
    url = f"ipc://{sock_dir}/feed?heartbeat_s={heartbeat}"
    plant, stream, transport = plant_on(url)
    feed(COCKPIT, plant, speed=FAST)
    wait_until(lambda: transport.stats()["sent"] == stream.seq, what="all sent")
    sub = Subscriber(url)
    reader = Reader(sub)
    if first == "heartbeat":
        wait_until(lambda: sub.snapshots == 1, what="snapshot from a heartbeat")
    else:
        wait_until(lambda: transport.stats()["subscribers"] == 1, what="subscription")
    plant.close()
    items = reader.join()
    assert [i.feed for i in items] == ["snapshot", "end"]
    assert items[0].seq == stream.seq and sub.gaps == 0
    assert_live_books_equal_oracle(sub, replay_recorded(COCKPIT))


# -- started before the publisher -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["wait_subscribers", "first_heartbeat"])
def test_subscriber_started_before_the_publisher_sees_every_seq_once_in_order(sock_dir, how):
    url = f"ipc://{sock_dir}/feed"
    sub = Subscriber(url)  # nothing listens there yet: it keeps connecting
    reader = Reader(sub)
    stream = EventStream()
    if how == "wait_subscribers":  # the publisher holds seq 1 until the subscriber is on
        transport = ipc.attach(stream, url + "?wait_subscribers=1&wait_timeout_s=15")
    else:  # the subscriber knows it is on from a HEARTBEAT with last_seq 0
        transport = ipc.attach(stream, url + "?heartbeat_s=0.05&grace_s=0")
        wait_until(lambda: sub.next_seq == 1, what="heartbeat 0 received")
    plant = TickerPlant([stream])
    feed(COCKPIT, plant, speed=FAST)
    plant.close()
    items = reader.join()
    n = stream.seq
    assert n > 250
    assert events_of(items) == list(range(1, n + 1))
    assert [i.feed for i in items if i.feed in CONTROL] == ["end"] and items[-1].seq == n
    assert sub.snapshots == 0 and sub.gaps == 0
    assert_live_books_equal_oracle(sub, replay_recorded(COCKPIT))
    assert transport.stats()["subscribers"] == 0  # it left after END


# -- a stalled subscriber -------------------------------------------------------------------------

PASSES = 200  # the real recording fed 200 times in a row (each pass re-subscribes sid 1)


def repeated_recording(tmp: Path) -> tuple[Path, Oracle]:
    path = write_lines(tmp / "repeated.jsonl", nonblank_lines(COCKPIT) * PASSES)
    o = Oracle()
    for recv_ns, frame, _ in iter_recording(path):
        o.apply(frame, recv_ns)
    return path, o


def test_a_stalled_subscriber_slows_neither_the_plant_nor_the_other_and_recovers(
        sock_dir, tmp_path):
    path, oracle = repeated_recording(tmp_path)
    # ~6.7 MB of real events (63k) against what a stalled subscriber can hold: the default
    # 1000 messages at the publisher, here of <= 16 events each (~1.6 MB), the kernel's
    # socket buffer (~200 kB) and its own 4 messages
    url = f"ipc://{sock_dir}/feed"
    plant, stream, transport = plant_on(url + "?max_batch=16&end_timeout_s=20")
    stalled = Subscriber(url + "?rcvhwm=4")  # connected, never read until resumed
    live = Subscriber(url + "?rcvhwm=100000")  # room to lag the plant (a GIL shared with it)
    reader = Reader(live)
    wait_until(lambda: transport.stats()["subscribers"] == 2, what="both subscriptions")

    fed = threading.Thread(target=feed, args=(path, plant), kwargs={"speed": FAST},
                           daemon=True)
    fed.start()
    fed.join(30)
    assert not fed.is_alive(), "the plant was blocked by a subscriber"
    n = stream.seq
    wait_until(lambda: live.next_seq == n + 1, what="the live subscriber caught up")
    assert transport.stats()["hwm_full"] >= 1  # the stalled one's queue was full
    assert live.gaps == 0 and live.snapshots == 0  # it never lost a message

    closer = threading.Thread(target=plant.close, daemon=True)  # END; waits for both to go
    closer.start()
    items = reader.join()
    assert events_of(items) == list(range(1, n + 1)) and items[-1] == (n, "end", None)
    assert_live_books_equal_oracle(live, oracle)

    got = list(stalled)  # resumed: what it had buffered, then the gap, the snapshot, END
    kinds = [i.feed for i in got if i.feed in CONTROL]
    assert stalled.gaps >= 1 and stalled.snapshots >= 1 and kinds[-1] == "end"
    assert kinds.index("gap") < kinds.index("snapshot")
    seqs = events_of(got)
    assert seqs == sorted(set(seqs)) and seqs[0] == 1 and len(seqs) < n  # lost some, in order
    assert_live_books_equal_oracle(stalled, oracle)
    closer.join(25)
    assert not closer.is_alive()
    assert transport.stats()["subscribers"] == 0


# -- close ----------------------------------------------------------------------------------------


def test_close_from_another_thread_sends_end_and_stops_sending(sock_dir):
    url = f"ipc://{sock_dir}/feed"
    plant, stream, transport = plant_on(url + "?grace_s=0")
    client = ipc.Client(url)
    wait_until(lambda: transport.stats()["subscribers"] == 1, what="subscription")
    feed(COCKPIT, plant, speed=FAST)
    wait_until(lambda: transport.stats()["sent"] == stream.seq, what="all sent")
    closer = threading.Thread(target=transport.close)  # e.g. attach_all undoing a start
    closer.start()
    msgs = []
    while not msgs or msgs[-1].kind != "end":
        m = client.recv(10.0)
        assert m is not None, "no END"
        msgs.append(m)
    client.close()
    closer.join(10)
    assert not closer.is_alive()
    assert sum(len(m.body) for m in msgs if m.kind == "events") == stream.seq
    assert msgs[-1] == protocol.Message("end", stream.run_id, stream.seq, [])
    plant.close()  # the stream's own close after the transport's: nothing more is sent
    assert transport.stats()["sent"] == stream.seq
    assert not (sock_dir / "feed.snap").exists()


# -- the command line -----------------------------------------------------------------------------


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _last_bbo(path: Path) -> dict[str, tuple]:
    out = {}
    for line in path.read_text().splitlines():
        o = json.loads(line)
        if o["feed"] == "bbo":
            dec = [None if o[k] is None else Decimal(o[k])
                   for k in ("yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size")]
            out[o["ticker"]] = (o["state"], tuple(dec))
    return out


def test_cli_replay_publish_ipc_with_subscribers_before_and_mid_stream(sock_dir, tmp_path):
    url = f"ipc://{sock_dir}/feed"
    early_out, late_out = tmp_path / "early.jsonl", tmp_path / "late.jsonl"
    subscribe = [*CLI, "subscribe", url, "--until-end", "--jsonl"]
    early = subprocess.Popen([*subscribe, str(early_out)], env=_env(), cwd=tmp_path,
                             stderr=subprocess.PIPE, text=True)
    probe = ipc.Client(url)  # the test's own view: when does the stream start?
    replay = subprocess.Popen(
        [*CLI, "replay", str(COCKPIT), "--sink", "none", "--speed", "10",
         "--publish", url + "?wait_subscribers=2&wait_timeout_s=20"],
        env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:  # the first EVENTS message: the replay is under way
            m = probe.recv(0.5)
            if m is not None and m.kind == "events":
                break
            assert time.monotonic() < deadline and replay.poll() is None, "no events"
        probe.close()
        late = subprocess.run([*subscribe, str(late_out), "--idle-timeout", "20"],
                              env=_env(), cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert late.returncode == 0, late.stderr
        assert early.wait(60) == 0, early.stderr.read()
        assert replay.wait(60) == 0, replay.stderr.read()
    finally:
        for p in (early, replay):
            if p.poll() is None:
                p.kill()
    oracle = replay_recorded(COCKPIT)
    want = {t: ("live", top) for t, top in oracle.final_tops().items()}

    seqs = [json.loads(ln)["seq"] for ln in early_out.read_text().splitlines()]
    distinct = [s for i, s in enumerate(seqs) if i == 0 or s != seqs[i - 1]]
    assert distinct == list(range(1, len(distinct) + 1))  # every seq once, in order
    assert _last_bbo(early_out) == want

    assert "0 gap(s), 1 snapshot(s)" in late.stderr  # a late join: one snapshot
    # the snapshot's books are written as bbo lines, so every market has its final top
    assert _last_bbo(late_out) == want


def test_async_iteration_gives_the_same_items_and_books(sock_dir):
    """``async for`` over a Subscriber (issue 10 §6: sync and async iterators)."""
    import asyncio

    url = f"ipc://{sock_dir}/feed"
    sub = Subscriber(url)
    stream = EventStream()
    transport = ipc.attach(stream, url + "?wait_subscribers=1&wait_timeout_s=15")
    plant = TickerPlant([stream])

    async def consume() -> list:
        return [item async for item in sub]

    async def main() -> list:
        task = asyncio.create_task(consume())
        await asyncio.to_thread(feed, COCKPIT, plant, FAST)
        await asyncio.to_thread(plant.close)
        return await asyncio.wait_for(task, 30)

    items = asyncio.run(main())
    assert items[-1].feed == "end" and transport.stats()["sent"] == stream.seq
    assert events_of(items) == list(range(1, stream.seq + 1))
    assert_books_match(sub.books, replay_recorded(COCKPIT))
