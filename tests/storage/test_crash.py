"""Crash test: SIGKILL the real server at random moments while several clients stream
ratings, likes, batches and erasures; restart it on the same database each time.

After every restart: every acknowledged event is stored, once; resending it is
DUPLICATE; the aggregates equal a recount of the votes and the server's in-memory
numbers; on SQLite ``PRAGMA integrity_check`` is ok. Calls that were in flight at the
kill are retried, as a shop would, after which the aggregates must equal exactly what a plain
model computes from everything sent: nothing lost, nothing counted twice.

Runs on SQLite and on PostgreSQL. Rounds: ``CRASH_ROUNDS`` (default 12; ``make soak`` runs
many more), seed: ``CRASH_SEED``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from reviewrank.service.api.auth import client_channel
from reviewrank.service.app.settings import Settings
from reviewrank.service.cli.dataset import DATA_DIR
from reviewrank.service.storage.common import event_hash
from reviewrank.service.storage.factory import open_store
from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.conftest import ADMIN_TOKEN, both_backends
from tests.helpers import query
from tests.process import ServerProcess

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "12"))
SEED = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 30))))
CLIENTS = 4
PRODUCTS = [f"p{i}" for i in range(30)]

Request = (
    feedback_pb2.SubmitRatingRequest
    | feedback_pb2.SubmitLikeRequest
    | feedback_pb2.SubmitShareRequest
    | feedback_pb2.SubmitCommentRequest
    | feedback_pb2.SubmitPollVoteRequest
    | feedback_pb2.SubmitBatchRequest
    | feedback_pb2.ForgetUserRequest
)


# Per product: rating count, star sum, histogram, likes, dislikes, sharers, comments and
# the sum of their scores (in 1/10,000), poll votes that showed it and that chose it.
Numbers = tuple[int, int, tuple[int, ...], int, int, int, int, int, int, int]
POLLS = [f"poll{i}" for i in range(5)]


@dataclass
class Ledger:
    """What was sent and what was acknowledged, across all clients and rounds."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: dict[str, tuple[str, str, str, int, int]] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    acknowledged_this_round: list[str] = field(default_factory=list)
    erased_users: set[str] = field(default_factory=set)
    in_doubt: list[Request] = field(default_factory=list)
    calls: int = 0
    in_doubt_total: int = 0
    in_doubt_committed: int = 0  # in flight at the kill, yet committed (retry: DUPLICATE)
    # The model: each user's vote in force, (kind, product, user) -> (at, event_id, value);
    # a poll vote's by (kind, poll, user), its value (products shown, product chosen).
    votes: dict[tuple[str, str, str], tuple[int, str, object]] = field(default_factory=dict)
    keys_of_user: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)

    def sent(self, request: Request) -> None:
        """Every event sent ends up stored (calls in doubt are retried), so the model takes
        it now: the newest (occurred_at, event_id) vote of each user wins."""
        with self.lock:
            for kind, event in _events(request):
                if kind == "poll_vote":
                    self._sent_poll_vote(event)
                    continue
                value = (
                    event.stars
                    if kind == "rating"
                    else 1
                    if kind == "share"
                    else round(event.score * 10_000)
                    if kind == "comment"
                    else _LIKE[event.value]
                )
                at = event.occurred_at.seconds
                self.events[event.event_id] = (kind, event.product_id, event.user_id, value, at)
                key = (kind, event.product_id, event.user_id)
                current = self.votes.get(key)
                if current is None or current[:2] < (at, event.event_id):
                    self.votes[key] = (at, event.event_id, value)
                    self.keys_of_user.setdefault(event.user_id, set()).add(key)

    def _sent_poll_vote(self, event: feedback_pb2.SubmitPollVoteRequest) -> None:
        at = event.occurred_at.seconds
        self.events[event.event_id] = ("poll_vote", event.chosen, event.user_id, 0, at)
        key = ("poll_vote", event.poll_id, event.user_id)
        current = self.votes.get(key)
        if current is None or current[:2] < (at, event.event_id):
            self.votes[key] = (at, event.event_id, (tuple(event.shown), event.chosen))
            self.keys_of_user.setdefault(event.user_id, set()).add(key)

    def acknowledge(self, request: Request) -> None:
        with self.lock:
            self.calls += 1
            if isinstance(request, feedback_pb2.ForgetUserRequest):
                self.erased_users.add(request.user_id)
                for key in self.keys_of_user.pop(request.user_id, set()):
                    del self.votes[key]
            ids = [e.event_id for _, e in _events(request)]
            self.acknowledged.update(ids)
            self.acknowledged_this_round.extend(ids)

    def doubt(self, request: Request) -> None:
        with self.lock:
            self.in_doubt.append(request)
            self.in_doubt_total += 1

    def expected(self) -> dict[str, Numbers]:
        """Aggregates per product of the model's votes (erased users count for nothing)."""
        histograms = {p: [0, 0, 0, 0, 0] for p in PRODUCTS}
        likes = dict.fromkeys(PRODUCTS, 0)
        dislikes = dict.fromkeys(PRODUCTS, 0)
        shares = dict.fromkeys(PRODUCTS, 0)
        comments = dict.fromkeys(PRODUCTS, 0)
        sentiment = dict.fromkeys(PRODUCTS, 0)
        shown = dict.fromkeys(PRODUCTS, 0)
        won = dict.fromkeys(PRODUCTS, 0)
        for (kind, product, _user), (_at, _id, value) in self.votes.items():
            if kind == "poll_vote":
                products, chosen = value  # type: ignore[misc]
                for p in products:
                    shown[p] += 1
                won[chosen] += 1
            elif kind == "rating":
                histograms[product][value - 1] += 1
            elif kind == "share":
                shares[product] += 1
            elif kind == "comment":
                comments[product] += 1
                sentiment[product] += value
            elif value == 1:
                likes[product] += 1
            elif value == -1:
                dislikes[product] += 1
        return {
            p: (
                sum(h),
                sum((i + 1) * n for i, n in enumerate(h)),
                tuple(h),
                likes[p],
                dislikes[p],
                shares[p],
                comments[p],
                sentiment[p],
                shown[p],
                won[p],
            )
            for p, h in histograms.items()
        }


