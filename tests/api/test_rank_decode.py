"""Rank's bulk candidate decoding (service/api/wire/rank_decode.py) reads exactly what the protobuf
runtime reads, whatever the encoding, and refuses what it refuses."""

from __future__ import annotations

import struct
from collections.abc import Callable

import grpc
import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.api.wire.rank_decode import (
    BULK_MIN_CANDIDATES,
    RankInput,
    RankRequestDecoder,
    from_message,
    split_candidates,
)
from reviewrank.service.api.wire.results import varint
from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import field_violations

decode = RankRequestDecoder().decode


def _runtime(data: bytes) -> RankInput:
    return from_message(ranking_pb2.RankRequest.FromString(data))


def _same(expected: RankInput, decoded: RankInput) -> None:
    assert expected.product_ids == decoded.product_ids
    # Bit for bit: NaNs and the sign of zero included.
    assert expected.relevance.tobytes() == decoded.relevance.tobytes()
    for name in ("limit", "profile", "explain", "user_id", "min_seq"):
        assert getattr(expected.message, name) == getattr(decoded.message, name)


candidates = st.lists(
    st.tuples(
        st.text(max_size=140),
        st.one_of(st.just(0.0), st.floats(width=64), st.floats(-1e3, 1e3)),
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(items=candidates, limit=st.integers(0, 2**32 - 1), profile=st.text(max_size=10))
def test_decoding_a_rank_request_equals_the_protobuf_runtime(
    items: list[tuple[str, float]], limit: int, profile: str
) -> None:
    request = ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id=p, relevance=r) for p, r in items],
        limit=limit,
        profile=profile,
        explain=bool(limit % 2),
        user_id=profile[::-1],
        min_seq=limit // 3,
    )
    data = request.SerializeToString()

    _same(_runtime(data), decode(data))


def _id_field(product_id: bytes) -> bytes:
    return b"\x0a" + varint(len(product_id)) + product_id


def _relevance_field(value: float) -> bytes:
    return b"\x11" + struct.pack("<d", value)


# Pieces a candidate's encoding can be made of, in any order and number: what other
# encoders, or hostile clients, may send.
pieces = st.one_of(
    st.text(max_size=5).map(lambda s: _id_field(s.encode())),
    st.floats(allow_nan=False).map(_relevance_field),
    st.just(b"\x18\x07"),  # an unknown varint field (3)
    st.just(b"\x25\x01\x02\x03\x04"),  # an unknown fixed32 field (4)
    st.just(_id_field(b"x" * 130)),  # an id whose length takes two bytes
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(pieces, max_size=4), min_size=1, max_size=12))
def test_candidates_encoded_in_any_way_are_read_as_the_runtime_reads_them(
    encodings: list[list[bytes]],
) -> None:
    encoded = [b"".join(parts) for parts in encodings]
    data = b"".join(b"\x0a" + varint(len(e)) + e for e in encoded)
    expected = _runtime(data)

    split = split_candidates(encoded)

    if split is not None:  # the bulk path took it: it must agree
        assert expected.product_ids == split[0]
        assert expected.relevance.tobytes() == split[1].tobytes()
    many = data * BULK_MIN_CANDIDATES  # enough candidates for the decoder's bulk path
    _same(_runtime(many), decode(many))


def test_the_usual_encoding_takes_the_bulk_path() -> None:
    encoded = [_id_field(b"p%d" % i) + _relevance_field(i / 3) for i in range(200)]

    split = split_candidates(encoded)

    assert split is not None
    assert [f"p{i}" for i in range(200)] == split[0]
    assert [i / 3 for i in range(200)] == split[1].tolist()


def test_candidates_without_relevance_take_the_bulk_path_with_zero_relevance() -> None:
    split = split_candidates([_id_field(b"a"), _id_field(b"bb")])

    assert split is not None
    assert (["a", "bb"], [0.0, 0.0]) == (split[0], split[1].tolist())


def test_candidates_with_some_relevances_left_out_take_the_bulk_path() -> None:
    # proto3 leaves a relevance of 0.0 out: every third candidate here.
    encoded = [
        _id_field(b"p%d" % i) + (_relevance_field(i / 3) if i % 3 else b"") for i in range(200)
    ]
    data = b"".join(b"\x0a" + varint(len(e)) + e for e in encoded)

    split = split_candidates(encoded)

    assert split is not None
    expected = _runtime(data)
    assert expected.product_ids == split[0]
    assert expected.relevance.tobytes() == split[1].tobytes()
    assert [(i / 3 if i % 3 else 0.0) for i in range(200)] == split[1].tolist()


