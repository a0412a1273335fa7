"""OpenTelemetry tracing of real RPCs, exported to memory: one SERVER span per reviewrank
call, continuing the caller's W3C trace, failed calls marked; health and reflection
untraced; and tracing off unless asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from reviewrank.service.api.server import ReviewrankServer, create_server
from reviewrank.service.ops import tracing
from reviewrank.v1 import feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.conftest import make_settings
from tests.helpers import candidates, rating

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = ("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN}-01")


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[ReviewrankServer, grpc.Channel, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server, port = create_server(make_settings(tmp_path), tracer_provider=provider)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, channel, exporter
    finally:
        channel.close()
        server.stop(grace=1.0)


def test_each_call_gets_a_server_span_continuing_the_callers_trace(
    traced: tuple[ReviewrankServer, grpc.Channel, InMemorySpanExporter],
) -> None:
    _server, channel, exporter = traced
    ranking = ranking_pb2_grpc.RankingServiceStub(channel)

    ranking.Rank(
        ranking_pb2.RankRequest(candidates=candidates("a", "b")),
        metadata=[TRACEPARENT],
        timeout=10,
    )

    [span] = exporter.get_finished_spans()
    assert "/reviewrank.v1.RankingService/Rank" == span.name
    assert SpanKind.SERVER == span.kind
    assert TRACE_ID == format(span.context.trace_id, "032x")
    assert span.parent is not None and PARENT_SPAN == format(span.parent.span_id, "016x")
    assert ("grpc", "reviewrank.v1.RankingService", "Rank", 0) == (
        span.attributes["rpc.system"],
        span.attributes["rpc.service"],
        span.attributes["rpc.method"],
        span.attributes["rpc.grpc.status_code"],
    )


def test_failed_calls_carry_their_status_and_server_faults_are_errors(
    traced: tuple[ReviewrankServer, grpc.Channel, InMemorySpanExporter],
) -> None:
    server, channel, exporter = traced
    ranking = ranking_pb2_grpc.RankingServiceStub(channel)
    with pytest.raises(grpc.RpcError):
        ranking.Rank(ranking_pb2.RankRequest(candidates=candidates("a", "a")), timeout=10)
    server.app.writer.close()  # writes now answer UNAVAILABLE (shutting down)
    feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
    with pytest.raises(grpc.RpcError):
        feedback.SubmitRating(rating("p", "u", 3), timeout=10)

    invalid, unavailable = exporter.get_finished_spans()
    # A caller's mistake is not the server's error (the semantic conventions for gRPC).
    assert (3, StatusCode.UNSET) == (
        invalid.attributes["rpc.grpc.status_code"],
        invalid.status.status_code,
    )
    assert (14, StatusCode.ERROR) == (
        unavailable.attributes["rpc.grpc.status_code"],
        unavailable.status.status_code,
    )


def test_health_checks_are_not_traced(
    traced: tuple[ReviewrankServer, grpc.Channel, InMemorySpanExporter],
) -> None:
    _server, channel, exporter = traced

    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=10
    )

    assert health_pb2.HealthCheckResponse.SERVING == response.status
    assert () == tuple(exporter.get_finished_spans())


def test_tracing_is_off_unless_configured() -> None:
    provider = tracing.provider_for("console")

    assert None is tracing.provider_for("off")
    assert isinstance(provider, TracerProvider)
    provider.shutdown()
