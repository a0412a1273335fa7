"""Empirical-Bayes fit of the star prior (C, m) used by the Bayesian average.

Model (normal random effects): product i has a true mean μ_i with E[μ_i] = C and
Var[μ_i] = τ²; each of its n_i ratings scatters around μ_i with variance σ². Then the
posterior mean of μ_i is the Bayesian average (C·m + Σstars)/(m + n_i) with m = σ²/τ².

Method-of-moments estimates, from the (n_products, 5) histogram of 1..5 star counts
(with S_i = Σ s·count, Q_i = Σ s²·count, N = Σ n_i, k = number of rated products):

* C  = Σ S_i / N, the rating-weighted mean. It is the n_i-weighted mean of the product
  means, the weights that go with the τ² equation below; it is also what matters for the
  error per rating, where popular products count more.
* σ² = Σ (Q_i − S_i²/n_i) / Σ (n_i − 1), the pooled within-product variance.
* τ² = (Σ n_i (ȳ_i − C)² − (k − 1)·σ²) / (N − Σ n_i²/N): the n_i-weighted spread of the
  product means ȳ_i minus what sampling noise σ²/n_i alone would produce. This is the
  DerSimonian-Laird estimator with weights n_i/σ² (R. DerSimonian, N. Laird,
  "Meta-analysis in clinical trials", Controlled Clinical Trials 7, 1986).
* m  = σ²/τ², clipped to [MIN_STRENGTH, MAX_STRENGTH]; τ² ≤ 0 (no between-product spread
  detectable) gives MAX_STRENGTH, σ² = 0 (ratings without noise) gives MIN_STRENGTH.

fit_category_priors makes the same estimates within each category and shrinks them
toward the catalogue's prior (its docstring gives the rule). Counts may be fractional
(time-decayed); they are used as if they were counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

STAR_VALUES: FloatArray = np.arange(1.0, 6.0)
MIN_STRENGTH = 0.5
MAX_STRENGTH = 10_000.0


@dataclass(frozen=True)
class StarPrior:
    """Prior mean C (stars) and strength m (pseudo-ratings) of the Bayesian average."""

    mean: float
    strength: float


# Dirichlet(1, 1, 1, 1, 1) over the five star values: mean 3, worth 5 pseudo-ratings.
DEFAULT_PRIOR = StarPrior(mean=3.0, strength=5.0)


@dataclass(frozen=True)
class _Components:
    """Per-group moment estimates; nan where a quantity is not identifiable."""

    ratings: FloatArray  # N
    products: FloatArray  # k, products with at least one rating
    mean: FloatArray  # C
    within: FloatArray  # σ²
    between: FloatArray  # τ², may be negative before clipping
    within_df: FloatArray  # Σ max(n_i − 1, 0), degrees of freedom of σ²
    sum_n_squared: FloatArray  # Σ n_i², for the sampling variance of C


def check_histogram(histogram: npt.ArrayLike) -> FloatArray:
    """The (n_products, 5) star counts as floats; ValueError if they are not."""
    h = np.asarray(histogram, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != STAR_VALUES.size:
        raise ValueError(f"histogram must have shape (n_products, 5), got {h.shape}")
    if not np.all(np.isfinite(h)) or np.any(h < 0):
        raise ValueError("histogram counts must be finite and non-negative")
    return h


def check_categories(h: FloatArray, category_codes: npt.ArrayLike, n_categories: int) -> IntArray:
    """One category code per product of ``h`` (negative: none), each below n_categories;
    ValueError if not."""
    codes = np.asarray(category_codes, dtype=np.int64)
    if codes.shape != (h.shape[0],):
        raise ValueError(f"category_codes must have shape ({h.shape[0]},), got {codes.shape}")
    if n_categories < 0 or np.any(codes >= n_categories):
        raise ValueError("category codes must be below n_categories")
    return codes


def star_sums(h: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each product's Σ stars and Σ stars², column by column: h @ values goes to a BLAS
    that may spread it over threads, costing more CPU than it saves (a million products:
    about 40 ms of CPU less per fit)."""
    s = h[:, 0] * STAR_VALUES[0]
    q = h[:, 0] * STAR_VALUES[0] ** 2
    for k in range(1, STAR_VALUES.size):
        s = s + h[:, k] * STAR_VALUES[k]
        q = q + h[:, k] * STAR_VALUES[k] ** 2
    return s, q


