"""The backtest report: fills, positions, PnL over time, max drawdown, fees, turnover
(issue 14 §6; docs/trading.md "Report").

:class:`Recorder` samples the portfolio (net PnL at the mid, realized, unrealized, fees) at
every fill and, for a portfolio that holds something, at most once per ``sample_ns`` of venue
time on BBO rows. :func:`build_report` turns a finished node into a JSON-ready dict: money
as dollar strings (8 decimals, exact), prices as dollar strings, counts as contract strings,
times as UTC ns. :func:`write_report` writes ``report.json`` and, when matplotlib is
installed (the ``plot`` extra), ``equity.png``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from kalshi_platform.fixedpoint import price_to_str, size_to_str

if TYPE_CHECKING:  # pragma: no cover
    from kalshi_platform.trading.model import Fill
    from kalshi_platform.trading.node import TradingNode


def money_str(units: int) -> str:
    """Money (1e-8 dollars) → an exact dollar string (``150000000`` → ``"1.50000000"``)."""
    return f"{Decimal(units).scaleb(-8):.8f}"


class Recorder:
    """Samples ``(ts_ns, net, realized, unrealized, fees)`` in money units."""

    def __init__(self, sample_ns: int = 10**9) -> None:
        self.sample_ns = sample_ns
        self.curve: list[tuple[int, int, int, int, int]] = []
        self._last = None

    def _sample(self, node: "TradingNode", ts: int) -> None:
        t = node.pnl("mid")
        self.curve.append((ts, t["net"], t["realized"], t["unrealized"], t["fees"]))
        self._last = ts

    def on_fill(self, node: "TradingNode", fill: "Fill") -> None:
        """Sample at every fill."""
        self._sample(node, fill.ts_ns)

    def on_market(self, node: "TradingNode", ts: int) -> None:
        """Sample on a BBO row when holding something, at most once per ``sample_ns``."""
        if self._last is not None and ts - self._last < self.sample_ns:
            return
        positions = node.portfolio.positions
        if positions and any(p.pos for p in positions.values()):
            self._sample(node, ts)


def max_drawdown(curve: list[tuple]) -> int:
    """Largest fall of net PnL from a running peak (money; peak starts at 0)."""
    peak, worst = 0, 0
    for _, net, *_ in curve:
        peak = max(peak, net)
        worst = max(worst, peak - net)
    return worst


def _fill_row(f: "Fill", cid: str | None) -> dict:
    return {"ts_ns": f.ts_ns, "fill_id": f.fill_id, "client_order_id": cid,
            "ticker": f.ticker, "side": f.side.value, "action": f.action.value,
            "count": size_to_str(f.count), "yes_price": price_to_str(f.yes_price),
            "is_taker": f.is_taker, "fee": money_str(f.fee)}


def _totals_json(t: dict) -> dict:
    return {k: (size_to_str(v) if k == "volume" else money_str(v)) for k, v in t.items()}


def build_report(node: "TradingNode", recorder: Recorder, meta: dict) -> dict:
    """The report dict (see the module docstring). ``meta``: run facts (recording, latency,
    strategy, frames, events...), copied in as they are."""
    tops = node.tops()
    oms = node.oms
    fills = [_fill_row(f, (oms.by_venue(f.venue_order_id) or _NoOrder).client_order_id)
             for f in node.fills]
    positions = {}
    for t, p in sorted(node.portfolio.positions.items()):
        bid, ask = tops.get(t, (None, None))
        positions[t] = {
            "event": p.event, "position": size_to_str(p.pos), "cost": money_str(p.cost),
            "realized": money_str(p.realized),
            "unrealized_mid": money_str(p.unrealized(bid, ask, "mid")),
            "unrealized_liquidation": money_str(p.unrealized(bid, ask, "liquidation")),
            "fees": money_str(p.fees), "settled": money_str(p.settled), "result": p.result,
            "volume": size_to_str(p.volume), "turnover": money_str(p.turnover),
            "yes_bid": price_to_str(bid), "yes_ask": price_to_str(ask)}
    by_event = {e: {k: (size_to_str(v) if k == "pos" else money_str(v)) for k, v in d.items()}
                for e, d in sorted(node.portfolio.by_event(tops).items())}
    statuses: dict[str, int] = {}
    for o in oms.all_orders():
        statuses[o.status.value] = statuses.get(o.status.value, 0) + 1
    return {
        **meta,
        "orders": len(oms.orders), "orders_by_status": dict(sorted(statuses.items())),
        "fills": fills, "fill_count": len(fills),
        "positions": positions, "pnl_by_event": by_event,
        "pnl": _totals_json(node.pnl("mid")),
        "pnl_liquidation": _totals_json(node.pnl("liquidation")),
        "max_drawdown": money_str(max_drawdown(recorder.curve)),
        "equity_curve": [[ts, money_str(n), money_str(r), money_str(u), money_str(f)]
                         for ts, n, r, u, f in recorder.curve],
        "risk_rejections": dict(sorted(node.risk.counters.items())),
        "rejections": node.rejections,
        "trading_state": node.risk.state.value, "kill_reason": node.kill.reason,
        "reconcile_notes": node.reconcile_notes,
    }


class _NoOrder:
    client_order_id = None


def write_report(report: dict, out_dir: str | Path) -> list[Path]:
    """Write ``report.json`` (and ``equity.png`` when matplotlib is there) into ``out_dir``;
    returns the paths written. Raises OSError when the directory cannot be written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    written = [path]
    png = plot_equity(report, out / "equity.png")
    if png is not None:
        written.append(png)
    return written


def plot_equity(report: dict, path: Path) -> Path | None:
    """Equity curve PNG (net and realized PnL, dollars, over recording time); None when
    matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    curve = report["equity_curve"]
    t0 = curve[0][0] if curve else 0
    xs = [(c[0] - t0) / 1e9 for c in curve]
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    ax.step(xs, [float(c[1]) for c in curve], where="post", label="net (mid)")
    ax.step(xs, [float(c[2]) for c in curve], where="post", label="realized", alpha=0.7)
    ax.set_xlabel("seconds since the first sample")
    ax.set_ylabel("PnL ($)")
    ax.set_title(f"{report.get('strategy', '')} on {Path(report.get('recording', '')).name}: "
                 f"max drawdown ${float(report['max_drawdown']):.2f}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
