"""Beta posterior of the share of likes (recommendations) of each product.

With a Beta(α, β) prior and k likes out of n votes the posterior is
Beta(α + k, β + n − k) (conjugacy of the beta and binomial distributions; e.g. A. Gelman
et al., "Bayesian Data Analysis", 3rd ed., section 2.4):

    posterior mean = (k + α) / (n + α + β)
    lower bound    = beta.ppf((1 − confidence) / 2, α + k, β + n − k)

The bound is the lower end of the two-sided equal-tailed credible interval, so that
confidence 0.95 gives the 2.5 % quantile, matching the two-sided Wilson bound of
ranking.scores (z = 1.96 at 0.95). With no votes both are those of the prior.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import betaincinv

FloatArray = npt.NDArray[np.float64]


def _posterior(
    likes: npt.ArrayLike, dislikes: npt.ArrayLike, prior_alpha: float, prior_beta: float
) -> tuple[FloatArray, FloatArray]:
    if not (prior_alpha > 0 and prior_beta > 0 and np.isfinite(prior_alpha + prior_beta)):
        raise ValueError(f"prior must be positive, got Beta({prior_alpha}, {prior_beta})")
    k = np.asarray(likes, dtype=np.float64)
    j = np.asarray(dislikes, dtype=np.float64)
    if np.any(k < 0) or np.any(j < 0):
        raise ValueError("likes and dislikes must be non-negative")
    return k + prior_alpha, j + prior_beta


def beta_posterior_mean(
    likes: npt.ArrayLike,
    dislikes: npt.ArrayLike,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> FloatArray:
    """(likes + α) / (likes + dislikes + α + β), element by element."""
    a, b = _posterior(likes, dislikes, prior_alpha, prior_beta)
    mean: FloatArray = a / (a + b)
    return mean


def beta_lower_bound(
    likes: npt.ArrayLike,
    dislikes: npt.ArrayLike,
    confidence: float = 0.95,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> FloatArray:
    """(1 − confidence)/2 quantile of Beta(α + likes, β + dislikes), element by element."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    a, b = _posterior(likes, dislikes, prior_alpha, prior_beta)
    # The quantile function of Beta(a, b), as scipy.stats.beta.ppf computes it, without
    # importing scipy.stats (about 0.5 s of a server's start-up).
    bound = np.asarray(betaincinv(a, b, (1.0 - confidence) / 2.0), dtype=np.float64)
    return bound