def _components(h: FloatArray, groups: IntArray, n_groups: int) -> _Components:
    """Moment estimates of C, σ², τ² for every group at once (np.bincount over products)."""
    n = h.sum(axis=1)
    s, q = star_sums(h)
    rated = n > 0
    safe_n = np.where(rated, n, 1.0)
    own_ss = np.where(rated, np.maximum(q - s * s / safe_n, 0.0), 0.0)
    s2_over_n = np.where(rated, s * s / safe_n, 0.0)

    def total(values: FloatArray) -> FloatArray:
        return np.bincount(groups, weights=values, minlength=n_groups).astype(np.float64)

    big_n = total(n)
    big_s = total(s)
    k = total(rated.astype(np.float64))
    within_ss = total(own_ss)
    within_df = total(np.maximum(n - 1.0, 0.0))
    sum_n2 = total(n * n)
    between_ss = total(s2_over_n)

    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(big_n > 0, big_s / big_n, np.nan)
        within = np.where(within_df > 0, within_ss / within_df, np.nan)
        spread = np.maximum(between_ss - np.where(big_n > 0, big_s * big_s / big_n, 0.0), 0.0)
        denominator = big_n - np.where(big_n > 0, sum_n2 / big_n, 0.0)
        identifiable = (k >= 2) & (denominator > 1e-12 * np.maximum(big_n, 1.0))
        between = np.where(
            identifiable,
            (spread - (k - 1.0) * within) / np.where(identifiable, denominator, 1.0),
            np.nan,
        )
    return _Components(big_n, k, mean, within, between, within_df, sum_n2)


