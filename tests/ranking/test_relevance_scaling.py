"""Relevance scaling stays finite and ordered for any finite relevance, down to the wire."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reviewrank.ranking.blend import normalize_relevance, rank_order
from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import candidates, explaining

# Any finite float, with the ends of the range drawn often (where a spread overflows).
largest = float(np.finfo(np.float64).max)
finite = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([largest, -largest, 1e308, -1e308]),
)


@given(st.lists(finite, min_size=1, max_size=30))
def test_any_finite_relevances_scale_to_finite_values_in_order(values: list[float]) -> None:
    scaled = normalize_relevance(values)

    assert bool(np.all(np.isfinite(scaled)))
    assert bool(np.all((scaled >= 0.0) & (scaled <= 1.0)))
    in_order = scaled[np.argsort(values, kind="stable")]
    assert bool(np.all(in_order[:-1] <= in_order[1:]))


def test_relevances_at_the_ends_of_the_float_range_scale_to_one_zero_and_a_half() -> None:
    assert [1.0, 0.0, 0.5] == normalize_relevance([1e308, -1e308, 0.0]).tolist()


@pytest.mark.parametrize("scores", [[math.nan, 0.5, 0.2], [0.1, math.nan, 0.5, 0.5]])
def test_a_score_that_is_not_a_number_never_ranks_first(scores: list[float]) -> None:
    order = rank_order(np.array(scores), np.zeros(len(scores)))

    not_a_number = int(np.flatnonzero(np.isnan(scores))[0])
    assert not_a_number == int(order[-1])


def test_rank_with_relevances_at_the_ends_of_the_float_range_orders_by_them(
    client: Client,
) -> None:
    items = (("top", 1e308), ("bottom", -1e308), ("middle", 0.0))
    request = ranking_pb2.RankRequest(candidates=candidates(*items), explain=True)

    results = explaining(client).Rank(request).results

    assert ["top", "middle", "bottom"] == [r.product_id for r in results]
    assert [1.0, 0.5, 0.0] == [r.explanation.relevance_normalized for r in results]
    assert not any(math.isnan(r.score) for r in results)
    relevance_parts = [
        next(c for c in r.explanation.contributions if c.component == "relevance") for r in results
    ]
    assert [0.15, 0.075, 0.0] == pytest.approx([c.contribution for c in relevance_parts])
