"""What ``eod`` tells a user (issue 12 §7): a table's failure is one line saying what went wrong,
without the exception's class name; a day the embedded store does not hold says which days it
does hold. Over a store replayed from the bundled real recordings."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from hist_support import build_store, invoke, store_days
from kalshi_platform.storage.eod import (CONTROL_FILE, FAILED, EmbeddedSource, EodJob,
                                         JsonlControl, error_text)

DAY = date(2026, 8, 7)  # the cockpit capture
CLASS_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception|Invalid)\b")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("eodmsg") / "store")


class _Failing(EmbeddedSource):
    """The real embedded source whose stream fails with ``exc`` after its first chunk."""

    def __init__(self, store: Path, exc: BaseException) -> None:
        super().__init__(store)
        self.exc = exc

    def stream(self, table, day, chunk_rows):
        for batch in super().stream(table, day, chunk_rows):
            yield batch
            raise self.exc


@pytest.mark.parametrize("exc, want", [
    (OSError(28, "No space left on device", "/hdb/bbo/part-00000.parquet"),
     "/hdb/bbo/part-00000.parquet: No space left on device"),
    (KeyError("yes_bid"), "'yes_bid'"),
    (ValueError("bad\nschema   here"), "bad schema here"),
    (RuntimeError(""), "unexpected failure (run with --verbose for the traceback)"),
])
def test_a_failed_table_is_one_line_without_a_class_name(store, tmp_path, exc, want):
    dest = tmp_path / "hdb"
    job = EodJob(_Failing(store, exc), JsonlControl(dest / CONTROL_FILE), dest, drop=False)
    res = job.migrate("bbo", DAY)
    assert res.status == FAILED
    assert res.error == want
    assert not CLASS_NAME.search(res.error) and "\n" not in res.error
    assert JsonlControl(dest / CONTROL_FILE).get(DAY, "bbo").error == want  # as recorded
    assert error_text(exc) == want


def test_cli_failure_line_names_table_and_reason_only(store, tmp_path, monkeypatch):
    # a destination that cannot be created: the table fails on the file system
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = invoke(["eod", "--source", "embedded", "--store", store, "--dest", blocker / "hdb",
                "--date", DAY.isoformat(), "--no-drop", "--tables", "bbo"],
               COLUMNS="200", NO_COLOR="1")
    assert r.exit_code in (1, 2), r.output
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert err and err[-1].startswith("error:"), r.stderr
    assert err[-1] == f"error: {blocker / 'hdb'}: Not a directory"
    assert not CLASS_NAME.search(r.stderr), r.stderr


def test_a_day_the_store_lacks_names_the_days_it_holds(store, tmp_path):
    r = invoke(["eod", "--source", "embedded", "--store", store, "--dest", tmp_path / "hdb",
                "--date", "2026-03-01"], COLUMNS="200", NO_COLOR="1")
    assert r.exit_code == 0, r.output
    held = sorted({d for days in store_days(store).values() for d in days})
    assert date(2026, 2, 12) in held and DAY in held  # the ssmd and cockpit captures
    assert (f"note: {store} has no rows for 2026-03-01; days it holds: "
            f"{', '.join(d.isoformat() for d in held)}") in " ".join(r.stderr.split())
    r = invoke(["eod", "--source", "embedded", "--store", store, "--dest", tmp_path / "hdb",
                "--date", DAY.isoformat(), "--no-drop"], COLUMNS="200", NO_COLOR="1")
    assert r.exit_code == 0 and "note:" not in r.stderr, r.stderr


@pytest.mark.parametrize("command", ["eod", "bench-hdb"])
def test_compression_help_names_every_codec_the_writer_takes(command):
    """``--compression``'s help lists what the Parquet writer accepts (it said "zstd or
    snappy" while gzip, lz4 and none work too)."""
    from kalshi_platform.storage.hdb_writer import CODECS

    r = invoke([command, "--help"], COLUMNS="300")
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if "--compression" in ln)
    assert all(c in line for c in CODECS), line
