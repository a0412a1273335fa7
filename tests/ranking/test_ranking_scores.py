"""Known values and properties of ranking.scores (Wilson bound, Bayesian average)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from reviewrank.ranking.scores import (
    bayesian_average,
    mean_stars,
    wilson_lower_bound,
    z_for_confidence,
)

confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@st.composite
def positives_and_totals(draw: st.DrawFn) -> tuple[int, int]:
    total = draw(st.integers(min_value=1, max_value=2000))
    return draw(st.integers(min_value=0, max_value=total)), total


def test_z_for_95_percent_is_1_96() -> None:
    assert 1.959964 == pytest.approx(z_for_confidence(0.95), abs=1e-6)


def test_z_rejects_confidence_outside_open_unit_interval() -> None:
    with pytest.raises(ValueError, match="confidence"):
        z_for_confidence(1.0)


def test_wilson_bound_of_one_positive_out_of_one() -> None:
    assert 0.2065 == pytest.approx(float(wilson_lower_bound(1, 1, 0.95)), abs=1e-4)


def test_wilson_bound_of_nine_positives_out_of_ten() -> None:
    assert 0.5958 == pytest.approx(float(wilson_lower_bound(9, 10, 0.95)), abs=1e-4)


def test_bayesian_average_reproduces_imdb_weighted_rating() -> None:
    """IMDb: WR = v/(v+m)·R + m/(v+m)·C with R=9.0, v=1000, m=3000, C=6.9 is 7.425."""
    assert 7.425 == pytest.approx(float(bayesian_average(9.0 * 1000, 1000, 6.9, 3000)))


@settings(max_examples=150, deadline=None)
@given(positives_and_totals(), confidences)
def test_wilson_bound_matches_scipy_binomtest(kn: tuple[int, int], confidence: float) -> None:
    k, n = kn
    expected = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson").low
    assert expected == pytest.approx(float(wilson_lower_bound(k, n, confidence)), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(positives_and_totals(), confidences)
def test_wilson_bound_lies_in_unit_interval(kn: tuple[int, int], confidence: float) -> None:
    bound = float(wilson_lower_bound(kn[0], kn[1], confidence))
    assert 0.0 <= bound <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=3000), confidences)
def test_wilson_bound_never_decreases_with_more_positives(total: int, confidence: float) -> None:
    bounds = wilson_lower_bound(np.arange(total + 1), total, confidence)
    assert np.all(np.diff(bounds) >= -1e-12)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=200),
    st.floats(min_value=1.0, max_value=5.0),
    st.floats(min_value=0.0, max_value=1e4),
)
def test_bayesian_average_lies_between_prior_and_sample_mean(
    ratings: list[int], prior_mean: float, prior_strength: float
) -> None:
    sample_mean = sum(ratings) / len(ratings)
    value = float(bayesian_average(sum(ratings), len(ratings), prior_mean, prior_strength))
    low, high = sorted((prior_mean, sample_mean))
    assert low - 1e-9 <= value <= high + 1e-9


@settings(max_examples=50, deadline=None)
@given(st.lists(positives_and_totals(), min_size=1, max_size=30), confidences)
def test_vectorised_wilson_equals_scalar_calls(
    pairs: list[tuple[int, int]], confidence: float
) -> None:
    k = np.array([p[0] for p in pairs])
    n = np.array([p[1] for p in pairs])
    scalar = [float(wilson_lower_bound(a, b, confidence)) for a, b in pairs]
    np.testing.assert_allclose(scalar, wilson_lower_bound(k, n, confidence), rtol=0, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500),
            st.floats(min_value=1.0, max_value=5.0),
            st.floats(min_value=1.0, max_value=5.0),
            st.floats(min_value=0.0, max_value=100.0),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_vectorised_bayesian_average_equals_scalar_formula(
    rows: list[tuple[int, float, float, float]],
) -> None:
    n = np.array([r[0] for r in rows], dtype=float)
    star_sum = n * np.array([r[1] for r in rows])
    c = np.array([r[2] for r in rows])
    m = np.array([r[3] for r in rows])
    scalar = [
        (ci * mi + si) / (mi + ni) if mi + ni > 0 else ci
        for si, ni, ci, mi in zip(star_sum, n, c, m, strict=True)
    ]
    np.testing.assert_allclose(scalar, bayesian_average(star_sum, n, c, m), rtol=1e-12)


def test_wilson_bound_is_zero_without_votes() -> None:
    assert 0.0 == float(wilson_lower_bound(0, 0, 0.95))


def test_bayesian_average_is_the_prior_mean_without_ratings() -> None:
    assert 3.7 == pytest.approx(float(bayesian_average(0, 0, 3.7, 10)))


def test_bayesian_average_is_the_prior_mean_even_with_zero_strength_and_no_ratings() -> None:
    assert 3.7 == pytest.approx(float(bayesian_average(0, 0, 3.7, 0)))


def test_mean_stars_is_zero_without_ratings() -> None:
    assert [0.0, 4.5] == mean_stars([0, 9], [0, 2]).tolist()
