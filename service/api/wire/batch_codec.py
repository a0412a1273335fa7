"""SubmitBatch in bulk: a request's events as columns.

Reading 1,000 events one RatingEvent at a time, with a validation call per field, costs
more than storing them. Here each field is read for all events at once and checked at C
speed: lengths by ``min``/``max``, printability of all ids joined, stars by
``min``/``max``. A batch that fails any check returns None, and service/api/convert.py
reads it again one event at a time to name every field at fault, so the answer to bad
input does not change.

The fields are read in one of two ways (``request_columns``):

1. From the request's encoding, by the runtime's C parser, through *views* of the wire
   format (service/api/wire/views.py; every field repeated, as service/api/wire/rank_decode.py
   does for Rank's candidates): the events' encodings
   joined are parsed as ``{repeated bytes rating = 1; repeated bytes like = 2}``, and
   the ratings' (likes') encodings joined as one message of columns
   ``{repeated string event_id = 1; …}``. The columns line up with the events when
   every event is encoded as protobuf libraries write it, which numpy checks for all
   at once: each event one ``rating`` or ``like`` field, each holding, in this order,
   ``0x0a <len> <event_id> 0x12 <len> <product_id> 0x1a <len> <user_id> 0x20 <stars or
   like value>`` and, for a rating, possibly ``0x32 <len> <category>``; ids in ASCII of
   under 128 bytes. A batch of nothing but poll votes is read so too (``_poll_votes``).
   Any other batch (an occurred_at, a verified_purchase, a non-ASCII id, …) is read the
   second way;
   tests/api/test_batch_codec.py compares the two.
2. With ``map`` over the protobuf runtime's messages (``batch_columns``): any batch of
   ratings, likes, shares and poll votes; comments are read one by one (their texts
   are scored).

The response is encoded in service/api/wire/batch_results.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, compress
from operator import attrgetter, methodcaller
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from reviewrank.ranking.polls import ballots_ok
from reviewrank.service.api.validation import (
    MAX_BATCH_SHOWN_BYTES,
    MAX_CHANNEL_LENGTH,
    STARS,
    InputLimits,
    event_time,
    id_length_ok,
    ids_ok,
)
from reviewrank.service.api.wire import views as wire_views
from reviewrank.service.domain.errors import InvalidArgument, too_many_items
from reviewrank.service.domain.values import (
    COMMENT,
    LIKE,
    POLL_VOTE,
    RATING,
    SHARE,
    EventBatch,
    LikeValue,
)
from reviewrank.v1 import feedback_pb2

# The protobuf enum numbers of the like values, and their stored values.
LIKE_VALUES = {
    feedback_pb2.LIKE: int(LikeValue.LIKE),
    feedback_pb2.DISLIKE: int(LikeValue.DISLIKE),
    feedback_pb2.CLEAR: int(LikeValue.CLEAR),
}
# From this many events on, a request is read from its encoding first. The views and
# numpy cost some 120 us whatever the size, then about 0.9 us an event against 1.5 for
# reading the messages (measured: equal near 100 events; 1,000 in 1.0 ms against 1.5).
BULK_MIN_EVENTS = 100
# FeedbackEvent: rating = 1, like = 2, poll_vote = 5 (length-delimited)
_RATING, _LIKE, _POLL_VOTE = 0x0A, 0x12, 0x2A
# Tags of the fields of a rating or like, in order: event_id, product_id, user_id
# (strings), stars or value (varint), category (string, ratings only).
_ID_TAGS, _VALUE_TAG, _CATEGORY_TAG = (0x0A, 0x12, 0x1A), 0x20, 0x32
# Of a poll vote: event_id, poll_id, user_id; each product shown; chosen; channel.
_POLL_ID_TAGS, _SHOWN_TAG, _CHOSEN_TAG, _CHANNEL_TAG = (0x0A, 0x12, 0x1A), 0x22, 0x2A, 0x3A
_HAS_TIME = methodcaller("HasField", "occurred_at")
_VERIFIED = attrgetter("verified_purchase")
_KIND = methodcaller("WhichOneof", "event")
# The ids every kind has (a poll vote's product is the one it chose).
_EVENT_AND_USER = attrgetter("event_id"), attrgetter("user_id")
_CHANNELLED = (SHARE, POLL_VOTE)  # the kinds batch_columns reads a channel of
# A poll vote's fields, read at once from a batch of nothing else.
_CHOSEN, _CHANNEL, _POLL_ID, _SHOWN = map(attrgetter, ("chosen", "channel", "poll_id", "shown"))

# The fields the views are made for, by message: a new field must be read by them too.
_EXPECTED = {
    "SubmitBatchRequest": {"events": 1},
    "FeedbackEvent": {"rating": 1, "like": 2, "share": 3, "comment": 4, "poll_vote": 5},
    "SubmitRatingRequest": {
        "event_id": 1, "product_id": 2, "user_id": 3, "stars": 4, "occurred_at": 5,
        "category": 6, "verified_purchase": 7,
    },
    "SubmitLikeRequest": {
        "event_id": 1, "product_id": 2, "user_id": 3, "value": 4, "occurred_at": 5,
        "verified_purchase": 6,
    },
    "SubmitPollVoteRequest": {
        "event_id": 1, "poll_id": 2, "user_id": 3, "shown": 4, "chosen": 5, "occurred_at": 6,
        "channel": 7,
    },
}  # fmt: skip


def _columns_view(message: descriptor_pb2.DescriptorProto) -> None:
    """Every field repeated; a message field (the events, a oneof's members, occurred_at)
    as its encoding, an enum (the like value) as its number."""
    if wire_views.field_numbers(message) != _EXPECTED[message.name.removesuffix("View")]:
        raise RuntimeError(
            f"{message.name} changed: extend the views of service/api/wire/batch_codec.py"
        )
    wire_views.columns(message)
    field = descriptor_pb2.FieldDescriptorProto
    for f in message.field:
        if f.type == field.TYPE_MESSAGE:
            wire_views.as_bytes(f)
        elif f.type == field.TYPE_ENUM:
            wire_views.as_int32(f)


# SubmitBatchRequest with its events as bytes, FeedbackEvent with its oneof as five
# repeated bytes fields, and the rating, like and poll vote requests with every field
# repeated.
_Batch, _Kinds, _Ratings, _Likes, _PollVotes = wire_views.view_classes(
    "batch_views.proto",
    {f"{name}View": (getattr(feedback_pb2, name).DESCRIPTOR, _columns_view) for name in _EXPECTED},
)


class EncodedBatch:
    """A SubmitBatchRequest as it came: its encoding, each event's encoding (read by a
    view, which checks the request's own wire format but not the events'), and the
    message, parsed from the encoding only if asked for. SubmitBatch is registered with
    ``from_bytes`` as its request deserializer: the request is parsed once, and the
    runtime's message is built only for the batches the bulk reading declines."""

    DESCRIPTOR = feedback_pb2.SubmitBatchRequest.DESCRIPTOR  # what undecodable bytes name
    __slots__ = ("_message", "data", "events")

    def __init__(
        self, data: bytes, events: list[bytes], message: feedback_pb2.SubmitBatchRequest | None
    ) -> None:
        self.data = data
        self.events = events
        self._message = message

    @classmethod
    def from_bytes(cls, data: bytes, max_events: int | None = None) -> EncodedBatch:
        """Raises DecodeError, as the runtime would, for bytes that are no message, and
        InvalidArgument for more than ``max_events`` events (before making any of them
        an object: a request of tiny events may hold a million)."""
        events = _Batch.FromString(data).events
        if max_events is not None and len(events) > max_events:
            raise InvalidArgument([("events", too_many_items(max_events, len(events)))])
        return cls(data, list(events), None)

    @classmethod
    def of(cls, message: feedback_pb2.SubmitBatchRequest) -> EncodedBatch:
        data = message.SerializeToString()
        return cls(data, list(_Batch.FromString(data).events), message)

    def message(self) -> feedback_pb2.SubmitBatchRequest:
        """The runtime's message (DecodeError if an event does not parse)."""
        if self._message is None:
            self._message = feedback_pb2.SubmitBatchRequest.FromString(self.data)
        return self._message


