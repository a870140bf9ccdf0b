"""``kalshi-platform demo``: series → open markets → order books and recent trades, over REST.

Uses only public market-data endpoints (docs/kalshi-api.md §2.5), so it works without keys; when
``KALSHI_API_KEY_ID`` and ``KALSHI_PRIVATE_KEY_PATH`` are both set, requests are signed.
Every failure (unknown series, unreachable host, bad key, server errors after retries) is one
line on stderr and a non-zero exit; requests have a bounded timeout and few retries.
The REST client (httpx), the signer (cryptography) and the settings are imported inside the
command, not at CLI start.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

from kalshi_platform.fixedpoint import price_to_str, size_to_str
from kalshi_platform.tools import exitcodes
from kalshi_platform.tools.cli import _fail, _setup_logging, app, console, err_console
from kalshi_platform.tools.tables import add_num_column, add_text_column, print_table

if TYPE_CHECKING:
    from kalshi_platform.api.auth import Signer
    from kalshi_platform.api.models import Market, Orderbook, Series, Trade
    from kalshi_platform.api.rest import RestClient


def _p(units: int | None) -> str:
    """A price in micro-dollars as text, ``-`` for none."""
    return price_to_str(units) if units is not None else "-"


def _s(units: int | None) -> str:
    """A size in centi-contracts as text, ``-`` for none."""
    return size_to_str(units) if units is not None else "-"


def _utc(ns: int | None) -> str:
    """Epoch nanoseconds as ``YYYY-MM-DD HH:MM:SS`` (UTC), ``-`` for none."""
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


async def fetch_demo(client: RestClient, series: str, *, limit: int, depth: int,
                     trades: int) -> dict[str, Any]:
    """Series, up to ``limit`` open markets, and per market its book (top ``depth`` levels) and
    up to ``trades`` recent trades. A market whose book or trades vanished (404) between the
    listing and the fetch gets the error text instead. Raises :class:`NotFoundError` for an
    unknown series and :class:`RestError` for other failures."""
    import asyncio

    from kalshi_platform.api.rest import NotFoundError

    s = await client.get_series(series)
    markets: list[Market] = []
    async for m in client.iter_markets(series_ticker=series, status="open", limit=limit):
        markets.append(m)
        if len(markets) >= limit:
            break

    async def one(m: Market) -> dict[str, Any]:
        out: dict[str, Any] = {"market": m, "book": None, "trades": [], "error": None}
        try:
            out["book"] = await client.get_orderbook(m.ticker, depth)
            if trades:
                async for t in client.iter_trades(ticker=m.ticker, limit=trades):
                    out["trades"].append(t)
                    if len(out["trades"]) >= trades:
                        break
        except NotFoundError as e:
            out["error"] = str(e)
        return out

    details = await asyncio.gather(*(one(m) for m in markets))
    return {"series": s, "markets": list(details)}


def _series_table(s: Series, base: str, signed: bool) -> Table:
    t = Table(title=f"series {s.ticker}", show_header=False, title_justify="left")
    add_text_column(t, style="bold", no_wrap=True)
    add_text_column(t)
    t.add_row("title", s.title or "-")
    t.add_row("category", s.category or "-")
    t.add_row("frequency", s.frequency or "-")
    t.add_row("fee", f"{s.fee_type or '-'} × {s.fee_multiplier if s.fee_multiplier is not None else '-'}")
    t.add_row("source", f"{base} ({'signed' if signed else 'unsigned'})")
    return t


def _markets_table(rows: list[dict]) -> Table:
    t = Table(title=f"open markets ({len(rows)})", title_justify="left")
    for col in ("ticker", "yes", "YES bid", "YES ask", "last", "volume", "closes (UTC)"):
        (add_text_column if col in ("ticker", "yes", "closes (UTC)") else add_num_column)(t, col)
    for r in rows:
        m: Market = r["market"]
        t.add_row(m.ticker, m.yes_sub_title or "-", _p(m.yes_bid), _p(m.yes_ask),
                  _p(m.last_price), _s(m.volume), _utc(m.close_ns))
    return t


def _book_table(ticker: str, ob: Orderbook, depth: int) -> Table:
    t = Table(title=f"{ticker} order book (top {depth})", title_justify="left",
              caption="bids only; YES ask = 1 − NO bid", caption_justify="left")
    for col in ("YES bid", "size", "NO bid", "size ", "YES ask"):
        add_num_column(t, col)
    yes, no = ob.yes[:depth], ob.no[:depth]
    for i in range(max(len(yes), len(no))):
        y = yes[i] if i < len(yes) else None
        n = no[i] if i < len(no) else None
        t.add_row(_p(y[0]) if y else "", _s(y[1]) if y else "", _p(n[0]) if n else "",
                  _s(n[1]) if n else "", _p(1_000_000 - n[0]) if n else "")
    if not yes and not no:
        t.add_row("(empty)", "", "", "", "")
    return t


def _trades_table(ticker: str, trades: list[Trade]) -> Table:
    t = Table(title=f"{ticker} recent trades", title_justify="left")
    for col in ("time (UTC)", "YES price", "NO price", "count", "taker"):
        (add_text_column if col in ("time (UTC)", "taker") else add_num_column)(t, col)
    for tr in trades:
        t.add_row(_utc(tr.ts_ns), _p(tr.yes_price), _p(tr.no_price), _s(tr.count),
                  tr.taker_side or "-")
    if not trades:
        t.add_row("(no trades)", "", "", "", "")
    return t


@app.command()
def demo(
    series: str = typer.Option(..., "--series", help="Series ticker, e.g. KXHIGHNY."),
    limit: int = typer.Option(5, help="Open markets to show (1-100)."),
    depth: int = typer.Option(5, help="Order-book levels per side (1-100)."),
    trades: int = typer.Option(5, help="Recent trades per market (0-1000)."),
    base_url: Optional[str] = typer.Option(
        None, "--base-url",
        help="REST base URL ending in /trade-api/v2, e.g. the local sim "
             "(default: KALSHI_REST_BASE_URL, else the KALSHI_ENV host)."),
    env: Optional[str] = typer.Option(None, help="prod or demo (default: KALSHI_ENV)."),
    timeout: float = typer.Option(10.0, help="Per-request timeout, seconds."),
    retries: int = typer.Option(2, help="Retries after 429/5xx/connection errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO."),
) -> None:
    """Show a series, its open markets, each market's order book and recent trades (REST).
    Offline, on the bundled capture: `kalshi-platform sim --replay
    data/recordings/cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl --start now --speed 0`,
    then `demo --series KXMLBGAME --base-url http://127.0.0.1:8765/trade-api/v2`."""
    import asyncio

    from kalshi_platform.api.models import ModelError
    from kalshi_platform.api.rest import NotFoundError, RestClient, RestError
    from kalshi_platform.config import get_settings

    _setup_logging(verbose)
    if not series.strip():
        _fail("--series must not be empty")
    if not 1 <= limit <= 100 or not 1 <= depth <= 100 or not 0 <= trades <= 1000:
        _fail("--limit and --depth must be in 1..100, --trades in 0..1000")
    if not 0 < timeout <= 300 or not 0 <= retries <= 10:
        _fail("--timeout must be in (0, 300] seconds and --retries in 0..10")
    if env is not None and env not in ("prod", "demo"):
        _fail(f"--env must be prod or demo, got {env!r}")
    settings = get_settings()
    signer = _signer(settings)
    try:
        client = RestClient.from_settings(
            settings, base_url=base_url or None, env=env or settings.env, signer=signer,
            max_retries=retries, timeout_s=timeout, backoff_base_s=0.25, backoff_cap_s=2.0)
    except ValueError as e:
        _fail(str(e))
        return

    async def go() -> dict[str, Any]:
        async with client:
            return await fetch_demo(client, series.strip(), limit=limit, depth=depth,
                                    trades=trades)

    try:
        data = asyncio.run(go())
    except NotFoundError:
        _fail(f"unknown series {series.strip()!r} at {client.base_url}")
        return
    except RestError as e:
        _fail(str(e), e.exit_code)
        return
    except ModelError as e:
        _fail(f"unexpected response from {client.base_url}: {e}", exitcodes.INTERNAL)
        return
    _print_demo(data, series.strip(), client.base_url, signer is not None, depth, trades)


def _signer(settings: Any) -> Signer | None:
    """A request signer when ``KALSHI_API_KEY_ID`` and ``KALSHI_PRIVATE_KEY_PATH`` are both
    set; ``None`` (with a warning when only one is) otherwise. A bad key exits 2."""
    from kalshi_platform.api.auth import AuthError, Signer

    try:
        if settings.api_key_id and settings.private_key_path:
            return Signer.from_pem_file(settings.api_key_id, settings.private_key_path)
        if settings.api_key_id or settings.private_key_path:
            err_console.print("warning: set both KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH "
                              "to sign requests; continuing unsigned", highlight=False)
    except AuthError as e:
        _fail(str(e))
    return None


def _print_demo(data: dict[str, Any], series: str, base_url: str, signed: bool, depth: int,
                trades: int) -> None:
    """The series, its open markets and each market's book and trades, as tables."""
    print_table(_series_table(data["series"], base_url, signed), console)
    if not data["markets"]:
        console.print(f"no open markets in series {series}")
        return
    print_table(_markets_table(data["markets"]), console)
    for r in data["markets"]:
        m = r["market"]
        if r["error"]:
            console.print(f"{m.ticker}: {r['error']}")
            continue
        print_table(_book_table(m.ticker, r["book"], depth), console)
        if trades:
            print_table(_trades_table(m.ticker, r["trades"]), console)
