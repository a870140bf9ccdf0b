"""Issue 15 §4: the compose file's scale-out profile, validated without a Docker engine.

Parses docker-compose.yml (YAML merge keys resolved by the loader) and checks the ``scale``
profile: a 3-node JetStream cluster whose routes name every node, the streams created R3 by
``nats init``, two plant shards plus a standby of shard 0, and a writer into QuestDB and
Parquet, all from the image the stack builds. Every ``kalshi-platform`` command line in the
profile is parsed by the real CLI (its click commands, no execution), so an option that does
not exist (or a missing required one) fails here, not at ``docker compose up``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVICES = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
SCALE = {n: s for n, s in SERVICES.items() if "scale" in (s.get("profiles") or [])}
NODES = ("nats1", "nats2", "nats3")
CLUSTER_URL = "nats://" + ",".join(f"{n}:4222" for n in NODES)


def _argv(svc: dict) -> list[str]:
    """The kalshi-platform argv a service runs (its entrypoint is the CLI, or ``sh -c`` with
    ``exec kalshi-platform …`` / ``… && exec kalshi-platform …``); ``$$VAR`` → the service's
    environment value (compose's escaped ``$``)."""
    cmd = svc["command"]
    if svc.get("entrypoint") == ["sh", "-c"]:
        line = cmd[0].split("&&")[-1].strip()
        env = svc.get("environment") or {}
        for k, v in env.items():
            line = line.replace(f"$${k}", str(v))
        line = line.replace("$$KALSHI_RUN_ARGS", "--markets KXEXAMPLE-1")  # from .env
        words = shlex.split(line)
        assert words[:2] == ["exec", "kalshi-platform"], line
        return words[2:]
    return list(cmd)


def _parse(argv: list[str]):
    """Parse ``argv`` with the real CLI's command tree (Typer's click), no execution; returns
    the leaf command's context (``.params``). Raises click's usage errors for an unknown
    command or option, or a missing required one."""
    import typer

    from kalshi_platform.tools import cli

    cli._register_optional()
    cmd = typer.main.get_command(cli.app)
    name, args = "kalshi-platform", list(argv)
    while hasattr(cmd, "get_command"):  # a group: walk down to the (sub)command
        ctx = cmd.make_context(name, [], resilient_parsing=True)
        name, args = args[0], args[1:]
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"no command {name!r} in {argv}"
        cmd = sub
    return cmd.make_context(name, args)


def test_three_jetstream_nodes_routed_to_each_other():
    for n in NODES:
        args = SCALE[n]["command"]
        assert "--js" in args and f"--name={n}" in args
        routes = next(a for a in args if a.startswith("--routes="))
        assert sorted(r.split("//")[1].split(":")[0] for r in routes.split("=", 1)[1].split(",")) \
            == list(NODES)
        assert any(a.startswith("--sd=") for a in args)  # file storage on a volume


def test_streams_created_r3_by_nats_init():
    argv = _argv(SCALE["nats-init"])
    ctx = _parse(argv)
    assert argv[:2] == ["nats", "init"] and ctx.params["url"] == CLUSTER_URL
    assert ctx.params["events_replicas"] == 3 and ctx.params["book_replicas"] == 3


def test_two_shards_a_standby_and_a_writer_from_the_built_image():
    built = {s["image"] for s in SERVICES.values() if "build" in s}
    shards = {}
    for name, svc in SCALE.items():
        if name.startswith("nats"):
            continue
        assert svc["image"] in built, name  # the image this compose file builds
        argv = _argv(svc)
        ctx = _parse(argv)
        if argv[0] == "run":
            assert ctx.params["publish"] == CLUSTER_URL
            shards.setdefault(ctx.params["shard"], []).append(name)
        elif argv[0] == "writer":
            assert CLUSTER_URL in ctx.params.values()  # --from the whole cluster
            assert set(ctx.params["sink"].split(",")) == {"questdb", "parquet"}
    assert sorted(shards) == ["0/2", "1/2"]
    assert len(shards["0/2"]) == 2 and len(shards["1/2"]) == 1  # shard 0 has its standby
    assert "writer" in SCALE


def test_the_parser_refuses_an_option_that_does_not_exist():
    """The check above can fail: a made-up option is a usage error."""
    with pytest.raises(Exception, match="(?i)no such option"):
        _parse(["run", "--markets", "X", "--shard", "0/2", "--no-such-option"])
    with pytest.raises(AssertionError, match="no command"):
        _parse(["nats", "no-such-command"])
