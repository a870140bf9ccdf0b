"""``kalshi-platform backtest``: a strategy on a recording through the exchange core
(issue 14 §6; docs/trading.md).

Imports only typer and the CLI at the top; the trading layer, the exchange core and
matplotlib are imported inside the command. ``trade --venue sim|kalshi`` is not registered
yet: the network venues come with the sim's trading endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from kalshi_platform.tools.cli import _fail, app, console


def _settle_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        ticker, sep, result = item.partition("=")
        if not sep or not ticker or result not in ("yes", "no", "void"):
            raise ValueError(f"--settle must be TICKER=yes|no|void, got {item!r}")
        out[ticker] = result
    return out


def _config(path: Optional[Path]):
    from kalshi_platform.trading.risk_config import (RiskConfig, load_toml,
                                                     risk_config_from_dict)

    if path is None:
        return {}, RiskConfig()
    doc = load_toml(path)
    strategy = doc.get("strategy", {})
    if not isinstance(strategy, dict):
        raise ValueError(f"{path}: [strategy] must be a table")
    return strategy, risk_config_from_dict(doc.get("risk", {}))


@app.command()
def backtest(
    recording: Path = typer.Argument(..., help="Recording (JSON Lines, optionally gzip) to replay."),
    strategy: str = typer.Option(..., "--strategy", help="module:Class or path/to/file.py:Class (a kalshi_platform.trading.Strategy)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Order-entry latency, one way (command to the matching engine, answer back), ms."),
    feed_latency_ms: float = typer.Option(0.0, "--feed-latency-ms", help="Market-data latency (recorded event to the strategy), ms."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML with [strategy] (the strategy's config) and [risk] (pre-trade limits, docs/trading.md)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Directory for report.json, equity.png and tables/{orders,fills,positions,pnl}.parquet."),
    seed: int = typer.Option(0, "--seed", help="Seed of the strategy's ctx.random."),
    settle: List[str] = typer.Option([], "--settle", help="TICKER=yes|no|void: settle this market at the end (repeatable)."),
) -> None:
    """Backtest a strategy: replay RECORDING through the in-process matching engine (recorded
    liquidity as resting orders; our orders queue behind the size already at their level),
    then print fills, PnL, fees, max drawdown and turnover. Ctrl-C cancels all open orders,
    drains, and still prints the summary; SIGUSR1 trips the kill switch (cancel all, halt)."""
    from kalshi_platform.ingestion.recording import RecordingError
    from kalshi_platform.tools.exitcodes import INTERRUPTED
    from kalshi_platform.trading.backtest import BacktestConfig
    from kalshi_platform.trading.risk_config import RiskConfigError
    from kalshi_platform.trading.run import StrategyLoadError, load_strategy, run_backtest

    if latency_ms < 0 or feed_latency_ms < 0:
        _fail("latencies must be >= 0 ms")
    try:
        params, risk = _config(config)
        cls = load_strategy(strategy)
        cfg = BacktestConfig(order_latency_ns=int(latency_ms * 1e6),
                             feed_latency_ns=int(feed_latency_ms * 1e6),
                             settle=_settle_map(settle))
        rep, node = run_backtest(cls(params), recording, config=cfg, risk=risk, seed=seed,
                              name=strategy, kill_signal=True)
    except (RecordingError, RiskConfigError, StrategyLoadError, ValueError) as e:
        _fail(str(e))
        return
    written = []
    if report is not None:
        from kalshi_platform.trading.report import write_report
        from kalshi_platform.trading.tables import write_parquet

        try:
            written = write_report(rep, report)
            written += write_parquet(node, report / "tables", node.venue.now_ns())
        except OSError as e:
            _fail(f"cannot write {report}: {e.strerror or e}")
    _print_summary(rep, written, report)
    if rep["interrupted"]:
        raise typer.Exit(INTERRUPTED)


def _print_summary(rep: dict, written: list, report_dir: Optional[Path]) -> None:
    """The run's summary, one fact a line."""
    pnl = rep["pnl"]
    lines = [
        f"backtest {rep['strategy']} on {rep['recording']}"
        + (" (interrupted: open orders canceled)" if rep["interrupted"] else ""),
        f"frames {rep['frames']:,}, events {rep['events']:,}, {rep['elapsed_s']:.3f} s",
        f"orders {rep['orders']:,} ({', '.join(f'{k} {v}' for k, v in rep['orders_by_status'].items()) or 'none'}), "
        f"fills {rep['fill_count']:,}",
        f"PnL net ${pnl['net']} (realized ${pnl['realized']}, unrealized ${pnl['unrealized']} at the "
        f"mid, ${rep['pnl_liquidation']['unrealized']} at liquidation), fees ${pnl['fees']}",
        f"max drawdown ${rep['max_drawdown']}, volume {pnl['volume']} contracts, "
        f"turnover ${pnl['turnover']}",
        f"risk rejections: {', '.join(f'{k} {v}' for k, v in rep['risk_rejections'].items()) or 'none'}; "
        f"trading state {rep['trading_state']}" + (f" (kill switch: {rep['kill_reason']})"
                                                  if rep["kill_reason"] else ""),
    ]
    if rep.get("settle_unknown"):
        lines.append(f"note: --settle for markets the recording does not have: "
                     f"{', '.join(rep['settle_unknown'])}")
    if report_dir is not None:
        names = ", ".join(str(p) for p in written)
        if not any(str(p).endswith(".png") for p in written):
            names += " (no equity.png: matplotlib is not installed; pip install 'kalshi-platform[plot]')"
        lines.append(f"report: {names}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