_LIKE = {feedback_pb2.LIKE: 1, feedback_pb2.DISLIKE: -1, feedback_pb2.CLEAR: 0}


def _events(request: Request) -> list[tuple[str, object]]:
    if isinstance(request, feedback_pb2.SubmitRatingRequest):
        return [("rating", request)]
    if isinstance(request, feedback_pb2.SubmitLikeRequest):
        return [("like", request)]
    if isinstance(request, feedback_pb2.SubmitShareRequest):
        return [("share", request)]
    if isinstance(request, feedback_pb2.SubmitCommentRequest):
        return [("comment", request)]
    if isinstance(request, feedback_pb2.SubmitPollVoteRequest):
        return [("poll_vote", request)]
    if isinstance(request, feedback_pb2.SubmitBatchRequest):
        return [
            (str(e.WhichOneof("event")), getattr(e, str(e.WhichOneof("event"))))
            for e in request.events
        ]
    return []


class Client:
    """One shop backend: sends one call at a time, stops at the first failure."""

    def __init__(self, name: str, rng: random.Random, ledger: Ledger) -> None:
        self.name = name
        self.rng = rng
        self.ledger = ledger
        self.users: list[str] = []
        self.count = 0
        self.clock = 1_700_000_000

    def _id(self, what: str) -> str:
        self.count += 1
        return f"{self.name}-{what}-{self.count}"

    def _user(self) -> str:
        if self.users and self.rng.random() < 0.4:
            return self.rng.choice(self.users)  # a re-vote
        user = self._id("u")
        self.users.append(user)
        return user

    def _stamp(self) -> Timestamp:
        # Mostly forward in time; sometimes an older (late) event.
        self.clock += 1
        return Timestamp(seconds=self.clock - self.rng.choice([0, 0, 0, 5]))

    def _rating(self) -> feedback_pb2.SubmitRatingRequest:
        return feedback_pb2.SubmitRatingRequest(
            event_id=self._id("r"),
            product_id=self.rng.choice(PRODUCTS),
            user_id=self._user(),
            stars=self.rng.randint(1, 5),
            occurred_at=self._stamp(),
        )

    def _like(self) -> feedback_pb2.SubmitLikeRequest:
        return feedback_pb2.SubmitLikeRequest(
            event_id=self._id("l"),
            product_id=self.rng.choice(PRODUCTS),
            user_id=self._user(),
            value=self.rng.choice([feedback_pb2.LIKE, feedback_pb2.DISLIKE, feedback_pb2.CLEAR]),
            occurred_at=self._stamp(),
        )

    def _share(self) -> feedback_pb2.SubmitShareRequest:
        return feedback_pb2.SubmitShareRequest(
            event_id=self._id("s"),
            product_id=self.rng.choice(PRODUCTS),
            user_id=self._user(),
            occurred_at=self._stamp(),
            channel=self.rng.choice(["", "web", "instagram"]),
        )

    def _comment(self) -> feedback_pb2.SubmitCommentRequest:
        return feedback_pb2.SubmitCommentRequest(
            event_id=self._id("c"),
            product_id=self.rng.choice(PRODUCTS),
            user_id=self._user(),
            occurred_at=self._stamp(),
            score=self.rng.randint(-4, 4) / 4,
        )

    def _poll_vote(self) -> feedback_pb2.SubmitPollVoteRequest:
        shown = self.rng.sample(PRODUCTS, self.rng.randint(2, 4))
        return feedback_pb2.SubmitPollVoteRequest(
            event_id=self._id("v"),
            poll_id=self.rng.choice(POLLS),
            user_id=self._user(),
            shown=shown,
            chosen=self.rng.choice(shown),
            occurred_at=self._stamp(),
        )

    def next_request(self) -> Request:
        roll = self.rng.random()
        if roll < 0.3:
            return self._rating()
        if roll < 0.45:
            return self._like()
        if roll < 0.55:
            return self._share()
        if roll < 0.58:
            return self._comment()
        if roll < 0.62:
            return self._poll_vote()
        if roll < 0.95:
            items = []
            for _ in range(self.rng.randint(1, 60)):
                pick = self.rng.random()
                if pick < 0.5:
                    items.append(feedback_pb2.FeedbackEvent(rating=self._rating()))
                elif pick < 0.75:
                    items.append(feedback_pb2.FeedbackEvent(like=self._like()))
                elif pick < 0.9:
                    items.append(feedback_pb2.FeedbackEvent(share=self._share()))
                elif pick < 0.95:
                    items.append(feedback_pb2.FeedbackEvent(comment=self._comment()))
                else:
                    items.append(feedback_pb2.FeedbackEvent(poll_vote=self._poll_vote()))
            return feedback_pb2.SubmitBatchRequest(events=items)
        if not self.users:
            return self._rating()
        user = self.users.pop(self.rng.randrange(len(self.users)))  # never used again
        return feedback_pb2.ForgetUserRequest(user_id=user)

    def run(self, target: str, stop: threading.Event) -> None:
        with client_channel(target, token=ADMIN_TOKEN) as channel:  # ForgetUser needs it
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            while not stop.is_set():
                request = self.next_request()
                self.ledger.sent(request)
                try:
                    call(stub, request)
                except grpc.RpcError:
                    self.ledger.doubt(request)  # it may or may not have been committed
                    return
                self.ledger.acknowledge(request)


