"""SubmitBatch in bulk (service/api/wire/batch_codec.py): the same events and the same response
bytes as reading and building the messages one by one with the protobuf runtime."""

from __future__ import annotations

import dataclasses
import time

import grpc
import pytest
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.api import convert
from reviewrank.service.api.validation import InputLimits
from reviewrank.service.api.wire import batch_codec, batch_results
from reviewrank.service.api.wire.batch_codec import EncodedBatch
from reviewrank.service.api.wire.results import varint
from reviewrank.service.app.settings import Settings
from reviewrank.service.domain.errors import InvalidArgument
from reviewrank.service.domain.values import Event, EventBatch, Outcome, RatingEvent, WriteResults
from reviewrank.v1 import feedback_pb2
from tests.conftest import Client

LIMITS = InputLimits.of(Settings())
ids = st.text(
    st.characters(
        max_codepoint=0x2FF, blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")
    ),
    min_size=1,
    max_size=12,
)
stamps = st.one_of(
    st.none(),
    st.builds(
        lambda s, n: Timestamp(seconds=s, nanos=n),
        st.integers(0, 1_700_000_000),
        st.integers(0, 999_999_999),
    ),
)


def _rating(
    event_id: str,
    product: str,
    user: str,
    stars: int,
    at: Timestamp | None,
    category: str,
    verified: bool = False,
) -> feedback_pb2.FeedbackEvent:
    message = feedback_pb2.SubmitRatingRequest(
        event_id=event_id,
        product_id=product,
        user_id=user,
        stars=stars,
        category=category,
        verified_purchase=verified,
    )
    if at is not None:
        message.occurred_at.CopyFrom(at)
    return feedback_pb2.FeedbackEvent(rating=message)


def _like(
    event_id: str, product: str, user: str, value: int, at: Timestamp | None, verified: bool = False
) -> feedback_pb2.FeedbackEvent:
    message = feedback_pb2.SubmitLikeRequest(
        event_id=event_id, product_id=product, user_id=user, value=value, verified_purchase=verified
    )
    if at is not None:
        message.occurred_at.CopyFrom(at)
    return feedback_pb2.FeedbackEvent(like=message)


def _share(
    event_id: str, product: str, user: str, at: Timestamp | None, channel: str
) -> feedback_pb2.FeedbackEvent:
    message = feedback_pb2.SubmitShareRequest(
        event_id=event_id, product_id=product, user_id=user, channel=channel
    )
    if at is not None:
        message.occurred_at.CopyFrom(at)
    return feedback_pb2.FeedbackEvent(share=message)


def _poll_vote(
    event_id: str,
    poll: str,
    user: str,
    shown: list[str],
    pick: int,
    at: Timestamp | None,
    channel: str,
) -> feedback_pb2.FeedbackEvent:
    message = feedback_pb2.SubmitPollVoteRequest(
        event_id=event_id, poll_id=poll, user_id=user, shown=shown,
        chosen=shown[pick % len(shown)] if shown else "", channel=channel,
    )  # fmt: skip
    if at is not None:
        message.occurred_at.CopyFrom(at)
    return feedback_pb2.FeedbackEvent(poll_vote=message)


def _poll_votes(
    id_text: st.SearchStrategy[str],
    times: st.SearchStrategy[Timestamp | None],
    channels: st.SearchStrategy[str],
) -> st.SearchStrategy[feedback_pb2.FeedbackEvent]:
    """Valid poll votes of these ids, times and channels."""
    shown = st.lists(id_text, min_size=2, max_size=10, unique=True)
    return st.builds(
        _poll_vote, id_text, id_text, id_text, shown, st.integers(0, 9), times, channels
    )


