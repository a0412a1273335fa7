"""Bearer tokens for admin (and optionally all) RPCs, tokens kept out of logs, and TLS."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service.api.auth import client_channel
from reviewrank.service.app.settings import from_env
from reviewrank.v1 import admin_pb2, admin_pb2_grpc, ranking_pb2_grpc
from tests.conftest import ADMIN_TOKEN, Client
from tests.process import ServerProcess
from tests.weights_helpers import rank_request

API_TOKEN = "test-api-token-81d2"
GET = admin_pb2.GetWeightsRequest()


def admin_stub(
    client: Client, token: str | None = None, header: str = ""
) -> admin_pb2_grpc.AdminServiceStub:
    """An admin stub sending ``authorization: Bearer <token>`` (or ``header`` as is)."""
    value = header or (f"Bearer {token}" if token is not None else "")
    channel = client.channel
    if value:
        return admin_pb2_grpc.AdminServiceStub(grpc.intercept_channel(channel, _Header(value)))
    return admin_pb2_grpc.AdminServiceStub(channel)


class _Header(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, value: str) -> None:
        self.value = value

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        metadata = [*(details.metadata or ()), ("authorization", self.value)]
        return continuation(details._replace(metadata=metadata), request)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_admin_rpcs_with_the_admin_token_are_served(client: Client) -> None:
    assert grpc.StatusCode.OK == code_of(lambda: admin_stub(client, ADMIN_TOKEN).GetWeights(GET))


@pytest.mark.parametrize(
    "header",
    ["", "Bearer wrong-token", f"Basic {ADMIN_TOKEN}", "Bearer", f"Bearer {ADMIN_TOKEN}x"],
    ids=["missing", "wrong", "other-scheme", "empty", "longer"],
)
def test_admin_rpcs_without_the_right_token_are_unauthenticated(
    client: Client, header: str
) -> None:
    stub = admin_stub(client, header=header)

    assert grpc.StatusCode.UNAUTHENTICATED == code_of(lambda: stub.GetWeights(GET))


def test_a_refused_reload_changes_nothing(client: Client) -> None:
    stub = admin_stub(client, "wrong")

    code = code_of(lambda: stub.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml="x = 1")))

    assert (grpc.StatusCode.UNAUTHENTICATED, 1) == (code, client.admin.GetWeights(GET).version)


def test_a_server_without_an_admin_token_refuses_admin_rpcs_as_a_precondition(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(admin_token="")

    with pytest.raises(grpc.RpcError) as info:
        admin_stub(client, "anything").GetWeights(GET)

    assert grpc.StatusCode.FAILED_PRECONDITION == info.value.code()
    assert "no admin token" in (info.value.details() or "")


def test_a_server_without_an_admin_token_still_ranks(start_server: Callable[..., Client]) -> None:
    client = start_server(admin_token="")

    assert 1 == client.ranking.Rank(rank_request(["a", "b"])).weights_version


def test_the_admin_token_can_come_from_a_file(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text("from-a-file-5e1\n")
    client = start_server(admin_token="", admin_token_file=token_file)

    assert (grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED) == (
        code_of(lambda: admin_stub(client, "from-a-file-5e1").GetWeights(GET)),
        code_of(lambda: admin_stub(client, ADMIN_TOKEN).GetWeights(GET)),
    )


def test_an_unreadable_token_file_stops_the_start(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="admin_token_file"):
        start_server(admin_token="", admin_token_file=tmp_path / "missing")


def test_token_settings_come_from_the_environment_and_stay_out_of_reprs() -> None:
    settings = from_env({"REVIEWRANK_ADMIN_TOKEN": "env-secret-77", "REVIEWRANK_API_TOKEN": "x9"})

    assert ("env-secret-77", "x9") == (settings.admin_token, settings.api_token)
    assert "env-secret-77" not in repr(settings)


def test_with_an_api_token_ranking_needs_it(start_server: Callable[..., Client]) -> None:
    client = start_server(api_token=API_TOKEN)

    assert grpc.StatusCode.UNAUTHENTICATED == code_of(
        lambda: client.ranking.Rank(rank_request(["a"]))
    )


@pytest.mark.parametrize("token", [API_TOKEN, ADMIN_TOKEN], ids=["api", "admin"])
def test_with_an_api_token_ranking_accepts_it_or_the_admin_token(
    start_server: Callable[..., Client], token: str
) -> None:
    client = start_server(api_token=API_TOKEN)
    with client_channel(f"127.0.0.1:{client.port}", token=token) as channel:
        ranking = ranking_pb2_grpc.RankingServiceStub(channel)

        assert 1 == ranking.Rank(rank_request(["a"])).weights_version


def test_the_api_token_does_not_open_admin_rpcs(start_server: Callable[..., Client]) -> None:
    client = start_server(api_token=API_TOKEN)

    assert grpc.StatusCode.UNAUTHENTICATED == code_of(
        lambda: admin_stub(client, API_TOKEN).GetWeights(GET)
    )


def test_health_needs_no_token(start_server: Callable[..., Client]) -> None:
    client = start_server(api_token=API_TOKEN)
    health = health_pb2_grpc.HealthStub(client.channel)

    response = health.Check(health_pb2.HealthCheckRequest(service=""))

    assert health_pb2.HealthCheckResponse.SERVING == response.status


def test_no_token_ever_appears_in_the_logs(tmp_path: Path) -> None:
    wrong = "wrong-token-c0ffee"
    (tmp_path / "weights.toml").write_text("[profiles.default]\nweights = { wilson = 1 }\n")
    server = ServerProcess(
        "--database",
        str(tmp_path / "db.sqlite"),
        "--weights",
        str(tmp_path / "weights.toml"),
        "--log-level",
        "info",
        env={"REVIEWRANK_ADMIN_TOKEN": ADMIN_TOKEN, "REVIEWRANK_API_TOKEN": API_TOKEN},
    )
    try:
        for token in (ADMIN_TOKEN, wrong, API_TOKEN):
            with client_channel(server.target, token=token) as channel:
                admin = admin_pb2_grpc.AdminServiceStub(channel)
                code_of(lambda admin=admin: admin.GetWeights(GET))  # type: ignore[misc]
                code_of(
                    lambda admin=admin: admin.ReloadWeights(  # type: ignore[misc]
                        admin_pb2.ReloadWeightsRequest(toml="bad = [", actor="ops")
                    )
                )
                ranking = ranking_pb2_grpc.RankingServiceStub(channel)
                code_of(lambda ranking=ranking: ranking.Rank(rank_request(["a"])))  # type: ignore[misc]
        os.kill(server.proc.pid, signal.SIGTERM)
        assert 0 == server.wait()
    finally:
        server.stop()

    text = "\n".join(str(line) for line in server.lines)
    codes = [line.get("code") for line in server.lines if line.get("event") == "rpc"]
    assert 9 == len(codes)  # every call was logged...
    assert "UNAUTHENTICATED" in codes
    assert [] == [t for t in (ADMIN_TOKEN, wrong, API_TOKEN) if t in text]  # ...no token


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reviewrank test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "server.crt", tmp_path / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_serves_a_client_that_trusts_the_certificate(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    client = start_server(tls_cert_file=cert_file, tls_key_file=key_file)

    with client_channel(
        f"127.0.0.1:{client.port}", token=ADMIN_TOKEN, ca_file=cert_file
    ) as channel:
        ranked = ranking_pb2_grpc.RankingServiceStub(channel).Rank(rank_request(["a"]), timeout=10)
        weights = admin_pb2_grpc.AdminServiceStub(channel).GetWeights(GET, timeout=10)

    assert (1, 1) == (ranked.weights_version, weights.version)


def test_tls_refuses_a_plaintext_client(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    client = start_server(tls_cert_file=cert_file, tls_key_file=key_file)

    assert grpc.StatusCode.UNAVAILABLE == code_of(
        lambda: client.ranking.Rank(rank_request(["a"]), timeout=5)
    )


def test_tls_needs_both_the_certificate_and_the_key() -> None:
    with pytest.raises(ValueError, match="tls_cert_file and tls_key_file"):
        from_env({"REVIEWRANK_TLS_CERT_FILE": "/etc/server.crt"})
