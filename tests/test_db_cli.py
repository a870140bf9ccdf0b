"""`kalshi-platform db init|status`: DDL printing and one-line errors without a server."""

from __future__ import annotations

from typer.testing import CliRunner

from kalshi_platform.storage.schema import TABLES
from kalshi_platform.tools.cli import _register_optional, app

_register_optional()


def test_print_ddl_lists_every_table():
    r = CliRunner().invoke(app, ["db", "init", "--print-ddl"])
    assert r.exit_code == 0
    assert r.output.count("CREATE TABLE IF NOT EXISTS") == len(TABLES)
    assert r.output.count("PARTITION BY DAY WAL DEDUP UPSERT KEYS(") == len(TABLES)


def test_unreachable_questdb_is_one_line_and_exit_2():
    for cmd in (["db", "status", "--port", "1"], ["db", "init", "--port", "1"]):
        r = CliRunner().invoke(app, cmd, env={"KALSHI_QUESTDB_HOST": "127.0.0.1"})
        assert r.exit_code == 2, r.output
        assert "cannot connect to QuestDB PG wire at 127.0.0.1:1" in r.output
        assert "Traceback" not in r.output
