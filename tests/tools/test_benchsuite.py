"""The benchmark's ceiling, the bare grpc.aio echo server it is measured on, and a
scenario measured while another load runs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc

from reviewrank.service.cli.loadgen import LoadReport
from reviewrank.service.tools.bench_servers import free_port, serving
from reviewrank.service.tools.benchsuite import Alongside, Row, Suite, choose_ceiling
from reviewrank.service.tools.templates import rating_templates
from reviewrank.v1 import bench_pb2, ranking_pb2


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
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "reviewrank.service.api.echo", f"127.0.0.1:{port}"]
    )
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


def test_a_scenario_with_a_load_alongside_runs_both_against_the_server(tmp_path: Path) -> None:
    database = tmp_path / "bench.db"
    writes = Alongside(
        "reviewrank.v1.FeedbackService/SubmitRating", rating_templates(["p1", "p2", "p3"]), 40.0
    )
    suite = Suite(duration=1.5, warmup=0.2)

    with serving(database) as server:
        row = suite.measure(
            server, "top alongside writes", "test", "reviewrank.v1.RankingService/Top",
            [json.dumps({"limit": 5})], concurrency=2, rps=40.0, alongside=writes,
        )  # fmt: skip

    assert (0, True) == (sum(row.report.errors.values()), row.report.count > 0)
    rate, method = row.extra["alongside"].split()
    assert ("SubmitRating/s", True) == (method, float(rate) > 0)  # (and no "errors")
    with sqlite3.connect(database) as db:
        [(ratings,)] = db.execute("SELECT count(*) FROM events").fetchall()
    assert ratings > 0
