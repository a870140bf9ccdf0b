"""EOD migration against the embedded Parquet store (always runs): the bundled real recordings
replayed into a store, migrated day by day to a local historical root and to S3 (moto server
on loopback), checked against the store's own rows (read before the migration) and against
the objects as boto3 — an independent S3 client — returns them.

Fault injection: a lost row in the written files, a corrupted upload, an exception and a hard
process exit (``os._exit``) between upload and drop, and the source changing before the drop.
"""

from __future__ import annotations

import io
import json
import textwrap
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from hist_support import (AWS_ENV, S3Server, build_store, copy_store, invoke, one_error_line,
                          rows_of, run_cli, run_py, set_aws_env, snapshot_store, sorted_rows,
                          store_days)
from kalshi_platform.storage import eod
from kalshi_platform.storage.eod import (CONTROL_FILE, DONE, EMPTY, FAILED, SKIPPED, VERIFIED,
                                         EmbeddedSource, EodError, EodJob, JsonlControl,
                                         S3Target)
from kalshi_platform.storage.hdb_writer import PartitionWriter
from kalshi_platform.storage.schema import TABLES

ALL = list(TABLES)
DAY = date(2026, 8, 7)        # the cockpit capture: deltas, snapshots, bbo
DAY_TRADES = date(2026, 2, 12)  # the ssmd captures: trades, tickers, feed_events


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    root = build_store(tmp_path_factory.mktemp("golden") / "store")
    return root, snapshot_store(root)


@pytest.fixture
def store(golden, tmp_path):
    return copy_store(golden[0], tmp_path / "store")


@pytest.fixture
def oracle(golden):
    return golden[1]


@pytest.fixture(scope="module")
def s3srv():
    srv = S3Server()
    yield srv
    srv.stop()


@pytest.fixture
def s3(s3srv, monkeypatch):
    set_aws_env(monkeypatch)
    bucket = s3srv.new_bucket()
    return S3Target.from_uri(f"s3://{bucket}/hist", s3srv.endpoint), bucket


def make_job(store, dest, s3=None, **kw) -> EodJob:
    return EodJob(EmbeddedSource(store), JsonlControl(dest / CONTROL_FILE), dest,
                  s3=s3[0] if s3 else None, **kw)


def s3_rows(srv: S3Server, bucket: str, table: str, day: date) -> list[tuple]:
    """Rows of one partition as boto3 downloads them (the independent oracle for S3)."""
    c = srv.client()
    prefix = f"hist/{table}/date={day.isoformat()}/"
    keys = [k for k in srv.objects(bucket) if k.startswith(prefix)]
    tables = [pq.read_table(io.BytesIO(c.get_object(Bucket=bucket, Key=k)["Body"].read()))
              for k in keys]
    return sorted_rows(pa.concat_tables(tables)) if tables else []


def partitions(oracle, day):
    return {t: rows for (t, d), rows in oracle.items() if d == day}


def local_state(dest):
    """Every file under ``dest`` → (inode, mtime_ns, size): detects any rewrite."""
    out = {}
    for p in sorted(dest.rglob("*")):
        if p.is_file() and p.name != eod.LOCK_FILE:
            st = p.stat()
            out[str(p.relative_to(dest))] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def test_every_day_equals_the_source_locally_and_in_s3(store, oracle, s3, s3srv, tmp_path):
    dest = tmp_path / "hdb"
    days = sorted({d for (_, d) in oracle})
    assert days == [date(2024, 11, 26), date(2026, 2, 12), date(2026, 3, 12),
                    date(2026, 7, 19), date(2026, 8, 7)]
    job = make_job(store, dest, s3)
    for day in days:
        rep = job.run(day, ALL)
        want = partitions(oracle, day)
        for r in rep.results:
            assert r.error == ""
            if r.table in want:
                assert (r.status, r.dropped, r.files, r.s3_objects) == (DONE, True, 1, 1)
                assert r.rows == len(want[r.table])
            else:
                assert r.status == EMPTY and r.rows == 0
    for (table, day), want in oracle.items():
        assert rows_of(dest, table, day) == want, (table, day)
        assert s3_rows(s3srv, s3[1], table, day) == want, (table, day)
        part = dest / table / f"date={day}"
        assert sorted(p.name for p in part.iterdir()) == ["part-00000.parquet"]
        ts = pq.read_table(part / "part-00000.parquet", columns=["ts"])["ts"].to_pylist()
        assert ts == sorted(ts)  # EOD output is ordered by ts
        assert not (store / table / f"date={day}").exists()  # dropped from the source
    assert store_days(store) == {}
    keys = set(s3srv.objects(s3[1]))
    assert keys == {f"hist/{t}/date={d}/part-00000.parquet" for (t, d) in oracle}
    recs = JsonlControl(dest / CONTROL_FILE).records()
    for (table, day), want in oracle.items():
        r = recs[(day, table)]
        assert (r.status, r.rows, r.files, r.dropped) == (DONE, len(want), 1, True)
        assert r.s3_uri == f"s3://{s3[1]}/hist" and len(r.checksum) == 16
        assert r.started <= r.finished


