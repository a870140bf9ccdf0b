"""Issue 12 §3: a real Prometheus (Debian's ``prometheus`` binary) scrapes a live ``run``.

Prometheus listens on loopback with a temporary config: a 1 s scrape of the run's
``/metrics`` and the shipped alert rules. The run plays the bundled capture from the local sim
with every 25th frame dropped; the test queries Prometheus's HTTP API until its
``kalshi_sequence_gaps_total`` equals the run's (bounded wait), stops the run and checks the
value against the gaps in the run's summary. Skipped with a reason when the binary is absent
(``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from metrics_support import run_with_metrics, scrape, wait_for

ALERTS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus binary not installed (Debian package prometheus; .ci/run installs it)")


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, **params) -> dict:
    """GET Prometheus's ``/api/v1/<path>``: its ``data`` (fails on an error status)."""
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """Prometheus on 127.0.0.1 scraping ``target`` (host:port) every second with the shipped
    rules; yields its base URL once ready, terminates it on exit."""
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "kalshi-platform",
                            "static_configs": [{"targets": [target]}]}]}))
    port = free_port()
    p = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                          f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready():
            if p.poll() is not None:
                raise AssertionError(f"prometheus exited {p.returncode}: {p.stderr.read()}")
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as r:
                return r.status == 200
        wait_for(ready, 20, "prometheus ready")
        yield base
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_prometheus_scrapes_the_runs_gaps(tmp_path):
    """Prometheus's kalshi_sequence_gaps_total reaches the run's gaps (10 dropped frames),
    the target is up, the shipped rules load, and the run's summary agrees."""
    with run_with_metrics(tmp_path, drop_every=25) as r:
        target = urllib.parse.urlparse(r["url"]).netloc
        assert target.startswith("127.0.0.1:")
        with prometheus(tmp_path, target) as base:
            # the run healed every gap (the sim has finished playback): its counter is final
            def healed():
                s = scrape(r["url"])
                done = (s[("kalshi_books", (("state", "live"),))] == 12
                        and s[("kalshi_sequence_gaps_total", ())] == 10)
                return s if done else None
            direct = wait_for(healed, 20, "the run to heal its 10 gaps")
            gaps = direct[("kalshi_sequence_gaps_total", ())]

            def prom_gaps():
                res = api(base, "query", query="kalshi_sequence_gaps_total")["result"]
                return res and float(res[0]["value"][1]) == gaps and res
            (sample,) = wait_for(prom_gaps, 20, f"Prometheus to see {gaps:g} gaps")
            assert sample["metric"]["job"] == "kalshi-platform"
            up = api(base, "query", query='up{job="kalshi-platform"}')["result"]
            assert float(up[0]["value"][1]) == 1
            loaded = {rule["name"] for g in api(base, "rules")["groups"] for rule in g["rules"]}
            assert {"KalshiSequenceGap", "KalshiFeedStale", "QuestDBUnreachable"} <= loaded
    summary = json.loads(r["summary_path"].read_text())
    assert summary["gaps"] == gaps == float(sample["value"][1]) == 10
