"""Comment sentiment per product: a Bayesian average of the comments' sentiment scores
with a prior fitted from the catalogue, as for the stars (issue 22).

A comment's score is a number in [−1, 1] (a lexicon analyzer's compound score, or one
the sender computed). Model, the stars' normal random-effects model (ranking.priors,
ranking.marginal): product i has a true mean sentiment μ_i ~ N(C, τ²), and each of its
n_i comments scores around μ_i with variance σ². The posterior mean of μ_i is

    (C·m + Σ scores_i) / (m + n_i),   m = σ²/τ²,

and (C, m) are fitted by the averaged marginal likelihood of ranking.marginal, from the
products' sums grouped by their number of comments (n, Σ score, Σ score²), so a product
with one gushing comment stays near the catalogue's typical sentiment. Scores in
[−1, 1] are mapped to [0, 1] for the blend: (average + 1)/2.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.marginal import fit_marginal_groups
from reviewrank.ranking.priors import DEFAULT_PRIOR, StarPrior
from reviewrank.ranking.rating_groups import CategoryRatingGroups, RatingGroups
from reviewrank.ranking.scores import bayesian_average

FloatArray = npt.NDArray[np.float64]

LOWEST, HIGHEST = -1.0, 1.0
# No comments anywhere: neutral, and as strong as the stars' default.
DEFAULT_SENTIMENT_PRIOR = StarPrior(mean=0.0, strength=DEFAULT_PRIOR.strength)


def _sums(
    counts: npt.ArrayLike, score_sums: npt.ArrayLike, square_sums: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    n = np.asarray(counts, dtype=np.float64)
    s = np.asarray(score_sums, dtype=np.float64)
    q = np.asarray(square_sums, dtype=np.float64)
    if not (n.shape == s.shape == q.shape and n.ndim == 1):
        raise ValueError(f"counts and sums must be 1-D of one shape: {n.shape} {s.shape} {q.shape}")
    if not np.all(np.isfinite(n) & np.isfinite(s) & np.isfinite(q)) or np.any(n < 0):
        raise ValueError("counts must be non-negative and every sum finite")
    if np.any(np.abs(s) > n * HIGHEST * (1 + 1e-9)) or np.any(q > n * (1 + 1e-9)):
        raise ValueError("a product's sums exceed what scores in [-1, 1] can add up to")
    return n, s, q


def sentiment_groups(
    counts: npt.ArrayLike, score_sums: npt.ArrayLike, square_sums: npt.ArrayLike
) -> RatingGroups:
    """Products with comments grouped by their number of comments (ranking.marginal's
    input): per product n, Σ score and Σ score²."""
    n, s, q = _sums(counts, score_sums, square_sums)
    commented = n > 0
    n, s = n[commented], s[commented]
    # One group per product, regrouped by count as the stars' are.
    return CategoryRatingGroups(
        codes=np.full(n.size, -1, dtype=np.int64),
        counts=n,
        products=np.ones(n.size),
        star_sum=s,
        star_sum_squared=s * s,
        square_sum=float(q[commented].sum()),
    ).by_count()


def fit_sentiment_prior(
    counts: npt.ArrayLike, score_sums: npt.ArrayLike, square_sums: npt.ArrayLike
) -> StarPrior:
    """(C, m) of the products' comment sentiment; DEFAULT_SENTIMENT_PRIOR without comments
    (and its strength when σ² or τ² cannot be told apart, as for the stars)."""
    groups = sentiment_groups(counts, score_sums, square_sums)
    if not groups.counts.size:
        return DEFAULT_SENTIMENT_PRIOR
    fitted = fit_marginal_groups(groups)
    mean = float(np.clip(fitted.mean, LOWEST, HIGHEST))
    return StarPrior(mean, fitted.strength)


def sentiment_average(
    counts: npt.ArrayLike, score_sums: npt.ArrayLike, prior: StarPrior
) -> FloatArray:
    """(C·m + Σ scores)/(m + n) per product, in [−1, 1]; C where m + n is 0."""
    return bayesian_average(score_sums, counts, prior.mean, prior.strength)


def sentiment_score(
    counts: npt.ArrayLike, score_sums: npt.ArrayLike, prior: StarPrior
) -> FloatArray:
    """The Bayesian average mapped from [−1, 1] to [0, 1]."""
    return normalise_sentiment(sentiment_average(counts, score_sums, prior))


def normalise_sentiment(average: FloatArray) -> FloatArray:
    """A sentiment in [−1, 1] mapped to [0, 1]."""
    score: FloatArray = (average - LOWEST) / (HIGHEST - LOWEST)
    return score
