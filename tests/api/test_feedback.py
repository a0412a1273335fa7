"""FeedbackService over a real server: outcomes, vote semantics, durability, read-your-write."""

from __future__ import annotations

from reviewrank.service.storage.factory import open_store
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import batch, like, rating

pytestmark = both_backends


def stats(client: Client, *products: str) -> list[ranking_pb2.ProductStats]:
    request = ranking_pb2.GetProductStatsRequest(product_ids=list(products))
    return list(client.ranking.GetProductStats(request).stats)


def test_new_rating_is_applied_with_a_sequence_number(client: Client) -> None:
    response = client.feedback.SubmitRating(rating("p1", "u1", 4))

    assert feedback_pb2.APPLIED == response.outcome
    assert 1 == response.seq


def test_replayed_rating_is_duplicate_and_changes_nothing(client: Client) -> None:
    first = rating("p1", "u1", 4)
    client.feedback.SubmitRating(first)

    replay = client.feedback.SubmitRating(first)

    assert feedback_pb2.DUPLICATE == replay.outcome
    assert 0 == replay.seq
    assert 1 == stats(client, "p1")[0].rating_count


def test_replay_with_other_content_is_still_duplicate(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 4, event_id="same"))

    replay = client.feedback.SubmitRating(rating("p1", "u1", 1, event_id="same"))

    assert feedback_pb2.DUPLICATE == replay.outcome
    assert [0, 0, 0, 1, 0] == list(stats(client, "p1")[0].stars_histogram)


def test_newer_rating_replaces_the_users_earlier_one(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 2, at=1000))

    response = client.feedback.SubmitRating(rating("p1", "u1", 5, at=2000))

    [s] = stats(client, "p1")
    assert feedback_pb2.APPLIED == response.outcome
    assert (1, 5, [0, 0, 0, 0, 1]) == (s.rating_count, s.stars_mean, list(s.stars_histogram))


def test_older_rating_arriving_late_is_superseded(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 5, at=2000))

    response = client.feedback.SubmitRating(rating("p1", "u1", 1, at=1000))

    [s] = stats(client, "p1")
    assert feedback_pb2.SUPERSEDED == response.outcome
    assert (1, 5.0) == (s.rating_count, s.stars_mean)


def test_equal_timestamps_are_ordered_by_event_id(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 2, at=1000, event_id="b"))

    earlier_id = client.feedback.SubmitRating(rating("p1", "u1", 5, at=1000, event_id="a"))
    later_id = client.feedback.SubmitRating(rating("p1", "u1", 3, at=1000, event_id="c"))

    assert feedback_pb2.SUPERSEDED == earlier_id.outcome
    assert feedback_pb2.APPLIED == later_id.outcome
    assert 3.0 == stats(client, "p1")[0].stars_mean


def test_different_users_each_count_once(client: Client) -> None:
    for user, stars in (("u1", 5), ("u2", 3), ("u3", 4)):
        client.feedback.SubmitRating(rating("p1", user, stars))

    [s] = stats(client, "p1")

    assert (3, 4.0, [0, 0, 1, 1, 1]) == (s.rating_count, s.stars_mean, list(s.stars_histogram))


def test_like_then_dislike_by_the_same_user_counts_one_dislike(client: Client) -> None:
    client.feedback.SubmitLike(like("p1", "u1", feedback_pb2.LIKE, at=1000))
    client.feedback.SubmitLike(like("p1", "u1", feedback_pb2.DISLIKE, at=2000))

    [s] = stats(client, "p1")

    assert (0, 1) == (s.likes, s.dislikes)


def test_clear_withdraws_the_users_like(client: Client) -> None:
    client.feedback.SubmitLike(like("p1", "u1", feedback_pb2.LIKE, at=1000))
    client.feedback.SubmitLike(like("p1", "u2", feedback_pb2.LIKE, at=1000))

    response = client.feedback.SubmitLike(like("p1", "u1", feedback_pb2.CLEAR, at=2000))

    [s] = stats(client, "p1")
    assert feedback_pb2.APPLIED == response.outcome
    assert (1, 0) == (s.likes, s.dislikes)


