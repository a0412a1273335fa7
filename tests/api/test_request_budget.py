"""The byte budget of each method (service/api/request_budget.py) is the size of its largest
valid request, computed from the message layout, and the bounds that keep the work on a
request within it proportional to the limits: decoders stop at item limits, explanations
of undecodable bytes stop at item and field limits."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from reviewrank.ranking.polls import MAX_SHOWN
from reviewrank.service.api import parse_errors
from reviewrank.service.api.interceptors import Undecodable
from reviewrank.service.api.request_budget import MethodBudget
from reviewrank.service.api.validation import (
    MAX_BATCH_COMMENT_BYTES,
    MAX_BATCH_SHOWN_BYTES,
    MAX_CHANNEL_LENGTH,
    MAX_COMMENT_TEXT,
    MAX_LANGUAGE_TAG,
    InputLimits,
)
from reviewrank.service.api.wire.batch_codec import EncodedBatch
from reviewrank.service.api.wire.rank_decode import RankRequestDecoder
from reviewrank.service.app.settings import Settings
from reviewrank.service.domain.errors import InvalidArgument
from reviewrank.v1 import admin_pb2, feedback_pb2, ranking_pb2

LIMITS = InputLimits.of(Settings())
WIDE = "\U0001f600"  # a character of four UTF-8 bytes


def text(characters: int) -> str:
    return WIDE * characters


def ident() -> str:
    return text(LIMITS.max_id_length)


def longest_time() -> Timestamp:
    return Timestamp(seconds=-1, nanos=-1)  # varints of 10 bytes each


def largest_rating() -> feedback_pb2.SubmitRatingRequest:
    return feedback_pb2.SubmitRatingRequest(
        event_id=ident(),
        product_id=ident(),
        user_id=ident(),
        stars=-1,
        occurred_at=longest_time(),
        category=ident(),
        verified_purchase=True,
    )


def largest_like() -> feedback_pb2.SubmitLikeRequest:
    return feedback_pb2.SubmitLikeRequest(
        event_id=ident(),
        product_id=ident(),
        user_id=ident(),
        value=-1,
        occurred_at=longest_time(),
        verified_purchase=True,
    )


def largest_share() -> feedback_pb2.SubmitShareRequest:
    return feedback_pb2.SubmitShareRequest(
        event_id=ident(),
        product_id=ident(),
        user_id=ident(),
        occurred_at=longest_time(),
        channel=text(MAX_CHANNEL_LENGTH),
    )


def largest_comment() -> feedback_pb2.SubmitCommentRequest:
    return feedback_pb2.SubmitCommentRequest(
        event_id=ident(),
        product_id=ident(),
        user_id=ident(),
        occurred_at=longest_time(),
        channel=text(MAX_CHANNEL_LENGTH),
        text=text(MAX_COMMENT_TEXT),
        language=text(MAX_LANGUAGE_TAG),
    )


def largest_poll_vote(id_bytes: int | None = None) -> feedback_pb2.SubmitPollVoteRequest:
    """Every field at its longest; the 10 products shown each ``id_bytes`` bytes of ASCII
    (None: the longest ids, as the others)."""
    if id_bytes is None:
        shown = [text(LIMITS.max_id_length - 1) + chr(0x1F600 + i) for i in range(MAX_SHOWN)]
    else:
        shown = [f"{i}".rjust(id_bytes, "x") for i in range(MAX_SHOWN)]
    return feedback_pb2.SubmitPollVoteRequest(
        event_id=ident(),
        poll_id=ident(),
        user_id=ident(),
        shown=shown,
        chosen=ident(),
        occurred_at=longest_time(),
        channel=text(MAX_CHANNEL_LENGTH),
    )


def largest_batch() -> feedback_pb2.SubmitBatchRequest:
    """The largest events (poll votes), but for the comments that carry the batch's text in
    all; the poll votes' products shown share their bytes too."""
    comments = MAX_BATCH_COMMENT_BYTES // (4 * MAX_COMMENT_TEXT)
    votes = LIMITS.max_batch_events - comments
    return feedback_pb2.SubmitBatchRequest(
        events=[
            feedback_pb2.FeedbackEvent(
                poll_vote=largest_poll_vote(MAX_BATCH_SHOWN_BYTES // (votes * MAX_SHOWN))
            )
        ]
        * votes
        + [feedback_pb2.FeedbackEvent(comment=largest_comment())] * comments
    )


def largest_rank() -> ranking_pb2.RankRequest:
    return ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id=ident(), relevance=1.0)]
        * LIMITS.max_candidates,
        limit=2**32 - 1,
        profile=text(64),
        explain=True,
        user_id=ident(),
        min_seq=2**64 - 1,
    )


