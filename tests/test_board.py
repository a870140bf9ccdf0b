"""``kalshi-platform board URL`` (issue 12 §5): the live market board, a feed subscriber.

1. The model (:mod:`kalshi_platform.board.model`) fed with the items of a real replay of the
   bundled recordings: every market's top goes through the Decimal oracle's changes and ends
   on its final BBO; updates per market equal the recording's messages for it; the last trade
   is the recording's; rates are counts over a window of samples at injected times.
2. The view (:mod:`kalshi_platform.board.view`) printed on a rich capture console: every
   ticker whole at any width, numbers right-aligned under their headers and equal to the
   oracle's, the header's figures.
3. The command: ``replay --publish ipc://`` with ``board --until-end`` started before it
   (the publisher waits for it: no sleep), ``--once`` against an idle publisher, Ctrl-C, and
   one-line errors with exit 2.

Only unix sockets under /tmp; every wait has a deadline.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from conftest import COCKPIT, REPO_ROOT, SSMD_TRADE, book_capture_params, nonblank_lines, \
    wait_until, write_lines
from kalshi_oracle import Oracle, dec_top, iter_recording
from oracle_compare import recorded_use_yes_price, replay_recorded
from kalshi_platform.board.model import BoardModel, SortKey, ticker_matcher
from kalshi_platform.board.view import DROP_ORDER, render_board
from kalshi_platform.feed import ipc
from kalshi_platform.feed.subscriber import Item, Subscriber
from kalshi_platform.ingestion.recording import feed
from kalshi_platform.stream.bus import EventStream
from kalshi_platform.stream.codec import FEED_OF
from kalshi_platform.ticker_plant.events import BBO, FeedEvent
from kalshi_platform.ticker_plant.plant import TickerPlant

CLI = [sys.executable, "-m", "kalshi_platform.tools.cli"]
FAST = 1e9  # paced at 10^9x: one commit per frame, as live, no real waiting
#: the table's columns in display order, and those holding numbers
COLUMNS = ("ticker", "state", "bid qty", "bid", "ask", "ask qty", "spread", "last",
           "last qty", "upd/s", "updates")
LEFT = ("ticker", "state")
S = 1_000_000_000  # ns


# -- items of a real replay -----------------------------------------------------------------------


class Collect:
    """A stream consumer keeping every event as the Item a subscriber from seq 1 yields."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def on_batch(self, start, events):
        self.items.extend(Item(s, FEED_OF[type(e)], e) for s, e in enumerate(events, start))

    def on_gap(self, first, count):
        raise AssertionError(f"gap {first}+{count} in a lossless in-process stream")

    def on_idle(self):
        pass

    def close(self):
        pass


def replay_items(path: Path) -> list[Item]:
    """The plant's events for a whole recording, in stream order, as subscriber items."""
    stream = EventStream()
    c = Collect()
    stream.attach(c, "board-test")
    plant = TickerPlant([stream], use_yes_price=recorded_use_yes_price(path))
    feed(path, plant)
    plant.close()
    assert c.items and c.items[-1].seq == stream.seq == len(c.items)
    return c.items


def fed_model(items, **kw) -> BoardModel:
    m = BoardModel(**kw)
    m.start_run("test-run")
    for it in items:
        m.apply(it)
    return m


def board_tops(model: BoardModel) -> dict:
    return {t: dec_top(r.top()) for t, r in sorted(model.rows.items())}


# -- 1. the model ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", book_capture_params())
def test_every_market_goes_through_the_oracles_tops_and_ends_on_its_final_bbo(path):
    oracle = replay_recorded(path)
    want: dict[str, list] = defaultdict(list)
    for ticker, _ts, top, _seq, _recv in oracle.changes:
        want[ticker].append(top)

    model = BoardModel()
    seen: dict[str, list] = defaultdict(list)
    for item in replay_items(path):
        model.apply(item)
        if item.feed == "bbo":
            t = item.event.ticker
            top = dec_top(model.rows[t].top())
            if not seen[t] or seen[t][-1] != top:
                seen[t].append(top)
    assert dict(seen) == dict(want)
    assert board_tops(model) == oracle.final_tops()
    assert model.book_states() == Counter(live=len(oracle.books))
    assert model.feed_events["gap"] == oracle.gaps


