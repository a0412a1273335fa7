"""ghz configs and the Python load driver, checked against a real server."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from reviewrank.service.cli import loadgen
from reviewrank.service.cli import main as cli
from reviewrank.service.cli.loadgen import LoadSpec, run_load
from reviewrank.service.tools import ghz_configs
from reviewrank.service.tools.bench_servers import ESTABLISHED
from reviewrank.v1 import feedback_pb2
from tests.conftest import Client
from tests.helpers import rating

REFLECTION_CONFIGS = sorted((ghz_configs.GHZ_DIR / "reflection").glob("*.json"))


def fill_templates(value: Any, n: int) -> Any:
    """What ghz's template functions would produce for request number n."""
    if isinstance(value, dict):
        return {k: fill_templates(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_templates(v, n) for v in value]
    if isinstance(value, str):
        return value.replace("{{newUUID}}", f"uuid-{n}").replace("{{.RequestNumber}}", str(n))
    return value


def test_committed_ghz_configs_match_the_generator(tmp_path: Path) -> None:
    for path in ghz_configs.write(tmp_path):
        committed = ghz_configs.GHZ_DIR / path.relative_to(tmp_path)
        assert committed.read_text() == path.read_text(), f"{committed} is stale"


def test_protoset_configs_name_the_shipped_descriptor_set() -> None:
    for path in sorted((ghz_configs.GHZ_DIR / "protoset").glob("*.json")):
        config = json.loads(path.read_text())
        assert (ghz_configs.ROOT / config["protoset"]).is_file()


@pytest.mark.parametrize("path", REFLECTION_CONFIGS, ids=lambda p: p.stem)
def test_ghz_config_call_succeeds_knowing_only_what_reflection_says(
    client: Client, path: Path
) -> None:
    """As ghz does: resolve the method symbol by reflection, build the request from JSON."""
    config = json.loads(path.read_text())
    category = config["data"].get("category")
    if category:  # Top of a category no product has is NOT_FOUND
        client.feedback.SubmitRating(rating("p1", "u1", 5, category=category))
    service_name, method_name = config["call"].split("/")
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(client.channel))
    method = pool.FindMethodByName(f"{service_name}.{method_name}")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = client.channel.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )

    for n in range(2):
        request = json_format.ParseDict(fill_templates(config["data"], n), request_class())
        response, rpc = call.with_call(request, timeout=10)
        assert grpc.StatusCode.OK == rpc.code()
        assert response is not None


def test_load_driver_counts_every_call_and_its_latency(client: Client) -> None:
    template = json.dumps({"candidates": [{"productId": "a"}, {"productId": "b"}]})
    spec = LoadSpec(
        target=client.target, method="reviewrank.v1.RankingService/Rank", templates=(template,),
        concurrency=4, processes=2, duration=None, total=200,
    )  # fmt: skip

    report = run_load(spec)

    assert (200, {}, 200) == (report.count, report.errors, report.ok)
    lat = report.latency_ms
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert report.rps > 0


def test_load_driver_counts_errors_by_status_code(client: Client) -> None:
    template = json.dumps({"eventId": "e{{n}}", "productId": "p", "userId": "u{{n}}", "stars": 9})
    spec = LoadSpec(
        target=client.target, method="/reviewrank.v1.FeedbackService/SubmitRating",
        templates=(template,), concurrency=2, duration=None, total=20,
    )  # fmt: skip

    report = run_load(spec)

    assert {"INVALID_ARGUMENT": 20} == report.errors


def test_load_driver_templates_give_every_call_a_new_event(client: Client) -> None:
    template = json.dumps(
        {"eventId": "e-{{uuid}}", "productId": "p", "userId": "u-{{n}}", "stars": 5}
    )
    spec = LoadSpec(
        target=client.target, method="reviewrank.v1.FeedbackService/SubmitRating",
        templates=(template,), concurrency=3, processes=2, duration=None, total=30,
    )  # fmt: skip

    run_load(spec)

    assert 30 == client.server.app.catalogue.seq


def _children_connections(port: int) -> int:
    """TCP connections to ``port`` held by this process's children (the load driver's
    client processes). Counting every socket on the port counted, once in a whole run of
    the suite, a seventh connection the driver had not made (most likely a channel of an
    earlier test, in this process, reconnecting to a port number used again)."""
    inodes = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == ESTABLISHED:
                inodes.add(f"socket:[{fields[9]}]")
    me, count = str(os.getpid()), 0
    for process in Path("/proc").iterdir():
        try:
            if not process.name.isdigit() or (
                (process / "stat").read_text().rsplit(")", 1)[1].split()[1] != me
            ):
                continue
            count += sum(os.readlink(fd) in inodes for fd in (process / "fd").iterdir())
        except OSError:  # a process that ended meanwhile
            continue
    return count


def test_load_driver_opens_the_connections_asked_for_in_each_process(client: Client) -> None:
    port = int(client.target.rsplit(":", 1)[1])
    spec = LoadSpec(
        target=client.target, method="reviewrank.v1.RankingService/Top", templates=("{}",),
        concurrency=6, processes=2, connections=3, duration=2.0,
    )  # fmt: skip
    seen: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_load, spec)
        while not running.done():
            seen.append(_children_connections(port))
            time.sleep(0.05)
        report = running.result()

    assert 2 * 3 == max(seen)
    assert ({}, 3) == (report.errors, report.connections)


def test_bench_command_prints_a_ghz_like_summary(
    client: Client, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "report.json"

    code = cli.main([
        "bench", "--server", client.target, "--call", "reviewrank.v1.RankingService/Top",
        "-d", "{}", "-c", "2", "-n", "40", "--json", str(out),
    ])  # fmt: skip

    text = capsys.readouterr().out
    assert 0 == code
    for heading in ("Summary:", "Requests/sec:", "99 % in", "[OK]   40 responses"):
        assert heading in text
    assert 40 == json.loads(out.read_text())["count"]


def test_a_template_with_uuids_is_serialized_once_and_each_call_gets_a_new_uuid() -> None:
    """Only the uuid's bytes are swapped per call: the result is what parsing the JSON
    with that uuid would give."""
    template = json.dumps(
        {
            "events": [
                {
                    "rating": {
                        "eventId": f"b-{{{{uuid}}}}-{k}",
                        "productId": "p",
                        "userId": "u-{{uuid}}",
                        "stars": 1 + k,
                    }
                }
                for k in range(3)
            ]
        }
    )
    method = "/reviewrank.v1.FeedbackService/SubmitBatch"
    encode = loadgen._encoder(method, [template])

    first, second = encode(0), encode(1)

    assert loadgen._with_uuid_slot(template, loadgen._message_class(method)) is not None

    ids = []
    for encoded in (first, second):
        request = feedback_pb2.SubmitBatchRequest.FromString(encoded)
        uuid = request.events[0].rating.event_id[2:34]
        filled = template.replace("{{uuid}}", uuid)
        assert (
            encoded
            == json_format.Parse(filled, feedback_pb2.SubmitBatchRequest()).SerializeToString()
        )
        ids.append(uuid)
    assert ids[0] != ids[1] and all(len(u) == 32 for u in ids)


def test_load_driver_at_a_fixed_rate_serves_fewer_callers_than_processes(client: Client) -> None:
    # One caller over two processes: the second process has no caller of its own.
    spec = LoadSpec(
        target=client.target, method="reviewrank.v1.RankingService/Top", templates=("{}",),
        concurrency=1, processes=2, rps=20, duration=None, total=6,
    )  # fmt: skip

    report = run_load(spec)

    assert (6, {}) == (report.count, report.errors)
