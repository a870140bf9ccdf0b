"""``kalshi-platform plot``: one market's day as a PNG (kalshi_platform/historical/plot.py).

Imports only typer and the CLI at the top; pyarrow, duckdb, settings and matplotlib (the
optional ``plot`` extra) are imported inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kalshi_platform.tools.cli import _fail, app, console

#: printed when matplotlib is missing
INSTALL_HINT = "plot needs matplotlib: pip install 'kalshi-platform[plot]'"


@app.command()
def plot(
    ticker: str = typer.Option(..., "--ticker", help="Market ticker."),
    date: str = typer.Option(..., "--date", help="UTC day YYYY-MM-DD."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    store: Optional[Path] = typer.Option(None, "--store", help="Parquet store (written by replay/run) or historical tier (written by eod) root (default: KALSHI_STORE_DIR or ./store)."),
    width: int = typer.Option(1200, help="Image width, pixels."),
    height: int = typer.Option(800, help="Image height, pixels."),
) -> None:
    """One market's day as a PNG: YES bid/ask steps from the bbo table, trades as dots sized
    by count, a volume panel, and periods where the book was not live shaded. Reads the
    de-duplicated rows of the day (the rows `query` shows)."""
    try:
        import matplotlib  # noqa: F401  (the optional `plot` extra)
    except ImportError:
        _fail(INSTALL_HINT)
    from kalshi_platform.config import get_settings
    from kalshi_platform.historical.plot import PlotError, draw_market_day, load_market_day
    from kalshi_platform.historical.query import QueryError
    from kalshi_platform.tools.exitcodes import plain_message

    root = store or get_settings().store_dir
    try:
        md = load_market_day(root, ticker, date)
    except (PlotError, QueryError) as e:
        _fail(plain_message(str(e)))
        return
    except OSError as e:  # e.g. a store directory this user may not read
        _fail(f"cannot read {e.filename or root}: {e.strerror or e}")
        return
    try:
        d = draw_market_day(md, out, width_px=width, height_px=height)
    except PlotError as e:
        _fail(plain_message(str(e)))
        return
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror or e}")
        return
    console.print(f"{d.path}: {ticker} {md.day}, {md.bbo.num_rows:,} BBO rows, "
                  f"{d.trade_points:,} trades, {len(d.stale_spans)} stale period(s), "
                  f"{d.width_px}x{d.height_px} px", highlight=False, soft_wrap=True)
