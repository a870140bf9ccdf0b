"""``kalshi-platform backtest`` (a strategy on a recording through the exchange core) and
``kalshi-platform trade`` (paper on the sim, live on Kalshi) (issue 14 §6; docs/trading.md).

Imports only typer and the CLI at the top; the trading layer, the exchange core, httpx and
matplotlib are imported inside the commands.
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
    config: Optional[Path] = typer.Option(None, "--config", help="TOML with \\[strategy] (the strategy's config) and \\[risk] (pre-trade limits, docs/trading.md)."),
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


def _counts(counts: dict) -> str:
    """``{"filled": 2, "canceled": 1}`` → ``"filled 2, canceled 1"`` (``"none"`` when empty)."""
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _orders_line(rep: dict) -> str:
    """The summary's orders line of a backtest or trade report."""
    return (f"orders {rep['orders']:,} ({_counts(rep['orders_by_status'])}), "
            f"fills {rep['fill_count']:,}")


def _print_summary(rep: dict, written: list, report_dir: Optional[Path]) -> None:
    """The run's summary, one fact a line."""
    pnl = rep["pnl"]
    lines = [
        f"backtest {rep['strategy']} on {rep['recording']}"
        + (" (interrupted: open orders canceled)" if rep["interrupted"] else ""),
        f"frames {rep['frames']:,}, events {rep['events']:,}, {rep['elapsed_s']:.3f} s",
        _orders_line(rep),
        f"PnL net ${pnl['net']} (realized ${pnl['realized']}, unrealized ${pnl['unrealized']} at the "
        f"mid, ${rep['pnl_liquidation']['unrealized']} at liquidation), fees ${pnl['fees']}",
        f"max drawdown ${rep['max_drawdown']}, volume {pnl['volume']} contracts, "
        f"turnover ${pnl['turnover']}",
        f"risk rejections: {_counts(rep['risk_rejections'])}; "
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


@app.command()
def trade(
    strategy: str = typer.Option(..., "--strategy", help="module:Class or path/to/file.py:Class (a kalshi_platform.trading.Strategy)."),
    venue: str = typer.Option("sim", "--venue", help="sim (the local exchange simulator: paper) or kalshi (demo unless --env prod)."),
    markets: List[str] = typer.Option([], "--markets", help="Tickers to trade (repeatable or comma-separated)."),
    event: Optional[str] = typer.Option(None, "--event", help="Trade every open market of this event."),
    series: Optional[str] = typer.Option(None, "--series", help="Trade every open market of this series."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML with \\[strategy] and \\[risk] (docs/trading.md)."),
    env: str = typer.Option("demo", "--env", help="Kalshi environment: demo (default) or prod (needs --i-understand-this-is-real-money)."),
    real_money: bool = typer.Option(False, "--i-understand-this-is-real-money", help="Required with --venue kalshi --env prod."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="REST base URL (default: the sim on 127.0.0.1:8765, or Kalshi's for --env)."),
    ws_url: Optional[str] = typer.Option(None, "--ws-url", help="WS URL (default: derived from --base-url)."),
    key_id: Optional[str] = typer.Option(None, "--key-id", envvar="KALSHI_API_KEY_ID", help="API key id (the sim without --users: any name, default 'paper')."),
    private_key: Optional[Path] = typer.Option(None, "--private-key", help="PEM private key (default KALSHI_PRIVATE_KEY_PATH; the sim without keys: a fresh key)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the strategy's ctx.random."),
    timeout_s: float = typer.Option(5.0, "--timeout", help="Seconds before an order command's outcome is 'unknown' (reconciled)."),
    duration_s: float = typer.Option(0.0, "--duration", help="Stop after this many seconds (0 = until Ctrl-C)."),
    prefix: str = typer.Option("kp", "--order-prefix", help="client_order_id prefix: a restarted run with the same prefix takes its orders back."),
    store: Optional[Path] = typer.Option(None, "--store", help="At the end, write the orders, fills, positions and pnl tables into this Parquet store (the market-data store's layout)."),
) -> None:
    """Run a strategy against the sim (paper) or Kalshi (live): signed REST orders, books
    from the public WS, fills and order updates from the private WS, reconciliation on start
    and every reconnect. A status line (positions, open orders, PnL, risk state) on stderr;
    Ctrl-C cancels every open order, waits for the answers and prints a summary (exit 130);
    SIGUSR1 trips the kill switch."""
    import sys

    from kalshi_platform.tools.exitcodes import INTERRUPTED
    from kalshi_platform.trading.live import LiveConfigError, LiveRun, endpoints, resolve_markets
    from kalshi_platform.trading.risk_config import RiskConfigError
    from kalshi_platform.trading.run import StrategyLoadError, kill_on_signal, load_strategy
    from kalshi_platform.trading.venue_rest import RestVenueConfig

    if timeout_s <= 0 or duration_s < 0:
        _fail("--timeout must be > 0 and --duration >= 0")
    try:
        params, risk = _config(config)
        cls = load_strategy(strategy)
        rest, ws = endpoints(venue, env, real_money, base_url, ws_url)
        signer = _signer(venue, key_id, private_key)
        tickers = resolve_markets(rest, [m for x in markets for m in x.split(",") if m],
                                  event, series, venue)
    except (RiskConfigError, StrategyLoadError, LiveConfigError, ValueError, ConnectionError,
            OSError) as e:
        _fail(str(e))
        return
    cfg = RestVenueConfig(rest, ws, signer, tuple(tickers), timeout_s=timeout_s,
                          name=venue)
    run = LiveRun(cls(params), cfg, risk, seed=seed,
                  status=sys.stderr if sys.stderr.isatty() else None, prefix=prefix)
    if duration_s:
        run.venue.call_at(run.venue.now_ns() + int(duration_s * 1e9), run.venue.stop)
    restore = kill_on_signal(run.node)
    try:
        rep = run.run()
    finally:
        restore()
    _print_live_summary(rep, venue, rest)
    if store is not None:
        _write_store(run.node, store, prefix)
    if rep["interrupted"]:
        raise typer.Exit(INTERRUPTED)


def _write_store(node, root: Path, prefix: str) -> None:
    """The run's trading tables into the Parquet store at ``root`` (docs/trading.md "Tables")."""
    import time

    from kalshi_platform.trading.tables import records, register_storage_tables

    register_storage_tables()
    from kalshi_platform.storage.parquet_store import ParquetStore, StoreError

    try:
        st = ParquetStore(root, f"trade-{prefix}-{time.time_ns() // 10**9}")
        for r in records(node, time.time_ns()):
            st.publish(r)
        st.close()
    except (StoreError, OSError) as e:
        _fail(f"cannot write the store {root}: {e}")
    console.print(f"tables: orders, fills, positions, pnl written to {root}", highlight=False,
                  markup=False)


def _signer(venue: str, key_id: Optional[str], private_key: Optional[Path]):
    from kalshi_platform.api.auth import AuthError, Signer

    if private_key is None and venue == "sim":
        from cryptography.hazmat.primitives.asymmetric import ed25519

        return Signer(key_id or "paper", ed25519.Ed25519PrivateKey.generate())
    if not key_id:
        raise ValueError("--key-id (or KALSHI_API_KEY_ID) is required with a private key")
    try:
        return Signer.from_pem_file(key_id, private_key)
    except AuthError as e:
        raise ValueError(str(e)) from None


def _print_live_summary(rep: dict, venue: str, rest: str) -> None:
    pnl = rep["pnl"]
    lines = [
        f"trade {rep['strategy']} on {venue} ({rest}), {rep['markets']} markets"
        + (" (interrupted: open orders canceled)" if rep["interrupted"] else ""),
        f"events {rep['events']:,}, {rep['elapsed_s']:.1f} s, reconnects {rep['reconnects']}",
        _orders_line(rep),
        f"PnL net ${pnl['net']} (realized ${pnl['realized']}, unrealized ${pnl['unrealized']} at the "
        f"mid), fees ${pnl['fees']}, volume {pnl['volume']} contracts",
        f"risk rejections: {_counts(rep['risk_rejections'])}; "
        f"trading state {rep['trading_state']}" + (f" (kill switch: {rep['kill_reason']})"
                                                  if rep["kill_reason"] else ""),
    ]
    lines += [f"reconcile: {n}" for n in rep["reconcile_notes"]]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
