"""The like share's Beta prior fitted by beta-binomial marginal likelihood
(ranking/like_prior.py), against simulated catalogues whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.ranking.beta import beta_posterior_mean
from reviewrank.ranking.like_prior import (
    FALLBACK_STRENGTH,
    MAX_STRENGTH,
    UNIFORM,
    LikePrior,
    fit_like_prior,
    vote_pairs,
)


def long_tail(seed: int, alpha: float, beta: float, votes: int = 20_000):
    """Products with 1 + floor(Pareto(1.2)) votes each, about ``votes`` in all (most
    products have one to three), true shares from Beta(alpha, beta)."""
    rng = np.random.default_rng(seed)
    n = 1 + np.floor(rng.pareto(1.2, votes)).astype(np.int64)
    n = n[np.cumsum(n) <= votes]
    share = rng.beta(alpha, beta, n.size)
    likes = rng.binomial(n, share)
    return likes, n - likes, share, rng


def test_the_fitted_strength_is_within_10_percent_of_the_truth_from_20000_votes() -> None:
    errors = []
    for seed in range(20):
        likes, dislikes, _, _ = long_tail(seed, 8.0, 2.0)
        errors.append(fit_like_prior(likes, dislikes).strength / 10.0 - 1.0)

    assert abs(float(np.median(errors))) <= 0.10


def test_the_fitted_share_is_the_catalogues() -> None:
    likes, dislikes, _, _ = long_tail(3, 8.0, 2.0)

    assert 0.8 == pytest.approx(fit_like_prior(likes, dislikes).mean, abs=0.02)


def test_the_fitted_prior_predicts_future_shares_better_than_beta_1_1() -> None:
    likes, dislikes, share, rng = long_tail(5, 8.0, 2.0)
    future = rng.binomial(100, share) / 100  # each product's next 100 votes
    fitted = fit_like_prior(likes, dislikes)

    def error(estimate: np.ndarray) -> float:
        return float(np.mean((estimate - future) ** 2))

    uniform = error(beta_posterior_mean(likes, dislikes))
    assert error(beta_posterior_mean(likes, dislikes, fitted.alpha, fitted.beta)) < uniform / 2


def test_a_warm_start_reaches_the_same_fit() -> None:
    likes, dislikes, _, _ = long_tail(7, 3.0, 5.0)
    cold = fit_like_prior(likes, dislikes)

    warm = fit_like_prior(likes, dislikes, start=LikePrior(cold.alpha * 1.3, cold.beta * 0.8))

    assert cold.strength == pytest.approx(warm.strength, rel=1e-3)
    assert cold.mean == pytest.approx(warm.mean, abs=1e-4)


def test_no_votes_give_the_uniform_prior() -> None:
    assert UNIFORM == fit_like_prior([0, 0], [0, 0])


def test_single_votes_fit_the_share_and_keep_the_fallback_strength() -> None:
    fitted = fit_like_prior([1, 1, 1, 0], [0, 0, 0, 1])

    # 3 likes of 4, and the pseudo-product's like of 2
    assert (4 / 6, FALLBACK_STRENGTH) == pytest.approx((fitted.mean, fitted.strength))


def test_a_first_like_does_not_make_every_new_product_look_certain() -> None:
    assert 2 / 3 == pytest.approx(fit_like_prior([1], [0]).mean)


def test_a_few_unanimous_products_keep_the_share_off_one() -> None:
    assert fit_like_prior([5, 3, 4], [0, 0, 0]).mean < 0.95


def test_products_all_alike_get_a_strength_near_the_largest_at_their_share() -> None:
    fitted = fit_like_prior([30] * 50, [10] * 50)

    assert 0.75 == pytest.approx(fitted.mean, abs=1e-3)
    assert MAX_STRENGTH / 2 <= fitted.strength <= MAX_STRENGTH


def test_products_with_the_same_votes_are_counted_together() -> None:
    n, k, weight = vote_pairs([1, 1, 0, 70, 70, 3], [0, 0, 0, 30, 30, 1])

    pairs = sorted(zip(n.tolist(), k.tolist(), weight.tolist(), strict=True))
    assert [(1.0, 1.0, 2.0), (4.0, 3.0, 1.0), (100.0, 70.0, 2.0)] == pairs


@pytest.mark.parametrize(
    ("likes", "dislikes"),
    [([1, -1], [0, 0]), ([1.5], [0]), ([1, 2], [0]), ([float("nan")], [1])],
)
def test_counts_that_are_not_whole_non_negative_pairs_are_refused(likes, dislikes) -> None:
    with pytest.raises(ValueError):
        fit_like_prior(likes, dislikes)


counts = st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(counts)
def test_any_counts_give_a_proper_prior_whatever_the_products_order(pairs) -> None:
    likes = np.array([p[0] for p in pairs])
    dislikes = np.array([p[1] for p in pairs])
    fitted = fit_like_prior(likes, dislikes)
    order = np.random.default_rng(0).permutation(likes.size)
    shuffled = fit_like_prior(likes[order], dislikes[order])

    assert fitted.alpha > 0 and fitted.beta > 0
    assert fitted.strength <= MAX_STRENGTH * (1 + 1e-9)
    assert fitted.mean == pytest.approx(shuffled.mean, abs=1e-6)
    assert fitted.strength == pytest.approx(shuffled.strength, rel=1e-3)