def call(stub: feedback_pb2_grpc.FeedbackServiceStub, request: Request) -> object:
    if isinstance(request, feedback_pb2.SubmitRatingRequest):
        return stub.SubmitRating(request, timeout=10)
    if isinstance(request, feedback_pb2.SubmitLikeRequest):
        return stub.SubmitLike(request, timeout=10)
    if isinstance(request, feedback_pb2.SubmitShareRequest):
        return stub.SubmitShare(request, timeout=10)
    if isinstance(request, feedback_pb2.SubmitCommentRequest):
        return stub.SubmitComment(request, timeout=10)
    if isinstance(request, feedback_pb2.SubmitPollVoteRequest):
        return stub.SubmitPollVote(request, timeout=10)
    if isinstance(request, feedback_pb2.SubmitBatchRequest):
        return stub.SubmitBatch(request, timeout=10)
    return stub.ForgetUser(request, timeout=10)


def start(database: Settings) -> ServerProcess:
    where = (
        ("--database-url", database.database_url)
        if database.database_url
        else (
            "--database",
            str(database.database),
        )
    )
    return ServerProcess(
        *where,
        "--weights",
        str(DATA_DIR / "weights.toml"),
        env={"REVIEWRANK_ADMIN_TOKEN": ADMIN_TOKEN},
    )


