"""Admin, health and reflection services, and binding rules, over a real server."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from reviewrank.service.api.server import SERVICE_NAMES
from reviewrank.service.domain.errors import AddressInUse
from reviewrank.v1 import admin_pb2
from tests.conftest import Client


def test_get_weights_returns_the_loaded_file(client: Client) -> None:
    response = client.admin.GetWeights(admin_pb2.GetWeightsRequest())

    assert 1 == response.version
    assert "default" == response.default_profile
    assert client.settings.weights.read_text() == response.source_toml
    assert str(client.settings.weights) == response.source
    default = next(p for p in response.profiles if p.name == "default")
    assert 1.0 == pytest.approx(sum(default.weights.values()))
    assert (True, 10.0, 0.95) == (
        default.prior_mean_from_catalogue,
        default.prior_strength,
        default.confidence,
    )


@pytest.mark.parametrize("service", ["", *SERVICE_NAMES])
def test_health_reports_serving_for_the_server_and_each_service(
    client: Client, service: str
) -> None:
    stub = health_pb2_grpc.HealthStub(client.channel)

    response = stub.Check(health_pb2.HealthCheckRequest(service=service))

    assert health_pb2.HealthCheckResponse.SERVING == response.status


def test_health_of_an_unknown_service_is_not_found(client: Client) -> None:
    stub = health_pb2_grpc.HealthStub(client.channel)

    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="nope.Service"))

    assert grpc.StatusCode.NOT_FOUND == info.value.code()


def reflect(client: Client, **request: str) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    [response] = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]))
    )
    return response


def files_of(
    response: reflection_pb2.ServerReflectionResponse,
) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    out = {}
    for raw in response.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        out[proto.name] = proto
    return out


def test_reflection_lists_every_service(client: Client) -> None:
    response = reflect(client, list_services="")

    names = {s.name for s in response.list_services_response.service}
    assert {
        *SERVICE_NAMES,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        ("reviewrank.v1.RankingService", "reviewrank/v1/ranking.proto"),
        ("reviewrank.v1.RankingService.Rank", "reviewrank/v1/ranking.proto"),
        ("reviewrank.v1.FeedbackService.SubmitBatch", "reviewrank/v1/feedback.proto"),
        ("reviewrank.v1.AdminService.GetWeights", "reviewrank/v1/admin.proto"),
        ("reviewrank.v1.RankRequest", "reviewrank/v1/ranking.proto"),
    ],
)
def test_reflection_resolves_services_methods_and_messages(
    client: Client, symbol: str, file: str
) -> None:
    """ghz and grpcurl ask for the file containing a method symbol such as pkg.Service.Method."""
    files = files_of(reflect(client, file_containing_symbol=symbol))

    assert file in files
    assert "google/protobuf/timestamp.proto" in files or file == "reviewrank/v1/ranking.proto"


def test_reflection_answers_not_found_for_an_unknown_method(client: Client) -> None:
    response = reflect(client, file_containing_symbol="reviewrank.v1.RankingService.Nope")

    assert grpc.StatusCode.NOT_FOUND.value[0] == response.error_response.error_code


def test_reflection_serves_files_by_name(client: Client) -> None:
    files = files_of(reflect(client, file_by_filename="reviewrank/v1/feedback.proto"))

    assert {"reviewrank/v1/feedback.proto", "google/protobuf/timestamp.proto"} == set(files)


def test_a_second_server_on_the_same_port_fails_to_start(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server()

    with pytest.raises(AddressInUse):
        start_server(
            address=f"127.0.0.1:{first.port}",
            database=first.settings.database.with_name("other.db"),
        )
