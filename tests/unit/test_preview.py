"""``kalshi-platform preview``: the incremental JSON-array parser and the report summary.

Real samples: the two real (empty, ``[]``) market-data reports and the real S3 listing excerpt
of Kalshi's ``reporting/`` prefix (../shared; skipped when absent). Synthetic reports with the
fields real ones carry check the summary against ``json.load`` + Python, a loopback HTTP
server checks ``--url``, and a ~110 MB report checks that memory stays far below its size.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import random
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SHARED_KALSHI, require_shared
from hist_support import invoke, one_error_line, run_cli, run_py
from kalshi_platform.historical.report_preview import (DistinctCounter, ReportFormatError,
                                                       iter_json_array, summarize)

REPORTS = SHARED_KALSHI / "daily_reports"


def synthetic_rows(n: int, seed: int = 5) -> list[dict]:
    """Rows shaped like the public report (fields as seen in the wild; some numbers as
    strings, as some days have them)."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        series = rnd.choice(["KXHIGHNY", "KXHIGHCHI", "KXBTCD", "KXFEDDECISION", "INXD"])
        vol = rnd.randint(0, 50_000)
        rows.append({
            "date": f"2026-09-{rnd.randint(18, 19)}",
            "ticker_name": f"{series}-26SEP{rnd.randint(10, 30)}-B{rnd.randint(1, 400)}.5",
            "report_ticker": series,
            "payout_type": "binary",
            "open_interest": rnd.randint(0, 100_000),
            "daily_volume": str(vol) if i % 7 == 0 else vol,
            "block_volume": 0,
            "high": rnd.randint(1, 99),
            "low": rnd.randint(1, 99),
            "status": rnd.choice(["active", "finalized", "closed"]),
        })
    return rows


def oracle_summary(rows: list[dict]) -> dict:
    return {
        "rows": len(rows),
        "tickers": len({r["ticker_name"] for r in rows}),
        "series": len({r["report_ticker"] for r in rows}),
        "date_min": min(r["date"] for r in rows), "date_max": max(r["date"] for r in rows),
        "totals": {k: float(sum(float(r[k]) for r in rows))
                   for k in ("daily_volume", "block_volume", "open_interest")},
        "status": {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})},
        "fields": list(rows[0]),
        "non_objects": 0,
    }


def test_real_empty_reports_and_their_etag():
    """The two real 2-byte reports: ``[]`` (md5 equals the S3 ETag in the real listing)."""
    listing = json.loads(require_shared(REPORTS / "kalshi_public_docs_reporting_listing_excerpt.json"
                                        ).read_text())
    etags = {x["key"].rsplit("/", 1)[-1]: x["etag"].strip('"') for x in listing}
    for name in ("market_data_2021-06-28.json", "market_data_2021-06-29.json"):
        data = require_shared(REPORTS / name).read_bytes()
        assert hashlib.md5(data).hexdigest() == etags[name]
        s, head = summarize(io.BytesIO(data))
        assert (s.rows, s.tickers, head) == (0, 0, [])


def test_real_listing_parses_incrementally_at_any_block_size():
    data = require_shared(REPORTS / "kalshi_public_docs_reporting_listing_excerpt.json").read_bytes()
    want = json.loads(data)
    for block in (1, 2, 3, 7, 64, 1 << 20):
        assert list(iter_json_array(io.BytesIO(data), block=block)) == want


