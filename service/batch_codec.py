"""SubmitBatch in bulk: a request's events as columns, and the response's bytes.

Reading 1,000 events one RatingEvent at a time, with a validation call per field, costs
more than storing them. Here each field is read for all events at once (``map`` over
the protobuf runtime's messages) and checked at C speed: lengths by ``min``/``max``,
printability of all ids joined, stars by ``min``/``max``. A batch that fails any check
returns None, and service/convert.py reads it again one event at a time to name every
field at fault, so the answer to bad input does not change.

The response, one SubmitResponse per event, is encoded with numpy (the standard wire
format, checked byte for byte against the protobuf runtime in tests/test_batch_codec.py)
and parsed back by the runtime's C parser: cheaper than building 1,000 messages.

    SubmitBatchResponse = 1: repeated SubmitResponse results, 2: uint64 seq
    SubmitResponse      = 1: Outcome outcome (enum), 2: uint64 seq
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import attrgetter, methodcaller
from typing import Any

import numpy as np
from reviewrank.v1 import feedback_pb2

from service.domain import EventBatch, LikeValue, Outcome
from service.settings import Settings
from service.wire import varint

# The protobuf enum numbers of the like values, and their stored values.
LIKE_VALUES = {
    feedback_pb2.LIKE: int(LikeValue.LIKE),
    feedback_pb2.DISLIKE: int(LikeValue.DISLIKE),
    feedback_pb2.CLEAR: int(LikeValue.CLEAR),
}
# Below this many results, the runtime builds the response faster than numpy's fixed cost.
BULK_MIN_RESULTS = 32
_HAS_TIME = methodcaller("HasField", "occurred_at")
_KIND = methodcaller("WhichOneof", "event")
_IDS = ("event_id", "product_id", "user_id")

if any(int(o) != feedback_pb2.Outcome.Value(o.name) for o in Outcome):
    raise RuntimeError("service.domain.Outcome and the protobuf Outcome disagree")


def _ids_ok(values: list[str], limit: int, required: bool = True) -> bool:
    """As convert's identifier check, for every value at once."""
    lengths = list(map(len, values))
    return (
        (min(lengths) > 0 or not required)
        and max(lengths) <= limit
        and "".join(values).isprintable()
    )


def batch_columns(
    events: Sequence[feedback_pb2.FeedbackEvent], settings: Settings, now_us: int
) -> EventBatch | None:
    """The events as columns, if every one is valid (None otherwise). ``events`` must
    not be empty."""
    kinds: list[str | None] = list(map(_KIND, events))
    if None in kinds:
        return None
    messages: list[Any] = list(map(getattr, events, kinds))  # type: ignore[arg-type]
    limit = settings.max_id_length
    event_ids, product_ids, user_ids = (list(map(attrgetter(name), messages)) for name in _IDS)
    if not (_ids_ok(event_ids, limit) and _ids_ok(product_ids, limit) and _ids_ok(user_ids, limit)):
        return None
    is_rating = [kind == "rating" for kind in kinds]
    every_rating = all(is_rating)
    if every_rating:
        values: list[int] = list(map(attrgetter("stars"), messages))
        categories: list[str] = list(map(attrgetter("category"), messages))
        if min(values) < 1 or max(values) > 5:
            return None
    else:
        values, categories = [], []
        for message, rating in zip(messages, is_rating, strict=True):
            if rating:
                values.append(message.stars)
                categories.append(message.category)
            else:
                values.append(LIKE_VALUES.get(message.value, 2))  # 2: not a like value
                categories.append("")
        rated = list(compress(values, is_rating))
        if rated and (min(rated) < 1 or max(rated) > 5):
            return None
        if 2 in compress(values, [not r for r in is_rating]):
            return None
    if not _ids_ok(categories, limit, required=False):
        return None
    times = _times(messages, settings, now_us)
    if times is None:
        return None
    return EventBatch(event_ids, product_ids, user_ids, values, times, categories, is_rating)


def _times(messages: list[Any], settings: Settings, now_us: int) -> list[int] | None:
    """Each event's occurred_at in microseconds (now when unset); None if one is invalid."""
    has = list(map(_HAS_TIME, messages))
    times = [now_us] * len(messages)
    if not any(has):
        return times
    latest = now_us + int(settings.max_future_seconds * 1_000_000)
    for i in compress(range(len(messages)), has):
        stamp = messages[i].occurred_at
        seconds, nanos = stamp.seconds, stamp.nanos
        if seconds < 0 or not 0 <= nanos < 1_000_000_000:
            return None
        micros = int(seconds) * 1_000_000 + int(nanos) // 1000
        if micros > latest:
            return None
        times[i] = micros
    return times


def encode_batch_response(outcomes: Sequence[int], seqs: Sequence[int]) -> bytes:
    """The serialized SubmitBatchResponse of these results (seq 0: none, as for DUPLICATE),
    with ``seq`` the largest sequence number."""
    n = len(seqs)
    if n == 0:
        return b""
    seq = np.fromiter(seqs, dtype=np.uint64, count=n)
    top = int(seq.max())
    width = len(varint(top))  # the longest varint of a seq
    # Each seq's varint: 7 bits a byte, the high bit set on every byte but its last.
    shifted = seq[:, None] >> np.arange(0, 7 * width, 7, dtype=np.uint64)
    count = (shifted != 0).sum(axis=1)  # bytes of the varint; 0 for a zero seq (left out)
    more = np.arange(width) < (count - 1)[:, None]
    rows = np.empty((n, 5 + width), dtype=np.uint8)
    rows[:, 0] = 0x0A  # results: field 1, length-delimited
    rows[:, 1] = 2 + (count > 0) + count  # the SubmitResponse's length
    rows[:, 2] = 0x08  # outcome: field 1, varint
    first = outcomes[0]
    if outcomes.count(first) == n:  # the usual case: one outcome for all
        rows[:, 3] = int(first)
    else:
        rows[:, 3] = np.fromiter(map(int, outcomes), dtype=np.uint8, count=n)
    rows[:, 4] = 0x10  # seq: field 2, varint
    rows[:, 5:] = (shifted & np.uint64(0x7F)) | (more * np.uint64(0x80))
    # Each row's bytes in use: the outcome's 4, then the seq's tag and varint if any.
    keep = np.arange(5 + width) < np.where(count > 0, 5 + count, 4)[:, None]
    tail = b"\x10" + varint(top) if top else b""
    return bytes(rows[keep].tobytes()) + tail


def batch_response(
    outcomes: Sequence[int], seqs: Sequence[int]
) -> feedback_pb2.SubmitBatchResponse:
    """The SubmitBatchResponse, built from its encoding."""
    response: feedback_pb2.SubmitBatchResponse = feedback_pb2.SubmitBatchResponse.FromString(
        encode_batch_response(outcomes, seqs)
    )
    return response
