"""With JSON logs, every line a real server process writes is JSON, gRPC core's own too."""

from __future__ import annotations

import contextlib
from pathlib import Path

import grpc

from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc
from tests.api import test_auth
from tests.app import test_weights_triggers
from tests.process import ServerProcess

WEIGHTS = Path(__file__).parents[2] / "data" / "weights.toml"
HANDSHAKE_FAILED = "Handshake failed"


def test_a_plaintext_client_on_the_tls_port_leaves_only_json_lines(tmp_path: Path) -> None:
    cert_file, key_file = test_auth._self_signed(tmp_path)
    server = ServerProcess(
        "--database",
        str(tmp_path / "db.sqlite"),
        "--weights",
        str(WEIGHTS),
        env={
            "REVIEWRANK_TLS_CERT_FILE": str(cert_file),
            "REVIEWRANK_TLS_KEY_FILE": str(key_file),
        },
    )
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = ranking_pb2_grpc.RankingServiceStub(channel)
            request = ranking_pb2.RankRequest(candidates=[ranking_pb2.Candidate(product_id="a")])
            with contextlib.suppress(grpc.RpcError):  # (UNAVAILABLE: TLS refuses plaintext)
                stub.Rank(request, timeout=2)
        handshake_logged = test_weights_triggers.wait_for(
            lambda: any(HANDSHAKE_FAILED in str(r.get("event", "")) for r in server.lines), 10
        )
    finally:
        server.stop()
        server.wait()

    # tests/process.py reads each line as JSON; a line that is not is kept as "raw".
    assert [] == [r["text"] for r in server.lines if r.get("event") == "raw"]
    assert handshake_logged
    [record] = [r for r in server.lines if HANDSHAKE_FAILED in str(r.get("event", ""))][:1]
    assert ("grpc.core", "info") == (record["logger"], record["level"])
    assert str(record["source"]).startswith("ssl_transport_security.cc:")
