"""Protobuf messages to domain values (validating every field) and back.

Each value read is checked by the rules of service/api/validation.py, which collects
every problem of a request as (field path, description) pairs and raises one
InvalidArgument; field paths follow the request's shape, e.g.
``events[3].rating.stars`` or ``candidates[0].product_id``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.timestamp_pb2 import Timestamp

from reviewrank.service.api import validation
from reviewrank.service.api.validation import (
    MAX_BATCH_COMMENT_BYTES,
    MAX_BATCH_SCORED_WORDS,
    MAX_BATCH_SHOWN_BYTES,
    MAX_COMMENT_WORDS,
    InputLimits,
    Violations,
    event_time,
    language_of,
)
from reviewrank.service.api.wire import batch_codec, batch_results
from reviewrank.service.api.wire import results as wire
from reviewrank.service.api.wire.rank_decode import RankInput
from reviewrank.service.app import analyzers
from reviewrank.service.app.explain import Explanation
from reviewrank.service.app.rank_query import RankQuery, RankResult
from reviewrank.service.app.ranker import ProductStats, Ranking
from reviewrank.service.app.settings import Settings
from reviewrank.service.app.waits import let_others_run
from reviewrank.service.domain.values import (
    SENTIMENT_SCALE,
    CommentEvent,
    ErasureResult,
    Event,
    EventBatch,
    LikeEvent,
    LikeValue,
    Outcome,
    PollVoteEvent,
    RatingEvent,
    ShareEvent,
    WriteResult,
    WriteResults,
)
from reviewrank.v1 import feedback_pb2, ranking_pb2

FloatArray = npt.NDArray[np.float64]
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


def _occurred_at(check: Violations, message: object, field: str, now_us: int) -> int:
    """The time an event is kept with (service/api/validation.py, event_time)."""
    if not message.HasField("occurred_at"):  # type: ignore[attr-defined]
        return now_us
    stamp: Timestamp = message.occurred_at  # type: ignore[attr-defined]
    kept, problem = event_time(stamp.seconds, stamp.nanos, now_us, check.limits)
    if problem:
        check.add(field, problem)
    return kept


def _ids(check: Violations, m: object, prefix: str) -> None:
    """The event, product and user ids every event carries."""
    for name in ("event_id", "product_id", "user_id"):
        check.identifier(getattr(m, name), prefix + name)


def _rating(
    check: Violations, m: feedback_pb2.SubmitRatingRequest, prefix: str, now_us: int
) -> RatingEvent:
    _ids(check, m, prefix)
    check.identifier(m.category, prefix + "category", required=False)
    check.stars(m.stars, prefix + "stars")
    occurred = _occurred_at(check, m, prefix + "occurred_at", now_us)
    return RatingEvent(
        m.event_id, m.product_id, m.user_id, m.stars, occurred, m.category, m.verified_purchase
    )


def _like(
    check: Violations, m: feedback_pb2.SubmitLikeRequest, prefix: str, now_us: int
) -> LikeEvent:
    _ids(check, m, prefix)
    value = _LIKE_VALUES.get(m.value)
    if value is None:
        check.add(prefix + "value", f"must be LIKE, DISLIKE or CLEAR (got {m.value})")
        value = LikeValue.CLEAR
    occurred = _occurred_at(check, m, prefix + "occurred_at", now_us)
    return LikeEvent(m.event_id, m.product_id, m.user_id, value, occurred, m.verified_purchase)


def _share(
    check: Violations, m: feedback_pb2.SubmitShareRequest, prefix: str, now_us: int
) -> ShareEvent:
    _ids(check, m, prefix)
    check.channel(m.channel, prefix + "channel")
    occurred = _occurred_at(check, m, prefix + "occurred_at", now_us)
    return ShareEvent(m.event_id, m.product_id, m.user_id, occurred, m.channel)


def _poll_vote(
    check: Violations, m: feedback_pb2.SubmitPollVoteRequest, prefix: str, now_us: int
) -> PollVoteEvent:
    for name in ("event_id", "poll_id", "user_id"):
        check.identifier(getattr(m, name), prefix + name)
    shown = tuple(m.shown)
    check.poll_vote(shown, m.chosen, prefix)
    check.channel(m.channel, prefix + "channel")
    occurred = _occurred_at(check, m, prefix + "occurred_at", now_us)
    return PollVoteEvent(m.event_id, m.poll_id, m.user_id, shown, m.chosen, occurred, m.channel)


# What a comment's score was computed by when the sender sent it.
SENDER_SCORE = "sender"


def _comment(
    check: Violations, m: feedback_pb2.SubmitCommentRequest, prefix: str, now_us: int
) -> tuple[CommentEvent, str | None, int]:
    """The comment, its text if it still has to be scored (_scored), and the words that
    costs (CommentAnalyzer.cost; 0 without a valid text): its score is 0 until then, so
    that a request is scored only once every field of it is valid."""
    _ids(check, m, prefix)
    check.channel(m.channel, prefix + "channel")
    given = m.WhichOneof("sentiment")
    text = m.text if given == "text" else None
    score = m.score if given == "score" else None
    before = len(check.items)
    check.comment(text, score, m.language, prefix)
    words = 0
    if text is not None and len(check.items) == before:  # a valid text, of a known language
        words = analyzers.analyzer_for(language_of(m.language)).cost(text)
        if words > MAX_COMMENT_WORDS:
            check.add(
                prefix + "text",
                f"holds {words} words to score (an emoji counts the words of its name);"
                f" at most {MAX_COMMENT_WORDS}",
            )
    occurred = _occurred_at(check, m, prefix + "occurred_at", now_us)
    event = CommentEvent(
        m.event_id,
        m.product_id,
        m.user_id,
        0,
        occurred,
        m.channel,
        m.language.lower(),
        SENDER_SCORE,
    )
    if score is not None and not check.items:
        event = dataclasses.replace(event, score=_scaled(score))
    return event, text, words


def _scaled(score: float) -> int:
    """A score in [−1, 1] as kept: in 1/SENTIMENT_SCALE, rounded."""
    return max(-SENTIMENT_SCALE, min(SENTIMENT_SCALE, round(score * SENTIMENT_SCALE)))


def _scored(event: CommentEvent, text: str) -> CommentEvent:
    """The comment with its text scored by its language's analyzer (the text is dropped
    here: only the score, the language and the analyzer's version go on)."""
    language = language_of(event.language)
    analyzer = analyzers.analyzer_for(language)
    return dataclasses.replace(
        event,
        score=_scaled(analyzer.score(text)),
        language=event.language or language,
        analyzer=analyzer.version,
    )


