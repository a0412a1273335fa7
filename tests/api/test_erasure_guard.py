"""Erasure is guarded by default: ForgetUser needs the admin token (none configured:
FAILED_PRECONDITION), unless the operator opts out (open_erasure), which is logged.
Also `reviewrank forget` and the admin token file `make serve` makes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from reviewrank.service.api.auth import client_channel
from reviewrank.service.app.settings import from_env
from reviewrank.service.cli import token_file
from reviewrank.service.cli.main import main
from reviewrank.service.cli.token_file import ensure_token_file
from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.conftest import ADMIN_TOKEN, Client
from tests.helpers import rating
from tests.process import ServerProcess

API_TOKEN = "test-api-token-erasure-6b0d"
ROOT = Path(__file__).resolve().parents[2]


def forget_request(user: str = "alice") -> feedback_pb2.ForgetUserRequest:
    return feedback_pb2.ForgetUserRequest(user_id=user)


def rating_count(channel: grpc.Channel, product: str = "p1") -> int:
    stats = ranking_pb2_grpc.RankingServiceStub(channel).GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=[product]), timeout=10
    )
    return int(stats.stats[0].rating_count)


def refusal(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details() or ""


def with_alice(client: Client) -> Client:
    """The server with one star vote of alice, which an erasure would remove."""
    with client_channel(client.target, token=client.settings.api_token) as channel:
        feedback_pb2_grpc.FeedbackServiceStub(channel).SubmitRating(
            rating("p1", "alice", 5), timeout=10
        )
    return client


def test_without_an_admin_token_forget_user_is_refused_and_erases_nothing(
    start_server: Callable[..., Client],
) -> None:
    client = with_alice(start_server(admin_token=""))
    seq = client.server.app.catalogue.seq

    code, details = refusal(lambda: client.feedback.ForgetUser(forget_request()))

    assert grpc.StatusCode.FAILED_PRECONDITION == code
    assert "erasure is disabled: the server has no admin token" in details
    assert (1, seq) == (rating_count(client.channel), client.server.app.catalogue.seq)


@pytest.mark.parametrize(
    "token", [None, "wrong-token", API_TOKEN], ids=["no-credentials", "wrong", "api-token"]
)
def test_forget_user_without_the_admin_token_is_unauthenticated_and_erases_nothing(
    start_server: Callable[..., Client], token: str | None
) -> None:
    client = with_alice(start_server(api_token=API_TOKEN if token == API_TOKEN else ""))
    with client_channel(client.target, token=token or "") as channel:
        feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)

        code, _ = refusal(lambda: feedback.ForgetUser(forget_request(), timeout=10))

        assert grpc.StatusCode.UNAUTHENTICATED == code
        assert 1 == rating_count(channel)


def test_forget_user_with_the_admin_token_erases(start_server: Callable[..., Client]) -> None:
    client = with_alice(start_server(api_token=API_TOKEN))
    with client_channel(client.target, token=ADMIN_TOKEN) as channel:
        feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)

        response = feedback.ForgetUser(forget_request(), timeout=10)

        assert (1, 0) == (response.ratings_removed, rating_count(channel))


def test_the_other_feedback_calls_stay_open_without_credentials(client: Client) -> None:
    response = client.feedback.SubmitRating(rating("p1", "bob", 4))

    assert feedback_pb2.APPLIED == response.outcome


def test_open_erasure_with_an_api_token_accepts_the_api_token_only(
    start_server: Callable[..., Client],
) -> None:
    client = with_alice(start_server(admin_token="", api_token=API_TOKEN, open_erasure=True))
    anonymous = client.feedback

    with client_channel(client.target, token=API_TOKEN) as channel:
        code, _ = refusal(lambda: anonymous.ForgetUser(forget_request()))
        response = feedback_pb2_grpc.FeedbackServiceStub(channel).ForgetUser(forget_request())

    assert (grpc.StatusCode.UNAUTHENTICATED, 1) == (code, response.ratings_removed)


def test_the_opt_out_comes_from_the_environment() -> None:
    assert (False, True) == (
        from_env({}).open_erasure,
        from_env({"REVIEWRANK_OPEN_ERASURE": "1"}).open_erasure,
    )


def serve_process(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    (tmp_path / "weights.toml").write_text("[profiles.default]\nweights = { wilson = 1 }\n")
    return ServerProcess(
        "--database",
        str(tmp_path / "db.sqlite"),
        "--weights",
        str(tmp_path / "weights.toml"),
        *args,
        env={"REVIEWRANK_ADMIN_TOKEN": "", "REVIEWRANK_ADMIN_TOKEN_FILE": "", **(env or {})},
    )


def test_the_opt_out_lets_anyone_erase_and_says_so_at_start_up(tmp_path: Path) -> None:
    server = serve_process(tmp_path, "--open-erasure")
    try:
        with grpc.insecure_channel(server.target) as channel:
            feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
            feedback.SubmitRating(rating("p1", "alice", 5), timeout=10)

            response = feedback.ForgetUser(forget_request(), timeout=10)

            assert (1, 0) == (response.ratings_removed, rating_count(channel))
    finally:
        server.stop()
    warnings = [line["event"] for line in server.lines if line.get("level") == "warning"]
    assert (
        "ForgetUser needs no credential: anyone who reaches the port can erase users "
        "(open_erasure is set)"
    ) in warnings


# -- `reviewrank forget` and the token file of `make serve` --------------------------------


@pytest.fixture
def default_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The token file `make serve` makes, at a test path, and no token configured
    otherwise: the client commands must find it there."""
    path = tmp_path / "admin-token"
    monkeypatch.setattr(token_file, "DEFAULT_ADMIN_TOKEN_FILE", path)
    for name in ("REVIEWRANK_ADMIN_TOKEN", "REVIEWRANK_ADMIN_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_forget_command_uses_the_default_token_file_against_a_real_server(
    tmp_path: Path, default_token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_token_file(default_token_file)
    server = serve_process(tmp_path, env={"REVIEWRANK_ADMIN_TOKEN_FILE": str(default_token_file)})
    try:
        with grpc.insecure_channel(server.target) as channel:
            feedback_pb2_grpc.FeedbackServiceStub(channel).SubmitRating(
                rating("p1", "alice", 5), timeout=10
            )

            code = main(["forget", "alice", "--yes", "--server", server.target])

            assert (0, 0) == (code, rating_count(channel))
    finally:
        server.stop()
    erased = (
        "erased 'alice': 1 star votes, 0 like votes, 0 shares, 0 comments and 0 poll votes removed"
    )
    assert erased in capsys.readouterr().out


def test_forget_command_without_yes_erases_nothing(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with_alice(client)

    code = main(["forget", "alice", "--server", client.target, "--token", ADMIN_TOKEN])

    assert (2, 1) == (code, rating_count(client.channel))
    assert "add --yes" in capsys.readouterr().err


def test_forget_command_without_any_token_exits_1_unauthenticated(
    client: Client, default_token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_alice(client)

    code = main(["forget", "alice", "--yes", "--server", client.target])

    assert (1, 1) == (code, rating_count(client.channel))
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_the_token_file_is_made_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"

    created = ensure_token_file(path)
    token = path.read_text()
    again = ensure_token_file(path)

    assert (True, False) == (created, again)
    assert token == path.read_text()
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    assert len(token.strip()) >= 40 and token.strip().isprintable()


def test_the_token_file_is_owner_only_under_a_strict_umask(tmp_path: Path) -> None:
    previous = os.umask(0o277)
    try:
        ensure_token_file(tmp_path / "admin-token")
    finally:
        os.umask(previous)

    assert 0o600 == stat.S_IMODE((tmp_path / "admin-token").stat().st_mode)


def test_the_make_serve_step_creates_the_file_then_keeps_it(tmp_path: Path) -> None:
    """The command the Makefile runs before serving, as it runs it."""
    path = tmp_path / "admin-token"
    command = [sys.executable, "-m", "reviewrank.service.cli.token_file", str(path)]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=30
        )

    first = run()
    token = path.read_text()
    second = run()

    assert (0, 0) == (first.returncode, second.returncode)
    assert "created the admin token file" in first.stdout
    assert ("", token) == (second.stdout, path.read_text())
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
