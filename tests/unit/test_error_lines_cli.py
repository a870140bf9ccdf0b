"""Errors say what went wrong, never which Python class carried it, with the exit codes of
``tools/exitcodes.py`` (issue 12 §7, "Leaked exception names"). Console script in a
subprocess, as a user runs it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

from conftest import REPO_ROOT

SCRIPT = [sys.executable, "-c", "import sys; sys.argv[0] = 'kalshi-platform'; "
                                "from kalshi_platform.tools.cli import main; main()"]
#: what a leaked class name looks like at the start of a message or after "X: "
LEAK = re.compile(r"\b[A-Z]\w*(Error|Exception|Invalid)\w*: ")


def _run(args, tmp_path, **env_extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env.update(PYTHONPATH=str(REPO_ROOT), COLUMNS="200", NO_COLOR="1",
               KALSHI_STORE_DIR=str(tmp_path / "store"), **env_extra)
    return subprocess.run(SCRIPT + [str(a) for a in args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _one_clean_line(r: subprocess.CompletedProcess) -> str:
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: "), r.stderr
    assert not LEAK.search(r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_preview_of_a_non_utf8_file(tmp_path):
    bad = tmp_path / "market_data_2026-08-07.json"
    bad.write_bytes(b'[{"ticker": "\xff\xfe"}]')
    r = _run(["preview", "--file", bad], tmp_path)
    assert r.returncode == 2
    line = _one_clean_line(r)
    assert "UnicodeDecodeError" not in line and "not UTF-8" in line and str(bad) in line


def test_preview_of_a_corrupt_gzip(tmp_path):
    bad = tmp_path / "r.json.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    r = _run(["preview", "--file", bad], tmp_path)
    assert r.returncode == 2
    _one_clean_line(r)


def test_eod_with_questdb_down_exits_2_like_db_status(tmp_path):
    port = str(_closed_port())
    env = dict(KALSHI_QUESTDB_HOST="127.0.0.1", KALSHI_QUESTDB_PG_PORT=port)
    eod = _run(["eod", "--date", "2026-08-07", "--dest", tmp_path / "hdb"], tmp_path, **env)
    status = _run(["db", "status"], tmp_path, **env)
    assert eod.returncode == 2 and status.returncode == 2, (eod.stderr, status.stderr)
    line = _one_clean_line(eod)
    assert "HDBError" not in line and "cannot connect" in line and port in line
    _one_clean_line(status)


def test_query_over_a_store_with_a_corrupt_file(tmp_path):
    part = tmp_path / "hdb" / "bbo" / "date=2026-08-07"
    part.mkdir(parents=True)
    (part / "x.parquet").write_bytes(b"not parquet")
    r = _run(["query", "SELECT * FROM bbo", "--hdb", tmp_path / "hdb"], tmp_path)
    assert r.returncode == 2
    assert "x.parquet" in _one_clean_line(r)


def test_eod_embedded_failed_table_names_no_class(tmp_path):
    part = tmp_path / "store" / "bbo" / "date=2026-08-07"
    part.mkdir(parents=True)
    (part / "x.parquet").write_bytes(b"not parquet")
    r = _run(["eod", "--source", "embedded", "--store", tmp_path / "store", "--dest",
              tmp_path / "hdb", "--date", "2026-08-07", "--tables", "bbo"], tmp_path)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 2026-08-07 bbo: ") and not LEAK.search(last), r.stderr
    assert not LEAK.search(r.stdout), r.stdout


def test_plain_message_and_uncaught():
    from kalshi_platform.tools import cli, exitcodes

    assert exitcodes.plain_message("ArrowInvalid: bad file\nmore") == "bad file"
    assert exitcodes.plain_message("InvalidInputException: Invalid Input Error: x") == \
        "Invalid Input Error: x"
    assert exitcodes.plain_message("cannot connect: refused") == "cannot connect: refused"
    code, msg = cli._uncaught(KeyError("boom"))
    assert code == exitcodes.INTERNAL == 1 and "KeyError" not in msg and "boom" in msg
    code, msg = cli._uncaught(RuntimeError())  # no message: still no class name
    assert code == 1 and "RuntimeError" not in msg and "gave no message" in msg
    assert (exitcodes.OK, exitcodes.USAGE) == (0, 2)
