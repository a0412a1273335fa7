"""Empirical-Bayes star prior: hand-computed values, recovery from a known model, edge cases."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reviewrank.ranking.priors import (
    DEFAULT_PRIOR,
    MAX_STRENGTH,
    MIN_STRENGTH,
    StarPrior,
    expand_category_priors,
    fit_category_priors,
    fit_star_prior,
)

# A symmetric rating distribution over 1..5 with mean 3 and variance 1.2. Tilting it to
# p_k = b_k·(1 + λ·(s_k − 3)/1.2) moves the mean to 3 + λ and the variance to 1.2 − λ², so
# with λ spread uniformly over ±a around a centre shift d the model's parameters are known:
# τ² = a²/3 and the pooled within-product variance σ² = 1.2 − d² − a²/3.
BASE = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
BASE_VARIANCE = 1.2


def synthetic_histogram(
    rng: np.random.Generator,
    products: int,
    half_width: float,
    shift: float = 0.0,
    mean_count: float = 15.0,
) -> npt.NDArray[np.float64]:
    tilt = shift + rng.uniform(-half_width, half_width, products)
    probabilities = BASE * (1.0 + np.outer(tilt, np.arange(-2.0, 3.0)) / BASE_VARIANCE)
    counts = 1 + rng.poisson(mean_count, products)
    return rng.multinomial(counts, probabilities).astype(np.float64)


def true_strength(half_width: float, shift: float = 0.0) -> float:
    tau2 = half_width**2 / 3.0
    return (BASE_VARIANCE - shift**2 - tau2) / tau2


def test_two_product_example_matches_hand_computation() -> None:
    """A = four 5s, B = two 3s and two 5s.

    C = (20 + 16) / 8 = 4.5. σ² = (0 + (68 − 16²/4)) / (3 + 3) = 4/6. The n-weighted spread
    Σ n_i (ȳ_i − C)² = 4·0.25 + 4·0.25 = 2, minus (k − 1)·σ² = 2/3, over
    N − Σn²/N = 8 − 32/8 = 4 gives τ² = 1/3, so m = σ²/τ² = 2.
    """
    prior = fit_star_prior([[0, 0, 0, 0, 4], [0, 0, 2, 0, 2]])
    assert 4.5 == pytest.approx(prior.mean)
    assert 2.0 == pytest.approx(prior.strength)


def test_mean_is_the_rating_weighted_mean() -> None:
    prior = fit_star_prior([[0, 0, 0, 0, 1], [3, 0, 0, 0, 0], [0, 1, 1, 0, 0]])
    assert (5 + 3 + 2 + 3) / 6 == pytest.approx(prior.mean)


def test_products_without_internal_disagreement_get_the_minimum_strength() -> None:
    prior = fit_star_prior([[0, 0, 0, 0, 3], [2, 0, 0, 0, 0], [0, 0, 4, 0, 0]])
    assert MIN_STRENGTH == prior.strength


def test_identical_products_get_the_maximum_strength() -> None:
    prior = fit_star_prior(np.tile([1.0, 0, 0, 0, 1], (20, 1)))
    assert StarPrior(3.0, MAX_STRENGTH) == prior


@pytest.mark.parametrize("seed", range(5))
def test_recovers_mean_and_strength_of_a_known_model(seed: int) -> None:
    histogram = synthetic_histogram(np.random.default_rng(seed), 3000, half_width=0.5)
    prior = fit_star_prior(histogram)
    assert 3.0 == pytest.approx(prior.mean, abs=0.02)
    assert true_strength(0.5) == pytest.approx(prior.strength, rel=0.15)


@pytest.mark.parametrize("seed", range(3))
def test_recovers_a_shifted_mean_and_a_weaker_prior(seed: int) -> None:
    histogram = synthetic_histogram(np.random.default_rng(seed), 3000, 0.3, shift=0.25)
    prior = fit_star_prior(histogram)
    assert 3.25 == pytest.approx(prior.mean, abs=0.02)
    assert true_strength(0.3, shift=0.25) == pytest.approx(prior.strength, rel=0.2)


def test_empty_catalogue_gets_the_default_prior() -> None:
    assert DEFAULT_PRIOR == fit_star_prior(np.zeros((0, 5)))


def test_catalogue_without_ratings_gets_the_default_prior() -> None:
    assert DEFAULT_PRIOR == fit_star_prior(np.zeros((4, 5)))


def test_single_product_gets_its_mean_and_the_default_strength() -> None:
    assert StarPrior(4.0, DEFAULT_PRIOR.strength) == fit_star_prior([[0, 0, 1, 1, 1]])


def test_single_ratings_only_get_their_mean_and_the_default_strength() -> None:
    prior = fit_star_prior(np.eye(5)[[0, 4, 4, 3]])
    assert StarPrior(3.75, DEFAULT_PRIOR.strength) == prior


def test_all_identical_ratings_give_finite_prior() -> None:
    prior = fit_star_prior(np.tile([0.0, 0, 0, 0, 7], (5, 1)))
    assert 5.0 == prior.mean
    assert MIN_STRENGTH <= prior.strength <= MAX_STRENGTH


def test_rejects_a_histogram_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        fit_star_prior(np.zeros((3, 4)))


def test_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        fit_star_prior([[0, 0, -1, 0, 0]])


small_histograms = arrays(
    np.float64,
    st.tuples(st.integers(min_value=0, max_value=12), st.just(5)),
    elements=st.integers(min_value=0, max_value=6).map(float),
)


@settings(max_examples=200, deadline=None)
@given(small_histograms)
def test_any_histogram_gives_a_finite_prior_in_range(histogram: npt.NDArray[np.float64]) -> None:
    prior = fit_star_prior(histogram)
    assert 1.0 <= prior.mean <= 5.0
    assert MIN_STRENGTH <= prior.strength <= MAX_STRENGTH


@settings(max_examples=100, deadline=None)
@given(small_histograms.map(lambda h: h * 0.37))
def test_fractional_decayed_counts_give_a_finite_prior(
    histogram: npt.NDArray[np.float64],
) -> None:
    prior = fit_star_prior(histogram)
    assert math.isfinite(prior.mean)
    assert math.isfinite(prior.strength)


def two_category_catalogue(
    seed: int, products: int = 2000
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    low = synthetic_histogram(rng, products, 0.4, shift=-0.2)
    high = synthetic_histogram(rng, products, 0.4, shift=0.2)
    codes = np.repeat(np.array([0, 1], dtype=np.int64), products)
    return np.vstack([low, high]), codes


def test_categories_with_plenty_of_data_get_their_own_means() -> None:
    histogram, codes = two_category_catalogue(seed=1)
    means, _ = fit_category_priors(histogram, codes, 2, fit_star_prior(histogram))
    np.testing.assert_allclose([2.8, 3.2], means, atol=0.03)


def test_categories_with_plenty_of_data_get_their_own_strengths() -> None:
    """Within a category τ² = 0.4²/3, not the catalogue's, which includes the ±0.2 shift."""
    histogram, codes = two_category_catalogue(seed=2)
    _, strengths = fit_category_priors(histogram, codes, 2, fit_star_prior(histogram))
    expected = true_strength(0.4, shift=0.2)
    np.testing.assert_allclose([expected, expected], strengths, rtol=0.25)


