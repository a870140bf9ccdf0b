"""The plant's contract (issue 9, docs/plant-contract.md): bounded values, seq per sid,
book validity in the BBO stream, resyncs, verbatim quarantine.

Every test drives :class:`TickerPlant` with wire frames and checks what comes out of it."""

from __future__ import annotations

import json

import pytest

from kalshi_platform.ticker_plant.events import BBO, FeedEvent
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.ticker_plant.publishers import InMemoryPublisher

T = "KXTEST-MKT"
TS_MS = 1_786_085_189_148


def snap(seq, sid=1, yes=(("0.4000", "10.00"),), no=(("0.5000", "5.00"),), ticker=T):
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq,
            "msg": {"market_ticker": ticker, "yes_dollars_fp": [list(x) for x in yes],
                    "no_dollars_fp": [list(x) for x in no]}}


def delta(seq, price="0.4000", d="1.00", side="yes", sid=1, ticker=T, ts_ms=TS_MS):
    return {"type": "orderbook_delta", "sid": sid, "seq": seq,
            "msg": {"market_ticker": ticker, "price_dollars": price, "delta_fp": d,
                    "side": side, "ts_ms": ts_ms}}


def trade(seq=None, sid=2, **over):
    m = {"trade_id": "d91bc706-ee49-470d-82d8-11418bda6fed", "market_ticker": T,
         "yes_price_dollars": "0.3600", "no_price_dollars": "0.6400", "count_fp": "136.00",
         "taker_side": "no", "ts": 1_786_085_189}
    m.update(over)
    f = {"type": "trade", "sid": sid, "msg": m}
    if seq is not None:
        f["seq"] = seq
    return f


def run(*frames, resync=None):
    pub = InMemoryPublisher()
    plant = TickerPlant([pub], resync=resync)
    for f in frames:
        plant.process(f if isinstance(f, (bytes, str)) else json.dumps(f))
    return plant, pub


def kinds(pub, kind):
    return [e for e in pub.events["feed_events"] if e.kind == kind]


# -- 3. seq semantics ----------------------------------------------------------------------


def test_seq_1_2_3_2_4_is_one_duplicate_and_no_gap():
    plant, pub = run(snap(1), delta(2), delta(3), delta(2, d="50.00"), delta(4))
    st = plant.stats
    assert (st.gaps, st.duplicates) == (0, 1)
    # the duplicate was dropped: 10 + 1 + 1 + 1 contracts, never +50
    assert plant.books[T].yes == {400_000: 1300} and plant.books[T].state == "live"
    assert len(pub.events["orderbook_deltas"]) == 3 and not kinds(pub, "gap")


def test_duplicate_never_moves_the_watermark_back():
    plant, _ = run(snap(1), delta(2), delta(5), delta(3), delta(6))
    # 2 → 5 is one gap; 3 is below the watermark 5 (dropped); 6 follows 5: no second gap
    assert (plant.stats.gaps, plant.stats.duplicates) == (1, 1)


def test_watermark_at_max_seq_computes_no_expected_seq_beyond_int64():
    top = 2**63 - 1
    plant, pub = run(snap(1), delta(top), delta(top, d="2.00"))
    assert plant.stats.duplicates == 1
    assert all((e.expected_seq or 0) < 2**63 for e in pub.events["feed_events"])
    plant.process(json.dumps(delta(2**63)))  # out of range: quarantined, not a gap
    assert plant.stats.quarantined == 1 and plant.stats.gaps == 1


def test_delta_for_a_market_without_a_book_on_a_live_sid_requests_its_resync():
    asked = []
    plant, pub = run(snap(1), delta(2, ticker="KXOTHER-MKT"),
                     resync=lambda sid, t: asked.append((sid, t)))
    assert asked == [(1, ["KXOTHER-MKT"])]
    assert plant.book_state("KXOTHER-MKT") == "syncing"
    (rs,) = kinds(pub, "resync")
    assert rs.detail == "KXOTHER-MKT"
    plant.process(json.dumps(delta(3, ticker="KXOTHER-MKT")))
    assert len(asked) == 1  # asked once; later deltas wait for the snapshot


# -- 1. bounded values ---------------------------------------------------------------------

