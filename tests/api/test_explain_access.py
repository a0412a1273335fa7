"""What a caller without the admin token may see: rankings and scores, not the weights,
the priors or the profile names (explanations need the admin token)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from reviewrank.service.api.auth import client_channel
from reviewrank.service.cli import main as cli
from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc
from tests.conftest import ADMIN_TOKEN, Client
from tests.helpers import candidates, explaining, rating

PROFILES = (
    "default", "reviews_only", "by_category", "fixed", "alternatives", "recent", "shared",
    "shared_auto",
)  # fmt: skip
RANK = ranking_pb2.RankRequest(candidates=candidates("a", "b"), explain=True)
TOP = ranking_pb2.TopRequest(explain=True)


def code_and_details(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), str(info.value.details())


def test_an_explained_rank_without_the_admin_token_is_unauthenticated(client: Client) -> None:
    code, details = code_and_details(lambda: client.ranking.Rank(RANK))

    assert grpc.StatusCode.UNAUTHENTICATED == code
    assert "weight" not in details


def test_an_explained_top_without_the_admin_token_is_unauthenticated(client: Client) -> None:
    code, _ = code_and_details(lambda: client.ranking.Top(TOP))

    assert grpc.StatusCode.UNAUTHENTICATED == code


def test_an_explained_rank_with_another_token_is_unauthenticated(client: Client) -> None:
    with client_channel(client.target, token="not-the-admin-token") as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        code, details = code_and_details(lambda: stub.Rank(RANK))

    assert (grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token") == (code, details)


def test_an_explained_rank_with_the_admin_token_is_explained(client: Client) -> None:
    results = explaining(client).Rank(RANK).results

    assert [True, True] == [r.HasField("explanation") for r in results]
    assert 1.0 == pytest.approx(sum(c.weight for c in results[0].explanation.contributions))


def test_an_explained_top_with_the_admin_token_is_explained(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u", 4))

    results = explaining(client).Top(TOP).results

    assert ["a"] == [r.product_id for r in results]
    assert results[0].HasField("explanation")


def test_a_rank_without_explanations_needs_no_token(client: Client) -> None:
    request = ranking_pb2.RankRequest(candidates=candidates("a", "b"))

    assert 2 == len(client.ranking.Rank(request).results)


def test_an_explained_rank_on_a_server_without_admin_token_is_a_failed_precondition(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(admin_token="")

    code, _ = code_and_details(lambda: client.ranking.Rank(RANK))

    assert grpc.StatusCode.FAILED_PRECONDITION == code


def test_the_api_token_does_not_open_explanations(start_server: Callable[..., Client]) -> None:
    client = start_server(api_token="api-token-7d1e")
    with client_channel(client.target, token="api-token-7d1e") as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        plain = stub.Rank(ranking_pb2.RankRequest(candidates=candidates("a")))
        code, _ = code_and_details(lambda: stub.Rank(RANK))

    assert (1, grpc.StatusCode.UNAUTHENTICATED) == (len(plain.results), code)
    assert explaining(client).Rank(RANK).results[0].HasField("explanation")


@pytest.mark.parametrize("method", ["Rank", "Top", "GetProductStats"])
def test_an_unknown_profile_is_named_without_listing_the_others(
    client: Client, method: str
) -> None:
    requests = {
        "Rank": ranking_pb2.RankRequest(candidates=candidates("a"), profile="nope"),
        "Top": ranking_pb2.TopRequest(profile="nope"),
        "GetProductStats": ranking_pb2.GetProductStatsRequest(product_ids=["a"], profile="nope"),
    }

    code, details = code_and_details(lambda: getattr(client.ranking, method)(requests[method]))

    assert (grpc.StatusCode.INVALID_ARGUMENT, "profile: unknown profile 'nope'") == (
        code,
        details,
    )
    assert [] == [name for name in PROFILES if name in details]


def test_the_rank_command_explains_with_the_admin_token_it_finds(
    client: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWRANK_ADMIN_TOKEN", ADMIN_TOKEN)

    assert 0 == cli.main(["rank", "a", "b", "--server", client.target, "--explain"])

    assert "score =" in capsys.readouterr().out


def test_the_rank_command_without_an_admin_token_is_refused(
    client: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REVIEWRANK_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("REVIEWRANK_ADMIN_TOKEN_FILE", raising=False)

    assert 1 == cli.main(["rank", "a", "b", "--server", client.target, "--explain"])

    assert capsys.readouterr().err.startswith("reviewrank: UNAUTHENTICATED: ")
