"""The ``ws://`` transport (issue 10 §3-§6): a WebSocket feed server on loopback, judged on the
bundled real recording against the Decimal oracle (tests/kalshi_oracle.py).

In-process plant → EventStream → ws server; subscribers are the Subscriber library (through
:class:`kalshi_platform.feed.ws_client.Client`), raw ``websockets`` clients speaking the JSON
protocol, and the ``kalshi-platform`` CLI in subprocesses. Only 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from websockets.sync.client import connect

from conftest import (COCKPIT, SSMD_EMBEDDED, SSMD_TICKER, SSMD_TRADE, read_lines, wait_until,
                      write_lines)
from kalshi_oracle import dec_top, replay
from oracle_compare import assert_books_match
from kalshi_platform.feed import ws
from kalshi_platform.feed.books import BookMirror
from kalshi_platform.feed.subscriber import Subscriber
from kalshi_platform.fixedpoint import MAX_SIZE
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.stream.codec import FEED_OF
from kalshi_platform.ticker_plant.events import (
    BBO,
    DeltaEvent,
    FeedEvent,
    FillEvent,
    LifecycleEvent,
    QuarantineRecord,
    TradeEvent,
)
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

CONNECT_KW = {"proxy": None, "legacy": True, "compression": None, "max_size": None,
              "open_timeout": 5}



class Recorder:
    """A stream consumer keeping every ``(seq, event)``: what the plant emitted."""

    def __init__(self) -> None:
        self.got: list = []

    def on_batch(self, start, events):
        self.got.extend(enumerate(events, start))

    def on_gap(self, first, count):
        raise AssertionError("the recorder must not lose events")

    def on_idle(self):
        pass

    def close(self):
        pass


class Collect(InMemoryPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.all: list = []

    def publish(self, event) -> None:
        self.all.append(event)


def plant_events(path: Path) -> list:
    c = Collect()
    plant = TickerPlant([c])
    feed(path, plant)
    plant.flush()
    return c.all


def run_subscriber(sub: Subscriber) -> tuple[list, threading.Thread]:
    items: list = []
    th = threading.Thread(target=lambda: items.extend(sub), daemon=True)
    th.start()
    return items, th


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_stats(transport, i: int = 0) -> dict:
    clients = transport.stats()["clients"]
    return clients[i] if len(clients) > i else {}


def split_recording(tmp_path: Path, frac: float = 0.5) -> tuple[Path, Path]:
    lines = read_lines(COCKPIT)
    cut = int(len(lines) * frac)
    a, b = tmp_path / "part1.jsonl", tmp_path / "part2.jsonl"
    a.write_bytes(b"\n".join(lines[:cut]) + b"\n")
    b.write_bytes(b"\n".join(lines[cut:]) + b"\n")
    return a, b


def recv_json(c, timeout: float = 10.0) -> dict:
    return orjson.loads(c.recv(timeout))


def recv_until(c, kind: str, timeout: float = 10.0) -> list[dict]:
    out = []
    while True:
        m = recv_json(c, timeout)
        out.append(m)
        if m["type"] == kind:
            return out


# -- encoding ----------------------------------------------------------------------------


def test_json_round_trips_real_events_exactly_as_decimal_strings():
    events = []
    for p in (COCKPIT, SSMD_TICKER, SSMD_TRADE, SSMD_EMBEDDED):
        events += plant_events(p)
    events += [  # the feeds the bundled recordings lack, and edge values
        DeltaEvent("KX-A", 1, 7, 9, "no", 1, -MAX_SIZE, None),
        TradeEvent("KX-A", 2, "t-1", 999_999, 1, 1, None, 3),
        LifecycleEvent("KX-A", 3, "settled", "yes", 1_000_000, '{"x":1}', None),
        FillEvent("KX-A", 4, "t", "o", "yes", "buy", True, 560_001, 12_345, -7, -200, 5),
        FeedEvent(5, "gap", 3, 10, 12, "seq gap"),
        QuarantineRecord(6, "not JSON", b"\xff\x00raw"),
        QuarantineRecord(None, "not JSON", "text"),
        BBO("KX-A", 7, 10_001, 1, 10_002, MAX_SIZE, None, None, "live"),
        BBO("KX-A", 8, None, None, None, None, 4, 9, "stale"),
    ]
    assert {FEED_OF[type(e)] for e in events} == set(FEED_OF.values())
    for seq, ev in enumerate(events, 1):
        obj = orjson.loads(ws.encode_event(seq, ev))
        assert obj["feed"] == FEED_OF[type(ev)] and obj["seq"] == seq
        assert ws.event_from_json(obj) == (seq, ev)
        for key in ("yes_bid", "yes_ask", "price", "yes_price", "no_price"):
            units = getattr(ev, key, None)
            if units is not None and key in obj:  # exact dollars, never floats
                assert isinstance(obj[key], str) and Decimal(obj[key]) * 10**6 == units
    bbo = orjson.loads(ws.encode_event(1, events[-2]))
    assert (bbo["mid"], bbo["spread"]) == ("0.0100015", "0.000001")
    assert bbo["yes_ask_size"] == "10000000000.00" and bbo["ts"] == 7


# -- subscribers ---------------------------------------------------------------------------


def test_subscriber_started_before_its_publisher_sees_every_event_once_in_order():
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    bbo_sub = Subscriber(url, feeds=["bbo"], idle_timeout=30)
    one = "KXMLBGAME-26AUG071910ATHBOS-BOS"  # the busiest market of the recording
    book_sub = Subscriber(url, feeds=["deltas", "bbo"], tickers=[one], idle_timeout=30)
    got_bbo, t1 = run_subscriber(bbo_sub)
    got_book, t2 = run_subscriber(book_sub)
    wait_until(lambda: bbo_sub.client.attempts > 0 and book_sub.client.attempts > 0,
               what="subscribers retrying before the publisher is up")
    stream = EventStream()
    rec = Recorder()
    stream.attach(rec, "recorder")
    transport = ws.attach(stream, url)
    wait_until(lambda: len(transport.stats()["clients"]) == 2
               and all(c["snapshots"] for c in transport.stats()["clients"]),
               what="both subscribers connected")
    plant = TickerPlant([stream])
    feed(COCKPIT, plant)
    plant.close()  # stream closed: END
    t1.join(20)
    t2.join(20)
    n = stream.seq
    for items, want in ((got_bbo, [(s, "bbo", e) for s, e in rec.got if type(e) is BBO]),
                        (got_book, [(s, FEED_OF[type(e)], e) for s, e in rec.got
                                    if getattr(e, "ticker", None) == one
                                    and FEED_OF[type(e)] in ("deltas", "bbo")])):
        assert items[0][:2] == (0, "snapshot") and items[0].event == []
        assert items[-1][:2] == (n, "end")
        body = [tuple(i) for i in items[1:-1]]
        assert body == want and len(body) > 20
        assert all(a[0] < b[0] for a, b in zip(body, body[1:]))
    assert bbo_sub.gaps == book_sub.gaps == 0
    o = replay(COCKPIT)
    assert_books_match(bbo_sub.books, o)
    assert_books_match(book_sub.books, o, tickers=[one])
    st = transport.stats()
    assert st["dropped"] == 0 and st["stream_gaps"] == 0 and st["subscribers"] == 0


def test_subscriber_joining_mid_stream_ends_with_the_oracle_books(tmp_path):
    part1, part2 = split_recording(tmp_path)
    stream = EventStream()
    rec = Recorder()
    stream.attach(rec, "recorder")
    transport = ws.attach(stream, "ws://127.0.0.1:0")
    plant = TickerPlant([stream])
    feed(part1, plant)
    joined_at = stream.seq
    wait_until(lambda: transport.stats()["position"] == joined_at, what="server caught up")
    sub = Subscriber(transport.url, feeds=["bbo"], idle_timeout=30)
    items, th = run_subscriber(sub)
    wait_until(lambda: client_stats(transport).get("snapshots"), what="late snapshot")
    feed(part2, plant)
    plant.close()
    th.join(20)
    snap = items[0]
    assert snap.feed == "snapshot" and snap.seq == joined_at > 0
    assert items[-1][:2] == (stream.seq, "end")
    # after the snapshot, every BBO of the stream with a later seq, once, in order
    assert [tuple(i) for i in items[1:-1]] == [(s, "bbo", e) for s, e in rec.got
                                               if type(e) is BBO and s > joined_at]
    o = replay(COCKPIT)
    assert_books_match(sub.books, o)  # every ladder level and top, exactly
    final = {b.ticker: b.bbo for b in snap.event}  # the snapshot's BBOs, then the later ones
    final.update({i.event.ticker: i.event for i in items[1:-1]})
    assert {t: dec_top(b[2:6]) for t, b in final.items()} == o.final_tops()


def test_raw_client_bbo_only_snapshot_for_chosen_tickers(tmp_path):
    part1, _ = split_recording(tmp_path)
    stream = EventStream()
    transport = ws.attach(stream, "ws://127.0.0.1:0")
    plant = TickerPlant([stream])
    feed(part1, plant)
    wait_until(lambda: transport.stats()["position"] == stream.seq, what="server caught up")
    o1 = replay(part1)
    want = sorted(o1.final_tops())[:3]
    with connect(transport.url, **CONNECT_KW) as c:
        hello = recv_json(c)
        assert (hello["type"], hello["version"], hello["seq"]) == ("hello", 1, stream.seq)
        c.send(json.dumps({"cmd": "subscribe", "feeds": ["bbo"], "tickers": want + ["KX-NONE"],
                           "depth": "bbo"}))
        ack, snap = recv_json(c), recv_json(c)
        assert ack["type"] == "subscribed" and ack["depth"] == "bbo"
        assert ack["tickers"] == sorted(want + ["KX-NONE"]) and ack["feeds"] == ["bbo"]
        assert snap["type"] == "snapshot" and snap["seq"] == stream.seq
        assert snap["depth"] == "bbo" and [b["ticker"] for b in snap["books"]] == want
        for b in snap["books"]:
            assert b["yes"] is None and b["no"] is None and b["state"] == "live"
            top = tuple(None if b["bbo"][k] is None else Decimal(b["bbo"][k])
                        for k in ("yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size"))
            assert top == o1.top(b["ticker"])
        c.send('{"cmd": "ping", "id": 7}')
        pong = recv_json(c)
        assert (pong["type"], pong["id"], pong["seq"]) == ("pong", 7, stream.seq)
    plant.close()


def test_subscribe_from_seq_resumes_from_the_history_or_reports_a_gap(tmp_path):
    stream = EventStream()
    rec = Recorder()
    stream.attach(rec, "recorder")
    transport = ws.attach(stream, "ws://127.0.0.1:0?history=60")
    plant = TickerPlant([stream])
    # many small batches (the history keeps whole batches): the recording 20 lines at a time
    lines = read_lines(COCKPIT)
    for i in range(0, len(lines), 20):
        write_lines(tmp_path / f"part-{i:04d}.jsonl", lines[i:i + 20])
        feed(tmp_path / f"part-{i:04d}.jsonl", plant)
    n = stream.seq
    wait_until(lambda: transport.stats()["position"] == n, what="server caught up")
    base = {"cmd": "subscribe", "feeds": ["deltas", "bbo"]}
    with connect(transport.url, **CONNECT_KW) as c:
        assert recv_json(c)["type"] == "hello"
        # a reconnect of this run, within the history: exactly the events after, no snapshot
        c.send(json.dumps({**base, "from_seq": n - 50, "run_id": stream.run_id}))
        ack = recv_json(c)
        assert ack["type"] == "subscribed" and ack["from_seq"] == n - 50
        got = []
        while len(got) < 51:
            m = recv_json(c)
            assert m["type"] == "events", m
            got += [ws.event_from_json(e) for e in m["events"]]
        assert got == rec.got[n - 51:]
        # older than the history: a gap from there, then a snapshot
        c.send(json.dumps({**base, "from_seq": 10, "run_id": stream.run_id}))
        ack, gap, snap = recv_json(c), recv_json(c), recv_json(c)
        assert ack["from_seq"] is None and snap["type"] == "snapshot" and snap["seq"] == n
        assert (gap["type"], gap["first_seq"], gap["count"]) == ("gap", 10, n - 9)
        # another run's seq: a plain snapshot, no gap
        c.send(json.dumps({**base, "from_seq": 10, "run_id": "other-run"}))
        assert [m["type"] for m in (recv_json(c), recv_json(c))] == ["subscribed", "snapshot"]
    plant.close()


class Relay:
    """A loopback TCP relay in front of the server: ``cut()`` drops every connection through
    it (a network blip) while the server and the relay's listener stay up."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.upstream))
            self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(x: socket.socket, y: socket.socket) -> None:
        try:
            while data := x.recv(65536):
                y.sendall(data)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.srv.close()
        self.cut()