def request_columns(request: EncodedBatch, limits: InputLimits, now_us: int) -> EventBatch | None:
    """The request's events as columns, if every one is valid (None otherwise); read
    from the request's encoding when it is the usual one (see the module docstring).
    The request must hold some events. Raises DecodeError if it needed the message and
    an event does not parse."""
    if len(request.events) >= BULK_MIN_EVENTS:
        batch = encoded_columns(request, limits, now_us)
        if batch is not None:
            return batch
    return batch_columns(request.message().events, limits, now_us)


def encoded_columns(request: EncodedBatch, limits: InputLimits, now_us: int) -> EventBatch | None:
    """The events of a SubmitBatchRequest as columns, read from their encodings, if every
    one is encoded as the module docstring says and valid; None otherwise (which says
    nothing of the events' validity: read them from the messages then)."""
    limit = limits.max_id_length
    events = request.events
    try:
        fields = _Kinds.FromString(b"".join(events))
        ratings, likes = list(fields.rating), list(fields.like)
        if fields.share or fields.comment:  # from the messages
            return None
        if fields.poll_vote:  # (of a batch of nothing else)
            polls = list(fields.poll_vote)
            if ratings or likes or not _one_field_each(events, polls, [], _POLL_VOTE):
                return None
            return _poll_votes(polls, limits, now_us)
        if not events or not _one_field_each(events, ratings, likes):
            return None
        rated = _columns(ratings, _Ratings, limit)
        liked = _columns(likes, _Likes, limit)
    except DecodeError:  # e.g. an id that is not UTF-8: the runtime names it
        return None
    if rated is None or liked is None:
        return None
    if min(rated[3], default=STARS[0]) < STARS[0] or max(rated[3], default=STARS[1]) > STARS[1]:
        return None
    if not likes:
        event_ids, product_ids, user_ids, values, categories = rated
        kinds = [RATING] * len(events)
    else:
        if not set(liked[3]) <= LIKE_VALUES.keys():
            return None
        liked[3] = [LIKE_VALUES[value] for value in liked[3]]
        is_rating = [event[0] == _RATING for event in events]
        event_ids, product_ids, user_ids, values, categories = (
            _merge(of_ratings, of_likes, is_rating)
            for of_ratings, of_likes in zip(rated, liked, strict=True)
        )
        kinds = [RATING if rating else LIKE for rating in is_rating]
    times = [now_us] * len(events)
    return EventBatch(event_ids, product_ids, user_ids, values, times, categories, kinds)