# Every field at its longest encoding: each string at its most characters, four bytes
# each, each repeated field at its most items, each varint at its longest.
LARGEST: dict[str, Any] = {
    "Rank": largest_rank,
    "Top": lambda: ranking_pb2.TopRequest(
        category=ident(),
        limit=2**32 - 1,
        page_token=text(1024),
        profile=text(64),
        explain=True,
        user_id=ident(),
        min_seq=2**64 - 1,
    ),
    "GetProductStats": lambda: ranking_pb2.GetProductStatsRequest(
        product_ids=[ident()] * LIMITS.max_stats_products, profile=text(64), min_seq=2**64 - 1
    ),
    "SubmitRating": largest_rating,
    "SubmitLike": largest_like,
    "SubmitShare": largest_share,
    "SubmitComment": largest_comment,
    "SubmitPollVote": largest_poll_vote,
    "SubmitBatch": largest_batch,
    "ForgetUser": lambda: feedback_pb2.ForgetUserRequest(user_id=ident()),
}
METHODS = {
    method.name: method.input_type
    for module, name in ((ranking_pb2, "RankingService"), (feedback_pb2, "FeedbackService"))
    for method in module.DESCRIPTOR.services_by_name[name].methods
}


def test_every_budgeted_method_has_its_largest_request_here() -> None:
    assert set(METHODS) == set(LARGEST)


@pytest.mark.parametrize("method", sorted(LARGEST))
def test_the_budget_follows_from_the_largest_encoding_of_the_method(method: str) -> None:
    largest = LARGEST[method]().SerializeToString()
    budget = MethodBudget.of(METHODS[method], LIMITS)

    if method == "SubmitBatch":  # its bound: each event as the largest, texts and ids apart
        assert len(largest) <= budget.largest < len(largest) * 1.02  # (their prefixes longest)
    else:
        assert len(largest) == budget.largest
    assert budget.largest < budget.max_bytes <= budget.largest * 17 // 16 + 4096


def test_the_budget_names_the_limits_it_follows_from() -> None:
    budget = MethodBudget.of(ranking_pb2.GetProductStatsRequest.DESCRIPTOR, LIMITS)

    assert "max_id_length=128, max_stats_products=1000" == budget.limits_in_force


def test_a_string_field_with_no_known_limit_stops_the_budget_from_being_made() -> None:
    with pytest.raises(ValueError, match=r"ReloadWeightsRequest\.toml"):
        MethodBudget.of(admin_pb2.ReloadWeightsRequest.DESCRIPTOR, LIMITS)


def test_the_guard_passes_a_request_of_exactly_the_budget_and_refuses_one_byte_more() -> None:
    budget = MethodBudget.of(feedback_pb2.ForgetUserRequest.DESCRIPTOR, LIMITS)
    sized = budget.guard(None)
    at_most = b"\x0a\x00" * (budget.max_bytes // 2)  # (an even budget: 4,643 bytes is odd)
    at_most += b"\x00" * (budget.max_bytes - len(at_most))

    assert at_most is sized(at_most)
    over = sized(at_most + b"\x00")
    assert isinstance(over, Undecodable)
    assert f"({budget.max_bytes + 1} bytes)" in str(over.error)
    assert "refused unread" in str(over.error)


def test_the_guard_returns_what_the_decoder_refuses_as_undecodable() -> None:
    budget = MethodBudget.of(feedback_pb2.SubmitBatchRequest.DESCRIPTOR, LIMITS)
    guarded = budget.guard(lambda data: EncodedBatch.from_bytes(data, max_events=2))

    too_many = guarded(b"\x0a\x00" * 3)
    cut_short = guarded(b"\x0a\x05")

    assert isinstance(too_many, Undecodable) and isinstance(cut_short, Undecodable)
    assert (("events", "must contain at most 2 items (got 3)"),) == too_many.error.violations
    assert "events[0]" == cut_short.error.violations[0][0]
    assert 1 == len(guarded(b"\x0a\x00").events)


def test_rank_decoding_stops_at_the_candidate_limit() -> None:
    data = b"\x0a\x03\x0a\x01x" * 11

    with pytest.raises(InvalidArgument) as info:
        RankRequestDecoder(max_candidates=10).decode(data)

    assert (("candidates", "must contain at most 10 items (got 11)"),) == info.value.violations
    assert 10 == len(RankRequestDecoder(max_candidates=10).decode(data[:-5]).product_ids)


def test_batch_decoding_stops_at_the_event_limit() -> None:
    with pytest.raises(InvalidArgument) as info:
        EncodedBatch.from_bytes(b"\x0a\x00" * 4, max_events=3)

    assert (("events", "must contain at most 3 items (got 4)"),) == info.value.violations


STATS = ranking_pb2.GetProductStatsRequest.DESCRIPTOR


def test_the_explanation_stops_at_an_item_limit() -> None:
    data = b"\x0a\x01x" * 10 + b"\x0a\x05"  # cut short after 10 ids

    problem = parse_errors.diagnose(data, STATS, {"product_ids": 3})

    assert parse_errors.Problem("product_ids", "must contain at most 3 items (more were sent)") == (
        problem
    )
    unbounded = parse_errors.diagnose(data, STATS)
    assert "product_ids[10]" == unbounded.field


def test_the_explanation_reads_no_more_than_its_fields() -> None:
    data = b"\x78\x00" * 100 + b"\x0a\x05"  # unknown fields, then an id cut short

    problem = parse_errors.diagnose(data, STATS, max_fields=50)

    assert "" == problem.field
    assert "read no further than 50 fields" in problem.description
    assert "product_ids[0]" == parse_errors.diagnose(data, STATS, max_fields=101).field
