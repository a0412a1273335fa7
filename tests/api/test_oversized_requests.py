"""Large requests are refused before they cost the server any work worth the name.

A request larger than any valid one of its method is refused unread, INVALID_ARGUMENT
naming the limits its size follows from: the text says "refused unread", which only the
check made before parsing writes (today such requests were parsed, or walked field by
field in Python to explain why they did not parse: seconds of CPU each). A request within
that size, made of many tiny items, is refused at its item limit ("more were sent": the
rest was not read). After each, the server answers a normal call. The largest valid
requests of each method are still served.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2

from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, candidates, field_violations, health, like, rating

FOUR_MIB = 4 * 1024 * 1024
RANK = "/reviewrank.v1.RankingService/Rank"
STATS = "/reviewrank.v1.RankingService/GetProductStats"
SUBMIT_BATCH = "/reviewrank.v1.FeedbackService/SubmitBatch"


@pytest.fixture
def client(start_server: Callable[..., Client]) -> Client:
    """A server whose transport takes 4 MiB messages (its default, 3 MiB, refuses them
    before the budget is consulted), so that the budget is what these tests meet."""
    return start_server(max_message_bytes=FOUR_MIB + 64 * 1024)


def refused(client: Client, path: str, data: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        client.channel.unary_unary(path)(data, timeout=30)
    return info.value


def assert_serves_normal_calls(client: Client) -> None:
    ranked = client.ranking.Rank(
        ranking_pb2.RankRequest(candidates=candidates("a", "b", "c")), timeout=5
    )
    assert 3 == len(ranked.results)


def million_short_ids() -> bytes:
    """A GetProductStatsRequest of a million two-character ids: about 4 MB."""
    return b"\x0a\x02ab" * 1_000_000


def tiny_candidates(size: int) -> bytes:
    """A RankRequest of ``size`` bytes of one-character candidates (5 bytes each)."""
    return b"\x0a\x03\x0a\x01x" * (size // 5)


def tiny_events(size: int) -> bytes:
    """A SubmitBatchRequest of ``size`` bytes of empty events (2 bytes each)."""
    return b"\x0a\x00" * (size // 2)


@pytest.mark.parametrize(
    ("path", "data", "limit"),
    [
        (STATS, million_short_ids(), "max_stats_products=1000"),
        (STATS, million_short_ids()[:-1], "max_stats_products=1000"),
        (RANK, tiny_candidates(2 * FOUR_MIB)[:FOUR_MIB], "max_candidates=5000"),
        (SUBMIT_BATCH, tiny_events(FOUR_MIB)[:-1], "max_batch_events=1000"),
        (SUBMIT_BATCH, tiny_events(FOUR_MIB), "max_batch_events=1000"),
    ],
    ids=[
        "stats-a-million-ids",
        "stats-a-million-ids-cut-short",
        "rank-4MiB-cut-short",
        "batch-4MiB-cut-short",
        "batch-4MiB",
    ],
)
def test_a_request_larger_than_any_valid_one_is_refused_unread_naming_the_limit(
    client: Client, path: str, data: bytes, limit: str
) -> None:
    error = refused(client, path, data)

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    details = error.details() or ""
    assert "refused unread" in details, details
    assert limit in details and "max_id_length=128" in details, details
    assert f"({len(data)} bytes)" in details, details
    assert 0 == client.server.app.catalogue.seq
    assert_serves_normal_calls(client)


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        (RANK, tiny_candidates(2_700_000)[:-1], "candidates"),
        (STATS, b"\x0a\x01x" * 150_000 + b"\x0a\x05", "product_ids"),
        (SUBMIT_BATCH, tiny_events(2_000_000) + b"\x0a\x05", "events"),
    ],
    ids=["rank", "stats", "batch"],
)
def test_a_cut_short_request_of_tiny_items_is_refused_at_its_item_limit(
    client: Client, path: str, data: bytes, field: str
) -> None:
    # Within the byte budget, but holding hundreds of times more items than allowed and
    # cut short: explaining where it breaks would walk every item in Python.
    error = refused(client, path, data)

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert {field} == set(field_violations(error)), error.details()
    assert "(more were sent)" in field_violations(error)[field]
    assert_serves_normal_calls(client)


def test_a_cut_short_request_of_unknown_fields_is_explained_only_so_far(client: Client) -> None:
    # A million unknown fields (number 15), then a candidate cut short.
    data = b"\x78\x00" * 1_000_000 + b"\x0a\x05x"

    error = refused(client, RANK, data)

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "could not be parsed (read no further than" in (error.details() or "")
    assert_serves_normal_calls(client)


def test_a_cut_short_health_check_of_unknown_fields_is_explained_only_so_far(
    client: Client,
) -> None:
    # Health has no byte budget of its own here: its explanation reads 10,000 fields at most.
    data = b"\x78\x00" * 2_000_000 + b"\x0a\x05x"

    error = refused(client, "/grpc.health.v1.Health/Check", data)

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "could not be parsed (read no further than 10000 fields)" in (error.details() or "")
    assert health_pb2.HealthCheckResponse.SERVING == health(client, "")


# -- the largest valid requests --------------------------------------------------------------


def long_id(index: int, prefix: str = "") -> str:
    """128 characters of four UTF-8 bytes each (512 bytes), one of 40,000 by ``index``."""
    return (prefix + chr(0x20000 + index) * 128)[:128]


NOW_MAX_NANOS = 999_999_999


def largest_rating(index: int) -> feedback_pb2.SubmitRatingRequest:
    request = rating(
        long_id(index, "p"),
        long_id(index, "u"),
        5,
        at=int(time.time()) - 60,
        event_id=long_id(index, "e"),
        category=long_id(index, "c"),
    )
    request.occurred_at.nanos = NOW_MAX_NANOS
    return request


def test_the_largest_valid_batch_and_events_are_accepted(client: Client) -> None:
    request = batch(*(largest_rating(i) for i in range(1000)))
    assert 2_000_000 < request.ByteSize()  # about 95 % of the largest encoding possible

    results = client.feedback.SubmitBatch(request, timeout=30).results
    assert [feedback_pb2.APPLIED] * 1000 == [r.outcome for r in results]
    one = largest_rating(1000)
    assert feedback_pb2.APPLIED == client.feedback.SubmitRating(one, timeout=5).outcome
    vote = like(long_id(1001, "p"), long_id(1001, "u"), feedback_pb2.DISLIKE, at=None)
    vote.event_id = long_id(1001, "e")
    assert feedback_pb2.APPLIED == client.feedback.SubmitLike(vote, timeout=5).outcome
    forget = feedback_pb2.ForgetUserRequest(user_id=long_id(1000, "u"))
    assert 1 == client.eraser.ForgetUser(forget, timeout=5).ratings_removed


def test_the_largest_valid_rank_stats_and_top_requests_are_accepted(client: Client) -> None:
    seq = client.feedback.SubmitRating(largest_rating(0), timeout=5).seq
    ids = [long_id(i, "p") for i in range(5000)]
    rank = ranking_pb2.RankRequest(
        candidates=[
            ranking_pb2.Candidate(product_id=p, relevance=i + 0.5) for i, p in enumerate(ids)
        ],
        limit=2**32 - 1,
        user_id=long_id(0, "u"),
        min_seq=seq,
    )
    stats = ranking_pb2.GetProductStatsRequest(product_ids=ids[:1000], min_seq=seq)
    assert 2_600_000 < rank.ByteSize() and 500_000 < stats.ByteSize()

    assert 5000 == len(client.ranking.Rank(rank, timeout=30).results)
    assert 1000 == len(client.ranking.GetProductStats(stats, timeout=30).stats)
    top = ranking_pb2.TopRequest(
        category=long_id(0, "c"), limit=1000, user_id=long_id(0, "u"), min_seq=seq
    )
    assert [ids[0]] == [r.product_id for r in client.ranking.Top(top, timeout=5).results]


def test_a_4_mib_request_is_refused_by_the_transport_at_default_settings(
    start_server: Callable[..., Client],
) -> None:
    default = start_server()

    error = refused(default, STATS, million_short_ids())

    assert grpc.StatusCode.RESOURCE_EXHAUSTED == error.code()
    assert_serves_normal_calls(default)