def test_like_older_than_a_clear_is_superseded(client: Client) -> None:
    client.feedback.SubmitLike(like("p1", "u1", feedback_pb2.CLEAR, at=2000))

    response = client.feedback.SubmitLike(like("p1", "u1", feedback_pb2.LIKE, at=1000))

    assert feedback_pb2.SUPERSEDED == response.outcome
    assert 0 == stats(client, "p1")[0].likes


def test_ratings_and_likes_are_separate_votes(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 4, at=1000))
    client.feedback.SubmitLike(like("p1", "u1", feedback_pb2.LIKE, at=2000))

    [s] = stats(client, "p1")

    assert (1, 1) == (s.rating_count, s.likes)


def test_batch_returns_one_outcome_per_event_in_order(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 5, at=5000, event_id="old"))
    request = batch(
        rating("p1", "u2", 4),
        rating("p1", "u1", 1, at=1000),  # older than u1's vote
        like("p2", "u1"),
        rating("p1", "u1", 5, at=5000, event_id="old"),  # replay
    )

    response = client.feedback.SubmitBatch(request)

    outcomes = [r.outcome for r in response.results]
    expected = [
        feedback_pb2.APPLIED,
        feedback_pb2.SUPERSEDED,
        feedback_pb2.APPLIED,
        feedback_pb2.DUPLICATE,
    ]
    assert expected == outcomes
    assert max(r.seq for r in response.results) == response.seq


def test_event_repeated_within_a_batch_is_duplicate_after_the_first(client: Client) -> None:
    event = rating("p1", "u1", 5, event_id="twice")

    response = client.feedback.SubmitBatch(batch(event, event))

    assert [feedback_pb2.APPLIED, feedback_pb2.DUPLICATE] == [r.outcome for r in response.results]
    assert 1 == stats(client, "p1")[0].rating_count


def test_sequence_numbers_increase_across_calls(client: Client) -> None:
    seqs = [client.feedback.SubmitRating(rating("p1", f"u{i}", 3)).seq for i in range(5)]

    assert [1, 2, 3, 4, 5] == seqs


def test_acknowledged_rating_is_reflected_in_the_next_rank(client: Client) -> None:
    for user in range(20):
        client.feedback.SubmitRating(rating("good", f"u{user}", 5))
    request = ranking_pb2.RankRequest(
        candidates=[
            ranking_pb2.Candidate(product_id="bad", relevance=1),
            ranking_pb2.Candidate(product_id="good", relevance=1),
        ]
    )
    before = [r.product_id for r in client.ranking.Rank(request).results]

    for user in range(20):
        client.feedback.SubmitRating(rating("bad", f"u{user}", 5))
        client.feedback.SubmitLike(like("bad", f"u{user}"))
    after = [r.product_id for r in client.ranking.Rank(request).results]

    assert ["good", "bad"] == before
    assert ["bad", "good"] == after


def test_missing_occurred_at_uses_the_server_clock(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 2, at=None))

    # A vote dated in 2001 is older than "now", so it cannot replace it.
    response = client.feedback.SubmitRating(rating("p1", "u1", 5, at=1_000_000_000))

    assert feedback_pb2.SUPERSEDED == response.outcome


def test_aggregates_equal_a_recount_of_the_votes_after_mixed_traffic(client: Client) -> None:
    for i in range(60):
        client.feedback.SubmitRating(rating(f"p{i % 4}", f"u{i % 7}", 1 + i % 5, at=1000 + i))
        client.feedback.SubmitLike(
            like(
                f"p{i % 3}",
                f"u{i % 5}",
                (feedback_pb2.LIKE, feedback_pb2.DISLIKE, feedback_pb2.CLEAR)[i % 3],
                at=5000 - i,
            )
        )
    client.server.stop(grace=1.0)

    store = open_store(client.settings.storage)
    try:
        assert [] == store.aggregate_mismatches()
        assert 120 == store.count_events()
    finally:
        store.close()


def test_acknowledged_events_survive_a_restart(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = start_server()
    first.feedback.SubmitRating(rating("p1", "u1", 5, event_id="kept"))
    first.feedback.SubmitLike(like("p1", "u2"))
    first.server.stop(grace=1.0)

    second = start_server()

    [s] = stats(second, "p1")
    assert (1, 5.0, 1) == (s.rating_count, s.stars_mean, s.likes)
    replay = second.feedback.SubmitRating(rating("p1", "u1", 5, event_id="kept"))
    assert feedback_pb2.DUPLICATE == replay.outcome
