"""The vote semantics, end to end: a hypothesis state machine drives a real server over
gRPC (ratings, re-ratings, likes, dislikes, clears, shares, comments, poll votes, late
older events, duplicates, batches, erasures, restarts on the same database) and checks
every answer and, after every step, GetProductStats against a plain Python model.

Examples: ``STATEFUL_EXAMPLES`` (default 25; ``make soak`` runs more).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from reviewrank.service.api.auth import BearerToken
from reviewrank.service.api.server import create_server
from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.conftest import make_settings

EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "25"))
PRODUCTS = ["p0", "p1", "p2"]
USERS = ["u0", "u1", "u2"]
EVENT_IDS = [f"e{i:02d}" for i in range(30)]  # few: replays and reuse happen often
BASE = 1_700_000_000

LIKE_VALUES = {feedback_pb2.LIKE: 1, feedback_pb2.DISLIKE: -1, feedback_pb2.CLEAR: 0}
OUTCOMES = {"APPLIED": feedback_pb2.APPLIED, "DUPLICATE": feedback_pb2.DUPLICATE}
OUTCOMES["SUPERSEDED"] = feedback_pb2.SUPERSEDED

ratings = st.builds(
    lambda event_id, product, user, stars, at: feedback_pb2.SubmitRatingRequest(
        event_id=event_id,
        product_id=product,
        user_id=user,
        stars=stars,
        occurred_at=Timestamp(seconds=BASE + at),
    ),
    st.sampled_from(EVENT_IDS),
    st.sampled_from(PRODUCTS),
    st.sampled_from(USERS),
    st.integers(1, 5),
    st.integers(0, 8),  # a small range: older events arrive late, times tie
)
likes = st.builds(
    lambda event_id, product, user, value, at: feedback_pb2.SubmitLikeRequest(
        event_id=event_id,
        product_id=product,
        user_id=user,
        value=value,
        occurred_at=Timestamp(seconds=BASE + at),
    ),
    st.sampled_from(EVENT_IDS),
    st.sampled_from(PRODUCTS),
    st.sampled_from(USERS),
    st.sampled_from(list(LIKE_VALUES)),
    st.integers(0, 8),
)
shares = st.builds(
    lambda event_id, product, user, at: feedback_pb2.SubmitShareRequest(
        event_id=event_id,
        product_id=product,
        user_id=user,
        occurred_at=Timestamp(seconds=BASE + at),
    ),
    st.sampled_from(EVENT_IDS),
    st.sampled_from(PRODUCTS),
    st.sampled_from(USERS),
    st.integers(0, 8),
)
comments = st.builds(
    lambda event_id, product, user, at, score: feedback_pb2.SubmitCommentRequest(
        event_id=event_id,
        product_id=product,
        user_id=user,
        occurred_at=Timestamp(seconds=BASE + at),
        score=score / 4,
    ),
    st.sampled_from(EVENT_IDS),
    st.sampled_from(PRODUCTS),
    st.sampled_from(USERS),
    st.integers(0, 8),
    st.integers(-4, 4),  # scores of a quarter: their sums are exact
)
POLLS = ["q0", "q1"]
poll_votes = st.builds(
    lambda event_id, poll, user, at, shown, pick: feedback_pb2.SubmitPollVoteRequest(
        event_id=event_id,
        poll_id=poll,
        user_id=user,
        occurred_at=Timestamp(seconds=BASE + at),
        shown=shown,
        chosen=shown[pick % len(shown)],
    ),
    st.sampled_from(EVENT_IDS),
    st.sampled_from(POLLS),
    st.sampled_from(USERS),
    st.integers(0, 8),
    st.lists(st.sampled_from(PRODUCTS), min_size=2, max_size=3, unique=True),
    st.integers(0, 2),
)
events = st.one_of(ratings, likes, shares, comments, poll_votes)

Event = (
    feedback_pb2.SubmitRatingRequest
    | feedback_pb2.SubmitLikeRequest
    | feedback_pb2.SubmitShareRequest
    | feedback_pb2.SubmitCommentRequest
    | feedback_pb2.SubmitPollVoteRequest
)


class Model:
    """The documented semantics in plain Python."""

    def __init__(self) -> None:
        self.seen: set[str] = set()  # every event id recorded, erased or not
        self.log: dict[str, str] = {}  # event id -> user, for the events still in the log
        self.votes: dict[tuple[str, str, str], tuple[int, str, object]] = {}

    def apply(self, event: Event) -> str:
        if event.event_id in self.seen:
            return "DUPLICATE"
        self.seen.add(event.event_id)
        self.log[event.event_id] = event.user_id
        key_of = "product_id"
        value: object
        if isinstance(event, feedback_pb2.SubmitPollVoteRequest):
            kind, value, key_of = "poll_vote", (tuple(event.shown), event.chosen), "poll_id"
        elif isinstance(event, feedback_pb2.SubmitRatingRequest):
            kind, value = "rating", event.stars
        elif isinstance(event, feedback_pb2.SubmitShareRequest):
            kind, value = "share", 1
        elif isinstance(event, feedback_pb2.SubmitCommentRequest):
            kind, value = "comment", event.score
        else:
            kind, value = "like", LIKE_VALUES[event.value]
        key = (kind, getattr(event, key_of), event.user_id)
        at = event.occurred_at.seconds
        current = self.votes.get(key)
        if current is not None and current[:2] >= (at, event.event_id):
            return "SUPERSEDED"
        self.votes[key] = (at, event.event_id, value)
        return "APPLIED"

    def forget(self, user: str) -> tuple[int, int, int, int, int, int]:
        mine = [k for k in self.votes if k[2] == user]
        ratings_removed = sum(1 for k in mine if k[0] == "rating")
        likes_removed = sum(1 for k in mine if k[0] == "like" and self.votes[k][2] != 0)
        shares_removed = sum(1 for k in mine if k[0] == "share")
        comments_removed = sum(1 for k in mine if k[0] == "comment")
        polls_removed = sum(1 for k in mine if k[0] == "poll_vote")
        for key in mine:
            del self.votes[key]
        erased = [e for e, u in self.log.items() if u == user]
        for event_id in erased:
            del self.log[event_id]
        removed = (ratings_removed, likes_removed, shares_removed, comments_removed)
        return (*removed, polls_removed, len(erased))

    def aggregates(
        self, product: str
    ) -> tuple[int, list[int], int, int, int, int, float, int, int]:
        stars = [v[2] for (k, p, _), v in self.votes.items() if k == "rating" and p == product]
        values = [v[2] for (k, p, _), v in self.votes.items() if k == "like" and p == product]
        sharers = sum(1 for (k, p, _) in self.votes if k == "share" and p == product)
        scores = [v[2] for (k, p, _), v in self.votes.items() if k == "comment" and p == product]
        histogram = [stars.count(s) for s in range(1, 6)]
        mean = sum(scores) / len(scores) if scores else 0.0  # type: ignore[arg-type]
        ballots = [v[2] for (k, _, _), v in self.votes.items() if k == "poll_vote"]
        shown = sum(1 for products, _ in ballots if product in products)  # type: ignore[misc]
        won = sum(1 for _, chosen in ballots if chosen == product)  # type: ignore[misc]
        return (
            len(stars), histogram, values.count(1), values.count(-1), sharers, len(scores), mean,
            shown, won,
        )  # fmt: skip


class VoteMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="reviewrank-votes-"))
        self.settings = make_settings(self.directory, log_level="error")
        self.model = Model()
        self.last_seq = 0
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        self.server, port = create_server(self.settings)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.feedback = feedback_pb2_grpc.FeedbackServiceStub(self.channel)
        self.eraser = feedback_pb2_grpc.FeedbackServiceStub(  # ForgetUser needs the admin token
            grpc.intercept_channel(self.channel, BearerToken(self.settings.admin_token))
        )
        self.ranking = ranking_pb2_grpc.RankingServiceStub(self.channel)

    def _stop(self) -> None:
        self.channel.close()
        self.server.stop(grace=1.0)

    def teardown(self) -> None:
        self._stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _check(self, expected: str, response: feedback_pb2.SubmitResponse) -> None:
        assert OUTCOMES[expected] == response.outcome
        if expected == "DUPLICATE":
            assert 0 == response.seq
        else:
            assert response.seq > self.last_seq
            self.last_seq = response.seq

    @rule(event=ratings)
    def rate(self, event: feedback_pb2.SubmitRatingRequest) -> None:
        expected = self.model.apply(event)
        self._check(expected, self.feedback.SubmitRating(event, timeout=10))

    @rule(event=likes)
    def like(self, event: feedback_pb2.SubmitLikeRequest) -> None:
        expected = self.model.apply(event)
        self._check(expected, self.feedback.SubmitLike(event, timeout=10))

    @rule(event=shares)
    def share(self, event: feedback_pb2.SubmitShareRequest) -> None:
        expected = self.model.apply(event)
        self._check(expected, self.feedback.SubmitShare(event, timeout=10))

    @rule(event=comments)
    def comment(self, event: feedback_pb2.SubmitCommentRequest) -> None:
        expected = self.model.apply(event)
        self._check(expected, self.feedback.SubmitComment(event, timeout=10))

    @rule(event=poll_votes)
    def poll_vote(self, event: feedback_pb2.SubmitPollVoteRequest) -> None:
        expected = self.model.apply(event)
        self._check(expected, self.feedback.SubmitPollVote(event, timeout=10))

    @rule(items=st.lists(events, min_size=1, max_size=8))
    def submit_batch(self, items: list[Event]) -> None:
        expected = [self.model.apply(e) for e in items]
        request = feedback_pb2.SubmitBatchRequest(
            events=[
                feedback_pb2.FeedbackEvent(rating=e)
                if isinstance(e, feedback_pb2.SubmitRatingRequest)
                else feedback_pb2.FeedbackEvent(share=e)
                if isinstance(e, feedback_pb2.SubmitShareRequest)
                else feedback_pb2.FeedbackEvent(comment=e)
                if isinstance(e, feedback_pb2.SubmitCommentRequest)
                else feedback_pb2.FeedbackEvent(poll_vote=e)
                if isinstance(e, feedback_pb2.SubmitPollVoteRequest)
                else feedback_pb2.FeedbackEvent(like=e)
                for e in items
            ]
        )
        response = self.feedback.SubmitBatch(request, timeout=10)
        assert len(items) == len(response.results)
        for outcome, result in zip(expected, response.results, strict=True):
            self._check(outcome, result)

    @rule(user=st.sampled_from(USERS))
    def forget(self, user: str) -> None:
        expected = self.model.forget(user)
        response = self.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id=user), timeout=10)
        assert expected == (
            response.ratings_removed,
            response.likes_removed,
            response.shares_removed,
            response.comments_removed,
            response.poll_votes_removed,
            response.events_erased,
        )
        if any(expected):
            assert response.seq > self.last_seq
            self.last_seq = response.seq
        else:
            assert 0 == response.seq

    @precondition(lambda self: self.restarts < 3)
    @rule()
    def restart(self) -> None:
        self._stop()
        self._start()
        self.restarts += 1

    @invariant()
    def stats_match_the_model(self) -> None:
        response = self.ranking.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=PRODUCTS), timeout=10
        )
        for product, stats in zip(PRODUCTS, response.stats, strict=True):
            got = (
                stats.rating_count,
                list(stats.stars_histogram),
                stats.likes,
                stats.dislikes,
                stats.shares,
                stats.comments,
                stats.sentiment_mean,
                stats.polls_shown,
                stats.polls_won,
            )
            assert self.model.aggregates(product) == got, product


VoteMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVoteSemanticsOverGrpc = VoteMachine.TestCase
