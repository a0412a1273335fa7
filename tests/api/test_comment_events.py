"""SubmitComment and comments in SubmitBatch over a real server, on both backends: text
scored on receipt and never stored, a sender's score kept, one comment per user and
product (the newer one's score replaces the older), erasure, durability, bad input."""

from __future__ import annotations

import grpc
import pytest

from reviewrank.service.domain.values import CommentEvent
from reviewrank.service.storage.factory import open_store
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import batch, comment, field_violations, rating

pytestmark = both_backends

GLOWING = "Absolutely love this dress, it fits perfectly and looks great!"
AWFUL = "Terrible quality, it ripped after one wash. Horrible and disappointing."


def stats(client: Client, product: str) -> ranking_pb2.ProductStats:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product])
    [found] = client.ranking.GetProductStats(request).stats
    return found


def test_a_comments_text_is_scored_on_receipt_and_counted(client: Client) -> None:
    response = client.feedback.SubmitComment(comment("p1", "u1", text=GLOWING))

    s = stats(client, "p1")
    assert (feedback_pb2.APPLIED, 1) == (response.outcome, response.seq)
    assert 1 == s.comments
    assert s.sentiment_mean > 0.5


def test_a_negative_text_scores_below_zero(client: Client) -> None:
    client.feedback.SubmitComment(comment("p1", "u1", text=AWFUL))

    assert stats(client, "p1").sentiment_mean < -0.5


def test_a_senders_score_is_kept_to_four_decimals(client: Client) -> None:
    client.feedback.SubmitComment(comment("p1", "u1", score=0.123456))

    assert pytest.approx(0.1235) == stats(client, "p1").sentiment_mean


def test_the_mean_sentiment_is_over_the_users_commenting(client: Client) -> None:
    client.feedback.SubmitComment(comment("p1", "u1", score=0.5))
    client.feedback.SubmitComment(comment("p1", "u2", score=-0.1))

    s = stats(client, "p1")
    assert (2, pytest.approx(0.2)) == (s.comments, s.sentiment_mean)


def test_a_users_newer_comment_replaces_the_older_ones_score(client: Client) -> None:
    client.feedback.SubmitComment(comment("p1", "u1", score=-0.8, at=1000))

    newer = client.feedback.SubmitComment(comment("p1", "u1", score=0.6, at=2000))

    s = stats(client, "p1")
    assert feedback_pb2.APPLIED == newer.outcome
    assert (1, pytest.approx(0.6)) == (s.comments, s.sentiment_mean)


def test_an_older_comment_arriving_late_is_superseded(client: Client) -> None:
    client.feedback.SubmitComment(comment("p1", "u1", score=0.6, at=2000))

    late = client.feedback.SubmitComment(comment("p1", "u1", score=-0.8, at=1000))

    assert feedback_pb2.SUPERSEDED == late.outcome
    assert pytest.approx(0.6) == stats(client, "p1").sentiment_mean


def test_a_replayed_comment_is_duplicate_and_changes_nothing(client: Client) -> None:
    first = comment("p1", "u1", score=0.3)
    client.feedback.SubmitComment(first)

    replay = client.feedback.SubmitComment(first)

    assert (feedback_pb2.DUPLICATE, 0) == (replay.outcome, replay.seq)
    assert 1 == stats(client, "p1").comments


def test_comments_leave_the_stars_alone(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 2))
    client.feedback.SubmitComment(comment("p1", "u1", text=GLOWING))

    s = stats(client, "p1")

    assert (1, 2.0, 0, 1) == (s.rating_count, s.stars_mean, s.likes, s.comments)


def test_the_text_is_never_stored_only_its_score_language_and_analyzer(client: Client) -> None:
    secret = "Lovely colour, my neighbour Ingrid Xylophone-Smith adores it"
    client.feedback.SubmitComment(comment("p1", "u1", text=secret, channel="app"))
    client.feedback.SubmitComment(comment("p2", "u1", score=-0.25, language="de"))
    store = open_store(client.settings.storage)
    try:
        tables = {table: str(rows) for table, rows in store.export()}
    finally:
        store.close()

    assert "Xylophone" not in str(tables)
    assert "'app', 'en', 'vader-" in tables["comments"]
    assert "-2500, " in tables["comments"]
    assert "'de', 'sender'" in tables["comments"]


def test_a_batch_of_ratings_and_comments_answers_each_in_order(client: Client) -> None:
    repeated = comment("p1", "u2", score=0.2, at=3000)

    response = client.feedback.SubmitBatch(
        batch(
            rating("p1", "u1", 5),
            comment("p1", "u1", text=GLOWING, at=2000),
            comment("p1", "u2", text=AWFUL, channel="instagram", at=2500),
            repeated,
            repeated,
            comment("p1", "u1", score=-1.0, at=1000),
        )
    )

    outcomes = [r.outcome for r in response.results]
    applied, duplicate, superseded = (
        feedback_pb2.APPLIED, feedback_pb2.DUPLICATE, feedback_pb2.SUPERSEDED,
    )  # fmt: skip
    assert [applied] * 4 + [duplicate, superseded] == outcomes
    s = stats(client, "p1")
    assert 2 == s.comments
    assert s.sentiment_mean > 0.2  # GLOWING and 0.2: the later AWFUL was replaced


