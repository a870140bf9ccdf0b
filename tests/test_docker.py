"""Dockerfile, docker-compose.yml, env.example and the EOD schedule, validated without a Docker
engine (none on these machines): parse the files and check services, images, ports, volumes,
env wiring, and that every command they run exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from kalshi_platform.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # ${…} kept verbatim
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
FIELDS = {f"KALSHI_{name.upper()}" for name in Settings.model_fields}


def _env_example() -> dict[str, str]:
    out = {}
    for line in (ROOT / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def test_services_and_images():
    assert {"questdb", "plant", "eod", "prometheus", "grafana"} <= set(SERVICES)
    img = SERVICES["questdb"]["image"]
    m = re.fullmatch(r"questdb/questdb:(\d+)\.(\d+)\.(\d+)", img)
    assert m and m.group(1) == "8", f"QuestDB image must be an official, pinned 8.x tag: {img}"
    assert SERVICES["plant"]["build"] == "." and SERVICES["plant"]["image"] == "kalshi-platform:latest"
    assert SERVICES["eod"]["image"] == SERVICES["plant"]["image"]


def test_questdb_ports_and_volume():
    ports = {p.split(":")[-1].split("/")[0] for p in SERVICES["questdb"]["ports"]}
    assert ports == {"9000", "9009", "8812"}
    vols = SERVICES["questdb"]["volumes"]
    assert any(v.endswith(":/var/lib/questdb") for v in vols)
    named = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", [])
             if not v.startswith((".", "/"))}
    assert named <= set(COMPOSE["volumes"]), "every named volume is declared"


def test_plant_and_eod_wiring():
    for name in ("plant", "eod"):
        s = SERVICES[name]
        assert s["restart"] in ("unless-stopped", "always")
        assert s["env_file"] == ".env"
        env = s["environment"]
        assert env["KALSHI_QUESTDB_HOST"] == "questdb", "the service reaches QuestDB by its name"
        assert {k for k in env if k.startswith("KALSHI_")} <= FIELDS, "only real settings"
        assert "questdb" in s["depends_on"]
    plant_cmd = " ".join(SERVICES["plant"]["command"])
    assert "kalshi-platform db init --wait" in plant_cmd and "exec kalshi-platform run" in plant_cmd
    assert "--sink questdb" in plant_cmd and "$$KALSHI_RUN_ARGS" in plant_cmd
    assert int(str(SERVICES["plant"]["stop_grace_period"]).rstrip("s")) >= 30
    assert any(v.endswith(":/keys:ro") for v in SERVICES["plant"]["volumes"])
    assert SERVICES["plant"]["environment"]["KALSHI_PRIVATE_KEY_PATH"].startswith("/keys/")
    assert SERVICES["eod"]["entrypoint"] == ["eod-daily.sh"]
    assert SERVICES["eod"]["environment"]["EOD_AT"] == "00:05"


def test_env_example_documents_every_setting():
    env = _env_example()
    assert FIELDS <= set(env), f"undocumented: {sorted(FIELDS - set(env))}"
    compose_only = {"KALSHI_RUN_ARGS", "KALSHI_EOD_ARGS", "KALSHI_BIND_ADDR"}
    assert set(env) - FIELDS <= compose_only
    for k in compose_only:  # compose-only variables are used
        assert k in (ROOT / "docker-compose.yml").read_text() + (ROOT / "docker" / "eod-daily.sh").read_text()


def test_dockerfile_is_slim_non_root_and_copies_what_exists():
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.M)
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["kalshi-platform"]' in DOCKERFILE
    for src in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", DOCKERFILE, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), f"COPY source missing: {part}"
    for var in re.findall(r"(KALSHI_[A-Z_]+)=", DOCKERFILE):
        assert var in FIELDS


@pytest.mark.parametrize("now_s, at, delay", [
    (3 * 60, "00:05", 120),                     # 00:03 → today 00:05
    (5 * 60, "00:05", 86_400),                  # exactly 00:05 → tomorrow
    (3600, "00:05", 86_400 - 3600 + 300),       # 01:00 → tomorrow 00:05
    (0, "08:09", 8 * 3600 + 9 * 60),
])
def test_eod_schedule_next_delay(now_s, at, delay):
    now = 86_400 * 20_400 + now_s
    out = subprocess.run(["sh", str(ROOT / "docker" / "eod-daily.sh"), "--next-delay"],
                         env={"EOD_NOW_EPOCH": str(now), "EOD_AT": at, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=10, check=True)
    assert int(out.stdout) == delay


def test_readme_compose_section_matches_the_files():
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up -d --build" in readme
    assert "cp env.example .env" in readme
    for port in ("9000", "8812"):
        assert port in readme
    assert "questdb/questdb:" + SERVICES["questdb"]["image"].split(":")[1] in readme


def test_every_command_the_stack_runs_exists():
    """`db init --wait`, `run … --sink questdb` and `eod` (run by docker/eod-daily.sh) are real
    commands with those options."""
    from typer.testing import CliRunner

    from kalshi_platform.tools.cli import _register_optional, app

    _register_optional()
    for cmd in (["db", "init", "--help"], ["run", "--help"], ["eod", "--help"]):
        r = CliRunner().invoke(app, cmd, env={"COLUMNS": "200"})
        assert r.exit_code == 0, (cmd, r.output)
    assert "--wait" in CliRunner().invoke(app, ["db", "init", "--help"], env={"COLUMNS": "200"}).output
    assert "--sink" in CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "kalshi-platform eod" in (ROOT / "docker" / "eod-daily.sh").read_text()