def test_rerun_of_a_finished_day_is_a_noop(store, oracle, s3, s3srv, tmp_path):
    dest = tmp_path / "hdb"
    make_job(store, dest, s3).run(DAY, ALL)
    before = (local_state(dest), s3srv.objects(s3[1]), local_state(store))
    rep = make_job(store, dest, s3).run(DAY, ALL)
    assert {r.status for r in rep.results} == {SKIPPED, EMPTY}
    for r in rep.results:
        if r.status == SKIPPED:
            assert r.note == "already migrated" and r.rows == len(oracle[(r.table, DAY)])
    assert (local_state(dest), s3srv.objects(s3[1]), local_state(store)) == before


def test_a_lost_row_fails_local_verification_and_nothing_is_dropped(
        store, oracle, s3, s3srv, tmp_path, monkeypatch):
    dest = tmp_path / "hdb"
    orig = PartitionWriter.write

    def lossy(self, data):  # the writer silently loses the last row of every chunk
        return orig(self, data.slice(0, data.num_rows - 1))

    monkeypatch.setattr(PartitionWriter, "write", lossy)
    before = local_state(store)
    rep = make_job(store, dest, s3).run(DAY, ALL)
    failed = {r.table: r for r in rep.results if r.status == FAILED}
    assert set(failed) == set(partitions(oracle, DAY))
    for r in failed.values():
        assert "local files" in r.error and not r.dropped
    assert local_state(store) == before           # the source is untouched
    assert s3srv.objects(s3[1]) == {}             # nothing uploaded before local verification
    recs = JsonlControl(dest / CONTROL_FILE).records()
    assert {recs[(DAY, t)].status for t in failed} == {FAILED}
    monkeypatch.setattr(PartitionWriter, "write", orig)
    rep = make_job(store, dest, s3).run(DAY, ALL)  # a failed run resumes
    assert {r.table for r in rep.results if r.status == DONE} == set(failed)
    for t, want in partitions(oracle, DAY).items():
        assert rows_of(dest, t, DAY) == want and s3_rows(s3srv, s3[1], t, DAY) == want


def test_a_corrupted_upload_fails_s3_verification_and_nothing_is_dropped(
        store, oracle, s3, s3srv, tmp_path, monkeypatch):
    dest = tmp_path / "hdb"
    orig = eod.s3mod.upload_file

    def corrupting(fs, local, key, **kw):  # the object lacks the file's first row
        bad = tmp_path / "bad.parquet"
        pq.write_table(pq.read_table(local).slice(1), bad)
        return orig(fs, bad, key, **kw)

    monkeypatch.setattr(eod.s3mod, "upload_file", corrupting)
    before = local_state(store)
    rep = make_job(store, dest, s3).run(DAY, ALL)
    failed = [r for r in rep.results if r.status == FAILED]
    assert {r.table for r in failed} == set(partitions(oracle, DAY))
    assert all("S3 objects" in r.error and not r.dropped for r in failed)
    assert local_state(store) == before
    monkeypatch.setattr(eod.s3mod, "upload_file", orig)
    make_job(store, dest, s3).run(DAY, ALL)
    for t, want in partitions(oracle, DAY).items():
        assert s3_rows(s3srv, s3[1], t, DAY) == want


def test_exception_between_upload_and_drop_is_recovered(
        store, oracle, s3, s3srv, tmp_path, monkeypatch):
    dest = tmp_path / "hdb"

    def crash(self, table, day, snap):
        raise RuntimeError("simulated crash before the drop")

    monkeypatch.setattr(EmbeddedSource, "drop", crash)
    # first run splits days into many small files; the re-run writes one file per day
    rep = make_job(store, dest, s3, max_rows_per_file=100).run(DAY, ALL)
    want = partitions(oracle, DAY)
    for r in rep.results:
        if r.table in want:
            assert r.status == FAILED and "simulated crash" in r.error
    recs = JsonlControl(dest / CONTROL_FILE).records()
    assert recs[(DAY, "orderbook_snapshots")].status == VERIFIED  # outputs were good
    assert recs[(DAY, "orderbook_snapshots")].files == 12          # 1114 rows / 100
    assert snapshot_store(store) == oracle                         # nothing dropped
    monkeypatch.undo()
    set_aws_env(monkeypatch)
    rep = make_job(store, dest, s3).run(DAY, ALL)
    assert {r.table for r in rep.results if r.status == DONE} == set(want)
    for t, rows in want.items():
        assert rows_of(dest, t, DAY) == rows
        assert s3_rows(s3srv, s3[1], t, DAY) == rows
        assert [p.name for p in (dest / t / f"date={DAY}").iterdir()] == ["part-00000.parquet"]
    assert set(s3srv.objects(s3[1])) == {f"hist/{t}/date={DAY}/part-00000.parquet" for t in want}
    assert all(d != DAY for days in store_days(store).values() for d in days)


