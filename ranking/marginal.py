"""Maximum-marginal-likelihood fit of the star prior (C, m): an alternative to the
moment estimates of ranking.priors, meant for long-tailed catalogues (issue 20).

Same model as ranking.priors: product i has a true mean μ_i ~ N(C, τ²), and each of its
n_i ratings scatters around μ_i with variance σ². The ratings' likelihood splits into
the spread within products (σ² only: W = Σ Σ (s − ȳ_i)² on D = Σ (n_i − 1) degrees of
freedom) and the product means, ȳ_i ~ N(C, τ² + σ²/n_i) = N(C, σ²·u_i) with
u_i = 1/m + 1/n_i and m = σ²/τ². For a given m, the maximum over C is the weighted mean
Σ ȳ_i/u_i / Σ 1/u_i and over σ² it is (W + Q(m))/(D + K) with Q(m) = Σ (ȳ_i − C)²/u_i
and K the number of rated products; what is left is one function of m,

    ℓ(m) = −½ [(D + K)·log σ²(m) + Σ log u_i],

maximised over log m in [log MIN_STRENGTH, log MAX_STRENGTH] by a bounded scalar search.
Every product counts by its own noise: a product with one rating says little about C
and τ², where the moment estimate weights the product means by n_i and lets the few
popular products decide. Products with the same n_i are summed first
(ranking.rating_groups), so that a refit costs in the number of distinct counts, not of
products, and a service can keep those sums as products change.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar

from reviewrank.ranking.priors import DEFAULT_PRIOR, MAX_STRENGTH, MIN_STRENGTH, StarPrior
from reviewrank.ranking.rating_groups import RatingGroups, rating_groups

FloatArray = npt.NDArray[np.float64]


def fit_marginal_prior(histogram: npt.ArrayLike) -> StarPrior:
    """(C, m) maximising the marginal likelihood of the ratings of an (n_products, 5)
    histogram of 1..5 star counts (see fit_marginal_groups)."""
    return fit_marginal_groups(rating_groups(histogram))


def fit_marginal_groups(groups: RatingGroups) -> StarPrior:
    """(C, m) maximising the marginal likelihood of the ratings summed in ``groups`` (see
    the module docstring). No ratings gives DEFAULT_PRIOR; with no product rated twice (σ²
    not identifiable) or fewer than two rated products, C is the mean rating and m the
    default strength."""
    counts, products = groups.counts, groups.products
    if not counts.size:
        return DEFAULT_PRIOR
    # Per group: Σ ȳ_i = Σ S_i / n and Σ ȳ_i² = Σ S_i² / n²; W = Σ Q_i − Σ S_i²/n_i.
    sum_mean = groups.star_sum / counts
    sum_mean2 = groups.star_sum_squared / (counts * counts)
    within = groups.square_sum - float((groups.star_sum_squared / counts).sum())
    # (Rounding of the sums, when every product's ratings are all alike, is no spread.)
    within = within if within > 1e-12 * groups.square_sum else 0.0
    within_df = float(((counts - 1.0) * products).sum())
    total = float(products.sum())
    if total < 2 or within_df <= 0 or within <= 0:
        return StarPrior(
            float(groups.star_sum.sum() / (counts * products).sum()), DEFAULT_PRIOR.strength
        )

    def weighted_mean(m: float) -> tuple[FloatArray, float]:
        u = 1.0 / m + 1.0 / counts
        weight = 1.0 / u
        return u, float((weight * sum_mean).sum() / (weight * products).sum())

    def minus_log_likelihood(log_m: float) -> float:
        u, c = weighted_mean(float(np.exp(log_m)))
        spread = float(((sum_mean2 - 2.0 * c * sum_mean + products * c * c) / u).sum())
        sigma2 = (within + max(spread, 0.0)) / (within_df + total)
        return 0.5 * (
            (within_df + total) * float(np.log(sigma2)) + float((products * np.log(u)).sum())
        )

    best = minimize_scalar(
        minus_log_likelihood,
        bounds=(np.log(MIN_STRENGTH), np.log(MAX_STRENGTH)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    strength = float(np.exp(best.x))
    return StarPrior(weighted_mean(strength)[1], strength)
