"""The bounds of ranking.prior_shift hold: no product's Bayesian average or like share's
posterior mean moves further than they say when the prior changes."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.ranking.beta import beta_posterior_mean
from reviewrank.ranking.prior_shift import average_shift, like_share_shift
from reviewrank.ranking.scores import bayesian_average

means = st.floats(1.0, 5.0)
strengths = st.floats(0.5, 10_000.0)
betas = st.floats(0.01, 1_000.0)


@given(means, strengths, means, strengths, st.integers(0, 100_000), st.floats(1.0, 5.0))
@settings(max_examples=500, deadline=None)
def test_no_bayesian_average_moves_further_than_the_bound(
    c1: float, m1: float, c2: float, m2: float, n: int, mean_stars: float
) -> None:
    stars = n * mean_stars
    before = float(bayesian_average(stars, n, c1, m1))
    after = float(bayesian_average(stars, n, c2, m2))

    assert abs(after - before) <= average_shift(c1, m1, c2, m2) * (1 + 1e-9) + 1e-12


@given(betas, betas, betas, betas, st.integers(0, 10_000), st.data())
@settings(max_examples=500, deadline=None)
def test_no_like_share_moves_further_than_the_bound(
    a1: float, b1: float, a2: float, b2: float, votes: int, data: st.DataObject
) -> None:
    likes = data.draw(st.integers(0, votes))
    before = float(beta_posterior_mean(likes, votes - likes, a1, b1))
    after = float(beta_posterior_mean(likes, votes - likes, a2, b2))

    assert abs(after - before) <= like_share_shift(a1, b1, a2, b2) * (1 + 1e-9) + 1e-12


def test_the_shift_of_a_prior_to_itself_is_zero() -> None:
    assert (0.0, 0.0) == (average_shift(4.1, 18.0, 4.1, 18.0), like_share_shift(2, 3, 2, 3))


def test_priors_of_different_categories_cannot_be_compared() -> None:
    assert math.isinf(average_shift([4.0, 4.1], [5.0, 6.0], [4.0], [5.0]))


def test_the_largest_category_shift_is_the_shift() -> None:
    assert 0.5 == average_shift([4.0, 3.0], [5.0, 5.0], [4.0, 3.5], [5.0, 5.0])
