"""The sums the marginal prior is fitted on (ranking.rating_groups): kept up to date as
products change, they equal those of the final histogram, and fit to the same prior."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reviewrank.ranking.marginal import fit_marginal_groups, fit_marginal_prior
from reviewrank.ranking.rating_groups import (
    SMALL,
    CategoryRatingGroups,
    RatingGroups,
    RatingTally,
    category_rating_groups,
    rating_groups,
)

histograms = st.integers(1, 40).flatmap(
    lambda rows: arrays(np.int64, (rows, 5), elements=st.integers(0, 30))
)


def _fields(groups: RatingGroups | CategoryRatingGroups) -> tuple[list[float], ...]:
    return (
        groups.counts.tolist(),
        groups.products.tolist(),
        groups.star_sum.tolist(),
        groups.star_sum_squared.tolist(),
        [groups.square_sum],
    )


@given(histograms, st.data())
@settings(max_examples=200, deadline=None)
def test_a_tally_kept_through_changes_equals_the_groups_of_the_final_histogram(
    histogram: npt.NDArray[np.int64], data: st.DataObject
) -> None:
    tally = RatingTally()
    tally.add(histogram)
    current = histogram.copy()
    for _ in range(data.draw(st.integers(1, 5))):
        rows = data.draw(st.lists(st.integers(0, len(current) - 1), unique=True, max_size=8))
        after = data.draw(arrays(np.int64, (len(rows), 5), elements=st.integers(0, 30)))
        tally.replace(current[rows], after)
        current[rows] = after

    assert _fields(rating_groups(current)) == _fields(tally.groups())


def test_a_change_to_many_products_at_once_is_summed_as_one_to_a_few() -> None:
    rng = np.random.default_rng(7)
    before = rng.integers(0, 50, size=(3 * SMALL, 5))
    after = rng.integers(0, 50, size=(3 * SMALL, 5))
    bulk, one_by_one = RatingTally(), RatingTally()
    bulk.add(before)
    one_by_one.add(before)

    bulk.replace(before, after)
    for row in range(before.shape[0]):
        one_by_one.replace(before[row : row + 1], after[row : row + 1])

    assert _fields(one_by_one.groups()) == _fields(bulk.groups())


@given(histograms, st.data())
@settings(max_examples=100, deadline=None)
def test_the_fit_of_a_kept_tally_is_the_fit_of_the_histogram(
    histogram: npt.NDArray[np.int64], data: st.DataObject
) -> None:
    earlier = data.draw(arrays(np.int64, histogram.shape, elements=st.integers(0, 30)))
    tally = RatingTally()
    tally.add(earlier)

    tally.replace(earlier, histogram)

    assert fit_marginal_prior(histogram) == fit_marginal_groups(tally.groups())


def test_unrated_products_are_in_no_group() -> None:
    groups = rating_groups(np.array([[0, 0, 0, 0, 0], [0, 0, 1, 0, 1]]))

    assert ([2.0], [1.0], [8.0], [64.0], [34.0]) == _fields(groups)


def test_fractional_counts_are_grouped_by_their_distinct_totals() -> None:
    groups = rating_groups(np.array([[0.5, 0, 0, 0, 0], [0, 0, 0, 0, 0.5], [0, 1.5, 0, 0, 0]]))

    assert ([0.5, 1.5], [2.0, 1.0]) == (groups.counts.tolist(), groups.products.tolist())


def _pairs(groups: CategoryRatingGroups) -> tuple[list[float], ...]:
    return (groups.codes.tolist(), *_fields(groups))


@given(histograms, st.data())
@settings(max_examples=200, deadline=None)
def test_a_tally_kept_through_changes_of_stars_and_category_equals_the_final_catalogue(
    histogram: npt.NDArray[np.int64], data: st.DataObject
) -> None:
    codes = data.draw(arrays(np.int64, histogram.shape[0], elements=st.integers(-1, 3)))
    tally = RatingTally()
    tally.add(histogram, codes)
    current, current_codes = histogram.copy(), codes.copy()
    for _ in range(data.draw(st.integers(1, 5))):
        rows = data.draw(st.lists(st.integers(0, len(current) - 1), unique=True, max_size=8))
        after = data.draw(arrays(np.int64, (len(rows), 5), elements=st.integers(0, 30)))
        moved = data.draw(arrays(np.int64, len(rows), elements=st.integers(-1, 3)))
        tally.replace(current[rows], after, current_codes[rows], moved)
        current[rows], current_codes[rows] = after, moved

    assert _pairs(category_rating_groups(current, current_codes)) == _pairs(tally.category_groups())
    assert _fields(rating_groups(current)) == _fields(tally.groups())


def test_many_products_with_categories_at_once_are_summed_as_one_by_one() -> None:
    rng = np.random.default_rng(3)
    before = rng.integers(0, 50, size=(3 * SMALL, 5))
    after = rng.integers(0, 50, size=(3 * SMALL, 5))
    codes = rng.integers(-1, 6, size=3 * SMALL)
    bulk, one_by_one = RatingTally(), RatingTally()
    bulk.add(before, codes)
    one_by_one.add(before, codes)

    bulk.replace(before, after, codes, codes[::-1])
    for row in range(before.shape[0]):
        one_by_one.replace(
            before[row : row + 1],
            after[row : row + 1],
            codes[row : row + 1],
            codes[::-1][row : row + 1],
        )

    assert _pairs(one_by_one.category_groups()) == _pairs(bulk.category_groups())