def verify_store(database: Settings, ledger: Ledger) -> None:
    """Straight from the database (the restarted server has recovered it): the acknowledged
    events, erasures, recount, integrity."""
    maybe_erased = {
        r.user_id for r in ledger.in_doubt if isinstance(r, feedback_pb2.ForgetUserRequest)
    }
    if database.storage.path is not None:
        assert [("ok",)] == query(database, "PRAGMA integrity_check")
    stored = [row[0] for row in query(database, "SELECT event_id FROM events")]
    assert len(stored) == len(set(stored))
    erased_hashes = {row[0] for row in query(database, "SELECT event_hash FROM erased_events")}
    users = {row[0] for row in query(database, "SELECT user_id FROM events")}
    users |= {row[0] for row in query(database, "SELECT user_id FROM ratings")}
    users |= {row[0] for row in query(database, "SELECT user_id FROM likes")}
    users |= {row[0] for row in query(database, "SELECT user_id FROM shares")}
    users |= {row[0] for row in query(database, "SELECT user_id FROM comments")}
    users |= {row[0] for row in query(database, "SELECT user_id FROM poll_votes")}
    stored_set = set(stored)
    for event_id in ledger.acknowledged:
        user = ledger.events[event_id][2]
        if user in ledger.erased_users:
            assert event_id not in stored_set
            assert event_hash(event_id) in erased_hashes, event_id
        elif user in maybe_erased:  # the erasure was in flight at the kill
            assert (event_id in stored_set) != (event_hash(event_id) in erased_hashes)
        else:
            assert event_id in stored_set, f"acknowledged event {event_id} lost"
    assert not users & ledger.erased_users, "an erased user is back"
    store = open_store(database.storage)
    try:
        assert [] == store.aggregate_mismatches()
    finally:
        store.close()


def server_numbers(target: str) -> dict[str, Numbers]:
    with grpc.insecure_channel(target) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        response = stub.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=PRODUCTS), timeout=10
        )
    return {
        s.product_id: (
            s.rating_count,
            sum((i + 1) * n for i, n in enumerate(s.stars_histogram)),
            tuple(s.stars_histogram),
            s.likes,
            s.dislikes,
            s.shares,
            s.comments,
            round(s.sentiment_mean * s.comments * 10_000),
            s.polls_shown,
            s.polls_won,
        )
        for s in response.stats
    }


