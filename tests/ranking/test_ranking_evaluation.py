"""Held-out evaluation on a small synthetic catalogue drawn from a known model."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from reviewrank.ranking import evaluation
from reviewrank.ranking.evaluation import (
    AUTO,
    AUTO_CATEGORY,
    AUTO_HIERARCHY,
    RAW_MEAN,
    EvaluationReport,
    evaluate,
    fixed_method_name,
    format_markdown,
)
from reviewrank.ranking.quality import (
    kendall_tau,
    long_tail_resample,
    ndcg_at_k,
    pairwise_accuracy,
    precision_at_k,
    weighted_rmse,
)

BASE = np.array([0.1, 0.2, 0.4, 0.2, 0.1])  # mean 3, variance 1.2


def synthetic_reviews(
    seed: int, products: int = 200
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.int64]
]:
    """Products with true means 3 ± 0.5 and heavy-tailed review counts, two categories."""
    rng = np.random.default_rng(seed)
    tilt = rng.uniform(-0.5, 0.5, products)
    probabilities = BASE * (1.0 + np.outer(tilt, np.arange(-2.0, 3.0)) / 1.2)
    counts = 1 + np.minimum(np.floor(rng.pareto(1.2, products) * 5), 300).astype(np.int64)
    index = np.repeat(np.arange(products), counts)
    cumulative = np.cumsum(probabilities[index], axis=1)
    stars = 1 + np.sum(rng.random(index.size)[:, None] > cumulative, axis=1)
    recommended = rng.random(index.size) < (stars - 0.5) / 5.0
    categories = np.arange(products) % 2
    return index, stars.astype(np.int64), recommended, categories.astype(np.int64)


def run(seed: int = 1, **options: object) -> EvaluationReport:
    index, stars, recommended, categories = synthetic_reviews(seed=0)
    return evaluate(
        index,
        stars,
        recommended,
        200,
        category_code=categories,
        fractions=(0.1, 0.3),
        splits=4,
        seed=seed,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return run()


def result(report: EvaluationReport, fraction: float, method: str) -> evaluation.MethodResult:
    (found,) = [r for r in report.methods if r.fraction == fraction and r.method == method]
    return found


def test_same_seed_gives_the_same_report(report: EvaluationReport) -> None:
    assert format_markdown(report) == format_markdown(run(seed=1))


def test_another_seed_gives_other_splits(report: EvaluationReport) -> None:
    assert format_markdown(report) != format_markdown(run(seed=2))


def test_every_method_is_reported_at_every_fraction(report: EvaluationReport) -> None:
    names = [r.method for r in report.methods if r.fraction == 0.1]
    assert (0.1, 0.3) == tuple(sorted({r.fraction for r in report.methods}))
    assert names == [r.method for r in report.methods if r.fraction == 0.3]
    assert {RAW_MEAN, AUTO, AUTO_CATEGORY, AUTO_HIERARCHY, fixed_method_name(20.0)} <= set(names)


def test_per_category_method_needs_categories() -> None:
    index, stars, recommended, _ = synthetic_reviews(seed=0)
    plain = evaluate(index, stars, recommended, 200, fractions=(0.3,), splits=2)
    assert {AUTO_CATEGORY, AUTO_HIERARCHY}.isdisjoint({r.method for r in plain.methods})
    assert math.isnan(plain.summaries[0].auto_category_ratio)
    assert math.isnan(plain.summaries[0].hierarchy_ratio)


def test_metrics_lie_in_their_ranges(report: EvaluationReport) -> None:
    for r in report.methods:
        assert math.isnan(r.rmse_mean) or 0.0 <= r.rmse_mean <= 4.0
        assert -1.0 <= r.tau_mean <= 1.0
        assert 0.0 <= r.pairwise_accuracy <= 1.0
        assert 0 < r.products <= 200


def test_lower_bounds_have_no_rmse(report: EvaluationReport) -> None:
    bounds = {evaluation.DIRICHLET_BOUND, evaluation.BETA_BOUND, evaluation.WILSON_BOUND}
    assert all(math.isnan(r.rmse_mean) for r in report.methods if r.method in bounds)


def test_raw_mean_is_worse_than_the_fitted_bayesian_average(report: EvaluationReport) -> None:
    for fraction in (0.1, 0.3):
        assert (
            result(report, fraction, RAW_MEAN).rmse_mean > result(report, fraction, AUTO).rmse_mean
        )


def test_summary_names_the_best_fixed_strength(report: EvaluationReport) -> None:
    for summary in report.summaries:
        fixed = [
            result(report, summary.fraction, fixed_method_name(m)).rmse_mean
            for m in evaluation.DEFAULT_FIXED_STRENGTHS
        ]
        assert min(fixed) == summary.best_fixed_rmse
        assert summary.auto_rmse / summary.best_fixed_rmse == pytest.approx(summary.auto_ratio)


def test_mse_ratios_divide_the_mean_squared_errors_of_the_splits(
    report: EvaluationReport,
) -> None:
    for summary in report.summaries:
        best = result(report, summary.fraction, fixed_method_name(summary.best_fixed_strength))
        tiers = result(report, summary.fraction, AUTO_HIERARCHY)
        assert tiers.mse_mean / best.mse_mean == pytest.approx(summary.hierarchy_mse_ratio)
        assert tiers.rmse_mean**2 <= tiers.mse_mean  # a mean of squares is at least the square


def test_more_kept_reviews_compare_more_products(report: EvaluationReport) -> None:
    assert result(report, 0.1, RAW_MEAN).products < result(report, 0.3, RAW_MEAN).products


def test_markdown_has_a_row_per_method_and_fraction(report: EvaluationReport) -> None:
    rows = [line for line in format_markdown(report).splitlines() if line.startswith("| ")]
    assert len(report.methods) + len(report.summaries) + 2 == len(rows)  # + 2 header rows


def test_rejects_stars_outside_one_to_five() -> None:
    with pytest.raises(ValueError, match="stars"):
        evaluate([0, 0], [3, 6], [True, False], 1)


def test_rejects_kept_fractions_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match="fractions"):
        evaluate([0, 0], [3, 4], [True, False], 1, fractions=(1.0,))


def test_weighted_rmse_of_a_small_example() -> None:
    """sqrt((3·1² + 1·0²) / 4) = sqrt(0.75)."""
    estimate = np.array([4.0, 3.0])
    truth = np.array([3.0, 3.0])
    assert math.sqrt(0.75) == pytest.approx(weighted_rmse(estimate, truth, np.array([3.0, 1.0])))


def test_pairwise_accuracy_of_the_hidden_order_is_one() -> None:
    truth = np.array([1.0, 2.0, 4.0, 3.0])
    assert 1.0 == pairwise_accuracy(truth * 10, truth, np.ones(4))


def test_pairwise_accuracy_of_the_reversed_order_is_zero() -> None:
    truth = np.array([1.0, 2.0, 4.0, 3.0])
    assert 0.0 == pairwise_accuracy(-truth, truth, np.ones(4))


def test_pairwise_accuracy_of_a_constant_estimate_is_a_half() -> None:
    assert 0.5 == pairwise_accuracy(np.zeros(3), np.array([1.0, 2.0, 3.0]), np.ones(3))


def test_pairwise_accuracy_weighs_pairs_by_gap_and_hidden_precision() -> None:
    """Pairs (a,b), (a,c), (b,c) have gaps 1, 3, 2 and weights h·h'/(h+h') = 1/2, 5/6, 5/6.
    Only (b,c) is misordered: accuracy = (1·1/2 + 3·5/6) / (1/2 + 5/2 + 10/6) = 3/4.667.
    """
    truth = np.array([1.0, 2.0, 4.0])
    estimate = np.array([1.0, 5.0, 3.0])
    expected = (0.5 + 2.5) / (0.5 + 2.5 + 5.0 / 3.0)
    assert expected == pytest.approx(pairwise_accuracy(estimate, truth, np.array([1.0, 1.0, 5.0])))


def test_kendall_tau_of_a_constant_estimate_is_undefined() -> None:
    assert math.isnan(kendall_tau(np.ones(3), np.array([1.0, 2.0, 3.0])))


def test_a_long_tail_resample_keeps_one_to_all_of_each_products_reviews() -> None:
    index = np.repeat(np.arange(200), 50)  # 200 products of 50 reviews

    keep = long_tail_resample(index, np.random.default_rng(3))

    kept = np.bincount(index[keep], minlength=200)
    assert (1, True) == (int(kept.min()), bool(kept.max() <= 50))


def test_a_long_tail_resample_leaves_most_products_one_to_three_reviews() -> None:
    index = np.repeat(np.arange(2000), 20)

    keep = long_tail_resample(index, np.random.default_rng(4))

    kept = np.bincount(index[keep], minlength=2000)
    assert 0.6 < float(np.mean(kept <= 3)) < 0.9


def test_precision_at_k_counts_the_shared_members_of_both_top_k() -> None:
    estimate = np.array([9.0, 8.0, 7.0, 1.0])
    truth = np.array([9.0, 1.0, 8.0, 7.0])

    assert 0.5 == precision_at_k(estimate, truth, 2)


def test_ndcg_of_the_true_order_is_one_and_of_a_worse_order_less() -> None:
    truth = np.array([5.0, 4.0, 3.0, 1.0])

    assert 1.0 == ndcg_at_k(truth, truth, 3)
    assert ndcg_at_k(-truth, truth, 3) < 1.0


def test_top_k_measures_of_too_few_products_are_nan() -> None:
    few = np.array([1.0, 2.0])

    assert math.isnan(precision_at_k(few, few, 3)) and math.isnan(ndcg_at_k(few, few, 3))
