"""`kalshi-platform bench exchange` output (shape and checks on a small mix, never speed)."""

import json
import subprocess
import sys

from kalshi_platform.bench.exchange import build_mix, run_exchange_bench

CLI = [sys.executable, "-c", "from kalshi_platform.tools.cli import main; main()"]


def test_mix_has_every_kind_and_engines_agree():
    ours, base, counts = build_mix(3000, seed=1)
    assert len(ours) == len(base) == 3000 and min(counts.values()) > 300
    res = run_exchange_bench(ops=3000, repeat=1, seed=1)
    assert res["checks"] == {"same_trades": True, "same_volume": True, "matched_one_each": True,
                             "all_ok": True}
    assert res["matched"] == res["inserts"] and res["ours_matched_per_s"] > 0
    assert res["trades"] > 100 and res["ours_events_per_s"] > 0 and res["baseline_per_s"] > 0
    assert res["reference"]["inserts_per_s"] == 416_000


def test_cli_json_and_bad_input():
    r = subprocess.run(CLI + ["bench", "exchange", "--ops", "2000", "--repeat", "1", "--quiet",
                              "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ops"] == 2000 and res["checks"]["all_ok"]
    r = subprocess.run(CLI + ["bench", "exchange", "--ops", "10", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "ops must be >= 1000" in r.stderr
    assert r.stderr.count("\n") == 1  # one line