BAD_FRAMES = {
    "price 0": delta(2, price="0.0000"),
    "price 1": delta(2, price="1.0000"),
    "price above 1": delta(2, price="1.5000"),
    "negative price": delta(2, price="-0.0100"),
    "spaced price": delta(2, price=" 0.5 "),
    "plus price": delta(2, price="+0.5"),
    "bare fraction": delta(2, price=".5"),
    "trailing dot": delta(2, price="1."),
    "exponent": delta(2, price="5e-1"),
    "4301 digits": delta(2, d="9" * 4301),
    "zero delta": delta(2, d="0.00"),
    "delta over 1e10 contracts": delta(2, d="10000000000.01"),
    "sid 0": delta(2, sid=0),
    "seq 0": delta(0),
    "seq 2^63": delta(2**63),
    "ts before 2000": delta(2, ts_ms=946_684_799_999),
    "ts from 2100": delta(2, ts_ms=4_102_444_800_000),
    "snapshot size 0": snap(2, yes=(("0.4000", "0.00"),)),
    "snapshot negative size": snap(2, yes=(("0.4000", "-1.00"),)),
    "snapshot size over 1e10": snap(2, yes=(("0.4000", "10000000001.00"),)),
    "snapshot duplicate level": snap(2, yes=(("0.4000", "1.00"), ("0.4000", "2.00"))),
    "trade count 0": trade(count_fp="0.00"),
    "trade price 1": trade(yes_price_dollars="1.0000", no_price_dollars="0.0000"),
    "trade prices not summing to 1": trade(no_price_dollars="0.6500"),
    "trade id not a uuid": trade(trade_id="abc"),
    "trade taker side": trade(taker_side="maybe"),
    "trade ts 2100": trade(ts=4_102_444_800),
    "iso ts before 2000": trade(ts="1999-12-31T23:59:59Z"),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_value_out_of_range_is_quarantined_and_reaches_nothing(name):
    plant, pub = run(snap(1), json.dumps(BAD_FRAMES[name]), delta(2))
    assert plant.stats.quarantined == 1
    (rec,) = pub.events["quarantine"]
    assert rec.raw == json.dumps(BAD_FRAMES[name]) and rec.reason
    book = plant.books[T]
    if name.startswith("snapshot"):
        # an unreadable snapshot still names its market: that book is not trustworthy any more
        assert book.state == "stale" and bbos(pub)[-1].state == "stale"
        assert book.yes == {400_000: 1000}  # so the good delta 2 is recorded, not applied
    else:
        # the book took the snapshot and the good delta 2 (the bad frame moved no watermark)
        assert book.yes == {400_000: 1100} and book.no == {500_000: 500}
    assert plant.stats.gaps == 0 and "trades" not in pub.events
    assert len(pub.events["orderbook_deltas"]) == 1


def test_huge_integer_literal_never_reaches_int_parser():
    raw = b'{"type":"orderbook_delta","sid":1,"seq":' + b"9" * 4301 + b',"msg":{}}'
    plant, pub = run(raw)
    assert plant.stats.quarantined == 1 and pub.events["quarantine"][0].raw == raw.decode()


def test_deeply_nested_frame_is_kept_verbatim_without_recursion_error():
    raw = '{"type":"market_lifecycle_v2","sid":1,"seq":1,"msg":' + "[" * 1000 + "]" * 1000 + "}"
    plant, pub = run(raw)
    assert plant.stats.quarantined == 1 and pub.events["quarantine"][0].raw == raw


def test_parsed_deep_dict_is_quarantined_without_recursion_error():
    deep: dict = {}
    cur = deep
    for _ in range(1000):
        cur["x"] = {}
        cur = cur["x"]
    plant, pub = run()
    plant.process({"type": "event_lifecycle", "sid": 1, "seq": 1, "msg": deep})
    assert plant.stats.quarantined == 1
    assert isinstance(pub.events["quarantine"][0].raw, str)


def test_invalid_utf8_is_kept_as_exact_bytes():
    raw = b'{"type":"trade","msg":{"market_ticker":"\xff\xfe"}}'
    plant, pub = run(raw)
    (rec,) = pub.events["quarantine"]
    assert rec.raw == raw and rec.as_json()["raw_b64"]


def test_ticker_zero_and_one_dollar_quotes_are_kept_as_sent():
    f = {"type": "ticker", "sid": 3, "msg": {"market_ticker": T, "price_dollars": "0.0000",
                                             "yes_bid_dollars": "0.0000",
                                             "yes_ask_dollars": "1.0000", "volume_fp": "0.00",
                                             "ts": 1_786_085_189}}
    plant, pub = run(f)
    (ev,) = pub.events["tickers"]
    assert (ev.price, ev.yes_bid, ev.yes_ask, ev.volume) == (0, 0, 1_000_000, 0)
    f["msg"]["yes_ask_dollars"] = "1.0100"
    plant.process(json.dumps(f))
    assert plant.stats.quarantined == 1


# -- 4. book validity in the BBO stream -----------------------------------------------------


def bbos(pub) -> list[BBO]:
    return pub.events["bbo"]


def test_gap_emits_null_bbo_with_new_state_then_snapshot_revalidates_same_top():
    plant, pub = run(snap(1), delta(2), delta(4))
    rows = bbos(pub)
    assert [r.state for r in rows] == ["live", "live", "stale"]
    assert rows[-1].top() == (None, None, None, None)
    before = rows[1].top()
    plant.process(json.dumps(snap(5, yes=(("0.4000", "11.00"),))))  # the same top as before
    assert bbos(pub)[-1].state == "live" and bbos(pub)[-1].top() == before


def test_gap_with_resync_handler_reports_syncing_books():
    asked = []
    plant, pub = run(snap(1), delta(3), resync=lambda sid, t: asked.append((sid, t)))
    assert asked == [(1, [T])] and plant.book_state(T) == "syncing"
    assert bbos(pub)[-1].state == "stale" and kinds(pub, "resync")


def test_reset_unsubscribe_and_remove_market_each_invalidate_a_live_book():
    plant, pub = run(snap(1))
    plant.reset("test")
    assert bbos(pub)[-1].state == "syncing" and bbos(pub)[-1].yes_bid is None
    plant.process(json.dumps(snap(1)))
    assert bbos(pub)[-1].state == "live"  # same top as before the reset: emitted anyway
    plant.process(json.dumps({"type": "unsubscribed", "sid": 1, "seq": 2, "id": 4}))
    assert bbos(pub)[-1].state == "stale"
    plant.process(json.dumps(snap(1)))
    assert plant.remove_market(T) and bbos(pub)[-1].state == "stale"
    assert plant.book_state(T) is None
    n = len(bbos(pub))
    plant.reset("again")  # nothing live any more: nothing to invalidate
    assert len(bbos(pub)) == n


def test_bbo_rows_equal_table_rows():
    plant, pub = run(snap(1), delta(2), delta(4), snap(5))
    assert plant.stats.table_rows()["bbo"] == len(bbos(pub))


def test_live_books_are_never_crossed_after_any_delta():
    asked = []
    frames = [snap(1)] + [delta(i, price="0.5000", d="1.00") for i in range(2, 5)]
    plant, pub = run(*frames, resync=lambda sid, t: asked.append(t))
    # YES bid at 0.50 against YES ask 1 - 0.50: locked → stale → resync once
    assert plant.stats.crossed == 1 and asked == [[T]]
    assert all(not (r.state == "live" and r.yes_bid is not None and r.yes_ask is not None
                    and r.yes_bid >= r.yes_ask) for r in bbos(pub))


# -- 2. sink isolation -----------------------------------------------------------------------


class Exploding:
    """A publisher that raises on the first event of ``on_type``."""

    sink_name = "exploding"

    def __init__(self, on_type=None):
        self.on_type = on_type
        self.seen = 0

    def publish(self, ev):
        self.seen += 1
        if self.on_type is None or isinstance(ev, self.on_type):
            raise ValueError("boom")

    def flush(self):
        pass

    def close(self):
        pass


def test_failing_sink_is_marked_failed_and_others_go_on():
    from kalshi_platform.ticker_plant.events import TradeEvent

    first = InMemoryPublisher()
    bad = Exploding(TradeEvent)
    last = InMemoryPublisher()
    plant = TickerPlant([first, bad, last])
    for f in (trade(), snap(1, sid=1), delta(2)):
        plant.process(json.dumps(f))
    for pub in (first, last):
        assert len(pub.events["trades"]) == 1 and "quarantine" not in pub.events
        assert len(pub.events["orderbook_deltas"]) == 1
        (fe,) = [e for e in pub.events["feed_events"] if e.kind == "sink_failed"]
        assert isinstance(fe, FeedEvent) and fe.detail == "exploding: boom"
    assert plant.stats.quarantined == 0 and plant.stats.sink_failures == 1
    assert plant.sink_failures == {"exploding": "boom"}
    seen = bad.seen
    plant.process(json.dumps(delta(3)))
    assert bad.seen == seen  # a failed sink gets nothing more
    plant.close()


def test_a_level_driven_past_1e10_contracts_is_a_book_error():
    asked = []
    big = "9999999999.00"
    plant, pub = run(snap(1, yes=(("0.4000", big),)), delta(2, d="1.01"),
                     resync=lambda sid, t: asked.append(t))
    assert plant.stats.book_errors == 1 and asked == [[T]]
    assert plant.books[T].yes == {400_000: 999_999_999_900}  # unchanged
    assert bbos(pub)[-1].state == "stale"
