"""Requests that do not even parse: invalid UTF-8 in any string field of any method, and
malformed protobuf bytes, get INVALID_ARGUMENT (never INTERNAL) naming the field."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service.api.wire.batch_codec import BULK_MIN_EVENTS
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, field_violations, rating
from tests.methods import ADMIN_TOKEN, AUTH, Method, all_methods, set_string, string_fields


@pytest.fixture
def client(start_server: Callable[..., Client]) -> Client:
    """A server that knows the admin token, so that admin methods decode their requests."""
    return start_server(admin_token=ADMIN_TOKEN)


MARK = "QQQQ"
INVALID_UTF8 = [
    b"\xff\xfeQQ",  # bytes that never occur in UTF-8
    b"Q\xc3QQ",  # a truncated two-byte sequence
    b"\xed\xa0\x80Q",  # an encoded UTF-16 surrogate
    b"\xc0\xafQQ",  # an overlong encoding of "/"
]

CASES = [(method, field) for method in all_methods() for field in string_fields(method.request)]


def corrupt(method: Method, field_path: str, bad: bytes) -> bytes:
    cls = message_factory.GetMessageClass(method.request)
    message = cls()
    [field] = [f for f in string_fields(method.request) if f.path == field_path]
    set_string(message, field, MARK)
    raw = message.SerializeToString()
    assert raw.count(MARK.encode()) == 1
    return raw.replace(MARK.encode(), bad)


def test_every_method_has_string_fields_to_try() -> None:
    covered = {method.path for method, _ in CASES}

    assert {
        "/reviewrank.v1.FeedbackService/SubmitRating",
        "/reviewrank.v1.FeedbackService/SubmitLike",
        "/reviewrank.v1.FeedbackService/SubmitBatch",
        "/reviewrank.v1.FeedbackService/ForgetUser",
        "/reviewrank.v1.RankingService/Rank",
        "/reviewrank.v1.RankingService/Top",
        "/reviewrank.v1.RankingService/GetProductStats",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    } <= covered
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    ("method", "field_path"),
    [(m, f.path) for m, f in CASES],
    ids=[f"{m.path.rsplit('/', 1)[1]}.{f.path}" for m, f in CASES],
)
def test_invalid_utf8_in_any_string_field_is_invalid_argument_naming_it(
    client: Client, method: Method, field_path: str
) -> None:
    for bad in INVALID_UTF8:
        raw = corrupt(method, field_path, bad)

        with pytest.raises(grpc.RpcError) as info:
            method.call_raw(client.channel, raw, timeout=5, metadata=AUTH)

        error = info.value
        assert grpc.StatusCode.INVALID_ARGUMENT == error.code(), error.details()
        assert {field_path} == set(field_violations(error)), error.details()
        assert "UTF-8" in (error.details() or "")
    assert 0 == client.server.app.catalogue.seq


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\x0a\x05ab", "event_id"),  # length says 5, 2 bytes follow
        (b"\x20\xff\xff\xff", "stars"),  # truncated varint
        (b"\x2a\x03\x08\xff", "occurred_at"),  # a nested message cut short
        (b"\x0f", ""),  # wire type 7 does not exist
        (b"\x00\x01", ""),  # field number 0
        (b"\x80", ""),  # a lone continuation byte
    ],
)
def test_malformed_bytes_are_invalid_argument(client: Client, raw: bytes, field: str) -> None:
    method = channel_method(client, "/reviewrank.v1.FeedbackService/SubmitRating")

    with pytest.raises(grpc.RpcError) as info:
        method(raw, timeout=5)

    error = info.value
    assert grpc.StatusCode.INVALID_ARGUMENT == error.code(), error.details()
    if field:
        assert {field} == set(field_violations(error))
    else:
        assert "reviewrank.v1.SubmitRatingRequest" in (error.details() or "")


def channel_method(client: Client, path: str) -> grpc.UnaryUnaryMultiCallable:
    return client.channel.unary_unary(path)


def test_unknown_fields_and_enum_values_are_not_parse_errors(client: Client) -> None:
    """Forward compatibility: unknown fields are ignored; unknown enum values are validated."""
    request = rating("p", "u", 4).SerializeToString() + b"\xf8\x07\x01"  # field 127 = 1
    method = client.channel.unary_unary(
        "/reviewrank.v1.FeedbackService/SubmitRating",
        response_deserializer=feedback_pb2.SubmitResponse.FromString,
    )

    assert feedback_pb2.APPLIED == method(request, timeout=5).outcome


def test_the_server_stays_healthy_after_undecodable_requests(client: Client) -> None:
    for method, field in CASES:
        with pytest.raises(grpc.RpcError):
            raw = corrupt(method, field.path, INVALID_UTF8[0])
            method.call_raw(client.channel, raw, 5, metadata=AUTH)

    health = health_pb2_grpc.HealthStub(client.channel)
    assert (
        health_pb2.HealthCheckResponse.SERVING
        == health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
    )
    stats = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["p"]), timeout=5
    )
    assert 1 == len(stats.stats)


def test_invalid_utf8_in_one_event_of_a_batch_read_in_bulk_is_invalid_argument_naming_it(
    client: Client,
) -> None:
    # Batches of this size are read from their encoding, through views that take each
    # event as bytes: the bad id is found when the runtime parses the message after all.
    events = [rating(f"p{i}", f"u{i}", 4, at=None) for i in range(BULK_MIN_EVENTS + 50)]
    events[120].user_id = MARK
    raw = batch(*events).SerializeToString().replace(MARK.encode(), INVALID_UTF8[0])
    method = channel_method(client, "/reviewrank.v1.FeedbackService/SubmitBatch")

    with pytest.raises(grpc.RpcError) as info:
        method(raw, timeout=5)

    error = info.value
    assert grpc.StatusCode.INVALID_ARGUMENT == error.code(), error.details()
    assert {"events[120].rating.user_id"} == set(field_violations(error)), error.details()
    assert 0 == client.server.app.catalogue.seq


def test_a_batch_whose_events_field_is_cut_short_is_invalid_argument_naming_it(
    client: Client,
) -> None:
    method = channel_method(client, "/reviewrank.v1.FeedbackService/SubmitBatch")

    with pytest.raises(grpc.RpcError) as info:
        method(b"\x0a\x05ab", timeout=5)  # length says 5, 2 bytes follow

    assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
    assert {"events[0]"} == set(field_violations(info.value))
