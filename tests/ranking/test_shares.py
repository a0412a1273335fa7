"""Share rate (ranking.shares): the Gamma–Poisson prior recovered from simulated
catalogues, the shrinkage it does, exposure with and without decay, and edges."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import gamma

from reviewrank.ranking.blend import Evidence, Prior, blend
from reviewrank.ranking.profiles import Profile, parse_profiles
from reviewrank.ranking.shares import (
    DEFAULT_SHARE_PRIOR,
    MAX_SHAPE,
    MIN_EXPOSURE_DAYS,
    MIN_FITTED_RATE_DAYS,
    SECONDS_PER_DAY,
    ShareRatePrior,
    exposure_days,
    fit_share_prior,
    log_marginal,
    moment_prior,
    rate_lower_bound,
    share_score,
    shrunk_rate,
)

DAY = SECONDS_PER_DAY


def simulated(
    seed: int, shape: float, rate: float, products: int = 5000
) -> tuple[np.ndarray, np.ndarray]:
    """Products listed 1 to 365 days, rates ~ Gamma(shape, rate), counts ~ Poisson."""
    rng = np.random.default_rng(seed)
    exposure = rng.uniform(1.0, 365.0, products)
    rates = rng.gamma(shape, 1.0 / rate, products)
    return rng.poisson(rates * exposure).astype(np.float64), exposure


@pytest.mark.parametrize("seed", range(5))
def test_fitted_prior_recovers_the_mean_rate_and_the_shape_of_a_simulated_catalogue(
    seed: int,
) -> None:
    counts, exposure = simulated(seed, shape=0.8, rate=40.0)

    prior = fit_share_prior(counts, exposure)

    assert 0.8 / 40.0 == pytest.approx(prior.mean, rel=0.1)
    assert 0.8 == pytest.approx(prior.shape, rel=0.2)


@pytest.mark.parametrize("seed", range(3))
def test_maximum_likelihood_fit_scores_at_least_the_moment_estimates(seed: int) -> None:
    counts, exposure = simulated(seed, shape=2.0, rate=100.0)

    fitted = log_marginal(fit_share_prior(counts, exposure), counts, exposure)
    moments = log_marginal(moment_prior(counts, exposure), counts, exposure)

    assert fitted >= moments - 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_fitted_prior_beats_raw_rates_and_pooled_rate_at_estimating_true_rates(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    exposure = rng.uniform(1.0, 60.0, 4000)
    rates = rng.gamma(1.5, 1.0 / 30.0, 4000)
    counts = rng.poisson(rates * exposure).astype(np.float64)

    shrunk = shrunk_rate(counts, exposure, fit_share_prior(counts, exposure))
    raw, pooled = counts / exposure, np.full(4000, counts.sum() / exposure.sum())

    error = {name: float(np.mean((e - rates) ** 2)) for name, e in
             (("shrunk", shrunk), ("raw", raw), ("pooled", pooled))}  # fmt: skip
    assert error["shrunk"] < min(error["raw"], error["pooled"]), error


def test_one_share_of_a_new_product_does_not_beat_steady_sharing() -> None:
    counts, exposure = simulated(7, shape=0.8, rate=40.0)
    prior = fit_share_prior(counts, exposure)

    new, steady = share_score([1.0, 20.0], [1.0, 30.0], prior)

    assert new < steady


def test_in_a_young_shop_a_product_first_seen_through_one_share_does_not_beat_steady_sharing() -> (
    None
):
    # 20 decayed shares over 30 days; one share that made the product known a minute ago;
    # three products listed a month, never shared.
    counts = [14.4, 1.0, 0.0, 0.0, 0.0]
    exposure = [21.6, MIN_EXPOSURE_DAYS, 30.0, 30.0, 30.0]

    prior = fit_share_prior(counts, exposure)
    steady, new = share_score(counts, exposure, prior)[:2]

    assert MIN_FITTED_RATE_DAYS <= prior.rate
    assert new < steady


def test_without_spread_beyond_poisson_noise_every_product_gets_about_the_pooled_rate() -> None:
    rng = np.random.default_rng(3)
    exposure = rng.uniform(1.0, 100.0, 3000)
    counts = rng.poisson(0.05 * exposure).astype(np.float64)

    prior = fit_share_prior(counts, exposure)
    rates = shrunk_rate(counts, exposure, prior)

    assert prior.shape > 50  # the rates hardly differ: a strong prior
    assert 0.05 == pytest.approx(float(np.median(rates)), rel=0.1)


def test_no_share_anywhere_gives_the_default_prior_and_equal_scores_for_equal_exposure() -> None:
    prior = fit_share_prior(np.zeros(4), np.full(4, 10.0))

    assert DEFAULT_SHARE_PRIOR == prior
    assert 1 == len(set(share_score(np.zeros(4), np.full(4, 10.0), prior).tolist()))


def test_a_product_whose_rates_lower_bound_is_the_reference_rate_scores_one_half() -> None:
    prior = ShareRatePrior(shape=2.0, rate=20.0)
    bound = float(rate_lower_bound([12.0], [30.0], prior, 0.9)[0])

    score = share_score([12.0], [30.0], replace(prior, reference=bound), 0.9)

    assert [0.5] == score.tolist()


@pytest.mark.parametrize("a", [3.0, 5.0, 30.0, 300.0])
def test_the_rates_lower_bound_is_the_gamma_quantile_within_7_percent(a: float) -> None:
    exact = gamma.ppf(0.025, a, scale=1.0 / 4.0)

    bound = rate_lower_bound([a - 1.0], [3.0], ShareRatePrior(1.0, 1.0), 0.95)

    assert exact == pytest.approx(float(bound[0]), rel=0.07)


def test_where_few_products_are_shared_one_share_scores_little() -> None:
    # 1,202 products listed long and never shared, four shared once; one share of a new
    # product an hour ago. (The prior mean as the reference scored every share near 1.)
    counts = np.r_[np.zeros(1202), [1.0, 1.0, 1.0, 1.0, 1.0]]
    exposure = np.r_[np.full(1202, 43.0), [2.0, 5.0, 10.0, 20.0, 1 / 24]]

    scores = share_score(counts, exposure, fit_share_prior(counts, exposure))

    assert 0.1 > float(scores.max())


def test_the_fitted_reference_rate_is_the_mean_posterior_rate_of_the_shared_products() -> None:
    counts, exposure = simulated(3, shape=0.8, rate=40.0)

    prior = fit_share_prior(counts, exposure)

    shared = counts > 0
    expected = float(np.mean(shrunk_rate(counts[shared], exposure[shared], prior)))
    assert expected == pytest.approx(prior.reference)


def test_exposure_without_half_life_is_the_days_listed() -> None:
    assert [3.0] == exposure_days([0.0], 3 * DAY, None).tolist()


def test_exposure_with_a_half_life_approaches_half_life_over_ln2_for_old_products() -> None:
    exposure = exposure_days([0.0], 1000 * DAY, 7 * DAY)

    assert 7.0 / math.log(2.0) == pytest.approx(float(exposure[0]))


def test_exposure_of_a_product_listed_just_now_is_the_floor() -> None:
    assert [MIN_EXPOSURE_DAYS] == exposure_days([100.0], 100.0, 7 * DAY).tolist()


def test_exposure_of_a_product_listed_in_the_future_is_the_floor() -> None:
    assert [MIN_EXPOSURE_DAYS] == exposure_days([200.0 * DAY], 100.0 * DAY, None).tolist()


@pytest.mark.parametrize(
    ("counts", "exposures"),
    [([-1.0], [1.0]), ([1.0], [0.0]), ([math.nan], [1.0]), ([1.0, 2.0], [1.0])],
)
def test_invalid_counts_or_exposures_are_refused(
    counts: list[float], exposures: list[float]
) -> None:
    with pytest.raises(ValueError):
        fit_share_prior(counts, exposures)


def test_a_non_positive_half_life_is_refused() -> None:
    with pytest.raises(ValueError, match="half-life"):
        exposure_days([0.0], DAY, 0.0)


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 500)),
    st.floats(0.01, 1000),
)
def test_fitted_prior_is_finite_positive_and_within_bounds(
    counts: np.ndarray, scale: float
) -> None:
    exposure = np.linspace(1.0, 1.0 + scale, counts.size)

    prior = fit_share_prior(counts, exposure)

    assert prior.shape > 0 and prior.rate > 0 and math.isfinite(prior.mean)
    assert prior.shape <= MAX_SHAPE * (1 + 1e-9)


@settings(max_examples=150, deadline=None)
@given(
    st.floats(0.01, 100), st.floats(0.01, 1000),
    st.floats(0, 1000), st.floats(0, 1000), st.floats(0.05, 1000),
)  # fmt: skip
def test_score_is_in_0_1_and_rises_with_shares_at_equal_exposure(
    shape: float, rate: float, fewer: float, more: float, exposure: float
) -> None:
    prior = ShareRatePrior(shape, rate)
    low, high = sorted((fewer, more))

    scores = share_score([low, high], [exposure, exposure], prior)

    assert 0.0 <= scores[0] <= scores[1] < 1.0


@settings(max_examples=150, deadline=None)
@given(st.floats(0.01, 100), st.floats(0.01, 1000), st.floats(0, 100), st.floats(0.05, 1000))
def test_shrunk_rate_lies_between_the_prior_mean_and_the_raw_rate(
    shape: float, rate: float, count: float, exposure: float
) -> None:
    prior = ShareRatePrior(shape, rate)

    shrunk = float(shrunk_rate([count], [exposure], prior)[0])

    low, high = sorted((prior.mean, count / exposure))
    assert low * (1 - 1e-9) <= shrunk <= high * (1 + 1e-9)


# -- in the blend (ranking.blend): the "shares" component ----------------------------------


def _share_profile(**weights: float) -> Profile:
    shares = {"prior": {"shape": 0.5, "rate_days": 50}}
    document = {"profiles": {"p": {"weights": weights, "shares": shares}}, "default_profile": "p"}
    return parse_profiles(document).profiles["p"]


def _evidence(shares: list[float] | None, exposure: list[float] | None) -> Evidence:
    n = 2 if shares is None else len(shares)
    zeros = np.zeros(n)
    return Evidence(
        zeros, zeros, zeros, zeros, np.zeros((n, 5)),
        None if shares is None else np.array(shares),
        None if exposure is None else np.array(exposure),
    )  # fmt: skip


def test_the_blend_scores_shares_by_the_rates_lower_bound_over_the_reference_rate() -> None:
    profile = _share_profile(shares=1)
    evidence = _evidence([20.0, 1.0, 0.0], [30.0, 1.0, 60.0])

    breakdown = blend(evidence, profile, Prior(3.0, 2.0, "fixed"))

    expected = share_score([20.0, 1.0, 0.0], [30.0, 1.0, 60.0], ShareRatePrior(0.5, 50.0))
    assert expected.tolist() == breakdown.score.tolist()
    assert ["shares"] == [c.name for c in breakdown.components]


def test_a_fitted_share_prior_in_the_prior_takes_the_place_of_the_profiles() -> None:
    fitted = ShareRatePrior(3.0, 10.0)
    evidence = _evidence([2.0], [5.0])

    breakdown = blend(evidence, _share_profile(shares=1), Prior(3.0, 2.0, "fixed", shares=fitted))

    assert share_score([2.0], [5.0], fitted).tolist() == breakdown.score.tolist()


def test_without_share_sums_in_the_evidence_the_shares_weight_goes_to_the_rest() -> None:
    breakdown = blend(
        _evidence(None, None), _share_profile(shares=3, wilson=1), Prior(3.0, 2.0, "x")
    )

    assert [("wilson", 1.0)] == [(c.name, c.weight) for c in breakdown.components]


@given(
    st.floats(0.0, 1e4),
    st.floats(0.0, 1e4),
    st.floats(MIN_EXPOSURE_DAYS, 1e4),
)
def test_more_shares_over_the_same_exposure_never_score_lower(
    shares: float, more: float, exposure: float
) -> None:
    profile = _share_profile(shares=1, bayesian_average=1)
    evidence = _evidence([shares, shares + more], [exposure, exposure])

    score = blend(evidence, profile, Prior(3.0, 2.0, "fixed")).score

    assert 0.0 <= score[0] <= score[1] <= 1.0
