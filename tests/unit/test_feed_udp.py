"""``udp://`` transport (issue 10 §3 udp, §4, §5): datagrams per stream id, merge back into
stream order, gaps and snapshots, judged against the Decimal oracle on the real recordings.

Every datagram goes to 127.0.0.1 (unicast loopback); multicast options are only checked on a
socket that never sends.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import msgspec
import pytest

from conftest import COCKPIT, SSMD_EMBEDDED, SSMD_TICKER, SSMD_TRADE, wait_until
from kalshi_oracle import D
from oracle_compare import assert_books_match, replay_recorded
from kalshi_platform.feed import transports, udp
from kalshi_platform.feed.subscriber import Subscriber
from kalshi_platform.feed.transports import TransportError
from kalshi_platform.feed.udp_wire import (DATA, END, FRAG, GAP, MAX_FRAGS, STREAM_IDS,
                                           DatagramPacker, membership_request, open_sender,
                                           parse_url, snapshot_address)
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.stream.codec import FEED_OF, from_array
from kalshi_platform.ticker_plant.events import QuarantineRecord, SnapshotEvent
from kalshi_platform.ticker_plant.plant import TickerPlant

FILES = (SSMD_TRADE, SSMD_TICKER, SSMD_EMBEDDED, COCKPIT)  # trades, tickers, lifecycle, books
FAST = 1e6  # paced replay at 10^6x: one commit (batch) per frame, no real waiting
CLI = [sys.executable, "-m", "kalshi_platform.tools.cli"]
_dec = msgspec.msgpack.Decoder()


def free_port(avoid: tuple[int, ...] = ()) -> int:
    """A loopback port free for both UDP and TCP."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            p = u.getsockname()[1]
            if p in avoid:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    raise RuntimeError("no free loopback port")



def reference_events() -> list:
    """The stream a plant emits for FILES, in seq order (seq = index + 1)."""
    got: list = []

    class C:
        def on_batch(self, start, events):
            got.extend(events)

        def on_gap(self, first, count):
            raise AssertionError("spill consumer lost events")

        def on_idle(self):
            pass

        def close(self):
            pass

    st = EventStream()
    st.attach(C(), "ref")
    plant = TickerPlant([st])
    for f in FILES:
        feed(f, plant, speed=FAST)
    plant.close()
    return got


class Reader(threading.Thread):
    """Iterates a Subscriber on its own thread, keeping every item."""

    def __init__(self, sub: Subscriber) -> None:
        super().__init__(daemon=True)
        self.sub = sub
        self.items: list = []

    def run(self) -> None:
        for it in self.sub:
            self.items.append(it)

    def events(self) -> list:
        return [i for i in self.items if i.feed not in ("snapshot", "gap", "end")]


def publish(url: str, settings=None):
    stream = EventStream()
    tr = udp.attach(stream, url, settings)
    return stream, tr, TickerPlant([stream])


def finish(stream: EventStream, plant: TickerPlant, reader: Reader) -> None:
    """Wait until the subscriber has everything, then close (END) and join it."""
    plant.commit()
    wait_until(lambda: reader.sub.next_seq == stream.seq + 1)
    plant.close()
    reader.join(15)
    assert not reader.is_alive()


@pytest.fixture(scope="module")
def ref():
    return reference_events()


@pytest.fixture(scope="module")
def oracle():
    return replay_recorded(COCKPIT)


# -- URL, sockets, packing --------------------------------------------------------------------


