"""Request builders and status helpers shared by the tests."""

from __future__ import annotations

import itertools

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from reviewrank.v1 import feedback_pb2, ranking_pb2

_ids = itertools.count(1)


def next_id(prefix: str = "e") -> str:
    return f"{prefix}-{next(_ids)}"


def ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def rating(
    product: str,
    user: str,
    stars: int,
    at: int | None = 1_700_000_000,
    event_id: str | None = None,
    category: str = "",
) -> feedback_pb2.SubmitRatingRequest:
    request = feedback_pb2.SubmitRatingRequest(
        event_id=event_id or next_id(),
        product_id=product,
        user_id=user,
        stars=stars,
        category=category,
    )
    if at is not None:
        request.occurred_at.CopyFrom(ts(at))
    return request


def like(
    product: str,
    user: str,
    value: int = feedback_pb2.LIKE,
    at: int | None = 1_700_000_000,
    event_id: str | None = None,
) -> feedback_pb2.SubmitLikeRequest:
    request = feedback_pb2.SubmitLikeRequest(
        event_id=event_id or next_id(), product_id=product, user_id=user, value=value
    )
    if at is not None:
        request.occurred_at.CopyFrom(ts(at))
    return request


def batch(*events: object) -> feedback_pb2.SubmitBatchRequest:
    items = []
    for event in events:
        if isinstance(event, feedback_pb2.SubmitRatingRequest):
            items.append(feedback_pb2.FeedbackEvent(rating=event))
        else:
            assert isinstance(event, feedback_pb2.SubmitLikeRequest)
            items.append(feedback_pb2.FeedbackEvent(like=event))
    return feedback_pb2.SubmitBatchRequest(events=items)


def candidates(*items: str | tuple[str, float]) -> list[ranking_pb2.Candidate]:
    out = []
    for item in items:
        product, relevance = (item, 1.0) if isinstance(item, str) else item
        out.append(ranking_pb2.Candidate(product_id=product, relevance=relevance))
    return out


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """The google.rpc.BadRequest field violations of a failed call, field -> description."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no rich status attached"
    out = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out