def _now_us() -> int:
    return time.time_ns() // 1000


def rating_event(m: feedback_pb2.SubmitRatingRequest, limits: InputLimits) -> RatingEvent:
    check = Violations(limits)
    event = _rating(check, m, "", _now_us())
    check.raise_if_any()
    return event


def like_event(m: feedback_pb2.SubmitLikeRequest, limits: InputLimits) -> LikeEvent:
    check = Violations(limits)
    event = _like(check, m, "", _now_us())
    check.raise_if_any()
    return event


def share_event(m: feedback_pb2.SubmitShareRequest, limits: InputLimits) -> ShareEvent:
    check = Violations(limits)
    event = _share(check, m, "", _now_us())
    check.raise_if_any()
    return event


def poll_vote_event(m: feedback_pb2.SubmitPollVoteRequest, limits: InputLimits) -> PollVoteEvent:
    check = Violations(limits)
    event = _poll_vote(check, m, "", _now_us())
    check.raise_if_any()
    return event


def comment_event(m: feedback_pb2.SubmitCommentRequest, limits: InputLimits) -> CommentEvent:
    check = Violations(limits)
    event, text, _ = _comment(check, m, "", _now_us())
    check.raise_if_any()
    return event if text is None else _scored(event, text)


def batch_events(request: batch_codec.EncodedBatch, limits: InputLimits) -> EventBatch:
    """The events of a SubmitBatch request, every one valid (InvalidArgument naming each
    field at fault otherwise). Raises DecodeError for a request whose events do not
    parse, before any other complaint."""
    check = Violations(limits)
    count = len(request.events)
    if count > limits.max_batch_events:
        request.message()  # an undecodable request is named as such first
    check.count("events", count, limits.max_batch_events, "event")
    check.raise_if_any()
    now = _now_us()
    valid = batch_codec.request_columns(request, limits, now)  # every check in bulk
    if valid is not None:
        return valid
    events: list[Event] = []  # one by one, to name each field at fault
    texts: dict[int, str] = {}  # comments to score, by position
    words = 0  # what scoring them costs
    for i, item in enumerate(request.message().events):
        kind = item.WhichOneof("event")
        if kind == "rating":
            events.append(_rating(check, item.rating, f"events[{i}].rating.", now))
        elif kind == "like":
            events.append(_like(check, item.like, f"events[{i}].like.", now))
        elif kind == "share":
            events.append(_share(check, item.share, f"events[{i}].share.", now))
        elif kind == "comment":
            comment, text, cost = _comment(check, item.comment, f"events[{i}].comment.", now)
            events.append(comment)
            words += cost
            if text is not None:
                texts[i] = text
        elif kind == "poll_vote":
            events.append(_poll_vote(check, item.poll_vote, f"events[{i}].poll_vote.", now))
        else:
            check.add(f"events[{i}]", "must set rating, like, share, comment or poll_vote")
    shown = sum(
        len(product.encode()) for event in events if isinstance(event, PollVoteEvent)
        for product in event.shown
    )  # fmt: skip
    if shown > MAX_BATCH_SHOWN_BYTES:
        check.add(
            "events",
            f"the poll votes' products shown must hold at most {MAX_BATCH_SHOWN_BYTES} bytes"
            f" of UTF-8 in all (got {shown}): send them in smaller batches",
        )
    total = sum(len(text.encode()) for text in texts.values())
    if total > MAX_BATCH_COMMENT_BYTES:
        check.add(
            "events",
            f"the comments' texts must hold at most {MAX_BATCH_COMMENT_BYTES} bytes of UTF-8"
            f" in all (got {total}): send them in smaller batches",
        )
    check.raise_if_any()
    if words > MAX_BATCH_SCORED_WORDS:  # (refused alone, once every field is valid)
        check.add(
            "events",
            f"the comments' texts hold {words} words to score (an emoji counts the words of"
            f" its name); at most {MAX_BATCH_SCORED_WORDS} a batch: send them in smaller"
            " batches",
        )
        check.raise_if_any()
    for i, text in texts.items():
        events[i] = _scored(events[i], text)  # type: ignore[arg-type]
        let_others_run()  # a call waiting for a turn goes first
    return EventBatch.of(events)


