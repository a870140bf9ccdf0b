"""Shared helpers of the historical-tier tests (EOD, query, preview): an embedded store built
from the bundled real recordings, a loopback S3 server (moto), CLI and subprocess runners.
"""

from __future__ import annotations

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
        """key → {size, etag, last_modified} of every object in ``bucket``."""
        out = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
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