def test_a_large_batch_of_comments_is_applied(client: Client) -> None:
    events = [comment(f"p{i % 10}", f"u{i}", score=(i % 3 - 1) / 2) for i in range(500)]

    response = client.feedback.SubmitBatch(batch(*events))

    assert {feedback_pb2.APPLIED} == {r.outcome for r in response.results}
    assert 50 == stats(client, "p3").comments


def test_forgetting_a_user_removes_their_comments_and_a_replay_stays_duplicate(
    client: Client,
) -> None:
    kept = comment("p1", "u1", score=-1.0, event_id="to-forget")
    client.feedback.SubmitComment(kept)
    client.feedback.SubmitComment(comment("p2", "u1", text=AWFUL))
    client.feedback.SubmitComment(comment("p1", "u2", score=0.5))

    forgotten = client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="u1"))
    replay = client.feedback.SubmitComment(kept)

    assert (2, 2) == (forgotten.comments_removed, forgotten.events_erased)
    assert (1, 0) == (stats(client, "p1").comments, stats(client, "p2").comments)
    assert pytest.approx(0.5) == stats(client, "p1").sentiment_mean
    assert feedback_pb2.DUPLICATE == replay.outcome


def test_acknowledged_comments_survive_a_restart_and_equal_a_recount(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server()
    for i in range(30):
        first.feedback.SubmitComment(comment(f"p{i % 3}", f"u{i % 7}", score=i / 40, at=1000 + i))
    first.server.stop(grace=1.0)

    second = start_server()

    assert 7 == stats(second, "p0").comments
    second.server.stop(grace=1.0)
    store = open_store(second.settings.storage)
    try:
        assert [] == store.aggregate_mismatches()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("request_of", "field", "problem"),
    [
        (lambda: comment("p1", "u1"), "text", "text or its score"),
        (lambda: comment("p1", "u1", text=""), "text", "besides spaces"),
        (lambda: comment("p1", "u1", text=" \n\t "), "text", "besides spaces"),
        (lambda: comment("p1", "u1", text="ok\x00"), "text", "control characters"),
        (lambda: comment("p1", "u1", score=0.1, language="-"), "language", "such as en"),
        (lambda: comment("p1", "u1", text="a" * 5001), "text", "at most 5000"),
        (lambda: comment("p1", "u1", score=1.5), "score", "from -1 to 1"),
        (lambda: comment("p1", "u1", score=float("nan")), "score", "from -1 to 1"),
        (lambda: comment("p1", "u1", text="bon", language="fr"), "language", "no analyzer"),
        (lambda: comment("p1", "u1", score=0.1, language="e n"), "language", "language tag"),
        (lambda: comment("p1", "u1", score=0.1, channel="c" * 65), "channel", "at most 64"),
        (lambda: comment("", "u1", score=0.1), "product_id", "required"),
    ],
)
def test_an_invalid_comment_is_refused_naming_the_field(
    client: Client,
    request_of,
    field: str,
    problem: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitComment(request_of())

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert problem in field_violations(refused.value)[field]


def test_a_language_with_an_analyzer_is_matched_by_its_primary_tag(client: Client) -> None:
    response = client.feedback.SubmitComment(comment("p1", "u1", text=GLOWING, language="en-GB"))

    assert feedback_pb2.APPLIED == response.outcome
    assert stats(client, "p1").sentiment_mean > 0.5


def test_an_invalid_comment_in_a_batch_is_named_by_its_place(client: Client) -> None:
    bad = comment("p1", "u2", score=2.0)

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitBatch(batch(rating("p1", "u1", 3), bad))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "events[1].comment.score" in field_violations(refused.value)
    assert 0 == stats(client, "p1").comments


def test_a_batch_whose_texts_are_too_long_together_is_refused_before_scoring(
    client: Client,
) -> None:
    texts = [comment(f"p{i}", "u1", text="nice " * 999) for i in range(110)]  # 4,995 each

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitBatch(batch(*texts))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "smaller batches" in field_violations(refused.value)["events"]


def test_a_text_may_hold_line_breaks_and_emoji(client: Client) -> None:
    response = client.feedback.SubmitComment(
        comment("p1", "u1", text="Love it!\nSo comfy \U0001f60d\ttruly")
    )

    assert feedback_pb2.APPLIED == response.outcome
    assert stats(client, "p1").sentiment_mean > 0.5


def test_a_batch_whose_texts_hold_too_many_words_to_score_is_refused(client: Client) -> None:
    # 800 emoji each read as the six words of its name: 4,800 words a text
    texts = [comment(f"p{i}", "u1", text="\U0001f638" * 800) for i in range(25)]

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitBatch(batch(*texts))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "words to score" in field_violations(refused.value)["events"]


def test_a_text_holding_too_many_words_to_score_is_refused(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitComment(comment("p1", "u1", text="\U0001f638" * 1_000))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "words to score" in field_violations(refused.value)["text"]


def test_a_comment_another_process_committed_reaches_this_servers_stats(client: Client) -> None:
    elsewhere = open_store(client.settings.storage)  # another writer on the same database
    try:
        event = CommentEvent("from-elsewhere", "p9", "u1", -5_000, 1_000, "store", "en", "sender")
        group = elsewhere.apply([[event]])
    finally:
        elsewhere.close()

    request = ranking_pb2.GetProductStatsRequest(product_ids=["p9"], min_seq=group.seq)
    [s] = client.ranking.GetProductStats(request, timeout=10).stats

    assert (1, pytest.approx(-0.5)) == (s.comments, s.sentiment_mean)
