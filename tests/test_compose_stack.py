"""Issue 12 §4: the compose stack's Prometheus and Grafana, validated without a Docker engine.

Parses docker-compose.yml, deploy/prometheus/prometheus.yml, the Grafana provisioning files
and the dashboard JSON, and checks:

* every published port of every service binds 127.0.0.1 once compose has interpolated the file
  with an empty environment (``${KALSHI_BIND_ADDR:-127.0.0.1}``), and the variable moves them;
* Prometheus loads the shipped alert rules and scrapes the plant's and the sim's
  ``--metrics-port`` (the ports and hosts the services are configured with);
* Grafana's datasource is that Prometheus, and its dashboard is provisioned from the mount;
* every metric name a dashboard query reads (PromQL parsed below) is one the code exports:
  the exported names come from the real collectors (``PlantCollector`` over a real plant, WS
  client, QuestDB writer and recorder, plus ``SimCollector``) served by ``serve_metrics`` on
  loopback and scraped, never from a hand-written list;
* ``promtool check config`` accepts prometheus.yml and ``promtool check rules`` parses every
  dashboard expression (both skip with a reason without promtool);
* a real Prometheus with the shipped config (targets pointed at a live ``run`` on loopback)
  answers every dashboard query, with data for each kalshi_* one (skips without the binary).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import COCKPIT

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
PROM_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "kalshi-platform.json"
#: series Prometheus itself makes for every target (not exported by the code)
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_VAR = re.compile(r"\$\{(\w+)(?:(:?-)([^}]*))?\}|\$(\w+)")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ``${V}``, ``$V``, ``${V:-default}`` (default when V is
    unset or empty), ``${V-default}`` (default when unset); ``$$`` is a literal ``$``."""
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(4)
        op, default = m.group(2), m.group(3) or ""
        val = env.get(name)
        if op == ":-" and not val:
            return default
        if op == "-" and val is None:
            return default
        return val or ""
    parts = text.split("$$")
    return "$".join(_VAR.sub(sub, p) for p in parts)


def compose(env: dict[str, str] | None = None) -> dict:
    """docker-compose.yml as compose reads it with ``env`` (default: no variables set)."""
    return yaml.safe_load(interpolate(COMPOSE_TEXT, env or {}))


def host_ip(port: str | int | dict) -> str:
    """The host address a compose ``ports`` entry publishes on ("0.0.0.0" when it names none:
    every interface). Short syntax ``[HOST:]HOST_PORT:CONTAINER_PORT[/proto]`` or long syntax."""
    if isinstance(port, dict):
        return port.get("host_ip") or "0.0.0.0"
    s = str(port).split("/")[0]
    if s.startswith("["):  # [::1]:9000:9000
        return s[1:s.index("]")]
    parts = s.split(":")
    return parts[0] if len(parts) == 3 else "0.0.0.0"


def published(services: dict) -> list[tuple[str, str | int | dict]]:
    return [(name, p) for name, s in services.items() for p in s.get("ports", [])]


def test_host_ip_reads_every_ports_syntax():
    assert host_ip("9000:9000") == "0.0.0.0"
    assert host_ip("9000") == "0.0.0.0"
    assert host_ip("127.0.0.1:9000:9000/tcp") == "127.0.0.1"
    assert host_ip("[::1]:9000:9000") == "::1"
    assert host_ip({"target": 9000, "published": 9000}) == "0.0.0.0"
    assert host_ip({"target": 9000, "host_ip": "127.0.0.1"}) == "127.0.0.1"
    assert interpolate("${A:-x}:${B-y}:$C:$$D", {"A": "", "B": ""}) == "x:::$D"


def test_every_published_port_binds_loopback_by_default():
    services = compose()["services"]
    ports = published(services)
    assert {n for n, _ in ports} >= {"questdb", "prometheus", "grafana"}
    wide = [(n, p) for n, p in ports if host_ip(p) != "127.0.0.1"]
    assert not wide, f"published on every interface: {wide}"
    qdb = {str(p).split(":")[-1] for p in services["questdb"]["ports"]}
    assert qdb == {"9000", "9009", "8812"}


