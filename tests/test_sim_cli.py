"""``kalshi-platform sim`` as a process (issue 13 §4): the rate-limit options answer 429 over
real HTTP and the exit summary counts them; bad option values are one line, exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from conftest import COCKPIT, REPO_ROOT
from sim_support import start_sim_process

CLI = [sys.executable, "-m", "kalshi_platform.tools.cli"]


def test_sim_rate_limit_option_and_summary(tmp_path):
    p, _, rest = start_sim_process(CLI, COCKPIT, tmp_path, "--rest-fixtures",
                                   str(REPO_ROOT / "data" / "rest"), "--rate-limit-read", "2")
    try:
        with httpx.Client() as h:
            codes = [h.get(rest + "/exchange/status").status_code for _ in range(4)]
            body = h.post(rest + "/markets", json={"ticker": "X"})
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
    # four GETs within well under a second: the 1 s bucket holds 2
    assert codes[:2] == [200, 200] and codes.count(429) >= 1
    assert body.status_code == 405  # a POST with a body is answered (write bucket unlimited)
    assert p.returncode == 0
    assert f"{codes.count(429)} × 429 rate-limited" in err


def test_sim_bad_rate_limit_is_one_line_exit_2():
    r = subprocess.run(CLI + ["sim", "--replay", str(COCKPIT), "--rate-limit-write", "-1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--rate-limit-write" in lines[0]