def test_a_relevance_left_out_beside_nine_other_bytes_is_not_taken_for_one() -> None:
    # Candidate 1 is an id then 9 bytes of unknown fields, the size of a relevance field.
    encoded = [
        _id_field(b"a") + _relevance_field(1.0),
        _id_field(b"b") + b"\x18\x07" + b"\x25\x01\x02\x03\x04" + b"\x18\x01",
        _id_field(b"c"),
    ]
    assert 9 == len(encoded[1]) - len(_id_field(b"b"))

    assert split_candidates(encoded) is None


def test_fields_split_across_candidates_are_not_lined_up_by_position() -> None:
    # Candidate 0 holds two relevances and no id, candidate 1 two ids: the counts match,
    # but the runtime reads ("", 2.0) and ("b", 0.0).
    encoded = [
        _relevance_field(1.0) + _relevance_field(2.0),
        _id_field(b"a" * 7) + _id_field(b"b"),
    ]

    assert split_candidates(encoded) is None


def test_a_candidate_not_starting_with_its_id_is_not_lined_up_by_position() -> None:
    # Sizes and length bytes fit the usual encoding, yet candidate 0 has no id and
    # candidate 1 two: the runtime reads ("", r) and ("b", s).
    r = struct.unpack("<d", b"\x00" + b"\x01" * 7)[0]  # its first byte stands as a length
    encoded = [
        _relevance_field(r) + b"\x18\x07",
        b"\x18\x06" + _id_field(b"a") + _id_field(b"b") + _relevance_field(2.0),
    ]
    data = b"".join(b"\x0a" + varint(len(e)) + e for e in encoded)
    assert ["", "b"] == _runtime(data).product_ids

    assert split_candidates(encoded) is None


def test_an_id_that_is_not_utf8_is_refused_as_by_the_runtime() -> None:
    encoded = [_id_field(b"p%d" % i) + _relevance_field(1.0) for i in range(200)]
    encoded[150] = _id_field(b"\xff\xfe") + _relevance_field(1.0)
    data = b"".join(b"\x0a" + varint(len(e)) + e for e in encoded)

    with pytest.raises(DecodeError):
        decode(data)


def test_a_bulk_request_with_a_bad_id_gets_invalid_argument_naming_it(
    start_server: Callable[..., Client],
) -> None:
    client = start_server()
    encoded = [_id_field(b"p%d" % i) + _relevance_field(1.0) for i in range(200)]
    encoded[150] = _id_field(b"Q\xc3QQ") + _relevance_field(1.0)
    data = b"".join(b"\x0a" + varint(len(e)) + e for e in encoded)
    rank = client.channel.unary_unary("/reviewrank.v1.RankingService/Rank")

    with pytest.raises(grpc.RpcError) as info:
        rank(data, timeout=5)

    assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
    assert {"candidates[150].product_id"} == set(field_violations(info.value))


@pytest.mark.parametrize(
    ("relevance", "zero_left_out"),
    [
        (np.linspace(0, 1, 300).tolist(), False),  # 0.0 written out, as some encoders do
        ([0.0 if i % 4 == 0 else i / 7 for i in range(300)], True),  # as proto3 does
    ],
    ids=["every relevance written", "zeros left out"],
)
def test_a_bulk_decoded_request_is_ranked_as_one_the_runtime_decodes(
    start_server: Callable[..., Client], relevance: list[float], zero_left_out: bool
) -> None:
    client = start_server()
    ids = [b"p%d" % i for i in range(300)]
    usual = [
        _id_field(p) + (b"" if zero_left_out and r == 0.0 else _relevance_field(r))
        for p, r in zip(ids, relevance, strict=True)
    ]
    # The same candidates with their fields the other way round: not the bulk path's.
    reversed_ = [_relevance_field(r) + _id_field(p) for p, r in zip(ids, relevance, strict=True)]
    assert split_candidates(usual) is not None
    assert split_candidates(reversed_) is None
    rank = client.channel.unary_unary(
        "/reviewrank.v1.RankingService/Rank",
        response_deserializer=ranking_pb2.RankResponse.FromString,
    )

    def request(encoded: list[bytes]) -> bytes:
        return b"".join(b"\x0a" + varint(len(e)) + e for e in encoded)

    expected = rank(request(reversed_), timeout=10)

    assert 300 == len(expected.results)
    assert expected == rank(request(usual), timeout=10)
