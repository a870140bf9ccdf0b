"""The README's offline recipes do what it says (issue 12 §7 "Recipes that do nothing
offline"): the commands are read from README.md itself, run on the bundled real recordings, and
checked against a direct replay (the oracle).

* "Offline": ``sim ... --start now --speed 0`` then ``demo --series KXMLBGAME --base-url ...``
  shows the KXMLBGAME markets with the capture's final bid/ask.
* "Historical tier": the ``--date`` of every offline ``eod`` is a day the store built by the
  README's replays holds, and the recipe migrates rows for each.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import sys
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from conftest import COCKPIT, REPO_ROOT, wait_until
from sim_support import start_sim_process
from kalshi_platform.tools.cli import _register_optional, app
from kalshi_platform.tools.replay import run_replay

_register_optional()
CLI = [sys.executable, "-m", "kalshi_platform"]
README = (REPO_ROOT / "README.md").read_text()
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TTY_COMPATIBLE": None}


def _section(title: str) -> str:
    """The README section under ``## title`` (up to the next ``## ``)."""
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 3)
    return README[start:end if end > 0 else None]


def _commands(text: str, verb: str) -> list[list[str]]:
    """Every ``kalshi-platform <verb> ...`` line of the code blocks in ``text`` (with ``\\``
    continuations joined), as argv lists without the program name, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    out, pending = [], ""
    for ln in lines:
        pending = f"{pending}\n{ln}" if pending else ln  # a quoted SQL spans lines
        try:
            argv = shlex.split(pending, comments=True)
        except ValueError:  # no closing quotation yet
            continue
        pending = ""
        if argv[:2] == ["kalshi-platform", verb]:
            out.append(argv[1:])
    return out


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_readme_demo_recipe_shows_the_captures_final_books(tmp_path: Path):
    offline = _section("Offline")
    sim = next(c for c in _commands(offline, "sim") if "--start" in c)
    demo = next(c for c in _commands(offline, "demo"))
    assert _option(sim, "--start") == "now" and _option(sim, "--speed") == "0"
    assert _option(sim, "--replay") == str(COCKPIT.relative_to(REPO_ROOT))
    final = run_replay(COCKPIT, store=tmp_path / "s", sinks=[])["markets"]  # the oracle
    want = {t: (m["yes_bid"], m["yes_ask"]) for t, m in final.items() if "KXMLBGAME" in t}
    assert len(want) == 11  # data/PROVENANCE.md: 11 KXMLBGAME + 1 KXWNBAGAME market

    extra = list(sim[1:])  # the README's options but --replay (given) and --port (a free one)
    for name in ("--replay", "--port"):
        i = extra.index(name)
        del extra[i:i + 2]
    p, _ws, rest = start_sim_process(CLI, REPO_ROOT / _option(sim, "--replay"), REPO_ROOT,
                                     *extra)
    try:
        port = _option(demo, "--base-url").split(":")[2].split("/")[0]
        argv = [a.replace(f"127.0.0.1:{port}", rest.split("//")[1].split("/")[0])
                for a in demo]
        seen: dict[str, tuple[str, str]] = {}

        def books_shown() -> bool:
            r = CliRunner().invoke(app, argv + ["--trades", "0"], env=ENV)
            assert r.exit_code == 0, r.output
            seen.clear()
            for ln in r.stdout.splitlines():
                cells = [c.strip() for c in ln.split("│")]
                if len(cells) > 5 and cells[1].startswith("KXMLBGAME-"):
                    seen[cells[1]] = (cells[3], cells[4])
            return len(seen) == 5 and all(want[t] == v for t, v in seen.items())

        wait_until(books_shown, 30, "demo showing the capture's final KXMLBGAME books")
    finally:
        p.kill()
        p.wait(10)
    assert set(seen) <= set(want)


def test_readme_offline_eod_dates_are_days_the_bundled_data_holds(tmp_path: Path):
    hist = _section("Historical tier")
    offline = hist[: hist.index("Against\nQuestDB")] if "Against\nQuestDB" in hist else hist
    replays = _commands(offline, "replay")
    eods = [c for c in _commands(offline, "eod") if "--source" in c]
    assert eods, "the README has an offline (embedded) eod recipe"
    store = tmp_path / "store"
    run_replay(COCKPIT, store=store, sinks=["parquet"])  # README command 1
    for c in replays:
        run_replay(REPO_ROOT / c[1], store=store, sinks=["parquet"])
    for c in eods:
        assert _option(c, "--source") == "embedded" and _option(c, "--store") == "store"
        r = CliRunner().invoke(app, [*c[:c.index("--store")], "--store", str(store),
                                     *c[c.index("--store") + 2:], "--dest",
                                     str(tmp_path / "hdb")], env=ENV)
        assert r.exit_code == 0, r.output
        assert "note:" not in r.stderr, r.stderr  # the day is in the store
        assert re.search(r"│ done +│ +[1-9]", r.stdout), r.stdout  # rows migrated
    queries = _commands(offline, "query")
    ohlc = next(q for q in queries if "--csv" in q)
    r = CliRunner().invoke(app, [ohlc[0], ohlc[1], "--hdb", str(tmp_path / "hdb"), "--csv",
                                 str(tmp_path / "ohlc.csv")], env=ENV)
    assert r.exit_code == 0, r.output
    got = {r["ticker"]: r for r in csv.DictReader(io.StringIO(
        (tmp_path / "ohlc.csv").read_text()))}
    want: dict[str, list] = {}  # the oracle: the trade capture read directly
    for c in replays:
        for ln in (REPO_ROOT / c[1]).read_text().splitlines():
            m = json.loads(ln)["msg"]
            want.setdefault(m["market_ticker"], []).append(
                (Decimal(m["yes_price_dollars"]), Decimal(m["count_fp"])))
    assert set(got) == set(want) and len(want) == 3
    for t, trades in want.items():
        assert Decimal(got[t]["high"]) == max(p for p, _ in trades)
        assert Decimal(got[t]["low"]) == min(p for p, _ in trades)
        assert Decimal(got[t]["volume"]) == sum(n for _, n in trades)
