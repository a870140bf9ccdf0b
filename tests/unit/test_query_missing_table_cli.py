"""``query`` on a table the store does not have names the tables it has, instead of DuckDB's
catalog error (issue 12 §7). Through the CLI (typer's CliRunner) over a store replayed from
the bundled recording."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import COCKPIT


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from kalshi_platform.tools.replay import run_replay

    root = tmp_path_factory.mktemp("qmiss") / "store"
    run_replay(COCKPIT, store=root, sinks=["parquet"])
    return root


def _query(sql: str, root) -> object:
    from kalshi_platform.tools.cli import _register_optional, app

    _register_optional()
    return CliRunner().invoke(app, ["query", sql, "--hdb", str(root)],
                              env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_missing_table_lists_the_stores_tables(store):
    r = _query("SELECT count(*) FROM trade", store)
    assert r.exit_code == 2, r.output
    out = r.output.strip()
    assert out.count("\n") == 0, out
    assert "Catalog Error" not in out
    assert out.startswith("error: no table trade in ")
    have = sorted(d.name for d in store.iterdir() if d.is_dir() and not d.name.startswith("_"))
    assert have and f"it has: {', '.join(have)}" in out


def test_other_sql_errors_keep_duckdbs_message(store):
    r = _query("SELECT nope_col FROM bbo", store)
    assert r.exit_code == 2
    assert "nope_col" in r.output and "it has:" not in r.output


def test_existing_table_still_works(store):
    r = _query("SELECT count(*) AS n FROM bbo", store)
    assert r.exit_code == 0, r.output