def test_url_options_defaults_and_errors():
    o = parse_url("udp://127.0.0.1:5000")
    assert (o.host, o.port, o.multicast, o.mtu, o.ttl, o.hb_s) == ("127.0.0.1", 5000, False,
                                                                     1400, None, 1.0)
    assert snapshot_address(o, publisher=True) == ("127.0.0.1", 5000)
    o = parse_url("udp://127.0.0.1:5000?mtu=600&hb=0.2&dest=127.0.0.1:5001&dest=127.0.0.1:5002"
                  "&snap=127.0.0.1:6000&reorder_ms=5&linger=0")
    assert o.mtu == 600 and o.hb_s == 0.2 and o.reorder_s == 0.005 and o.linger_s == 0
    assert o.dests == (("127.0.0.1", 5001), ("127.0.0.1", 5002))
    assert snapshot_address(o, publisher=False) == ("127.0.0.1", 6000)
    m = parse_url("udp://239.1.1.1:5000?ttl=3&iface=127.0.0.1")
    assert m.multicast and m.ttl == 3 and m.iface == "127.0.0.1" and m.loop
    assert snapshot_address(m, publisher=True) == ("127.0.0.1", 5000)
    assert parse_url("udp://239.1.1.1:5000").ttl == 1  # multicast TTL 1 by default
    for bad in ("udp://127.0.0.1", "udp://127.0.0.1:5000?mtu=100", "udp://127.0.0.1:5000?tll=1",
                "udp://127.0.0.1:5000?ttl=999", "udp://127.0.0.1:5000?dest=x",
                "ipc:///tmp/x", "udp://127.0.0.1:5000?hb=fast"):
        with pytest.raises(TransportError):
            parse_url(bad)


def test_multicast_socket_options_are_set_on_a_socket_that_never_sends():
    opts = parse_url("udp://239.1.1.1:5000?ttl=3&iface=127.0.0.1&loop=0&sndbuf=262144")
    s = open_sender(opts)
    try:
        assert s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 3
        assert s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP) == 0
        assert s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, 4) == \
            socket.inet_aton("127.0.0.1")
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= 262144
        assert not s.getblocking()  # a full buffer drops a datagram, never blocks the plant
    finally:
        s.close()
    assert membership_request(opts) == socket.inet_aton("239.1.1.1") + \
        socket.inet_aton("127.0.0.1")
    assert membership_request(parse_url("udp://239.1.1.1:5000"))[4:] == bytes(4)
    u = open_sender(parse_url("udp://127.0.0.1:5000?ttl=7"))
    try:
        assert u.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 7
    finally:
        u.close()


def _unpack(datagrams: list[bytes]) -> tuple[list, dict]:
    """Decode packed datagrams: ``[(seq, event)]`` in arrival order and dseqs per stream id."""
    pairs, dseqs, frags = [], {}, {}
    for d in datagrams:
        a = _dec.decode(d)
        dseqs.setdefault(a[3], []).append(a[4])
        if a[1] == DATA:
            pairs += [(s, from_array(e)) for s, e in a[5]]
        elif a[1] == FRAG:
            frags.setdefault(a[5], {})[a[6]] = a[8]
            if len(frags[a[5]]) == a[7]:
                parts = frags.pop(a[5])
                data = b"".join(parts[i] for i in range(a[7]))
                pairs.append((a[5], from_array(_dec.decode(data))))
    return pairs, dseqs


def test_packing_keeps_every_datagram_under_the_mtu_and_fragments_big_snapshots(ref):
    p = DatagramPacker("20261201T000000Z-00000000", mtu=400)
    out = []
    for start in range(1, len(ref) + 1, 50):
        out += p.pack(start, ref[start - 1:start + 49])
    assert max(map(len, out)) <= 400
    kinds = [_dec.decode(d)[1] for d in out]
    assert FRAG in kinds and DATA in kinds  # the real snapshots (up to ~1 kB) were cut
    pairs, dseqs = _unpack(out)
    assert sorted(pairs, key=lambda x: x[0]) == list(enumerate(ref, 1))  # every event, exact
    for sid, ds in dseqs.items():
        assert ds == list(range(1, len(ds) + 1)), sid  # contiguous per stream id
    for a in map(_dec.decode, out):  # one stream id per feed
        if a[1] == DATA:
            assert {STREAM_IDS[FEED_OF[type(from_array(e))]] for _, e in a[5]} == {a[3]}
    big = [e for e in ref if isinstance(e, SnapshotEvent)]
    one = DatagramPacker("r", mtu=1400).pack(1, big[:1])
    assert len(one) == 1 and _dec.decode(one[0])[1] == DATA  # the default mtu fits them
    # an event needing more than MAX_FRAGS parts goes out as a GAP for its seq, on every
    # stream id, after what preceded it: dseqs stay contiguous and in send order
    huge = QuarantineRecord(1, "too big", "x" * (MAX_FRAGS * 300))
    p = DatagramPacker("r", mtu=256)
    out = p.pack(1, ref[:20] + [huge] + ref[20:30])
    assert p.skipped == [21] and max(map(len, out)) <= 256
    gaps = [a for a in map(_dec.decode, out) if a[1] == GAP]
    assert sorted(a[3] for a in gaps) == sorted(STREAM_IDS.values())
    assert {(a[5], a[6]) for a in gaps} == {(21, 1)}
    pairs, dseqs = _unpack(out)
    assert [s for s, _ in sorted(pairs)] == [s for s in range(1, 31 + 1) if s != 21]
    for sid, ds in dseqs.items():
        assert ds == list(range(1, len(ds) + 1)), sid


