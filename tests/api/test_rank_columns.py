"""Rank with its candidates sent as columns (candidate_ids, candidate_relevances) and
answered in columns (result_ids, result_scores), over a real server."""

from __future__ import annotations

import grpc
import pytest

from reviewrank.v1 import ranking_pb2
from tests.api.test_ranking_rpc import seed
from tests.conftest import Client
from tests.helpers import candidates, explaining, field_violations


def seeded(client: Client) -> None:
    seed(client, "poor", [1, 2, 2, 1, 3] * 10, likes=5, dislikes=40)
    seed(client, "good", [5, 4, 5, 5, 4] * 10, likes=40, dislikes=3)
    seed(client, "fair", [3, 4, 3] * 5)


def refusal(client: Client, request: ranking_pb2.RankRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        client.ranking.Rank(request, timeout=5)
    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    return refused.value


def test_columns_are_ranked_as_the_same_candidates_would_be(client: Client) -> None:
    seeded(client)
    items = [("poor", 3.0), ("new", 1.0), ("good", 2.0), ("fair", 0.0)]
    as_messages = client.ranking.Rank(ranking_pb2.RankRequest(candidates=candidates(*items)))

    as_columns = client.ranking.Rank(
        ranking_pb2.RankRequest(
            candidate_ids=[i for i, _ in items], candidate_relevances=[r for _, r in items]
        )
    )

    assert [r.product_id for r in as_messages.results] == list(as_columns.result_ids)
    assert [r.score for r in as_messages.results] == pytest.approx(list(as_columns.result_scores))
    assert [] == list(as_columns.results)
    assert (as_messages.weights_version, as_messages.profile) == (
        as_columns.weights_version,
        as_columns.profile,
    )


def test_columns_keep_the_limit(client: Client) -> None:
    seeded(client)
    request = ranking_pb2.RankRequest(
        candidate_ids=["poor", "good", "fair"], candidate_relevances=[1, 1, 1], limit=1
    )

    assert ["good"] == list(client.ranking.Rank(request).result_ids)


def test_many_columns_are_ranked_as_the_same_candidates_would_be(client: Client) -> None:
    seeded(client)
    ids = ["good", "poor", "fair"] + [f"unknown-{i}" for i in range(997)]
    relevances = [float(i % 13) for i in range(len(ids))]
    messages = ranking_pb2.RankRequest(candidates=candidates(*zip(ids, relevances, strict=True)))

    columns = ranking_pb2.RankRequest(candidate_ids=ids, candidate_relevances=relevances)

    expected = [r.product_id for r in client.ranking.Rank(messages).results]
    assert expected == list(client.ranking.Rank(columns).result_ids)


def test_columns_with_explain_also_answer_results_with_their_explanations(
    client: Client,
) -> None:
    seeded(client)
    request = ranking_pb2.RankRequest(
        candidate_ids=["poor", "good"], candidate_relevances=[0, 0], explain=True
    )

    response = explaining(client).Rank(request)

    assert ["good", "poor"] == list(response.result_ids)
    assert ["good", "poor"] == [r.product_id for r in response.results]
    assert 50 == response.results[0].explanation.rating_count


def test_columns_of_different_lengths_are_refused_naming_the_relevances(client: Client) -> None:
    error = refusal(
        client, ranking_pb2.RankRequest(candidate_ids=["a", "b"], candidate_relevances=[1.0])
    )

    assert {"candidate_relevances": "1 relevances for 2 ids"} == field_violations(error)


def test_candidates_and_columns_together_are_refused(client: Client) -> None:
    request = ranking_pb2.RankRequest(
        candidates=candidates("a"), candidate_ids=["b"], candidate_relevances=[1.0]
    )

    assert ["candidate_ids"] == list(field_violations(refusal(client, request)))


def test_a_duplicate_id_in_columns_is_named_by_its_column(client: Client) -> None:
    request = ranking_pb2.RankRequest(
        candidate_ids=["a", "b", "a"], candidate_relevances=[1.0, 2.0, 3.0]
    )

    violations = field_violations(refusal(client, request))

    assert {"candidate_ids[2]": "duplicates candidate_ids[0]"} == violations


def test_a_relevance_that_is_not_finite_is_named_by_its_column(client: Client) -> None:
    request = ranking_pb2.RankRequest(
        candidate_ids=["a", "b"], candidate_relevances=[1.0, float("nan")]
    )

    assert ["candidate_relevances[1]"] == list(field_violations(refusal(client, request)))


def test_an_id_too_long_in_columns_is_named_by_its_column(client: Client) -> None:
    request = ranking_pb2.RankRequest(candidate_ids=["x" * 129], candidate_relevances=[1.0])

    assert ["candidate_ids[0]"] == list(field_violations(refusal(client, request)))


def test_more_ids_than_max_candidates_are_refused_naming_the_ids(client: Client) -> None:
    count = client.settings.max_candidates + 1
    request = ranking_pb2.RankRequest(
        candidate_ids=[f"p{i}" for i in range(count)], candidate_relevances=[1.0] * count
    )

    assert ["candidate_ids"] == list(field_violations(refusal(client, request)))


def test_relevances_without_ids_are_refused(client: Client) -> None:
    request = ranking_pb2.RankRequest(candidate_relevances=[1.0])

    assert ["candidate_relevances"] == list(field_violations(refusal(client, request)))


def test_an_id_that_is_not_utf8_in_columns_is_refused_naming_the_ids(client: Client) -> None:
    good = ranking_pb2.RankRequest(candidate_ids=["ab"], candidate_relevances=[1.0])
    raw = good.SerializeToString().replace(b"ab", b"a\xff")
    rank = client.channel.unary_unary(
        "/reviewrank.v1.RankingService/Rank",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )

    with pytest.raises(grpc.RpcError) as refused:
        rank(raw, timeout=5)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "candidate_ids" in " ".join(field_violations(refused.value))


def test_candidates_with_relevances_alone_are_refused_naming_the_relevances(
    client: Client,
) -> None:
    request = ranking_pb2.RankRequest(candidates=candidates("a"), candidate_relevances=[1.0])

    assert ["candidate_relevances"] == list(field_violations(refusal(client, request)))
