"""Star ratings under a Dirichlet posterior: its mean and a lower credible bound.

E. Miller, "Ranking Items With Star Ratings" (2016). With n_k ratings of s_k = k stars
(k = 1..5) and Dirichlet prior pseudo-counts α_k (1 each by default):

    N     = Σ (n_k + α_k)
    mean  = Σ s_k (n_k + α_k) / N
    var   = (Σ s_k² (n_k + α_k) / N − mean²) / (N + 1)
    bound = mean − z·sqrt(var)

var is the exact variance of the expected star value Σ s_k p_k when p ~ Dirichlet(n + α);
z is the two-sided normal quantile of the confidence level (1.96 for 0.95), as in
ranking.scores.z_for_confidence. The bound can dip below 1 for many one-star ratings, so
it is clipped to [1, 5].
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.scores import z_for_confidence

FloatArray = npt.NDArray[np.float64]

STAR_VALUES: FloatArray = np.arange(1.0, 6.0)
LOWEST_STAR = 1.0
HIGHEST_STAR = 5.0


def _posterior_counts(histogram: npt.ArrayLike, prior_counts: npt.ArrayLike) -> FloatArray:
    h = np.asarray(histogram, dtype=np.float64)
    if h.shape[-1:] != (STAR_VALUES.size,):
        raise ValueError(f"histogram must have a last axis of 5 star counts, got {h.shape}")
    alpha = np.asarray(prior_counts, dtype=np.float64)
    if not np.all(alpha > 0) or not np.all(np.isfinite(alpha)):
        raise ValueError("prior_counts must be finite and positive")
    if np.any(h < 0):
        raise ValueError("histogram counts must be non-negative")
    counts: FloatArray = h + alpha
    return counts


def dirichlet_star_mean(histogram: npt.ArrayLike, prior_counts: npt.ArrayLike = 1.0) -> FloatArray:
    """Posterior mean Σ s_k (n_k + α_k) / N of each row of a (..., 5) histogram."""
    counts = _posterior_counts(histogram, prior_counts)
    mean: FloatArray = (counts @ STAR_VALUES) / counts.sum(axis=-1)
    return mean


def dirichlet_star_bound(
    histogram: npt.ArrayLike, confidence: float = 0.95, prior_counts: npt.ArrayLike = 1.0
) -> FloatArray:
    """Miller's lower bound mean − z·sqrt(var) of each row of a (..., 5) histogram, in [1, 5].

    prior_counts (α_k) broadcasts against the histogram: a scalar, five values, or one row
    per product.
    """
    counts = _posterior_counts(histogram, prior_counts)
    total = counts.sum(axis=-1)
    mean = (counts @ STAR_VALUES) / total
    second = (counts @ (STAR_VALUES * STAR_VALUES)) / total
    variance = np.maximum(second - mean * mean, 0.0) / (total + 1.0)
    bound = mean - z_for_confidence(confidence) * np.sqrt(variance)
    clipped: FloatArray = np.clip(bound, LOWEST_STAR, HIGHEST_STAR)
    return clipped


def normalise_stars(stars: npt.ArrayLike) -> FloatArray:
    """Maps the star scale [1, 5] linearly onto [0, 1], clipping values outside it."""
    x = np.asarray(stars, dtype=np.float64)
    scaled: FloatArray = np.clip((x - LOWEST_STAR) / (HIGHEST_STAR - LOWEST_STAR), 0.0, 1.0)
    return scaled