# -- the client's merge, on crafted datagrams ------------------------------------------------------


def _drain(client: udp.Client, until_kind: str, timeout: float = 5.0) -> list:
    msgs, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = client.recv(0.2)
        if m is None:
            continue
        msgs.append(m)
        if m.kind == until_kind:
            return msgs
    raise AssertionError(f"no {until_kind} message; got {[m.kind for m in msgs]}")


def test_client_reorders_reports_losses_and_publisher_gaps_and_ends(ref):
    port = free_port()
    client = udp.Client(f"udp://127.0.0.1:{port}?reorder_ms=30")
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    to = ("127.0.0.1", port)
    try:
        p = DatagramPacker("run-A", mtu=300)
        first = p.pack(1, ref[:40])
        for d in reversed(first):  # worst-case reordering
            tx.sendto(d, to)
        second = p.pack(41, ref[40:80])
        k = next(i for i, d in enumerate(second) if i >= 2 and _dec.decode(d)[1] == DATA)
        lost_seqs = {s for s, _ in _unpack([second[k]])[0]}
        for d in second[:k] + second[k + 1:] + p.control_all(GAP, 81, 5):
            tx.sendto(d, to)
        t0 = time.monotonic()
        for d in p.pack(86, ref[85:90]) + p.control_all(END, 0, 90):
            tx.sendto(d, to)
        msgs = _drain(client, "end")
        got = [(m.seq + i, e) for m in msgs if m.kind == "events" for i, e in enumerate(m.body)]
        gaps = [(m.seq, m.body[0]) for m in msgs if m.kind == "gap"]
        assert [s for s, _ in got] == [s for s in range(1, 91)
                                       if s not in lost_seqs and not 81 <= s <= 85]
        assert all(e == ref[s - 1] for s, e in got)  # exact events, in stream order
        assert {s for f, c in gaps for s in range(f, f + c)} == lost_seqs | set(range(81, 86))
        assert (81, 5) in gaps and msgs[-1].kind == "end" and msgs[-1].seq == 90
        assert client.stats.lost_datagrams == 1 and client.stats.gaps == len(gaps)
        assert time.monotonic() - t0 < 3
        # a restarted publisher (new run id) is a new stream from its seq 1
        for d in DatagramPacker("run-B", mtu=300).pack(1, ref[:5]):
            tx.sendto(d, to)
        m = _drain(client, "events")[-1]
        assert (m.run_id, m.seq, m.body) == ("run-B", 1, ref[:5])
    finally:
        tx.close()
        client.close()


def test_a_second_unicast_subscriber_on_the_same_port_is_refused():
    port = free_port()
    c = transports.connect(f"udp://127.0.0.1:{port}", feeds=None, tickers=None)
    try:
        assert isinstance(c, udp.Client) and c.contiguous
        with pytest.raises(TransportError, match="cannot subscribe"):
            udp.Client(f"udp://127.0.0.1:{port}")
    finally:
        c.close()


# -- publisher + Subscriber, in process, real data ------------------------------------------------


def test_subscriber_started_before_the_publisher_sees_every_seq_once_in_order_and_end(ref,
                                                                                      oracle):
    url = f"udp://127.0.0.1:{free_port()}?mtu=512"  # 512: the book snapshots go as FRAGs
    reader = Reader(Subscriber(url, idle_timeout=20))
    reader.start()
    stream, tr, plant = publish(url)
    for f in FILES:
        feed(f, plant, speed=FAST)
    finish(stream, plant, reader)
    sub = reader.sub
    assert [(i.seq, i.event) for i in reader.events()] == list(enumerate(ref, 1))
    assert reader.items[-1].feed == "end" and reader.items[-1].seq == len(ref)
    assert {i.feed for i in reader.events()} >= {"trades", "tickers", "lifecycle", "bbo",
                                                 "deltas", "feed_events"}
    assert sub.gaps == sub.snapshots == 0
    assert_books_match(sub.books, oracle)
    st = tr.stats()
    assert st["sent"] == len(ref) and st["dropped"] == st["send_errors"] == 0
    assert set(st) >= {"sent", "dropped", "subscribers", "lag"}