def test_a_dropped_connection_resumes_from_the_history_without_a_gap(tmp_path):
    part1, part2 = split_recording(tmp_path)
    stream = EventStream()
    rec = Recorder()
    stream.attach(rec, "recorder")
    transport = ws.attach(stream, "ws://127.0.0.1:0")
    relay = Relay(int(transport.url.rsplit(":", 1)[1]))
    sub = Subscriber(f"ws://127.0.0.1:{relay.port}", feeds=["deltas", "bbo"], idle_timeout=30)
    items, th = run_subscriber(sub)
    wait_until(lambda: client_stats(transport).get("snapshots"), what="subscribed")
    plant = TickerPlant([stream])
    feed(part1, plant)
    wait_until(lambda: sub.next_seq == stream.seq + 1, what="part 1 received")
    relay.cut()  # the connection drops; the client reconnects through the relay
    feed(part2, plant)  # meanwhile the stream goes on
    wait_until(lambda: sub.next_seq == stream.seq + 1, what="part 2 received after reconnect")
    plant.close()
    th.join(20)
    relay.close()
    assert sub.client.connects == 2 and sub.gaps == 0 and sub.snapshots == 1
    assert [i.feed for i in items[:1] + items[-1:]] == ["snapshot", "end"]
    assert [tuple(i) for i in items[1:-1]] == [(s, FEED_OF[type(e)], e) for s, e in rec.got]
    assert_books_match(sub.books, replay(COCKPIT))


