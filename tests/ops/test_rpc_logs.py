"""The per-RPC log lines of a real ``reviewrank serve`` process: request ids taken from the
caller and returned, outcome and duration, sampling of successful calls, trace ids when
tracing, and no token ever, in any line or on the metrics endpoint."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from reviewrank.service.api.auth import client_channel
from reviewrank.v1 import admin_pb2, admin_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.helpers import candidates
from tests.observability_helpers import scrape_text
from tests.process import ServerProcess

ADMIN_TOKEN = "admin-token-for-log-tests-5e1f"
API_TOKEN = "api-token-for-log-tests-77ad"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
WEIGHTS = "[profiles.default]\nweights = { wilson = 1 }\n"


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    (tmp_path / "weights.toml").write_text(WEIGHTS)
    return ServerProcess(
        "--database",
        str(tmp_path / "db.sqlite"),
        "--weights",
        str(tmp_path / "weights.toml"),
        *args,
        env=env,
    )


def stop(server: ServerProcess) -> None:
    os.kill(server.proc.pid, signal.SIGTERM)
    assert 0 == server.wait()


def rpc_lines(server: ServerProcess) -> list[dict[str, object]]:
    return [line for line in server.lines if line.get("event") == "rpc"]


def rank(channel: grpc.Channel, *products: str, metadata: list[tuple[str, str]] | None = None):  # type: ignore[no-untyped-def]
    """Calls Rank; returns the initial metadata and the status code."""
    stub = ranking_pb2_grpc.RankingServiceStub(channel)
    request = ranking_pb2.RankRequest(candidates=candidates(*products))
    try:
        _response, call = stub.Rank.with_call(request, metadata=metadata or [], timeout=10)
    except grpc.RpcError as error:
        return dict(error.initial_metadata()), error.code()  # type: ignore[attr-defined]
    return dict(call.initial_metadata()), grpc.StatusCode.OK


@pytest.fixture
def default_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = serve(tmp_path, "--log-level", "info")
    try:
        yield server
    finally:
        server.stop()


def test_each_call_is_logged_with_its_request_id_outcome_and_duration(
    default_server: ServerProcess,
) -> None:
    with grpc.insecure_channel(default_server.target) as channel:
        given, given_code = rank(channel, "a", "b", metadata=[("x-request-id", "req-from-shop-1")])
        fresh, _ = rank(channel, "a")
        refused, refused_code = rank(channel, "a", "a", metadata=[("x-request-id", "req-bad")])
    stop(default_server)

    lines = rpc_lines(default_server)
    assert (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT) == (given_code, refused_code)
    assert "req-from-shop-1" == given["x-request-id"]
    assert "req-bad" == refused["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", str(fresh["x-request-id"]))
    assert [
        ("req-from-shop-1", "OK", "info"),
        (fresh["x-request-id"], "OK", "info"),
        ("req-bad", "INVALID_ARGUMENT", "info"),
    ] == [(line["request_id"], line["code"], line["level"]) for line in lines]
    assert all(line["method"] == "/reviewrank.v1.RankingService/Rank" for line in lines)
    assert all(isinstance(line["duration_ms"], float) for line in lines)
    assert all("trace_id" not in line for line in lines)  # tracing is off


def test_sampled_out_successes_are_not_logged_failures_always_are_with_trace_ids_and_no_secret(
    tmp_path: Path,
) -> None:
    wrong = "wrong-token-0ddba11"
    server = serve(
        tmp_path,
        "--log-level",
        "debug",
        "--log-sample-rate",
        "0",
        "--tracing",
        "console",
        "--metrics-address",
        "127.0.0.1:0",
        env={"REVIEWRANK_ADMIN_TOKEN": ADMIN_TOKEN, "REVIEWRANK_API_TOKEN": API_TOKEN},
    )
    try:
        traceparent = ("traceparent", f"00-{TRACE_ID}-b7ad6b7169203331-01")
        with client_channel(server.target, token=API_TOKEN) as channel:
            _, ok = rank(channel, "a", metadata=[traceparent, ("x-request-id", "sampled-out")])
            _, bad = rank(channel, "a", "a", metadata=[traceparent, ("x-request-id", "kept")])
        for token in (ADMIN_TOKEN, wrong):
            with client_channel(server.target, token=token) as channel:
                admin = admin_pb2_grpc.AdminServiceStub(channel)
                with contextlib.suppress(grpc.RpcError):
                    admin.ReloadWeights(
                        admin_pb2.ReloadWeightsRequest(toml="bad = [", actor="ops"), timeout=10
                    )
        serving = next(line for line in server.lines if line.get("event") == "serving")
        metrics = scrape_text(int(serving["metrics_port"]))  # type: ignore[call-overload]
        stop(server)
    finally:
        server.stop()

    lines = rpc_lines(server)
    assert (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT) == (ok, bad)
    assert [] == [line for line in lines if line["code"] == "OK"]
    kept = next(line for line in lines if line["request_id"] == "kept")
    assert ("INVALID_ARGUMENT", TRACE_ID) == (kept["code"], kept["trace_id"])
    assert re.fullmatch("[0-9a-f]{16}", str(kept["span_id"]))
    assert ["INVALID_ARGUMENT", "UNAUTHENTICATED"] == [
        line["code"]
        for line in lines
        if line["method"].endswith("ReloadWeights")  # type: ignore[attr-defined]
    ]
    assert "grpc_server_handled_total" in metrics
    everything = "\n".join(str(line) for line in server.lines) + metrics
    assert [] == [t for t in (ADMIN_TOKEN, API_TOKEN, wrong) if t in everything]