def submit_response(result: WriteResult) -> feedback_pb2.SubmitResponse:
    return feedback_pb2.SubmitResponse(outcome=_OUTCOMES[result.outcome], seq=result.seq)


def batch_response(results: Sequence[WriteResult]) -> feedback_pb2.SubmitBatchResponse:
    if isinstance(results, WriteResults) and len(results) >= batch_results.BULK_MIN_RESULTS:
        return batch_results.batch_response(results.outcomes, results.seqs)
    return feedback_pb2.SubmitBatchResponse(
        results=[submit_response(r) for r in results], seq=max((r.seq for r in results), default=0)
    )


def forget_user_request(m: feedback_pb2.ForgetUserRequest, limits: InputLimits) -> str:
    check = Violations(limits)
    check.identifier(m.user_id, "user_id")
    check.raise_if_any()
    return m.user_id


def forget_user_response(result: ErasureResult) -> feedback_pb2.ForgetUserResponse:
    return feedback_pb2.ForgetUserResponse(
        ratings_removed=result.ratings_removed,
        likes_removed=result.likes_removed,
        seq=result.seq,
        events_erased=result.events_erased,
        shares_removed=result.shares_removed,
        comments_removed=result.comments_removed,
        poll_votes_removed=result.poll_votes_removed,
    )


def rank_request(request: RankInput, settings: Settings) -> tuple[list[str], FloatArray]:
    """Validates a decoded Rank request (service/api/wire/rank_decode.py); returns its
    candidates' ids and relevances."""
    return rank_candidates(request, InputLimits.of(settings))


def rank_candidates(request: RankInput, limits: InputLimits) -> tuple[list[str], FloatArray]:
    """Validates a decoded Rank request; returns its candidates' ids and relevances."""
    m = request.message
    block = request.block
    validation.rank_candidates(
        request.product_ids,
        request.relevance,
        m.profile,
        m.user_id,
        limits,
        None if block is None else block.id_size,
        request.columnar,
    )
    return request.product_ids, request.relevance


def rank_query(request: RankInput, limits: InputLimits) -> RankQuery:
    """The application's query of a decoded Rank request, validated (InvalidArgument
    naming every field at fault otherwise): plain values, the ids' bytes included when
    the bulk decoding kept them."""
    ids, relevance = rank_candidates(request, limits)
    m = request.message
    return RankQuery(
        ids, relevance, m.limit, m.profile, m.explain, m.user_id, m.min_seq, request.encoded_ids
    )


def top_request(m: ranking_pb2.TopRequest, limits: InputLimits) -> int:
    """Validates a Top request; returns the page size asked for (0: the profile's default)."""
    validation.top_request(m.category, m.user_id, m.profile, m.limit, m.page_token, limits)
    return m.limit