def test_bad_commands_get_an_error_message_not_a_disconnect():
    stream = EventStream()
    transport = ws.attach(stream, "ws://127.0.0.1:0")
    bad = ["not json", "[1, 2]", '{"cmd": "nope"}', '{"feeds": ["bbo"]}',
           '{"cmd": "subscribe", "feeds": ["bbo", "bogus"]}',
           '{"cmd": "subscribe", "depth": "deep"}', '{"cmd": "subscribe", "tickers": [1]}',
           '{"cmd": "snapshot", "min_seq": -1}', '{"cmd": "snapshot"}', b"\x00binary"]
    with connect(transport.url, **CONNECT_KW) as c:
        assert recv_json(c)["type"] == "hello"
        for cmd in bad:
            c.send(cmd)
            m = recv_json(c)
            assert m["type"] == "error" and m["error"], (cmd, m)
        c.send('{"cmd": "subscribe", "feeds": ["bbo"]}')
        assert [m["type"] for m in recv_until(c, "snapshot")] == ["subscribed", "snapshot"]
        c.send('{"cmd": "unsubscribe", "tickers": ["KX-A"]}')  # all-tickers subscription
        m = recv_json(c)
        assert m["type"] == "error" and m["cmd"] == "unsubscribe"
        c.send('{"cmd": "unsubscribe"}')
        m = recv_json(c)
        assert m["type"] == "subscribed" and m["feeds"] == []
        plant = TickerPlant([stream])
        feed(COCKPIT, plant)
        plant.close()
        rest = recv_until(c, "end")  # unsubscribed: no events, still connected
        assert {m["type"] for m in rest} <= {"heartbeat", "end"}
        assert rest[-1]["seq"] == stream.seq
    assert transport.stats()["subscribers"] == 0


