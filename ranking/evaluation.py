"""Offline evaluation of the star and like estimators on held-out reviews.

For each kept fraction f and each of `splits` random splits (numpy Generator from `seed`),
a random f of all reviews is kept and the rest hidden. Every method estimates each
product from its kept reviews only, and is compared with the same product's hidden
reviews, over the products that have at least one kept and one hidden review:

* star methods (raw mean, Bayesian averages, Dirichlet mean and bound) against the hidden
  mean stars; like methods (raw share, Beta posterior, Wilson) against the hidden
  recommend rate, the quantity they estimate;
* RMSE = sqrt(Σ h_i (e_i − y_i)² / Σ h_i), h_i the product's number of hidden reviews, i.e.
  the error per future review. It is left out (nan) for lower bounds, which are
  deliberately pessimistic rankings rather than estimates;
* Kendall's τ_b (scipy.stats.kendalltau) between estimates and hidden values, every
  product counting once: the plain reference. With one or two hidden reviews a hidden
  mean is mostly noise, and since stars are skewed toward 5 the sign of a difference of
  noisy means favours unshrunk extremes, so τ_b (like any sign-only score) is biased
  against shrinkage;
* weighted pairwise accuracy, which is not: 1/2 + 1/2·Σ w_ij·sgn(e_i − e_j)·(y_i − y_j) /
  Σ w_ij·|y_i − y_j| over product pairs, y the hidden values and w_ij = h_i·h_j/(h_i + h_j)
  the precision of the hidden comparison (Var(y_i − y_j) ∝ 1/h_i + 1/h_j). It is the share
  of pairs ordered like the hidden values, each pair weighted by w_ij and by its hidden gap
  |y_i − y_j| (ties of the estimate count one half); being linear in y, its expectation
  ranks orderings by the true means. 0.5 is chance, 1 the hidden order.

The fixed-strength Bayesian averages use the kept catalogue's mean rating as C; the
fitted priors are the service's estimators on the kept reviews: `auto` (moments,
ranking.priors.fit_star_prior), `auto per category` (moments per category,
fit_category_priors), `auto, marginal likelihood` (ranking.marginal) and `auto per
category, marginal likelihood` (ranking.hierarchy, the shipped profiles' prior). Each
summary compares them with the fixed m whose mean RMSE over the splits is lowest ("best
in hindsight"), as ratios of RMSE and of mean squared error (MSE, the mean over the
splits of the squared RMSE).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.beta import beta_lower_bound, beta_posterior_mean
from reviewrank.ranking.hierarchy import fit_hierarchical_prior
from reviewrank.ranking.like_prior import fit_like_prior
from reviewrank.ranking.marginal import fit_marginal_prior
from reviewrank.ranking.priors import expand_category_priors, fit_category_priors, fit_star_prior
from reviewrank.ranking.quality import (
    Pairs,
    kendall_tau,
    ndcg_at_k,
    precision_at_k,
    weighted_rmse,
)
from reviewrank.ranking.scores import bayesian_average, mean_stars, wilson_lower_bound
from reviewrank.ranking.stars import dirichlet_star_bound, dirichlet_star_mean

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_FRACTIONS: tuple[float, ...] = (0.05, 0.10, 0.30)
DEFAULT_FIXED_STRENGTHS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
DEFAULT_SPLITS = 50
TOP_K = 20
TOP_HIDDEN = 10  # hidden reviews a product needs to count in the top-k measures

TARGET_STARS = "stars"
TARGET_LIKES = "recommend rate"

RAW_MEAN = "raw mean"
AUTO = "auto"
AUTO_CATEGORY = "auto per category"
AUTO_MARGINAL = "auto, marginal likelihood"
AUTO_HIERARCHY = "auto per category, marginal likelihood"
DIRICHLET_MEAN = "Dirichlet mean (α=1)"
DIRICHLET_BOUND = "Dirichlet lower bound"
RAW_SHARE = "raw like share"
BETA_MEAN = "Beta(1,1) mean"
BETA_BOUND = "Beta(1,1) lower bound"
WILSON_BOUND = "Wilson lower bound"
FITTED_BETA_MEAN = "fitted Beta mean"
FITTED_BETA_BOUND = "fitted Beta lower bound"


def fixed_method_name(strength: float) -> str:
    """Name of the Bayesian average with fixed strength m, e.g. 'bayes m=10'."""
    return f"bayes m={strength:g}"


@dataclass(frozen=True)
class MethodResult:
    """One method at one kept fraction, aggregated over the splits."""

    fraction: float
    method: str
    target: str  # TARGET_STARS or TARGET_LIKES
    strength: float  # the fixed m, the median fitted m for AUTO, nan otherwise
    rmse_mean: float  # nan for lower bounds
    rmse_std: float
    tau_mean: float
    pairwise_accuracy: float
    products: float  # mean number of compared products per split
    # Top-k ordering over the products with at least TOP_HIDDEN hidden reviews (nan where
    # a split has fewer than TOP_K of them).
    precision_at_k: float = math.nan
    ndcg_at_k: float = math.nan
    mse_mean: float = math.nan  # mean over the splits of the squared RMSE


@dataclass(frozen=True)
class FractionSummary:
    """The fitted priors against the best fixed strength in hindsight at one fraction."""

    fraction: float
    best_fixed_strength: float
    best_fixed_rmse: float
    auto_rmse: float
    auto_ratio: float  # auto RMSE / best fixed RMSE
    auto_category_ratio: float  # nan without categories
    raw_mean_ratio: float
    auto_strength_median: float
    auto_strength_quartiles: tuple[float, float]
    marginal_ratio: float = math.nan  # marginal-likelihood prior RMSE / best fixed RMSE
    marginal_strength_median: float = math.nan
    hierarchy_ratio: float = math.nan  # hierarchical prior RMSE / best fixed; nan w/o categories
    marginal_mse_ratio: float = math.nan  # the same as ratios of MSE
    hierarchy_mse_ratio: float = math.nan


@dataclass(frozen=True)
class EvaluationReport:
    methods: tuple[MethodResult, ...]
    summaries: tuple[FractionSummary, ...]
    splits: int
    seed: int
    reviews: int
    products: int
    time_ordered: bool = False  # one split per fraction, the first reviews by time kept


@dataclass(frozen=True)
class ReviewCounts:
    """Reviews summed per product: the star histogram, likes (recommendations), count and
    sum of stars; each review counting its weight when weighed."""

    histogram: FloatArray  # (n_products, 5)
    likes: FloatArray
    count: FloatArray
    star_sum: FloatArray


def review_counts(
    product_index: IntArray,
    stars: IntArray,
    recommended: BoolArray,
    n_products: int,
    weights: FloatArray | None = None,
) -> ReviewCounts:
    cells = np.bincount(product_index * 5 + (stars - 1), weights, minlength=n_products * 5)
    histogram = cells.reshape(n_products, 5).astype(np.float64)
    liked = recommended.astype(np.float64) if weights is None else weights * recommended
    likes = np.bincount(product_index, weights=liked, minlength=n_products)
    count = histogram.sum(axis=1)
    star_sum = histogram @ np.arange(1.0, 6.0)
    return ReviewCounts(histogram, likes.astype(np.float64), count, star_sum)


def _check_inputs(
    product_index: npt.ArrayLike,
    stars: npt.ArrayLike,
    recommended: npt.ArrayLike,
    n_products: int,
    category_code: npt.ArrayLike | None,
) -> tuple[IntArray, IntArray, BoolArray, IntArray | None]:
    index = np.asarray(product_index, dtype=np.int64)
    star = np.asarray(stars, dtype=np.int64)
    liked = np.asarray(recommended, dtype=np.bool_)
    if not index.shape == star.shape == liked.shape or index.ndim != 1:
        raise ValueError("product_index, stars and recommended must be 1-d and of equal length")
    if index.size and (index.min() < 0 or index.max() >= n_products):
        raise ValueError("product_index must be in [0, n_products)")
    if star.size and (star.min() < 1 or star.max() > 5):
        raise ValueError("stars must be in 1..5")
    codes = None
    if category_code is not None:
        codes = np.asarray(category_code, dtype=np.int64)
        if codes.shape != (n_products,):
            raise ValueError(f"category_code must have shape ({n_products},), got {codes.shape}")
    return index, star, liked, codes


def evaluate(
    product_index: npt.ArrayLike,
    stars: npt.ArrayLike,
    recommended: npt.ArrayLike,
    n_products: int,
    *,
    category_code: npt.ArrayLike | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    splits: int = DEFAULT_SPLITS,
    seed: int = 0,
    fixed_strengths: Sequence[float] = DEFAULT_FIXED_STRENGTHS,
    confidence: float = 0.95,
    times: npt.ArrayLike | None = None,
) -> EvaluationReport:
    """Runs the held-out evaluation; one review per element of the first three arrays.

    category_code, if given, holds one code per product (negative: no category) and adds
    the `auto per category` method. With ``times`` (one per review) the split is
    time-ordered instead of random: the first f of the reviews by time are kept and the
    rest hidden, one split per fraction (``splits`` must be 1).
    """
    index, star, liked, codes = _check_inputs(
        product_index, stars, recommended, n_products, category_code
    )
    if splits < 1:
        raise ValueError(f"splits must be at least 1, got {splits}")
    by_time = None
    if times is not None:
        moments = np.asarray(times, dtype=np.float64)
        if moments.shape != index.shape:
            raise ValueError("times must hold one time per review")
        if splits != 1:
            raise ValueError("a time-ordered split is one split per fraction: splits must be 1")
        by_time = np.argsort(moments, kind="stable")
    if not fractions or not all(0.0 < f < 1.0 for f in fractions):
        raise ValueError(f"fractions must be in (0, 1), got {fractions!r}")
    if not fixed_strengths or not all(m >= 0 for m in fixed_strengths):
        raise ValueError(f"fixed_strengths must be non-negative, got {fixed_strengths!r}")
    n_categories = int(codes.max()) + 1 if codes is not None and codes.size else 0
    rng = np.random.default_rng(seed)
    total = index.size

    methods: list[MethodResult] = []
    summaries: list[FractionSummary] = []
    for fraction in fractions:
        rmse: defaultdict[str, list[float]] = defaultdict(list)
        tau: defaultdict[str, list[float]] = defaultdict(list)
        accuracy: defaultdict[str, list[float]] = defaultdict(list)
        precision: defaultdict[str, list[float]] = defaultdict(list)
        ndcg: defaultdict[str, list[float]] = defaultdict(list)
        products: list[float] = []
        auto_strengths: list[float] = []
        marginal_strengths: list[float] = []
        order: list[tuple[str, str]] = []
        for _ in range(splits):
            kept_mask = np.zeros(total, dtype=np.bool_)
            chosen = rng.permutation(total) if by_time is None else by_time
            kept_mask[chosen[: round(fraction * total)]] = True
            hidden_mask = ~kept_mask
            kept = review_counts(index[kept_mask], star[kept_mask], liked[kept_mask], n_products)
            hidden = review_counts(
                index[hidden_mask], star[hidden_mask], liked[hidden_mask], n_products
            )
            compared = (kept.count > 0) & (hidden.count > 0)
            products.append(float(np.sum(compared)))
            weight = hidden.count[compared]
            hidden_stars = hidden.star_sum[compared] / weight
            hidden_rate = hidden.likes[compared] / weight

            estimates, fitted, marginal = _estimates(
                kept, codes, n_categories, fixed_strengths, confidence
            )
            auto_strengths.append(fitted)
            marginal_strengths.append(marginal)
            if not order:
                order = [(name, target) for name, (target, _, _) in estimates.items()]
            pairs = {
                TARGET_STARS: Pairs(hidden_stars, weight),
                TARGET_LIKES: Pairs(hidden_rate, weight),
            }
            well_known = weight >= TOP_HIDDEN
            for name, (target, values, is_bound) in estimates.items():
                truth = hidden_stars if target == TARGET_STARS else hidden_rate
                mine = values[compared]
                rmse[name].append(math.nan if is_bound else weighted_rmse(mine, truth, weight))
                tau[name].append(kendall_tau(mine, truth))
                accuracy[name].append(pairs[target].accuracy(mine))
                precision[name].append(precision_at_k(mine[well_known], truth[well_known], TOP_K))
                ndcg[name].append(ndcg_at_k(mine[well_known], truth[well_known], TOP_K))

        fixed = {fixed_method_name(m): m for m in fixed_strengths}
        for name, target in order:
            errors = np.asarray(rmse[name])
            if name in fixed:
                strength = float(fixed[name])
            elif name == AUTO:
                strength = float(np.median(auto_strengths))
            elif name == AUTO_MARGINAL:
                strength = float(np.median(marginal_strengths))
            else:
                strength = math.nan
            methods.append(
                MethodResult(
                    fraction=fraction,
                    method=name,
                    target=target,
                    strength=strength,
                    rmse_mean=float(np.mean(errors)),
                    rmse_std=float(np.std(errors, ddof=1)) if errors.size > 1 else 0.0,
                    tau_mean=_nanmean(tau[name]),
                    pairwise_accuracy=_nanmean(accuracy[name]),
                    products=float(np.mean(products)),
                    precision_at_k=_nanmean(precision[name]),
                    ndcg_at_k=_nanmean(ndcg[name]),
                    mse_mean=float(np.mean(errors * errors)),
                )
            )
        summaries.append(_summary(fraction, methods, fixed, auto_strengths))
        summaries[-1] = _with_marginal(summaries[-1], methods, marginal_strengths)
    return EvaluationReport(
        methods=tuple(methods),
        summaries=tuple(summaries),
        splits=splits,
        seed=seed,
        reviews=total,
        products=n_products,
        time_ordered=by_time is not None,
    )


def _nanmean(values: Sequence[float]) -> float:
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    return float(np.mean(finite)) if finite.size else math.nan


def _estimates(
    kept: ReviewCounts,
    codes: IntArray | None,
    n_categories: int,
    fixed_strengths: Sequence[float],
    confidence: float,
) -> tuple[dict[str, tuple[str, FloatArray, bool]], float, float]:
    """Every method's per-product values: name -> (target, values, is a lower bound); and
    the strengths the two fitted global priors chose."""
    stars, likes = TARGET_STARS, TARGET_LIKES
    dislikes = kept.count - kept.likes
    catalogue_mean = float(np.sum(kept.star_sum) / max(float(np.sum(kept.count)), 1.0))
    out: dict[str, tuple[str, FloatArray, bool]] = {
        RAW_MEAN: (stars, mean_stars(kept.star_sum, kept.count), False)
    }
    for strength in fixed_strengths:
        out[fixed_method_name(strength)] = (
            stars,
            bayesian_average(kept.star_sum, kept.count, catalogue_mean, strength),
            False,
        )
    prior = fit_star_prior(kept.histogram)
    out[AUTO] = (
        stars,
        bayesian_average(kept.star_sum, kept.count, prior.mean, prior.strength),
        False,
    )
    marginal = fit_marginal_prior(kept.histogram)
    out[AUTO_MARGINAL] = (
        stars,
        bayesian_average(kept.star_sum, kept.count, marginal.mean, marginal.strength),
        False,
    )
    if codes is not None:
        means, strengths = fit_category_priors(kept.histogram, codes, n_categories, prior)
        c, m = expand_category_priors(codes, means, strengths, prior)
        out[AUTO_CATEGORY] = (stars, bayesian_average(kept.star_sum, kept.count, c, m), False)
        tiers = fit_hierarchical_prior(kept.histogram, codes, n_categories)
        c, m = expand_category_priors(codes, tiers.means, tiers.strengths, tiers.catalogue)
        out[AUTO_HIERARCHY] = (stars, bayesian_average(kept.star_sum, kept.count, c, m), False)
    out[DIRICHLET_MEAN] = (stars, dirichlet_star_mean(kept.histogram), False)
    out[DIRICHLET_BOUND] = (stars, dirichlet_star_bound(kept.histogram, confidence), True)
    out[RAW_SHARE] = (likes, mean_stars(kept.likes, kept.count), False)
    out[BETA_MEAN] = (likes, beta_posterior_mean(kept.likes, dislikes), False)
    out[BETA_BOUND] = (likes, beta_lower_bound(kept.likes, dislikes, confidence), True)
    out[WILSON_BOUND] = (likes, wilson_lower_bound(kept.likes, kept.count, confidence), True)
    fitted = fit_like_prior(kept.likes, dislikes)
    a, b = fitted.alpha, fitted.beta
    out[FITTED_BETA_MEAN] = (likes, beta_posterior_mean(kept.likes, dislikes, a, b), False)
    out[FITTED_BETA_BOUND] = (
        likes,
        beta_lower_bound(kept.likes, dislikes, confidence, a, b),
        True,
    )
    return out, prior.strength, marginal.strength


def _summary(
    fraction: float,
    methods: Sequence[MethodResult],
    fixed: dict[str, float],
    auto_strengths: Sequence[float],
) -> FractionSummary:
    here = {r.method: r for r in methods if r.fraction == fraction}
    best = min((here[name] for name in fixed), key=lambda r: r.rmse_mean)
    auto = here[AUTO]
    category = here.get(AUTO_CATEGORY)
    q1, median, q3 = (float(v) for v in np.percentile(auto_strengths, [25, 50, 75]))
    return FractionSummary(
        fraction=fraction,
        best_fixed_strength=best.strength,
        best_fixed_rmse=best.rmse_mean,
        auto_rmse=auto.rmse_mean,
        auto_ratio=auto.rmse_mean / best.rmse_mean,
        auto_category_ratio=(
            category.rmse_mean / best.rmse_mean if category is not None else math.nan
        ),
        raw_mean_ratio=here[RAW_MEAN].rmse_mean / best.rmse_mean,
        auto_strength_median=median,
        auto_strength_quartiles=(q1, q3),
    )


def _with_marginal(
    summary: FractionSummary, methods: Sequence[MethodResult], strengths: Sequence[float]
) -> FractionSummary:
    here = {r.method: r for r in methods if r.fraction == summary.fraction}
    best = here[fixed_method_name(summary.best_fixed_strength)]
    tiers = here.get(AUTO_HIERARCHY)
    return dataclasses.replace(
        summary,
        marginal_ratio=here[AUTO_MARGINAL].rmse_mean / summary.best_fixed_rmse,
        marginal_strength_median=float(np.median(strengths)),
        hierarchy_ratio=math.nan if tiers is None else tiers.rmse_mean / best.rmse_mean,
        marginal_mse_ratio=here[AUTO_MARGINAL].mse_mean / best.mse_mean,
        hierarchy_mse_ratio=math.nan if tiers is None else tiers.mse_mean / best.mse_mean,
    )


def _number(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def format_markdown(report: EvaluationReport) -> str:
    """The per-method table and the per-fraction summary as GitHub markdown."""
    splits = (
        "the first reviews by time kept (one time-ordered split per kept fraction)"
        if report.time_ordered
        else f"{report.splits} random splits per kept fraction (seed {report.seed})"
    )
    lines = [
        f"Held-out evaluation: {report.reviews} reviews of {report.products} products, "
        f"{splits}; "
        f"P@{TOP_K} and NDCG@{TOP_K} over the products with at least {TOP_HIDDEN} hidden "
        "reviews (– where a split has too few).",
        "",
        "| kept | method | target | weighted RMSE (mean ± sd) | Kendall τ_b "
        f"| weighted pairwise accuracy | P@{TOP_K} | NDCG@{TOP_K} | products |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.methods:
        error = "–" if math.isnan(r.rmse_mean) else f"{r.rmse_mean:.4f} ± {r.rmse_std:.4f}"
        method = (
            f"{r.method} (median m={r.strength:.1f})"
            if r.method in (AUTO, AUTO_MARGINAL)
            else r.method
        )
        lines.append(
            f"| {r.fraction:.0%} | {method} | {r.target} | {error} | "
            f"{_number(r.tau_mean, 3)} | {_number(r.pairwise_accuracy, 3)} | "
            f"{_number(r.precision_at_k, 3)} | {_number(r.ndcg_at_k, 3)} | {r.products:.0f} |"
        )
    lines += [
        "",
        "RMSE of each fitted prior / that of the best fixed m in hindsight (in brackets: the "
        "same as a ratio of MSE):",
        "",
        "| kept | best fixed m | its RMSE | auto RMSE | auto / best | auto per category / best "
        "| marginal / best | marginal per category / best | raw mean / best "
        "| auto m: median (IQR) | marginal m: median |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.summaries:
        q1, q3 = s.auto_strength_quartiles
        lines.append(
            f"| {s.fraction:.0%} | {s.best_fixed_strength:g} | {s.best_fixed_rmse:.4f} | "
            f"{s.auto_rmse:.4f} | {s.auto_ratio:.3f} | {_number(s.auto_category_ratio, 3)} | "
            f"{_number(s.marginal_ratio, 3)} ({_number(s.marginal_mse_ratio, 3)}) | "
            f"{_number(s.hierarchy_ratio, 3)} ({_number(s.hierarchy_mse_ratio, 3)}) | "
            f"{s.raw_mean_ratio:.3f} | "
            f"{s.auto_strength_median:.1f} ({q1:.1f}–{q3:.1f}) | "
            f"{_number(s.marginal_strength_median, 1)} |"
        )
    return "\n".join(lines) + "\n"
