"""The one backoff policy (``kalshi_platform.retry.Backoff``) and its three users: bounds of
each jitter mode, the cap, an unbounded attempt count, injectable randomness, and the QuestDB
writer retrying past the attempt count at which ``base * 2 ** n`` overflows a float."""

from __future__ import annotations

import random

import pytest

from kalshi_platform.api.rest import RestClient
from kalshi_platform.retry import Backoff
from kalshi_platform.storage.questdb_rdb import QuestDBWriter, WriterError
from kalshi_platform.ticker_plant.events import FeedEvent
from test_questdb_writer import FakeSender, _wait_until

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import QuestDBError, QuestDBErrorCode


@pytest.mark.parametrize("jitter,low", [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)])
def test_delay_is_capped_exponential_within_the_jitter_band(jitter, low):
    b = Backoff(base_s=0.25, cap_s=4.0, factor=2.0, jitter=jitter, rng=random.Random(1))
    for n in range(20):
        top = min(4.0, 0.25 * 2 ** n)
        assert b.nominal(n) == top
        for _ in range(50):
            assert top * low <= b.delay(n) <= top


def test_unbounded_attempts_and_huge_factors_stay_at_the_cap():
    assert Backoff(0.2, 15.0, jitter=0).delay(10 ** 9) == 15.0
    assert Backoff(1.0, 3.0, factor=1e300, jitter=0).delay(5) == 3.0  # factor**n overflows
    assert Backoff(0.5, 8.0, jitter=0).delay(-3) == 0.5  # a negative attempt counts as 0


def test_the_rng_is_injectable_and_reproducible():
    a = Backoff(1.0, 60.0, jitter=1.0, rng=random.Random(42))
    b = Backoff(1.0, 60.0, jitter=1.0, rng=random.Random(42))
    assert [a.delay(n) for n in range(10)] == [b.delay(n) for n in range(10)]
    r = random.Random(42)
    assert Backoff(1.0, 60.0, jitter=1.0, rng=random.Random(42)).delay(3) == r.uniform(0, 8.0)


@pytest.mark.parametrize("kw", [dict(base_s=-1), dict(cap_s=-0.1), dict(factor=0.5),
                                dict(jitter=1.5), dict(jitter=-0.1), dict(base_s=float("nan"))])
def test_bad_parameters_raise(kw):
    with pytest.raises(ValueError):
        Backoff(**kw)


def test_rest_client_uses_the_policy_with_its_injected_rng():
    rc = RestClient("http://127.0.0.1:1/trade-api/v2", backoff_base_s=0.5, backoff_cap_s=3.0,
                    rng=random.Random(7))
    assert isinstance(rc.backoff, Backoff) and (rc.backoff.base_s, rc.backoff.cap_s,
                                                rc.backoff.jitter) == (0.5, 3.0, 1.0)
    assert rc.backoff.rng is not None  # the injected one: the REST tests replay its draws


def test_questdb_writer_rejects_negative_retry_delays(tmp_path):
    with pytest.raises(WriterError, match="base_s >= 0"):
        QuestDBWriter("http::addr=127.0.0.1:1;", spool_dir=tmp_path, retry_base_s=-1.0)


def test_questdb_writer_keeps_retrying_past_float_overflow(tmp_path):
    """``0.2 * 2 ** 1100`` raises OverflowError; the writer's sender thread computed exactly
    that after ~1024 consecutive failures (hours of QuestDB away) and died. Tiny delays make
    the 1,100 failures take well under a second here."""
    s = FakeSender()
    s.fail = QuestDBError(QuestDBErrorCode.SocketError, "connection refused")
    w = QuestDBWriter("http::addr=127.0.0.1:1;", spool_dir=tmp_path, sender_factory=lambda c: s,
                      batch_rows=1, flush_interval_s=60.0, close_timeout_s=1.0,
                      retry_base_s=1e-9, retry_cap_s=1e-9)
    assert isinstance(w.backoff, Backoff) and w.backoff.jitter == 1.0
    try:
        w.publish(FeedEvent(1_700_000_000_000_000_000, "resync", 1, 1, 1, "r"))
        _wait_until(lambda: w.stats.flush_errors >= 1100, timeout_s=30)
        assert w._thread.is_alive()
        s.fail = None
        assert w.flush(timeout_s=10.0)
        assert w.stats.rows_written == 1
    finally:
        w.close()