def stalled_client(url: str, subscribe: str) -> object:
    """A raw client with a small receive window that subscribes, then reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    c = connect(url, sock=sock, max_queue=2, **CONNECT_KW)
    c.send(subscribe)
    return c


def replay_until_dropped(stream, transport, fast: Subscriber) -> int:
    """The plant's real output, replayed into one stream (a new plant each time, waiting for
    ``fast`` to have it all) until the server dropped the first client's queue."""
    for cycles in range(1, 301):
        plant = TickerPlant([stream])
        feed(COCKPIT, plant)
        plant.commit()
        wait_until(lambda: fast.next_seq == stream.seq + 1, what="fast subscriber caught up")
        if client_stats(transport).get("dropped"):
            return cycles
    raise AssertionError("the stalled client never overflowed")


def read_until_end(c) -> tuple[list, threading.Thread]:
    msgs: list = []

    def run() -> None:
        while not msgs or msgs[-1]["type"] != "end":
            msgs.append(recv_json(c, 20))

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return msgs, th


def test_a_slow_client_gets_a_gap_then_a_snapshot_and_recovers_while_others_get_all():
    stream = EventStream()
    rec = Recorder()
    stream.attach(rec, "recorder")
    transport = ws.attach(stream, "ws://127.0.0.1:0?client_queue=1000")
    slow = stalled_client(transport.url, '{"cmd": "subscribe", "feeds": ["deltas", "bbo"]}')
    wait_until(lambda: client_stats(transport).get("snapshots"), what="slow client synced")
    fast = Subscriber(transport.url, idle_timeout=30)
    fast_items, th = run_subscriber(fast)
    wait_until(lambda: client_stats(transport, 1).get("snapshots"), what="fast client synced")
    replay_until_dropped(stream, transport, fast)
    slow_msgs, reader = read_until_end(slow)  # the slow client reads again

    def resynced() -> bool:
        kinds = [m["type"] for m in list(slow_msgs)]
        return "gap" in kinds and "snapshot" in kinds[kinds.index("gap"):]

    wait_until(resynced, what="slow client resynced")
    plant = TickerPlant([stream])  # and the stream goes on after its recovery
    feed(COCKPIT, plant)
    plant.close()
    reader.join(30)
    th.join(30)
    slow.close()
    n = stream.seq
    # the fast one: every seq once, in order, no gap
    assert [i.seq for i in fast_items[1:-1]] == list(range(1, n + 1)) and fast.gaps == 0
    # the slow one: a gap, then the snapshot valid at its last seq, then every later event
    kinds = [m["type"] for m in slow_msgs]
    g = kinds.index("gap")
    gap, snap = slow_msgs[g], slow_msgs[g + 1]
    assert snap["type"] == "snapshot" and kinds.count("gap") == 1
    assert gap["first_seq"] + gap["count"] - 1 == snap["seq"] < n
    books = BookMirror()
    books.load(snap["seq"], [ws.book_from_json(b) for b in snap["books"]])
    after = [ws.event_from_json(e) for m in slow_msgs[g + 2:] if m["type"] == "events"
             for e in m["events"]]
    assert [s for s, _ in after] == [s for s, e in rec.got if s > snap["seq"]
                                     and FEED_OF[type(e)] in ("deltas", "bbo")]
    for s, e in after:
        books.apply(s, e)
    assert_books_match(books, replay(COCKPIT))
    assert_books_match(fast.books, replay(COCKPIT))
    assert slow_msgs[-1] == {"type": "end", "run_id": stream.run_id, "seq": n}