def test_bind_address_is_one_documented_variable():
    """KALSHI_BIND_ADDR (documented in env.example, loopback there too) moves every port."""
    env = dict(line.split("=", 1) for line in (ROOT / "env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["KALSHI_BIND_ADDR"] == "127.0.0.1"
    moved = published(compose({"KALSHI_BIND_ADDR": "0.0.0.0"})["services"])
    assert moved and all(host_ip(p) == "0.0.0.0" for _, p in moved)


def _container_path(service: dict, host_path: str) -> str:
    """Where ``host_path`` (relative to the repo) is mounted in ``service``."""
    for v in service.get("volumes", []):
        src, dst = v.split(":")[:2]
        if Path(src).as_posix().lstrip("./") == host_path:
            return dst
    raise AssertionError(f"{host_path} is not mounted")


def test_prometheus_loads_the_rules_and_scrapes_the_metrics_ports():
    services = compose()["services"]
    prom = services["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", prom["image"]), prom["image"]
    cfg_path = _container_path(prom, "deploy/prometheus/prometheus.yml")
    assert f"--config.file={cfg_path}" in prom["command"]
    cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    # rule files resolve against the config's directory, in the repo and in the container
    rules_in_container = {str(Path(cfg_path).parent / r) for r in cfg["rule_files"]}
    assert _container_path(prom, "deploy/prometheus/alerts.yml") in rules_in_container
    assert all((PROM_DIR / r).is_file() for r in cfg["rule_files"])
    targets = {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]]
               for j in cfg["scrape_configs"]}
    alerts = (PROM_DIR / "alerts.yml").read_text()
    for job in re.findall(r'up\{job="([^"]+)"\}', alerts):
        assert job in targets, f"alerts.yml watches job {job}, which is not scraped"
    for svc, cmd in (("plant", "kalshi-platform run"), ("sim", "sim")):
        s = services[svc]
        env = s["environment"]
        assert env["KALSHI_METRICS_HOST"] == "0.0.0.0", "reachable on the compose network"
        want = f"{svc}:{env['KALSHI_METRICS_PORT']}"
        assert any(want in t for t in targets.values()), f"{want} not scraped: {targets}"
        assert cmd in " ".join(s["command"])
    assert "plant" in prom["depends_on"]
    assert "--metrics-port" not in " ".join(services["plant"]["command"])  # from the env


def test_grafana_provisions_the_datasource_and_the_dashboard():
    services = compose()["services"]
    graf = services["grafana"]
    assert re.fullmatch(r"grafana/grafana(-oss)?:\d+\.\d+\.\d+", graf["image"]), graf["image"]
    prov = _container_path(graf, "deploy/grafana/provisioning")
    assert prov == "/etc/grafana/provisioning"
    ds = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
                        .read_text())["datasources"]
    (prom_ds,) = [d for d in ds if d["type"] == "prometheus"]
    prom_port = str(services["prometheus"]["ports"][0]).split(":")[-1]
    assert prom_ds["url"] == f"http://prometheus:{prom_port}"
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" /
                                "kalshi-platform.yml").read_text())["providers"]
    dash_mount = _container_path(graf, "deploy/grafana/dashboards")
    assert any(p["options"]["path"] == dash_mount for p in providers)
    dash = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dash["panels"] for t in p["targets"]}
    assert uids == {prom_ds["uid"]}
    home = graf["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home == f"{dash_mount}/{DASHBOARD.name}"
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
             if not v.startswith((".", "/"))}
    assert named <= set(compose()["volumes"])