def _merge(ratings: list[Any], likes: list[Any], is_rating: list[bool]) -> list[Any]:
    """One column of all events, in order, from the ratings' and the likes'."""
    rating, like = iter(ratings), iter(likes)
    return [next(rating) if r else next(like) for r in is_rating]


def _one_field_each(
    events: list[bytes], ratings: list[bytes], likes: list[bytes], tag: int = _RATING
) -> bool:
    """Each event's encoding is one field, rating or like, holding the next rating's or
    like's encoding (as the views parsed them) and nothing else; with no likes, one
    field of this ``tag`` each (the ratings' by default; poll votes' in ``ratings``)."""
    count = len(events)
    if len(ratings) + len(likes) != count:
        return False
    blob = b"".join(events)
    data = np.frombuffer(blob, dtype=np.uint8)
    size = wire_views.sizes(events)
    at = size.cumsum() - size
    first_tag = data.take(at, mode="clip")
    if likes:
        is_rating = first_tag == _RATING
        if int(np.count_nonzero(is_rating)) != len(ratings):
            return False
        inner = np.empty(count, dtype=np.int64)
        inner[is_rating] = wire_views.sizes(ratings) if ratings else 0
        inner[~is_rating] = wire_views.sizes(likes)
        ok = is_rating | (first_tag == _LIKE)
    else:
        inner = wire_views.sizes(ratings)
        ok = first_tag == tag
    # The length: one varint byte below 128, two below 16,384 (an event holds less).
    short = inner < 128
    first = np.where(short, inner, (inner & 0x7F) | 0x80)
    ok &= data.take(at + 1, mode="clip") == first
    ok &= short | (data.take(at + 2, mode="clip") == inner >> 7)
    ok &= inner < 16384
    ok &= size == 1 + np.where(short, 1, 2) + inner
    return bool(ok.all())


