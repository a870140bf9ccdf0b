"""Running a strategy in a backtest: load it, wire venue + node + report (issue 14 §6).

:func:`load_strategy` resolves ``module:Class`` (a dotted module on ``sys.path``, or a
``path/to/file.py``); :func:`run_backtest` runs it on a recording and returns the report
dict (what ``kalshi-platform backtest`` prints and writes). Ctrl-C during the run cancels
every open order at the core, drains the answers and still returns a report
(``"interrupted": true``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path

from kalshi_platform.trading.backtest import BacktestConfig, BacktestVenue
from kalshi_platform.trading.node import TradingNode
from kalshi_platform.trading.report import Recorder, build_report
from kalshi_platform.trading.risk_config import RiskConfig
from kalshi_platform.trading.strategy import Strategy


class StrategyLoadError(ValueError):
    """``module:Class`` could not be resolved to a Strategy subclass (one-line message)."""


def _module(spec: str):
    if spec.endswith(".py") or "/" in spec:
        p = Path(spec)
        if not p.is_file():
            raise StrategyLoadError(f"{spec}: no such file")
        name = f"_strategy_{p.stem}"
        s = importlib.util.spec_from_file_location(name, p)
        mod = importlib.util.module_from_spec(s)
        sys.modules[name] = mod
        s.loader.exec_module(mod)
        return mod
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as ``python -m`` would: examples.* from the cwd
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        raise StrategyLoadError(f"cannot import module {spec!r} ({e.name} not found)") from None


def load_strategy(spec: str) -> type[Strategy]:
    """The Strategy class named by ``module:Class`` or ``file.py:Class``. Raises
    :class:`StrategyLoadError`."""
    mod_name, sep, cls_name = spec.rpartition(":")
    if not sep or not mod_name or not cls_name:
        raise StrategyLoadError(f"--strategy must be module:Class, got {spec!r}")
    cls = getattr(_module(mod_name), cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(f"{spec}: {cls_name} is not a Strategy subclass in {mod_name}")
    return cls


def kill_on_signal(node: TradingNode, signum: int | None = None):
    """Make signal ``signum`` (default SIGUSR1) trip the node's kill switch: cancel all and
    halt (docs/trading.md "Risk"). Returns a function restoring the previous handler. Main
    thread only; a no-op elsewhere or where the signal is missing."""
    import signal

    sig = signum if signum is not None else getattr(signal, "SIGUSR1", None)
    if sig is None:
        return lambda: None
    name = signal.Signals(sig).name
    try:
        old = signal.signal(sig, lambda *_: node.request_kill(f"manual ({name})"))
    except ValueError:  # not the main thread
        return lambda: None
    return lambda: signal.signal(sig, old)


def run_backtest(strategy: Strategy, recording: str | Path, *,
                 config: BacktestConfig | None = None, risk: RiskConfig | None = None,
                 seed: int = 0, name: str = "", kill_signal: bool = False
                 ) -> tuple[dict, TradingNode]:
    """Backtest ``strategy`` on ``recording``; returns ``(report, node)``. ``kill_signal``:
    SIGUSR1 trips the kill switch (the CLI sets it). Raises RecordingError
    (kalshi_platform.ingestion) for a file that is not a recording."""
    cfg = config or BacktestConfig()
    venue = BacktestVenue(recording, cfg)
    recorder = Recorder()
    node = TradingNode(strategy, venue, risk, seed=seed, recorder=recorder)
    restore = kill_on_signal(node) if kill_signal else (lambda: None)
    interrupted = False
    t0 = time.perf_counter()
    node.start()
    try:
        venue.run()
    except KeyboardInterrupt:
        interrupted = True
        node.cancel_all()
        venue.clock.run_until(venue.clock.now + 2 * cfg.order_latency_ns)
    finally:
        restore()
    node.stop()  # on_stop may cancel: let the answers come back
    venue.clock.run_until(venue.clock.now + 2 * cfg.order_latency_ns)
    elapsed = time.perf_counter() - t0
    meta = {"strategy": name or type(strategy).__name__, "recording": str(recording),
            "order_latency_ms": cfg.order_latency_ns / 1e6,
            "feed_latency_ms": cfg.feed_latency_ns / 1e6, "seed": seed,
            "frames": venue.frames, "events": venue.events, "interrupted": interrupted,
            "follower": dict(venue.follower.stats), "settle_unknown": venue.unknown_settle}
    report = build_report(node, recorder, meta)
    report["elapsed_s"] = round(elapsed, 3)  # not compared by the determinism test
    return report, node
