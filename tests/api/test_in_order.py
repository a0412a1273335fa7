"""InOrder: Rank's ordered ids, taken from the candidates only when read."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reviewrank.service.api.wire.results import InOrder


@given(st.lists(st.text(max_size=5), max_size=30), st.randoms())
def test_ids_in_order_read_as_the_list_taken_in_that_order(
    ids: list[str], rng: random.Random
) -> None:
    order = np.array(rng.sample(range(len(ids)), len(ids)), dtype=np.int64)
    expected = [ids[i] for i in order.tolist()]

    in_order = InOrder(ids, order)

    assert expected == in_order
    assert len(expected) == len(in_order)
    assert expected == list(in_order)
    assert expected[1:3] == in_order[1:3]
    if expected:
        assert expected[-1] == in_order[-1]


def test_ids_in_order_differ_from_another_order() -> None:
    in_order = InOrder(["a", "b", "c"], np.array([2, 0, 1]))

    assert ["c", "a", "b"] == in_order
    assert ["a", "b", "c"] != in_order
    assert in_order != "cab"