poll_votes = _poll_votes(ids, stamps, st.sampled_from(["", "app", "instagram"]))
valid_events = st.lists(
    st.one_of(
        st.builds(
            _rating,
            ids,
            ids,
            ids,
            st.integers(1, 5),
            stamps,
            st.one_of(st.just(""), ids),
            st.booleans(),
        ),
        st.builds(_share, ids, ids, ids, stamps, st.sampled_from(["", "web", "instagram"])),
        st.builds(
            _like,
            ids,
            ids,
            ids,
            st.sampled_from([feedback_pb2.LIKE, feedback_pb2.DISLIKE, feedback_pb2.CLEAR]),
            stamps,
            st.booleans(),
        ),
        poll_votes,
    ),
    min_size=1,
    max_size=40,
)


def one_by_one(events: list[feedback_pb2.FeedbackEvent], now_us: int) -> list[Event]:
    """Each event as the single-event conversions read it (an unset time: now_us)."""
    out: list[Event] = []
    for item in events:
        kind = item.WhichOneof("event")
        message = getattr(item, kind)
        event: Event = (
            convert.rating_event(message, LIMITS)
            if kind == "rating"
            else convert.share_event(message, LIMITS)
            if kind == "share"
            else convert.poll_vote_event(message, LIMITS)
            if kind == "poll_vote"
            else convert.like_event(message, LIMITS)
        )
        if not message.HasField("occurred_at"):
            event = dataclasses.replace(event, occurred_at_us=now_us)
        out.append(event)
    return out


@settings(max_examples=150, deadline=None)
@given(events=valid_events)
def test_valid_batches_read_in_bulk_as_one_by_one(events: list[feedback_pb2.FeedbackEvent]) -> None:
    now = time.time_ns() // 1000
    batch = batch_codec.batch_columns(events, LIMITS, now)

    assert batch is not None
    assert one_by_one(events, now) == list(batch)