CRASH_SCRIPT = """
import os, shutil
from datetime import date
from pathlib import Path
from kalshi_platform.storage import eod
where = {where!r}
orig_drop = eod.EmbeddedSource.drop
if where == "before-drop":
    def drop(self, table, day, snap):
        if table == "orderbook_snapshots":
            os._exit(17)
        return orig_drop(self, table, day, snap)
    eod.EmbeddedSource.drop = drop
else:  # after the atomic rename of the day's directory, before its deletion
    real_rmtree = shutil.rmtree
    def rmtree(path, *a, **k):
        if "orderbook_snapshots" in str(path) and path.name.endswith(".eod-dropped"):
            os._exit(17)
        return real_rmtree(path, *a, **k)
    eod.shutil.rmtree = rmtree
dest = Path({dest!r})
job = eod.EodJob(eod.EmbeddedSource({store!r}), eod.JsonlControl(dest / eod.CONTROL_FILE), dest,
                 s3=eod.S3Target.from_uri({uri!r}, {endpoint!r}))
job.run(date(2026, 8, 7), {tables!r})
print("no crash")
"""


@pytest.mark.parametrize("where", ["before-drop", "after-rename"])
def test_hard_crash_between_upload_and_drop_is_recovered(
        where, store, oracle, s3, s3srv, tmp_path, monkeypatch):
    """The process dies (``os._exit``, no cleanup, no exception handler) after the upload
    was verified: before the drop, or in the middle of it (directory renamed away, not yet
    deleted). A re-run loses nothing and duplicates nothing."""
    dest = tmp_path / "hdb"
    tables = ["orderbook_deltas", "orderbook_snapshots", "bbo"]
    code = textwrap.dedent(CRASH_SCRIPT).format(where=where, dest=str(dest), store=str(store),
                                                uri=f"s3://{s3[1]}/hist",
                                                endpoint=s3srv.endpoint, tables=tables)
    r = run_py(code, tmp_path, **AWS_ENV)
    assert r.returncode == 17, r.stdout + r.stderr
    recs = JsonlControl(dest / CONTROL_FILE).records()
    assert recs[(DAY, "orderbook_deltas")].status == DONE
    assert recs[(DAY, "orderbook_snapshots")].status == VERIFIED   # the crash point
    assert (DAY, "bbo") not in recs
    snap_dir = store / "orderbook_snapshots" / f"date={DAY}"
    gone = snap_dir.with_name(f".date={DAY}.eod-dropped")
    assert snap_dir.exists() == (where == "before-drop") and gone.exists() == (where != "before-drop")

    rep = make_job(store, dest, s3).run(DAY, tables)
    got = {r.table: r for r in rep.results}
    assert got["orderbook_deltas"].status == SKIPPED
    assert got["orderbook_snapshots"].status == DONE and got["bbo"].status == DONE
    if where == "after-rename":
        assert got["orderbook_snapshots"].note.startswith("recovered")
    assert not gone.exists() and not snap_dir.exists()
    for t in tables:
        assert rows_of(dest, t, DAY) == oracle[(t, DAY)]
        assert s3_rows(s3srv, s3[1], t, DAY) == oracle[(t, DAY)]
    assert set(s3srv.objects(s3[1])) == {f"hist/{t}/date={DAY}/part-00000.parquet" for t in tables}