def test_subscriber_joining_mid_stream_takes_a_snapshot_and_ends_equal_to_the_oracle(
        tmp_path, ref, oracle):
    lines = COCKPIT.read_bytes().splitlines(keepends=True)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"".join(lines[:130]))
    b.write_bytes(b"".join(lines[130:]))
    p1 = free_port()
    p2 = free_port(avoid=(p1,))
    stream, tr, plant = publish(f"udp://127.0.0.1:{p1}?dest=127.0.0.1:{p2}")
    for f in FILES[:3] + (a,):
        feed(f, plant, speed=FAST)
    plant.commit()
    joined_at = stream.seq
    wait_until(lambda: tr.publisher.events == joined_at)  # all sent before the join
    later = Counter(e.ticker for e in ref[joined_at:] if hasattr(e, "ticker"))
    ticker = later.most_common(1)[0][0]  # a market that still moves after the join
    readers = [Reader(Subscriber(f"udp://127.0.0.1:{p1}", feeds=["bbo"], idle_timeout=20)),
               Reader(Subscriber(f"udp://127.0.0.1:{p2}?snap=127.0.0.1:{p1}",
                                 tickers=[ticker], idle_timeout=20))]
    for r in readers:
        r.start()
    feed(b, plant, speed=100)  # paced (~0.3 s): the join's snapshot is not the final books
    wait_until(lambda: readers[1].sub.next_seq == stream.seq + 1)
    finish(stream, plant, readers[0])
    readers[1].join(15)
    for reader in readers:
        snap = reader.items[0]
        assert snap.feed == "snapshot" and snap.seq >= joined_at and reader.sub.snapshots == 1
        assert reader.sub.gaps == 0 and reader.items[-1].feed == "end"
    only_bbo, one = readers
    assert len(only_bbo.events()) >= 5 and len(one.events()) >= 5
    assert [i.seq for i in only_bbo.events()] == [
        s for s, e in enumerate(ref, 1) if s > only_bbo.items[0].seq and FEED_OF[type(e)] == "bbo"]
    assert_books_match(only_bbo.sub.books, oracle)
    assert [b.ticker for b in one.items[0].event] == [ticker]  # the snapshot asked for it only
    assert {getattr(i.event, "ticker", ticker) for i in one.events()} == {ticker}
    assert sorted(one.sub.books.books) == [ticker]
    assert_books_match(one.sub.books, oracle, tickers=[ticker])


class LossyClient(udp.Client):
    """Drops, once each, the first datagram carrying one of ``DROP``'s stream seqs."""

    DROP: set = set()

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.todo = set(self.DROP)
        self.dropped: list[int] = []

    def _datagram(self, data: bytes) -> None:
        a = _dec.decode(data)
        seqs = {s for s, _ in a[5]} if a[1] == DATA else {a[5]} if a[1] == FRAG else set()
        hit = seqs & self.todo
        if hit:
            self.todo -= hit
            self.dropped += sorted(hit)
            return
        super()._datagram(data)


def test_lost_datagrams_become_gaps_and_snapshots_and_books_still_equal_the_oracle(
        monkeypatch, ref, oracle):
    n = len(ref)
    frag = [s for s, e in enumerate(ref, 1) if isinstance(e, SnapshotEvent)][7]  # a FRAG
    LossyClient.DROP = {frag, 120, 220, n}  # n: in the very last datagram: a heartbeat tells
    monkeypatch.setattr(udp, "Client", LossyClient)
    url = f"udp://127.0.0.1:{free_port()}?mtu=512&hb=0.05&reorder_ms=10"
    reader = Reader(Subscriber(url, idle_timeout=20))
    reader.start()
    stream, tr, plant = publish(url)
    for f in FILES[:3]:
        feed(f, plant, speed=FAST)
    feed(COCKPIT, plant, speed=200)  # paced: the snapshots stay close to each loss
    finish(stream, plant, reader)
    sub, client = reader.sub, reader.sub.client
    assert sorted(client.dropped) == sorted(LossyClient.DROP)
    assert client.stats.lost_datagrams == 4
    assert 2 <= sub.gaps == sub.snapshots
    kinds = [i.feed for i in reader.items]
    for k, kind in enumerate(kinds):
        if kind == "gap":
            assert kinds[k + 1] == "snapshot"
    seqs = [i.seq for i in reader.events()]
    assert seqs == sorted(set(seqs)) and not set(seqs) & LossyClient.DROP
    assert reader.items[-1].feed == "end"
    assert_books_match(sub.books, oracle)