def database_numbers(database: Settings) -> dict[str, Numbers]:
    rows = query(
        database,
        "SELECT product_id, rating_count, star_sum, s1, s2, s3, s4, s5, likes, dislikes, shares,"
        " comments, sentiment_sum, polls_shown, polls_won FROM products",
    )
    empty: Numbers = (0, 0, (0, 0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 0)
    numbers: dict[str, Numbers] = dict.fromkeys(PRODUCTS, empty)
    for r in rows:
        numbers[r[0]] = (r[1], r[2], tuple(r[3:8]), *r[8:15])
    return numbers


def resend(target: str, ledger: Ledger) -> tuple[int, int]:
    """Retries the calls in doubt, then resends this round's acknowledged events (all must
    be DUPLICATE). Returns (retried, resent)."""
    with client_channel(target, token=ADMIN_TOKEN) as channel:  # ForgetUser needs it
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        retried = ledger.in_doubt
        ledger.in_doubt = []
        for request in retried:
            response = call(stub, request)
            outcomes = [getattr(response, "outcome", None)]
            outcomes += [r.outcome for r in getattr(response, "results", [])]
            if feedback_pb2.DUPLICATE in outcomes:
                ledger.in_doubt_committed += 1
            ledger.acknowledge(request)
        ids = ledger.acknowledged_this_round
        ledger.acknowledged_this_round = []
        for start_at in range(0, len(ids), 1000):
            items = []
            for event_id in ids[start_at : start_at + 1000]:
                kind, product, user, value, at = ledger.events[event_id]
                keys = {"event_id": event_id, "product_id": product, "user_id": user}
                stamp = Timestamp(seconds=at)
                if kind == "share":
                    share = feedback_pb2.SubmitShareRequest(**keys, occurred_at=stamp)
                    items.append(feedback_pb2.FeedbackEvent(share=share))
                elif kind == "comment":
                    said = feedback_pb2.SubmitCommentRequest(
                        **keys, score=value / 10_000, occurred_at=stamp
                    )
                    items.append(feedback_pb2.FeedbackEvent(comment=said))
                elif kind == "rating":
                    rated = feedback_pb2.SubmitRatingRequest(**keys, stars=value, occurred_at=stamp)
                    items.append(feedback_pb2.FeedbackEvent(rating=rated))
                else:
                    like_value = {1: feedback_pb2.LIKE, -1: feedback_pb2.DISLIKE}.get(
                        value, feedback_pb2.CLEAR
                    )
                    liked = feedback_pb2.SubmitLikeRequest(
                        **keys, value=like_value, occurred_at=stamp
                    )
                    items.append(feedback_pb2.FeedbackEvent(like=liked))
            response = stub.SubmitBatch(feedback_pb2.SubmitBatchRequest(events=items), timeout=30)
            outcomes = {r.outcome for r in response.results}
            assert {feedback_pb2.DUPLICATE} == outcomes, "an acknowledged event was not kept"
    return len(retried), len(ids)


@pytest.mark.slow
@both_backends
def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    tmp_path: Path, database_url: str
) -> None:
    rng = random.Random(SEED)
    database = Settings(database=tmp_path / "crash.db", database_url=database_url)
    ledger = Ledger()
    clients = [Client(f"c{i}", random.Random(rng.random()), ledger) for i in range(CLIENTS)]
    server = start(database)
    resent = retried = 0
    try:
        for round_ in range(ROUNDS):
            stop = threading.Event()
            threads = [
                threading.Thread(target=c.run, args=(server.target, stop), daemon=True)
                for c in clients
            ]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.05, 0.6))
            server.proc.kill()  # SIGKILL: no shutdown code runs
            server.wait(30)
            stop.set()
            for thread in threads:
                thread.join(30)
            assert not any(t.is_alive() for t in threads)

            server = start(database)
            verify_store(database, ledger)
            r, s = resend(server.target, ledger)
            retried += r
            resent += s
            expected = ledger.expected()
            assert expected == server_numbers(server.target), f"round {round_}, seed {SEED}"
            assert expected == database_numbers(database), f"round {round_}, seed {SEED}"
    finally:
        server.stop()
    print(
        f"\ncrash test: {ROUNDS} SIGKILL rounds survived (seed {SEED}); "
        f"{ledger.calls} calls acknowledged, {len(ledger.acknowledged)} events acknowledged "
        f"and verified present (or erased), {resent} resent as DUPLICATE, "
        f"{retried} in-doubt calls retried ({ledger.in_doubt_committed} of them had been "
        f"committed before the kill), {len(ledger.erased_users)} users erased; "
        "nothing lost"
    )