def _one_each(count: int, required: list[list[Any]], optional: list[Any], times: Any) -> bool:
    """Whether a view's columns hold a value of each ``required`` field for each of
    ``count`` events, of the ``optional`` one for every event or for none, and no time."""
    return all(len(column) == count for column in required) and (
        len(optional) in (0, count) and not len(times)
    )


def _printable_ascii(*columns: list[str]) -> bool:
    """Whether every string is printable ASCII (then its length in characters is its
    length in bytes)."""
    texts = list(map("".join, columns))  # (a join per column: no list of every string)
    return all(text.isascii() and text.isprintable() for text in texts)


def _columns(encoded: list[bytes], view: Any, limit: int) -> list[list[Any]] | None:
    """The columns (event ids, product ids, user ids, stars or like values, categories)
    of ratings' or likes' encodings, if each is laid out as the module docstring says
    (no verified_purchase: a batch with one is read from the messages) and its ids are
    valid: 1 to ``limit`` printable characters (as a category, if any:
    an empty one is not encoded)."""
    count = len(encoded)
    if count == 0:
        return [[], [], [], [], []]
    blob = b"".join(encoded)
    parsed = view.FromString(blob)
    rating = view is _Ratings
    ids = [list(parsed.event_id), list(parsed.product_id), list(parsed.user_id)]
    values: list[int] = list(parsed.stars if rating else parsed.value)
    categories: list[str] = list(parsed.category) if rating else []
    with_category = len(categories) == count
    if parsed.verified_purchase:
        return None
    if not (
        _one_each(count, [*ids, values], categories, parsed.occurred_at)
        and _printable_ascii(*ids, categories)
    ):
        return None
    data = np.frombuffer(blob, dtype=np.uint8)
    size = wire_views.sizes(encoded)
    at = size.cumsum() - size
    ok = np.ones(count, dtype=np.bool_)
    for tag, column in zip(_ID_TAGS, ids, strict=True):
        at = _string_field(data, at, tag, column, ok, limit)
    value = np.array(values, dtype=np.int64)
    ok &= (value > 0) & (value < 128)  # a varint of one byte
    ok &= data.take(at, mode="clip") == _VALUE_TAG
    ok &= data.take(at + 1, mode="clip") == value
    at += 2
    if with_category:  # (an empty category is not encoded)
        at = _string_field(data, at, _CATEGORY_TAG, categories, ok, limit)
    ok &= at == size.cumsum()  # and nothing else
    if not ok.all():
        return None
    return [*ids, values, categories if with_category else [""] * count]


def _string_field(
    data: npt.NDArray[np.uint8],
    at: npt.NDArray[np.int64],
    tag: int,
    column: list[str],
    ok: npt.NDArray[np.bool_],
    longest: int,
) -> npt.NDArray[np.int64]:
    """Checks that a field with this tag and a one-byte length, that of the column's
    ASCII string (an identifier: its length by the rule, ``longest`` at most), starts at
    each position (clearing ``ok`` where not); returns where each ends."""
    length = wire_views.sizes(column)
    ok &= id_length_ok(length, longest) & (length < 128)
    ok &= data.take(at, mode="clip") == tag
    ok &= data.take(at + 1, mode="clip") == length
    return at + 2 + length