def _market_messages(path: Path) -> Counter:
    """Messages per market in the recording, counted with the oracle's own reading: its
    snapshots and deltas (duplicates dropped by the same seq rule) plus trades and tickers."""
    o = Oracle(recorded_use_yes_price(path))
    n: Counter = Counter()
    for recv_ns, frame, _ in iter_recording(path):
        touched = o.apply(frame, recv_ns)
        if touched is not None:
            n[touched] += 1
        elif frame["type"] in ("trade", "ticker") and o.last_seq.get(frame.get("sid")) == \
                frame.get("seq"):
            n[frame["msg"]["market_ticker"]] += 1
    return n


@pytest.mark.parametrize("path", [COCKPIT, SSMD_TRADE], ids=["cockpit", "ssmd-trades"])
def test_update_counts_equal_the_recordings_messages_per_market(path):
    items = replay_items(path)
    model = fed_model(items)
    assert {t: r.updates for t, r in model.rows.items() if r.updates} == \
        dict(_market_messages(path))
    assert model.events == len(items) and model.seq == items[-1].seq


def test_last_trade_and_trade_counts_are_the_recordings():
    last: dict[str, tuple] = {}
    count: Counter = Counter()
    for _recv, frame, _ in iter_recording(SSMD_TRADE):
        assert frame["type"] == "trade"
        m = frame["msg"]
        last[m["market_ticker"]] = (Decimal(m["yes_price_dollars"]), Decimal(m["count_fp"]),
                                    m["taker_side"])
        count[m["market_ticker"]] += 1
    model = fed_model(replay_items(SSMD_TRADE))
    got = {t: (Decimal(r.last_price) / 10**6, Decimal(r.last_count) / 100, r.last_side)
           for t, r in model.rows.items()}
    assert got == last
    assert {t: r.trades for t, r in model.rows.items()} == dict(count)
    assert {r.state for r in model.rows.values()} == {None}  # trades only: no book


