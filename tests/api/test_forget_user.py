"""ForgetUser (right to erasure): votes, aggregates, the event log, replays and the files."""

from __future__ import annotations

from collections.abc import Callable

from reviewrank.service.app.store import Store
from reviewrank.service.domain.values import (
    Erasure,
    ErasureResult,
    LikeEvent,
    LikeValue,
    Outcome,
    RatingEvent,
)
from reviewrank.service.storage.common import event_hash
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import batch, like, query, rating


def forget(client: Client, user: str) -> feedback_pb2.ForgetUserResponse:
    return client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id=user))


def stats(client: Client, *products: str) -> dict[str, tuple[int, int, tuple[int, ...], int, int]]:
    response = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=list(products))
    )
    return {
        s.product_id: (
            s.rating_count,
            sum((i + 1) * n for i, n in enumerate(s.stars_histogram)),
            tuple(s.stars_histogram),
            s.likes,
            s.dislikes,
        )
        for s in response.stats
    }


@both_backends
def test_forgetting_a_user_removes_every_vote_and_updates_the_aggregates(client: Client) -> None:
    client.feedback.SubmitBatch(
        batch(
            rating("p1", "alice", 5),
            rating("p2", "alice", 2),
            like("p1", "alice"),
            like("p2", "alice", feedback_pb2.DISLIKE),
            rating("p1", "bob", 4),
            like("p1", "bob"),
        )
    )
    seq_before = client.server.app.catalogue.seq

    response = forget(client, "alice")

    assert (2, 2, 4) == (response.ratings_removed, response.likes_removed, response.events_erased)
    assert seq_before + 1 == response.seq
    assert {
        "p1": (1, 4, (0, 0, 0, 1, 0), 1, 0),
        "p2": (0, 0, (0, 0, 0, 0, 0), 0, 0),
    } == stats(client, "p1", "p2")
    assert [] == client.server.app.store.aggregate_mismatches()


@both_backends
def test_the_erased_user_is_gone_from_the_vote_tables_and_the_event_log(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "alice", 5, event_id="alice-r1"))
    client.feedback.SubmitLike(like("p1", "alice", event_id="alice-l1"))
    client.feedback.SubmitRating(rating("p1", "bob", 3, event_id="bob-r1"))

    forget(client, "alice")

    settings = client.settings
    for table in ("ratings", "likes", "events"):
        users = {row[0] for row in query(settings, f"SELECT user_id FROM {table}")}
        assert "alice" not in users, table
    assert ["bob-r1"] == [row[0] for row in query(settings, "SELECT event_id FROM events")]
    kept = {row[0] for row in query(settings, "SELECT event_hash FROM erased_events")}
    assert {event_hash("alice-r1"), event_hash("alice-l1")} == kept


@both_backends
def test_a_replayed_erased_event_is_duplicate_and_does_not_bring_the_vote_back(
    client: Client,
) -> None:
    original = rating("p1", "alice", 5, event_id="alice-r1")
    client.feedback.SubmitRating(original)
    forget(client, "alice")

    replay = client.feedback.SubmitRating(original)
    other_content = client.feedback.SubmitRating(rating("p1", "carol", 1, event_id="alice-r1"))
    in_a_batch = client.feedback.SubmitBatch(batch(original))

    assert feedback_pb2.DUPLICATE == replay.outcome == other_content.outcome
    assert [feedback_pb2.DUPLICATE] == [r.outcome for r in in_a_batch.results]
    assert 0 == stats(client, "p1")["p1"][0]


@both_backends
def test_erasure_and_its_tombstones_survive_a_restart(start_server: Callable[..., Client]) -> None:
    first = start_server()
    original = like("p1", "alice", event_id="alice-l1")
    first.feedback.SubmitLike(original)
    first.feedback.SubmitLike(like("p1", "bob"))
    forget(first, "alice")
    first.channel.close()
    first.server.stop(grace=1.0)

    second = start_server()

    assert feedback_pb2.DUPLICATE == second.feedback.SubmitLike(original).outcome
    assert (0, 0, (0, 0, 0, 0, 0), 1, 0) == stats(second, "p1")["p1"]


@both_backends
def test_new_events_after_an_erasure_are_new_votes(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "alice", 5))
    forget(client, "alice")

    response = client.feedback.SubmitRating(rating("p1", "alice", 2))

    assert feedback_pb2.APPLIED == response.outcome
    assert (1, 2) == stats(client, "p1")["p1"][:2]