# --- PromQL -------------------------------------------------------------------------------

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                 "offset", "and", "or", "unless", "inf", "nan", "atan2"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not a function or
    aggregation (followed by ``(``), a keyword, a label inside ``{…}`` or a ``by``/``without``/
    ``on``/``ignoring``/``group_*`` list, a duration, a number, or inside a string."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group(0).lower() in _PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def test_promql_metric_names():
    assert promql_metric_names('histogram_quantile(0.99, sum by (le) (rate('
                               'x_seconds_bucket{job="a",le!="1e-3"}[1m])))') == {"x_seconds_bucket"}
    assert promql_metric_names("sum without (state) (b{state!='live'}) > 0 and on (job) "
                               "c offset 5m unless d") == {"b", "c", "d"}
    assert promql_metric_names("rate(a_sum[1m]) / rate(a_count[1m]) > 1e-3") == \
        {"a_sum", "a_count"}


def dashboard_exprs() -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every dashboard target."""
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]


_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "untyped": ("",),
             "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


def exported_series(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """``{sample name: (family, type)}`` of every series the code's collectors export: a real
    plant, WS client, QuestDB writer (never connects: no row is published) and recorder under
    ``PlantCollector``, and a sim under ``SimCollector``, served by ``serve_metrics`` on
    loopback and scraped once. A family without samples yet (no message seen) still counts,
    with the sample names its type gives it."""
    from kalshi_platform.ingestion.recorder import Recorder
    from kalshi_platform.ingestion.ws_client import KalshiWSClient
    from kalshi_platform.metrics import PlantCollector, SimCollector, serve_metrics
    from kalshi_platform.sim.server import SimServer
    from kalshi_platform.storage.questdb_rdb import QuestDBWriter
    from kalshi_platform.ticker_plant.plant import TickerPlant

    plant = TickerPlant()
    client = KalshiWSClient("ws://127.0.0.1:9/trade-api/ws/v2", plant)
    writer = QuestDBWriter("http::addr=127.0.0.1:9;", spool_dir=tmp_path / "spool",
                           close_timeout_s=0.1)
    recorder = Recorder(tmp_path / "rec")
    server = serve_metrics([PlantCollector(plant, client, [writer], recorder),
                            SimCollector(SimServer(COCKPIT))], 0)
    try:
        with urllib.request.urlopen(server.url, timeout=10) as r:
            text = r.read().decode()
    finally:
        server.close()
        writer.close()
        recorder.close()
    out: dict[str, tuple[str, str]] = {}
    for fam in text_string_to_metric_families(text):
        base = fam.name[:-len("_total")] if fam.type == "counter" and \
            fam.name.endswith("_total") else fam.name
        for suffix in _SUFFIXES.get(fam.type, ("",)):
            out[base + suffix] = (fam.name, fam.type)
        for s in fam.samples:
            out.setdefault(s.name, (fam.name, fam.type))
    return out


def test_every_dashboard_metric_is_exported(tmp_path):
    exported = exported_series(tmp_path)
    # the collectors really ran: design-card names are there, with their types
    assert exported["kalshi_processing_latency_seconds_bucket"][1] == "histogram"
    assert exported["kalshi_sequence_gaps_total"][1] == "counter"
    assert exported["questdb_row_count"][1] == "gauge"
    assert "kalshi_sim_frames_played_total" in exported
    queried: set[str] = set()
    for title, expr in dashboard_exprs():
        names = promql_metric_names(expr)
        assert names, (title, expr)
        queried |= names
        unknown = names - set(exported) - PROMETHEUS_SERIES
        assert not unknown, f"panel {title!r} reads metrics the code does not export: {unknown}"
        for n in names & set(exported):
            if n.endswith("_bucket"):
                assert exported[n][1] == "histogram", (title, n)
            if "histogram_quantile" in expr and n in exported:
                assert n.endswith("_bucket"), (title, n)
    # the panels the issue asks for: msg/s, gaps, book states, latency p99, spool, rows per table
    assert {"kalshi_messages_total", "kalshi_sequence_gaps_total", "kalshi_books",
            "kalshi_processing_latency_seconds_bucket", "kalshi_spool_rows",
            "questdb_row_count"} <= queried
    exprs = " ".join(e for _, e in dashboard_exprs())
    assert re.search(r"histogram_quantile\(0\.99,[^;]*kalshi_processing_latency_seconds_bucket",
                     exprs)
    assert "sum by (table) (questdb_row_count)" in exprs


needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian package prometheus; .ci/run installs it)")


@needs_promtool
def test_promtool_checks_the_config():
    r = subprocess.run(["promtool", "check", "config", str(PROM_DIR / "prometheus.yml")],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_expression(tmp_path):
    """Every dashboard query as a recording rule: ``promtool check rules`` parses its PromQL."""
    rules = [{"record": f"dashboard:panel_{i}", "expr": e}
             for i, (_, e) in enumerate(dashboard_exprs())]
    f = tmp_path / "dashboard_rules.yml"
    f.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True,
                       timeout=60, env={**os.environ})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules)} rules found" in r.stdout


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="prometheus binary not installed (Debian package prometheus; "
                           ".ci/run installs it)")
def test_dashboard_queries_answer_from_a_live_run(tmp_path):
    """The shipped prometheus.yml (its targets pointed at a live ``run`` against the sim on
    loopback, 1 s scrapes) evaluates every dashboard query without an error, and each one
    that reads kalshi_* series returns data. The QuestDB panels stay empty: the run has
    ``--sink none``. Bounded polling, no sleep."""
    from metrics_support import run_with_metrics, wait_for
    from test_prometheus_integration import api, free_port

    cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    cfg["rule_files"] = [str(PROM_DIR / r) for r in cfg["rule_files"]]
    with run_with_metrics(tmp_path, drop_every=25) as r:
        target = urllib.parse.urlparse(r["url"]).netloc
        for job in cfg["scrape_configs"]:
            job["static_configs"] = [{"targets": [target]}]
        (tmp_path / "prometheus.yml").write_text(json.dumps(cfg))
        port = free_port()
        p = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                              f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                              f"--web.listen-address=127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            exprs = [e for _, e in dashboard_exprs()]
            live = [e for e in exprs if "questdb_" not in e]

            def answered():
                empty = [e for e in live
                         if not api(base, "query", query=e)["result"]]
                return not empty
            wait_for(answered, 40, "every kalshi_* dashboard query to return data", step=0.5)
            for e in exprs:  # the QuestDB ones too: valid PromQL, evaluated without error
                api(base, "query", query=e)
        finally:
            p.terminate()
            p.wait(timeout=15)
