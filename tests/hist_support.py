"""Shared helpers of the historical-tier tests (EOD, query, preview): an embedded store built
from the bundled real recordings, a loopback S3 server (moto), CLI and subprocess runners.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from conftest import BUNDLED, REPO_ROOT
from kalshi_platform.storage.schema import TABLES

#: how the console script runs (pyproject: kalshi_platform.tools.cli:main)
CONSOLE_SCRIPT = ["-c", "import sys; sys.argv[0] = 'kalshi-platform'; "
                        "from kalshi_platform.tools.cli import main; main()"]


def build_store(root: Path) -> Path:
    """Replay every bundled real recording into an embedded store at ``root``."""
    from kalshi_platform.tools.replay import run_replay

    for rec in BUNDLED:
        run_replay(rec, store=root, sinks=["parquet"])
    return root


def store_days(root: Path) -> dict[str, list[date]]:
    """``table -> sorted days`` present in a store/historical root."""
    out: dict[str, list[date]] = {}
    for t in TABLES:
        days = sorted(date.fromisoformat(p.name[5:]) for p in (root / t).glob("date=*")
                      if p.is_dir() and any(p.glob("*.parquet")))
        if days:
            out[t] = days
    return out


def rows_of(root: Path, table: str, day: date, filesystem=None) -> list[tuple]:
    """Every row of one ``(table, day)`` partition under ``root`` (a local path, or a
    ``bucket/prefix`` with ``filesystem``), as sorted tuples (None sorts first)."""
    path = f"{root}/{table}/date={day.isoformat()}"
    if filesystem is None and not Path(path).is_dir():
        return []
    d = ds.dataset(path, format="parquet", filesystem=filesystem,
                   schema=TABLES[table].arrow_schema())
    return sorted_rows(d.to_table())


def sorted_rows(tbl: pa.Table) -> list[tuple]:
    """Rows of ``tbl`` as tuples in column order, sorted (order-independent comparison)."""
    cols = tbl.schema.names
    rows = [tuple(r[c] for c in cols) for r in tbl.to_pylist()]
    return sorted(rows, key=lambda r: tuple((v is not None, v) for v in r))


def snapshot_store(root: Path) -> dict[tuple[str, date], list[tuple]]:
    """All rows of a store, per ``(table, day)`` (the oracle for EOD output)."""
    return {(t, d): rows_of(root, t, d) for t, days in store_days(root).items() for d in days}


def copy_store(golden: Path, dst: Path) -> Path:
    shutil.copytree(golden, dst)
    return dst


# -- loopback S3 -------------------------------------------------------------------------------

class S3Server:
    """A moto S3 server on 127.0.0.1 (an ephemeral port) with a boto3 client for oracles."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def new_bucket(self) -> str:
        name = f"hist-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, dict]:
        """key → {size, etag, last_modified} of every object in ``bucket``, except the empty
        ``.../`` directory markers pyarrow's S3FileSystem puts when it deletes a file."""
        out = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                if o["Key"].endswith("/") and o["Size"] == 0:
                    continue
                out[o["Key"]] = {"size": o["Size"], "etag": o["ETag"],
                                 "last_modified": o["LastModified"]}
        return out

    def stop(self) -> None:
        self.server.stop()


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def set_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials (pyarrow and boto3 read the standard AWS env vars)."""
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(k, raising=False)


# -- subprocesses ------------------------------------------------------------------------------

def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KALSHI_", "AWS_"))}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_cli(args, cwd: Path, *, input: str | None = None, timeout: float = 180,
            **env: str) -> subprocess.CompletedProcess:
    """Run ``kalshi-platform ARGS`` as a subprocess (the console-script entry point)."""
    return subprocess.run([sys.executable, *CONSOLE_SCRIPT, *map(str, args)], cwd=cwd,
                          env=child_env(**env), capture_output=True, text=True, input=input,
                          timeout=timeout)


def run_py(code: str, cwd: Path, *, timeout: float = 300, **env: str
           ) -> subprocess.CompletedProcess:
    """Run a Python snippet in a fresh interpreter (crash and memory tests)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=child_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(stderr: str) -> str:
    """The single non-empty stderr line of a user error (asserts it is exactly one)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- an in-memory stand-in for storage.questdb_hdb.QuestDBClient ---------------------------------

class FakeQuestDB:
    """Implements the ``QuestDBClient`` methods EOD uses, over in-memory Arrow tables, and
    QuestDB's behaviour that matters to EOD: ``DROP PARTITION LIST`` removes a day, the control
    table upserts on its ``DEDUP UPSERT KEYS``, ``wal_tables()`` reports apply progress, and a
    tz-aware datetime parameter kills the connection (QuestDB 8.0 over psycopg 3).

    ``tables``: name → list of Arrow tables (appended data). ``calls`` logs every operation.
    """

    def __init__(self) -> None:
        self.tables: dict[str, list[pa.Table]] = {}
        self.control: dict[tuple, tuple] = {}
        self.control_ddl: str | None = None
        self.calls: list[tuple] = []
        self.wal_pending: dict[str, int] = {}  # table -> transactions not yet applied
        self.suspended: set[str] = set()
        self.closed = False

    # data helpers (not part of the client interface)
    def insert(self, table: str, data: pa.Table) -> None:
        self.tables.setdefault(table, []).append(data.cast(TABLES[table].arrow_schema()))

    def _day_rows(self, table: str, day: date) -> pa.Table:
        from kalshi_platform.storage.hdb_writer import day_bounds_us
        import pyarrow.compute as pc

        lo, hi = day_bounds_us(day)
        parts = self.tables.get(table, [])
        if not parts:
            return TABLES[table].arrow_schema().empty_table()
        t = pa.concat_tables(parts)
        us = t["ts"].cast(pa.int64())
        return t.filter(pc.and_(pc.greater_equal(us, lo), pc.less(us, hi)))

    def _check_params(self, params) -> None:
        from datetime import datetime

        for p in params or ():
            if isinstance(p, datetime) and p.tzinfo is not None:
                self.closed = True
                raise ConnectionError("server closed the connection (tz-aware bind)")

    # the QuestDBClient interface
    def table_exists(self, name: str) -> bool:
        return name in self.tables

    def count_day(self, table: str, day: date) -> int:
        self.calls.append(("count_day", table, day))
        return self._day_rows(table, day).num_rows

    def stream_day(self, table: str, day: date, *, chunk_rows: int = 100_000):
        self.calls.append(("stream_day", table, day))
        t = self._day_rows(table, day).sort_by([("ts", "ascending")])
        for b in t.to_batches(max_chunksize=chunk_rows):
            yield b

    def drop_partition(self, table: str, day: date) -> None:
        self.calls.append(("drop_partition", table, day))
        from kalshi_platform.storage.hdb_writer import day_bounds_us
        import pyarrow.compute as pc

        lo, hi = day_bounds_us(day)
        t = pa.concat_tables(self.tables[table])
        us = t["ts"].cast(pa.int64())
        self.tables[table] = [t.filter(pc.or_(pc.less(us, lo), pc.greater_equal(us, hi)))]
        self.wal_pending[table] = 1  # applied after one wal_tables() poll

    def execute(self, sql: str, params: tuple | None = None) -> None:
        if self.closed:
            raise ConnectionError("connection closed")
        self._check_params(params)
        self.calls.append(("execute", sql.split("(")[0].strip()))
        s = " ".join(sql.split())
        if s.startswith("CREATE TABLE IF NOT EXISTS eod_migrations"):
            self.control_ddl = s
        elif s.startswith("INSERT INTO eod_migrations"):
            cols = [c.strip() for c in s.split("(", 1)[1].split(")", 1)[0].split(",")]
            row = dict(zip(cols, params))
            self.control[(row["ts"], row["table_name"])] = tuple(row[c] for c in cols)
            self.wal_pending["eod_migrations"] = 1
        else:
            raise AssertionError(f"unexpected SQL: {sql}")

    def fetchall(self, sql: str, params: tuple | None = None) -> list[tuple]:
        if self.closed:
            raise ConnectionError("connection closed")
        self._check_params(params)
        s = " ".join(sql.split())
        if "FROM wal_tables()" in s:
            name = params[0]
            pending = self.wal_pending.get(name, 0)
            if pending:
                self.wal_pending[name] = pending - 1
            return [(name in self.suspended, 5, 5 + pending)]
        if "FROM eod_migrations WHERE ts = %s AND table_name = %s" in s:
            r = self.control.get((params[0], params[1]))
            return [r] if r else []
        if s.endswith("FROM eod_migrations"):
            return list(self.control.values())
        raise AssertionError(f"unexpected SQL: {sql}")

    def close(self) -> None:
        self.closed = True


def invoke(args, *, input: str | None = None, **env: str):
    """Run the CLI in-process (typer's CliRunner: fast, for the many option/error cases; the
    real console script is exercised through :func:`run_cli`). Returns the click Result
    (``exit_code``, ``stdout``, ``stderr``)."""
    from typer.testing import CliRunner

    from kalshi_platform.tools.cli import _register_optional, app

    _register_optional()
    clean = {k: None for k in os.environ if k.startswith(("KALSHI_", "AWS_"))}
    clean.update(env)
    return CliRunner(env=clean).invoke(app, [str(a) for a in args], input=input)
