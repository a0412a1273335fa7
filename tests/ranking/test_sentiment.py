"""Comment sentiment (ranking.sentiment): the prior recovered from simulated catalogues,
the Bayesian average it makes, and edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.ranking.sentiment import (
    DEFAULT_SENTIMENT_PRIOR,
    fit_sentiment_prior,
    sentiment_average,
    sentiment_groups,
    sentiment_score,
)


def simulated(
    seed: int, spread: float, noise: float, products: int = 3000
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per product (n, Σ score, Σ score²) and its true mean: means ~ N(0.3, spread²),
    each comment mean + N(0, noise²) clipped to [−1, 1], counts long-tailed."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(1 + rng.pareto(1.2, products).astype(int), 200)
    truth = np.clip(rng.normal(0.3, spread, products), -0.9, 0.9)
    sums, squares = np.zeros(products), np.zeros(products)
    for i, n in enumerate(counts):
        scores = np.clip(truth[i] + rng.normal(0.0, noise, n), -1.0, 1.0)
        sums[i], squares[i] = scores.sum(), (scores * scores).sum()
    return counts.astype(float), sums, squares, truth


@pytest.mark.parametrize("seed", range(4))
def test_fitted_prior_recovers_the_catalogues_mean_sentiment_and_strength(seed: int) -> None:
    counts, sums, squares, _ = simulated(seed, spread=0.2, noise=0.4)

    prior = fit_sentiment_prior(counts, sums, squares)

    assert 0.3 == pytest.approx(prior.mean, abs=0.03)
    assert (0.4 / 0.2) ** 2 == pytest.approx(prior.strength, rel=0.35)  # m = σ²/τ² = 4


@pytest.mark.parametrize("seed", range(4))
def test_bayesian_average_beats_the_raw_mean_at_estimating_true_sentiment(seed: int) -> None:
    counts, sums, squares, truth = simulated(seed, spread=0.15, noise=0.5)

    shrunk = sentiment_average(counts, sums, fit_sentiment_prior(counts, sums, squares))

    raw = sums / counts
    assert np.mean((shrunk - truth) ** 2) < np.mean((raw - truth) ** 2)


def test_one_glowing_comment_stays_near_the_catalogues_sentiment() -> None:
    counts, sums, squares, _ = simulated(1, spread=0.1, noise=0.5)
    prior = fit_sentiment_prior(counts, sums, squares)

    one_glowing, many_good = sentiment_average([1.0, 50.0], [1.0, 50 * 0.6], prior)

    assert one_glowing < many_good


def test_no_comments_give_the_default_prior() -> None:
    assert DEFAULT_SENTIMENT_PRIOR == fit_sentiment_prior([0.0, 0.0], [0.0, 0.0], [0.0, 0.0])


def test_products_are_grouped_by_their_number_of_comments() -> None:
    groups = sentiment_groups([2.0, 1.0, 2.0, 0.0], [0.5, -0.2, 1.0, 0.0], [0.2, 0.04, 0.6, 0.0])

    assert [1.0, 2.0] == groups.counts.tolist()
    assert [1.0, 2.0] == groups.products.tolist()
    assert pytest.approx([-0.2, 1.5]) == groups.star_sum.tolist()
    assert pytest.approx(0.84) == groups.square_sum


@pytest.mark.parametrize(
    ("counts", "sums", "squares"),
    [
        ([1.0], [2.0], [1.0]),
        ([1.0], [0.5], [3.0]),
        ([-1.0], [0.0], [0.0]),
        ([1.0, 2.0], [0.0], [0.0]),
    ],
)
def test_sums_no_scores_in_minus_1_to_1_could_make_are_refused(
    counts: list[float], sums: list[float], squares: list[float]
) -> None:
    with pytest.raises(ValueError):
        fit_sentiment_prior(counts, sums, squares)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.floats(-1.0, 1.0), min_size=0, max_size=8), min_size=1, max_size=30))
def test_score_is_in_0_1_and_prior_mean_in_minus_1_to_1_for_any_comments(
    products: list[list[float]],
) -> None:
    counts = np.array([len(p) for p in products], dtype=float)
    sums = np.array([sum(p) for p in products])
    squares = np.array([sum(x * x for x in p) for p in products])

    prior = fit_sentiment_prior(counts, sums, squares)
    scores = sentiment_score(counts, sums, prior)

    assert -1.0 <= prior.mean <= 1.0 and prior.strength > 0
    assert np.all((scores >= 0.0) & (scores <= 1.0))
