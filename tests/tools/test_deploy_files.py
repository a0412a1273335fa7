"""docker-compose.yml, the Prometheus configuration and the alert rules (docker does not
run here): they parse, their ports and commands agree with the Dockerfile and the
settings, and every metric the alerts use is one a real server exports."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import yaml
from prometheus_client.parser import text_string_to_metric_families

from reviewrank.service.app.settings import from_env, metrics_host_port
from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import candidates, rating
from tests.observability_helpers import scrape_text

ROOT = Path(__file__).resolve().parents[2]


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def dockerfile() -> tuple[set[int], dict[str, str], list[str]]:
    """EXPOSEd ports, ENV values and the CMD of the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    exposed: set[int] = set()
    env: dict[str, str] = {}
    command: list[str] = []
    for line in text.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword == "EXPOSE":
            exposed |= {int(p) for p in rest.split()}
        elif keyword == "ENV":
            env.update(item.split("=", 1) for item in rest.split())
        elif keyword == "CMD":
            command = yaml.safe_load(rest)
    return exposed, env, command


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def test_compose_publishes_the_ports_the_image_serves_on() -> None:
    compose = load("docker-compose.yml")
    service = compose["services"]["reviewrank"]
    exposed, image_env, command = dockerfile()
    environment = {**image_env, **service["environment"]}
    settings = from_env(environment)  # the compose environment is valid configuration

    grpc_port = port_of(settings.address)
    metrics = metrics_host_port(settings)
    assert metrics is not None
    assert {grpc_port, metrics[1]} == exposed == {50051, 9464}
    assert {f"{grpc_port}:{grpc_port}", f"{metrics[1]}:{metrics[1]}"} == set(service["ports"])
    assert "0.0.0.0" == metrics[0]  # reachable from the Prometheus container
    assert "." == service["build"]
    assert ["reviewrank", "serve"] == command
    assert "reviewrank-data:/var/lib/reviewrank" in service["volumes"]
    assert str(settings.database).startswith("/var/lib/reviewrank/")
    secret = compose["secrets"][service["secrets"][0]]["file"]
    assert f"/run/secrets/{service['secrets'][0]}" == environment["REVIEWRANK_ADMIN_TOKEN_FILE"]
    assert secret.lstrip("./") in (ROOT / ".gitignore").read_text()


def test_prometheus_scrapes_the_metrics_port_and_loads_the_alerts() -> None:
    compose = load("docker-compose.yml")
    prometheus = compose["services"]["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"] if v.startswith("./"))
    config_file = next(
        c.split("=", 1)[1] for c in prometheus["command"] if c.startswith("--config.file=")
    )
    config = load(next(src for src, dst in mounts.items() if dst == config_file))
    metrics_port = port_of(
        compose["services"]["reviewrank"]["environment"]["REVIEWRANK_METRICS_ADDRESS"]
    )

    [job] = config["scrape_configs"]
    assert ["reviewrank:" + str(metrics_port)] == job["static_configs"][0]["targets"]
    assert set(config["rule_files"]) <= set(mounts.values())
    assert {src.lstrip("./") for src in mounts} <= {
        str(p.relative_to(ROOT)) for p in (ROOT / "deploy").iterdir()
    }
    assert ["reviewrank"] == prometheus["depends_on"]


def metric_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.add(family.name + "_total")  # a counter with no sample yet exports no series
        names |= {sample.name for sample in family.samples}
    return names


def test_every_metric_an_alert_uses_is_exported_by_a_real_server(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(metrics_address="127.0.0.1:0")
    client.feedback.SubmitRating(rating("p", "u", 4), timeout=10)
    client.ranking.Rank(ranking_pb2.RankRequest(candidates=candidates("p")), timeout=10)
    exported = metric_names(scrape_text(client.server.metrics_port or 0))
    rules = [rule for group in load("deploy/alerts.yml")["groups"] for rule in group["rules"]]

    used = set()
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule)
        assert rule["labels"]["severity"] in ("page", "warn")
        used |= set(re.findall(r"\b(?:grpc_server|reviewrank|process)_[a-z_]+", rule["expr"]))

    assert 7 == len(rules)
    assert set() == used - exported
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "reviewrank_change_feed_lag_events",
    } <= used
    # The grpc_code values the rules name are the label values the server exports.
    codes = {
        code
        for rule in rules
        for listed in re.findall(r'grpc_code=~"([^"]+)"', rule["expr"])
        for code in listed.split("|")
    }
    assert codes
    assert set() == codes - {code.name for code in grpc.StatusCode}


def test_the_postgresql_compose_layer_runs_the_image_on_its_database() -> None:
    compose = load("docker-compose.yml")
    layer = load("deploy/compose.postgres.yml")
    base, over = compose["services"]["reviewrank"], layer["services"]["reviewrank"]
    postgres = layer["services"]["postgres"]
    _exposed, image_env, command = dockerfile()
    settings = from_env({**image_env, **base["environment"], **over["environment"]})

    storage = settings.storage
    assert "postgresql" == storage.kind
    assert "postgres:5432" in storage.url and "@" in storage.url
    assert ":" not in storage.url.split("//", 1)[1].split("@", 1)[0]  # no password in it
    assert command == over["command"]  # the image's command, kept under the new entrypoint
    assert "service_healthy" == over["depends_on"]["postgres"]["condition"]
    database, user = storage.url.rsplit("/", 1)[1], storage.url.split("//")[1].split("@")[0]
    assert (user, database) == (
        postgres["environment"]["POSTGRES_USER"],
        postgres["environment"]["POSTGRES_DB"],
    )
    assert ["pg_isready", "-U", user, "-d", database] == postgres["healthcheck"]["test"][1:]
    secret = layer["secrets"]["postgres_password"]["file"]
    assert secret.lstrip("./") in (ROOT / ".gitignore").read_text()
    assert set(over["secrets"]) >= {"postgres_password", *base["secrets"]}


def test_the_postgresql_layers_entrypoint_sets_pgpassword_and_runs_the_command(
    tmp_path: Path,
) -> None:
    import subprocess

    layer = load("deploy/compose.postgres.yml")
    entrypoint = layer["services"]["reviewrank"]["entrypoint"]
    secret = tmp_path / "postgres_password"
    secret.write_text("s3cret")
    # As compose runs it: $$ is compose's escape for $; the secret at its mount point.
    script = entrypoint[2].replace("$$", "$").replace("/run/secrets/postgres_password", str(secret))

    done = subprocess.run(
        [entrypoint[0], entrypoint[1], script, entrypoint[3], "sh", "-c", 'echo "$PGPASSWORD"'],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip

    assert "s3cret" == done.stdout.strip()
