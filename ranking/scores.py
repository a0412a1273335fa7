"""Per-product scores, vectorised over numpy arrays (one element per product).

* Bayesian average of stars (a.k.a. the IMDb weighted rating)::

      B = (C·m + Σstars) / (m + n)

  C is the prior mean, m the prior strength in pseudo-ratings, n the number of
  ratings. With n = 0 it is C; as n grows it tends to the sample mean.
  Reference: IMDb Top 250 formula WR = (v/(v+m))·R + (m/(v+m))·C, which is the
  same expression with R = Σstars / v.

* Wilson score interval lower bound of a proportion p̂ = k / n::

      (p̂ + z²/2n − z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)

  with z the two-sided standard normal quantile of the confidence level
  (1.96 for 95 %). 0 when n = 0. Reference: E. B. Wilson, "Probable inference,
  the law of succession, and statistical inference", JASA 22 (1927);
  E. Miller, "How Not To Sort By Average Rating" (2009).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


@lru_cache(maxsize=64)
def z_for_confidence(confidence: float) -> float:
    """Two-sided standard normal quantile: z such that P(|Z| ≤ z) = confidence."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(ndtri(0.5 + confidence / 2.0))  # the standard normal's quantile


def bayesian_average(
    star_sum: ArrayLike, count: ArrayLike, prior_mean: ArrayLike, prior_strength: ArrayLike
) -> FloatArray:
    """(C·m + Σstars) / (m + n); equals C where m + n is 0."""
    s = np.asarray(star_sum, dtype=np.float64)
    n = np.asarray(count, dtype=np.float64)
    c = np.asarray(prior_mean, dtype=np.float64)
    m = np.asarray(prior_strength, dtype=np.float64)
    denominator = m + n
    if denominator.size and denominator.min() > 0:  # the usual case: a positive prior
        result: FloatArray = (c * m + s) / denominator
        return result
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (c * m + s) / safe, c + 0.0 * s)


def wilson_lower_bound(positive: ArrayLike, total: ArrayLike, confidence: float) -> FloatArray:
    """Lower bound of the Wilson score interval of positive/total; 0 where total is 0."""
    # The same formula multiplied through by n (fewer operations, and 0 at n = 0 by itself):
    # (k + z²/2 − z·sqrt(k(n − k)/n + z²/4)) / (n + z²)
    k = np.asarray(positive, dtype=np.float64)
    n = np.asarray(total, dtype=np.float64)
    z = z_for_confidence(confidence)
    z2 = z * z
    spread = np.divide(k * (n - k), n, out=np.zeros(np.broadcast(k, n).shape), where=n > 0)
    spread = np.maximum(spread, 0.0)
    spread += z2 / 4.0
    bound = (k + z2 / 2.0 - z * np.sqrt(spread)) / (n + z2)
    result: FloatArray = np.clip(bound, 0.0, 1.0)
    return result


def mean_stars(star_sum: ArrayLike, count: ArrayLike) -> FloatArray:
    """Σstars / n; 0 where n is 0."""
    s = np.asarray(star_sum, dtype=np.float64)
    n = np.asarray(count, dtype=np.float64)
    mean: FloatArray = np.divide(s, n, out=np.zeros(np.broadcast(s, n).shape), where=n > 0)
    return mean