def test_source_changed_before_the_drop_is_not_dropped_then_migrated(
        store, oracle, tmp_path, monkeypatch):
    dest = tmp_path / "hdb"
    orig = EmbeddedSource.drop
    late = store / "bbo" / f"date={DAY}" / "late-000000.parquet"
    extra = pq.read_table(next((store / "bbo" / f"date={DAY}").glob("*.parquet"))).slice(0, 3)
    # new rows (a later seq), not copies: copies would be de-duplicated on the keys
    extra = extra.set_column(extra.schema.get_field_index("seq"), "seq",
                             pc.add(extra.column("seq"), 1_000_000))

    def late_rows_then_drop(self, table, day, snap):
        if table == "bbo":
            pq.write_table(extra, late)  # a writer adds rows after the export
        return orig(self, table, day, snap)

    monkeypatch.setattr(EmbeddedSource, "drop", late_rows_then_drop)
    rep = make_job(store, dest).run(DAY, ["bbo"])
    assert rep.results[0].status == FAILED and "changed since the export" in rep.results[0].error
    assert late.exists() and len(rows_of(store, "bbo", DAY)) == len(oracle[("bbo", DAY)]) + 3
    monkeypatch.setattr(EmbeddedSource, "drop", orig)
    rep = make_job(store, dest).run(DAY, ["bbo"])
    assert rep.results[0].status == DONE
    assert rows_of(dest, "bbo", DAY) == sorted(oracle[("bbo", DAY)] + sorted_rows(extra),
                                               key=lambda r: tuple((v is not None, v) for v in r))


def test_no_drop_keeps_the_source_then_a_drop_run_finishes(store, oracle, tmp_path):
    dest = tmp_path / "hdb"
    rep = make_job(store, dest, drop=False).run(DAY, ALL)
    want = partitions(oracle, DAY)
    assert {r.table: r.status for r in rep.results if r.table in want} == dict.fromkeys(want, VERIFIED)
    assert snapshot_store(store) == oracle
    state = local_state(dest)
    rep = make_job(store, dest, drop=False).run(DAY, ALL)  # finished for --no-drop: no-op
    assert {r.status for r in rep.results if r.table in want} == {SKIPPED}
    assert local_state(dest) == state
    rep = make_job(store, dest).run(DAY, ALL)
    assert {r.status for r in rep.results if r.table in want} == {DONE}
    for t, rows in want.items():
        assert rows_of(dest, t, DAY) == rows and not (store / t / f"date={DAY}").exists()


def test_retention_deletes_only_old_days_verified_in_s3(store, oracle, s3, s3srv, tmp_path):
    dest = tmp_path / "hdb"
    job = make_job(store, dest, s3)
    job.run(DAY_TRADES, ALL)
    local_only = make_job(store, tmp_path / "local-only")
    local_only.run(date(2026, 7, 19), ALL)
    rep = job.run(DAY, ALL, keep_days=30)  # 2026-02-12 is older than 30 days before DAY
    assert sorted(rep.retention_deleted) == sorted(
        (t, "2026-02-12") for (t, d) in oracle if d == DAY_TRADES)
    assert rep.retention_kept == []
    for (t, d) in oracle:
        if d == DAY_TRADES:
            assert not (dest / t / f"date={d}").exists()
            assert s3_rows(s3srv, s3[1], t, d) == oracle[(t, d)]  # S3 keeps the history
        if d == DAY:
            assert rows_of(dest, t, d) == oracle[(t, d)]
    # a root whose days were never uploaded keeps them, and says so
    rep = local_only.run(DAY, ALL, keep_days=1)
    assert rep.retention_deleted == []
    assert sorted(rep.retention_kept) == sorted(
        (t, "2026-07-19") for (t, d) in oracle if d == date(2026, 7, 19))


def test_one_run_per_destination(store, tmp_path):
    dest = tmp_path / "hdb"
    held = eod._Lock(dest)
    try:
        with pytest.raises(EodError, match="another eod run"):
            make_job(store, dest).run(DAY, ALL)
    finally:
        held.release()


def test_cli_eod_embedded_with_s3(store, oracle, s3srv, tmp_path):
    bucket = s3srv.new_bucket()
    dest = tmp_path / "hdb"
    args = ["eod", "--source", "embedded", "--store", store, "--dest", dest, "--date", "2026-08-07",
            "--s3", f"s3://{bucket}/hist", "--s3-endpoint", s3srv.endpoint, "--json"]
    r = run_cli(args, tmp_path, **AWS_ENV)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    got = {x["table"]: x for x in out["results"]}
    for t, rows in partitions(oracle, DAY).items():
        assert got[t]["status"] == DONE and got[t]["rows"] == len(rows)
        assert rows_of(dest, t, DAY) == rows and s3_rows(s3srv, bucket, t, DAY) == rows
    r = run_cli(args[:-1], tmp_path, **AWS_ENV)  # the table view, and a no-op
    assert r.returncode == 0 and "skipped" in r.stdout and "already migrated" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--date", "2026-02-30"], "--date '2026-02-30': expected YYYY-MM-DD"),
    (["--tables", "trades,nope"], "unknown table(s) nope"),
    (["--s3", "http://bucket/x"], "is not an s3://bucket[/prefix] URI"),
    (["--compression", "brotli"], "--compression 'brotli'"),
    (["--source", "sqlite"], "--source 'sqlite'"),
])
def test_cli_eod_user_errors_are_one_line(store, tmp_path, args, message):
    r = invoke(["eod", "--source", "embedded", "--store", store, "--dest", tmp_path / "h", *args])
    assert r.exit_code == 2
    assert message in one_error_line(r.stderr)


