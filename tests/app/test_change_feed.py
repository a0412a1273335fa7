"""The change feed and min_seq: writes made outside this server reach it; callers can
wait for their own writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from reviewrank.service.app.store import AppliedGroup
from reviewrank.service.compose import build_application
from reviewrank.service.domain.values import CommentEvent, PollVoteEvent, RatingEvent
from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import explaining, rating


def stats(client: Client, product: str, min_seq: int = 0) -> ranking_pb2.ProductStats:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product], min_seq=min_seq)
    return client.ranking.GetProductStats(request, timeout=10).stats[0]


def test_min_seq_of_an_own_write_is_answered_at_once(client: Client) -> None:
    ack = client.feedback.SubmitRating(rating("p", "u", 4))

    caught_up = client.server.app.feed.wait_for(ack.seq, timeout=0.0)  # no wait at all
    s = stats(client, "p", min_seq=ack.seq)

    assert (True, 1) == (caught_up, s.rating_count)


def test_writes_by_another_process_on_the_database_reach_the_server(client: Client) -> None:
    other = build_application(client.settings)  # as `reviewrank import` beside a server would
    try:
        [result] = other.submit([RatingEvent("x1", "p", "u9", 2, 1000, "Knits")], timeout=10)
    finally:
        other.close()

    s = stats(client, "p", min_seq=result.seq)

    assert (1, 2.0, "Knits") == (s.rating_count, s.stars_mean, s.category)


def test_decayed_sums_follow_writes_made_elsewhere(client: Client) -> None:
    now_us = int(time.time() * 1_000_000)
    other = build_application(client.settings)
    try:
        [result] = other.submit([RatingEvent("x2", "a", "u1", 5, now_us - 30 * 86_400_000_000)], 10)
    finally:
        other.close()
    request = ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id="a")], profile="recent", explain=True,
        min_seq=result.seq,
    )  # fmt: skip

    explanation = explaining(client).Rank(request, timeout=10).results[0].explanation

    assert (1, 0.5) == (
        explanation.rating_count,
        pytest.approx(explanation.weighted_ratings, rel=1e-3),
    )


def product_indexes(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%_product'"
        )
        return sorted(r[0] for r in rows)


def test_the_votes_are_indexed_by_product_once_a_follower_of_decayed_sums_needs_it(
    client: Client,
) -> None:
    database = client.settings.storage.path
    assert database is not None
    client.feedback.SubmitRating(rating("a", "u0", 4), timeout=10)
    before = product_indexes(database)  # own writes: the decayed sums follow them as made
    other = build_application(client.settings)
    try:
        [result] = other.submit([RatingEvent("x3", "a", "u1", 5, int(time.time() * 1e6))], 10)
    finally:
        other.close()

    assert 2 == stats(client, "a", min_seq=result.seq).rating_count
    assert [] == before
    assert [
        "comments_product", "likes_product", "ratings_product", "shares_product"
    ] == product_indexes(database)  # fmt: skip


def test_the_feed_does_not_read_back_a_commit_the_writer_is_yet_to_apply(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = client.server.app
    committed, release = threading.Event(), threading.Event()
    on_commit = app.writer._on_commit

    def after_a_wait(group: AppliedGroup) -> None:  # as while the writer waits for a turn
        committed.set()
        release.wait(10)
        on_commit(group)

    monkeypatch.setattr(app.writer, "_on_commit", after_a_wait)
    reads: list[int] = []
    follower = app.feed._follower
    load = follower.load_products
    monkeypatch.setattr(
        follower, "load_products", lambda after_seq=0: reads.append(after_seq) or load(after_seq)
    )
    writing = threading.Thread(
        target=lambda: client.feedback.SubmitRating(rating("p", "u", 4), timeout=10)
    )
    writing.start()
    assert committed.wait(10)

    app.feed.poll_once()
    release.set()
    writing.join(10)

    assert ([], 1) == (reads, stats(client, "p").rating_count)


def test_comment_channel_sums_follow_comments_made_elsewhere(client: Client) -> None:
    other = build_application(client.settings)
    try:
        [result] = other.submit([CommentEvent("x4", "c", "u1", 5_000, 1000, "store")], 10)
    finally:
        other.close()
    request = ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id="c")], profile="commented_by_channel",
        explain=True, min_seq=result.seq,
    )  # fmt: skip

    explanation = explaining(client).Rank(request, timeout=10).results[0].explanation

    assert (1, 3.0) == (explanation.comments, explanation.weighted_comments)
    assert pytest.approx(3 * 0.5 / (2 + 3)) == explanation.sentiment_average


def test_poll_strengths_follow_poll_votes_made_elsewhere(client: Client) -> None:
    other = build_application(client.settings)
    try:
        votes = [PollVoteEvent(f"x{i}", "q", f"u{i}", ("a", "b"), "a", 1000) for i in range(3)]
        results = other.submit(votes, 10)
    finally:
        other.close()
    deadline = time.monotonic() + 20
    while stats(client, "a", min_seq=results[-1].seq).poll_strength <= 1.0:
        assert time.monotonic() < deadline, "the strengths were not refitted"
        time.sleep(0.02)

    assert (3, 3) == (stats(client, "a").polls_shown, stats(client, "a").polls_won)
    assert stats(client, "b").poll_strength < 1.0
