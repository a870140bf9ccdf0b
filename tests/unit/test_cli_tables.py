"""Tables (issue 12 §7 "Tables"): numbers right-aligned, names never cut.

On a pipe (``COLUMNS=80``, as a script sees the output) a table is printed at its natural
width, so a 70-character ticker is on one line, whole; on an 80-column terminal a long ticker
folds inside its cell (every character shown, no ``…``) and numbers stay right-aligned.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from conftest import COCKPIT
from kalshi_platform.tools.cli import _register_optional, app
from kalshi_platform.tools.feed_table import MarketTable
from kalshi_platform.tools.replay import run_replay
from kalshi_platform.tools.tables import print_table

_register_optional()  # every command on ``app``, as the console script has them

LONG = "KXLONGTICKER-" + "ABCDEFGHIJ" * 6 + "-END"  # 77 characters


def _cells(out: str, marker: str) -> list[str]:
    """The cells of the first table line containing ``marker`` (box characters split)."""
    line = next(ln for ln in out.splitlines() if marker in ln)
    return [c for c in line.replace("┃", "│").split("│")[1:-1]]


def test_query_on_a_pipe_prints_long_ticker_whole_and_numbers_right_aligned(tmp_path: Path):
    store = tmp_path / "store"
    run_replay(COCKPIT, store=store, sinks=["parquet"])
    sql = (f"SELECT '{LONG}' AS ticker, 7 AS n, 'a note long enough to push the row past "
           f"eighty columns' AS note UNION ALL SELECT ticker, count(*) AS n, 'x' FROM bbo "
           f"GROUP BY ticker ORDER BY n")
    r = CliRunner().invoke(app, ["query", sql, "--hdb", str(store)],
                           env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert "…" not in r.output
    long_cells = _cells(r.output, LONG)          # the whole ticker on one line
    assert long_cells[0].strip() == LONG
    busiest = _cells(r.output, "KXMLBGAME-26AUG071910ATHBOS-BOS")  # 20 BBO rows (data)
    assert busiest[1].strip() == "20"
    # right-aligned: both counts end at the column's right edge, one space before the border
    for cell, want in ((long_cells[1], "7"), (busiest[1], "20")):
        assert cell.endswith(want + " ") and not cell[: -len(want) - 1].strip(), (cell, want)
    assert long_cells[1] == "  7 "  # under "20": padded on the left, i.e. right-aligned
    assert max(len(ln) for ln in r.output.splitlines()) > 80  # wider than the console


def test_replay_summary_on_a_pipe_keeps_long_values_whole(tmp_path: Path):
    store = tmp_path / ("s" * 60) / "store"
    r = CliRunner().invoke(app, ["replay", str(COCKPIT), "--store", str(store)],
                           env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    written = _cells(r.output, "rows written")[1].strip()
    assert written == (f"bbo 45, orderbook_deltas 245, orderbook_snapshots 1,114 "
                       f"(3 files in {store})")


def _terminal(width: int = 80) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, force_terminal=True, color_system=None), buf


def _folded(out: str, col: int) -> str:
    """Column ``col`` of a table's body rows joined: a folded cell read back whole."""
    body = out.split("╇")[-1] if "╇" in out else out
    rows = [ln.split("│") for ln in body.splitlines() if ln.startswith("│")]
    return "".join(r[col + 1].strip() for r in rows)


