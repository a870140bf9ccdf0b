"""``kalshi-platform backtest`` as a user runs it (issue 14 §6)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from trading_support import TK, Rec, book

from conftest import COCKPIT, REPO_ROOT
from kalshi_platform.trading import RiskConfig, Strategy, cents, contracts
from kalshi_platform.trading.backtest import BacktestConfig
from kalshi_platform.trading.run import run_backtest


def _cli(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", "kalshi_platform", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_backtest_report_json_png_and_tables(tmp_path):
    out = tmp_path / "rep"
    r = _cli("backtest", "--strategy", "examples.taker:Taker", "--latency-ms", "2",
             "--report", str(out), str(COCKPIT))
    assert r.returncode == 0, r.stderr
    assert "fills 4" in r.stdout and "max drawdown $" in r.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["fill_count"] == len(rep["fills"]) == 4 and rep["order_latency_ms"] == 2.0
    assert set(rep) >= {"positions", "pnl", "pnl_liquidation", "pnl_by_event", "max_drawdown",
                        "equity_curve", "risk_rejections"}
    assert rep["pnl"]["fees"] == f"{sum(float(f['fee']) for f in rep['fills']):.8f}"
    pytest.importorskip("matplotlib")
    png = (out / "equity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pq = pytest.importorskip("pyarrow.parquet")
    assert pq.read_table(out / "tables" / "fills.parquet").num_rows == 4
    assert pq.read_table(out / "tables" / "orders.parquet").num_rows == rep["orders"]


@pytest.mark.parametrize("args, msg", [
    (["--strategy", "nope"], "module:Class"),
    (["--strategy", "examples.taker:Nope"], "not a Strategy"),
    (["--strategy", "examples.taker:Taker", "--settle", "X=maybe"], "--settle"),
    (["--strategy", "examples.taker:Taker", "--latency-ms", "-1"], "latencies"),
])
def test_bad_input_is_one_line_exit_2(args, msg):
    r = _cli("backtest", *args, str(COCKPIT))
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_not_a_recording_and_bad_risk_toml(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text("hello\n")
    r = _cli("backtest", "--strategy", "examples.taker:Taker", str(bad))
    assert r.returncode == 2 and "error:" in r.stderr
    toml = tmp_path / "c.toml"
    toml.write_text("[risk]\nmax_pos = 3\n")
    r = _cli("backtest", "--strategy", "examples.taker:Taker", "--config", str(toml),
             str(COCKPIT))
    assert r.returncode == 2 and "unknown risk setting" in r.stderr


class Interrupts(Strategy):
    """Rests two orders, then Ctrl-C arrives (raised from a callback)."""

    def on_bbo(self, bbo) -> None:
        n = getattr(self, "n", 0)
        self.n = n + 1
        if n == 0:
            self.ctx.buy_yes(TK, cents(30), contracts(1))
            self.ctx.buy_no(TK, cents(40), contracts(1))
        elif n == 2:
            raise KeyboardInterrupt


def test_ctrl_c_cancels_all_and_still_reports(tmp_path):
    yes, no = book()
    rec = Rec().snapshot(0, yes, no)
    for i in range(1, 5):
        rec.delta(100 * i, "yes", "0.4000", "1.00")
    rep, node = run_backtest(Interrupts(), rec.write(tmp_path / "r.jsonl"),
                             risk=RiskConfig.unlimited(),
                             config=BacktestConfig(order_latency_ns=10**6))
    assert rep["interrupted"] is True and rep["orders_by_status"] == {"canceled": 2}
    assert node.venue.core.user_orders("strategy", status="resting") == []


def test_ctrl_c_in_the_cli_exits_130_after_the_summary(tmp_path):
    strat = tmp_path / "strat.py"
    strat.write_text("from kalshi_platform.trading import Strategy\n"
                     "class S(Strategy):\n"
                     "    def on_bbo(self, bbo):\n"
                     "        raise KeyboardInterrupt\n")
    r = _cli("backtest", "--strategy", f"{strat}:S", str(COCKPIT))
    assert r.returncode == 130 and "interrupted" in r.stdout
