"""The simulated review history (ranking/simulation.py) and the time-ordered split of the
held-out evaluation that it exists for (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest

from reviewrank.ranking.evaluation import AUTO, evaluate
from reviewrank.ranking.simulation import STAR_SHARES, SimulatedReviews, simulate_reviews


@pytest.fixture(scope="module")
def history() -> SimulatedReviews:
    return simulate_reviews(0, products=4000)


def test_the_reviews_come_in_time_order_within_the_period(history: SimulatedReviews) -> None:
    times = history.times

    assert (True, True) == (bool(np.all(np.diff(times) >= 0)), bool(times.min() >= 0))
    assert times.max() < 1.0


def test_the_same_seed_gives_the_same_history(history: SimulatedReviews) -> None:
    again = simulate_reviews(0, products=4000)

    assert np.array_equal(history.product_index, again.product_index)
    assert np.array_equal(history.stars, again.stars)


def test_most_reviewed_products_have_one_to_three_reviews(history: SimulatedReviews) -> None:
    counts = np.bincount(history.product_index, minlength=history.n_products)

    assert np.mean(counts[counts > 0] <= 3) > 0.5


def test_it_expects_the_asked_number_of_reviews_per_product(history: SimulatedReviews) -> None:
    assert 4.0 == pytest.approx(history.product_index.size / history.n_products, rel=0.2)


def test_five_stars_are_the_most_common_and_one_star_the_rarest(
    history: SimulatedReviews,
) -> None:
    shares = np.bincount(history.stars, minlength=6)[1:] / history.stars.size

    assert [4, 0] == [int(np.argmax(shares)), int(np.argmin(shares))]
    assert shares[4] == pytest.approx(STAR_SHARES[4], abs=0.15)


def test_better_products_draw_more_reviews(history: SimulatedReviews) -> None:
    counts = np.bincount(history.product_index, minlength=history.n_products)
    sums = np.bincount(history.product_index, weights=history.stars, minlength=history.n_products)
    reviewed = counts >= 3
    means = sums[reviewed] / counts[reviewed]

    assert np.corrcoef(means, np.log(counts[reviewed]))[0, 1] > 0.05


def test_a_time_ordered_split_keeps_the_first_reviews() -> None:
    # The first 3 of 8 reviews by time are product 0's: product 1 has none kept, so only
    # product 0 (with a review on each side) is compared.
    index = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    times = np.array([0.1, 0.5, 0.2, 0.6, 0.3, 0.7, 0.8, 0.96])
    stars = np.array([5, 4, 5, 2, 3, 1, 2, 3])

    report = evaluate(
        index, stars, stars >= 4, 2, fractions=(0.375,), splits=1, times=times,
        fixed_strengths=(1.0,),
    )  # fmt: skip

    assert report.time_ordered
    assert 1.0 == report.methods[0].products


def test_a_time_ordered_split_is_one_split_per_fraction() -> None:
    with pytest.raises(ValueError, match="splits must be 1"):
        evaluate([0, 0], [4, 5], [True, True], 1, splits=2, times=[0.1, 0.2])


def test_times_must_be_one_per_review() -> None:
    with pytest.raises(ValueError, match="one time per review"):
        evaluate([0, 0], [4, 5], [True, True], 1, splits=1, times=[0.1])


def test_the_fitted_prior_is_near_the_best_fixed_one_on_time_ordered_splits(
    history: SimulatedReviews,
) -> None:
    report = evaluate(
        history.product_index, history.stars, history.recommended, history.n_products,
        fractions=(0.1, 0.3), splits=1, times=history.times,
    )  # fmt: skip

    assert [s.auto_ratio < 1.05 for s in report.summaries] == [True, True]
    assert all(r.strength > 0 for r in report.methods if r.method == AUTO)
