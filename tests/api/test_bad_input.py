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


# ... and {"o":true,"c":"","p":"default"}: a JSON true is no offset.
@pytest.mark.parametrize(
    "token", ["garbage", "eyJvIjotMX0", "!!!", "eyJvIjp0cnVlLCJjIjoiIiwicCI6ImRlZmF1bHQifQ"]
)
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


# -- every field of every request ------------------------------------------------------------

CONTROL = "a\x07b"
ZERO_WIDTH = "a\u200bb"  # a format character: not printable


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (like("", "u"), "product_id"),
        (like("p", ""), "user_id"),
        (like("p", "u", event_id=LONG), "event_id"),
        (like(LONG, "u"), "product_id"),
        (like("p", LONG), "user_id"),
        (like("p", "u", event_id=CONTROL), "event_id"),
        (like(ZERO_WIDTH, "u"), "product_id"),
        (like("p", "u\r"), "user_id"),
        (like("p", "u", at=-1), "occurred_at"),
        (like("p", "u", at=4_102_444_800), "occurred_at"),
        (like("p", "u", value=99), "value"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_like_is_refused_naming_the_field(
    client: Client, request_: feedback_pb2.SubmitLikeRequest, field: str
) -> None:
    assert_invalid(client, lambda: client.feedback.SubmitLike(request_), field)


def test_like_with_empty_event_id_is_refused(client: Client) -> None:
    request = like("p", "u")
    request.event_id = ""

    assert_invalid(client, lambda: client.feedback.SubmitLike(request), "event_id")


@pytest.mark.parametrize(
    ("seconds", "nanos", "field_ok"),
    [
        (-62_135_596_800, 0, False),  # 0001-01-01, protobuf's minimum
        (-1, 999_999_999, False),  # 1969-12-31T23:59:59.999999999
        (253_402_300_799, 0, False),  # 9999-12-31, protobuf's maximum
        (2**62, 0, False),  # beyond any calendar
        (1_700_000_000, 1_000_000_000, False),
        (1_700_000_000, -1, False),
        (0, 0, True),  # 1970-01-01T00:00:00Z itself is fine
    ],
)
def test_timestamps_out_of_range_are_refused(
    client: Client, seconds: int, nanos: int, field_ok: bool
) -> None:
    request = rating("p", "u", 3)
    request.occurred_at.seconds = seconds
    request.occurred_at.nanos = nanos

    if field_ok:
        assert feedback_pb2.APPLIED == client.feedback.SubmitRating(request).outcome
    else:
        assert_invalid(client, lambda: client.feedback.SubmitRating(request), "occurred_at")


def test_a_timestamp_within_the_allowed_clock_skew_is_accepted(client: Client) -> None:
    import time

    request = rating("p", "u", 3, at=int(time.time()) + 4 * 60)

    assert feedback_pb2.APPLIED == client.feedback.SubmitRating(request).outcome


@pytest.mark.parametrize("stars", [2**31 - 1, -(2**31)])
def test_extreme_stars_are_refused(client: Client, stars: int) -> None:
    assert_invalid(client, lambda: client.feedback.SubmitRating(rating("p", "u", stars)), "stars")


def test_an_id_a_few_times_too_long_is_refused_naming_it_without_echoing_it(
    client: Client,
) -> None:
    error = call_fails(lambda: client.feedback.SubmitRating(rating("x" * 1000, "u", 3)))

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "product_id" in field_violations(error)
    assert len(error.details() or "") < 1000


def test_a_megabyte_long_id_is_refused_unread_naming_the_limit_without_echoing_it(
    client: Client,
) -> None:
    # Larger than any valid SubmitRatingRequest: refused before it is parsed
    # (service/api/request_budget.py), so no field can be named; the limit is.
    huge = "x" * (1024 * 1024)
    error = call_fails(lambda: client.feedback.SubmitRating(rating(huge, "u", 3)))

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "max_id_length=128" in (error.details() or "")
    assert len(error.details() or "") < 1000


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (rating("p", "u", 3, event_id=LONG), "events[1].rating.event_id"),
        (rating("", "u", 3), "events[1].rating.product_id"),
        (rating("p", "u", 3, category=CONTROL), "events[1].rating.category"),
        (rating("p", "u", 3, at=-5), "events[1].rating.occurred_at"),
        (like("p", "u", at=4_102_444_800), "events[1].like.occurred_at"),
        (like("p", "u", value=42), "events[1].like.value"),
        (like("p", "u", event_id=CONTROL), "events[1].like.event_id"),
        (like("p\t", "u"), "events[1].like.product_id"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_field_of_a_batched_event_is_checked(
    client: Client, event: object, field: str
) -> None:
    request = batch(rating("p", "ok", 4), event)

    assert_invalid(client, lambda: client.feedback.SubmitBatch(request), field)


def test_every_violation_of_a_batch_is_reported_by_position(client: Client) -> None:
    request = batch(
        rating("p", "u", 0), like("", "u"), rating("p", "u", 3), like("p", "u", value=9)
    )

    violations = field_violations(call_fails(lambda: client.feedback.SubmitBatch(request)))

    assert {"events[0].rating.stars", "events[1].like.product_id", "events[3].like.value"} == set(
        violations
    )


@pytest.mark.parametrize(
    ("user", "field"), [("", "user_id"), (LONG, "user_id"), (CONTROL, "user_id")]
)
def test_forget_user_with_a_bad_user_id_is_refused(client: Client, user: str, field: str) -> None:
    request = feedback_pb2.ForgetUserRequest(user_id=user)

    assert_invalid(client, lambda: client.eraser.ForgetUser(request), field)


@pytest.mark.parametrize("profile", ["p" * 65, "a\nb", ZERO_WIDTH])
def test_malformed_profile_names_are_refused_by_every_ranking_call(
    client: Client, profile: str
) -> None:
    assert_invalid(
        client,
        lambda: client.ranking.Rank(
            ranking_pb2.RankRequest(candidates=candidates("a"), profile=profile)
        ),
        "profile",
    )
    assert_invalid(
        client, lambda: client.ranking.Top(ranking_pb2.TopRequest(profile=profile)), "profile"
    )
    assert_invalid(
        client,
        lambda: client.ranking.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=["a"], profile=profile)
        ),
        "profile",
    )


