"""Exponential time decay of votes, kept incrementally in a growing scale.

A vote of age a counts with weight 0.5^(a/h), h being the half-life. Rescanning every
vote to recompute Σ v_j·0.5^((now − t_j)/h) is avoided with the identity

    0.5^((now − t_j)/h) = 2^((t_j − r)/h) · 2^(−(now − r)/h)

for any fixed reference time r: each vote is added once with the growing weight
2^((t_j − r)/h), and at query time the stored sum is multiplied by the common factor
2^(−(now − r)/h). The growing weights overflow float64 about 1024 half-lives after r, so
stored sums are rebased now and then to a later reference r' by multiplying them by
2^((r − r')/h), which leaves every decayed value unchanged.

Times and half-lives may be in any unit as long as it is the same for all arguments (the
service uses seconds). Votes newer than `now` get weights above 1; nothing is clipped, so
that the identity holds exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Rebase when the reference time lags `now` by more than this many half-lives: the growing
# weights are then below 2^256, far from the float64 limit of about 2^1024.
REBASE_AFTER_HALF_LIVES = 256.0


def _check_half_life(half_life: float) -> None:
    if not half_life > 0:
        raise ValueError(f"half-life must be positive, got {half_life!r}")


def decay_weight(age_seconds: npt.ArrayLike, half_life_seconds: float) -> FloatArray:
    """0.5^(age / half_life): 1 for a new vote, 1/2 after one half-life."""
    _check_half_life(half_life_seconds)
    age = np.asarray(age_seconds, dtype=np.float64)
    weight: FloatArray = np.exp2(-age / half_life_seconds)
    return weight


def growth_weight(event_time: npt.ArrayLike, reference_time: float, half_life: float) -> FloatArray:
    """2^((t − reference) / half_life): the weight a vote at time t is stored with."""
    _check_half_life(half_life)
    t = np.asarray(event_time, dtype=np.float64)
    weight: FloatArray = np.exp2((t - reference_time) / half_life)
    return weight


def decay_factor(now: float, reference_time: float, half_life: float) -> float:
    """2^(−(now − reference) / half_life): turns growing-scale sums into decayed ones."""
    _check_half_life(half_life)
    return float(np.exp2(-(now - reference_time) / half_life))


def decayed_value(
    growing_sum: npt.ArrayLike, now: float, reference_time: float, half_life: float
) -> FloatArray:
    """Σ v_j·0.5^((now − t_j)/half_life) from the stored Σ v_j·2^((t_j − reference)/half_life)."""
    stored = np.asarray(growing_sum, dtype=np.float64)
    value: FloatArray = stored * decay_factor(now, reference_time, half_life)
    return value


def rebase(
    growing_sum: npt.ArrayLike, old_reference: float, new_reference: float, half_life: float
) -> FloatArray:
    """Re-expresses growing-scale sums relative to new_reference: × 2^((old − new)/half_life)."""
    _check_half_life(half_life)
    stored = np.asarray(growing_sum, dtype=np.float64)
    moved: FloatArray = stored * np.exp2((old_reference - new_reference) / half_life)
    return moved


def needs_rebase(now: float, reference_time: float, half_life: float) -> bool:
    """True once now is more than REBASE_AFTER_HALF_LIVES half-lives after the reference."""
    _check_half_life(half_life)
    return (now - reference_time) / half_life > REBASE_AFTER_HALF_LIVES
