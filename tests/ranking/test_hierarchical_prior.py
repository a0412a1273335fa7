"""The hierarchical star prior (ranking.hierarchy): simulated catalogues whose category
means are known to differ, or not; edges; and bounds on any catalogue."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reviewrank.ranking.hierarchy import (
    MAX_CATEGORIES,
    HierarchicalPrior,
    fit_hierarchical_groups,
    fit_hierarchical_prior,
)
from reviewrank.ranking.marginal import fit_marginal_prior
from reviewrank.ranking.priors import DEFAULT_PRIOR, MAX_STRENGTH, MIN_STRENGTH
from reviewrank.ranking.rating_groups import category_rating_groups

FloatArray = npt.NDArray[np.float64]
CATEGORIES = 20
SEEDS = range(10)


def drawn(
    rng: np.random.Generator, spread: float
) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray]:
    """A long-tailed catalogue of 20,000 ratings in 20 categories (5 % of products in
    none): each category shifts its products' quality p ~ Beta(6, 1.8) by N(0, spread²),
    stars are 1 + Binomial(4, p). Histograms, category codes, true mean stars."""
    counts: list[int] = []
    while sum(counts) < 20_000:
        counts.append(min(int(rng.pareto(1.2)) + 1, 2000))
    codes = rng.integers(0, CATEGORIES, len(counts))
    codes[rng.random(len(counts)) < 0.05] = -1
    shift = rng.normal(0.0, spread, CATEGORIES)
    quality = rng.beta(6.0, 1.8, len(counts)) + np.where(codes >= 0, shift[codes], 0.0)
    quality = np.clip(quality, 0.0, 1.0)
    histogram = np.array(
        [
            np.bincount(rng.binomial(4, p, size=n), minlength=5)
            for p, n in zip(quality, counts, strict=True)
        ],
        dtype=np.float64,
    )
    return histogram, codes, 1 + 4 * quality


def squared_error(
    mean: FloatArray | float, strength: FloatArray | float, h: FloatArray, truth: FloatArray
) -> float:
    n, s = h.sum(axis=1), h @ np.arange(1.0, 6.0)
    return float(np.mean(((mean * strength + s) / (strength + n) - truth) ** 2))


@functools.cache
def error_ratios(spread: float) -> list[float]:
    """Per seed: the error of the products' Bayesian averages under the hierarchical priors
    over that under the one-level marginal prior."""
    ratios = []
    for seed in SEEDS:
        h, codes, truth = drawn(np.random.default_rng(seed), spread)
        fitted, flat = fit_hierarchical_prior(h, codes, CATEGORIES), fit_marginal_prior(h)
        known = codes >= 0
        index = np.where(known, codes, 0)
        mean = np.where(known, fitted.means[index], fitted.catalogue.mean)
        strength = np.where(known, fitted.strengths[index], fitted.catalogue.strength)
        ratios.append(
            squared_error(mean, strength, h, truth)
            / squared_error(flat.mean, flat.strength, h, truth)
        )
    return ratios


def test_categories_whose_means_differ_make_estimates_closer_to_the_truth() -> None:
    ratios = error_ratios(0.1)  # category means about 0.4 stars apart

    assert 0.9 > float(np.median(ratios)), ratios
    assert 1.0 > max(ratios), ratios


def test_categories_that_do_not_differ_cost_at_most_one_percent() -> None:
    ratios = error_ratios(0.0)

    assert 1.01 > float(np.median(ratios)), ratios
    assert 1.02 > max(ratios), ratios


def test_no_ratings_give_the_default_prior_everywhere() -> None:
    fitted = fit_hierarchical_prior(np.zeros((3, 5)), [0, 1, -1], 2)

    assert DEFAULT_PRIOR == fitted.catalogue
    assert [3.0, 3.0] == list(fitted.means)


def test_single_ratings_only_give_their_mean_and_the_default_strength() -> None:
    h = np.zeros((4, 5))
    h[[0, 1, 2, 3], [4, 2, 4, 2]] = 1  # 5, 3, 5, 3 stars

    fitted = fit_hierarchical_prior(h, [0, 0, 1, 1], 2)

    assert (4.0, DEFAULT_PRIOR.strength) == (fitted.catalogue.mean, fitted.catalogue.strength)


def test_a_category_without_ratings_gets_the_catalogue_prior() -> None:
    h, codes, _ = drawn(np.random.default_rng(1), 0.1)

    fitted = fit_hierarchical_prior(h, codes, CATEGORIES + 1)  # the last one has no product

    assert (fitted.catalogue.mean, fitted.catalogue.strength) == (
        fitted.means[-1],
        fitted.strengths[-1],
    )


def test_category_codes_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="below n_categories"):
        fit_hierarchical_prior(np.ones((2, 5)), [0, 2], 2)


@settings(max_examples=60, deadline=None)
@given(
    histogram=arrays(
        np.int64, st.tuples(st.integers(1, 12), st.just(5)), elements=st.integers(0, 6)
    ),
    data=st.data(),
)
def test_any_catalogue_gives_means_of_stars_and_strengths_within_bounds(
    histogram: npt.NDArray[np.int64], data: st.DataObject
) -> None:
    codes = data.draw(
        arrays(np.int64, histogram.shape[0], elements=st.integers(-1, 2)), label="codes"
    )

    fitted = fit_hierarchical_prior(histogram, codes, 3)

    means = np.append(fitted.means, fitted.catalogue.mean)
    strengths = np.append(fitted.strengths, fitted.catalogue.strength)
    assert np.all((1.0 <= means) & (means <= 5.0)), means
    assert np.all((MIN_STRENGTH <= strengths) & (strengths <= MAX_STRENGTH)), strengths


def test_only_the_largest_categories_get_their_own_prior() -> None:
    # 1,500 categories of two products and one of twenty: the 1,000 fitted are the
    # largest (ties by code), the others and a category of one product get the
    # catalogue's prior.
    rng = np.random.default_rng(0)
    codes = np.concatenate([np.repeat(np.arange(1500), 2), np.full(20, 1500), [1501]])
    h = np.zeros((codes.size, 5))
    h[np.arange(codes.size), rng.integers(0, 5, codes.size)] = 1
    h[np.arange(codes.size), rng.integers(0, 5, codes.size)] += 1

    fitted = fit_hierarchical_prior(h, codes, 1502)

    own = fitted.means != fitted.catalogue.mean
    assert MAX_CATEGORIES == int(np.count_nonzero(own))
    assert (True, False, False) == (bool(own[1500]), bool(own[1499]), bool(own[1501]))
    assert bool(np.all(own[: MAX_CATEGORIES - 1]))


def _values(fitted: HierarchicalPrior) -> list[float]:
    return [*fitted.means, *fitted.strengths, fitted.catalogue.mean, fitted.catalogue.strength]


def _warm_and_cold(
    before: FloatArray, after: FloatArray, codes: npt.ArrayLike
) -> tuple[list[float], list[float], tuple[int, int, int, int] | None]:
    start = fit_hierarchical_groups(category_rating_groups(before, codes), CATEGORIES)
    pairs = category_rating_groups(after, codes)
    cold = fit_hierarchical_groups(pairs, CATEGORIES)
    warm = fit_hierarchical_groups(pairs, CATEGORIES, start)
    return _values(cold), _values(warm), start.support


def test_a_refit_started_from_an_earlier_fit_is_the_fit_from_scratch() -> None:
    h, codes, _ = drawn(np.random.default_rng(2), 0.1)
    after = h.copy()
    after[::50, 4] += 3  # some products get three more five-star ratings

    cold, warm, support = _warm_and_cold(h, after, codes)

    assert pytest.approx(cold, rel=1e-9) == warm
    assert support is not None and support[1] - support[0] < 10  # (it did start narrow)


def test_a_start_far_from_the_new_fit_falls_back_to_the_whole_grid() -> None:
    h, codes, _ = drawn(np.random.default_rng(3), 0.1)
    flat, _, _ = drawn(np.random.default_rng(3), 0.0)  # no category effect: λ elsewhere
    noisy = flat.copy()
    noisy[:, 0] += noisy[:, 4]  # as many one-star ratings as five-star: m far lower

    cold, warm, _ = _warm_and_cold(h, noisy, codes[: noisy.shape[0]])

    assert pytest.approx(cold, rel=1e-9) == warm