def test_a_publisher_that_falls_behind_sends_a_gap_and_subscribers_recover(ref, oracle):
    url = f"udp://127.0.0.1:{free_port()}"
    reader = Reader(Subscriber(url, idle_timeout=20))
    reader.start()

    class Small:
        stream_queue_events = 20
        store_dir = None

    stream, tr, plant = publish(url, Small())
    with tr.publisher._lock:  # the publisher's thread is stuck (a stalled send): queue fills
        for f in FILES:
            feed(f, plant, speed=FAST)
        plant.commit()
        assert tr.runner.dropped > 0  # bounded: the plant was never blocked
    finish(stream, plant, reader)
    sub = reader.sub
    assert tr.stats()["gaps"] >= 1 and tr.stats()["dropped"] == tr.runner.dropped
    assert sub.gaps >= 1 and sub.snapshots >= 1
    assert reader.items[-1].feed == "end"
    assert_books_match(sub.books, oracle)


# -- command line ---------------------------------------------------------------------------


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def test_cli_replay_publishes_udp_to_a_cli_and_a_late_library_subscriber(tmp_path, oracle):
    p1 = free_port()
    p2 = free_port(avoid=(p1,))
    sub_cli = subprocess.Popen(CLI + ["subscribe", f"udp://127.0.0.1:{p1}", "--jsonl", "-",
                                      "--until-end", "--idle-timeout", "30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[bytes] = []
    pump = threading.Thread(target=lambda: lines.extend(sub_cli.stdout), daemon=True)
    pump.start()
    replay = None
    try:
        wait_until(lambda: _bound(p1) or sub_cli.poll() is not None, 20)
        assert sub_cli.poll() is None, sub_cli.stderr.read()
        replay = subprocess.Popen(
            CLI + ["replay", str(COCKPIT), "--sink", "none", "--store", str(tmp_path),
                   "--publish", f"udp://127.0.0.1:{p1}?dest=127.0.0.1:{p2}", "--speed", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: len(lines) >= 60 or replay.poll() is not None, 20)
        late = Reader(Subscriber(f"udp://127.0.0.1:{p2}?snap=127.0.0.1:{p1}", idle_timeout=20))
        late.start()
        out, err = replay.communicate(timeout=30)
        assert replay.returncode == 0, err.decode()
        assert sub_cli.wait(timeout=20) == 0, sub_cli.stderr.read().decode()
        pump.join(10)
        late.join(20)
    finally:
        for p in (sub_cli, replay):
            if p is not None and p.poll() is None:
                p.kill()
    objs = [json.loads(x) for x in lines]
    seqs = [o["seq"] for o in objs]
    n = late.items[-1].seq
    assert late.items[-1].feed == "end"
    first = late.items[0]
    # a late join takes one snapshot first; on a slow start the "late" one may still catch
    # seq 1 (then it needs none): both must end with the oracle's books (below)
    assert (first.feed == "snapshot" and first.seq > 0 and late.sub.snapshots == 1) or (
        first.seq == 1 and late.sub.snapshots == 0), (first.feed, first.seq, late.sub.snapshots)
    assert list(dict.fromkeys(seqs)) == list(range(1, n + 1))  # every seq, once, in order
    assert seqs == sorted(seqs)  # (a book snapshot is one object per level, same seq)
    last = {o["ticker"]: o for o in objs if o["feed"] == "bbo"}

    def dec(v):
        return None if v is None else D(v)

    tops = {t: tuple(dec(o[k]) for k in ("yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size"))
            for t, o in sorted(last.items())}
    assert tops == oracle.final_tops()
    assert all(isinstance(o["yes_bid"], str) for o in last.values())
    assert_books_match(late.sub.books, oracle)
