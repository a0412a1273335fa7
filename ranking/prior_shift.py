"""How far a change of prior can move any product's estimate: lets a service keep the
prior in force when a refit would move nothing that matters.

Bayesian average b = (C·m + S)/(m + n) = C + n·(ȳ − C)/(m + n), with ȳ the mean of n
ratings on the 1–5 scale (b = C when n = 0). Its derivatives are ∂b/∂C = m/(m + n), in
[0, 1], and ∂b/∂m = n·(C − ȳ)/(m + n)², whose size is at most 4·n/(m + n)² ≤ 1/m (since
|C − ȳ| ≤ 4 and n/(m + n)² is largest, 1/(4m), at n = m). Along the straight path from
(C₁, m₁) to (C₂, m₂), m stays at least min(m₁, m₂), so for every n and ȳ

    |b₂ − b₁| ≤ |C₂ − C₁| + |m₂ − m₁| / min(m₁, m₂).

Like share's posterior mean p = (k + α)/(n + α + β), k likes of n votes: ∂p/∂α =
(n − k + β)/(n + α + β)² and −∂p/∂β = (k + α)/(n + α + β)² both lie in [0, 1/(α + β)],
so along the straight path

    |p₂ − p₁| ≤ (|α₂ − α₁| + |β₂ − β₁|) / min(α₁ + β₁, α₂ + β₂).

(The Beta lower bound moves by about as much; the bound is proven for the mean only.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def average_shift(
    mean_a: npt.ArrayLike,
    strength_a: npt.ArrayLike,
    mean_b: npt.ArrayLike,
    strength_b: npt.ArrayLike,
) -> float:
    """The most any Bayesian average (stars) moves from prior a to prior b, over products
    and, when the priors are arrays (one per category), over their elements; infinite
    when their shapes differ or a value is not finite."""
    ca, ma, cb, mb = (
        np.asarray(x, dtype=np.float64) for x in (mean_a, strength_a, mean_b, strength_b)
    )
    if not (ca.shape == ma.shape == cb.shape == mb.shape):
        return float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.abs(cb - ca) + np.abs(mb - ma) / np.minimum(ma, mb)
    if not shift.size:
        return 0.0
    worst = float(shift.max())
    return worst if np.all(np.isfinite(shift)) and np.all(np.minimum(ma, mb) > 0) else float("inf")


def like_share_shift(alpha_a: float, beta_a: float, alpha_b: float, beta_b: float) -> float:
    """The most any like share's posterior mean moves from Beta(α_a, β_a) to Beta(α_b, β_b)."""
    smallest = min(alpha_a + beta_a, alpha_b + beta_b)
    if not smallest > 0:
        return float("inf")
    shift = (abs(alpha_b - alpha_a) + abs(beta_b - beta_a)) / smallest
    return shift if np.isfinite(shift) else float("inf")
