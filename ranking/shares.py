"""Share rate per product: time-decayed shares over time-decayed exposure, shrunk by a
Gamma–Poisson prior fitted from the catalogue (issue 22).

Model: product i is shared at an unknown rate λ_i (shares per day), λ_i ~ Gamma(α, β)
(shape α, rate β: prior mean α/β), and over an exposure of e_i days it collects
k_i ~ Poisson(λ_i·e_i) shares. The posterior mean of the rate is

    r_i = (α + k_i) / (β + e_i),

so one share of a product listed yesterday (k = 1, e = 1) is worth little next to
steady sharing (k = 20 over e = 30) unless the catalogue's rates really are that
spread out, which is what α and β measure.

Recency: each share counts 0.5^(age/h) for a half-life h (ranking.decay), and the
exposure counts the days the product was listed the same way,
e_i = ∫ 0.5^((now − t)/h) dt from its listing to now = (h/ln 2)·(1 − 0.5^(age_i/h));
without a half-life it is the days listed. Decayed counts are not Poisson counts; the
same formulas serve as a quasi-likelihood, as for time-decayed stars.

Fit: α and β maximise the marginal likelihood of the counts, a negative binomial per
product (the Gamma integrated out),

    log p(k_i) = lnΓ(α + k_i) − lnΓ(α) − lnΓ(k_i + 1) + α·ln β − (α + k_i)·ln(β + e_i)
                 + k_i·ln e_i,

over log α and log β, started from the moment estimates (pooled rate k̄ = Σk/Σe, and
the spread of the raw rates beyond what Poisson noise explains, weighted by exposure
as in DerSimonian–Laird). Where the rates show no spread beyond Poisson noise α grows
to MAX_SHAPE and every product gets about the pooled rate. References: M. Greenwood,
G. U. Yule, J. R. Stat. Soc. 83 (1920) for the Gamma–Poisson mixture; W. DuMouchel,
"Bayesian data mining in large frequency tables", Am. Stat. 53 (1999), for its
empirical-Bayes use on counts with exposures.

The score the blend uses is conservative, as the Wilson bound is for likes: q_i, the
(1 − confidence)/2 quantile of the posterior Gamma(α + k_i, β + e_i), by the
Wilson–Hilferty cube-root approximation (E. B. Wilson, M. M. Hilferty, PNAS 17, 1931),

    q_i = a·(1 − 1/(9a) − z/(3√a))³ / b,  a = α + k_i, b = β + e_i, z = Φ⁻¹(1 − (1 − c)/2),

(0 where the bracket is negative), scored q_i / (q_i + R): R the reference rate, the
mean posterior rate of the products shared at all (reference_rate). A first share is
thin evidence and scores little; 0.5 means as well shared, beyond doubt, as a typical
shared product. The prior mean α/β would not do as R: where few products are shared it
is tiny, and any share then scored near 1 (one share put an unreviewed product sixth of
1,207 in a run of the demo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import gammaln

FloatArray = npt.NDArray[np.float64]

MIN_SHAPE, MAX_SHAPE = 1e-3, 1e4
MIN_RATE, MAX_RATE = 1e-6, 1e12  # β, days
# The fitted prior weighs at least a week of listing (β ≥ 7 days): a product's own shares
# outweigh the catalogue's rate only after a week. A product first seen through a share
# holds that share at an exposure of about nothing, and a young shop's few products fitted
# β of hours: one share of a product seen a minute ago then beat 20 shares over a month
# (tests/ranking/test_shares.py). Simulated catalogues with β of 30 days or more are
# fitted as before.
MIN_FITTED_RATE_DAYS = 7.0
# Fewer (decayed) shares than this in the whole catalogue count as none: shares many
# half-lives old say nothing about rates.
NEGLIGIBLE_SHARES = 1e-6
MIN_EXPOSURE_DAYS = 1.0 / 24.0  # an hour: a product listed a minute ago has no rate yet
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class ShareRatePrior:
    """Gamma(shape, rate) prior of the share rate (shares per day)."""

    shape: float  # α
    rate: float  # β, in days
    # The rate that scores 0.5 (reference_rate of the catalogue it serves); None: α/β.
    reference: float | None = None

    @property
    def mean(self) -> float:
        """The prior mean rate α/β (shares per day)."""
        return self.shape / self.rate

    @property
    def reference_rate(self) -> float:
        return self.mean if self.reference is None else self.reference

    def __post_init__(self) -> None:
        if not (self.shape > 0 and self.rate > 0 and math.isfinite(self.shape / self.rate)):
            raise ValueError(f"shape and rate must be positive and finite, got {self}")
        if self.reference is not None and not (
            self.reference > 0 and math.isfinite(self.reference)
        ):
            raise ValueError(f"the reference rate must be positive and finite, got {self}")


# No shares seen anywhere yet: a weak prior of one share in about 100 days.
DEFAULT_SHARE_PRIOR = ShareRatePrior(shape=0.5, rate=50.0)


def exposure_days(
    listed_seconds: npt.ArrayLike, now_seconds: float, half_life_seconds: float | None
) -> FloatArray:
    """Days each product has been listed up to ``now``, each day weighted 0.5^(age/h)
    when a half-life h is given; at least MIN_EXPOSURE_DAYS."""
    age = np.maximum(now_seconds - np.asarray(listed_seconds, dtype=np.float64), 0.0)
    if half_life_seconds is None:
        days = age / SECONDS_PER_DAY
    else:
        if not half_life_seconds > 0:
            raise ValueError(f"half-life must be positive, got {half_life_seconds!r}")
        days = (
            half_life_seconds / math.log(2.0) * -np.expm1(-age * math.log(2.0) / half_life_seconds)
        )
        days = days / SECONDS_PER_DAY
    exposure: FloatArray = np.maximum(days, MIN_EXPOSURE_DAYS)
    return exposure


def _check(counts: npt.ArrayLike, exposures: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    k = np.asarray(counts, dtype=np.float64)
    e = np.asarray(exposures, dtype=np.float64)
    if k.shape != e.shape or k.ndim != 1:
        raise ValueError(f"counts and exposures must be 1-D of one shape, got {k.shape}, {e.shape}")
    if not (np.all(np.isfinite(k)) and np.all(k >= 0)):
        raise ValueError("share counts must be finite and non-negative")
    if not (np.all(np.isfinite(e)) and np.all(e > 0)):
        raise ValueError("exposures must be finite and positive")
    return k, e


def moment_prior(counts: npt.ArrayLike, exposures: npt.ArrayLike) -> ShareRatePrior:
    """Moment estimates: the pooled rate, and the exposure-weighted spread of the raw
    rates k/e beyond their Poisson noise (the start of fit_share_prior)."""
    k, e = _check(counts, exposures)
    total_k, total_e = float(k.sum()), float(e.sum())
    if total_k <= NEGLIGIBLE_SHARES or k.size == 0:
        return DEFAULT_SHARE_PRIOR
    pooled = total_k / total_e
    spread = float((e * (k / e - pooled) ** 2).sum())
    denominator = total_e - float((e * e).sum()) / total_e
    variance = (spread - (k.size - 1) * pooled) / denominator if denominator > 0 else 0.0
    shape = pooled * pooled / variance if variance > 0 else MAX_SHAPE
    shape = float(np.clip(shape, MIN_SHAPE, MAX_SHAPE))
    return ShareRatePrior(shape, float(np.clip(shape / pooled, MIN_RATE, MAX_RATE)))


def log_marginal(prior: ShareRatePrior, counts: npt.ArrayLike, exposures: npt.ArrayLike) -> float:
    """Σ log p(k_i | α, β, e_i) of the negative binomial (the constant terms included)."""
    k, e = _check(counts, exposures)
    return float(_log_marginal(math.log(prior.shape), math.log(prior.rate), k, e)) + float(
        (-gammaln(k + 1.0) + np.where(k > 0, k * np.log(e), 0.0)).sum()
    )


def _log_marginal(log_shape: float, log_rate: float, k: FloatArray, e: FloatArray) -> float:
    """The terms of the log marginal likelihood that depend on α and β."""
    shape, rate = math.exp(log_shape), math.exp(log_rate)
    return float(
        (gammaln(shape + k) - gammaln(shape)).sum()
        + k.size * shape * log_rate
        - ((shape + k) * np.log(rate + e)).sum()
    )


def fit_share_prior(counts: npt.ArrayLike, exposures: npt.ArrayLike) -> ShareRatePrior:
    """(α, β) maximising the negative-binomial marginal likelihood of the products'
    (decayed) share counts over their exposures, in days, with β at least
    MIN_FITTED_RATE_DAYS, and the reference rate of these products. No share anywhere
    gives DEFAULT_SHARE_PRIOR."""
    k, e = _check(counts, exposures)
    if k.size == 0 or float(k.sum()) <= NEGLIGIBLE_SHARES:
        return DEFAULT_SHARE_PRIOR
    start = moment_prior(k, e)
    pooled = float(k.sum() / e.sum())

    def loss(x: FloatArray) -> float:
        return -_log_marginal(float(x[0]), float(x[1]), k, e)

    low, high = math.log(MIN_SHAPE), math.log(MAX_SHAPE)
    log_pooled = math.log(pooled)
    rate_low = max(low - log_pooled - 5.0, math.log(MIN_FITTED_RATE_DAYS))
    rate_high = min(high - log_pooled + 5.0, math.log(MAX_RATE))
    bounds = [(low, high), (min(rate_low, rate_high), rate_high)]
    x0 = np.array([math.log(start.shape), math.log(start.rate)])
    x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
    found = minimize(loss, x0, method="L-BFGS-B", bounds=bounds)
    best = found.x if found.fun <= loss(x0) else x0
    # (exp(log 7) is 6.999…: the floor is kept exactly)
    rate = max(math.exp(best[1]), min(MIN_FITTED_RATE_DAYS, math.exp(rate_high)))
    return with_reference(ShareRatePrior(float(math.exp(best[0])), float(rate)), k, e)


def shrunk_rate(
    counts: npt.ArrayLike, exposures: npt.ArrayLike, prior: ShareRatePrior
) -> FloatArray:
    """The posterior mean share rate (α + k)/(β + e) per product (shares per day)."""
    k, e = _check(counts, exposures)
    rate: FloatArray = (prior.shape + k) / (prior.rate + e)
    return rate


def rate_lower_bound(
    counts: npt.ArrayLike, exposures: npt.ArrayLike, prior: ShareRatePrior, confidence: float
) -> FloatArray:
    """The (1 − confidence)/2 quantile of each posterior Gamma(α + k, β + e), shares a
    day, by the Wilson–Hilferty approximation (the module docstring); at least 0."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    k, e = _check(counts, exposures)
    a, b = prior.shape + k, prior.rate + e
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    cube = np.maximum(1.0 - 1.0 / (9.0 * a) - z / (3.0 * np.sqrt(a)), 0.0)
    bound: FloatArray = a * cube**3 / b
    return bound


def reference_rate(counts: npt.ArrayLike, exposures: npt.ArrayLike, prior: ShareRatePrior) -> float:
    """The mean posterior rate of the products with shares (the prior mean if none has)."""
    k, e = _check(counts, exposures)
    shared = k > NEGLIGIBLE_SHARES
    if not shared.any():
        return prior.mean
    return float(np.mean(shrunk_rate(k[shared], e[shared], prior)))


def with_reference(
    prior: ShareRatePrior, counts: npt.ArrayLike, exposures: npt.ArrayLike
) -> ShareRatePrior:
    """The prior with the reference rate of the catalogue of these counts and exposures."""
    return replace(prior, reference=reference_rate(counts, exposures, prior))


def share_score(
    counts: npt.ArrayLike,
    exposures: npt.ArrayLike,
    prior: ShareRatePrior,
    confidence: float = 0.95,
) -> FloatArray:
    """q / (q + R) in [0, 1): q the rate's lower bound, R the prior's reference rate."""
    bound = rate_lower_bound(counts, exposures, prior, confidence)
    score: FloatArray = bound / (bound + prior.reference_rate)
    return score
