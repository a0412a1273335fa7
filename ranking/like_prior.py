"""A Beta prior of the like share fitted from the catalogue: beta-binomial maximum
marginal likelihood (issue 20).

Model: product i has a true like share p_i ~ Beta(α, β), and its k_i likes of n_i votes
are Binomial(n_i, p_i). Integrating p_i out, k_i is beta-binomial (e.g. A. Gelman et al.,
"Bayesian Data Analysis", 3rd ed., section 5.3), and the marginal log-likelihood is,
up to terms free of α and β,

    ℓ(α, β) = Σ_i [ln B(k_i + α, n_i − k_i + β) − ln B(α, β)],

with gradient ∂ℓ/∂α = Σ [ψ(k_i + α) − ψ(n_i + α + β) − ψ(α) + ψ(α + β)] (ψ the digamma
function) and the same in β with n_i − k_i. It is maximised over (ln α, ln β) within
bounds by L-BFGS-B, from the previous fit when one is given (a warm start: refits then
take a few steps). Products with the same (n_i, k_i) are summed first, so a refit costs in
the number of distinct pairs (small on a long tail), not of products.

The posterior of product i is then Beta(α + k_i, β + n_i − k_i) (ranking.beta): a new
product starts at the catalogue's like share α/(α + β), and α + β votes of its own weigh as
much as the prior. Only the share is identified when no product has two votes; the
strength then stays at FALLBACK_STRENGTH. Where every product has the same share the
likelihood grows without bound in α + β, which MAX_STRENGTH caps. One pseudo-product
with a like and a dislike is counted with the products, a weak pull toward a share of
one half that only a catalogue with a handful of votes notices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, digamma

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MIN_STRENGTH = 0.1  # α + β
MAX_STRENGTH = 10_000.0
FALLBACK_STRENGTH = 2.0  # as Beta(1, 1), where the votes cannot tell
_SHARE_LIMIT = 1e-4  # the prior's share kept within [limit, 1 − limit]
_SMALL = 64  # votes per product below which (n, k) pairs are counted in one bincount


@dataclass(frozen=True)
class LikePrior:
    """Beta(alpha, beta) prior of the like share."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def strength(self) -> float:
        return self.alpha + self.beta

    @property
    def parameters(self) -> tuple[float, float]:
        """(alpha, beta), as ranking.blend.Prior and the profiles' likes_prior hold them."""
        return self.alpha, self.beta


UNIFORM = LikePrior(1.0, 1.0)


def vote_pairs(
    likes: npt.ArrayLike, dislikes: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The distinct (votes, likes) pairs of the products with votes, and how many products
    have each: (n, k, weight). Counts must be whole and non-negative."""
    k = _counts(likes, "likes")
    j = _counts(dislikes, "dislikes")
    if k.shape != j.shape or k.ndim != 1:
        raise ValueError("likes and dislikes must be 1-d arrays of equal length")
    n = k + j
    small = (n > 0) & (n < _SMALL)
    key = n[small] * _SMALL + k[small]
    counts = np.bincount(key, minlength=_SMALL * _SMALL).astype(np.float64)
    present = np.flatnonzero(counts)
    pair_n = (present // _SMALL).astype(np.float64)
    pair_k = (present % _SMALL).astype(np.float64)
    weights = counts[present]
    large = n >= _SMALL
    if np.any(large):  # few products on any real catalogue: a sort of them is cheap
        pairs, many = np.unique(np.stack([n[large], k[large]], axis=1), axis=0, return_counts=True)
        pair_n = np.concatenate([pair_n, pairs[:, 0].astype(np.float64)])
        pair_k = np.concatenate([pair_k, pairs[:, 1].astype(np.float64)])
        weights = np.concatenate([weights, many.astype(np.float64)])
    return pair_n, pair_k, weights


def _counts(values: npt.ArrayLike, name: str) -> IntArray:
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        whole = array.astype(np.int64, copy=False)
    else:
        floats = array.astype(np.float64, copy=False)
        if not np.all(np.isfinite(floats)) or np.any(floats != np.floor(floats)):
            raise ValueError(f"{name} must be whole numbers")
        whole = floats.astype(np.int64)
    if whole.size and whole.min() < 0:
        raise ValueError(f"{name} must not be negative")
    return whole


def fit_like_prior(
    likes: npt.ArrayLike, dislikes: npt.ArrayLike, start: LikePrior | None = None
) -> LikePrior:
    """Beta(α, β) maximising the beta-binomial marginal likelihood of the products' likes
    and dislikes (see the module docstring); UNIFORM when no product has a vote."""
    n, k, w = vote_pairs(likes, dislikes)
    if not np.any(w):
        return UNIFORM
    only_singles = not np.any(n >= 2)
    # One pseudo-product with a like and a dislike joins the products: with a handful of
    # votes the share stays off 0 and 1 (the first like of a new shop put every product
    # without votes at 0.9999), with thousands it changes nothing that shows.
    n, k, w = np.append(n, 2.0), np.append(k, 1.0), np.append(w, 1.0)
    total = float(np.sum(w))
    share = float(np.clip(np.sum(w * k) / np.sum(w * n), _SHARE_LIMIT, 1 - _SHARE_LIMIT))
    if only_singles:  # only the share is identified
        return LikePrior(share * FALLBACK_STRENGTH, (1 - share) * FALLBACK_STRENGTH)
    if start is None:
        start = LikePrior(share * FALLBACK_STRENGTH, (1 - share) * FALLBACK_STRENGTH)
    dis = n - k

    def negative(x: FloatArray) -> tuple[float, FloatArray]:
        a, b = np.exp(x)
        value = np.sum(w * (betaln(k + a, dis + b) - betaln(a, b)))
        common = digamma(a + b) - digamma(n + a + b)
        grad_a = np.sum(w * (digamma(k + a) - digamma(a) + common))
        grad_b = np.sum(w * (digamma(dis + b) - digamma(b) + common))
        return -float(value) / total, -np.array([grad_a * a, grad_b * b]) / total

    low, high = np.log(MIN_STRENGTH * _SHARE_LIMIT), np.log(MAX_STRENGTH)
    x0 = np.clip(np.log([start.alpha, start.beta]), low, high)
    result = minimize(negative, x0, jac=True, method="L-BFGS-B", bounds=[(low, high)] * 2)
    a, b = (float(v) for v in np.exp(result.x))
    strength = a + b
    if strength > MAX_STRENGTH or strength < MIN_STRENGTH:  # keep the share, cap the strength
        scale = np.clip(strength, MIN_STRENGTH, MAX_STRENGTH) / strength
        a, b = a * scale, b * scale
    return LikePrior(float(a), float(b))