def _poll_votes(encoded: list[bytes], limits: InputLimits, now_us: int) -> EventBatch | None:
    """The poll votes of these encodings as columns, if each is laid out as protobuf
    libraries write it and valid; None otherwise. The layout: ``0x0a <len> <event_id>
    0x12 <len> <poll_id> 0x1a <len> <user_id>``, then ``0x22 <len> <product>`` for each
    product shown, ``0x2a <len> <chosen>`` and, on every vote or on none, ``0x3a <len>
    <channel>``; ids in ASCII of under 128 bytes, no time. The view parses all products
    shown as one column: the bytes between user_id and chosen say where a vote's products
    end (a batch of 1,000 votes read in 1.5 ms, against 2.5 from the messages)."""
    limit, count = limits.max_id_length, len(encoded)
    blob = b"".join(encoded)
    parsed = _PollVotes.FromString(blob)
    ids = [list(parsed.event_id), list(parsed.poll_id), list(parsed.user_id)]
    every, chosen, channels = list(parsed.shown), list(parsed.chosen), list(parsed.channel)
    channelled = len(channels) == count
    if not (
        every
        and _one_each(count, [*ids, chosen], channels, parsed.occurred_at)
        and _printable_ascii(*ids, chosen, channels, every)
    ):
        return None
    data = np.frombuffer(blob, dtype=np.uint8)
    size = wire_views.sizes(encoded)
    end = size.cumsum()
    ok = np.ones(count, dtype=np.bool_)
    at = end - size
    for tag, column in zip(_POLL_ID_TAGS, ids, strict=True):
        at = _string_field(data, at, tag, column, ok, limit)
    # What follows the products shown: chosen, and the channel if any.
    tail = wire_views.sizes(chosen) + 2
    if channelled:
        tail += wire_views.sizes(channels) + 2
    shown_bytes = end - tail - at
    # Each product shown as a field: where each vote's last one ends, in the column.
    length = wire_views.sizes(every)
    field_end = (length + 2).cumsum()
    vote_end = shown_bytes.cumsum()
    last = np.searchsorted(field_end, vote_end, side="right")
    ok &= (shown_bytes > 0) & (field_end.take(last - 1, mode="clip") == vote_end)
    if not ok.all() or last[-1] != len(every):
        return None
    first = np.concatenate(([0], last[:-1]))
    vote = np.repeat(np.arange(count), last - first)
    # A field's start: its vote's first product's, plus the fields before it in the vote.
    start = at[vote] + (field_end - length - 2) - (vote_end - shown_bytes)[vote]
    shown_ok = id_length_ok(length, limit) & (length < 128)
    shown_ok &= data.take(start, mode="clip") == _SHOWN_TAG
    shown_ok &= data.take(start + 1, mode="clip") == length
    at = _string_field(data, at + shown_bytes, _CHOSEN_TAG, chosen, ok, limit)
    if channelled:
        at = _string_field(data, at, _CHANNEL_TAG, channels, ok, MAX_CHANNEL_LENGTH)
    ok &= at == end  # and nothing else
    if not (ok.all() and shown_ok.all()):
        return None
    shown = list(map(tuple, map(every.__getitem__, map(slice, first.tolist(), last.tolist()))))
    if int(length.sum()) > MAX_BATCH_SHOWN_BYTES or not ballots_ok(shown, chosen):
        return None
    event_ids, poll_ids, user_ids = ids
    return EventBatch(
        event_ids,
        chosen,
        user_ids,
        list(map(len, shown)),
        [now_us] * count,
        [""] * count,
        [POLL_VOTE] * count,
        channels if channelled else [""] * count,
        poll_ids=poll_ids,
        shown=shown,
    )


