"""WAL recovery (issue 13 §3): snapshot + log rebuild exactly what an in-memory replay of the
same commands builds; a torn tail is cut; the async group committer; and kill -9 of a process
under load loses no acknowledged command and doubles no fill."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kalshi_platform.exchange import Exchange
from kalshi_platform.exchange.wal import DurableExchange, GroupCommitter
from exchange_streams import digest, load

DRIVER = Path(__file__).with_name("wal_driver.py")
REPO = Path(__file__).resolve().parents[2]


def commands(seed: int, n: int) -> list:
    return [(cmd, ts) for ts, cmd in itertools.islice(load(seed), n)]


def replay(cmds) -> Exchange:
    ex = Exchange()
    for cmd, ts in cmds:
        ex.submit(cmd, ts)
    return ex


def test_recovery_equals_replay_with_snapshots(tmp_path):
    cmds = commands(1, 700)
    dx = DurableExchange(tmp_path, snapshot_every=128)
    for k in range(0, 300):
        dx.submit(*cmds[k])
    for k in range(300, 700, 25):
        dx.submit_many(cmds[k:k + 25])
    before = digest(dx.exchange)
    dx.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"snapshot-{dx.snapshot_lsn}.pkl", f"wal-{dx.snapshot_lsn}.log"]  # log truncated
    re = DurableExchange(tmp_path)
    assert re.lsn == 700 and re.snapshot_lsn == dx.snapshot_lsn > 0
    assert re.replayed == 700 - dx.snapshot_lsn
    assert digest(re.exchange) == before == digest(replay(cmds))
    assert re.exchange.check_invariants() == []
    # the recovered engine goes on exactly like the uninterrupted one
    more = commands(1, 800)[700:]
    re.submit_many(more)
    assert digest(re.exchange) == digest(replay(commands(1, 800)))


def test_torn_tail_is_cut_and_appends_survive(tmp_path):
    cmds = commands(2, 200)
    dx = DurableExchange(tmp_path)
    dx.submit_many(cmds[:150])
    dx.close()
    seg = next(tmp_path.glob("wal-*.log"))
    good = seg.stat().st_size
    with seg.open("ab") as f:
        f.write(b"\x40\x00\x00\x00\x12\x34")  # a record header and a few bytes: a torn write
    re = DurableExchange(tmp_path)
    assert re.lsn == 150 and seg.stat().st_size == good
    re.submit_many(cmds[150:])
    re.close()
    assert digest(DurableExchange(tmp_path).exchange) == digest(replay(cmds))


def test_group_committer_acks_after_durable_append(tmp_path):
    cmds = commands(3, 400)
    dx = DurableExchange(tmp_path, snapshot_every=150)
    gc = GroupCommitter(dx)

    async def main():
        return await asyncio.gather(*(gc.submit(c, ts) for c, ts in cmds))

    results = asyncio.run(main())
    assert len(results) == 400 and dx.lsn == 400
    dx.close()
    assert digest(DurableExchange(tmp_path).exchange) == digest(replay(cmds))


def test_group_committer_hands_over_in_order_once_durable_and_reports_a_failed_commit(tmp_path):
    """``on_durable`` sees every result in apply order before its ack (the sim publishes from
    it), a record queued without a future too; a failed commit goes to ``on_failed`` once and
    to its waiter, and its items are not handed over."""
    import pytest

    cmds = commands(6, 120)
    dx = DurableExchange(tmp_path)
    seen, failed = [], []
    gc = GroupCommitter(dx, on_durable=seen.append, on_failed=failed.append)

    async def one(cmd, ts):
        res = await gc.submit(cmd, ts)
        assert any(r is res for r in seen)  # handed over before the ack
        return res

    async def main():
        results = await asyncio.gather(*(one(c, ts) for c, ts in cmds[:100]))
        assert [id(r) for r in seen] == [id(r) for r in results]
        _, rec = dx.apply([cmds[100]])
        gc.queue(rec, "no future")
        await gc.drained()
        assert seen[-1] == "no future" and dx.lsn == 101
        os.close(dx._fd)  # the disk goes away under the log
        with pytest.raises(OSError):
            await gc.submit(*cmds[101])
        await gc.drained()

    asyncio.run(main())
    assert len(seen) == 101 and len(failed) == 1 and isinstance(failed[0], OSError)
    re = DurableExchange(tmp_path)
    assert re.lsn == 101 and digest(re.exchange) == digest(replay(cmds[:101]))


def _read_acks(proc, want: int, deadline: float) -> list[dict]:
    acks = []
    while len(acks) < want and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acks.append(json.loads(line))
    return acks


def test_kill9_under_load_loses_no_ack_and_doubles_no_fill(tmp_path):
    """A driver process submits orders in fsynced groups of 16 and prints acks; we SIGKILL it
    after >= 10,000 acknowledged orders (15,000 commands), recover from its directory and
    compare with the acks and with an in-memory replay of the same seeded commands."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(tmp_path), "7", "16", "4000"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        acks = _read_acks(proc, 15_000, time.monotonic() + 120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(acks) == 15_000, f"driver acked only {len(acks)} commands"
    assert proc.returncode == -signal.SIGKILL
    assert sum(1 for a in acks if a["client_order_id"] and a["ok"]) >= 10_000
    dx = DurableExchange(tmp_path)
    ex = dx.exchange
    assert dx.lsn >= acks[-1]["i"]  # every acked command is in the log
    assert digest(ex) == digest(replay(commands(7, dx.lsn)))
    trades = {}
    for a in acks:
        if a["order_id"]:
            o = ex.get_order(a["order_id"])
            assert o is not None and o.fill_count >= a["fill_count"], a
            if a["status"] in ("executed", "canceled"):
                assert o.status == a["status"] or o.status == "canceled", a
        for t in a["trades"]:
            trades[t] = trades.get(t, 0) + 1
    for u, fills in ex.fills.items():
        ids = [f.trade_id for f in fills]
        assert len(ids) == len(set(ids)), f"{u}: a fill is doubled"
    all_fill_trades = {f.trade_id for fs in ex.fills.values() for f in fs}
    assert set(trades) <= all_fill_trades  # every acked fill is present
    coids = [o.client_order_id for o in ex.orders.values() if o.client_order_id]
    assert len(coids) == len(set(coids))
    assert ex.check_invariants() == []


def test_a_failed_log_write_stops_the_exchange(tmp_path):
    """After a failed write the memory is ahead of the log: every later command is refused
    with one message until a restart, which recovers what was durable."""
    import pytest

    cmds = commands(4, 60)
    dx = DurableExchange(tmp_path)
    dx.submit_many(cmds[:50])
    os.close(dx._fd)  # simulate the disk going away under the log
    with pytest.raises(OSError):
        dx.submit(*cmds[50])
    with pytest.raises(RuntimeError, match="restart to recover"):
        dx.submit(*cmds[51])
    re = DurableExchange(tmp_path)
    assert re.lsn == 50 and digest(re.exchange) == digest(replay(cmds[:50]))


def test_a_crash_during_a_snapshot_write_leaves_a_temp_file_that_is_ignored(tmp_path):
    cmds = commands(5, 80)
    dx = DurableExchange(tmp_path)
    dx.submit_many(cmds)
    dx.close()
    (tmp_path / "snapshot-80.tmp").write_bytes(b"\x80\x05half a pickle")
    re = DurableExchange(tmp_path)
    assert re.lsn == 80 and re.snapshot_lsn == 0 and not list(tmp_path.glob("*.tmp"))
    assert digest(re.exchange) == digest(replay(cmds))
