"""The CLI starts without the heavy libraries (issue 11, "CLI start").

``kalshi-platform --help`` must not pay for pyarrow, duckdb, questdb, zmq, httpx or
websockets: those are imported inside the commands that use them. Each check runs in a fresh
interpreter (a subprocess), since this test process has long imported them all. Speed itself
is measured by ``kalshi-platform bench`` and by hand, never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: libraries no command may import at registration (``kalshi-platform --help``)
HEAVY = ("pyarrow", "duckdb", "questdb", "zmq", "httpx", "websockets", "pydantic_settings")

#: the console script as pyproject runs it (kalshi_platform.tools.cli:main)
SCRIPT = [sys.executable, "-c", "from kalshi_platform.tools.cli import main; main()"]

#: commands every build registers (``bench`` and the rest come from COMMAND_MODULES)
COMMANDS = ("replay", "run", "record", "sim", "demo", "backfill", "eod", "query", "preview",
            "subscribe", "db", "bench")


def _env() -> dict[str, str]:
    """The environment for a child: wide help (no wrapped command names), no colour."""
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def _loaded_after(code: str) -> list[str]:
    """The :data:`HEAVY` top-level modules in ``sys.modules`` after a fresh interpreter runs
    ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=60, env=_env())
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import kalshi_platform.tools.cli") == []


def test_registering_every_command_loads_no_heavy_library() -> None:
    """What ``--help`` pays: cli plus every command module of COMMAND_MODULES."""
    code = "from kalshi_platform.tools.cli import _register_optional\n_register_optional()"
    assert _loaded_after(code) == []


@pytest.mark.parametrize("args", [["--help"], ["replay", "--help"]])
def test_help_exits_0(args: list[str]) -> None:
    r = subprocess.run(SCRIPT + args, capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout


def test_top_level_help_lists_every_command() -> None:
    r = subprocess.run(SCRIPT + ["--help"], capture_output=True, text=True, timeout=60,
                       env=_env())
    assert r.returncode == 0, r.stderr
    missing = [c for c in COMMANDS if f" {c} " not in r.stdout]
    assert missing == [], r.stdout


def test_replay_help_lists_its_options() -> None:
    r = subprocess.run(SCRIPT + ["replay", "--help"], capture_output=True, text=True,
                       timeout=60, env=_env())
    assert r.returncode == 0, r.stderr
    for opt in ("--store", "--sink", "--publish", "--summary-json", "--speed",
                "--use-yes-price", "--verbose"):
        assert opt in r.stdout, (opt, r.stdout)
