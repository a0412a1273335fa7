"""The benchmark's ceiling, and the bare grpc.aio echo server it is measured on."""

from __future__ import annotations

import subprocess
import sys

import grpc
from reviewrank.v1 import bench_pb2, ranking_pb2

from service.benchsuite import Row, Suite, _free_port, choose_ceiling
from service.loadgen import LoadReport


def _row(scenario: str, rps: float) -> Row:
    return Row(scenario, "real", LoadReport("m", count=int(rps * 10), duration=10.0), 100.0)


def test_the_ceiling_is_the_faster_server_mode_not_the_echo_without_interceptors() -> None:
    suite = Suite(duration=10, warmup=1)
    suite.rows = [
        _row("echo 100 candidates", 3000),
        _row("echo 100, no interceptor", 5000),
        _row("rank 100, no interceptor", 2500),
        _row("echo 100, bare grpc.aio server", 3500),
    ]

    ceiling = choose_ceiling(suite)

    assert "echo 100, bare grpc.aio server" == ceiling.scenario
    assert 0.5 == suite.rows[2].extra["× echo without interceptor"]


def test_the_bare_aio_echo_server_echoes_the_candidates() -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "service.bench_service", f"127.0.0.1:{port}"])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            echo = channel.unary_unary(
                "/reviewrank.v1.BenchService/Echo",
                request_serializer=bench_pb2.EchoRequest.SerializeToString,
                response_deserializer=bench_pb2.EchoResponse.FromString,
            )
            candidates = [ranking_pb2.Candidate(product_id=f"p{i}", relevance=i) for i in range(5)]

            response = echo(bench_pb2.EchoRequest(candidates=candidates), timeout=10)

        assert candidates == list(response.candidates)
    finally:
        server.kill()
        server.wait()