def stats_request(m: ranking_pb2.GetProductStatsRequest, limits: InputLimits) -> list[str]:
    ids = list(m.product_ids)
    validation.stats_product_ids(ids, m.profile, limits)
    return ids


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
        shares_half_life_days=e.shares_half_life_days,
        weighted_shares=e.weighted_shares,
        exposure_days=e.exposure_days,
        share_prior_shape=e.share_prior_shape,
        share_prior_rate_days=e.share_prior_rate_days,
        share_reference_rate=e.share_reference_rate,
        comments=e.comments,
        sentiment_mean=e.sentiment_mean,
        sentiment_prior_mean=e.sentiment_prior_mean,
        sentiment_prior_strength=e.sentiment_prior_strength,
        polls_shown=e.polls_shown,
        polls_won=e.polls_won,
        poll_strength=e.poll_strength,
        sentiment_average=e.sentiment_average,
        weighted_comments=e.weighted_comments,
        damped_ratings=e.damped_ratings,
        damped_likes=e.damped_likes,
        damped_dislikes=e.damped_dislikes,
    )


def rank_response(result: RankResult, request: RankInput) -> ranking_pb2.RankResponse | bytes:
    """Rank's response; without explanations, already serialized
    (service/api/wire/results.py), from the request's candidates' own encodings when the
    bulk decoding kept them; in columns for a request sent in columns."""
    if request.columnar:
        return _in_columns(result, request)
    if result.explanations is None:
        return wire.rank_response(
            wire.InOrder(request.product_ids, result.positions),
            result.scores,
            result.weights_version,
            result.profile,
            "",
            request.block,
            result.positions,
        )
    ids = request.product_ids
    return _explained(
        [ids[i] for i in result.positions.tolist()],
        result.scores,
        result.explanations,
        result.weights_version,
        result.profile,
    )


def _in_columns(result: RankResult, request: RankInput) -> ranking_pb2.RankResponse:
    ids = request.product_ids
    ranked = [ids[i] for i in result.positions.tolist()]
    scores = result.scores.tolist()
    response = ranking_pb2.RankResponse(
        result_ids=ranked,
        result_scores=scores,
        weights_version=result.weights_version,
        profile=result.profile,
    )
    if result.explanations is not None:
        explained = _explained(
            ranked, result.scores, result.explanations, result.weights_version, result.profile
        )
        response.results.extend(explained.results)
    return response


def top_response(ranking: Ranking) -> ranking_pb2.RankResponse | bytes:
    """Top's response; without explanations or display fields, already serialized
    (service/api/wire/results.py)."""
    if ranking.explanations is None and ranking.display is None:
        return wire.rank_response(
            ranking.product_ids,
            ranking.scores,
            ranking.weights_version,
            ranking.profile,
            ranking.next_page_token,
        )
    response = _explained(
        ranking.product_ids,
        ranking.scores,
        ranking.explanations,
        ranking.weights_version,
        ranking.profile,
        ranking.next_page_token,
    )
    for result, fields in zip(response.results, ranking.display or (), strict=False):
        result.display.update(fields)
    return response


def _explained(
    product_ids: Sequence[str],
    scores: FloatArray,
    explanations: list[Explanation] | None,
    weights_version: int,
    profile: str,
    next_page_token: str = "",
) -> ranking_pb2.RankResponse:
    if explanations is None:
        results = [
            ranking_pb2.RankedProduct(product_id=p, score=s)
            for p, s in zip(product_ids, scores.tolist(), strict=True)
        ]
    else:
        results = [
            ranking_pb2.RankedProduct(product_id=p, score=s, explanation=_explanation(e))
            for p, s, e in zip(product_ids, scores.tolist(), explanations, strict=True)
        ]
    return ranking_pb2.RankResponse(
        results=results,
        weights_version=weights_version,
        profile=profile,
        next_page_token=next_page_token,
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
                inactive=s.inactive,
                more_categories=s.more_categories,
                display=s.display,
                shares=s.shares,
                weighted_shares=s.weighted_shares,
                exposure_days=s.exposure_days,
                share_rate=s.share_rate,
                comments=s.comments,
                sentiment_mean=s.sentiment_mean,
                polls_shown=s.polls_shown,
                polls_won=s.polls_won,
                poll_strength=s.poll_strength,
                damped_ratings=s.damped_ratings,
                damped_likes=s.damped_likes,
                damped_dislikes=s.damped_dislikes,
            )
            for s in stats
        ],
        weights_version=version,
    )
