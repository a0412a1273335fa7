"""Beta posterior of the like share: closed-form values and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.ranking.beta import beta_lower_bound, beta_posterior_mean

counts = st.integers(min_value=0, max_value=10_000)
priors = st.floats(min_value=0.5, max_value=50.0)
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])


def test_posterior_mean_of_nine_likes_and_one_dislike() -> None:
    assert 10 / 12 == pytest.approx(float(beta_posterior_mean(9, 1)))


def test_posterior_mean_without_votes_is_the_prior_mean() -> None:
    assert 2 / 7 == pytest.approx(float(beta_posterior_mean(0, 0, 2.0, 5.0)))


def test_lower_bound_without_votes_is_the_uniform_two_and_a_half_percent_quantile() -> None:
    """Beta(1, 1) is uniform; confidence 0.95 is two-sided, so the bound is 0.025."""
    assert 0.025 == pytest.approx(float(beta_lower_bound(0, 0, 0.95)))


def test_lower_bound_of_one_like() -> None:
    """Beta(2, 1) has CDF x², so its 2.5 % quantile is sqrt(0.025) = 0.158114."""
    assert math.sqrt(0.025) == pytest.approx(float(beta_lower_bound(1, 0, 0.95)))


def test_lower_bound_is_vectorised() -> None:
    bounds = beta_lower_bound([0, 1], [0, 0], 0.95)
    np.testing.assert_allclose([0.025, math.sqrt(0.025)], bounds)


def test_rejects_a_non_positive_prior() -> None:
    with pytest.raises(ValueError, match="prior"):
        beta_posterior_mean(1, 1, 0.0, 1.0)


def test_rejects_a_confidence_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match="confidence"):
        beta_lower_bound(1, 1, 1.5)


@settings(max_examples=150, deadline=None)
@given(counts, counts, confidences, priors, priors)
def test_lower_bound_is_at_most_the_posterior_mean(
    likes: int, dislikes: int, confidence: float, alpha: float, beta: float
) -> None:
    bound = float(beta_lower_bound(likes, dislikes, confidence, alpha, beta))
    mean = float(beta_posterior_mean(likes, dislikes, alpha, beta))
    assert 0.0 <= bound <= mean <= 1.0


@settings(max_examples=100, deadline=None)
@given(counts, counts, priors, priors)
def test_posterior_mean_lies_between_prior_mean_and_observed_share(
    likes: int, dislikes: int, alpha: float, beta: float
) -> None:
    mean = float(beta_posterior_mean(likes, dislikes, alpha, beta))
    share = likes / (likes + dislikes) if likes + dislikes else alpha / (alpha + beta)
    low, high = sorted((alpha / (alpha + beta), share))
    assert low - 1e-12 <= mean <= high + 1e-12


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_another_like_never_lowers_the_bound(likes: int, dislikes: int) -> None:
    bounds = beta_lower_bound([likes, likes + 1], [dislikes, dislikes], 0.95)
    assert bounds[0] <= bounds[1]