def test_query_on_an_80_column_terminal_folds_the_ticker_and_keeps_numbers(tmp_path: Path):
    store = tmp_path / "store"
    run_replay(COCKPIT, store=store, sinks=["parquet"])
    sql = (f"SELECT '{LONG}' AS ticker, 1234567 AS n, 0.42 AS yes_bid, 'a note long enough "
           f"to push the row well past eighty columns on its own' AS note")
    # TTY_COMPATIBLE=1: rich treats the captured output as a terminal (what a user sees)
    r = CliRunner().invoke(app, ["query", sql, "--hdb", str(store)],
                           env={"COLUMNS": "80", "NO_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert r.exit_code == 0, r.output
    table = r.output.split("1 row(s)")[0]
    assert "…" not in table
    assert max(len(ln) for ln in table.splitlines()) <= 80
    assert _folded(table, 0) == LONG            # every character, over several lines
    first = next(ln for ln in table.splitlines() if ln.startswith("│ KX")).split("│")
    for cell, want in ((first[2], "1234567"), (first[3], "0.42")):  # whole, right-aligned
        assert cell.endswith(want + " ") and not cell[: -len(want) - 1].strip(), (cell, want)


def test_query_shows_every_column_of_a_result_with_repeated_names(tmp_path: Path):
    """``SELECT 1 AS a, 2 AS a``: two columns named ``a``, each with its own value (rows were
    built as dicts, so the second overwrote the first and one cell stayed empty)."""
    store = tmp_path / "store"
    run_replay(COCKPIT, store=store, sinks=["parquet"])
    r = CliRunner().invoke(app, ["query", "SELECT 1 AS a, 2 AS a, 'x' AS b, 3 AS a",
                                 "--hdb", str(store)], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert [c.strip() for c in _cells(r.output, " x ")] == ["1", "2", "x", "3"]


def test_subscribe_table_on_an_80_column_terminal_keeps_a_long_ticker_whole():
    from kalshi_platform.ticker_plant.events import BBO

    table = MarketTable()

    class _Item:
        def __init__(self, ev):
            self.seq, self.feed, self.event = 1, "bbo", ev

    class _Sub:
        gaps = 0

    # 0.42 / 12345 contracts bid, 0.45 / 7 asked (micro-dollars, centi-contracts)
    table.update(_Item(BBO(LONG, 1, 420_000, 1_234_500, 450_000, 700, 1, None, "live")), _Sub())
    for width in (80, 100):
        con, buf = _terminal(width)
        print_table(table.render(), con)
        out = buf.getvalue()
        assert "…" not in out
        assert max(len(ln) for ln in out.splitlines()) <= width
        assert _folded(out, 0) == LONG  # folded over several lines, every character there
    # at 100 columns the numbers keep their width: whole and right-aligned
    first = next(ln for ln in out.splitlines() if ln.startswith("│ KX")).split("│")
    for cell, want in ((first[3], "0.4200"), (first[4], "12345.00"), (first[6], "7.00")):
        assert cell.strip() == want and cell.endswith(want + " "), (cell, want)
    assert first[6].startswith("  ")  # "7.00" under a wider "ask size" header


def test_subscribe_table_clears_the_top_of_a_book_a_snapshot_says_is_not_live():
    """A snapshot (late join, gap repair) whose book is stale replaces the live top shown
    before: no prices stay on screen for a book the publisher no longer trusts."""
    from kalshi_platform.feed.protocol import BookState
    from kalshi_platform.ticker_plant.events import BBO

    class _Item:
        def __init__(self, feed, ev):
            self.seq, self.feed, self.event = 1, feed, ev

    class _Sub:
        gaps = 0

    table = MarketTable()
    live = BBO("T", 1, 420_000, 100, 450_000, 100, 1, None, "live")
    table.update(_Item("bbo", live), _Sub())
    assert table.rows["T"]["bbo"] is live
    table.update(_Item("snapshot", [BookState("T", "stale", 1, None, None, None)]), _Sub())
    assert table.rows["T"]["state"] == "stale" and table.rows["T"]["bbo"] is None
    table.update(_Item("snapshot", [BookState("T", "live", 1, None, None, live)]), _Sub())
    assert table.rows["T"]["bbo"] is live


def test_print_table_on_a_pipe_is_unchanged_when_it_fits():
    from rich.table import Table

    from kalshi_platform.tools.tables import add_num_column, add_text_column

    t = Table()
    add_text_column(t, "ticker")
    add_num_column(t, "n")
    t.add_row("A", "1")
    t.add_row("B", "1,000")
    buf = io.StringIO()
    print_table(t, Console(file=buf, width=80, color_system=None))
    lines = buf.getvalue().splitlines()
    assert lines[3] == "│ A      │     1 │"
    assert lines[4] == "│ B      │ 1,000 │"
