"""A small typed client of reviewrank: deadlines on every call, retries that resend the
same event ids, and reads that reflect this client's own writes (``min_seq``).

    from reviewrank.client import Client

    with Client("localhost:50051") as shop:
        shop.rate("order-1234-rating", product_id="1078", user_id="u-42", stars=5)
        print(shop.rank({"1078": 2.5, "834": 1.0}))   # [("1078", 0.74), ("834", 0.71)]

The generated stubs are in ``reviewrank.v1`` for everything else.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import grpc

from reviewrank.v1 import (
    feedback_pb2,
    feedback_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
)

__all__ = ["RETRIED", "Client"]

# Statuses a call may be retried on: the server was not reached, was busy, the deadline
# passed, or a stopping server dropped the call before it ran (CANCELLED, which this
# client never causes itself). A write retried is the same request, with the same event
# ids: recorded at most once (DUPLICATE if the first attempt was recorded after all).
RETRIED = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    }
)

T = TypeVar("T")


class Client:
    """One channel to a reviewrank server. ``token``: a bearer token sent with every call
    (the API or admin token); ``root_certificates``: PEM bytes to trust for TLS (``tls``
    alone trusts the system's roots). ``timeout``: each attempt's deadline, seconds;
    ``attempts``: how many times a call is tried in all; ``backoff``: the first pause
    between attempts, doubled each time, with jitter."""

    def __init__(
        self,
        target: str,
        token: str = "",
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout: float = 5.0,
        attempts: int = 5,
        backoff: float = 0.1,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if tls or root_certificates is not None:
            channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates))
        else:
            channel = grpc.insecure_channel(target)
        self.channel = channel
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
        self._ranking = ranking_pb2_grpc.RankingServiceStub(channel)
        # The highest sequence number of this client's writes: reads wait for it.
        self.last_seq = 0

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    # -- writes ------------------------------------------------------------------------------

    def rate(
        self,
        event_id: str,
        product_id: str,
        user_id: str,
        stars: int,
        occurred_at: float | None = None,
        category: str = "",
    ) -> str:
        """Records a 1-5 star rating; returns its outcome (APPLIED, DUPLICATE, SUPERSEDED).
        ``occurred_at``: seconds since the epoch (default: the server's clock)."""
        request = feedback_pb2.SubmitRatingRequest(
            event_id=event_id, product_id=product_id, user_id=user_id, stars=stars,
            category=category,
        )  # fmt: skip
        if occurred_at is not None:
            request.occurred_at.FromNanoseconds(int(occurred_at * 1e9))
        response = self._call(self._feedback.SubmitRating, request)
        return self._written(response)

    def like(
        self,
        event_id: str,
        product_id: str,
        user_id: str,
        value: str = "LIKE",
        occurred_at: float | None = None,
    ) -> str:
        """Records a LIKE, DISLIKE or CLEAR; returns its outcome."""
        request = feedback_pb2.SubmitLikeRequest(
            event_id=event_id,
            product_id=product_id,
            user_id=user_id,
            value=feedback_pb2.LikeValue.Value(value),
        )
        if occurred_at is not None:
            request.occurred_at.FromNanoseconds(int(occurred_at * 1e9))
        response = self._call(self._feedback.SubmitLike, request)
        return self._written(response)

    def share(
        self,
        event_id: str,
        product_id: str,
        user_id: str,
        channel: str = "",
        occurred_at: float | None = None,
    ) -> str:
        """Records a share of the product (``channel``: where, e.g. "web", "instagram");
        returns its outcome. A user's shares of a product count once."""
        request = feedback_pb2.SubmitShareRequest(
            event_id=event_id, product_id=product_id, user_id=user_id, channel=channel
        )
        if occurred_at is not None:
            request.occurred_at.FromNanoseconds(int(occurred_at * 1e9))
        response = self._call(self._feedback.SubmitShare, request)
        return self._written(response)

    def comment(
        self,
        event_id: str,
        product_id: str,
        user_id: str,
        text: str | None = None,
        score: float | None = None,
        language: str = "",
        channel: str = "",
        occurred_at: float | None = None,
    ) -> str:
        """Records a comment: its ``text`` (scored for sentiment by the server, which keeps
        only the score) or a ``score`` in [-1, 1] computed by the caller; returns its
        outcome. A user's newer comment on a product replaces the older one."""
        request = feedback_pb2.SubmitCommentRequest(
            event_id=event_id,
            product_id=product_id,
            user_id=user_id,
            channel=channel,
            language=language,
        )
        if text is not None:
            request.text = text
        if score is not None:
            request.score = score
        if occurred_at is not None:
            request.occurred_at.FromNanoseconds(int(occurred_at * 1e9))
        response = self._call(self._feedback.SubmitComment, request)
        return self._written(response)

    def poll_vote(
        self,
        event_id: str,
        poll_id: str,
        user_id: str,
        shown: Sequence[str],
        chosen: str,
        channel: str = "",
        occurred_at: float | None = None,
    ) -> str:
        """Records a vote in a poll: the products it showed (2 to 10) and the one chosen;
        returns its outcome. A user's newer vote in a poll replaces the older one."""
        request = feedback_pb2.SubmitPollVoteRequest(
            event_id=event_id,
            poll_id=poll_id,
            user_id=user_id,
            shown=list(shown),
            chosen=chosen,
            channel=channel,
        )
        if occurred_at is not None:
            request.occurred_at.FromNanoseconds(int(occurred_at * 1e9))
        response = self._call(self._feedback.SubmitPollVote, request)
        return self._written(response)

    def submit_batch(self, events: Iterable[feedback_pb2.FeedbackEvent]) -> list[str]:
        """Records up to 1,000 events in one transaction; their outcomes, in order."""
        request = feedback_pb2.SubmitBatchRequest(events=list(events))
        response = self._call(self._feedback.SubmitBatch, request)
        self.last_seq = max(self.last_seq, response.seq)
        return [feedback_pb2.Outcome.Name(r.outcome) for r in response.results]

    def _written(self, response: feedback_pb2.SubmitResponse) -> str:
        self.last_seq = max(self.last_seq, response.seq)
        return str(feedback_pb2.Outcome.Name(response.outcome))

    # -- reads -------------------------------------------------------------------------------

    def rank(
        self,
        candidates: Mapping[str, float] | Sequence[tuple[str, float]],
        limit: int = 0,
        profile: str = "",
        user_id: str = "",
        own_writes: bool = True,
    ) -> list[tuple[str, float]]:
        """The candidates (id -> the search's relevance) best first, with their scores.
        ``own_writes``: the ranking reflects every write this client made."""
        pairs = list(candidates.items()) if isinstance(candidates, Mapping) else list(candidates)
        request = ranking_pb2.RankRequest(
            candidate_ids=[p for p, _ in pairs],
            candidate_relevances=[r for _, r in pairs],
            limit=limit, profile=profile, user_id=user_id,
            min_seq=self.last_seq if own_writes else 0,
        )  # fmt: skip
        response = self._call(self._ranking.Rank, request)
        return list(zip(response.result_ids, response.result_scores, strict=True))

    def top(
        self, category: str = "", limit: int = 20, profile: str = "", own_writes: bool = True
    ) -> list[tuple[str, float]]:
        """The best products overall or of a category (first page), with their scores."""
        request = ranking_pb2.TopRequest(
            category=category, limit=limit, profile=profile,
            min_seq=self.last_seq if own_writes else 0,
        )  # fmt: skip
        response = self._call(self._ranking.Top, request)
        return [(r.product_id, r.score) for r in response.results]

    def stats(
        self, product_ids: Sequence[str], own_writes: bool = True
    ) -> list[ranking_pb2.ProductStats]:
        """The review statistics of the products, in the order asked."""
        request = ranking_pb2.GetProductStatsRequest(
            product_ids=list(product_ids), min_seq=self.last_seq if own_writes else 0
        )
        return list(self._call(self._ranking.GetProductStats, request).stats)

    # -- calls -------------------------------------------------------------------------------

    def _call(self, method: Callable[..., T], request: Any) -> T:
        """The call, tried up to ``attempts`` times on the statuses in RETRIED."""
        pause = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                return method(request, timeout=self._timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                if error.code() not in RETRIED or attempt == self._attempts:
                    raise
            time.sleep(pause * random.uniform(0.5, 1.5))  # jitter
            pause *= 2
        raise AssertionError("unreachable")