@both_backends
def test_forgetting_an_unknown_user_or_twice_is_harmless(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "alice", 5))
    forget(client, "alice")
    seq = client.server.app.catalogue.seq

    again = forget(client, "alice")
    unknown = forget(client, "nobody")

    for response in (again, unknown):
        assert (0, 0, 0, 0) == (
            response.ratings_removed,
            response.likes_removed,
            response.events_erased,
            response.seq,
        )
    assert seq == client.server.app.catalogue.seq


@both_backends
def test_a_cleared_like_is_removed_but_not_counted(client: Client) -> None:
    client.feedback.SubmitLike(like("p1", "alice", at=100))
    client.feedback.SubmitLike(like("p1", "alice", feedback_pb2.CLEAR, at=200))

    response = forget(client, "alice")

    assert (0, 0, 2) == (response.ratings_removed, response.likes_removed, response.events_erased)
    assert [(0,)] == query(client.settings, "SELECT count(*) FROM likes")


def test_the_erased_user_leaves_no_bytes_in_the_database_files(client: Client) -> None:
    """secure_delete overwrites the rows; a checkpoint empties the WAL of older page images."""
    secret_user = "user-5f0c1d2e-erase-me"
    secret_event = "order-77a3b9-erase-me"
    for i in range(50):
        client.feedback.SubmitRating(rating(f"p{i}", f"other-{i}", 1 + i % 5))
    client.feedback.SubmitRating(rating("p1", secret_user, 5, event_id=secret_event))
    client.feedback.SubmitLike(like("p2", secret_user))
    database = client.settings.database
    before = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert secret_user.encode() in before

    forget(client, secret_user)

    after = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert secret_user.encode() not in after
    assert secret_event.encode() not in after


@both_backends
def test_erasure_and_votes_in_one_transaction_apply_in_order(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    try:
        group = store.apply(
            [
                [RatingEvent("a", "p", "u", 5, 10), LikeEvent("b", "p", "u", LikeValue.LIKE, 10)],
                Erasure("u"),
                [RatingEvent("c", "p", "u", 2, 5)],  # older, but the older vote is gone
                [RatingEvent("a", "p", "u", 4, 20)],  # a replay of an erased event
            ]
        )
    finally:
        store.close()

    assert ErasureResult(1, 1, 2, 3) == group.results[1]
    assert [Outcome.APPLIED] == [r.outcome for r in group.results[2]]  # type: ignore[union-attr]
    assert [Outcome.DUPLICATE] == [r.outcome for r in group.results[3]]  # type: ignore[union-attr]
    [product] = group.products
    assert (1, 2, (0, 1, 0, 0, 0), 0) == (
        product.rating_count,
        product.star_sum,
        product.histogram,
        product.likes,
    )
    # The decayed sums see the removals: every vote change nets out to the vote in force.
    removed = [v for v in group.votes if v.new_value is None]
    assert {("rating", 5), ("like", 1)} == {(v.kind, v.old_value) for v in removed}


@both_backends
def test_in_memory_state_after_an_erasure_equals_a_cold_load(
    start_server: Callable[..., Client],
) -> None:
    first = start_server()
    for user in ("alice", "bob", "carol"):
        for i, product in enumerate(("p1", "p2", "p3")):
            first.feedback.SubmitRating(rating(product, user, 1 + (i + len(user)) % 5))
            first.feedback.SubmitLike(like(product, user, 1 + i % 2))
    forget(first, "bob")
    products = ["p1", "p2", "p3"]
    profiles = ["", "recent", "by_category", "auto"]
    warm = {
        p: first.ranking.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=products, profile=p)
        )
        for p in profiles
    }
    first.channel.close()
    first.server.stop(grace=1.0)

    second = start_server()
    cold = {
        p: second.ranking.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=products, profile=p)
        )
        for p in profiles
    }

    for profile in profiles:
        for w, c in zip(warm[profile].stats, cold[profile].stats, strict=True):
            assert w.rating_count == c.rating_count
            assert list(w.stars_histogram) == list(c.stars_histogram)
            assert (w.likes, w.dislikes) == (c.likes, c.dislikes)
            assert abs(w.bayesian_average - c.bayesian_average) < 1e-9, profile
            assert abs(w.wilson_lower_bound - c.wilson_lower_bound) < 1e-9, profile
