"""The poll votes a fit takes (Catalogue.poll_rows): those naming products held, whole,
choosing exactly one of at least two; every other one left out."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.store import PollRows
from reviewrank.service.domain.values import ProductRow

HELD = 5  # products of idx 1 to 5


def _catalogue() -> Catalogue:
    catalogue = Catalogue()
    rows = [
        ProductRow(
            idx=idx,
            product_id=f"p{idx}",
            category="",
            rating_count=0,
            star_sum=0,
            histogram=(0, 0, 0, 0, 0),
            likes=0,
            dislikes=0,
            seq=1,
        )
        for idx in range(1, HELD + 1)
    ]
    catalogue.apply(rows, 1)
    return catalogue


Vote = list[tuple[int, bool]]  # (product idx, chosen) rows


def _poll_rows(votes: list[Vote]) -> PollRows:
    number = [n for n, vote in enumerate(votes) for _ in vote]
    idx = [i for vote in votes for i, _ in vote]
    chosen = [c for vote in votes for _, c in vote]
    return PollRows(
        np.array(number, dtype=np.int64),
        np.array(idx, dtype=np.int64),
        np.array(chosen, dtype=bool),
    )


def _taken(catalogue: Catalogue, votes: list[Vote]) -> list[tuple[list[int], int]]:
    _, taken, _ = catalogue.poll_rows(_poll_rows(votes))
    return [
        (taken.shown[a:b].tolist(), int(c))
        for a, b, c in zip(taken.offsets[:-1], taken.offsets[1:], taken.chosen, strict=True)
    ]


def _kept(vote: Vote) -> bool:
    return len(vote) >= 2 and all(0 < i <= HELD for i, _ in vote) and sum(c for _, c in vote) == 1


votes = st.lists(
    st.lists(st.tuples(st.integers(0, HELD + 2), st.booleans()), min_size=1, max_size=4),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(votes=votes)
def test_a_fit_takes_the_votes_on_products_held_choosing_one_of_two_or_more(
    votes: list[Vote],
) -> None:
    expected = [([i for i, _ in v], next(i for i, c in v if c)) for v in votes if _kept(v)]

    assert expected == _taken(_catalogue(), votes)


def test_a_fit_takes_every_vote_when_each_is_whole() -> None:
    votes = [[(1, True), (2, False)], [(3, False), (4, False), (5, True)], [(2, True), (1, False)]]

    assert [([1, 2], 1), ([3, 4, 5], 5), ([2, 1], 2)] == _taken(_catalogue(), votes)


def test_a_vote_choosing_two_is_left_out_beside_one_choosing_none() -> None:
    # As many products chosen as votes, but not one each.
    votes = [[(1, True), (2, True)], [(3, False), (4, False)], [(5, True), (1, False)]]

    assert [([5, 1], 5)] == _taken(_catalogue(), votes)