def test_category_without_data_gets_the_global_prior() -> None:
    histogram, codes = two_category_catalogue(seed=3, products=300)
    glob = StarPrior(3.1, 17.0)
    means, strengths = fit_category_priors(histogram, codes, 3, glob)
    assert (3.1, 17.0) == (means[2], strengths[2])


def test_category_below_the_rating_threshold_gets_the_global_prior() -> None:
    histogram, codes = two_category_catalogue(seed=4, products=300)
    glob = StarPrior(3.0, 12.0)
    means, strengths = fit_category_priors(histogram, codes, 2, glob, min_ratings=1e9)
    assert [3.0, 3.0] == means.tolist()
    assert [12.0, 12.0] == strengths.tolist()


def test_a_single_eligible_category_keeps_the_global_mean() -> None:
    """With one category there is no estimate of how far category means spread."""
    histogram = synthetic_histogram(np.random.default_rng(5), 500, 0.25, shift=0.3)
    codes = np.zeros(500, dtype=np.int64)
    means, _ = fit_category_priors(histogram, codes, 1, StarPrior(3.0, 10.0))
    assert [3.0] == means.tolist()


def test_fitted_category_means_lie_between_the_global_mean_and_their_own() -> None:
    histogram, codes = two_category_catalogue(seed=6, products=60)
    glob = fit_star_prior(histogram)
    means, _ = fit_category_priors(histogram, codes, 2, glob, min_products=2, min_ratings=10)
    stars = np.arange(1.0, 6.0)
    for category in (0, 1):
        rows = histogram[codes == category]
        own = float(rows.sum(axis=0) @ stars / rows.sum())
        low, high = sorted((own, glob.mean))
        assert low - 1e-12 <= means[category] <= high + 1e-12


def test_rejects_category_codes_beyond_n_categories() -> None:
    with pytest.raises(ValueError, match="below n_categories"):
        fit_category_priors(np.ones((2, 5)), [0, 2], 2, DEFAULT_PRIOR)


@settings(max_examples=100, deadline=None)
@given(small_histograms, st.integers(min_value=1, max_value=4))
def test_any_category_split_gives_finite_priors_in_range(
    histogram: npt.NDArray[np.float64], n_categories: int
) -> None:
    codes = np.arange(histogram.shape[0]) % (n_categories + 1) - 1  # includes "no category"
    glob = fit_star_prior(histogram)
    means, strengths = fit_category_priors(
        histogram, codes, n_categories, glob, min_ratings=1, min_products=1
    )
    assert np.all((means >= 1.0) & (means <= 5.0))
    assert np.all((strengths >= MIN_STRENGTH) & (strengths <= MAX_STRENGTH))


def test_expanding_category_priors_gives_one_prior_per_product() -> None:
    glob = StarPrior(4.0, 20.0)
    c, m = expand_category_priors([1, -1, 0, 1], [3.5, 4.5], [5.0, 50.0], glob)
    assert [4.5, 4.0, 3.5, 4.5] == c.tolist()
    assert [50.0, 20.0, 5.0, 50.0] == m.tolist()


def test_a_category_that_appeared_since_the_fit_gets_the_global_prior() -> None:
    c, m = expand_category_priors([0, 2], [3.5, 4.5], [5.0, 50.0], StarPrior(4.0, 20.0))

    assert ([3.5, 4.0], [5.0, 20.0]) == (c.tolist(), m.tolist())


def test_expanding_without_categories_gives_the_global_prior() -> None:
    c, m = expand_category_priors([-1, -1], [], [], StarPrior(4.0, 20.0))
    assert [4.0, 4.0] == c.tolist()
    assert [20.0, 20.0] == m.tolist()
