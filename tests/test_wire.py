"""The hand-written RankResponse encoding equals the protobuf runtime's, byte for byte."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from reviewrank.v1 import ranking_pb2

from service.wire import BULK_MIN_RESULTS, rank_response, varint

ids = st.text(min_size=1, max_size=130)
scores = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(
    items=st.one_of(
        st.lists(st.tuples(ids, scores), max_size=40),
        st.lists(st.tuples(ids, scores), min_size=100, max_size=300),
    ),
    version=st.integers(0, 2**64 - 1),
    profile=st.text(max_size=70),
    token=st.text(max_size=300),
)
def test_encoding_equals_the_protobuf_runtime(
    items: list[tuple[str, float]], version: int, profile: str, token: str
) -> None:
    expected = ranking_pb2.RankResponse(
        results=[ranking_pb2.RankedProduct(product_id=p, score=s) for p, s in items],
        weights_version=version,
        profile=profile,
        next_page_token=token,
    ).SerializeToString(deterministic=True)

    encoded = rank_response(
        [p for p, _ in items],
        np.array([s for _, s in items], dtype=np.float64),
        version,
        profile,
        token,
    )

    assert expected == encoded
    assert ranking_pb2.RankResponse.FromString(encoded) == ranking_pb2.RankResponse.FromString(
        expected
    )


@given(st.integers(0, 2**64 - 1))
def test_varint_round_trips_through_protobuf(value: int) -> None:
    message = ranking_pb2.RankResponse(weights_version=value)

    assert message.SerializeToString() == (b"\x10" + varint(value) if value else b"")


ascii_ids = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(
        st.tuples(
            st.one_of(ascii_ids.filter(lambda s: len(s) <= 115), st.just("x" * 115)),
            scores,
        ),
        min_size=BULK_MIN_RESULTS,
        max_size=BULK_MIN_RESULTS + 150,
    ),
    version=st.integers(0, 2**64 - 1),
)
def test_long_responses_of_short_ascii_ids_built_in_bulk_equal_the_runtime(
    items: list[tuple[str, float]], version: int
) -> None:
    expected = ranking_pb2.RankResponse(
        results=[ranking_pb2.RankedProduct(product_id=p, score=s) for p, s in items],
        weights_version=version,
        profile="default",
    ).SerializeToString(deterministic=True)

    encoded = rank_response(
        [p for p, _ in items], np.array([s for _, s in items]), version, "default"
    )

    assert expected == encoded
