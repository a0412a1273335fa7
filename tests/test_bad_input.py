"""Every kind of bad input gets INVALID_ARGUMENT with a field violation naming the field, and
writes nothing."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from reviewrank.v1 import feedback_pb2, ranking_pb2

from tests.conftest import Client
from tests.helpers import batch, candidates, field_violations, like, rating

LONG = "x" * 129


def call_fails(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def assert_invalid(client: Client, call: Callable[[], object], field: str) -> None:
    error = call_fails(call)
    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert field in field_violations(error), field_violations(error)
    # Nothing was written.
    assert 0 == client.server.app.catalogue.seq


def far_future() -> Timestamp:
    return Timestamp(seconds=4_102_444_800)  # 2100-01-01


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (rating("p", "u", 0), "stars"),
        (rating("p", "u", 6), "stars"),
        (rating("p", "u", -3), "stars"),
        (rating("", "u", 3), "product_id"),
        (rating("p", "", 3), "user_id"),
        (rating("p", "u", 3, event_id=LONG), "event_id"),
        (rating(LONG, "u", 3), "product_id"),
        (rating("p", LONG, 3), "user_id"),
        (rating("p\n", "u", 3), "product_id"),
        (rating("p", "u\x00", 3), "user_id"),
        (rating("p", "u", 3, category=LONG), "category"),
        (rating("p", "u", 3, at=-1), "occurred_at"),
        (rating("p", "u", 3, at=4_102_444_800), "occurred_at"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_rating_is_refused_naming_the_field(
    client: Client, request_: feedback_pb2.SubmitRatingRequest, field: str
) -> None:
    assert_invalid(client, lambda: client.feedback.SubmitRating(request_), field)


def test_rating_with_empty_event_id_is_refused(client: Client) -> None:
    request = rating("p", "u", 3)
    request.event_id = ""

    assert_invalid(client, lambda: client.feedback.SubmitRating(request), "event_id")


def test_rating_with_invalid_nanos_is_refused(client: Client) -> None:
    request = rating("p", "u", 3)
    request.occurred_at.nanos = -5

    assert_invalid(client, lambda: client.feedback.SubmitRating(request), "occurred_at")


@pytest.mark.parametrize("value", [feedback_pb2.LIKE_VALUE_UNSPECIFIED, 7, -1])
def test_like_with_unknown_value_is_refused(client: Client, value: int) -> None:
    request = like("p", "u", value=value)

    assert_invalid(client, lambda: client.feedback.SubmitLike(request), "value")


def test_every_violation_of_a_request_is_reported(client: Client) -> None:
    request = feedback_pb2.SubmitRatingRequest(stars=9)

    violations = field_violations(call_fails(lambda: client.feedback.SubmitRating(request)))

    assert {"event_id", "product_id", "user_id", "stars"} == set(violations)


def test_empty_batch_is_refused(client: Client) -> None:
    assert_invalid(client, lambda: client.feedback.SubmitBatch(batch()), "events")


def test_batch_over_the_limit_is_refused(client: Client) -> None:
    request = batch(*(rating("p", f"u{i}", 3) for i in range(1001)))

    assert_invalid(client, lambda: client.feedback.SubmitBatch(request), "events")


def test_batch_with_one_bad_event_writes_nothing(client: Client) -> None:
    request = batch(rating("p", "u1", 3), rating("p", "u2", 3), rating("p", "u3", 9))

    assert_invalid(client, lambda: client.feedback.SubmitBatch(request), "events[2].rating.stars")


def test_batch_event_with_neither_rating_nor_like_is_refused(client: Client) -> None:
    request = batch(rating("p", "u1", 3))
    request.events.add()

    assert_invalid(client, lambda: client.feedback.SubmitBatch(request), "events[1]")


def test_batch_like_field_paths_name_the_like(client: Client) -> None:
    request = batch(like("p", "u1"), like("p", "", value=feedback_pb2.DISLIKE))

    assert_invalid(client, lambda: client.feedback.SubmitBatch(request), "events[1].like.user_id")


def test_empty_candidate_list_is_refused(client: Client) -> None:
    assert_invalid(client, lambda: client.ranking.Rank(ranking_pb2.RankRequest()), "candidates")


def test_too_many_candidates_are_refused(client: Client) -> None:
    request = ranking_pb2.RankRequest(candidates=candidates(*(f"p{i}" for i in range(5001))))

    assert_invalid(client, lambda: client.ranking.Rank(request), "candidates")


@pytest.mark.parametrize(
    ("items", "field"),
    [
        (("a", ""), "candidates[1].product_id"),
        (("a", LONG), "candidates[1].product_id"),
        (("a", "b", "a"), "candidates[2].product_id"),
        ((("a", float("nan")),), "candidates[0].relevance"),
        ((("a", 1.0), ("b", float("inf"))), "candidates[1].relevance"),
    ],
)
def test_bad_candidate_is_refused_naming_it(
    client: Client, items: tuple[str | tuple[str, float], ...], field: str
) -> None:
    request = ranking_pb2.RankRequest(candidates=candidates(*items))

    assert_invalid(client, lambda: client.ranking.Rank(request), field)


def test_unknown_profile_is_refused(client: Client) -> None:
    request = ranking_pb2.RankRequest(candidates=candidates("a"), profile="nope")

    assert_invalid(client, lambda: client.ranking.Rank(request), "profile")


def test_top_limit_over_the_maximum_is_refused(client: Client) -> None:
    assert_invalid(client, lambda: client.ranking.Top(ranking_pb2.TopRequest(limit=1001)), "limit")


@pytest.mark.parametrize("token", ["garbage", "eyJvIjotMX0", "!!!"])
def test_forged_page_token_is_refused(client: Client, token: str) -> None:
    request = ranking_pb2.TopRequest(page_token=token)

    assert_invalid(client, lambda: client.ranking.Top(request), "page_token")


def test_page_token_of_another_category_is_refused(client: Client) -> None:
    for i in range(3):
        client.feedback.SubmitRating(rating(f"p{i}", "u", 4, category="Dresses"))
    page = client.ranking.Top(ranking_pb2.TopRequest(category="Dresses", limit=1))
    request = ranking_pb2.TopRequest(category="Knits", page_token=page.next_page_token)

    error = call_fails(lambda: client.ranking.Top(request))

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "page_token" in field_violations(error)


def test_stats_without_products_is_refused(client: Client) -> None:
    request = ranking_pb2.GetProductStatsRequest()

    assert_invalid(client, lambda: client.ranking.GetProductStats(request), "product_ids")


def test_stats_for_too_many_products_is_refused(client: Client) -> None:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[f"p{i}" for i in range(1001)])

    assert_invalid(client, lambda: client.ranking.GetProductStats(request), "product_ids")


def test_stats_with_an_empty_id_is_refused(client: Client) -> None:
    request = ranking_pb2.GetProductStatsRequest(product_ids=["a", ""])

    assert_invalid(client, lambda: client.ranking.GetProductStats(request), "product_ids[1]")


def test_message_over_the_size_limit_is_resource_exhausted(start_server) -> None:  # type: ignore[no-untyped-def]
    client = start_server(max_message_bytes=64 * 1024)
    request = ranking_pb2.RankRequest(candidates=candidates(*(f"p{i:0100d}" for i in range(1000))))

    error = call_fails(lambda: client.ranking.Rank(request))

    assert grpc.StatusCode.RESOURCE_EXHAUSTED == error.code()
