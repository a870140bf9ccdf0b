"""``kalshi-platform bench backtest``: the output's shape on a small run, never its speed."""

from __future__ import annotations

from kalshi_platform.bench.backtest import TARGET_EVENTS_PER_S, run_backtest_bench


def test_bench_backtest_shape():
    res = run_backtest_bench(frames=2000, copies=2, repeat=1)
    st = res["stages"]
    assert set(st) == {"plant", "backtest", "backtest_every_level"}
    assert st["plant"]["events"] == st["backtest"]["events"] == st["backtest_every_level"]["events"]
    assert res["checks"]["all_ok"] and res["target_events_per_s"] == TARGET_EVENTS_PER_S
    assert st["backtest"]["orders"] > 0
    # the lazy follower sends fewer commands to the core than keeping every level
    assert st["backtest"]["core_commands"] < st["backtest_every_level"]["core_commands"]