def test_cli_on_real_samples(tmp_path):
    f = require_shared(REPORTS / "market_data_2021-06-28.json")
    r = run_cli(["preview", "--file", f, "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["rows"] == 0
    f = require_shared(REPORTS / "kalshi_public_docs_reporting_listing_excerpt.json")
    r = run_cli(["preview", "--file", f, "--rows", "3"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "reporting/market_data_2021-06-29.json" in r.stdout      # row 3 shown
    assert "reporting/market_data_2021-06-30.json" not in r.stdout  # row 4 not
    assert "key, size, last_modified, etag" in r.stdout


def test_summary_equals_json_load_and_python(tmp_path):
    rows = synthetic_rows(20_000)
    data = json.dumps(rows, indent=1).encode()
    for block in (1 << 20, 4093):
        s, head = summarize(io.BytesIO(data), first=5)
        assert s.to_json() == oracle_summary(rows)
        assert head == rows[:5]
    s, _ = summarize(io.BytesIO(gzip.compress(data)))  # a .json.gz download
    assert s.to_json() == oracle_summary(rows)


def test_gzip_any_split_multi_member_truncated_and_bounded():
    rows = synthetic_rows(500)
    data = json.dumps(rows).encode()
    gz = gzip.compress(data)
    for block in (1, 2, 5, 4096):
        assert list(iter_json_array(io.BytesIO(gz), block=block)) == rows
    # two gzip members (what `cat a.gz b.gz` gives) are one stream
    half = len(data) // 2
    two = gzip.compress(data[:half]) + gzip.compress(data[half:])
    assert list(iter_json_array(io.BytesIO(two), block=777)) == rows
    with pytest.raises(ReportFormatError, match="truncated gzip"):
        list(iter_json_array(io.BytesIO(gz[:-20])))
    # 64 MB of whitespace compresses to ~64 KB: inflated in bounded pieces, never at once
    import tracemalloc

    bomb = gzip.compress(b"[" + b" " * (64 << 20) + b"1]")
    tracemalloc.start()
    try:
        assert list(iter_json_array(io.BytesIO(bomb))) == [1]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


@pytest.mark.parametrize("doc", [
    '[]', ' [ 1 , 2.5 ,"x,]", {"a":[1,{"b":"]"}]}, null, true, -1.5e-3, 0 ] ',
    '[12345678901234567890123, 1E+2, "\\u00e9\\ud83d\\ude00"]',
])
def test_parser_matches_json_loads_at_every_split(doc):
    want = json.loads(doc)
    raw = doc.encode()
    for block in range(1, 9):
        assert list(iter_json_array(io.BytesIO(raw), block=block)) == want


@pytest.mark.parametrize("doc, message", [
    ("", "empty input"), ('{"a": 1}', "expected a JSON array"), ("[1, 2", "missing ']'"),
    ("[1 2]", "expected ',' or ']'"), ("[1,]", "malformed JSON"), ("[1] x", "after the array"),
    ('[{"a": }]', "malformed JSON"), ("[2.]", "expected ',' or ']'"),
])
def test_parser_rejects_malformed_input(doc, message):
    for block in (1, 3, 1 << 20):
        with pytest.raises(ReportFormatError, match=message.replace("[", r"\[")):
            list(iter_json_array(io.BytesIO(doc.encode()), block=block))


def test_distinct_counter_is_exact_through_growth():
    rnd = random.Random(3)
    values = [f"T-{rnd.randint(0, 200_000)}" for _ in range(300_000)]
    c = DistinctCounter(capacity=4)
    for v in values:
        c.add(v)
    assert len(c) == len(set(values))


@pytest.fixture
def http_root(tmp_path):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0),
                              functools.partial(Quiet, directory=str(tmp_path)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield tmp_path, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_cli_url_streams_the_report(http_root):
    root, base = http_root
    rows = synthetic_rows(3_000)
    (root / "market_data_2026-09-19.json").write_text(json.dumps(rows))
    r = run_cli(["preview", "--url", f"{base}/market_data_2026-09-19.json", "--json",
                 "--rows", "2"], root)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["summary"] == oracle_summary(rows) and out["first_rows"] == rows[:2]
    r = run_cli(["preview", "--url", f"{base}/missing.json"], root)
    assert r.returncode == 2 and "HTTP 404" in one_error_line(r.stderr)


def test_cli_interactive_pages_and_quits(tmp_path):
    rows = synthetic_rows(50)
    f = tmp_path / "r.json"
    f.write_text(json.dumps(rows))
    r = invoke(["preview", "--file", f, "--interactive", "--rows", "3", "--json"],
               input="\nq\n")
    assert r.exit_code == 0, r.stderr
    assert "rows 1-3" in r.stdout and "rows 4-6" in r.stdout and "rows 7-9" not in r.stdout
    out = json.loads(r.stdout[r.stdout.index('{\n  "summary"'):])
    assert out["complete"] is False and out["summary"] == oracle_summary(rows[:6])
    r = invoke(["preview", "--file", f, "--interactive", "--rows", "20"], input="\n\n\n")
    assert r.exit_code == 0 and "rows 41-50" in r.stdout and "so far" not in r.stdout


@pytest.mark.parametrize("content, args, message", [
    (b"[1, 2", [], "truncated input"),
    (b"<html>", [], "expected a JSON array"),
    (None, ["--url", "http://x"], "exactly one of --file and --url"),
    (None, [], "no such file"),
])
def test_cli_errors_are_one_line(tmp_path, content, args, message):
    f = tmp_path / "r.json"
    if content is not None:
        f.write_bytes(content)
    r = invoke(["preview", "--file", f, *args])
    assert r.exit_code == 2
    assert message in one_error_line(r.stderr)


BIG = """
import json, os, resource
import pyarrow, pyarrow.compute  # loaded by the CLI anyway
from kalshi_platform.historical.report_preview import summarize
path = {path!r}
row = ('{{"date": "2026-09-19", "ticker_name": "KXHIGHNY-26SEP19-B%d.5", '
       '"report_ticker": "KXS%d", "payout_type": "binary", "open_interest": %d, '
       '"daily_volume": "%d", "block_volume": 0, "high": 55, "low": 40, "status": "%s"}}')
with open(path, "w") as f:   # ~110 MB, one row per market like the real report
    f.write("[")
    for i in range({n}):
        f.write((",\\n" if i else "") + row % (i, i % 997, i % 5000, i % 777,
                                              "active" if i % 3 else "finalized"))
    f.write("]")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(path, "rb") as f:
    s, head = summarize(f)
print(json.dumps({{"rows": s.rows, "tickers": s.tickers, "series": s.series,
                  "volume": s.totals["daily_volume"], "size": os.path.getsize(path),
                  "before_kib": before,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def test_large_report_is_never_held_in_memory(tmp_path):
    """500k rows (~110 MB): peak RSS grows by a small fraction of the file (measured +22 MiB,
    mostly the distinct-ticker table), where ``json.load`` would need several times its size."""
    n = 500_000
    r = run_py(BIG.format(path=str(tmp_path / "big.json"), n=n), tmp_path)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert (m["rows"], m["tickers"], m["series"]) == (n, n, 997)
    assert m["volume"] == sum(i % 777 for i in range(n))
    assert m["size"] > 100 << 20
    grew = (m["peak_kib"] - m["before_kib"]) * 1024
    assert grew < m["size"] // 3, (grew, m["size"])
