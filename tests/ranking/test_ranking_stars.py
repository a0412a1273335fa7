"""Miller's Dirichlet lower bound of star ratings, and the [1, 5] -> [0, 1] mapping."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reviewrank.ranking.stars import dirichlet_star_bound, dirichlet_star_mean, normalise_stars

histograms = arrays(
    np.float64,
    st.tuples(st.integers(min_value=1, max_value=20), st.just(5)),
    elements=st.integers(min_value=0, max_value=5000).map(float),
)
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])


def test_bound_of_a_single_five_star_rating() -> None:
    """Counts + 1 = [1, 1, 1, 1, 2], N = 6: mean = 20/6, E[s²] = 80/6,
    var = (80/6 − (20/6)²) / 7 = 0.317460, bound = 3.333333 − 1.959964·0.563436 = 2.229019.
    """
    assert 2.229019 == pytest.approx(float(dirichlet_star_bound([0, 0, 0, 0, 1])), abs=1e-6)


def test_bound_of_ten_fours_and_ten_fives() -> None:
    """Counts + 1 = [1, 1, 1, 11, 11], N = 25: mean = 105/25 = 4.2, E[s²] = 465/25 = 18.6,
    var = (18.6 − 17.64) / 26 = 0.036923, bound = 4.2 − 1.959964·0.192154 = 3.823386.
    """
    assert 3.823386 == pytest.approx(float(dirichlet_star_bound([0, 0, 0, 10, 10])), abs=1e-6)


def test_bound_without_ratings_comes_from_the_prior_alone() -> None:
    """Counts = [1, 1, 1, 1, 1]: mean 3, var = (11 − 9) / 6, bound = 3 − 1.959964·0.577350."""
    assert 1.868414 == pytest.approx(float(dirichlet_star_bound([0, 0, 0, 0, 0])), abs=1e-6)


def test_mean_without_ratings_is_the_prior_mean() -> None:
    assert 3.0 == pytest.approx(float(dirichlet_star_mean([0, 0, 0, 0, 0])))


def test_mean_is_a_bayesian_average_with_five_pseudo_ratings_of_three() -> None:
    assert (4 * 5 + 15) / (4 + 5) == pytest.approx(float(dirichlet_star_mean([0, 0, 0, 0, 4])))


def test_prior_counts_can_be_given_per_star() -> None:
    bound = dirichlet_star_bound([0, 0, 0, 0, 1], prior_counts=[1, 1, 1, 1, 1])
    assert float(dirichlet_star_bound([0, 0, 0, 0, 1])) == pytest.approx(float(bound))


def test_many_one_star_ratings_are_clipped_at_one() -> None:
    assert 1.0 == float(dirichlet_star_bound([10_000, 0, 0, 0, 0]))


def test_rejects_non_positive_prior_counts() -> None:
    with pytest.raises(ValueError, match="prior_counts"):
        dirichlet_star_bound([0, 0, 0, 0, 1], prior_counts=0.0)


def test_rejects_a_histogram_without_five_star_counts() -> None:
    with pytest.raises(ValueError, match="5 star counts"):
        dirichlet_star_bound([0, 0, 1])


@settings(max_examples=150, deadline=None)
@given(histograms, confidences)
def test_bound_is_at_most_the_posterior_mean_and_within_the_star_scale(
    histogram: npt.NDArray[np.float64], confidence: float
) -> None:
    bound = dirichlet_star_bound(histogram, confidence)
    mean = dirichlet_star_mean(histogram)
    assert np.all(bound <= mean + 1e-12)
    assert np.all((bound >= 1.0) & (bound <= 5.0))


@settings(max_examples=60, deadline=None)
@given(histograms)
def test_higher_confidence_gives_a_lower_bound(histogram: npt.NDArray[np.float64]) -> None:
    assert np.all(dirichlet_star_bound(histogram, 0.99) <= dirichlet_star_bound(histogram, 0.8))


@settings(max_examples=60, deadline=None)
@given(histograms, confidences)
def test_vectorised_bound_equals_row_by_row(
    histogram: npt.NDArray[np.float64], confidence: float
) -> None:
    rows = [float(dirichlet_star_bound(row, confidence)) for row in histogram]
    np.testing.assert_allclose(rows, dirichlet_star_bound(histogram, confidence), rtol=1e-12)


def test_normalise_stars_maps_the_scale_onto_the_unit_interval() -> None:
    assert [0.0, 0.5, 0.75, 1.0] == normalise_stars([1, 3, 4, 5]).tolist()


def test_normalise_stars_clips_values_outside_the_scale() -> None:
    assert [0.0, 1.0] == normalise_stars([0.0, 6.0]).tolist()