@pytest.mark.parametrize("category", [LONG, CONTROL])
def test_top_with_a_bad_category_is_refused(client: Client, category: str) -> None:
    request = ranking_pb2.TopRequest(category=category)

    assert_invalid(client, lambda: client.ranking.Top(request), "category")


def test_top_with_an_oversized_page_token_is_refused(client: Client) -> None:
    request = ranking_pb2.TopRequest(page_token="A" * 5000)

    assert_invalid(client, lambda: client.ranking.Top(request), "page_token")


@pytest.mark.parametrize("product", [LONG, CONTROL])
def test_bad_candidate_and_stats_ids_are_refused(client: Client, product: str) -> None:
    assert_invalid(
        client,
        lambda: client.ranking.Rank(ranking_pb2.RankRequest(candidates=candidates("a", product))),
        "candidates[1].product_id",
    )
    assert_invalid(
        client,
        lambda: client.ranking.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=["a", "b", product])
        ),
        "product_ids[2]",
    )


def test_negative_infinite_relevance_is_refused(client: Client) -> None:
    request = ranking_pb2.RankRequest(candidates=candidates(("a", float("-inf"))))

    assert_invalid(client, lambda: client.ranking.Rank(request), "candidates[0].relevance")


def test_a_batch_over_the_size_limit_is_resource_exhausted_and_writes_nothing(
    start_server,  # type: ignore[no-untyped-def]
) -> None:
    client = start_server(max_message_bytes=128 * 1024)
    request = batch(*(rating("p" * 100, f"u{i}" + "x" * 100, 3) for i in range(1000)))
    assert request.ByteSize() > 128 * 1024

    error = call_fails(lambda: client.feedback.SubmitBatch(request))

    assert grpc.StatusCode.RESOURCE_EXHAUSTED == error.code()
    assert 0 == client.server.app.catalogue.seq


def test_a_batch_of_a_thousand_bad_events_is_refused_with_a_status_a_default_client_reads(
    client: Client,
) -> None:
    bad = [rating(f"p{i}", "", 9) for i in range(1000)]  # two violations each

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitBatch(batch(*bad), timeout=10)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    violations = field_violations(refused.value)
    assert 20 == len(violations)
    assert "events[0].rating.user_id" in violations
    assert "(2000 in all, the first 20 in the details)" in (refused.value.details() or "")
