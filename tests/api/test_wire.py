"""The hand-written RankResponse encoding equals the protobuf runtime's, byte for byte."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.api.wire.rank_decode import split_candidates
from reviewrank.service.api.wire.results import (
    BULK_MIN_RESULTS,
    rank_response,
    results_from_candidates,
    varint,
)
from reviewrank.v1 import ranking_pb2

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


any_ids = st.text(min_size=1, max_size=120)
nonzero_scores = scores.filter(lambda s: s != 0.0)  # zeros: left to the other encodings


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    items=st.lists(st.tuples(any_ids, st.floats(allow_nan=False, width=64)), min_size=1),
    left_out=st.sampled_from(["none", "all", "some"]),
)
def test_results_built_from_the_candidates_encodings_equal_the_runtime(
    data: st.DataObject, items: list[tuple[str, float]], left_out: str
) -> None:
    # Relevances of 0.0, which proto3 leaves out: none, all or some of them.
    zero = {"none": [False] * len(items), "all": [True] * len(items)}.get(left_out) or (
        data.draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
    )
    relevances = [0.0 if z else (r or 1.5) for (_, r), z in zip(items, zero, strict=True)]
    request = ranking_pb2.RankRequest(
        candidates=[
            ranking_pb2.Candidate(product_id=p, relevance=r)
            for (p, _), r in zip(items, relevances, strict=True)
        ]
    )
    encoded = [c.SerializeToString() for c in request.candidates]
    decoded = split_candidates(encoded)
    assert decoded is not None or any(len(p.encode()) > 127 - 11 for p, _ in items)
    if decoded is None:
        return
    block = decoded[2]
    positions = np.array(
        data.draw(st.permutations(range(len(items))))[: data.draw(st.integers(1, len(items)))],
        dtype=np.int64,
    )
    result_scores = np.array(
        data.draw(st.lists(nonzero_scores, min_size=len(positions), max_size=len(positions)))
    )
    expected = ranking_pb2.RankResponse(
        results=[
            ranking_pb2.RankedProduct(product_id=items[p][0], score=s)
            for p, s in zip(positions.tolist(), result_scores.tolist(), strict=True)
        ]
    ).SerializeToString(deterministic=True)

    built = results_from_candidates(block, positions, result_scores)

    too_long = any(len(items[p][0].encode()) + 11 > 0x7F for p in positions.tolist())
    assert (None if too_long else expected) == built


def test_a_score_of_positive_zero_is_left_to_the_other_encodings() -> None:
    request = ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id=p, relevance=1.0) for p in ("a", "b")]
    )
    decoded = split_candidates([c.SerializeToString() for c in request.candidates])
    assert decoded is not None

    built = results_from_candidates(decoded[2], np.array([1, 0]), np.array([0.5, 0.0]))

    assert built is None


def test_results_whose_size_needs_two_bytes_are_left_to_the_other_encodings() -> None:
    # A result of an id of 116 bytes is 127 bytes long: its size fits one varint byte.
    ids = ("a" * 116, "b" * 117)
    request = ranking_pb2.RankRequest(
        candidates=[ranking_pb2.Candidate(product_id=p, relevance=1.0) for p in ids]
    )
    decoded = split_candidates([c.SerializeToString() for c in request.candidates])
    assert decoded is not None
    block = decoded[2]

    fits = results_from_candidates(block, np.array([0]), np.array([0.5]))
    too_long = results_from_candidates(block, np.array([1, 0]), np.array([0.5, 0.25]))

    assert (
        ranking_pb2.RankResponse(
            results=[ranking_pb2.RankedProduct(product_id=ids[0], score=0.5)]
        ).SerializeToString()
        == fits
    )
    assert too_long is None
