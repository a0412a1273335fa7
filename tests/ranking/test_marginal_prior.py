"""The marginal-likelihood star prior (ranking.marginal): recovery from simulated
long-tailed catalogues whose truth is known, against the moment estimates, and edges."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reviewrank.ranking.marginal import fit_marginal_groups, fit_marginal_prior
from reviewrank.ranking.priors import DEFAULT_PRIOR, MAX_STRENGTH, MIN_STRENGTH, fit_star_prior
from reviewrank.ranking.rating_groups import RatingGroups

# A long-tailed catalogue: each product's count is 1 + floor(Pareto(1.2)) (about 57 % of
# products have one rating), its quality p ~ Beta(a, b), its stars 1 + Binomial(4, p).
# Then C = 1 + 4·E[p], τ² = 16·Var[p], σ² = 4·E[p(1 − p)] (each product's own spread
# differs: heteroscedastic), and the true strength is m = σ²/τ².
SEEDS = range(20)
RATINGS = 20_000


def drawn(
    rng: np.random.Generator, a: float, b: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A catalogue's star histograms and its products' true mean stars."""
    counts: list[int] = []
    while sum(counts) < RATINGS:
        counts.append(min(int(rng.pareto(1.2)) + 1, 2000))
    quality = rng.beta(a, b, size=len(counts))
    stars = [rng.binomial(4, p, size=n) for p, n in zip(quality, counts, strict=True)]
    histogram = np.array([np.bincount(s, minlength=5) for s in stars], dtype=np.float64)
    return histogram, 1 + 4 * quality


def catalogue(rng: np.random.Generator, a: float, b: float) -> npt.NDArray[np.float64]:
    return drawn(rng, a, b)[0]


def truth(a: float, b: float) -> tuple[float, float]:
    mean = a / (a + b)
    variance = a * b / ((a + b) ** 2 * (a + b + 1))
    return 1 + 4 * mean, 4 * (mean - variance - mean * mean) / (16 * variance)


@functools.cache
def relative_errors(a: float, b: float) -> tuple[list[float], list[float], list[float]]:
    """Per seed: |m/m_true − 1| of the marginal fit, |C − C_true| of the marginal fit and
    of the moment fit."""
    c_true, m_true = truth(a, b)
    strength, marginal_mean, moments_mean = [], [], []
    for seed in SEEDS:
        h = catalogue(np.random.default_rng(seed), a, b)
        fitted, moments = fit_marginal_prior(h), fit_star_prior(h)
        strength.append(abs(fitted.strength / m_true - 1))
        marginal_mean.append(abs(fitted.mean - c_true))
        moments_mean.append(abs(moments.mean - c_true))
    return strength, marginal_mean, moments_mean


def test_the_strength_of_a_simulated_long_tail_is_recovered_within_15_percent() -> None:
    for a, b in ((6.0, 1.8), (3.0, 1.0), (12.0, 3.0)):
        strength, _, _ = relative_errors(a, b)

        assert 0.15 > float(np.median(strength)), (a, b, strength)
        assert 0.5 > max(strength), (a, b, strength)


def test_the_mean_of_a_simulated_long_tail_is_closer_than_the_moment_estimate() -> None:
    for a, b in ((6.0, 1.8), (3.0, 1.0), (12.0, 3.0)):
        _, marginal, moments = relative_errors(a, b)

        assert 0.02 > float(np.median(marginal)), (a, b, marginal)
        assert float(np.median(marginal)) < 0.5 * float(np.median(moments))


def test_no_ratings_give_the_default_prior() -> None:
    assert DEFAULT_PRIOR == fit_marginal_prior(np.zeros((3, 5)))


def test_single_ratings_only_give_their_mean_and_the_default_strength() -> None:
    h = np.array([[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=np.float64)

    fitted = fit_marginal_prior(h)

    assert (4.0, DEFAULT_PRIOR.strength) == (fitted.mean, fitted.strength)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 30), st.just(5)), elements=st.integers(0, 40)))
def test_any_catalogue_gives_a_mean_of_stars_and_a_strength_within_bounds(
    histogram: npt.NDArray[np.float64],
) -> None:
    fitted = fit_marginal_prior(histogram)

    assert 1.0 <= fitted.mean <= 5.0
    assert MIN_STRENGTH <= fitted.strength <= MAX_STRENGTH


def squared_error(
    prior: tuple[float, float],
    histogram: npt.NDArray[np.float64],
    true_mean: npt.NDArray[np.float64],
) -> float:
    """Mean squared error of the products' Bayesian averages under (C, m) against their
    true means."""
    c, m = prior
    n, s = histogram.sum(axis=1), histogram @ np.arange(1.0, 6.0)
    return float(np.mean(((c * m + s) / (m + n) - true_mean) ** 2))


def oracle_ratios(a: float, b: float) -> list[float]:
    """Per seed: the error with the fitted (C, m) over the error with the true (C, m)."""
    ratios = []
    for seed in SEEDS:
        h, true_mean = drawn(np.random.default_rng(seed), a, b)
        fitted = fit_marginal_prior(h)
        ratios.append(
            squared_error((fitted.mean, fitted.strength), h, true_mean)
            / squared_error(truth(a, b), h, true_mean)
        )
    return ratios


def test_the_fitted_prior_estimates_true_means_within_2_percent_of_the_true_prior() -> None:
    for a, b in ((6.0, 1.8), (3.0, 1.0), (12.0, 3.0)):
        ratios = oracle_ratios(a, b)

        assert 1.02 > float(np.median(ratios)), (a, b, ratios)
        assert 1.05 > max(ratios), (a, b, ratios)


def normal_groups(rng: np.random.Generator, mean: float, tau: float, sigma: float) -> RatingGroups:
    """A long-tailed catalogue of 20,000 ratings from the model itself: product means
    N(mean, tau²), ratings N(product mean, sigma²) (one spread for every product)."""
    counts: list[int] = []
    while sum(counts) < RATINGS:
        counts.append(min(int(rng.pareto(1.2)) + 1, 2000))
    ratings = [
        rng.normal(mu, sigma, n)
        for mu, n in zip(rng.normal(mean, tau, len(counts)), counts, strict=True)
    ]
    sums = np.array([r.sum() for r in ratings])
    distinct, position = np.unique(counts, return_inverse=True)
    return RatingGroups(
        counts=distinct.astype(np.float64),
        products=np.bincount(position).astype(np.float64),
        star_sum=np.bincount(position, weights=sums),
        star_sum_squared=np.bincount(position, weights=sums * sums),
        square_sum=float(sum(float((r * r).sum()) for r in ratings)),
    )


def test_the_strength_of_a_catalogue_from_the_model_is_recovered_within_10_percent() -> None:
    for mean, tau, sigma in ((4.0, 0.5, 1.0), (4.2, 0.3, 1.1), (3.8, 0.8, 0.9)):
        true_strength = sigma**2 / tau**2
        errors = [
            abs(
                fit_marginal_groups(
                    normal_groups(np.random.default_rng(s), mean, tau, sigma)
                ).strength
                / true_strength
                - 1
            )
            for s in SEEDS
        ]

        assert 0.1 > float(np.median(errors)), (mean, tau, sigma, errors)
        assert 0.3 > max(errors), (mean, tau, sigma, errors)