def test_cli_eod_missing_bucket_and_same_dest(store, s3srv, tmp_path):
    r = invoke(["eod", "--source", "embedded", "--store", store, "--dest", tmp_path / "h",
                "--s3", "s3://no-such-bucket/x", "--s3-endpoint", s3srv.endpoint], **AWS_ENV)
    assert r.exit_code == 2 and "bucket 'no-such-bucket' does not exist" in one_error_line(r.stderr)
    r = invoke(["eod", "--source", "embedded", "--store", store, "--dest", store])
    assert r.exit_code == 2 and "--dest must differ" in one_error_line(r.stderr)


def test_failed_recovery_keeps_the_verified_record(store, s3, tmp_path):
    """Crash after the drop, before "done" is recorded; a recovery run that cannot verify
    (here: no --s3) must keep the "verified" record (rows, checksum, s3_uri), so a later run
    with S3 completes it instead of recording the day as empty."""
    day, table = date(2026, 8, 7), "orderbook_snapshots"
    dest = tmp_path / "hdb"

    class CrashBeforeDone(JsonlControl):
        def put(self, rec):
            if rec.status == DONE:
                raise SystemExit("killed after the drop")
            super().put(rec)

    with pytest.raises(SystemExit):
        EodJob(EmbeddedSource(store), CrashBeforeDone(dest / CONTROL_FILE), dest,
               s3=s3[0]).run(day, [table])
    ctl = JsonlControl(dest / CONTROL_FILE)
    first = ctl.get(day, table)
    assert first.status == VERIFIED and first.rows == 1114
    r = make_job(store, dest).run(day, [table]).results[0]  # no --s3: cannot verify
    assert r.status == FAILED
    kept = JsonlControl(dest / CONTROL_FILE).get(day, table)
    assert (kept.status, kept.rows, kept.checksum, kept.s3_uri) == \
        (VERIFIED, first.rows, first.checksum, first.s3_uri)
    r = make_job(store, dest, s3).run(day, [table]).results[0]
    assert r.status == DONE and r.rows == 1114 and r.note.startswith("recovered")


def test_an_unfinished_day_is_not_dropped(store, tmp_path):
    from datetime import datetime, timezone

    today = datetime.now(timezone.utc).date()
    with pytest.raises(EodError, match="not a finished UTC day"):
        make_job(store, tmp_path / "hdb").run(today, ["bbo"])
    make_job(store, tmp_path / "hdb", drop=False).run(today, ["bbo"])  # a copy is fine



def test_duplicate_rows_in_the_store_are_migrated_once(store, oracle, tmp_path):
    """The embedded store appends (e.g. two backfills over overlapping ranges): EOD keeps one
    row per dedup key, as QuestDB's DEDUP UPSERT does, and counts what it keeps."""
    src = next((store / "bbo" / f"date={DAY}").glob("*.parquet"))
    pq.write_table(pq.read_table(src), src.with_name("again-000000.parquet"))  # every row twice
    rep = make_job(store, tmp_path / "hdb").run(DAY, ["bbo"])
    assert rep.results[0].status == DONE
    assert rows_of(tmp_path / "hdb", "bbo", DAY) == oracle[("bbo", DAY)]


def test_scheduled_run_retries_earlier_unfinished_days(store, oracle, tmp_path):
    """`eod` with no --date (the compose schedule) migrates yesterday and also retries earlier
    days whose record is failed/running/verified, so a failed night is not skipped."""
    from kalshi_platform.storage.eod import MigrationRecord

    dest = tmp_path / "hdb"
    JsonlControl(dest / CONTROL_FILE).put(MigrationRecord(DAY, "bbo", FAILED, error="earlier"))
    r = invoke(["eod", "--source", "embedded", "--store", store, "--dest", dest,
                "--tables", "bbo", "--json"])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert JsonlControl(dest / CONTROL_FILE).get(DAY, "bbo").status == DONE
    assert rows_of(dest, "bbo", DAY) == oracle[("bbo", DAY)]
