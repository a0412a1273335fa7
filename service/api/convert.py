"""Protobuf messages to domain values (validating every field) and back.

Validation collects every problem of a request as (field path, description)
pairs and raises one InvalidArgument; field paths follow the request's shape,
e.g. ``events[3].rating.stars`` or ``candidates[0].product_id``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.timestamp_pb2 import Timestamp
from reviewrank.v1 import feedback_pb2, ranking_pb2

from service.api.wire import batch_codec, batch_results
from service.api.wire import results as wire
from service.api.wire.rank_decode import CandidateBlock, RankInput
from service.app.explain import Explanation
from service.app.ranker import ProductStats, Ranking
from service.app.settings import Settings
from service.domain.errors import InvalidArgument, too_many_items
from service.domain.values import (
    ErasureResult,
    Event,
    EventBatch,
    LikeEvent,
    LikeValue,
    Outcome,
    RatingEvent,
    WriteResult,
    WriteResults,
)

FloatArray = npt.NDArray[np.float64]
# Characters, in a profile name and in a page token (which Top makes far shorter).
MAX_PROFILE_NAME = 64
MAX_PAGE_TOKEN = 1024
_LIKE_VALUES = {
    feedback_pb2.LIKE: LikeValue.LIKE,
    feedback_pb2.DISLIKE: LikeValue.DISLIKE,
    feedback_pb2.CLEAR: LikeValue.CLEAR,
}
_OUTCOMES = {
    Outcome.APPLIED: feedback_pb2.APPLIED,
    Outcome.DUPLICATE: feedback_pb2.DUPLICATE,
    Outcome.SUPERSEDED: feedback_pb2.SUPERSEDED,
}


class _Violations:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.items.append((field, description))

    def identifier(self, value: str, field: str, required: bool = True) -> None:
        limit = self.settings.max_id_length
        if not value:
            if required:
                self.add(field, "is required")
        elif len(value) > limit:
            self.add(field, f"must be at most {limit} characters (got {len(value)})")
        elif not value.isprintable():
            self.add(field, "must not contain control or other non-printable characters")

    def count(self, field: str, count: int, maximum: int, what: str) -> None:
        """A repeated field must hold between 1 and ``maximum`` items."""
        if count == 0:
            self.add(field, f"must contain at least one {what}")
        elif count > maximum:
            self.add(field, too_many_items(maximum, count))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def _occurred_at(check: _Violations, message: object, field: str, now_us: int) -> int:
    """The time an event is kept with: its occurred_at (now when unset), refused when more
    than max_future_seconds ahead of the server's clock, and never later than now.

    Votes are ordered by this time (service/domain/voting.py: the newer wins), so a time ahead
    of the clock would pin a vote against the user's real later votes, which carry the
    server's time, until the clock caught up. Keeping min(occurred_at, now) rather than
    ordering by a second, receive-time column: one time per vote, the same rule for
    every backend and no schema change; a time a little ahead (a client's clock skew,
    up to max_future_seconds) then counts from its arrival, and a decayed weight never
    exceeds 1. Both SubmitRating/SubmitLike and SubmitBatch (service/api/wire/batch_codec.py)
    keep times this way."""
    if not message.HasField("occurred_at"):  # type: ignore[attr-defined]
        return now_us
    stamp: Timestamp = message.occurred_at  # type: ignore[attr-defined]
    if not 0 <= stamp.nanos < 1_000_000_000:
        check.add(field, "nanos must be in [0, 999999999]")
        return now_us
    if stamp.seconds < 0:
        check.add(field, "must not be before 1970-01-01T00:00:00Z")
        return now_us
    micros = int(stamp.seconds) * 1_000_000 + int(stamp.nanos) // 1000
    if micros > now_us + int(check.settings.max_future_seconds * 1_000_000):
        check.add(
            field,
            f"is more than {check.settings.max_future_seconds:g} s ahead of the server's clock",
        )
    return min(micros, now_us)


def _rating(
    check: _Violations, m: feedback_pb2.SubmitRatingRequest, prefix: str, now_us: int
) -> RatingEvent:
    check.identifier(m.event_id, prefix + "event_id")
    check.identifier(m.product_id, prefix + "product_id")
    check.identifier(m.user_id, prefix + "user_id")
    check.identifier(m.category, prefix + "category", required=False)
    if not 1 <= m.stars <= 5:
        check.add(prefix + "stars", f"must be between 1 and 5 (got {m.stars})")
    occurred = _occurred_at(check, m, prefix + "occurred_at", now_us)
    return RatingEvent(m.event_id, m.product_id, m.user_id, m.stars, occurred, m.category)


def _like(
    check: _Violations, m: feedback_pb2.SubmitLikeRequest, prefix: str, now_us: int
) -> LikeEvent:
    check.identifier(m.event_id, prefix + "event_id")
    check.identifier(m.product_id, prefix + "product_id")
    check.identifier(m.user_id, prefix + "user_id")
    value = _LIKE_VALUES.get(m.value)
    if value is None:
        check.add(prefix + "value", f"must be LIKE, DISLIKE or CLEAR (got {m.value})")
        value = LikeValue.CLEAR
    occurred = _occurred_at(check, m, prefix + "occurred_at", now_us)
    return LikeEvent(m.event_id, m.product_id, m.user_id, value, occurred)


def _now_us() -> int:
    return time.time_ns() // 1000


def rating_event(m: feedback_pb2.SubmitRatingRequest, settings: Settings) -> RatingEvent:
    check = _Violations(settings)
    event = _rating(check, m, "", _now_us())
    check.raise_if_any()
    return event


def like_event(m: feedback_pb2.SubmitLikeRequest, settings: Settings) -> LikeEvent:
    check = _Violations(settings)
    event = _like(check, m, "", _now_us())
    check.raise_if_any()
    return event


def batch_events(request: batch_codec.EncodedBatch, settings: Settings) -> EventBatch:
    """The events of a SubmitBatch request, every one valid (InvalidArgument naming each
    field at fault otherwise). Raises DecodeError for a request whose events do not
    parse, before any other complaint."""
    check = _Violations(settings)
    count = len(request.events)
    if count > settings.max_batch_events:
        request.message()  # an undecodable request is named as such first
    check.count("events", count, settings.max_batch_events, "event")
    check.raise_if_any()
    now = _now_us()
    valid = batch_codec.request_columns(request, settings, now)  # every check in bulk
    if valid is not None:
        return valid
    events: list[Event] = []  # one by one, to name each field at fault
    for i, item in enumerate(request.message().events):
        kind = item.WhichOneof("event")
        if kind == "rating":
            events.append(_rating(check, item.rating, f"events[{i}].rating.", now))
        elif kind == "like":
            events.append(_like(check, item.like, f"events[{i}].like.", now))
        else:
            check.add(f"events[{i}]", "must set rating or like")
    check.raise_if_any()
    return EventBatch.of(events)


def submit_response(result: WriteResult) -> feedback_pb2.SubmitResponse:
    return feedback_pb2.SubmitResponse(outcome=_OUTCOMES[result.outcome], seq=result.seq)


def batch_response(results: Sequence[WriteResult]) -> feedback_pb2.SubmitBatchResponse:
    if isinstance(results, WriteResults) and len(results) >= batch_results.BULK_MIN_RESULTS:
        return batch_results.batch_response(results.outcomes, results.seqs)
    return feedback_pb2.SubmitBatchResponse(
        results=[submit_response(r) for r in results], seq=max((r.seq for r in results), default=0)
    )


def forget_user_request(m: feedback_pb2.ForgetUserRequest, settings: Settings) -> str:
    check = _Violations(settings)
    check.identifier(m.user_id, "user_id")
    check.raise_if_any()
    return m.user_id


def forget_user_response(result: ErasureResult) -> feedback_pb2.ForgetUserResponse:
    return feedback_pb2.ForgetUserResponse(
        ratings_removed=result.ratings_removed,
        likes_removed=result.likes_removed,
        seq=result.seq,
        events_erased=result.events_erased,
    )


def _profile_name(check: _Violations, name: str) -> None:
    if len(name) > MAX_PROFILE_NAME or not name.isprintable():
        check.add("profile", f"must be at most {MAX_PROFILE_NAME} printable characters")


def rank_request(request: RankInput, settings: Settings) -> tuple[list[str], FloatArray]:
    """Validates a decoded Rank request (service/api/wire/rank_decode.py); returns its candidates'
    ids and relevances."""
    m = request.message
    ids, relevance = request.product_ids, request.relevance
    check = _Violations(settings)
    check.count("candidates", len(ids), settings.max_candidates, "candidate")
    _profile_name(check, m.profile)
    check.identifier(m.user_id, "user_id", required=False)
    check.raise_if_any()
    # Fast path: every check at C speed; the slow loop below only names the culprits.
    # (A sum of squares is finite when every value is, unless it overflows: then the
    # slow loop decides.)
    joined = "".join(ids)
    block = request.block
    if block is not None and joined.isascii():  # (lengths in bytes are in characters)
        sizes = block.id_size
        shortest, longest = int(sizes.min()), int(sizes.max())
    else:
        lengths = list(map(len, ids))
        shortest, longest = min(lengths), max(lengths)
    with np.errstate(over="ignore"):  # (an overflow is no warning on stderr: it is handled)
        squares = float(np.dot(relevance, relevance))
    if (
        shortest > 0
        and longest <= settings.max_id_length
        and joined.isprintable()
        and len(set(ids)) == len(ids)
        and math.isfinite(squares)
    ):
        return ids, relevance
    seen: dict[str, int] = {}
    for i, (product_id, score) in enumerate(zip(ids, relevance.tolist(), strict=True)):
        check.identifier(product_id, f"candidates[{i}].product_id")
        first = seen.setdefault(product_id, i)
        if first != i:
            check.add(f"candidates[{i}].product_id", f"duplicates candidates[{first}]")
        if not math.isfinite(score):
            check.add(f"candidates[{i}].relevance", "must be a finite number")
        if len(check.items) >= 100:  # enough to show what is wrong
            break
    check.raise_if_any()
    return ids, relevance


def top_request(m: ranking_pb2.TopRequest, settings: Settings) -> int:
    """Validates a Top request; returns the page size asked for (0: the profile's default)."""
    check = _Violations(settings)
    check.identifier(m.category, "category", required=False)
    check.identifier(m.user_id, "user_id", required=False)
    _profile_name(check, m.profile)
    if m.limit > settings.max_top_limit:
        check.add("limit", f"must be at most {settings.max_top_limit} (got {m.limit})")
    if len(m.page_token) > MAX_PAGE_TOKEN:
        check.add("page_token", "is not a token returned by Top")
    check.raise_if_any()
    return m.limit


def stats_request(m: ranking_pb2.GetProductStatsRequest, settings: Settings) -> list[str]:
    check = _Violations(settings)
    check.count("product_ids", len(m.product_ids), settings.max_stats_products, "product id")
    _profile_name(check, m.profile)
    check.raise_if_any()
    for i, product_id in enumerate(m.product_ids):
        check.identifier(product_id, f"product_ids[{i}]")
    check.raise_if_any()
    return list(m.product_ids)


def _explanation(e: Explanation) -> ranking_pb2.Explanation:
    return ranking_pb2.Explanation(
        rating_count=e.rating_count,
        stars_mean=e.stars_mean,
        prior_mean=e.prior_mean,
        prior_strength=e.prior_strength,
        prior_source=e.prior_source,
        bayesian_average=e.bayesian_average,
        likes=e.likes,
        dislikes=e.dislikes,
        wilson_lower_bound=e.wilson_lower_bound,
        confidence=e.confidence,
        relevance=e.relevance,
        relevance_normalized=e.relevance_normalized,
        contributions=[
            ranking_pb2.Contribution(
                component=c.component,
                value=c.value,
                normalized=c.normalized,
                weight=c.weight,
                contribution=c.contribution,
            )
            for c in e.contributions
        ],
        known=e.known,
        half_life_days=e.half_life_days,
        weighted_ratings=e.weighted_ratings,
        weighted_likes=e.weighted_likes,
        weighted_dislikes=e.weighted_dislikes,
    )


def rank_response(
    ranking: Ranking, block: CandidateBlock | None = None
) -> ranking_pb2.RankResponse | bytes:
    """The RankResponse; without explanations, already serialized (service/api/wire/results.py),
    from the request's candidates' own encodings when ``block`` holds them."""
    if ranking.explanations is None:
        return wire.rank_response(
            ranking.product_ids,
            ranking.scores,
            ranking.weights_version,
            ranking.profile,
            ranking.next_page_token,
            block,
            ranking.positions,
        )
    results = [
        ranking_pb2.RankedProduct(product_id=p, score=s, explanation=_explanation(e))
        for p, s, e in zip(
            ranking.product_ids, ranking.scores.tolist(), ranking.explanations, strict=True
        )
    ]
    return ranking_pb2.RankResponse(
        results=results,
        weights_version=ranking.weights_version,
        profile=ranking.profile,
        next_page_token=ranking.next_page_token,
    )


def stats_response(
    stats: Sequence[ProductStats], version: int
) -> ranking_pb2.GetProductStatsResponse:
    return ranking_pb2.GetProductStatsResponse(
        stats=[
            ranking_pb2.ProductStats(
                product_id=s.product_id,
                known=s.known,
                category=s.category,
                rating_count=s.rating_count,
                stars_histogram=list(s.histogram),
                stars_mean=s.stars_mean,
                bayesian_average=s.bayesian_average,
                prior_mean=s.prior_mean,
                prior_strength=s.prior_strength,
                prior_source=s.prior_source,
                likes=s.likes,
                dislikes=s.dislikes,
                wilson_lower_bound=s.wilson_lower_bound,
                confidence=s.confidence,
            )
            for s in stats
        ],
        weights_version=version,
    )