poll_votes_alone = st.lists(poll_votes, min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(events=poll_votes_alone)
def test_batches_of_poll_votes_alone_read_in_bulk_as_one_by_one(
    events: list[feedback_pb2.FeedbackEvent],
) -> None:
    now = time.time_ns() // 1000
    batch = batch_codec.batch_columns(events, LIMITS, now)

    assert batch is not None
    assert one_by_one(events, now) == list(batch)


INVALID = [
    (_rating("", "p", "u", 3, None, ""), "events[1].rating.event_id"),
    (_rating("e", "p" * 129, "u", 3, None, ""), "events[1].rating.product_id"),
    (_rating("e", "p", "u\n", 3, None, ""), "events[1].rating.user_id"),
    (_rating("e", "p", "u", 6, None, ""), "events[1].rating.stars"),
    (_rating("e", "p", "u", 0, None, ""), "events[1].rating.stars"),
    (_rating("e", "p", "u", 3, None, "c\t"), "events[1].rating.category"),
    (_rating("e", "p", "u", 3, Timestamp(seconds=-1), ""), "events[1].rating.occurred_at"),
    (_rating("e", "p", "u", 3, Timestamp(seconds=2**40), ""), "events[1].rating.occurred_at"),
    (_like("e", "p", "u", 0, None), "events[1].like.value"),
    (_like("e", "p", "u", 7, None), "events[1].like.value"),
    (feedback_pb2.FeedbackEvent(), "events[1]"),
    (_rating("e", "p", "ü", 9, None, ""), "events[1].rating.stars"),
    (_like("e", "p", "u" * 129, feedback_pb2.LIKE, None), "events[1].like.user_id"),
    (_share("e", "p", "u", None, "c" * 65), "events[1].share.channel"),
    (_share("e", "p", "u", None, "c\n"), "events[1].share.channel"),
    (_share("e", "", "u", None, ""), "events[1].share.product_id"),
    (_poll_vote("e", "", "u", ["a", "b"], 0, None, ""), "events[1].poll_vote.poll_id"),
    (_poll_vote("e", "q", "u", ["a"], 0, None, ""), "events[1].poll_vote.shown"),
    (_poll_vote("e", "q", "u", list("abcdefghijk"), 0, None, ""), "events[1].poll_vote.shown"),
    (_poll_vote("e", "q", "u", ["a", "a"], 0, None, ""), "events[1].poll_vote.shown"),
    (_poll_vote("e", "q", "u", ["a", "b\n"], 0, None, ""), "events[1].poll_vote.shown[1]"),
    (_poll_vote("e", "q", "u", ["a", "b" * 129], 0, None, ""), "events[1].poll_vote.shown[1]"),
    (
        feedback_pb2.FeedbackEvent(
            poll_vote=feedback_pb2.SubmitPollVoteRequest(
                event_id="e", poll_id="q", user_id="u", shown=["a", "b"], chosen="c"
            )
        ),
        "events[1].poll_vote.chosen",
    ),
    (_poll_vote("e", "q", "u", ["a", "b"], 0, None, "c" * 65), "events[1].poll_vote.channel"),
    (_poll_vote("e", "q", "", ["a", "b"], 0, None, ""), "events[1].poll_vote.user_id"),
]


@pytest.mark.parametrize(("event", "field"), INVALID)
def test_an_invalid_event_is_named_by_the_one_by_one_reading(
    event: feedback_pb2.FeedbackEvent, field: str
) -> None:
    good = _rating("ok", "p", "u", 4, None, "")
    request = feedback_pb2.SubmitBatchRequest(events=[good, event, good])

    assert batch_codec.batch_columns(request.events, LIMITS, time.time_ns() // 1000) is None
    with pytest.raises(InvalidArgument) as raised:
        convert.batch_events(EncodedBatch.of(request), LIMITS)
    assert [field] == [f for f, _ in raised.value.violations]


@pytest.mark.parametrize(
    ("event", "field"), [(e, f) for e, f in INVALID if e.WhichOneof("event") == "poll_vote"]
)
def test_an_invalid_poll_vote_among_poll_votes_is_named_by_the_one_by_one_reading(
    event: feedback_pb2.FeedbackEvent, field: str
) -> None:
    good = [_poll_vote(f"ok{i}", f"q{i}", "u", ["a", "b"], i, None, "") for i in range(3)]
    request = feedback_pb2.SubmitBatchRequest(events=[good[0], event, *good[1:]])

    assert batch_codec.batch_columns(request.events, LIMITS, time.time_ns() // 1000) is None
    with pytest.raises(InvalidArgument) as raised:
        convert.batch_events(EncodedBatch.of(request), LIMITS)
    assert [field] == [f for f, _ in raised.value.violations]


@pytest.mark.parametrize(("event", "field"), INVALID)
def test_an_invalid_event_among_many_is_named_by_the_one_by_one_reading(
    event: feedback_pb2.FeedbackEvent, field: str
) -> None:
    good = [
        _rating(f"ok{i}", "p", f"u{i}", 4, None, "") for i in range(batch_codec.BULK_MIN_EVENTS)
    ]
    request = feedback_pb2.SubmitBatchRequest(events=[*good[:70], event, *good[70:]])
    now = time.time_ns() // 1000

    assert batch_codec.encoded_columns(EncodedBatch.of(request), LIMITS, now) is None
    with pytest.raises(InvalidArgument) as raised:
        convert.batch_events(EncodedBatch.of(request), LIMITS)
    assert [field.replace("events[1]", "events[70]")] == [f for f, _ in raised.value.violations]


results = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from([Outcome.APPLIED, Outcome.SUPERSEDED]), st.integers(1, 2**64 - 1)
        ),
        st.tuples(st.just(Outcome.DUPLICATE), st.just(0)),
        st.tuples(st.just(Outcome.APPLIED), st.sampled_from([1, 127, 128, 16383, 16384, 2**63])),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(results=results)
def test_the_response_is_encoded_byte_for_byte_as_the_runtime_does(
    results: list[tuple[Outcome, int]],
) -> None:
    outcomes = [o for o, _ in results]
    seqs = [s for _, s in results]
    runtime = feedback_pb2.SubmitBatchResponse(
        results=[feedback_pb2.SubmitResponse(outcome=o, seq=s) for o, s in results],
        seq=max(seqs, default=0),
    )

    assert runtime.SerializeToString() == batch_results.encode_batch_response(outcomes, seqs)
    assert runtime == convert.batch_response(WriteResults(outcomes, seqs))


def test_a_large_batch_is_read_and_answered_in_bulk_over_a_real_server(client: Client) -> None:
    events = [_rating(f"e{i}", f"p{i % 7}", f"u{i}", 1 + i % 5, None, "") for i in range(1000)]
    events[10] = _like("e10", "p3", "u3", feedback_pb2.DISLIKE, None)
    events[500] = events[20]  # a duplicate within the batch

    response = client.feedback.SubmitBatch(feedback_pb2.SubmitBatchRequest(events=events))

    outcomes = [r.outcome for r in response.results]
    assert feedback_pb2.DUPLICATE == outcomes[500] and 0 == response.results[500].seq
    assert [feedback_pb2.APPLIED] * 999 == outcomes[:500] + outcomes[501:]
    assert list(range(1, 1000)) == [r.seq for r in response.results if r.seq]
    assert 999 == response.seq


def test_an_invalid_large_batch_writes_nothing(client: Client) -> None:
    events = [_rating(f"e{i}", "p", f"u{i}", 3, None, "") for i in range(1000)]
    events[999] = _rating("e999", "p", "u999", 9, None, "")

    with pytest.raises(grpc.RpcError) as raised:
        client.feedback.SubmitBatch(feedback_pb2.SubmitBatchRequest(events=events))

    assert grpc.StatusCode.INVALID_ARGUMENT == raised.value.code()
    assert "events[999].rating.stars" in (raised.value.details() or "")
    assert 1 == client.feedback.SubmitRating(events[0].rating).seq


def test_an_event_batch_is_a_sequence_of_events() -> None:
    events = [
        RatingEvent("a", "p", "u", 4, 10, "Dresses"),
        *convert.batch_events(
            EncodedBatch.of(
                feedback_pb2.SubmitBatchRequest(
                    events=[_like("b", "p", "u", feedback_pb2.CLEAR, None)]
                )
            ),
            LIMITS,
        ),
    ]

    batch = EventBatch.concat([events[:1], EventBatch.of(events[1:])])

    assert events == list(batch) == list(EventBatch.of(batch))
    assert events[1:] == list(batch[1:]) == list(batch.select("like"))
    assert ["rating", "like"] == batch.kinds


# ASCII ids, some long enough for an event's length to take two bytes.
ascii_ids = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=60, max_size=127),
)
usual_events = st.lists(
    st.one_of(
        st.builds(
            _rating, ascii_ids, ascii_ids, ascii_ids, st.integers(1, 5), st.none(), st.just("")
        ),
        st.builds(
            _like,
            ascii_ids,
            ascii_ids,
            ascii_ids,
            st.sampled_from([feedback_pb2.LIKE, feedback_pb2.DISLIKE, feedback_pb2.CLEAR]),
            st.none(),
        ),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(events=usual_events, categories=st.booleans())
def test_usual_batches_are_read_from_their_encoding_as_one_by_one(
    events: list[feedback_pb2.FeedbackEvent], categories: bool
) -> None:
    if categories:  # on every rating, or on none
        for event in events:
            if event.WhichOneof("event") == "rating":
                event.rating.category = "Dresses"
    request = feedback_pb2.SubmitBatchRequest(events=events)
    now = time.time_ns() // 1000

    batch = batch_codec.encoded_columns(EncodedBatch.of(request), LIMITS, now)

    assert batch is not None
    assert one_by_one(events, now) == list(batch)


@settings(max_examples=100, deadline=None)
@given(events=usual_events, flagged=st.sets(st.integers(0, 39), min_size=1))
def test_usual_batches_with_verified_purchases_are_read_from_the_messages_with_their_flags(
    events: list[feedback_pb2.FeedbackEvent], flagged: set[int]
) -> None:
    for i in flagged:  # (every event a rating or a like)
        event = events[i % len(events)]
        getattr(event, event.WhichOneof("event")).verified_purchase = True
    request = feedback_pb2.SubmitBatchRequest(events=events)
    now = time.time_ns() // 1000
    expected = one_by_one(events, now)

    batch = batch_codec.encoded_columns(EncodedBatch.of(request), LIMITS, now)
    read = batch_codec.batch_columns(request.events, LIMITS, now)

    assert read is not None
    assert (expected, None) == (list(read), batch)


def _field(number: int, value: bytes | int) -> bytes:
    """One field in the wire format: a varint, or length-delimited bytes."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def _encoded_batch(events: list[tuple[int, list[list[tuple[int, bytes | int]]]]]) -> bytes:
    """A SubmitBatchRequest of these events: each a FeedbackEvent holding, in the field
    of that number, the messages of these (field number, value) fields."""
    return b"".join(
        _field(
            1, b"".join(_field(kind, b"".join(_field(n, v) for n, v in fields)) for fields in parts)
        )
        for kind, parts in events
    )


# Fields of a rating or a like in any order, repeated or missing, unknown ones among them.
raw_fields = st.lists(
    st.one_of(
        st.tuples(st.integers(1, 3), ascii_ids.map(str.encode)),
        st.tuples(st.just(4), st.integers(0, 7)),
        st.tuples(st.just(6), st.sampled_from([b"", b"Tops", b"c\\t"])),
        st.tuples(st.just(5), st.just(_field(1, 1_700_000_000))),
        st.tuples(st.integers(7, 9), st.integers(0, 3)),
        st.tuples(st.just(1), st.just(b"")),
    ),
    max_size=9,
)
raw_events = st.lists(
    # 1 rating, 2 like, 15 a field FeedbackEvent does not have (shares, 3, are read one by one)
    st.tuples(st.sampled_from([1, 1, 2, 15]), st.lists(raw_fields, min_size=1, max_size=2)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(events=raw_events)
def test_any_encoding_is_read_as_the_runtime_reads_it_or_left_to_it(
    events: list[tuple[int, list[list[tuple[int, bytes | int]]]]],
) -> None:
    """Fields out of order, repeated, missing, unknown, an event with both kinds or none:
    the encoded reading either declines (None) or reads exactly what the runtime does."""
    encoded = _encoded_batch(events)
    now = time.time_ns() // 1000
    runtime = batch_codec.batch_columns(
        feedback_pb2.SubmitBatchRequest.FromString(encoded).events, LIMITS, now
    )

    batch = batch_codec.encoded_columns(EncodedBatch.from_bytes(encoded), LIMITS, now)

    assert batch is None or (runtime is not None and list(runtime) == list(batch))
    # As libraries write it (fields in order, once each, defaults left out), no time, no
    # field unknown, a category on every rating or on none: then it must be read.
    canonical = feedback_pb2.SubmitBatchRequest.FromString(encoded).SerializeToString()
    numbers = [{n for fields in parts for n, _ in fields} for _, parts in events]
    with_category = {
        6 in found for (kind, _), found in zip(events, numbers, strict=True) if kind == 1
    }
    if (
        runtime is not None
        and canonical == encoded
        and all(found <= {1, 2, 3, 4, 6} for found in numbers)
        and len(with_category) <= 1
    ):
        assert batch is not None  # the usual encoding of a valid batch is read


usual_poll_votes = st.lists(_poll_votes(ascii_ids, st.none(), st.just("")), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(events=usual_poll_votes, channel=st.sampled_from(["", "app", "x" * 64]))
def test_usual_batches_of_poll_votes_are_read_from_their_encoding_as_one_by_one(
    events: list[feedback_pb2.FeedbackEvent], channel: str
) -> None:
    for event in events:  # on every vote, or on none
        event.poll_vote.channel = channel
    request = feedback_pb2.SubmitBatchRequest(events=events)
    now = time.time_ns() // 1000

    batch = batch_codec.encoded_columns(EncodedBatch.of(request), LIMITS, now)

    assert batch is not None
    assert one_by_one(events, now) == list(batch)


# Fields of a poll vote in any order, repeated or missing, unknown ones among them.
raw_poll_fields = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([1, 2, 3, 4, 4, 4, 5, 7]), ascii_ids.map(str.encode)),
        st.tuples(st.just(4), st.sampled_from([b"p", b"q", b"r"])),
        st.tuples(st.just(5), st.sampled_from([b"p", b"q"])),
        st.tuples(st.just(6), st.just(_field(1, 1_700_000_000))),
        st.tuples(st.sampled_from([1, 4, 5, 7]), st.sampled_from([b"", b"a\tb", b"\xc3\xa9"])),
        st.tuples(st.integers(8, 9), st.integers(0, 3)),
    ),
    max_size=14,
)
raw_poll_events = st.lists(
    # 5 poll vote, 1 rating (as raw_fields makes them)
    st.one_of(
        st.tuples(st.just(5), st.lists(raw_poll_fields, min_size=1, max_size=2)),
        st.tuples(st.just(1), st.lists(raw_fields, min_size=1, max_size=1)),
    ),
    min_size=1,
    max_size=8,
)


def _canonical_poll_vote(
    event_id: str, poll: str, user: str, shown: list[str], pick: int, channel: str
) -> tuple[int, list[list[tuple[int, bytes | int]]]]:
    fields: list[tuple[int, bytes | int]] = [(1, event_id.encode()), (2, poll.encode())]
    fields += [(3, user.encode()), *((4, p.encode()) for p in shown)]
    fields.append((5, shown[pick % len(shown)].encode()))
    if channel:
        fields.append((7, channel.encode()))
    return 5, [fields]


@settings(max_examples=400, deadline=None)
@given(
    events=st.one_of(
        raw_poll_events,
        st.lists(
            st.builds(
                _canonical_poll_vote,
                ascii_ids,
                ascii_ids,
                ascii_ids,
                st.lists(
                    st.sampled_from(["p", "q", "r", "s"]), min_size=1, max_size=4, unique=True
                ),
                st.integers(0, 9),
                st.sampled_from(["", "app"]),
            ),
            min_size=1,
            max_size=8,
        ),
    )
)
def test_any_poll_vote_encoding_is_read_as_the_runtime_reads_it_or_left_to_it(
    events: list[tuple[int, list[list[tuple[int, bytes | int]]]]],
) -> None:
    """As for ratings and likes: the encoded reading of poll votes declines or reads
    exactly what the runtime does, and reads the usual encoding of a valid batch."""
    encoded = _encoded_batch(events)
    now = time.time_ns() // 1000
    try:
        messages = feedback_pb2.SubmitBatchRequest.FromString(encoded).events
    except DecodeError:  # (an id that is not UTF-8): the encoded reading must decline too
        assert batch_codec.encoded_columns(EncodedBatch.from_bytes(encoded), LIMITS, now) is None
        return
    runtime = batch_codec.batch_columns(messages, LIMITS, now)

    batch = batch_codec.encoded_columns(EncodedBatch.from_bytes(encoded), LIMITS, now)

    assert batch is None or (runtime is not None and list(runtime) == list(batch))
    canonical = feedback_pb2.SubmitBatchRequest.FromString(encoded).SerializeToString()
    numbers = [{n for fields in parts for n, _ in fields} for _, parts in events]
    channelled = {7 in found for found in numbers}
    if (
        runtime is not None
        and canonical == encoded
        and {kind for kind, _ in events} == {5}
        and all(found <= {1, 2, 3, 4, 5, 7} for found in numbers)
        and len(channelled) == 1
        and len(events) >= 1
    ):
        assert batch is not None  # the usual encoding of a valid batch is read