@pytest.fixture
def sock_dir():
    """A short directory for unix sockets (``sun_path`` holds 107 bytes)."""
    d = tempfile.mkdtemp(prefix="kbrd", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_a_late_joiners_board_takes_its_books_from_the_snapshot_and_ends_on_the_oracle(
        sock_dir, tmp_path):
    lines = nonblank_lines(COCKPIT)
    first = write_lines(tmp_path / "first.jsonl", lines[: len(lines) // 2])
    rest = write_lines(tmp_path / "rest.jsonl", lines[len(lines) // 2:])
    url = f"ipc://{sock_dir}/feed"
    stream = EventStream()
    transport = ipc.attach(stream, url)
    plant = TickerPlant([stream])
    feed(first, plant, speed=FAST)
    wait_until(lambda: transport.stats()["sent"] == stream.seq, what="first half sent")
    sub = Subscriber(url, feeds=("bbo", "deltas", "trades", "feed_events"), depth=False)
    model = BoardModel()
    items: list = []

    def read() -> None:
        for item in sub:
            items.append(item)
            model.apply(item)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until(lambda: transport.stats()["subscribers"] == 1, what="subscription")
    feed(rest, plant, speed=FAST)
    plant.close()
    reader.join(20)
    assert not reader.is_alive()
    assert items[0].feed == "snapshot" and model.snapshots == 1 and model.ended
    assert board_tops(model) == replay_recorded(COCKPIT).final_tops()
    assert model.book_states() == Counter(live=12)


def test_rates_are_counts_over_the_window_at_the_injected_times():
    items = [i for i in replay_items(COCKPIT)]
    model = BoardModel(window_s=5.0)
    model.sample(0)
    assert model.msg_rate() is None  # one sample: no window yet

    def feed_n(a, b):
        per = Counter()
        for it in items[a:b]:
            model.apply(it)
            if it.feed == "deltas":
                per[it.event.ticker] += 1
        return per

    p1 = feed_n(0, 100)
    model.sample(1 * S)
    assert model.msg_rate() == 100.0
    assert {t: model.rate(r) for t, r in model.rows.items() if model.rate(r)} == \
        {t: float(n) for t, n in p1.items()}
    p2 = feed_n(100, 150)
    model.sample(2 * S)
    assert model.msg_rate() == 150 / 2
    model.sample(6_500_000_000)  # the window drops the sample at 0: it starts at 1 s
    assert model.msg_rate() == 50 / 5.5
    assert {t: model.rate(r) for t, r in model.rows.items() if model.rate(r)} == \
        {t: n / 5.5 for t, n in p2.items()}
    feed_n(150, 160)
    model.sample(8 * S)  # starts at 2 s now: only the last 10
    assert model.msg_rate() == 10 / 6
    assert model.elapsed_s() == 6.0


def _bbo(ticker, bid, ask, state="live"):
    if state != "live":
        return BBO(ticker, 1, None, None, None, None, None, None, state)
    return BBO(ticker, 1, bid, 100, ask, 200, None, None, state)


def test_stale_rows_gaps_resyncs_and_snapshots_are_counted():
    model = BoardModel()
    seq = iter(range(1, 100))
    for ev in (_bbo("A", 400_000, 410_000), _bbo("B", 500_000, 520_000),
               FeedEvent(1, "gap", 1, 5, 7, None), FeedEvent(1, "resync", 1, None, None, None),
               _bbo("B", None, None, "stale"), FeedEvent(1, "gap", 1, 9, 12, None)):
        model.apply(Item(next(seq), FEED_OF[type(ev)], ev))
    model.apply(Item(7, "gap", (7, 3)))
    assert model.rows["B"].top() == (None, None, None, None) and model.rows["B"].state == "stale"
    assert model.rows["A"].spread == 10_000
    assert (model.feed_events["gap"], model.feed_events["resync"], model.stream_gaps) == (2, 1, 1)
    assert model.book_states() == Counter(live=1, stale=1)


def test_filter_is_substring_or_glob_and_sorts_order_the_rows():
    assert ticker_matcher(None) is None and ticker_matcher(["", " "]) is None
    m = ticker_matcher(["nyy", "KXWNBA*"])
    assert m("KXMLBGAME-26AUG071905ATLNYY-NYY") and m("KXWNBAGAME-26AUG07PHXCONN-PHX")
    assert not m("KXMLBGAME-26AUG071910ATHBOS-BOS")
    assert ticker_matcher(["*-B?S"])("KXMLBGAME-26AUG071910ATHBOS-BOS")

    oracle = replay_recorded(COCKPIT)
    counts = _market_messages(COCKPIT)
    model = fed_model(replay_items(COCKPIT), accept=ticker_matcher(["MLB"]))
    mlb = sorted(t for t in oracle.books if "MLB" in t)
    assert sorted(model.rows) == mlb and len(mlb) == 11

    def order(key, **kw):
        return [r.ticker for r in model.sorted_rows(key, **kw)]

    assert order("ticker") == mlb
    assert order("ticker", reverse=True) == mlb[::-1]
    assert order("total") == sorted(mlb, key=lambda t: (-counts[t], t))
    assert order(SortKey.TOTAL, limit=3) == order("total")[:3]
    spread = {t: oracle.top(t)[2] - oracle.top(t)[0] for t in mlb}
    assert order("spread") == sorted(mlb, key=lambda t: (spread[t], t))
    with pytest.raises(ValueError):
        model.sorted_rows("nope")


# -- 2. the view -----------------------------------------------------------------------------


def parse_board(text: str) -> tuple[list[str], list[str], dict[str, dict[str, str]]]:
    """A printed board → (header lines, the columns shown, ticker → column → cell).

    Cells are read at their header's edge: a right-justified column's cell must end exactly
    where its header name ends (a left-justified one start where it starts), so a number
    that is not right-aligned is not found and the comparison fails."""
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["ticker"])
    head = lines[at]
    spans, pos = {}, 0
    for name in COLUMNS:
        i = head.find(name, pos)
        while i >= 0 and not ((i == 0 or head[i - 1] == " ") and
                              (i + len(name) == len(head) or head[i + len(name)] == " ")):
            i = head.find(name, i + 1)
        if i >= 0:
            spans[name] = (i, i + len(name))
            pos = i + len(name)
    rows = {}
    for ln in lines[at + 2:]:
        if not ln.strip():
            continue
        cells = {}
        for name, (s, e) in spans.items():
            if name in LEFT:
                assert s == 0 or ln[s - 1] == " ", (name, ln)
                cells[name] = ln[s:].split(" ")[0]
            else:
                ok = e <= len(ln) and ln[e - 1] != " " and (e == len(ln) or ln[e] == " ")
                cells[name] = ln[:e].split(" ")[-1] if ok else ""
        rows[cells["ticker"]] = cells
    return lines[:at], list(spans), rows


def printed(renderable, width: int) -> str:
    c = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    c.print(renderable)
    return c.export_text()


def dec(cell: str) -> Decimal | None:
    return Decimal(cell.replace(",", "")) if cell else None


def test_the_printed_board_shows_every_ticker_whole_and_the_oracles_numbers_right_aligned():
    oracle = replay_recorded(COCKPIT)
    counts = _market_messages(COCKPIT)
    model = fed_model(replay_items(COCKPIT))
    model.sample(0)
    model.sample(2 * S)
    text = printed(render_board(model, source="ipc:///tmp/x", sort="ticker"), 200)
    header, shown, rows = parse_board(text)
    assert shown == list(COLUMNS)
    assert sorted(rows) == sorted(oracle.books)  # every ticker, whole
    for t, cells in rows.items():
        top = tuple(dec(cells[k]) for k in ("bid", "bid qty", "ask", "ask qty"))
        assert top == oracle.top(t), t
        assert dec(cells["spread"]) == oracle.top(t)[2] - oracle.top(t)[0]
        assert cells["state"] == "live" and cells["last"] == "" and cells["last qty"] == ""
        assert int(cells["updates"].replace(",", "")) == counts[t]
    assert [r for r in rows] == sorted(rows)  # --sort ticker
    # prices: one number of decimals per column (here cents: 2); sizes: 2, some have cents
    assert {len(c["bid"].split(".")[1]) for c in rows.values()} == {2}
    assert any(not c["bid qty"].endswith(".00") for c in rows.values())
    head = " ".join(header)
    assert f"seq {model.seq:,}" in head and f"{model.events:,} events" in head
    assert "feed gaps 0" in head and "resyncs 0" in head and "stale 0" in head
    assert "books live 12" in head and "markets 12/12 by ticker" in head
    assert "0 msg/s" in head  # no event between the two samples


@pytest.mark.parametrize("width", [200, 126, 120, 100, 80, 72, 60, 48, 40])
def test_a_narrow_board_leaves_out_whole_columns_and_never_cuts_a_ticker(width):
    oracle = replay_recorded(COCKPIT)
    model = fed_model(replay_items(COCKPIT))
    text = printed(render_board(model, width=width), width)
    _, shown, rows = parse_board(text)
    assert sorted(rows) == sorted(oracle.books)
    assert max(len(ln) for ln in text.splitlines()) <= width
    dropped = [c for c in COLUMNS if c not in shown]
    # no trade in this recording: the empty trade columns go first; the sort's column last
    order = ["last qty", "last"] + [c for c in DROP_ORDER
                                    if c not in ("last qty", "last", "upd/s")] + ["upd/s"]
    assert dropped == [c for c in COLUMNS if c in order[: len(dropped)]]  # in order
    for t, cells in rows.items():
        for k, v in (("bid", oracle.top(t)[0]), ("ask", oracle.top(t)[2])):
            assert k not in shown or dec(cells[k]) == v
    if width >= 126:  # the whole board of this recording
        assert shown == list(COLUMNS)
    if width >= 56:
        assert {"ticker", "bid", "ask", "upd/s"} <= set(shown)
    if width <= 60:
        assert len(dropped) >= 7


def test_a_ticker_wider_than_the_board_folds_and_is_never_cut():
    model = fed_model(replay_items(COCKPIT))
    text = printed(render_board(model, width=20), 20)
    lines = [ln.strip() for ln in text.splitlines()]
    body = lines[next(i for i, ln in enumerate(lines) if ln == "ticker") + 2:]
    joined = ["".join(body[i:i + 2]) for i in range(0, len(body), 2)]
    assert sorted(joined) == sorted(replay_recorded(COCKPIT).books)


def test_max_rows_header_figures_and_a_stale_row():
    model = BoardModel()
    model.start_run("r1")
    model.sample(0)
    seq = iter(range(1, 100))
    for ev in (_bbo("KXA", 400_000, 410_000), _bbo("KXB", 123_400, 125_000),
               _bbo("KXC", 1, 2), FeedEvent(1, "gap", 1, 5, 7, None),
               FeedEvent(1, "resync", 1, None, None, None), _bbo("KXC", None, None, "stale")):
        model.apply(Item(next(seq), FEED_OF[type(ev)], ev))
    model.apply(Item(7, "gap", (7, 3)))
    model.sample(S // 2)
    text = printed(render_board(model, sort="state", max_rows=2), 160)
    header, _, rows = parse_board(text)
    head = " ".join(header)
    assert "12 msg/s" in head  # 6 events in 0.5 s
    assert "feed gaps 1" in head and "resyncs 1" in head and "stream gaps 1" in head
    assert "books live 2  stale 1" in head and "markets 2/3 by state" in head
    assert list(rows) == ["KXC", "KXA"]  # not live first, then by ticker; 2 rows
    assert rows["KXC"]["state"] == "stale" and rows["KXC"]["bid"] == ""
    # one column, one number of decimals: 0.1234 forces 4 on every bid, 0.125 3 on every ask
    text = printed(render_board(model, sort="ticker"), 160)
    _, _, rows = parse_board(text)
    assert [(rows[t]["bid"], rows[t]["ask"]) for t in ("KXA", "KXB", "KXC")] == \
        [("0.4000", "0.410"), ("0.1234", "0.125"), ("", "")]
    assert rows["KXB"]["spread"] == "0.0016"


# -- 3. the command ----------------------------------------------------------------------------


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("COLUMNS", None)
    return env


def test_cli_board_started_before_the_replay_ends_on_the_oracles_final_bbo(sock_dir, tmp_path):
    url = f"ipc://{sock_dir}/feed"
    board = subprocess.Popen([*CLI, "board", url, "--until-end", "--sort", "ticker"],
                             env=_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        replay = subprocess.run(  # holds seq 1 until the board has subscribed
            [*CLI, "replay", str(COCKPIT), "--sink", "none",
             "--publish", url + "?wait_subscribers=1&wait_timeout_s=30"],
            env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=90)
        assert replay.returncode == 0, replay.stderr
        out, err = board.communicate(timeout=60)
    finally:
        if board.poll() is None:
            board.kill()
    assert board.returncode == 0, err
    header, shown, rows = parse_board(out)
    oracle = replay_recorded(COCKPIT)
    assert shown == list(COLUMNS)  # a pipe: the whole board
    assert {t: tuple(dec(c[k]) for k in ("bid", "bid qty", "ask", "ask qty"))
            for t, c in rows.items()} == oracle.final_tops()
    assert {c["state"] for c in rows.values()} == {"live"}
    assert "END" in " ".join(header) and "stream gaps 0  snapshots 0" in " ".join(header)
    assert err.strip().splitlines()[-1].startswith(f"board {url}: end of stream; ")


def _idle_publisher(url: str):
    stream = EventStream()
    transport = ipc.attach(stream, url + "?heartbeat_s=0.05")
    plant = TickerPlant([stream])
    feed(COCKPIT, plant, speed=FAST)
    wait_until(lambda: transport.stats()["sent"] == stream.seq, what="all sent")
    return plant, transport


def test_cli_once_prints_the_current_books_of_a_running_publisher(sock_dir, tmp_path):
    url = f"ipc://{sock_dir}/feed"
    plant, _ = _idle_publisher(url)
    try:
        r = subprocess.run([*CLI, "board", url, "--once", "--width", "200", "--filter", "mlb"],
                           env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    finally:
        plant.close()
    assert r.returncode == 0, r.stderr
    _, shown, rows = parse_board(r.stdout)
    want = {t: top for t, top in replay_recorded(COCKPIT).final_tops().items() if "MLB" in t}
    assert {t: tuple(dec(c[k]) for k in ("bid", "bid qty", "ask", "ask qty"))
            for t, c in rows.items()} == want
    assert "1 snapshot(s)" in r.stderr


def test_cli_ctrl_c_exits_0_with_the_board(sock_dir, tmp_path):
    url = f"ipc://{sock_dir}/feed"
    plant, transport = _idle_publisher(url)
    try:
        board = subprocess.Popen([*CLI, "board", url, "--width", "200"], env=_env(),
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        try:
            wait_until(lambda: transport.stats()["subscribers"] == 1, timeout=30,
                       what="the board subscribed")
            board.send_signal(signal.SIGINT)
            out, err = board.communicate(timeout=30)
        finally:
            if board.poll() is None:
                board.kill()
    finally:
        plant.close()
    assert board.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err


@pytest.mark.parametrize("args, why", [
    (["nope://x"], "unknown transport"),
    (["ipc://"], "needs a path"),
    (["ipc:///tmp/kbrd-nobody-here.feed", "--timeout", "0.5"], "no publisher reached in 0.5 s"),
    (["ipc:///tmp/x", "--sort", "bogus"], "--sort 'bogus': choose from ticker"),
    (["ipc:///tmp/x", "--refresh", "100"], "--refresh 100"),
])
def test_cli_bad_input_or_no_publisher_is_one_line_and_exit_2(tmp_path, args, why):
    r = subprocess.run([*CLI, "board", *args], env=_env(), cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and why in lines[0], r.stderr
    assert r.stdout == ""


def test_a_terminal_board_redraws_at_its_refresh_rate_never_per_message(sock_dir):
    """On a (forced) terminal the board is drawn by rich.live's thread at ``--refresh`` Hz:
    the draws, counted through the injected clock (one reading per draw), stay near
    elapsed x rate while hundreds of events arrive; the final books are the oracle's."""
    import time

    from kalshi_platform.tools.board import BoardOptions, run_board

    url = f"ipc://{sock_dir}/feed"
    stream = EventStream()
    ipc.attach(stream, url + "?wait_subscribers=1&wait_timeout_s=20")
    plant = TickerPlant([stream])

    def publish() -> None:  # the capture's 56 s at 28x: about 2 s of paced events
        feed(COCKPIT, plant, speed=28)
        plant.close()

    readings = []

    def clock() -> int:
        readings.append(1)
        return time.monotonic_ns()

    console = Console(record=True, file=io.StringIO(), force_terminal=True, width=160,
                      height=40, color_system=None)
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    t0 = time.monotonic()
    outcome, model = run_board(url, BoardOptions(until_end=True, refresh=10.0),
                               console=console, clock=clock)
    elapsed = time.monotonic() - t0
    publisher.join(20)
    draws = len(readings) - 2  # one at the start and one for the run's first item
    assert outcome == "end" and model.ended and model.events == stream.seq > 250
    assert 1 <= draws <= elapsed * 10 + 3, (draws, elapsed)
    assert board_tops(model) == replay_recorded(COCKPIT).final_tops()
    last = console.export_text().rsplit(" ticker ", 1)[1]  # the final frame's table
    assert sum(t in last for t in model.rows) == 12


def test_tickers_subscribes_to_those_markets_only_and_a_pipe_gets_one_final_board(sock_dir):
    """``--tickers`` (exact, to the subscriber) with ``--once`` against a running publisher,
    in process on a non-terminal console: one board, those markets, the oracle's books."""
    from kalshi_platform.tools.board import BoardOptions, run_board

    url = f"ipc://{sock_dir}/feed"
    plant, _ = _idle_publisher(url)
    oracle = replay_recorded(COCKPIT)
    pick = tuple(sorted(oracle.books)[:3])
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    try:
        outcome, model = run_board(url, BoardOptions(tickers=pick, once=True, sort="ticker"),
                                   console=console)
    finally:
        plant.close()
    assert outcome == "once" and sorted(model.rows) == list(pick)
    text = out.getvalue()
    assert text.count(" ticker ") == 1  # printed once, at the end
    _, _, rows = parse_board(text)
    assert list(rows) == list(pick)
    assert {t: tuple(dec(c[k]) for k in ("bid", "bid qty", "ask", "ask qty"))
            for t, c in rows.items()} == {t: oracle.top(t) for t in pick}
