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
popular products decide. Products with the same n_i are summed first, so that a
refit costs in the number of distinct counts, not of products.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar

from reviewrank.ranking.priors import (
    DEFAULT_PRIOR,
    MAX_STRENGTH,
    MIN_STRENGTH,
    StarPrior,
    check_histogram,
    star_sums,
)

FloatArray = npt.NDArray[np.float64]


def fit_marginal_prior(histogram: npt.ArrayLike) -> StarPrior:
    """(C, m) maximising the marginal likelihood of the ratings (see the module
    docstring). No ratings gives DEFAULT_PRIOR; with no product rated twice (σ² not
    identifiable) or fewer than two rated products, C is the mean rating and m the
    default strength."""
    h = check_histogram(histogram)
    n = h.sum(axis=1)
    rated = n > 0
    n, h = n[rated], h[rated]
    if not n.size:
        return DEFAULT_PRIOR
    s, q = star_sums(h)
    mean = s / n
    within = float(np.maximum(q - s * mean, 0.0).sum())
    within_df = float(np.maximum(n - 1.0, 0.0).sum())
    if n.size < 2 or within_df <= 0 or within <= 0:
        return StarPrior(float(s.sum() / n.sum()), DEFAULT_PRIOR.strength)
    counts, position = _groups(n)
    products = np.bincount(position).astype(np.float64)
    sum_mean = np.bincount(position, weights=mean)
    sum_mean2 = np.bincount(position, weights=mean * mean)
    keep = products > 0
    counts, products, sum_mean, sum_mean2 = (
        counts[keep],
        products[keep],
        sum_mean[keep],
        sum_mean2[keep],
    )
    total = float(products.sum())

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


def _groups(n: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The distinct counts (some may have no product: dropped by the caller) and each
    product's group. Whole counts below a million are grouped by bincount (linear); others
    (time-decayed counts are fractional) by sorting."""
    whole = n.astype(np.int64)
    if np.array_equal(whole, n) and int(whole.max()) < 1_000_000:
        return np.arange(int(whole.max()) + 1, dtype=np.float64), whole
    counts, position = np.unique(n, return_inverse=True)
    return counts, position.astype(np.int64)