def _strength(within: FloatArray, between: FloatArray) -> FloatArray:
    """m = σ²/τ² clipped to [MIN_STRENGTH, MAX_STRENGTH]; nan stays nan."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(between > 0, within / np.where(between > 0, between, 1.0), MAX_STRENGTH)
    ratio = np.where(within <= 0, MIN_STRENGTH, ratio)
    ratio = np.where(np.isnan(within) | np.isnan(between), np.nan, ratio)
    return np.clip(ratio, MIN_STRENGTH, MAX_STRENGTH)


def fit_star_prior(histogram: npt.ArrayLike) -> StarPrior:
    """Fits (C, m) to the whole catalogue; see the module docstring.

    No ratings at all gives DEFAULT_PRIOR. When σ² or τ² is not identifiable (fewer than
    two rated products, or no product with two ratings) the mean is still fitted and the
    strength is DEFAULT_PRIOR.strength.
    """
    h = check_histogram(histogram)
    c = _components(h, np.zeros(h.shape[0], dtype=np.int64), 1)
    if not c.ratings[0] > 0:
        return DEFAULT_PRIOR
    strength = float(_strength(c.within, c.between)[0])
    if np.isnan(strength):
        strength = DEFAULT_PRIOR.strength
    return StarPrior(mean=float(c.mean[0]), strength=strength)


def fit_category_priors(
    histogram: npt.ArrayLike,
    category_codes: npt.ArrayLike,
    n_categories: int,
    global_prior: StarPrior,
    *,
    min_ratings: float = 50.0,
    min_products: float = 10.0,
) -> tuple[FloatArray, FloatArray]:
    """Per-category (means, strengths), arrays of length n_categories.

    category_codes gives each product's category in [0, n_categories); a negative code
    means "no category" and the product is left out. A category with fewer than
    min_ratings ratings or min_products rated products, or whose σ² or τ² is not
    identifiable, gets global_prior unchanged. The others are fitted like the catalogue and
    then shrunk toward global_prior:

    * mean: C_c' = C_g + κ²/(κ² + v_c)·(C_c − C_g), the posterior mean of the category mean
      when true category means spread around C_g with variance κ²; v_c = (τ_c²·Σn_i² +
      σ_c²·N_c)/N_c² is the sampling variance of C_c, and κ² is the same DerSimonian-Laird
      moment estimate one level up (over the eligible categories, weights 1/v_c; 0 when
      fewer than two are eligible, so that every mean is then C_g).
    * strength: σ_c² is pooled with the catalogue's σ² as if the latter were min_ratings
      extra within-product degrees of freedom, and τ_c² with the global τ² (= σ²/m_g) as if
      it were min_products extra products, a product with n_i ratings counting as
      (n_i/(n_i + m_g))² of one (its share of the Fisher information about τ²);
      m_c = σ_c²/τ_c² clipped as in fit_star_prior. (m_g below MIN_STRENGTH counts as
      MIN_STRENGTH here.)
    """
    h = check_histogram(histogram)
    codes = check_categories(h, category_codes, n_categories)
    if not (min_ratings >= 0 and min_products >= 0):
        raise ValueError("min_ratings and min_products must be non-negative")
    means = np.full(n_categories, global_prior.mean, dtype=np.float64)
    strengths = np.full(n_categories, global_prior.strength, dtype=np.float64)
    known = codes >= 0
    if n_categories == 0 or not np.any(known):
        return means, strengths

    cat = _components(h[known], codes[known], n_categories)
    glob = _components(h, np.zeros(h.shape[0], dtype=np.int64), 1)
    eligible = (
        (cat.ratings >= min_ratings)
        & (cat.products >= max(min_products, 2))
        & np.isfinite(cat.within)
        & np.isfinite(cat.between)
    )
    if not np.any(eligible):
        return means, strengths

    # Categories that are not eligible may divide by zero below; their values are dropped.
    with np.errstate(divide="ignore", invalid="ignore"):
        # σ_c²: pooled with the catalogue's σ² worth min_ratings within-product df.
        sigma2_g = float(glob.within[0])  # finite: an eligible category has within-product df
        sigma2 = (cat.within_df * np.nan_to_num(cat.within) + min_ratings * sigma2_g) / (
            cat.within_df + min_ratings
        )
        # τ_c²: pooled with the global τ² worth min_products fully measured products; product
        # i counts as (n_i/(n_i + m_g))² of one, the share of the Fisher information about τ²
        # that a mean of n_i ratings carries (1/(2(τ² + σ²/n_i)²) against 1/(2τ⁴)).
        strength_g = max(global_prior.strength, MIN_STRENGTH)
        n = h[known].sum(axis=1)
        reliability = (n / (n + strength_g)) ** 2
        effective = np.bincount(codes[known], weights=reliability, minlength=n_categories)
        tau2_g = sigma2_g / strength_g
        tau2 = (effective * np.nan_to_num(cat.between) + min_products * tau2_g) / (
            effective + min_products
        )
        fitted_strength = _strength(sigma2, tau2)

    # C_c: empirical-Bayes shrinkage toward C_g, κ² estimated over the eligible categories.
    safe_n = np.where(cat.ratings > 0, cat.ratings, 1.0)
    sampling_var = (np.maximum(tau2, 0.0) * cat.sum_n_squared + sigma2 * cat.ratings) / (
        safe_n * safe_n
    )
    sampling_var = np.maximum(sampling_var, 1e-12)
    kappa2 = _between_group_variance(cat.mean[eligible], sampling_var[eligible])
    weight = kappa2 / (kappa2 + sampling_var)
    fitted_mean = global_prior.mean + weight * (np.nan_to_num(cat.mean) - global_prior.mean)

    means = np.where(eligible, fitted_mean, means)
    strengths = np.where(eligible, fitted_strength, strengths)
    return means, strengths


def _between_group_variance(estimates: FloatArray, variances: FloatArray) -> float:
    """DerSimonian-Laird τ² of estimates with known sampling variances; 0 if < 2 of them."""
    if estimates.size < 2:
        return 0.0
    w = 1.0 / variances
    centre = float(np.sum(w * estimates) / np.sum(w))
    q = float(np.sum(w * (estimates - centre) ** 2))
    denominator = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    if denominator <= 0:
        return 0.0
    return max((q - (estimates.size - 1)) / denominator, 0.0)


def expand_category_priors(
    category_codes: npt.ArrayLike,
    means: npt.ArrayLike,
    strengths: npt.ArrayLike,
    global_prior: StarPrior,
) -> tuple[FloatArray, FloatArray]:
    """Per-product (prior_mean, prior_strength) arrays; negative codes, and codes the
    fitted arrays do not reach (categories that appeared since the fit), get global_prior."""
    codes = np.asarray(category_codes, dtype=np.int64)
    c = np.asarray(means, dtype=np.float64)
    m = np.asarray(strengths, dtype=np.float64)
    known = (codes >= 0) & (codes < c.size)
    index = np.where(known, codes, 0)
    if c.size == 0:
        return (
            np.full(codes.shape, global_prior.mean, dtype=np.float64),
            np.full(codes.shape, global_prior.strength, dtype=np.float64),
        )
    return (
        np.where(known, c[index], global_prior.mean),
        np.where(known, m[index], global_prior.strength),
    )