# -- CLI -------------------------------------------------------------------------------------


def _cli(*args: str, **kw) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("kalshi-platform")
    env = {**os.environ, "KALSHI_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, **kw)


def test_cli_replay_publish_ws_with_cli_and_library_subscribers(tmp_path):
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    early = tmp_path / "early.jsonl"
    with socket.socket() as hold:  # stands in for the publisher until both subscribers wait
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # its TIME_WAITs too
        hold.bind(("127.0.0.1", port))
        hold.listen(8)
        hold.settimeout(30)
        sub_cli = _cli("subscribe", url, "--feed", "bbo", "--until-end", "--jsonl", str(early))
        hold.accept()[0].close()  # the CLI's first attempt (the only client yet): it waits
        watcher = Subscriber(url, feeds=["bbo"], idle_timeout=30)  # before the publisher too
        seen, t1 = run_subscriber(watcher)
        hold.settimeout(0.05)
        deadline = time.monotonic() + 20
        while watcher.client.attempts == 0 and time.monotonic() < deadline:
            try:
                hold.accept()[0].close()
            except socket.timeout:
                pass
        assert watcher.client.attempts > 0
    pub = _cli("replay", str(COCKPIT), "--publish", url, "--speed", "10", "--sink", "none",
               cwd=tmp_path)
    try:
        wait_until(lambda: len(seen) > 1 and seen[-1].seq > 100, 30, "mid-stream")
        late = Subscriber(url, feeds=["bbo"], idle_timeout=30)  # joins mid-stream
        late_items, t2 = run_subscriber(late)
        out, err = pub.communicate(timeout=40)
        assert pub.returncode == 0, err.decode()
        sub_out, sub_err = sub_cli.communicate(timeout=20)
        assert sub_cli.returncode == 0, sub_err.decode()
        t1.join(20)
        t2.join(20)
    finally:
        for p in (pub, sub_cli):
            if p.poll() is None:
                p.kill()
    o = replay(COCKPIT)
    assert late_items[0].feed == "snapshot" and late_items[0].seq > 100
    assert late_items[-1].feed == "end" and late.gaps == 0
    assert_books_match(late.books, o)
    rows = [json.loads(line) for line in early.read_text().splitlines()]
    assert not any(r.get("from_snapshot") for r in rows)  # complete from seq 1: no snapshot
    assert [r["seq"] for r in rows] == [i.seq for i in seen if i.feed == "bbo"]
    assert all(a["seq"] < b["seq"] for a, b in zip(rows, rows[1:]))
    last = {}
    for r in rows:
        last[r["ticker"]] = r
    tops = {t: tuple(None if r[k] is None else Decimal(r[k])
                     for k in ("yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size"))
            for t, r in last.items()}
    assert tops == o.final_tops() and {r["state"] for r in last.values()} == {"live"}
    assert_books_match(watcher.books, o)


@pytest.mark.parametrize("url", ["ws://127.0.0.1", "ws://127.0.0.1:0?bogus=1",
                                 "ws://127.0.0.1:0?client_queue=0", "udp://127.0.0.1:1"])
def test_bad_urls_are_refused(url):
    from kalshi_platform.feed.transports import TransportError

    with pytest.raises(TransportError):
        ws.parse_url(url)
