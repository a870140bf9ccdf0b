"""Exchange-side commands: ``sim-admin`` (close, determine, settle a market of a running
``sim --exchange``; docs/exchange.md "Trading API on the sim") and the sim's trading options
(:func:`attach_sim_exchange`, used by ``sim``). ``fix-client`` lives in tools/fix_client.py
(imported below when present).

Start-up stays cheap: httpx and the sim are imported inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from kalshi_platform.tools import exitcodes
from kalshi_platform.tools.cli import _fail, app, console

try:  # H11's FIX client command (a separate module; absent on branches without it)
    import kalshi_platform.tools.fix_client  # noqa: F401
except ModuleNotFoundError as _e:  # pragma: no cover - only when the module is missing
    if _e.name != "kalshi_platform.tools.fix_client":
        raise

admin = typer.Typer(name="sim-admin", no_args_is_help=True, add_completion=False,
                    help="Admin of a running `sim --exchange`: list, add, close, determine "
                         "and settle markets, deposit (its /admin REST).")
app.add_typer(admin, name="sim-admin")

_URL = typer.Option("http://127.0.0.1:8765/trade-api/v2", "--base-url",
                    help="The sim's REST base URL (printed by `sim` as 'sim: REST ...').")


def attach_sim_exchange(server: Any, users: Optional[Path], starting_balance: int,
                        wal: Optional[Path], liquidity: bool,
                        fail: Callable[[str], None]) -> Any:
    """Make ``server`` (a SimServer, not started) an exchange from the ``sim`` options;
    bad options are one line through ``fail`` (exit 2)."""
    from kalshi_platform.sim.trading import attach_trading, load_users

    if starting_balance < 0:
        fail("--starting-balance must be >= 0 cents")
    try:
        specs = load_users(users) if users is not None else []
        return attach_trading(server, wal_dir=wal, starting_balance=starting_balance,
                              users=specs, liquidity=liquidity)
    except (ValueError, OSError) as e:
        fail(str(e))


def _call(base_url: str, method: str, path: str, body: dict | None = None) -> dict:
    """One /admin request; prints the JSON answer; HTTP errors and an unreachable sim are
    one line, exit 2."""
    import httpx

    url = base_url.rstrip("/") + "/admin" + path
    try:
        r = httpx.request(method, url, json=body, timeout=10)
    except httpx.HTTPError as e:
        _fail(f"cannot reach the sim at {base_url}: {e}", exitcodes.USAGE)
    try:
        data = r.json()
    except ValueError:
        data = {}
    if r.status_code >= 400:
        msg = data.get("error", {}).get("message") if isinstance(data, dict) else None
        _fail(f"{method} {path}: HTTP {r.status_code}: {msg or r.text[:200]}", exitcodes.USAGE)
    return data


def _show(data: dict) -> None:
    import json

    console.print_json(json.dumps(data))


@admin.command("markets")
def admin_markets(base_url: str = _URL) -> None:
    """List the exchange's markets with status and result."""
    _show(_call(base_url, "GET", "/markets"))


@admin.command("add")
def admin_add(ticker: str = typer.Argument(..., help="Market ticker."), base_url: str = _URL) -> None:
    """List a new market (cent ticks)."""
    _show(_call(base_url, "POST", "/markets", {"ticker": ticker}))


@admin.command("close")
def admin_close(ticker: str = typer.Argument(..., help="Market ticker."), base_url: str = _URL) -> None:
    """Close a market: its resting orders are canceled, new ones refused."""
    _show(_call(base_url, "POST", f"/markets/{ticker}/close"))


@admin.command("determine")
def admin_determine(ticker: str = typer.Argument(..., help="Market ticker."),
                    result: str = typer.Argument(..., help="yes, no or void."),
                    base_url: str = _URL) -> None:
    """Determine a closed market's result."""
    if result not in ("yes", "no", "void"):
        _fail("result must be yes, no or void")
    _show(_call(base_url, "POST", f"/markets/{ticker}/determine", {"result": result}))


@admin.command("settle")
def admin_settle(ticker: str = typer.Argument(..., help="Market ticker."), base_url: str = _URL) -> None:
    """Settle a determined market: $1 per winning contract (void returns cost)."""
    _show(_call(base_url, "POST", f"/markets/{ticker}/settle"))


@admin.command("deposit")
def admin_deposit(user_id: str = typer.Argument(..., help="User = API key id."),
                  cents: int = typer.Argument(..., help="Amount in cents (negative withdraws)."),
                  base_url: str = _URL) -> None:
    """Credit (or debit) a user's balance."""
    _show(_call(base_url, "POST", "/deposit", {"user_id": user_id, "amount": cents}))