def batch_columns(
    events: Sequence[feedback_pb2.FeedbackEvent], limits: InputLimits, now_us: int
) -> EventBatch | None:
    """The events as columns, if every one is valid (None otherwise). ``events`` must
    not be empty."""
    kinds: list[str | None] = list(map(_KIND, events))
    if None in kinds or COMMENT in kinds:
        return None  # comments: scored one by one (service/api/convert.py)
    messages: list[Any] = list(map(getattr, events, kinds))  # type: ignore[arg-type]
    limit = limits.max_id_length
    polls = POLL_VOTE in kinds
    event_ids, user_ids = (list(map(get, messages)) for get in _EVENT_AND_USER)
    every_poll = polls and kinds.count(POLL_VOTE) == len(kinds)
    pairs = (
        list(zip(messages, kinds, strict=True))
        if (polls and not every_poll) or SHARE in kinds
        else []
    )
    if every_poll:  # (a batch from a poll's channel: each column read at C speed)
        product_ids = list(map(_CHOSEN, messages))
    elif polls:  # a poll vote's product is the one chosen
        product_ids = [m.chosen if k == POLL_VOTE else m.product_id for m, k in pairs]
    else:
        product_ids = list(map(attrgetter("product_id"), messages))
    if not (ids_ok(event_ids, limit) and ids_ok(product_ids, limit) and ids_ok(user_ids, limit)):
        return None
    is_rating = [kind == RATING for kind in kinds]
    every_rating = all(is_rating)
    channels: list[str] | None = None
    if every_poll:
        channels = list(map(_CHANNEL, messages))
    elif SHARE in kinds or polls:
        channels = [m.channel if k in _CHANNELLED else "" for m, k in pairs]
    if channels is not None and not ids_ok(channels, MAX_CHANNEL_LENGTH, required=False):
        return None
    poll_ids: list[str] | None = None
    shown: list[tuple[str, ...]] = []
    if every_poll:
        poll_ids = list(map(_POLL_ID, messages))
        shown = list(map(tuple, map(_SHOWN, messages)))
    elif polls:
        poll_ids = [m.poll_id if k == POLL_VOTE else "" for m, k in pairs]
        shown = [tuple(m.shown) if k == POLL_VOTE else () for m, k in pairs]
    if poll_ids is not None and not _polls_ok(
        None if every_poll else kinds, poll_ids, shown, product_ids, limit
    ):
        return None
    flags: list[bool] = []  # verified_purchase, read at C speed but in a mixed batch
    if every_rating:
        values: list[int] = list(map(attrgetter("stars"), messages))
        categories: list[str] = list(map(attrgetter("category"), messages))
        flags = list(map(_VERIFIED, messages))
        if min(values) < STARS[0] or max(values) > STARS[1]:
            return None
    elif every_poll:
        values, categories = list(map(len, shown)), [""] * len(shown)
    else:
        values, categories = [], []
        for message, kind in zip(messages, kinds, strict=True):
            if kind == RATING:
                values.append(message.stars)
                categories.append(message.category)
                flags.append(message.verified_purchase)
            elif kind == SHARE:
                values.append(1)
                categories.append("")
                flags.append(False)
            elif kind == POLL_VOTE:
                values.append(len(message.shown))
                categories.append("")
                flags.append(False)
            else:
                values.append(LIKE_VALUES.get(message.value, 2))  # 2: not a like value
                categories.append("")
                flags.append(message.verified_purchase)
        rated = list(compress(values, is_rating))
        if rated and (min(rated) < STARS[0] or max(rated) > STARS[1]):
            return None
        if 2 in compress(values, [kind == LIKE for kind in kinds]):
            return None
    if not ids_ok(categories, limit, required=False):
        return None
    times = _times(messages, limits, now_us)
    if times is None:
        return None
    return EventBatch(
        event_ids,
        product_ids,
        user_ids,
        values,
        times,
        categories,
        kinds,  # type: ignore[arg-type]
        channels,
        poll_ids=poll_ids,
        shown=shown if polls else None,
        verified=list(map(int, flags)) if True in flags else None,  # (None: all 0)
    )


def _polls_ok(
    kinds: list[str | None] | None,
    poll_ids: list[str],
    shown: list[tuple[str, ...]],
    chosen: list[str],
    limit: int,
) -> bool:
    """Whether the poll votes among these events (of these ``kinds``; None: all poll
    votes) are valid (Violations.poll_vote): a poll id, the products shown and chosen as
    ranking.polls.ballots_ok wants them, each an identifier, and all shown within
    MAX_BATCH_SHOWN_BYTES."""
    if kinds is None:
        ids, picks, lists = poll_ids, chosen, shown
    else:
        mine = [k == POLL_VOTE for k in kinds]
        ids, picks = list(compress(poll_ids, mine)), list(compress(chosen, mine))
        lists = list(compress(shown, mine))
    if not ids_ok(ids, limit) or not ballots_ok(lists, picks):
        return False
    every = list(chain.from_iterable(lists))
    return ids_ok(every, limit) and len("".join(every).encode()) <= MAX_BATCH_SHOWN_BYTES


def _times(messages: list[Any], limits: InputLimits, now_us: int) -> list[int] | None:
    """Each event's time in microseconds (service/api/validation.py, event_time); None if
    one is invalid."""
    has = list(map(_HAS_TIME, messages))
    times = [now_us] * len(messages)
    if not any(has):
        return times
    for i in compress(range(len(messages)), has):
        stamp = messages[i].occurred_at
        times[i], problem = event_time(stamp.seconds, stamp.nanos, now_us, limits)
        if problem:
            return None
    return times
