"""``kalshi-platform db init|status``: the QuestDB hot tier's schema and health (PG wire).

The QuestDB client (pyarrow) and the settings are imported inside the commands, so registering
them costs nothing at CLI start.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.table import Table as RichTable

from kalshi_platform.tools.cli import _fail, app, console
from kalshi_platform.tools.tables import add_num_column, add_text_column, print_table

if TYPE_CHECKING:
    from kalshi_platform.storage.questdb_hdb import QuestDBClient

db_app = typer.Typer(help="QuestDB hot tier: create the tables, show their state.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


def _client(host: str | None, port: int | None) -> QuestDBClient:
    """A QuestDB PG-wire client from the settings, ``host``/``port`` overriding them."""
    from kalshi_platform.config import get_settings
    from kalshi_platform.storage.questdb_hdb import QuestDBClient

    return QuestDBClient(get_settings(), host=host, port=port)


@db_app.command("init")
def db_init(
    host: str = typer.Option(None, help="PG wire host (default: KALSHI_QUESTDB_PG_HOST or KALSHI_QUESTDB_HOST)."),
    port: int = typer.Option(None, help="PG wire port (default: KALSHI_QUESTDB_PG_PORT = 8812)."),
    print_ddl: bool = typer.Option(False, "--print-ddl", help="Print the DDL instead of running it."),
    wait: float = typer.Option(0.0, help="Seconds to keep retrying while QuestDB is not up yet "
                                         "(compose starts the plant and QuestDB together)."),
) -> None:
    """Create every platform table in QuestDB (idempotent: CREATE TABLE IF NOT EXISTS, and the
    dedup keys re-asserted on existing tables)."""
    if print_ddl:
        from kalshi_platform.storage.schema import TABLES

        for t in TABLES.values():
            print(t.questdb_ddl() + "\n")
        return
    import time

    from kalshi_platform.storage.questdb_hdb import HDBError

    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        try:
            with _client(host, port) as c:
                created = c.init_schema()
            break
        except HDBError as e:
            if time.monotonic() >= deadline or not str(e).startswith("cannot connect"):
                _fail(str(e))
                return
            time.sleep(1.0)  # waiting for a server to come up, not synchronising a test
    from kalshi_platform.storage.schema import TABLES

    console.print(f"{len(TABLES)} tables ready; created: {', '.join(created) or 'none (all existed)'}")


@db_app.command("status")
def db_status(
    host: str = typer.Option(None, help="PG wire host."),
    port: int = typer.Option(None, help="PG wire port."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Tables, row counts, day partitions and WAL lag (pending transactions) in QuestDB."""
    from kalshi_platform.storage.questdb_hdb import HDBError

    try:
        with _client(host, port) as c:
            rows = c.status()
    except HDBError as e:
        _fail(str(e))
        return
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    t = RichTable(title="QuestDB hot tier")
    for col in ("table", "rows", "partitions", "first", "last", "WAL lag (txns)", "suspended"):
        (add_num_column if col in ("rows", "partitions", "WAL lag (txns)") else
         add_text_column)(t, col)
    for r in rows:
        if not r["exists"]:
            t.add_row(r["table"], "[dim]missing (run `kalshi-platform db init`)[/]", "", "", "", "", "")
            continue
        t.add_row(r["table"], f"{r['rows']:,}", str(r["partitions"]), r["first"] or "-",
                  r["last"] or "-", "-" if r["wal_lag_txns"] is None else str(r["wal_lag_txns"]),
                  "yes" if r["suspended"] else "no")
    print_table(t, console)
