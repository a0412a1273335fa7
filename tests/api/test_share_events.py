"""SubmitShare and shares in SubmitBatch over a real server, on both backends: one share
per user and product, idempotency, order by time, erasure, durability, bad input."""

from __future__ import annotations

import grpc
import pytest

from reviewrank.service.domain.values import ShareEvent
from reviewrank.service.storage.factory import open_store
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import batch, field_violations, like, rating, share

pytestmark = both_backends


def sharers(client: Client, product: str) -> int:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product])
    return int(client.ranking.GetProductStats(request).stats[0].shares)


def test_a_new_share_is_applied_with_a_sequence_number_and_counted(client: Client) -> None:
    response = client.feedback.SubmitShare(share("p1", "u1", channel="instagram"))

    assert (feedback_pb2.APPLIED, 1) == (response.outcome, response.seq)
    assert 1 == sharers(client, "p1")


def test_a_replayed_share_is_duplicate_and_changes_nothing(client: Client) -> None:
    first = share("p1", "u1")
    client.feedback.SubmitShare(first)

    replay = client.feedback.SubmitShare(first)

    assert (feedback_pb2.DUPLICATE, 0) == (replay.outcome, replay.seq)
    assert 1 == sharers(client, "p1")


def test_a_users_newer_share_of_the_same_product_counts_once(client: Client) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=1000))

    again = client.feedback.SubmitShare(share("p1", "u1", at=2000))

    assert feedback_pb2.APPLIED == again.outcome
    assert 1 == sharers(client, "p1")


def test_an_older_share_arriving_late_is_superseded(client: Client) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=2000))

    late = client.feedback.SubmitShare(share("p1", "u1", at=1000))

    assert feedback_pb2.SUPERSEDED == late.outcome
    assert 1 == sharers(client, "p1")


def test_each_user_sharing_counts_once(client: Client) -> None:
    for user in ("u1", "u2", "u3"):
        client.feedback.SubmitShare(share("p1", user))
    client.feedback.SubmitShare(share("p2", "u1"))

    assert (3, 1) == (sharers(client, "p1"), sharers(client, "p2"))


def test_shares_leave_the_stars_and_likes_alone(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 4))
    client.feedback.SubmitShare(share("p1", "u1"))

    [s] = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["p1"])
    ).stats

    assert (1, 4.0, 0, 1) == (s.rating_count, s.stars_mean, s.likes, s.shares)


def test_a_batch_of_ratings_likes_and_shares_answers_each_in_order(client: Client) -> None:
    repeated = share("p1", "u1", at=3000)

    response = client.feedback.SubmitBatch(
        batch(
            rating("p1", "u1", 5),
            share("p1", "u1", at=2000),
            like("p1", "u2"),
            share("p1", "u2", channel="app"),
            repeated,
            repeated,
            share("p1", "u1", at=1000),
        )
    )

    outcomes = [r.outcome for r in response.results]
    applied, duplicate, superseded = (
        feedback_pb2.APPLIED, feedback_pb2.DUPLICATE, feedback_pb2.SUPERSEDED,
    )  # fmt: skip
    assert [applied] * 5 + [duplicate, superseded] == outcomes
    assert 2 == sharers(client, "p1")


def test_a_large_batch_of_shares_is_applied_in_bulk(client: Client) -> None:
    events = [share(f"p{i % 10}", f"u{i}") for i in range(500)]

    response = client.feedback.SubmitBatch(batch(*events))

    assert {feedback_pb2.APPLIED} == {r.outcome for r in response.results}
    assert 50 == sharers(client, "p3")


def test_forgetting_a_user_removes_their_shares_and_a_replay_stays_duplicate(
    client: Client,
) -> None:
    kept = share("p1", "u1", event_id="to-forget")
    client.feedback.SubmitShare(kept)
    client.feedback.SubmitShare(share("p2", "u1"))
    client.feedback.SubmitShare(share("p1", "u2"))

    forgotten = client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="u1"))
    replay = client.feedback.SubmitShare(kept)

    assert (2, 2) == (forgotten.shares_removed, forgotten.events_erased)
    assert (1, 0) == (sharers(client, "p1"), sharers(client, "p2"))
    assert feedback_pb2.DUPLICATE == replay.outcome


def test_acknowledged_shares_survive_a_restart_and_equal_a_recount(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server()
    for i in range(30):
        first.feedback.SubmitShare(share(f"p{i % 3}", f"u{i % 7}", at=1000 + i))
    first.server.stop(grace=1.0)

    second = start_server()

    assert 7 == sharers(second, "p0")
    second.server.stop(grace=1.0)
    store = open_store(second.settings.storage)
    try:
        assert [] == store.aggregate_mismatches()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("changed", "field", "problem"),
    [
        ({"channel": "c" * 65}, "channel", "at most 64"),
        ({"channel": "web\napp"}, "channel", "control"),
        ({"product_id": ""}, "product_id", "required"),
        ({"user_id": "u" * 129}, "user_id", "at most 128"),
    ],
)
def test_an_invalid_share_is_refused_naming_the_field(
    client: Client, changed: dict[str, str], field: str, problem: str
) -> None:
    request = share("p1", "u1")
    for name, value in changed.items():
        setattr(request, name, value)

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitShare(request)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert problem in field_violations(refused.value)[field]


def test_an_invalid_share_in_a_batch_is_named_by_its_place(client: Client) -> None:
    bad = share("p1", "u2", channel="x" * 100)

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitBatch(batch(rating("p1", "u1", 3), bad))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "events[1].share.channel" in field_violations(refused.value)
    assert 0 == sharers(client, "p1")


def test_a_share_another_process_committed_reaches_this_servers_stats(client: Client) -> None:
    elsewhere = open_store(client.settings.storage)  # another writer on the same database
    try:
        group = elsewhere.apply([[ShareEvent("from-elsewhere", "p9", "u1", 1_000, "store")]])
    finally:
        elsewhere.close()

    request = ranking_pb2.GetProductStatsRequest(product_ids=["p9"], min_seq=group.seq)
    [s] = client.ranking.GetProductStats(request, timeout=10).stats

    assert 1 == s.shares
